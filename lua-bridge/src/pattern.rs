//! Lua's string patterns (`string.find`, `match`, `gmatch`, `gsub`), matched in Rust under the
//! call's deadline.
//!
//! Lua's own matcher backtracks in C, where no instruction hook reaches: a pattern such as
//! `.-.-.-.-b` over a few thousand bytes runs for hours, and the host's thread with it. The four
//! functions are replaced by Lua ones ([`GLUE`]) that bound the cost of each search from the
//! subject's length and the pattern's quantifiers: a search sure to take no more than a few
//! milliseconds is left to Lua's matcher, at its speed; any other goes to [`Matcher`], which
//! counts its steps and asks the watchdog every [`CHECK_EVERY`] of them whether the call is
//! overdue. A `gsub` replacement function and a `gmatch` loop run as script code either way,
//! under the hook and the memory limit. Long plain searches use a linear-time substring search
//! (Lua's own is quadratic at worst).
//!
//! The semantics are Lua 5.4's, as its manual states them (§6.4.1): classes, sets, the four
//! quantifiers, anchors, captures and position captures, back-references, `%b` and `%f`; the
//! same limits (32 captures, 200 nested matches) and the same error texts. `gmatch` takes `^`
//! as a plain character, as Lua 5.4 does.

use std::sync::Arc;

use mlua::{Lua, LuaString, MultiValue, Table, Value};

use crate::watchdog::Slot;

/// Captures a pattern may have (`LUA_MAXCAPTURES`).
const MAX_CAPTURES: usize = 32;

/// How deep matches may nest (`MAXCCALLS` in Lua's matcher): each quantifier that backtracks
/// and each capture adds a level.
const MAX_DEPTH: usize = 200;

/// Steps between two looks at the deadline: a step is one comparison of a byte, so this is a
/// few hundred microseconds of matching.
const CHECK_EVERY: u32 = 1 << 16;

/// The bound on Lua's own matcher's steps under which a search is left to it (see `quick` in
/// [`GLUE`]): the bound is loose, and Lua's matcher runs the worst patterns near it in a few
/// milliseconds (`a*a*a*b` over 80 bytes: bound 3e8, 10 ms), so a search that could take
/// longer than that goes to [`Matcher`], which the deadline stops; the rest keep Lua's speed.
const QUICK_BUDGET: f64 = 1e8;

/// A capture's length, or what it is while it has none.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Span {
    /// Opened, not closed yet.
    Open,
    /// `()`: the position, not a substring.
    Position,
    Closed(usize),
}

/// Why a match stopped without an answer.
#[derive(Debug)]
enum Stop {
    /// The pattern is malformed (Lua's text).
    Malformed(String),
    /// The call is past its deadline.
    Overdue,
}

fn malformed(text: impl Into<String>) -> Stop {
    Stop::Malformed(text.into())
}

/// One capture as the script receives it.
enum Capture<'a> {
    Text(&'a [u8]),
    /// A position capture: 1-based.
    Position(usize),
    /// Opened and never closed: an error where the capture is used (`gsub` may not use it).
    Unfinished,
}

/// Matches one pattern against one subject.
struct Matcher<'a> {
    subject: &'a [u8],
    pattern: &'a [u8],
    captures: [(usize, Span); MAX_CAPTURES],
    level: usize,
    depth: usize,
    steps: u32,
    overdue: &'a dyn Fn() -> bool,
}

/// What a search found: where the match starts and ends (0-based, end exclusive).
struct Found {
    start: usize,
    end: usize,
}

impl<'a> Matcher<'a> {
    fn new(subject: &'a [u8], pattern: &'a [u8], overdue: &'a dyn Fn() -> bool) -> Self {
        Matcher {
            subject,
            pattern,
            captures: [(0, Span::Open); MAX_CAPTURES],
            level: 0,
            depth: MAX_DEPTH,
            steps: 0,
            overdue,
        }
    }

    /// The pattern's byte at `at`, or 0 past its end (as C's terminating NUL reads; no byte
    /// that means something in a pattern is 0).
    fn at(&self, at: usize) -> u8 {
        self.pattern.get(at).copied().unwrap_or(0)
    }

