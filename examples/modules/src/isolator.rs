//! An isolator that accounts for what each container was given.

use std::collections::HashMap;

use modhost_abi::messages::{ContainerLaunchInfo, ContainerStatus, Label, ResourceStatistics, Resources};
use modhost_abi::{CallError, Construct, ContainerRequest, Isolator, Parameters, Prepare, Update};

/// Keeps each live container's resources: `usage` reports them, `status` reports the
/// isolator's totals, `cleanup` forgets the container (ignoring unknown ones, as Mesos
/// requires of isolators).
#[derive(Default)]
pub struct ResourceAccountingIsolator {
    containers: HashMap<String, Resources>,
    live: Resources,
    peak: Resources,
    seen: u64,
}

impl Construct for ResourceAccountingIsolator {
    fn create(_: Parameters) -> Result<Self, CallError> {
        Ok(Self::default())
    }
}

impl ResourceAccountingIsolator {
    fn set(&mut self, container: String, resources: Resources) {
        if let Some(old) = self.containers.insert(container, resources.clone()) {
            self.live.subtract(&old);
        }
        self.live.add(&resources);
        for (name, amount) in &self.live.0 {
            if *amount > self.peak.get(name) {
                self.peak.0.insert(name.clone(), *amount);
            }
        }
    }
}

impl Isolator for ResourceAccountingIsolator {
    fn prepare(&mut self, request: &Prepare) -> Result<Option<ContainerLaunchInfo>, CallError> {
        if self.containers.contains_key(&request.container_id) {
            return Err(CallError::failed(format!("container '{}' was already prepared", request.container_id)));
        }
        self.seen += 1;
        self.set(request.container_id.clone(), request.config.resources.clone());
        Ok(None)
    }

    fn update(&mut self, request: &Update) -> Result<(), CallError> {
        if !self.containers.contains_key(&request.container_id) {
            return Err(CallError::failed(format!("unknown container '{}'", request.container_id)));
        }
        self.set(request.container_id.clone(), request.resources.clone());
        Ok(())
    }

    fn usage(&mut self, request: &ContainerRequest) -> Result<ResourceStatistics, CallError> {
        let used = self
            .containers
            .get(&request.container_id)
            .cloned()
            .ok_or_else(|| CallError::failed(format!("unknown container '{}'", request.container_id)))?;
        Ok(ResourceStatistics { timestamp: 0.0, limits: used.clone(), used })
    }

    fn status(&mut self, request: &ContainerRequest) -> Result<ContainerStatus, CallError> {
        let labels = [
            ("containers_live", self.containers.len().to_string()),
            ("containers_seen", self.seen.to_string()),
            ("live", self.live.to_string()),
            ("peak", self.peak.to_string()),
        ]
        .into_iter()
        .map(|(key, value)| Label { key: key.into(), value })
        .collect();
        Ok(ContainerStatus { container_id: request.container_id.clone(), labels })
    }

    fn cleanup(&mut self, request: &ContainerRequest) -> Result<(), CallError> {
        if let Some(resources) = self.containers.remove(&request.container_id) {
            self.live.subtract(&resources);
        }
        Ok(())
    }
}
