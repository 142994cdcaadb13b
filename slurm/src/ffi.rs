//! The entry points the C shim calls, and the reading and writing of Slurm's
//! `job_desc_msg_t` through the field table the shim gives: the crate's unsafe code.

use std::ffi::{CStr, c_char, c_int, c_void};
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::path::PathBuf;
use std::sync::{Mutex, OnceLock};

use crate::plugin::{Field, FieldKind, Outcome, Plugin, Schema, Settings, Value};

/// The contract's version; the shim's `MH_ABI`.
const ABI: u32 = 1;
/// SLURM_ERROR: what a call answers when the plugin itself fails.
const SLURM_ERROR: c_int = -1;

/// `struct mh_field` of the shim.
#[repr(C)]
pub struct RawField {
    name: *const c_char,
    kind: u32,
    width: u32,
    offset: usize,
    writable: u32,
}

/// `struct mh_constant` of the shim.
#[repr(C)]
pub struct RawConstant {
    name: *const c_char,
    value: i64,
}

/// `struct mh_host` of the shim: what Slurm gives the plugin.
#[repr(C)]
pub struct Host {
    abi: u32,
    fields: *const RawField,
    n_fields: usize,
    constants: *const RawConstant,
    n_constants: usize,
    conf_dir: *const c_char,
    /// Slurm's ClusterName (not used yet: the `slurm` table lacks CLUSTER_NAME).
    cluster_name: *const c_char,
    state_dir: *const c_char,
    xstrndup: unsafe extern "C" fn(text: *const c_char, n: usize) -> *mut c_char,
    xfree: unsafe extern "C" fn(item: *mut *mut c_void),
    log: unsafe extern "C" fn(level: c_int, message: *const c_char),
}

/// The plugin as the shim holds it: the field table (offsets into `job_desc_msg_t`), Slurm's
/// allocator, and the plugin behind a lock.
struct Instance {
    raw_fields: Vec<(usize, FieldKind, u32)>,
    xstrndup: unsafe extern "C" fn(*const c_char, usize) -> *mut c_char,
    xfree: unsafe extern "C" fn(*mut *mut c_void),
    plugin: Mutex<Plugin>,
}

type LogFn = unsafe extern "C" fn(c_int, *const c_char);
static LOG: OnceLock<LogFn> = OnceLock::new();

/// Sends the `log` crate's records to slurmctld's log.
struct SlurmLog;

impl log::Log for SlurmLog {
    fn enabled(&self, _: &log::Metadata<'_>) -> bool {
        true
    }

    fn log(&self, record: &log::Record<'_>) {
        let Some(log) = LOG.get() else { return };
        let level = match record.level() {
            log::Level::Error | log::Level::Warn => 0,
            log::Level::Info => 1,
            log::Level::Debug => 2,
            log::Level::Trace => 3,
        };
        let text = record.args().to_string().replace('\0', " ");
        let text = std::ffi::CString::new(text).expect("NULs replaced");
        // SAFETY: `log` is the shim's log_line, which formats the text with "%s".
        unsafe { log(level, text.as_ptr()) };
    }

    fn flush(&self) {}
}

/// A C string the shim owns, as text (`None` when NULL).
///
/// # Safety
///
/// `text` must be NULL or a NUL-terminated string alive for the call.
unsafe fn text(text: *const c_char) -> Option<String> {
    // SAFETY: forwarded from the caller.
    (!text.is_null()).then(|| unsafe { CStr::from_ptr(text) }.to_string_lossy().into_owned())
}

