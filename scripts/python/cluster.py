"""The bookkeeping every allocator policy needs, kept for it, so that a policy's own lines are
about deciding. It follows the cluster through the allocator calls (agents and frameworks
coming and going, what each holds, refusal filters, suppression, weights, the clock), and
carries its state across a hot reload. A policy uses it like this (drf.py is a whole one):

    import cluster
    cluster.track(globals())    # answers every allocator call but allocate: add_agent, ...

    def allocate(request):
        if not cluster.begin(request):      # paused
            return []
        offers = []
        for agent in cluster.shuffled_agents():
            free = cluster.free(agent)
            # choose a framework f that may have them, then:
            offers.append(cluster.offer(f, agent, free))
        return cluster.finish(request, offers)  # a dry run keeps nothing

What a policy may read (and change only through the functions below):
    agents       id -> {id, total, allocated, active, by_framework: {client key -> held}}
    frameworks   id -> {id, role, active, suppressed, allocated, allocations, filters, clients}
                 A framework in several roles (Mesos's MULTI_ROLE: `roles` in add_framework) has a
                 client per role, f["clients"][role] = {id, role, key, framework: f, active,
                 suppressed, subscribed, allocated, allocations, filters}: offers, filters,
                 suppression and shares are per client. A framework in one role is its own only
                 client (f["clients"][f["role"]] is f), so a policy written for one role per
                 framework reads it as before.
    clients      key -> client, every framework in each of its roles
    roles        name -> {name, weight, allocated, allocations, frameworks: [...], parent, children,
                 tree_allocated, tree_allocations, own_name}: roles are paths (eng/ml/training);
                 `allocated` and `allocations` are the role's own frameworks', the `tree_` ones its
                 whole subtree's; `own_name` is "name/.", the role's own frameworks among its
                 children (Mesos's virtual leaf, weight 1)
    roots        the top-level roles, in the order first seen
    names        resource names in the order first seen; total[name] the cluster's total;
                 fair[name] False for the names the options leave out of fairness
    base         a resource's unreserved name: base["cpus(eng)"] is "cpus", a resource reserved for
                 role eng (reserved_for["cpus(eng)"] == "eng"); _state["any_reserved"] once any
                 is seen (any_reserved()). Reserved resources go only to their role and its
                 subroles (within(role, owner)); for shares and min_allocatable_resources they
                 count as their unreserved name (by_name(amounts)).
    quotas       top-level role name -> {role: (its entry in roles), guarantees, limits}: amounts
                 by resource name; a name without a limit has none. A role's quota covers its
                 subtree: what the role's tree_allocated holds is what it consumes.
                 quota_of(f) is the quota over framework f.
    options
A framework's `allocations` counts the offers it was made (DRF breaks ties with it). Offers to
the same framework on the same agent in one round are one offer (offer() merges them), counted
once. Each
script imports its own copy of this file (the bridge imports a script's helpers afresh for
it), so two policies never share these books.
"""
import math

MASK = (1 << 64) - 1
names = []
total = {}
fair = {}
agents, frameworks, roles = {}, {}, {}
clients = {}
roots = []
quotas = {}
base, reserved_for = {}, {}
options = {"allocation_interval": 1.0, "min_allocatable_resources": [], "fairness_excluded_resource_names": []}
_order = []  # the agents, in the order they were added
# Frameworks an agent reported usage for before they were added (after a failover agents and
# frameworks come back in any order): id -> {id, allocated, allocations}, no role. add_framework
# adopts one; it is never offered anything. (The host tells each usage once.)
_waiting = {}


def _key(fid, role):
    """A client's key: its framework and role."""
    return (fid, role or "")


def _client(fid, role=None):
    """The client of framework `fid` in `role` (None or "": its only role), added or waiting."""
    f = frameworks.get(fid)
    if f is None:
        # Not added yet: what agents reported without a role is whichever role a give-back names.
        return _waiting.get(_key(fid, role)) or _waiting.get(_key(fid, ""))
    if role:
        return f["clients"].get(role)
    if len(f["clients"]) != 1:
        raise ValueError(f"framework '{fid}' is in several roles: say in which")
    return next(iter(f["clients"].values()))


