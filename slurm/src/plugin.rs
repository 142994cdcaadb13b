//! The plugin without Slurm: a chain of modules run over a job description given as values,
//! answering with a return code, the fields to change and the message for the submitter.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Instant;

use modhost::manifest::{self, Manifest};
use modhost::script::{VmTransport, reload};
use modhost::{Kind, ModuleManager};
use modhost_abi::Parameter;
use modhost_abi::packed::{self, Item, Writer};
use serde_json::{Map, Value as Json};

use crate::prelude;
use crate::shadow::{Decision, Shadows};
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

    /// A return code as a script names it (`SUCCESS`, `ERROR`, an `ESLURM_*`), or its number.
    pub(crate) fn code_name(&self, rc: i32) -> String {
        let named = |prefix: &str| {
            self.constants.iter().find(|(n, v)| n.starts_with(prefix) && *v == i64::from(rc)).map(|(n, _)| n.clone())
        };
        ["SUCCESS", "ERROR", "ESLURM_"].iter().find_map(|p| named(p)).unwrap_or_else(|| rc.to_string())
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

/// One module of the chain (or a shadow): running, or not loaded yet (with why, and the
/// script's fingerprint when that was found, so that a fixed save is picked up).
pub(crate) struct Module {
    pub(crate) name: String,
    on_error: OnError,
    script: Option<PathBuf>,
    running: Result<VmTransport, Broken>,
}

struct Broken {
    why: String,
    fingerprint: u64,
}

impl Module {
    fn new(manager: &ModuleManager, name: String, on_error: OnError, script: Option<PathBuf>) -> Module {
        let running = if manager.contains(&name, Kind::Vm) {
            start(manager, &name, script.as_deref())
        } else {
            Err(Broken {
                why: format!("module '{name}' is not a Vm module: native job submit modules are not supported yet"),
                fingerprint: 0,
            })
        };
        if let Err(broken) = &running {
            log::error!("{}", broken.why);
        }
        Module { name, on_error, script, running }
    }

    /// A module that could not start is tried again once its script changed.
    pub(crate) fn retry(&mut self, manager: &ModuleManager) {
        let (Err(broken), Some(script)) = (&self.running, &self.script) else { return };
        if reload::fingerprint(script) == broken.fingerprint {
            return;
        }
        self.running = start(manager, &self.name, Some(script));
        match &self.running {
            Ok(_) => log::info!("[{}] '{}' loaded: the module decides from now on", self.name, script.display()),
            Err(broken) => log::error!("{}", broken.why),
        }
    }

    /// Runs a wrapper of the running version (a saved change comes in first): its answer,
    /// checked against the schema, or why there is none.
    pub(crate) fn call(&mut self, schema: &Schema, function: &str, message: &[u8]) -> Result<Answer, String> {
        match &mut self.running {
            Ok(transport) => {
                transport.reload_with(|_| Ok(()));
                transport
                    .call_packed(function, message)
                    .map_err(|e| e.to_string())
                    .and_then(|answer| Answer::read(schema, &answer))
            }
            Err(broken) => Err(broken.why.clone()),
        }
    }
}

fn start(manager: &ModuleManager, name: &str, script: Option<&Path>) -> Result<VmTransport, Broken> {
    let fingerprint = script.map_or(0, reload::fingerprint);
    VmTransport::new(manager, name, WRAPPERS).map_err(|e| Broken {
        why: format!("module '{name}' cannot start, it decides by its on_error until its script is fixed: {e}"),
        fingerprint,
    })
}

/// The plugin: the manifest's modules in order, the shadows beside them, and its counters.
pub struct Plugin {
    schema: Schema,
    manager: Arc<ModuleManager>,
    modules: Vec<Module>,
    /// Candidates that see what a module of the chain sees, on a thread of their own.
    shadows: Option<Shadows>,
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
            manager: Arc::new(ModuleManager::new()),
            modules: Vec::new(),
            shadows: None,
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
        let shadow_of = self.prepare(&mut manifest, conf_dir)?;
        self.manager.load(&manifest).map_err(|e| format!("{}: {e}", path.display()))?;
        // Each entry, checked before any module starts: a manifest that cannot be used starts
        // nothing.
        let mut entries = Vec::new();
        for library in &manifest.libraries {
            for entry in &library.modules {
                let name = entry.name.clone();
                let parameter = |key: &str| entry.parameters.iter().find(|p| p.key == key).map(|p| p.value.clone());
                let bad = |key: &str, value: &str, why: &str| {
                    format!("{}: module '{name}': parameter {key}={value}: {why}", path.display())
                };
                let on_error = match parameter("on_error").as_deref() {
                    None | Some("refuse") => OnError::Refuse,
                    Some("accept") => OnError::Accept,
                    Some(other) => return Err(bad("on_error", other, "expected refuse or accept")),
                };
                let shadow_of = shadow_of.get(&name).cloned();
                if let (Some(_), Some(on_error)) = (&shadow_of, parameter("on_error")) {
                    return Err(bad("on_error", &on_error, "a shadow decides nothing, so it has no on_error"));
                }
                entries.push((name, on_error, parameter("script").map(PathBuf::from), shadow_of));
            }
        }
        let chain: Vec<&str> = entries.iter().filter(|e| e.3.is_none()).map(|(name, ..)| name.as_str()).collect();
        let mut targets = Vec::new();
        for (name, _, _, shadow_of) in &entries {
            let Some(target) = shadow_of else { continue };
            let index = chain.iter().position(|n| n == target).ok_or_else(|| {
                format!(
                    "{}: module '{name}': parameter shadow_of={target}: no module of the chain has that name \
                     (the chain: {})",
                    path.display(),
                    chain.join(", ")
                )
            })?;
            targets.push(index);
        }
        let mut shadows = Vec::new();
        for (name, on_error, script, shadow_of) in entries {
            let module = Module::new(&self.manager, name, on_error, script);
            match shadow_of {
                None => self.modules.push(module),
                Some(_) => shadows.push(module),
            }
        }
        if !shadows.is_empty() {
            let named: Vec<String> =
                shadows.iter().zip(&targets).map(|(m, t)| format!("{} of {}", m.name, self.modules[*t].name)).collect();
            log::info!("{}: {} shadow(s): {}", path.display(), named.len(), named.join(", "));
            let pairs = shadows.into_iter().zip(targets).collect();
            self.shadows = Some(Shadows::start(self.schema.clone(), Arc::clone(&self.manager), pairs));
            self.stats.shadow = self.shadows.as_ref().map(Shadows::counters);
        }
        Ok(())
    }

    /// Makes the manifest's relative paths relative to the configuration directory, gives
    /// each script the `slurm` table of its language, and takes out the plugin's own
    /// parameter `shadow_of` (the modules' bridges do not know it): by module name.
    fn prepare(&self, manifest: &mut Manifest, conf_dir: &Path) -> Result<BTreeMap<String, String>, String> {
        let mut shadow_of = BTreeMap::new();
        let origin = manifest.origin.to_string();
        let absolute = |value: &str| {
            if Path::new(value).is_absolute() { value.to_owned() } else { conf_dir.join(value).display().to_string() }
        };
        for library in &mut manifest.libraries {
            if let Some(file) = &mut library.file {
                *file = absolute(file);
            }
            for module in &mut library.modules {
                if let Some(at) = module.parameters.iter().position(|p| p.key == "shadow_of") {
                    shadow_of.insert(module.name.clone(), module.parameters.remove(at).value);
                }
                let Some(script) = module.parameters.iter_mut().find(|p| p.key == "script") else { continue };
                script.value = absolute(&script.value);
                let lua = Path::new(&script.value).extension().is_some_and(|e| e == "lua");
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
                // A Lua script reads a job description as a view, a field when it asks for
                // it, rather than as a table of every field built for each call (the manifest
                // may still say messages=tables).
                if lua && !module.parameters.iter().any(|p| p.key == "messages") {
                    module.parameters.push(Parameter { key: "messages".into(), value: "views".into() });
                }
            }
        }
        Ok(shadow_of)
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
        let label = self.shadows.as_ref().map(|_| label(&self.schema, desc, extra));
        let mut current = Current { desc, changes: BTreeMap::new() };
        let mut messages = Vec::new();
        for index in 0..self.modules.len() {
            let module = &mut self.modules[index];
            module.retry(&self.manager);
            let message = message(&self.schema, &current, extra);
            let answer = module.call(&self.schema, function, &message);
            if let (Some(shadows), Some(label)) = (&self.shadows, &label) {
                if shadows.watch(index) {
                    let input = current.to_vec();
                    let decision = answer.as_ref().map(|a| Decision::of(a, &input)).map_err(Clone::clone);
                    shadows.send(index, function, label, input, message, decision);
                }
            }
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
            answer.log(&module.name);
            messages.extend(answer.user_msg);
            if answer.rc != 0 {
                self.stats.refusals += 1;
                let text = (!messages.is_empty()).then(|| messages.join("\n"));
                return Outcome { rc: answer.rc, changes: Vec::new(), user_msg: text };
            }
            current.changes.extend(answer.changes);
        }
        // What differs from the description slurmctld gave, in field order.
        let changes = current.changes.into_iter().filter(|(field, value)| desc[*field] != *value).collect();
        Outcome { rc: 0, changes, user_msg: (!messages.is_empty()).then(|| messages.join("\n")) }
    }
}

