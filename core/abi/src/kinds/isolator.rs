//! Isolator: sets up, limits, measures and cleans up containers (Mesos
//! `mesos::slave::Isolator`).
//!
//! The host calls `prepare`, `isolate` and `update` when a task's container starts, `watch`
//! and `usage` while it runs, and `cleanup` once it has ended. `cleanup` may be called for a
//! container the isolator never saw (MESOS-6059), which it must ignore. Mesos's futures are
//! plain calls here: `watch` is polled and answers `None` until a limit is hit.
//!
//! Left out of Mesos's interface: `supportsNesting` and `supportsStandalone` (modhost has no
//! nested or standalone containers).

use serde::{Deserialize, Serialize};

use super::message::message_kind;
use crate::messages::{
    ContainerConfig, ContainerLaunchInfo, ContainerLimitation, ContainerState, ContainerStatus, ResourceStatistics,
    Resources,
};
use crate::{CallError, Kind};

/// Request of [`Isolator::recover`].
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Recover {
    /// Containers the agent knows about.
    #[serde(default)]
    pub states: Vec<ContainerState>,
    /// Containers nobody knows about any more.
    #[serde(default)]
    pub orphans: Vec<String>,
}

/// Request of [`Isolator::prepare`].
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Prepare {
    /// The container.
    pub container_id: String,
    /// Its configuration.
    pub config: ContainerConfig,
}

/// Request of [`Isolator::isolate`].
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Isolate {
    /// The container.
    pub container_id: String,
    /// Its process.
    pub pid: u32,
}

/// Request of [`Isolator::update`].
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Update {
    /// The container.
    pub container_id: String,
    /// Its resources now.
    pub resources: Resources,
}

/// Request naming one container.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ContainerRequest {
    /// The container.
    pub container_id: String,
}

/// The Isolator kind. Every method has a default that does nothing.
pub trait Isolator: Send {
    /// Rebuild state after an agent restart.
    fn recover(&mut self, request: &Recover) -> Result<(), CallError> {
        let _ = request;
        Ok(())
    }
    /// Before launch; may ask for launch settings.
    fn prepare(&mut self, request: &Prepare) -> Result<Option<ContainerLaunchInfo>, CallError> {
        let _ = request;
        Ok(None)
    }
    /// The container's process started.
    fn isolate(&mut self, request: &Isolate) -> Result<(), CallError> {
        let _ = request;
        Ok(())
    }
    /// Polled while the container runs: `Some` when it hit a limit (the task then fails).
    fn watch(&mut self, request: &ContainerRequest) -> Result<Option<ContainerLimitation>, CallError> {
        let _ = request;
        Ok(None)
    }
    /// The container's resources changed.
    fn update(&mut self, request: &Update) -> Result<(), CallError> {
        let _ = request;
        Ok(())
    }
    /// Usage figures.
    fn usage(&mut self, request: &ContainerRequest) -> Result<ResourceStatistics, CallError> {
        let _ = request;
        Ok(ResourceStatistics::default())
    }
    /// Status details.
    fn status(&mut self, request: &ContainerRequest) -> Result<ContainerStatus, CallError> {
        Ok(ContainerStatus { container_id: request.container_id.clone(), labels: Vec::new() })
    }
    /// The container ended; release what it held.
    fn cleanup(&mut self, request: &ContainerRequest) -> Result<(), CallError> {
        let _ = request;
        Ok(())
    }
}

message_kind! {
    /// The Isolator vtable: one [`MessageFn`](crate::MessageFn) per [`Isolator`] method, in
    /// trait order.
    vtable IsolatorVtable;
    /// Glue between a Rust [`Isolator`] type and the Isolator vtable.
    glue IsolatorGlue;
    trait Isolator;
    kind Kind::Isolator;
    methods ISOLATOR_METHODS {
        /// See [`Isolator::recover`].
        recover(Recover) -> ();
        /// See [`Isolator::prepare`].
        prepare(Prepare) -> Option<ContainerLaunchInfo>;
        /// See [`Isolator::isolate`].
        isolate(Isolate) -> ();
        /// See [`Isolator::watch`].
        watch(ContainerRequest) -> Option<ContainerLimitation>;
        /// See [`Isolator::update`].
        update(Update) -> ();
        /// See [`Isolator::usage`].
        usage(ContainerRequest) -> ResourceStatistics;
        /// See [`Isolator::status`].
        status(ContainerRequest) -> ContainerStatus;
        /// See [`Isolator::cleanup`].
        cleanup(ContainerRequest) -> ();
    }
}
