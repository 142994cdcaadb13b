//! The simulated cluster: a virtual clock, agents, frameworks that take or decline offers,
//! tasks that pass the hooks and isolators, and the allocator in the middle.
//!
//! The engine keeps the canonical ledger of the cluster (each agent's total and what its
//! tasks use). Every offer is checked against it before a framework sees it: an offer to an
//! unknown framework or agent, or of resources that are not free (including resources
//! offered twice in one round), is refused, logged and counted, and the run goes on.

use std::cmp::{Ordering, Reverse};
use std::collections::{BTreeMap, BinaryHeap, HashMap, VecDeque};
use std::time::Instant;

use modhost_abi::messages::{
    AgentInfo, ContainerConfig, ExecutorInfo, Filters, FrameworkInfo, Offer, Resources, TaskInfo, TaskState,
    TaskStatus, WeightInfo, reservation, round_scalar,
};
use modhost_abi::{
    AddAgent, AddFramework, AgentRequest, Allocate, Allocator, CallError, FrameworkRequest, OffersMade, Operation,
    RecoverResources, RolesRequest, UpdateAvailable, UpdateWeights,
};
use modhost_drf::SplitMix64;

use super::report::{
    Distribution, FrameworkSummary, QuotaSummary, Report, RoleSummary, RoundRecord, SampleTask, ShadowSummary, Totals,
};
use super::workload::{Duration, Event, Workload};
use modhost::hooks::HookChain;
use modhost::isolators::Isolators;

/// How to run.
#[derive(Clone, Debug)]
pub struct SimConfig {
    /// Seconds between allocation rounds.
    pub allocation_interval: f64,
    /// Seeds task durations (and is passed to the allocator).
    pub seed: u64,
    /// Stop after this virtual time.
    pub until: Option<f64>,
    /// Stop after this many rounds.
    pub max_rounds: usize,
    /// The allocator's name, for the report.
    pub allocator_name: String,
    /// Stop, and report the run as failed, after this many rounds in a row whose `allocate`
    /// failed (0: never). An allocator with a fallback (a script's `fallback=hierarchical`)
    /// does not fail its rounds, so it runs on.
    pub max_failed_rounds: usize,
}

/// What an observer sees after each round.
#[derive(Clone, Debug)]
pub struct Progress {
    /// Virtual time.
    pub t: f64,
    /// Tasks that ended so far.
    pub ended: u64,
    /// Tasks in the workload.
    pub total: u64,
    /// Tasks running.
    pub running: u64,
    /// A one-line live view: each role's dominant share and the utilisation per resource.
    pub summary: String,
}

struct AgentState {
    info: AgentInfo,
    used: Resources,
    alive: bool,
}

struct FrameworkState {
    info: FrameworkInfo,
    /// Its roles (indices into `roles`), the first its default.
    roles: Vec<usize>,
    registered: bool,
    left: bool,
    suppressed: bool,
    /// Runs of pending tasks: (pending since, how many), oldest first.
    pending: VecDeque<(f64, u64)>,
    pending_count: u64,
    running: u64,
    launched: u64,
    finished: u64,
    next_task: u64,
    used: Resources,
    share_sum: f64,
    share_rounds: u64,
    share_peak: f64,
    wait_sum: f64,
}

struct Task {
    id: String,
    framework: usize,
    /// The role it runs in: that of the offer it was launched from.
    role: usize,
    agent: usize,
    resources: Resources,
    started: f64,
    executor: ExecutorInfo,
}

/// A task completion on the clock, ordered by time then launch order.
#[derive(PartialEq)]
struct Due(f64, u64);
impl Eq for Due {}
impl PartialOrd for Due {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}
impl Ord for Due {
    fn cmp(&self, other: &Self) -> Ordering {
        self.0.total_cmp(&other.0).then(self.1.cmp(&other.1))
    }
}

/// A candidate allocator run in the shadow of the active one.
struct Shadow<'w> {
    allocator: Box<dyn Allocator + 'w>,
    summary: ShadowSummary,
}

/// The key of an offer, for comparing two allocators' rounds.
fn offer_key(offer: &Offer) -> String {
    format!("{} on {}: {}", offer.framework_id, offer.agent_id, offer.resources)
}

/// One run of a workload.
pub struct Simulation<'w> {
    config: SimConfig,
    workload: &'w Workload,
    allocator: Box<dyn Allocator + 'w>,
    hooks: HookChain,
    isolators: Isolators,
    rng: SplitMix64,
    agents: Vec<AgentState>,
    agent_index: HashMap<String, usize>,
    frameworks: Vec<FrameworkState>,
    framework_index: HashMap<String, usize>,
    roles: Vec<String>,
    role_weights: Vec<f64>,
    role_used: Vec<Resources>,
    /// Tasks launched in each role.
    role_launched: Vec<u64>,
    /// Each role's subtree: the roles whose use counts in its share (itself alone but for a
    /// role with children).
    role_subtrees: Vec<Vec<usize>>,
    /// Each role's quota now, and the most its subtree has used of each resource in a round
    /// while it had one.
    role_quota: Vec<Option<modhost_abi::UpdateQuota>>,
    quota_peak: Vec<Resources>,
    total: Resources,
    in_use: Resources,
    tasks: HashMap<u64, Task>,
    due: BinaryHeap<Reverse<Due>>,
    next_event: usize,
    next_seq: u64,
    totals: Totals,
    allocator_us: Vec<f64>,
    waits: Vec<f64>,
    series: Vec<RoundRecord>,
    events: Vec<(f64, String)>,
    digest: u64,
    sample: Option<SampleTask>,
    round_ended: u32,
    idle_rounds: usize,
    /// Rounds in a row whose `allocate` failed, and the last one's error.
    failed_rounds: usize,
    last_allocate_error: String,
    shadow: Option<Shadow<'w>>,
    shadow_differences: u32,
    /// This round's offered shares per role, active then shadow (shadow runs only).
    offered_shares: (Vec<f64>, Vec<f64>),
}

