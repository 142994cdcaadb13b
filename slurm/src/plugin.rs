//! The plugin without Slurm: a chain of modules run over a job description given as values,
//! answering with a return code, the fields to change and the message for the submitter.

use std::path::{Path, PathBuf};
use std::time::Instant;

use modhost::manifest::{self, Manifest};
use modhost::script::{VmTransport, reload};
use modhost::{Kind, ModuleManager};
use modhost_abi::Parameter;
use serde_json::{Map, Value as Json};

use crate::prelude;
use crate::stats::Stats;

/// The manifest's name, in the directory of slurm.conf (where job_submit/lua finds
/// job_submit.lua).
pub const MANIFEST: &str = "job_submit_modhost.json";

/// What a field of a job description holds.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FieldKind {
    /// A C string (`char *`); unset is NULL.
    Text,
    /// An unsigned integer of this many bytes.
    Unsigned(u8),
    /// A signed integer of this many bytes (`time_t`).
    Signed(u8),
}

/// One field of `job_desc_msg_t` as the shim describes it.
#[derive(Clone, Debug)]
pub struct Field {
    /// Its name, as job_submit/lua names it.
    pub name: String,
    /// What it holds.
    pub kind: FieldKind,
    /// Whether a script may assign it.
    pub writable: bool,
}

/// The fields and constants of the Slurm the plugin runs in.
#[derive(Clone, Debug, Default)]
pub struct Schema {
    /// The fields of a job description.
    pub fields: Vec<Field>,
    /// The `slurm` table's constants, 64-bit unsigned values as their two's complement bits.
    pub constants: Vec<(String, i64)>,
}

impl Schema {
    fn constant(&self, name: &str) -> i64 {
        self.constants.iter().find(|(n, _)| n == name).map_or(-1, |(_, v)| *v)
    }
}

/// A field's value: text, or an integer (64-bit unsigned values as their bits).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Value {
    /// A string field's text.
    Text(String),
    /// A number field's value.
    Number(i64),
}

/// What the chain decided.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Outcome {
    /// 0 accepts; anything else is the Slurm error code of the refusal.
    pub rc: i32,
    /// Fields to write, by index in the schema (`None` unsets a string), when accepted.
    pub changes: Vec<(usize, Option<Value>)>,
    /// The message for the submitter (`log_user`), or why the submission was refused.
    pub user_msg: Option<String>,
}

/// Where the plugin runs.
#[derive(Clone, Debug, Default)]
pub struct Settings {
    /// The directory of slurm.conf: the manifest is read there, and relative paths in it are
    /// taken from there.
    pub conf_dir: PathBuf,
    /// Where the counters are written (`job_submit_modhost.stats.json`); none if `None`.
    pub state_dir: Option<PathBuf>,
}

/// What a module does when its script fails or runs past its deadline.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum OnError {
    /// Refuse the submission, telling the submitter why (the default).
    Refuse,
    /// Accept it unchanged by this module, and go on with the next.
    Accept,
}

/// One module of the chain: running, or not loaded yet (with why, and the script's
/// fingerprint when that was found, so that a fixed save is picked up).
struct Module {
    name: String,
    on_error: OnError,
    script: Option<PathBuf>,
    running: Result<VmTransport, Broken>,
}

struct Broken {
    why: String,
    fingerprint: u64,
}

/// The plugin: the manifest's modules in order, and its counters.
pub struct Plugin {
    schema: Schema,
    manager: ModuleManager,
    modules: Vec<Module>,
    /// Set when the manifest itself could not be used: every call is refused with it.
    broken: Option<String>,
    stats: Stats,
}

const SUBMIT: &str = "modhost_slurm_job_submit";
const MODIFY: &str = "modhost_slurm_job_modify";
const WRAPPERS: &[&str] = &[SUBMIT, MODIFY];

