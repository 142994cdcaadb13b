//! `--isolation`: the isolator modules a container passes through, in flag order.

use modhost_abi::messages::{ContainerConfig, ContainerLimitation, Resources};
use modhost_abi::{CallError, ContainerRequest, Isolate, Isolator, Prepare, Update};

use crate::{CreateError, Kind, ModuleManager};

/// Why `--isolation` could not be set up (Mesos's messages).
#[derive(Debug, thiserror::Error)]
pub enum IsolationError {
    /// A name appears twice.
    #[error("Duplicate entries found in --isolation flag: '{0}'")]
    ListedTwice(String),
    /// No loaded Isolator module has that name (modhost has no built-in isolators).
    #[error("Unknown or unsupported isolator '{0}'")]
    Unknown(String),
    /// The module's `create` failed.
    #[error("Failed to create isolator '{name}': {cause}")]
    Create {
        /// The module.
        name: String,
        /// Why.
        cause: CreateError,
    },
}

struct Installed {
    name: String,
    isolator: Box<dyn Isolator>,
    errors: u64,
    /// Reported usage integrated over time: resource-seconds.
    usage: Resources,
    containers: u64,
}

/// What one isolator did in a run.
#[derive(Clone, Debug, serde::Serialize)]
pub struct IsolatorSummary {
    /// The module.
    pub name: String,
    /// Containers it prepared.
    pub containers: u64,
    /// Calls that failed.
    pub errors: u64,
    /// The usage it reported, multiplied by each container's run time (resource-seconds).
    pub usage_seconds: Resources,
}

/// The isolators in `--isolation` order.
#[derive(Default)]
pub struct Isolators {
    list: Vec<Installed>,
}

impl Isolators {
    /// Creates the isolators named in an `--isolation` value (comma-separated; empty items
    /// are dropped, as Mesos tokenises this flag).
    pub fn install(manager: &ModuleManager, flag: &str) -> Result<Self, IsolationError> {
        let mut isolators = Isolators::default();
        for name in flag.split(',').map(str::trim).filter(|n| !n.is_empty()) {
            if isolators.list.iter().any(|i| i.name == name) {
                return Err(IsolationError::ListedTwice(name.to_owned()));
            }
            if !crate::script::serves(manager, name, Kind::Isolator) {
                return Err(IsolationError::Unknown(name.to_owned()));
            }
            let isolator = crate::script::create_isolator(manager, name)
                .map_err(|cause| IsolationError::Create { name: name.to_owned(), cause })?;
            isolators.push(name, isolator);
        }
        Ok(isolators)
    }

    /// Appends an isolator made elsewhere.
    pub fn push(&mut self, name: &str, isolator: Box<dyn Isolator>) {
        self.list.push(Installed {
            name: name.to_owned(),
            isolator,
            errors: 0,
            usage: Resources::new(),
            containers: 0,
        });
    }

    /// Whether there are none.
    pub fn is_empty(&self) -> bool {
        self.list.is_empty()
    }

    /// Runs `call` on each isolator in order; the first error stops the launch and says which
    /// isolator failed.
    fn each(
        &mut self,
        method: &str,
        mut call: impl FnMut(&mut dyn Isolator) -> Result<(), CallError>,
    ) -> Result<(), String> {
        for installed in &mut self.list {
            if let Err(e) = call(installed.isolator.as_mut()) {
                installed.errors += 1;
                return Err(format!("isolator '{}': {method} failed: {e}", installed.name));
            }
        }
        Ok(())
    }

    /// Sets up a container: prepare, isolate, update on every isolator. An error fails the
    /// launch (the caller then cleans up).
    pub fn launch(&mut self, config: &ContainerConfig, pid: u32) -> Result<(), String> {
        for installed in &mut self.list {
            installed.containers += 1;
        }
        let id = &config.container_id;
        self.each("prepare", |i| i.prepare(&Prepare { container_id: id.clone(), config: config.clone() }).map(drop))?;
        self.each("isolate", |i| i.isolate(&Isolate { container_id: id.clone(), pid }))?;
        self.each("update", |i| i.update(&Update { container_id: id.clone(), resources: config.resources.clone() }))
    }

    /// Polls every isolator's `watch`; the first limitation reported wins.
    pub fn watch(&mut self, container_id: &str) -> Option<(String, ContainerLimitation)> {
        for installed in &mut self.list {
            match installed.isolator.watch(&ContainerRequest { container_id: container_id.to_owned() }) {
                Ok(Some(limitation)) => return Some((installed.name.clone(), limitation)),
                Ok(None) => {}
                Err(e) => {
                    installed.errors += 1;
                    log::warn!("isolator '{}': watch failed: {e}", installed.name);
                }
            }
        }
        None
    }

    /// Collects usage (integrated over `seconds` of run time), then cleans the container up
    /// on every isolator; errors are logged and counted, and cleanup goes on.
    pub fn finish(&mut self, container_id: &str, seconds: f64) {
        for installed in &mut self.list {
            let request = ContainerRequest { container_id: container_id.to_owned() };
            match installed.isolator.usage(&request) {
                Ok(statistics) => {
                    for (name, amount) in &statistics.used.0 {
                        let slot = installed.usage.0.entry(name.clone()).or_default();
                        *slot += amount * seconds;
                    }
                }
                Err(e) => {
                    installed.errors += 1;
                    log::warn!("isolator '{}': usage failed: {e}", installed.name);
                }
            }
            if let Err(e) = installed.isolator.cleanup(&request) {
                installed.errors += 1;
                log::warn!("isolator '{}': cleanup failed: {e}", installed.name);
            }
        }
    }

    /// Cleans up a container that never ran (a failed launch).
    pub fn cleanup(&mut self, container_id: &str) {
        for installed in &mut self.list {
            if let Err(e) = installed.isolator.cleanup(&ContainerRequest { container_id: container_id.to_owned() }) {
                installed.errors += 1;
                log::warn!("isolator '{}': cleanup failed: {e}", installed.name);
            }
        }
    }

    /// What each isolator did.
    pub fn summary(&self) -> Vec<IsolatorSummary> {
        self.list
            .iter()
            .map(|i| IsolatorSummary {
                name: i.name.clone(),
                containers: i.containers,
                errors: i.errors,
                usage_seconds: Resources(
                    i.usage.0.iter().map(|(k, v)| (k.clone(), (v * 1000.0).round() / 1000.0)).collect(),
                ),
            })
            .collect()
    }
}
