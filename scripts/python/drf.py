"""Hierarchical DRF, the built-in `hierarchical` allocator, as a Python policy.

It makes the same decisions, offer for offer, as the built-in allocator given the same seed
(a test checks it on every bundled workload). Each round: shuffle the active agents; offer
each agent's free resources to the first eligible framework, taking roles by dominant share
(divided by weight), then the frameworks of the role by dominant share; ties go to fewer
allocations, then to the name.
"""
import heapq
import math

MASK = (1 << 64) - 1
names = []          # every resource name, in the order first seen
total = {}          # cluster total per name
fair = {}
agents, agent_list = {}, []
frameworks, roles = {}, {}
options = {"allocation_interval": 1.0, "min_allocatable_resources": [], "fairness_excluded_resource_names": []}
state = {"now": 0.0, "paused": False, "rng": 0}


def _round(x):
    """Mesos's scalars have three decimals; round as the built-in does, after every step."""
    if x >= 0:
        return math.floor(x * 1000 + 0.5) / 1000
    return -math.floor(-x * 1000 + 0.5) / 1000


def _learn(resources):
    for name in resources:
        if name not in total:
            names.append(name)
            total[name] = 0.0
            fair[name] = name not in options["fairness_excluded_resource_names"]


def _next_random():
    """SplitMix64, as the built-in uses it."""
    state["rng"] = (state["rng"] + 0x9E3779B97F4A7C15) & MASK
    z = state["rng"]
    z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & MASK
    z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & MASK
    return z ^ (z >> 31)


def _shuffle(items):
    for i in range(len(items) - 1, 0, -1):
        j = (_next_random() >> 11) % (i + 1)
        items[i], items[j] = items[j], items[i]


def _share(allocated, weight):
    s = 0.0
    for name in names:
        if fair[name] and total[name] > 0:
            s = max(s, allocated.get(name, 0.0) / total[name])
    return s / weight


def _account(f, a, amounts, sign):
    """Adds (sign 1) or removes (sign -1) what a framework holds on an agent."""
    held = a["by_framework"].setdefault(f["id"], {})
    for table in (f["allocated"], roles[f["role"]]["allocated"], a["allocated"], held):
        for name, amount in amounts.items():
            table[name] = _round(table.get(name, 0.0) + sign * amount)
    if all(amount <= 0 for amount in held.values()):
        del a["by_framework"][f["id"]]


def _role(name):
    if name not in roles:
        roles[name] = {"name": name, "weight": 1.0, "allocated": {}, "allocations": 0, "frameworks": []}
    return roles[name]


def _eligible(f, a, free):
    flt = f["filters"].get(a["id"])
    if flt is None or flt["expires"] <= state["now"]:
        return True
    return any(_round(free.get(n, 0.0) - flt["refused"].get(n, 0.0)) > 0 for n in names)


def _allocatable(free):
    for minimum in options["min_allocatable_resources"]:
        needed = {n: v for n, v in minimum.items() if v > 0}
        if needed and all(free.get(n, 0.0) >= v for n, v in needed.items()):
            return True
    return False


def _apply(offers, sign):
    """Accounts offers as allocated (sign 1) or takes them back (sign -1)."""
    for offer in offers:
        f, a = frameworks[offer["framework_id"]], agents[offer["agent_id"]]
        _account(f, a, offer["resources"], sign)
        f["allocations"] += sign
        roles[f["role"]]["allocations"] += sign


def initialize(o):
    options.update(o)
    state["rng"] = o.get("seed", 0) & MASK
    for name in names:
        fair[name] = name not in options["fairness_excluded_resource_names"]


def add_agent(request):
    info = request["agent"]
    if info["id"] in agents:
        raise ValueError(f"agent '{info['id']}' was already added")
    _learn(info["resources"])
    for name, amount in info["resources"].items():
        total[name] = _round(total[name] + amount)
    a = {"id": info["id"], "total": info["resources"], "allocated": {}, "by_framework": {}, "active": True}
    agents[a["id"]] = a
    agent_list.append(a)
    for used in request["used"]:
        _account(frameworks[used["framework_id"]], a, used["resources"], 1)


