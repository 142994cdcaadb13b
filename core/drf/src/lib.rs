//! The hierarchical DRF allocator, Mesos's `hierarchical` (the `HierarchicalDRF` allocator
//! with the `drf` role and framework sorters), as a type implementing
//! [`modhost_abi::Allocator`].
//!
//! The host uses it as its built-in allocator, and `modhost-examples` exports the very same
//! type as a module, so that the cost of the module boundary is measured on real work.
//!
//! One allocation round, as Mesos's stage 2 when no role has quota:
//! 1. the active agents are shuffled (SplitMix64 seeded from `AllocatorOptions::seed`);
//! 2. for each agent, its free resources (total minus allocated) are offered, if they hold at
//!    least one of the minimum allocatable resources, to the first eligible framework: roles
//!    in DRF order, then the frameworks of the role in DRF order. Roles are a tree (paths:
//!    `eng/ml` is a child of `eng`): the top-level roles are taken in DRF order of their whole
//!    subtree, then within the first the children in the same order, down to a role whose own
//!    frameworks are tried; a role with children has its own frameworks sorted among them as
//!    one more child at weight 1 (Mesos's virtual leaf `role/.`);
//! 3. a framework is eligible if it is active, not suppressed, and has no live refusal filter
//!    for this agent that covers the free resources;
//! 4. the whole free amount goes to that framework, which raises its share, its role's and
//!    every ancestor's.
//!
//! DRF order: dominant share (the largest `allocated / total` over the resource names not
//! excluded from fairness, divided by the role's weight for roles), then the number of
//! allocations made to the client, then its name. Ties therefore break the same way on every
//! run.
//!
//! With quota (Mesos 1.9's semantics; a quota sits on a top-level role and covers its
//! subtree, whose allocation is what the role consumes), a round has Mesos's two stages:
//! - the *required headroom* is the sum of every quota's unmet guarantees, the *available
//!   headroom* what the cluster has unallocated; both are kept up to date through the round;
//! - stage 1 (when some quota has a guarantee): for each agent in shuffled order, frameworks
//!   in DRF order whose role's quota has unmet guarantees are offered what of the agent meets
//!   them, plus the rest of the agent as far as the role's limits and the headroom left over
//!   the required one allow; a framework offered nothing towards its guarantees is passed;
//! - stage 2: the agents are shuffled again (only when stage 1 ran), and each agent's free
//!   resources go in DRF order, each offer cut to its role's limits and to the headroom left
//!   over the required one;
//! - an agent is offered until nothing allocatable is left of it; offers to the same
//!   framework on the same agent in one round are one offer.

mod rng;
mod rows;

use std::cmp::Ordering;
use std::collections::{BTreeSet, HashMap};
use std::sync::Arc;

use modhost_abi::messages::{AllocatorOptions, OfferRef, Offers, Resources, reservation, round_scalar};
use modhost_abi::{
    AddAgent, AddFramework, AgentRequest, Allocate, Allocator, CallError, Construct, Empty, FrameworkRequest,
    OffersMade, Parameters, RecoverResources, RolesRequest, UpdateAgent, UpdateFramework, UpdateWeights,
};
pub use rng::SplitMix64;
use rows::{Holdings, Rows};

/// Amounts per resource name, indexed by the allocator's interned names.
type Amounts = Vec<f64>;

/// An agent; its amounts are the rows of its index in `agent_total` and `agent_allocated`.
#[derive(Debug)]
struct Agent {
    id: String,
    active: bool,
    removed: bool,
    /// Its attributes: an agent that comes back with others loses its refusal filters.
    attributes: std::collections::BTreeMap<String, String>,
}

#[derive(Debug)]
struct Filter {
    expires: f64,
    refused: Amounts,
}

/// A framework in one of its roles (a client of Mesos's per-role framework sorter); what it
/// holds in that role is the row of its index in `framework_allocated`. A framework in
/// several roles has one per role.
///
/// An agent may report resources used by a framework not added yet (after a failover they
/// come back in any order): the framework then has a slot, `added` false, for the role the
/// report names (empty if it names none), that holds them until `add_framework` adopts it.
/// Such a slot is never offered anything.
#[derive(Debug)]
struct Framework {
    id: Arc<str>,
    /// The role as the framework subscribed to it (a slot's may be empty).
    role_name: Arc<str>,
    /// `None` until the framework is added.
    role: Option<usize>,
    added: bool,
    /// Whether the framework is still in this role: one that left it keeps what it holds
    /// there until given back, and is offered nothing more in it.
    subscribed: bool,
    active: bool,
    suppressed: bool,
    removed: bool,
    allocations: u64,
    filters: HashMap<usize, Filter>,
}

/// A role: a node of the role tree (`eng/ml/training` is a child of `eng/ml`, a child of
/// `eng`). What its own frameworks hold is the row of its index in `role_allocated`, what
/// its whole subtree holds the row in `tree_allocated`.
#[derive(Debug)]
struct Role {
    name: Arc<str>,
    /// `name/.`: the role's own frameworks, sorted among its children when it has any (the
    /// virtual leaf of Mesos's sorter).
    own_name: Arc<str>,
    parent: Option<usize>,
    children: Vec<usize>,
    weight: f64,
    /// Offers made to the role's own frameworks, and to its whole subtree.
    allocations: u64,
    tree_allocations: u64,
    frameworks: Vec<usize>,
}

/// A position in DRF order: share, then allocation count, then name. (Names are shared, so
/// that the keys a round makes and drops at every step cost no allocation.)
#[derive(Debug, Clone)]
struct Key {
    share: f64,
    allocations: u64,
    name: Arc<str>,
    /// The framework's or role's index; for a role's own frameworks (its virtual leaf, not
    /// its whole subtree) the role's index with [`OWN`] set, so that a key stays 40 bytes.
    index: usize,
}

/// The bit of [`Key::index`] that marks a role's own frameworks.
const OWN: usize = 1 << (usize::BITS - 1);

impl Key {
    /// The framework's or role's index.
    fn of(&self) -> usize {
        self.index & !OWN
    }

    /// Whether the key is a role's own frameworks (its virtual leaf).
    fn own(&self) -> bool {
        self.index & OWN != 0
    }
}

impl PartialEq for Key {
    fn eq(&self, other: &Self) -> bool {
        self.cmp(other) == Ordering::Equal
    }
}
impl Eq for Key {}
impl PartialOrd for Key {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}
impl Ord for Key {
    fn cmp(&self, other: &Self) -> Ordering {
        self.share
            .total_cmp(&other.share)
            .then(self.allocations.cmp(&other.allocations))
            .then_with(|| self.name.cmp(&other.name))
            .then(self.index.cmp(&other.index))
    }
}

/// A round's DRF orders: of each node's children (the root's at `roles.len()`), and of each
/// role's frameworks.
struct Orders {
    role: Vec<BTreeSet<Key>>,
    framework: Vec<BTreeSet<Key>>,
}

/// A round's view of quota: each role's quota (its top-level role's, as an index into
/// `quotas`), and what each quota's subtree has reserved, by unreserved name.
struct QuotaView {
    quota_of: Vec<Option<usize>>,
    reserved: Vec<Amounts>,
}

/// The stages of a round with quota.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Stage {
    /// Offers to roles with unmet guarantees.
    Guarantees,
    /// Offers to everyone, in DRF order.
    Fair,
}

