//! The script's environment: what a sandboxed script may touch, `require` limited to the
//! script's folder and `package_path`, and `print` captured for the host's log.

use std::collections::{BTreeSet, VecDeque};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

use mlua::{Lua, MultiValue, Table, Value};

use crate::watchdog::Slot;

/// Lines the script printed, waiting for the host to take them.
#[derive(Clone, Default)]
pub struct Output {
    printed: Arc<Printed>,
}

#[derive(Default)]
struct Printed {
    /// Whether `lines` may hold something: the host asks after every call, and mostly
    /// nothing was printed.
    waiting: AtomicBool,
    lines: Mutex<Kept>,
}

/// The lines kept, their bytes, and how many were dropped since the last collection.
#[derive(Default)]
struct Kept {
    lines: VecDeque<String>,
    bytes: usize,
    dropped: u64,
}

/// Lines kept between two collections; older ones are dropped and counted.
const OUTPUT_LINES: usize = 10_000;

/// Bytes kept between two collections, likewise: what a script prints is held outside its
/// memory limit, so it has a limit of its own.
const OUTPUT_BYTES: usize = 1 << 20;

/// The longest line kept; the rest of a longer one is cut, and counted in the line.
const LINE_BYTES: usize = 16 << 10;

impl Output {
    fn push(&self, line: String) {
        let mut guard = self.printed.lines.lock().unwrap_or_else(|e| e.into_inner());
        let kept = &mut *guard;
        while kept.lines.len() == OUTPUT_LINES || (!kept.lines.is_empty() && kept.bytes + line.len() > OUTPUT_BYTES) {
            let oldest = kept.lines.pop_front().map_or(0, |l| l.len());
            kept.bytes -= oldest;
            kept.dropped += 1;
        }
        kept.bytes += line.len();
        kept.lines.push_back(line);
        self.printed.waiting.store(true, Ordering::Release);
    }

    /// Everything printed since the last call.
    pub fn take(&self) -> Vec<String> {
        if !self.printed.waiting.load(Ordering::Acquire) {
            return Vec::new();
        }
        let mut guard = self.printed.lines.lock().unwrap_or_else(|e| e.into_inner());
        self.printed.waiting.store(false, Ordering::Release);
        let kept = &mut *guard;
        let mut taken: Vec<String> = kept.lines.drain(..).collect();
        kept.bytes = 0;
        if kept.dropped > 0 {
            let dropped = std::mem::take(&mut kept.dropped);
            taken.insert(
                0,
                format!(
                    "({dropped} earlier line(s) dropped: the script printed more than {OUTPUT_LINES} lines or {} KiB \
                     before the host collected them)",
                    OUTPUT_BYTES >> 10
                ),
            );
        }
        taken
    }
}

/// What `print` writes for `args`: their texts, tab-separated, cut at [`LINE_BYTES`] (a string
/// is copied only as far as the line has room).
fn print_line(args: &MultiValue) -> String {
    let mut line = Vec::new();
    let mut cut = 0;
    for (i, value) in args.iter().enumerate() {
        if i > 0 {
            line.push(b'\t');
        }
        let room = (LINE_BYTES + 1).saturating_sub(line.len());
        match value {
            Value::String(s) => {
                let bytes = s.as_bytes();
                let taken = bytes.len().min(room);
                line.extend_from_slice(&bytes[..taken]);
                cut += bytes.len() - taken;
            }
            other => {
                let text = other.to_string().unwrap_or_else(|_| format!("<{}>", other.type_name()));
                line.extend_from_slice(text.as_bytes());
            }
        }
    }
    if line.len() > LINE_BYTES {
        cut += line.len() - LINE_BYTES;
        line.truncate(LINE_BYTES);
    }
    let mut line = String::from_utf8_lossy(&line).into_owned();
    if cut > 0 {
        line.push_str(&format!(" ... ({cut} more bytes)"));
    }
    line
}

/// Builds the sandbox from the state's own (safe) standard library: base functions,
/// `string` without `dump`, `table`, `math`, `utf8`, `coroutine`, and of `os` only the clock
/// and date functions. `load` takes text chunks only and defaults to the sandbox as its
/// environment; `collectgarbage` cannot stop the collector; `setmetatable` sets no finalizer
/// (`__gc`); the string metatable is hidden.
const SANDBOX: &str = r#"
local real_load, collect, real_getmetatable, real_setmetatable = load, collectgarbage, getmetatable, setmetatable
local env = {}
for _, name in ipairs({ "assert", "error", "ipairs", "next", "pairs", "pcall", "select", "tonumber",
    "tostring", "type", "xpcall", "rawequal", "rawget", "rawset", "rawlen", "setmetatable",
    "getmetatable" }) do
  env[name] = _G[name]
end
env._VERSION = _VERSION
string.dump = nil
env.string, env.table, env.math, env.utf8, env.coroutine = string, table, math, utf8, coroutine
env.os = { time = os.time, clock = os.clock, date = os.date, difftime = os.difftime }
local collect_options = { collect = true, count = true, step = true, isrunning = true }
env.collectgarbage = function(option, ...)
  if option == nil or collect_options[option] then return collect(option, ...) end
  error("collectgarbage('" .. tostring(option) .. "') is not allowed in the sandbox", 2)
