//! The structured arguments of the Allocator, Hook and Isolator kinds.
//!
//! They cross the boundary as JSON (serde), never as C structs, so that a message can gain an
//! optional field without breaking modules built before it: unknown fields are ignored and
//! missing optional ones take their defaults. This is modhost's answer to Mesos modules
//! breaking on every release because C++ and protobuf types crossed the boundary.
//!
//! They follow Mesos's protobufs where those have a meaning here, with Mesos's newer names
//! (`agent`, not `slave`). Resources are scalar only (cpus, mem, disk, gpus, and any other
//! name); ranges (ports) and sets are left out, as are persistent volumes. A resource
//! reserved for a role is named as Mesos writes it, `cpus(eng/ml)`: see [`reservation`].

use std::collections::BTreeMap;
use std::sync::Arc;

use serde::{Deserialize, Serialize};

pub use crate::offers::{Iter as OffersIter, OfferRef, Offers, ResourceIter};

/// Scalar resources by name, such as `{"cpus": 4, "mem": 4096}`.
///
/// Arithmetic rounds to three decimal places, as Mesos's fixed-point scalars do, so that
/// adding and subtracting the same amounts always returns to the same value. Names are
/// shared (`Arc<str>`): a cluster has a handful of resource names and hundreds of thousands
/// of resource sets, and cloning a set must not allocate a string per name.
///
/// It reads from a JSON object of names to amounts; an empty array also reads as no
/// resources, because Lua has a single table type and its empty table `{}` becomes `[]`.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
#[serde(transparent)]
pub struct Resources(pub BTreeMap<Arc<str>, f64>);

impl<'de> Deserialize<'de> for Resources {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_any(ResourcesVisitor)
    }
}

struct ResourcesVisitor;

impl<'de> serde::de::Visitor<'de> for ResourcesVisitor {
    type Value = Resources;

    fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("a map of resource names to amounts")
    }

    fn visit_map<A: serde::de::MapAccess<'de>>(self, mut map: A) -> Result<Resources, A::Error> {
        let mut amounts = BTreeMap::new();
        while let Some(name) = map.next_key_seed(NameSeed)? {
            amounts.insert(name, map.next_value::<f64>()?);
        }
        Ok(Resources(amounts))
    }

    fn visit_seq<A: serde::de::SeqAccess<'de>>(self, mut seq: A) -> Result<Resources, A::Error> {
        if seq.next_element::<serde::de::IgnoredAny>()?.is_some() {
            return Err(serde::de::Error::invalid_type(serde::de::Unexpected::Seq, &self));
        }
        Ok(Resources::new())
    }
}

/// Mesos's predefined scalar resources: the names nearly every resource set carries.
const WELL_KNOWN_NAMES: [&str; 4] = ["cpus", "mem", "disk", "gpus"];

/// A resource name as [`Resources`] keeps it: one of the well-known names is shared, so that
/// reading or building a resource set does not allocate a string per name (a give-back
/// message carries three of them, and a round at cluster scale reads ten thousand of those);
/// any other name is allocated.
pub(crate) fn resource_name(name: &str) -> Arc<str> {
    static SHARED: std::sync::OnceLock<[Arc<str>; 4]> = std::sync::OnceLock::new();
    let shared = SHARED.get_or_init(|| WELL_KNOWN_NAMES.map(Arc::from));
    match shared.iter().find(|known| ***known == *name) {
        Some(known) => Arc::clone(known),
        None => Arc::from(name),
    }
}

/// Reads a resource name through [`resource_name`].
struct NameSeed;

impl<'de> serde::de::DeserializeSeed<'de> for NameSeed {
    type Value = Arc<str>;

    fn deserialize<D: serde::Deserializer<'de>>(self, deserializer: D) -> Result<Arc<str>, D::Error> {
        deserializer.deserialize_str(self)
    }
}

impl serde::de::Visitor<'_> for NameSeed {
    type Value = Arc<str>;

    fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("a resource name")
    }

    fn visit_str<E: serde::de::Error>(self, name: &str) -> Result<Arc<str>, E> {
        Ok(resource_name(name))
    }

    fn visit_bytes<E: serde::de::Error>(self, name: &[u8]) -> Result<Arc<str>, E> {
        let name = std::str::from_utf8(name)
            .map_err(|_| E::invalid_value(serde::de::Unexpected::Bytes(name), &"a UTF-8 resource name"))?;
        Ok(resource_name(name))
    }
}

