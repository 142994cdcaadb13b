//! Per-call deadlines that cost nothing while calls finish in time.
//!
//! An instruction-count hook slows pure-Lua code about twofold whatever its period, so none
//! is installed while a call runs normally. Nor does a call read the clock: it only numbers
//! itself. One watchdog thread per process looks at the running calls every few
//! milliseconds and times each from when it first saw it running; when one has run longer
//! than its timeout, it installs a count hook of period 1 on that Lua state (`lua_sethook`
//! is documented as safe to call asynchronously), and the hook stops the call with a Lua
//! error. A call is so stopped no sooner than its timeout and at most two ticks later.
//!
//! The hook is set on the state a call runs on; Lua threads do not share it, so coroutines
//! carry their own (see `sandbox::guarded_coroutines`): a count hook every million
//! instructions that stops the coroutine once the call is overdue. This module and
//! `convert.rs` are the unsafe parts of the bridge.

use std::cell::Cell;
use std::sync::atomic::{AtomicU8, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock, Weak};
use std::time::{Duration, Instant};

use mlua::ffi;

const IDLE: u8 = 0;
const RUNNING: u8 = 1;
const ARMING: u8 = 2;
const ARMED: u8 = 3;

/// How often the watchdog looks: the precision of a deadline.
const TICK: Duration = Duration::from_millis(5);

/// One Lua state's call, as the watchdog sees it.
pub struct Slot {
    /// The `lua_State` the calls run on.
    state: usize,
    /// Calls started so far: tells the watchdog one call from the next.
    calls: AtomicU64,
    /// The running call's timeout, nanoseconds.
    timeout_ns: AtomicU64,
    phase: AtomicU8,
    /// The watchdog's own notes: the call it last saw running, and when it first saw it
    /// (nanoseconds since its epoch).
    seen_call: AtomicU64,
    seen_at: AtomicU64,
}

struct Watchdog {
    epoch: Instant,
    slots: Mutex<Vec<Weak<Slot>>>,
}

fn watchdog() -> &'static Watchdog {
    static WATCHDOG: OnceLock<Watchdog> = OnceLock::new();
    WATCHDOG.get_or_init(|| {
        std::thread::Builder::new()
            .name("modhost-lua-watchdog".into())
            .spawn(patrol)
            .expect("cannot start the Lua watchdog thread");
        Watchdog { epoch: Instant::now(), slots: Mutex::new(Vec::new()) }
    })
}

fn now_ns() -> u64 {
    watchdog().epoch.elapsed().as_nanos() as u64
}

/// The watchdog thread: arm the hook of every call past its deadline.
fn patrol() {
    loop {
        std::thread::sleep(TICK);
        let now = now_ns();
        let mut slots = watchdog().slots.lock().unwrap_or_else(|e| e.into_inner());
        slots.retain(|slot| slot.strong_count() > 0);
        for slot in slots.iter().filter_map(Weak::upgrade) {
            if slot.phase.load(Ordering::Acquire) != RUNNING {
                continue;
            }
            let call = slot.calls.load(Ordering::Acquire);
            if slot.seen_call.load(Ordering::Relaxed) != call {
                slot.seen_call.store(call, Ordering::Relaxed);
                slot.seen_at.store(now, Ordering::Relaxed);
                continue;
            }
            let ran = now.saturating_sub(slot.seen_at.load(Ordering::Relaxed));
            if ran <= slot.timeout_ns.load(Ordering::Relaxed)
                || slot.phase.compare_exchange(RUNNING, ARMING, Ordering::AcqRel, Ordering::Acquire).is_err()
            {
                continue;
            }
            if slot.calls.load(Ordering::Acquire) != call {
                // That call ended and the next began since it was looked at: not this one.
                slot.phase.store(RUNNING, Ordering::Release);
                continue;
            }
            // SAFETY: the state is alive (its Slot is, and the Vm drops the Slot before
            // closing the state) and lua_sethook may be called asynchronously.
            unsafe { ffi::lua_sethook(slot.state as *mut ffi::lua_State, Some(stop), ffi::LUA_MASKCOUNT, 1) };
            slot.phase.store(ARMED, Ordering::Release);
        }
    }
}

thread_local! {
    /// The timeout of the call running on this thread, for the error message.
    static TIMEOUT_MS: Cell<u64> = const { Cell::new(0) };
    /// The slot of the call running on this thread (null between calls), for C code that
    /// asks whether it is overdue: [`less_than`].
    static RUNNING_SLOT: Cell<*const Slot> = const { Cell::new(std::ptr::null()) };
}

/// Puts back the slot that ran before a call, however the call ends (a panic included).
struct RestoreRunning(*const Slot);

impl Drop for RestoreRunning {
    fn drop(&mut self) {
        RUNNING_SLOT.with(|running| running.set(self.0));
    }
}

/// [`less_than`] as a Lua function.
pub fn less_than_function(lua: &mlua::Lua) -> mlua::Result<mlua::Function> {
    // SAFETY: less_than is a C function that reads its two arguments and pushes one result.
    unsafe { lua.create_c_function(less_than) }
}