def remove_agent(request):
    a = agents.pop(request["agent_id"])
    for fid, held in list(a["by_framework"].items()):
        _account(frameworks[fid], a, held, -1)
    for name, amount in a["total"].items():
        total[name] = _round(total[name] - amount)
    a["removed"] = True
    for f in frameworks.values():
        f["filters"].pop(a["id"], None)


def update_agent(request):
    a = agents[request["agent"]["id"]]
    _learn(request["agent"]["resources"])
    for name in names:
        total[name] = _round(total[name] - a["total"].get(name, 0.0) + request["agent"]["resources"].get(name, 0.0))
    a["total"] = request["agent"]["resources"]


def add_framework(request):
    info = request["framework"]
    if info["id"] in frameworks:
        raise ValueError(f"framework '{info['id']}' was already added")
    f = {"id": info["id"], "role": info["role"], "active": request["active"], "suppressed": False,
         "allocated": {}, "allocations": 0, "filters": {}}
    frameworks[f["id"]] = f
    _role(info["role"])["frameworks"].append(f)
    for used in request["used"]:
        _account(f, agents[used["agent_id"]], used["resources"], 1)


def remove_framework(request):
    f = frameworks.pop(request["framework_id"])
    for a in agent_list:
        if f["id"] in a["by_framework"]:
            _account(f, a, a["by_framework"][f["id"]], -1)
    roles[f["role"]]["frameworks"].remove(f)


def update_framework(request):
    f, info = frameworks[request["framework"]["id"]], request["framework"]
    if f["role"] == info["role"]:
        return
    old, new = roles[f["role"]], _role(info["role"])
    for name, amount in f["allocated"].items():
        old["allocated"][name] = _round(old["allocated"].get(name, 0.0) - amount)
        new["allocated"][name] = _round(new["allocated"].get(name, 0.0) + amount)
    old["frameworks"].remove(f)
    new["frameworks"].append(f)
    f["role"] = info["role"]


def activate_framework(request): frameworks[request["framework_id"]]["active"] = True
def deactivate_framework(request): frameworks[request["framework_id"]]["active"] = False
def activate_agent(request): agents[request["agent_id"]]["active"] = True
def deactivate_agent(request): agents[request["agent_id"]]["active"] = False
def suppress_offers(request): frameworks[request["framework_id"]]["suppressed"] = True
def pause(request): state["paused"] = True
def resume(request): state["paused"] = False


def revive_offers(request):
    f = frameworks[request["framework_id"]]
    f["suppressed"], f["filters"] = False, {}


def update_weights(request):
    for w in request["weights"]:
        if not (w["weight"] > 0 and math.isfinite(w["weight"])):
            raise ValueError(f"weight of role '{w['role']}' must be positive")
        _role(w["role"])["weight"] = w["weight"]


def recover_resources(request):
    f, a = frameworks.get(request["framework_id"]), agents.get(request["agent_id"])
    if f is None or a is None:
        return
    _learn(request["resources"])
    held = a["by_framework"].get(f["id"], {})
    for name, amount in request["resources"].items():
        if _round(held.get(name, 0.0) - amount) < 0:
            raise ValueError(f"{f['id']} gives back more {name} than it holds")
    _account(f, a, request["resources"], -1)
    filters = request.get("filters")
    if filters:
        refuse = filters["refuse_seconds"]
        if not math.isfinite(refuse) or refuse < 0:
            refuse = 5.0
        refuse = min(refuse, 365 * 24 * 3600)
        if refuse > 0:
            expires = state["now"] + max(refuse, options["allocation_interval"])
            f["filters"][a["id"]] = {"expires": expires, "refused": request["resources"]}


