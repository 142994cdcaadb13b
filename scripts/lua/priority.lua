-- Strict priority by role, packing each framework onto as few agents as it can.
--
-- An instructive contrast with drf.lua: roles earlier in PRIORITY are offered everything
-- they can take before any later role sees an offer, so under load the last roles starve
-- (compare the shares of a simulation run with each). Agents are visited fullest first
-- (bin packing), so small frameworks fill busy agents and large agents stay free for large
-- tasks. Edit PRIORITY and save: hot reload picks it up. Try it in the shadow of the DRF:
--   modhost simulate --modules=file://scripts/lua.json --shadow_allocator=priority_lua

PRIORITY = { "analytics", "web", "batch" }   -- roles not listed come last, by name

local agents, frameworks, now, interval = {}, {}, 0, 1

local function rank(role)
  for i, r in ipairs(PRIORITY) do if r == role then return i end end
  return #PRIORITY + 1
end

local function add(t, resources, sign)
  for name, amount in pairs(resources) do
    t[name] = math.floor(((t[name] or 0) + sign * amount) * 1000 + 0.5) / 1000
  end
end

-- What a framework holds on an agent, kept per framework so that a framework that leaves
-- gives everything back.
local function hold(a, framework_id, resources, sign)
  add(a.held, resources, sign)
  a.by_framework[framework_id] = a.by_framework[framework_id] or {}
  add(a.by_framework[framework_id], resources, sign)
end

local function used_fraction(a)
  local most = 0
  for name, amount in pairs(a.total) do
    if amount > 0 then most = math.max(most, (a.held[name] or 0) / amount) end
  end
  return most
end

function initialize(options) interval = options.allocation_interval end

function add_agent(request)
  local a = { id = request.agent.id, total = request.agent.resources, held = {}, by_framework = {}, active = true }
  agents[a.id] = a
  for _, used in ipairs(request.used) do hold(a, used.framework_id, used.resources, 1) end
end

function remove_agent(request) agents[request.agent_id] = nil end

function add_framework(request)
  local info = request.framework
  frameworks[info.id] = { id = info.id, role = info.role, active = request.active, filters = {} }
end

function remove_framework(request)
  frameworks[request.framework_id] = nil
  for _, a in pairs(agents) do
    local held = a.by_framework[request.framework_id]
    if held then hold(a, request.framework_id, held, -1) end
  end
end
function suppress_offers(request) frameworks[request.framework_id].suppressed = true end

function revive_offers(request)
  local f = frameworks[request.framework_id]
  f.suppressed, f.filters = false, {}
end

function recover_resources(request)
  local a, f = agents[request.agent_id], frameworks[request.framework_id]
  if not a then return end
  hold(a, request.framework_id, request.resources, -1)
  if f and request.filters and request.filters.refuse_seconds > 0 then
    f.filters[a.id] = now + math.max(request.filters.refuse_seconds, interval)
  end
end

function allocate(request)
  now = request.now
  local order = {}
  for _, f in pairs(frameworks) do
    if f.active and not f.suppressed then order[#order + 1] = f end
  end
  table.sort(order, function(x, y)
    if rank(x.role) ~= rank(y.role) then return rank(x.role) < rank(y.role) end
    if x.role ~= y.role then return x.role < y.role end
    return x.id < y.id
  end)
  local visit = {}
  for _, a in pairs(agents) do if a.active then visit[#visit + 1] = a end end
  table.sort(visit, function(x, y)
    local fx, fy = used_fraction(x), used_fraction(y)
    if fx ~= fy then return fx > fy end
    return x.id < y.id
  end)
  local offers = {}
  for _, a in ipairs(visit) do
    local free, any = {}, false
    for name, amount in pairs(a.total) do
      free[name] = math.floor((amount - (a.held[name] or 0)) * 1000 + 0.5) / 1000
      if free[name] > 0 then any = true end
    end
    if any then
      for _, f in ipairs(order) do
        if (f.filters[a.id] or 0) <= now then
          hold(a, f.id, free, 1)
          offers[#offers + 1] = { framework_id = f.id, agent_id = a.id, resources = free }
          break
        end
      end
    end
  end
  if request.dry_run then offers_made({ offers = offers }, -1) end   -- a shadow round keeps nothing
  return offers
end

-- After a shadow round: the active allocator's offers are what is held now.
function offers_made(request, sign)
  for _, offer in ipairs(request.offers) do
    local a = agents[offer.agent_id]
    if a then hold(a, offer.framework_id, offer.resources, sign or 1) end
  end
end