/// The hierarchical DRF allocator.
#[derive(Debug)]
pub struct HierarchicalDrf {
    options: AllocatorOptions,
    rng: SplitMix64,
    paused: bool,
    /// The time of the latest round; refusal filters count from it.
    now: f64,
    names: Vec<Arc<str>>,
    name_index: HashMap<Arc<str>, usize>,
    /// Per interned name: whether it counts towards shares (by its unreserved name).
    fair: Vec<bool>,
    /// Per interned name: its unreserved name's index (its own for an unreserved name), and
    /// the role it is reserved for.
    base: Vec<usize>,
    reserved_for: Vec<Option<usize>>,
    /// Per unreserved name: it and its reserved names (empty for a reserved name).
    members: Vec<Vec<usize>>,
    /// Whether any reserved name was seen: rounds, shares and the minimum allocatable amounts
    /// then look at reservations.
    any_reserved: bool,
    min_allocatable: Vec<Amounts>,
    total: Amounts,
    agents: Vec<Agent>,
    agent_total: Rows,
    agent_allocated: Rows,
    framework_allocated: Rows,
    role_allocated: Rows,
    tree_allocated: Rows,
    holdings: Holdings,
    /// The free amounts of the agent a round is at (kept, so a round allocates nothing per
    /// agent).
    free: Amounts,
    agent_index: HashMap<String, usize>,
    frameworks: Vec<Framework>,
    /// Every framework's slots (one per role) by id: added frameworks, and those only agents
    /// have reported.
    framework_index: HashMap<String, Vec<usize>>,
    /// Resources a framework reported using on agents not added yet, by (agent, framework,
    /// role): counted when the agent arrives, unless the agent reports that framework itself.
    unplaced: HashMap<(String, String, String), Resources>,
    roles: Vec<Role>,
    role_index: HashMap<String, usize>,
    /// The quotas set, each on a top-level role.
    quotas: Vec<Quota>,
}

/// A top-level role's quota, as amounts by interned name.
#[derive(Debug)]
struct Quota {
    role: usize,
    guarantees: Amounts,
    /// `f64::INFINITY` for a name without a limit.
    limits: Amounts,
}

/// The round's headroom when quota is set (Mesos's `requiredHeadroom` and
/// `availableHeadroom`), and the scratch amounts of the offer being weighed.
#[derive(Debug)]
struct Headroom {
    required: Amounts,
    available: Amounts,
    /// Per quota, the reservations of its role's subtree by unreserved name: they count as
    /// consumed, allocated or not.
    reserved: Vec<Amounts>,
    /// The offer weighed last, and the part of it that meets guarantees.
    offer: Amounts,
    granted: Amounts,
}

impl Default for HierarchicalDrf {
    fn default() -> Self {
        Self::new(AllocatorOptions::default())
    }
}

impl Construct for HierarchicalDrf {
    fn create(_: Parameters) -> Result<Self, CallError> {
        Ok(Self::default())
    }
}

fn unknown(what: &str, id: &str) -> CallError {
    CallError::failed(format!("unknown {what} '{id}'"))
}

/// Checks a role name as Mesos does. A role is a path of components (`eng/ml/training` is a
/// child of `eng/ml`, a child of `eng`), or `*`: no leading, trailing or doubled `/`, and no
/// component that is `.`, `..` or `*`, starts with `-`, or holds whitespace or a control
/// character. The script adapter and the workload format apply the same rule, so every
/// allocator refuses the same roles.
///
/// ```
/// assert!(modhost_drf::check_role("eng/ml/training").is_ok());
/// assert!(modhost_drf::check_role("eng//ml").unwrap_err().to_string().contains("two adjacent slashes"));
/// assert!(modhost_drf::check_role("-batch").is_err());
/// ```
pub fn check_role(role: &str) -> Result<(), CallError> {
    let bad = |why: String| Err(CallError::failed(format!("role '{role}': {why}")));
    if role == "*" {
        return Ok(());
    }
    if role.is_empty() {
        return bad("a role name cannot be empty".into());
    }
    if role.starts_with('/') || role.ends_with('/') {
        return bad("a role cannot start or end with a slash".into());
    }
    if role.contains("//") {
        return bad("a role cannot contain two adjacent slashes".into());
    }
    for component in role.split('/') {
        if matches!(component, "." | ".." | "*") {
            return bad(format!("'{component}' cannot be a component of a role"));
        }
        if component.starts_with('-') {
            return bad(format!("the component '{component}' starts with a dash"));
        }
        if component.chars().any(|c| c.is_whitespace() || c.is_control()) {
            return bad(format!("the component '{component}' holds whitespace or a control character"));
        }
    }
    Ok(())
}

/// Slack on the virtual clock's comparisons: a round's time is a sum of float intervals.
const CLOCK_SLACK: f64 = 1e-6;

/// Whether a refusal filter that expires at `expires` still holds in a round at `now`. A
/// filter lasts through the round at its expiry time, as Mesos's does (MESOS-4302: its
/// expiry is queued behind the allocation that falls due with it), so a decline with
/// `refuse_seconds` no longer than the allocation interval still holds in the next round.
/// The script adapter keeps its filters by the same rule.
///
/// ```
/// assert!(modhost_drf::filter_holds(5.0, 5.0));
/// assert!(!modhost_drf::filter_holds(5.0, 6.0));
/// ```
pub fn filter_holds(expires: f64, now: f64) -> bool {
    now <= expires + CLOCK_SLACK
}

/// A framework's roles (see [`FrameworkInfo::subscribed_roles`]), each checked by
/// [`check_role`], none twice. The script adapter and the workload format apply the same rule.
///
/// [`FrameworkInfo::subscribed_roles`]: modhost_abi::messages::FrameworkInfo::subscribed_roles
///
/// ```
/// use modhost_abi::messages::FrameworkInfo;
/// let info = FrameworkInfo { id: "f".into(), roles: vec!["eng".into(), "eng".into()], ..FrameworkInfo::default() };
/// assert!(modhost_drf::checked_roles(&info).unwrap_err().to_string().contains("twice"));
/// ```
pub fn checked_roles(info: &modhost_abi::messages::FrameworkInfo) -> Result<Vec<String>, CallError> {
    let roles = info.subscribed_roles();
    for (i, role) in roles.iter().enumerate() {
        check_role(role)?;
        if roles[..i].contains(role) {
            return Err(CallError::failed(format!("framework '{}': role '{role}' is named twice", info.id)));
        }
    }
    Ok(roles.into_iter().map(str::to_owned).collect())
}

/// Checks the names of `resources`: a reserved one (`cpus(eng)`) names a valid role other than
/// `*` (unreserved resources are written without a role), and no name holds a parenthesis
/// otherwise. The script adapter and the workload format apply the same rule.
///
/// ```
/// use modhost_abi::messages::Resources;
/// assert!(modhost_drf::check_names(&Resources::new().with("cpus(eng/ml)", 2.0).with("mem", 1.0)).is_ok());
/// assert!(modhost_drf::check_names(&Resources::new().with("cpus(eng//ml)", 2.0)).is_err());
/// assert!(modhost_drf::check_names(&Resources::new().with("cpus(*)", 2.0)).is_err());
/// ```
pub fn check_names(resources: &Resources) -> Result<(), CallError> {
    for name in resources.0.keys() {
        let bad = |why: &str| Err(CallError::failed(format!("resource '{name}': {why}")));
        match reservation(name) {
            Some((base, role)) => {
                if base.is_empty() || base.contains(['(', ')']) {
                    return bad("a reserved resource is written name(role), as cpus(eng)");
                }
                if role == "*" {
                    return bad("an unreserved resource is written without a role");
                }
                check_role(role).map_err(|e| CallError::failed(format!("resource '{name}': {e}")))?;
            }
            None if name.contains(['(', ')']) => {
                return bad("a reserved resource is written name(role), as cpus(eng)");
            }
            None => {}
        }
    }
    Ok(())
}

