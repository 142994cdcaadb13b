//! The host's handle of a TestModule instance.

use std::ffi::{c_char, c_int, c_long};

use modhost_abi::{Buffer, CallError, Kind, Parameters, TestModule, TestModuleVtable};

use super::{KindHandle, RawInstance, outcome};

/// A TestModule instance in a loaded library.
pub struct TestModuleHandle {
    raw: RawInstance,
    vtable: &'static TestModuleVtable,
}

impl KindHandle for TestModuleHandle {
    const KIND: Kind = Kind::TestModule;

    fn from_raw(raw: RawInstance) -> Result<Self, String> {
        let vtable = raw.vtable::<TestModuleVtable>(Kind::TestModule)?;
        Ok(TestModuleHandle { raw, vtable })
    }
}

impl TestModuleHandle {
    /// Calls a vtable method whose result is an `int`.
    fn int_call(&self, call: impl FnOnce(*mut c_int, *mut Buffer) -> modhost_abi::Status) -> Result<i32, CallError> {
        let mut out: c_int = 0;
        let mut error = Buffer::empty();
        let status = call(&mut out, &mut error);
        // SAFETY: the module filled `error` by contract (or left it empty).
        unsafe { outcome(status, error) }?;
        Ok(out)
    }
}

impl TestModule for TestModuleHandle {
    // `c_char` is unsigned and `c_long` 32-bit on some targets; the casts are not no-ops there.
    #[allow(clippy::unnecessary_cast)]
    fn foo(&self, a: i8, b: i64) -> Result<i32, CallError> {
        let this = self.raw.this;
        // SAFETY: `this` is live; the vtable was checked; `out` and `error` are valid.
        self.int_call(|out, error| unsafe { (self.vtable.foo)(this, a as c_char, b as c_long, out, error) })
    }

    fn bar(&self, a: f32, b: f64) -> Result<i32, CallError> {
        let this = self.raw.this;
        // SAFETY: as for `foo`.
        self.int_call(|out, error| unsafe { (self.vtable.bar)(this, a, b, out, error) })
    }

    fn baz(&self, a: i32, b: i32) -> Result<i32, CallError> {
        let this = self.raw.this;
        // SAFETY: as for `foo`.
        self.int_call(|out, error| unsafe { (self.vtable.baz)(this, a, b, out, error) })
    }

    fn parameters(&self) -> Result<Parameters, CallError> {
        let mut out = Buffer::empty();
        let mut error = Buffer::empty();
        // SAFETY: as for `foo`.
        let status = unsafe { (self.vtable.parameters)(self.raw.this, &mut out, &mut error) };
        // SAFETY: the module filled both buffers by contract (or left them empty).
        let (result, json) = unsafe { (outcome(status, error), out.into_vec()) };
        result?;
        serde_json::from_slice(&json).map_err(|e| CallError::Malformed {
            message: format!("parameters() did not return a JSON list of key/value pairs: {e}"),
        })
    }
}
