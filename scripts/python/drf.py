"""Hierarchical DRF, the built-in `hierarchical` allocator, as a Python policy.

It makes the same decisions, offer for offer, as the built-in allocator given the same seed
(a test checks it on every bundled workload). Each round: shuffle the active agents; offer
each agent's free resources to the first eligible framework, taking roles by dominant share
(divided by weight), then the frameworks of the role by dominant share; ties go to fewer
allocations, then to the name. Roles are a tree (eng/ml is a child of eng): siblings are taken
by their whole subtree's share, level by level, and a role's own frameworks sit among its
children at weight 1.

With quota (Mesos 1.9's two stages; a top-level role's quota covers its subtree): roles with
unmet guarantees are offered first what meets them, and every offer stays within its role's
limits and leaves the headroom that unmet guarantees need.

cluster.py keeps the books (agents, frameworks, what each holds, refusal filters, quotas and
their headroom); this file is only the deciding.
"""
import heapq

import cluster

cluster.track(globals())

names, total, fair, frameworks, roles = cluster.names, cluster.total, cluster.fair, cluster.frameworks, cluster.roles
rounded = cluster.rounded


def _share(allocated, weight):
    """A dominant share: the largest fraction of the cluster's total of any resource that
    counts for fairness (a reserved cpu counts as a cpu), divided by the weight."""
    s = 0.0
    if cluster.any_reserved():
        held, totals = cluster.by_name(allocated), cluster.by_name(total)
        for name, t in totals.items():
            if fair[name] and t > 0:
                s = max(s, held.get(name, 0.0) / t)
        return s / weight
    for name in names:
        if fair[name] and total[name] > 0:
            s = max(s, allocated.get(name, 0.0) / total[name])
    return s / weight


def _entry(r, own):
    """A role's key among its siblings (its subtree), or among its children (its own
    frameworks): (share, allocations, name, own)."""
    if own:
        return (_share(r["allocated"], 1.0), r["allocations"], r["own_name"], True)
    return (_share(r["tree_allocated"], r["weight"]), r["tree_allocations"], r["name"], False)


def _choose(heap, entries, framework_heaps, accept, path):
    """The first framework in DRF order under `heap` (a heap of role keys) that `accept`s. A key is a role's own frameworks (a leaf, or `own`), searched in order, or an
    inner role, searched in turn. What is passed over goes back; the keys on the way to the
    chosen framework are added to `path`, to go back once their shares change."""
    passed, chosen = [], None
    while heap and chosen is None:
        key = heapq.heappop(heap)
        r = roles[key[2]] if not key[3] else roles[key[2][:-2]]
        if key[3] or not r["children"]:
            fheap, skipped = framework_heaps[r["name"]], []
            while fheap and chosen is None:
                fkey = heapq.heappop(fheap)
                client = frameworks[fkey[2]]["clients"][r["name"]]
                if accept(client):
                    chosen = client
                else:
                    skipped.append(fkey)
            for fkey in skipped:
                heapq.heappush(fheap, fkey)
        else:
            chosen = _choose(entries[r["name"]], entries, framework_heaps, accept, path)
        if chosen is None:
            passed.append(key)
        else:
            path.append((heap, r, key[3]))
    for key in passed:
        heapq.heappush(heap, key)
    return chosen


def _settle(f, path, framework_heaps):
    """After framework f was offered something: its key and those on the path to it go back
    into their heaps with their new shares."""
    heapq.heappush(framework_heaps[f["role"]], (_share(f["allocated"], 1.0), f["allocations"], f["id"]))
    for heap, r, own in path:
        heapq.heappush(heap, _entry(r, own))