/// Rounds with nothing running, nothing to come and nothing launched before a run counts
/// as stalled.
const IDLE_ROUNDS: usize = 1000;

/// `resources` with each reserved amount counted as its unreserved name (`cpus(eng)` as
/// `cpus`): the cluster's totals, shares and utilisation count them so, as Mesos's sorter does.
fn unreserved(resources: &Resources) -> Resources {
    let mut counted = Resources::new();
    for (name, amount) in &resources.0 {
        counted = counted.with(reservation(name).map_or(&**name, |(base, _)| base), *amount);
    }
    counted
}

/// What of `offer` a task asking for `wanted` takes: an unreserved amount from what the offer
/// has reserved of that resource first (in name order), then from its unreserved part; a
/// reserved one from that reservation. None if the task does not fit.
pub(crate) fn claim(offer: &Resources, wanted: &Resources) -> Option<Resources> {
    let mut taken = Resources::new();
    for (name, amount) in &wanted.0 {
        let mut need = *amount;
        let sources: Vec<_> = if reservation(name).is_some() {
            offer.0.get_key_value(name).into_iter().collect()
        } else {
            let reserved =
                offer.0.iter().filter(|(have, _)| reservation(have).is_some_and(|(base, _)| base == &**name));
            reserved.chain(offer.0.get_key_value(name)).collect()
        };
        for (have, available) in sources {
            let take = need.min(*available);
            if take > 0.0 {
                taken = taken.with(have, take);
                need = round_scalar(need - take);
            }
        }
        if need > 0.0 {
            return None;
        }
    }
    Some(taken)
}

/// The role an offer to framework `f` is in (an index into `roles`, the names): the one it
/// names, or the framework's first.
fn offer_role(roles: &[String], f: &FrameworkState, role: &str) -> usize {
    f.roles.iter().copied().find(|&r| roles[r] == role).unwrap_or(f.roles[0])
}

/// FNV-1a, 64 bits: a stable digest of the decisions without a dependency.
fn fnv(mut hash: u64, bytes: &[u8]) -> u64 {
    for byte in bytes {
        hash ^= u64::from(*byte);
        hash = hash.wrapping_mul(0x0000_0100_0000_01b3);
    }
    hash
}

/// Each role's dominant share of what `used` (by role) holds in its whole subtree, as DRF
/// sorts roles: for a role with children, its own frameworks' use and theirs.
fn subtree_shares(subtrees: &[Vec<usize>], used: &[Resources], total: &Resources) -> Vec<f64> {
    subtrees
        .iter()
        .enumerate()
        .map(|(role, subtree)| match subtree.as_slice() {
            [_] => dominant_share(&used[role], total),
            _ => {
                let mut sum = Resources::new();
                subtree.iter().for_each(|&r| sum.add(&used[r]));
                dominant_share(&sum, total)
            }
        })
        .collect()
}

/// The largest `used / total` over the resources with a positive total.
fn dominant_share(used: &Resources, total: &Resources) -> f64 {
    used.0
        .iter()
        .filter(|(name, _)| total.get(name) > 0.0)
        .map(|(name, amount)| amount / total.get(name))
        .fold(0.0, f64::max)
}

impl<'w> Simulation<'w> {
    /// Prepares a run; the allocator is initialised by [`Simulation::run`].
    pub fn new(
        config: SimConfig,
        workload: &'w Workload,
        allocator: Box<dyn Allocator + 'w>,
        hooks: HookChain,
        isolators: Isolators,
    ) -> Self {
        let mut roles: Vec<String> =
            workload.frameworks.iter().flat_map(|f| f.info.subscribed_roles().into_iter().map(str::to_owned)).collect();
        roles.extend(workload.weights.iter().map(|w| w.role.clone()));
        roles.extend(workload.quotas.iter().map(|q| q.role.clone()));
        roles.extend(workload.events.iter().filter_map(|(_, event)| match event {
            Event::QuotaChange(quota) => Some(quota.role.clone()),
            _ => None,
        }));
        // Roles resources are reserved for, in the agents or by an event.
        let reserving =
            workload.agents.iter().map(|a| &a.resources).chain(workload.events.iter().filter_map(|(_, event)| {
                match event {
                    Event::Operation { operation: Operation::Reserve { resources }, .. } => Some(resources),
                    _ => None,
                }
            }));
        let owners: Vec<String> = reserving
            .flat_map(|resources| {
                resources.0.keys().filter_map(|name| reservation(name).map(|(_, role)| role.to_owned()))
            })
            .collect();
        roles.extend(owners);
        // A role path's ancestors are roles too (`eng/ml/training` is in `eng/ml`, in `eng`).
        let ancestors: Vec<String> = roles
            .iter()
            .flat_map(|role| role.match_indices('/').map(|(at, _)| role[..at].to_owned()).collect::<Vec<_>>())
            .collect();
        roles.extend(ancestors);
        roles.sort();
        roles.dedup();
        // Each role's subtree (itself and its descendants), for its share.
        let role_subtrees: Vec<Vec<usize>> = roles
            .iter()
            .map(|role| {
                let prefix = format!("{role}/");
                (0..roles.len()).filter(|&j| roles[j] == *role || roles[j].starts_with(&prefix)).collect()
            })
            .collect();
        let role_of: HashMap<&str, usize> = roles.iter().enumerate().map(|(i, r)| (r.as_str(), i)).collect();
        let frameworks = workload
            .frameworks
            .iter()
            .map(|spec| FrameworkState {
                info: spec.info.clone(),
                roles: spec.info.subscribed_roles().iter().map(|role| role_of[role]).collect(),
                registered: false,
                left: false,
                suppressed: false,
                pending: VecDeque::new(),
                pending_count: 0,
                running: 0,
                launched: 0,
                finished: 0,
                next_task: 0,
                used: Resources::new(),
                share_sum: 0.0,
                share_rounds: 0,
                share_peak: 0.0,
                wait_sum: 0.0,
            })
            .collect();
        let mut role_weights = vec![1.0; roles.len()];
        for weight in &workload.weights {
            role_weights[role_of[weight.role.as_str()]] = weight.weight;
        }
        let mut role_quota = vec![None; roles.len()];
        for quota in &workload.quotas {
            role_quota[role_of[quota.role.as_str()]] = Some(quota.clone());
        }
        Simulation {
            rng: SplitMix64::new(config.seed ^ 0x5eed_5eed_5eed_5eed),
            config,
            workload,
            allocator,
            hooks,
            isolators,
            agents: Vec::new(),
            agent_index: HashMap::new(),
            framework_index: workload.frameworks.iter().enumerate().map(|(i, f)| (f.info.id.clone(), i)).collect(),
            frameworks,
            role_used: vec![Resources::new(); roles.len()],
            role_launched: vec![0; roles.len()],
            quota_peak: vec![Resources::new(); roles.len()],
            role_quota,
            role_subtrees,
            roles,
            role_weights,
            total: Resources::new(),
            in_use: Resources::new(),
            tasks: HashMap::new(),
            due: BinaryHeap::new(),
            next_event: 0,
            next_seq: 0,
            totals: Totals::default(),
            allocator_us: Vec::new(),
            waits: Vec::new(),
            series: Vec::new(),
            events: Vec::new(),
            digest: 0xcbf2_9ce4_8422_2325,
            sample: None,
            round_ended: 0,
            idle_rounds: 0,
            failed_rounds: 0,
            last_allocate_error: String::new(),
            shadow: None,
            shadow_differences: 0,
            offered_shares: (Vec::new(), Vec::new()),
        }
    }

