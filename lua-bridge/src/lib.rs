//! `modhost_lua`: a Vm module that runs Lua 5.4 scripts (mlua, vendored Lua).
//!
//! Parameters: `script` (required), `sandbox` (default `true`), `memory_limit` (default
//! `64MiB`), `timeout_ms` per call (default 1000), `package_path` (extra `require` patterns,
//! `;`-separated), `messages` (`tables`, the default, or `views`: see `view.rs`), `gc`
//! (`incremental` or `generational`; the default follows `messages`). Errors carry
//! the script's file:line and a traceback; `print` output goes to the host's log. One
//! descriptor, `org_modhost_lua`, backs every scripted module: the manifest names it with
//! `"symbol"`.

mod bounded;
mod convert;
mod params;
mod pattern;
mod sandbox;
mod view;
mod watchdog;

use std::sync::Arc;

use mlua::{Function, Lua, LuaOptions, StdLib, Table, Value};
use modhost_abi::{CallError, Construct, Parameters, Vm, VmInfo, declare_module};

pub use params::Settings;
use sandbox::Output;
use watchdog::Slot;

/// A Lua state with one script loaded.
pub struct LuaVm {
    // Field order matters: the slot is dropped before the state it points into.
    slot: Arc<Slot>,
    settings: Settings,
    env: Table,
    traceback: Function,
    builtins: std::collections::BTreeSet<String>,
    /// The names of the functions the host has called, as Lua strings: making one from text
    /// hashes it into Lua's string table, a visible part of a short call.
    names: Vec<(Box<str>, mlua::LuaString)>,
    output: Output,
    lua: Lua,
}

/// Turns an mlua error into the module's error, keeping Lua's file:line and traceback.
fn lua_error(context: &str, error: mlua::Error) -> CallError {
    let text = match &error {
        mlua::Error::CallbackError { traceback, cause } => format!("{cause}\n{traceback}"),
        mlua::Error::MemoryError(message) => format!("out of memory (the memory_limit was reached): {message}"),
        other => other.to_string(),
    };
    CallError::failed(format!("{context}: {text}"))
}

/// A frame of the script's own code on the stack: its file, the line it is at, the line its
/// function starts at, and the function's name.
struct ScriptFrame {
    file: String,
    line: usize,
    defined: Option<usize>,
    name: Option<String>,
}

/// The frame `level` levels down the stack if it is the script's: `Some(None)` for C and for
/// the bridge's own Lua (its chunks are named `=modhost-...`), `None` past the bottom.
fn script_frame(lua: &Lua, level: usize) -> Option<Option<ScriptFrame>> {
    lua.inspect_stack(level, |frame| {
        let source = frame.source();
        let bridge = source.source.as_deref().is_some_and(|s| s.starts_with("=modhost"));
        let (Some(file), Some(line)) = (source.short_src, frame.current_line()) else { return None };
        if bridge || file == "[C]" {
            return None;
        }
        let name = frame.names().name.map(|n| n.into_owned());
        Some(ScriptFrame { file: file.into_owned(), line, defined: source.line_defined, name })
    })
}

/// Where the innermost script code on the stack is, as Lua prefixes an error with it
/// (`file:line: `), or nothing if none is: for errors the bridge's own Lua raises on the
/// script's behalf.
fn script_position(lua: &Lua) -> String {
    (1..64)
        .map_while(|level| script_frame(lua, level))
        .flatten()
        .next()
        .map_or_else(String::new, |frame| format!("{}:{}: ", frame.file, frame.line))
}

/// The longest error message kept before the traceback: a script can raise a string of
/// megabytes.
const MESSAGE_BYTES: usize = 16 << 10;

/// The message handler of a call: the error, then where each Lua function on the stack was.
fn traceback(lua: &Lua, message: Value) -> mlua::Result<String> {
    let mut text = message.to_string().unwrap_or_else(|_| format!("an error of type {}", message.type_name()));
    if text.len() > MESSAGE_BYTES {
        let end = (0..=MESSAGE_BYTES).rev().find(|&i| text.is_char_boundary(i)).unwrap_or(0);
        let more = text.len() - end;
        text.truncate(end);
        text.push_str(&format!(" ... ({more} more bytes)"));
    }
    text.push_str("\nstack traceback:");
    for frame in (1..64).map_while(|level| script_frame(lua, level)).flatten() {
        let ScriptFrame { file: source, line, defined, name } = frame;
        let function = match (name, defined) {
            (Some(name), _) => format!("in function '{name}'"),
            (None, Some(defined)) if defined > 0 => format!("in function <{source}:{defined}>"),
            _ => "in the main chunk".to_owned(),
        };
        text.push_str(&format!("\n\t{source}:{line}: {function}"));
    }
    Ok(text)
}