def allocate(request):
    now = state["now"] = request["now"]
    if state["paused"]:
        return []
    for f in frameworks.values():
        f["filters"] = {k: v for k, v in f["filters"].items() if v["expires"] > now}
    order = [a for a in agent_list if a["active"] and not a.get("removed")]
    _shuffle(order)

    # DRF order of the roles, and of the frameworks of each that can take offers: heaps of
    # (share, allocations, name) keys, popped in order and pushed back with new keys.
    role_heap, framework_heaps = [], {}
    for r in roles.values():
        heap = [(_share(f["allocated"], 1.0), f["allocations"], f["id"]) for f in r["frameworks"]
                if f["active"] and not f["suppressed"]]
        if heap:
            heapq.heapify(heap)
            framework_heaps[r["name"]] = heap
            heapq.heappush(role_heap, (_share(r["allocated"], r["weight"]), r["allocations"], r["name"]))

    offers = []
    for a in order:
        free = {n: _round(amount - a["allocated"].get(n, 0.0)) for n, amount in a["total"].items()}
        if not _allocatable(free):
            continue
        skipped_roles, chosen = [], None
        while role_heap and chosen is None:
            role_key = heapq.heappop(role_heap)
            heap, skipped = framework_heaps[role_key[2]], []
            while heap and chosen is None:
                key = heapq.heappop(heap)
                if _eligible(frameworks[key[2]], a, free):
                    chosen = (role_key[2], key[2])
                else:
                    skipped.append(key)
            for key in skipped:
                heapq.heappush(heap, key)
            if chosen is None:
                skipped_roles.append(role_key)
        for key in skipped_roles:
            heapq.heappush(role_heap, key)
        if chosen is None:
            continue
        r, f = roles[chosen[0]], frameworks[chosen[1]]
        _account(f, a, free, 1)
        f["allocations"] += 1
        r["allocations"] += 1
        heapq.heappush(framework_heaps[r["name"]], (_share(f["allocated"], 1.0), f["allocations"], f["id"]))
        heapq.heappush(role_heap, (_share(r["allocated"], r["weight"]), r["allocations"], r["name"]))
        offers.append({"framework_id": f["id"], "agent_id": a["id"],
                       "resources": {n: v for n, v in free.items() if v > 0}})
    if request.get("dry_run"):  # a shadow round: decide, keep nothing
        _apply(offers, -1)
    return offers


def offers_made(request):
    """After a shadow round: the offers the active allocator made count as this one's."""
    _apply(request["offers"], 1)


# Hot reload. The host tells a new version of this script the cluster (agents, frameworks,
# what each holds); these two carry what only the policy knows, so that saving the script
# again changes no decision: the clock, the shuffle's state, the agents' order, refusal
# filters and the allocation counts that break ties.
def export_state(request=None):
    return {
        "now": state["now"],
        "rng": state["rng"],
        "agents": [a["id"] for a in agent_list if not a.get("removed")],
        "frameworks": [{"id": f["id"], "allocations": f["allocations"],
                        "filters": [{"agent": agent, **flt} for agent, flt in f["filters"].items()]}
                       for f in frameworks.values()],
        "roles": [{"name": r["name"], "allocations": r["allocations"]} for r in roles.values()],
    }


def import_state(saved):
    state["now"], state["rng"] = saved["now"], saved["rng"]
    order = [agents[i] for i in saved["agents"] if i in agents]
    if len(order) == len(agent_list):
        agent_list[:] = order
    for s in saved["frameworks"]:
        f = frameworks.get(s["id"])
        if f is not None:
            f["allocations"] = s["allocations"]
            for flt in s["filters"]:
                f["filters"][flt["agent"]] = {"expires": flt["expires"], "refused": flt["refused"]}
    for s in saved["roles"]:
        if s["name"] in roles:
            roles[s["name"]]["allocations"] = s["allocations"]