    /// Counts `n` steps, and stops the match if the call is overdue.
    fn tick(&mut self, n: usize) -> Result<(), Stop> {
        let before = self.steps;
        self.steps = self.steps.wrapping_add(n.min(u32::MAX as usize) as u32);
        if (before / CHECK_EVERY != self.steps / CHECK_EVERY || self.steps < before) && (self.overdue)() {
            return Err(Stop::Overdue);
        }
        Ok(())
    }

    /// The first match at or after `start` (only at `start` if `anchored`) whose end is not
    /// `last` (so that an empty match right after the previous one is not found again).
    fn search(
        &mut self,
        start: usize,
        pattern_start: usize,
        anchored: bool,
        last: Option<usize>,
    ) -> Result<Option<Found>, Stop> {
        let mut s = start;
        loop {
            self.level = 0;
            self.depth = MAX_DEPTH;
            if let Some(end) = self.descend(s, pattern_start)?
                && Some(end) != last
            {
                return Ok(Some(Found { start: s, end }));
            }
            s += 1;
            if anchored || s > self.subject.len() {
                return Ok(None);
            }
        }
    }

    /// Capture `i` of the match just found (the whole match for 0 when there are none).
    fn capture(&self, i: usize, found: &Found) -> Result<Capture<'a>, Stop> {
        if i >= self.level {
            if i != 0 {
                return Err(malformed(format!("invalid capture index %{}", i + 1)));
            }
            return Ok(Capture::Text(&self.subject[found.start..found.end]));
        }
        match self.captures[i] {
            (_, Span::Open) => Ok(Capture::Unfinished),
            (init, Span::Position) => Ok(Capture::Position(init + 1)),
            (init, Span::Closed(len)) => Ok(Capture::Text(&self.subject[init..init + len])),
        }
    }

    /// A nested match: `matches` one level deeper.
    fn descend(&mut self, s: usize, p: usize) -> Result<Option<usize>, Stop> {
        if self.depth == 0 {
            return Err(malformed("pattern too complex"));
        }
        self.depth -= 1;
        let result = self.matches(s, p);
        self.depth += 1;
        result
    }

    /// Matches the pattern from `p` against the subject from `s`: where the match ends.
    fn matches(&mut self, mut s: usize, mut p: usize) -> Result<Option<usize>, Stop> {
        loop {
            if p == self.pattern.len() {
                return Ok(Some(s));
            }
            self.tick(1)?;
            match (self.pattern[p], self.at(p + 1)) {
                (b'(', b')') => return self.open(s, p + 2, Span::Position),
                (b'(', _) => return self.open(s, p + 1, Span::Open),
                (b')', _) => return self.close(s, p + 1),
                (b'$', _) if p + 1 == self.pattern.len() => return Ok((s == self.subject.len()).then_some(s)),
                (b'%', b'b') => match self.balanced(s, p + 2)? {
                    Some(end) => (s, p) = (end, p + 4),
                    None => return Ok(None),
                },
                (b'%', b'f') => {
                    p += 2;
                    if self.at(p) != b'[' {
                        return Err(malformed("missing '[' after '%f' in pattern"));
                    }
                    let end = self.class_end(p)?;
                    let before = if s == 0 { 0 } else { self.subject[s - 1] };
                    let here = self.subject.get(s).copied().unwrap_or(0);
                    if self.in_set(before, p, end - 1) || !self.in_set(here, p, end - 1) {
                        return Ok(None);
                    }
                    p = end;
                }
                (b'%', digit @ b'0'..=b'9') => match self.back_reference(s, digit)? {
                    Some(end) => (s, p) = (end, p + 2),
                    None => return Ok(None),
                },
                _ => {
                    let end = self.class_end(p)?;
                    let quantifier = self.at(end);
                    if !self.single(s, p, end)? {
                        if matches!(quantifier, b'*' | b'?' | b'-') {
                            p = end + 1;
                            continue;
                        }
                        return Ok(None);
                    }
                    match quantifier {
                        b'?' => {
                            if let Some(found) = self.descend(s + 1, end + 1)? {
                                return Ok(Some(found));
                            }
                            p = end + 1;
                        }
                        b'+' => return self.longest(s + 1, p, end),
                        b'*' => return self.longest(s, p, end),
                        b'-' => return self.shortest(s, p, end),
                        _ => (s, p) = (s + 1, end),
                    }
                }
            }
        }
    }

    /// Where the single-character class at `p` ends (a quantifier may follow there).
    fn class_end(&self, p: usize) -> Result<usize, Stop> {
        let mut p = p;
        let first = self.pattern[p];
        p += 1;
        match first {
            b'%' => {
                if p >= self.pattern.len() {
                    return Err(malformed("malformed pattern (ends with '%')"));
                }
                Ok(p + 1)
            }
            b'[' => {
                if self.at(p) == b'^' {
                    p += 1;
                }
                // The first character of a set is taken as it is, so `[]]` and `[^]]` hold `]`.
                loop {
                    if p >= self.pattern.len() {
                        return Err(malformed("malformed pattern (missing ']')"));
                    }
                    let c = self.pattern[p];
                    p += 1;
                    if c == b'%' && p < self.pattern.len() {
                        p += 1;
                    }
                    if self.at(p) == b']' {
                        return Ok(p + 1);
                    }
                }
            }
            _ => Ok(p),
        }
    }

    /// Whether the subject's byte at `s` is in the class from `p` to `end`.
    fn single(&mut self, s: usize, p: usize, end: usize) -> Result<bool, Stop> {
        self.tick(1)?;
        let Some(&c) = self.subject.get(s) else { return Ok(false) };
        Ok(match self.pattern[p] {
            b'.' => true,
            b'%' => in_class(c, self.pattern[p + 1]),
            b'[' => self.in_set(c, p, end - 1),
            literal => literal == c,
        })
    }

    /// Whether `c` is in the set `[...]` that opens at `open` and closes at `close`.
    fn in_set(&self, c: u8, open: usize, close: usize) -> bool {
        let mut p = open + 1;
        let negated = self.at(p) == b'^';
        if negated {
            p += 1;
        }
        while p < close {
            let here = self.pattern[p];
            if here == b'%' {
                p += 1;
                if in_class(c, self.pattern[p]) {
                    return !negated;
                }
            } else if self.at(p + 1) == b'-' && p + 2 < close {
                if (here..=self.pattern[p + 2]).contains(&c) {
                    return !negated;
                }
                p += 2;
            } else if here == c {
                return !negated;
            }
            p += 1;
        }
        negated
    }

    /// `x*` or `x+` (from `s` already past the one `+` needs): as many as match, then fewer.
    fn longest(&mut self, s: usize, p: usize, end: usize) -> Result<Option<usize>, Stop> {
        let mut n = 0;
        while self.single(s + n, p, end)? {
            n += 1;
        }
        loop {
            if let Some(found) = self.descend(s + n, end + 1)? {
                return Ok(Some(found));
            }
            if n == 0 {
                return Ok(None);
            }
            n -= 1;
        }
    }

    /// `x-`: as few as will do.
    fn shortest(&mut self, mut s: usize, p: usize, end: usize) -> Result<Option<usize>, Stop> {
        loop {
            if let Some(found) = self.descend(s, end + 1)? {
                return Ok(Some(found));
            }
            if !self.single(s, p, end)? {
                return Ok(None);
            }
            s += 1;
        }
    }

    fn open(&mut self, s: usize, p: usize, span: Span) -> Result<Option<usize>, Stop> {
        if self.level >= MAX_CAPTURES {
            return Err(malformed("too many captures"));
        }
        self.captures[self.level] = (s, span);
        self.level += 1;
        let found = self.descend(s, p)?;
        if found.is_none() {
            self.level -= 1;
        }
        Ok(found)
    }

    fn close(&mut self, s: usize, p: usize) -> Result<Option<usize>, Stop> {
        let Some(l) = (0..self.level).rev().find(|&l| self.captures[l].1 == Span::Open) else {
            return Err(malformed("invalid pattern capture"));
        };
        self.captures[l].1 = Span::Closed(s - self.captures[l].0);
        let found = self.descend(s, p)?;
        if found.is_none() {
            self.captures[l].1 = Span::Open;
        }
        Ok(found)
    }

    /// `%bxy` with `x` at `p`: a run from `x` to its balancing `y`.
    fn balanced(&mut self, s: usize, p: usize) -> Result<Option<usize>, Stop> {
        if p + 1 >= self.pattern.len() {
            return Err(malformed("malformed pattern (missing arguments to '%b')"));
        }
        let (open, close) = (self.pattern[p], self.pattern[p + 1]);
        if self.subject.get(s) != Some(&open) {
            return Ok(None);
        }
        let mut depth = 1;
        for at in s + 1..self.subject.len() {
            self.tick(1)?;
            let c = self.subject[at];
            if c == close {
                depth -= 1;
                if depth == 0 {
                    return Ok(Some(at + 1));
                }
            } else if c == open {
                depth += 1;
            }
        }
        Ok(None)
    }

    /// `%1` to `%9`: the text capture `digit` matched, again.
    fn back_reference(&mut self, s: usize, digit: u8) -> Result<Option<usize>, Stop> {
        let index = usize::from(digit - b'0');
        let invalid = || malformed(format!("invalid capture index %{index}"));
        if index == 0 || index > self.level {
            return Err(invalid());
        }
        let (init, span) = self.captures[index - 1];
        let len = match span {
            Span::Open => return Err(invalid()),
            Span::Position => return Ok(None),
            Span::Closed(len) => len,
        };
        self.tick(len)?;
        let same =
            self.subject.len().saturating_sub(s) >= len && self.subject[init..init + len] == self.subject[s..s + len];
        Ok(same.then_some(s + len))
    }
}

