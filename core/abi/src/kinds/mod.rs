//! The kinds: one trait, one vtable and one glue type each.

pub(crate) mod allocator;
pub(crate) mod anonymous;
pub(crate) mod codec;
pub(crate) mod hook;
pub(crate) mod isolator;
pub(crate) mod message;
pub(crate) mod test_module;
pub(crate) mod vm;

use std::ffi::c_void;

use crate::guard::guard;
use crate::params::read_parameters;
use crate::{Buffer, CallError, Instance, Kind, Parameters, RawParameter, Status};

/// A module that does nothing: every method of the Hook, Isolator and Allocator kinds with
/// its default (an allocator that offers nothing). The script adapter answers with it for the
/// functions a script leaves out.
#[derive(Clone, Copy, Debug, Default)]
pub struct Defaults;

impl hook::Hook for Defaults {}
impl isolator::Isolator for Defaults {}
impl allocator::Allocator for Defaults {
    fn allocate(&mut self, _: &allocator::Allocate) -> Result<crate::messages::Offers, CallError> {
        Ok(crate::messages::Offers::new())
    }
}

/// How a module's type is built from its parameters. Every exported type implements it.
pub trait Construct: Sized {
    /// Creates an instance from the manifest's parameters (or the ones the host passed to
    /// `create` instead). An error fails the creation with its message.
    fn create(parameters: Parameters) -> Result<Self, CallError>;
}

/// Ties a module type to a kind's vtable. [`crate::declare_module!`] picks the glue type of
/// the declared kind; authors do not implement this themselves.
///
/// # Safety
///
/// `VTABLE` must point to a vtable of `KIND` whose functions expect `this` to be a
/// `*mut Self::Module` made by `Box::into_raw`.
pub unsafe trait KindGlue {
    /// The module's type.
    type Module: Construct;
    /// The kind the vtable belongs to.
    const KIND: Kind;
    /// The kind's vtable for `Self::Module`.
    const VTABLE: *const c_void;
}

/// The `create` entry point of a descriptor, for the module type and kind of `G`.
///
/// # Safety
///
/// Called by the host with `n` valid parameters at `parameters`, and valid `out` and `error`
/// pointers, as [`crate::CreateFn`] documents.
pub unsafe extern "C" fn create_shim<G: KindGlue>(
    parameters: *const RawParameter,
    n: usize,
    out: *mut Instance,
    error: *mut Buffer,
) -> Status {
    guard(error, || {
        // SAFETY: the host passes `n` parameters that live for this call.
        let parameters = unsafe { read_parameters(parameters, n) }.map_err(CallError::failed)?;
        let module = G::Module::create(parameters)?;
        let this = Box::into_raw(Box::new(module)).cast::<c_void>();
        // SAFETY: `out` is valid for writes (contract of CreateFn).
        unsafe { out.write(Instance { this, vtable: G::VTABLE }) };
        Ok(())
    })
}

/// The `destroy` entry of every vtable: drops the boxed module.
///
/// # Safety
///
/// `this` must come from [`create_shim`] for the same `T` and not have been destroyed.
pub(crate) unsafe extern "C" fn destroy_shim<T>(this: *mut c_void) {
    // A panic in Drop is caught and dropped: there is nobody to report it to, and it must not
    // unwind into the host.
    let _ = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        // SAFETY: `this` is a Box<T> leaked by create_shim, destroyed once (caller's guarantee).
        drop(unsafe { Box::from_raw(this.cast::<T>()) });
    }));
}

/// Borrows the module object behind `this`.
///
/// # Safety
///
/// `this` must come from [`create_shim`] for the same `T`, still be alive, and not be
/// borrowed mutably elsewhere.
pub(crate) unsafe fn module_ref<'a, T>(this: *mut c_void) -> &'a T {
    // SAFETY: guaranteed by the caller.
    unsafe { &*this.cast::<T>() }
}

/// Writes `value` to an output pointer, refusing a null one.
///
/// # Safety
///
/// A non-null `out` must be valid for writes.
pub(crate) unsafe fn write_out<V>(out: *mut V, value: V) -> Result<(), CallError> {
    if out.is_null() {
        return Err(CallError::Malformed { message: "the host passed a null output pointer".into() });
    }
    // SAFETY: non-null and valid for writes by the caller's guarantee.
    unsafe { out.write(value) };
    Ok(())
}
