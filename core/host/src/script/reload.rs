//! Hot reload of scripted modules.
//!
//! A watcher thread per scripted module polls the script's identity (the file it resolves to
//! now, its inode, size and mtime) and those of the other scripts of its folder, so editors
//! that save by renaming, symlink swaps and an edited `require`d or imported file are all
//! seen. A change is acted on once it has been stable for one more poll (debounce). The
//! watcher then builds a complete new version off to the side: a new Vm instance from the new
//! text, its required functions checked, its own `validate()` run if it defines one. Only a
//! version that passed all of that is offered to the adapter, which installs it between two
//! calls (after handing the state over); anything that fails leaves the running version in
//! place and is reported with its file:line. Nothing half-loaded ever runs.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, SystemTime};

use modhost_abi::{Vm, VmInfo};

use crate::ModuleFactory;
use crate::kinds::VmHandle;

/// Whether scripted modules watch their scripts when their parameters do not say
/// (`reload=watch|off`). Off for the library; `modhost simulate` turns it on.
static WATCH_BY_DEFAULT: AtomicBool = AtomicBool::new(false);

/// Sets the default of the `reload` parameter.
pub fn watch_by_default(on: bool) {
    WATCH_BY_DEFAULT.store(on, Ordering::Relaxed);
}

pub(crate) fn watching(parameter: Option<&str>) -> Result<bool, String> {
    match parameter {
        None => Ok(WATCH_BY_DEFAULT.load(Ordering::Relaxed)),
        Some("watch") => Ok(true),
        Some("off") => Ok(false),
        Some(other) => Err(format!("parameter reload={other}: expected watch or off")),
    }
}

/// How often a watcher looks at the files, unless the parameter `reload_poll_ms` says.
pub const POLL: Duration = Duration::from_millis(20);

/// One loaded version of a script.
pub struct Version {
    /// Its interpreter.
    pub vm: VmHandle,
    /// What it defines.
    pub info: VmInfo,
    /// FNV-1a of the script's text, as 16 hex digits.
    pub hash: String,
    /// When it was loaded.
    pub loaded_at: SystemTime,
}

impl Version {
    /// Whether the script defines `function`.
    pub fn defines(&self, function: &str) -> bool {
        self.info.functions.iter().any(|f| f == function)
    }

    /// The functions of `methods` this version defines.
    pub fn implemented(&self, methods: &[&'static str]) -> BTreeSet<&'static str> {
        methods.iter().copied().filter(|m| self.defines(m)).collect()
    }
}

/// A version's identity: FNV-1a over the script and the other scripts of its folder (which it
/// may require or import), so that an edit to either shows as a new version.
fn version_hash(script: &Path) -> String {
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    for path in std::iter::once(script.to_owned()).chain(siblings(script)) {
        for byte in path.display().to_string().bytes().chain(std::fs::read(&path).unwrap_or_default()) {
            hash ^= u64::from(byte);
            hash = hash.wrapping_mul(0x0000_0100_0000_01b3);
        }
    }
    format!("{hash:016x}")
}

/// The other files of the script's folder with its extension, sorted.
fn siblings(script: &Path) -> Vec<PathBuf> {
    let resolved = std::fs::canonicalize(script).unwrap_or_else(|_| script.to_owned());
    let extension = script.extension().map(|e| e.to_owned());
    let mut paths: Vec<PathBuf> = resolved
        .parent()
        .and_then(|folder| std::fs::read_dir(folder).ok())
        .map(|entries| entries.filter_map(|e| e.ok().map(|e| e.path())).collect())
        .unwrap_or_default();
    paths.retain(|p| p.extension() == extension.as_deref() && *p != resolved);
    paths.sort();
    paths
}

/// FNV-1a of a file's bytes, as text.
fn content_hash(path: &Path) -> String {
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    for byte in std::fs::read(path).unwrap_or_default() {
        hash ^= u64::from(byte);
        hash = hash.wrapping_mul(0x0000_0100_0000_01b3);
    }
    format!("{hash:016x}")
}

/// Why a version of a script cannot run.
#[derive(Debug)]
pub enum Refusal {
    /// The Vm could not be created (the script does not load: syntax error, missing file...).
    Create(crate::CreateError),
    /// The script lacks functions its kind requires.
    Missing {
        /// The script.
        script: String,
        /// The functions it lacks.
        missing: Vec<String>,
    },
    /// `validate()` said no, or failed.
    Invalid(String),
}

impl std::fmt::Display for Refusal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Refusal::Create(e) => write!(f, "{e}"),
            Refusal::Missing { script, missing } => write!(f, "'{script}' does not define {}", missing.join(", ")),
            Refusal::Invalid(reason) => f.write_str(reason),
        }
    }
}

