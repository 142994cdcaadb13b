//! The Lua bridge: sandbox escapes refused, runaway scripts stopped, errors with file:line,
//! bad offers refused, required functions enforced; in every case the host goes on.

mod support;

use modhost::kinds::VmHandle;
use modhost::script::{self, VmTransport};
use modhost::{CreateError, ModuleManager};
use modhost_abi::messages::{AgentInfo, Filters, FrameworkInfo, Offers, Resources, TaskInfo};
use modhost_abi::{
    AddAgent, AddFramework, Allocate, Allocator, CallError, HOOK_METHODS, Hook, LaunchTask, RecoverResources, Remote,
    RolesRequest, Vm,
};

/// A Vm over `code` with extra parameters.
fn load_vm(name: &str, code: &str, extra: &[(&str, &str)]) -> (ModuleManager, VmHandle) {
    let path = support::script(&format!("{name}.lua"), code);
    let manager = support::lua_manager(&[(name, &path, extra)]);
    let vm = manager.create(name, None).unwrap_or_else(|e| panic!("{name}: {e}"));
    (manager, vm)
}

fn call(vm: &mut VmHandle, function: &str) -> Result<String, CallError> {
    vm.call(function, b"{}").map(|answer| String::from_utf8(answer).unwrap())
}

#[test]
fn sandbox_escapes_are_refused() {
    let cases: &[(&str, &str)] = &[
        ("os.execute('true')", "field 'execute'"),
        ("io.open('/etc/passwd')", "global 'io'"),
        ("require('os')", "module 'os' not found"),
        ("_G.require('io')", "module 'io' not found"),
        ("require('../../etc/passwd')", "not a valid module name"),
        ("return load('return os.execute', 'x', 't', _G)()('true')", "attempt to call a nil value"),
        ("return load(string.dump(print))", "field 'dump'"),
        ("return load('\\27Lua', 'x', 'b')", "only text chunks"),
        ("return debug.getregistry()", "global 'debug'"),
        ("getmetatable('').__index = {}", "attempt to index a string value"),
        ("setmetatable('', {})", "table expected"),
        ("return (''):dump()", "method 'dump'"),
        ("collectgarbage('stop')", "not allowed in the sandbox"),
        // A finalizer would run whenever the collector steps, inside no call's limits.
        ("setmetatable({}, { __gc = function() while true do end end })", "__gc is not allowed"),
        ("setmetatable({}, { __gc = true })", "__gc is not allowed"),
        ("return package.loadlib('libc.so.6', 'system')", "global 'package'"),
        ("return rawget(_G, 'os').getenv('HOME')", "field 'getenv'"),
    ];
    let mut code = String::new();
    for (i, (body, _)) in cases.iter().enumerate() {
        code.push_str(&format!("function probe{i}(request)\n  {body}\nend\n"));
    }
    let (_manager, mut vm) = load_vm("escapes", &code, &[]);
    for (i, (body, fragment)) in cases.iter().enumerate() {
        match call(&mut vm, &format!("probe{i}")) {
            Ok(answer) => panic!("{body:?} was not refused; it returned {answer}"),
            Err(e) => assert!(e.to_string().contains(fragment), "{body:?}: {e}"),
        }
    }
    // The sandbox still offers what a policy needs.
    let (_manager, mut vm) = load_vm(
        "allowed",
        "function ok() return { math.floor(2.5), string.format('%d', 7), table.concat({'a', 'b'}), os.time() > 0, \
         select('#', 1, 2), utf8.char(72) } end",
        &[],
    );
    assert!(call(&mut vm, "ok").unwrap().starts_with(r#"[2,"7","ab",true,2,"H"]"#));
}

#[test]
fn a_runaway_loop_is_stopped_by_the_deadline_and_the_vm_goes_on() {
    let (_manager, mut vm) =
        load_vm("spin", "function spin() while true do end end\nfunction ok() return 1 end", &[("timeout_ms", "100")]);
    let started = std::time::Instant::now();
    let error = call(&mut vm, "spin").unwrap_err();
    // The error names the line that was running, as Lua's own errors do.
    assert!(error.to_string().contains("spin.lua:1: timeout: the call ran longer than timeout_ms=100"), "{error}");
    assert!(started.elapsed() < std::time::Duration::from_secs(5), "stopped only after {:?}", started.elapsed());
    assert_eq!(call(&mut vm, "ok").unwrap(), "1");
    // A deadline that passed does not hit the next call.
    assert_eq!(call(&mut vm, "ok").unwrap(), "1");
}

/// The watchdog times each call from its own start: calls that each end within the timeout
/// are not stopped, however long they run back to back.
#[test]
fn calls_within_the_timeout_are_not_stopped_however_many_run() {
    let code = "function busy()\n  local t0 = os.clock()\n  while os.clock() - t0 < 0.02 do end\n  return 1\nend";
    let (_manager, mut vm) = load_vm("busy", code, &[("timeout_ms", "100")]);
    for n in 0..15 {
        assert_eq!(call(&mut vm, "busy").map_err(|e| format!("call {n}: {e}")).unwrap(), "1");
    }
}

#[test]
fn a_runaway_loop_inside_a_coroutine_is_stopped_too() {
    let code = "function in_create()
  local co = coroutine.create(function() while true do end end)
                  return { coroutine.resume(co) }
end
                function in_wrap()
  coroutine.wrap(function() while true do end end)()
end
                function retrying()
  local co = coroutine.create(function() while true do end end)
                  while true do coroutine.resume(co) end
end
                function fine()
  local gen = coroutine.wrap(function() for i = 1, 3 do coroutine.yield(i) end end)
                  return { gen(), gen(), gen() }
end
";
    let (_manager, mut vm) = load_vm("coroutines", code, &[("timeout_ms", "100")]);
    assert_eq!(call(&mut vm, "fine").unwrap(), "[1,2,3]");
    // A coroutine that runs past the deadline dies of it; resume reports that as text. The
    // call itself then ends with the timeout too, unless it returned before the watchdog
    // looked again.
    match call(&mut vm, "in_create") {
        Ok(answer) => assert!(answer.starts_with("[false,") && answer.contains("timeout"), "{answer}"),
        Err(error) => assert!(error.to_string().contains("timeout"), "{error}"),
    }
    // However the script keeps a runaway coroutine going, the overdue call ends with a timeout.
    for function in ["in_wrap", "retrying"] {
        let error = call(&mut vm, function).unwrap_err();
        assert!(error.to_string().contains("timeout"), "{function}: {error}");
    }
    assert_eq!(call(&mut vm, "fine").unwrap(), "[1,2,3]");
}

/// A script cannot keep an overdue call going by catching the deadline's error: once the call
/// is past its timeout, every instruction it runs raises the error again, in a `pcall`, an
/// `xpcall` handler, a coroutine or a `__close` method alike.
#[test]
fn a_runaway_loop_that_catches_the_deadline_error_is_still_stopped() {
    let cases = [
        "while true do pcall(spin) end",
        "while true do xpcall(spin, function(e) return e end) end",
        "while true do xpcall(spin, spin) end",
        "pcall(function() while true do pcall(spin) end end)\nwhile true do end",
        "coroutine.wrap(function() while true do pcall(spin) end end)()",
        "local co = coroutine.create(function() while true do pcall(spin) end end)\n\
         while true do pcall(coroutine.resume, co) end",
        "coroutine.wrap(function() table.sort({ 3, 2, 1 }, function() while true do pcall(spin) end end) end)()",
        "while true do pcall(function() local t = {} while true do t[#t + 1] = {} end end) end",
        "local guard <close> = setmetatable({}, { __close = spin })\nwhile true do pcall(spin) end",
    ];
    let mut code = String::from("local function spin() while true do end end\nfunction ok() return 3 end\n");
    for (i, body) in cases.iter().enumerate() {
        code.push_str(&format!("function catch{i}()\n  {body}\nend\n"));
    }
    let (_manager, mut vm) = load_vm("catching", &code, &[("timeout_ms", "100"), ("memory_limit", "8MiB")]);
    for (i, body) in cases.iter().enumerate() {
        let error = support::within(std::time::Duration::from_secs(20), body, || call(&mut vm, &format!("catch{i}")))
            .expect_err(body);
        assert!(error.to_string().contains("timeout"), "{body:?}: {error}");
        assert_eq!(call(&mut vm, "ok").unwrap(), "3", "after {body:?}");
    }
}

/// Until a call is overdue, `xpcall` is Lua's: the handler sees the error and its answer is
/// returned; a handler that is not a function is refused as Lua refuses it.
#[test]
fn xpcall_handles_errors_as_lua_s_own_does() {
    let code = "function handled()\n  return { xpcall(error, function(e) return 'handled: ' .. e end, 'boom', 0) }\nend\n\
                function passed()\n  return { xpcall(function(a, b) return a + b end, print, 2, 3) }\nend\n\
                function no_handler()\n  return { pcall(xpcall, error) }\nend\n";
    let (_manager, mut vm) = load_vm("xpcalls", code, &[]);
    assert_eq!(call(&mut vm, "handled").unwrap(), r#"[false,"handled: boom"]"#);
    assert_eq!(call(&mut vm, "passed").unwrap(), "[true,5]");
    let refused = call(&mut vm, "no_handler").unwrap();
    assert!(refused.contains("bad argument #2 to 'xpcall' (function expected, got no value)"), "{refused}");
}

/// The standard library's C loops whose length a script picks: each ran for days from one
/// line, out of the hook's reach; now each ends at once or at the deadline.
#[test]
fn long_loops_in_the_c_library_are_stopped_by_the_deadline() {
    let cases = [
        ("return #string.rep('', 1e15)", Some("0")),
        ("return #string.rep('', 1e15, '')", Some("0")),
        ("table.move({}, 1, 1e15, 2)", None),
        ("table.insert(sparse(), 1, 'x')", None),
        ("table.remove(sparse(), 1)", None),
        ("table.insert(setmetatable({}, { __len = function() return 1e15 end }), 1, 'x')", None),
        ("while true do pcall(table.move, {}, 1, 1e15, 2) end", None),
    ];
    // Fifty-odd entries, and a length of 2^48: past the array part, Lua finds a border by
    // doubling, then halving.
    let mut code = String::from(
        "function sparse() local t = { 1, 2, 3, 4, 5, [8] = 8, [9] = 9 } for k = 4, 48 do t[1 << k] = k end return t end\n\
         function length() return #sparse() end\n\
         function ok() local t = { 1, 2, 3 } table.insert(t, 1, 0) table.remove(t) return table.concat(t, ',') end\n",
    );
    for (i, (body, _)) in cases.iter().enumerate() {
        code.push_str(&format!("function long{i}()\n  {body}\nend\n"));
    }
    let (_manager, mut vm) = load_vm("long_loops", &code, &[("timeout_ms", "100")]);
    assert_eq!(call(&mut vm, "length").unwrap(), (1u64 << 48).to_string());
    for (i, (body, answer)) in cases.iter().enumerate() {
        let result = support::within(std::time::Duration::from_secs(20), body, || call(&mut vm, &format!("long{i}")));
        match answer {
            Some(answer) => assert_eq!(result.unwrap(), *answer, "{body}"),
            None => assert!(result.expect_err(body).to_string().contains("timeout"), "{body}"),
        }
        assert_eq!(call(&mut vm, "ok").unwrap(), "\"0,1,2\"", "after {body}");
    }
}

/// `table.sort` without a comparator compares in C, out of the hook's reach: a long list is
/// sorted through a comparator that the deadline stops, so the call ends inside the sort (the
/// traceback's line is the sort's), not once the sort is done (the line after it). And a sort
/// that is not stopped sorts as Lua's does.
#[test]
fn a_long_sort_is_stopped_inside_by_the_deadline() {
    // 900,000 numbers made in C, in a few milliseconds: string.byte over a long string.
    let code = "local chunk = {} for i = 0, 250 do chunk[#chunk + 1] = string.char((i * 97) % 251) end\n\
                chunk = table.concat(chunk)\n\
                function long()\n\
                  local t = table.pack(string.byte(string.rep(chunk, 3586), 1, 900000))\n\
                  table.sort(t)\n\
                  return t[1]\n\
                end\n\
                function short()\n\
                  local t = { string.byte('modhost', 1, -1) }\n\
                  table.sort(t)\n\
                  return string.char(table.unpack(t))\n\
                end";
    let (_manager, mut vm) = load_vm("long_sort", code, &[("timeout_ms", "100")]);
    let error = support::within(std::time::Duration::from_secs(20), "a long sort", || call(&mut vm, "long"))
        .expect_err("a sort far longer than the timeout");
    let error = error.to_string();
    assert!(error.contains("timeout_ms=100"), "{error}");
    assert!(error.contains("long_sort.lua:5: in function"), "stopped after the sort, not in it: {error:?}");
    assert_eq!(call(&mut vm, "short").unwrap(), "\"dhmoost\"");
}

/// A pattern that backtracks for hours (Lua's own matcher runs it in C, out of the hook's
/// reach) is stopped by the deadline too, in each of the four functions, and a malformed
/// pattern is reported at the script's line.
#[test]
fn a_runaway_pattern_match_is_stopped_by_the_deadline() {
    let cases = [
        "return string.find(s, '.-.-.-.-b')",
        "return s:match('(.-)(.-)(.-)(.-)b')",
        "for x in s:gmatch('.-.-.-.-b') do end",
        "return (s:gsub('a.-.-.-.-b', 'x'))",
        "while true do pcall(string.find, s, '.-.-.-.-b') end",
    ];
    let mut code =
        String::from("local s = string.rep('a', 3000)\nfunction ok() return ('k=v'):match('(%w+)=(%w+)') end\n");
    for (i, body) in cases.iter().enumerate() {
        code.push_str(&format!("function runaway{i}()\n  {body}\nend\n"));
    }
    // Not a tail call: that would take the script's frame off the stack, and its line with it.
    // A short subject goes to Lua's own matcher, a long one to the deadline-checked one.
    let line = code.lines().count() + 2;
    code.push_str("function malformed()\n  local at = ('x'):find('x%')\n  return at\nend\n");
    code.push_str("function malformed_long()\n  local at = s:find('.-.-%')\n  return at\nend\n");
    let (_manager, mut vm) = load_vm("patterns", &code, &[("timeout_ms", "100")]);
    for (i, body) in cases.iter().enumerate() {
        let error = support::within(std::time::Duration::from_secs(20), body, || call(&mut vm, &format!("runaway{i}")))
            .expect_err(body);
        assert!(error.to_string().contains("timeout"), "{body:?}: {error}");
        assert_eq!(call(&mut vm, "ok").unwrap(), "\"k\"", "after {body:?}");
    }
    for (function, line) in [("malformed", line), ("malformed_long", line + 4)] {
        let error = call(&mut vm, function).unwrap_err().to_string();
        assert!(
            error.contains(&format!("patterns.lua:{line}: malformed pattern (ends with '%')")),
            "{function}: {error}"
        );
    }
}

#[test]
fn a_memory_bomb_is_stopped_by_the_limit_and_the_vm_goes_on() {
    let code = "function bomb()\n  local t = {}\n  for i = 1, 1e9 do t[i] = string.rep('x', 1024) .. i end\nend\nfunction ok() return 2 end";
    let (_manager, mut vm) = load_vm("bomb", code, &[("memory_limit", "16MiB")]);
    let error = call(&mut vm, "bomb").unwrap_err();
    assert!(error.to_string().contains("out of memory"), "{error}");
    assert_eq!(call(&mut vm, "ok").unwrap(), "2");
}

/// An answer is written with the memory limit lifted, so a table held in it many times (a
/// few kilobytes of Lua standing for terabytes) would hold the host: an answer past twice the
/// memory limit is refused instead, and the Vm goes on.
#[test]
fn an_answer_larger_than_twice_the_memory_limit_is_refused() {
    let code = "function doubling() local t = { 'x' } for i = 1, 40 do t = { t, t } end return t end\n\
                function repeated() local s, t = string.rep('x', 1 << 20), {} for i = 1, 100 do t[i] = s end return t end\n\
                function ok() return 5 end";
    let (_manager, mut vm) = load_vm("sharing", code, &[("memory_limit", "8MiB")]);
    for function in ["doubling", "repeated"] {
        let error =
            support::within(std::time::Duration::from_secs(20), function, || call(&mut vm, function)).unwrap_err();
        assert!(error.to_string().contains("larger than 16777216 bytes"), "{function}: {error}");
        assert_eq!(call(&mut vm, "ok").unwrap(), "5");
    }
}

/// Views are made under the memory limit, inside their metamethods: a script that makes more
/// than the limit allows is stopped there, and the Vm goes on.
#[test]
fn views_past_the_memory_limit_stop_the_call_and_the_vm_goes_on() {
    let code = "function hoard(r)\n  local kept = {}\n  for i = 1, #r.items do kept[i] = r.items[i] end\n  \
                return #kept\nend\nfunction ok(r) return r.items[2].n end";
    let (_manager, mut vm) = load_vm("hoard", code, &[("memory_limit", "2MiB"), ("messages", "views")]);
    let items: Vec<_> = (0..40_000).map(|n| json!({ "n": n })).collect();
    let message = modhost_abi::packed::to_vec(&json!({ "items": items })).unwrap();
    let error = vm.call_packed("hoard", &message).unwrap_err().to_string();
    assert!(error.contains("out of memory"), "{error}");
    let answer = vm.call_packed("ok", &message).unwrap();
    assert_eq!(modhost_abi::packed::from_slice::<i64>(&answer).unwrap(), 1);
    // A view's copy of the message counts against the limit: a message larger than the limit
    // fails the call, and the next call goes on.
    let items: Vec<_> = (0..300_000).map(|n| json!({ "n": n })).collect();
    let huge = modhost_abi::packed::to_vec(&json!({ "items": items })).unwrap();
    assert!(huge.len() > 2 << 20);
    let error = vm.call_packed("ok", &huge).unwrap_err().to_string();
    assert!(error.contains("out of memory"), "{error}");
    let answer = vm.call_packed("ok", &message).unwrap();
    assert_eq!(modhost_abi::packed::from_slice::<i64>(&answer).unwrap(), 1);
}

#[test]
fn errors_carry_file_line_and_traceback() {
    let (_manager, mut vm) = load_vm(
        "runtime",
        "local function inner(x)\n  return x.field.deeper\nend\nfunction fail(request)\n  local value = inner(request)\n  return value\nend\n",
        &[],
    );
    let error = call(&mut vm, "fail").unwrap_err().to_string();
    assert!(error.contains("runtime.lua:2:") && error.contains("attempt to index a nil value"), "{error}");
    assert!(error.contains("stack traceback") && error.contains("runtime.lua:5"), "{error}");

    // A message of a megabyte is cut (the host logs every failure); the traceback stays.
    let (_manager, mut vm) = load_vm(
        "verbose",
        "function shout(request)
  error(string.rep('x', 1 << 20))
end
",
        &[],
    );
    let error = call(&mut vm, "shout").unwrap_err().to_string();
    assert!(error.len() < 20 << 10, "{} bytes", error.len());
    assert!(error.contains("xxx ... (") && error.contains("more bytes)\nstack traceback"), "{error:.60}");
    assert!(error.contains("verbose.lua:2: in function"), "{}", &error[error.len() - 200..]);

    let path = support::script("syntax.lua", "function allocate(r)\n  return {\nend\n");
    let manager = support::lua_manager(&[("syntax", &path, &[])]);
    let error = manager.create::<VmHandle>("syntax", None).err().unwrap();
    assert!(matches!(error, CreateError::Failed { .. }), "{error:?}");
    assert!(error.to_string().contains("syntax.lua:3:"), "{error}");

    let path = support::script("toplevel.lua", "local x = nil\nprint(x.y)\n");
    let manager = support::lua_manager(&[("toplevel", &path, &[])]);
    let error = manager.create::<VmHandle>("toplevel", None).err().unwrap().to_string();
    assert!(error.contains("toplevel.lua:2:"), "{error}");
}

/// The collector each setting of `gc` and `messages` gives (`collectgarbage` answers a mode
/// change with the mode before it; the sandbox, which forbids the change, is off).
#[test]
fn the_collector_follows_the_gc_parameter_and_by_default_the_messages() {
    let code = "function mode() return collectgarbage('incremental') end";
    let cases: &[(&[(&str, &str)], &str)] = &[
        (&[], "incremental"),
        (&[("messages", "views")], "generational"),
        (&[("gc", "generational")], "generational"),
        (&[("messages", "views"), ("gc", "incremental")], "incremental"),
    ];
    for (extra, expected) in cases {
        let settings: Vec<(&str, &str)> = [("sandbox", "false")].into_iter().chain(extra.iter().copied()).collect();
        let (_manager, mut vm) = load_vm("gc_mode", code, &settings);
        assert_eq!(call(&mut vm, "mode").unwrap(), format!("\"{expected}\""), "{extra:?}");
    }
}

#[test]
fn bad_parameters_and_missing_scripts_fail_creation_clearly() {
    let path = support::script("fine.lua", "function allocate() return {} end");
    let cases: &[(&[(&str, &str)], &str)] = &[
        (&[("memory_limit", "lots")], "memory_limit=lots"),
        (&[("timeout_ms", "0")], "timeout_ms=0"),
        (&[("sandbox", "maybe")], "sandbox=maybe"),
        (&[("messages", "lazy")], "messages=lazy: expected tables or views"),
        (&[("gc", "fast")], "gc=fast: expected incremental or generational"),
        (&[("timeout", "5")], "unknown parameter 'timeout'"),
    ];
    for (extra, fragment) in cases {
        let manager = support::lua_manager(&[("m", &path, extra)]);
        let error = manager.create::<VmHandle>("m", None).err().unwrap().to_string();
        assert!(error.contains(fragment), "{extra:?}: {error}");
    }
    let manager = support::lua_manager(&[("m", std::path::Path::new("/nonexistent/policy.lua"), &[])]);
    let error = manager.create::<VmHandle>("m", None).err().unwrap().to_string();
    assert!(error.contains("cannot read script '/nonexistent/policy.lua'"), "{error}");
}

#[test]
fn print_reaches_the_host_and_require_loads_from_the_scripts_folder() {
    support::script("helper.lua", "return { double = function(x) return 2 * x end }");
    let (_manager, mut vm) = load_vm(
        "printer",
        "local helper = require('helper')\nprint('loaded', 42)\nfunction twice(r) print('twice', r.n) return helper.double(r.n) end",
        &[],
    );
    assert_eq!(vm.take_output().unwrap(), ["loaded\t42"]);
    assert_eq!(String::from_utf8(vm.call("twice", br#"{"n": 21}"#).unwrap()).unwrap(), "42");
    assert_eq!(vm.take_output().unwrap(), ["twice\t21"]);
    assert!(vm.take_output().unwrap().is_empty());
    let info = vm.describe().unwrap();
    assert_eq!((info.language.as_str(), info.version.as_str()), ("lua", "Lua 5.4"));
    assert_eq!(info.functions, ["twice"]);
}

/// What a script prints is held outside its memory limit until the host collects it, so it is
/// bounded on its own: a long line is cut (and says by how much), and past 1 MiB the oldest
/// lines are dropped (and counted).
#[test]
fn printing_more_than_the_host_keeps_is_cut_and_counted() {
    let code = "local big = string.rep('x', 1 << 20)\n\
                function flood() for i = 1, 500 do print(i, big) end return 1 end\n\
                function short() print('a', 1, true) return 1 end";
    let (_manager, mut vm) = load_vm("flood", code, &[]);
    assert_eq!(call(&mut vm, "flood").unwrap(), "1");
    let lines = vm.take_output().unwrap();
    let bytes: usize = lines.iter().map(String::len).sum();
    assert!(bytes <= (1 << 20) + 1024, "{bytes} bytes kept");
    assert!(lines[0].contains("earlier line(s) dropped"), "{}", lines[0]);
    let last = lines.last().unwrap();
    let expected_cut = (1 << 20) + "500\t".len() - (16 << 10);
    assert!(last.starts_with("500\txxx") && last.ends_with(&format!(" ... ({expected_cut} more bytes)")), "{last:.40}");
    assert_eq!(call(&mut vm, "short").unwrap(), "1");
    assert_eq!(vm.take_output().unwrap(), ["a\t1\ttrue"]);
}

fn cluster(allocator: &mut dyn Allocator) {
    allocator.initialize(&Default::default()).unwrap();
    for id in ["a0", "a1"] {
        let agent = AgentInfo { id: id.into(), resources: Resources::new().with("cpus", 4.0), ..Default::default() };
        allocator.add_agent(&AddAgent { agent, used: vec![] }).unwrap();
    }
    let framework = FrameworkInfo { id: "f".into(), name: "f".into(), role: "r".into(), ..Default::default() };
    allocator.add_framework(&AddFramework { framework, used: vec![], active: true }).unwrap();
}

#[test]
fn a_script_that_offers_what_it_should_not_is_refused_offer_by_offer() {
    let code = r#"
function allocate(request)
  return {
    { framework_id = "f", agent_id = "a0", resources = { cpus = 3 } },      -- fine
    { framework_id = "f", agent_id = "a0", resources = { cpus = 3 } },      -- only 1 left on a0
    { framework_id = "ghost", agent_id = "a1", resources = { cpus = 1 } },  -- no such framework
    { framework_id = "f", agent_id = "a9", resources = { cpus = 1 } },      -- no such agent
    { framework_id = "f", agent_id = "a1", resources = { cpus = -1 } },     -- negative
    { framework_id = "f", agent_id = "a1", resources = { cpus = 4 } },      -- fine
  }
end"#;
    let path = support::script("greedy.lua", code);
    let manager = support::lua_manager(&[("greedy", &path, &[])]);
    let mut allocator = script::create_allocator(&manager, "greedy").unwrap();
    cluster(allocator.as_mut());
    let offers = allocator.allocate(&Allocate { now: 0.0, dry_run: false }).unwrap().to_vec();
    let accepted: Vec<(&str, f64)> = offers.iter().map(|o| (o.agent_id.as_str(), o.resources.get("cpus"))).collect();
    assert_eq!(accepted, [("a0", 3.0), ("a1", 4.0)]);
    // The next round: nothing is free any more, so the same answer is refused entirely.
    assert!(allocator.allocate(&Allocate { now: 1.0, dry_run: false }).unwrap().is_empty());
}

/// One script per way of answering `allocate` with something that is not a list of offers:
/// the error says which offer and which field, and the call counts as the version's error.
#[test]
fn a_malformed_allocate_answer_names_the_offer_and_field_and_counts_as_an_error() {
    let cases = [
        ("not_a_list", r#"{ framework_id = "f" }"#, "expected a sequence"),
        ("agent_number", r#"{ { framework_id = "f", agent_id = 3, resources = {} } }"#, "offer 1 of 1: field agent_id"),
        (
            "amount_text",
            r#"{ { framework_id = "f", agent_id = "a0", resources = { cpus = 1 } },
                 { framework_id = "f", agent_id = "a1", resources = { cpus = "lots" } } }"#,
            "offer 2 of 2: field resources",
        ),
        ("missing_agent", r#"{ { framework_id = "f", resources = {} } }"#, "offer 1 of 1: missing field `agent_id`"),
    ];
    for (name, answer, fragment) in cases {
        let path = support::script(&format!("{name}.lua"), &format!("function allocate(request) return {answer} end"));
        let manager = support::lua_manager(&[(name, &path, &[])]);
        let mut allocator = script::create_allocator(&manager, name).unwrap();
        cluster(allocator.as_mut());
        let error = allocator.allocate(&Allocate { now: 0.0, dry_run: false }).unwrap_err();
        assert!(matches!(error, CallError::Failed { .. }), "{name}: {error:?}");
        let text = error.to_string();
        assert!(text.contains(fragment) && text.contains(&format!("{name}.lua")), "{name}: {text}");
        let status = script::statuses().into_iter().find(|s| s.module == name).expect("a status");
        let errors: u64 = status.versions.iter().map(|v| v.errors).sum();
        assert_eq!(errors, 1, "{name}: the malformed answer counts as the version's error");
    }
}

#[test]
fn a_malformed_hook_answer_names_the_script_and_counts_as_an_error() {
    let path =
        support::script("bad_labels.lua", "function master_launch_task_label_decorator(r) return { { key = 5 } } end");
    let manager = support::lua_manager(&[("bad_labels", &path, &[])]);
    let mut hook = Remote(VmTransport::new(&manager, "bad_labels", HOOK_METHODS).unwrap());
    let request =
        LaunchTask { task: TaskInfo::default(), framework: FrameworkInfo::default(), agent: AgentInfo::default() };
    let error = hook.master_launch_task_label_decorator(&request).unwrap_err();
    let CallError::Malformed { message } = &error else { panic!("not a malformed answer: {error:?}") };
    assert!(message.contains("bad_labels.lua") && message.contains("master_launch_task_label_decorator"), "{message}");
    let status = script::statuses().into_iter().find(|s| s.module == "bad_labels").expect("a status");
    assert_eq!(status.versions.iter().map(|v| v.errors).sum::<u64>(), 1);
}

/// A policy that keeps no quota (no update_quota, as one not built on cluster.lua) refuses a
/// quota instead of ignoring it, and the refusal leaves the script's state as it was.
#[test]
fn a_policy_without_update_quota_refuses_quota() {
    let path = support::script("no_quota.lua", "function allocate(request) return {} end");
    let manager = support::lua_manager(&[("no_quota", &path, &[])]);
    let mut allocator = script::create_allocator(&manager, "no_quota").unwrap();
    cluster(allocator.as_mut());
    let quota = modhost_abi::UpdateQuota { role: "eng".into(), ..modhost_abi::UpdateQuota::default() };
    let error = allocator.update_quota(&quota).unwrap_err().to_string();
    assert!(error.contains("no_quota.lua") && error.contains("defines no update_quota"), "{error}");
    assert!(allocator.allocate(&Allocate { now: 0.0, dry_run: false }).unwrap().is_empty());
}

#[test]
fn a_failing_allocate_makes_no_offers_or_falls_back_to_the_built_in() {
    let path = support::script("broken.lua", "function allocate(request) error('the policy is broken') end");
    let manager = support::lua_manager(&[("plain", &path, &[]), ("safe", &path, &[("fallback", "hierarchical")])]);
    let mut plain = script::create_allocator(&manager, "plain").unwrap();
    cluster(plain.as_mut());
    let error = plain.allocate(&Allocate { now: 0.0, dry_run: false }).unwrap_err();
    let error = error.to_string();
    assert!(error.contains("broken.lua': ") && error.contains("broken.lua:1: the policy is broken"), "{error}");

    let mut safe = script::create_allocator(&manager, "safe").unwrap();
    cluster(safe.as_mut());
    let offers = safe.allocate(&Allocate { now: 0.0, dry_run: false }).unwrap().to_vec();
    assert_eq!(offers.len(), 2, "the built-in DRF offered both agents: {offers:?}");
}

#[test]
fn the_fallback_keeps_the_refusal_filters_frameworks_set() {
    let path = support::script("broken_policy.lua", "function allocate(request) error('the policy is broken') end");
    let manager = support::lua_manager(&[("safe", &path, &[("fallback", "hierarchical")])]);
    let mut allocator = script::create_allocator(&manager, "safe").unwrap();
    cluster(allocator.as_mut());
    let agents = |offers: Offers| -> Vec<String> { offers.iter().map(|o| o.agent_id.to_owned()).collect() };
    let round = |allocator: &mut Box<dyn Allocator>, now: f64| {
        agents(allocator.allocate(&Allocate { now, dry_run: false }).unwrap())
    };
    let mut first = round(&mut allocator, 0.0);
    first.sort();
    assert_eq!(first, ["a0", "a1"]);
    // f declines a0 for 1,000 s and a1 without a filter.
    let back = |agent: &str, filters: Option<Filters>| RecoverResources {
        framework_id: "f".into(),
        role: String::new(),
        agent_id: agent.into(),
        resources: Resources::new().with("cpus", 4.0),
        filters,
    };
    allocator.recover_resources(&back("a0", Some(Filters { refuse_seconds: 1000.0 }))).unwrap();
    allocator.recover_resources(&back("a1", None)).unwrap();
    // Each failing round rebuilds the built-in from the adapter's state: the filter must be in it.
    assert_eq!(round(&mut allocator, 1.0), ["a1"], "a0 is filtered for f");
    assert_eq!(round(&mut allocator, 2.0), Vec::<String>::new(), "a1 is held, a0 still filtered");
    // Reviving clears the filter (Mesos), and so does its end.
    allocator.revive_offers(&RolesRequest { framework_id: "f".into(), roles: vec![] }).unwrap();
    assert_eq!(round(&mut allocator, 3.0), ["a0"]);
    allocator.recover_resources(&back("a0", Some(Filters { refuse_seconds: 10.0 }))).unwrap();
    assert!(round(&mut allocator, 5.0).is_empty(), "filtered until t=13");
    assert_eq!(round(&mut allocator, 14.0), ["a0"], "the filter ended");
}

/// scripts/lua/cluster.lua refuses a policy that would lose its books without a word: one
/// that never calls `cluster.track`, and one that defines a call `track` would replace.
#[test]
fn cluster_lua_refuses_a_policy_whose_books_would_be_lost() {
    let books = format!("{}/?.lua", support::workspace().join("scripts/lua").display());
    let untracked = support::script(
        "untracked.lua",
        "local cluster = require 'cluster'\nfunction allocate(request)\n  cluster.begin(request)\n  return {}\nend\n",
    );
    let early = support::script(
        "early.lua",
        "local cluster = require 'cluster'\nfunction add_agent(request) end\ncluster.track(_ENV)\nfunction allocate() return {} end\n",
    );
    let path: &[(&str, &str)] = &[("package_path", &books)];
    let manager = support::lua_manager(&[("untracked", &untracked, path), ("early", &early, path)]);
    let mut allocator = script::create_allocator(&manager, "untracked").unwrap();
    cluster(allocator.as_mut());
    let error = allocator.allocate(&Allocate { now: 0.0, dry_run: false }).unwrap_err().to_string();
    assert!(
        error.contains("untracked.lua:3: cluster.lua sees no allocator calls: call cluster.track(_ENV)"),
        "{error}"
    );
    let error = script::create_allocator(&manager, "early").err().unwrap().to_string();
    assert!(error.contains("early.lua:3: cluster.track: the policy already defines add_agent"), "{error}");
}

#[test]
fn a_policy_without_allocate_fails_creation_naming_what_is_missing() {
    let path = support::script("no_allocate.lua", "function add_agent(request) end");
    let manager = support::lua_manager(&[("lazy", &path, &[]), ("odd", &path, &[("fallback", "random")])]);
    match script::create_allocator(&manager, "lazy").err().unwrap() {
        CreateError::MissingFunctions { missing, script, .. } => {
            assert_eq!(missing, ["allocate"]);
            assert!(script.ends_with("no_allocate.lua"));
        }
        other => panic!("{other:?}"),
    }
    let error = script::create_allocator(&manager, "odd").err().unwrap();
    assert!(error.to_string().contains("fallback=random"), "{error}");
}

#[test]
fn messages_map_to_lua_values_and_back() {
    let code = r#"
function echo(r) return r end
function types(r)
  local out = {}
  for k, v in pairs(r) do out[k] = math.type(v) or type(v) end
  return out
end
function integer_keys(r) return { [10] = "ten", [20] = "twenty" } end
function not_a_number(r) return { 0/0 } end
function a_function(r) return { f = print } end
function bad_key(r) return { [true] = 1 } end
function not_utf8(r) return { ["\xff"] = 1 } end
function self_nested(r) local t = {} t.t = t return t end
"#;
    let (_manager, mut vm) = load_vm("mapping", code, &[]);
    let message = r#"{"s":"é\n\"x\"","i":-3,"f":1.5,"w":2.0,"t":true,"l":[1,[2,{"a":1}]],"d":{"k":"v"}}"#;
    let cases: Vec<(&str, &str, Result<serde_json::Value, &str>)> = vec![
        ("echo", message, Ok(serde_json::from_str(message).unwrap())),
        (
            "types",
            message,
            Ok(serde_json::json!({"s": "string", "i": "integer", "f": "float", "w": "float", "t": "boolean",
                                  "l": "table", "d": "table"})),
        ),
        // Lua has one table type: an empty one goes back as a list (scripts/README.md says so).
        ("echo", r#"{"empty":{}}"#, Ok(serde_json::json!({"empty": []}))),
        ("integer_keys", "{}", Ok(serde_json::json!({"10": "ten", "20": "twenty"}))),
        ("not_a_number", "{}", Err("NaN is not a number a message can carry")),
        ("a_function", "{}", Err("a function cannot be sent to the host")),
        ("bad_key", "{}", Err("a table key is neither a string nor an integer")),
        ("not_utf8", "{}", Err("a table key is not UTF-8")),
        ("self_nested", "{}", Err("is a table inside itself?")),
        ("echo", "{\"unclosed\": ", Err("the message for echo is malformed")),
    ];
    for (function, message, expected) in cases {
        support::check_vm_answer(&mut vm, function, message, expected);
    }
    // Lua strings are bytes, so a packed string that is not UTF-8 reaches the script; it is
    // refused on the way back.
    let error = vm.call_packed("echo", &support::packed_not_utf8(false)).unwrap_err().to_string();
    assert!(error.contains("a string is not UTF-8"), "{error}");
    support::check_vm_answer(&mut vm, "echo", "[1]", Ok(serde_json::json!([1])));
}

/// Random messages come back from a script that returns them unchanged, sent as JSON and as
/// packed values (within the two rules of a Lua table: no nil entries, no empty objects).
#[test]
fn random_messages_come_back_unchanged() {
    let (_manager, mut vm) = load_vm("echo", "function echo(r) return r end", &[]);
    support::check_random_echoes(&mut vm, "echo", 0x5DEECE66D, true);
}

use serde_json::json;

/// A script with `messages=views` does what it would do with tables, and gets the same
/// answers: each case is sent once as JSON (which a Lua Vm always makes into tables) and once
/// packed (views), and both must give the expected answer.
#[test]
fn views_read_and_write_as_tables_do() {
    let code = r#"
function echo(r) return r end
function labels(r) local l = r.task.labels; l[#l + 1] = { key = "team", value = "platform" }; return l end
function read_then_append(r) local l = r.task.labels; l[1].value = "changed"; l[#l + 1] = { key = l[2].key } return l end
function count(r) return #r.task.labels end
function keys(r) local out = {} for k in pairs(r.task) do out[#out + 1] = k end table.sort(out) return out end
function sum(r) local s = 0 for _, x in ipairs(r.list) do s = s + x end return s end
function insert_front(r) table.insert(r.list, 1, 0) return r.list end
function remove_last(r) table.remove(r.list) return r.list end
function hole(r) r.list[2] = nil return r.list end
function append_far(r) r.list[10] = 10 return r.list end
function edit(r) r.task.name = "renamed"; r.task.extra = { 1, 2 }; r.task.id = nil; return r end
function same(r) return rawequal(r.task, r.task) and r.task.labels == r.task.labels end
function concat(r) return table.concat(r.words, ",") end
function sort(r) table.sort(r.words) return r.words end
function nested_write(r) r.task.labels[1].value = "changed"; return r end
function deep(r) return r.a.b.c end
function absent(r) return { r.nothing, r.task.nothing, r.list[4], r.list[0], r.list.x, r.task[1] } end
function wrapped(r) return { t = r.task.resources, n = #r.words } end
function fill_null(r) r.sparse[2] = 2 return r.sparse end
function edit_tail(r) r.tail[1] = 0 return r.tail end
function count_nulls(r) return { #r.sparse, #r.tail } end
function append_after_null(r) local t = r.tail; t[#t + 1] = 4 return t end
function far_write(r) local m = r.many; m[10].v = "ten"; m[10].w = true; m[2].v = "two"; return m end
function far_same(r) local m = r.many; return rawequal(m[10], m[10]) and rawequal(m[2], m[2]) and m[10] ~= m[11] end
function pairs_after_edit(r)
  r.task.id = nil; r.task.added = true
  local out = {} for k in pairs(r.task) do out[#out + 1] = k end table.sort(out) return out
end
function append_then_read(r) local l = r.list; l[#l + 1] = 4; return { l[4], #l, l[3], l[5] == nil } end
function append_then_pairs(r)
  local l = r.list; l[#l + 1] = 4
  local out = {} for i, x in pairs(l) do out[#out + 1] = i * 10 + x end return out
end
function append_twice(r) local l = r.list; l[#l + 1] = 4; l[#l + 1] = 5; return l end
function append_then_delete(r) local l = r.list; l[4] = 4; l[4] = nil; return l end
function append_then_replace(r) local l = r.list; l[4] = 4; l[4] = 40; return l end
function append_then_edit(r) local l = r.list; l[4] = 4; l[1] = 0; return l end
function append_float_key(r) local l = r.list; l[4.0] = 4; return { l, l[4] } end
function append_a_view(r) local l = r.list; l[#l + 1] = r.task; return l end
function append_to_empty(r) local e = r.empty; e[#e + 1] = "x"; return { e, #e } end
function append_to_sparse(r) r.sparse[4] = 4 return r.sparse end
function insert_at_end(r) table.insert(r.list, 4) return r.list end
"#;
    let (_manager, mut vm) = load_vm("views", code, &[("messages", "views")]);
    let message = r#"{"task": {"id": "t1", "name": "web", "resources": {"cpus": 0.5},
        "labels": [{"key": "k0", "value": "v0"}, {"key": "k1", "value": "v1"}]},
        "list": [1, 2, 3], "words": ["b", "c", "a"], "a": {"b": {"c": 7}}}"#;
    let original: serde_json::Value = serde_json::from_str(message).unwrap();
    let with = |edit: &dyn Fn(&mut serde_json::Value)| {
        let mut value = original.clone();
        edit(&mut value);
        value
    };
    let cases: Vec<(&str, serde_json::Value)> = vec![
        ("echo", original.clone()),
        (
            "labels",
            json!([{"key": "k0", "value": "v0"}, {"key": "k1", "value": "v1"}, {"key": "team", "value": "platform"}]),
        ),
        // An element read as a view (and written into) is written through that view.
        ("read_then_append", json!([{"key": "k0", "value": "changed"}, {"key": "k1", "value": "v1"}, {"key": "k1"}])),
        ("count", json!(2)),
        ("keys", json!(["id", "labels", "name", "resources"])),
        ("sum", json!(6)),
        ("insert_front", json!([0, 1, 2, 3])),
        ("remove_last", json!([1, 2])),
        // A list with a hole is an object, as a Lua table with a hole is.
        ("hole", json!({"1": 1, "3": 3})),
        ("append_far", json!({"1": 1, "2": 2, "3": 3, "10": 10})),
        (
            "edit",
            with(&|v| {
                let task = v["task"].as_object_mut().unwrap();
                task.remove("id");
                task.insert("name".into(), json!("renamed"));
                task.insert("extra".into(), json!([1, 2]));
            }),
        ),
        ("same", json!(true)),
        ("concat", json!("b,c,a")),
        ("sort", json!(["a", "b", "c"])),
        ("nested_write", with(&|v| v["task"]["labels"][0]["value"] = json!("changed"))),
        ("deep", json!(7)),
        ("absent", json!([])),
        ("wrapped", json!({"t": {"cpus": 0.5}, "n": 3})),
        ("pairs_after_edit", json!(["added", "labels", "name", "resources"])),
    ];
    for (function, expected) in cases {
        support::check_vm_answer(&mut vm, function, message, Ok(expected));
    }
    // Nulls in lists, which a table does not hold: a filled one and one at the end.
    let nulls = r#"{"sparse": [1, null, 3], "tail": [1, 2, null]}"#;
    let cases = [
        ("fill_null", json!([1, 2, 3])),
        ("edit_tail", json!([0, 2])),
        ("count_nulls", json!([3, 2])),
        ("append_after_null", json!([1, 2, 4])),
    ];
    for (function, expected) in cases {
        support::check_vm_answer(&mut vm, function, nulls, Ok(expected));
    }
    // A single element appended to a list is held apart from the overlay until anything
    // else is written or the overlay is read: every reader must see it there.
    let appends = r#"{"list": [1, 2, 3], "empty": [], "sparse": [1, null, 3], "task": {"name": "t"}}"#;
    let cases = [
        ("append_then_read", json!([4, 4, 3, true])),
        ("append_then_pairs", json!([11, 22, 33, 44])),
        ("append_twice", json!([1, 2, 3, 4, 5])),
        ("append_then_delete", json!([1, 2, 3])),
        ("append_then_replace", json!([1, 2, 3, 40])),
        ("append_then_edit", json!([0, 2, 3, 4])),
        ("append_float_key", json!([[1, 2, 3, 4], 4])),
        ("append_a_view", json!([1, 2, 3, {"name": "t"}])),
        ("append_to_empty", json!([["x"], 1])),
        // Appended after a null: a table with a hole, written as an object.
        ("append_to_sparse", json!({"1": 1, "3": 3, "4": 4})),
        ("insert_at_end", json!([1, 2, 3, 4])),
    ];
    for (function, expected) in cases {
        support::check_vm_answer(&mut vm, function, appends, Ok(expected));
    }
    // A list longer than the element views a view keeps in its own user values: the views of
    // its further elements are kept too, and written through.
    let many: Vec<serde_json::Value> = (1..=12).map(|i| json!({"v": i})).collect();
    let mut written = many.clone();
    written[9] = json!({"v": "ten", "w": true});
    written[1] = json!({"v": "two"});
    let message = json!({"many": many}).to_string();
    for (function, expected) in [("far_write", json!(written)), ("far_same", json!(true))] {
        support::check_vm_answer(&mut vm, function, &message, Ok(expected));
    }
}

/// A table goes to the host as a list when its keys are exactly 1..n, else as an object whose
/// integer keys are written as text: records, mixed tables, sparse ones, nested ones.
#[test]
fn tables_are_answered_as_lists_or_objects_by_their_keys() {
    let cases = [
        ("{}", json!([])),
        ("{ 'a', 'b' }", json!(["a", "b"])),
        ("{ a = 1 }", json!({"a": 1})),
        ("{ a = 1, b = { 1, { c = true } } }", json!({"a": 1, "b": [1, {"c": true}]})),
        ("{ 1, 2, x = 3 }", json!({"1": 1, "2": 2, "x": 3})),
        ("{ [2] = 5 }", json!({"2": 5})),
        ("{ [1] = 'a', [3] = 'c' }", json!({"1": "a", "3": "c"})),
    ];
    let code: String =
        cases.iter().enumerate().map(|(n, (table, _))| format!("function t{n}(r) return {table} end\n")).collect();
    let (_manager, mut vm) = load_vm("shapes", &code, &[]);
    for (n, (_, expected)) in cases.into_iter().enumerate() {
        support::check_vm_answer(&mut vm, &format!("t{n}"), "null", Ok(expected));
    }
}

/// A Vm keeps the names of the functions it is asked for as Lua strings, up to a bound; calls
/// past the bound, and names the script does not define, are answered as any other.
#[test]
fn calls_by_many_names_each_reach_their_own_function() {
    let code: String = (1..=80).map(|n| format!("function f{n}(r) return {{ {n}, r }} end\n")).collect();
    for messages in ["tables", "views"] {
        let (_manager, mut vm) = load_vm(&format!("names_{messages}"), &code, &[("messages", messages)]);
        for round in 0..2 {
            for n in 1..=80 {
                support::check_vm_answer(&mut vm, &format!("f{n}"), &round.to_string(), Ok(json!([n, round])));
                support::check_vm_answer(&mut vm, &format!("g{n}"), "0", Err(&format!("defines no function 'g{n}'")));
            }
        }
    }
}

/// What differs with views, and what is kept across calls.
#[test]
fn views_keep_the_message_as_it_came_and_outlive_the_call() {
    let code = r#"
function echo(r) return r end
function kind(r) return { type(r), tostring(getmetatable(r)) } end
function keep(r) kept = r.task return true end
function later(r) return kept.name end
"#;
    let (_manager, mut vm) = load_vm("views_differ", code, &[("messages", "views")]);
    let call = |vm: &mut VmHandle, function: &str, message: serde_json::Value| {
        let answer = vm.call_packed(function, &modhost_abi::packed::to_vec(&message).unwrap());
        answer.map(|a| modhost_abi::packed::from_slice::<serde_json::Value>(&a).unwrap())
    };
    // What the script leaves alone goes back byte for byte: nulls and empty objects too,
    // which a table would lose.
    let untouched = json!({"n": null, "e": {}, "l": [null, 1]});
    assert_eq!(call(&mut vm, "echo", untouched.clone()).unwrap(), untouched);
    // `getmetatable` gives a name, not the metamethods.
    assert_eq!(call(&mut vm, "kind", json!({})).unwrap(), json!(["userdata", "message"]));
    // A view kept in a global still reads its message in a later call.
    call(&mut vm, "keep", json!({"task": {"name": "kept"}})).unwrap();
    assert_eq!(call(&mut vm, "later", json!({"task": {"name": "other"}})).unwrap(), "kept");
}

/// Lua functions that walk a message, tables or views alike: `copy` makes it into new
/// tables with `pairs`; `touch` writes into every list and object of it (a mark set and
/// removed, then every key assigned its own value again).
const WALKERS: &str = r#"
function copy(v)
  if type(v) ~= "userdata" and type(v) ~= "table" then return v end
  local t = {}
  for k, x in pairs(v) do t[k] = copy(x) end
  return t
end
function touch(v)
  if type(v) ~= "userdata" and type(v) ~= "table" then return v end
  v.__mark = true
  v.__mark = nil
  local keys = {}
  for k in pairs(v) do keys[#keys + 1] = k end
  for _, k in ipairs(keys) do v[k] = touch(v[k]) end
  return v
end
"#;

/// Random messages through views: given back as they are, copied into tables with `pairs`,
/// and written into at every level ([`WALKERS`]).
#[test]
fn random_messages_come_back_through_views() {
    let code = format!("function echo(r) return r end\n{WALKERS}");
    let (_manager, mut vm) = load_vm("views_random", &code, &[("messages", "views")]);
    for (function, seed) in [("echo", 0x2545F491), ("copy", 0x9E3779B9), ("touch", 0x85EBCA6B)] {
        support::check_random_echoes(&mut vm, function, seed, true);
    }
}

/// Differential: whatever the message (nulls, empty objects and large integers included),
/// a script that copies it, or writes into every list and object of it, gets the answer from
/// views that it gets from tables, but for one documented difference: an empty object goes
/// back as an object, where a table goes back as an empty list. (A part a script never
/// writes into goes back as it came, nulls and all: `views_keep_the_message_as_it_came`.)
#[test]
fn views_answer_as_tables_do_for_random_messages() {
    fn lists_for_empty_objects(value: &mut serde_json::Value) {
        match value {
            serde_json::Value::Object(entries) if entries.is_empty() => *value = json!([]),
            serde_json::Value::Object(entries) => entries.values_mut().for_each(lists_for_empty_objects),
            serde_json::Value::Array(items) => items.iter_mut().for_each(lists_for_empty_objects),
            _ => {}
        }
    }
    let (_manager, mut vm) = load_vm("views_differential", WALKERS, &[("messages", "views")]);
    let mut rng = support::Rng(0xC2B2AE35);
    for _ in 0..300 {
        let message = rng.value(0, false);
        for function in ["copy", "touch"] {
            let mut from_tables: serde_json::Value =
                serde_json::from_slice(&vm.call(function, message.to_string().as_bytes()).unwrap()).unwrap();
            let answer = vm.call_packed(function, &modhost_abi::packed::to_vec(&message).unwrap()).unwrap();
            let mut from_views: serde_json::Value = modhost_abi::packed::from_slice(&answer).unwrap();
            lists_for_empty_objects(&mut from_tables);
            lists_for_empty_objects(&mut from_views);
            assert_eq!(from_views, from_tables, "{function}({message})");
        }
    }
}

/// Corrupted messages (random bytes changed, or cut short), as tables and through views: every
/// call either answers or fails with an error, and the Vm goes on; nothing is read out of
/// bounds (the views' reads are checked, and a count larger than the message is cut to it).
#[test]
fn corrupted_messages_fail_cleanly_as_tables_and_as_views() {
    let code = WALKERS.to_owned()
        + r#"
function length(v) if type(v) == "userdata" or type(v) == "table" then return #v end return 0 end
function echo(v) return v end
function edit(v) if type(v) == "userdata" or type(v) == "table" then v[1] = true; v.k = 1 end return v end
function ok() return 1 end
"#;
    for (name, extra) in [("tables_corrupted", &[][..]), ("views_corrupted", &[("messages", "views")][..])] {
        let (_manager, mut vm) = load_vm(name, &code, extra);
        let (answered, failed) =
            support::check_corrupted_messages(&mut vm, &["copy", "length", "echo", "edit"], 0x27D4EB2F);
        // Both outcomes happened: with views, the corruptions reached the script and were not
        // all refused at the door (tables are checked whole before the call, so they answer
        // only for what is still a well-formed message).
        assert!(answered > 500 && failed > 500, "{name}: {answered} answered, {failed} failed");
        assert_eq!(call(&mut vm, "ok").unwrap(), "1");
    }
}

/// A malformed packed message is found where the script reads it, and fails that call.
#[test]
fn a_malformed_message_fails_the_call_that_reads_it() {
    let (_manager, mut vm) = load_vm(
        "views_malformed",
        "function read(r) return r.k end function skip(r) return 1 end",
        &[("messages", "views")],
    );
    // An object of one entry whose key runs past the end.
    let truncated = [8u8, 1, 0, 0, 0, 9, 0, 0, 0, b'k'];
    let error = vm.call_packed("read", &truncated).unwrap_err().to_string();
    assert!(error.contains("the message is malformed"), "{error}");
    let answer = vm.call_packed("skip", &truncated).unwrap();
    assert_eq!(modhost_abi::packed::from_slice::<i64>(&answer).unwrap(), 1);
    let error = vm.call_packed("read", &[42]).unwrap_err().to_string();
    assert!(error.contains("the message for read is malformed") && error.contains("unknown tag 0x2a"), "{error}");
}
