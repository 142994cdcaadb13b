//! Allocator: decides which framework is offered which resources (Mesos
//! `mesos::allocator::Allocator`).
//!
//! The host calls the methods as its cluster changes and calls [`Allocator::allocate`] once
//! per allocation interval; the offers it returns go to the frameworks. Offered resources
//! count as allocated until the framework declines them or its tasks finish, when they come
//! back through [`Allocator::recover_resources`].
//!
//! Left out of Mesos's interface, because they have no meaning in modhost: inverse offers and
//! maintenance (`updateUnavailability`, `updateInverseOffer`, `getInverseOfferStatuses`),
//! reservations and operations (`updateAllocation`, `updateAvailable`,
//! `addResourceProvider`), `recover` after master failover, `updateWhitelist` and
//! `requestResources`. Quota (`updateQuota`) is [`Allocator::update_quota`] and operator
//! reservations (`updateAvailable`) [`Allocator::update_available`], both appended to the
//! vtable in ABI 1.2, when frameworks also became able to be in several roles.

use serde::{Deserialize, Serialize};

use super::message::message_kind;
use crate::messages::{AgentInfo, AllocatorOptions, Filters, FrameworkInfo, Offer, Offers, Resources, WeightInfo};
use crate::{CallError, Kind};

/// Resources a framework already uses on an agent (when a framework or agent is re-added).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Allocation {
    /// The framework.
    pub framework_id: String,
    /// The agent.
    pub agent_id: String,
    /// What it uses.
    pub resources: Resources,
    /// The role it holds them in (empty: its only role).
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub role: String,
}

/// Request of [`Allocator::add_framework`].
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct AddFramework {
    /// The framework.
    pub framework: FrameworkInfo,
    /// What it already uses.
    #[serde(default)]
    pub used: Vec<Allocation>,
    /// Whether it may be offered resources now.
    #[serde(default = "yes")]
    pub active: bool,
}

fn yes() -> bool {
    true
}

/// Request naming one framework.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct FrameworkRequest {
    /// The framework.
    pub framework_id: String,
}

/// Request of [`Allocator::update_framework`].
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct UpdateFramework {
    /// The framework's new description (its role may change).
    pub framework: FrameworkInfo,
}

/// Request of [`Allocator::add_agent`].
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct AddAgent {
    /// The agent, with its total resources.
    pub agent: AgentInfo,
    /// What frameworks already use on it.
    #[serde(default)]
    pub used: Vec<Allocation>,
}

/// Request naming one agent.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct AgentRequest {
    /// The agent.
    pub agent_id: String,
}

/// Request of [`Allocator::update_agent`].
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct UpdateAgent {
    /// The agent with its new total.
    pub agent: AgentInfo,
}

/// Request of [`Allocator::recover_resources`].
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct RecoverResources {
    /// The framework giving resources back.
    pub framework_id: String,
    /// The agent they are on.
    pub agent_id: String,
    /// What comes back.
    pub resources: Resources,
    /// A refusal filter, when the framework declined an offer.
    #[serde(default)]
    pub filters: Option<Filters>,
    /// The role it held them in (empty: its only role).
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub role: String,
}

/// Request of [`Allocator::suppress_offers`] and [`Allocator::revive_offers`].
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct RolesRequest {
    /// The framework.
    pub framework_id: String,
    /// The roles; empty means all of the framework's roles.
    #[serde(default)]
    pub roles: Vec<String>,
}

/// Request of [`Allocator::update_weights`].
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct UpdateWeights {
    /// New weights; roles left out keep theirs.
    pub weights: Vec<WeightInfo>,
}

/// Request of [`Allocator::update_quota`]: a role's quota, as Mesos's `Quota` (1.9 on).
///
/// Amounts are quantities of scalar resources by name. A guarantee is what the role's subtree
/// is given before any role gets more than its fair share; a limit is what it is never given
/// more than (a name left out of `limits` has no limit; a limit of 0 allows none). Both empty
/// is Mesos's `DEFAULT_QUOTA`: the role has no quota any more.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct UpdateQuota {
    /// The role: a top-level role, whose quota covers its whole subtree.
    pub role: String,
    /// What the role is guaranteed.
    #[serde(default)]
    pub guarantees: Resources,
    /// What the role may hold at most.
    #[serde(default)]
    pub limits: Resources,
}