/// The unreserved name and the role of a reserved resource's name, as Mesos writes one in text:
/// `cpus(eng/ml)` is cpus reserved for the role `eng/ml`; a name without a role in parentheses
/// at its end is unreserved. Reserved resources are offered only to frameworks of that role
/// or its subroles, count towards its quota, and come back reserved; for shares and for
/// `min_allocatable_resources` they count as their unreserved name, as in Mesos.
///
/// ```
/// use modhost_abi::messages::reservation;
/// assert_eq!(reservation("cpus(eng/ml)"), Some(("cpus", "eng/ml")));
/// assert_eq!(reservation("cpus"), None);
/// ```
pub fn reservation(name: &str) -> Option<(&str, &str)> {
    let inner = name.strip_suffix(')')?;
    let (base, role) = inner.split_once('(')?;
    Some((base, role))
}

/// Rounds to Mesos's scalar precision (three decimal places).
pub fn round_scalar(value: f64) -> f64 {
    (value * 1000.0).round() / 1000.0
}

impl Resources {
    /// No resources.
    pub fn new() -> Self {
        Self::default()
    }

    /// These resources with `amount` of `name` added.
    pub fn with(mut self, name: &str, amount: f64) -> Self {
        *self.0.entry(resource_name(name)).or_default() += amount;
        self
    }

    /// The amount of `name` (0 when absent).
    pub fn get(&self, name: &str) -> f64 {
        self.0.get(name).copied().unwrap_or(0.0)
    }

    /// Adds `other` to these resources.
    pub fn add(&mut self, other: &Resources) {
        for (name, amount) in &other.0 {
            let slot = self.0.entry(name.clone()).or_default();
            *slot = round_scalar(*slot + amount);
        }
    }

    /// Subtracts `other`; amounts that reach zero are removed.
    pub fn subtract(&mut self, other: &Resources) {
        for (name, amount) in &other.0 {
            let slot = self.0.entry(name.clone()).or_default();
            *slot = round_scalar(*slot - amount);
        }
        self.0.retain(|_, amount| *amount != 0.0);
    }

    /// Whether every amount of `other` fits in these resources.
    pub fn contains(&self, other: &Resources) -> bool {
        other.0.iter().all(|(name, amount)| round_scalar(self.get(name) - amount) >= 0.0)
    }

    /// Whether there is nothing positive here.
    pub fn is_empty(&self) -> bool {
        self.0.values().all(|amount| *amount <= 0.0)
    }

    /// Whether any amount is negative.
    pub fn has_negative(&self) -> bool {
        self.0.values().any(|amount| *amount < 0.0)
    }
}

impl std::fmt::Display for Resources {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let parts: Vec<String> = self.0.iter().map(|(name, amount)| format!("{name}:{amount}")).collect();
        f.write_str(&parts.join(";"))
    }
}

/// A key/value label (Mesos `Label`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Label {
    /// The key.
    pub key: String,
    /// The value.
    #[serde(default)]
    pub value: String,
}

/// An environment variable (Mesos `Environment.Variable`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct EnvironmentVariable {
    /// The name.
    pub name: String,
    /// The value.
    #[serde(default)]
    pub value: String,
}

/// An agent (Mesos `SlaveInfo`).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct AgentInfo {
    /// Unique id.
    pub id: String,
    /// Host name.
    #[serde(default)]
    pub hostname: String,
    /// Total resources.
    #[serde(default)]
    pub resources: Resources,
    /// Attributes (text values only).
    #[serde(default)]
    pub attributes: BTreeMap<String, String>,
}

/// A framework (Mesos `FrameworkInfo`, with a single role).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct FrameworkInfo {
    /// Unique id.
    pub id: String,
    /// Display name.
    #[serde(default)]
    pub name: String,
    /// The role its resources are accounted to.
    #[serde(default)]
    pub role: String,
    /// The roles of a framework in several (Mesos's MULTI_ROLE `roles`; ABI 1.2): when given,
    /// `role` is not used. Offers, refusal filters, suppression and shares are then per
    /// (framework, role), and what it holds is held in a role.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub roles: Vec<String>,
}

