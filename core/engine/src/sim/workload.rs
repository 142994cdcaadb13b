//! Workloads: the cluster and the demand a simulation runs, read from documented JSON
//! (`scripts/workloads/README.md`) and checked before anything runs.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use modhost_abi::messages::{AgentInfo, FrameworkInfo, Resources, WeightInfo, reservation};
use modhost_abi::{Operation, UpdateQuota};
use serde::{Deserialize, Serialize};

/// The workload file, as written.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WorkloadFile {
    /// A short name.
    #[serde(default)]
    pub name: String,
    /// What it models.
    #[serde(default)]
    pub description: String,
    /// Agent groups.
    pub agents: Vec<AgentGroup>,
    /// Framework groups present from the start.
    pub frameworks: Vec<FrameworkGroup>,
    /// Role weights (default 1) and quotas.
    #[serde(default)]
    pub roles: BTreeMap<String, RoleSpec>,
    /// Events on the virtual clock.
    #[serde(default)]
    pub events: Vec<EventSpec>,
}

/// `count` identical agents.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AgentGroup {
    /// How many (default 1).
    #[serde(default = "one")]
    pub count: usize,
    /// Id prefix (default `agent`); ids are `<prefix>-<n>`, numbered across groups.
    #[serde(default = "agent_prefix")]
    pub prefix: String,
    /// Each agent's resources.
    pub resources: Resources,
    /// Each agent's attributes.
    #[serde(default)]
    pub attributes: BTreeMap<String, String>,
}

fn one() -> usize {
    1
}

fn agent_prefix() -> String {
    "agent".into()
}

/// `count` frameworks with the same demand.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FrameworkGroup {
    /// How many (default 1).
    #[serde(default = "one")]
    pub count: usize,
    /// Name; with `count` > 1 the ids are `<name>-1` ... `<name>-<count>`.
    pub name: String,
    /// Role; `{i}` is replaced by the framework's number in the group.
    #[serde(default)]
    pub role: String,
    /// Roles of a framework in several (Mesos's MULTI_ROLE), instead of `role`; `{i}` as
    /// there. Its tasks run in the role of the offer they are launched from.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub roles: Vec<String>,
    /// Tasks each framework runs.
    pub tasks: u64,
    /// Resources of one task.
    pub task_resources: Resources,
    /// How long a task runs.
    pub duration: Duration,
    /// Most tasks launched from one offer (default 1).
    #[serde(default = "one_u64")]
    pub tasks_per_offer: u64,
    /// How the framework declines what it does not use.
    #[serde(default)]
    pub decline: DeclinePolicy,
    /// Suppress offers when nothing is left to launch, revive when there is again
    /// (default true).
    #[serde(default = "yes")]
    pub suppress_when_idle: bool,
    /// Relaunch tasks lost with their agent (default true).
    #[serde(default = "yes")]
    pub relaunch_lost: bool,
}

fn one_u64() -> u64 {
    1
}

fn yes() -> bool {
    true
}

/// Declining offers.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DeclinePolicy {
    /// The refusal filter sent with declined resources (Mesos's default, 5 s).
    pub refuse_seconds: f64,
}

impl Default for DeclinePolicy {
    fn default() -> Self {
        DeclinePolicy { refuse_seconds: 5.0 }
    }
}

/// A task duration distribution, in seconds.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(tag = "distribution", rename_all = "snake_case", deny_unknown_fields)]
pub enum Duration {
    /// Always the same.
    Constant {
        /// Seconds.
        seconds: f64,
    },
    /// Uniform between `min` and `max`.
    Uniform {
        /// Seconds.
        min: f64,
        /// Seconds.
        max: f64,
    },
    /// Exponential with this mean.
    Exponential {
        /// Seconds.
        mean: f64,
    },
}

/// A role's settings.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RoleSpec {
    /// DRF weight (default 1).
    #[serde(default = "weight_one")]
    pub weight: f64,
    /// Its quota (top-level roles only), covering its subtree.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub quota: Option<QuotaSpec>,
}

fn weight_one() -> f64 {
    1.0
}

