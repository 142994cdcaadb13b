//! Messages to Lua and back through the Lua C API, without an intermediate value tree.
//!
//! mlua's serde path builds every value as a registry reference and moves it across stacks;
//! for a task-sized message that cost 15 us a call. Here the message's reader (packed values,
//! or serde_json for a JSON call) pushes each value straight onto the Lua stack, and the
//! answer is written as packed values straight from the Lua table. Both run inside mlua's `exec_raw`, a protected call.
//!
//! While a message is pushed the memory limit is lifted (the message's size is bounded by the
//! host, not the script), so a Lua allocation error cannot jump over these Rust frames except
//! when the process itself is out of memory.

use std::ffi::c_int;
use std::fmt;

use mlua::ffi;
use modhost_abi::packed;

use crate::view;
use serde::de::{DeserializeSeed, Deserializer, MapAccess, SeqAccess, Visitor};

/// Deepest nesting accepted either way.
const MAX_DEPTH: usize = 100;

/// Pushes one value of a message onto the stack of `state`.
struct Push {
    state: *mut ffi::lua_State,
    depth: usize,
}

impl Push {
    fn nested(&self) -> Push {
        Push { state: self.state, depth: self.depth + 1 }
    }

    /// Room for one more nested value: under the depth limit, and stack to build it on.
    fn room<E: serde::de::Error>(&self) -> Result<(), E> {
        if self.depth >= MAX_DEPTH {
            return Err(E::custom(format!("the message nests deeper than {MAX_DEPTH} levels")));
        }
        self.stack_room()
    }

    /// Room on the Lua stack for the next element of a list or map (they all wait there until
    /// their table is made).
    fn stack_room<E: serde::de::Error>(&self) -> Result<(), E> {
        // SAFETY: `state` is the running state of the protected call (see `push_json`).
        if unsafe { ffi::lua_checkstack(self.state, 4) } == 0 {
            return Err(E::custom("the message is too large for the Lua stack"));
        }
        Ok(())
    }
}

impl<'de> DeserializeSeed<'de> for Push {
    type Value = ();

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<(), D::Error> {
        deserializer.deserialize_any(self)
    }
}