/// Checks a quota as Mesos's master does before it reaches the allocator: a valid role that
/// is not nested (Mesos refuses quota on nested roles, MESOS-7402; a top-level role's quota
/// covers its subtree), amounts that are finite and not negative, and guarantees within the
/// limits. The script adapter and the workload format apply the same rule.
///
/// ```
/// use modhost_abi::{UpdateQuota, messages::Resources};
/// let quota = |role: &str, guarantees: Resources, limits: Resources| UpdateQuota { role: role.into(), guarantees, limits };
/// let cpus = |n: f64| Resources::new().with("cpus", n);
/// assert!(modhost_drf::check_quota(&quota("eng", cpus(2.0), cpus(4.0))).is_ok());
/// assert!(modhost_drf::check_quota(&quota("eng", cpus(4.0), cpus(2.0))).unwrap_err().to_string().contains("limits"));
/// assert!(modhost_drf::check_quota(&quota("eng/ml", cpus(1.0), cpus(1.0))).unwrap_err().to_string().contains("nested"));
/// ```
pub fn check_quota(quota: &modhost_abi::UpdateQuota) -> Result<(), CallError> {
    let role = &quota.role;
    check_role(role)?;
    if role.contains('/') {
        return Err(CallError::failed(format!(
            "role '{role}': quota on a nested role is not supported (nor is it in Mesos, MESOS-7402); \
             set it on '{}', whose quota covers its whole subtree",
            role.split('/').next().unwrap_or(role)
        )));
    }
    for (what, amounts) in [("guarantee", &quota.guarantees), ("limit", &quota.limits)] {
        if let Some(name) = amounts.0.keys().find(|name| name.contains(['(', ')'])) {
            return Err(CallError::failed(format!(
                "role '{role}': a quota's {what} names unreserved resources, not '{name}' (what a role reserves counts towards its quota)"
            )));
        }
        if let Some((name, amount)) = amounts.0.iter().find(|(_, amount)| !(amount.is_finite() && **amount >= 0.0)) {
            return Err(CallError::failed(format!(
                "role '{role}': the {what} of {name} must be a non-negative number, not {amount}"
            )));
        }
    }
    if let Some((name, limit)) =
        quota.limits.0.iter().find(|(name, limit)| round_scalar(quota.guarantees.get(name) - **limit) > 0.0)
    {
        return Err(CallError::failed(format!(
            "role '{role}': the guarantees {} are not within the limits {} ({name}: {} > {limit})",
            quota.guarantees,
            quota.limits,
            quota.guarantees.get(name)
        )));
    }
    Ok(())
}

impl HierarchicalDrf {
    /// An allocator with `options` (also settable later through `initialize`).
    pub fn new(options: AllocatorOptions) -> Self {
        let mut allocator = HierarchicalDrf {
            rng: SplitMix64::new(options.seed),
            options: options.clone(),
            paused: false,
            now: 0.0,
            names: Vec::new(),
            name_index: HashMap::new(),
            fair: Vec::new(),
            base: Vec::new(),
            reserved_for: Vec::new(),
            members: Vec::new(),
            any_reserved: false,
            min_allocatable: Vec::new(),
            total: Vec::new(),
            agents: Vec::new(),
            agent_total: Rows::default(),
            agent_allocated: Rows::default(),
            framework_allocated: Rows::default(),
            role_allocated: Rows::default(),
            tree_allocated: Rows::default(),
            holdings: Holdings::default(),
            free: Vec::new(),
            agent_index: HashMap::new(),
            frameworks: Vec::new(),
            framework_index: HashMap::new(),
            unplaced: HashMap::new(),
            roles: Vec::new(),
            role_index: HashMap::new(),
            quotas: Vec::new(),
        };
        allocator.apply_options(options);
        allocator
    }

    fn apply_options(&mut self, options: AllocatorOptions) {
        self.rng = SplitMix64::new(options.seed);
        self.min_allocatable = options.min_allocatable_resources.iter().map(|r| self.amounts(r)).collect();
        for index in 0..self.names.len() {
            let base = &self.names[self.base[index]];
            self.fair[index] = !options.fairness_excluded_resource_names.iter().any(|n| **n == **base);
        }
        self.options = options;
    }

    /// The interned index of a resource name, adding it (to every vector) if new.
    /// A reserved name's role must be valid ([`check_names`] at every way in).
    fn intern(&mut self, name: &str) -> usize {
        if let Some(&index) = self.name_index.get(name) {
            return index;
        }
        // A reserved name comes after its unreserved name and its role.
        let (base, role) = match reservation(name) {
            Some((base, role)) => (Some(self.intern(base)), Some(self.role(role))),
            None => (None, None),
        };
        let index = self.names.len();
        let shared: Arc<str> = name.into();
        self.names.push(shared.clone());
        self.name_index.insert(shared, index);
        let base = base.unwrap_or(index);
        self.base.push(base);
        self.reserved_for.push(role);
        self.members.push(Vec::new());
        self.members[base].push(index);
        self.any_reserved |= role.is_some();
        let unreserved = self.names[base].clone();
        self.fair.push(!self.options.fairness_excluded_resource_names.iter().any(|n| **n == *unreserved));
        self.total.push(0.0);
        for rows in [
            &mut self.agent_total,
            &mut self.agent_allocated,
            &mut self.framework_allocated,
            &mut self.role_allocated,
            &mut self.tree_allocated,
        ] {
            rows.widen();
        }
        self.holdings.widen();
        for framework in &mut self.frameworks {
            for filter in framework.filters.values_mut() {
                filter.refused.push(0.0);
            }
        }
        for min in &mut self.min_allocatable {
            min.push(0.0);
        }
        for quota in &mut self.quotas {
            quota.guarantees.push(0.0);
            quota.limits.push(f64::INFINITY);
        }
        index
    }

    fn amounts(&mut self, resources: &Resources) -> Amounts {
        self.amounts_of(resources.0.iter().map(|(name, amount)| (&**name, *amount)))
    }

