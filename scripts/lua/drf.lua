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
-- With quota (Mesos 1.9's two stages; a top-level role's quota covers its subtree): roles
-- with unmet guarantees are offered first what meets them, and every offer stays within its
-- role's limits and leaves the headroom that unmet guarantees need.
--
-- cluster.lua keeps the books (agents, frameworks, what each holds, refusal filters, quotas
-- and their headroom); this file is only the deciding.

local cluster = require "cluster"
cluster.track(_ENV)

local names, total, fair, max, min = cluster.names, cluster.total, cluster.fair, math.max, math.min

-- A dominant share: the largest fraction of the cluster's total of any resource that counts
-- for fairness, divided by the weight.
local function share(allocated, weight)
  local s = 0.0
  if cluster.any_reserved then
    -- A reserved cpu counts as a cpu.
    local held, totals = cluster.by_name(allocated), cluster.by_name(total)
    for base, t in pairs(totals) do
      if fair[base] and t > 0 then s = max(s, (held[base] or 0) / t) end
    end
    return s / weight
  end
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

-- The first framework in DRF order under `heap` (a heap of role entries) that `accept`s. An
-- entry is a role's own frameworks (a leaf, or `own`), searched in order, or an inner role,
-- searched in turn. What is passed over goes back; the entries on the way to the chosen
-- framework are added to `path`, to go back once their shares change.
local function choose(heap, accept, path)
  local passed, chosen = {}, nil
  while #heap > 0 and not chosen do
    local e = pop(heap)
    local r = e.role
    if e.own or #r.children == 0 then
      local skipped = {}
      while #r.heap > 0 and not chosen do
        local f = pop(r.heap)
        if accept(f) then chosen = f else skipped[#skipped + 1] = f end
      end
      for _, f in ipairs(skipped) do push(r.heap, f) end
    else
      chosen = choose(r.entries, accept, path)
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

-- After framework f was offered something: its key and those on the path to it go back into
-- their heaps with their new shares.
local function settle(f, path)
  f.share = share(f.allocated, 1)
  push(cluster.roles[f.role].heap, f)
  for _, step in ipairs(path) do push(step[1], refresh(step[2])) end
end

local function round(x)
  if x >= 0 then return math.floor(x * 1000 + 0.5) / 1000 end
  return -math.floor(-x * 1000 + 0.5) / 1000
end

-- What to offer from `free` to framework f under quota q (or none) in `stage`: what f's role
-- reserved (in stage 1; in stage 2 what it or an ancestor reserved), whole; then, of unreserved
-- resources, in stage 1 what meets q's unmet guarantees (nothing at all if none of it does)
-- and as much more as q's limits and the headroom left over the required one allow, in
-- stage 2 `free` cut to the limits and that headroom. Returns the offer and the part of it
-- meeting guarantees, or nil.
local function quota_offer(stage, f, q, free, headroom)
  local required, available = headroom.required, headroom.available
  local held_back = false
  for _, name in ipairs(names) do if (required[name] or 0) > 0 then held_back = true end end
  local offer, granted, any = {}, {}, false
  for _, name in ipairs(names) do granted[name] = 0 end
  if stage == 1 then
    if not q then return nil end
    for _, name in ipairs(names) do
      if not cluster.reserved_for[name] then
        local unmet = max(0, round((q.guarantees[name] or 0) - cluster.consumed(q, name, headroom)))
        granted[name] = min(free[name] or 0, unmet)
        if granted[name] > 0 then any = true end
      end
    end
    if not any then return nil end
  end
  any = false
  for _, name in ipairs(names) do
    local owner, amount = cluster.reserved_for[name], 0
    if owner then
      local mine = stage == 1 and owner == f.role or stage == 2 and cluster.within(f.role, owner)
      if mine then amount = free[name] or 0 end
    else
      local more = round((free[name] or 0) - granted[name])
      if q and q.limits[name] then
        more = min(more, max(0, round(q.limits[name] - cluster.consumed(q, name, headroom) - granted[name])))
      end
      if held_back then more = min(more, max(0, round(available[name] - required[name]))) end
      amount = round(granted[name] + more)
    end
    if amount > 0 then offer[name], any = amount, true end
  end
  if any then return offer, granted end
end

-- A round when some role has quota or something is reserved: stage 1 (if any quota has a guarantee) offers to roles
-- whose guarantees are unmet, stage 2 (over the agents shuffled again) to everyone; an agent
-- is offered until nothing allocatable is left of it.
local function quota_round(agents, top)
  local headroom = cluster.headroom()
  local guaranteed = false
  for _, q in pairs(cluster.quotas) do
    for _, amount in pairs(q.guarantees) do if amount > 0 then guaranteed = true end end
  end
  local offers = {}
  for stage = guaranteed and 1 or 2, 2 do
    if stage == 2 and guaranteed then cluster.shuffle(agents) end
    for _, a in ipairs(agents) do
      while true do
        local free = cluster.free(a)
        if not cluster.allocatable(free) then break end
        local path, offer, granted = {}, nil, nil
        local f = choose(top, function(f)
          offer, granted = quota_offer(stage, f, cluster.quota_of(f), free, headroom)
          return offer ~= nil and cluster.allocatable(offer) and cluster.eligible(f, a, offer)
        end, path)
        if not f then break end
        offers[#offers + 1] = cluster.offer(f, a, offer)
        settle(f, path)
        for _, name in ipairs(names) do
          headroom.required[name] = max(0, round(headroom.required[name] - granted[name]))
          headroom.available[name] = max(0, round(headroom.available[name] - (offer[name] or 0)))
        end
      end
    end
  end
  return offers
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
      if f.active and not f.suppressed and f.subscribed ~= false then
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

  if next(cluster.quotas) or cluster.any_reserved then return cluster.finish(request, quota_round(agents, top)) end
  local offers = {}
  for _, a in ipairs(agents) do
    local free = cluster.free(a)
    if cluster.allocatable(free) then
      local path = {}
      local f = choose(top, function(f) return cluster.eligible(f, a, free) end, path)
      if f then
        offers[#offers + 1] = cluster.offer(f, a, free)
        settle(f, path)
      end
    end
  end
  return cluster.finish(request, offers)
end