impl FrameworkInfo {
    /// The roles the framework is in: `roles`, or else `role` alone.
    ///
    /// ```
    /// use modhost_abi::messages::FrameworkInfo;
    /// let one = FrameworkInfo { id: "f".into(), role: "eng".into(), ..FrameworkInfo::default() };
    /// assert_eq!(one.subscribed_roles(), ["eng"]);
    /// let two = FrameworkInfo { roles: vec!["eng".into(), "ops".into()], ..one };
    /// assert_eq!(two.subscribed_roles(), ["eng", "ops"]);
    /// ```
    pub fn subscribed_roles(&self) -> Vec<&str> {
        if self.roles.is_empty() { vec![self.role.as_str()] } else { self.roles.iter().map(String::as_str).collect() }
    }
}

/// A task (Mesos `TaskInfo`).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct TaskInfo {
    /// Unique id.
    pub id: String,
    /// Display name.
    #[serde(default)]
    pub name: String,
    /// The framework that launched it.
    pub framework_id: String,
    /// The agent it runs on.
    pub agent_id: String,
    /// What it uses.
    #[serde(default)]
    pub resources: Resources,
    /// Labels, which hooks may replace.
    #[serde(default)]
    pub labels: Vec<Label>,
}

/// The executor of a task (Mesos `ExecutorInfo`).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct ExecutorInfo {
    /// Unique id.
    pub id: String,
    /// The framework it belongs to.
    pub framework_id: String,
    /// Its command's environment, which hooks may replace.
    #[serde(default)]
    pub environment: Vec<EnvironmentVariable>,
}

/// A task state (a subset of Mesos `TaskState`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum TaskState {
    /// Launched, not yet running.
    TaskStaging,
    /// Running.
    TaskRunning,
    /// Ended successfully.
    TaskFinished,
    /// Ended with a failure.
    TaskFailed,
    /// Killed.
    TaskKilled,
    /// Lost with its agent.
    TaskLost,
}

/// A status update (Mesos `TaskStatus`).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct TaskStatus {
    /// The task.
    pub task_id: String,
    /// The agent it ran on.
    pub agent_id: String,
    /// The new state.
    pub state: TaskState,
    /// Why, in words.
    #[serde(default)]
    pub message: String,
    /// Labels; the only field a hook's decoration changes.
    #[serde(default)]
    pub labels: Vec<Label>,
}

/// A refusal filter (Mesos `Filters`).
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct Filters {
    /// For how long declined resources are not offered to the framework again. Mesos's
    /// default is 5 seconds; 0 means no filter.
    pub refuse_seconds: f64,
}

impl Default for Filters {
    fn default() -> Self {
        Filters { refuse_seconds: 5.0 }
    }
}

impl Filters {
    /// How long the filter lasts under Mesos's rules, or `None` for no filter: a negative or
    /// non-finite value means the default (5 s), 0 means no filter, it lasts at least one
    /// `allocation_interval`, and at most a year.
    ///
    /// ```
    /// use modhost_abi::messages::Filters;
    ///
    /// assert_eq!(Filters { refuse_seconds: 0.0 }.lasts(1.0), None);
    /// assert_eq!(Filters { refuse_seconds: -1.0 }.lasts(1.0), Some(5.0));
    /// assert_eq!(Filters { refuse_seconds: 0.2 }.lasts(1.0), Some(1.0));
    /// ```
    pub fn lasts(&self, allocation_interval: f64) -> Option<f64> {
        let refuse = if self.refuse_seconds.is_finite() && self.refuse_seconds >= 0.0 {
            self.refuse_seconds.min(365.0 * 24.0 * 3600.0)
        } else {
            5.0
        };
        (refuse > 0.0).then(|| refuse.max(allocation_interval))
    }
}

/// What the host tells an allocator at start (Mesos `Allocator::Options`).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct AllocatorOptions {
    /// Seconds between allocation rounds (Mesos's default is 1).
    pub allocation_interval: f64,
    /// An agent's free resources are offered only if they hold at least one of these
    /// (Mesos's default: cpus 0.01 or mem 32).
    pub min_allocatable_resources: Vec<Resources>,
    /// Resource names left out of DRF shares (Mesos `--fair_sharing_excluded_resource_names`).
    #[serde(default)]
    pub fairness_excluded_resource_names: Vec<String>,
    /// Seeds the allocator's random choices (the agent shuffle), for deterministic runs.
    #[serde(default)]
    pub seed: u64,
}

impl Default for AllocatorOptions {
    fn default() -> Self {
        AllocatorOptions {
            allocation_interval: 1.0,
            min_allocatable_resources: vec![Resources::new().with("cpus", 0.01), Resources::new().with("mem", 32.0)],
            fairness_excluded_resource_names: Vec::new(),
            seed: 0,
        }
    }
}

