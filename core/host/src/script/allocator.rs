//! A script as an allocator: the adapter keeps the cluster's canonical state, checks every
//! offer the script makes against it, and applies the module's failure policy when the script
//! fails.

use std::collections::{BTreeMap, BTreeSet};

use modhost_abi::messages::{
    AgentInfo, AllocatorOptions, Filters, FrameworkInfo, Offer, Offers, Resources, WeightInfo, reservation,
    round_scalar,
};
use modhost_abi::packed;
use modhost_abi::{
    AddAgent, AddFramework, AgentRequest, Allocate, Allocation, Allocator, AllocatorVtable, Answer, CallError, Empty,
    FrameworkRequest, MessageFn, MessageTransport, OffersMade, Operation, RecoverResources, Remote, RolesRequest,
    UpdateAgent, UpdateAvailable, UpdateFramework, UpdateQuota, UpdateWeights,
};
use modhost_drf::HierarchicalDrf;
use serde::Serialize;

use super::reload::Version;
use super::transport::VmTransport;

/// What to do when the script fails in `allocate` (an error, a timeout, an answer that is not
/// a list of offers).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FailurePolicy {
    /// Make no offers this round.
    NoOffers,
    /// Allocate this round with the built-in hierarchical DRF, rebuilt from the adapter's
    /// state (parameter `fallback=hierarchical`).
    Hierarchical,
}

#[derive(Clone, Debug)]
struct AgentState {
    info: AgentInfo,
    active: bool,
    /// What each framework holds here, by (framework, role).
    held: BTreeMap<(String, String), Resources>,
}

#[derive(Clone, Debug)]
struct FrameworkState {
    info: FrameworkInfo,
    active: bool,
    /// The roles it is suppressed in.
    suppressed: BTreeSet<String>,
}

/// Resources a framework declined on an agent, not to be offered to it again until `expires`.
#[derive(Clone, Debug)]
struct RefusalFilter {
    refused: Resources,
    expires: f64,
}

/// The cluster as the host knows it: the truth the script's offers are checked against, and
/// what a fresh allocator is rebuilt from.
#[derive(Clone, Debug, Default)]
pub struct ClusterState {
    options: Option<AllocatorOptions>,
    agents: BTreeMap<String, AgentState>,
    frameworks: BTreeMap<String, FrameworkState>,
    weights: BTreeMap<String, f64>,
    /// Quotas by (top-level) role.
    quotas: BTreeMap<String, UpdateQuota>,
    paused: bool,
    /// The clock of the latest round.
    now: f64,
    /// Live refusal filters by (framework, role, agent), for the fallback allocator.
    filters: BTreeMap<(String, String, String), RefusalFilter>,
    /// What frameworks reported using on agents not added yet, by (agent, framework): told
    /// with the agent when it comes, unless the agent reports that framework itself.
    unplaced: BTreeMap<(String, String, String), Resources>,
}

impl RefusalFilter {
    /// Whether the filter holds in a round at `now`, by the built-in's rule.
    fn in_force(&self, now: f64) -> bool {
        modhost_drf::filter_holds(self.expires, now)
    }
}

impl ClusterState {
    fn free(&self, agent: &AgentState) -> Resources {
        let mut free = agent.info.resources.clone();
        for held in agent.held.values() {
            free.subtract(held);
        }
        free
    }

    fn hold(&mut self, framework: &str, role: &str, agent: &str, resources: &Resources) {
        if let Some(a) = self.agents.get_mut(agent) {
            a.held.entry((framework.to_owned(), role.to_owned())).or_default().add(resources);
        }
    }

    /// The role a call names for `framework`, resolved: its only role when `role` is empty.
    /// A framework not added yet keeps the role as named; an error if the framework is not in
    /// `role`, or `role` is empty and it is in several.
    fn role_of(&self, framework: &str, role: &str) -> Result<String, String> {
        let Some(f) = self.frameworks.get(framework) else {
            // Not added yet: what agents reported without a role is whichever role a
            // give-back names.
            let holds = |role: &str| {
                self.agents.values().any(|a| a.held.contains_key(&(framework.to_owned(), role.to_owned())))
            };
            return Ok(if !holds(role) && holds("") { String::new() } else { role.to_owned() });
        };
        let roles = f.info.subscribed_roles();
        match (role, roles.as_slice()) {
            ("", [only]) => Ok((*only).to_owned()),
            ("", several) => {
                Err(format!("framework '{framework}' is in several roles ({}): say in which", several.join(", ")))
            }
            (named, roles) if roles.contains(&named) => Ok(named.to_owned()),
            // A role it left still holds what it held there.
            (named, _)
                if self.agents.values().any(|a| a.held.contains_key(&(framework.to_owned(), named.to_owned()))) =>
            {
                Ok(named.to_owned())
            }
            (named, _) => Err(format!("framework '{framework}' is not in role '{named}'")),
        }
    }