/// A job description as the next module sees it: slurmctld's, with the changes made so far
/// (a field a module set back to slurmctld's value included: the end leaves those out).
struct Current<'a> {
    desc: &'a [Option<Value>],
    changes: BTreeMap<usize, Option<Value>>,
}

impl Current<'_> {
    fn get(&self, field: usize) -> &Option<Value> {
        self.changes.get(&field).unwrap_or(&self.desc[field])
    }

    fn to_vec(&self) -> Vec<Option<Value>> {
        (0..self.desc.len()).map(|field| self.get(field).clone()).collect()
    }
}

/// How a shadow's log names a call: the job's name and submitter, or the job id and who
/// updates it.
fn label(schema: &Schema, desc: &[Option<Value>], extra: &[(&str, Json)]) -> String {
    let of = |key: &str| extra.iter().find(|(k, _)| *k == key).map(|(_, v)| v.clone());
    if let (Some(job_rec), Some(uid)) = (of("job_rec"), of("modify_uid")) {
        return format!("the update of job {} by uid {uid}", job_rec["job_id"]);
    }
    let name = schema.fields.iter().position(|f| f.name == "name").and_then(|i| desc.get(i).cloned().flatten());
    let name = match name {
        Some(Value::Text(name)) => format!("'{name}'"),
        _ => "(no name)".to_owned(),
    };
    format!("job {name} from uid {}", of("submit_uid").unwrap_or_default())
}