/// Whether `c` is in the class `%class` (C's `<ctype.h>` classes in the C locale, and `%z`; an
/// upper-case letter is the complement; any other character stands for itself).
fn in_class(c: u8, class: u8) -> bool {
    let inside = match class.to_ascii_lowercase() {
        b'a' => c.is_ascii_alphabetic(),
        b'c' => c.is_ascii_control(),
        b'd' => c.is_ascii_digit(),
        b'g' => c.is_ascii_graphic(),
        b'l' => c.is_ascii_lowercase(),
        b'p' => c.is_ascii_punctuation(),
        // C's isspace, which counts the vertical tab (Rust's is_ascii_whitespace does not).
        b's' => matches!(c, b' ' | b'\t'..=b'\r'),
        b'u' => c.is_ascii_uppercase(),
        b'w' => c.is_ascii_alphanumeric(),
        b'x' => c.is_ascii_hexdigit(),
        // Deprecated in Lua 5.2 (a pattern may hold `\0` itself now), still understood.
        b'z' => c == 0,
        _ => return class == c,
    };
    inside != class.is_ascii_uppercase()
}

/// What a search is for: how it matches and what it answers.
const FIND: u8 = 0;
/// `find` with `plain` (or a pattern with no special character): a substring search.
const PLAIN: u8 = 1;
/// `match` and `gmatch`: the whole match stands for the captures if there are none.
const MATCH: u8 = 2;
/// `gsub`: as `MATCH`, and an unfinished capture comes as `false` (an error only where the
/// replacement uses it, as in Lua).
const GSUB: u8 = 3;