impl Plugin {
    /// Reads `job_submit_modhost.json` from the configuration directory and starts its
    /// modules. Never fails: what cannot start is logged, and decides by its `on_error`
    /// until its script is fixed; a manifest that cannot be used refuses every submission.
    pub fn open(schema: Schema, settings: &Settings) -> Plugin {
        reload::watch_by_default(true);
        let mut plugin = Plugin {
            manager: ModuleManager::new(),
            modules: Vec::new(),
            broken: None,
            stats: Stats::new(settings.state_dir.as_deref()),
            schema,
        };
        let path = settings.conf_dir.join(MANIFEST);
        match plugin.load(&path, &settings.conf_dir) {
            Ok(()) => log::info!(
                "{}: {} module(s): {}",
                path.display(),
                plugin.modules.len(),
                plugin.modules.iter().map(|m| m.name.as_str()).collect::<Vec<_>>().join(", ")
            ),
            Err(why) => {
                log::error!("{why}; every submission is refused until it is fixed and slurmctld reconfigured");
                plugin.broken = Some(why);
            }
        }
        plugin
    }

    fn load(&mut self, path: &Path, conf_dir: &Path) -> Result<(), String> {
        let mut manifest = manifest::from_file(path).map_err(|e| e.to_string())?;
        for warning in &manifest.warnings {
            log::warn!("{}: {warning}", path.display());
        }
        self.prepare(&mut manifest, conf_dir)?;
        self.manager.load(&manifest).map_err(|e| format!("{}: {e}", path.display()))?;
        for library in &manifest.libraries {
            for entry in &library.modules {
                let name = entry.name.clone();
                let parameter = |key: &str| entry.parameters.iter().find(|p| p.key == key).map(|p| p.value.clone());
                let on_error = match parameter("on_error").as_deref() {
                    None | Some("refuse") => OnError::Refuse,
                    Some("accept") => OnError::Accept,
                    Some(other) => {
                        return Err(format!(
                            "{}: module '{name}': parameter on_error={other}: expected refuse or accept",
                            path.display()
                        ));
                    }
                };
                let script = parameter("script").map(PathBuf::from);
                let running = if self.manager.contains(&name, Kind::Vm) {
                    self.start(&name, script.as_deref())
                } else {
                    Err(Broken {
                        why: format!(
                            "module '{name}' is not a Vm module: native job submit modules are not supported yet"
                        ),
                        fingerprint: 0,
                    })
                };
                if let Err(broken) = &running {
                    log::error!("{}", broken.why);
                }
                self.modules.push(Module { name, on_error, script, running });
            }
        }
        Ok(())
    }

    /// Makes the manifest's relative paths relative to the configuration directory, and gives
    /// each script the `slurm` table of its language.
    fn prepare(&self, manifest: &mut Manifest, conf_dir: &Path) -> Result<(), String> {
        let origin = manifest.origin.to_string();
        let absolute = |value: &str| {
            if Path::new(value).is_absolute() { value.to_owned() } else { conf_dir.join(value).display().to_string() }
        };
        for library in &mut manifest.libraries {
            if let Some(file) = &mut library.file {
                *file = absolute(file);
            }
            for module in &mut library.modules {
                let Some(script) = module.parameters.iter_mut().find(|p| p.key == "script") else { continue };
                script.value = absolute(&script.value);
                let text = match Path::new(&script.value).extension().and_then(|e| e.to_str()) {
                    Some("lua") => prelude::lua(&self.schema),
                    Some("py") => prelude::python(&self.schema),
                    _ => {
                        return Err(format!(
                            "{origin}: module '{}': parameter script={}: name the script .lua or .py, so that \
                             it gets the slurm table of its language",
                            module.name, script.value
                        ));
                    }
                };
                if module.parameters.iter().any(|p| p.key == "prelude") {
                    return Err(format!(
                        "{origin}: module '{}': parameter prelude is set by job_submit/modhost",
                        module.name
                    ));
                }
                module.parameters.push(Parameter { key: "prelude".into(), value: text });
            }
        }
        Ok(())
    }

    fn start(&self, name: &str, script: Option<&Path>) -> Result<VmTransport, Broken> {
        let fingerprint = script.map_or(0, reload::fingerprint);
        VmTransport::new(&self.manager, name, WRAPPERS).map_err(|e| Broken {
            why: format!("module '{name}' cannot start, it decides by its on_error until its script is fixed: {e}"),
            fingerprint,
        })
    }

    /// Runs `slurm_job_submit` of every module, in order.
    pub fn submit(&mut self, desc: &[Option<Value>], submit_uid: u32) -> Outcome {
        let extra = [("submit_uid", Json::from(submit_uid))];
        self.run(SUBMIT, desc, &extra)
    }

