# The Python side of modhost's bridge: output capture, calls, and errors with the script's
# file:line. Loaded once per process as the module _modhost_bridge.
import os
import sys
import traceback
import threading
import types

timeout_ms = [0]


class CallTimeout(TimeoutError):
    """Raised in the running frame of a call that overran its timeout_ms, and at every line
    it runs after that. Made without running Python code (the message is made when it is
    shown): it is made under the trace that raises it."""

    def __str__(self):
        return f"the call ran longer than timeout_ms={timeout_ms[0]}"


class Output:
    """Stands in for sys.stdout and sys.stderr: what a script prints reaches the host's log
    whatever the host's stdout is (a pipe would buffer it until a finalisation that never
    comes). What waits for the host is bounded: printing the same large str in a loop costs
    the script nothing, but joining it would cost the host gigabytes."""

    # Characters kept between two collections; what follows is dropped and counted.
    LIMIT = 1 << 20

    def __init__(self):
        self.parts = []
        self.size = 0
        self.dropped = 0

    def write(self, text):
        text = str(text)
        written = len(text)
        room = self.LIMIT - self.size
        if len(text) > room:
            self.dropped += len(text) - room
            text = text[:room]
        if text:
            self.parts.append(text)
            self.size += len(text)
        return written

    def writelines(self, lines):
        for line in lines:
            self.write(line)

    def flush(self):
        pass

    def isatty(self):
        return False

    def take(self):
        if not self.parts:
            return []
        text = "".join(self.parts)
        self.parts.clear()
        self.size = 0
        lines = text.splitlines()
        if self.dropped:
            lines.append(f"... ({self.dropped} more characters dropped: a script may print "
                         f"{self.LIMIT} between two collections)")
            self.dropped = 0
        return lines


output = Output()
sys.stdout = output
sys.stderr = output


def describe(error, script, tb=None):
    """The error's type and message, where in the script it happened, and the traceback
    (`tb`, when the caller holds it apart from the exception)."""
    tb = tb or error.__traceback__
    where = ""
    if isinstance(error, SyntaxError) and error.filename:
        where = f"{error.filename}:{error.lineno}: "
    else:
        for frame in reversed(traceback.extract_tb(tb)):
            if frame.filename == script:
                where = f"{frame.filename}:{frame.lineno}: "
                break
    head = "".join(traceback.format_exception_only(type(error), error)).strip()
    frames = [f for f in traceback.extract_tb(tb) if f.filename != __file__]
    return where + head + "\nTraceback (most recent call last):\n" + "".join(traceback.format_list(frames))


def forget_helpers(folder):
    """Forgets the modules imported from the .py files of a script's folder, so that the script
    imports them as they are on disk now: a new version of a script (a helper was saved) runs
    the helper's new text, and two scripts never share a helper's globals. Modules imported
    from elsewhere (the standard library, a virtualenv, subfolders, C extensions) stay."""
    # Paths compared as text (abspath touches no file): this runs on every load, under the
    # load's timeout, over every module the process has imported.
    for name, module in list(sys.modules.items()):
        path = getattr(module, "__file__", None)
        if (isinstance(path, str) and path.endswith(".py") and not name.startswith("modhost_script_")
                and os.path.dirname(os.path.abspath(path)) == folder):
            del sys.modules[name]


# Loads run one at a time: two scripts of one folder loading at once (two modules, or a
# reload beside a new instance) could otherwise both import the helper the first one imported
# after the second had forgotten the folder's, and share its globals.
_loading = threading.RLock()


def load(code, filename, name, prelude=None):
    """Compiles a script into a fresh module of its own (never importlib.reload), after the
    host's prelude, if it gave one, ran in the same module."""
    with _loading:
        forget_helpers(os.path.dirname(os.path.abspath(filename)))
        module = types.ModuleType(name)
        module.__file__ = filename
        sys.modules[name] = module
        try:
            if prelude is not None:
                exec(compile(prelude, "<modhost-prelude>", "exec"), module.__dict__)
            exec(compile(code, filename, "exec"), module.__dict__)
        except BaseException:
            del sys.modules[name]
            raise
        return module


def functions(module):
    """The functions a script defines (not the ones it imports)."""
    return sorted(name for name, value in vars(module).items()
                  if callable(value) and getattr(value, "__module__", None) == module.__name__
                  and not name.startswith("_"))


def add_path(path):
    if path and path not in sys.path:
        sys.path.insert(0, path)