    fn amounts_of<'n>(&mut self, resources: impl Iterator<Item = (&'n str, f64)> + Clone) -> Amounts {
        for (name, _) in resources.clone() {
            self.intern(name);
        }
        let mut amounts = vec![0.0; self.names.len()];
        for (name, amount) in resources {
            amounts[self.name_index[name]] = amount;
        }
        amounts
    }

    fn resources(&self, amounts: &[f64]) -> Resources {
        let mut resources = Resources::new();
        for (name, amount) in self.names.iter().zip(amounts) {
            if *amount > 0.0 {
                resources.0.insert(name.clone(), *amount);
            }
        }
        resources
    }

    /// The non-zero `amounts` with their names, in interning order.
    fn named<'a>(&'a self, amounts: &'a [f64]) -> impl Iterator<Item = (&'a str, f64)> {
        self.names.iter().zip(amounts).filter(|(_, amount)| **amount > 0.0).map(|(name, amount)| (&**name, *amount))
    }

    /// The role `name` (a valid path), made with its ancestors if new.
    fn role(&mut self, name: &str) -> usize {
        if let Some(&index) = self.role_index.get(name) {
            return index;
        }
        let parent = name.rsplit_once('/').map(|(parent, _)| self.role(parent));
        let index = self.roles.len();
        self.roles.push(Role {
            name: name.into(),
            own_name: format!("{name}/.").into(),
            parent,
            children: Vec::new(),
            weight: 1.0,
            allocations: 0,
            tree_allocations: 0,
            frameworks: Vec::new(),
        });
        self.role_allocated.push_zeros();
        self.tree_allocated.push_zeros();
        if let Some(parent) = parent {
            // A role's subtree amounts are kept once it has children: until then they are
            // its own, which they start from.
            if self.roles[parent].children.is_empty() {
                let own = self.role_allocated.row(parent).to_vec();
                self.tree_allocated.row_mut(parent).copy_from_slice(&own);
                self.roles[parent].tree_allocations = self.roles[parent].allocations;
            }
            self.roles[parent].children.push(index);
        }
        self.role_index.insert(name.to_owned(), index);
        index
    }

    /// The first role whose subtree amounts include `role`'s own: the role itself if it has
    /// children (a role without is its own subtree, whose amounts are not kept twice), else
    /// its parent; the rest are that one's ancestors.
    fn first_subtree(&self, role: usize) -> Option<usize> {
        if self.roles[role].children.is_empty() { self.roles[role].parent } else { Some(role) }
    }

    /// Adds `amounts` (times `sign`) to what `role`'s own frameworks hold, and to what the
    /// subtrees that include it hold.
    fn role_add(&mut self, role: usize, amounts: &[f64], sign: f64) {
        let add = |into: &mut [f64]| {
            for (slot, amount) in into.iter_mut().zip(amounts) {
                *slot = round_scalar(*slot + sign * amount);
            }
        };
        add(self.role_allocated.row_mut(role));
        let mut node = self.first_subtree(role);
        while let Some(index) = node {
            add(self.tree_allocated.row_mut(index));
            node = self.roles[index].parent;
        }
    }

    /// Counts an offer made to (`step` 1) or taken back from (-1) `role`'s own frameworks,
    /// in the role and the subtrees that include it.
    fn role_count(&mut self, role: usize, step: i64) {
        let mut node = self.first_subtree(role);
        let entry = &mut self.roles[role];
        entry.allocations = entry.allocations.saturating_add_signed(step);
        while let Some(index) = node {
            let entry = &mut self.roles[index];
            entry.tree_allocations = entry.tree_allocations.saturating_add_signed(step);
            node = entry.parent;
        }
    }

    /// The slots of an added framework, one per role.
    fn clients(&self, id: &str) -> Result<Vec<usize>, CallError> {
        let clients: Vec<usize> =
            self.framework_index.get(id).into_iter().flatten().copied().filter(|&f| self.frameworks[f].added).collect();
        if clients.is_empty() { Err(unknown("framework", id)) } else { Ok(clients) }
    }

    /// The slot of framework `id` in `role` (empty: its only role), among the added ones or,
    /// with `slots`, those only agents reported too. None if it has none there; an error if
    /// `role` is empty and it is in several.
    fn client_in(&self, id: &str, role: &str, slots: bool) -> Result<Option<usize>, CallError> {
        let all: Vec<usize> = self
            .framework_index
            .get(id)
            .into_iter()
            .flatten()
            .copied()
            .filter(|&f| slots || self.frameworks[f].added)
            .collect();
        if role.is_empty() {
            return match all.as_slice() {
                [] => Ok(None),
                [one] => Ok(Some(*one)),
                several => {
                    let roles: Vec<&str> = several.iter().map(|&f| &*self.frameworks[f].role_name).collect();
                    Err(CallError::failed(format!(
                        "framework '{id}' is in several roles ({}): say in which",
                        roles.join(", ")
                    )))
                }
            };
        }
        let named = all.iter().copied().find(|&f| &*self.frameworks[f].role_name == role);
        // Usage an agent reported without a role, for a framework not added yet, is whichever
        // role a give-back names.
        Ok(named.or_else(|| {
            all.into_iter().find(|&f| !self.frameworks[f].added && self.frameworks[f].role_name.is_empty())
        }))
    }

    /// The slot of framework `id` in `role`, added or not: a new one that is not added if
    /// none. (Callers check first that an added framework is in `role`.)
    fn framework_slot(&mut self, id: &str, role: &str) -> usize {
        if let Ok(Some(index)) = self.client_in(id, role, true) {
            return index;
        }
        let index = self.frameworks.len();
        self.frameworks.push(Framework {
            id: id.into(),
            role_name: role.into(),
            role: None,
            added: false,
            subscribed: true,
            active: false,
            suppressed: false,
            removed: false,
            allocations: 0,
            filters: HashMap::new(),
        });
        self.framework_allocated.push_zeros();
        self.framework_index.entry(id.to_owned()).or_default().push(index);
        index
    }

    /// The slots a suppress or revive names: the framework's in each of `roles`, or all.
    fn clients_for(&self, request: &RolesRequest) -> Result<Vec<usize>, CallError> {
        let all = self.clients(&request.framework_id)?;
        if request.roles.is_empty() {
            return Ok(all);
        }
        request
            .roles
            .iter()
            .map(|role| {
                self.client_in(&request.framework_id, role, false)?.ok_or_else(|| {
                    CallError::failed(format!("framework '{}' is not in role '{role}'", request.framework_id))
                })
            })
            .collect()
    }

    /// Checks that each usage names a role its framework is in, when the framework is added.
    fn check_used(&self, used: &[modhost_abi::Allocation]) -> Result<(), CallError> {
        for u in used {
            if self.clients(&u.framework_id).is_ok() && self.client_in(&u.framework_id, &u.role, false)?.is_none() {
                return Err(CallError::failed(format!(
                    "framework '{}' is not in role '{}', which its usage on agent '{}' names",
                    u.framework_id, u.role, u.agent_id
                )));
            }
        }
        Ok(())
    }

    /// Makes the added slot of framework `id` in `role` (adopting `slot`, or a new one), in
    /// the role's books.
    fn subscribe(&mut self, id: &str, role: &str, slot: Option<usize>, active: bool) -> usize {
        let index = slot.unwrap_or_else(|| self.framework_slot(id, role));
        let role_index = self.role(role);
        let framework = &mut self.frameworks[index];
        (framework.role_name, framework.role, framework.added, framework.active) =
            (role.into(), Some(role_index), true, active);
        framework.subscribed = true;
        let held = self.framework_allocated.row(index).to_vec();
        self.role_add(role_index, &held, 1.0);
        self.roles[role_index].frameworks.push(index);
        index
    }

    fn agent(&self, id: &str) -> Result<usize, CallError> {
        self.agent_index.get(id).copied().ok_or_else(|| unknown("agent", id))
    }

    fn share(&self, allocated: &[f64], weight: f64) -> f64 {
        let mut share: f64 = 0.0;
        if self.any_reserved {
            // A reserved resource counts as its unreserved name, as in Mesos's sorter.
            // Sums rounded as every amount is, so that they do not depend on their order.
            for (_, members) in self.members.iter().enumerate().filter(|(base, _)| self.fair[*base]) {
                let total = round_scalar(members.iter().map(|&m| self.total[m]).sum());
                if total > 0.0 {
                    share = share.max(round_scalar(members.iter().map(|&m| allocated[m]).sum()) / total);
                }
            }
            return share / weight;
        }
        for (index, amount) in allocated.iter().enumerate() {
            if self.fair[index] && self.total[index] > 0.0 {
                share = share.max(amount / self.total[index]);
            }
        }
        share / weight
    }

    /// Adds (or, with `sign` -1, removes) `amounts` held by `framework` on `agent`.
    fn account(&mut self, framework: usize, agent: usize, amounts: &[f64], sign: f64) {
        let add = |into: &mut [f64]| {
            for (slot, amount) in into.iter_mut().zip(amounts) {
                *slot = round_scalar(*slot + sign * amount);
            }
        };
        add(self.framework_allocated.row_mut(framework));
        add(self.agent_allocated.row_mut(agent));
        self.holdings.update(agent, framework, add);
        if let Some(role) = self.frameworks[framework].role {
            self.role_add(role, amounts, sign);
        }
    }

    fn allocatable(&self, free: &[f64]) -> bool {
        if self.any_reserved {
            // By unreserved name: reserved cpus are cpus.
            let have = |name: usize| round_scalar(self.members[name].iter().map(|&m| free[m]).sum());
            return self.min_allocatable.iter().any(|min| {
                min.iter().enumerate().all(|(name, needed)| *needed <= 0.0 || have(name) >= *needed)
                    && min.iter().any(|needed| *needed > 0.0)
            });
        }
        self.min_allocatable.iter().any(|min| {
            min.iter().zip(free).all(|(needed, have)| *needed <= 0.0 || *have >= *needed)
                && min.iter().any(|needed| *needed > 0.0)
        })
    }

    /// Whether `role` is `ancestor` or one of its descendants.
    fn within(&self, role: usize, ancestor: usize) -> bool {
        let mut node = Some(role);
        while let Some(index) = node {
            if index == ancestor {
                return true;
            }
            node = self.roles[index].parent;
        }
        false
    }

    fn eligible(&self, framework: usize, agent: usize, free: &[f64]) -> bool {
        let f = &self.frameworks[framework];
        if !f.active || f.suppressed || f.removed || !f.added || !f.subscribed {
            return false;
        }
        match f.filters.get(&agent) {
            Some(filter) if filter_holds(filter.expires, self.now) => {
                // Filtered only if the refused resources cover what is free now.
                free.iter().zip(&filter.refused).any(|(have, refused)| round_scalar(have - refused) > 0.0)
            }
            _ => true,
        }
    }

    fn framework_key(&self, index: usize) -> Key {
        let f = &self.frameworks[index];
        let share = self.share(self.framework_allocated.row(index), 1.0);
        Key { share, allocations: f.allocations, name: f.id.clone(), index }
    }

    /// A role's place among its siblings: its whole subtree's share over its weight (for a
    /// role without children, its own frameworks').
    fn role_key(&self, index: usize) -> Key {
        let r = &self.roles[index];
        let (allocated, allocations) = if r.children.is_empty() {
            (self.role_allocated.row(index), r.allocations)
        } else {
            (self.tree_allocated.row(index), r.tree_allocations)
        };
        Key { share: self.share(allocated, r.weight), allocations, name: r.name.clone(), index }
    }

    /// The place of a role's own frameworks among its children: what they hold, at weight 1,
    /// as Mesos's sorter weighs its virtual leaf `role/.`.
    fn own_key(&self, index: usize) -> Key {
        let r = &self.roles[index];
        let share = self.share(self.role_allocated.row(index), 1.0);
        Key { share, allocations: r.allocations, name: r.own_name.clone(), index: index | OWN }
    }

    /// The first framework in DRF order under the node `set` (a role, or the root at
    /// `roles.len()`) that `accept`s: its children in order, each a role whose frameworks are
    /// looked at (a leaf, or a role's own frameworks) or whose subtree is searched in turn.
    fn pick(
        &self,
        set: usize,
        order: &[BTreeSet<Key>],
        framework_order: &[BTreeSet<Key>],
        accept: &mut impl FnMut(usize) -> bool,
    ) -> Option<(usize, Key, Key)> {
        order[set].iter().find_map(|key| {
            let role = key.of();
            let (role, framework) = if key.own() || self.roles[role].children.is_empty() {
                let framework = framework_order[role].iter().find(|f| accept(f.index))?;
                (role, framework.clone())
            } else {
                let (role, framework, _) = self.pick(role, order, framework_order, accept)?;
                (role, framework)
            };
            // With the key it was found under here: the caller takes that key out as it is.
            Some((role, framework, key.clone()))
        })
    }

    /// Takes out of `order` (`top` is the key `pick` found the role under among the root's
    /// children) or puts back (`top` None) the keys of `role` and its ancestors among their
    /// siblings, and of its own frameworks among its children.
    fn place(&self, order: &mut [BTreeSet<Key>], role: usize, top: Option<&Key>) {
        let root = self.roles.len();
        let mut change = |set: usize, key: Key| {
            if top.is_some() {
                order[set].remove(&key);
            } else {
                order[set].insert(key);
            }
        };
        if !self.roles[role].children.is_empty() {
            change(role, self.own_key(role));
        }
        let mut node = role;
        while let Some(parent) = self.roles[node].parent {
            change(parent, self.role_key(node));
            node = parent;
        }
        match top {
            Some(key) => order[root].remove(key),
            None => order[root].insert(self.role_key(node)),
        };
    }

    fn round(&mut self, now: f64) -> Offers {
        self.now = now;
        for framework in &mut self.frameworks {
            framework.filters.retain(|_, filter| filter_holds(filter.expires, now));
        }
        let mut order: Vec<usize> =
            (0..self.agents.len()).filter(|&a| self.agents[a].active && !self.agents[a].removed).collect();
        self.rng.shuffle(&mut order);

        // DRF order of the frameworks of each role that could take an offer, and of the roles
        // with such frameworks in their subtree, among their siblings (the root's children
        // at index `roles.len()`).
        let roles = self.roles.len();
        let view = (!self.quotas.is_empty() || self.any_reserved).then(|| self.quota_view());
        let mut framework_order: Vec<BTreeSet<Key>> = vec![BTreeSet::new(); roles];
        let mut live = vec![false; roles];
        for (role, frameworks) in framework_order.iter_mut().enumerate() {
            // A role that can be offered nothing this round is left out, as an idle one is.
            if view.as_ref().is_some_and(|view| self.spent(role, view)) {
                continue;
            }
            for &framework in &self.roles[role].frameworks {
                let f = &self.frameworks[framework];
                if f.active && !f.suppressed && !f.removed && f.subscribed {
                    frameworks.insert(self.framework_key(framework));
                }
            }
            let mut node = (!frameworks.is_empty()).then_some(role);
            while let Some(index) = node.filter(|&index| !live[index]) {
                live[index] = true;
                node = self.roles[index].parent;
            }
        }
        let mut role_order: Vec<BTreeSet<Key>> = vec![BTreeSet::new(); roles + 1];
        for role in (0..roles).filter(|&role| live[role]) {
            role_order[self.roles[role].parent.unwrap_or(roles)].insert(self.role_key(role));
            if !self.roles[role].children.is_empty() && !framework_order[role].is_empty() {
                role_order[role].insert(self.own_key(role));
            }
        }
        let mut orders = Orders { role: role_order, framework: framework_order };
        if let Some(view) = view {
            return self.quota_round(order, &mut orders, &view);
        }

        let mut offers = Offers::with_capacity(order.len());
        let mut free = std::mem::take(&mut self.free);
        for agent in order {
            self.free_on(agent, &mut free);
            if !self.allocatable(&free) {
                continue;
            }
            let mut accept = |framework| self.eligible(framework, agent, &free);
            let Some(picked) = self.pick(roles, &orders.role, &orders.framework, &mut accept) else {
                continue;
            };
            let framework = self.give(&mut orders, picked, agent, &free, true);
            let f = &self.frameworks[framework];
            offers.push_in_role(&f.id, &f.role_name, &self.agents[agent].id, self.named(&free));
        }
        self.free = free;
        offers
    }

    /// What is free on `agent`, into `free`. What an agent holds may pass its total (it
    /// shrank, or reported more in use than it has): nothing of that resource is free then,
    /// as Mesos's subtraction gives.
    fn free_on(&self, agent: usize, free: &mut Amounts) {
        free.clear();
        let (total, allocated) = (self.agent_total.row(agent), self.agent_allocated.row(agent));
        free.extend(total.iter().zip(allocated).map(|(total, allocated)| round_scalar(total - allocated).max(0.0)));
    }

    /// Allocates `amounts` on `agent` to the framework `pick` found, and puts its keys back in
    /// DRF order with their new shares. `counted`: a new offer, which counts among the
    /// framework's and its roles' allocations (not more of one it already has this round).
    /// Returns the framework.
    fn give(
        &mut self,
        orders: &mut Orders,
        (role, framework_key, top): (usize, Key, Key),
        agent: usize,
        amounts: &[f64],
        counted: bool,
    ) -> usize {
        let framework = framework_key.index;
        self.place(&mut orders.role, role, Some(&top));
        orders.framework[role].remove(&framework_key);
        self.account(framework, agent, amounts, 1.0);
        if counted {
            self.frameworks[framework].allocations += 1;
            self.role_count(role, 1);
        }
        orders.framework[role].insert(self.framework_key(framework));
        self.place(&mut orders.role, role, None);
        framework
    }

    /// What a role's whole subtree holds: what a top-level role with quota consumes.
    fn consumed(&self, role: usize) -> &[f64] {
        if self.roles[role].children.is_empty() { self.role_allocated.row(role) } else { self.tree_allocated.row(role) }
    }

    /// The top-level role of `role`.
    fn top(&self, mut role: usize) -> usize {
        while let Some(parent) = self.roles[role].parent {
            role = parent;
        }
        role
    }

    /// A round when some role has quota or some resource is reserved: Mesos's two stages (see
    /// the crate's docs).
    /// Each role's quota, and what each quota's subtree has reserved.
    fn quota_view(&self) -> QuotaView {
        let width = self.names.len();
        // Each role's quota: that of its top-level role.
        let mut quota_of = vec![None; self.roles.len()];
        for (index, quota) in self.quotas.iter().enumerate() {
            quota_of[quota.role] = Some(index);
        }
        for role in 0..self.roles.len() {
            quota_of[role] = quota_of[self.top(role)];
        }
        let mut reserved = vec![vec![0.0; width]; self.quotas.len()];
        if self.any_reserved {
            for agent in (0..self.agents.len()).filter(|&a| !self.agents[a].removed) {
                let total = self.agent_total.row(agent);
                for name in (0..width).filter(|&name| total[name] > 0.0) {
                    let Some(quota) = self.reserved_for[name].and_then(|role| quota_of[role]) else { continue };
                    let slot = &mut reserved[quota][self.base[name]];
                    *slot = round_scalar(*slot + total[name]);
                }
            }
        }
        QuotaView { quota_of, reserved }
    }

    /// Whether a framework of `role` can be offered nothing more this round: its quota's
    /// limits are reached in every resource the cluster has, and nothing is reserved for it
    /// or an ancestor. (What a role consumes only grows within a round.)
    fn spent(&self, role: usize, view: &QuotaView) -> bool {
        let Some(index) = view.quota_of[role] else { return false };
        let quota = &self.quotas[index];
        let consumed = self.consumed(quota.role);
        (0..self.names.len()).filter(|&name| self.total[name] > 0.0).all(|name| match self.reserved_for[name] {
            Some(owner) => !self.within(role, owner),
            None => round_scalar(quota.limits[name] - consumed[name] - view.reserved[index][name]) <= 0.0,
        })
    }

    fn quota_round(&mut self, mut order: Vec<usize>, orders: &mut Orders, view: &QuotaView) -> Offers {
        let width = self.names.len();
        let quota_of = &view.quota_of;
        let mut headroom = Headroom {
            required: vec![0.0; width],
            available: self.total.clone(),
            reserved: view.reserved.clone(),
            offer: vec![0.0; width],
            granted: vec![0.0; width],
        };
        for (index, quota) in self.quotas.iter().enumerate() {
            let consumed = self.consumed(quota.role);
            for (name, required) in headroom.required.iter_mut().enumerate() {
                let consumed = round_scalar(consumed[name] + headroom.reserved[index][name]);
                *required = round_scalar(*required + (quota.guarantees[name] - consumed).max(0.0));
            }
        }
        for agent in (0..self.agents.len()).filter(|&a| !self.agents[a].removed) {
            for (available, allocated) in headroom.available.iter_mut().zip(self.agent_allocated.row(agent)) {
                *available = round_scalar(*available - allocated);
            }
        }
        for available in &mut headroom.available {
            *available = available.max(0.0);
        }

        // Offers by (framework, agent), in the order first made: a framework offered part of
        // an agent in both stages has one offer of it.
        let mut made: Vec<(usize, usize, Amounts)> = Vec::new();
        let mut place: HashMap<(usize, usize), usize> = HashMap::new();
        let guaranteed = self.quotas.iter().any(|q| q.guarantees.iter().any(|amount| *amount > 0.0));
        let mut free = std::mem::take(&mut self.free);
        for stage in [Stage::Guarantees, Stage::Fair] {
            match stage {
                Stage::Guarantees if !guaranteed => continue,
                Stage::Fair if guaranteed => self.rng.shuffle(&mut order),
                _ => {}
            }
            for &agent in &order {
                loop {
                    self.free_on(agent, &mut free);
                    if !self.allocatable(&free) {
                        break;
                    }
                    let mut accept = |framework: usize| {
                        let Some(role) = self.frameworks[framework].role else { return false };
                        self.quota_offer(stage, role, quota_of[role], &free, &mut headroom)
                            && self.allocatable(&headroom.offer)
                            && self.eligible(framework, agent, &headroom.offer)
                    };
                    let Some(picked) = self.pick(self.roles.len(), &orders.role, &orders.framework, &mut accept) else {
                        break;
                    };
                    let offer = headroom.offer.clone();
                    let framework = picked.1.index;
                    let earlier = place.get(&(framework, agent)).copied();
                    let role = picked.0;
                    self.give(orders, picked, agent, &offer, earlier.is_none());
                    if self.spent(role, view) {
                        orders.framework[role].remove(&self.framework_key(framework));
                    }
                    match earlier {
                        Some(at) => {
                            for (slot, amount) in made[at].2.iter_mut().zip(&offer) {
                                *slot = round_scalar(*slot + amount);
                            }
                        }
                        None => {
                            place.insert((framework, agent), made.len());
                            made.push((framework, agent, offer));
                        }
                    }
                    for name in 0..width {
                        headroom.required[name] =
                            round_scalar(headroom.required[name] - headroom.granted[name]).max(0.0);
                        headroom.available[name] =
                            round_scalar(headroom.available[name] - headroom.offer[name]).max(0.0);
                    }
                }
            }
        }
        self.free = free;
        let mut offers = Offers::with_capacity(made.len());
        for (framework, agent, amounts) in &made {
            let f = &self.frameworks[*framework];
            offers.push_in_role(&f.id, &f.role_name, &self.agents[*agent].id, self.named(amounts));
        }
        offers
    }

    /// Weighs offering `free` to a framework of `role`, under the quota `quota` (an index into
    /// `quotas`) in `stage`, into `headroom.offer` (and the part meeting guarantees into
    /// `headroom.granted`). Whether there is anything to offer. Reserved resources go whole,
    /// and only to their role (in stage 1) or its subtree (in stage 2); unreserved ones are cut
    /// to the quota's limits and to the headroom left over the required one.
    fn quota_offer(
        &self,
        stage: Stage,
        role: usize,
        quota: Option<usize>,
        free: &[f64],
        headroom: &mut Headroom,
    ) -> bool {
        let Headroom { required, available, reserved, offer, granted } = headroom;
        let quota = quota.map(|q| (&self.quotas[q], self.consumed(self.quotas[q].role), &reserved[q]));
        let consumed = |name: usize| quota.map_or(0.0, |(_, tree, reserved)| round_scalar(tree[name] + reserved[name]));
        let held_back = required.iter().any(|amount| *amount > 0.0);
        granted.fill(0.0);
        if stage == Stage::Guarantees {
            // Only what brings the role closer to its guarantees makes it an offer here.
            let Some((q, _, _)) = quota else { return false };
            for name in (0..free.len()).filter(|&name| self.reserved_for[name].is_none()) {
                let unmet = round_scalar(q.guarantees[name] - consumed(name)).max(0.0);
                granted[name] = free[name].min(unmet);
            }
            if granted.iter().all(|amount| *amount <= 0.0) {
                return false;
            }
        }
        for name in 0..free.len() {
            if let Some(owner) = self.reserved_for[name] {
                let mine = match stage {
                    Stage::Guarantees => owner == role,
                    Stage::Fair => self.within(role, owner),
                };
                offer[name] = if mine { free[name] } else { 0.0 };
                continue;
            }
            let mut more = round_scalar(free[name] - granted[name]);
            if let Some((q, _, _)) = quota {
                more = more.min(round_scalar(q.limits[name] - consumed(name) - granted[name]).max(0.0));
            }
            if held_back {
                more = more.min(round_scalar(available[name] - required[name]).max(0.0));
            }
            offer[name] = round_scalar(granted[name] + more);
        }
        offer.iter().any(|amount| *amount > 0.0)
    }

    /// Accounts offers as allocated (`sign` 1) or takes them back (`sign` -1), with the
    /// allocation counts that break DRF ties.
    fn apply<'o>(&mut self, offers: impl IntoIterator<Item = OfferRef<'o>>, sign: i64) -> Result<(), CallError> {
        for offer in offers {
            let framework = self
                .client_in(offer.framework_id, offer.role, false)?
                .ok_or_else(|| unknown("framework", offer.framework_id))?;
            let agent = self.agent(offer.agent_id)?;
            let amounts = self.amounts_of(offer.resources());
            self.account(framework, agent, &amounts, sign as f64);
            let step = |count: &mut u64| *count = count.saturating_add_signed(sign);
            step(&mut self.frameworks[framework].allocations);
            if let Some(role) = self.frameworks[framework].role {
                self.role_count(role, sign);
            }
        }
        Ok(())
    }

    /// Counts what a framework holds on an agent, once: whichever of the two reports it
    /// first (agents and frameworks come back in any order after a failover, and both report
    /// the same usage), the other's report of the same pair is not added to it.
    fn count_used(&mut self, framework: usize, agent: usize, resources: &Resources) {
        if self.holdings.get(agent, framework).is_some_and(|held| held.iter().any(|amount| *amount > 0.0)) {
            return;
        }
        let amounts = self.amounts(resources);
        self.account(framework, agent, &amounts, 1.0);
    }

    /// Everything allocated on each agent, summed: for checking that nothing is lost.
    pub fn allocated_total(&self) -> Resources {
        let mut sum = vec![0.0; self.names.len()];
        for (index, _) in self.agents.iter().enumerate().filter(|(_, a)| !a.removed) {
            for (slot, amount) in sum.iter_mut().zip(self.agent_allocated.row(index)) {
                *slot = round_scalar(*slot + amount);
            }
        }
        self.resources(&sum)
    }

    /// The total of the agents currently known.
    pub fn cluster_total(&self) -> Resources {
        self.resources(&self.total)
    }
}