impl UpdateQuota {
    /// Whether this is Mesos's `DEFAULT_QUOTA` (no guarantee, no limit): the role's quota is
    /// removed.
    pub fn removes(&self) -> bool {
        self.guarantees.0.is_empty() && self.limits.0.is_empty()
    }
}

/// An operation on an agent's unallocated resources (Mesos's `Offer::Operation`, as an
/// operator applies it through `updateAvailable`).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Operation {
    /// Reserves unreserved resources for a role: `resources` names them reserved
    /// (`{"cpus(eng)": 2}` takes 2 unreserved cpus).
    Reserve {
        /// What becomes reserved, with its role in each name.
        resources: Resources,
    },
    /// Gives reserved resources back to everyone: `resources` names them reserved.
    Unreserve {
        /// What stops being reserved, with its role in each name.
        resources: Resources,
    },
}

/// Request of [`Allocator::update_available`].
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct UpdateAvailable {
    /// The agent.
    pub agent_id: String,
    /// The operations, applied in order, all or none.
    pub operations: Vec<Operation>,
}

/// Request of [`Allocator::allocate`].
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct Allocate {
    /// The host's clock, in seconds.
    pub now: f64,
    /// A shadow round: decide as usual, but leave nothing allocated (the host applies
    /// another allocator's decisions and reports them through `offers_made`).
    #[serde(default)]
    pub dry_run: bool,
}

/// Request of [`Allocator::offers_made`].
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct OffersMade {
    /// The offers the host made this round, which now count as allocated.
    pub offers: Vec<Offer>,
}

/// A request with nothing in it (`pause`, `resume`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Empty {}

