-- Task hooks in Lua: a label on every launched task, and the executor's environment.
--
-- Each function is a Mesos hook of the same name. It gets the message a native module gets
-- (see scripts/README.md) and returns the new value of the field it decorates, or nil to
-- leave the field as it is.

local launched = 0

-- Master, on launch: add a label naming the role and counting launches.
function master_launch_task_label_decorator(request)
  launched = launched + 1
  local labels = request.task.labels
  labels[#labels + 1] = { key = "role", value = request.framework.role }
  labels[#labels + 1] = { key = "launch", value = tostring(launched) }
  return labels
end

-- Agent, on executor launch: tell the executor where it runs.
function agent_executor_environment_decorator(request)
  local environment = request.executor.environment
  environment[#environment + 1] = { name = "MODHOST_FRAMEWORK", value = request.executor.framework_id }
  environment[#environment + 1] = { name = "MODHOST_HOOKED_BY", value = "lua" }
  return environment
end

-- Master, when an agent is lost: say so in the host's log.
function master_agent_lost_hook(request)
  print("agent lost: " .. request.agent.id)
end