def _quota_offer(stage, f, q, free, headroom):
    """What to offer from `free` to framework f under quota q (or None) in `stage`: what f's
    role reserved (in stage 1; in stage 2 what it or an ancestor reserved), whole; then, of
    unreserved resources, in stage 1 what meets q's unmet guarantees (nothing at all if none of
    it does) and as much more as q's limits and the headroom left over the required one allow,
    in stage 2 `free` cut to the limits and that headroom. Returns (offer, the part of it
    meeting guarantees), or None."""
    required, available = headroom["required"], headroom["available"]
    reserved_for = cluster.reserved_for
    held_back = any(required.get(name, 0.0) > 0 for name in names)
    granted = dict.fromkeys(names, 0.0)
    if stage == 1:
        if q is None:
            return None
        for name in names:
            if reserved_for[name] is None:
                unmet = max(0.0, rounded(q["guarantees"].get(name, 0.0) - cluster.consumed(q, name, headroom)))
                granted[name] = min(free.get(name, 0.0), unmet)
        if not any(amount > 0 for amount in granted.values()):
            return None
    offer = {}
    for name in names:
        owner = reserved_for[name]
        if owner is not None:
            mine = owner == f["role"] if stage == 1 else cluster.within(f["role"], owner)
            amount = free.get(name, 0.0) if mine else 0.0
        else:
            more = rounded(free.get(name, 0.0) - granted[name])
            if q is not None and name in q["limits"]:
                consumed = cluster.consumed(q, name, headroom)
                more = min(more, max(0.0, rounded(q["limits"][name] - consumed - granted[name])))
            if held_back:
                more = min(more, max(0.0, rounded(available[name] - required[name])))
            amount = rounded(granted[name] + more)
        if amount > 0:
            offer[name] = amount
    return (offer, granted) if offer else None


def _quota_round(agents, top, entries, framework_heaps):
    """A round when some role has quota or something is reserved: stage 1 (if any quota has a guarantee) offers to roles
    whose guarantees are unmet, stage 2 (over the agents shuffled again) to everyone; an agent
    is offered until nothing allocatable is left of it."""
    headroom = cluster.headroom()
    guaranteed = any(amount > 0 for q in cluster.quotas.values() for amount in q["guarantees"].values())
    offers = []
    for stage in (1, 2) if guaranteed else (2,):
        if stage == 2 and guaranteed:
            cluster.shuffle(agents)
        for a in agents:
            while True:
                free = cluster.free(a)
                if not cluster.allocatable(free):
                    break
                weighed = {}

                def accept(f):
                    weighed["it"] = _quota_offer(stage, f, cluster.quota_of(f), free, headroom)
                    if weighed["it"] is None:
                        return False
                    offer = weighed["it"][0]
                    return cluster.allocatable(offer) and cluster.eligible(f, a, offer)

                path = []
                f = _choose(top, entries, framework_heaps, accept, path)
                if f is None:
                    break
                offer, granted = weighed["it"]
                made = cluster.offer(f, a, offer)
                if made is not None:
                    offers.append(made)
                _settle(f, path, framework_heaps)
                for name in names:
                    headroom["required"][name] = max(0.0, rounded(headroom["required"][name] - granted[name]))
                    headroom["available"][name] = max(0.0, rounded(headroom["available"][name] - offer.get(name, 0.0)))
    return offers


def allocate(request):
    if not cluster.begin(request):
        return []
    agents = cluster.shuffled_agents()
    # Each role's frameworks that may take an offer, and each role with such a framework in its
    # subtree as a key among its siblings (the top-level ones in `top`).
    top, entries, framework_heaps, live = [], {name: [] for name in roles}, {}, set()
    for r in roles.values():
        heap = [(_share(f["allocated"], 1.0), f["allocations"], f["id"]) for f in r["frameworks"]
                if f["active"] and not f["suppressed"] and f.get("subscribed", True)]
        if not heap:
            continue
        heapq.heapify(heap)
        framework_heaps[r["name"]] = heap
        if r["children"]:
            heapq.heappush(entries[r["name"]], _entry(r, True))
        node = r
        while node is not None and node["name"] not in live:
            live.add(node["name"])
            parent = node["parent"]
            heapq.heappush(entries[parent["name"]] if parent is not None else top, _entry(node, False))
            node = parent

    if cluster.quotas or cluster.any_reserved():
        return cluster.finish(request, _quota_round(agents, top, entries, framework_heaps))
    offers = []
    for a in agents:
        free = cluster.free(a)
        if not cluster.allocatable(free):
            continue
        path = []
        f = _choose(top, entries, framework_heaps, lambda f: cluster.eligible(f, a, free), path)
        if f is None:
            continue
        offers.append(cluster.offer(f, a, free))
        _settle(f, path, framework_heaps)
    return cluster.finish(request, offers)
