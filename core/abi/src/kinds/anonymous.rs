//! Anonymous: a module with no callbacks, created when the host starts.

use std::ffi::c_void;
use std::marker::PhantomData;

use super::{Construct, KindGlue, destroy_shim};
use crate::Kind;

/// An Anonymous module lives beside the host and receives no callbacks: all its work happens
/// in `create` (and in threads it starts), and ends when the instance is dropped.
pub trait Anonymous: Send {}

/// The Anonymous vtable: only the common header.
#[repr(C)]
#[derive(Debug)]
pub struct AnonymousVtable {
    /// `size_of::<AnonymousVtable>()` as the module was compiled.
    pub size: usize,
    /// Releases the instance.
    pub destroy: unsafe extern "C" fn(this: *mut c_void),
}

/// Glue between a Rust [`Anonymous`] type and the Anonymous vtable.
pub struct AnonymousGlue<T>(PhantomData<T>);

impl<T: Anonymous + Construct> AnonymousGlue<T> {
    const TABLE: AnonymousVtable = AnonymousVtable { size: size_of::<AnonymousVtable>(), destroy: destroy_shim::<T> };
}

// SAFETY: TABLE is the Anonymous vtable and `destroy` casts `this` to `T`.
unsafe impl<T: Anonymous + Construct> KindGlue for AnonymousGlue<T> {
    type Module = T;
    const KIND: Kind = Kind::Anonymous;
    const VTABLE: *const c_void = (&Self::TABLE as *const AnonymousVtable).cast();
}
