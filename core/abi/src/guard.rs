//! Runs module code so that neither a panic nor an error escapes an `extern "C"` function.

use std::any::Any;
use std::panic::{AssertUnwindSafe, catch_unwind};

use crate::{Buffer, CallError, Status};

/// Runs `body`, turning its error or panic into a [`Status`] and an error text in `error`.
///
/// A panic must never unwind out of an `extern "C"` function: it would abort the host.
/// Inlined so that a call that succeeds costs no more than the call itself.
#[inline(always)]
pub(crate) fn guard(error: *mut Buffer, body: impl FnOnce() -> Result<(), CallError>) -> Status {
    match catch_unwind(AssertUnwindSafe(body)) {
        Ok(Ok(())) => Status::OK,
        Ok(Err(e)) => report(error, Status::ERROR, e.message().to_owned()),
        Err(payload) => report(error, Status::PANIC, panic_message(payload.as_ref())),
    }
}

/// Writes a failure's text to the caller's error buffer.
#[cold]
#[inline(never)]
fn report(error: *mut Buffer, status: Status, message: String) -> Status {
    if !error.is_null() {
        // SAFETY: a non-null `error` points to a Buffer the caller owns for this call; writing
        // does not read or drop the old value, which by contract holds nothing.
        unsafe { error.write(Buffer::from_vec(message.into_bytes())) };
    }
    status
}

/// The text of a panic payload (`panic!` carries a `&str` or a `String`).
pub(crate) fn panic_message(payload: &(dyn Any + Send)) -> String {
    if let Some(s) = payload.downcast_ref::<&str>() {
        (*s).to_owned()
    } else if let Some(s) = payload.downcast_ref::<String>() {
        s.clone()
    } else {
        "panic with a non-text payload".to_owned()
    }
}
