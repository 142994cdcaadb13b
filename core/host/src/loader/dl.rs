//! `dlopen` and `dlsym`: the only place in modhost that calls them.

use std::ffi::{CStr, CString, c_void};
use std::path::Path;

/// An open library. Never closed: modhost keeps every library for the life of the process,
/// and opens with RTLD_NODELETE so that not even a stray `dlclose` could unmap code that a
/// function pointer still refers to.
pub(crate) struct Handle(*mut c_void);

// SAFETY: a dlopen handle is a token that glibc's dlsym accepts from any thread.
unsafe impl Send for Handle {}
// SAFETY: as above; the handle is never mutated.
unsafe impl Sync for Handle {}

/// The text of the last dynamic-loader error on this thread.
fn last_error() -> String {
    // SAFETY: dlerror takes no arguments; its result is null or a NUL-terminated string that
    // stays valid until the next dl* call on this thread, and is copied at once.
    let message = unsafe { libc::dlerror() };
    if message.is_null() {
        "unknown dynamic loader error".to_owned()
    } else {
        // SAFETY: non-null dlerror results are NUL-terminated strings (see above).
        unsafe { CStr::from_ptr(message) }.to_string_lossy().into_owned()
    }
}

/// Opens `path` with RTLD_NOW | RTLD_LOCAL | RTLD_NODELETE (Mesos used RTLD_NOW and the
/// default RTLD_LOCAL).
pub(crate) fn open(path: &Path) -> Result<Handle, String> {
    let c_path =
        CString::new(path.as_os_str().as_encoded_bytes()).map_err(|_| "the path contains a NUL byte".to_owned())?;
    // SAFETY: `c_path` is a valid NUL-terminated string. Running the library's initialisers
    // is the point of loading it; the file was pre-flighted so that mapping it cannot fault.
    let handle = unsafe { libc::dlopen(c_path.as_ptr(), libc::RTLD_NOW | libc::RTLD_LOCAL | libc::RTLD_NODELETE) };
    if handle.is_null() { Err(last_error()) } else { Ok(Handle(handle)) }
}

impl Handle {
    /// The address of `symbol`, or None if the library does not export it.
    pub(crate) fn symbol(&self, symbol: &str) -> Option<*const c_void> {
        let c_symbol = CString::new(symbol).ok()?;
        // SAFETY: the handle came from dlopen and is never closed; the name is NUL-terminated.
        let address = unsafe { libc::dlsym(self.0, c_symbol.as_ptr()) };
        (!address.is_null()).then_some(address.cast_const())
    }
}