end
-- A table is marked for finalization if its metatable has a __gc field (any value, read raw)
-- when it is set; the finalizer then runs whenever the collector steps, in no call's deadline
-- or memory limit. So no such metatable is set.
env.setmetatable = function(t, mt)
  if type(mt) == "table" and rawget(mt, "__gc") ~= nil then
    error("setmetatable: __gc is not allowed in the sandbox (a finalizer would run outside the call's limits)", 2)
  end
  return real_setmetatable(t, mt)
end
env.load = function(chunk, name, mode, chunk_env)
  if mode ~= nil and mode ~= "t" then error("load: only text chunks are allowed in the sandbox", 2) end
  if chunk_env == nil then chunk_env = env end
  return real_load(chunk, name, "t", chunk_env)
end
real_getmetatable("").__metatable = "the string metatable is protected"
env._G = env
return env
"#;

/// Instructions between two deadline checks inside a coroutine.
const COROUTINE_CHECK: u32 = 1_000_000;

/// `coroutine.resume` whose error is always text (a deadline error raised by the hook is
/// mlua's error object otherwise), and `coroutine.wrap` over the guarded `create`.
const WRAP: &str = r#"
local create, real_resume, pack, unpack = ...
local function resume(co, ...)
  local r = pack(real_resume(co, ...))
  if not r[1] then r[2] = tostring(r[2]) end
  return unpack(r, 1, r.n)
end
local function wrap(f)
  local co = create(f)
  return function(...)
    local r = pack(resume(co, ...))
    if not r[1] then error(r[2], 2) end
    return unpack(r, 2, r.n)
  end
end
return resume, wrap
"#;

/// Replaces library functions with Lua ones: `glue` (a chunk named `=modhost-{name}`) receives
/// Lua's own function for each of `functions` (a library and a name in it), then `extra`, and
/// returns the replacements in the same order, which are set where the originals were.
pub fn replace_functions(
    lua: &Lua,
    name: &str,
    glue: &str,
    functions: &[(&Table, &str)],
    extra: impl mlua::IntoLuaMulti,
) -> mlua::Result<()> {
    let mut arguments = MultiValue::new();
    for (library, function) in functions {
        arguments.push_back(library.get::<Value>(*function)?);
    }
    arguments.extend(extra.into_lua_multi(lua)?);
    let replacements: MultiValue = lua.load(glue).set_name(format!("=modhost-{name}")).call(arguments)?;
    if replacements.len() != functions.len() {
        return Err(mlua::Error::runtime(format!("the {name} glue returned {} functions", replacements.len())));
    }
    for ((library, function), replacement) in functions.iter().zip(replacements) {
        library.set(*function, replacement)?;
    }
    Ok(())
}

/// `xpcall` whose message handler is not run once the call is overdue: the error then comes
/// from the deadline's hook, and Lua runs a handler for an error raised in a hook with hooks
/// off, so a handler that loops would never be stopped. The handler's error (the deadline's)
/// is passed on as it is.
const XPCALL: &str = r##"
local real_xpcall, overdue, type, select, error = ...
return function(...)
  local f, handler = ...
  -- Lua's own refuses a handler that is not a function, at the caller's line.
  if type(handler) ~= "function" then
    local got = select("#", ...) < 2 and "no value" or type(handler)
    error("bad argument #2 to 'xpcall' (function expected, got " .. got .. ")", 2)
  end
  return real_xpcall(f, function(e)
    if overdue() then return e end
    return handler(e)
  end, select(3, ...))
end
"##;

/// Replaces `xpcall` with the guarded one of [`XPCALL`].
fn guarded_xpcall(lua: &Lua, env: &Table, slot: &Arc<Slot>) -> mlua::Result<()> {
    let slot = slot.clone();
    let overdue = lua.create_function(move |_, ()| Ok(slot.overdue()))?;
    let globals = lua.globals();
    let (kind, select, error): (mlua::Function, mlua::Function, mlua::Function) =
        (globals.get("type")?, globals.get("select")?, globals.get("error")?);
    replace_functions(lua, "xpcall", XPCALL, &[(env, "xpcall")], (overdue, kind, select, error))
}

/// The error that stops a coroutine of an overdue call.
fn coroutine_timeout() -> mlua::Error {
    mlua::Error::runtime("timeout: the call ran longer than its timeout_ms (in a coroutine)")
}