def _as_client(x):
    """A client, or a framework in one role (its own client)."""
    if "key" in x:
        return x
    raise ValueError(f"framework '{x['id']}' is in several roles: offer through frameworks[id]['clients'][role]")
SLACK = 1e-6  # a round's time is a sum of float intervals: clock times compare with this slack
_state = {"now": 0.0, "paused": False, "rng": 0, "tracking": False, "any_reserved": False}
_made = {}  # this round's offers by (framework id, agent id)


def rounded(x):
    """Mesos's scalars have three decimals; round as the built-in does, after every step."""
    if x >= 0:
        return math.floor(x * 1000 + 0.5) / 1000
    return -math.floor(-x * 1000 + 0.5) / 1000


def _learn_name(name):
    if name in total:
        return
    # "cpus(eng)" is cpus reserved for role eng (the host checked the role).
    unreserved, owner = name, None
    if name.endswith(")") and "(" in name:
        unreserved, owner = name[:-1].split("(", 1)
        _learn_name(unreserved)
        _state["any_reserved"] = True
    names.append(name)
    total[name] = 0.0
    base[name], reserved_for[name] = unreserved, owner
    fair[name] = unreserved not in options["fairness_excluded_resource_names"]


def _learn(resources):
    for name in resources:
        _learn_name(name)


def any_reserved():
    """Whether any resource was seen reserved."""
    return _state["any_reserved"]


def by_name(amounts):
    """`amounts` summed by unreserved name (reserved cpus are cpus, for shares and minimums)."""
    sums = {}
    for name, amount in amounts.items():
        unreserved = base.get(name, name)
        sums[unreserved] = rounded(sums.get(unreserved, 0.0) + amount)
    return sums


def within(role, owner):
    """Whether `role` is `owner` or one of its subroles: who may be offered what `owner` reserved."""
    return role == owner or role.startswith(owner + "/")


def _add(table, amounts, sign):
    for name, amount in amounts.items():
        table[name] = rounded(table.get(name, 0.0) + sign * amount)


def _role_add(r, amounts, sign):
    """What role r's own frameworks hold, and what its subtree and each ancestor's holds."""
    _add(r["allocated"], amounts, sign)
    while r is not None:
        _add(r["tree_allocated"], amounts, sign)
        r = r["parent"]


def _role_count(r, sign):
    """An offer counted to role r's own frameworks (sign 1) or taken back (-1), up the tree."""
    r["allocations"] += sign
    while r is not None:
        r["tree_allocations"] += sign
        r = r["parent"]


def _account(f, a, amounts, sign):
    """Adds (sign 1) or takes away (sign -1) what framework f holds on agent a."""
    held = a["by_framework"].setdefault(f["key"], {})
    # `held` last: `amounts` may be `held` itself (what a framework holds, taken back whole).
    _add(f["allocated"], amounts, sign)
    if f.get("framework") is not None:
        _role_add(roles[f["role"]], amounts, sign)
    _add(a["allocated"], amounts, sign)
    _add(held, amounts, sign)
    if all(amount <= 0 for amount in held.values()):
        del a["by_framework"][f["key"]]


def _rekey(c, key):
    """Gives client c a new key (its role changed, or a waiting one is adopted), in the
    agents' books too."""
    if c["key"] == key:
        return
    for a in _order:
        if c["key"] in a["by_framework"]:
            a["by_framework"][key] = a["by_framework"].pop(c["key"])
    c["key"] = key


def _role(name):
    """The role `name` (a path the host checked), made with its ancestors if new."""
    if name not in roles:
        parent = _role(name.rsplit("/", 1)[0]) if "/" in name else None
        roles[name] = {"name": name, "own_name": name + "/.", "weight": 1.0, "allocated": {}, "allocations": 0,
                       "tree_allocated": {}, "tree_allocations": 0, "frameworks": [], "parent": parent,
                       "children": []}
        (parent["children"] if parent is not None else roots).append(roles[name])
    return roles[name]


def _apply(offers, sign):
    """Offers counted as made (sign 1), or taken back (sign -1)."""
    for offer in offers:
        f, a = _client(offer["framework_id"], offer.get("role")), agents[offer["agent_id"]]
        _account(f, a, offer["resources"], sign)
        f["allocations"] += sign
        _role_count(roles[f["role"]], sign)