impl Allocator for HierarchicalDrf {
    fn initialize(&mut self, options: &AllocatorOptions) -> Result<(), CallError> {
        self.apply_options(options.clone());
        Ok(())
    }

    fn add_framework(&mut self, request: &AddFramework) -> Result<(), CallError> {
        let id = &request.framework.id;
        if self.clients(id).is_ok() {
            return Err(CallError::failed(format!("framework '{id}' was already added")));
        }
        let roles = checked_roles(&request.framework)?;
        // Checked whole before anything changes: slots agents reported, and the usage.
        let slots: Vec<usize> = self.framework_index.get(id).cloned().unwrap_or_default();
        for &slot in &slots {
            let named = self.frameworks[slot].role_name.clone();
            if named.is_empty() && roles.len() > 1 {
                return Err(CallError::failed(format!(
                    "framework '{id}' is in several roles, and the usage an agent reported for it names none"
                )));
            }
            if !named.is_empty() && !roles.iter().any(|r| **r == *named) {
                return Err(CallError::failed(format!(
                    "framework '{id}' is not in role '{named}', which the usage an agent reported for it names"
                )));
            }
        }
        for used in &request.used {
            check_names(&used.resources)?;
            let names_one = used.role.is_empty() && roles.len() == 1;
            if !names_one && !roles.iter().any(|r| **r == *used.role) {
                return Err(CallError::failed(format!(
                    "framework '{id}': its usage on agent '{}' names role '{}', {}",
                    used.agent_id,
                    used.role,
                    if used.role.is_empty() { "but it is in several: say which" } else { "which it is not in" }
                )));
            }
        }
        // Each role adopts the slot agents reported for it (for a framework in one role, a
        // slot that named no role too), with what it holds.
        for role in &roles {
            let slot = slots.iter().copied().find(|&s| {
                let named = &*self.frameworks[s].role_name;
                named == role.as_str() || (named.is_empty() && roles.len() == 1)
            });
            self.subscribe(id, role, slot, request.active);
        }
        for used in &request.used {
            let role = if used.role.is_empty() { roles[0].as_str() } else { used.role.as_str() };
            let client = self.client_in(id, role, false)?.expect("subscribed just above");
            match self.agent_index.get(&used.agent_id) {
                Some(&agent) => self.count_used(client, agent, &used.resources),
                None => {
                    let key = (used.agent_id.clone(), id.clone(), role.to_owned());
                    self.unplaced.insert(key, used.resources.clone());
                }
            }
        }
        Ok(())
    }

