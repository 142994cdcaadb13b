# job_submit/modhost's prelude: runs before a Python job submit script in the script's own
# module. `import slurm` then gives the constants and logging of job_submit/lua's slurm table;
# a job description is read and assigned by key. The plugin calls the two wrappers at the end;
# they call the script's slurm_job_submit and slurm_job_modify.
import math as _math
import sys as _sys
import types as _types

slurm = _types.ModuleType("slurm", "job_submit/modhost's slurm module")
#@TABLES@

_logs, _user_msgs = [], []
_MASK = (1 << 64) - 1


def _text(fmt, args):
    return (fmt % args) if args else str(fmt)


def _logger(level):
    def log(fmt, *args):
        _logs.append([level, _text(fmt, args)])
    return log


for _level in ("error", "info", "verbose", "debug", "debug2", "debug3", "debug4"):
    setattr(slurm, "log_" + _level, _logger(_level))
slurm.error = _logger("error")
slurm.log_user = lambda fmt, *args: _user_msgs.append(_text(fmt, args))
slurm.user_msg = lambda message: _user_msgs.append(str(message))
_sys.modules["slurm"] = slurm

_ALIAS = {"gres": "tres_per_node", "oversubscribe": "shared", "ntasks_per_gpu": "ntasks_per_tres",
          "pack_job_offset": "het_job_offset"}


class _JobDesc:
    """A job description: read and assigned by key. Unset: None for text, slurm.NO_VAL (of the
    field's width) for numbers. 64-bit fields read as unsigned, as Slurm has them."""

    __slots__ = ("_fields", "_changes")

    def __init__(self, fields):
        self._fields = fields
        self._changes = {}

    def __getitem__(self, key):
        key = _ALIAS.get(key, key)
        if key not in _FIELDS:
            raise KeyError(key)
        if key in self._changes:
            value = self._changes[key]
        else:
            value = self._fields[_PLACE[key]]
        if value is False:
            return None
        if _FIELDS[key] == "u64" and value is not None:
            return value & _MASK
        return value

    def get(self, key, default=None):
        try:
            value = self[key]
        except KeyError:
            return default
        return default if value is None else value

    def __contains__(self, key):
        return _ALIAS.get(key, key) in _FIELDS

    def keys(self):
        return list(_FIELDS)

    def __setitem__(self, key, value):
        key = _ALIAS.get(key, key)
        kind = _FIELDS.get(key)
        if kind is None:
            raise KeyError("job_desc has no field %r" % (key,))
        if key not in _WRITABLE:
            raise KeyError("job_desc[%r] cannot be set" % (key,))
        if kind == "text":
            if value is None or value == "":
                value = False
            elif not isinstance(value, str):
                raise TypeError("job_desc[%r]: expected str, got %s" % (key, type(value).__name__))
        else:
            if isinstance(value, bool) or not isinstance(value, (int, float)):
                raise TypeError("job_desc[%r]: expected int, got %s" % (key, type(value).__name__))
            value = int(value)
            if kind == "u64":
                value &= _MASK
                if value >= 1 << 63:
                    value -= 1 << 64
        self._changes[key] = value

    def __repr__(self):
        return "job_desc(%r)" % ({k: self[k] for k in _FIELDS if self[k] is not None},)


def _run(hook, msg, *args):
    del _user_msgs[:]
    desc = _JobDesc(msg["fields"])
    rc = slurm.SUCCESS
    if hook is not None:
        rc = hook(desc, *args)
        if rc is None or isinstance(rc, bool) or not isinstance(rc, (int, float)):
            _logs.append(["info", "non-numeric return code, taken as slurm.SUCCESS"])
            rc = slurm.SUCCESS
        rc = int(rc)
    # What the script logged since the last call (at load, too) goes with this answer.
    logged = list(_logs)
    del _logs[:]
    return {"rc": rc, "changes": desc._changes, "logs": logged,
            "user_msg": "\n".join(_user_msgs) if _user_msgs else None}


def modhost_slurm_job_submit(msg):
    return _run(globals().get("slurm_job_submit"), msg, {}, msg["submit_uid"])


def modhost_slurm_job_modify(msg):
    return _run(globals().get("slurm_job_modify"), msg, msg["job_rec"], {}, msg["modify_uid"])