# For allocate ------------------------------------------------------------------------------

def begin(request):
    """Starts a round at request's `now`, dropping expired refusal filters; False while paused."""
    if not _state["tracking"]:
        raise RuntimeError("cluster.py sees no allocator calls: call cluster.track(globals()) at the top of the policy")
    now = _state["now"] = request["now"]
    _made.clear()
    if _state["paused"]:
        return False
    for f in clients.values():
        # A filter holds through the round at its expiry time (Mesos, MESOS-4302).
        f["filters"] = {k: v for k, v in f["filters"].items() if v["expires"] + SLACK >= now}
    return True


def _next_random():
    """SplitMix64, seeded from the options, as the built-in uses it."""
    _state["rng"] = (_state["rng"] + 0x9E3779B97F4A7C15) & MASK
    z = _state["rng"]
    z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & MASK
    z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & MASK
    return z ^ (z >> 31)


def shuffle(items):
    """Shuffles `items` in place, as the built-in shuffles with the same seed."""
    for i in range(len(items) - 1, 0, -1):
        j = (_next_random() >> 11) % (i + 1)
        items[i], items[j] = items[j], items[i]
    return items


def shuffled_agents():
    """The active agents, in the order they were added, shuffled as the built-in shuffles them."""
    return shuffle([a for a in _order if a["active"]])


def quota_of(f):
    """The quota over framework f: its top-level role's, or None."""
    return quotas.get(f["role"].split("/", 1)[0])


def headroom():
    """The quota headroom at the start of a round (Mesos's): `required`, what the unmet
    guarantees of all quotas add up to, `available`, what the cluster has unallocated, by
    name, and `reserved`, per quota'd role, what its subtree has reserved by unreserved name:
    it counts as consumed, allocated or not (consumed(q, name, headroom))."""
    required, available, reserved = {}, {}, {top: {} for top in quotas}
    for a in _order:
        for name, amount in a["total"].items():
            owner = reserved_for.get(name)
            top = reserved.get(owner.split("/", 1)[0]) if owner else None
            if top is not None:
                top[base[name]] = rounded(top.get(base[name], 0.0) + amount)
    room = {"required": required, "available": available, "reserved": reserved}
    for name in names:
        need = allocated = 0.0
        for q in quotas.values():
            need = rounded(need + max(0.0, q["guarantees"].get(name, 0.0) - consumed(q, name, room)))
        for a in _order:
            allocated = rounded(allocated + a["allocated"].get(name, 0.0))
        required[name], available[name] = need, max(0.0, rounded(total[name] - allocated))
    return room


def consumed(q, name, room):
    """What quota q's role consumes of the unreserved resource `name`: what its subtree holds of
    it, and what the subtree reserved of it."""
    return rounded(q["role"]["tree_allocated"].get(name, 0.0) + room["reserved"][q["role"]["name"]].get(name, 0.0))


def free(a):
    """What agent a has free, per resource name (none of a resource it holds more of than its
    total: it shrank, or reported more in use than it has)."""
    return {n: max(0.0, rounded(amount - a["allocated"].get(n, 0.0))) for n, amount in a["total"].items()}


def allocatable(free):
    """Whether `free` is worth offering: it covers one of the options' min_allocatable_resources."""
    if _state["any_reserved"]:
        free = by_name(free)
    for minimum in options["min_allocatable_resources"]:
        needed = {n: v for n, v in minimum.items() if v > 0}
        if needed and all(free.get(n, 0.0) >= v for n, v in needed.items()):
            return True
    return False


def eligible(f, a, free):
    """Whether framework f may be offered `free` on agent a: no refusal filter of f's for a, or
    `free` has more of something than f refused there."""
    f = _as_client(f)
    if not f.get("subscribed", True):
        return False
    flt = f["filters"].get(a["id"])
    if flt is None or flt["expires"] + SLACK < _state["now"]:
        return True
    return any(rounded(free.get(n, 0.0) - flt["refused"].get(n, 0.0)) > 0 for n in names)