/// Loads a version: create, check the required functions, run `validate()`.
pub fn load(factory: &ModuleFactory, script: &Path, required: &[&str]) -> Result<Version, Refusal> {
    let mut vm: VmHandle = factory.create(None).map_err(Refusal::Create)?;
    let info = vm.describe().map_err(|e| Refusal::Invalid(format!("cannot describe the script: {e}")))?;
    let missing: Vec<String> =
        required.iter().filter(|f| !info.functions.iter().any(|g| g == *f)).map(|f| (*f).to_owned()).collect();
    if !missing.is_empty() {
        return Err(Refusal::Missing { script: info.script, missing });
    }
    if info.functions.iter().any(|f| f == "validate") {
        // In JSON, not packed values: the answer is shown as text when it is not `true`.
        let answer = vm.call("validate", b"{}").map_err(|e| Refusal::Invalid(format!("validate() failed: {e}")))?;
        if answer.trim_ascii() != b"true" {
            let answer = String::from_utf8_lossy(&answer).into_owned();
            return Err(Refusal::Invalid(format!("'{}': validate() returned {answer}, not true", info.script)));
        }
    }
    Ok(Version { vm, hash: version_hash(script), info, loaded_at: SystemTime::now() })
}

/// The identity of the files a script depends on: the script as it resolves now (a swapped
/// symlink resolves elsewhere) and its content (metadata alone can miss a same-size save
/// within one timestamp tick), and every file of its folder with the same extension.
pub fn fingerprint(script: &Path) -> u64 {
    let mut text = content_hash(script);
    let resolved = std::fs::canonicalize(script).unwrap_or_else(|_| script.to_owned());
    let describe = |path: &Path, text: &mut String| {
        if let Ok(meta) = std::fs::metadata(path) {
            use std::os::unix::fs::MetadataExt;
            text.push_str(&format!(
                "{}|{}|{}|{}|{};",
                path.display(),
                meta.ino(),
                meta.len(),
                meta.mtime(),
                meta.mtime_nsec()
            ));
        } else {
            text.push_str(&format!("{}|missing;", path.display()));
        }
    };
    describe(&resolved, &mut text);
    let extension = script.extension().map(|e| e.to_owned());
    if let Some(folder) = resolved.parent()
        && let Ok(entries) = std::fs::read_dir(folder)
    {
        let mut paths: Vec<PathBuf> = entries
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| p.extension() == extension.as_deref())
            .collect();
        paths.sort();
        for path in paths {
            describe(&path, &mut text);
        }
    }
    text.bytes().fold(0xcbf2_9ce4_8422_2325u64, |h, b| (h ^ u64::from(b)).wrapping_mul(0x0000_0100_0000_01b3))
}

/// What a watcher found: a version ready to install, or why the change was refused.
pub type Offered = Result<Version, String>;

/// What a watcher hands over. The flag is read before every call of the module, the lock
/// taken only when something waits.
#[derive(Default)]
struct Pending {
    waiting: AtomicBool,
    offered: Mutex<Option<Offered>>,
}

/// Watches one script and prepares new versions.
pub struct Watcher {
    pending: Arc<Pending>,
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl Watcher {
    /// Starts watching `script` for the module `factory` creates.
    ///
    /// `baseline` is the fingerprint taken before the running version was loaded, so that a
    /// change made while it loaded is not missed.
    pub fn start(
        factory: ModuleFactory,
        script: PathBuf,
        required: Vec<&'static str>,
        poll: Duration,
        baseline: u64,
    ) -> Watcher {
        let pending: Arc<Pending> = Arc::default();
        let stop = Arc::new(AtomicBool::new(false));
        let (slot, stopping) = (pending.clone(), stop.clone());
        let thread = std::thread::Builder::new()
            .name(format!("modhost-reload-{}", factory.info().name))
            .spawn(move || {
                let mut seen = baseline;
                while !stopping.load(Ordering::Relaxed) {
                    std::thread::sleep(poll);
                    let now = fingerprint(&script);
                    if now == seen {
                        continue;
                    }
                    // Debounce: act once the files have stayed the same for one more poll.
                    std::thread::sleep(poll);
                    if fingerprint(&script) != now {
                        continue;
                    }
                    seen = now;
                    let offered = load(&factory, &script, &required).map_err(|e| e.to_string());
                    *slot.offered.lock().unwrap_or_else(|e| e.into_inner()) = Some(offered);
                    slot.waiting.store(true, Ordering::Release);
                }
            })
            .expect("cannot start a reload watcher thread");
        Watcher { pending, stop, thread: Some(thread) }
    }

    /// The latest prepared version or refusal, if one is waiting.
    pub fn take(&self) -> Option<Offered> {
        if !self.pending.waiting.load(Ordering::Acquire) {
            return None;
        }
        let mut offered = self.pending.offered.lock().unwrap_or_else(|e| e.into_inner());
        self.pending.waiting.store(false, Ordering::Release);
        offered.take()
    }
}

impl Drop for Watcher {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

/// A reload as it happened, for the host's report.
#[derive(Clone, Debug, serde::Serialize)]
pub struct ReloadEvent {
    /// The module.
    pub module: String,
    /// Whether the new version was installed.
    pub ok: bool,
    /// What happened, in words (with file:line when it failed).
    pub message: String,
}

static EVENTS: Mutex<Vec<ReloadEvent>> = Mutex::new(Vec::new());

pub(crate) fn record(event: ReloadEvent) {
    if event.ok {
        log::info!("[{}] {}", event.module, event.message);
    } else {
        log::warn!("[{}] {}", event.module, event.message);
    }
    EVENTS.lock().unwrap_or_else(|e| e.into_inner()).push(event);
}

/// Reloads since the last call, in order (the simulation puts them in its report).
pub fn take_events() -> Vec<ReloadEvent> {
    std::mem::take(&mut *EVENTS.lock().unwrap_or_else(|e| e.into_inner()))
}
