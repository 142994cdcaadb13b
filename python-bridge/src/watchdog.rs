//! Per-call deadlines for Python: a call that overruns its `timeout_ms` gets a `CallTimeout`
//! raised in its running frame, and again at every line it runs after that.
//!
//! One watchdog thread per process looks at the running calls every few milliseconds. For an
//! overdue one it takes the GIL (a busy thread hands it over at the interpreter's switch
//! interval), asks CPython to raise the exception in that thread, and sets that thread a
//! trace function that raises it at every line and call: a script that catches the first one
//! (`except BaseException`) in a loop cannot go on. The watchdog does both again at each look
//! until the call ends (a trace set while the thread runs a nested frame covers that frame
//! only), and the call's end takes the trace away. Every change of a call's phase happens with
//! the GIL held, so a late signal can never reach the next call.
//!
//! None of that reaches a call stuck in C code (a regular expression that backtracks, a `sum`
//! over a huge range): it holds the GIL, so the watchdog waits for it like everything else.
//! A second thread, which never takes the GIL, says so: once a call is [`STUCK_AFTER`] past
//! its deadline it writes one line to stderr, naming the script, and keeps the same line for
//! the call's output, which the host logs if the call ever returns.

use std::sync::atomic::{AtomicBool, AtomicU8, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock, Weak};
use std::time::{Duration, Instant};

use std::ffi::c_int;

use pyo3::Python;
use pyo3::ffi;
use pyo3::prelude::PyAnyMethods;

use crate::runtime::runtime;

const IDLE: u8 = 0;
const RUNNING: u8 = 1;
const SIGNALLED: u8 = 2;

/// How often the watchdog looks.
const TICK: Duration = Duration::from_millis(5);

/// How long past its deadline a call must run before it is reported as stuck in C code.
const STUCK_AFTER: Duration = Duration::from_secs(1);

/// One Vm's running call, as the watchdog sees it.
#[derive(Default)]
pub struct Slot {
    /// CPython's identifier of the thread running the call.
    thread: AtomicU64,
    /// That thread's `PyThreadState`, for its trace function.
    state: AtomicU64,
    /// Nanoseconds since the watchdog's epoch when the call must end.
    deadline: AtomicU64,
    /// The call's timeout in milliseconds, for the report of a stuck call.
    timeout_ms: AtomicU64,
    phase: AtomicU8,
    /// The script, as reports name it.
    script: String,
    /// Whether the running call has been reported as stuck.
    reported: AtomicBool,
    /// Reports for the call's output, taken after it.
    notes: Mutex<Vec<String>>,
}

struct Watchdog {
    epoch: Instant,
    slots: Mutex<Vec<Weak<Slot>>>,
}

fn watchdog() -> &'static Watchdog {
    static WATCHDOG: OnceLock<Watchdog> = OnceLock::new();
    WATCHDOG.get_or_init(|| {
        std::thread::Builder::new()
            .name("modhost-python-watchdog".into())
            .spawn(patrol)
            .expect("cannot start the Python watchdog thread");
        std::thread::Builder::new()
            .name("modhost-python-stuck".into())
            .spawn(report_stuck)
            .expect("cannot start the Python stuck-call reporter thread");
        Watchdog { epoch: Instant::now(), slots: Mutex::new(Vec::new()) }
    })
}

/// The running calls, as strong references (the watchdog's list holds weak ones, and drops
/// those of Vms that are gone).
fn running_slots() -> Vec<Arc<Slot>> {
    let mut slots = watchdog().slots.lock().unwrap_or_else(|e| e.into_inner());
    slots.retain(|slot| slot.strong_count() > 0);
    slots.iter().filter_map(Weak::upgrade).filter(|s| s.phase.load(Ordering::Acquire) != IDLE).collect()
}

/// The reporter thread: says once of each call that is far past its deadline that it is stuck
/// in C code. It never takes the GIL, which such a call holds.
fn report_stuck() {
    loop {
        std::thread::sleep(STUCK_AFTER / 10);
        let now = now_ns();
        for slot in running_slots() {
            let deadline = slot.deadline.load(Ordering::Acquire);
            if now < deadline.saturating_add(STUCK_AFTER.as_nanos() as u64) || slot.reported.load(Ordering::Acquire) {
                continue;
            }
            let late = Duration::from_nanos(now - deadline).as_secs_f64();
            let line = format!(
                "a call into '{}' is {late:.1} s past its timeout_ms={} and still running: it is inside C code \
                 that CPython cannot interrupt (a regular expression that backtracks, a long sum or big-number \
                 computation), or waits for the GIL that such a call holds; the host waits until it returns",
                slot.script,
                slot.timeout_ms.load(Ordering::Relaxed)
            );
            // Straight to stderr: the host hears of the call's output only when it returns.
            let _ = std::io::Write::write_all(&mut std::io::stderr(), format!("modhost_python: {line}\n").as_bytes());
            slot.notes.lock().unwrap_or_else(|e| e.into_inner()).push(line);
            // Set after the note is kept: `take_notes` looks at the notes only when it is set.
            slot.reported.store(true, Ordering::Release);
        }
    }
}

