-- The label hook the benchmarks call: adds one label to a task-sized message.
function master_launch_task_label_decorator(request)
  local labels = request.task.labels
  labels[#labels + 1] = { key = "team", value = "platform" }
  return labels
end
