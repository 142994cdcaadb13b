//! Messages as views (`messages=views`): the script's argument is read from the packed
//! message only where the script reads it.
//!
//! A task-sized hook message is a dozen tables and sixty strings; a hook usually reads two
//! fields of it. Building all of it cost more than the rest of the call (BENCHMARKS.md), so a
//! Vm can be asked to hand its script views instead, as Slurm's `job_submit.lua` hands its
//! script a `job_desc` it reads on demand.
//!
//! A view is a full userdata holding where its list or object starts in the message and
//! where each element starts (found by walking from the first, only as far as reads need).
//! The view of the whole message (its root) also holds a copy of the packed bytes, after its
//! own offsets; every view points there, and keeps the view it was read from (its parent, the
//! first user value) alive, so the root lives as long as any view of the message. A view's
//! second user value is its overlay, a table made on its first write: what the script
//! assigned; a key assigned `nil` holds [`DELETED`] there. A hook's one write is usually an
//! element appended to a list (`labels[#labels + 1] = ...`), which the third user value
//! holds instead, until anything else needs the overlay (see [`Header::appended`]). The views
//! made of its elements are kept (so `request.task` is the same view each time, and a write
//! through it is kept): the first [`INLINE_CHILDREN`] in user values of their own, any further
//! ones in a table, the fourth user value, made when first needed.
//!
//! The metatable gives views what scripts do with tables: indexing, assignment, `#`,
//! `ipairs`, `pairs`, and the `table` library (which honours these metamethods). `type()` says
//! `userdata`; `next` and the `raw*` functions see nothing. An answer that is (or holds) a
//! view is written by copying the parts the script left alone straight from the message.
//!
//! Errors: a metamethod raises one for a part of the message that is malformed (found when
//! the script reads it) and for a call on something that is not a view; an allocation may
//! also fail under the memory limit. Either way Lua jumps out of the metamethod, so no value
//! that needs dropping is alive across a Lua API call in this module, and an error's text is
//! copied to the stack before it is raised.

use std::ffi::{CStr, c_int, c_void};

use mlua::ffi;
use modhost_abi::packed::{self, Item};

/// The metatable's name; Lua's messages call a view by it.
const METATABLE: &CStr = c"message";

/// Its address, as a light userdata, is the metatable's key in the registry (looked up by
/// address, not by name as `luaL_newmetatable` would: that costs a string lookup per call).
static METATABLE_KEY: u8 = 1;

/// Its address, as a light userdata, marks a deleted key in an overlay.
static DELETED: u8 = 0;

/// The user values of a view: see the module's documentation.
const PARENT: c_int = 1;
const OVERLAY: c_int = 2;
const APPENDED: c_int = 3;
const MORE_CHILDREN: c_int = 4;
const FIRST_CHILD: c_int = 5;

/// How many of a view's element views it keeps in user values. The objects of a message have
/// a handful of keys, so theirs all fit; a long list's further elements go to a table rather
/// than make its view 16 bytes larger per element.
const INLINE_CHILDREN: usize = 8;

/// The message's copy, in its root view after the offsets; the packed bytes follow it.
#[repr(C)]
struct Head {
    /// Whether a script has written into any view of this message: until it does, a view is
    /// written back as the message's bytes.
    modified: bool,
    len: usize,
}

/// The start of a view's userdata; room for the offsets of its elements follows it.
#[repr(C)]
struct Header {
    /// The message, in the root view, which this view keeps alive through its parents.
    head: *mut Head,
    object: bool,
    /// Whether the script's only write into this list view so far appended one element
    /// (`list[count + 1] = value`), held in the `APPENDED` user value instead of an overlay:
    /// the common write of a hook (`labels[#labels + 1] = ...`) then makes no table. The
    /// overlay does not exist while this is set; [`overlay`] makes it, with the element in
    /// it, the first time anything else needs it.
    appended: bool,
    count: usize,
    /// Where the list or object starts in the message (its tag).
    start: usize,
    /// Where its first element (or key) starts.
    first: usize,
    /// How many elements have their offsets found: they are found by walking from the
    /// first, only as far as a script's reads need.
    known: usize,
    /// Just past the whole list or object, once found (0 until then).
    end: usize,
    /// How many views of its elements have been made (they are kept in its user values).
    children: usize,
}

/// Why a view could not be read.
enum Fault {
    /// The message is malformed where the view reads it.
    Malformed(packed::Error),
    /// An element past the view's count was asked for (a bug of this module, reported rather
    /// than read out of bounds).
    OutOfRange { element: usize, count: usize },
}

impl From<packed::Error> for Fault {
    fn from(error: packed::Error) -> Self {
        Fault::Malformed(error)
    }
}

impl std::fmt::Display for Fault {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Fault::Malformed(error) => write!(f, "the message is malformed: {error}"),
            Fault::OutOfRange { element, count } => write!(f, "element {element} of a view of {count} was asked for"),
        }
    }
}

/// A view read from its userdata, with the message it reads from.
struct View<'a> {
    header: *mut Header,
    /// Where each element's (or entry's) value starts, for the first `known`.
    values: *mut usize,
    /// Where each entry's key starts (objects only), for the first `known`.
    keys: *mut usize,
    message: &'a [u8],
    head: *mut Head,
}

