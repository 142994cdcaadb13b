//! The script adapter: a Vm module (an interpreter with a script) used as an Allocator, Hook,
//! Isolator or Anonymous module. Each trait method becomes a call of the script function of
//! the same name with the message a native module would get; functions the script leaves out
//! take the kind's default.
//!
//! The `create_*` functions are how host code asks for a module of a kind: they return the
//! native handle when the module is of that kind, and the adapter when it is a Vm.

mod allocator;
pub mod reload;
mod transport;

use modhost_abi::{ALLOCATOR_METHODS, Allocator, Anonymous, HOOK_METHODS, Hook, ISOLATOR_METHODS, Isolator, Remote};

pub use allocator::{ClusterState, FailurePolicy, ScriptedAllocator};
pub use transport::{ScriptStatus, VersionStats, VmTransport, statuses};

use crate::kinds::{AllocatorHandle, AnonymousHandle, HookHandle, IsolatorHandle};
use crate::{CreateError, Kind, ModuleManager};

/// A Vm's parameter that makes it an Anonymous module, created at host start.
pub const ANONYMOUS_PARAMETER: (&str, &str) = ("kind", "Anonymous");

fn kind_of(manager: &ModuleManager, name: &str) -> Result<Kind, CreateError> {
    manager.get(name).map(|m| m.kind).ok_or_else(|| CreateError::Unknown { name: name.to_owned() })
}

/// Whether `name` can serve as a module of `kind`: it is of that kind, or a Vm.
pub fn serves(manager: &ModuleManager, name: &str, kind: Kind) -> bool {
    manager.contains(name, kind) || manager.contains(name, Kind::Vm)
}

/// An Allocator module, native or scripted. A script must define `allocate`; its module's
/// parameter `fallback=hierarchical` makes a failing round fall back to the built-in DRF.
pub fn create_allocator(manager: &ModuleManager, name: &str) -> Result<Box<dyn Allocator>, CreateError> {
    if kind_of(manager, name)? != Kind::Vm {
        return Ok(Box::new(manager.create::<AllocatorHandle>(name, None)?));
    }
    let info = manager.get(name).expect("known above");
    let policy = match info.parameters.iter().find(|p| p.key == "fallback").map(|p| p.value.as_str()) {
        None | Some("none") => FailurePolicy::NoOffers,
        Some("hierarchical") => FailurePolicy::Hierarchical,
        Some(other) => {
            return Err(CreateError::Failed {
                name: name.to_owned(),
                message: format!("parameter fallback={other}: the only fallback is 'hierarchical'"),
            });
        }
    };
    let transport = VmTransport::with_required(manager, name, ALLOCATOR_METHODS, &["allocate"])?;
    Ok(Box::new(ScriptedAllocator::new(name, transport, policy)))
}

/// A Hook module, native or scripted (every hook function is optional).
pub fn create_hook(manager: &ModuleManager, name: &str) -> Result<Box<dyn Hook>, CreateError> {
    if kind_of(manager, name)? != Kind::Vm {
        return Ok(Box::new(manager.create::<HookHandle>(name, None)?));
    }
    Ok(Box::new(Remote(VmTransport::new(manager, name, HOOK_METHODS)?)))
}

/// An Isolator module, native or scripted (every isolator function is optional).
pub fn create_isolator(manager: &ModuleManager, name: &str) -> Result<Box<dyn Isolator>, CreateError> {
    if kind_of(manager, name)? != Kind::Vm {
        return Ok(Box::new(manager.create::<IsolatorHandle>(name, None)?));
    }
    Ok(Box::new(Remote(VmTransport::new(manager, name, ISOLATOR_METHODS)?)))
}

/// A scripted Anonymous module: the script runs when it is loaded, then its `start`
/// function, if it defines one.
struct ScriptedAnonymous {
    _transport: VmTransport,
}

impl Anonymous for ScriptedAnonymous {}

/// Why an Anonymous module could not be created at start (Mesos's message).
#[derive(Debug, thiserror::Error)]
#[error("Failed to create anonymous module named '{name}': {cause}")]
pub struct AnonymousError {
    /// The module.
    pub name: String,
    /// Why.
    pub cause: CreateError,
}

/// Every Anonymous module, native or scripted (a Vm with the parameter `kind=Anonymous`),
/// created as a Mesos master creates them at start. The first failure stops and says which.
pub fn create_anonymous_modules(manager: &ModuleManager) -> Result<Vec<Box<dyn Anonymous>>, AnonymousError> {
    let mut created: Vec<Box<dyn Anonymous>> = Vec::new();
    for name in manager.find(Kind::Anonymous) {
        let module = manager.create::<AnonymousHandle>(&name, None).map_err(|cause| AnonymousError { name, cause })?;
        created.push(Box::new(module));
    }
    for name in manager.find(Kind::Vm) {
        let info = manager.get(&name).expect("found above");
        if !info.parameters.iter().any(|p| (p.key.as_str(), p.value.as_str()) == ANONYMOUS_PARAMETER) {
            continue;
        }
        let mut transport = VmTransport::new(manager, &name, &["start"])
            .map_err(|cause| AnonymousError { name: name.clone(), cause })?;
        if transport.defines("start") {
            let nothing = modhost_abi::packed::to_vec(&serde_json::json!({})).expect("{} packs");
            transport.call_packed("start", &nothing).map_err(|e| AnonymousError {
                name: name.clone(),
                cause: CreateError::Failed {
                    name: name.clone(),
                    message: format!("start() failed in '{}': {e}", transport.script()),
                },
            })?;
        }
        created.push(Box::new(ScriptedAnonymous { _transport: transport }));
    }
    Ok(created)
}