fn now_ns() -> u64 {
    watchdog().epoch.elapsed().as_nanos() as u64
}

fn patrol() {
    loop {
        std::thread::sleep(TICK);
        let now = now_ns();
        let overdue: Vec<Arc<Slot>> =
            running_slots().into_iter().filter(|s| now > s.deadline.load(Ordering::Acquire)).collect();
        let Ok(runtime) = runtime() else { continue };
        for slot in overdue {
            Python::attach(|py| {
                if slot.phase.load(Ordering::Acquire) == IDLE {
                    return;
                }
                let (thread, state) = (slot.thread.load(Ordering::Acquire), slot.state.load(Ordering::Acquire));
                // One instance, raised at every line: made here, where no trace runs.
                let Ok(error) = runtime.timeout.bind(py).call0() else { return };
                // SAFETY: the GIL is held; the exception type is a live class object of the
                // bridge module; CPython raises it in that thread's running frame. The thread
                // state is that of the call's thread, alive while its call runs (the phase is
                // not IDLE), and CPython's _PyEval_SetTrace is made to be called for another
                // thread with the GIL held; it keeps its own reference to `error`.
                unsafe {
                    ffi::PyThreadState_SetAsyncExc(thread as _, runtime.timeout.bind(py).as_ptr());
                    _PyEval_SetTrace(state as *mut ffi::PyThreadState, Some(raise_again), error.as_ptr());
                }
                slot.phase.store(SIGNALLED, Ordering::Release);
            });
        }
    }
}

unsafe extern "C" {
    /// CPython's `sys.settrace` for any thread's state (exported by libpython 3.11, used by
    /// its own `threading.settrace_all_threads` from 3.12).
    fn _PyEval_SetTrace(
        state: *mut ffi::PyThreadState,
        trace: Option<ffi::Py_tracefunc>,
        argument: *mut ffi::PyObject,
    ) -> c_int;
}

/// The trace of an overdue call: raises `error` (the call's `CallTimeout`) at every line and
/// call, so no `except` can run on.
///
/// # Safety
///
/// Called by CPython with the GIL held and `error` a live exception instance.
unsafe extern "C" fn raise_again(
    error: *mut ffi::PyObject,
    _frame: *mut ffi::PyFrameObject,
    what: c_int,
    _argument: *mut ffi::PyObject,
) -> c_int {
    if what != ffi::PyTrace_LINE && what != ffi::PyTrace_CALL {
        return 0;
    }
    // SAFETY: forwarded from the caller; PyErr_SetObject takes its own references.
    unsafe { ffi::PyErr_SetObject(ffi::Py_TYPE(error).cast(), error) };
    -1
}

impl Slot {
    /// A slot the watchdog looks at, for the calls into `script`.
    pub fn new(script: String) -> Arc<Slot> {
        let slot = Arc::new(Slot { script, ..Slot::default() });
        watchdog().slots.lock().unwrap_or_else(|e| e.into_inner()).push(Arc::downgrade(&slot));
        slot
    }

    /// Marks a call as running on this thread until `timeout` from now. Called with the GIL.
    pub fn begin(&self, _py: Python<'_>, timeout: Duration) {
        // SAFETY: PyThread_get_thread_ident has no preconditions.
        let thread = unsafe { ffi::PyThread_get_thread_ident() };
        self.thread.store(thread as u64, Ordering::Release);
        // SAFETY: called with the GIL, so this thread has a current state.
        let state = unsafe { ffi::PyThreadState_Get() };
        self.state.store(state as u64, Ordering::Release);
        self.deadline.store(now_ns().saturating_add(timeout.as_nanos() as u64), Ordering::Release);
        self.timeout_ms.store(timeout.as_millis() as u64, Ordering::Relaxed);
        self.reported.store(false, Ordering::Relaxed);
        self.phase.store(RUNNING, Ordering::Release);
    }

    /// What the reporter said of the calls since the last look (almost always nothing).
    pub fn take_notes(&self) -> Vec<String> {
        if !self.reported.load(Ordering::Acquire) {
            return Vec::new();
        }
        std::mem::take(&mut *self.notes.lock().unwrap_or_else(|e| e.into_inner()))
    }

    /// Marks the call as over, withdrawing a signal that arrived too late to be raised.
    /// Called with the GIL.
    pub fn end(&self, _py: Python<'_>) {
        if self.phase.swap(IDLE, Ordering::AcqRel) == SIGNALLED {
            let thread = self.thread.load(Ordering::Acquire);
            // SAFETY: the GIL is held; a null exception clears a pending one, and a null trace
            // function takes this thread's away.
            unsafe {
                ffi::PyThreadState_SetAsyncExc(thread as _, std::ptr::null_mut());
                ffi::PyEval_SetTrace(None, std::ptr::null_mut());
            }
        }
    }
}