/// The Allocator kind. Every method but `allocate` has a default that does nothing.
///
/// The rules every implementation keeps (the built-in, its module, and the script adapter
/// for `cluster.lua` and `cluster.py`; `tests/conformance.rs` holds them to it), as Mesos's
/// hierarchical allocator does:
/// - After a failover agents and frameworks come back in any order, each reporting what
///   runs: `add_agent` may carry the usage of a framework not added yet (it is counted, and
///   the framework, once added, holds it), `add_framework` the usage on an agent not added
///   yet (counted when the agent comes, unless the agent reports it itself), and a usage
///   both report counts once.
/// - A refusal filter set by `recover_resources` lasts `max(refuse_seconds, allocation
///   interval)` and holds through the round at its expiry time (MESOS-4302), so a short one
///   still holds in the next round; an agent updated with other attributes loses its filters.
/// - An agent whose total falls below what is allocated on it has none of that resource
///   free; what its frameworks hold stays theirs until given back.
/// - Roles are paths (`eng/ml/training` is a child of `eng/ml`, a child of `eng`), named by
///   Mesos's rules; DRF sorts siblings by their whole subtree's share over their weight, and
///   a role's own frameworks sit among its children at weight 1 (Mesos's virtual leaf).
/// - A call that is refused changes nothing.
/// - Quota (ABI 1.2) is set on top-level roles and covers their whole subtree: what a role
///   and its descendants hold is what it consumes. Each round first offers to roles whose
///   guarantees are not met (only what brings them closer, and no more than their limits),
///   then to everyone in DRF order; no offer takes a role past a limit, and outside a role's
///   own guarantees no offer takes from the headroom that the unmet guarantees of all roles
///   need (Mesos 1.9's two stages). Mesos refuses quota on nested roles (MESOS-7402) and
///   does not hold a child to its parent's limit yet; modhost refuses the same roles and
///   does hold children to it, as Mesos meant to.
///
/// - Reservations (ABI 1.2): a resource named `cpus(eng)` is reserved for `eng` (see
///   [`reservation`](crate::messages::reservation)), statically in an agent's resources or
///   through [`Allocator::update_available`]. It is offered only to frameworks of that role
///   or its subroles, whatever the quotas, counts towards the quota of the role's top-level
///   role (allocated or not: it is the role's), and comes back reserved. For shares and
///   `min_allocatable_resources` it counts as its unreserved name.
///
/// - Frameworks in several roles (ABI 1.2, Mesos's MULTI_ROLE: `FrameworkInfo::roles`): such
///   a framework is a client of each role's framework order, with its own share, offer count,
///   refusal filters and suppression in each (`RolesRequest::roles`); each offer says its role
///   (`Offer::role`, and the packed offers' layout), and a give-back or a usage report names
///   the role it is in (it may leave it empty for a framework in one role). A role the
///   framework leaves is offered nothing more; what it holds there stays until given back.
///
/// Left out, as having no meaning here yet: inverse offers (maintenance windows), resource
/// providers, and offer operations beyond reserve and unreserve (persistent volumes, their
/// sharing, and conversions between resource kinds: modhost has scalar resources only, and
/// no agent to run them).
pub trait Allocator: Send {
    /// Called once, before anything else.
    fn initialize(&mut self, options: &AllocatorOptions) -> Result<(), CallError> {
        let _ = options;
        Ok(())
    }
    /// A framework registered (or re-registered with resources in use).
    fn add_framework(&mut self, request: &AddFramework) -> Result<(), CallError> {
        let _ = request;
        Ok(())
    }
    /// A framework is gone; what it held is released.
    fn remove_framework(&mut self, request: &FrameworkRequest) -> Result<(), CallError> {
        let _ = request;
        Ok(())
    }
    /// A framework may be offered resources again.
    fn activate_framework(&mut self, request: &FrameworkRequest) -> Result<(), CallError> {
        let _ = request;
        Ok(())
    }
    /// A framework must not be offered resources until activated.
    fn deactivate_framework(&mut self, request: &FrameworkRequest) -> Result<(), CallError> {
        let _ = request;
        Ok(())
    }
    /// A framework's description changed.
    fn update_framework(&mut self, request: &UpdateFramework) -> Result<(), CallError> {
        let _ = request;
        Ok(())
    }
    /// An agent joined (or re-joined with resources in use).
    fn add_agent(&mut self, request: &AddAgent) -> Result<(), CallError> {
        let _ = request;
        Ok(())
    }
    /// An agent is gone, with everything allocated on it.
    fn remove_agent(&mut self, request: &AgentRequest) -> Result<(), CallError> {
        let _ = request;
        Ok(())
    }
    /// An agent's total resources changed.
    fn update_agent(&mut self, request: &UpdateAgent) -> Result<(), CallError> {
        let _ = request;
        Ok(())
    }
    /// An agent reconnected.
    fn activate_agent(&mut self, request: &AgentRequest) -> Result<(), CallError> {
        let _ = request;
        Ok(())
    }
    /// An agent disconnected: offer nothing on it.
    fn deactivate_agent(&mut self, request: &AgentRequest) -> Result<(), CallError> {
        let _ = request;
        Ok(())
    }
    /// Resources come back: declined (with a filter) or freed by a finished task.
    fn recover_resources(&mut self, request: &RecoverResources) -> Result<(), CallError> {
        let _ = request;
        Ok(())
    }
    /// Stop offering to a framework (for some or all of its roles).
    fn suppress_offers(&mut self, request: &RolesRequest) -> Result<(), CallError> {
        let _ = request;
        Ok(())
    }
    /// Offer to a framework again, clearing its refusal filters.
    fn revive_offers(&mut self, request: &RolesRequest) -> Result<(), CallError> {
        let _ = request;
        Ok(())
    }
    /// Roles' weights changed.
    fn update_weights(&mut self, request: &UpdateWeights) -> Result<(), CallError> {
        let _ = request;
        Ok(())
    }
    /// Stop allocating until `resume` (idempotent).
    fn pause(&mut self, request: &Empty) -> Result<(), CallError> {
        let _ = request;
        Ok(())
    }
    /// Allocate again after `pause` (idempotent).
    fn resume(&mut self, request: &Empty) -> Result<(), CallError> {
        let _ = request;
        Ok(())
    }
    /// After a dry-run round, the offers another allocator made and the host applied: account
    /// them as allocated, as if they were this allocator's own. (Shadow runs use this to keep a
    /// candidate policy's view of the cluster identical to the active one's.)
    fn offers_made(&mut self, request: &OffersMade) -> Result<(), CallError> {
        let _ = request;
        Ok(())
    }
    /// A role's quota changed (ABI 1.2). An allocator that keeps no quota refuses it, so that
    /// a quota is never silently ignored; so does the host for a module built for ABI 1.1,
    /// whose vtable has no such entry.
    fn update_quota(&mut self, request: &UpdateQuota) -> Result<(), CallError> {
        Err(CallError::failed(format!(
            "role '{}': this allocator does not support quota (it has no update_quota)",
            request.role
        )))
    }
    /// Reserves or unreserves an agent's unallocated resources (ABI 1.2; Mesos's
    /// `updateAvailable`). The operations apply in order, all or none: one that needs more
    /// unallocated resources than the agent has refuses the call. An allocator that keeps no
    /// reservations refuses it, as it refuses quota.
    fn update_available(&mut self, request: &UpdateAvailable) -> Result<(), CallError> {
        Err(CallError::failed(format!(
            "agent '{}': this allocator does not support reservations (it has no update_available)",
            request.agent_id
        )))
    }
    /// One allocation round: the offers to make now. (Across the boundary the offers travel
    /// in their own packed layout, described at [`Offers`], not as a message.)
    fn allocate(&mut self, request: &Allocate) -> Result<Offers, CallError>;
}

