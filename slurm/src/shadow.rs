//! Shadow modules: a candidate (`shadow_of=<module>` in the manifest) sees every call the
//! module it shadows sees, with the same job description, and its decision is compared with
//! that module's; where they differ, slurmctld's log says how. Only the chain's decisions are
//! applied.
//!
//! Shadows run on a thread of their own, after the call they shadow has been answered, so a
//! candidate never adds to the time slurmctld holds its locks: the chain hands each call over
//! through a bounded queue, and when the candidates fall that far behind, calls are dropped
//! and counted rather than waited for.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::{self, SyncSender, TrySendError};
use std::thread::JoinHandle;

use modhost::ModuleManager;

use crate::plugin::{Answer, Module, Schema, Value};

/// Calls waiting for the shadows, at most.
const QUEUE: usize = 1024;

/// What the shadows did, for the counters file.
#[derive(Default)]
pub(crate) struct Counters {
    /// Calls a shadow answered or failed.
    pub(crate) calls: AtomicU64,
    /// Calls where a shadow decided otherwise than the module it shadows.
    pub(crate) differences: AtomicU64,
    /// Calls a shadow failed (raised, ran past its deadline, answered what cannot be used).
    pub(crate) errors: AtomicU64,
    /// Calls not shadowed because the queue was full.
    pub(crate) dropped: AtomicU64,
}

impl Counters {
    pub(crate) fn to_json(&self) -> serde_json::Value {
        let get = |counter: &AtomicU64| counter.load(Ordering::Relaxed);
        serde_json::json!({
            "calls": get(&self.calls),
            "differences": get(&self.differences),
            "errors": get(&self.errors),
            "dropped": get(&self.dropped),
        })
    }
}

/// A module's decision on one call, as the shadows compare it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Decision {
    rc: i32,
    /// The fields the module gave a new value, by index (a value equal to the one it was
    /// given is no change).
    changes: BTreeMap<usize, Option<Value>>,
    user_msg: Option<String>,
}

impl Decision {
    /// What `answer` decided about the job description `input`.
    pub(crate) fn of(answer: &Answer, input: &[Option<Value>]) -> Decision {
        let changes = if answer.rc == 0 {
            answer.changes.iter().filter(|(field, value)| input[*field] != *value).cloned().collect()
        } else {
            // A refusal changes nothing, whatever the script assigned before it.
            BTreeMap::new()
        };
        Decision { rc: answer.rc, changes, user_msg: answer.user_msg.clone() }
    }
}

/// One call handed to the shadows of a module.
struct Job {
    /// The module of the chain, by index.
    active: usize,
    function: &'static str,
    label: String,
    input: Vec<Option<Value>>,
    message: Vec<u8>,
    /// The module's decision, or why it had none.
    decision: Result<Decision, String>,
}

/// The shadows' thread and the queue to it.
pub(crate) struct Shadows {
    queue: Option<SyncSender<Job>>,
    thread: Option<JoinHandle<()>>,
    /// Which modules of the chain have a shadow.
    watched: Vec<usize>,
    counters: Arc<Counters>,
}

impl Shadows {
    /// Starts the thread for `shadows`, each with the index in the chain of the module it
    /// shadows.
    pub(crate) fn start(schema: Schema, manager: Arc<ModuleManager>, shadows: Vec<(Module, usize)>) -> Shadows {
        let counters = Arc::new(Counters::default());
        let mut watched: Vec<usize> = shadows.iter().map(|(_, active)| *active).collect();
        watched.sort_unstable();
        watched.dedup();
        let (queue, jobs) = mpsc::sync_channel::<Job>(QUEUE);
        let mut runner = Runner { schema, manager, shadows, counters: Arc::clone(&counters) };
        let thread = std::thread::Builder::new()
            .name("modhost-shadow".into())
            .spawn(move || {
                for job in jobs {
                    runner.run(&job);
                }
            })
            .map_err(|e| log::error!("cannot start the shadows' thread, no shadow runs: {e}"))
            .ok();
        Shadows { queue: thread.is_some().then_some(queue), thread, watched, counters }
    }

    /// The counters, shared with the thread.
    pub(crate) fn counters(&self) -> Arc<Counters> {
        Arc::clone(&self.counters)
    }

    /// Whether the module of the chain at `index` has a shadow.
    pub(crate) fn watch(&self, index: usize) -> bool {
        self.watched.binary_search(&index).is_ok()
    }