    /// What each top-level role with a quota limit consumes with its whole subtree: the
    /// unreserved resources its frameworks hold and everything reserved for it, allocated or
    /// not (by unreserved name). For checking a round's offers against the limits; empty
    /// without limits.
    fn consumed(&self) -> BTreeMap<String, Resources> {
        let mut consumed: BTreeMap<String, Resources> = BTreeMap::new();
        if self.quotas.values().all(|quota| quota.limits.0.is_empty()) {
            return consumed;
        }
        let limited = |role: &str| {
            let top = role.split('/').next().unwrap_or(role);
            self.quotas.get_key_value(top).filter(|(_, quota)| !quota.limits.0.is_empty()).map(|(top, _)| top.clone())
        };
        for agent in self.agents.values() {
            for (name, amount) in &agent.info.resources.0 {
                if let Some((base, role)) = reservation(name)
                    && let Some(top) = limited(role)
                {
                    consumed.entry(top).or_default().add(&Resources::new().with(base, *amount));
                }
            }
            // What an agent reported for a framework not added yet counts once it is, as in
            // the built-in.
            for ((_, role), held) in agent.held.iter().filter(|((f, _), _)| self.frameworks.contains_key(f)) {
                if let Some(top) = limited(role) {
                    let unreserved = held.0.iter().filter(|(name, _)| reservation(name).is_none());
                    let entry = consumed.entry(top.to_owned()).or_default();
                    entry.add(&Resources(unreserved.map(|(name, amount)| (name.clone(), *amount)).collect()));
                }
            }
        }
        consumed
    }

    /// The top-level role of `role`, if it has a quota with limits.
    fn limited_role_of(&self, role: &str) -> Option<&str> {
        let top = role.split('/').next().unwrap_or(role);
        self.quotas.get_key_value(top).filter(|(_, quota)| !quota.limits.0.is_empty()).map(|(top, _)| top.as_str())
    }

    /// Checks that `offer` keeps its role within its quota's limits, given what the roles
    /// `consumed`; once it is accepted, [`ClusterState::consume`] counts it.
    fn within_limits(&self, offer: &Offer, consumed: &BTreeMap<String, Resources>) -> Result<(), String> {
        let role = self.role_of(&offer.framework_id, &offer.role)?;
        let Some(top) = self.limited_role_of(&role) else {
            return Ok(());
        };
        let quota = &self.quotas[top];
        let none = Resources::new();
        let held = consumed.get(top).unwrap_or(&none);
        // A role may hold more than its limit (usage reported after a failover, a limit
        // lowered): then an offer may not add to it.
        // Reserved resources are consumed already, offered or not: only unreserved ones count.
        for (name, limit) in &quota.limits.0 {
            let more = offer.resources.get(name);
            if more > 0.0 && round_scalar(held.get(name) + more - limit) > 0.0 {
                return Err(format!(
                    "offers {} on agent '{}' to '{}', but role '{top}' holds {held} and its quota limits it to {}",
                    offer.resources, offer.agent_id, offer.framework_id, quota.limits
                ));
            }
        }
        Ok(())
    }

    /// Counts an accepted offer's unreserved resources in its role's quota consumption.
    fn consume(&self, offer: &Offer, consumed: &mut BTreeMap<String, Resources>) {
        let role = self.role_of(&offer.framework_id, &offer.role).unwrap_or_default();
        if let Some(top) = self.limited_role_of(&role) {
            let unreserved = offer.resources.0.iter().filter(|(name, _)| reservation(name).is_none());
            let unreserved = Resources(unreserved.map(|(name, amount)| (name.clone(), *amount)).collect());
            consumed.entry(top.to_owned()).or_default().add(&unreserved);
        }
    }