/// Starts the plugin. Returns NULL only when the shim speaks another contract or the plugin
/// panicked at start (the shim then refuses submissions and logs why).
///
/// # Safety
///
/// `host` must point to a valid `struct mh_host` whose tables and strings live for the call,
/// whose offsets are those of `job_desc_msg_t`, and whose functions stay callable for the
/// process's life.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn modhost_slurm_open(host: *const Host) -> *mut c_void {
    let opened = catch_unwind(AssertUnwindSafe(|| {
        // SAFETY: the caller gives a valid host.
        let host = unsafe { &*host };
        let _ = LOG.set(host.log);
        if log::set_logger(&SlurmLog).is_ok() {
            log::set_max_level(log::LevelFilter::Debug);
        }
        if host.abi != ABI {
            log::error!("the shim speaks contract {} and this library {ABI}: install both from one build", host.abi);
            return std::ptr::null_mut();
        }
        let mut schema = Schema::default();
        let mut raw_fields = Vec::new();
        // SAFETY: the caller gives n_fields valid entries at `fields`.
        for raw in unsafe { std::slice::from_raw_parts(host.fields, host.n_fields) } {
            let kind = match (raw.kind, raw.width) {
                (1, _) => FieldKind::Text,
                (2, w @ (1 | 2 | 4 | 8)) => FieldKind::Unsigned(w as u8),
                (3, w @ (1 | 2 | 4 | 8)) => FieldKind::Signed(w as u8),
                (kind, width) => {
                    log::error!("field kind {kind} of width {width} is not known: the shim and library differ");
                    return std::ptr::null_mut();
                }
            };
            // SAFETY: each name is a NUL-terminated static string of the shim.
            let name = unsafe { text(raw.name) }.unwrap_or_default();
            schema.fields.push(Field { name, kind, writable: raw.writable != 0 });
            raw_fields.push((raw.offset, kind, raw.width));
        }
        // SAFETY: the caller gives n_constants valid entries at `constants`.
        for raw in unsafe { std::slice::from_raw_parts(host.constants, host.n_constants) } {
            // SAFETY: as for the fields' names.
            schema.constants.push((unsafe { text(raw.name) }.unwrap_or_default(), raw.value));
        }
        // SAFETY: NULL or the shim's NUL-terminated strings.
        let (conf_dir, state_dir) = unsafe { (text(host.conf_dir), text(host.state_dir)) };
        let settings = Settings {
            conf_dir: PathBuf::from(conf_dir.unwrap_or_else(|| ".".into())),
            state_dir: state_dir.map(PathBuf::from),
        };
        let plugin = Plugin::open(schema, &settings);
        let instance = Instance { raw_fields, xstrndup: host.xstrndup, xfree: host.xfree, plugin: Mutex::new(plugin) };
        Box::into_raw(Box::new(instance)).cast::<c_void>()
    }));
    opened.unwrap_or_else(|panic| {
        log::error!("the plugin panicked at start: {}", panic_text(&*panic));
        std::ptr::null_mut()
    })
}

fn panic_text(panic: &(dyn std::any::Any + Send)) -> String {
    panic
        .downcast_ref::<&str>()
        .map(|s| (*s).to_owned())
        .or_else(|| panic.downcast_ref::<String>().cloned())
        .unwrap_or_default()
}

impl Instance {
    /// The job description's fields, by the schema's order.
    ///
    /// # Safety
    ///
    /// `desc` must point to a live `job_desc_msg_t` laid out as the offsets say.
    unsafe fn read(&self, desc: *const u8) -> Vec<Option<Value>> {
        self.raw_fields
            .iter()
            .map(|&(offset, kind, width)| {
                // SAFETY: the offset lies inside the struct, where a field of this kind and
                // width is (the shim computed both with offsetof and sizeof).
                unsafe {
                    let at = desc.add(offset);
                    match kind {
                        FieldKind::Text => text(at.cast::<*const c_char>().read_unaligned()).map(Value::Text),
                        FieldKind::Unsigned(_) | FieldKind::Signed(_) => {
                            let n = match (kind, width) {
                                (FieldKind::Unsigned(_), 1) => i64::from(at.read()),
                                (FieldKind::Unsigned(_), 2) => i64::from(at.cast::<u16>().read_unaligned()),
                                (FieldKind::Unsigned(_), 4) => i64::from(at.cast::<u32>().read_unaligned()),
                                (FieldKind::Signed(_), 1) => i64::from(at.cast::<i8>().read()),
                                (FieldKind::Signed(_), 2) => i64::from(at.cast::<i16>().read_unaligned()),
                                (FieldKind::Signed(_), 4) => i64::from(at.cast::<i32>().read_unaligned()),
                                _ => at.cast::<i64>().read_unaligned(),
                            };
                            Some(Value::Number(n))
                        }
                    }
                }
            })
            .collect()
    }

    /// Writes the outcome's changes, strings through Slurm's allocator.
    ///
    /// # Safety
    ///
    /// As for [`Instance::read`], and the struct's strings must be Slurm's (`xmalloc`ed).
    unsafe fn write(&self, desc: *mut u8, outcome: &Outcome) {
        for (index, value) in &outcome.changes {
            let (offset, kind, width) = self.raw_fields[*index];
            // SAFETY: as in `read`; the plugin checked that a number fits the width and a
            // text holds no NUL. The old string is Slurm's, freed with its xfree.
            unsafe {
                let at = desc.add(offset);
                match (kind, value) {
                    (FieldKind::Text, text) => {
                        let slot = at.cast::<*mut c_void>();
                        let mut old = slot.read_unaligned();
                        if !old.is_null() {
                            (self.xfree)(&mut old);
                        }
                        let new = match text {
                            Some(Value::Text(t)) => (self.xstrndup)(t.as_ptr().cast(), t.len()).cast(),
                            _ => std::ptr::null_mut(),
                        };
                        slot.write_unaligned(new);
                    }
                    (_, Some(Value::Number(n))) => match width {
                        1 => at.write(*n as u8),
                        2 => at.cast::<u16>().write_unaligned(*n as u16),
                        4 => at.cast::<u32>().write_unaligned(*n as u32),
                        _ => at.cast::<i64>().write_unaligned(*n),
                    },
                    _ => {}
                }
            }
        }
    }

