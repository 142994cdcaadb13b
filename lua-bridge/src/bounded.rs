//! The standard library's C loops whose length a script chooses, brought under the deadline.
//!
//! The instruction hook that stops an overdue call reaches Lua code only. Most of the C
//! library does work in proportion to memory it must allocate, which the memory limit bounds;
//! three loops are not so bounded, and ran for days from one line, and one sort is bounded
//! only loosely:
//!
//! - `string.rep("", 1e15)` copies nothing 1e15 times;
//! - `table.move(t, 1, 1e15, 2)` reads and writes absent elements 1e15 times;
//! - `table.insert(t, 1, v)` and `table.remove(t, 1)` shift `#t` elements, and a table with a
//!   few dozen entries (`t[1], t[2], t[4], ... t[2^48]`) or a `__len` metamethod can have a
//!   length of 2^48;
//! - `table.sort(t)` compares in C, n log n times: the two million numbers the default memory
//!   limit holds took 0.7 s.
//!
//! [`GLUE`] keeps Lua's own function where the loop is short ([`SHORT`] steps: a few
//! milliseconds) and runs a long one as Lua code, element by element as the C loop goes (the
//! same reads and writes, metamethods included, in the same order), where the hook stops it.
//! A long sort ([`SHORT_SORT`] elements, or a length only a metamethod knows) gets a
//! comparator, `watchdog::less_than`: the same comparisons as Lua's, in a C function that
//! stops the call once it is overdue (about twice the time of Lua's own).

use mlua::{Lua, Table};

/// The longest loop left to Lua's C functions.
const SHORT: i64 = 1 << 20;

/// The longest list Lua's C sort is left to sort without a comparator (a few milliseconds).
const SHORT_SORT: i64 = 1 << 15;

/// `string.rep`, `table.move`, `table.insert` and `table.remove`, over Lua's own (the same
/// argument checks and error texts: they run first, in Lua's function, where a loop is short
/// or the arguments are wrong).
const GLUE: &str = r##"
local c_rep, c_move, c_insert, c_remove, c_sort, SHORT, SHORT_SORT, less_than = ...
-- Taken now: a script may replace what the libraries hold.
local select, getmetatable, type, error, tointeger = select, getmetatable, type, error, math.tointeger
local maxinteger = math.maxinteger