    /// Runs `slurm_job_modify` of every module, in order. `job_rec` holds the job id only:
    /// slurmctld's own job record is not public.
    pub fn modify(&mut self, desc: &[Option<Value>], job_id: u32, modify_uid: u32) -> Outcome {
        let mut job_rec = Map::new();
        job_rec.insert("job_id".into(), Json::from(job_id));
        let extra = [("job_rec", Json::Object(job_rec)), ("modify_uid", Json::from(modify_uid))];
        self.run(MODIFY, desc, &extra)
    }

    fn run(&mut self, function: &'static str, desc: &[Option<Value>], extra: &[(&str, Json)]) -> Outcome {
        let started = Instant::now();
        let outcome = self.chain(function, desc, extra);
        // The adapter logged each reload as it happened; here they are only counted.
        for event in reload::take_events() {
            if event.ok {
                self.stats.reloads += 1;
            } else {
                self.stats.reloads_failed += 1;
            }
        }
        self.stats.record(started.elapsed());
        outcome
    }

    fn chain(&mut self, function: &'static str, desc: &[Option<Value>], extra: &[(&str, Json)]) -> Outcome {
        if let Some(why) = &self.broken {
            return refusal(self.schema.constant("ERROR"), format!("job_submit/modhost is not working: {why}"));
        }
        let mut current = desc.to_vec();
        let mut messages = Vec::new();
        for index in 0..self.modules.len() {
            self.retry(index);
            let module = &mut self.modules[index];
            let answer = match &mut module.running {
                Ok(transport) => {
                    transport.reload_with(|_| Ok(()));
                    let message = message(&self.schema, &current, extra);
                    transport
                        .call_packed(function, &message)
                        .map_err(|e| e.to_string())
                        .and_then(|answer| Answer::read(&self.schema, &answer))
                }
                Err(broken) => Err(broken.why.clone()),
            };
            let answer = match answer {
                Ok(answer) => answer,
                Err(error) => {
                    self.stats.errors += 1;
                    if error.contains("timeout") {
                        self.stats.timeouts += 1;
                    }
                    log::error!("[{}] {function}: {error}", module.name);
                    match module.on_error {
                        OnError::Accept => continue,
                        OnError::Refuse => {
                            // The submitter gets the first line; the log has the traceback.
                            let first = error.lines().next().unwrap_or_default();
                            let text = format!("job_submit/modhost: module '{}' failed: {first}", module.name);
                            return refusal(self.schema.constant("ERROR"), text);
                        }
                    }
                }
            };
            for (level, line) in &answer.logs {
                match level.as_str() {
                    "error" => log::error!("[{}] {line}", module.name),
                    "info" => log::info!("[{}] {line}", module.name),
                    "verbose" => log::debug!("[{}] {line}", module.name),
                    _ => log::trace!("[{}] {line}", module.name),
                }
            }
            messages.extend(answer.user_msg);
            if answer.rc != 0 {
                self.stats.refusals += 1;
                let text = (!messages.is_empty()).then(|| messages.join("\n"));
                return Outcome { rc: answer.rc, changes: Vec::new(), user_msg: text };
            }
            for (field, value) in answer.changes {
                current[field] = value;
            }
        }
        let changes =
            current.into_iter().enumerate().filter(|(i, value)| desc[*i] != *value).collect::<Vec<(usize, _)>>();
        Outcome { rc: 0, changes, user_msg: (!messages.is_empty()).then(|| messages.join("\n")) }
    }

    /// A module that could not start is tried again once its script changed.
    fn retry(&mut self, index: usize) {
        let module = &self.modules[index];
        let (Err(broken), Some(script)) = (&module.running, &module.script) else { return };
        let now = reload::fingerprint(script);
        if now == broken.fingerprint {
            return;
        }
        let running = self.start(&module.name, Some(script));
        match &running {
            Ok(_) => log::info!("[{}] '{}' loaded: the module decides from now on", module.name, script.display()),
            Err(broken) => log::error!("{}", broken.why),
        }
        self.modules[index].running = running;
    }
}

