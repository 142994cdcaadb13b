-- Hierarchical DRF, the built-in `hierarchical` allocator, as a Lua policy.
--
-- It makes the same decisions, offer for offer, as the built-in allocator given the same
-- seed (a test checks it on every bundled workload), so it is the place to start a policy of
-- your own. Each round: shuffle the active agents; offer each agent's free resources to the
-- first eligible framework, taking roles by dominant share (divided by weight), then the
-- frameworks of the role by dominant share; ties go to fewer allocations, then to the name.
-- Roles are a tree (eng/ml is a child of eng): siblings are taken by their whole subtree's
-- share, level by level, and a role's own frameworks sit among its children at weight 1.
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

-- The first framework in DRF order under `heap` (a heap of role entries) that may take
-- `free` on agent a. An entry is a role's own frameworks (a leaf, or `own`), searched in
-- order, or an inner role, searched in turn. What is passed over goes back; the entries on
-- the way to the chosen framework are added to `path`, to go back once their shares change.
local function choose(heap, a, free, path)
  local passed, chosen = {}, nil
  while #heap > 0 and not chosen do
    local e = pop(heap)
    local r = e.role
    if e.own or #r.children == 0 then
      local skipped = {}
      while #r.heap > 0 and not chosen do
        local f = pop(r.heap)
        if cluster.eligible(f, a, free) then chosen = f else skipped[#skipped + 1] = f end
      end
      for _, f in ipairs(skipped) do push(r.heap, f) end
    else
      chosen = choose(r.entries, a, free, path)
    end
    if chosen then path[#path + 1] = { heap, e } else passed[#passed + 1] = e end
  end
  for _, e in ipairs(passed) do push(heap, e) end
  return chosen
end

-- A role's entry among its siblings (its subtree), or among its children (its own frameworks).
local function refresh(e)
  local r = e.role
  if e.own then
    e.share, e.allocations = share(r.allocated, 1), r.allocations
  else
    e.share, e.allocations = share(r.tree_allocated, r.weight), r.tree_allocations
  end
  return e
end

function allocate(request)
  if not cluster.begin(request) then return {} end
  local agents = cluster.shuffled_agents()
  -- Each role's frameworks that may take an offer, and each role with such a framework in its
  -- subtree as an entry among its siblings (the top-level ones in `top`).
  local top, live = {}, {}
  for _, r in pairs(cluster.roles) do
    r.heap, r.entries = {}, {}
    for _, f in ipairs(r.frameworks) do
      if f.active and not f.suppressed then
        f.share = share(f.allocated, 1)
        push(r.heap, f)
      end
    end
  end
  for _, r in pairs(cluster.roles) do
    if #r.heap > 0 then
      if #r.children > 0 then push(r.entries, refresh({ role = r, own = true, id = r.own_name })) end
      local node = r
      while node and not live[node] do
        live[node] = true
        push(node.parent and node.parent.entries or top, refresh({ role = node, id = node.name }))
        node = node.parent
      end
    end
  end

  local offers = {}
  for _, a in ipairs(agents) do
    local free = cluster.free(a)
    if cluster.allocatable(free) then
      local path = {}
      local f = choose(top, a, free, path)
      if f then
        offers[#offers + 1] = cluster.offer(f, a, free)
        f.share = share(f.allocated, 1)
        push(cluster.roles[f.role].heap, f)
        for _, step in ipairs(path) do push(step[1], refresh(step[2])) end
      end
    end
  end
  return cluster.finish(request, offers)
end