    /// Logs and counts a failed allocator call.
    fn allocator_call(&mut self, what: &str, result: Result<(), CallError>) {
        if let Err(e) = result {
            self.totals.allocator_call_errors += 1;
            log::warn!("allocator '{}': {what} failed: {e}", self.config.allocator_name);
        }
    }

    /// Tells the allocator (and the shadow, if any) about a change in the cluster.
    fn tell(&mut self, what: &str, call: impl Fn(&mut dyn Allocator) -> Result<(), CallError>) {
        let result = call(self.allocator.as_mut());
        self.allocator_call(what, result);
        if let Some(shadow) = &mut self.shadow
            && let Err(e) = call(shadow.allocator.as_mut())
        {
            shadow.summary.errors += 1;
            log::warn!("shadow allocator '{}': {what} failed: {e}", shadow.summary.allocator);
        }
    }

    /// Runs a candidate allocator beside the active one: it sees every call the active one
    /// sees, decides each round in a dry run, and is then told the active one's offers, which
    /// are the only ones applied. Where the two differ is reported.
    pub fn with_shadow(mut self, name: &str, allocator: Box<dyn Allocator + 'w>) -> Self {
        self.shadow =
            Some(Shadow { allocator, summary: ShadowSummary { allocator: name.to_owned(), ..Default::default() } });
        self
    }

    /// Runs to the end and reports; `observe` sees each round.
    pub fn run(mut self, mut observe: impl FnMut(Progress)) -> Report {
        let options = modhost_abi::messages::AllocatorOptions {
            allocation_interval: self.config.allocation_interval,
            seed: self.config.seed,
            ..Default::default()
        };
        self.tell("initialize", |a| a.initialize(&options));
        for info in &self.workload.agents {
            self.add_agent(info.clone());
        }
        if !self.workload.weights.is_empty() {
            let weights = self.workload.weights.clone();
            self.tell("update_weights", |a| a.update_weights(&UpdateWeights { weights: weights.clone() }));
        }
        for quota in self.workload.quotas.clone() {
            self.tell("update_quota", |a| a.update_quota(&quota));
        }
        for index in 0..self.frameworks.len() {
            if self.workload.frameworks[index].arrive_at == 0.0
                && !self
                    .workload
                    .events
                    .iter()
                    .any(|(_, e)| matches!(e, Event::FrameworkArrives { index: i } if *i == index))
            {
                self.register(index, 0.0);
            }
        }

        let total_tasks = self.workload.total_tasks();
        let mut stopped = format!("reached the limit of {} rounds", self.config.max_rounds);
        let mut failure = None;
        let mut t = 0.0;
        for round in 0..self.config.max_rounds {
            t = round as f64 * self.config.allocation_interval;
            if let Some(until) = self.config.until
                && t > until
            {
                stopped = format!("reached --until={until}");
                t = until;
                break;
            }
            self.advance_to(t);
            self.allocation_round(t);
            let ended = self.totals.finished + self.totals.failed + self.totals.killed + self.totals.lost;
            observe(Progress {
                t,
                ended,
                total: total_tasks,
                running: self.tasks.len() as u64,
                summary: self.summary(),
            });
            if self.finished() {
                stopped = "every task has ended".into();
                break;
            }
            if self.config.max_failed_rounds > 0 && self.failed_rounds >= self.config.max_failed_rounds {
                let reason = format!(
                    "allocator '{}' failed {} rounds in a row (--max_failed_rounds={}); the last error: ",
                    self.config.allocator_name, self.failed_rounds, self.config.max_failed_rounds,
                );
                // The stop line shows the error's first line; the failure keeps all of it (a
                // script's traceback).
                let first_line = self.last_allocate_error.lines().next().unwrap_or_default();
                stopped = format!("failed: {reason}{first_line}");
                failure = Some(format!("{reason}{}", self.last_allocate_error));
                break;
            }
            if let Some(reason) = self.stalled() {
                stopped = reason;
                break;
            }
        }
        let mut report = self.report(t, stopped);
        report.failure = failure;
        report
    }

    fn add_agent(&mut self, mut info: AgentInfo) {
        if !self.hooks.is_empty() {
            self.hooks.agent_start(&mut info);
        }
        self.total.add(&unreserved(&info.resources));
        self.tell("add_agent", |a| a.add_agent(&AddAgent { agent: info.clone(), used: Vec::new() }));
        self.agent_index.insert(info.id.clone(), self.agents.len());
        self.agents.push(AgentState { info, used: Resources::new(), alive: true });
    }

