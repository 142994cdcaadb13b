-- Hierarchical DRF, the built-in `hierarchical` allocator, as a Lua policy.
--
-- It makes the same decisions, offer for offer, as the built-in allocator given the same
-- seed (a test checks it on every bundled workload), so it is the place to start a policy of
-- your own. Each round: shuffle the active agents; offer each agent's free resources to the
-- first eligible framework, taking roles by dominant share (divided by weight), then the
-- frameworks of the role by dominant share; ties go to fewer allocations, then to the name.
--
-- cluster.lua keeps the books (agents, frameworks, what each holds, refusal filters); this
-- file is only the deciding.

local cluster = require "cluster"
cluster.track(_ENV)

local names, total, fair, max = cluster.names, cluster.total, cluster.fair, math.max

-- A dominant share: the largest fraction of the cluster's total of any resource that counts
-- for fairness, divided by the weight.
local function share(allocated, weight)
  local s = 0.0
  for i = 1, #names do
    local name = names[i]
    local t = total[name]
    if fair[name] and t > 0 then s = max(s, (allocated[name] or 0) / t) end
  end
  return s / weight
end

-- A binary heap ordered by (share, allocations, id): pop yields roles, or the frameworks of a
-- role, in DRF order.
local function before(x, y)
  if x.share ~= y.share then return x.share < y.share end
  if x.allocations ~= y.allocations then return x.allocations < y.allocations end
  return x.id < y.id
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

-- The first framework in DRF order that may take `free` on agent a, and its role; the
-- roles and frameworks passed over go back into their heaps.
local function choose(roles, a, free)
  local passed_roles, chosen, chosen_role = {}, nil, nil
  while #roles > 0 and not chosen do
    local r = pop(roles)
    local passed = {}
    while #r.heap > 0 and not chosen do
      local f = pop(r.heap)
      if cluster.eligible(f, a, free) then chosen, chosen_role = f, r else passed[#passed + 1] = f end
    end
    for _, f in ipairs(passed) do push(r.heap, f) end
    if not chosen then passed_roles[#passed_roles + 1] = r end
  end
  for _, r in ipairs(passed_roles) do push(roles, r) end
  return chosen, chosen_role
end

function allocate(request)
  if not cluster.begin(request) then return {} end
  local agents = cluster.shuffled_agents()
  -- The roles with frameworks that can take offers, each with its frameworks, in heaps.
  local roles = {}
  for _, r in pairs(cluster.roles) do
    r.heap = {}
    for _, f in ipairs(r.frameworks) do
      if f.active and not f.suppressed then
        f.share = share(f.allocated, 1)
        push(r.heap, f)
      end
    end
    if #r.heap > 0 then r.share = share(r.allocated, r.weight); push(roles, r) end
  end

  local offers = {}
  for _, a in ipairs(agents) do
    local free = cluster.free(a)
    if cluster.allocatable(free) then
      local f, r = choose(roles, a, free)
      if f then
        offers[#offers + 1] = cluster.offer(f, a, free)
        f.share = share(f.allocated, 1)
        push(r.heap, f)
        r.share = share(r.allocated, r.weight)
        push(roles, r)
      end
    end
  end
  return cluster.finish(request, offers)
end