// Every `unsafe` block below calls a Lua API function on `self.state`, the running state of
// the protected call, after `room` made sure of stack space where more than one slot is used.
impl<'de> Visitor<'de> for Push {
    type Value = ();

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a JSON value")
    }

    fn visit_bool<E: serde::de::Error>(self, v: bool) -> Result<(), E> {
        // SAFETY: see the comment above the impl.
        unsafe { ffi::lua_pushboolean(self.state, c_int::from(v)) };
        Ok(())
    }

    fn visit_i64<E: serde::de::Error>(self, v: i64) -> Result<(), E> {
        // SAFETY: see the comment above the impl.
        unsafe { ffi::lua_pushinteger(self.state, v) };
        Ok(())
    }

    fn visit_u64<E: serde::de::Error>(self, v: u64) -> Result<(), E> {
        match i64::try_from(v) {
            Ok(v) => self.visit_i64(v),
            Err(_) => self.visit_f64(v as f64),
        }
    }

    fn visit_f64<E: serde::de::Error>(self, v: f64) -> Result<(), E> {
        // SAFETY: see the comment above the impl.
        unsafe { ffi::lua_pushnumber(self.state, v) };
        Ok(())
    }

    fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<(), E> {
        self.visit_bytes(v.as_bytes())
    }

    fn visit_bytes<E: serde::de::Error>(self, v: &[u8]) -> Result<(), E> {
        // SAFETY: see the comment above the impl; Lua copies the bytes.
        unsafe { ffi::lua_pushlstring(self.state, v.as_ptr().cast(), v.len()) };
        Ok(())
    }

    fn visit_unit<E: serde::de::Error>(self) -> Result<(), E> {
        // SAFETY: see the comment above the impl.
        unsafe { ffi::lua_pushnil(self.state) };
        Ok(())
    }

    fn visit_none<E: serde::de::Error>(self) -> Result<(), E> {
        self.visit_unit()
    }

    fn visit_some<D: Deserializer<'de>>(self, deserializer: D) -> Result<(), D::Error> {
        deserializer.deserialize_any(self)
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<(), A::Error> {
        self.room()?;
        if let Some(count) = seq.size_hint() {
            // Packed values say how many elements follow: the table is made first, at its
            // size, and each element goes straight into it.
            // SAFETY: see the comment above the impl; each element is pushed above the table
            // and popped into it at once.
            unsafe { ffi::lua_createtable(self.state, c_int::try_from(count).unwrap_or(0), 0) };
            let mut index: ffi::lua_Integer = 0;
            while seq.next_element_seed(self.nested())?.is_some() {
                index += 1;
                // SAFETY: as above.
                unsafe { ffi::lua_rawseti(self.state, -2, index) };
            }
            return Ok(());
        }
        // JSON gives no length ahead: the elements go on the stack first, so that the table is
        // made at its final size (growing a table rehashes it at every power of two).
        // SAFETY: see the comment above the impl.
        let base = unsafe { ffi::lua_gettop(self.state) };
        let mut count: c_int = 0;
        loop {
            self.stack_room()?;
            if seq.next_element_seed(self.nested())?.is_none() {
                break;
            }
            count += 1;
        }
        // SAFETY: `count` values lie above `base`; the new table is moved below them, then
        // each value is popped into its index, the last first.
        unsafe {
            ffi::lua_createtable(self.state, count, 0);
            ffi::lua_rotate(self.state, base + 1, 1);
            for index in (1..=count).rev() {
                ffi::lua_rawseti(self.state, base + 1, ffi::lua_Integer::from(index));
            }
        }
        Ok(())
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<(), A::Error> {
        self.room()?;
        if let Some(count) = map.size_hint() {
            // As for lists: the table first, then each entry straight into it.
            // SAFETY: see the comment above the impl; each key and value are pushed above the
            // table and popped into it at once.
            unsafe { ffi::lua_createtable(self.state, 0, c_int::try_from(count).unwrap_or(0)) };
            while map.next_key_seed(Key(self.state))?.is_some() {
                map.next_value_seed(self.nested())?;
                // SAFETY: as above.
                unsafe { ffi::lua_rawset(self.state, -3) };
            }
            return Ok(());
        }
        // As for lists: keys and values on the stack first, then a table of the right size.
        // (A key given twice keeps its first value, where JSON parsers usually keep the last.)
        // SAFETY: see the comment above the impl.
        let base = unsafe { ffi::lua_gettop(self.state) };
        let mut count: c_int = 0;
        loop {
            self.stack_room()?;
            // The key is pushed as it is read (a string from JSON, bytes from packed values).
            if map.next_key_seed(Key(self.state))?.is_none() {
                break;
            }
            map.next_value_seed(self.nested())?;
            count += 1;
        }
        // SAFETY: `count` key/value pairs lie above `base`; the new table is moved below them,
        // then each pair is popped into it.
        unsafe {
            ffi::lua_createtable(self.state, 0, count);
            ffi::lua_rotate(self.state, base + 1, 1);
            for _ in 0..count {
                ffi::lua_rawset(self.state, base + 1);
            }
        }
        Ok(())
    }
}

/// How a call's message and answer are encoded.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Format {
    /// JSON (`Vm::call`).
    Json,
    /// Packed values (`Vm::call_packed`).
    Packed,
    /// Packed values, the message handed to the script as views (`messages=views`).
    Views,
}

/// Pushes an object's key, which is text.
struct Key(*mut ffi::lua_State);

impl<'de> DeserializeSeed<'de> for Key {
    type Value = ();

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<(), D::Error> {
        deserializer.deserialize_str(self)
    }
}