    fn remove_framework(&mut self, request: &FrameworkRequest) -> Result<(), CallError> {
        self.clients(&request.framework_id)?;
        let slots = self.framework_index.remove(&request.framework_id).unwrap_or_default();
        for framework in slots {
            for (agent, _, held) in self.holdings.select(|_, holder| holder == framework) {
                self.account(framework, agent, &held, -1.0);
            }
            if let Some(role) = self.frameworks[framework].role {
                self.roles[role].frameworks.retain(|&f| f != framework);
            }
            self.frameworks[framework].removed = true;
        }
        self.unplaced.retain(|(_, f, _), _| *f != request.framework_id);
        Ok(())
    }

    fn activate_framework(&mut self, request: &FrameworkRequest) -> Result<(), CallError> {
        for framework in self.clients(&request.framework_id)? {
            self.frameworks[framework].active = true;
        }
        Ok(())
    }

    fn deactivate_framework(&mut self, request: &FrameworkRequest) -> Result<(), CallError> {
        for framework in self.clients(&request.framework_id)? {
            self.frameworks[framework].active = false;
        }
        Ok(())
    }

    fn update_framework(&mut self, request: &UpdateFramework) -> Result<(), CallError> {
        let id = &request.framework.id;
        let old = self.clients(id)?;
        let roles = checked_roles(&request.framework)?;
        let active = self.frameworks[old[0]].active;
        if let ([framework], [new]) = (old.as_slice(), roles.as_slice()) {
            // One role for another: what the framework holds moves with it.
            let framework = *framework;
            let old_role = self.frameworks[framework].role.expect("an added framework has a role");
            let new_role = self.role(new);
            if old_role != new_role {
                let held = self.framework_allocated.row(framework).to_vec();
                self.role_add(old_role, &held, -1.0);
                self.role_add(new_role, &held, 1.0);
                self.roles[old_role].frameworks.retain(|&f| f != framework);
                self.roles[new_role].frameworks.push(framework);
                self.frameworks[framework].role = Some(new_role);
                self.frameworks[framework].role_name = new.as_str().into();
            }
            return Ok(());
        }
        // Several roles (Mesos's MULTI_ROLE): a role joined gets a slot; a role left is
        // offered nothing more, and what the framework holds there stays there until given
        // back (a slot holding nothing goes).
        for &framework in &old {
            let named = self.frameworks[framework].role_name.clone();
            let stays = roles.iter().any(|r| **r == *named);
            self.frameworks[framework].subscribed = stays;
            let holds = self.framework_allocated.row(framework).iter().any(|amount| *amount > 0.0);
            if !stays && !holds {
                if let Some(role) = self.frameworks[framework].role {
                    self.roles[role].frameworks.retain(|&f| f != framework);
                }
                self.frameworks[framework].removed = true;
                if let Some(slots) = self.framework_index.get_mut(id) {
                    slots.retain(|&f| f != framework);
                }
            }
        }
        for role in &roles {
            if self.client_in(id, role, false)?.is_none() {
                self.subscribe(id, role, None, active);
            }
        }
        Ok(())
    }

