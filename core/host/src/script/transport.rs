//! Calls into a script: a [`MessageTransport`] over a Vm, so that `Remote<VmTransport>` is a
//! Hook or an Isolator whose methods are script functions of the same names. It also owns the
//! script's versions: the running one, the watcher that prepares the next, and the figures
//! of each.

use std::collections::BTreeSet;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, Weak};
use std::time::{Instant, SystemTime};

use modhost_abi::{Answer, CallError, MessageFn, MessageTransport, Vm};
use serde::Serialize;

use super::reload::{self, Refusal, ReloadEvent, Version, Watcher};
use crate::{CreateError, ModuleManager};

/// Calls, errors and time of one version of a script.
#[derive(Clone, Debug, Default, Serialize)]
pub struct VersionStats {
    /// The version's content hash.
    pub version: String,
    /// Calls it answered or failed.
    pub calls: u64,
    /// Calls that failed.
    pub errors: u64,
    /// Wall time spent in its calls, microseconds.
    pub total_us: f64,
}

/// What a scripted module shows about its versions.
#[derive(Clone, Debug, Default, Serialize)]
pub struct ScriptStatus {
    /// The module.
    pub module: String,
    /// Its script.
    pub script: String,
    /// The running version's content hash.
    pub version: String,
    /// When the running version was loaded (seconds since the Unix epoch).
    pub loaded_at: f64,
    /// Whether the script is watched for changes.
    pub watching: bool,
    /// Reloads installed.
    pub reloads_ok: u64,
    /// Reloads refused (the running version kept).
    pub reloads_failed: u64,
    /// Why the last reload was refused.
    pub last_error: Option<String>,
    /// Offers of the script the adapter refused (allocators).
    pub refused_offers: u64,
    /// Rounds the built-in allocator decided because the script failed (allocators with
    /// `fallback=hierarchical`).
    pub fallback_rounds: u64,
    /// Every version that ran, oldest first.
    pub versions: Vec<VersionStats>,
}

/// A scripted module's status as the transport keeps it: the running version's calls are
/// counted without a lock (only the transport's thread counts them, so a load and a store
/// each), and read beside the rest when a report asks.
#[derive(Default)]
struct Shared {
    status: Mutex<ScriptStatus>,
    calls: AtomicU64,
    errors: AtomicU64,
    nanos: AtomicU64,
}

impl Shared {
    fn add(counter: &AtomicU64, n: u64) {
        counter.store(counter.load(Ordering::Relaxed).wrapping_add(n), Ordering::Relaxed);
    }

    /// The status, with the running version's figures as counted so far.
    fn read(&self) -> ScriptStatus {
        let mut status = self.status.lock().unwrap_or_else(|e| e.into_inner()).clone();
        if let Some(running) = status.versions.last_mut() {
            running.calls += self.calls.load(Ordering::Relaxed);
            running.errors += self.errors.load(Ordering::Relaxed);
            running.total_us += self.nanos.load(Ordering::Relaxed) as f64 / 1e3;
        }
        status
    }
}

/// Every scripted module alive in the process, for reports.
static REGISTRY: Mutex<Vec<Weak<Shared>>> = Mutex::new(Vec::new());

/// The status of every scripted module alive now, by module name.
pub fn statuses() -> Vec<ScriptStatus> {
    let mut registry = REGISTRY.lock().unwrap_or_else(|e| e.into_inner());
    registry.retain(|s| s.strong_count() > 0);
    let mut all: Vec<ScriptStatus> = registry.iter().filter_map(Weak::upgrade).map(|s| s.read()).collect();
    all.sort_by(|a, b| a.module.cmp(&b.module));
    all
}

/// A Vm module seen as the implementation of one kind.
pub struct VmTransport {
    module: String,
    methods: &'static [&'static str],
    version: Version,
    implemented: BTreeSet<&'static str>,
    watcher: Option<Watcher>,
    script: String,
    status: Arc<Shared>,
}

fn seconds(time: SystemTime) -> f64 {
    time.duration_since(SystemTime::UNIX_EPOCH).map(|d| d.as_secs_f64()).unwrap_or(0.0)
}