impl Construct for LuaVm {
    fn create(parameters: Parameters) -> Result<Self, CallError> {
        let settings = Settings::from_parameters(&parameters)?;
        let script = settings.script.display().to_string();
        let code = std::fs::read(&settings.script)
            .map_err(|e| CallError::failed(format!("cannot read script '{script}': {e}")))?;
        let libs = StdLib::TABLE | StdLib::STRING | StdLib::MATH | StdLib::UTF8 | StdLib::COROUTINE | StdLib::OS;
        let lua = if settings.sandbox {
            Lua::new_with(libs, LuaOptions::default())
        } else {
            Lua::new_with(StdLib::ALL_SAFE, LuaOptions::default())
        }
        .map_err(|e| lua_error("cannot start Lua", e))?;
        let state = lua.exec_raw_lua(|raw| raw.state());
        let slot = Slot::new(state);
        let output = Output::default();
        let environment =
            sandbox::environment(&lua, settings.sandbox, &settings.script, &settings.package_path, &output, &slot)
                .map_err(|e| lua_error("cannot build the script's environment", e))?;
        lua.set_memory_limit(settings.memory_limit).map_err(|e| lua_error("cannot set the memory limit", e))?;
        if settings.generational_gc {
            lua.gc_set_mode(mlua::prelude::LuaGcMode::Generational(mlua::prelude::LuaGcGenParams::default()));
        }
        let traceback = lua.create_function(traceback).map_err(|e| lua_error("cannot set up calls", e))?;
        let builtins = environment.builtins;
        let vm = LuaVm { slot, settings, env: environment.table, traceback, builtins, names: Vec::new(), output, lua };
        if let Some(prelude) = &vm.settings.prelude {
            let chunk = vm.lua.load(prelude.as_str()).set_name("=modhost-prelude").set_environment(vm.env.clone());
            let function = chunk.into_function().map_err(|e| lua_error("cannot load the prelude", e))?;
            vm.slot
                .guard(vm.settings.timeout, || function.call::<()>(()))
                .map_err(|e| lua_error("error running the prelude", e))?;
        }
        let chunk = vm.lua.load(code).set_name(format!("@{script}")).set_environment(vm.env.clone());
        let function = chunk.into_function().map_err(|e| lua_error(&format!("cannot load '{script}'"), e))?;
        vm.slot
            .guard(vm.settings.timeout, || function.call::<()>(()))
            .map_err(|e| lua_error(&format!("error running '{script}'"), e))?;
        Ok(vm)
    }
}

impl LuaVm {
    fn function(&self, name: &str) -> Result<Option<Function>, CallError> {
        match self.env.raw_get::<Value>(name) {
            Ok(Value::Function(f)) => Ok(Some(f)),
            Ok(_) => Ok(None),
            Err(e) => Err(lua_error("cannot read the script's globals", e)),
        }
    }

    fn script(&self) -> String {
        self.settings.script.display().to_string()
    }
}

/// How many function names a Vm keeps as Lua strings: a host calls a kind's few methods, so
/// this is never reached but by a caller that makes up names.
const NAMES: usize = 64;

impl LuaVm {
    /// Where `function` is in `names`, made and kept there if there is room, or else made
    /// for this call alone (the last entry, taken out again after the call).
    fn name(&mut self, function: &str) -> Result<(usize, bool), CallError> {
        if let Some(at) = self.names.iter().position(|(name, _)| &**name == function) {
            return Ok((at, true));
        }
        let string = self.lua.create_string(function).map_err(|e| lua_error("cannot make the function's name", e))?;
        self.names.push((function.into(), string));
        Ok((self.names.len() - 1, self.names.len() <= NAMES))
    }

    /// One call of `function` with `message`, answered in the same `format`.
    fn call_in(&mut self, function: &str, message: &[u8], format: convert::Format) -> Result<Vec<u8>, CallError> {
        let (at, kept) = self.name(function)?;
        let result = self.call_named(at, function, message, format);
        if !kept {
            self.names.pop();
        }
        result
    }