/// The four functions over the primitive `search(s, p, start, anchor, last, mode)`: `start`
/// is 0-based, `last` the end of the previous match (or -1), `mode` one of [`FIND`],
/// [`PLAIN`], [`MATCH`], [`GSUB`]. It answers nil (no match), or `false, message`, or the
/// match's 1-based start and end, its number of captures, and its captures. The functions
/// raise errors as strings, as Lua's own do, prefixed with the script's line (`position`).
const GLUE: &str = r#"
local c_find, c_match, c_gmatch, c_gsub, search, position, sub, concat, pack, unpack, FIND, PLAIN, MATCH, GSUB, BUDGET = ...
-- Taken now: a script may replace what the libraries hold.
local type, tostring, tonumber, error, pcall, tointeger = type, tostring, tonumber, error, pcall, math.tointeger
local format = string.format

-- Raises `message` at the innermost line of the script's own code, as a string.
local function raise(message)
  error(position() .. message, 0)
end

local function text(v, n, name)
  local kind = type(v)
  if kind == "string" then return v end
  if kind == "number" then return tostring(v) end
  raise(format("bad argument #%d to '%s' (string expected, got %s)", n, name, kind))
end

local function integer(v, n, name, default)
  if v == nil then return default end
  local i = tointeger(v)
  if i == nil then
    local why = type(v) == "number" and "number has no integer representation"
      or ("number expected, got " .. type(v))
    raise(format("bad argument #%d to '%s' (%s)", n, name, why))
  end
  return i