    /// `agent`'s resources after `operations`, checked against what is unallocated at each
    /// step: all of them, or the first that does not fit.
    fn after_operations(&self, agent_id: &str, operations: &[Operation]) -> Result<Resources, CallError> {
        let agent =
            self.agents.get(agent_id).ok_or_else(|| CallError::failed(format!("unknown agent '{agent_id}'")))?;
        let mut total = agent.info.resources.clone();
        let mut held = Resources::new();
        for resources in agent.held.values() {
            held.add(resources);
        }
        for operation in operations {
            let (resources, reserve) = match operation {
                Operation::Reserve { resources } => (resources, true),
                Operation::Unreserve { resources } => (resources, false),
            };
            modhost_drf::check_names(resources)?;
            for (name, amount) in &resources.0 {
                let Some((base, _)) = reservation(name) else {
                    return Err(CallError::failed(format!(
                        "agent '{agent_id}': '{name}' names no reservation (write it name(role), as cpus(eng))"
                    )));
                };
                let (from, to) = if reserve { (base, &**name) } else { (&**name, base) };
                let unallocated = round_scalar(total.get(from) - held.get(from));
                if round_scalar(unallocated - amount) < 0.0 {
                    return Err(CallError::failed(format!(
                        "agent '{agent_id}': cannot {} {name}:{amount}, only {} of {from} is unallocated",
                        if reserve { "reserve" } else { "unreserve" },
                        unallocated.max(0.0)
                    )));
                }
                total.subtract(&Resources::new().with(from, *amount));
                total.add(&Resources::new().with(to, *amount));
            }
        }
        Ok(total)
    }

    /// Checks one offer against the state and what this round already offered; on success
    /// counts it as allocated.
    fn accept(&mut self, offer: &Offer) -> Result<(), String> {
        let framework = self
            .frameworks
            .get(&offer.framework_id)
            .ok_or_else(|| format!("offers to unknown framework '{}'", offer.framework_id))?;
        if !framework.active {
            return Err(format!("offers to framework '{}', which is inactive", offer.framework_id));
        }
        let agent = self
            .agents
            .get(&offer.agent_id)
            .ok_or_else(|| format!("offers resources of unknown agent '{}'", offer.agent_id))?;
        if !agent.active {
            return Err(format!("offers resources of agent '{}', which is inactive", offer.agent_id));
        }
        if offer.resources.is_empty() || offer.resources.has_negative() {
            return Err(format!(
                "offers '{}' on agent '{}': nothing, or a negative amount",
                offer.resources, offer.agent_id
            ));
        }
        let role = &self.role_of(&offer.framework_id, &offer.role)?;
        if !framework.info.subscribed_roles().contains(&role.as_str()) {
            return Err(format!("offers to framework '{}' in role '{role}', which it has left", offer.framework_id));
        }
        if let Some((name, owner)) = offer.resources.0.keys().find_map(|name| {
            reservation(name)
                .filter(|(_, owner)| !(role == owner || role.starts_with(&format!("{owner}/"))))
                .map(|(_, owner)| (name, owner))
        }) {
            return Err(format!(
                "offers {name} on agent '{}' to '{}' of role '{role}', but it is reserved for role '{owner}'",
                offer.agent_id, offer.framework_id
            ));
        }
        let free = self.free(agent);
        if !free.contains(&offer.resources) {
            return Err(format!(
                "offers {} on agent '{}' to '{}', but only {} is free (offered twice, or never there)",
                offer.resources, offer.agent_id, offer.framework_id, free
            ));
        }
        self.hold(&offer.framework_id, role, &offer.agent_id, &offer.resources);
        Ok(())
    }

    /// Tells `allocator` this state through its own methods, the way Mesos rebuilt an
    /// allocator after a master failover: options, weights, frameworks (and which are
    /// suppressed), agents with what each framework holds on them (and which are inactive),
    /// and whether allocation is paused. Refusal filters are not part of it (nor were they in
    /// Mesos): replaying them needs the allocator's clock set first, which the built-in
    /// fallback allows (see `rebuild`) and a script may not.
    pub fn replay_into(&self, allocator: &mut dyn Allocator) -> Result<(), CallError> {
        allocator.initialize(&self.options.clone().unwrap_or_default())?;
        let weights =
            self.weights.iter().map(|(role, weight)| WeightInfo { role: role.clone(), weight: *weight }).collect();
        allocator.update_weights(&UpdateWeights { weights })?;
        for quota in self.quotas.values() {
            allocator.update_quota(quota)?;
        }
        for f in self.frameworks.values() {
            allocator.add_framework(&AddFramework { framework: f.info.clone(), used: Vec::new(), active: f.active })?;
            if !f.suppressed.is_empty() {
                let roles = f.suppressed.iter().cloned().collect();
                allocator.suppress_offers(&RolesRequest { framework_id: f.info.id.clone(), roles })?;
            }
        }
        for a in self.agents.values() {
            // Usage of frameworks not added yet too: the agent's resources are in use.
            let used = a
                .held
                .iter()
                .map(|((framework, role), resources)| Allocation {
                    framework_id: framework.clone(),
                    role: role.clone(),
                    agent_id: a.info.id.clone(),
                    resources: resources.clone(),
                })
                .collect();
            allocator.add_agent(&AddAgent { agent: a.info.clone(), used })?;
            if !a.active {
                allocator.deactivate_agent(&AgentRequest { agent_id: a.info.id.clone() })?;
            }
        }
        if self.paused {
            allocator.pause(&Empty {})?;
        }
        Ok(())
    }