    /// [`LuaVm::call_in`] with the function's name made: `names[at]`.
    fn call_named(
        &self,
        at: usize,
        function: &str,
        message: &[u8],
        format: convert::Format,
    ) -> Result<Vec<u8>, CallError> {
        let (lua, limit) = (&self.lua, self.settings.memory_limit);
        // An answer is often much of the message (a hook's labels, a task's fields): room for
        // as much saves growing it as it is written.
        let mut answer = Vec::with_capacity(message.len().max(256));
        let mut called = None;
        let restored = std::cell::Cell::new(false);
        let raised = self.slot.guard(self.settings.timeout, || {
            // SAFETY: exec_raw runs the closure as a protected call whose stack holds exactly
            // its three arguments (the handler, the script's environment, the function's name)
            // with room for 3 more slots, which is call_function's contract.
            unsafe {
                lua.exec_raw::<Value>((&self.traceback, &self.env, &self.names[at].1), |state| {
                    let set_limit = |on: bool| {
                        let result =
                            lua.set_memory_limit(if on { limit } else { 0 }).map(drop).map_err(|e| e.to_string());
                        restored.set(on && result.is_ok());
                        result
                    };
                    let answer_limit = limit.saturating_mul(2);
                    called = Some(convert::call_function(state, message, format, set_limit, &mut answer, answer_limit));
                })
            }
        });
        // Put the limit back if the call stopped while it was lifted (call_function puts it
        // back once the answer is written).
        let restored = if restored.get() { Ok(0) } else { lua.set_memory_limit(limit) };
        let raised = raised.map_err(|e| lua_error(&format!("{function} failed"), e))?;
        restored.map_err(|e| lua_error("cannot restore the memory limit", e))?;
        match called {
            Some(convert::Called::Answered) => Ok(answer),
            Some(convert::Called::Raised) => {
                let text = raised.to_string().unwrap_or_else(|_| format!("an error of type {}", raised.type_name()));
                let text = if text == "not enough memory" {
                    "out of memory (the memory_limit was reached)".to_owned()
                } else {
                    text
                };
                Err(CallError::failed(text))
            }
            Some(convert::Called::BadMessage(e)) => {
                Err(CallError::failed(format!("the message for {function} is malformed: {e}")))
            }
            Some(convert::Called::NoLimit(e)) => {
                Err(CallError::failed(format!("cannot restore the memory limit: {e}")))
            }
            Some(convert::Called::BadAnswer(e)) => Err(CallError::failed(format!(
                "{function} in '{}' returned something that is not data: {e}",
                self.script()
            ))),
            Some(convert::Called::Undefined) => {
                Err(CallError::failed(format!("'{}' defines no function '{function}'", self.script())))
            }
            None => Err(CallError::failed(format!("{function} was not called"))),
        }
    }
}

impl Vm for LuaVm {
    fn call(&mut self, function: &str, message: &[u8]) -> Result<Vec<u8>, CallError> {
        self.call_in(function, message, convert::Format::Json)
    }

    fn call_packed(&mut self, function: &str, message: &[u8]) -> Result<Vec<u8>, CallError> {
        let format = if self.settings.views { convert::Format::Views } else { convert::Format::Packed };
        self.call_in(function, message, format)
    }

    fn has_function(&mut self, function: &str) -> Result<bool, CallError> {
        Ok(self.function(function)?.is_some())
    }

    fn describe(&mut self) -> Result<VmInfo, CallError> {
        let version: String = self.lua.globals().get("_VERSION").unwrap_or_else(|_| "Lua".into());
        let mut functions = Vec::new();
        for pair in self.env.pairs::<Value, Value>() {
            let (key, value) = pair.map_err(|e| lua_error("cannot list the script's functions", e))?;
            if let (Value::String(name), Value::Function(_)) = (key, value) {
                let name = name.to_str().map_err(|e| lua_error("bad function name", e))?.to_owned();
                if !self.builtins.contains(&name) {
                    functions.push(name);
                }
            }
        }
        functions.sort();
        let memory_bytes = self.lua.used_memory() as u64;
        Ok(VmInfo { language: "lua".into(), version, script: self.script(), functions, memory_bytes })
    }

    fn take_output(&mut self) -> Result<Vec<String>, CallError> {
        Ok(self.output.take())
    }
}

declare_module! {
    /// Lua 5.4 scripts as modules.
    static org_modhost_lua: Vm = LuaVm {
        author_name: "modhost",
        author_email: "modhost@example.invalid",
        description: "Lua 5.4 scripts as modules (mlua, vendored Lua; sandbox, memory limit, per-call timeout).",
    }
}