impl<'a> View<'a> {
    /// The view at `index`.
    ///
    /// # Safety
    ///
    /// `index` must hold a view, which must outlive `'a`.
    unsafe fn at(state: *mut ffi::lua_State, index: c_int) -> View<'a> {
        // SAFETY: a view's userdata is a Header followed by room for its offsets, as
        // `new_view` made it; its `head` points into the root view, which the view keeps
        // alive (through its parents). Lua does not move a userdata's memory.
        unsafe {
            let header = ffi::lua_touserdata(state, index).cast::<Header>();
            let values = header.add(1).cast::<usize>();
            let keys = values.add((*header).count);
            let head = (*header).head;
            let message = std::slice::from_raw_parts(head.add(1).cast::<u8>(), (*head).len);
            View { header, values, keys, message, head }
        }
    }

    fn header(&self) -> &Header {
        // SAFETY: see `at`; nothing else holds a reference into the header while this one lives.
        unsafe { &*self.header }
    }

    /// Whether any view of the message has been written into.
    fn modified(&self) -> bool {
        // SAFETY: see `at`.
        unsafe { (*self.head).modified }
    }

    fn count(&self) -> usize {
        self.header().count
    }

    fn is_object(&self) -> bool {
        self.header().object
    }

    /// Finds the offsets of elements up to `i` (below the count).
    fn find_up_to(&self, i: usize) -> Result<(), Fault> {
        let Header { object, first, known, count, .. } = *self.header();
        if i >= count {
            return Err(Fault::OutOfRange { element: i, count });
        }
        for n in known..=i {
            // SAFETY: n < count, within the room `push_view` made; offsets below `n` are set.
            unsafe {
                let mut at = if n == 0 { first } else { packed::skip(self.message, *self.values.add(n - 1))? };
                if object {
                    self.keys.add(n).write(at);
                    at = packed::read_key(self.message, at)?.1;
                }
                self.values.add(n).write(at);
                (*self.header).known = n + 1;
            }
        }
        Ok(())
    }

    /// Where element `i`'s value starts.
    fn value_at(&self, i: usize) -> Result<usize, Fault> {
        self.find_up_to(i)?;
        // SAFETY: found just above.
        Ok(unsafe { *self.values.add(i) })
    }

    /// Entry `i`'s key.
    fn key(&self, i: usize) -> Result<&'a [u8], Fault> {
        self.find_up_to(i)?;
        // SAFETY: found just above.
        Ok(packed::read_key(self.message, unsafe { *self.keys.add(i) })?.0)
    }

    /// The bytes of element `i`'s value, as packed.
    fn value_bytes(&self, i: usize) -> Result<&'a [u8], Fault> {
        let start = self.value_at(i)?;
        let end = if i + 1 < self.header().known {
            // SAFETY: known, so set.
            unsafe { if self.is_object() { *self.keys.add(i + 1) } else { *self.values.add(i + 1) } }
        } else {
            packed::skip(self.message, start)?
        };
        Ok(&self.message[start..end])
    }

    /// The bytes of the first `n` (one or more) elements' values, one after another.
    fn elements(&self, n: usize) -> Result<&'a [u8], Fault> {
        let (first, last) = (self.value_at(0)?, self.value_at(n - 1)?);
        let end = last + self.value_bytes(n - 1)?.len();
        Ok(&self.message[first..end])
    }

    /// The bytes of the whole list or object, as packed.
    fn bytes(&self) -> Result<&'a [u8], Fault> {
        let Header { start, first, count, end, .. } = *self.header();
        let end = match end {
            0 if count == 0 => first,
            0 => packed::skip(self.message, self.value_at(count - 1)?)?,
            end => end,
        };
        // SAFETY: see `header`.
        unsafe { (*self.header).end = end };
        Ok(&self.message[start..end])
    }

    /// Which element the key at `index` names, if any.
    ///
    /// # Safety
    ///
    /// `index` must be a valid stack index.
    unsafe fn find(&self, state: *mut ffi::lua_State, index: c_int) -> Result<Option<usize>, Fault> {
        // SAFETY: reads the value at `index`; Lua keeps a string's bytes while it is on the stack.
        unsafe {
            match ffi::lua_type(state, index) {
                ffi::LUA_TNUMBER if !self.is_object() => {
                    let mut is_integer = 0;
                    let n = ffi::lua_tointegerx(state, index, &mut is_integer);
                    Ok((is_integer != 0 && n >= 1 && n as u64 <= self.count() as u64).then(|| n as usize - 1))
                }
                ffi::LUA_TSTRING if self.is_object() => {
                    let mut len = 0;
                    let ptr = ffi::lua_tolstring(state, index, &mut len);
                    let wanted = std::slice::from_raw_parts(ptr.cast::<u8>(), len);
                    for i in 0..self.count() {
                        if self.key(i)? == wanted {
                            return Ok(Some(i));
                        }
                    }
                    Ok(None)
                }
                _ => Ok(None),
            }
        }
    }

    /// Whether the message holds `null` for element `i` (absent, to a script).
    fn is_null(&self, i: usize) -> Result<bool, Fault> {
        Ok(packed::read(self.message, self.value_at(i)?)? == Item::Null)
    }
}

/// Pushes `message` as the script's argument: a view if it is a list or an object, else the
/// plain value. Only the outer list's or object's head is read here; the rest is read (and
/// checked) as the script reads it.
///
/// An allocation here may fail under the memory limit, and Lua then jumps to the protected
/// call: no value that needs dropping is alive across a Lua call in this function.
///
/// # Safety
///
/// `state` must be the running state of a protected call with room for 3 more slots, and
/// the frames between that call and this one must hold nothing that needs dropping.
pub unsafe fn push_message(state: *mut ffi::lua_State, message: &[u8]) -> Result<(), String> {
    // SAFETY: forwarded from the caller.
    if unsafe { ffi::lua_checkstack(state, 6) } == 0 {
        return Err("the Lua stack is full".into());
    }
    let item = packed::read(message, 0).map_err(text)?;
    // SAFETY: forwarded from the caller; the new view has room for the message after its
    // offsets.
    unsafe {
        if !matches!(item, Item::List { .. } | Item::Object { .. }) {
            if packed::skip(message, 0).ok() != Some(message.len()) {
                return Err("bytes after the value".into());
            }
            push_scalar(state, item);
            return Ok(());
        }
        let header = new_view(state, item, 0, message.len(), size_of::<Head>() + message.len());
        let room = offsets_size(item, message.len());
        // The message's copy follows the offsets: usize-aligned, as a Head needs.
        let head = header.add(1).cast::<u8>().add(room).cast::<Head>();
        head.write(Head { modified: false, len: message.len() });
        std::ptr::copy_nonoverlapping(message.as_ptr(), head.add(1).cast::<u8>(), message.len());
        (*header).head = head;
        push_metatable(state);
        ffi::lua_setmetatable(state, -2);
    }
    Ok(())
}