/// A quota as a workload writes it (Mesos's `QuotaConfig`): what the role is guaranteed, and
/// what it may hold at most (a resource left out has no limit).
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct QuotaSpec {
    /// Guaranteed amounts.
    #[serde(default)]
    pub guarantees: Resources,
    /// Limits.
    #[serde(default)]
    pub limits: Resources,
}

/// An event on the virtual clock.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case", deny_unknown_fields)]
pub enum EventSpec {
    /// An agent and its tasks are lost.
    AgentLost {
        /// When, in seconds.
        at: f64,
        /// The agent's id.
        agent: String,
    },
    /// New frameworks register.
    FrameworkArrives {
        /// When, in seconds.
        at: f64,
        /// The frameworks, as in `frameworks`.
        framework: FrameworkGroup,
    },
    /// A framework leaves; its tasks are killed.
    FrameworkLeaves {
        /// When, in seconds.
        at: f64,
        /// The framework's id.
        framework: String,
    },
    /// A role's weight changes.
    WeightChange {
        /// When, in seconds.
        at: f64,
        /// The role.
        role: String,
        /// Its new weight.
        weight: f64,
    },
    /// Unallocated resources of an agent are reserved for a role (Mesos's operator RESERVE).
    Reserve {
        /// When, in seconds.
        at: f64,
        /// The agent's id.
        agent: String,
        /// What is reserved, each name with its role: `{"cpus(eng)": 4}`.
        resources: Resources,
    },
    /// Reserved resources of an agent become unreserved (Mesos's operator UNRESERVE).
    Unreserve {
        /// When, in seconds.
        at: f64,
        /// The agent's id.
        agent: String,
        /// What is unreserved, each name with its role: `{"cpus(eng)": 4}`.
        resources: Resources,
    },
    /// A role's quota is set (both parts empty: removed).
    QuotaChange {
        /// When, in seconds.
        at: f64,
        /// The role (a top-level one).
        role: String,
        /// Guaranteed amounts.
        #[serde(default)]
        guarantees: Resources,
        /// Limits.
        #[serde(default)]
        limits: Resources,
    },
}

/// A framework ready to simulate.
#[derive(Clone, Debug)]
pub struct FrameworkSpec {
    /// Its description for the allocator.
    pub info: FrameworkInfo,
    /// Tasks to run.
    pub tasks: u64,
    /// One task's resources.
    pub task_resources: Resources,
    /// Task durations.
    pub duration: Duration,
    /// Tasks per offer.
    pub tasks_per_offer: u64,
    /// Refusal filter on decline.
    pub refuse_seconds: f64,
    /// Suppress when idle.
    pub suppress_when_idle: bool,
    /// Relaunch lost tasks.
    pub relaunch_lost: bool,
    /// When it registers.
    pub arrive_at: f64,
}

/// An event of a checked workload.
#[derive(Clone, Debug)]
pub enum Event {
    /// An agent is lost.
    AgentLost {
        /// The agent's id.
        agent: String,
    },
    /// Framework `index` (of [`Workload::frameworks`]) registers.
    FrameworkArrives {
        /// Index in `frameworks`.
        index: usize,
    },
    /// A framework leaves.
    FrameworkLeaves {
        /// Its id.
        framework: String,
    },
    /// A weight changes.
    WeightChange {
        /// The role.
        role: String,
        /// The weight.
        weight: f64,
    },
    /// A quota is set or removed.
    QuotaChange(UpdateQuota),
    /// An agent's unallocated resources are reserved or unreserved.
    Operation {
        /// The agent's id.
        agent: String,
        /// What is done.
        operation: Operation,
    },
}

/// A checked, expanded workload.
#[derive(Clone, Debug)]
pub struct Workload {
    /// Its name.
    pub name: String,
    /// Its agents.
    pub agents: Vec<AgentInfo>,
    /// All frameworks, including those that arrive later.
    pub frameworks: Vec<FrameworkSpec>,
    /// Initial role weights.
    pub weights: Vec<WeightInfo>,
    /// Initial quotas.
    pub quotas: Vec<UpdateQuota>,
    /// Events in time order (stable for equal times).
    pub events: Vec<(f64, Event)>,
}