    /// Runs `decide` over the job description and writes what it accepted.
    ///
    /// # Safety
    ///
    /// As for [`Instance::write`].
    unsafe fn call(&self, desc: *mut u8, decide: impl FnOnce(&mut Plugin, &[Option<Value>]) -> Outcome) -> Outcome {
        // SAFETY: forwarded from the caller.
        let values = unsafe { self.read(desc) };
        let mut plugin = self.plugin.lock().unwrap_or_else(|e| e.into_inner());
        let outcome = decide(&mut plugin, &values);
        if outcome.rc == 0 {
            // SAFETY: forwarded from the caller.
            unsafe { self.write(desc, &outcome) };
        }
        outcome
    }
}

/// `job_submit`: runs every module's `slurm_job_submit`.
///
/// # Safety
///
/// `plugin` must come from [`modhost_slurm_open`]; `job_desc` must be slurmctld's live
/// `job_desc_msg_t`; `err_msg` NULL or a place for a string slurmctld will `xfree`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn modhost_slurm_submit(
    plugin: *mut c_void,
    job_desc: *mut c_void,
    submit_uid: u32,
    err_msg: *mut *mut c_char,
) -> c_int {
    // SAFETY: `plugin` is the instance made by open, alive until close.
    let instance = unsafe { &*plugin.cast::<Instance>() };
    let outcome = catch_unwind(AssertUnwindSafe(|| {
        // SAFETY: forwarded from the caller.
        unsafe { instance.call(job_desc.cast(), |p, values| p.submit(values, submit_uid)) }
    }))
    .unwrap_or_else(|panic| {
        log::error!("job_submit panicked: {}", panic_text(&*panic));
        Outcome { rc: SLURM_ERROR, changes: Vec::new(), user_msg: Some("job_submit/modhost failed".into()) }
    });
    if let (Some(message), false) = (&outcome.user_msg, err_msg.is_null()) {
        let message = message.replace('\0', " ");
        // SAFETY: `err_msg` is a valid place; the string comes from Slurm's allocator, as
        // slurmctld frees it with xfree.
        unsafe { *err_msg = (instance.xstrndup)(message.as_ptr().cast(), message.len()) };
    }
    outcome.rc
}

/// `job_modify`: runs every module's `slurm_job_modify`. Slurm 22.05 gives it no message
/// channel: a refusal reaches the user as its code's text.
///
/// # Safety
///
/// As for [`modhost_slurm_submit`].
#[unsafe(no_mangle)]
pub unsafe extern "C" fn modhost_slurm_modify(
    plugin: *mut c_void,
    job_desc: *mut c_void,
    job_id: u32,
    modify_uid: u32,
) -> c_int {
    // SAFETY: `plugin` is the instance made by open, alive until close.
    let instance = unsafe { &*plugin.cast::<Instance>() };
    let outcome = catch_unwind(AssertUnwindSafe(|| {
        // SAFETY: forwarded from the caller.
        unsafe { instance.call(job_desc.cast(), |p, values| p.modify(values, job_id, modify_uid)) }
    }))
    .unwrap_or_else(|panic| {
        log::error!("job_modify panicked: {}", panic_text(&*panic));
        Outcome { rc: SLURM_ERROR, ..Outcome::default() }
    });
    if let Some(message) = &outcome.user_msg {
        if outcome.rc != 0 {
            log::info!("job_modify of job {job_id} refused: {message}");
        }
    }
    outcome.rc
}

/// `fini`: stops the plugin. The library stays mapped.
///
/// # Safety
///
/// `plugin` must come from [`modhost_slurm_open`] and not be used after.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn modhost_slurm_close(plugin: *mut c_void) {
    let _ = catch_unwind(AssertUnwindSafe(|| {
        // SAFETY: made by Box::into_raw in open, given back once.
        drop(unsafe { Box::from_raw(plugin.cast::<Instance>()) });
    }));
}