fn refusal(code: i64, text: String) -> Outcome {
    Outcome { rc: i32::try_from(code).unwrap_or(-1), changes: Vec::new(), user_msg: Some(text) }
}

/// The packed message a wrapper gets: the call's own values, then `fields`, the job
/// description as a list in the schema's order (`null` for an unset text): no key to make
/// for each field, and last, so that no key lookup walks it. The preludes read a field
/// through its place, and give the script an empty partition list.
fn message(schema: &Schema, current: &Current<'_>, extra: &[(&str, Json)]) -> Vec<u8> {
    let mut out = Vec::with_capacity(2048);
    let mut writer = Writer::new(&mut out);
    let packing = "a message of strings without NUL, numbers and small objects packs";
    let top = writer.open_object();
    for (key, value) in extra {
        writer.key(key).expect(packing);
        writer.walked_values(&modhost_abi::packed::to_vec(value).expect(packing));
    }
    writer.key("fields").expect(packing);
    let fields = writer.open_list();
    for index in 0..schema.fields.len() {
        match current.get(index) {
            Some(Value::Number(n)) => writer.integer(*n),
            Some(Value::Text(text)) => writer.string(text).expect(packing),
            None => writer.null(),
        }
    }
    writer.close(fields, schema.fields.len()).expect(packing);
    writer.close(top, 1 + extra.len()).expect(packing);
    out
}