    /// A fresh built-in allocator that knows this state (the fallback of a failing round),
    /// refusal filters included: a framework that declined resources with a filter is not
    /// offered them again by the fallback before the filter ends.
    fn rebuild(&self) -> Result<HierarchicalDrf, CallError> {
        let mut drf = HierarchicalDrf::default();
        self.replay_into(&mut drf)?;
        self.replay_filters_into(&mut drf)?;
        Ok(drf)
    }

    /// Re-creates the live refusal filters in `allocator`, with what is left of each: its
    /// clock is set by an `allocate` while paused (the built-in then only takes the time),
    /// then each filter is the declined resources offered and given back with it.
    fn replay_filters_into(&self, allocator: &mut dyn Allocator) -> Result<(), CallError> {
        let live: Vec<_> = self.filters.iter().filter(|(_, filter)| filter.in_force(self.now)).collect();
        if live.is_empty() {
            return Ok(());
        }
        allocator.pause(&Empty {})?;
        allocator.allocate(&Allocate { now: self.now, dry_run: true })?;
        if !self.paused {
            allocator.resume(&Empty {})?;
        }
        for ((framework_id, role, agent_id), filter) in live {
            let offer = Offer {
                framework_id: framework_id.clone(),
                role: role.clone(),
                agent_id: agent_id.clone(),
                resources: filter.refused.clone(),
            };
            allocator.offers_made(&OffersMade { offers: vec![offer] })?;
            allocator.recover_resources(&RecoverResources {
                framework_id: framework_id.clone(),
                role: role.clone(),
                agent_id: agent_id.clone(),
                resources: filter.refused.clone(),
                // A filter in force to the end of this very round still has to be one.
                filters: Some(Filters { refuse_seconds: (filter.expires - self.now).max(1e-3) }),
            })?;
        }
        Ok(())
    }

    /// Remembers the filter a give-back sets (replacing the one before on that agent).
    fn refuse(&mut self, request: &RecoverResources) {
        let interval =
            self.options.as_ref().map_or(AllocatorOptions::default().allocation_interval, |o| o.allocation_interval);
        if let Some(lasts) = request.filters.and_then(|f| f.lasts(interval)) {
            let role = self.role_of(&request.framework_id, &request.role).unwrap_or_default();
            let key = (request.framework_id.clone(), role, request.agent_id.clone());
            self.filters.insert(key, RefusalFilter { refused: request.resources.clone(), expires: self.now + lasts });
        }
    }
}

/// A new version of a script, driven as an Allocator during the state hand-off: each method
/// is a call of the script function of that name, skipped when the script does not define it.
struct Handoff<'a>(&'a mut Version);

impl MessageTransport<AllocatorVtable> for Handoff<'_> {
    fn call(
        &mut self,
        method: &'static str,
        _entry: fn(&AllocatorVtable) -> MessageFn,
        request: &[u8],
        response: &mut dyn FnMut(Answer<'_>) -> Result<(), CallError>,
    ) -> Result<(), CallError> {
        self.0.vm.call_packed_then(method, request, |answer| response(Answer::lent(answer)))
    }

    fn implements(&self, method: &'static str) -> bool {
        self.0.defines(method)
    }
}

/// A Vm module's script as an Allocator.
pub struct ScriptedAllocator {
    module: String,
    transport: VmTransport,
    policy: FailurePolicy,
    state: ClusterState,
    /// Script calls that failed (all methods).
    pub errors: u64,
    /// Offers the adapter refused.
    pub rejected_offers: u64,
    /// Rounds allocated by the fallback.
    pub fallback_rounds: u64,
}

impl ScriptedAllocator {
    /// Wraps a transport whose script defines `allocate`.
    pub fn new(module: &str, transport: VmTransport, policy: FailurePolicy) -> Self {
        ScriptedAllocator {
            module: module.to_owned(),
            transport,
            policy,
            state: ClusterState::default(),
            errors: 0,
            rejected_offers: 0,
            fallback_rounds: 0,
        }
    }