/// Pushes the views' metatable, made on first use.
///
/// # Safety
///
/// 3 free slots.
unsafe fn push_metatable(state: *mut ffi::lua_State) {
    let key = std::ptr::from_ref(&METATABLE_KEY).cast::<c_void>();
    // SAFETY: forwarded from the caller.
    unsafe {
        if ffi::lua_rawgetp(state, ffi::LUA_REGISTRYINDEX, key) == ffi::LUA_TTABLE {
            return;
        }
        ffi::lua_settop(state, -2);
        ffi::lua_createtable(state, 0, 6);
        // Each metamethod keeps the metatable, to know a view when it sees one.
        for (name, function) in [
            (c"__index", index_meta as ffi::lua_CFunction),
            (c"__newindex", new_index),
            (c"__len", length),
            (c"__pairs", pairs),
        ] {
            ffi::lua_pushvalue(state, -1);
            ffi::lua_pushcclosure(state, function, 1);
            ffi::lua_setfield(state, -2, name.as_ptr());
        }
        // Lua's messages name a view by `__name`; `getmetatable(view)` gives the same name,
        // not the metamethods.
        for field in [c"__name", c"__metatable"] {
            ffi::lua_pushstring(state, METATABLE.as_ptr());
            ffi::lua_setfield(state, -2, field.as_ptr());
        }
        ffi::lua_pushvalue(state, -1);
        ffi::lua_rawsetp(state, ffi::LUA_REGISTRYINDEX, key);
    }
}

/// Pushes a scalar.
///
/// # Safety
///
/// One free slot on the stack of `state`.
unsafe fn push_scalar(state: *mut ffi::lua_State, item: Item<'_>) {
    // SAFETY: forwarded from the caller; Lua copies a string's bytes.
    unsafe {
        match item {
            Item::Bool(b) => ffi::lua_pushboolean(state, c_int::from(b)),
            Item::Int(n) => ffi::lua_pushinteger(state, n),
            // As the table path does: an integer beyond Lua's is a float.
            Item::UInt(n) => ffi::lua_pushnumber(state, n as f64),
            Item::Float(x) => ffi::lua_pushnumber(state, x),
            Item::Str(s) => {
                ffi::lua_pushlstring(state, s.as_ptr().cast(), s.len());
            }
            Item::Null | Item::List { .. } | Item::Object { .. } => ffi::lua_pushnil(state),
        }
    }
}

/// A list's or object's count and where its first element starts; a count is at most
/// `bound` (the message's length: each element takes a byte or more), as a larger one is
/// malformed and is cut so that a view's room stays bounded by the message.
fn shape(item: Item<'_>, start: usize, bound: usize) -> (bool, usize, usize) {
    match item {
        Item::List { count, first } => (false, (count as usize).min(bound), first),
        Item::Object { count, first } => (true, (count as usize).min(bound), first),
        _ => (false, 0, start),
    }
}

/// The room a view of `item` needs for its offsets: one per element, two per entry.
fn offsets_size(item: Item<'_>, bound: usize) -> usize {
    let (object, count, _) = shape(item, 0, bound);
    count * size_of::<usize>() * (1 + usize::from(object))
}

/// Pushes a new view of `item` (which starts at offset `start` of a message of `len`
/// bytes), with `extra` bytes of room after its offsets, without its message (`head` is
/// null) or metatable, and returns its header.
///
/// # Safety
///
/// 1 free slot.
unsafe fn new_view(state: *mut ffi::lua_State, item: Item<'_>, start: usize, len: usize, extra: usize) -> *mut Header {
    let (object, count, first) = shape(item, start, len);
    let size = size_of::<Header>() + offsets_size(item, len) + extra;
    let values = FIRST_CHILD - 1 + count.min(INLINE_CHILDREN) as c_int;
    // SAFETY: forwarded from the caller; the userdata is aligned for a Header (Lua aligns
    // userdata to its maximum alignment); offsets are written before they are read (`known`).
    unsafe {
        let header = ffi::lua_newuserdatauv(state, size, values).cast::<Header>();
        let head = std::ptr::null_mut();
        header.write(Header { head, object, appended: false, count, start, first, known: 0, end: 0, children: 0 });
        header
    }
}

/// Pushes a view of the list or object `item`, element `i` of the view `parts` at `parent`,
/// and keeps it there.
///
/// # Safety
///
/// `parent` must be an absolute index holding the view `parts` reads; 3 free slots.
unsafe fn push_child(state: *mut ffi::lua_State, parent: c_int, parts: &View<'_>, i: usize, item: Item<'_>) {
    // SAFETY: forwarded from the caller; the child points at its parent's message and keeps
    // its parent alive.
    unsafe {
        let at = *parts.values.add(i);
        let header = new_view(state, item, at, parts.message.len(), 0);
        (*header).head = parts.head;
        ffi::lua_pushvalue(state, parent);
        ffi::lua_setiuservalue(state, -2, PARENT);
        ffi::lua_getmetatable(state, parent);
        ffi::lua_setmetatable(state, -2);
        (*parts.header).children += 1;
        if i < INLINE_CHILDREN {
            ffi::lua_pushvalue(state, -1);
            ffi::lua_setiuservalue(state, parent, FIRST_CHILD + i as c_int);
            return;
        }
        if ffi::lua_getiuservalue(state, parent, MORE_CHILDREN) != ffi::LUA_TTABLE {
            ffi::lua_settop(state, -2);
            ffi::lua_createtable(state, 0, 1);
            ffi::lua_pushvalue(state, -1);
            ffi::lua_setiuservalue(state, parent, MORE_CHILDREN);
        }
        ffi::lua_pushvalue(state, -2);
        ffi::lua_rawseti(state, -2, i as i64);
        ffi::lua_settop(state, -2);
    }
}