    fn add_agent(&mut self, request: &AddAgent) -> Result<(), CallError> {
        let id = request.agent.id.clone();
        if self.agent_index.get(&id).is_some_and(|&a| !self.agents[a].removed) {
            return Err(CallError::failed(format!("agent '{id}' was already added")));
        }
        check_names(&request.agent.resources)?;
        for used in &request.used {
            check_names(&used.resources)?;
        }
        self.check_used(&request.used)?;
        let total = self.amounts(&request.agent.resources);
        for (slot, amount) in self.total.iter_mut().zip(&total) {
            *slot = round_scalar(*slot + amount);
        }
        let index = self.agents.len();
        let attributes = request.agent.attributes.clone();
        self.agents.push(Agent { id: id.clone(), active: true, removed: false, attributes });
        self.agent_total.push(&total);
        self.agent_allocated.push_zeros();
        self.agent_index.insert(id.clone(), index);
        // The agent's own report first (frameworks not added yet get a slot), then what
        // frameworks reported using here before the agent came, for those it did not report.
        for used in &request.used {
            let framework = self.framework_slot(&used.framework_id, &used.role);
            self.count_used(framework, index, &used.resources);
        }
        let mut reported: Vec<_> = self.unplaced.keys().filter(|(agent, _, _)| *agent == id).cloned().collect();
        reported.sort();
        for key in reported {
            if let Some(resources) = self.unplaced.remove(&key) {
                let framework = self.framework_slot(&key.1, &key.2);
                self.count_used(framework, index, &resources);
            }
        }
        Ok(())
    }

    fn remove_agent(&mut self, request: &AgentRequest) -> Result<(), CallError> {
        let agent = self.agent(&request.agent_id)?;
        for (_, framework, held) in self.holdings.select(|holder, _| holder == agent) {
            self.account(framework, agent, &held, -1.0);
        }
        for (slot, amount) in self.total.iter_mut().zip(self.agent_total.row(agent)) {
            *slot = round_scalar(*slot - amount);
        }
        self.agents[agent].removed = true;
        self.agent_index.remove(&request.agent_id);
        for framework in &mut self.frameworks {
            framework.filters.remove(&agent);
        }
        Ok(())
    }