/// Replaces `coroutine.create` and `coroutine.wrap` (in a copy of the table) with versions
/// whose coroutines check the call's deadline every million instructions: the watchdog's
/// hook reaches only the thread the call started on.
fn guarded_coroutines(lua: &Lua, env: &Table, slot: &Arc<Slot>) -> mlua::Result<()> {
    let original: Table = env.get("coroutine")?;
    let coroutine = lua.create_table()?;
    for pair in original.pairs::<Value, Value>() {
        let (k, v) = pair?;
        coroutine.raw_set(k, v)?;
    }
    let slot = slot.clone();
    let create = lua.create_function(move |lua, f: mlua::Function| {
        let thread = lua.create_thread(f)?;
        let slot = slot.clone();
        let check = mlua::HookTriggers::new().every_nth_instruction(COROUTINE_CHECK);
        thread.set_hook(check, move |lua, _| {
            if !slot.overdue() {
                return Ok(mlua::VmState::Continue);
            }
            // From now on the coroutine fails at every instruction, as the call's own thread
            // does once the watchdog arms it: a `pcall` inside the coroutine cannot keep it
            // running, and it ends, handing control back to the overdue call.
            let every = mlua::HookTriggers::new().every_nth_instruction(1);
            lua.current_thread().set_hook(every, |_, _| Err(coroutine_timeout()))?;
            Err(coroutine_timeout())
        })?;
        Ok(thread)
    })?;
    let table: Table = lua.globals().get("table")?;
    let (resume, wrap): (mlua::Function, mlua::Function) = lua.load(WRAP).set_name("=modhost-coroutine").call((
        create.clone(),
        original.get::<mlua::Function>("resume")?,
        table.get::<mlua::Function>("pack")?,
        table.get::<mlua::Function>("unpack")?,
    ))?;
    coroutine.set("create", create)?;
    coroutine.set("resume", resume)?;
    coroutine.set("wrap", wrap)?;
    env.set("coroutine", coroutine)
}

/// The environment a script runs in, and the names that were there before it ran.
pub struct Environment {
    /// The script's globals.
    pub table: Table,
    /// Names defined by the host (standard library, `print`, `require`), not the script.
    pub builtins: BTreeSet<String>,
}

/// Where `require` looks: the script's folder, then `package_path` patterns.
fn search_patterns(script: &Path, package_path: &[String]) -> Vec<String> {
    let dir = script.parent().filter(|d| !d.as_os_str().is_empty()).unwrap_or(Path::new("."));
    let mut patterns = vec![format!("{}/?.lua", dir.display()), format!("{}/?/init.lua", dir.display())];
    patterns.extend(package_path.iter().cloned());
    patterns
}

/// Builds the environment of a script at `script`.
pub fn environment(
    lua: &Lua,
    sandbox: bool,
    script: &Path,
    package_path: &[String],
    output: &Output,
    slot: &Arc<Slot>,
) -> mlua::Result<Environment> {
    let table: Table = if sandbox { lua.load(SANDBOX).set_name("=modhost-sandbox").eval()? } else { lua.globals() };
    let printer = output.clone();
    let print = lua.create_function(move |_, args: MultiValue| {
        printer.push(print_line(&args));
        Ok(())
    })?;
    table.set("print", print)?;
    guarded_coroutines(lua, &table, slot)?;
    guarded_xpcall(lua, &table, slot)?;
    crate::pattern::install(lua, slot)?;
    crate::bounded::install(lua)?;
    if sandbox {
        table.set("require", require(lua, &table, search_patterns(script, package_path))?)?;
    } else {
        let package: Table = lua.globals().get("package")?;
        let path: String = package.get("path")?;
        let mine = search_patterns(script, package_path).join(";");
        package.set("path", format!("{mine};{path}"))?;
    }
    let mut builtins = BTreeSet::new();
    for pair in table.pairs::<Value, Value>() {
        if let (Value::String(name), _) = pair? {
            builtins.insert(name.to_str()?.to_owned());
        }
    }
    Ok(Environment { table, builtins })
}

/// A `require` that loads Lua files only (never C modules), found through `patterns`, run in
/// the sandbox, and cached.
fn require(lua: &Lua, env: &Table, patterns: Vec<String>) -> mlua::Result<mlua::Function> {
    let loaded = lua.create_table()?;
    let env = env.clone();
    lua.create_function(move |lua, name: String| {
        if let Ok(Value::Table(module)) = loaded.get::<Value>(name.as_str()) {
            return Ok(Value::Table(module));
        }
        if let Some(value) = loaded.get::<Option<Value>>(name.as_str())? {
            return Ok(value);
        }
        let valid =
            !name.is_empty() && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '.' || c == '-');
        if !valid || name.contains("..") {
            return Err(mlua::Error::runtime(format!("module '{name}' not found: not a valid module name")));
        }
        let relative = name.replace('.', "/");
        let candidates: Vec<PathBuf> = patterns.iter().map(|p| PathBuf::from(p.replace('?', &relative))).collect();
        let Some(path) = candidates.iter().find(|p| p.is_file()) else {
            let tried: Vec<String> = candidates.iter().map(|p| format!("no file '{}'", p.display())).collect();
            return Err(mlua::Error::runtime(format!("module '{name}' not found: {}", tried.join(", "))));
        };
        let code =
            std::fs::read(path).map_err(|e| mlua::Error::runtime(format!("cannot read '{}': {e}", path.display())))?;
        let value: Value =
            lua.load(code).set_name(format!("@{}", path.display())).set_environment(env.clone()).call(name.clone())?;
        let value = if value.is_nil() { Value::Boolean(true) } else { value };
        loaded.set(name.as_str(), value.clone())?;
        Ok(value)
    })
}