/// Pushes the view made of element `i` of the view at `view` and returns true, or pushes
/// nothing and returns false if none was made.
///
/// # Safety
///
/// `view` must be an absolute index holding a view; 2 free slots.
unsafe fn push_made_child(state: *mut ffi::lua_State, view: c_int, i: usize) -> bool {
    // SAFETY: forwarded from the caller.
    unsafe {
        if i < INLINE_CHILDREN {
            if ffi::lua_getiuservalue(state, view, FIRST_CHILD + i as c_int) == ffi::LUA_TUSERDATA {
                return true;
            }
            ffi::lua_settop(state, -2);
            return false;
        }
        if ffi::lua_getiuservalue(state, view, MORE_CHILDREN) != ffi::LUA_TTABLE {
            ffi::lua_settop(state, -2);
            return false;
        }
        if ffi::lua_rawgeti(state, -1, i as i64) == ffi::LUA_TUSERDATA {
            ffi::lua_remove(state, -2);
            return true;
        }
        ffi::lua_settop(state, -3);
        false
    }
}

/// An error's text, for the answer's writer.
fn text(error: impl std::fmt::Display) -> String {
    error.to_string()
}

/// Raises a Lua error for a view that cannot be read, from a metamethod. The text is copied to the
/// stack first: no value that needs dropping is alive when Lua jumps out.
///
/// # Safety
///
/// Called from a metamethod, with a free slot.
unsafe fn raise(state: *mut ffi::lua_State, error: Fault) -> c_int {
    let mut text = [0u8; 160];
    let written = {
        let mut cursor = &mut text[..];
        let _ = std::io::Write::write_fmt(&mut cursor, format_args!("{error}"));
        160 - cursor.len()
    };
    drop(error);
    // SAFETY: forwarded from the caller; Lua copies the text, then jumps to the caller's handler.
    unsafe {
        ffi::lua_pushlstring(state, text.as_ptr().cast(), written);
        ffi::lua_error(state)
    }
}

/// Whether the value at `index` is the mark of a deleted key.
///
/// # Safety
///
/// `index` must be a valid stack index.
unsafe fn is_deleted(state: *mut ffi::lua_State, index: c_int) -> bool {
    // SAFETY: forwarded from the caller.
    unsafe { ffi::lua_touserdata(state, index).cast_const() == std::ptr::from_ref(&DELETED).cast::<c_void>() }
}

/// Whether the value at `index` is the integer `n` (as a key: a float with an integer's value
/// is that integer, as Lua normalises table keys).
///
/// # Safety
///
/// `index` must be a valid stack index.
unsafe fn is_index(state: *mut ffi::lua_State, index: c_int, n: i64) -> bool {
    // SAFETY: forwarded from the caller; lua_tointegerx converts nothing on the stack.
    unsafe {
        let mut is_integer = 0;
        ffi::lua_type(state, index) == ffi::LUA_TNUMBER
            && ffi::lua_tointegerx(state, index, &mut is_integer) == n
            && is_integer != 0
    }
}

/// Pushes the overlay of the view at `view` (absolute), making it if `make`; returns
/// whether one is pushed.
///
/// # Safety
///
/// `view` must be an absolute index holding a view; 2 free slots.
unsafe fn overlay(state: *mut ffi::lua_State, view: c_int, make: bool) -> bool {
    // SAFETY: forwarded from the caller.
    unsafe {
        let header = ffi::lua_touserdata(state, view).cast::<Header>();
        if (*header).appended {
            // The element appended without an overlay goes into a new one, where every
            // reader of overlays finds it.
            ffi::lua_createtable(state, 0, 2);
            ffi::lua_getiuservalue(state, view, APPENDED);
            ffi::lua_rawseti(state, -2, (*header).count as i64 + 1);
            ffi::lua_pushnil(state);
            ffi::lua_setiuservalue(state, view, APPENDED);
            (*header).appended = false;
            ffi::lua_pushvalue(state, -1);
            ffi::lua_setiuservalue(state, view, OVERLAY);
            return true;
        }
        if ffi::lua_getiuservalue(state, view, OVERLAY) == ffi::LUA_TTABLE {
            return true;
        }
        ffi::lua_settop(state, -2);
        if !make {
            return false;
        }
        ffi::lua_createtable(state, 0, 2);
        ffi::lua_pushvalue(state, -1);
        ffi::lua_setiuservalue(state, view, OVERLAY);
        true
    }
}

/// Pushes `view[key]` (both absolute indexes), as `__index` answers it.
///
/// # Safety
///
/// `view` must hold a view and `key` any value; 4 free slots.
unsafe fn get(state: *mut ffi::lua_State, view: c_int, key: c_int) -> Result<(), Fault> {
    // SAFETY: forwarded from the caller; every branch leaves exactly the answer pushed.
    unsafe {
        if assigned(state, view, key) {
            return Ok(());
        }
        let parts = View::at(state, view);
        match parts.find(state, key)? {
            Some(i) => push_element(state, view, &parts, i),
            None => {
                ffi::lua_pushnil(state);
                Ok(())
            }
        }
    }
}

/// Pushes what the script assigned to `view[key]` (`nil` if it deleted the key) and returns
/// true, or pushes nothing and returns false if it assigned nothing there.
///
/// # Safety
///
/// `view` must be an absolute index holding a view, `key` an absolute index; 2 free slots.
unsafe fn assigned(state: *mut ffi::lua_State, view: c_int, key: c_int) -> bool {
    // SAFETY: forwarded from the caller.
    unsafe {
        let header = ffi::lua_touserdata(state, view).cast::<Header>();
        if (*header).appended {
            // No overlay: only the appended element was assigned.
            if is_index(state, key, (*header).count as i64 + 1) {
                ffi::lua_getiuservalue(state, view, APPENDED);
                return true;
            }
            return false;
        }
        if !overlay(state, view, false) {
            return false;
        }
        ffi::lua_pushvalue(state, key);
        if ffi::lua_rawget(state, -2) == ffi::LUA_TNIL {
            ffi::lua_settop(state, -3);
            return false;
        }
        if is_deleted(state, -1) {
            ffi::lua_pushnil(state);
            ffi::lua_replace(state, -2);
        }
        ffi::lua_remove(state, -2);
        true
    }
}