    fn register(&mut self, index: usize, t: f64) {
        let spec = &self.workload.frameworks[index];
        let framework = &mut self.frameworks[index];
        framework.registered = true;
        framework.pending.push_back((t, spec.tasks));
        framework.pending_count = spec.tasks;
        let request = AddFramework { framework: framework.info.clone(), used: Vec::new(), active: true };
        self.tell("add_framework", |a| a.add_framework(&request));
    }

    /// Whether nothing is left to do: no task pending or running, no framework to come.
    fn finished(&self) -> bool {
        let arrivals_ahead =
            self.workload.events[self.next_event..].iter().any(|(_, e)| matches!(e, Event::FrameworkArrives { .. }));
        !arrivals_ahead && self.tasks.is_empty() && self.frameworks.iter().all(|f| f.left || f.pending_count == 0)
    }

    /// Whether the run can make no more progress: nothing runs, nothing is to come, and
    /// either no pending task fits on any agent left, or nothing has launched for
    /// [`IDLE_ROUNDS`] rounds.
    fn stalled(&mut self) -> Option<String> {
        if !self.tasks.is_empty() || self.next_event < self.workload.events.len() {
            self.idle_rounds = 0;
            return None;
        }
        let waiting: Vec<usize> = (0..self.frameworks.len())
            .filter(|&f| {
                self.frameworks[f].registered && !self.frameworks[f].left && self.frameworks[f].pending_count > 0
            })
            .collect();
        let pending: u64 = waiting.iter().map(|&f| self.frameworks[f].pending_count).sum();
        let fits_somewhere = waiting.iter().any(|&f| {
            let task = &self.workload.frameworks[f].task_resources;
            self.agents.iter().any(|a| a.alive && claim(&a.info.resources, task).is_some())
        });
        if !fits_somewhere {
            return Some(format!("stalled: {pending} pending task(s) fit on no remaining agent"));
        }
        self.idle_rounds += 1;
        (self.idle_rounds >= IDLE_ROUNDS).then(|| {
            format!("stalled: {pending} pending task(s), nothing running and nothing launched for {IDLE_ROUNDS} rounds")
        })
    }

    /// Processes task completions and events up to `t`, in time order (completions first
    /// on ties).
    fn advance_to(&mut self, t: f64) {
        self.round_ended = 0;
        loop {
            let next_due = self.due.peek().map(|Reverse(d)| d.0).filter(|at| *at <= t);
            let next_event = self.workload.events.get(self.next_event).map(|(at, _)| *at).filter(|at| *at <= t);
            match (next_due, next_event) {
                (Some(due), Some(event)) if due <= event => self.complete_next(),
                (Some(_), None) => self.complete_next(),
                (_, Some(at)) => {
                    let event = self.workload.events[self.next_event].1.clone();
                    self.next_event += 1;
                    self.apply(at, event);
                }
                (None, None) => break,
            }
        }
    }

    fn complete_next(&mut self) {
        let Some(Reverse(Due(at, seq))) = self.due.pop() else { return };
        // A task lost or killed earlier is no longer in `tasks`.
        if let Some(task) = self.tasks.remove(&seq) {
            self.end_task(task, at, TaskState::TaskFinished, "");
        }
    }

    /// Takes a task out of the cluster. `recover`: give its resources back to the allocator
    /// (not when its agent or framework is gone: removing those released everything).
    fn end_task(&mut self, task: Task, at: f64, state: TaskState, message: &str) {
        let framework = task.framework;
        let container = format!("{}.container", task.id);
        if state != TaskState::TaskLost && !self.isolators.is_empty() {
            self.isolators.finish(&container, at - task.started);
        }
        if state != TaskState::TaskLost && !self.hooks.is_empty() {
            let mut status = TaskStatus {
                task_id: task.id.clone(),
                agent_id: self.agents[task.agent].info.id.clone(),
                state,
                message: message.to_owned(),
                labels: Vec::new(),
            };
            let framework_id = self.frameworks[framework].info.id.clone();
            self.hooks.task_status(&framework_id, &mut status);
            self.hooks.remove_executor(&self.frameworks[framework].info.clone(), &task.executor);
        }
        self.agents[task.agent].used.subtract(&task.resources);
        let counted = unreserved(&task.resources);
        self.in_use.subtract(&counted);
        self.role_used[task.role].subtract(&counted);
        let f = &mut self.frameworks[framework];
        f.used.subtract(&counted);
        f.running -= 1;
        self.round_ended += 1;
        match state {
            TaskState::TaskFinished => {
                f.finished += 1;
                self.totals.finished += 1;
            }
            TaskState::TaskFailed => self.totals.failed += 1,
            TaskState::TaskKilled => self.totals.killed += 1,
            TaskState::TaskLost => self.totals.lost += 1,
            TaskState::TaskStaging | TaskState::TaskRunning => {}
        }
        if matches!(state, TaskState::TaskFinished | TaskState::TaskFailed) {
            let request = RecoverResources {
                framework_id: f.info.id.clone(),
                role: self.roles[task.role].clone(),
                agent_id: self.agents[task.agent].info.id.clone(),
                resources: task.resources,
                filters: None,
            };
            self.tell("recover_resources", |a| a.recover_resources(&request));
        }
    }

