//! The shape shared by the kinds whose methods carry messages (Allocator, Hook, Isolator):
//! every method borrows one request struct and returns one response. A request is borrowed
//! (as Mesos's interfaces take `const&`) so that a caller running a chain of hooks, or telling
//! a shadow allocator what it told the active one, builds it once.
//!
//! Each such kind's vtable is `size`, `destroy`, then one [`MessageFn`] per method in the
//! order of its trait; entries are only ever appended. A request that does not decode is
//! answered with [`Status::ERROR`] and a message naming the method, never with a panic.

use std::ffi::c_void;

use serde::Serialize;
use serde::de::DeserializeOwned;

use super::codec::Codec;
use super::write_out;
use crate::buffer::Kept;
use crate::guard::guard;
use crate::{Buffer, Bytes, CallError, Status};

/// A method of a message kind: `input` is the request (packed values, or JSON for a module
/// without [`FLAG_PACKED_MESSAGES`](crate::FLAG_PACKED_MESSAGES)), borrowed for the call; on
/// [`Status::OK`] `output` receives the response, encoded the same way, in a module-owned
/// buffer, otherwise `error` receives the reason.
pub type MessageFn =
    unsafe extern "C" fn(this: *mut c_void, input: Bytes, output: *mut Buffer, error: *mut Buffer) -> Status;

/// Runs one message method of a module: decode, call, encode, all inside the panic guard.
///
/// # Safety
///
/// `this` must be a live `T` made by `create_shim` and not in use elsewhere; `input` must
/// describe bytes that live for the call; `output` and `error` must be valid for writes.
#[inline(always)]
pub(crate) unsafe fn message_call<T, Request, Response, C>(
    method: &'static str,
    this: *mut c_void,
    input: Bytes,
    output: *mut Buffer,
    error: *mut Buffer,
    call: impl FnOnce(&mut T, Request) -> Result<Response, CallError>,
) -> Status
where
    Request: DeserializeOwned,
    C: Codec<Response>,
{
    guard(error, || {
        // SAFETY: the caller guarantees `input` describes live bytes.
        let bytes = unsafe { input.as_slice() };
        let request: Request = crate::packed::from_slice(bytes)
            .map_err(|e| CallError::failed(format!("cannot decode the request of {method}: {e}")))?;
        // SAFETY: `this` is a live, exclusively used T (caller's guarantee).
        let module = unsafe { &mut *this.cast::<T>() };
        let response = call(module, request)?;
        let bytes = C::encode(response)
            .map_err(|e| CallError::failed(format!("cannot encode the response of {method}: {e}")))?;
        // SAFETY: `output` is valid for writes (caller's guarantee).
        unsafe { write_out(output, Buffer::from_vec(bytes)) }
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
            $( $(#[$method_meta:meta])* $method:ident ( $request:ty ) -> $response:ty $(as $codec:ty)?; )*
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

        impl<T: $crate::MessageTransport<$vtable>> $trait for $crate::Remote<T> {
            $(
                fn $method(&mut self, request: &$request) -> Result<$response, $crate::CallError> {
                    self.0.before_call();
                    if !self.0.implements(stringify!($method)) {
                        return <$crate::Defaults as $trait>::$method(&mut $crate::Defaults, request);
                    }
                    $crate::kinds::message::remote_call::<_, _, _, _, $crate::kinds::message::codec_of!($($codec)?)>(
                        &mut self.0, stringify!($method), |vtable: &$vtable| vtable.$method, request,
                    )
                }
            )*
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
                        $crate::kinds::message::message_call::<_, _, _, $crate::kinds::message::codec_of!($($codec)?)>(
                            stringify!($method), this, input, output, error,
                            |module: &mut T, request: $request| -> Result<$response, $crate::CallError> {
                                module.$method(&request)
                            },
                        )
                    }
                }
            )*
        }
    };
}

pub(crate) use message_kind;

/// The codec of a method: the one named after `as`, or packed values.
macro_rules! codec_of {
    () => {
        $crate::kinds::codec::Values
    };
    ($codec:ty) => {
        $codec
    };
}

pub(crate) use codec_of;

