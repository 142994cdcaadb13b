//! `--hooks`: the installed Hook modules and Mesos's decorator semantics.
//!
//! Hooks run in `--hooks` order and each sees the result of the ones before. A decorator's
//! `Some` replaces the field, `None` leaves it; an error is logged as a warning naming the
//! module and ignored (Mesos's rules since 0.23), and counted for the report.

use modhost_abi::messages::{AgentInfo, ExecutorInfo, FrameworkInfo, Resources, TaskInfo, TaskStatus};
use modhost_abi::{
    AgentEvent, CallError, ExecutorEnvironment, Hook, LaunchTask, LaunchTaskResources, RemoveExecutor, RunTask,
    TaskStatusUpdate,
};

use crate::{CreateError, Kind, ModuleManager};

/// Why `--hooks` could not be installed (Mesos's messages).
#[derive(Debug, thiserror::Error)]
pub enum HooksError {
    /// A name appears twice in the list.
    #[error("Error installing hooks: Hook module '{0}' already loaded")]
    ListedTwice(String),
    /// No loaded Hook module has that name.
    #[error("Error installing hooks: No hook module named '{0}' available")]
    Unknown(String),
    /// The module's `create` failed.
    #[error("Error installing hooks: Failed to instantiate hook module '{name}': {cause}")]
    Create {
        /// The module.
        name: String,
        /// Why.
        cause: CreateError,
    },
}

struct Installed {
    name: String,
    hook: Box<dyn Hook>,
    errors: u64,
}

/// The installed hooks, in order.
#[derive(Default)]
pub struct HookChain {
    hooks: Vec<Installed>,
}

impl HookChain {
    /// Creates the hooks named in a `--hooks` value (comma-separated; as in Mesos an empty
    /// item is a name, and fails).
    pub fn install(manager: &ModuleManager, list: &str) -> Result<Self, HooksError> {
        let mut chain = HookChain::default();
        if list.is_empty() {
            return Ok(chain);
        }
        for name in list.split(',') {
            if chain.hooks.iter().any(|h| h.name == name) {
                return Err(HooksError::ListedTwice(name.to_owned()));
            }
            if !crate::script::serves(manager, name, Kind::Hook) {
                return Err(HooksError::Unknown(name.to_owned()));
            }
            let hook = crate::script::create_hook(manager, name)
                .map_err(|cause| HooksError::Create { name: name.to_owned(), cause })?;
            chain.push(name, hook);
        }
        Ok(chain)
    }

    /// Appends a hook (the script adapter and tests use this for hooks made elsewhere).
    pub fn push(&mut self, name: &str, hook: Box<dyn Hook>) {
        self.hooks.push(Installed { name: name.to_owned(), hook, errors: 0 });
    }

    /// Whether no hook is installed.
    pub fn is_empty(&self) -> bool {
        self.hooks.is_empty()
    }

    /// Errors per hook so far, in installation order.
    pub fn errors(&self) -> Vec<(String, u64)> {
        self.hooks.iter().map(|h| (h.name.clone(), h.errors)).collect()
    }

    /// Runs one decorator over every hook, all on one request: `Some` replaces the decorated
    /// field of the request (so the next hook sees it), `None` keeps it, an error is logged
    /// and counted. The request is built once per chain, not once per hook.
    fn decorate<R, T>(
        &mut self,
        method: &str,
        request: &mut R,
        field: impl Fn(&mut R) -> &mut T,
        call: impl Fn(&mut dyn Hook, &R) -> Result<Option<T>, CallError>,
    ) {
        for installed in &mut self.hooks {
            match call(installed.hook.as_mut(), request) {
                Ok(Some(value)) => *field(request) = value,
                Ok(None) => {}
                Err(e) => {
                    installed.errors += 1;
                    log::warn!("hook '{}': {method} failed, field left unchanged: {e}", installed.name);
                }
            }
        }
    }

    /// Runs a hook that returns nothing on every hook, logging errors.
    fn notify(&mut self, method: &str, call: impl Fn(&mut dyn Hook) -> Result<(), CallError>) {
        for installed in &mut self.hooks {
            if let Err(e) = call(installed.hook.as_mut()) {
                installed.errors += 1;
                log::warn!("hook '{}': {method} failed: {e}", installed.name);
            }
        }
    }

