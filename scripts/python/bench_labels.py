"""The label hook the benchmarks call: adds one label to a task-sized message."""


def master_launch_task_label_decorator(request):
    labels = request["task"]["labels"]
    labels.append({"key": "team", "value": "platform"})
    return labels