impl<'de> Visitor<'de> for Key {
    type Value = ();

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("an object key")
    }

    fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<(), E> {
        self.visit_bytes(v.as_bytes())
    }

    fn visit_bytes<E: serde::de::Error>(self, v: &[u8]) -> Result<(), E> {
        // SAFETY: `self.0` is the running state of the protected call, with the slot reserved
        // by `stack_room` before the key is read; Lua copies the bytes.
        unsafe { ffi::lua_pushlstring(self.0, v.as_ptr().cast(), v.len()) };
        Ok(())
    }
}

/// Pushes `message` as one Lua value; on a malformed message the stack is as it was.
///
/// # Safety
///
/// `state` must be the running state of a protected call with room for 3 more slots. For
/// tables (`Json`, `Packed`), the memory limit must be lifted; for views, the frames between
/// the protected call and this one must hold nothing that needs dropping (see
/// `view::push_message`).
pub unsafe fn push_message(state: *mut ffi::lua_State, message: &[u8], format: Format) -> Result<(), String> {
    // SAFETY: forwarded from the caller.
    let top = unsafe { ffi::lua_gettop(state) };
    let result = match format {
        // SAFETY: forwarded from the caller.
        Format::Views => unsafe { view::push_message(state, message) },
        Format::Json => {
            let mut deserializer = serde_json::Deserializer::from_slice(message);
            Push { state, depth: 0 }
                .deserialize(&mut deserializer)
                .and_then(|()| deserializer.end())
                .map_err(|e| e.to_string())
        }
        Format::Packed => {
            // Lua strings are bytes: nothing to check.
            let mut deserializer = packed::Deserializer::new(message).strings_as_bytes();
            Push { state, depth: 0 }
                .deserialize(&mut deserializer)
                .and_then(|()| deserializer.end())
                .map_err(|e| e.to_string())
        }
    };
    if let Err(e) = result {
        // SAFETY: drops whatever a half-read message left.
        unsafe { ffi::lua_settop(state, top) };
        return Err(e.to_string());
    }
    Ok(())
}

/// What became of a call made by [`call_function`].
pub enum Called {
    /// The function returned; its answer was written.
    Answered,
    /// The script defines no function of that name.
    Undefined,
    /// The function raised an error: the error value (the handler's text) is left alone on
    /// the stack.
    Raised,
    /// The message could not be made into a Lua value.
    BadMessage(String),
    /// The memory limit could not be put back.
    NoLimit(String),
    /// The function returned something JSON cannot carry.
    BadAnswer(String),
}

/// One whole call in one protected call: finds the function named at index 3 in the
/// script's environment, makes `message` into its argument, calls the function under the
/// message handler at index 1, and writes what it returned into `out`, in `format` as the
/// message. Stacks are left empty, except for a raised error.
///
/// The script runs under the memory limit, which `limit(false)` lifts and `limit(true)` puts
/// back; it is lifted wherever an allocation error would jump over Rust frames that hold
/// something to drop: while the answer is written, and while a message is made into tables.
/// A message made into views is pushed under the limit (no such frames: see `view.rs`). The
/// limit is found on when the call starts, and put back here once the answer is written; if
/// the call ends before that, the caller puts it back. An answer longer than `answer_limit`
/// bytes is refused (see [`write_value`]).
///
/// # Safety
///
/// `state` must be the running state of a protected call whose stack holds exactly the
/// message handler (index 1), the script's environment table (index 2) and the function's
/// name (index 3), with room for 3 more slots.
pub unsafe fn call_function(
    state: *mut ffi::lua_State,
    message: &[u8],
    format: Format,
    mut limit: impl FnMut(bool) -> Result<(), String>,
    out: &mut Vec<u8>,
    answer_limit: usize,
) -> Called {
    // SAFETY: forwarded from the caller: the function replaces the environment at index 2,
    // push_message gets the room it needs, the pcall finds the function and its argument
    // above the handler, and write_value reads the one result.
    unsafe {
        // A plain lookup, as the script itself would make (globals are not cached: a script
        // may define or replace its functions while it runs).
        if ffi::lua_rawget(state, 2) != ffi::LUA_TFUNCTION {
            ffi::lua_settop(state, 0);
            return Called::Undefined;
        }
        ffi::lua_replace(state, 2);
        let lift = format != Format::Views;
        if let Err(e) = if lift { limit(false) } else { Ok(()) } {
            ffi::lua_settop(state, 0);
            return Called::NoLimit(e);
        }
        if let Err(e) = push_message(state, message, format) {
            ffi::lua_settop(state, 0);
            return Called::BadMessage(e);
        }
        if let Err(e) = if lift { limit(true) } else { Ok(()) } {
            ffi::lua_settop(state, 0);
            return Called::NoLimit(e);
        }
        if ffi::lua_pcall(state, 1, 1, 1) != ffi::LUA_OK {
            ffi::lua_replace(state, 1);
            return Called::Raised;
        }
        // Lifted again: writing the answer makes Lua strings (the keys of views it looks up),
        // and an allocation error must not jump over these frames.
        if let Err(e) = limit(false) {
            ffi::lua_settop(state, 0);
            return Called::NoLimit(e);
        }
        let written = write_answer(state, out, format, answer_limit);
        ffi::lua_settop(state, 0);
        if let Err(e) = limit(true) {
            return Called::NoLimit(e);
        }
        match written {
            Ok(()) => Called::Answered,
            Err(e) => Called::BadAnswer(e),
        }
    }
}