    /// Installs a reloaded version of the script, if one is ready, after replaying the
    /// cluster's state into it.
    fn reload(&mut self) {
        let state = &self.state;
        self.transport.reload_with(|next| state.replay_into(&mut Remote(Handoff(next))).map_err(|e| e.to_string()));
    }

    /// The script's versions and reloads.
    pub fn status(&self) -> super::ScriptStatus {
        self.transport.status()
    }

    /// Refuses a call the script cannot keep (it does not define `method`), as a native
    /// allocator without it refuses it: a quota or a reservation is never silently ignored.
    /// `subject` names what the call is about, `feature` what the script lacks.
    fn require(&self, method: &str, subject: &str, feature: &str) -> Result<(), CallError> {
        if self.transport.defines(method) {
            return Ok(());
        }
        Err(CallError::failed(format!(
            "{subject}: script '{}' does not support {feature} (it defines no {method}; cluster.track \
             defines one for a policy built on cluster.lua or cluster.py)",
            self.transport.script()
        )))
    }

    /// The roles a suppress or revive names for its framework: those listed, each one it is
    /// in, or all of its roles.
    fn roles_named(&self, request: &RolesRequest) -> Result<Vec<String>, CallError> {
        let Some(f) = self.state.frameworks.get(&request.framework_id) else { return Ok(Vec::new()) };
        let all: Vec<String> = f.info.subscribed_roles().into_iter().map(str::to_owned).collect();
        if request.roles.is_empty() {
            return Ok(all);
        }
        match request.roles.iter().find(|role| !all.contains(role)) {
            Some(role) => {
                Err(CallError::failed(format!("framework '{}' is not in role '{role}'", request.framework_id)))
            }
            None => Ok(request.roles.clone()),
        }
    }

    /// Forwards a notification to the script, if it defines the function. A failure is
    /// logged and counted, and returned: the host's state is already up to date.
    fn notify(&mut self, method: &'static str, request: &impl Serialize) -> Result<(), CallError> {
        if !self.transport.defines(method) {
            return Ok(());
        }
        let bytes = packed::to_vec(request).map_err(|e| CallError::Malformed { message: e.to_string() })?;
        match self.transport.call_packed(method, &bytes) {
            Ok(_) => Ok(()),
            Err(e) => {
                self.errors += 1;
                log::warn!("allocator '{}' ({}): {method} failed: {e}", self.module, self.transport.script());
                Err(e)
            }
        }
    }

    fn script_offers(&mut self, request: &Allocate) -> Result<Vec<Offer>, CallError> {
        let request = packed::to_vec(&request).map_err(|e| CallError::Malformed { message: e.to_string() })?;
        let answer = self.transport.call_packed("allocate", &request)?;
        let offers: Option<Vec<Offer>> = packed::from_slice(&answer).map_err(|whole| {
            self.transport.count_malformed_answer();
            CallError::Malformed {
                message: format!(
                    "allocate must return a list of {{framework_id, agent_id, resources}}: {}",
                    first_bad_offer(&answer).unwrap_or_else(|| whole.to_string())
                ),
            }
        })?;
        Ok(offers.unwrap_or_default())
    }
}

/// Which element of a list the script returned is not an offer, and why ("offer 2 of 3:
/// invalid type ..."). The byte position the decoder reports on the whole answer points into
/// bytes the user never wrote; the element's number points into their list. Only run once
/// decoding has failed, so the common path reads the answer once.
fn first_bad_offer(answer: &[u8]) -> Option<String> {
    let list: Vec<serde_json::Value> = packed::from_slice(answer).ok()?;
    let count = list.len();
    list.into_iter().enumerate().find_map(|(index, element)| {
        offer_fault(element).map(|fault| format!("offer {} of {count}: {fault}", index + 1))
    })
}

/// Why one element is not an offer, naming the field at fault when one is.
fn offer_fault(element: serde_json::Value) -> Option<String> {
    let whole = serde_json::from_value::<Offer>(element.clone()).err()?;
    let field_fault = |field: &str, check: fn(serde_json::Value) -> Result<(), serde_json::Error>| {
        let value = element.get(field)?.clone();
        check(value).err().map(|e| format!("field {field}: {e}"))
    };
    let text = |value| serde_json::from_value::<String>(value).map(drop);
    field_fault("framework_id", text)
        .or_else(|| field_fault("agent_id", text))
        .or_else(|| field_fault("resources", |value| serde_json::from_value::<Resources>(value).map(drop)))
        .or_else(|| Some(whole.to_string()))
}