impl VmTransport {
    /// Creates the Vm module `name` and learns which of `methods` its script defines.
    pub fn new(manager: &ModuleManager, name: &str, methods: &'static [&'static str]) -> Result<Self, CreateError> {
        Self::with_required(manager, name, methods, &[])
    }

    /// Like [`VmTransport::new`], failing unless the script defines every function of
    /// `required`. With `reload=watch` (or the default set by `reload::watch_by_default`),
    /// the script is watched from now on.
    pub fn with_required(
        manager: &ModuleManager,
        name: &str,
        methods: &'static [&'static str],
        required: &[&'static str],
    ) -> Result<Self, CreateError> {
        let factory = manager.factory(name)?;
        let parameter = |key: &str| factory.info().parameters.iter().find(|p| p.key == key).map(|p| p.value.clone());
        let failed = |message: String| CreateError::Failed { name: name.to_owned(), message };
        let watching = reload::watching(parameter("reload").as_deref()).map_err(failed)?;
        let poll = match parameter("reload_poll_ms") {
            None => reload::POLL,
            Some(ms) => std::time::Duration::from_millis(
                ms.parse()
                    .ok()
                    .filter(|ms| *ms > 0)
                    .ok_or_else(|| failed(format!("parameter reload_poll_ms={ms}: expected milliseconds > 0")))?,
            ),
        };
        let script_parameter = parameter("script").map(PathBuf::from);
        let script = script_parameter.clone().unwrap_or_default();
        let baseline = reload::fingerprint(&script);
        let first = reload::load(&factory, &script, required).map_err(|refusal| match refusal {
            Refusal::Create(e) => e,
            Refusal::Missing { script, missing } => {
                CreateError::MissingFunctions { name: name.to_owned(), script, missing }
            }
            Refusal::Invalid(message) => failed(message),
        })?;
        let mut transport = VmTransport {
            module: name.to_owned(),
            methods,
            implemented: first.implemented(methods),
            watcher: (watching && script_parameter.is_some())
                .then(|| Watcher::start(factory.clone(), script.clone(), required.to_vec(), poll, baseline)),
            script: first.info.script.clone(),
            status: Arc::new(Shared {
                status: Mutex::new(ScriptStatus {
                    module: name.to_owned(),
                    script: first.info.script.clone(),
                    watching,
                    version: first.hash.clone(),
                    loaded_at: seconds(first.loaded_at),
                    versions: vec![VersionStats { version: first.hash.clone(), ..Default::default() }],
                    ..Default::default()
                }),
                ..Default::default()
            }),
            version: first,
        };
        REGISTRY.lock().unwrap_or_else(|e| e.into_inner()).push(Arc::downgrade(&transport.status));
        transport.forward_output();
        Ok(transport)
    }

    fn state(&self) -> MutexGuard<'_, ScriptStatus> {
        self.status.status.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn start_version(&mut self, version: Version) {
        let mut status = self.state();
        // The running version's counts become its final figures.
        if let Some(ended) = status.versions.last_mut() {
            ended.calls += self.status.calls.swap(0, Ordering::Relaxed);
            ended.errors += self.status.errors.swap(0, Ordering::Relaxed);
            ended.total_us += self.status.nanos.swap(0, Ordering::Relaxed) as f64 / 1e3;
        }
        status.version = version.hash.clone();
        status.loaded_at = seconds(version.loaded_at);
        status.versions.push(VersionStats { version: version.hash.clone(), ..Default::default() });
        drop(status);
        self.implemented = version.implemented(self.methods);
        self.version = version;
    }

    /// The script's path.
    pub fn script(&self) -> &str {
        &self.script
    }

    /// Whether the running version defines `method`.
    pub fn defines(&self, method: &str) -> bool {
        self.implemented.contains(method) || self.version.defines(method)
    }

    /// The versions and reloads so far.
    pub fn status(&self) -> ScriptStatus {
        self.status.read()
    }

    /// Counts an offer of the script that the adapter refused.
    pub fn count_refused_offer(&self) {
        self.state().refused_offers += 1;
    }

    /// Counts, as an error of the running version, a call whose answer the host could not
    /// use (the script returned, but not what the method must return).
    pub fn count_malformed_answer(&self) {
        Shared::add(&self.status.errors, 1);
    }

    /// Counts a round the fallback decided.
    pub fn count_fallback_round(&self) {
        self.state().fallback_rounds += 1;
    }

    /// What the Vm says about itself now (language, version, functions, heap size).
    pub fn describe(&mut self) -> Result<modhost_abi::VmInfo, CallError> {
        self.version.vm.describe()
    }

    /// Installs a version the watcher prepared, if there is one: `replay` hands the host's
    /// state to it, then the script's own (`export_state` of the running version into
    /// `import_state` of the new one). Any failure keeps the running version.
    pub fn reload_with(&mut self, replay: impl FnOnce(&mut Version) -> Result<(), String>) {
        let Some(offered) = self.watcher.as_ref().and_then(Watcher::take) else { return };
        let result = offered.and_then(|mut next| {
            replay(&mut next).map_err(|e| format!("handing the state over failed: {e}"))?;
            if self.version.defines("export_state") && next.defines("import_state") {
                let nothing = modhost_abi::packed::to_vec(&serde_json::json!({})).expect("{} packs");
                let state = self
                    .version
                    .vm
                    .call_packed("export_state", &nothing)
                    .map_err(|e| format!("export_state failed: {e}"))?;
                next.vm.call_packed("import_state", &state).map_err(|e| format!("import_state failed: {e}"))?;
            }
            Ok(next)
        });
        match result {
            Ok(next) => {
                let previous = {
                    let mut status = self.state();
                    status.reloads_ok += 1;
                    status.version.clone()
                };
                let message = format!("reloaded '{}': version {} (was {previous})", self.script, next.hash);
                self.start_version(next);
                self.forward_output();
                reload::record(ReloadEvent { module: self.module.clone(), ok: true, message });
            }
            Err(error) => {
                let running = {
                    let mut status = self.state();
                    status.reloads_failed += 1;
                    status.last_error = Some(error.clone());
                    status.version.clone()
                };
                let message =
                    format!("reload of '{}' refused, version {} keeps running: {error}", self.script, running);
                reload::record(ReloadEvent { module: self.module.clone(), ok: false, message });
            }
        }
    }

    /// Calls a script function with a message in the [packed value
    /// format](modhost_abi::packed) and returns its answer in the same format. The call is
    /// counted in the running version's figures, and what the script printed is forwarded.
    pub fn call_packed(&mut self, method: &str, request: &[u8]) -> Result<Vec<u8>, CallError> {
        self.call_packed_then(method, request, |answer| Ok(answer.to_vec()))
    }

    /// Like [`VmTransport::call_packed`], handing the answer to `read` where it lies.
    fn call_packed_then<R>(
        &mut self,
        method: &str,
        request: &[u8],
        read: impl FnOnce(&[u8]) -> Result<R, CallError>,
    ) -> Result<R, CallError> {
        let started = Instant::now();
        let answer = self.version.vm.call_packed_then(method, request, read);
        let nanos = u64::try_from(started.elapsed().as_nanos()).unwrap_or(u64::MAX);
        Shared::add(&self.status.calls, 1);
        Shared::add(&self.status.errors, u64::from(answer.is_err()));
        Shared::add(&self.status.nanos, nanos);
        self.forward_output();
        answer
    }

    /// Sends what the script printed to the host's log, tagged with the module.
    fn forward_output(&mut self) {
        match self.version.vm.take_output() {
            Ok(lines) => {
                for line in lines {
                    log::info!("[{}] {line}", self.module);
                }
            }
            Err(e) => log::warn!("[{}] cannot collect the script's output: {e}", self.module),
        }
    }
}

impl<V> MessageTransport<V> for VmTransport {
    fn call(
        &mut self,
        method: &'static str,
        _entry: fn(&V) -> MessageFn,
        request: &[u8],
        response: &mut dyn FnMut(Answer<'_>) -> Result<(), CallError>,
    ) -> Result<(), CallError> {
        // The answer is decoded where it lies; a call that fails and an answer that does not
        // decode are told apart, so that only the second counts as malformed.
        let mut decoded = Ok(());
        self.call_packed_then(method, request, |answer| {
            decoded = response(Answer::lent(answer));
            Ok(())
        })?;
        decoded.map_err(|error| {
            self.count_malformed_answer();
            match error {
                // The decoder knows the method, not the file: name the script here.
                CallError::Malformed { message } => {
                    CallError::Malformed { message: format!("script '{}': {message}", self.script) }
                }
                other => other,
            }
        })
    }

    fn implements(&self, method: &'static str) -> bool {
        self.implemented.contains(method)
    }

    fn before_call(&mut self) {
        self.reload_with(|_| Ok(()));
    }
}
