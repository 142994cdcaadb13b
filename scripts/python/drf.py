"""Hierarchical DRF, the built-in `hierarchical` allocator, as a Python policy.

It makes the same decisions, offer for offer, as the built-in allocator given the same seed
(a test checks it on every bundled workload). Each round: shuffle the active agents; offer
each agent's free resources to the first eligible framework, taking roles by dominant share
(divided by weight), then the frameworks of the role by dominant share; ties go to fewer
allocations, then to the name. Roles are a tree (eng/ml is a child of eng): siblings are taken
by their whole subtree's share, level by level, and a role's own frameworks sit among its
children at weight 1.

cluster.py keeps the books (agents, frameworks, what each holds, refusal filters); this file
is only the deciding.
"""
import heapq

import cluster

cluster.track(globals())

names, total, fair, frameworks, roles = cluster.names, cluster.total, cluster.fair, cluster.frameworks, cluster.roles


def _share(allocated, weight):
    """A dominant share: the largest fraction of the cluster's total of any resource that
    counts for fairness, divided by the weight."""
    s = 0.0
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


def _choose(heap, entries, framework_heaps, a, free, path):
    """The first framework in DRF order under `heap` (a heap of role keys) that may take `free`
    on agent a. A key is a role's own frameworks (a leaf, or `own`), searched in order, or an
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
                if cluster.eligible(frameworks[fkey[2]], a, free):
                    chosen = frameworks[fkey[2]]
                else:
                    skipped.append(fkey)
            for fkey in skipped:
                heapq.heappush(fheap, fkey)
        else:
            chosen = _choose(entries[r["name"]], entries, framework_heaps, a, free, path)
        if chosen is None:
            passed.append(key)
        else:
            path.append((heap, r, key[3]))
    for key in passed:
        heapq.heappush(heap, key)
    return chosen


def allocate(request):
    if not cluster.begin(request):
        return []
    agents = cluster.shuffled_agents()
    # Each role's frameworks that may take an offer, and each role with such a framework in its
    # subtree as a key among its siblings (the top-level ones in `top`).
    top, entries, framework_heaps, live = [], {name: [] for name in roles}, {}, set()
    for r in roles.values():
        heap = [(_share(f["allocated"], 1.0), f["allocations"], f["id"]) for f in r["frameworks"]
                if f["active"] and not f["suppressed"]]
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

    offers = []
    for a in agents:
        free = cluster.free(a)
        if not cluster.allocatable(free):
            continue
        path = []
        f = _choose(top, entries, framework_heaps, a, free, path)
        if f is None:
            continue
        offers.append(cluster.offer(f, a, free))
        heapq.heappush(framework_heaps[f["role"]], (_share(f["allocated"], 1.0), f["allocations"], f["id"]))
        for heap, r, own in path:
            heapq.heappush(heap, _entry(r, own))
    return cluster.finish(request, offers)
