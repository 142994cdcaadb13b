//! `modhost_python`: a Vm module that runs Python scripts in an embedded CPython (pyo3).
//!
//! Parameters: `script` (required), `python_path` (extra import folders, `:`-separated; the
//! script's own folder is always importable), `timeout_ms` per call (default 1000). The
//! interpreter starts once per process and is never finalised; each script is compiled into
//! a fresh module object of its own, so two scripted modules never share globals. Calls take
//! the GIL only for their duration. Exceptions come back with their type, message, the
//! script's file:line and the traceback; what scripts print goes to the host's log.
//!
//! This library calls `dladdr`/`dlopen` once (in `runtime.rs`), only to make the libpython it
//! already loaded global, so that the standard library's C extension modules load.

mod convert;
mod memory;
mod runtime;
mod watchdog;

use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use modhost_abi::{CallError, Construct, Parameters, Vm, VmInfo, declare_module};
use pyo3::prelude::*;
use pyo3::types::PyModule;

use runtime::runtime;
use watchdog::Slot;

/// One Python script, loaded as its own module.
pub struct PyVm {
    script: PathBuf,
    timeout: Duration,
    memory_limit: usize,
    module: Option<Py<PyModule>>,
    slot: Arc<Slot>,
    output: Vec<String>,
}

/// Parameters this module reads, those of the host's adapter (`kind`, `fallback`, `reload`,
/// `reload_poll_ms`) and of the hosts that embed it (`on_error`, the Slurm plugin's); any other
/// is an error. `prelude` is Python source run in the script's module before the script, each
/// time it is loaded.
const KNOWN: [&str; 10] = [
    "script",
    "python_path",
    "timeout_ms",
    "memory_limit",
    "prelude",
    "kind",
    "fallback",
    "reload",
    "reload_poll_ms",
    "on_error",
];

/// `256MiB`, `1GiB`, `512KiB` or a number of bytes (at least 1 MiB).
fn parse_size(value: &str) -> Option<usize> {
    let (number, scale) = [("GiB", 1usize << 30), ("MiB", 1 << 20), ("KiB", 1 << 10)]
        .into_iter()
        .find_map(|(suffix, scale)| value.strip_suffix(suffix).map(|n| (n, scale)))
        .unwrap_or((value, 1));
    number.trim().parse::<usize>().ok()?.checked_mul(scale).filter(|n| *n >= 1 << 20)
}

/// The longest answer a call may give, packed: twice its memory limit (an answer larger than
/// the memory that built it holds the same list many times).
fn answer_limit(memory_limit: usize) -> usize {
    memory_limit.saturating_mul(2)
}

fn failed(message: impl Into<String>) -> CallError {
    CallError::failed(message)
}

/// A Python exception as the bridge describes it (type, message, file:line, traceback).
fn describe(py: Python<'_>, error: &PyErr, script: &str) -> String {
    let Ok(runtime) = runtime() else { return error.to_string() };
    runtime
        .bridge
        .bind(py)
        .call_method1("describe", (error.value(py), script, error.traceback(py)))
        .and_then(|text| text.extract::<String>())
        .unwrap_or_else(|_| error.to_string())
}

impl Construct for PyVm {
    fn create(parameters: Parameters) -> Result<Self, CallError> {
        if let Some(p) = parameters.iter().find(|p| !KNOWN.contains(&p.key.as_str())) {
            return Err(failed(format!("unknown parameter '{}' (known: {})", p.key, KNOWN.join(", "))));
        }
        let script = PathBuf::from(parameters.get("script").ok_or_else(|| failed("parameter 'script' is required"))?);
        let timeout = match parameters.get("timeout_ms") {
            None => Duration::from_millis(1000),
            Some(v) => Duration::from_millis(
                v.parse()
                    .ok()
                    .filter(|ms| *ms > 0)
                    .ok_or_else(|| failed(format!("parameter timeout_ms={v}: expected milliseconds > 0")))?,
            ),
        };
        let memory_limit = match parameters.get("memory_limit") {
            None => 256 << 20,
            Some(v) => parse_size(v)
                .ok_or_else(|| failed(format!("parameter memory_limit={v}: expected a size such as 256MiB")))?,
        };
        let shown = script.display().to_string();
        let code =
            std::fs::read_to_string(&script).map_err(|e| failed(format!("cannot read script '{shown}': {e}")))?;

        let runtime = runtime().map_err(failed)?;
        let slot = Slot::new(shown.clone());
        // Each Vm is its own module: `name` is unique in the process, so globals never mix.
        static NEXT: AtomicU64 = AtomicU64::new(0);
        let name = format!("modhost_script_{}", NEXT.fetch_add(1, Ordering::Relaxed));
        let mut output = Vec::new();
        let module = Python::attach(|py| -> Result<Py<PyModule>, CallError> {
            let bridge = runtime.bridge.bind(py);
            let folder =
                script.parent().map(|d| if d.as_os_str().is_empty() { ".".into() } else { d.display().to_string() });
            let mut paths: Vec<String> =
                parameters.get("python_path").map(|p| p.split(':').map(str::to_owned).collect()).unwrap_or_default();
            paths.extend(folder);
            for path in paths {
                bridge.call_method1("add_path", (path,)).map_err(|e| failed(e.to_string()))?;
            }
            slot.begin(py, timeout);
            memory::begin(memory_limit);
            let loaded =
                bridge.call_method1("load", (code.as_str(), shown.as_str(), name.as_str(), parameters.get("prelude")));
            memory::end();
            slot.end(py);
            output.extend(take_output(py));
            match loaded.and_then(|module| module.cast_into::<PyModule>().map_err(PyErr::from)) {
                Ok(module) => Ok(module.unbind()),
                Err(e) => Err(failed(format!("cannot load '{shown}': {}", describe(py, &e, &shown)))),
            }
        })?;
        Ok(PyVm { script, timeout, memory_limit, module: Some(module), slot, output })
    }
}