    fn apply(&mut self, at: f64, event: Event) {
        match event {
            Event::AgentLost { agent } => {
                let Some(&index) = self.agent_index.get(&agent) else { return };
                if !self.agents[index].alive {
                    return;
                }
                self.agents[index].alive = false;
                let mut lost: Vec<u64> = self.tasks.iter().filter(|(_, t)| t.agent == index).map(|(s, _)| *s).collect();
                lost.sort_unstable();
                for seq in &lost {
                    let task = self.tasks.remove(seq).expect("listed above");
                    let framework = task.framework;
                    self.end_task(task, at, TaskState::TaskLost, "agent lost");
                    if self.workload.frameworks[framework].relaunch_lost && !self.frameworks[framework].left {
                        self.add_pending(framework, at, 1);
                    }
                }
                self.total.subtract(&unreserved(&self.agents[index].info.resources));
                self.tell("remove_agent", |a| a.remove_agent(&AgentRequest { agent_id: agent.clone() }));
                if !self.hooks.is_empty() {
                    self.hooks.agent_lost(&self.agents[index].info.clone());
                }
                self.events.push((at, format!("agent {agent} lost with {} task(s)", lost.len())));
            }
            Event::FrameworkArrives { index } => {
                self.register(index, at);
                let f = &self.frameworks[index];
                self.events.push((at, format!("framework {} arrives in role {}", f.info.id, f.info.role)));
            }
            Event::FrameworkLeaves { framework } => {
                let index = self.framework_index[&framework];
                if self.frameworks[index].left || !self.frameworks[index].registered {
                    return;
                }
                let mut killed: Vec<u64> =
                    self.tasks.iter().filter(|(_, t)| t.framework == index).map(|(s, _)| *s).collect();
                killed.sort_unstable();
                for seq in &killed {
                    let task = self.tasks.remove(seq).expect("listed above");
                    self.end_task(task, at, TaskState::TaskKilled, "framework left");
                }
                let f = &mut self.frameworks[index];
                f.left = true;
                f.pending.clear();
                f.pending_count = 0;
                self.tell("remove_framework", |a| {
                    a.remove_framework(&FrameworkRequest { framework_id: framework.clone() })
                });
                self.events.push((at, format!("framework {framework} leaves; {} task(s) killed", killed.len())));
            }
            Event::WeightChange { role, weight } => {
                if let Some(index) = self.roles.iter().position(|r| *r == role) {
                    self.role_weights[index] = weight;
                }
                let request = UpdateWeights { weights: vec![WeightInfo { role: role.clone(), weight }] };
                self.tell("update_weights", |a| a.update_weights(&request));
                self.events.push((at, format!("role {role} weight set to {weight}")));
            }
            Event::Operation { agent, operation } => self.operate(at, &agent, operation),
            Event::QuotaChange(quota) => {
                let part = |amounts: &Resources| {
                    if amounts.0.is_empty() { "none".to_owned() } else { amounts.to_string() }
                };
                let what = if quota.removes() {
                    format!("role {} quota removed", quota.role)
                } else {
                    let (guarantees, limits) = (part(&quota.guarantees), part(&quota.limits));
                    format!("role {} quota set: guarantees {guarantees}, limits {limits}", quota.role)
                };
                if let Some(index) = self.roles.iter().position(|r| *r == quota.role) {
                    self.role_quota[index] = (!quota.removes()).then(|| quota.clone());
                }
                self.tell("update_quota", |a| a.update_quota(&quota));
                self.events.push((at, what));
            }
        }
    }

    /// Reserves or unreserves an agent's unallocated resources: applied to the engine's ledger
    /// and told to the allocators when it fits what is unallocated there, logged as refused
    /// otherwise (or when the agent is gone).
    fn operate(&mut self, at: f64, agent_id: &str, operation: Operation) {
        let (resources, reserve) = match &operation {
            Operation::Reserve { resources } => (resources, true),
            Operation::Unreserve { resources } => (resources, false),
        };
        let verb = if reserve { "reserve" } else { "unreserve" };
        let Some(&index) = self.agent_index.get(agent_id).filter(|&&i| self.agents[i].alive) else {
            self.events.push((at, format!("{verb} {resources} on agent {agent_id} refused: the agent is gone")));
            return;
        };
        let agent = &self.agents[index];
        let mut total = agent.info.resources.clone();
        for (name, amount) in &resources.0 {
            let base = reservation(name).map_or(&**name, |(base, _)| base);
            let (from, to) = if reserve { (base, &**name) } else { (&**name, base) };
            let unallocated = round_scalar(total.get(from) - agent.used.get(from));
            if unallocated < *amount {
                self.events.push((
                    at,
                    format!(
                        "{verb} {resources} on agent {agent_id} refused: only {} of {from} is unallocated",
                        unallocated.max(0.0)
                    ),
                ));
                return;
            }
            total.subtract(&Resources::new().with(from, *amount));
            total.add(&Resources::new().with(to, *amount));
        }
        self.agents[index].info.resources = total;
        let what = format!("{verb} {resources} on agent {agent_id}");
        let request = UpdateAvailable { agent_id: agent_id.to_owned(), operations: vec![operation] };
        self.tell("update_available", |a| a.update_available(&request));
        self.events.push((at, what));
    }

    /// What the live agents reserve for `role` (itself, not its subroles), by unreserved name.
    fn reserved_for(&self, role: &str) -> Resources {
        let mut reserved = Resources::new();
        for agent in self.agents.iter().filter(|a| a.alive) {
            for (name, amount) in &agent.info.resources.0 {
                if let Some((base, owner)) = reservation(name)
                    && owner == role
                {
                    reserved = reserved.with(base, *amount);
                }
            }
        }
        reserved
    }

    /// What role `index`'s whole subtree uses.
    fn subtree_used(&self, index: usize) -> Resources {
        let mut used = Resources::new();
        for &member in &self.role_subtrees[index] {
            used.add(&self.role_used[member]);
        }
        used
    }

    fn add_pending(&mut self, framework: usize, since: f64, count: u64) {
        let f = &mut self.frameworks[framework];
        f.pending.push_back((since, count));
        f.pending_count += count;
        if f.suppressed {
            f.suppressed = false;
            let request = RolesRequest { framework_id: f.info.id.clone(), roles: Vec::new() };
            self.tell("revive_offers", |a| a.revive_offers(&request));
        }
    }