    fn update_agent(&mut self, request: &UpdateAgent) -> Result<(), CallError> {
        let agent = self.agent(&request.agent.id)?;
        check_names(&request.agent.resources)?;
        if self.agents[agent].attributes != request.agent.attributes {
            // A framework may have declined this agent for what it lacked; it is offered
            // again at the next round, as Mesos does for an agent back with new attributes.
            self.agents[agent].attributes = request.agent.attributes.clone();
            for framework in &mut self.frameworks {
                framework.filters.remove(&agent);
            }
        }
        let total = self.amounts(&request.agent.resources);
        for ((slot, old), new) in self.total.iter_mut().zip(self.agent_total.row(agent)).zip(&total) {
            *slot = round_scalar(*slot - old + new);
        }
        self.agent_total.row_mut(agent).copy_from_slice(&total);
        Ok(())
    }

    fn activate_agent(&mut self, request: &AgentRequest) -> Result<(), CallError> {
        let agent = self.agent(&request.agent_id)?;
        self.agents[agent].active = true;
        Ok(())
    }

    fn deactivate_agent(&mut self, request: &AgentRequest) -> Result<(), CallError> {
        let agent = self.agent(&request.agent_id)?;
        self.agents[agent].active = false;
        Ok(())
    }

    fn recover_resources(&mut self, request: &RecoverResources) -> Result<(), CallError> {
        // Resources of a framework or an agent that is gone were released with it (Mesos
        // ignores such calls too).
        let (true, Some(&agent)) =
            (self.framework_index.contains_key(&request.framework_id), self.agent_index.get(&request.agent_id))
        else {
            return Ok(());
        };
        let Some(framework) = self.client_in(&request.framework_id, &request.role, true)? else {
            return Err(CallError::failed(format!(
                "framework '{}' holds nothing in role '{}'",
                request.framework_id, request.role
            )));
        };
        check_names(&request.resources)?;
        let amounts = self.amounts(&request.resources);
        // Nothing held reads as zeros (no vector made for it: this runs for every give-back).
        let held = self.holdings.get(agent, framework).unwrap_or(&[]);
        let holds = |name: usize| held.get(name).copied().unwrap_or(0.0);
        if amounts.iter().enumerate().any(|(name, back)| round_scalar(holds(name) - back) < 0.0) {
            return Err(CallError::failed(format!(
                "framework '{}' gives back {} on agent '{}', more than the {} it holds there",
                request.framework_id,
                request.resources,
                request.agent_id,
                self.resources(held)
            )));
        }
        self.account(framework, agent, &amounts, -1.0);
        // A framework an agent reported but that is not added yet gives back what ended; it
        // cannot refuse anything.
        if !self.frameworks[framework].added {
            return Ok(());
        }
        if let Some(lasts) = request.filters.and_then(|f| f.lasts(self.options.allocation_interval)) {
            let expires = self.now + lasts;
            self.frameworks[framework].filters.insert(agent, Filter { expires, refused: amounts });
        }
        Ok(())
    }

    fn suppress_offers(&mut self, request: &RolesRequest) -> Result<(), CallError> {
        for framework in self.clients_for(request)? {
            self.frameworks[framework].suppressed = true;
        }
        Ok(())
    }

    fn revive_offers(&mut self, request: &RolesRequest) -> Result<(), CallError> {
        for framework in self.clients_for(request)? {
            self.frameworks[framework].suppressed = false;
            self.frameworks[framework].filters.clear();
        }
        Ok(())
    }

    fn update_weights(&mut self, request: &UpdateWeights) -> Result<(), CallError> {
        // All checked before any is set: a refused call changes nothing.
        if let Some(bad) = request.weights.iter().find(|w| !(w.weight.is_finite() && w.weight > 0.0)) {
            return Err(CallError::failed(format!(
                "role '{}': weight {} must be a positive number",
                bad.role, bad.weight
            )));
        }
        for weight in &request.weights {
            check_role(&weight.role)?;
        }
        for weight in &request.weights {
            let role = self.role(&weight.role);
            self.roles[role].weight = weight.weight;
        }
        Ok(())
    }

    fn update_quota(&mut self, request: &modhost_abi::UpdateQuota) -> Result<(), CallError> {
        check_quota(request)?;
        let role = self.role(&request.role);
        self.quotas.retain(|quota| quota.role != role);
        if request.removes() {
            // Mesos's DEFAULT_QUOTA: none.
            return Ok(());
        }
        for name in request.limits.0.keys() {
            self.intern(name);
        }
        let guarantees = self.amounts(&request.guarantees);
        let mut limits = vec![f64::INFINITY; self.names.len()];
        for (name, limit) in &request.limits.0 {
            limits[self.name_index[&**name]] = *limit;
        }
        self.quotas.push(Quota { role, guarantees, limits });
        self.quotas.sort_by_key(|quota| quota.role);
        Ok(())
    }

    fn update_available(&mut self, request: &modhost_abi::UpdateAvailable) -> Result<(), CallError> {
        let agent = self.agent(&request.agent_id)?;
        for operation in &request.operations {
            let (modhost_abi::Operation::Reserve { resources } | modhost_abi::Operation::Unreserve { resources }) =
                operation;
            check_names(resources)?;
            if let Some(name) = resources.0.keys().find(|name| reservation(name).is_none()) {
                return Err(CallError::failed(format!(
                    "agent '{}': '{name}' names no reservation (write it name(role), as cpus(eng))",
                    request.agent_id
                )));
            }
        }
        // Applied to a copy of the agent's total, checked against what is unallocated at each
        // step, and kept only if every operation fits: all or none.
        let mut total = self.agent_total.row(agent).to_vec();
        for operation in &request.operations {
            let (resources, reserve) = match operation {
                modhost_abi::Operation::Reserve { resources } => (resources, true),
                modhost_abi::Operation::Unreserve { resources } => (resources, false),
            };
            for (name, amount) in &resources.0 {
                let reserved = self.intern(name);
                let base = self.base[reserved];
                total.resize(self.names.len(), 0.0);
                let (from, to) = if reserve { (base, reserved) } else { (reserved, base) };
                let allocated = self.agent_allocated.row(agent).get(from).copied().unwrap_or(0.0);
                let unallocated = round_scalar(total[from] - allocated);
                if round_scalar(unallocated - amount) < 0.0 {
                    return Err(CallError::failed(format!(
                        "agent '{}': cannot {} {name}:{amount}, only {} of {} is unallocated",
                        request.agent_id,
                        if reserve { "reserve" } else { "unreserve" },
                        unallocated.max(0.0),
                        self.names[from]
                    )));
                }
                total[from] = round_scalar(total[from] - amount);
                total[to] = round_scalar(total[to] + amount);
            }
        }
        for ((slot, old), new) in self.total.iter_mut().zip(self.agent_total.row(agent)).zip(&total) {
            *slot = round_scalar(*slot - old + new);
        }
        self.agent_total.row_mut(agent).copy_from_slice(&total);
        Ok(())
    }

    fn pause(&mut self, _: &Empty) -> Result<(), CallError> {
        self.paused = true;
        Ok(())
    }

    fn resume(&mut self, _: &Empty) -> Result<(), CallError> {
        self.paused = false;
        Ok(())
    }

    fn allocate(&mut self, request: &Allocate) -> Result<Offers, CallError> {
        if self.paused {
            self.now = request.now;
            return Ok(Offers::new());
        }
        let offers = self.round(request.now);
        if request.dry_run {
            // Decide exactly as a real round would, then leave nothing allocated.
            self.apply(&offers, -1)?;
        }
        Ok(offers)
    }

    fn offers_made(&mut self, request: &OffersMade) -> Result<(), CallError> {
        let offers: Offers = request.offers.iter().cloned().collect();
        self.apply(&offers, 1)
    }
}
