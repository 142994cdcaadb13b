-- The bookkeeping every allocator policy needs, kept for it, so that a policy's own lines are
-- about deciding. It follows the cluster through the allocator calls (agents and frameworks
-- coming and going, what each holds, refusal filters, suppression, weights, the clock), and
-- carries its state across a hot reload. A policy uses it like this (drf.lua is a whole one):
--
--   local cluster = require "cluster"
--   cluster.track(_ENV)    -- answers every allocator call but allocate: add_agent, ...
--
--   function allocate(request)
--     if not cluster.begin(request) then return {} end        -- paused
--     local offers = {}
--     for _, agent in ipairs(cluster.shuffled_agents()) do
--       local free = cluster.free(agent)
--       -- choose a framework f that may have them, then:
--       offers[#offers + 1] = cluster.offer(f, agent, free)
--     end
--     return cluster.finish(request, offers)                    -- a dry run keeps nothing
--   end
--
-- What a policy may read (and change only through the functions below):
--   cluster.agents       id -> { id, total, allocated, active, by_framework = { client key -> held } }
--   cluster.frameworks   id -> { id, role, active, suppressed, allocated, allocations, filters, clients }
--                        A framework in several roles (Mesos's MULTI_ROLE: `roles` in add_framework)
--                        has a client per role, f.clients[role] = { id, role, key, framework = f,
--                        active, suppressed, subscribed, allocated, allocations, filters }: offers,
--                        filters, suppression and shares are per client. A framework in one role
--                        is its own only client (f.clients[f.role] == f), so a policy written for
--                        one role per framework reads it as before.
--   cluster.clients      key -> client, every framework in each of its roles
--   cluster.roles        name -> { id = name, name, weight, allocated, allocations, frameworks = { list },
--                        parent, children = { list }, tree_allocated, tree_allocations, own_name }
--                        Roles are paths (eng/ml/training); `allocated` and `allocations` are the
--                        role's own frameworks', `tree_` ones its whole subtree's. `own_name` is
--                        "name/.", the role's own frameworks among its children (Mesos's
--                        virtual leaf, weight 1).
--   cluster.roots        the top-level roles, in the order first seen
--   cluster.names        resource names in the order first seen; cluster.total[name] the
--                        cluster's total; cluster.fair[name] false for the names the options
--                        leave out of fairness (fairness_excluded_resource_names)
--   cluster.base[name]   a resource's unreserved name: "cpus" for "cpus(eng)", a resource reserved for
--                        role eng (cluster.reserved_for[name] = "eng"); cluster.any_reserved once
--                        any is seen. Reserved resources go only to their role and its subroles
--                        (cluster.within(role, owner)); for shares and min_allocatable_resources
--                        they count as their unreserved name (cluster.by_name(amounts)).
--   cluster.quotas       top-level role name -> { role = (its entry in cluster.roles), guarantees,
--                        limits }: amounts by resource name; a name without a limit has none. A
--                        role's quota covers its subtree: what the role's tree_allocated holds is
--                        what it consumes. cluster.quota_of(f) is the quota over framework f.
--   cluster.now, cluster.options
-- A framework's `allocations` counts the offers it was made (DRF breaks ties with it). Offers
-- to the same framework on the same agent in one round are one offer (cluster.offer merges
-- them), counted once.

local cluster = {
  agents = {}, frameworks = {}, clients = {}, roles = {}, roots = {}, names = {}, total = {}, fair = {}, quotas = {}, now = 0,
  base = {}, reserved_for = {}, any_reserved = false,
  options = { allocation_interval = 1, min_allocatable_resources = {}, fairness_excluded_resource_names = {} },
}
local order = {}             -- the agents, in the order they were added
-- Frameworks an agent reported usage for before they were added (after a failover agents
-- and frameworks come back in any order): key -> { id, key, allocated, allocations }, by the
-- role the report named ("" if none). add_framework adopts them; they are never offered
-- anything. (The host tells each usage once.)
local waiting = {}

-- A client's key: its framework and role.
local function key_of(id, role) return id .. "\0" .. (role or "") end

-- The client of framework `id` in `role` (nil or "": its only role), added or waiting.
local function client_of(id, role)
  local f = cluster.frameworks[id]
  -- Not added yet: what agents reported without a role is whichever role a give-back names.
  if not f then return waiting[key_of(id, role)] or waiting[key_of(id, "")] end
  if role and role ~= "" then return f.clients[role] end
  local only, count = nil, 0
  for _, c in pairs(f.clients) do only, count = c, count + 1 end
  if count ~= 1 then error("framework '" .. id .. "' is in several roles: say in which", 3) end
  return only
end

-- A client, or a framework in one role (its own client).
local function as_client(x)
  if x.key then return x end
  error("framework '" .. x.id .. "' is in several roles: offer through cluster.frameworks[id].clients[role]", 3)
end
local paused, rng, tracking = false, 0, false
local made = {}              -- this round's offers by framework and agent id

-- A round's time is a sum of float intervals: compare clock times with this slack.
local SLACK = 1e-6

-- Mesos's scalars have three decimals; round as the built-in does, after every operation.
local function round(x)
  if x >= 0 then return math.floor(x * 1000 + 0.5) / 1000 end
  return -math.floor(-x * 1000 + 0.5) / 1000
end

local function learn_name(name)
  if cluster.total[name] ~= nil then return end
  -- "cpus(eng)" is cpus reserved for role eng (the host checked the role).
  local base, owner = name:match("^(.-)%((.*)%)$")
  if base then learn_name(base); cluster.any_reserved = true end
  cluster.names[#cluster.names + 1], cluster.total[name], cluster.fair[name] = name, 0, true
  cluster.base[name], cluster.reserved_for[name] = base or name, owner
  for _, excluded in ipairs(cluster.options.fairness_excluded_resource_names) do
    if excluded == (base or name) then cluster.fair[name] = false end
  end
end

local function learn(resources)
  for name in pairs(resources) do learn_name(name) end
end

-- Adds (sign 1) or takes away (sign -1) what framework f holds on agent a.
local function add(t, amounts, sign)
  for name, amount in pairs(amounts) do t[name] = round((t[name] or 0) + sign * amount) end
end

-- What role r's own frameworks hold, and what its subtree and each ancestor's holds.
local function role_add(r, amounts, sign)
  add(r.allocated, amounts, sign)
  while r do add(r.tree_allocated, amounts, sign); r = r.parent end
end

-- An offer counted to role r's own frameworks (sign 1) or taken back (-1), up the tree.
local function role_count(r, sign)
  r.allocations = r.allocations + sign
  while r do r.tree_allocations = r.tree_allocations + sign; r = r.parent end
end

local function account(f, a, amounts, sign)
  local held = a.by_framework[f.key] or {}
  a.by_framework[f.key] = held
  add(f.allocated, amounts, sign)
  if f.framework then role_add(cluster.roles[f.role], amounts, sign) end
  add(a.allocated, amounts, sign)
  add(held, amounts, sign)
  local empty = true
  for _, amount in pairs(held) do if amount > 0 then empty = false end end
  if empty then a.by_framework[f.key] = nil end
end

-- Gives a client a new key (its role changed, or a waiting one is adopted): in the agents'
-- books too.
local function rekey(c, key)
  if c.key == key then return end
  for _, a in ipairs(order) do
    if a.by_framework[c.key] then a.by_framework[key], a.by_framework[c.key] = a.by_framework[c.key], nil end
  end
  c.key = key
end

-- The role `name` (a path the host checked), made with its ancestors if new.
local function role(name)
  local roles = cluster.roles
  if roles[name] then return roles[name] end
  local parent_name = name:match("^(.*)/[^/]*$")
  local parent = parent_name and role(parent_name)
  local r = { id = name, name = name, own_name = name .. "/.", weight = 1, allocated = {}, allocations = 0,
              tree_allocated = {}, tree_allocations = 0, frameworks = {}, parent = parent, children = {} }
  roles[name] = r
  local siblings = parent and parent.children or cluster.roots
  siblings[#siblings + 1] = r
  return r
end

local function remove(list, item)
  for i = #list, 1, -1 do if list[i] == item then table.remove(list, i) end end
end

-- Offers counted as made (sign 1), or taken back (sign -1).
local function apply(offers, sign)
  for _, offer in ipairs(offers) do
    local f, a = client_of(offer.framework_id, offer.role), cluster.agents[offer.agent_id]
    account(f, a, offer.resources, sign)
    f.allocations = f.allocations + sign
    role_count(cluster.roles[f.role], sign)
  end
end

-- For allocate --------------------------------------------------------------------------

-- Starts a round at request.now, dropping expired refusal filters; false while paused.
function cluster.begin(request)
  if not tracking then
    error("cluster.lua sees no allocator calls: call cluster.track(_ENV) at the top of the policy", 2)
  end
  cluster.now, made = request.now, {}
  if paused then return false end
  for _, f in pairs(cluster.clients) do
    -- A filter holds through the round at its expiry time (Mesos, MESOS-4302).
    for id, filter in pairs(f.filters) do if filter.expires + SLACK < cluster.now then f.filters[id] = nil end end
  end
  return true
end

-- SplitMix64, seeded from the options, and the shuffle the built-in allocator makes with it
-- (Lua 5.4's integers wrap as Rust's do).
local function next_random()
  rng = rng + 0x9e3779b97f4a7c15
  local z = rng
  z = (z ~ (z >> 30)) * 0xbf58476d1ce4e5b9
  z = (z ~ (z >> 27)) * 0x94d049bb133111eb
  return z ~ (z >> 31)
end

-- Shuffles `list` in place, as the built-in shuffles with the same seed.
function cluster.shuffle(list)
  for i = #list, 2, -1 do
    local j = (next_random() >> 11) % i + 1
    list[i], list[j] = list[j], list[i]
  end
  return list
end

-- The active agents, in the order they were added, shuffled as the built-in shuffles them.
function cluster.shuffled_agents()
  local list = {}
  for _, a in ipairs(order) do if a.active then list[#list + 1] = a end end
  return cluster.shuffle(list)
end

-- `amounts` summed by unreserved name (reserved cpus are cpus, for shares and minimums).
function cluster.by_name(amounts)
  local sums = {}
  for name, amount in pairs(amounts) do
    local base = cluster.base[name] or name
    sums[base] = round((sums[base] or 0) + amount)
  end
  return sums
end

-- Whether `role` is `owner` or one of its subroles: who may be offered what `owner` reserved.
function cluster.within(role, owner)
  return role == owner or role:sub(1, #owner + 1) == owner .. "/"
end

-- The quota over framework f: its top-level role's, or nil.
function cluster.quota_of(f)
  return cluster.quotas[f.role:match("^[^/]*")]
end

-- The quota headroom at the start of a round (Mesos's): `required`, what the unmet guarantees
-- of all quotas add up to, and `available`, what the cluster has unallocated, by name.
-- `reserved`, per quota'd role, what its subtree has reserved by unreserved name: it counts as
-- consumed, allocated or not (cluster.consumed(q, name, headroom)).
function cluster.headroom()
  local required, available, reserved = {}, {}, {}
  for top in pairs(cluster.quotas) do reserved[top] = {} end
  for _, a in ipairs(order) do
    for name, amount in pairs(a.total) do
      local owner = cluster.reserved_for[name]
      local top = owner and reserved[owner:match("^[^/]*")]
      if top then top[cluster.base[name]] = round((top[cluster.base[name]] or 0) + amount) end
    end
  end
  local headroom = { required = required, available = available, reserved = reserved }
  for _, name in ipairs(cluster.names) do
    local need, allocated = 0, 0
    for top, q in pairs(cluster.quotas) do
      need = round(need + math.max(0, (q.guarantees[name] or 0) - cluster.consumed(q, name, headroom)))
    end
    for _, a in ipairs(order) do allocated = round(allocated + (a.allocated[name] or 0)) end
    required[name], available[name] = need, math.max(0, round(cluster.total[name] - allocated))
  end
  return headroom
end

-- What quota q's role consumes of the unreserved resource `name`: what its subtree holds of it,
-- and what the subtree reserved of it.
function cluster.consumed(q, name, headroom)
  return round((q.role.tree_allocated[name] or 0) + (headroom.reserved[q.role.name][name] or 0))
end

-- What agent a has free, per resource name (none of a resource it holds more of than its
-- total: it shrank, or reported more in use than it has).
function cluster.free(a)
  local free = {}
  for name, amount in pairs(a.total) do free[name] = math.max(0, round(amount - (a.allocated[name] or 0))) end
  return free
end

-- Whether `free` is worth offering: it covers one of the options' min_allocatable_resources.
function cluster.allocatable(free)
  if cluster.any_reserved then free = cluster.by_name(free) end
  for _, min in ipairs(cluster.options.min_allocatable_resources) do
    local ok, any = true, false
    for name, needed in pairs(min) do
      if needed > 0 then any = true; if (free[name] or 0) < needed then ok = false end end
    end
    if ok and any then return true end
  end
  return false
end

-- Whether framework f may be offered `free` on agent a: no refusal filter of f's for a, or
-- `free` has more of something than f refused there.
function cluster.eligible(f, a, free)
  f = as_client(f)
  if f.subscribed == false then return false end
  local filter = f.filters[a.id]
  if not filter or filter.expires + SLACK < cluster.now then return true end
  for _, name in ipairs(cluster.names) do
    if round((free[name] or 0) - (filter.refused[name] or 0)) > 0 then return true end
  end
  return false
end

-- Offers `free` on agent a to framework f: counted as allocated from now on. Returns the
-- offer, for allocate's answer; nil when f already has an offer on a this round, which the
-- amounts are added to instead.
function cluster.offer(f, a, free)
  f = as_client(f)
  account(f, a, free, 1)
  local key = f.key .. "\0" .. a.id
  local earlier = made[key]
  if earlier then
    add(earlier.resources, free, 1)
    return nil
  end
  local resources = {}
  for name, amount in pairs(free) do if amount > 0 then resources[name] = amount end end
  f.allocations = f.allocations + 1
  role_count(cluster.roles[f.role], 1)
  made[key] = { framework_id = f.id, role = f.role, agent_id = a.id, resources = resources }
  return made[key]
end

-- allocate's answer. A dry run (a shadow round) decides, then keeps nothing of it.
function cluster.finish(request, offers)
  if request.dry_run then apply(offers, -1) end
  return offers
end

-- The allocator calls ------------------------------------------------------------------

local calls = {}

function calls.initialize(options)
  cluster.options, rng = options, options.seed or 0
  for name in pairs(cluster.fair) do cluster.fair[name] = true end
  for _, excluded in ipairs(options.fairness_excluded_resource_names) do
    for name, base in pairs(cluster.base) do if base == excluded then cluster.fair[name] = false end end
  end
end

function calls.add_agent(request)
  local info = request.agent
  if cluster.agents[info.id] then error("agent '" .. info.id .. "' was already added") end
  learn(info.resources)
  for name, amount in pairs(info.resources) do cluster.total[name] = round(cluster.total[name] + amount) end
  local a = { id = info.id, total = info.resources, allocated = {}, by_framework = {}, active = true,
              attributes = info.attributes or {} }
  cluster.agents[info.id], order[#order + 1] = a, a
  for _, used in ipairs(request.used) do
    local id = used.framework_id
    local f = client_of(id, used.role)
    if not f then
      f = { id = id, key = key_of(id, used.role), allocated = {}, allocations = 0 }
      waiting[f.key] = f
    end
    learn(used.resources)
    account(f, a, used.resources, 1)
  end
end

local function same(x, y)
  for k, v in pairs(x) do if y[k] ~= v then return false end end
  for k in pairs(y) do if x[k] == nil then return false end end
  return true
end

function calls.remove_agent(request)
  local a = cluster.agents[request.agent_id] or error("unknown agent '" .. request.agent_id .. "'")
  for key, held in pairs(a.by_framework) do account(cluster.clients[key] or waiting[key], a, held, -1) end
  for name, amount in pairs(a.total) do cluster.total[name] = round(cluster.total[name] - amount) end
  cluster.agents[a.id] = nil
  remove(order, a)
  for _, c in pairs(cluster.clients) do c.filters[a.id] = nil end
end

function calls.update_agent(request)
  local a, info = cluster.agents[request.agent.id], request.agent
  if not same(a.attributes, info.attributes or {}) then
    -- Back with other attributes: refusal filters for it go, as in Mesos.
    a.attributes = info.attributes or {}
    for _, c in pairs(cluster.clients) do c.filters[a.id] = nil end
  end
  learn(info.resources)
  for _, name in ipairs(cluster.names) do
    cluster.total[name] = round(cluster.total[name] - (a.total[name] or 0) + (info.resources[name] or 0))
  end
  a.total = info.resources
end

-- The roles of a framework's description: `roles`, or else `role`.
local function roles_of(info)
  local roles = {}
  for _, r in ipairs(info.roles or {}) do roles[#roles + 1] = r end
  if #roles == 0 then roles[1] = info.role end
  return roles
end

-- Makes client c (new, or waiting) framework f's in role `name`, in the role's books.
local function subscribe(f, c, name)
  rekey(c, key_of(f.id, name))
  c.role, c.framework, c.active, c.suppressed, c.subscribed = name, f, f.active, false, true
  c.filters = c.filters or {}
  f.clients[name], cluster.clients[c.key] = c, c
  local r = role(name)
  r.frameworks[#r.frameworks + 1] = c
  role_add(r, c.allocated, 1)
end

-- Takes client c out of its role's books.
local function unsubscribe(c)
  remove(cluster.roles[c.role].frameworks, c)
  cluster.clients[c.key] = nil
  c.framework.clients[c.role] = nil
end

function calls.add_framework(request)
  local info = request.framework
  if cluster.frameworks[info.id] then error("framework '" .. info.id .. "' was already added") end
  local roles = roles_of(info)
  local function adopt(name)
    -- One an agent already reported usage for is adopted, with what it holds.
    local key = key_of(info.id, name)
    local c = waiting[key]
    if not c and #roles == 1 then key = key_of(info.id, ""); c = waiting[key] end
    waiting[key] = nil
    return c or { id = info.id, key = key, allocated = {}, allocations = 0 }
  end
  local f
  if #roles == 1 then
    f = adopt(roles[1])
    f.clients, f.roles, f.active = {}, roles, request.active
    subscribe(f, f, roles[1])
  else
    f = { id = info.id, roles = roles, active = request.active, clients = {} }
    for _, name in ipairs(roles) do subscribe(f, adopt(name), name) end
  end
  cluster.frameworks[info.id] = f
  for _, used in ipairs(request.used) do
    account(client_of(info.id, used.role), cluster.agents[used.agent_id], used.resources, 1)
  end
end

function calls.remove_framework(request)
  local f = cluster.frameworks[request.framework_id] or error("unknown framework '" .. request.framework_id .. "'")
  local clients = {}
  for _, c in pairs(f.clients) do clients[#clients + 1] = c end
  for _, c in ipairs(clients) do
    for _, a in ipairs(order) do
      if a.by_framework[c.key] then account(c, a, a.by_framework[c.key], -1) end
    end
    unsubscribe(c)
  end
  cluster.frameworks[f.id] = nil
end

local function holds(c)
  for _, amount in pairs(c.allocated) do if amount > 0 then return true end end
  return false
end

function calls.update_framework(request)
  local f, info = cluster.frameworks[request.framework.id], request.framework
  local roles = roles_of(info)
  if f.key and #roles == 1 then
    -- One role for another: what it holds moves with it.
    if f.role == roles[1] then return end
    local old, new = cluster.roles[f.role], role(roles[1])
    role_add(old, f.allocated, -1)
    role_add(new, f.allocated, 1)
    remove(old.frameworks, f)
    new.frameworks[#new.frameworks + 1] = f
    f.clients[f.role], cluster.clients[f.key] = nil, nil
    rekey(f, key_of(f.id, roles[1]))
    f.role, f.roles = roles[1], roles
    f.clients[f.role], cluster.clients[f.key] = f, f
    return
  end
  -- Several roles: a role joined gets a client; a role left is offered nothing more, and
  -- what the framework holds there stays until given back (a client holding nothing goes).
  local keep = {}
  for _, name in ipairs(roles) do keep[name] = true end
  for name, c in pairs(f.clients) do
    c.subscribed = keep[name] or false
    if not keep[name] and not holds(c) then unsubscribe(c) end
  end
  for _, name in ipairs(roles) do
    if not f.clients[name] then
      subscribe(f, { id = f.id, key = key_of(f.id, name), allocated = {}, allocations = 0 }, name)
    end
  end
  f.roles = roles
end

local function set_active(request, active)
  local f = cluster.frameworks[request.framework_id]
  f.active = active
  for _, c in pairs(f.clients) do c.active = active end
end

-- The clients a suppress or revive names: those in its roles, or all of them.
local function named_clients(request)
  local f, clients = cluster.frameworks[request.framework_id], {}
  if #request.roles == 0 then
    for _, c in pairs(f.clients) do clients[#clients + 1] = c end
  else
    for _, name in ipairs(request.roles) do clients[#clients + 1] = f.clients[name] end
  end
  return clients
end

function calls.activate_framework(request) set_active(request, true) end
function calls.deactivate_framework(request) set_active(request, false) end
function calls.activate_agent(request) cluster.agents[request.agent_id].active = true end
function calls.deactivate_agent(request) cluster.agents[request.agent_id].active = false end
function calls.suppress_offers(request)
  for _, c in ipairs(named_clients(request)) do c.suppressed = true end
end
function calls.pause() paused = true end
function calls.resume() paused = false end

function calls.revive_offers(request)
  for _, c in ipairs(named_clients(request)) do c.suppressed, c.filters = false, {} end
end

function calls.update_weights(request)
  -- All checked before any is set: a refused call changes nothing.
  for _, w in ipairs(request.weights) do
    if not (w.weight > 0 and w.weight < math.huge) then error("weight of role '" .. w.role .. "' must be positive") end
  end
  for _, w in ipairs(request.weights) do role(w.role).weight = w.weight end
end

function calls.update_quota(request)
  -- The host checked it: a top-level role, amounts not negative, guarantees within limits.
  local set = false
  for _ in pairs(request.guarantees) do set = true end
  for _ in pairs(request.limits) do set = true end
  if not set then
    cluster.quotas[request.role] = nil
  else
    learn(request.guarantees)
    learn(request.limits)
    cluster.quotas[request.role] = { role = role(request.role), guarantees = request.guarantees, limits = request.limits }
  end
end

function calls.update_available(request)
  -- The host checked the operations: each fits what is unallocated, in order.
  local a = cluster.agents[request.agent_id]
  local total = {}
  for name, amount in pairs(a.total) do total[name] = amount end
  for _, op in ipairs(request.operations) do
    learn(op.resources)
    for name, amount in pairs(op.resources) do
      local from, to = cluster.base[name], name
      if op.type == "unreserve" then from, to = name, cluster.base[name] end
      total[from] = round((total[from] or 0) - amount)
      total[to] = round((total[to] or 0) + amount)
      cluster.total[from] = round(cluster.total[from] - amount)
      cluster.total[to] = round(cluster.total[to] + amount)
    end
  end
  a.total = total
end

function calls.recover_resources(request)
  local a = cluster.agents[request.agent_id]
  local f = client_of(request.framework_id, request.role)
  if f and a and not f.framework then
    -- A framework not added yet gives back what ended; it cannot refuse anything.
    account(f, a, request.resources, -1)
    return
  end
  if not f or not a then return end
  learn(request.resources)
  local held = a.by_framework[f.key] or {}
  for name, amount in pairs(request.resources) do
    if round((held[name] or 0) - amount) < 0 then error(f.id .. " gives back more " .. name .. " than it holds") end
  end
  account(f, a, request.resources, -1)
  local filters = request.filters
  if filters then
    local refuse = filters.refuse_seconds
    if refuse ~= refuse or refuse < 0 or refuse == math.huge then refuse = 5 end
    refuse = math.min(refuse, 365 * 24 * 3600)
    if refuse > 0 then
      local expires = cluster.now + math.max(refuse, cluster.options.allocation_interval)
      f.filters[a.id] = { expires = expires, refused = request.resources }
    end
  end
end

-- After a shadow round: the offers the active allocator made count as this one's.
function calls.offers_made(request) apply(request.offers, 1) end

-- Hot reload. The host tells a new version of the policy the cluster (agents, frameworks,
-- what each holds); these carry what only the policy's side knows, so that saving the
-- script again changes no decision: the clock, the shuffle's state, the agents' order,
-- refusal filters and the allocation counts.
function calls.export_state()
  local state = { now = cluster.now, rng = rng, agents = {}, frameworks = {}, roles = {} }
  for _, a in ipairs(order) do state.agents[#state.agents + 1] = a.id end
  for _, c in pairs(cluster.clients) do
    local filters = {}
    for agent, filter in pairs(c.filters) do
      filters[#filters + 1] = { agent = agent, expires = filter.expires, refused = filter.refused }
    end
    state.frameworks[#state.frameworks + 1] = { id = c.id, role = c.role, allocations = c.allocations, filters = filters }
  end
  for name, r in pairs(cluster.roles) do
    state.roles[#state.roles + 1] = { name = name, allocations = r.allocations, tree_allocations = r.tree_allocations }
  end
  return state
end

function calls.import_state(state)
  cluster.now, rng = state.now, state.rng
  local saved = {}
  for _, id in ipairs(state.agents) do saved[#saved + 1] = cluster.agents[id] end
  if #saved == #order then order = saved end
  for _, s in ipairs(state.frameworks) do
    local f = cluster.frameworks[s.id] and client_of(s.id, s.role)
    if f then
      f.allocations = s.allocations
      for _, filter in ipairs(s.filters) do
        f.filters[filter.agent] = { expires = filter.expires, refused = filter.refused }
      end
    end
  end
  for _, s in ipairs(state.roles) do
    local r = cluster.roles[s.name]
    if r then r.allocations, r.tree_allocations = s.allocations, s.tree_allocations or s.allocations end
  end
end

-- Defines the calls above as the policy's global functions (pass the policy's _ENV). A
-- policy may still define any of them itself afterwards, calling the one defined here; one
-- it defined before would be lost, so that is an error.
function cluster.track(env)
  for name, call in pairs(calls) do
    if env[name] ~= nil then
      error("cluster.track: the policy already defines " .. name .. "; define it after cluster.track(_ENV)", 2)
    end
    env[name] = call
  end
  tracking = true
end

return cluster
