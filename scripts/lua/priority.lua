-- Strict priority by role, packing each framework onto as few agents as it can.
--
-- An instructive contrast with drf.lua: roles earlier in PRIORITY are offered everything
-- they can take before any later role sees an offer, so under load the last roles starve
-- (compare the shares of a simulation run with each). Agents are visited fullest first
-- (bin packing), so small frameworks fill busy agents and large agents stay free for large
-- tasks. Edit PRIORITY and save: hot reload picks it up. Try it in the shadow of the DRF:
--   modhost simulate --modules=file://scripts/lua.json --shadow_allocator=priority_lua

PRIORITY = { "analytics", "web", "batch" }   -- roles not listed come last, by name

-- cluster.lua keeps the books, as it does for drf.lua: what is left here is the policy.
local cluster = require "cluster"
cluster.track(_ENV)

local function rank(role)
  for i, r in ipairs(PRIORITY) do if r == role then return i end end
  return #PRIORITY + 1
end

-- How full agent a is: the largest fraction of any of its resources that is allocated.
local function used_fraction(a)
  local most = 0
  for name, amount in pairs(a.total) do
    if amount > 0 then most = math.max(most, (a.allocated[name] or 0) / amount) end
  end
  return most
end

function allocate(request)
  if not cluster.begin(request) then return {} end
  local order = {}
  -- Each framework in each of its roles (one, for most).
  for _, f in pairs(cluster.clients) do
    if f.active and not f.suppressed and f.subscribed then order[#order + 1] = f end
  end
  table.sort(order, function(x, y)
    if rank(x.role) ~= rank(y.role) then return rank(x.role) < rank(y.role) end
    if x.role ~= y.role then return x.role < y.role end
    return x.id < y.id
  end)
  local visit, fullness = {}, {}
  for _, a in pairs(cluster.agents) do
    if a.active then visit[#visit + 1], fullness[a] = a, used_fraction(a) end
  end
  table.sort(visit, function(x, y)
    if fullness[x] ~= fullness[y] then return fullness[x] > fullness[y] end
    return x.id < y.id
  end)
  local offers = {}
  for _, a in ipairs(visit) do
    local free = cluster.free(a)
    if cluster.allocatable(free) then
      for _, f in ipairs(order) do
        if cluster.eligible(f, a, free) then
          offers[#offers + 1] = cluster.offer(f, a, free)
          break
        end
      end
    end
  end
  return cluster.finish(request, offers)
end
