//! Byte spans that cross the boundary, and the status every entry point returns.

use std::ptr;

/// Bytes borrowed from the caller for the duration of one call.
///
/// The callee must not keep the pointer after it returns.
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct Bytes {
    /// Start of the bytes; may be null only when `len` is 0.
    pub ptr: *const u8,
    /// Number of bytes.
    pub len: usize,
}

impl Bytes {
    /// Borrows `bytes` for a call.
    pub fn new(bytes: &[u8]) -> Self {
        Bytes { ptr: bytes.as_ptr(), len: bytes.len() }
    }

    /// Views the bytes as a slice.
    ///
    /// # Safety
    ///
    /// `ptr` must point to `len` initialised bytes (or `len` must be 0) that stay valid and
    /// unchanged for the lifetime `'a`.
    pub unsafe fn as_slice<'a>(self) -> &'a [u8] {
        if self.len == 0 {
            return &[];
        }
        // SAFETY: the caller guarantees `ptr` and `len` describe live, initialised bytes.
        unsafe { std::slice::from_raw_parts(self.ptr, self.len) }
    }
}

/// Bytes owned by whoever filled them in, released through their own `release` function.
///
/// A module returns results and error texts in a `Buffer` whose `release` is a function of the
/// module itself, so the memory goes back to the allocator that produced it. The receiver
/// copies what it needs and releases the buffer exactly once; [`Buffer::into_vec`] does both.
/// A receiver may also keep the bytes and release them later, from another thread (the host
/// keeps a round's offers this way), so `release` must be callable from any thread. An empty
/// buffer has a null `ptr` and no `release`.
#[repr(C)]
#[derive(Debug)]
pub struct Buffer {
    /// Start of the bytes, or null for an empty buffer.
    pub ptr: *mut u8,
    /// Number of initialised bytes.
    pub len: usize,
    /// Capacity of the allocation, for the owner's `release`.
    pub cap: usize,
    /// Frees the allocation; called with this buffer's `ptr`, `len` and `cap`.
    pub release: Option<unsafe extern "C" fn(ptr: *mut u8, len: usize, cap: usize)>,
}

impl Buffer {
    /// A buffer that holds nothing and owns nothing.
    pub const fn empty() -> Self {
        Buffer { ptr: ptr::null_mut(), len: 0, cap: 0, release: None }
    }

    /// Hands a vector over; its memory is released by this crate's copy of `release_vec`,
    /// which lives in the same library (and so uses the same allocator) as the caller.
    pub fn from_vec(bytes: Vec<u8>) -> Self {
        let mut bytes = std::mem::ManuallyDrop::new(bytes);
        Buffer { ptr: bytes.as_mut_ptr(), len: bytes.len(), cap: bytes.capacity(), release: Some(release_vec) }
    }

    /// Copies the bytes out and releases the buffer through its owner's `release`.
    ///
    /// # Safety
    ///
    /// The buffer must have been filled in according to this crate's contract: `ptr` points to
    /// `len` initialised bytes of an allocation that `release` frees, and it has not been
    /// released yet.
    pub unsafe fn into_vec(self) -> Vec<u8> {
        let bytes = if self.ptr.is_null() || self.len == 0 {
            Vec::new()
        } else {
            // SAFETY: the caller guarantees `ptr`/`len` describe initialised, unreleased bytes.
            unsafe { std::slice::from_raw_parts(self.ptr, self.len) }.to_vec()
        };
        if let (Some(release), false) = (self.release, self.ptr.is_null()) {
            // SAFETY: `release` belongs to the buffer's owner and is called once, with the
            // values the owner filled in.
            unsafe { release(self.ptr, self.len, self.cap) };
        }
        bytes
    }

    /// Lets `read` see the bytes in place, then releases the buffer through its owner's
    /// `release` (saving the copy [`Buffer::into_vec`] makes).
    ///
    /// # Safety
    ///
    /// As for [`Buffer::into_vec`].
    pub unsafe fn read_and_release<R>(self, read: impl FnOnce(&[u8]) -> R) -> R {
        let bytes: &[u8] = if self.ptr.is_null() || self.len == 0 {
            &[]
        } else {
            // SAFETY: the caller guarantees `ptr`/`len` describe initialised, unreleased bytes.
            unsafe { std::slice::from_raw_parts(self.ptr, self.len) }
        };
        let result = read(bytes);
        if let (Some(release), false) = (self.release, self.ptr.is_null()) {
            // SAFETY: `release` belongs to the buffer's owner and is called once, after the
            // last use of `bytes`.
            unsafe { release(self.ptr, self.len, self.cap) };
        }
        result
    }