impl Allocator for ScriptedAllocator {
    fn initialize(&mut self, options: &AllocatorOptions) -> Result<(), CallError> {
        self.reload();
        self.state.options = Some(options.clone());
        self.notify("initialize", &options)
    }

    fn add_framework(&mut self, request: &AddFramework) -> Result<(), CallError> {
        self.reload();
        let roles = modhost_drf::checked_roles(&request.framework)?;
        let id = request.framework.id.clone();
        // Each usage names one of its roles (or none, for a framework in one).
        let mut used = Vec::with_capacity(request.used.len());
        for u in &request.used {
            modhost_drf::check_names(&u.resources)?;
            let role = match (u.role.as_str(), roles.as_slice()) {
                ("", [only]) => only.clone(),
                (named, roles) if roles.iter().any(|r| r == named) => named.to_owned(),
                (named, _) => {
                    return Err(CallError::failed(format!(
                        "framework '{id}': its usage on agent '{}' names role '{named}', {}",
                        u.agent_id,
                        if named.is_empty() { "but it is in several: say which" } else { "which it is not in" }
                    )));
                }
            };
            used.push(Allocation { role, ..u.clone() });
        }
        // What agents reported for it before it came is held in the role they named, or,
        // naming none, in its only role.
        let unnamed = (id.clone(), String::new());
        if self.state.agents.values().any(|a| a.held.contains_key(&unnamed)) {
            let [only] = roles.as_slice() else {
                return Err(CallError::failed(format!(
                    "framework '{id}' is in several roles, and the usage an agent reported for it names none"
                )));
            };
            for agent in self.state.agents.values_mut() {
                if let Some(held) = agent.held.remove(&unnamed) {
                    agent.held.entry((id.clone(), only.clone())).or_default().add(&held);
                }
            }
        }
        let suppressed = BTreeSet::new();
        self.state
            .frameworks
            .insert(id.clone(), FrameworkState { info: request.framework.clone(), active: request.active, suppressed });
        // Each (agent, framework, role) usage reaches the script once, whatever the order they
        // come back in after a failover: what an agent already reported is not told again,
        // and what is on an agent not added yet is told with the agent.
        let mut told = AddFramework { used: Vec::new(), ..request.clone() };
        for u in used {
            let key = (id.clone(), u.role.clone());
            match self.state.agents.get(&u.agent_id) {
                Some(agent) if agent.held.get(&key).is_some_and(|held| !held.is_empty()) => {}
                Some(_) => {
                    self.state.hold(&id, &u.role, &u.agent_id, &u.resources);
                    told.used.push(u);
                }
                None => {
                    self.state.unplaced.insert((u.agent_id.clone(), id.clone(), u.role), u.resources);
                }
            }
        }
        self.notify("add_framework", &told)
    }

    fn remove_framework(&mut self, request: &FrameworkRequest) -> Result<(), CallError> {
        self.reload();
        self.state.frameworks.remove(&request.framework_id);
        for agent in self.state.agents.values_mut() {
            agent.held.retain(|(framework, _), _| *framework != request.framework_id);
        }
        self.state.unplaced.retain(|(_, framework, _), _| *framework != request.framework_id);
        self.state.filters.retain(|(framework, _, _), _| *framework != request.framework_id);
        self.notify("remove_framework", &request)
    }

    fn activate_framework(&mut self, request: &FrameworkRequest) -> Result<(), CallError> {
        self.reload();
        if let Some(f) = self.state.frameworks.get_mut(&request.framework_id) {
            f.active = true;
        }
        self.notify("activate_framework", &request)
    }

    fn deactivate_framework(&mut self, request: &FrameworkRequest) -> Result<(), CallError> {
        self.reload();
        if let Some(f) = self.state.frameworks.get_mut(&request.framework_id) {
            f.active = false;
        }
        self.notify("deactivate_framework", &request)
    }

    fn update_framework(&mut self, request: &UpdateFramework) -> Result<(), CallError> {
        self.reload();
        let roles = modhost_drf::checked_roles(&request.framework)?;
        let id = &request.framework.id;
        if let Some(f) = self.state.frameworks.get_mut(id) {
            let old: Vec<String> = f.info.subscribed_roles().into_iter().map(str::to_owned).collect();
            if let ([old], [new]) = (old.as_slice(), roles.as_slice())
                && old != new
            {
                // One role for another: what it holds moves with it, as in the built-in.
                for agent in self.state.agents.values_mut() {
                    if let Some(held) = agent.held.remove(&(id.clone(), old.clone())) {
                        agent.held.insert((id.clone(), new.clone()), held);
                    }
                }
            }
            f.info = request.framework.clone();
            f.suppressed.retain(|role| roles.contains(role));
        }
        self.notify("update_framework", &request)
    }