def offer(f, a, free):
    """Offers `free` on agent a to framework f: counted as allocated from now on. Returns the
    offer, for allocate's answer; None when f already has an offer on a this round, which the
    amounts are added to instead."""
    f = _as_client(f)
    _account(f, a, free, 1)
    earlier = _made.get((f["key"], a["id"]))
    if earlier is not None:
        _add(earlier["resources"], free, 1)
        return None
    f["allocations"] += 1
    _role_count(roles[f["role"]], 1)
    made = {"framework_id": f["id"], "role": f["role"], "agent_id": a["id"],
            "resources": {n: v for n, v in free.items() if v > 0}}
    _made[(f["key"], a["id"])] = made
    return made


def finish(request, offers):
    """allocate's answer. A dry run (a shadow round) decides, then keeps nothing of it."""
    if request.get("dry_run"):
        _apply(offers, -1)
    return offers


# The allocator calls ----------------------------------------------------------------------

def initialize(o):
    options.update(o)
    _state["rng"] = o.get("seed", 0) & MASK
    for name in names:
        fair[name] = base[name] not in options["fairness_excluded_resource_names"]


def add_agent(request):
    info = request["agent"]
    if info["id"] in agents:
        raise ValueError(f"agent '{info['id']}' was already added")
    _learn(info["resources"])
    for name, amount in info["resources"].items():
        total[name] = rounded(total[name] + amount)
    a = {"id": info["id"], "total": info["resources"], "allocated": {}, "by_framework": {}, "active": True,
         "attributes": dict(info.get("attributes") or {})}
    agents[a["id"]] = a
    _order.append(a)
    for used in request["used"]:
        fid = used["framework_id"]
        f = _client(fid, used.get("role"))
        if f is None:
            key = _key(fid, used.get("role"))
            f = _waiting[key] = {"id": fid, "key": key, "allocated": {}, "allocations": 0}
        _learn(used["resources"])
        _account(f, a, used["resources"], 1)


def remove_agent(request):
    a = agents.pop(request["agent_id"])
    for key, held in list(a["by_framework"].items()):
        _account(clients.get(key) or _waiting[key], a, held, -1)
    for name, amount in a["total"].items():
        total[name] = rounded(total[name] - amount)
    _order.remove(a)
    for f in clients.values():
        f["filters"].pop(a["id"], None)


def update_agent(request):
    a, info = agents[request["agent"]["id"]], request["agent"]
    attributes = dict(info.get("attributes") or {})
    if a["attributes"] != attributes:
        # Back with other attributes: refusal filters for it go, as in Mesos.
        a["attributes"] = attributes
        for f in clients.values():
            f["filters"].pop(a["id"], None)
    _learn(info["resources"])
    for name in names:
        total[name] = rounded(total[name] - a["total"].get(name, 0.0) + info["resources"].get(name, 0.0))
    a["total"] = info["resources"]


def _roles_of(info):
    """The roles of a framework's description: `roles`, or else `role`."""
    return list(info.get("roles") or []) or [info["role"]]


def _subscribe(f, c, name):
    """Makes client c (new, or waiting) framework f's in role `name`, in the role's books."""
    _rekey(c, _key(f["id"], name))
    c.update({"role": name, "framework": f, "active": f["active"], "suppressed": False, "subscribed": True})
    c.setdefault("filters", {})
    f["clients"][name] = clients[c["key"]] = c
    r = _role(name)
    r["frameworks"].append(c)
    _role_add(r, c["allocated"], 1)


def _unsubscribe(c):
    """Takes client c out of its role's books."""
    roles[c["role"]]["frameworks"].remove(c)
    del clients[c["key"]]
    del c["framework"]["clients"][c["role"]]


def add_framework(request):
    info = request["framework"]
    if info["id"] in frameworks:
        raise ValueError(f"framework '{info['id']}' was already added")
    names_ = _roles_of(info)

    def adopt(name):
        # One an agent already reported usage for is adopted, with what it holds.
        key = _key(info["id"], name)
        c = _waiting.pop(key, None)
        if c is None and len(names_) == 1:
            key = _key(info["id"], "")
            c = _waiting.pop(key, None)
        return c or {"id": info["id"], "key": key, "allocated": {}, "allocations": 0}

    if len(names_) == 1:
        f = adopt(names_[0])
        f.update({"clients": {}, "roles": names_, "active": request["active"]})
        _subscribe(f, f, names_[0])
    else:
        f = {"id": info["id"], "roles": names_, "active": request["active"], "clients": {}}
        for name in names_:
            _subscribe(f, adopt(name), name)
    frameworks[info["id"]] = f
    for used in request["used"]:
        _account(_client(info["id"], used.get("role")), agents[used["agent_id"]], used["resources"], 1)