/// Pushes element `i` of the view at `view` as the message has it: a scalar, or the view made
/// of a nested list or object (made once, then found in the message's cache).
///
/// # Safety
///
/// `view` must be an absolute index holding the view `parts` reads; 4 free slots.
unsafe fn push_element(state: *mut ffi::lua_State, view: c_int, parts: &View<'_>, i: usize) -> Result<(), Fault> {
    // SAFETY: forwarded from the caller; every branch leaves exactly the element pushed.
    unsafe {
        let at = parts.value_at(i)?;
        let item = packed::read(parts.message, at)?;
        if !matches!(item, Item::List { .. } | Item::Object { .. }) {
            push_scalar(state, item);
            return Ok(());
        }
        if !push_made_child(state, view, i) {
            push_child(state, view, parts, i, item);
        }
        Ok(())
    }
}

/// Whether element `n` (1-based) of the list view `parts` is there: assigned, or in the
/// message and neither deleted nor `null`. The overlay, if any, is at `overlay`.
///
/// # Safety
///
/// `overlay` must be an index holding a table, or 0 for none; 1 free slot.
unsafe fn present(state: *mut ffi::lua_State, parts: &View<'_>, overlay: c_int, n: i64) -> Result<bool, Fault> {
    // SAFETY: forwarded from the caller.
    unsafe {
        if overlay != 0 {
            let assigned = ffi::lua_rawgeti(state, overlay, n) != ffi::LUA_TNIL;
            let deleted = is_deleted(state, -1);
            ffi::lua_settop(state, -2);
            if assigned {
                return Ok(!deleted);
            }
        }
    }
    let in_message = !parts.is_object() && n >= 1 && n as u64 <= parts.count() as u64;
    Ok(in_message && !parts.is_null(n as usize - 1)?)
}

/// `#view`: a border, as Lua's `#` gives for a table: the last element of the message,
/// moved by what the script deleted or appended.
///
/// # Safety
///
/// `view` must be an absolute index holding a view; 3 free slots.
unsafe fn border(state: *mut ffi::lua_State, view: c_int) -> Result<i64, Fault> {
    // SAFETY: forwarded from the caller; the overlay pushed here is popped at the end.
    unsafe {
        let parts = View::at(state, view);
        let overlay = if overlay(state, view, false) { ffi::lua_gettop(state) } else { 0 };
        let mut n = if parts.is_object() { 0 } else { parts.count() as i64 };
        let result = (|| {
            while n > 0 && !present(state, &parts, overlay, n)? {
                n -= 1;
            }
            while present(state, &parts, overlay, n + 1)? {
                n += 1;
            }
            Ok(n)
        })();
        if overlay != 0 {
            ffi::lua_settop(state, -2);
        }
        result
    }
}

/// Whether argument 1 of the running metamethod is a view: its metatable is the one held in
/// upvalue `upvalue`. Lua hands a metamethod the view it belongs to, but a script that got
/// hold of the function could hand it anything else, which the function would read as a
/// view's memory. `__metatable` keeps the functions from `getmetatable`, and the bridge never
/// loads `debug`, so no script can reach them today; this check keeps that mistake from
/// becoming a crash should either change.
///
/// # Safety
///
/// Called from a C closure of this module with the metatable in upvalue `upvalue`; 1 free slot.
unsafe fn is_own_view(state: *mut ffi::lua_State, upvalue: c_int) -> bool {
    // SAFETY: forwarded from the caller.
    unsafe {
        if ffi::lua_type(state, 1) != ffi::LUA_TUSERDATA || ffi::lua_getmetatable(state, 1) == 0 {
            return false;
        }
        let same = ffi::lua_rawequal(state, -1, ffi::lua_upvalueindex(upvalue)) != 0;
        ffi::lua_settop(state, -2);
        same
    }
}

/// Raises the error for a metamethod called on something that is not a view.
///
/// # Safety
///
/// Called from a metamethod, with a free slot.
unsafe fn not_a_view(state: *mut ffi::lua_State) -> c_int {
    // SAFETY: forwarded from the caller; a static text, nothing to drop.
    unsafe {
        ffi::lua_pushstring(state, c"a message's metamethod was called on something that is not a message".as_ptr());
        ffi::lua_error(state)
    }
}

/// `__index(view, key)`.
unsafe extern "C-unwind" fn index_meta(state: *mut ffi::lua_State) -> c_int {
    // SAFETY: Lua calls a metamethod with the view and the key, and LUA_MINSTACK free slots;
    // the view is checked first.
    unsafe {
        if !is_own_view(state, 1) {
            return not_a_view(state);
        }
        match get(state, 1, 2) {
            Ok(()) => 1,
            Err(e) => raise(state, e),
        }
    }
}

/// `__newindex(view, key, value)`: into the overlay; `nil` marks the key deleted.
unsafe extern "C-unwind" fn new_index(state: *mut ffi::lua_State) -> c_int {
    // SAFETY: Lua calls a metamethod with the view, the key and the value, and LUA_MINSTACK
    // free slots; the view is checked first. lua_rawset raises Lua's own error for a nil or
    // NaN key.
    unsafe {
        if !is_own_view(state, 1) {
            return not_a_view(state);
        }
        let parts = View::at(state, 1);
        (*parts.head).modified = true;
        let header = parts.header;
        if !(*header).object
            && !(*header).appended
            && ffi::lua_type(state, 3) != ffi::LUA_TNIL
            && is_index(state, 2, (*header).count as i64 + 1)
        {
            if ffi::lua_getiuservalue(state, 1, OVERLAY) != ffi::LUA_TTABLE {
                ffi::lua_pushvalue(state, 3);
                ffi::lua_setiuservalue(state, 1, APPENDED);
                (*header).appended = true;
                return 0;
            }
            ffi::lua_settop(state, -2);
        }
        overlay(state, 1, true);
        ffi::lua_pushvalue(state, 2);
        if ffi::lua_type(state, 3) == ffi::LUA_TNIL {
            ffi::lua_pushlightuserdata(state, std::ptr::from_ref(&DELETED).cast_mut().cast());
        } else {
            ffi::lua_pushvalue(state, 3);
        }
        ffi::lua_rawset(state, -3);
    }
    0
}