/// `a < b` as a C function, for `table.sort` to call as its comparator (see `bounded.rs`):
/// Lua's own sort without a comparator compares in C, where the hook never runs, and sorting
/// two million numbers takes most of a second. This makes the same comparisons, with Lua's
/// errors, and raises the deadline's error once the running call is overdue.
///
/// # Safety
///
/// Called by Lua as a C function, with two arguments.
unsafe extern "C-unwind" fn less_than(state: *mut ffi::lua_State) -> std::ffi::c_int {
    let running = RUNNING_SLOT.with(Cell::get);
    // SAFETY: a pointer that is not null is the slot `Slot::guard` set for the call running
    // now, and restores on leaving; the guard borrows that slot throughout.
    let overdue = !running.is_null() && unsafe { &*running }.overdue();
    // SAFETY: Lua passed two values; lua_compare may raise Lua's error for values that do
    // not compare, and luaL_error raises the deadline's; no frame here owns anything to drop.
    unsafe {
        if overdue {
            return stop_with_error(state);
        }
        let less = ffi::lua_compare(state, 1, 2, ffi::LUA_OPLT);
        ffi::lua_pushboolean(state, less);
    }
    1
}

/// The hook installed on an overrunning call: raise a Lua error, on every instruction the
/// call runs from now on.
///
/// The hook stays until the call has returned ([`Slot::guard`] removes it): a script that
/// catches the error with `pcall` or `xpcall` gets it again at its next instruction, so no
/// level of protected calls can keep an overdue call running.
///
/// # Safety
///
/// Called by Lua, on the thread of the call, with a valid state.
unsafe extern "C-unwind" fn stop(state: *mut ffi::lua_State, _: *mut ffi::lua_Debug) {
    // SAFETY: `state` is the running state; raising an error from a hook is what the Lua
    // manual allows.
    unsafe { stop_with_error(state) };
}

/// Raises the deadline's error.
///
/// # Safety
///
/// `state` must be the running state, in a hook or a C function; luaL_error does not return
/// (it jumps to the innermost protected call), so the caller's frame must own nothing that
/// needs dropping.
unsafe fn stop_with_error(state: *mut ffi::lua_State) -> std::ffi::c_int {
    let ms = TIMEOUT_MS.with(Cell::get) as std::ffi::c_long;
    // The error names the script's line that was running, as Lua's own errors do. luaL_error
    // names the caller of the running function, which for a hook is the function the hook
    // interrupted's caller (the host, for a loop in `allocate` itself: no line at all), so
    // the line is found here: the innermost function on the stack that has one.
    // SAFETY: forwarded from the caller; `debug` is plain data (pointers and numbers) that
    // lua_getstack and lua_getinfo fill, valid zeroed; luaL_where pushes "" for a level with
    // no line or past the stack.
    unsafe {
        let mut debug: ffi::lua_Debug = std::mem::zeroed();
        let mut level = 0;
        while ffi::lua_getstack(state, level, &mut debug) != 0 {
            ffi::lua_getinfo(state, c"l".as_ptr(), &mut debug);
            if debug.currentline > 0 {
                break;
            }
            level += 1;
        }
        ffi::luaL_where(state, level);
        ffi::lua_pushfstring(state, c"timeout: the call ran longer than timeout_ms=%d".as_ptr(), ms);
        ffi::lua_concat(state, 2);
        ffi::lua_error(state)
    }
}

impl Slot {
    /// Whether the watchdog has found the call running now past its timeout (for the
    /// coroutine hook).
    pub fn overdue(&self) -> bool {
        self.phase.load(Ordering::Acquire) >= ARMING
    }

    /// Registers the calls of the state `state` with the watchdog.
    pub fn new(state: *mut ffi::lua_State) -> Arc<Slot> {
        let slot = Arc::new(Slot {
            state: state as usize,
            calls: AtomicU64::new(0),
            timeout_ns: AtomicU64::new(0),
            phase: AtomicU8::new(IDLE),
            seen_call: AtomicU64::new(0),
            seen_at: AtomicU64::new(0),
        });
        watchdog().slots.lock().unwrap_or_else(|e| e.into_inner()).push(Arc::downgrade(&slot));
        slot
    }

    /// Runs `call` with a deadline of `timeout`.
    pub fn guard<R>(&self, timeout: Duration, call: impl FnOnce() -> R) -> R {
        TIMEOUT_MS.with(|ms| ms.set(timeout.as_millis() as u64));
        self.timeout_ns.store(u64::try_from(timeout.as_nanos()).unwrap_or(u64::MAX), Ordering::Relaxed);
        // Only this thread starts calls on this state, so a load and a store number it.
        self.calls.store(self.calls.load(Ordering::Relaxed) + 1, Ordering::Relaxed);
        self.phase.store(RUNNING, Ordering::Release);
        let restore = RestoreRunning(RUNNING_SLOT.with(|running| running.replace(self)));
        let result = call();
        drop(restore);
        if self.phase.compare_exchange(RUNNING, IDLE, Ordering::AcqRel, Ordering::Acquire).is_err() {
            // The watchdog armed (or is arming) the hook; wait until it is done, then make
            // sure the hook is gone before the next call.
            while self.phase.load(Ordering::Acquire) == ARMING {
                std::hint::spin_loop();
            }
            // SAFETY: no Lua code runs on this state now (the call returned), so removing
            // the hook cannot race with it.
            unsafe { ffi::lua_sethook(self.state as *mut ffi::lua_State, None, 0, 0) };
            self.phase.store(IDLE, Ordering::Release);
        }
        result
    }
}
