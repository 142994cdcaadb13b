//! The shape shared by the kinds whose methods carry messages (Allocator, Hook, Isolator):
//! every method takes one request struct and returns one response, both JSON.
//!
//! Each such kind's vtable is `size`, `destroy`, then one [`MessageFn`] per method in the
//! order of its trait; entries are only ever appended. A request that does not decode is
//! answered with [`Status::ERROR`] and a message naming the method, never with a panic.

use std::ffi::c_void;

use serde::Serialize;
use serde::de::DeserializeOwned;

use super::write_out;
use crate::guard::guard;
use crate::{Buffer, Bytes, CallError, Status};

/// A method of a message kind: `input` is the JSON request, borrowed for the call; on
/// [`Status::OK`] `output` receives the JSON response in a module-owned buffer, otherwise
/// `error` receives the reason.
pub type MessageFn =
    unsafe extern "C" fn(this: *mut c_void, input: Bytes, output: *mut Buffer, error: *mut Buffer) -> Status;

/// Runs one message method of a module: decode, call, encode, all inside the panic guard.
///
/// # Safety
///
/// `this` must be a live `T` made by `create_shim` and not in use elsewhere; `input` must
/// describe bytes that live for the call; `output` and `error` must be valid for writes.
#[inline(always)]
pub(crate) unsafe fn message_call<T, Request, Response>(
    method: &'static str,
    this: *mut c_void,
    input: Bytes,
    output: *mut Buffer,
    error: *mut Buffer,
    call: impl FnOnce(&mut T, Request) -> Result<Response, CallError>,
) -> Status
where
    Request: DeserializeOwned,
    Response: Serialize,
{
    guard(error, || {
        // SAFETY: the caller guarantees `input` describes live bytes.
        let bytes = unsafe { input.as_slice() };
        let request: Request = serde_json::from_slice(bytes)
            .map_err(|e| CallError::failed(format!("cannot decode the request of {method}: {e}")))?;
        // SAFETY: `this` is a live, exclusively used T (caller's guarantee).
        let module = unsafe { &mut *this.cast::<T>() };
        let response = call(module, request)?;
        let json = serde_json::to_vec(&response)
            .map_err(|e| CallError::failed(format!("cannot encode the response of {method}: {e}")))?;
        // SAFETY: `output` is valid for writes (caller's guarantee).
        unsafe { write_out(output, Buffer::from_vec(json)) }
    })
}

/// Defines a message kind's vtable, its glue type, and the list of its method names.
macro_rules! message_kind {
    (
        $(#[$vtable_meta:meta])*
        vtable $vtable:ident;
        $(#[$glue_meta:meta])*
        glue $glue:ident;
        trait $trait:ident;
        kind $kind:expr;
        methods $methods:ident {
            $( $(#[$method_meta:meta])* $method:ident ( $request:ty ) -> $response:ty; )*
        }
    ) => {
        $(#[$vtable_meta])*
        #[repr(C)]
        #[derive(Debug)]
        pub struct $vtable {
            /// `size_of` this vtable as the module was compiled.
            pub size: usize,
            /// Releases the instance.
            pub destroy: unsafe extern "C" fn(this: *mut ::std::ffi::c_void),
            $( $(#[$method_meta])* pub $method: $crate::kinds::message::MessageFn, )*
        }

        /// The method names, in vtable order: also the names of the script functions a
        /// scripted module of this kind defines.
        pub const $methods: &[&str] = &[ $( stringify!($method), )* ];

        $(#[$glue_meta])*
        pub struct $glue<T>(::std::marker::PhantomData<T>);

        impl<T: $trait + $crate::Construct> $glue<T> {
            const TABLE: $vtable = $vtable {
                size: size_of::<$vtable>(),
                destroy: $crate::kinds::destroy_shim::<T>,
                $( $method: shims::$method::<T>, )*
            };
        }

        // SAFETY: TABLE is this kind's vtable and every entry casts `this` to `T`.
        unsafe impl<T: $trait + $crate::Construct> $crate::KindGlue for $glue<T> {
            type Module = T;
            const KIND: $crate::Kind = $kind;
            const VTABLE: *const ::std::ffi::c_void = (&Self::TABLE as *const $vtable).cast();
        }

        mod shims {
            use super::*;
            $(
                pub(super) unsafe extern "C" fn $method<T: $trait>(
                    this: *mut ::std::ffi::c_void,
                    input: $crate::Bytes,
                    output: *mut $crate::Buffer,
                    error: *mut $crate::Buffer,
                ) -> $crate::Status {
                    // SAFETY: the host calls vtable entries with a live instance and valid
                    // buffers (vtable contract).
                    unsafe {
                        $crate::kinds::message::message_call(
                            stringify!($method), this, input, output, error,
                            |module: &mut T, request: $request| -> Result<$response, $crate::CallError> {
                                module.$method(request)
                            },
                        )
                    }
                }
            )*
        }
    };
}

pub(crate) use message_kind;