    /// Hands a call of the module at `active` over to its shadows, unless they are too far
    /// behind.
    pub(crate) fn send(
        &self,
        active: usize,
        function: &'static str,
        label: &str,
        input: Vec<Option<Value>>,
        message: Vec<u8>,
        decision: Result<Decision, String>,
    ) {
        let Some(queue) = &self.queue else { return };
        let job = Job { active, function, label: label.to_owned(), input, message, decision };
        match queue.try_send(job) {
            Ok(()) => {}
            Err(TrySendError::Full(_)) => {
                if self.counters.dropped.fetch_add(1, Ordering::Relaxed) == 0 {
                    log::warn!("the shadows are {QUEUE} calls behind: calls go unshadowed until they catch up");
                }
            }
            Err(TrySendError::Disconnected(_)) => {}
        }
    }
}

impl Drop for Shadows {
    /// Closes the queue and waits for the calls in it (each bounded by its shadow's deadline).
    fn drop(&mut self) {
        drop(self.queue.take());
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

/// The shadows' side: the candidates and what they need to run.
struct Runner {
    schema: Schema,
    manager: Arc<ModuleManager>,
    shadows: Vec<(Module, usize)>,
    counters: Arc<Counters>,
}

impl Runner {
    fn run(&mut self, job: &Job) {
        for (shadow, active) in &mut self.shadows {
            if *active != job.active {
                continue;
            }
            shadow.retry(&self.manager);
            self.counters.calls.fetch_add(1, Ordering::Relaxed);
            let tag = format!("{} (shadow)", shadow.name);
            let decision = match shadow.call(&self.schema, job.function, &job.message) {
                Ok(answer) => {
                    answer.log(&tag);
                    Ok(Decision::of(&answer, &job.input))
                }
                Err(error) => {
                    self.counters.errors.fetch_add(1, Ordering::Relaxed);
                    log::error!("[{tag}] {}: {error}", job.function);
                    Err(error)
                }
            };
            let differences = differences(&self.schema, &job.decision, &decision);
            if !differences.is_empty() {
                self.counters.differences.fetch_add(1, Ordering::Relaxed);
                log::info!("[{tag}] decides otherwise on {}: {}", job.label, differences.join("; "));
            }
        }
    }
}

/// How `shadow`'s decision differs from `active`'s, one item per difference ("active vs
/// shadow"); empty when they agree.
fn differences(schema: &Schema, active: &Result<Decision, String>, shadow: &Result<Decision, String>) -> Vec<String> {
    let (active, shadow) = match (active, shadow) {
        (Ok(active), Ok(shadow)) => (active, shadow),
        (Err(_), Err(_)) => return Vec::new(),
        (Err(error), Ok(shadow)) => {
            let first = error.lines().next().unwrap_or_default();
            return vec![format!("the module failed ({first}), the shadow returns {}", schema.code_name(shadow.rc))];
        }
        (Ok(active), Err(error)) => {
            let first = error.lines().next().unwrap_or_default();
            return vec![format!("the module returns {}, the shadow failed ({first})", schema.code_name(active.rc))];
        }
    };
    let mut found = Vec::new();
    if active.rc != shadow.rc {
        found.push(format!("returns {} vs {}", schema.code_name(active.rc), schema.code_name(shadow.rc)));
    }
    let fields: std::collections::BTreeSet<usize> =
        active.changes.keys().chain(shadow.changes.keys()).copied().collect();
    for field in fields {
        let (a, s) = (active.changes.get(&field), shadow.changes.get(&field));
        if a != s {
            let name = schema.fields.get(field).map_or("?", |f| f.name.as_str());
            found.push(format!("{name} {} vs {}", shown(a), shown(s)));
        }
    }
    if active.user_msg != shadow.user_msg {
        let text = |m: &Option<String>| m.as_ref().map_or("none".to_owned(), |m| format!("{m:?}"));
        found.push(format!("message {} vs {}", text(&active.user_msg), text(&shadow.user_msg)));
    }
    found
}

/// A change as the log shows it: the new value, `nil` for an unset string, `unchanged`.
fn shown(change: Option<&Option<Value>>) -> String {
    match change {
        None => "unchanged".to_owned(),
        Some(None) => "nil".to_owned(),
        Some(Some(Value::Text(text))) => format!("{text:?}"),
        Some(Some(Value::Number(n))) => n.to_string(),
    }
}