    fn add_agent(&mut self, request: &AddAgent) -> Result<(), CallError> {
        self.reload();
        modhost_drf::check_names(&request.agent.resources)?;
        for used in &request.used {
            modhost_drf::check_names(&used.resources)?;
        }
        let id = request.agent.id.clone();
        let agent = AgentState { info: request.agent.clone(), active: true, held: BTreeMap::new() };
        self.state.agents.insert(id.clone(), agent);
        let mut told = request.clone();
        for used in &mut told.used {
            used.role = self.state.role_of(&used.framework_id, &used.role).map_err(CallError::failed)?;
        }
        for used in &told.used {
            self.state.hold(&used.framework_id, &used.role, &id, &used.resources);
        }
        // What frameworks reported here before the agent came, for those it did not report.
        let waiting: Vec<(String, String, String)> =
            self.state.unplaced.keys().filter(|(agent, _, _)| *agent == id).cloned().collect();
        for key in waiting {
            let resources = self.state.unplaced.remove(&key).unwrap_or_default();
            let (_, framework_id, role) = key;
            if !told.used.iter().any(|used| used.framework_id == framework_id && used.role == role) {
                self.state.hold(&framework_id, &role, &id, &resources);
                told.used.push(Allocation { framework_id, role, agent_id: id.clone(), resources });
            }
        }
        self.notify("add_agent", &told)
    }

    fn remove_agent(&mut self, request: &AgentRequest) -> Result<(), CallError> {
        self.reload();
        self.state.agents.remove(&request.agent_id);
        self.state.filters.retain(|(_, _, agent), _| *agent != request.agent_id);
        self.notify("remove_agent", &request)
    }

    fn update_agent(&mut self, request: &UpdateAgent) -> Result<(), CallError> {
        self.reload();
        modhost_drf::check_names(&request.agent.resources)?;
        if let Some(a) = self.state.agents.get_mut(&request.agent.id) {
            if a.info.attributes != request.agent.attributes {
                // As in the built-in (and Mesos): an agent back with other attributes loses
                // its refusal filters.
                self.state.filters.retain(|(_, _, agent), _| *agent != request.agent.id);
            }
            a.info = request.agent.clone();
        }
        self.notify("update_agent", &request)
    }

    fn activate_agent(&mut self, request: &AgentRequest) -> Result<(), CallError> {
        self.reload();
        if let Some(a) = self.state.agents.get_mut(&request.agent_id) {
            a.active = true;
        }
        self.notify("activate_agent", &request)
    }

    fn deactivate_agent(&mut self, request: &AgentRequest) -> Result<(), CallError> {
        self.reload();
        if let Some(a) = self.state.agents.get_mut(&request.agent_id) {
            a.active = false;
        }
        self.notify("deactivate_agent", &request)
    }

    fn recover_resources(&mut self, request: &RecoverResources) -> Result<(), CallError> {
        self.reload();
        modhost_drf::check_names(&request.resources)?;
        let role = self.state.role_of(&request.framework_id, &request.role).map_err(CallError::failed)?;
        let key = (request.framework_id.clone(), role);
        if let Some(agent) = self.state.agents.get_mut(&request.agent_id)
            && let Some(held) = agent.held.get_mut(&key)
        {
            if !held.contains(&request.resources) {
                return Err(CallError::failed(format!(
                    "framework '{}' gives back {} on agent '{}', more than the {held} it holds there",
                    request.framework_id, request.resources, request.agent_id
                )));
            }
            held.subtract(&request.resources);
            if held.is_empty() {
                agent.held.remove(&key);
            }
        }
        if self.state.frameworks.contains_key(&request.framework_id)
            && self.state.agents.contains_key(&request.agent_id)
        {
            self.state.refuse(request);
        }
        self.notify("recover_resources", &request)
    }

    fn suppress_offers(&mut self, request: &RolesRequest) -> Result<(), CallError> {
        self.reload();
        let roles = self.roles_named(request)?;
        if let Some(f) = self.state.frameworks.get_mut(&request.framework_id) {
            f.suppressed.extend(roles);
        }
        self.notify("suppress_offers", &request)
    }

