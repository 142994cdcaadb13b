//! TestModule: Mesos's kind for testing the module system itself.

use std::ffi::{c_char, c_int, c_long, c_void};
use std::marker::PhantomData;

use super::{Construct, KindGlue, destroy_shim, module_ref, write_out};
use crate::guard::guard;
use crate::{Buffer, CallError, Kind, Parameters, Status};

/// The interface of Mesos's `TestModule` (`src/examples/test_module.hpp`).
///
/// The reference module computes `foo(a, b) = a + b`, `bar(a, b) = a * b` truncated to an
/// integer, and `baz(a, b) = a + b` when created with `operation=sum`, else -1; its
/// `parameters()` returns what it was created with.
pub trait TestModule: Send {
    /// Mesos: `int foo(char a, long b)`.
    fn foo(&self, a: i8, b: i64) -> Result<i32, CallError>;
    /// Mesos: `int bar(float a, double b)`.
    fn bar(&self, a: f32, b: f64) -> Result<i32, CallError>;
    /// Mesos: `int baz(int a, int b)`.
    fn baz(&self, a: i32, b: i32) -> Result<i32, CallError>;
    /// The parameters the instance was created with.
    fn parameters(&self) -> Result<Parameters, CallError>;
}

/// The TestModule vtable. Each method writes its result to `out` and returns a [`Status`];
/// anything but OK comes with a module-owned text in `error`.
#[repr(C)]
#[derive(Debug)]
pub struct TestModuleVtable {
    /// `size_of::<TestModuleVtable>()` as the module was compiled.
    pub size: usize,
    /// Releases the instance.
    pub destroy: unsafe extern "C" fn(this: *mut c_void),
    /// See [`TestModule::foo`].
    pub foo:
        unsafe extern "C" fn(this: *mut c_void, a: c_char, b: c_long, out: *mut c_int, error: *mut Buffer) -> Status,
    /// See [`TestModule::bar`].
    pub bar: unsafe extern "C" fn(this: *mut c_void, a: f32, b: f64, out: *mut c_int, error: *mut Buffer) -> Status,
    /// See [`TestModule::baz`].
    pub baz: unsafe extern "C" fn(this: *mut c_void, a: c_int, b: c_int, out: *mut c_int, error: *mut Buffer) -> Status,
    /// See [`TestModule::parameters`]: `out` receives a JSON array of `{"key","value"}`.
    pub parameters: unsafe extern "C" fn(this: *mut c_void, out: *mut Buffer, error: *mut Buffer) -> Status,
}

/// Glue between a Rust [`TestModule`] type and the TestModule vtable.
pub struct TestModuleGlue<T>(PhantomData<T>);

impl<T: TestModule + Construct> TestModuleGlue<T> {
    const TABLE: TestModuleVtable = TestModuleVtable {
        size: size_of::<TestModuleVtable>(),
        destroy: destroy_shim::<T>,
        foo: foo::<T>,
        bar: bar::<T>,
        baz: baz::<T>,
        parameters: parameters::<T>,
    };
}

// SAFETY: TABLE is the TestModule vtable and every entry casts `this` to `T`.
unsafe impl<T: TestModule + Construct> KindGlue for TestModuleGlue<T> {
    type Module = T;
    const KIND: Kind = Kind::TestModule;
    const VTABLE: *const c_void = (&Self::TABLE as *const TestModuleVtable).cast();
}

// `c_char` is unsigned and `c_long` 32-bit on some targets; the casts are not no-ops there.
#[allow(clippy::unnecessary_cast)]
unsafe extern "C" fn foo<T: TestModule>(
    this: *mut c_void,
    a: c_char,
    b: c_long,
    out: *mut c_int,
    error: *mut Buffer,
) -> Status {
    guard(error, || {
        // SAFETY: `this` is a live T (vtable contract); `out` is valid for writes.
        unsafe { write_out(out, module_ref::<T>(this).foo(a as i8, b as i64)?) }
    })
}

unsafe extern "C" fn bar<T: TestModule>(
    this: *mut c_void,
    a: f32,
    b: f64,
    out: *mut c_int,
    error: *mut Buffer,
) -> Status {
    guard(error, || {
        // SAFETY: as for `foo`.
        unsafe { write_out(out, module_ref::<T>(this).bar(a, b)?) }
    })
}

unsafe extern "C" fn baz<T: TestModule>(
    this: *mut c_void,
    a: c_int,
    b: c_int,
    out: *mut c_int,
    error: *mut Buffer,
) -> Status {
    guard(error, || {
        // SAFETY: as for `foo`.
        unsafe { write_out(out, module_ref::<T>(this).baz(a, b)?) }
    })
}

unsafe extern "C" fn parameters<T: TestModule>(this: *mut c_void, out: *mut Buffer, error: *mut Buffer) -> Status {
    guard(error, || {
        // SAFETY: as for `foo`.
        let parameters = unsafe { module_ref::<T>(this) }.parameters()?;
        let json = serde_json::to_vec(&parameters).map_err(|e| CallError::failed(e.to_string()))?;
        // SAFETY: `out` is valid for writes (vtable contract).
        unsafe { write_out(out, Buffer::from_vec(json)) }
    })
}