/// Resources an allocator offers a framework on one agent.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Offer {
    /// The framework.
    pub framework_id: String,
    /// The agent.
    pub agent_id: String,
    /// What is offered.
    pub resources: Resources,
    /// The role the resources are offered in (empty: the framework's only role). Last, so that
    /// an offer written as a list before ABI 1.2 still reads.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub role: String,
}

/// A role's weight (Mesos `WeightInfo`).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct WeightInfo {
    /// The role.
    pub role: String,
    /// Its weight (default 1); DRF shares are divided by it.
    pub weight: f64,
}

/// A container's configuration for isolators (Mesos `ContainerConfig`).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct ContainerConfig {
    /// The container.
    pub container_id: String,
    /// The task it runs.
    pub task: TaskInfo,
    /// Its executor.
    pub executor: ExecutorInfo,
    /// Its resources.
    #[serde(default)]
    pub resources: Resources,
}

/// What an isolator may ask for at launch (Mesos `ContainerLaunchInfo`, the environment part).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct ContainerLaunchInfo {
    /// Extra environment for the container.
    #[serde(default)]
    pub environment: Vec<EnvironmentVariable>,
}

/// A limit a container hit (Mesos `ContainerLimitation`); the task is then failed.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct ContainerLimitation {
    /// The resources over their limit.
    #[serde(default)]
    pub resources: Resources,
    /// Why, in words.
    pub message: String,
}

/// Usage figures (a subset of Mesos `ResourceStatistics`).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct ResourceStatistics {
    /// When the figures were taken, in seconds of the host's clock.
    #[serde(default)]
    pub timestamp: f64,
    /// Resources in use, by name.
    #[serde(default)]
    pub used: Resources,
    /// Resource limits, by name.
    #[serde(default)]
    pub limits: Resources,
}

/// A container's status (a subset of Mesos `ContainerStatus`).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct ContainerStatus {
    /// The container.
    pub container_id: String,
    /// Free-form details from the isolator.
    #[serde(default)]
    pub labels: Vec<Label>,
}

/// A container known to an agent when it restarts (Mesos `ContainerState`).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct ContainerState {
    /// The container.
    pub container_id: String,
    /// Its executor.
    pub executor: ExecutorInfo,
    /// Its process id.
    #[serde(default)]
    pub pid: u32,
}

#[cfg(test)]
mod tests {
    use super::Resources;

    fn check(json: &str, expected: Result<Resources, &str>) {
        let read = serde_json::from_str::<Resources>(json);
        match (read, expected) {
            (Ok(read), Ok(expected)) => assert_eq!(read, expected, "{json}"),
            (Err(error), Err(fragment)) => assert!(error.to_string().contains(fragment), "{json}: {error}"),
            (read, expected) => panic!("{json}: read {read:?}, expected {expected:?}"),
        }
    }

    #[test]
    fn resources_read_from_a_map_or_from_lua_s_empty_table() {
        check(r#"{"cpus": 2, "mem": 512.5}"#, Ok(Resources::new().with("cpus", 2.0).with("mem", 512.5)));
        check("{}", Ok(Resources::new()));
        check("[]", Ok(Resources::new()));
        check("[1]", Err("expected a map of resource names to amounts"));
        check(r#"{"cpus": "lots"}"#, Err("expected f64"));
        check("3", Err("expected a map of resource names to amounts"));
    }

    #[test]
    fn well_known_resource_names_are_shared_not_allocated() {
        let built = Resources::new().with("cpus", 1.0).with("ports", 2.0);
        let packed = crate::packed::to_vec(&built).unwrap();
        for read in [
            crate::packed::from_slice::<Resources>(&packed).unwrap(),
            serde_json::from_str(r#"{"cpus": 1, "ports": 2}"#).unwrap(),
        ] {
            assert_eq!(read, built);
            let name = |resources: &Resources, wanted: &str| {
                resources.0.keys().find(|name| &***name == wanted).cloned().expect("the name is there")
            };
            assert!(std::sync::Arc::ptr_eq(&name(&read, "cpus"), &name(&built, "cpus")), "cpus is shared");
            assert!(!std::sync::Arc::ptr_eq(&name(&read, "ports"), &name(&built, "ports")), "ports is its own");
        }
    }
}