/// `__len(view)`.
unsafe extern "C-unwind" fn length(state: *mut ffi::lua_State) -> c_int {
    // SAFETY: Lua calls a metamethod with the view and LUA_MINSTACK free slots; the view is
    // checked first.
    unsafe {
        if !is_own_view(state, 1) {
            return not_a_view(state);
        }
        match border(state, 1) {
            Ok(n) => {
                ffi::lua_pushinteger(state, n);
                1
            }
            Err(e) => raise(state, e),
        }
    }
}

/// `__pairs(view)`: an iterator over the message's entries (as the overlay has them), then
/// the keys the script added.
unsafe extern "C-unwind" fn pairs(state: *mut ffi::lua_State) -> c_int {
    // SAFETY: Lua calls a metamethod with the view and LUA_MINSTACK free slots; the view is
    // checked first. The iterator's upvalues: the next element of the message, the last key
    // of the overlay, and the metatable.
    unsafe {
        if !is_own_view(state, 1) {
            return not_a_view(state);
        }
        ffi::lua_pushinteger(state, 0);
        ffi::lua_pushnil(state);
        ffi::lua_pushvalue(state, ffi::lua_upvalueindex(1));
        ffi::lua_pushcclosure(state, next_pair, 3);
        ffi::lua_pushvalue(state, 1);
        ffi::lua_pushnil(state);
    }
    3
}

/// The iterator `pairs` returns, called with the view (and a key it does not need).
unsafe extern "C-unwind" fn next_pair(state: *mut ffi::lua_State) -> c_int {
    // SAFETY: called by a generic `for` with the view at 1 and LUA_MINSTACK free slots; the
    // view is checked first.
    unsafe {
        if !is_own_view(state, 3) {
            return not_a_view(state);
        }
        match step(state) {
            Ok(n) => n,
            Err(e) => raise(state, e),
        }
    }
}

/// One step of [`next_pair`]: pushes the next key and value and returns 2, or returns 0 at
/// the end.
///
/// # Safety
///
/// As for [`next_pair`].
unsafe fn step(state: *mut ffi::lua_State) -> Result<c_int, Fault> {
    // SAFETY: the stack is cut back to the two arguments before each step; the view at 1
    // keeps what `parts` reads alive.
    unsafe {
        let parts = View::at(state, 1);
        let mut i = ffi::lua_tointegerx(state, ffi::lua_upvalueindex(1), std::ptr::null_mut()) as usize;
        while i < parts.count() {
            ffi::lua_settop(state, 2);
            if parts.is_object() {
                let key = parts.key(i)?;
                ffi::lua_pushlstring(state, key.as_ptr().cast(), key.len());
            } else {
                ffi::lua_pushinteger(state, i as i64 + 1);
            }
            i += 1;
            ffi::lua_pushinteger(state, i as i64);
            ffi::lua_replace(state, ffi::lua_upvalueindex(1));
            if !assigned(state, 1, 3) {
                push_element(state, 1, &parts, i - 1)?;
            }
            if ffi::lua_type(state, 4) != ffi::LUA_TNIL {
                return Ok(2);
            }
        }
        ffi::lua_settop(state, 2);
        if !overlay(state, 1, false) {
            return Ok(0);
        }
        // The keys the script added: those of the overlay that the message has not.
        ffi::lua_pushvalue(state, ffi::lua_upvalueindex(2));
        while ffi::lua_next(state, 3) != 0 {
            if is_deleted(state, -1) || parts.find(state, -2)?.is_some() {
                ffi::lua_settop(state, -2);
                continue;
            }
            ffi::lua_pushvalue(state, -2);
            ffi::lua_replace(state, ffi::lua_upvalueindex(2));
            return Ok(2);
        }
        Ok(0)
    }
}

/// Whether the value at `index` is a view.
///
/// # Safety
///
/// `index` must be a valid stack index; 2 free slots.
pub unsafe fn is_view(state: *mut ffi::lua_State, index: c_int) -> bool {
    // SAFETY: forwarded from the caller; what is pushed is popped.
    unsafe {
        if ffi::lua_type(state, index) != ffi::LUA_TUSERDATA || ffi::lua_getmetatable(state, index) == 0 {
            return false;
        }
        let key = std::ptr::from_ref(&METATABLE_KEY).cast::<c_void>();
        ffi::lua_rawgetp(state, ffi::LUA_REGISTRYINDEX, key);
        let same = ffi::lua_rawequal(state, -1, -2) != 0;
        ffi::lua_settop(state, -3);
        same
    }
}