/// Why a workload was refused.
#[derive(Debug, thiserror::Error)]
pub enum WorkloadError {
    /// The file could not be read.
    #[error("cannot read workload '{}': {cause}", path.display())]
    Read {
        /// The file.
        path: PathBuf,
        /// Why.
        cause: std::io::Error,
    },
    /// Not JSON of the expected shape.
    #[error("workload {origin}: {message}")]
    Syntax {
        /// Which workload.
        origin: String,
        /// The parser's message, with line and column.
        message: String,
    },
    /// A value that cannot be simulated.
    #[error("workload {origin}: {field}: {reason}")]
    Invalid {
        /// Which workload.
        origin: String,
        /// The field at fault, as a JSON path.
        field: String,
        /// What is wrong.
        reason: String,
    },
}

/// The bundled demo workload (the default of `modhost simulate`).
pub const DEMO: &str = include_str!("../../../../scripts/workloads/demo.json");

impl Workload {
    /// Reads and checks a workload file.
    pub fn from_file(path: &Path) -> Result<Workload, WorkloadError> {
        let text =
            std::fs::read_to_string(path).map_err(|cause| WorkloadError::Read { path: path.to_owned(), cause })?;
        Workload::parse(&text, &format!("'{}'", path.display()))
    }

    /// Parses and checks workload text; `origin` names it in errors.
    pub fn parse(text: &str, origin: &str) -> Result<Workload, WorkloadError> {
        let file: WorkloadFile = serde_json::from_str(text)
            .map_err(|e| WorkloadError::Syntax { origin: origin.to_owned(), message: e.to_string() })?;
        Workload::check(file, origin)
    }