    /// Checks every offer of a round against the ledger before any is used, so that
    /// resources offered twice in one round are caught.
    fn check_offers(&mut self, offers: Vec<Offer>) -> Vec<(usize, usize, Offer)> {
        let mut offered: HashMap<usize, Resources> = HashMap::new();
        let mut valid = Vec::with_capacity(offers.len());
        for offer in offers {
            let verdict = (|| {
                let framework = *self
                    .framework_index
                    .get(&offer.framework_id)
                    .ok_or_else(|| format!("offers to unknown framework '{}'", offer.framework_id))?;
                let f = &self.frameworks[framework];
                if !f.registered || f.left {
                    return Err(format!("offers to framework '{}', which is not registered", offer.framework_id));
                }
                let agent = *self
                    .agent_index
                    .get(&offer.agent_id)
                    .ok_or_else(|| format!("offers resources of unknown agent '{}'", offer.agent_id))?;
                if !self.agents[agent].alive {
                    return Err(format!("offers resources of agent '{}', which is lost", offer.agent_id));
                }
                if offer.resources.has_negative() || offer.resources.is_empty() {
                    return Err(format!(
                        "offers '{}' on agent '{}': nothing, or a negative amount",
                        offer.resources, offer.agent_id
                    ));
                }
                let a = &self.agents[agent];
                let mut free = a.info.resources.clone();
                free.subtract(&a.used);
                let already = offered.entry(agent).or_default();
                free.subtract(already);
                if !free.contains(&offer.resources) {
                    return Err(format!(
                        "offers {} on agent '{}' to '{}', but only {} is free{}",
                        offer.resources,
                        offer.agent_id,
                        offer.framework_id,
                        if free.is_empty() { "nothing".to_owned() } else { free.to_string() },
                        if already.is_empty() {
                            String::new()
                        } else {
                            format!(" (already offered this round: {already})")
                        }
                    ));
                }
                already.add(&offer.resources);
                Ok((framework, agent))
            })();
            match verdict {
                Ok((framework, agent)) => valid.push((framework, agent, offer)),
                Err(reason) => {
                    self.totals.rejected_offers += 1;
                    log::warn!("allocator '{}' {reason}; offer refused", self.config.allocator_name);
                }
            }
        }
        valid
    }

    fn allocation_round(&mut self, t: f64) {
        for event in modhost::script::reload::take_events() {
            self.events.push((t, format!("{}: {}", event.module, event.message)));
        }
        let started = Instant::now();
        let result = self.allocator.allocate(&Allocate { now: t, dry_run: false });
        let elapsed = started.elapsed().as_secs_f64() * 1e6;
        self.allocator_us.push(elapsed);
        let offers = match result {
            Ok(offers) => {
                self.failed_rounds = 0;
                offers.to_vec()
            }
            Err(e) => {
                self.totals.allocator_errors += 1;
                self.failed_rounds += 1;
                self.last_allocate_error = e.to_string();
                log::warn!(
                    "allocator '{}': allocate failed at t={t}: {e}; no offers this round",
                    self.config.allocator_name
                );
                Vec::new()
            }
        };
        let (made, rejected_before) = (offers.len() as u32, self.totals.rejected_offers);
        let mut declined = 0;
        let mut launched = 0;
        let valid = self.check_offers(offers);
        self.shadow_round(t, &valid);
        for (framework, agent, offer) in valid {
            let line = format!("{t}|{}|{}|{}\n", offer.framework_id, offer.agent_id, offer.resources);
            self.digest = fnv(self.digest, line.as_bytes());
            let n = self.use_offer(framework, agent, offer, t);
            launched += n;
            if n == 0 {
                declined += 1;
            }
        }
        self.totals.offers += u64::from(made);
        self.totals.declined += u64::from(declined);
        self.record(t, made, declined, (self.totals.rejected_offers - rejected_before) as u32, launched, elapsed);
    }

    /// The shadow's dry run of this round, compared with the active allocator's checked
    /// offers, which the shadow is then told were made.
    fn shadow_round(&mut self, t: f64, made: &[(usize, usize, Offer)]) {
        self.shadow_differences = 0;
        let Some(shadow) = &mut self.shadow else { return };
        let summary = &mut shadow.summary;
        summary.rounds += 1;
        let mut proposed_for_shares = Vec::new();
        match shadow.allocator.allocate(&Allocate { now: t, dry_run: true }) {
            Ok(proposed) => {
                let mut count: BTreeMap<String, i64> = BTreeMap::new();
                for (_, _, offer) in made {
                    *count.entry(offer_key(offer)).or_default() += 1;
                }
                let proposed = proposed.to_vec();
                for offer in &proposed {
                    *count.entry(offer_key(offer)).or_default() -= 1;
                }
                let only_active: i64 = count.values().filter(|c| **c > 0).sum();
                let only_shadow: i64 = -count.values().filter(|c| **c < 0).sum::<i64>();
                summary.offers_same += made.len() as u64 - only_active as u64;
                summary.offers_only_active += only_active as u64;
                summary.offers_only_shadow += only_shadow as u64;
                if only_active + only_shadow == 0 {
                    summary.identical_rounds += 1;
                } else if summary.first_difference.is_none() {
                    let example = count.iter().find(|(_, c)| **c != 0).map(|(k, c)| {
                        format!(
                            "{} {k}",
                            if *c > 0 { "only the active allocator offered" } else { "only the shadow offered" }
                        )
                    });
                    summary.first_difference = Some((t, example.unwrap_or_default()));
                }
                self.shadow_differences = (only_active + only_shadow) as u32;
                proposed_for_shares = proposed;
            }
            Err(e) => {
                summary.errors += 1;
                log::warn!("shadow allocator '{}': allocate failed at t={t}: {e}", summary.allocator);
            }
        }
        let offers: Vec<Offer> = made.iter().map(|(_, _, offer)| offer.clone()).collect();
        // The dominant share each role would hold if the round's offers were taken whole:
        // the same measure for both allocators, since only one of them is applied.
        let offered = |offers: &[Offer], frameworks: &HashMap<String, usize>, roles: &[FrameworkState]| {
            let mut used: Vec<Resources> = self.role_used.clone();
            for offer in offers {
                if let Some(&f) = frameworks.get(&offer.framework_id) {
                    used[offer_role(&self.roles, &roles[f], &offer.role)].add(&unreserved(&offer.resources));
                }
            }
            subtree_shares(&self.role_subtrees, &used, &self.total)
        };
        let active = offered(&offers, &self.framework_index, &self.frameworks);
        let candidate = offered(&proposed_for_shares, &self.framework_index, &self.frameworks);
        self.offered_shares = (active, candidate);
        if let Err(e) = shadow.allocator.offers_made(&OffersMade { offers }) {
            shadow.summary.errors += 1;
            log::warn!("shadow allocator '{}': offers_made failed at t={t}: {e}", shadow.summary.allocator);
        }
    }

