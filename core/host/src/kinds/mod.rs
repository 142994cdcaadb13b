//! Handles of module instances: the host's side of each kind's vtable.
//!
//! A handle implements the kind's trait from `modhost-abi`, so host code uses a loaded module
//! exactly as it would use a Rust type implementing that trait. Calls into the module go
//! through `extern "C"` functions; statuses and error texts come back as [`CallError`]s.

mod anonymous;
mod message;
mod test_module;
mod vm;

use std::ffi::c_void;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

pub use anonymous::AnonymousHandle;
pub use message::{AllocatorHandle, HookHandle, IsolatorHandle, VtableTransport};
use modhost_abi::{Buffer, CallError, Instance, Kind, Status};
pub use test_module::TestModuleHandle;
pub use vm::VmHandle;

/// A handle type the manager can create: one per kind with a host interface.
///
/// This trait is sealed; its implementations are the handles of this module.
pub trait KindHandle: Sized + sealed::Sealed {
    /// The kind this handle serves.
    const KIND: Kind;

    /// Wraps an instance the module's `create` returned.
    #[doc(hidden)]
    fn from_raw(raw: RawInstance) -> Result<Self, String>;
}

pub(crate) mod sealed {
    pub trait Sealed {}
    impl Sealed for super::AnonymousHandle {}
    impl Sealed for super::TestModuleHandle {}
    impl Sealed for super::VmHandle {}
}

/// An instance owned by the host: destroyed through its own vtable when dropped.
#[doc(hidden)]
pub struct RawInstance {
    this: *mut c_void,
    vtable: *const c_void,
    destroy: unsafe extern "C" fn(*mut c_void),
    vtable_size: usize,
    /// The module's message methods speak JSON (its descriptor lacks FLAG_PACKED_MESSAGES).
    json_messages: bool,
    /// Set while a singleton module's instance lives.
    live: Option<Arc<AtomicBool>>,
}

// SAFETY: the ABI requires instances to be movable between threads (Rust modules are `Send`
// by the kind traits' bounds); the handle is not `Sync`, so one instance never sees two
// threads at once.
unsafe impl Send for RawInstance {}

impl RawInstance {
    /// Takes ownership of what `create` returned, after checking the vtable header. `flags`
    /// are the descriptor's.
    ///
    /// # Safety
    ///
    /// `instance` must come from a successful `create` of a verified descriptor, unused so far.
    pub(crate) unsafe fn new(
        instance: Instance,
        flags: u32,
        live: Option<Arc<AtomicBool>>,
    ) -> Result<RawInstance, String> {
        if instance.vtable.is_null() {
            if let Some(live) = live {
                live.store(false, Ordering::Release);
            }
            return Err("create() succeeded but returned no vtable".to_owned());
        }
        // SAFETY: a non-null vtable of a successful create starts with a VtableHeader (ABI):
        // two pointer-sized words, read as integers so that a null `destroy` is seen, not called.
        let [size, destroy] = unsafe { instance.vtable.cast::<[usize; 2]>().read() };
        if destroy == 0 {
            if let Some(live) = live {
                live.store(false, Ordering::Release);
            }
            return Err("create() returned a vtable without a destroy function".to_owned());
        }
        // SAFETY: `destroy` is the non-null function pointer of the header's second field.
        let destroy = unsafe { std::mem::transmute::<usize, unsafe extern "C" fn(*mut c_void)>(destroy) };
        let json_messages = flags & modhost_abi::FLAG_PACKED_MESSAGES == 0;
        Ok(RawInstance {
            this: instance.this,
            vtable: instance.vtable,
            destroy,
            vtable_size: size,
            json_messages,
            live,
        })
    }