def remove_framework(request):
    f = frameworks[request["framework_id"]]
    for c in list(f["clients"].values()):
        for a in _order:
            if c["key"] in a["by_framework"]:
                _account(c, a, a["by_framework"][c["key"]], -1)
        _unsubscribe(c)
    del frameworks[request["framework_id"]]


def update_framework(request):
    f, info = frameworks[request["framework"]["id"]], request["framework"]
    names_ = _roles_of(info)
    if "key" in f and len(names_) == 1:
        # One role for another: what it holds moves with it.
        if f["role"] == names_[0]:
            return
        old, new = roles[f["role"]], _role(names_[0])
        _role_add(old, f["allocated"], -1)
        _role_add(new, f["allocated"], 1)
        old["frameworks"].remove(f)
        new["frameworks"].append(f)
        del f["clients"][f["role"]], clients[f["key"]]
        _rekey(f, _key(f["id"], names_[0]))
        f["role"], f["roles"] = names_[0], names_
        f["clients"][f["role"]] = clients[f["key"]] = f
        return
    # Several roles: a role joined gets a client; a role left is offered nothing more, and what
    # the framework holds there stays until given back (a client holding nothing goes).
    for name, c in list(f["clients"].items()):
        c["subscribed"] = name in names_
        if name not in names_ and not any(amount > 0 for amount in c["allocated"].values()):
            _unsubscribe(c)
    for name in names_:
        if name not in f["clients"]:
            _subscribe(f, {"id": f["id"], "key": _key(f["id"], name), "allocated": {}, "allocations": 0}, name)
    f["roles"] = names_


def _set_active(request, active):
    f = frameworks[request["framework_id"]]
    f["active"] = active
    for c in f["clients"].values():
        c["active"] = active


def _named_clients(request):
    """The clients a suppress or revive names: those in its roles, or all of them."""
    f = frameworks[request["framework_id"]]
    if not request["roles"]:
        return list(f["clients"].values())
    return [f["clients"][name] for name in request["roles"]]


def activate_framework(request): _set_active(request, True)
def deactivate_framework(request): _set_active(request, False)
def activate_agent(request): agents[request["agent_id"]]["active"] = True
def deactivate_agent(request): agents[request["agent_id"]]["active"] = False
def suppress_offers(request):
    for c in _named_clients(request):
        c["suppressed"] = True
def pause(request): _state["paused"] = True
def resume(request): _state["paused"] = False


def revive_offers(request):
    for c in _named_clients(request):
        c["suppressed"], c["filters"] = False, {}


def update_weights(request):
    # All checked before any is set: a refused call changes nothing.
    for w in request["weights"]:
        if not (w["weight"] > 0 and math.isfinite(w["weight"])):
            raise ValueError(f"weight of role '{w['role']}' must be positive")
    for w in request["weights"]:
        _role(w["role"])["weight"] = w["weight"]


def update_available(request):
    # The host checked the operations: each fits what is unallocated, in order.
    a = agents[request["agent_id"]]
    totals = dict(a["total"])
    for op in request["operations"]:
        _learn(op["resources"])
        for name, amount in op["resources"].items():
            source, target = (base[name], name) if op["type"] == "reserve" else (name, base[name])
            totals[source] = rounded(totals.get(source, 0.0) - amount)
            totals[target] = rounded(totals.get(target, 0.0) + amount)
            total[source] = rounded(total[source] - amount)
            total[target] = rounded(total[target] + amount)
    a["total"] = totals