    /// Checks and expands a workload.
    pub fn check(file: WorkloadFile, origin: &str) -> Result<Workload, WorkloadError> {
        let invalid =
            |field: String, reason: String| WorkloadError::Invalid { origin: origin.to_owned(), field, reason };

        let mut agents = Vec::new();
        let mut numbers: BTreeMap<String, usize> = BTreeMap::new();
        for (g, group) in file.agents.iter().enumerate() {
            let at = format!("agents[{g}]");
            if group.count == 0 {
                return Err(invalid(format!("{at}.count"), "must be at least 1".into()));
            }
            check_resources(&group.resources, &format!("{at}.resources"), false).map_err(|(f, r)| invalid(f, r))?;
            for _ in 0..group.count {
                let n = numbers.entry(group.prefix.clone()).or_default();
                let id = format!("{}-{n}", group.prefix);
                *n += 1;
                agents.push(AgentInfo {
                    id: id.clone(),
                    hostname: id,
                    resources: group.resources.clone(),
                    attributes: group.attributes.clone(),
                });
            }
        }
        if agents.is_empty() {
            return Err(invalid("agents".into(), "a workload needs at least one agent".into()));
        }
        let agent_ids: BTreeSet<&str> = agents.iter().map(|a| a.id.as_str()).collect();
        if agent_ids.len() != agents.len() {
            return Err(invalid(
                "agents".into(),
                "two groups produce the same agent ids; give them other prefixes".into(),
            ));
        }

        let mut frameworks = Vec::new();
        for (g, group) in file.frameworks.iter().enumerate() {
            expand(group, &format!("frameworks[{g}]"), 0.0, &agents, &mut frameworks)
                .map_err(|(f, r)| invalid(f, r))?;
        }

        let mut events = Vec::new();
        for (e, event) in file.events.iter().enumerate() {
            let at_field = format!("events[{e}]");
            let at = match event {
                EventSpec::AgentLost { at, .. }
                | EventSpec::FrameworkArrives { at, .. }
                | EventSpec::FrameworkLeaves { at, .. }
                | EventSpec::WeightChange { at, .. }
                | EventSpec::Reserve { at, .. }
                | EventSpec::Unreserve { at, .. }
                | EventSpec::QuotaChange { at, .. } => *at,
            };
            if !(at.is_finite() && at >= 0.0) {
                return Err(invalid(format!("{at_field}.at"), format!("{at} is not a time (seconds >= 0)")));
            }
            let checked = match event {
                EventSpec::AgentLost { agent, .. } => {
                    if !agent_ids.contains(agent.as_str()) {
                        return Err(invalid(
                            format!("{at_field}.agent"),
                            format!("no agent '{agent}' in this workload"),
                        ));
                    }
                    Event::AgentLost { agent: agent.clone() }
                }
                EventSpec::FrameworkArrives { framework, .. } => {
                    let first = frameworks.len();
                    expand(framework, &format!("{at_field}.framework"), at, &agents, &mut frameworks)
                        .map_err(|(f, r)| invalid(f, r))?;
                    for index in first..frameworks.len() {
                        events.push((at, Event::FrameworkArrives { index }));
                    }
                    continue;
                }
                EventSpec::FrameworkLeaves { framework, .. } => {
                    if !frameworks.iter().any(|f| &f.info.id == framework) {
                        return Err(invalid(
                            format!("{at_field}.framework"),
                            format!("no framework '{framework}' (declared before this event)"),
                        ));
                    }
                    Event::FrameworkLeaves { framework: framework.clone() }
                }
                EventSpec::WeightChange { role, weight, .. } => {
                    let known = frameworks.iter().any(|f| &f.info.role == role) || file.roles.contains_key(role);
                    if !known {
                        return Err(invalid(format!("{at_field}.role"), format!("unknown role '{role}'")));
                    }
                    check_weight(*weight).map_err(|r| invalid(format!("{at_field}.weight"), r))?;
                    Event::WeightChange { role: role.clone(), weight: *weight }
                }
                EventSpec::Reserve { agent, resources, .. } | EventSpec::Unreserve { agent, resources, .. } => {
                    if !agent_ids.contains(agent.as_str()) {
                        return Err(invalid(
                            format!("{at_field}.agent"),
                            format!("no agent '{agent}' in this workload"),
                        ));
                    }
                    check_resources(resources, &format!("{at_field}.resources"), false)
                        .map_err(|(f, r)| invalid(f, r))?;
                    if let Some(name) = resources.0.keys().find(|name| reservation(name).is_none()) {
                        return Err(invalid(
                            format!("{at_field}.resources.{name}"),
                            "names no reservation: write it name(role), as cpus(eng)".into(),
                        ));
                    }
                    let resources = resources.clone();
                    let operation = if matches!(event, EventSpec::Reserve { .. }) {
                        Operation::Reserve { resources }
                    } else {
                        Operation::Unreserve { resources }
                    };
                    Event::Operation { agent: agent.clone(), operation }
                }
                EventSpec::QuotaChange { role, guarantees, limits, .. } => {
                    let quota = QuotaSpec { guarantees: guarantees.clone(), limits: limits.clone() };
                    Event::QuotaChange(checked_quota(role, &quota).map_err(|r| invalid(at_field.clone(), r))?)
                }
            };
            events.push((at, checked));
        }
        events.sort_by(|a, b| a.0.total_cmp(&b.0));

        let mut ids = BTreeSet::new();
        for framework in &frameworks {
            if !ids.insert(framework.info.id.as_str()) {
                return Err(invalid(
                    "frameworks".into(),
                    format!("framework id '{}' is used twice", framework.info.id),
                ));
            }
        }
        let (mut weights, mut quotas) = (Vec::new(), Vec::new());
        for (role, spec) in &file.roles {
            modhost_drf::check_role(role).map_err(|e| invalid(format!("roles.{role}"), e.to_string()))?;
            check_weight(spec.weight).map_err(|r| invalid(format!("roles.{role}.weight"), r))?;
            weights.push(WeightInfo { role: role.clone(), weight: spec.weight });
            if let Some(quota) = &spec.quota {
                quotas.push(checked_quota(role, quota).map_err(|r| invalid(format!("roles.{role}.quota"), r))?);
            }
        }
        Ok(Workload { name: file.name, agents, frameworks, weights, quotas, events })
    }

    /// Every task of every framework.
    pub fn total_tasks(&self) -> u64 {
        self.frameworks.iter().map(|f| f.tasks).sum()
    }
}

/// A quota checked as the allocators check it.
fn checked_quota(role: &str, quota: &QuotaSpec) -> Result<UpdateQuota, String> {
    let request =
        UpdateQuota { role: role.to_owned(), guarantees: quota.guarantees.clone(), limits: quota.limits.clone() };
    modhost_drf::check_quota(&request).map_err(|e| e.to_string())?;
    Ok(request)
}

