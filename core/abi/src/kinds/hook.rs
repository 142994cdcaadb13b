//! Hook: decorators and hooks around task and agent life (Mesos `mesos::Hook`).
//!
//! A decorator returns `Some(value)` to replace the decorated field, or `None` to leave it.
//! The host runs hooks in `--hooks` order, each seeing the result of the ones before; an
//! error is logged with the module's name and ignored (Mesos's semantics since 0.23).
//!
//! Left out of Mesos's interface: `slavePreLaunchDockerTaskExecutorDecorator`, which has no
//! meaning without a Docker containerizer. Mesos's `slave` is spelled `agent`.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::message::message_kind;
use crate::messages::{
    AgentInfo, EnvironmentVariable, ExecutorInfo, FrameworkInfo, Label, Resources, TaskInfo, TaskStatus,
};
use crate::{CallError, Kind};

/// Request of [`Hook::master_launch_task_label_decorator`].
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct LaunchTask {
    /// The task being launched (with the labels earlier hooks set).
    pub task: TaskInfo,
    /// Its framework.
    pub framework: FrameworkInfo,
    /// The agent it goes to.
    pub agent: AgentInfo,
}

/// Request of [`Hook::master_launch_task_resource_decorator`].
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct LaunchTaskResources {
    /// The task being launched.
    pub task: TaskInfo,
    /// The agent's total resources.
    pub agent_resources: Resources,
}

/// Request of [`Hook::agent_run_task_label_decorator`].
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct RunTask {
    /// The task the agent is about to run.
    pub task: TaskInfo,
    /// Its executor.
    pub executor: ExecutorInfo,
    /// Its framework.
    pub framework: FrameworkInfo,
    /// The agent.
    pub agent: AgentInfo,
}

/// Request of [`Hook::agent_executor_environment_decorator`].
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ExecutorEnvironment {
    /// The executor being launched (with the environment earlier hooks set).
    pub executor: ExecutorInfo,
}

/// Request naming an agent (`master_agent_lost_hook`, the agent decorators).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct AgentEvent {
    /// The agent.
    pub agent: AgentInfo,
}

/// Request of [`Hook::agent_task_status_decorator`].
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct TaskStatusUpdate {
    /// The framework the update goes to.
    pub framework_id: String,
    /// The update.
    pub status: TaskStatus,
}

/// Request of [`Hook::agent_remove_executor_hook`].
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct RemoveExecutor {
    /// The executor's framework.
    pub framework: FrameworkInfo,
    /// The executor.
    pub executor: ExecutorInfo,
}

/// Request of [`Hook::agent_post_fetch_hook`].
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct PostFetch {
    /// The container.
    pub container_id: String,
    /// Its sandbox directory.
    pub directory: String,
}

/// The Hook kind. Every method has a default that changes nothing.
pub trait Hook: Send {
    /// Master, when a task is launched: `Some` replaces the task's labels.
    fn master_launch_task_label_decorator(&mut self, request: &LaunchTask) -> Result<Option<Vec<Label>>, CallError> {
        let _ = request;
        Ok(None)
    }
    /// Master, when a task is launched: `Some` replaces the task's resources.
    fn master_launch_task_resource_decorator(
        &mut self,
        request: &LaunchTaskResources,
    ) -> Result<Option<Resources>, CallError> {
        let _ = request;
        Ok(None)
    }
    /// Agent, when it is asked to run a task: `Some` replaces the task's labels.
    fn agent_run_task_label_decorator(&mut self, request: &RunTask) -> Result<Option<Vec<Label>>, CallError> {
        let _ = request;
        Ok(None)
    }
    /// Agent, when an executor starts: `Some` replaces its environment.
    fn agent_executor_environment_decorator(
        &mut self,
        request: &ExecutorEnvironment,
    ) -> Result<Option<Vec<EnvironmentVariable>>, CallError> {
        let _ = request;
        Ok(None)
    }
    /// Master, after an agent is lost and its frameworks were told.
    fn master_agent_lost_hook(&mut self, request: &AgentEvent) -> Result<(), CallError> {
        let _ = request;
        Ok(())
    }
    /// Agent, before a status update goes out: only the labels of a `Some` are applied.
    fn agent_task_status_decorator(&mut self, request: &TaskStatusUpdate) -> Result<Option<TaskStatus>, CallError> {
        let _ = request;
        Ok(None)
    }
    /// Agent, at start: `Some` replaces the resources it advertises.
    fn agent_resources_decorator(&mut self, request: &AgentEvent) -> Result<Option<Resources>, CallError> {
        let _ = request;
        Ok(None)
    }
    /// Agent, at start: `Some` replaces its attributes.
    fn agent_attributes_decorator(
        &mut self,
        request: &AgentEvent,
    ) -> Result<Option<BTreeMap<String, String>>, CallError> {
        let _ = request;
        Ok(None)
    }
    /// Agent, when an executor is removed.
    fn agent_remove_executor_hook(&mut self, request: &RemoveExecutor) -> Result<(), CallError> {
        let _ = request;
        Ok(())
    }
    /// Agent, after a container's URIs are fetched.
    fn agent_post_fetch_hook(&mut self, request: &PostFetch) -> Result<(), CallError> {
        let _ = request;
        Ok(())
    }
}

message_kind! {
    /// The Hook vtable: one [`MessageFn`](crate::MessageFn) per [`Hook`] method, in trait
    /// order. Decorators answer `null` (packed or JSON) for "leave the field as it is".
    vtable HookVtable;
    /// Glue between a Rust [`Hook`] type and the Hook vtable.
    glue HookGlue;
    trait Hook;
    kind Kind::Hook;
    methods HOOK_METHODS {
        /// See [`Hook::master_launch_task_label_decorator`].
        master_launch_task_label_decorator(LaunchTask) -> Option<Vec<Label>>;
        /// See [`Hook::master_launch_task_resource_decorator`].
        master_launch_task_resource_decorator(LaunchTaskResources) -> Option<Resources>;
        /// See [`Hook::agent_run_task_label_decorator`].
        agent_run_task_label_decorator(RunTask) -> Option<Vec<Label>>;
        /// See [`Hook::agent_executor_environment_decorator`].
        agent_executor_environment_decorator(ExecutorEnvironment) -> Option<Vec<EnvironmentVariable>>;
        /// See [`Hook::master_agent_lost_hook`].
        master_agent_lost_hook(AgentEvent) -> ();
        /// See [`Hook::agent_task_status_decorator`].
        agent_task_status_decorator(TaskStatusUpdate) -> Option<TaskStatus>;
        /// See [`Hook::agent_resources_decorator`].
        agent_resources_decorator(AgentEvent) -> Option<Resources>;
        /// See [`Hook::agent_attributes_decorator`].
        agent_attributes_decorator(AgentEvent) -> Option<BTreeMap<String, String>>;
        /// See [`Hook::agent_remove_executor_hook`].
        agent_remove_executor_hook(RemoveExecutor) -> ();
        /// See [`Hook::agent_post_fetch_hook`].
        agent_post_fetch_hook(PostFetch) -> ();
    }
}