    /// The framework's answer to an offer: launch what fits, decline the rest.
    fn use_offer(&mut self, framework: usize, agent: usize, offer: Offer, t: f64) -> u32 {
        let spec = &self.workload.frameworks[framework];
        let role = offer_role(&self.roles, &self.frameworks[framework], &offer.role);
        let mut remaining = offer.resources;
        let mut launched = 0;
        while u64::from(launched) < spec.tasks_per_offer
            && self.frameworks[framework].pending_count > 0
            && claim(&remaining, &spec.task_resources).is_some()
        {
            self.launch(framework, role, agent, &mut remaining, t);
            launched += 1;
        }
        if !remaining.is_empty() {
            let request = RecoverResources {
                framework_id: offer.framework_id,
                role: offer.role,
                agent_id: offer.agent_id,
                resources: remaining,
                filters: Some(Filters { refuse_seconds: spec.refuse_seconds }),
            };
            self.tell("recover_resources", |a| a.recover_resources(&request));
        }
        let f = &mut self.frameworks[framework];
        if f.pending_count == 0 && spec.suppress_when_idle && !f.suppressed {
            f.suppressed = true;
            let request = RolesRequest { framework_id: f.info.id.clone(), roles: Vec::new() };
            self.tell("suppress_offers", |a| a.suppress_offers(&request));
        }
        launched
    }

    fn sample_duration(&mut self, duration: &Duration) -> f64 {
        let unit = (self.rng.next_u64() >> 11) as f64 / (1u64 << 53) as f64;
        match *duration {
            Duration::Constant { seconds } => seconds,
            Duration::Uniform { min, max } => min + unit * (max - min),
            Duration::Exponential { mean } => -mean * (1.0 - unit).ln(),
        }
    }

    /// One task: master hooks, agent hooks, isolators, then it runs.
    fn launch(&mut self, framework: usize, role: usize, agent: usize, remaining: &mut Resources, t: f64) {
        let spec = &self.workload.frameworks[framework];
        let f = &mut self.frameworks[framework];
        let (since, count) = f.pending.front_mut().expect("pending_count > 0");
        let wait = t - *since;
        *count -= 1;
        if *count == 0 {
            f.pending.pop_front();
        }
        f.pending_count -= 1;
        let id = format!("{}.task-{}", f.info.id, f.next_task);
        f.next_task += 1;
        let mut task = TaskInfo {
            id: id.clone(),
            name: id.clone(),
            framework_id: f.info.id.clone(),
            agent_id: self.agents[agent].info.id.clone(),
            // What it asks for, taken from the offer: reserved resources first.
            resources: claim(remaining, &spec.task_resources).expect("the offer was checked to hold the task"),
            labels: Vec::new(),
        };
        let mut executor =
            ExecutorInfo { id: format!("{id}.executor"), framework_id: f.info.id.clone(), environment: Vec::new() };
        let framework_info = f.info.clone();
        if !self.hooks.is_empty() {
            let agent_info = &self.agents[agent].info;
            self.hooks.launch_task_labels(&mut task, &framework_info, agent_info);
            self.hooks.launch_task_resources(&mut task, &agent_info.resources.clone());
            if !remaining.contains(&task.resources) {
                log::warn!(
                    "task {id}: hooks set its resources to {}, which do not fit the offer; task failed",
                    task.resources
                );
                self.totals.failed += 1;
                return;
            }
            let agent_info = self.agents[agent].info.clone();
            self.hooks.run_task_labels(&mut task, &executor, &framework_info, &agent_info);
            self.hooks.executor_environment(&mut executor);
        }
        let resources = task.resources.clone();
        if !self.isolators.is_empty() {
            let config = ContainerConfig {
                container_id: format!("{id}.container"),
                task: task.clone(),
                executor: executor.clone(),
                resources: resources.clone(),
            };
            if let Err(reason) = self.isolators.launch(&config, self.next_seq as u32 + 1000) {
                log::warn!("task {id}: {reason}; task failed");
                self.isolators.cleanup(&config.container_id);
                self.totals.failed += 1;
                return;
            }
        }
        if self.sample.is_none() {
            self.sample = Some(SampleTask {
                id: id.clone(),
                labels: task.labels.clone(),
                environment: executor.environment.clone(),
            });
        }
        remaining.subtract(&resources);
        self.agents[agent].used.add(&resources);
        let counted = unreserved(&resources);
        self.in_use.add(&counted);
        let f = &mut self.frameworks[framework];
        self.role_used[role].add(&counted);
        self.role_launched[role] += 1;
        f.used.add(&counted);
        f.running += 1;
        f.launched += 1;
        f.wait_sum += wait;
        self.waits.push(wait);
        self.totals.launched += 1;
        if !self.hooks.is_empty() {
            let mut status = TaskStatus {
                task_id: id.clone(),
                agent_id: task.agent_id.clone(),
                state: TaskState::TaskRunning,
                message: String::new(),
                labels: Vec::new(),
            };
            self.hooks.task_status(&framework_info.id, &mut status);
        }
        let duration = self.sample_duration(&spec.duration);
        let seq = self.next_seq;
        self.next_seq += 1;
        self.due.push(Reverse(Due(t + duration, seq)));
        self.tasks.insert(seq, Task { id, framework, role, agent, resources, started: t, executor });
    }

