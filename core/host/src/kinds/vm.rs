//! The host's handle of a Vm instance.

use modhost_abi::{Buffer, Bytes, CallError, Kind, Vm, VmInfo, VmVtable};

use super::{KindHandle, RawInstance, outcome};

/// A Vm instance in a loaded library.
pub struct VmHandle {
    raw: RawInstance,
    vtable: &'static VmVtable,
}

impl KindHandle for VmHandle {
    const KIND: Kind = Kind::Vm;

    fn from_raw(raw: RawInstance) -> Result<Self, String> {
        let vtable = raw.vtable::<VmVtable>(Kind::Vm)?;
        Ok(VmHandle { raw, vtable })
    }
}

impl VmHandle {
    /// Calls an entry that answers in a buffer, and hands the bytes to `read`.
    fn buffered<R>(
        &mut self,
        call: impl FnOnce(*mut Buffer, *mut Buffer) -> modhost_abi::Status,
        read: impl FnOnce(&[u8]) -> Result<R, CallError>,
    ) -> Result<R, CallError> {
        let mut output = Buffer::empty();
        let mut error = Buffer::empty();
        let status = call(&mut output, &mut error);
        // SAFETY: the module filled `error` by the buffer contract (or left it empty).
        let result = unsafe { outcome(status, error) };
        // SAFETY: the module filled `output` by the buffer contract (or left it empty); it is
        // released even when the call failed.
        unsafe { output.read_and_release(|bytes| result.and_then(|()| read(bytes))) }
    }
}

fn json<T: serde::de::DeserializeOwned>(what: &str, bytes: &[u8]) -> Result<T, CallError> {
    serde_json::from_slice(bytes).map_err(|e| CallError::Malformed { message: format!("{what}: {e}") })
}

impl Vm for VmHandle {
    fn call(&mut self, function: &str, message: &[u8]) -> Result<Vec<u8>, CallError> {
        let (this, entry) = (self.raw.this, self.vtable.call);
        // SAFETY: the instance is live and used through `&mut self` only; the spans outlive
        // the call; the buffers are valid.
        self.buffered(
            |output, error| unsafe { entry(this, Bytes::new(function.as_bytes()), Bytes::new(message), output, error) },
            |bytes| Ok(bytes.to_vec()),
        )
    }

    fn has_function(&mut self, function: &str) -> Result<bool, CallError> {
        let mut found = false;
        let mut error = Buffer::empty();
        // SAFETY: as for `call`; `found` is valid for writes.
        let status = unsafe {
            (self.vtable.has_function)(self.raw.this, Bytes::new(function.as_bytes()), &mut found, &mut error)
        };
        // SAFETY: the module filled `error` by the buffer contract (or left it empty).
        unsafe { outcome(status, error) }?;
        Ok(found)
    }

    fn describe(&mut self) -> Result<VmInfo, CallError> {
        let (this, entry) = (self.raw.this, self.vtable.describe);
        // SAFETY: as for `call`.
        self.buffered(|output, error| unsafe { entry(this, output, error) }, |bytes| json("describe", bytes))
    }

    fn take_output(&mut self) -> Result<Vec<String>, CallError> {
        let (this, entry) = (self.raw.this, self.vtable.take_output);
        // SAFETY: as for `call`.
        self.buffered(|output, error| unsafe { entry(this, output, error) }, |bytes| json("take_output", bytes))
    }
}