    /// The kind's vtable, once its size has been checked against `T`'s and every function
    /// slot found non-null.
    fn vtable<T>(&self, kind: Kind) -> Result<&'static T, String> {
        let vtable = self.vtable_prefix::<T>(kind, size_of::<T>())?;
        // SAFETY: all of `T` is there and checked (vtable_prefix with T's whole size).
        Ok(unsafe { &*vtable })
    }

    /// The first `needed` bytes of the kind's vtable `T` (ABI 1.0's part of a vtable that
    /// later minors appended to), checked as [`RawInstance::vtable`] checks a whole one. Only
    /// those bytes may be read through the pointer; later entries through
    /// [`RawInstance::appended_entry`].
    fn vtable_prefix<T>(&self, kind: Kind, needed: usize) -> Result<*const T, String> {
        if self.vtable_size < needed {
            return Err(format!(
                "its {kind} vtable is {} bytes, smaller than the {needed} bytes of ABI 1.0",
                self.vtable_size
            ));
        }
        // Every entry after `size` is a function pointer; a null one would crash when called.
        let words = needed / size_of::<usize>();
        for slot in 1..words {
            // SAFETY: the vtable is at least `needed` bytes (checked above) of pointer-sized
            // entries, so every slot read is in bounds.
            let entry = unsafe { self.vtable.cast::<usize>().add(slot).read() };
            if entry == 0 {
                return Err(format!("its {kind} vtable has a null function in slot {slot}"));
            }
        }
        Ok(self.vtable.cast())
    }

    /// A copy of the kind's message vtable `T`, of which the module must have at least the
    /// first `oldest` bytes (the vtable as the kind was first published), checked as
    /// [`RawInstance::vtable`] checks a whole one, with the number of bytes the module has.
    /// Entries a later ABI minor appended and the module lacks hold [`missing_method`]; the
    /// caller must not call them (the count says which they are).
    fn message_vtable_copy<T>(&self, kind: Kind, oldest: usize) -> Result<(Box<T>, usize), String> {
        let whole = size_of::<T>();
        let have = self.vtable_size.min(whole);
        self.vtable_prefix::<T>(kind, oldest.max(have - have % size_of::<usize>()))?;
        let stub: modhost_abi::MessageFn = missing_method;
        let mut words = vec![stub as usize; whole / size_of::<usize>()];
        // SAFETY: the module's vtable has at least `have` readable bytes (its declared size,
        // at least `oldest`, checked above), and `words` has room for all of `T`.
        unsafe {
            std::ptr::copy_nonoverlapping(self.vtable.cast::<u8>(), words.as_mut_ptr().cast::<u8>(), have);
        }
        // SAFETY: a message vtable is `size` then pointer-sized function pointers (repr(C)),
        // each word now a checked non-null entry of the module's or `missing_method`; the
        // vector is aligned for `usize`, as `T` is.
        let copy = unsafe { words.as_ptr().cast::<T>().read() };
        Ok((Box::new(copy), have))
    }

    /// The function pointer at byte `offset` of the vtable, as a word, if the module's
    /// vtable reaches that far and the entry is not null: an entry a later ABI minor
    /// appended, which a module built for an earlier one does not have.
    fn appended_entry(&self, offset: usize) -> Option<usize> {
        if self.vtable_size < offset + size_of::<usize>() {
            return None;
        }
        // SAFETY: the module declared `vtable_size` bytes of vtable; the word read lies inside.
        let entry = unsafe { self.vtable.cast::<u8>().add(offset).cast::<usize>().read() };
        (entry != 0).then_some(entry)
    }
}

impl Drop for RawInstance {
    fn drop(&mut self) {
        // SAFETY: the instance is live and destroyed exactly once, here.
        unsafe { (self.destroy)(self.this) };
        if let Some(live) = &self.live {
            live.store(false, Ordering::Release);
        }
    }
}

/// What fills a message vtable's entries that the module, built for an earlier ABI minor,
/// lacks. Never called: the transport answers for such methods itself. Should it be, it
/// reports an error with no text rather than jump to nowhere.
unsafe extern "C" fn missing_method(
    _this: *mut c_void,
    _input: modhost_abi::Bytes,
    _output: *mut Buffer,
    _error: *mut Buffer,
) -> Status {
    Status::ERROR
}

/// Turns a status and its error buffer into a result.
///
/// # Safety
///
/// `error` must have been filled by the module according to the buffer contract (or be empty).
#[inline]
unsafe fn outcome(status: Status, error: Buffer) -> Result<(), CallError> {
    // The common case stays on the caller's side of a call: nothing to decode or release.
    if status == Status::OK && error.ptr.is_null() {
        return Ok(());
    }
    // SAFETY: forwarded from the caller.
    unsafe { failure(status, error) }
}

/// The longest error text kept from a module: a script can raise a string of megabytes, and
/// the host logs every failure.
const ERROR_TEXT: usize = 64 << 10;

/// `text` cut at [`ERROR_TEXT`] bytes (on a character's boundary), saying how much was cut.
fn cut_error(mut text: String) -> String {
    if text.len() <= ERROR_TEXT {
        return text;
    }
    let end = (0..=ERROR_TEXT).rev().find(|&i| text.is_char_boundary(i)).unwrap_or(0);
    let more = text.len() - end;
    text.truncate(end);
    text.push_str(&format!(" ... ({more} more bytes)"));
    text
}

/// The rare path of [`outcome`]: decode and release the error text.
///
/// # Safety
///
/// As for [`outcome`].
#[cold]
unsafe fn failure(status: Status, error: Buffer) -> Result<(), CallError> {
    // SAFETY: forwarded from the caller.
    let message = cut_error(unsafe { error.into_string_lossy() });
    match status {
        Status::OK => Ok(()),
        Status::ERROR => Err(CallError::Failed { message }),
        Status::PANIC => Err(CallError::Panicked { message }),
        Status(other) => Err(CallError::Malformed { message: format!("unknown status {other}: {message}") }),
    }
}
