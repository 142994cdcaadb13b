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
--   cluster.agents       id -> { id, total, allocated, active, by_framework = { framework id -> held } }
--   cluster.frameworks   id -> { id, role, active, suppressed, allocated, allocations, filters }
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
  agents = {}, frameworks = {}, roles = {}, roots = {}, names = {}, total = {}, fair = {}, quotas = {}, now = 0,
  base = {}, reserved_for = {}, any_reserved = false,
  options = { allocation_interval = 1, min_allocatable_resources = {}, fairness_excluded_resource_names = {} },
}
local order = {}             -- the agents, in the order they were added
-- Frameworks an agent reported usage for before they were added (after a failover agents
-- and frameworks come back in any order): id -> { id, allocated, allocations }, no role.
-- add_framework adopts one; it is never offered anything. (The host tells each usage once.)
local waiting = {}
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
  local held = a.by_framework[f.id] or {}
  a.by_framework[f.id] = held
  add(f.allocated, amounts, sign)
  if f.role then role_add(cluster.roles[f.role], amounts, sign) end
  add(a.allocated, amounts, sign)
  add(held, amounts, sign)
  local empty = true
  for _, amount in pairs(held) do if amount > 0 then empty = false end end
  if empty then a.by_framework[f.id] = nil end
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
    local f, a = cluster.frameworks[offer.framework_id], cluster.agents[offer.agent_id]
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
  for _, f in pairs(cluster.frameworks) do
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
  account(f, a, free, 1)
  local key = f.id .. "\0" .. a.id
  local earlier = made[key]
  if earlier then
    add(earlier.resources, free, 1)
    return nil
  end
  local resources = {}
  for name, amount in pairs(free) do if amount > 0 then resources[name] = amount end end
  f.allocations = f.allocations + 1
  role_count(cluster.roles[f.role], 1)
  made[key] = { framework_id = f.id, agent_id = a.id, resources = resources }
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
    local f = cluster.frameworks[id] or waiting[id]
    if not f then
      f = { id = id, allocated = {}, allocations = 0 }
      waiting[id] = f
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
  for id, held in pairs(a.by_framework) do account(cluster.frameworks[id] or waiting[id], a, held, -1) end
  for name, amount in pairs(a.total) do cluster.total[name] = round(cluster.total[name] - amount) end
  cluster.agents[a.id] = nil
  remove(order, a)
  for _, f in pairs(cluster.frameworks) do f.filters[a.id] = nil end
end

function calls.update_agent(request)
  local a, info = cluster.agents[request.agent.id], request.agent
  if not same(a.attributes, info.attributes or {}) then
    -- Back with other attributes: refusal filters for it go, as in Mesos.
    a.attributes = info.attributes or {}
    for _, f in pairs(cluster.frameworks) do f.filters[a.id] = nil end
  end
  learn(info.resources)
  for _, name in ipairs(cluster.names) do
    cluster.total[name] = round(cluster.total[name] - (a.total[name] or 0) + (info.resources[name] or 0))
  end
  a.total = info.resources
end

function calls.add_framework(request)
  local info = request.framework
  if cluster.frameworks[info.id] then error("framework '" .. info.id .. "' was already added") end
  -- One an agent already reported usage for is adopted, with what it holds.
  local f = waiting[info.id] or { id = info.id, allocated = {}, allocations = 0 }
  waiting[info.id] = nil
  f.role, f.active, f.filters = info.role, request.active, {}
  cluster.frameworks[info.id] = f
  local r = role(info.role)
  r.frameworks[#r.frameworks + 1] = f
  role_add(r, f.allocated, 1)
  for _, used in ipairs(request.used) do account(f, cluster.agents[used.agent_id], used.resources, 1) end
end

function calls.remove_framework(request)
  local f = cluster.frameworks[request.framework_id] or error("unknown framework '" .. request.framework_id .. "'")
  for _, a in ipairs(order) do
    if a.by_framework[f.id] then account(f, a, a.by_framework[f.id], -1) end
  end
  remove(cluster.roles[f.role].frameworks, f)
  cluster.frameworks[f.id] = nil
end

function calls.update_framework(request)
  local f, info = cluster.frameworks[request.framework.id], request.framework
  if f.role == info.role then return end
  local old, new = cluster.roles[f.role], role(info.role)
  role_add(old, f.allocated, -1)
  role_add(new, f.allocated, 1)
  remove(old.frameworks, f)
  new.frameworks[#new.frameworks + 1] = f
  f.role = info.role
end

function calls.activate_framework(request) cluster.frameworks[request.framework_id].active = true end
function calls.deactivate_framework(request) cluster.frameworks[request.framework_id].active = false end
function calls.activate_agent(request) cluster.agents[request.agent_id].active = true end
function calls.deactivate_agent(request) cluster.agents[request.agent_id].active = false end
function calls.suppress_offers(request) cluster.frameworks[request.framework_id].suppressed = true end
function calls.pause() paused = true end
function calls.resume() paused = false end

function calls.revive_offers(request)
  local f = cluster.frameworks[request.framework_id]
  f.suppressed, f.filters = false, {}
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
  local f, a = cluster.frameworks[request.framework_id], cluster.agents[request.agent_id]
  local early = waiting[request.framework_id]
  if early and a then
    -- A framework not added yet gives back what ended; it cannot refuse anything.
    account(early, a, request.resources, -1)
    return
  end
  if not f or not a then return end
  learn(request.resources)
  local held = a.by_framework[f.id] or {}
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
  for id, f in pairs(cluster.frameworks) do
    local filters = {}
    for agent, filter in pairs(f.filters) do
      filters[#filters + 1] = { agent = agent, expires = filter.expires, refused = filter.refused }
    end
    state.frameworks[#state.frameworks + 1] = { id = id, allocations = f.allocations, filters = filters }
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
    local f = cluster.frameworks[s.id]
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
