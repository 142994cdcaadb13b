//! The one interpreter of the process: started once, never finalised (CPython cannot be
//! restarted safely), made able to load C extension modules, and given the bridge helper.

use std::ffi::{CStr, c_void};
use std::sync::OnceLock;

use pyo3::prelude::*;
use pyo3::types::PyModule;

/// The bridge's Python code, compiled into the module `_modhost_bridge`.
const BRIDGE: &CStr = match CStr::from_bytes_with_nul(concat!(include_str!("bridge.py"), "\0").as_bytes()) {
    Ok(code) => code,
    Err(_) => panic!("bridge.py contains a NUL byte"),
};

/// Makes libpython's symbols global.
///
/// The host opens modules with RTLD_LOCAL, so the libpython this library pulled in is
/// local too, and C extension modules of the standard library (`math`, `_json`,
/// `_decimal`) then fail to find `PyFloat_Type` and friends. Re-opening the very same file
/// with RTLD_NOLOAD | RTLD_GLOBAL promotes it without loading anything new.
fn promote_libpython() {
    let mut info = std::mem::MaybeUninit::<libc::Dl_info>::zeroed();
    let symbol = pyo3::ffi::Py_IsInitialized as *const c_void;
    // SAFETY: dladdr only reads the loader's tables; `info` is valid for writes.
    let found = unsafe { libc::dladdr(symbol, info.as_mut_ptr()) } != 0;
    if !found {
        return;
    }
    // SAFETY: dladdr succeeded, so `info` is initialised; dli_fname is a NUL-terminated path
    // owned by the loader.
    let file = unsafe { info.assume_init() }.dli_fname;
    if file.is_null() {
        return;
    }
    // SAFETY: `file` is the path of an object already loaded (RTLD_NOLOAD loads nothing);
    // the handle is kept for the life of the process on purpose.
    unsafe { libc::dlopen(file, libc::RTLD_NOW | libc::RTLD_GLOBAL | libc::RTLD_NOLOAD) };
}

/// The helper module, once the interpreter runs.
pub struct Runtime {
    /// `_modhost_bridge`.
    pub bridge: Py<PyModule>,
    /// `_modhost_bridge.CallTimeout`, raised in a call that overruns.
    pub timeout: Py<PyAny>,
    /// `_modhost_bridge.timeout_ms`, the one-element list CallTimeout's message reads.
    pub timeout_ms: Py<PyAny>,
    /// The value that list holds now (calls are serialised by the interpreter).
    pub shown_timeout_ms: std::sync::atomic::AtomicU64,
    /// `_modhost_bridge.output`, the stand-in for stdout and stderr.
    pub output: Py<PyAny>,
}

/// Starts the interpreter on first use, or says why it cannot.
pub fn runtime() -> Result<&'static Runtime, String> {
    static RUNTIME: OnceLock<Result<Runtime, String>> = OnceLock::new();
    RUNTIME
        .get_or_init(|| {
            promote_libpython();
            crate::memory::install();
            Python::initialize();
            Python::attach(|py| {
                let bridge = PyModule::from_code(py, BRIDGE, c"<modhost bridge>", c"_modhost_bridge")
                    .map_err(|e| format!("cannot start the bridge: {e}"))?;
                let timeout = bridge.getattr("CallTimeout").map_err(|e| e.to_string())?.unbind();
                // A virtualenv's packages are importable when the host runs inside one.
                if let Some(venv) = std::env::var_os("VIRTUAL_ENV") {
                    let site = py.import("site").map_err(|e| e.to_string())?;
                    let version = py.version_info();
                    let dir = std::path::Path::new(&venv)
                        .join(format!("lib/python{}.{}/site-packages", version.major, version.minor));
                    site.call_method1("addsitedir", (dir.display().to_string(),)).map_err(|e| e.to_string())?;
                }
                let timeout_ms = bridge.getattr("timeout_ms").map_err(|e| e.to_string())?.unbind();
                let output = bridge.getattr("output").map_err(|e| e.to_string())?.unbind();
                Ok(Runtime {
                    bridge: bridge.unbind(),
                    timeout,
                    timeout_ms,
                    shown_timeout_ms: std::sync::atomic::AtomicU64::new(0),
                    output,
                })
            })
        })
        .as_ref()
        .map_err(Clone::clone)
}