    /// Like [`Buffer::into_vec`], decoding the bytes as UTF-8 (lossily: an error text with a
    /// broken byte is still worth showing).
    ///
    /// # Safety
    ///
    /// As for [`Buffer::into_vec`].
    pub unsafe fn into_string_lossy(self) -> String {
        // SAFETY: forwarded from the caller.
        let bytes = unsafe { self.into_vec() };
        String::from_utf8(bytes).unwrap_or_else(|e| String::from_utf8_lossy(e.as_bytes()).into())
    }
}

/// A module's buffer the host keeps instead of copying: released through its owner's
/// `release` when dropped. It exists for answers too large to copy cheaply (a round's offers).
pub(crate) struct Kept(Buffer);

impl Kept {
    /// Keeps `buffer`.
    ///
    /// # Safety
    ///
    /// As for [`Buffer::into_vec`]; and `release` may be called from any thread (the
    /// buffer contract: a module's `release` frees memory of its allocator, which any thread
    /// may do).
    pub(crate) unsafe fn new(buffer: Buffer) -> Self {
        Kept(buffer)
    }

    /// The bytes.
    pub(crate) fn as_slice(&self) -> &[u8] {
        if self.0.ptr.is_null() || self.0.len == 0 {
            return &[];
        }
        // SAFETY: `new`'s caller guaranteed `ptr`/`len` describe initialised bytes, which stay
        // unreleased until this value is dropped.
        unsafe { std::slice::from_raw_parts(self.0.ptr, self.0.len) }
    }
}

impl Drop for Kept {
    fn drop(&mut self) {
        if let (Some(release), false) = (self.0.release, self.0.ptr.is_null()) {
            // SAFETY: `release` belongs to the buffer's owner and is called once, here, with
            // the values the owner filled in.
            unsafe { release(self.0.ptr, self.0.len, self.0.cap) };
        }
    }
}

// SAFETY: the bytes are only read, and `release` may be called from any thread (`new`).
unsafe impl Send for Kept {}
// SAFETY: as above; `&Kept` gives out only shared reads of the bytes.
unsafe impl Sync for Kept {}

/// Releases a buffer made by [`Buffer::from_vec`].
///
/// # Safety
///
/// `ptr`, `len` and `cap` must come from a `Vec<u8>` handed over by `Buffer::from_vec` in this
/// same library, and must not have been released before.
unsafe extern "C" fn release_vec(ptr: *mut u8, len: usize, cap: usize) {
    // SAFETY: the arguments are the parts of a leaked Vec<u8> from this library's allocator.
    drop(unsafe { Vec::from_raw_parts(ptr, len, cap) });
}

/// What an entry point reports. Anything but [`Status::OK`] comes with an error text in the
/// call's `error` buffer.
#[repr(transparent)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Status(pub i32);

impl Status {
    /// The call succeeded and its outputs are filled in.
    pub const OK: Status = Status(0);
    /// The module reported a failure; the error buffer says why.
    pub const ERROR: Status = Status(1);
    /// The module panicked; the panic was caught at the boundary and the error buffer holds
    /// its message.
    pub const PANIC: Status = Status(2);
}

/// For tests of code that keeps a module's buffer: a module's buffer holding `bytes`, kept,
/// and the count of its releases.
#[cfg(test)]
pub(crate) fn kept_buffer(bytes: Vec<u8>) -> (Kept, std::sync::Arc<std::sync::atomic::AtomicUsize>) {
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::sync::{Arc, Mutex};
    // The release function has no context: it finds its counter by the buffer's address.
    static COUNTERS: Mutex<Vec<(usize, Arc<AtomicUsize>)>> = Mutex::new(Vec::new());
    unsafe extern "C" fn release(ptr: *mut u8, len: usize, cap: usize) {
        let counters = COUNTERS.lock().unwrap();
        let (_, count) = counters.iter().find(|(at, _)| *at == ptr as usize).expect("a buffer of the test");
        count.fetch_add(1, Ordering::SeqCst);
        // SAFETY: the parts of the vector `kept_buffer` leaked, released once (counted).
        drop(unsafe { Vec::from_raw_parts(ptr, len, cap) });
    }
    let mut bytes = std::mem::ManuallyDrop::new(bytes);
    let count = Arc::new(AtomicUsize::new(0));
    COUNTERS.lock().unwrap().push((bytes.as_mut_ptr() as usize, Arc::clone(&count)));
    let buffer = Buffer { ptr: bytes.as_mut_ptr(), len: bytes.len(), cap: bytes.capacity(), release: Some(release) };
    // SAFETY: a leaked vector, released by its own `release`, which any thread may call.
    (unsafe { Kept::new(buffer) }, count)
}
