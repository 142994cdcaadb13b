//! The Python bridge: the standard library's C extensions import under the host's RTLD_LOCAL
//! loading, errors carry file:line, a timeout interrupts an endless loop, scripted modules do
//! not share globals, output is never lost; the host survives each case.

mod support;

use std::process::Command;

use modhost::kinds::VmHandle;
use modhost::{CreateError, ModuleManager};
use modhost_abi::{CallError, Vm};

fn load_vm(name: &str, code: &str, extra: &[(&str, &str)]) -> (ModuleManager, VmHandle) {
    let path = support::script(&format!("{name}.py"), code);
    let manager = support::python_manager(&[(name, &path, extra)]);
    let vm = manager.create(name, None).unwrap_or_else(|e| panic!("{name}: {e}"));
    (manager, vm)
}

fn call(vm: &mut VmHandle, function: &str, message: &str) -> Result<String, CallError> {
    vm.call(function, message.as_bytes()).map(|answer| String::from_utf8(answer).unwrap())
}

#[test]
fn standard_c_extensions_import_under_rtld_local() {
    let code = r#"
import _json, math, _datetime, _decimal, sqlite3, json, decimal

def probe(request):
    connection = sqlite3.connect(":memory:")
    (answer,) = connection.execute("SELECT 6 * 7").fetchone()
    return {
        "sqrt": math.sqrt(request["n"]),
        "decimal": str(decimal.Decimal("1.10") + decimal.Decimal("2.20")),
        "sqlite": answer,
        "c_json": json.decoder.scanstring is _json.scanstring,
    }
"#;
    let (_manager, mut vm) = load_vm("extensions", code, &[]);
    let answer: serde_json::Value = serde_json::from_str(&call(&mut vm, "probe", r#"{"n": 16}"#).unwrap()).unwrap();
    assert_eq!(answer, serde_json::json!({"sqrt": 4.0, "decimal": "3.30", "sqlite": 42, "c_json": true}));
}

#[test]
fn exceptions_and_syntax_errors_carry_type_message_and_file_line() {
    let (_manager, mut vm) = load_vm(
        "failing",
        "def helper(r):\n    return r['missing']\n\ndef fail(r):\n    value = helper(r)\n    return value\n",
        &[],
    );
    let error = call(&mut vm, "fail", "{}").unwrap_err().to_string();
    assert!(error.contains("failing.py:2: KeyError: 'missing'"), "{error}");
    assert!(error.contains("Traceback") && error.contains("line 5, in fail"), "{error}");

    let path = support::script("broken_syntax.py", "def allocate(request):\n    return [\n");
    let manager = support::python_manager(&[("broken", &path, &[])]);
    let error = manager.create::<VmHandle>("broken", None).err().unwrap();
    assert!(matches!(error, CreateError::Failed { .. }), "{error:?}");
    assert!(error.to_string().contains("broken_syntax.py:2: ") && error.to_string().contains("SyntaxError"), "{error}");

    let path = support::script("import_error.py", "import no_such_module_here\n");
    let manager = support::python_manager(&[("imports", &path, &[])]);
    let error = manager.create::<VmHandle>("imports", None).err().unwrap().to_string();
    assert!(error.contains("import_error.py:1: ModuleNotFoundError"), "{error}");
}

#[test]
fn a_timeout_interrupts_an_endless_loop_and_the_vm_goes_on() {
    let (_manager, mut vm) = load_vm(
        "spinning",
        "def spin(r):\n    while True:\n        pass\n\ndef ok(r):\n    return 1\n",
        &[("timeout_ms", "100")],
    );
    let started = std::time::Instant::now();
    let error = call(&mut vm, "spin", "{}").unwrap_err().to_string();
    assert!(
        error.contains("CallTimeout") && error.contains("timeout_ms=100") && error.contains("spinning.py:2"),
        "{error}"
    );
    assert!(started.elapsed() < std::time::Duration::from_secs(5));
    assert_eq!(call(&mut vm, "ok", "{}").unwrap(), "1");
    assert_eq!(call(&mut vm, "ok", "{}").unwrap(), "1");
}

/// A script cannot keep an overdue call going by catching `CallTimeout`: once the call is past
/// its timeout, every line it runs raises it again, in an `except` or `finally` block and in a
/// function called back from C alike.
#[test]
fn a_script_that_catches_the_timeout_is_still_stopped() {
    let cases = [
        "while True:\n        try:\n            spin()\n        except BaseException:\n            pass",
        "while True:\n        try:\n            sorted([1, 2], key=lambda x: spin())\n        except BaseException:\n            pass",
        "try:\n        spin()\n    finally:\n        while True:\n            pass",
        "while True:\n        try:\n            spin()\n        except BaseException:\n            try:\n                spin()\n            except BaseException:\n                pass",
    ];
    let mut code = String::from("def spin():\n    while True:\n        pass\n\ndef ok(r):\n    return 1\n");
    for (i, body) in cases.iter().enumerate() {
        code.push_str(&format!("\ndef catch{i}(r):\n    {body}\n"));
    }
    let (_manager, mut vm) = load_vm("catching", &code, &[("timeout_ms", "100")]);
    for (i, body) in cases.iter().enumerate() {
        let error =
            support::within(std::time::Duration::from_secs(20), body, || call(&mut vm, &format!("catch{i}"), "{}"))
                .expect_err(body);
        assert!(error.to_string().contains("CallTimeout"), "{body:?}: {error}");
        assert_eq!(call(&mut vm, "ok", "{}").unwrap(), "1", "after {body:?}");
    }
}

#[test]
fn two_scripted_modules_never_share_globals() {
    // Two modules of one script, each bumping a counter: the first twice, then the second.
    let bumps = |path: &std::path::Path| {
        let manager = support::python_manager(&[("first", path, &[]), ("second", path, &[])]);
        let mut first: VmHandle = manager.create("first", None).unwrap();
        let mut second: VmHandle = manager.create("second", None).unwrap();
        let bump = |vm: &mut VmHandle| call(vm, "bump", "{}").unwrap();
        let counts = [bump(&mut first), bump(&mut first), bump(&mut second)];
        (counts, first.describe().unwrap().functions)
    };
    let code = "counter = 0\n\ndef bump(r):\n    global counter\n    counter += 1\n    return counter\n";
    let (counts, functions) = bumps(&support::script("counter.py", code));
    assert_eq!(counts, ["1", "2", "1"]);
    assert_eq!(functions, ["bump"]);
    // Nor a helper's: each imports the .py files of its folder afresh.
    support::script(
        "shared_helper.py",
        "count = 0\n\ndef bump():\n    global count\n    count += 1\n    return count\n",
    );
    let helped =
        support::script("helped.py", "import shared_helper\n\ndef bump(r):\n    return shared_helper.bump()\n");
    assert_eq!(bumps(&helped).0, ["1", "2", "1"]);
}

/// scripts/python/cluster.py refuses a policy whose books would be lost or shared: one that
/// never calls `cluster.track`, one that defines a call `track` would replace, and a second
/// policy tracked by a copy of the file that is not in its own folder (here, on python_path).
#[test]
fn cluster_py_refuses_a_policy_whose_books_would_be_lost_or_shared() {
    let books = support::workspace().join("scripts/python").display().to_string();
    let path: &[(&str, &str)] = &[("python_path", &books)];
    let policy = |name: &str, before: &str| {
        let code = format!(
            "import cluster\n{before}cluster.track(globals())\n\ndef allocate(request):\n    cluster.begin(request)\n    return []\n"
        );
        support::script(name, &code)
    };
    let untracked = support::script(
        "untracked.py",
        "import cluster\n\ndef allocate(request):\n    cluster.begin(request)\n    return []\n",
    );
    let (early, first, second) =
        (policy("early.py", "def add_agent(request):\n    pass\n"), policy("first.py", ""), policy("second.py", ""));
    let manager = support::python_manager(&[
        ("untracked", &untracked, path),
        ("early", &early, path),
        ("first", &first, path),
        ("second", &second, path),
    ]);
    let mut vm: VmHandle = manager.create("untracked", None).unwrap();
    let error = call(&mut vm, "allocate", r#"{"now": 0.0}"#).unwrap_err().to_string();
    assert!(error.contains("untracked.py:4: RuntimeError: cluster.py sees no allocator calls"), "{error}");
    let error = manager.create::<VmHandle>("early", None).err().unwrap().to_string();
    assert!(error.contains("early.py:4: RuntimeError: cluster.track: the policy already defines add_agent"), "{error}");
    let mut vm: VmHandle = manager.create("first", None).unwrap();
    assert_eq!(call(&mut vm, "allocate", r#"{"now": 0.0}"#).unwrap(), "[]");
    assert!(vm.describe().unwrap().functions.iter().any(|f| f == "add_agent"), "the calls count as the policy's");
    let error = manager.create::<VmHandle>("second", None).err().unwrap().to_string();
    assert!(error.contains("already keeps another policy's books"), "{error}");
}

#[test]
fn print_output_is_collected_and_scripts_import_from_their_folder() {
    support::script("py_helper.py", "def double(x):\n    return 2 * x\n");
    let code = "import py_helper\nprint('loaded')\n\ndef twice(r):\n    print('twice', r['n'])\n    return py_helper.double(r['n'])\n";
    let (_manager, mut vm) = load_vm("printing", code, &[]);
    assert_eq!(vm.take_output().unwrap(), ["loaded"]);
    assert_eq!(call(&mut vm, "twice", r#"{"n": 21}"#).unwrap(), "42");
    assert_eq!(vm.take_output().unwrap(), ["twice 21"]);
    let info = vm.describe().unwrap();
    // The installation the build linked (Debian's, under /usr) is the one that runs.
    assert!(info.version.starts_with("Python 3.11.") && info.version.ends_with("(/usr)"), "{info:?}");
}

/// A module's error text is cut at 64 KiB on the host's side (it logs every failure): an
/// exception with a megabyte message does not make a megabyte log line.
#[test]
fn an_error_of_a_megabyte_is_cut() {
    let (_manager, mut vm) = load_vm("loud", "def shout(r):\n    raise ValueError('x' * 1_000_000)\n", &[]);
    let error = call(&mut vm, "shout", "{}").unwrap_err().to_string();
    assert!(error.len() < (64 << 10) + 100, "{} bytes", error.len());
    assert!(error.contains("ValueError: xxx") && error.ends_with(" more bytes)"), "{:.80}", error);
}

/// What a script prints waits outside its memory limit for the host, so it is bounded: past
/// 1 Mi characters between two collections, the rest is dropped and counted.
#[test]
fn printing_more_than_the_host_keeps_is_dropped_and_counted() {
    let code = "big = 'x' * 100_000\n\ndef flood(r):\n    for _ in range(1000):\n        print(big)\n    return 1\n\n\
                def short(r):\n    print('a', 1)\n    return 1\n";
    let (_manager, mut vm) = load_vm("flooding", code, &[]);
    assert_eq!(call(&mut vm, "flood", "{}").unwrap(), "1");
    let lines = vm.take_output().unwrap();
    let kept: usize = lines[..lines.len() - 1].iter().map(String::len).sum();
    assert!(kept <= 1 << 20, "{kept} characters kept");
    let dropped = 1000 * 100_001 - (1 << 20);
    assert_eq!(
        lines.last().unwrap(),
        &format!("... ({dropped} more characters dropped: a script may print 1048576 between two collections)")
    );
    assert_eq!(call(&mut vm, "short", "{}").unwrap(), "1");
    assert_eq!(vm.take_output().unwrap(), ["a 1"]);
}

/// `modhost` with stdout a pipe: a hook's print still reaches the log (stderr), tagged.
#[test]
fn output_is_not_lost_when_stdout_is_a_pipe_and_virtualenvs_are_importable() {
    let venv = support::scratch().join("venv");
    let site = venv.join("lib/python3.11/site-packages/venv_only_package");
    std::fs::create_dir_all(&site).unwrap();
    std::fs::write(site.join("__init__.py"), "GREETING = 'from the virtualenv'\n").unwrap();
    let script = support::script(
        "loud.py",
        "import venv_only_package\n\ndef master_launch_task_label_decorator(r):\n    \
         print('launching', r['task']['id'], venv_only_package.GREETING)\n    return None\n",
    );
    let manifest = serde_json::json!({"libraries": [{"file": support::python_bridge(), "modules": [
        {"name": "loud", "symbol": "org_modhost_python", "parameters": [{"key": "script", "value": script}]}]}]});
    let output = Command::new(env!("CARGO_BIN_EXE_modhost"))
        .args(["simulate", &format!("--modules={manifest}"), "--hooks=loud", "--json"])
        .env("VIRTUAL_ENV", &venv)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(0), "{stderr}");
    assert!(stderr.contains("[loud] launching analytics.task-0 from the virtualenv"), "{stderr}");
    // The JSON on stdout is intact: nothing the script printed went there.
    serde_json::from_slice::<serde_json::Value>(&output.stdout).expect("clean JSON on stdout");
}

#[test]
fn the_bundled_hooks_read_role_settings_from_json_or_sqlite() {
    let request =
        r#"{"executor": {"id": "e", "framework_id": "web-1", "environment": [{"name": "KEEP", "value": "1"}]}}"#;
    let bundled = support::workspace().join("scripts/python/hooks.py");
    let manager = support::python_manager(&[("json_hooks", &bundled, &[])]);
    let mut vm: VmHandle = manager.create("json_hooks", None).unwrap();
    let environment: serde_json::Value =
        serde_json::from_str(&call(&mut vm, "agent_executor_environment_decorator", request).unwrap()).unwrap();
    assert_eq!(
        environment,
        serde_json::json!([{"name": "KEEP", "value": "1"}, {"name": "MODHOST_TIER", "value": "frontend"},
                           {"name": "MAX_CONNECTIONS", "value": "512"}])
    );
    let status =
        r#"{"framework_id": "f", "status": {"task_id": "t", "agent_id": "a", "state": "TASK_RUNNING", "labels": []}}"#;
    let decorated: serde_json::Value =
        serde_json::from_str(&call(&mut vm, "agent_task_status_decorator", status).unwrap()).unwrap();
    assert_eq!(decorated["labels"], serde_json::json!([{"key": "decorated-by", "value": "hooks.py"}]));

    // The same script next to a roles.sqlite reads that instead.
    let dir = support::scratch().join("sqlite_hooks");
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::copy(&bundled, dir.join("hooks.py")).unwrap();
    let database = dir.join("roles.sqlite");
    let made = Command::new("python3")
        .arg("-c")
        .arg("import sqlite3, sys\nc = sqlite3.connect(sys.argv[1])\nc.execute('CREATE TABLE settings(role, name, value)')\n\
              c.execute(\"INSERT INTO settings VALUES ('web', 'MODHOST_TIER', 'from-sqlite')\")\nc.commit()")
        .arg(&database)
        .status()
        .expect("python3 makes the test database");
    assert!(made.success());
    let manager = support::python_manager(&[("sqlite_hooks", &dir.join("hooks.py"), &[])]);
    let mut vm: VmHandle = manager.create("sqlite_hooks", None).unwrap();
    let environment: serde_json::Value =
        serde_json::from_str(&call(&mut vm, "agent_executor_environment_decorator", request).unwrap()).unwrap();
    assert_eq!(
        environment,
        serde_json::json!([{"name": "KEEP", "value": "1"}, {"name": "MODHOST_TIER", "value": "from-sqlite"}])
    );
}

#[test]
fn a_memory_bomb_is_stopped_by_the_limit_and_the_vm_goes_on() {
    let code = "def bomb(r):\n    hoard = []\n    while True:\n        hoard.append(' ' * 1_000_000)\n\ndef ok(r):\n    return 'fine'\n";
    let (_manager, mut vm) = load_vm("hungry", code, &[("memory_limit", "64MiB")]);
    let error = call(&mut vm, "bomb", "{}").unwrap_err().to_string();
    assert!(error.contains("MemoryError") && error.contains("hungry.py:4"), "{error}");
    assert_eq!(call(&mut vm, "ok", "{}").unwrap(), "\"fine\"");
    let path = support::script("sized.py", "def f(r):\n    return 1\n");
    let manager = support::python_manager(&[("sized", &path, &[("memory_limit", "lots")])]);
    let error = manager.create::<VmHandle>("sized", None).err().unwrap().to_string();
    assert!(error.contains("memory_limit=lots"), "{error}");
}

/// An answer is written after the call, out of its memory limit and its timeout, so a list
/// held in it many times (a few kilobytes of Python standing for terabytes) would hold the
/// host: an answer past twice the memory limit is refused instead, and the Vm goes on.
#[test]
fn an_answer_larger_than_twice_the_memory_limit_is_refused() {
    let code = "def doubling(r):\n    t = ['x']\n    for _ in range(40):\n        t = [t, t]\n    return t\n\n\
                def repeated(r):\n    return ['x' * (1 << 18)] * 100\n\n\
                def ok(r):\n    return 5\n";
    let (_manager, mut vm) = load_vm("sharing", code, &[("memory_limit", "1MiB")]);
    for function in ["doubling", "repeated"] {
        let error = call(&mut vm, function, "{}").unwrap_err().to_string();
        assert!(error.contains("larger than 2097152 bytes"), "{function}: {error}");
        assert_eq!(call(&mut vm, "ok", "{}").unwrap(), "5");
    }
}

#[test]
fn messages_map_to_python_values_as_the_json_module_would_and_back() {
    let code = r#"
def echo(r):
    return r

def types(r):
    return {k: type(v).__name__ for k, v in r.items()}

def as_tuple(r):
    return (1, "two", None, True, 2.5)

def a_set(r):
    return {1, 2}

def not_a_number(r):
    return [float("nan")]

def int_keys(r):
    return {1: "one"}

def huge(r):
    return 2 ** 70
"#;
    let (_manager, mut vm) = load_vm("mapping", code, &[]);
    let message =
        r#"{"s":"é\n\"x\"","i":-3,"u":18446744073709551615,"f":1.0,"t":true,"n":null,"l":[1,[2,{}]],"d":{"k":"v"}}"#;
    let cases: Vec<(&str, &str, Result<serde_json::Value, &str>)> = vec![
        ("echo", message, Ok(serde_json::from_str(message).unwrap())),
        (
            "types",
            message,
            Ok(serde_json::json!({"s": "str", "i": "int", "u": "int", "f": "float", "t": "bool",
                                  "n": "NoneType", "l": "list", "d": "dict"})),
        ),
        ("as_tuple", "{}", Ok(serde_json::json!([1, "two", null, true, 2.5]))),
        ("a_set", "{}", Err("a_set answered what JSON cannot carry: the answer holds a set")),
        ("not_a_number", "{}", Err("the answer holds the float NaN")),
        ("int_keys", "{}", Err("dict key 1 of type int")),
        ("huge", "{}", Err("the int 1180591620717411303424 of the answer is too large")),
        ("echo", "{\"unclosed\": ", Err("cannot pass the message to echo")),
    ];
    for (function, message, expected) in cases {
        support::check_vm_answer(&mut vm, function, message, expected);
    }
    // Packed strings are checked by the bridge only when it has not made them before: a new
    // one that is not UTF-8 is refused, as a value and as a key.
    for (what, message) in [("a string", support::packed_not_utf8(false)), ("a key", support::packed_not_utf8(true))] {
        let error = vm.call_packed("echo", &message).unwrap_err().to_string();
        assert!(error.contains(&format!("{what} is not UTF-8")), "{error}");
    }
    // The VM goes on after each refusal.
    support::check_vm_answer(&mut vm, "echo", "[1]", Ok(serde_json::json!([1])));
}

/// Random messages come back from a script that returns them unchanged, sent as JSON and as
/// packed values.
#[test]
fn random_messages_come_back_unchanged() {
    let (_manager, mut vm) = load_vm("echo", "def echo(r):\n    return r\n", &[]);
    support::check_random_echoes(&mut vm, "echo", 0xB5297A4D, false);
}

/// Corrupted messages (random bytes changed, or cut short): every call either answers or
/// fails with an error, and the Vm goes on.
#[test]
fn corrupted_messages_fail_cleanly() {
    let code =
        "def echo(r):\n    return r\n\ndef size(r):\n    return len(r) if isinstance(r, (list, dict, str)) else 0\n";
    let (_manager, mut vm) = load_vm("corrupted", code, &[]);
    let (answered, failed) = support::check_corrupted_messages(&mut vm, &["echo", "size"], 0x165667B1);
    assert!(answered > 250 && failed > 250, "{answered} answered, {failed} failed");
    assert_eq!(call(&mut vm, "size", "[1, 2]").unwrap(), "2");
}