    /// Master, on launch: the task's labels.
    pub fn launch_task_labels(&mut self, task: &mut TaskInfo, framework: &FrameworkInfo, agent: &AgentInfo) {
        if self.hooks.is_empty() {
            return;
        }
        let mut request = LaunchTask { task: task.clone(), framework: framework.clone(), agent: agent.clone() };
        self.decorate(
            "master_launch_task_label_decorator",
            &mut request,
            |r| &mut r.task.labels,
            |hook, r| hook.master_launch_task_label_decorator(r),
        );
        task.labels = request.task.labels;
    }

    /// Master, on launch: the task's resources.
    pub fn launch_task_resources(&mut self, task: &mut TaskInfo, agent_resources: &Resources) {
        if self.hooks.is_empty() {
            return;
        }
        let mut request = LaunchTaskResources { task: task.clone(), agent_resources: agent_resources.clone() };
        self.decorate(
            "master_launch_task_resource_decorator",
            &mut request,
            |r| &mut r.task.resources,
            |hook, r| hook.master_launch_task_resource_decorator(r),
        );
        task.resources = request.task.resources;
    }

    /// Agent, on run-task: the task's labels.
    pub fn run_task_labels(
        &mut self,
        task: &mut TaskInfo,
        executor: &ExecutorInfo,
        framework: &FrameworkInfo,
        agent: &AgentInfo,
    ) {
        if self.hooks.is_empty() {
            return;
        }
        let mut request = RunTask {
            task: task.clone(),
            executor: executor.clone(),
            framework: framework.clone(),
            agent: agent.clone(),
        };
        self.decorate(
            "agent_run_task_label_decorator",
            &mut request,
            |r| &mut r.task.labels,
            |hook, r| hook.agent_run_task_label_decorator(r),
        );
        task.labels = request.task.labels;
    }

    /// Agent, on executor launch: the executor's environment.
    pub fn executor_environment(&mut self, executor: &mut ExecutorInfo) {
        if self.hooks.is_empty() {
            return;
        }
        let mut request = ExecutorEnvironment { executor: executor.clone() };
        self.decorate(
            "agent_executor_environment_decorator",
            &mut request,
            |r| &mut r.executor.environment,
            |hook, r| hook.agent_executor_environment_decorator(r),
        );
        executor.environment = request.executor.environment;
    }

    /// Agent, before a status update goes out: only labels are taken from a decoration.
    pub fn task_status(&mut self, framework_id: &str, status: &mut TaskStatus) {
        if self.hooks.is_empty() {
            return;
        }
        let mut request = TaskStatusUpdate { framework_id: framework_id.to_owned(), status: status.clone() };
        self.decorate(
            "agent_task_status_decorator",
            &mut request,
            |r| &mut r.status.labels,
            |hook, r| Ok(hook.agent_task_status_decorator(r)?.map(|decorated| decorated.labels)),
        );
        status.labels = request.status.labels;
    }

    /// Agent, at start: its resources, then its attributes.
    pub fn agent_start(&mut self, agent: &mut AgentInfo) {
        if self.hooks.is_empty() {
            return;
        }
        let mut request = AgentEvent { agent: agent.clone() };
        self.decorate(
            "agent_resources_decorator",
            &mut request,
            |r| &mut r.agent.resources,
            |hook, r| hook.agent_resources_decorator(r),
        );
        self.decorate(
            "agent_attributes_decorator",
            &mut request,
            |r| &mut r.agent.attributes,
            |hook, r| hook.agent_attributes_decorator(r),
        );
        agent.resources = request.agent.resources;
        agent.attributes = request.agent.attributes;
    }

    /// Master, after an agent is lost.
    pub fn agent_lost(&mut self, agent: &AgentInfo) {
        let request = AgentEvent { agent: agent.clone() };
        self.notify("master_agent_lost_hook", |hook| hook.master_agent_lost_hook(&request));
    }

    /// Agent, when an executor is removed.
    pub fn remove_executor(&mut self, framework: &FrameworkInfo, executor: &ExecutorInfo) {
        let request = RemoveExecutor { framework: framework.clone(), executor: executor.clone() };
        self.notify("agent_remove_executor_hook", |hook| hook.agent_remove_executor_hook(&request));
    }
}