    fn revive_offers(&mut self, request: &RolesRequest) -> Result<(), CallError> {
        self.reload();
        let roles = self.roles_named(request)?;
        if let Some(f) = self.state.frameworks.get_mut(&request.framework_id) {
            f.suppressed.retain(|role| !roles.contains(role));
        }
        self.state
            .filters
            .retain(|(framework, role, _), _| *framework != request.framework_id || !roles.contains(role));
        self.notify("revive_offers", &request)
    }

    fn update_weights(&mut self, request: &UpdateWeights) -> Result<(), CallError> {
        self.reload();
        // Checked whole before anything changes, as in the built-in: a refused call leaves
        // nothing behind, here or in the script.
        if let Some(bad) = request.weights.iter().find(|w| !(w.weight.is_finite() && w.weight > 0.0)) {
            return Err(CallError::failed(format!(
                "role '{}': weight {} must be a positive number",
                bad.role, bad.weight
            )));
        }
        for w in &request.weights {
            modhost_drf::check_role(&w.role)?;
        }
        for w in &request.weights {
            self.state.weights.insert(w.role.clone(), w.weight);
        }
        self.notify("update_weights", &request)
    }

    fn update_quota(&mut self, request: &UpdateQuota) -> Result<(), CallError> {
        self.reload();
        modhost_drf::check_quota(request)?;
        self.require("update_quota", &format!("role '{}'", request.role), "quota")?;
        if request.removes() {
            self.state.quotas.remove(&request.role);
        } else {
            self.state.quotas.insert(request.role.clone(), request.clone());
        }
        self.notify("update_quota", &request)
    }

    fn update_available(&mut self, request: &UpdateAvailable) -> Result<(), CallError> {
        self.reload();
        let total = self.state.after_operations(&request.agent_id, &request.operations)?;
        self.require("update_available", &format!("agent '{}'", request.agent_id), "reservations")?;
        if let Some(agent) = self.state.agents.get_mut(&request.agent_id) {
            agent.info.resources = total;
        }
        self.notify("update_available", &request)
    }

    fn pause(&mut self, request: &Empty) -> Result<(), CallError> {
        self.reload();
        self.state.paused = true;
        self.notify("pause", &request)
    }

    fn resume(&mut self, request: &Empty) -> Result<(), CallError> {
        self.reload();
        self.state.paused = false;
        self.notify("resume", &request)
    }

    fn offers_made(&mut self, request: &OffersMade) -> Result<(), CallError> {
        self.reload();
        for offer in &request.offers {
            let role = self.state.role_of(&offer.framework_id, &offer.role).map_err(CallError::failed)?;
            self.state.hold(&offer.framework_id, &role, &offer.agent_id, &offer.resources);
        }
        self.notify("offers_made", &request)
    }

    fn allocate(&mut self, request: &Allocate) -> Result<Offers, CallError> {
        self.reload();
        self.state.now = request.now;
        self.state.filters.retain(|_, filter| filter.in_force(request.now));
        let proposed = match self.script_offers(request) {
            Ok(offers) => offers,
            Err(e) => {
                self.errors += 1;
                let script = self.transport.script().to_owned();
                match self.policy {
                    FailurePolicy::NoOffers => {
                        return Err(CallError::Failed { message: format!("script '{script}': {e}") });
                    }
                    FailurePolicy::Hierarchical => {
                        log::warn!(
                            "allocator '{}' ({script}): allocate failed, the built-in allocator decides this round: {e}",
                            self.module
                        );
                        self.fallback_rounds += 1;
                        self.transport.count_fallback_round();
                        self.state.rebuild()?.allocate(request)?.to_vec()
                    }
                }
            }
        };
        // A dry run is checked against a copy: nothing it offers stays allocated.
        let mut scratch = request.dry_run.then(|| self.state.clone());
        let mut accepted = Offers::with_capacity(proposed.len());
        let mut consumed = self.state.consumed();
        for offer in proposed {
            let state = scratch.as_mut().unwrap_or(&mut self.state);
            match state.within_limits(&offer, &consumed).and_then(|()| state.accept(&offer)) {
                Ok(()) => {
                    state.consume(&offer, &mut consumed);
                    accepted.push_offer(&offer);
                }
                Err(reason) => {
                    self.rejected_offers += 1;
                    self.transport.count_refused_offer();
                    log::warn!("allocator '{}' ({}) {reason}; offer refused", self.module, self.transport.script());
                }
            }
        }
        Ok(accepted)
    }
}