/// A wrapper's answer, checked against the schema.
pub(crate) struct Answer {
    pub(crate) rc: i32,
    pub(crate) changes: Vec<(usize, Option<Value>)>,
    pub(crate) user_msg: Option<String>,
    logs: Vec<(String, String)>,
}

impl Answer {
    /// Writes what the script logged to slurmctld's log, each line tagged with `tag`.
    pub(crate) fn log(&self, tag: &str) {
        for (level, line) in &self.logs {
            match level.as_str() {
                "error" => log::error!("[{tag}] {line}"),
                "info" => log::info!("[{tag}] {line}"),
                "verbose" => log::debug!("[{tag}] {line}"),
                _ => log::trace!("[{tag}] {line}"),
            }
        }
    }

    /// Reads the answer in place, key by key: `rc`, `changes`, `user_msg` and `logs`; other
    /// keys are ignored.
    fn read(schema: &Schema, bytes: &[u8]) -> Result<Answer, String> {
        let unreadable = |e: packed::Error| format!("unreadable answer: {e}");
        let mut answer = Answer { rc: 0, changes: Vec::new(), user_msg: None, logs: Vec::new() };
        for (key, at) in entries(bytes, 0).map_err(unreadable)? {
            let item = packed::read(bytes, at).map_err(unreadable)?;
            match key {
                b"rc" => {
                    let rc = match item {
                        Item::Int(rc) => rc,
                        Item::Null => 0,
                        _ => return Err("the return code is not an integer".into()),
                    };
                    answer.rc = i32::try_from(rc).map_err(|_| format!("return code {rc} is not a Slurm error code"))?;
                }
                b"user_msg" => {
                    if let Item::Str(text) = item {
                        answer.user_msg = Some(String::from_utf8_lossy(text).into_owned());
                    }
                }
                b"logs" => {
                    let Item::List { count, first } = item else { continue };
                    let mut at = first;
                    for _ in 0..count {
                        if let Item::List { count: 2, first: level } = packed::read(bytes, at).map_err(unreadable)? {
                            let text_at = packed::skip(bytes, level).map_err(unreadable)?;
                            let text = |at| match packed::read(bytes, at) {
                                Ok(Item::Str(text)) => Some(String::from_utf8_lossy(text).into_owned()),
                                _ => None,
                            };
                            if let (Some(level), Some(line)) = (text(level), text(text_at)) {
                                answer.logs.push((level, line));
                            }
                        }
                        at = packed::skip(bytes, at).map_err(unreadable)?;
                    }
                }
                b"changes" => {
                    for (name, at) in entries(bytes, at).map_err(unreadable)? {
                        let name = String::from_utf8_lossy(name);
                        let Some(index) = schema.fields.iter().position(|f| f.name == name) else {
                            return Err(format!("job_desc has no field '{name}'"));
                        };
                        let field = &schema.fields[index];
                        if !field.writable {
                            return Err(format!("job_desc.{name} cannot be set"));
                        }
                        let value = match packed::read(bytes, at).map_err(unreadable)? {
                            Item::Null => Json::Null,
                            Item::Bool(b) => Json::Bool(b),
                            Item::Int(n) => Json::from(n),
                            Item::UInt(n) => Json::from(n),
                            Item::Float(x) => Json::from(x),
                            Item::Str(text) => Json::from(String::from_utf8_lossy(text).into_owned()),
                            _ => Json::from("a table"),
                        };
                        answer.changes.push((index, change(field, &value)?));
                    }
                }
                _ => {}
            }
        }
        Ok(answer)
    }
}

/// The entries of the object at `at` (an empty list counts as an empty object, as Lua's
/// empty table packs as one), each key with where its value starts.
fn entries(bytes: &[u8], at: usize) -> Result<Vec<(&[u8], usize)>, packed::Error> {
    let (count, mut at) = match packed::read(bytes, at)? {
        Item::Object { count, first } => (count, first),
        _ => return Ok(Vec::new()),
    };
    let mut found = Vec::with_capacity(count as usize);
    for _ in 0..count {
        let (key, value) = packed::read_key(bytes, at)?;
        found.push((key, value));
        at = packed::skip(bytes, value)?;
    }
    Ok(found)
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
