"""Task hooks in Python.

Each function is the Mesos hook of the same name: it gets the message a native module gets
(see scripts/README.md) as plain dicts and lists, and returns the new value of the field it
decorates, or None to leave it.
"""
import json
import os
import sqlite3

HERE = os.path.dirname(os.path.abspath(__file__))
launched = 0


def _role_settings():
    """Per-role settings: from roles.sqlite if it exists (table settings(role, name, value)),
    else from roles.json. Read at every call, so editing the file takes effect at once."""
    database = os.path.join(HERE, "roles.sqlite")
    if os.path.exists(database):
        with sqlite3.connect(database) as connection:
            settings = {}
            for role, name, value in connection.execute("SELECT role, name, value FROM settings"):
                settings.setdefault(role, {})[name] = value
            return settings
    with open(os.path.join(HERE, "roles.json")) as f:
        return json.load(f)


def master_launch_task_label_decorator(request):
    """Label every launched task with its role and a launch counter."""
    global launched
    launched += 1
    labels = request["task"]["labels"]
    labels.append({"key": "role", "value": request["framework"]["role"]})
    labels.append({"key": "launch", "value": str(launched)})
    return labels


def agent_executor_environment_decorator(request):
    """Give each executor the settings of its framework's role (roles.json or roles.sqlite)."""
    executor = request["executor"]
    role = executor["framework_id"].rsplit("-", 1)[0]
    environment = executor["environment"]
    for name, value in _role_settings().get(role, {}).items():
        environment.append({"name": name, "value": str(value)})
    return environment


def agent_task_status_decorator(request):
    """Stamp status updates with the hook's name; only labels are applied by the host."""
    status = request["status"]
    status["labels"].append({"key": "decorated-by", "value": "hooks.py"})
    return status