/// Writes the view at `index` as a packed value: the message's own bytes for what the
/// script left alone, `write_value` (the writer of any Lua value) for what it assigned.
///
/// # Safety
///
/// `state` must be the running state of a protected call with the memory limit lifted (this
/// pushes strings); `index` an absolute index holding a view.
pub unsafe fn write(
    state: *mut ffi::lua_State,
    index: c_int,
    out: &mut packed::Writer<'_>,
    mut write_value: impl FnMut(c_int, &mut packed::Writer<'_>) -> Result<(), String>,
) -> Result<(), String> {
    // SAFETY: forwarded from the caller; each step pushes at most three slots, checked first,
    // and leaves the stack as it found it.
    unsafe {
        if ffi::lua_checkstack(state, 4) == 0 {
            return Err("the Lua stack is full".into());
        }
        let parts = View::at(state, index);
        if !parts.modified() {
            return out.packed(parts.bytes().map_err(text)?).map_err(text);
        }
        if let Some(written) = write_appended(state, &parts, index, out, &mut write_value) {
            return written;
        }
        let top = ffi::lua_gettop(state);
        let overlay = if overlay(state, index, false) { top + 1 } else { 0 };
        let result = if parts.is_object() {
            write_object(state, &parts, index, overlay, out, &mut write_value)
        } else {
            write_list(state, &parts, index, overlay, out, &mut write_value)
        };
        ffi::lua_settop(state, top);
        result
    }
}

/// Writes a list view whose one write appended an element (see [`Header::appended`]) as the
/// message's elements followed by it, or returns `None` if that is not what `write_list`
/// would write: if an element of the message is `null` (a hole, or one fewer at the end) or
/// was read as a view (which may have been written into). `write_list`, through the overlay
/// that [`overlay`] then makes, writes those.
///
/// # Safety
///
/// As for [`write`], with `view` the index of the view `parts` reads.
unsafe fn write_appended(
    state: *mut ffi::lua_State,
    parts: &View<'_>,
    view: c_int,
    out: &mut packed::Writer<'_>,
    write: &mut impl FnMut(c_int, &mut packed::Writer<'_>) -> Result<(), String>,
) -> Option<Result<(), String>> {
    let header = parts.header();
    if !header.appended || header.children > 0 {
        return None;
    }
    let count = header.count;
    let written = (|| {
        for i in 0..count {
            if parts.is_null(i).map_err(text)? {
                return Ok(false);
            }
        }
        let open = out.open_list();
        if count > 0 {
            // Walked by `is_null` just above: copied without a second walk.
            out.walked_values(parts.elements(count).map_err(text)?);
        }
        // SAFETY: forwarded from the caller; the value pushed is popped.
        unsafe {
            ffi::lua_getiuservalue(state, view, APPENDED);
            let result = write(ffi::lua_gettop(state), out);
            ffi::lua_settop(state, -2);
            result?;
        }
        out.close(open, count + 1).map_err(text)?;
        Ok(true)
    })();
    match written {
        Ok(true) => Some(Ok(())),
        Ok(false) => None,
        Err(e) => Some(Err(e)),
    }
}

/// A list view of a message that was written into: still a list if its keys are 1..n, else
/// an object (as a table with holes is written).
///
/// # Safety
///
/// As for [`write`], with the view's overlay at `overlay` (the top of the stack), or 0.
unsafe fn write_list(
    state: *mut ffi::lua_State,
    parts: &View<'_>,
    view: c_int,
    overlay: c_int,
    out: &mut packed::Writer<'_>,
    write: &mut impl FnMut(c_int, &mut packed::Writer<'_>) -> Result<(), String>,
) -> Result<(), String> {
    let count = parts.count() as i64;
    // SAFETY: forwarded from the caller.
    unsafe {
        // What the overlay does to the message's elements 1..=count, and what it adds.
        let (mut replaced, mut deleted, mut added_keys, mut appended) = (0i64, 0i64, 0i64, true);
        let (mut lowest, mut highest) = (i64::MAX, 0i64);
        if overlay != 0 {
            ffi::lua_pushnil(state);
        }
        while overlay != 0 && ffi::lua_next(state, overlay) != 0 {
            let mut is_integer = 0;
            let k = if ffi::lua_type(state, -2) == ffi::LUA_TNUMBER {
                ffi::lua_tointegerx(state, -2, &mut is_integer)
            } else {
                0
            };
            let in_message = is_integer != 0 && (1..=count).contains(&k);
            match (in_message, is_deleted(state, -1)) {
                (true, true) => deleted += 1,
                (true, false) => replaced += 1,
                (false, true) => {}
                (false, false) => {
                    added_keys += 1;
                    appended &= is_integer != 0;
                    (lowest, highest) = (lowest.min(k), highest.max(k));
                }
            }
            ffi::lua_settop(state, -2);
        }
        // Element i of the message as the script now has it: Some(true) assigned, Some(false)
        // deleted, None as the message has it. The overlay is looked in only if it touches
        // the message's elements.
        let touched = overlay != 0 && replaced + deleted > 0;
        let assigned = |i: i64| -> Option<bool> {
            if !touched {
                return None;
            }
            let found = ffi::lua_rawgeti(state, overlay, i) != ffi::LUA_TNIL;
            let deleted = is_deleted(state, -1);
            ffi::lua_settop(state, -2);
            found.then_some(!deleted)
        };
        // The last element still there, once the deleted and null ones at the end are off.
        let mut kept = count;
        while kept > 0 {
            let gone = match assigned(kept) {
                Some(there) => !there,
                None => parts.is_null(kept as usize - 1).map_err(text)?,
            };
            if !gone {
                break;
            }
            kept -= 1;
        }
        let mut holes = false;
        for i in 1..kept {
            holes |= match assigned(i) {
                Some(there) => !there,
                None => parts.is_null(i as usize - 1).map_err(text)?,
            };
        }
        // Still a list: no hole below the last element, and the added keys follow on from it.
        let list = !holes && (added_keys == 0 || (appended && lowest == kept + 1 && highest == kept + added_keys));
        if list {
            let open = out.open_list();
            let mut next = 1;
            if !touched && parts.header().children == 0 && kept > 0 {
                // The message's elements 1..=kept, none replaced and none read as a view (that
                // could have been written into): their bytes lie in one run, copied at once.
                // Finding where the run ends walked each element, so it is not walked again.
                out.walked_values(parts.elements(kept as usize).map_err(text)?);
                next = kept + 1;
            }
            for i in next..=kept + added_keys {
                let from_overlay = i > kept || touched;
                element(state, parts, view, if from_overlay { overlay } else { 0 }, i, None, out, write)?;
            }
            return out.close(open, (kept + added_keys) as usize).map_err(text);
        }
        // Else as a table with holes is written: an object, its keys the indexes as text.
        let open = out.open_object();
        let mut written = 0;
        for i in 1..=count {
            if present(state, parts, overlay, i).map_err(text)? {
                written += 1;
                element(state, parts, view, overlay, i, Some(&i.to_string()), out, write)?;
            }
        }
        if overlay != 0 {
            written += added(state, parts, overlay, out, write)?;
        }
        out.close(open, written).map_err(text)
    }
}

/// Writes element `i` (1-based) of a list view, after `key` if given: the overlay's value,
/// or the view made of it, or the message's bytes.
///
/// # Safety
///
/// As for [`write_list`].
#[allow(clippy::too_many_arguments)]
unsafe fn element(
    state: *mut ffi::lua_State,
    parts: &View<'_>,
    view: c_int,
    overlay: c_int,
    i: i64,
    key: Option<&str>,
    out: &mut packed::Writer<'_>,
    write: &mut impl FnMut(c_int, &mut packed::Writer<'_>) -> Result<(), String>,
) -> Result<(), String> {
    if let Some(key) = key {
        out.key(key).map_err(text)?;
    }
    // SAFETY: forwarded from the caller; the pushed value is popped before returning.
    unsafe {
        if overlay != 0 {
            if ffi::lua_rawgeti(state, overlay, i) != ffi::LUA_TNIL {
                let result = write(ffi::lua_gettop(state), out);
                ffi::lua_settop(state, -2);
                return result;
            }
            ffi::lua_settop(state, -2);
        }
        unchanged(state, parts, view, i as usize - 1, out, write)
    }
}

/// Writes element `i` (0-based) as the message has it, or through the view made of it if
/// there is one (something below it may have been written into).
///
/// # Safety
///
/// As for [`write`], with `view` the index of the view `parts` reads.
unsafe fn unchanged(
    state: *mut ffi::lua_State,
    parts: &View<'_>,
    view: c_int,
    i: usize,
    out: &mut packed::Writer<'_>,
    write: &mut impl FnMut(c_int, &mut packed::Writer<'_>) -> Result<(), String>,
) -> Result<(), String> {
    let at = parts.value_at(i).map_err(text)?;
    if parts.header().children > 0
        && matches!(packed::read(parts.message, at).map_err(text)?, Item::List { .. } | Item::Object { .. })
    {
        // SAFETY: forwarded from the caller; the view pushed is popped.
        unsafe {
            if push_made_child(state, view, i) {
                let result = write(ffi::lua_gettop(state), out);
                ffi::lua_settop(state, -2);
                return result;
            }
        }
    }
    out.packed(parts.value_bytes(i).map_err(text)?).map_err(text)
}

/// An object view of a message that was written into: its entries, as the overlay has them,
/// then the added keys.
///
/// # Safety
///
/// As for [`write`], with the view at `view` and its overlay at `overlay` (the top of the
/// stack), or 0.
unsafe fn write_object(
    state: *mut ffi::lua_State,
    parts: &View<'_>,
    view: c_int,
    overlay: c_int,
    out: &mut packed::Writer<'_>,
    write: &mut impl FnMut(c_int, &mut packed::Writer<'_>) -> Result<(), String>,
) -> Result<(), String> {
    let open = out.open_object();
    let mut written = 0;
    for i in 0..parts.count() {
        let key = parts.key(i).map_err(text)?;
        let key_text = packed::utf8(key).ok_or_else(|| "a table key is not UTF-8".to_owned())?;
        // SAFETY: forwarded from the caller; the pushed value is popped on every path.
        unsafe {
            let assigned = overlay != 0 && {
                ffi::lua_pushlstring(state, key.as_ptr().cast(), key.len());
                ffi::lua_rawget(state, overlay) != ffi::LUA_TNIL || {
                    ffi::lua_settop(state, -2);
                    false
                }
            };
            if !assigned {
                if !parts.is_null(i).map_err(text)? {
                    written += 1;
                    out.key(key_text).map_err(text)?;
                    unchanged(state, parts, view, i, out, write)?;
                }
            } else if is_deleted(state, -1) {
                ffi::lua_settop(state, -2);
            } else {
                written += 1;
                let result = out.key(key_text).map_err(text).and_then(|()| write(ffi::lua_gettop(state), out));
                ffi::lua_settop(state, -2);
                result?;
            }
        }
    }
    if overlay != 0 {
        // SAFETY: forwarded from the caller.
        written += unsafe { added(state, parts, overlay, out, write) }?;
    }
    out.close(open, written).map_err(text)
}

/// Writes the overlay's keys that the message has not (and that are not deleted) as object
/// entries; returns how many.
///
/// # Safety
///
/// As for [`write`], with the overlay at `overlay`.
unsafe fn added(
    state: *mut ffi::lua_State,
    parts: &View<'_>,
    overlay: c_int,
    out: &mut packed::Writer<'_>,
    write: &mut impl FnMut(c_int, &mut packed::Writer<'_>) -> Result<(), String>,
) -> Result<usize, String> {
    let mut written = 0;
    // SAFETY: forwarded from the caller; lua_next leaves key and value, both popped on every
    // path that leaves the loop.
    unsafe {
        ffi::lua_pushnil(state);
        while ffi::lua_next(state, overlay) != 0 {
            let skip = match parts.find(state, -2) {
                Ok(found) => found.is_some() || is_deleted(state, -1),
                Err(e) => {
                    ffi::lua_settop(state, -3);
                    return Err(e.to_string());
                }
            };
            if skip {
                ffi::lua_settop(state, -2);
                continue;
            }
            let key = match ffi::lua_type(state, -2) {
                ffi::LUA_TSTRING => {
                    let mut len = 0;
                    let ptr = ffi::lua_tolstring(state, -2, &mut len);
                    packed::utf8(std::slice::from_raw_parts(ptr.cast::<u8>(), len))
                        .ok_or_else(|| "a table key is not UTF-8".to_owned())
                        .and_then(|key| out.key(key).map_err(text))
                }
                ffi::LUA_TNUMBER if ffi::lua_isinteger(state, -2) != 0 => {
                    let n = ffi::lua_tointegerx(state, -2, std::ptr::null_mut());
                    out.key(&n.to_string()).map_err(text)
                }
                _ => Err("a table key is neither a string nor an integer".into()),
            };
            let result = key.and_then(|()| write(ffi::lua_gettop(state), out));
            if let Err(e) = result {
                ffi::lua_settop(state, -3);
                return Err(e);
            }
            written += 1;
            ffi::lua_settop(state, -2);
        }
    }
    Ok(written)
}
