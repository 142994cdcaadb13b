//! The host's handle of a Vm instance.

use modhost_abi::{Buffer, Bytes, CallError, Kind, Status, VM_VTABLE_SIZE_V1_0, Vm, VmInfo, VmVtable};

use super::{KindHandle, RawInstance, outcome};

/// The signature of `call` and `call_packed`.
type CallFn = unsafe extern "C" fn(*mut std::ffi::c_void, Bytes, Bytes, *mut Buffer, *mut Buffer) -> Status;

/// A Vm instance in a loaded library. Its entries are copied out of the vtable, which may be
/// ABI 1.0's (without `call_packed`) and so shorter than [`VmVtable`].
pub struct VmHandle {
    raw: RawInstance,
    call: CallFn,
    has_function: unsafe extern "C" fn(*mut std::ffi::c_void, Bytes, *mut bool, *mut Buffer) -> Status,
    describe: unsafe extern "C" fn(*mut std::ffi::c_void, *mut Buffer, *mut Buffer) -> Status,
    take_output: unsafe extern "C" fn(*mut std::ffi::c_void, *mut Buffer, *mut Buffer) -> Status,
    /// ABI 1.1's entry, when the module has it.
    call_packed: Option<CallFn>,
}

impl KindHandle for VmHandle {
    const KIND: Kind = Kind::Vm;

    fn from_raw(raw: RawInstance) -> Result<Self, String> {
        let vtable = raw.vtable_prefix::<VmVtable>(Kind::Vm, VM_VTABLE_SIZE_V1_0)?;
        // SAFETY: the ABI 1.0 part of the vtable is there and its entries are non-null
        // (vtable_prefix); each is read as a field through the raw pointer, no further.
        let (call, has_function, describe, take_output) =
            unsafe { ((*vtable).call, (*vtable).has_function, (*vtable).describe, (*vtable).take_output) };
        let call_packed = raw.appended_entry(VM_VTABLE_SIZE_V1_0).map(|entry| {
            // SAFETY: the module's vtable holds a non-null `call_packed` entry, whose type
            // the ABI fixes.
            unsafe { std::mem::transmute::<usize, CallFn>(entry) }
        });
        Ok(VmHandle { raw, call, has_function, describe, take_output, call_packed })
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

impl VmHandle {
    /// Calls `call` or `call_packed`.
    fn call_entry(&mut self, entry: CallFn, function: &str, message: &[u8]) -> Result<Vec<u8>, CallError> {
        self.call_entry_then(entry, function, message, |bytes| Ok(bytes.to_vec()))
    }

    /// Calls `call` or `call_packed` and hands the answer to `read` while the module's buffer
    /// still holds it.
    fn call_entry_then<R>(
        &mut self,
        entry: CallFn,
        function: &str,
        message: &[u8],
        read: impl FnOnce(&[u8]) -> Result<R, CallError>,
    ) -> Result<R, CallError> {
        let this = self.raw.this;
        // SAFETY: the instance is live and used through `&mut self` only; the spans outlive
        // the call; the buffers are valid.
        self.buffered(
            |output, error| unsafe { entry(this, Bytes::new(function.as_bytes()), Bytes::new(message), output, error) },
            read,
        )
    }

    /// [`Vm::call_packed`], with the answer read in place instead of copied out.
    pub fn call_packed_then<R>(
        &mut self,
        function: &str,
        message: &[u8],
        read: impl FnOnce(&[u8]) -> Result<R, CallError>,
    ) -> Result<R, CallError> {
        match self.call_packed {
            Some(entry) => self.call_entry_then(entry, function, message, read),
            None => read(&modhost_abi::call_through_json(self, function, message)?),
        }
    }
}

impl Vm for VmHandle {
    fn call(&mut self, function: &str, message: &[u8]) -> Result<Vec<u8>, CallError> {
        self.call_entry(self.call, function, message)
    }

    fn call_packed(&mut self, function: &str, message: &[u8]) -> Result<Vec<u8>, CallError> {
        match self.call_packed {
            Some(entry) => self.call_entry(entry, function, message),
            None => modhost_abi::call_through_json(self, function, message),
        }
    }

    fn has_function(&mut self, function: &str) -> Result<bool, CallError> {
        let mut found = false;
        let mut error = Buffer::empty();
        // SAFETY: as for `call`; `found` is valid for writes.
        let status =
            unsafe { (self.has_function)(self.raw.this, Bytes::new(function.as_bytes()), &mut found, &mut error) };
        // SAFETY: the module filled `error` by the buffer contract (or left it empty).
        unsafe { outcome(status, error) }?;
        Ok(found)
    }

    fn describe(&mut self) -> Result<VmInfo, CallError> {
        let (this, entry) = (self.raw.this, self.describe);
        // SAFETY: as for `call`.
        self.buffered(|output, error| unsafe { entry(this, output, error) }, |bytes| json("describe", bytes))
    }

    fn take_output(&mut self) -> Result<Vec<String>, CallError> {
        let (this, entry) = (self.raw.this, self.take_output);
        // SAFETY: as for `call`.
        self.buffered(
            |output, error| unsafe { entry(this, output, error) },
            // An empty answer is no lines (ABI 1.1), a JSON list otherwise.
            |bytes| if bytes.is_empty() { Ok(Vec::new()) } else { json("take_output", bytes) },
        )
    }
}