def update_quota(request):
    # The host checked it: a top-level role, amounts not negative, guarantees within limits.
    if not request["guarantees"] and not request["limits"]:
        quotas.pop(request["role"], None)
    else:
        _learn(request["guarantees"])
        _learn(request["limits"])
        quotas[request["role"]] = {"role": _role(request["role"]), "guarantees": dict(request["guarantees"]),
                                   "limits": dict(request["limits"])}


def recover_resources(request):
    a = agents.get(request["agent_id"])
    f = _client(request["framework_id"], request.get("role"))
    if f is not None and a is not None and f.get("framework") is None:
        # A framework not added yet gives back what ended; it cannot refuse anything.
        _account(f, a, request["resources"], -1)
        return
    if f is None or a is None:
        return
    _learn(request["resources"])
    held = a["by_framework"].get(f["key"], {})
    for name, amount in request["resources"].items():
        if rounded(held.get(name, 0.0) - amount) < 0:
            raise ValueError(f"{f['id']} gives back more {name} than it holds")
    _account(f, a, request["resources"], -1)
    filters = request.get("filters")
    if filters:
        refuse = filters["refuse_seconds"]
        if not math.isfinite(refuse) or refuse < 0:
            refuse = 5.0
        refuse = min(refuse, 365 * 24 * 3600)
        if refuse > 0:
            expires = _state["now"] + max(refuse, options["allocation_interval"])
            f["filters"][a["id"]] = {"expires": expires, "refused": request["resources"]}


def offers_made(request):
    """After a shadow round: the offers the active allocator made count as this one's."""
    _apply(request["offers"], 1)


# Hot reload. The host tells a new version of the policy the cluster (agents, frameworks, what
# each holds); these carry what only the policy's side knows, so that saving the script again
# changes no decision: the clock, the shuffle's state, the agents' order, refusal filters and
# the allocation counts.
def export_state(request=None):
    return {
        "now": _state["now"],
        "rng": _state["rng"],
        "agents": [a["id"] for a in _order],
        "frameworks": [{"id": f["id"], "role": f["role"], "allocations": f["allocations"],
                        "filters": [{"agent": agent, **flt} for agent, flt in f["filters"].items()]}
                       for f in clients.values()],
        "roles": [{"name": r["name"], "allocations": r["allocations"], "tree_allocations": r["tree_allocations"]}
                  for r in roles.values()],
    }


def import_state(saved):
    _state["now"], _state["rng"] = saved["now"], saved["rng"]
    order = [agents[i] for i in saved["agents"] if i in agents]
    if len(order) == len(_order):
        _order[:] = order
    for s in saved["frameworks"]:
        f = _client(s["id"], s.get("role")) if s["id"] in frameworks else None
        if f is not None:
            f["allocations"] = s["allocations"]
            for flt in s["filters"]:
                f["filters"][flt["agent"]] = {"expires": flt["expires"], "refused": flt["refused"]}
    for s in saved["roles"]:
        if s["name"] in roles:
            r = roles[s["name"]]
            r["allocations"], r["tree_allocations"] = s["allocations"], s.get("tree_allocations", s["allocations"])


_CALLS = [initialize, add_agent, remove_agent, update_agent, add_framework, remove_framework, update_framework,
          activate_framework, deactivate_framework, activate_agent, deactivate_agent, suppress_offers, pause,
          resume, revive_offers, update_weights, update_quota, update_available, recover_resources, offers_made,
          export_state, import_state]


def track(namespace):
    """Defines the calls above as the policy's functions (pass the policy's globals()). A policy
    may still define any of them itself afterwards, calling the one defined here; one it
    defined before would be lost, so that is an error."""
    if _state["tracking"]:
        # A copy imported from elsewhere than the policy's folder (python_path) is shared.
        raise RuntimeError("cluster.track: this copy of cluster.py already keeps another policy's books; "
                           "put cluster.py in the policy's own folder")
    for call in _CALLS:
        if call.__name__ in namespace:
            raise RuntimeError(f"cluster.track: the policy already defines {call.__name__}; "
                               "define it after cluster.track(globals())")
    for call in _CALLS:
        namespace[call.__name__] = call
        # The host calls the functions a script defines, not those it imports: these count
        # as the policy's own (this copy of the file is the policy's alone).
        call.__module__ = namespace["__name__"]
    _state["tracking"] = True