fn refusal(code: i64, text: String) -> Outcome {
    Outcome { rc: i32::try_from(code).unwrap_or(-1), changes: Vec::new(), user_msg: Some(text) }
}

/// The packed message a wrapper gets: the job description's set fields, an empty partition
/// list, and the call's own values.
fn message(schema: &Schema, desc: &[Option<Value>], extra: &[(&str, Json)]) -> Vec<u8> {
    let mut fields = Map::new();
    for (field, value) in schema.fields.iter().zip(desc) {
        match value {
            Some(Value::Text(text)) => fields.insert(field.name.clone(), Json::from(text.as_str())),
            Some(Value::Number(n)) => fields.insert(field.name.clone(), Json::from(*n)),
            None => None,
        };
    }
    let mut message = Map::new();
    message.insert("job_desc".into(), Json::Object(fields));
    message.insert("part_list".into(), Json::Object(Map::new()));
    for (key, value) in extra {
        message.insert((*key).to_owned(), value.clone());
    }
    modhost_abi::packed::to_vec(&Json::Object(message)).expect("a JSON object packs")
}

/// A wrapper's answer, checked against the schema.
struct Answer {
    rc: i32,
    changes: Vec<(usize, Option<Value>)>,
    user_msg: Option<String>,
    logs: Vec<(String, String)>,
}

impl Answer {
    fn read(schema: &Schema, bytes: &[u8]) -> Result<Answer, String> {
        let value: Json = modhost_abi::packed::from_slice(bytes).map_err(|e| format!("unreadable answer: {e}"))?;
        let rc = value.get("rc").and_then(Json::as_i64).unwrap_or(0);
        let rc = i32::try_from(rc).map_err(|_| format!("return code {rc} is not a Slurm error code"))?;
        let user_msg = value.get("user_msg").and_then(Json::as_str).map(str::to_owned);
        let logs = value
            .get("logs")
            .and_then(Json::as_array)
            .map(|lines| {
                lines
                    .iter()
                    .filter_map(|l| Some((l.get(0)?.as_str()?.to_owned(), l.get(1)?.as_str()?.to_owned())))
                    .collect()
            })
            .unwrap_or_default();
        let mut changes = Vec::new();
        if let Some(map) = value.get("changes").and_then(Json::as_object) {
            for (name, value) in map {
                let Some(index) = schema.fields.iter().position(|f| f.name == *name) else {
                    return Err(format!("job_desc has no field '{name}'"));
                };
                let field = &schema.fields[index];
                if !field.writable {
                    return Err(format!("job_desc.{name} cannot be set"));
                }
                changes.push((index, change(field, value)?));
            }
        }
        Ok(Answer { rc, changes, user_msg, logs })
    }
}

/// A field's new value from a script, refused when it does not fit the field.
fn change(field: &Field, value: &Json) -> Result<Option<Value>, String> {
    let name = &field.name;
    match (field.kind, value) {
        (FieldKind::Text, Json::Bool(false) | Json::Null) => Ok(None),
        (FieldKind::Text, Json::String(s)) if s.is_empty() => Ok(None),
        (FieldKind::Text, Json::String(s)) if s.contains('\0') => Err(format!("job_desc.{name}: text holds a NUL")),
        (FieldKind::Text, Json::String(s)) => Ok(Some(Value::Text(s.clone()))),
        (FieldKind::Unsigned(width) | FieldKind::Signed(width), Json::Number(n)) => {
            let n = n.as_i64().ok_or_else(|| format!("job_desc.{name} = {n}: not an integer"))?;
            let fits = match (field.kind, width) {
                (_, 8) => true,
                (FieldKind::Unsigned(_), w) => n >= 0 && n < 1i64 << (8 * u32::from(w)),
                (_, w) => {
                    let half = 1i64 << (8 * u32::from(w) - 1);
                    (-half..half).contains(&n)
                }
            };
            if fits {
                Ok(Some(Value::Number(n)))
            } else {
                Err(format!("job_desc.{name} = {n}: out of range for a {}-bit field", 8 * u32::from(width)))
            }
        }
        (FieldKind::Text, other) => Err(format!("job_desc.{name} = {other}: expected a string")),
        (_, other) => Err(format!("job_desc.{name} = {other}: expected an integer")),
    }
}
