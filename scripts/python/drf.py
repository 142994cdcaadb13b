"""Hierarchical DRF, the built-in `hierarchical` allocator, as a Python policy.

It makes the same decisions, offer for offer, as the built-in allocator given the same seed
(a test checks it on every bundled workload). Each round: shuffle the active agents; offer
each agent's free resources to the first eligible framework, taking roles by dominant share
(divided by weight), then the frameworks of the role by dominant share; ties go to fewer
allocations, then to the name.

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


def _choose(role_heap, framework_heaps, a, free):
    """The first framework in DRF order that may take `free` on agent a, and its role; the
    roles and frameworks passed over go back into their heaps. Heap keys are (share,
    allocations, name)."""
    passed_roles, chosen = [], None
    while role_heap and chosen is None:
        role_key = heapq.heappop(role_heap)
        heap, passed = framework_heaps[role_key[2]], []
        while heap and chosen is None:
            key = heapq.heappop(heap)
            if cluster.eligible(frameworks[key[2]], a, free):
                chosen = (roles[role_key[2]], frameworks[key[2]])
            else:
                passed.append(key)
        for key in passed:
            heapq.heappush(heap, key)
        if chosen is None:
            passed_roles.append(role_key)
    for key in passed_roles:
        heapq.heappush(role_heap, key)
    return chosen


def allocate(request):
    if not cluster.begin(request):
        return []
    agents = cluster.shuffled_agents()
    # The roles with frameworks that can take offers, each with its frameworks, in heaps.
    role_heap, framework_heaps = [], {}
    for r in roles.values():
        heap = [(_share(f["allocated"], 1.0), f["allocations"], f["id"]) for f in r["frameworks"]
                if f["active"] and not f["suppressed"]]
        if heap:
            heapq.heapify(heap)
            framework_heaps[r["name"]] = heap
            heapq.heappush(role_heap, (_share(r["allocated"], r["weight"]), r["allocations"], r["name"]))

    offers = []
    for a in agents:
        free = cluster.free(a)
        if not cluster.allocatable(free):
            continue
        chosen = _choose(role_heap, framework_heaps, a, free)
        if chosen is None:
            continue
        r, f = chosen
        offers.append(cluster.offer(f, a, free))
        heapq.heappush(framework_heaps[r["name"]], (_share(f["allocated"], 1.0), f["allocations"], f["id"]))
        heapq.heappush(role_heap, (_share(r["allocated"], r["weight"]), r["allocations"], r["name"]))
    return cluster.finish(request, offers)