/// Writes the value on top of the stack into `out`, in `format`. JSON is made from the packed
/// form: the JSON path serves export_state and ABI 1.0 callers, not the hot calls.
///
/// # Safety
///
/// `state` must be the running state of a protected call with a value on its stack.
unsafe fn write_answer(
    state: *mut ffi::lua_State,
    out: &mut Vec<u8>,
    format: Format,
    limit: usize,
) -> Result<(), String> {
    // SAFETY: forwarded from the caller.
    unsafe { write_value(state, -1, &mut packed::Writer::new(out), 0, limit) }?;
    if format == Format::Json {
        let value: serde_json::Value = packed::from_slice(out).map_err(|e| e.to_string())?;
        *out = serde_json::to_vec(&value).map_err(|e| e.to_string())?;
    }
    Ok(())
}

/// Writes the value at `index` of `state` as a packed value.
///
/// # Safety
///
/// `state` must be the running state of a protected call; `index` a valid stack index.
pub unsafe fn write_value(
    state: *mut ffi::lua_State,
    index: c_int,
    out: &mut packed::Writer<'_>,
    depth: usize,
    limit: usize,
) -> Result<(), String> {
    if depth >= MAX_DEPTH {
        return Err(format!("the answer nests deeper than {MAX_DEPTH} levels (is a table inside itself?)"));
    }
    // A table held in the answer many times is written each time: a few kilobytes of Lua
    // can stand for terabytes, written with the memory limit lifted and out of the hook's
    // reach. Checked before each value, so the answer ends at most one string past it.
    if out.written() > limit {
        return Err(format!(
            "the answer is larger than {limit} bytes, twice the memory_limit (does it hold the same table many times?)"
        ));
    }
    // SAFETY: forwarded from the caller; every call below reads the value at `index` or
    // pushes at most two slots, checked with lua_checkstack, and pops them again.
    unsafe {
        let index = ffi::lua_absindex(state, index);
        match ffi::lua_type(state, index) {
            ffi::LUA_TNIL => out.null(),
            ffi::LUA_TBOOLEAN => out.boolean(ffi::lua_toboolean(state, index) != 0),
            ffi::LUA_TNUMBER => {
                if ffi::lua_isinteger(state, index) != 0 {
                    out.integer(ffi::lua_tointegerx(state, index, std::ptr::null_mut()));
                } else {
                    out.number(ffi::lua_tonumberx(state, index, std::ptr::null_mut())).map_err(|e| e.to_string())?;
                }
            }
            ffi::LUA_TSTRING => {
                let text = utf8(state, index).ok_or_else(|| "a string is not UTF-8".to_owned())?;
                out.string(text).map_err(|e| e.to_string())?;
            }
            ffi::LUA_TTABLE => write_table(state, index, out, depth, limit)?,
            ffi::LUA_TUSERDATA if view::is_view(state, index) => {
                view::write(state, index, out, |i, out| write_value(state, i, out, depth + 1, limit))?
            }
            other => {
                let name = std::ffi::CStr::from_ptr(ffi::lua_typename(state, other)).to_string_lossy();
                return Err(format!("a {name} cannot be sent to the host"));
            }
        }
    }
    Ok(())
}