fn check_weight(weight: f64) -> Result<(), String> {
    if weight.is_finite() && weight > 0.0 { Ok(()) } else { Err(format!("{weight} is not a positive number")) }
}

/// Refuses negative, non-finite and (unless allowed) empty resources, and names the allocators
/// would refuse (a reservation is written name(role), as `cpus(eng)`).
fn check_resources(resources: &Resources, field: &str, allow_empty: bool) -> Result<(), (String, String)> {
    modhost_drf::check_names(resources).map_err(|e| (field.to_owned(), e.to_string()))?;
    for (name, amount) in &resources.0 {
        if !amount.is_finite() || *amount < 0.0 {
            return Err((format!("{field}.{name}"), format!("{amount} is negative or not a number")));
        }
    }
    if !allow_empty && resources.is_empty() {
        return Err((field.to_owned(), "no resources given".into()));
    }
    Ok(())
}

/// Checks a framework group and appends its frameworks.
fn expand(
    group: &FrameworkGroup,
    at: &str,
    arrive_at: f64,
    agents: &[AgentInfo],
    out: &mut Vec<FrameworkSpec>,
) -> Result<(), (String, String)> {
    let err = |field: &str, reason: String| (format!("{at}.{field}"), reason);
    if group.count == 0 {
        return Err(err("count", "must be at least 1".into()));
    }
    if group.name.is_empty() {
        return Err(err("name", "must not be empty".into()));
    }
    match (group.role.is_empty(), group.roles.is_empty()) {
        (true, true) => return Err(err("role", "must not be empty (or give roles)".into())),
        (false, false) => return Err(err("roles", "give role or roles, not both".into())),
        _ => {}
    }
    // Checked as the allocators check them (a `{i}` stands for the framework's number).
    let sample = FrameworkInfo {
        role: group.role.replace("{i}", "0"),
        roles: group.roles.iter().map(|role| role.replace("{i}", "0")).collect(),
        ..FrameworkInfo::default()
    };
    if let Err(e) = modhost_drf::checked_roles(&sample) {
        return Err(err(if group.roles.is_empty() { "role" } else { "roles" }, e.to_string()));
    }
    if group.tasks_per_offer == 0 {
        return Err(err("tasks_per_offer", "must be at least 1".into()));
    }
    check_resources(&group.task_resources, &format!("{at}.task_resources"), false)?;
    if !agents.iter().any(|a| super::engine::claim(&a.resources, &group.task_resources).is_some()) {
        let largest = agents.iter().map(|a| a.resources.to_string()).max_by_key(|s| s.len()).unwrap_or_default();
        return Err(err(
            "task_resources",
            format!("a task of {} fits on no agent (agents have at most {largest})", group.task_resources),
        ));
    }
    let positive = |v: f64| v.is_finite() && v > 0.0;
    match &group.duration {
        Duration::Constant { seconds } if !positive(*seconds) => {
            return Err(err("duration.seconds", format!("{seconds} is not a positive number of seconds")));
        }
        Duration::Uniform { min, max } if !(min.is_finite() && *min >= 0.0 && positive(*max) && min <= max) => {
            return Err(err(
                "duration",
                format!("uniform needs 0 <= min <= max and max > 0, not min {min}, max {max}"),
            ));
        }
        Duration::Exponential { mean } if !positive(*mean) => {
            return Err(err("duration.mean", format!("{mean} is not a positive number of seconds")));
        }
        _ => {}
    }
    let refuse = group.decline.refuse_seconds;
    if !(refuse.is_finite() && refuse >= 0.0) {
        return Err(err("decline.refuse_seconds", format!("{refuse} is not a number of seconds >= 0")));
    }
    for i in 1..=group.count {
        let id = if group.count == 1 { group.name.clone() } else { format!("{}-{i}", group.name) };
        out.push(FrameworkSpec {
            info: FrameworkInfo {
                id: id.clone(),
                name: id,
                role: group.role.replace("{i}", &i.to_string()),
                roles: group.roles.iter().map(|role| role.replace("{i}", &i.to_string())).collect(),
            },
            tasks: group.tasks,
            task_resources: group.task_resources.clone(),
            duration: group.duration.clone(),
            tasks_per_offer: group.tasks_per_offer,
            refuse_seconds: refuse,
            suppress_when_idle: group.suppress_when_idle,
            relaunch_lost: group.relaunch_lost,
            arrive_at,
        });
    }
    Ok(())
}