/// Carries a message call to whatever implements a kind on the far side: a module's vtable
/// (in the host), or a script (through the host's adapter). [`Remote`] turns any transport
/// into an implementation of the kind's trait, so every caller sees the same trait.
pub trait MessageTransport<V>: Send {
    /// Calls `method` with an encoded `request` and hands the encoded response to `response`
    /// (which decodes it), lent while the far side still holds it or handed over in the
    /// module's own buffer. `entry` picks the method's function out of a vtable, for
    /// transports that have one.
    fn call(
        &mut self,
        method: &'static str,
        entry: fn(&V) -> MessageFn,
        request: &[u8],
        response: &mut dyn FnMut(Answer<'_>) -> Result<(), CallError>,
    ) -> Result<(), CallError>;

    /// Whether the far side implements `method`. When it does not, [`Remote`] answers with
    /// the kind's default (what [`Defaults`](crate::Defaults) does) without calling. A vtable
    /// implements every method; a script may leave methods out.
    fn implements(&self, method: &'static str) -> bool {
        let _ = method;
        true
    }

    /// Runs before every call, with the transport to itself: where a script's transport
    /// installs a reloaded version between two calls.
    fn before_call(&mut self) {}

    /// Whether requests and answers cross as JSON (a module without
    /// [`FLAG_PACKED_MESSAGES`](crate::FLAG_PACKED_MESSAGES)) rather than as
    /// [packed values](crate::packed).
    fn json_messages(&self) -> bool {
        false
    }
}

/// An encoded answer as a transport hands it to be decoded: bytes lent for the decoding, or
/// a module's buffer handed over, which the decoder may keep instead of copying (a round's
/// offers) or release.
pub struct Answer<'a>(AnswerBytes<'a>);

enum AnswerBytes<'a> {
    Lent(&'a [u8]),
    Handed(Kept),
}

impl<'a> Answer<'a> {
    /// Bytes lent for the decoding.
    pub fn lent(bytes: &'a [u8]) -> Self {
        Answer(AnswerBytes::Lent(bytes))
    }

    /// A module's answer buffer, handed over: released when the answer (or what was decoded
    /// from it and kept it) is dropped.
    ///
    /// # Safety
    ///
    /// As for [`Buffer::into_vec`]; and the buffer's `release` may be called from any thread,
    /// as the buffer contract requires.
    pub unsafe fn handed(buffer: Buffer) -> Self {
        // SAFETY: forwarded from the caller.
        Answer(AnswerBytes::Handed(unsafe { Kept::new(buffer) }))
    }

    /// The encoded bytes.
    pub fn bytes(&self) -> &[u8] {
        match &self.0 {
            AnswerBytes::Lent(bytes) => bytes,
            AnswerBytes::Handed(kept) => kept.as_slice(),
        }
    }

    /// The module's buffer, if the answer was handed over in one.
    pub(crate) fn into_kept(self) -> Result<Kept, Self> {
        match self.0 {
            AnswerBytes::Handed(kept) => Ok(kept),
            lent => Err(Answer(lent)),
        }
    }
}

/// Implements a message kind's trait over a [`MessageTransport`]: each method encodes its
/// request, calls the transport, and decodes the response.
#[derive(Debug)]
pub struct Remote<T>(pub T);

thread_local! {
    /// The buffer a thread packs its requests into, from one call to the next.
    static REQUEST: std::cell::Cell<Vec<u8>> = const { std::cell::Cell::new(Vec::new()) };
}

/// The largest request buffer kept for the next call: a round's messages can be megabytes,
/// which a thread should not hold on to.
const KEPT_REQUEST: usize = 64 << 10;

/// One method call through a transport.
pub fn remote_call<V, T, Request, Response, C>(
    transport: &mut T,
    method: &'static str,
    entry: fn(&V) -> MessageFn,
    request: &Request,
) -> Result<Response, CallError>
where
    T: MessageTransport<V> + ?Sized,
    Request: Serialize,
    C: Codec<Response>,
{
    let json = transport.json_messages();
    // The thread's request buffer, taken for the call (a call made during this one, were there
    // any, packs into a new one) and kept for the next unless it grew large.
    let mut bytes = REQUEST.take();
    bytes.clear();
    if json {
        serde_json::to_writer(&mut bytes, request).map_err(|e| e.to_string())
    } else {
        crate::packed::append(request, &mut bytes).map_err(|e| e.to_string())
    }
    .map_err(|e| CallError::Malformed { message: format!("cannot encode the request of {method}: {e}") })?;
    let mut decoded = None;
    let called = transport.call(method, entry, &bytes, &mut |answer| {
        decoded = Some(C::decode_answer(answer, json).map_err(|e| CallError::Malformed {
            message: format!("the answer of {method} is not what it should be: {e}"),
        })?);
        Ok(())
    });
    if bytes.capacity() <= KEPT_REQUEST {
        REQUEST.set(bytes);
    }
    called?;
    decoded.ok_or_else(|| CallError::Malformed { message: format!("{method} gave no answer") })
}