/// The string at `index` as text, if it is UTF-8.
///
/// # Safety
///
/// `index` must hold a string (or a number, which Lua converts in place).
unsafe fn utf8<'a>(state: *mut ffi::lua_State, index: c_int) -> Option<&'a str> {
    // SAFETY: forwarded from the caller; Lua keeps the bytes while the value is on the stack.
    unsafe {
        let mut len = 0;
        let ptr = ffi::lua_tolstring(state, index, &mut len);
        packed::utf8(std::slice::from_raw_parts(ptr.cast::<u8>(), len))
    }
}

/// A table is a list if its keys are exactly 1..n (an empty table is an empty list), else an
/// object whose keys are strings (integer keys are written as strings).
///
/// # Safety
///
/// As for [`write_value`], with `index` absolute and holding a table.
unsafe fn write_table(
    state: *mut ffi::lua_State,
    index: c_int,
    out: &mut packed::Writer<'_>,
    depth: usize,
    limit: usize,
) -> Result<(), String> {
    // SAFETY: forwarded from the caller.
    unsafe {
        if ffi::lua_checkstack(state, 3) == 0 {
            return Err("the Lua stack is full".into());
        }
        let n = ffi::lua_rawlen(state, index) as i64;
        let mut count = 0i64;
        let mut sequence = true;
        // Whether the first entry is still on the stack (key, value), to be written first.
        let mut first_entry = false;
        ffi::lua_pushnil(state);
        while ffi::lua_next(state, index) != 0 {
            count += 1;
            sequence = ffi::lua_type(state, -2) == ffi::LUA_TNUMBER && ffi::lua_isinteger(state, -2) != 0 && {
                let k = ffi::lua_tointegerx(state, -2, std::ptr::null_mut());
                (1..=n).contains(&k)
            };
            if !sequence {
                // The first key that is not an index settles it: an object. If it is the
                // table's first key (a record, the common case), the walk goes on from it.
                if count == 1 {
                    first_entry = true;
                } else {
                    ffi::lua_settop(state, -3);
                }
                break;
            }
            ffi::lua_settop(state, -2);
        }
        if sequence && count == n {
            let open = out.open_list();
            for i in 1..=n {
                ffi::lua_rawgeti(state, index, i);
                let result = write_value(state, -1, out, depth + 1, limit);
                ffi::lua_settop(state, -2);
                result?;
            }
            return out.close(open, n as usize).map_err(|e| e.to_string());
        }
        let open = out.open_object();
        let mut entries = 0;
        if !first_entry {
            ffi::lua_pushnil(state);
        }
        while std::mem::take(&mut first_entry) || ffi::lua_next(state, index) != 0 {
            entries += 1;
            let key = match ffi::lua_type(state, -2) {
                ffi::LUA_TSTRING => match utf8(state, -2) {
                    Some(key) => out.key(key).map_err(|e| e.to_string()),
                    None => Err("a table key is not UTF-8".into()),
                },
                ffi::LUA_TNUMBER if ffi::lua_isinteger(state, -2) != 0 => {
                    // Object keys are strings: an integer key is written as its digits.
                    let n = ffi::lua_tointegerx(state, -2, std::ptr::null_mut());
                    out.key(&n.to_string()).map_err(|e| e.to_string())
                }
                _ => Err("a table key is neither a string nor an integer".into()),
            };
            let result = key.and_then(|()| write_value(state, -1, out, depth + 1, limit));
            if let Err(e) = result {
                ffi::lua_settop(state, -3);
                return Err(e);
            }
            ffi::lua_settop(state, -2);
        }
        out.close(open, entries).map_err(|e| e.to_string())
    }
}