    /// The live view of the latest round.
    fn summary(&self) -> String {
        let Some(round) = self.series.last() else { return String::new() };
        let shares: Vec<String> = self
            .roles
            .iter()
            .zip(&round.role_shares)
            .map(|(role, share)| format!("{role} {:.0}%", share * 100.0))
            .collect();
        let usage: Vec<String> =
            round.utilisation.iter().map(|(name, u)| format!("{name} {:.0}%", u * 100.0)).collect();
        format!("shares: {} | used: {}", shares.join(" "), usage.join(" "))
    }

    fn record(&mut self, t: f64, offers: u32, declined: u32, rejected: u32, launched: u32, allocator_us: f64) {
        let utilisation: BTreeMap<String, f64> = self
            .total
            .0
            .iter()
            .filter(|(_, total)| **total > 0.0)
            .map(|(name, total)| (name.to_string(), self.in_use.get(name) / total))
            .collect();
        let role_shares = subtree_shares(&self.role_subtrees, &self.role_used, &self.total);
        for index in (0..self.roles.len()).filter(|&i| self.role_quota[i].is_some()) {
            let used = self.subtree_used(index);
            let peak = &mut self.quota_peak[index];
            for (name, amount) in &used.0 {
                let slot = peak.0.entry(name.clone()).or_default();
                *slot = slot.max(*amount);
            }
        }
        let mut framework_shares = Vec::with_capacity(self.frameworks.len());
        for f in &mut self.frameworks {
            let share = dominant_share(&f.used, &self.total);
            if f.registered && !f.left {
                f.share_sum += share;
                f.share_rounds += 1;
                f.share_peak = f.share_peak.max(share);
            }
            framework_shares.push(share as f32);
        }
        self.series.push(RoundRecord {
            t,
            offers,
            declined,
            rejected,
            launched,
            ended: self.round_ended,
            running: self.tasks.len() as u64,
            allocator_us,
            utilisation,
            role_shares,
            framework_shares,
            shadow_differences: self.shadow_differences,
            offered_shares: std::mem::take(&mut self.offered_shares.0),
            shadow_offered_shares: std::mem::take(&mut self.offered_shares.1),
        });
    }

    fn report(self, end_time: f64, stopped: String) -> Report {
        let rounds = self.series.len().max(1) as f64;
        let mut utilisation_mean: BTreeMap<String, f64> = BTreeMap::new();
        let mut utilisation_peak: BTreeMap<String, f64> = BTreeMap::new();
        for round in &self.series {
            for (name, value) in &round.utilisation {
                *utilisation_mean.entry(name.clone()).or_default() += value / rounds;
                let peak = utilisation_peak.entry(name.clone()).or_default();
                *peak = peak.max(*value);
            }
        }
        let roles = self
            .roles
            .iter()
            .enumerate()
            .map(|(i, role)| {
                let shares: Vec<f64> = self.series.iter().map(|r| r.role_shares[i]).collect();
                RoleSummary {
                    role: role.clone(),
                    weight: self.role_weights[i],
                    frameworks: self.frameworks.iter().filter(|f| f.roles.contains(&i)).count(),
                    launched: self.role_launched[i],
                    share_mean: shares.iter().sum::<f64>() / rounds,
                    share_peak: shares.iter().copied().fold(0.0, f64::max),
                    share_final: shares.last().copied().unwrap_or(0.0),
                    quota: self.role_quota[i].as_ref().map(|quota| QuotaSummary {
                        guarantees: quota.guarantees.clone(),
                        limits: quota.limits.clone(),
                        used: self.subtree_used(i),
                        used_peak: self.quota_peak[i].clone(),
                    }),
                    reserved: self.reserved_for(role),
                }
            })
            .collect();
        let frameworks = self
            .frameworks
            .iter()
            .zip(&self.workload.frameworks)
            .map(|(f, spec)| FrameworkSummary {
                id: f.info.id.clone(),
                role: f.info.subscribed_roles().join(","),
                tasks: spec.tasks,
                launched: f.launched,
                finished: f.finished,
                share_mean: if f.share_rounds == 0 { 0.0 } else { f.share_sum / f.share_rounds as f64 },
                share_peak: f.share_peak,
                wait_mean: if f.launched == 0 { 0.0 } else { f.wait_sum / f.launched as f64 },
            })
            .collect();
        let mut totals = self.totals.clone();
        totals.pending_at_end = self.frameworks.iter().filter(|f| !f.left).map(|f| f.pending_count).sum();
        totals.running_at_end = self.tasks.len() as u64;
        Report {
            workload: self.workload.name.clone(),
            allocator: self.config.allocator_name.clone(),
            seed: self.config.seed,
            allocation_interval: self.config.allocation_interval,
            end_time,
            rounds: self.series.len(),
            stopped,
            failure: None,
            totals,
            allocator_us: Distribution::of(self.allocator_us.clone()),
            task_wait: Distribution::of(self.waits.clone()),
            utilisation_mean,
            utilisation_peak,
            roles,
            frameworks,
            hook_errors: self.hooks.errors(),
            isolators: self.isolators.summary(),
            sample_task: self.sample.clone(),
            scripts: modhost::script::statuses(),
            shadow: self.shadow.as_ref().map(|s| s.summary.clone()),
            events: self.events.clone(),
            decisions_digest: format!("{:016x}", self.digest),
            peak_rss_kib: peak_rss_kib(),
            series: self.series,
        }
    }
}

/// The process's peak resident set, from getrusage (KiB on Linux).
fn peak_rss_kib() -> u64 {
    let mut usage = std::mem::MaybeUninit::<libc::rusage>::zeroed();
    // SAFETY: getrusage fills the struct it is given; RUSAGE_SELF is always valid.
    let ok = unsafe { libc::getrusage(libc::RUSAGE_SELF, usage.as_mut_ptr()) } == 0;
    if !ok {
        return 0;
    }
    // SAFETY: getrusage succeeded, so the struct is initialised.
    let usage = unsafe { usage.assume_init() };
    u64::try_from(usage.ru_maxrss).unwrap_or(0)
}