message_kind! {
    /// The Allocator vtable: one [`MessageFn`](crate::MessageFn) per [`Allocator`] method, in
    /// trait order.
    vtable AllocatorVtable;
    /// Glue between a Rust [`Allocator`] type and the Allocator vtable.
    glue AllocatorGlue;
    trait Allocator;
    kind Kind::Allocator;
    methods ALLOCATOR_METHODS {
        /// See [`Allocator::initialize`].
        initialize(AllocatorOptions) -> ();
        /// See [`Allocator::add_framework`].
        add_framework(AddFramework) -> ();
        /// See [`Allocator::remove_framework`].
        remove_framework(FrameworkRequest) -> ();
        /// See [`Allocator::activate_framework`].
        activate_framework(FrameworkRequest) -> ();
        /// See [`Allocator::deactivate_framework`].
        deactivate_framework(FrameworkRequest) -> ();
        /// See [`Allocator::update_framework`].
        update_framework(UpdateFramework) -> ();
        /// See [`Allocator::add_agent`].
        add_agent(AddAgent) -> ();
        /// See [`Allocator::remove_agent`].
        remove_agent(AgentRequest) -> ();
        /// See [`Allocator::update_agent`].
        update_agent(UpdateAgent) -> ();
        /// See [`Allocator::activate_agent`].
        activate_agent(AgentRequest) -> ();
        /// See [`Allocator::deactivate_agent`].
        deactivate_agent(AgentRequest) -> ();
        /// See [`Allocator::recover_resources`].
        recover_resources(RecoverResources) -> ();
        /// See [`Allocator::suppress_offers`].
        suppress_offers(RolesRequest) -> ();
        /// See [`Allocator::revive_offers`].
        revive_offers(RolesRequest) -> ();
        /// See [`Allocator::update_weights`].
        update_weights(UpdateWeights) -> ();
        /// See [`Allocator::pause`].
        pause(Empty) -> ();
        /// See [`Allocator::resume`].
        resume(Empty) -> ();
        /// See [`Allocator::allocate`].
        allocate(Allocate) -> Offers as crate::kinds::codec::PackedOffers;
        /// See [`Allocator::offers_made`].
        offers_made(OffersMade) -> ();
        /// See [`Allocator::update_quota`] (ABI 1.2).
        update_quota(UpdateQuota) -> ();
        /// See [`Allocator::update_available`] (ABI 1.2).
        update_available(UpdateAvailable) -> ();
    }
}