end

-- Where a search starts (1-based), as Lua reads `init`.
local function start_at(init, len, name)
  local i = integer(init, 3, name, 1)
  if i > 0 then return i elseif i == 0 or i < -len then return 1 else return len + i + 1 end
end

-- A search's answer as `find` gives it: start, end, captures.
local function found(a, e, n, ...)
  if a == false then raise(e) end
  if a == nil then return nil end
  return a, e, ...
end

-- A search's answer as `match` gives it: the captures (or the whole match).
local function matched(a, e, n, ...)
  if a == false then raise(e) end
  if a == nil then return nil end
  return ...
end

-- What Lua's own function, called through pcall, answered: its values, or its error raised
-- again at the script's line (called from here, Lua's error would name no line, or this
-- glue's). An error that already names a line (one a `gsub` replacement function raised, or
-- the deadline's) or is not text goes on unchanged.
local function relay(ok, ...)
  if ok then return ... end
  local message = ...
  if type(message) == "string" and not c_find(message, "^[^:]+:%d+: ") then raise(message) end
  error(message, 0)
end

-- What makes a pattern more than plain text to `find` (Lua's SPECIALS).
local SPECIALS = "[%^%$%*%+%?%.%(%[%%%-]"

-- What bounds a pattern's cost: its quantifiers (each may try every position left), its
-- `%b` and back-references (each may scan the rest), whether it is anchored, whether it is
-- plain text. Kept for the patterns a script uses again (most are literals); the cache is
-- emptied when full, and long patterns are not kept.
local shapes, kept = {}, 0
local function shape(p)
  local known = shapes[p]
  if known then return known end
  local _, quantifiers = c_gsub(p, "[%*%+%-%?]", "")
  local _, scans = c_gsub(p, "%%[b1-9]", "")
  known = { quantifiers = quantifiers, scans = scans, plain = c_find(p, SPECIALS) == nil,
    anchored = sub(p, 1, 1) == "^" }
  if #p <= 256 then
    if kept == 256 then shapes, kept = {}, 0 end
    shapes[p], kept = known, kept + 1
  end
  return known
end

-- Whether Lua's own matcher is sure to be quick with this subject and pattern: a bound on its
-- steps (every start, every choice of every quantifier) within the budget, which it runs
-- in a few milliseconds at worst. Anything else goes to the matcher that watches the deadline.
local function quick(s, p, known, anchored)
  local n = #s + 1
  return (anchored and 1 or n) * n ^ known.quantifiers * (#p + known.scans * n) <= BUDGET
end

local function find(s, p, init, plain)
  s, p = text(s, 1, "find"), text(p, 2, "find")
  local start = start_at(init, #s, "find")
  if start > #s + 1 then return nil end
  local known = shape(p)
  if plain or known.plain then
    -- Lua's substring search compares up to the pattern's length at every position.
    if #p * (#s + 2 - start) <= BUDGET then return c_find(s, p, start, true) end
    return found(search(s, p, start - 1, true, -1, PLAIN))
  end
  if quick(s, p, known, known.anchored) then return relay(pcall(c_find, s, p, start)) end
  return found(search(s, p, start - 1, true, -1, FIND))
end

local function match(s, p, init)
  s, p = text(s, 1, "match"), text(p, 2, "match")
  local start = start_at(init, #s, "match")
  if start > #s + 1 then return nil end
  local known = shape(p)
  if quick(s, p, known, known.anchored) then return relay(pcall(c_match, s, p, start)) end
  return matched(search(s, p, start - 1, true, -1, MATCH))
end

local function gmatch(s, p, init)
  s, p = text(s, 1, "gmatch"), text(p, 2, "gmatch")
  local len = #s
  local src, last = start_at(init, len, "gmatch") - 1, -1
  -- `^` is no anchor to gmatch.
  if quick(s, p, shape(p), false) then
    local next_match = c_gmatch(s, p, src + 1)
    return function() return relay(pcall(next_match)) end
  end
  if src > len then src = len + 1 end
  local function step(a, e, n, ...)
    if a == false then raise(e) end
    if a == nil then src = len + 1 return nil end
    src, last = e, e
    return ...
  end
  return function()
    if src > len then return nil end
    return step(search(s, p, src, false, last, MATCH))
  end
end

local function expand(repl, r, whole)
  return (c_gsub(repl, "%%(.?)", function(d)
    if d == "%" then return "%" end
    if d == "0" then return whole end
    local k = tointeger(tonumber(d))
    if k == nil then raise("invalid use of '%' in replacement string") end
    if r[3] == 0 and k == 1 then return whole end
    if k > r[3] then raise(format("invalid capture index %%%d", k)) end
    if r[3 + k] == false then raise("unfinished capture") end
    return tostring(r[3 + k])
  end))
end

local function gsub(s, p, repl, n)
  s, p = text(s, 1, "gsub"), text(p, 2, "gsub")
  local kind = type(repl)
  if kind == "number" then repl, kind = tostring(repl), "string" end
  if kind ~= "string" and kind ~= "table" and kind ~= "function" then
    raise(format("bad argument #3 to 'gsub' (string/function/table expected, got %s)", kind))
  end
  local len = #s
  local max = integer(n, 4, "gsub", len + 1)
  local known = shape(p)
  if quick(s, p, known, known.anchored) then return relay(pcall(c_gsub, s, p, repl, max)) end
  local escapes = kind == "string" and c_find(repl, "%", 1, true) ~= nil
  local anchored = known.anchored
  local parts, count, src, last = {}, 0, 0, -1
  while count < max do
    local r = pack(search(s, p, src, true, last, GSUB))
    if r[1] == false then raise(r[2]) end
    if r[1] == nil then break end
    local a, e = r[1], r[2]
    parts[#parts + 1] = sub(s, src + 1, a - 1)
    local whole = sub(s, a, e)
    local value
    if kind == "string" then
      value = escapes and expand(repl, r, whole) or repl
    else
      for i = 4, kind == "table" and 4 or r.n do
        if r[i] == false then raise("unfinished capture") end
      end
      if kind == "table" then value = repl[r[4]] else value = repl(unpack(r, 4, r.n)) end
      if not value then
        value = whole
      elseif type(value) ~= "string" and type(value) ~= "number" then
        raise("invalid replacement value (a " .. type(value) .. ")")
      end
    end
    parts[#parts + 1] = value
    count = count + 1
    src, last = e, e
    if anchored then break end
  end
  parts[#parts + 1] = sub(s, src + 1)
  return concat(parts), count
end

return find, match, gmatch, gsub
"#;

/// Replaces `string.find`, `match`, `gmatch` and `gsub` (in the state's `string` table, which
/// is also the strings' metatable's `__index`) with the ones of this module.
pub fn install(lua: &Lua, slot: &Arc<Slot>) -> mlua::Result<()> {
    install_with_budget(lua, slot, QUICK_BUDGET)
}

/// [`install`], with searches under `budget` left to Lua's matcher (0: none, for the tests).
fn install_with_budget(lua: &Lua, slot: &Arc<Slot>, budget: f64) -> mlua::Result<()> {
    let string: Table = lua.globals().get("string")?;
    let table: Table = lua.globals().get("table")?;
    let slot = slot.clone();
    type Args = (LuaString, LuaString, i64, bool, i64, u8);
    let search = lua.create_function(move |lua, (subject, pattern, start, anchor, last, mode): Args| {
        let (plain, whole, lenient) = match mode {
            FIND => (false, false, false),
            PLAIN => (true, false, false),
            MATCH => (false, true, false),
            _ => (false, true, true),
        };
        let (subject, pattern) = (subject.as_bytes(), pattern.as_bytes());
        let overdue = || slot.overdue();
        let start = usize::try_from(start).unwrap_or(0).min(subject.len());
        let last = usize::try_from(last).ok();
        let mut answer = Vec::new();
        if plain {
            let found = subject.get(start..).and_then(|rest| memchr::memmem::find(rest, &pattern));
            if let Some(at) = found {
                let at = start + at;
                answer.extend([Value::Integer(at as i64 + 1), Value::Integer((at + pattern.len()) as i64)]);
                answer.push(Value::Integer(0));
            }
            return Ok(MultiValue::from_vec(if answer.is_empty() { vec![Value::Nil] } else { answer }));
        }
        let anchored = anchor && pattern.first() == Some(&b'^');
        let mut matcher = Matcher::new(&subject, &pattern, &overdue);
        let failed = |stop: Stop| -> mlua::Result<MultiValue> {
            let text = match stop {
                Stop::Malformed(text) => text,
                Stop::Overdue => "timeout: the call ran longer than its timeout_ms (in a pattern match)".to_owned(),
            };
            Ok(MultiValue::from_vec(vec![Value::Boolean(false), Value::String(lua.create_string(text)?)]))
        };
        let found = match matcher.search(start, usize::from(anchored), anchored, last) {
            Ok(Some(found)) => found,
            Ok(None) => return Ok(MultiValue::from_vec(vec![Value::Nil])),
            Err(stop) => return failed(stop),
        };
        answer.extend([Value::Integer(found.start as i64 + 1), Value::Integer(found.end as i64)]);
        answer.push(Value::Integer(matcher.level as i64));
        let count = if matcher.level == 0 && whole { 1 } else { matcher.level };
        for i in 0..count {
            match matcher.capture(i, &found) {
                Ok(Capture::Text(bytes)) => answer.push(Value::String(lua.create_string(bytes)?)),
                Ok(Capture::Position(at)) => answer.push(Value::Integer(at as i64)),
                Ok(Capture::Unfinished) if lenient => answer.push(Value::Boolean(false)),
                Ok(Capture::Unfinished) => return failed(malformed("unfinished capture")),
                Err(stop) => return failed(stop),
            }
        }
        Ok(MultiValue::from_vec(answer))
    })?;
    let position = lua.create_function(|lua, ()| Ok(crate::script_position(lua)))?;
    let (sub, concat, pack, unpack): (mlua::Function, mlua::Function, mlua::Function, mlua::Function) =
        (string.get("sub")?, table.get("concat")?, table.get("pack")?, table.get("unpack")?);
    let replaced = [(&string, "find"), (&string, "match"), (&string, "gmatch"), (&string, "gsub")];
    crate::sandbox::replace_functions(
        lua,
        "patterns",
        GLUE,
        &replaced,
        (search, position, sub, concat, pack, unpack, (FIND, PLAIN, MATCH, GSUB, budget)),
    )
}

#[cfg(test)]
mod tests {
    use mlua::Lua;

    use crate::watchdog::Slot;

    /// Every case through Lua's own functions (kept aside before these are installed) and
    /// through this module's: the same values, or errors with the same text (Lua's own carry
    /// no position, these the script's line).
    const COMPARE: &str = r#"
local c = ...
local subjects = { "", "hello world", "  key = value  ", "a,b,,c", "THE (quick) fox", "f(a(b)c)d",
  "x = [[nested [brackets] ]]", "abc123def456", "a\0b\0c", "\195\161\195\169 utf8", "aaa",
  "hello hello", "THE END.", "one\ttwo\nthree\vfour", "[]]^-%$" }
local patterns = { "l", "o w", "^h", "d$", "^$", "$", "x*", "a-", ".-", "(%w+)", "(%w+) = (%w+)",
  "%s*(.-)%s*$", "^%s*(.-)%s*$", "()ll()", "%d+", "%a+", "[%a_][%w_]*", "[^,]*", "[a-c]+", "[]]",
  "[^]]+", "%b()", "%b[]", "%f[%w]%w+", "%f[%a]", "%f[%z]", "(h)(e)(l)(l)(o)", "(l+)%1", "(o).-%1",
  "%.", "%%", "[%]]", "[a-]", "[-a]", "%u", "%U+", "%c", "%p+", "%x+", "%g+", "%S+", "%W", "a?b",
  "^(%a+)", ".+$", "(()a)", "\0", "%z", "[%z]", "a\0b", "(a*(.)%w(%s*))", "[%d-z]+", "[z-a]", "^",
  "^^", "$$", "[^%s]+$", "()", "(.)%1", "%bxy", "%b((", "[", "[a", "%", "(", ")", "%b", "%f",
  "%fa", "(()", "%1", "(a)%2", "a)", "%0", "[%", "(a)(b", string.rep("()", 33), string.rep("()", 32) }
local inits = { false, 2, 0, -3, 100, -100 }
local repls = { "X", "%0%0", "<%1>", "%%", "%2", "%", "%a", "[%1|%0]", 7, { hello = "HI", l = false, o = 3 },
  function(a, b) return b end, function(a) return a .. "!" end, function() return {} end }

-- Lua's own carry no position, and name the function '?' when it is called through pcall.
local function strip(message)
  message = c.gsub(tostring(message), "^[^:]*:%d+: ", "")
  return (c.gsub(message, "^(bad argument #%d to )'[^']*'", "%1'?'"))
end

local function same(what, ...)
  local a = table.pack(pcall(c[what], ...))
  local b = table.pack(pcall(string[what], ...))
  if a[1] ~= b[1] then
    return false, ("ok %s vs %s: %s / %s"):format(tostring(a[1]), tostring(b[1]), tostring(a[2]), tostring(b[2]))
  end
  if not a[1] then
    if strip(a[2]) ~= strip(b[2]) then return false, ("errors: %q vs %q"):format(tostring(a[2]), tostring(b[2])) end
    return true
  end
  if a.n ~= b.n then return false, ("%d values vs %d"):format(a.n, b.n) end
  for i = 2, a.n do
    if a[i] ~= b[i] or math.type(a[i]) ~= math.type(b[i]) then
      return false, ("value %d: %s vs %s"):format(i - 1, tostring(a[i]), tostring(b[i]))
    end
  end
  return true
end

local function iterate(gmatch)
  return function(s, p, init)
    local out = {}
    for a, b, x in gmatch(s, p, init) do out[#out + 1] = tostring(a) .. "|" .. tostring(b) .. "|" .. tostring(x)
      if #out > 100 then break end
    end
    return table.concat(out, ",")
  end
end
c.iterate, string.iterate = iterate(c.gmatch), iterate(string.gmatch)

local failures, cases = {}, 0
local function check(what, ...)
  cases = cases + 1
  local ok, why = same(what, ...)
  if not ok then
    local args = table.pack(...)
    for i = 1, args.n do args[i] = ("%q"):format(type(args[i]) == "string" and args[i] or tostring(args[i])) end
    failures[#failures + 1] = what .. "(" .. table.concat(args, ", ", 1, args.n) .. "): " .. why
  end
end
for _, s in ipairs(subjects) do
  for _, p in ipairs(patterns) do
    for _, init in ipairs(inits) do
      local init = init or nil
      check("find", s, p, init)
      check("match", s, p, init)
    end
    check("find", s, p, nil, true)
    check("find", s, p, -4, true)
    check("iterate", s, p)
    check("iterate", s, p, 3)
    for _, r in ipairs(repls) do
      check("gsub", s, p, r)
    end
    check("gsub", s, p, "<%0>", 1)
  end
end
-- Deeper than 200 nested matches.
check("match", string.rep("a", 250), string.rep("a?", 250))
check("gsub", "hello", "l", "L", 0)
check("find", nil, "a")
check("find", "a", {})
check("find", 12345, 3)
check("match", "x", "x", "y")
check("match", "x", "x", 1.5)
check("gsub", "x", "x", nil)
check("gsub", "x", "x", true)
check("gsub", "abc", "", "-")
check("gsub", "abc", "b*", "-")
check("gsub", "hello world", "o", "0", -1)
return cases, table.concat(failures, "\n", 1, math.min(#failures, 40)), #failures
"#;

    /// Every search through the deadline-checked matcher, then with the quick ones left to
    /// Lua's (as scripts run).
    #[test]
    fn patterns_match_as_lua_s_own_functions_do() {
        for budget in [0.0, super::QUICK_BUDGET] {
            compare(budget);
        }
    }

    fn compare(budget: f64) {
        let lua = Lua::new();
        let state = lua.exec_raw_lua(|raw| raw.state());
        let slot = Slot::new(state);
        let original = lua.create_table().unwrap();
        let string: mlua::Table = lua.globals().get("string").unwrap();
        for name in ["find", "match", "gmatch", "gsub"] {
            original.set(name, string.get::<mlua::Function>(name).unwrap()).unwrap();
        }
        super::install_with_budget(&lua, &slot, budget).unwrap();
        let (cases, first, failures): (usize, mlua::LuaString, usize) =
            lua.load(COMPARE).set_name("compare").call(original).unwrap();
        assert!(cases > 10_000, "only {cases} cases ran");
        assert_eq!(
            failures,
            0,
            "budget {budget}: {failures} of {cases} differ, the first:\n{}",
            first.to_string_lossy()
        );
    }
}