local function rep(s, n, sep)
  -- Nothing to copy however many times: Lua's answer is "", after a loop of n steps.
  if (type(s) == "string" and #s == 0) and (sep == nil or sep == "") and tointeger(n) then
    return ""
  end
  return c_rep(s, n, sep)
end

local function move(a1, f, e, t, a2)
  local ff, ee, tt = tointeger(f), tointeger(e), tointeger(t)
  -- Wrong arguments, and short moves, are Lua's.
  if not (ff and ee and tt) or ee - ff < SHORT then return c_move(a1, f, e, t, a2) end
  -- Lua's checks of the tables, on a move it would make of no element.
  c_move(a1, ff, ff - 1, tt, a2)
  if ff <= 0 and ee >= maxinteger + ff then error("bad argument #3 to 'move' (too many elements to move)", 2) end
  local n = ee - ff
  if tt > maxinteger - n then error("bad argument #4 to 'move' (destination wrap around)", 2) end
  local to = a2 == nil and a1 or a2
  if tt > ee or tt <= ff or (a2 ~= nil and a1 ~= a2) then
    for i = 0, n do to[tt + i] = a1[ff + i] end
  else
    for i = n, 0, -1 do to[tt + i] = a1[ff + i] end
  end
  return to
end

-- Whether Lua's function is to be left the call: unless `t` is a table or a userdata (a view)
-- whose elements from `pos` on may be many, it is (a table with no metatable has its length
-- taken twice then, which has no side effect to repeat).
local function lua_s(t, pos)
  local kind = type(t)
  if kind ~= "table" and kind ~= "userdata" then return true end
  pos = tointeger(pos)
  return pos == nil or (kind == "table" and getmetatable(t) == nil and #t - pos < SHORT)
end

local function insert(t, ...)
  if select("#", ...) ~= 2 or lua_s(t, (...)) then return c_insert(t, ...) end
  local pos, value = ...
  pos = tointeger(pos)
  local e = tointeger(#t)
  if e == nil or pos < 1 or pos > e + 1 then return c_insert(t, ...) end
  e = e + 1
  for i = e, pos + 1, -1 do t[i] = t[i - 1] end
  t[pos] = value
end

local function remove(t, ...)
  if select("#", ...) == 0 or lua_s(t, (...)) then return c_remove(t, ...) end
  local size = tointeger(#t)
  local pos = tointeger((...))
  if size == nil or (pos ~= size and (pos < 1 or pos > size + 1)) then return c_remove(t, ...) end
  local result = t[pos]
  while pos < size do
    t[pos] = t[pos + 1]
    pos = pos + 1
  end
  t[pos] = nil
  return result
end

-- Without a comparator Lua's sort compares in C, out of the hook's reach: a long list (or one
-- whose length only its metamethods know) is sorted with `less_than`, a C function making the
-- same comparisons that stops once the call is overdue.
local function sort(t, comp)
  if comp == nil then
    local kind = type(t)
    if kind == "userdata" or (kind == "table" and (getmetatable(t) ~= nil or #t >= SHORT_SORT)) then
      return c_sort(t, less_than)
    end
  end
  return c_sort(t, comp)
end

return rep, move, insert, remove, sort
"##;

/// Replaces `string.rep`, `table.move`, `table.insert`, `table.remove` and `table.sort` in
/// the state's libraries with the bounded ones of [`GLUE`].
pub fn install(lua: &Lua) -> mlua::Result<()> {
    install_with_short(lua, SHORT, SHORT_SORT)
}

/// [`install`], with loops of fewer than `short` steps, and sorts of fewer than `short_sort`
/// elements, left to Lua's C functions (0: none, for the tests).
fn install_with_short(lua: &Lua, short: i64, short_sort: i64) -> mlua::Result<()> {
    let string: Table = lua.globals().get("string")?;
    let table: Table = lua.globals().get("table")?;
    let replaced = [(&string, "rep"), (&table, "move"), (&table, "insert"), (&table, "remove"), (&table, "sort")];
    let less_than = crate::watchdog::less_than_function(lua)?;
    crate::sandbox::replace_functions(lua, "bounded", GLUE, &replaced, (short, short_sort, less_than))
}

#[cfg(test)]
mod tests {
    use mlua::Lua;

    /// Each case through Lua's own functions and through these, with the loops' threshold at
    /// 0 so that every shift and move these can make themselves, they do: the same tables
    /// after, the same answers, or errors with the same text.
    const COMPARE: &str = r#"
local c = ...
local function snapshot(t)
  if type(t) ~= "table" then return tostring(t) end
  local keys = {}
  for k in pairs(t) do keys[#keys + 1] = k end
  table.sort(keys, function(a, b) return tostring(a) < tostring(b) end)
  local out = {}
  for _, k in ipairs(keys) do out[#out + 1] = tostring(k) .. "=" .. tostring(t[k]) end
  return table.concat(out, ",")
end
local function strip(message)
  message = c.gsub(tostring(message), "^[^:]*:%d+: ", "")
  return (c.gsub(message, "^(bad argument #%d to )'[^']*'", "%1'?'"))
end
local lib = { rep = string.rep, move = table.move, insert = table.insert, remove = table.remove, sort = table.sort }
local failures, cases = {}, 0
local function check(what, make, ...)
  cases = cases + 1
  local t1, t2 = make(), make()
  local args = table.pack(...)
  local a = table.pack(pcall(c[what], t1, table.unpack(args, 1, args.n)))
  local b = table.pack(pcall(lib[what], t2, table.unpack(args, 1, args.n)))
  local same = a[1] == b[1] and a.n == b.n and snapshot(t1) == snapshot(t2)
  for i = 2, a.n do
    local x, y = a[i], b[i]
    if not a[1] then x, y = strip(x), strip(y) end
    if type(x) == "table" then x, y = snapshot(x), snapshot(y) end
    same = same and x == y
  end
  if not same then
    failures[#failures + 1] = ("%s(%s, %s): %s %s / %s %s"):format(what, snapshot(t1), table.concat(args, ", ", 1, 0),
      tostring(a[1]), tostring(a[2]), tostring(b[1]), tostring(b[2]))
  end
end
local function list() return { "a", "b", "c", "d" } end
local function empty() return {} end
local function holes() return { 1, nil, 3, [6] = 6 } end
local logged = {}
local function proxied()
  local store = { "a", "b", "c" }
  return setmetatable({}, {
    __index = function(_, k) logged[#logged + 1] = "get" .. tostring(k) return store[k] end,
    __newindex = function(_, k, v) logged[#logged + 1] = "set" .. tostring(k) store[k] = v end,
    __len = function() return #store end })
end
local function weird_len() return setmetatable({}, { __len = function() return 2.5 end }) end
for _, make in ipairs({ list, empty, holes, proxied, weird_len }) do
  for _, pos in ipairs({ 0, 1, 2, 3, 4, 5, 6, -1, 1.5, "2", "x" }) do
    check("insert", make, pos, "new")
    check("remove", make, pos)
  end
  check("insert", make, "new")
  check("insert", make)
  check("insert", make, 1, 2, 3)
  check("remove", make)
  check("remove", make, nil)
  for _, range in ipairs({ { 1, 3, 2 }, { 2, 4, 1 }, { 1, 4, 3 }, { 3, 1, 1 }, { 0, 2, 5 }, { 1, 2, math.maxinteger },
      { math.mininteger, 1, 1 }, { 1, 2, "x" } }) do
    check("move", make, range[1], range[2], range[3])
    check("move", make, range[1], range[2], range[3], {})
    check("move", make, range[1], range[2], range[3], proxied())
  end
end
local function numbers() return { 5, 3, 9, 1, 3, 7.5, -2, 0, math.maxinteger, -math.huge } end
local function words() return { "pear", "apple", "fig", "Apple", "", "apple" } end
local function mixed() return { 3, "x", 1 } end
local function with_nan() return { 3, 0 / 0, 1, 2 } end
-- Past 100 elements Lua picks its pivots at random; numbers sort to one order whatever they are.
local function long() local t = {} for i = 1, 300 do t[i] = (i * 7919) % 1009 end return t end
local function ordered()
  local mt = { __lt = function(a, b) return a.n < b.n end, __tostring = function(a) return "n" .. a.n end }
  local t = {}
  for i, n in ipairs({ 4, 2, 8, 6 }) do t[i] = setmetatable({ n = n }, mt) end
  return t
end
for _, make in ipairs({ list, empty, holes, proxied, weird_len, numbers, words, mixed, with_nan, long, ordered }) do
  check("sort", make)
  check("sort", make, nil)
  check("sort", make, function(a, b) return a > b end)
  check("sort", make, 5)
end
check("sort", function() return 5 end)
check("sort", function() return nil end)
check("insert", function() return 5 end, 1, "x")
check("remove", function() return "s" end, 1)
check("move", function() return 5 end, 1, 2, 3)
for _, s in ipairs({ "", "ab", 7 }) do
  for _, n in ipairs({ -1, 0, 1, 3, 2.0, "2", 1.5, "x" }) do
    check("rep", function() return s end, n)
    check("rep", function() return s end, n, "")
    check("rep", function() return s end, n, ",")
  end
end
return cases, table.concat(failures, "\n", 1, math.min(#failures, 30)), #failures
"#;

    #[test]
    fn bounded_functions_behave_as_lua_s_own() {
        let lua = Lua::new();
        let original = lua.create_table().unwrap();
        let (string, table): (mlua::Table, mlua::Table) =
            (lua.globals().get("string").unwrap(), lua.globals().get("table").unwrap());
        original.set("rep", string.get::<mlua::Function>("rep").unwrap()).unwrap();
        for name in ["move", "insert", "remove", "sort"] {
            original.set(name, table.get::<mlua::Function>(name).unwrap()).unwrap();
        }
        original.set("gsub", string.get::<mlua::Function>("gsub").unwrap()).unwrap();
        super::install_with_short(&lua, 0, 0).unwrap();
        let (cases, first, failures): (usize, mlua::LuaString, usize) =
            lua.load(COMPARE).set_name("compare").call(original).unwrap();
        assert!(cases > 300, "only {cases} cases ran");
        assert_eq!(failures, 0, "{failures} of {cases} differ, the first:\n{}", first.to_string_lossy());
    }
}
