-- Hierarchical DRF, the built-in `hierarchical` allocator, as a Lua policy.
--
-- It makes the same decisions, offer for offer, as the built-in allocator given the same
-- seed (a test checks it on every bundled workload), so it is the place to start a policy of
-- your own. Each round: shuffle the active agents; offer each agent's free resources to the
-- first eligible framework, taking roles by dominant share (divided by weight), then the
-- frameworks of the role by dominant share; ties go to fewer allocations, then to the name.

local M = {}                 -- resource name -> true, every name seen
local names = {}             -- the same names, in the order first seen
local total = {}             -- cluster total per name
local agents, agent_list = {}, {}   -- id -> agent; agents in the order they were added
local frameworks, roles = {}, {}
local options = { allocation_interval = 1, min_allocatable_resources = {}, fairness_excluded_resource_names = {} }
local fair, now, paused, rng = {}, 0, false, 0

-- Mesos's scalars have three decimals; round as the built-in does, after every operation.
local function round(x)
  if x >= 0 then return math.floor(x * 1000 + 0.5) / 1000 end
  return -math.floor(-x * 1000 + 0.5) / 1000
end

local function learn(resources)
  for name in pairs(resources) do
    if not M[name] then
      M[name], names[#names + 1], total[name] = true, name, 0
      fair[name] = true
      for _, excluded in ipairs(options.fairness_excluded_resource_names) do
        if excluded == name then fair[name] = false end
      end
    end
  end
end

-- SplitMix64 and the shuffle the built-in uses (integers wrap in Lua 5.4 as in Rust).
local function next_random()
  rng = rng + 0x9e3779b97f4a7c15
  local z = rng
  z = (z ~ (z >> 30)) * 0xbf58476d1ce4e5b9
  z = (z ~ (z >> 27)) * 0x94d049bb133111eb
  return z ~ (z >> 31)
end

local function shuffle(list)
  for i = #list, 2, -1 do
    local j = (next_random() >> 11) % i + 1
    list[i], list[j] = list[j], list[i]
  end
end

local max = math.max
local function share(allocated, weight)
  local s = 0.0
  for i = 1, #names do
    local name = names[i]
    local t = total[name]
    if fair[name] and t > 0 then s = max(s, (allocated[name] or 0) / t) end
  end
  return s / weight
end

-- Adds (sign 1) or removes (sign -1) what a framework holds on an agent.
local function add(t, amounts, sign)
  for name, amount in pairs(amounts) do t[name] = round((t[name] or 0) + sign * amount) end
end

local function account(f, a, amounts, sign)
  local held = a.by_framework[f.id] or {}
  a.by_framework[f.id] = held
  add(f.allocated, amounts, sign)
  add(roles[f.role].allocated, amounts, sign)
  add(a.allocated, amounts, sign)
  add(held, amounts, sign)
  local empty = true
  for _, amount in pairs(held) do if amount > 0 then empty = false end end
  if empty then a.by_framework[f.id] = nil end
end

local function role(name)
  roles[name] = roles[name] or { name = name, weight = 1, allocated = {}, allocations = 0, frameworks = {} }
  return roles[name]
end

-- A binary heap ordered by (share, allocations, name): pop yields clients in DRF order.
local function before(x, y)
  if x.share ~= y.share then return x.share < y.share end
  if x.allocations ~= y.allocations then return x.allocations < y.allocations end
  return x.name < y.name
end

local function push(heap, item)
  heap[#heap + 1] = item
  local i = #heap
  while i > 1 and before(heap[i], heap[i // 2]) do
    heap[i], heap[i // 2] = heap[i // 2], heap[i]
    i = i // 2
  end
end

local function pop(heap)
  local top, last = heap[1], table.remove(heap)
  if #heap > 0 then
    heap[1] = last
    local i = 1
    while true do
      local l, r, m = 2 * i, 2 * i + 1, i
      if heap[l] and before(heap[l], heap[m]) then m = l end
      if heap[r] and before(heap[r], heap[m]) then m = r end
      if m == i then break end
      heap[i], heap[m] = heap[m], heap[i]
      i = m
    end
  end
  return top
end

local function eligible(f, a, free)
  local filter = f.filters[a.id]
  if not filter or filter.expires <= now then return true end
  for _, name in ipairs(names) do
    if round((free[name] or 0) - (filter.refused[name] or 0)) > 0 then return true end
  end
  return false
end

local function allocatable(free)
  for _, min in ipairs(options.min_allocatable_resources) do
    local ok, any = true, false
    for name, needed in pairs(min) do
      if needed > 0 then any = true; if (free[name] or 0) < needed then ok = false end end
    end
    if ok and any then return true end
  end
  return false
end

-- Accounts offers as allocated (sign 1) or takes them back (sign -1).
function apply(offers, sign)
  for _, offer in ipairs(offers) do
    local f, a = frameworks[offer.framework_id], agents[offer.agent_id]
    account(f, a, offer.resources, sign)
    f.allocations = f.allocations + sign
    roles[f.role].allocations = roles[f.role].allocations + sign
  end
end

function initialize(o)
  options, rng = o, o.seed or 0
  for name in pairs(fair) do fair[name] = true end
  for _, excluded in ipairs(o.fairness_excluded_resource_names) do fair[excluded] = false end
end

function add_agent(request)
  local info = request.agent
  if agents[info.id] then error("agent '" .. info.id .. "' was already added") end
  learn(info.resources)
  for name, amount in pairs(info.resources) do total[name] = round(total[name] + amount) end
  local a = { id = info.id, total = info.resources, allocated = {}, by_framework = {}, active = true }
  agents[info.id], agent_list[#agent_list + 1] = a, a
  for _, used in ipairs(request.used) do account(frameworks[used.framework_id], a, used.resources, 1) end
end

function remove_agent(request)
  local a = agents[request.agent_id] or error("unknown agent '" .. request.agent_id .. "'")
  for id, held in pairs(a.by_framework) do account(frameworks[id], a, held, -1) end
  for name, amount in pairs(a.total) do total[name] = round(total[name] - amount) end
  a.removed, agents[a.id] = true, nil
  for _, f in pairs(frameworks) do f.filters[a.id] = nil end
end

function add_framework(request)
  local info = request.framework
  if frameworks[info.id] then error("framework '" .. info.id .. "' was already added") end
  local f = { id = info.id, name = info.id, role = info.role, active = request.active, allocated = {},
              allocations = 0, filters = {} }
  frameworks[info.id] = f
  local r = role(info.role)
  r.frameworks[#r.frameworks + 1] = f
  for _, used in ipairs(request.used) do account(f, agents[used.agent_id], used.resources, 1) end
end

function remove_framework(request)
  local f = frameworks[request.framework_id] or error("unknown framework '" .. request.framework_id .. "'")
  for _, a in ipairs(agent_list) do
    if a.by_framework[f.id] then account(f, a, a.by_framework[f.id], -1) end
  end
  local list = roles[f.role].frameworks
  for i = #list, 1, -1 do if list[i] == f then table.remove(list, i) end end
  frameworks[f.id] = nil
end

function update_framework(request)
  local f, info = frameworks[request.framework.id], request.framework
  if f.role == info.role then return end
  local old, new = roles[f.role], role(info.role)
  for name, amount in pairs(f.allocated) do
    old.allocated[name] = round((old.allocated[name] or 0) - amount)
    new.allocated[name] = round((new.allocated[name] or 0) + amount)
  end
  for i = #old.frameworks, 1, -1 do if old.frameworks[i] == f then table.remove(old.frameworks, i) end end
  new.frameworks[#new.frameworks + 1] = f
  f.role = info.role
end

function update_agent(request)
  local a = agents[request.agent.id]
  learn(request.agent.resources)
  for _, name in ipairs(names) do
    total[name] = round(total[name] - (a.total[name] or 0) + (request.agent.resources[name] or 0))
  end
  a.total = request.agent.resources
end

function activate_framework(request) frameworks[request.framework_id].active = true end
function deactivate_framework(request) frameworks[request.framework_id].active = false end
function activate_agent(request) agents[request.agent_id].active = true end
function deactivate_agent(request) agents[request.agent_id].active = false end
function suppress_offers(request) frameworks[request.framework_id].suppressed = true end
function pause() paused = true end
function resume() paused = false end

function revive_offers(request)
  local f = frameworks[request.framework_id]
  f.suppressed, f.filters = false, {}
end

function update_weights(request)
  for _, w in ipairs(request.weights) do
    if not (w.weight > 0 and w.weight < math.huge) then error("weight of role '" .. w.role .. "' must be positive") end
    role(w.role).weight = w.weight
  end
end

function recover_resources(request)
  local f, a = frameworks[request.framework_id], agents[request.agent_id]
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
      f.filters[a.id] = { expires = now + math.max(refuse, options.allocation_interval), refused = request.resources }
    end
  end
end

function allocate(request)
  now = request.now
  if paused then return {} end
  for _, f in pairs(frameworks) do
    for id, filter in pairs(f.filters) do if filter.expires <= now then f.filters[id] = nil end end
  end
  local order = {}
  for _, a in ipairs(agent_list) do if a.active and not a.removed then order[#order + 1] = a end end
  shuffle(order)

  -- DRF order of the roles, and of the frameworks of each that can take offers.
  local role_heap = {}
  for _, r in pairs(roles) do
    r.heap = {}
    for _, f in ipairs(r.frameworks) do
      if f.active and not f.suppressed then
        f.share = share(f.allocated, 1)
        push(r.heap, f)
      end
    end
    if #r.heap > 0 then r.share = share(r.allocated, r.weight); push(role_heap, r) end
  end

  local offers = {}
  for _, a in ipairs(order) do
    local free = {}
    for name, amount in pairs(a.total) do free[name] = round(amount - (a.allocated[name] or 0)) end
    if allocatable(free) then
      local skipped_roles, chosen_role, chosen = {}, nil, nil
      while #role_heap > 0 and not chosen do
        local r = pop(role_heap)
        local skipped = {}
        while #r.heap > 0 and not chosen do
          local f = pop(r.heap)
          if eligible(f, a, free) then chosen, chosen_role = f, r else skipped[#skipped + 1] = f end
        end
        for _, f in ipairs(skipped) do push(r.heap, f) end
        if not chosen then skipped_roles[#skipped_roles + 1] = r end
      end
      for _, r in ipairs(skipped_roles) do push(role_heap, r) end
      if chosen then
        local resources = {}
        for name, amount in pairs(free) do if amount > 0 then resources[name] = amount end end
        account(chosen, a, free, 1)
        chosen.allocations = chosen.allocations + 1
        chosen_role.allocations = chosen_role.allocations + 1
        chosen.share = share(chosen.allocated, 1)
        push(chosen_role.heap, chosen)
        chosen_role.share = share(chosen_role.allocated, chosen_role.weight)
        push(role_heap, chosen_role)
        offers[#offers + 1] = { framework_id = chosen.id, agent_id = a.id, resources = resources }
      end
    end
  end
  if request.dry_run then apply(offers, -1) end   -- a shadow round: decide, keep nothing
  return offers
end

-- After a shadow round: the offers the active allocator made count as this one's.
function offers_made(request) apply(request.offers, 1) end

-- Hot reload. The host tells a new version of this script the cluster (agents, frameworks,
-- what each holds); these two carry what only the policy knows, so that saving the script
-- again changes no decision: the clock, the shuffle's state, the agents' order, refusal
-- filters and the allocation counts that break ties.
function export_state()
  local state = { now = now, rng = rng, agents = {}, frameworks = {}, roles = {} }
  for _, a in ipairs(agent_list) do
    if not a.removed then state.agents[#state.agents + 1] = a.id end
  end
  for id, f in pairs(frameworks) do
    local filters = {}
    for agent, filter in pairs(f.filters) do
      filters[#filters + 1] = { agent = agent, expires = filter.expires, refused = filter.refused }
    end
    state.frameworks[#state.frameworks + 1] = { id = id, allocations = f.allocations, filters = filters }
  end
  for name, r in pairs(roles) do state.roles[#state.roles + 1] = { name = name, allocations = r.allocations } end
  return state
end

function import_state(state)
  now, rng = state.now, state.rng
  local order = {}
  for _, id in ipairs(state.agents) do order[#order + 1] = agents[id] end
  if #order == #agent_list then agent_list = order end
  for _, saved in ipairs(state.frameworks) do
    local f = frameworks[saved.id]
    if f then
      f.allocations = saved.allocations
      for _, filter in ipairs(saved.filters) do
        f.filters[filter.agent] = { expires = filter.expires, refused = filter.refused }
      end
    end
  end
  for _, saved in ipairs(state.roles) do
    if roles[saved.name] then roles[saved.name].allocations = saved.allocations end
  end
end