/// Mesos's `DeclineOffers` benchmark shape: `agents` agents of cpus 24, mem 4096, disk 4096
/// and `frameworks` frameworks that each want agents/frameworks tasks of cpus 16, mem 2014,
/// disk 1024 (one per offer), run them for ever, and decline everything else with a
/// refusal filter of a year (Mesos used INT_MAX seconds, capped to a year).
pub fn decline_offers(agents: usize, frameworks: usize) -> WorkloadFile {
    let resources = Resources::new().with("cpus", 24.0).with("mem", 4096.0).with("disk", 4096.0);
    let task = Resources::new().with("cpus", 16.0).with("mem", 2014.0).with("disk", 1024.0);
    WorkloadFile {
        name: format!("decline-offers-{agents}x{frameworks}"),
        description: format!(
            "Mesos's DeclineOffers benchmark shape: {agents} agents, {frameworks} frameworks that decline what they do not use"
        ),
        agents: vec![AgentGroup { count: agents, prefix: "agent".into(), resources, attributes: BTreeMap::new() }],
        frameworks: vec![FrameworkGroup {
            count: frameworks,
            name: "framework".into(),
            role: "role-{i}".into(),
            roles: Vec::new(),
            tasks: agents.div_ceil(frameworks.max(1)) as u64,
            task_resources: task,
            duration: Duration::Constant { seconds: 1e9 },
            tasks_per_offer: 1,
            decline: DeclinePolicy { refuse_seconds: 365.0 * 24.0 * 3600.0 },
            suppress_when_idle: false,
            relaunch_lost: true,
        }],
        roles: BTreeMap::new(),
        events: Vec::new(),
    }
}

/// Mesos's `LargeAndSmallQuota` benchmark shape: `small` roles with a small quota (cpus 1,
/// mem 1024, disk 1024) and `large` roles with a large one (cpus 4, mem 4096, disk 4096), one
/// framework each, on `small / 5 + large * 5` agents of cpus 2, mem 2048, disk 2048; every
/// framework wants its quota's worth of tasks of cpus 1, mem 1024, disk 1024 and keeps them.
pub fn large_and_small_quota(small: usize, large: usize) -> WorkloadFile {
    let amounts = |n: f64| Resources::new().with("cpus", n).with("mem", 1024.0 * n).with("disk", 1024.0 * n);
    let agents = small / 5 + large * 5;
    let group = |name: &str, count: usize, tasks: u64| FrameworkGroup {
        count,
        name: name.into(),
        role: format!("{name}-{{i}}"),
        roles: Vec::new(),
        tasks,
        task_resources: amounts(1.0),
        duration: Duration::Constant { seconds: 1e9 },
        tasks_per_offer: tasks,
        decline: DeclinePolicy { refuse_seconds: 365.0 * 24.0 * 3600.0 },
        suppress_when_idle: false,
        relaunch_lost: true,
    };
    let mut roles = BTreeMap::new();
    for (name, count, size) in [("small", small, 1.0), ("large", large, 4.0)] {
        for i in 1..=count {
            let quota = QuotaSpec { guarantees: amounts(size), limits: amounts(size) };
            roles.insert(format!("{name}-{i}"), RoleSpec { weight: 1.0, quota: Some(quota) });
        }
    }
    WorkloadFile {
        name: format!("large-and-small-quota-{small}x{large}"),
        description: format!(
            "Mesos's LargeAndSmallQuota benchmark shape: {small} small and {large} large quota roles on {agents} agents"
        ),
        agents: vec![AgentGroup {
            count: agents,
            prefix: "agent".into(),
            resources: amounts(2.0),
            attributes: BTreeMap::new(),
        }],
        frameworks: [group("small", small, 1), group("large", large, 4)].into_iter().filter(|g| g.count > 0).collect(),
        roles,
        events: Vec::new(),
    }
}