/// What scripts printed since the last look (calls are serialised by the GIL, so it is the
/// current call's).
fn take_output(py: Python<'_>) -> Vec<String> {
    let Ok(runtime) = runtime() else { return Vec::new() };
    let output = runtime.output.bind(py);
    // Most calls print nothing: look before calling.
    match output.getattr(pyo3::intern!(py, "parts")).and_then(|parts| parts.len()) {
        Ok(0) => return Vec::new(),
        Ok(_) => {}
        Err(_) => return Vec::new(),
    }
    output.call_method0(pyo3::intern!(py, "take")).and_then(|lines| lines.extract::<Vec<String>>()).unwrap_or_default()
}

impl PyVm {
    fn shown(&self) -> String {
        self.script.display().to_string()
    }
}

/// A call's answer (or why there is none), and the lines the script printed meanwhile.
type CallOutcome = (Result<Vec<u8>, String>, Vec<String>);

impl PyVm {
    /// One call of `function` with `message`, answered in the same `format`.
    fn call_in(&mut self, function: &str, message: &[u8], format: convert::Format) -> Result<Vec<u8>, CallError> {
        let runtime = runtime().map_err(failed)?;
        let module = self.module.as_ref().ok_or_else(|| failed("the module was released"))?;
        let timeout_ms = self.timeout.as_millis() as u64;
        let (answer, printed) = Python::attach(|py| -> Result<CallOutcome, CallError> {
            let f = module
                .bind(py)
                .getattr(convert::string(py, function))
                .map_err(|_| failed(format!("'{}' defines no function '{function}'", self.shown())))?;
            let request = convert::to_python(py, message, format)
                .map_err(|e| failed(format!("cannot pass the message to {function}: {e}")))?;
            // What CallTimeout's message says, set only when it changes.
            if runtime.shown_timeout_ms.swap(timeout_ms, Ordering::Relaxed) != timeout_ms {
                runtime.timeout_ms.bind(py).set_item(0, timeout_ms).map_err(|e| failed(e.to_string()))?;
            }
            // The function is called from here, not through a Python wrapper (a frame and a
            // tuple per call); an exception, the timeout's included, comes back as a PyErr.
            self.slot.begin(py, self.timeout);
            memory::begin(self.memory_limit);
            let result = f.call1((request,));
            memory::end();
            self.slot.end(py);
            let printed = take_output(py);
            let answer = match result {
                Ok(answer) => convert::to_answer(&answer, format, answer_limit(self.memory_limit))
                    .map_err(|e| format!("{function} answered what JSON cannot carry: {e}")),
                Err(e) => Err(describe(py, &e, &self.shown())),
            };
            Ok((answer, printed))
        })?;
        self.output.extend(printed);
        self.output.extend(self.slot.take_notes());
        answer.map_err(failed)
    }
}

impl Vm for PyVm {
    fn call(&mut self, function: &str, message: &[u8]) -> Result<Vec<u8>, CallError> {
        self.call_in(function, message, convert::Format::Json)
    }

    fn call_packed(&mut self, function: &str, message: &[u8]) -> Result<Vec<u8>, CallError> {
        self.call_in(function, message, convert::Format::Packed)
    }

    fn has_function(&mut self, function: &str) -> Result<bool, CallError> {
        let module = self.module.as_ref().ok_or_else(|| failed("the module was released"))?;
        Python::attach(|py| Ok(module.bind(py).getattr(function).map(|f| f.is_callable()).unwrap_or(false)))
    }

    fn describe(&mut self) -> Result<VmInfo, CallError> {
        let runtime = runtime().map_err(failed)?;
        let module = self.module.as_ref().ok_or_else(|| failed("the module was released"))?;
        Python::attach(|py| {
            let functions: Vec<String> = runtime
                .bridge
                .bind(py)
                .call_method1("functions", (module.bind(py),))
                .and_then(|f| f.extract())
                .map_err(|e| failed(e.to_string()))?;
            let version = Python::version_str().split_whitespace().next().unwrap_or("3").to_owned();
            // Which installation runs: the one the build linked (its prefix, from sys).
            let prefix: String = py
                .import("sys")
                .and_then(|sys| sys.getattr("base_prefix"))
                .and_then(|p| p.extract())
                .unwrap_or_default();
            Ok(VmInfo {
                language: "python".into(),
                version: format!("Python {version} ({prefix})"),
                script: self.shown(),
                functions,
                memory_bytes: 0,
            })
        })
    }

    fn take_output(&mut self) -> Result<Vec<String>, CallError> {
        Ok(std::mem::take(&mut self.output))
    }
}

impl Drop for PyVm {
    fn drop(&mut self) {
        // Python objects are released with the GIL held.
        if let Some(module) = self.module.take() {
            Python::attach(|_| drop(module));
        }
    }
}

declare_module! {
    /// Python scripts as modules.
    static org_modhost_python: Vm = PyVm {
        author_name: "modhost",
        author_email: "modhost@example.invalid",
        description: "Python scripts as modules (embedded CPython via pyo3; fresh module per script, per-call timeout).",
    }
}
