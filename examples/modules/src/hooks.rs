//! Two hooks: labels on tasks, variables in executor environments.

use modhost_abi::messages::{EnvironmentVariable, Label, TaskStatus};
use modhost_abi::{CallError, Construct, ExecutorEnvironment, Hook, LaunchTask, Parameters, TaskStatusUpdate};

/// Adds one label per parameter to each launched task (keeping the labels it has, replacing
/// a label of the same key), and labels each status update with `modhost.hooked=true`.
pub struct LabelHook {
    labels: Vec<Label>,
}

impl Construct for LabelHook {
    fn create(parameters: Parameters) -> Result<Self, CallError> {
        let labels = parameters.iter().map(|p| Label { key: p.key.clone(), value: p.value.clone() }).collect();
        Ok(LabelHook { labels })
    }
}

/// `existing` with `added` merged in: a key already present takes the new value.
fn merge(mut existing: Vec<Label>, added: &[Label]) -> Vec<Label> {
    for label in added {
        match existing.iter_mut().find(|l| l.key == label.key) {
            Some(slot) => slot.value = label.value.clone(),
            None => existing.push(label.clone()),
        }
    }
    existing
}

impl Hook for LabelHook {
    fn master_launch_task_label_decorator(&mut self, request: &LaunchTask) -> Result<Option<Vec<Label>>, CallError> {
        if self.labels.is_empty() {
            return Ok(None);
        }
        Ok(Some(merge(request.task.labels.clone(), &self.labels)))
    }

    fn agent_task_status_decorator(&mut self, request: &TaskStatusUpdate) -> Result<Option<TaskStatus>, CallError> {
        let hooked = [Label { key: "modhost.hooked".into(), value: "true".into() }];
        let labels = merge(request.status.labels.clone(), &hooked);
        Ok(Some(TaskStatus { labels, ..request.status.clone() }))
    }
}

/// Adds one environment variable per parameter to each executor (replacing a variable of
/// the same name), plus `MODHOST_EXECUTOR_ID`.
pub struct EnvironmentHook {
    variables: Vec<EnvironmentVariable>,
}

impl Construct for EnvironmentHook {
    fn create(parameters: Parameters) -> Result<Self, CallError> {
        let mut variables = Vec::new();
        for p in parameters.iter() {
            if p.key.is_empty() || p.key.contains('=') {
                return Err(CallError::failed(format!(
                    "parameter '{}' is not a valid environment variable name",
                    p.key
                )));
            }
            variables.push(EnvironmentVariable { name: p.key.clone(), value: p.value.clone() });
        }
        Ok(EnvironmentHook { variables })
    }
}

impl Hook for EnvironmentHook {
    fn agent_executor_environment_decorator(
        &mut self,
        request: &ExecutorEnvironment,
    ) -> Result<Option<Vec<EnvironmentVariable>>, CallError> {
        let mut environment = request.executor.environment.clone();
        let id = EnvironmentVariable { name: "MODHOST_EXECUTOR_ID".into(), value: request.executor.id.clone() };
        for variable in self.variables.iter().chain([&id]) {
            match environment.iter_mut().find(|v| v.name == variable.name) {
                Some(slot) => slot.value = variable.value.clone(),
                None => environment.push(variable.clone()),
            }
        }
        Ok(Some(environment))
    }
}
