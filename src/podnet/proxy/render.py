"""RulesetState → nft transaction text. Pure: no I/O, golden-file tested.

Shape (the number of chains does not grow with the number of services):

* `services` (jumped from nat prerouting and nat output): marks the connection
  with its service-port id (`ct mark`), re-uses a session-affinity entry if one
  exists, marks for masquerade, then goes to `frontends`, which dispatches with one rule per
  endpoint count K, `ip daddr . meta l4proto . th dport @frontends-K goto ep-K`;
* `ep-K`: one rule, `dnat ip to ip daddr . meta l4proto . th dport . numgen random mod K map @backends-K`;
* `bypass-K`: the same over every endpoint, for externalTrafficPolicy Local frontends reached
  from a pod or from the node itself (not external traffic, as in kube-proxy), dispatched the
  same way from the plain sets `local-bypass-K` by the chain `local-bypass` (jumped from `services`);
* nat postrouting: records affinity, masquerades marked connections; a hairpin connection (a pod
  reaching itself through a Service) is marked in filter forward by `fib daddr . iif oif exists`:
  the DNATed destination is routed out of the interface the packet came in on (each pod has its
  own veth and /32 route), so no per-endpoint pair set is needed;
* filter prerouting: loadBalancerSourceRanges; filter input/forward/output:
  frontends without endpoints are rejected (`no-endpoints-reject`) or dropped for Local policies
  (`no-endpoints-drop`), and per-service / per-endpoint counters are kept on elements of
  `svc-counters` / `ep-counters`,
  which the data path creates on a connection's first packet (`update @set`): a sync never
  inserts them (each would cost the kernel a per-CPU counter allocation), it only sizes the sets
  and removes the elements of Service ids and endpoints that went away. `podnet top` names them
  from the comments on `svc-ids` (the Service port) and on the `backends-K` elements (the pod),
  and lists the idle ones with zero counts from those maps;
* `cluster-ips-check` (filter forward/output, as kube-proxy's): a port a ClusterIP does not
  define is rejected, an unallocated address of the service CIDR dropped. Nodes route the
  service CIDR out of their uplink (net/nodenet.py) so that these verdicts, not a failed
  routing decision, are what a client sees.

No set element carries a verdict: an element with a `goto` added to a verdict map makes the
kernel re-validate the table's chain graph, walking every element of every verdict map reachable
from the base chains (~40 ms per change at 100,000 Services); plain-set elements cost no walk.
Rules name the sets, so a new (or vanished) endpoint count rewrites the chain `frontends` (or
`local-bypass`): a rule per K.
"""

from __future__ import annotations

import weakref

from podnet.core.gcpause import without_gc
from podnet.proxy.state import Frontend, RulesetState

TABLE = "podnet"
FAMILY = "ip"
MASQ_MARK = 0x4000
FE_TYPE = "typeof ip daddr . meta l4proto . th dport"
FE_EXPR = "ip daddr . meta l4proto . th dport"

ElementSets = dict[str, dict[str, str]]  # set/map name → {key text: full element text}
COUNTER_SETS = ("svc-counters", "ep-counters")  # elements made by the data path, not by a sync


def _q(s: str) -> str:
    return '"' + s.replace('"', "'")[:120] + '"'


def _fe(f: Frontend) -> str:
    return f"{f.ip} . {f.proto} . {f.port}"


def frontend_elements(f: Frontend, pods: dict[str, str]) -> list[tuple[str, str, str]]:
    """(set name, key, element text) owned by one frontend; `pods`: endpoint ip → pod (comments)."""
    key = _fe(f)
    comment = f"comment {_q(f'{f.svc_key} {f.kind}')}"
    out = [("svc-ids", key, f"{key} comment {_q(f.svc_key)} : {f.svc_id}")]
    if f.endpoints:
        k = len(f.endpoints)
        out.append((f"frontends-{k}", key, f"{key} {comment}"))
        out += [(f"backends-{k}", f"{key} . {i}",
                 f"{key} . {i} comment {_q(pods.get(ip, ip))} : {ip} . {port}")
                for i, (ip, port) in enumerate(f.endpoints)]
    else:
        out.append((f"no-endpoints-{f.no_endpoints}", key, f"{key} {comment}"))
    if f.masquerade:
        out.append(("masq-frontends", key, key))
    if f.bypass:
        k = len(f.bypass)
        out.append((f"local-bypass-{k}", key, key))
        out += [(f"bypass-backends-{k}", f"{key} . {i}",
                 f"{key} . {i} comment {_q(pods.get(ip, ip))} : {ip} . {port}")
                for i, (ip, port) in enumerate(f.bypass)]
    if f.source_ranges:
        out.append(("lb-restricted", key, key))
        out += [("lb-allowed", f"{key} . {c}", f"{key} . {c}") for c in f.source_ranges]
    return out


Counts = dict[str, dict[str, int]]  # set name → element (its key and text) → frontends referencing it


def shared_items(f: Frontend) -> list[tuple[str, str]]:
    """(set name, element) of the shared elements one frontend needs (each is its own key).

    The counter sets' entries (COUNTER_SETS) are kept in the state only: they size the sets, say
    which elements a delta removes and which endpoints are still in use; the data path creates
    the elements themselves."""
    sid = str(f.svc_id)
    out = [("svc-counters", sid)]
    if f.kind == "clusterIP":
        out.append(("cluster-ips", f.ip))
    if f.affinity_timeout:
        out.append((f"affinity-svcs-{f.affinity_timeout}", sid))
    proto = f.proto
    for ip, port in f.endpoints:
        out.append(("ep-counters", f"{ip} . {proto} . {port}"))
    return out


def shared_counts(st: RulesetState) -> Counts:
    """Reference-counted shared elements of a state (cached on it; render_delta derives the next one)."""
    cached: Counts | None = st.cache.get("counts")
    if cached is None:
        cached = {"ep-counters": {}, "svc-counters": {}, "cluster-ips": {}}
        for t in st.affinity_timeouts:
            cached[f"affinity-svcs-{t}"] = {}
        for f in st.frontends.values():
            for name, key in shared_items(f):
                d = cached[name]
                d[key] = d.get(key, 0) + 1
        st.cache["counts"] = cached
    return cached


def shared_elements(st: RulesetState) -> ElementSets:
    """Elements shared between frontends that a sync inserts: ClusterIPs, affinity ids."""
    return {name: {k: k for k in d} for name, d in shared_counts(st).items() if name not in COUNTER_SETS}


def element_texts(st: RulesetState) -> dict[str, list[str]]:
    """Every element a full sync inserts, by set name, sorted (a text sorts as its key does: the
    key comes first and what follows it starts with a space)."""
    sets: dict[str, list[str]] = {name: [] for name in base_set_names(st)}
    for k in st.backend_counts:
        sets[f"backends-{k}"] = []
        sets[f"frontends-{k}"] = []
    for k in st.bypass_counts:
        sets[f"bypass-backends-{k}"] = []
        sets[f"local-bypass-{k}"] = []
    pods = st.pods
    for f in st.frontends.values():
        for name, _, text in frontend_elements(f, pods):
            sets[name].append(text)
    for name, d in shared_counts(st).items():
        if name not in COUNTER_SETS:
            sets[name] = list(d)
    for texts in sets.values():
        texts.sort()
    return sets


def base_set_names(st: RulesetState) -> list[str]:
    return ["svc-ids", "no-endpoints-reject", "no-endpoints-drop", "masq-frontends",
            "lb-restricted", "lb-allowed", "svc-counters", "ep-counters", "cluster-ips"]


MIN_COUNTER_SIZE = 65536


def counter_size(n: int) -> int:
    """The `size` of a counter set holding `n` elements: room for twice that, a power of two.

    The kernel refuses elements past a set's size ("Too many open files in system"; the data path's
    `update` then adds nothing, so a counter would be missing); without a declared size nft gives a
    `flags dynamic` set 65,535, and ~65,000 Service ports used to stop every later sync. The size of
    an existing set cannot change, so a sync that moves to another size is full."""
    size = MIN_COUNTER_SIZE
    while size < 2 * n:
        size *= 2
    return size


def _set_decl(name: str, n: int = 0) -> str:
    """The declaration body (without elements) of a set or map; `n`: elements of a counter set."""
    if name.startswith(("backends-", "bypass-backends-")):
        k = int(name.rsplit("-", 1)[1])
        return f"map {name} {{ {FE_TYPE} . numgen random mod {k} : ip daddr . th dport ; }}"
    if name.startswith("affinity-svcs-"):
        return f"set {name} {{ typeof ct mark ; }}"
    if name.startswith(("frontends-", "local-bypass-", "no-endpoints-")):
        return f"set {name} {{ {FE_TYPE} ; }}"
    counted = f"size {counter_size(n)} ; flags dynamic ; counter ;"  # dynamic: filled by `update @set`
    decls = {
        "svc-ids": f"map svc-ids {{ {FE_TYPE} : ct mark ; }}",
        "masq-frontends": f"set masq-frontends {{ {FE_TYPE} ; }}",
        "cluster-ips": "set cluster-ips { typeof ip daddr ; }",
        "lb-restricted": f"set lb-restricted {{ {FE_TYPE} ; }}",
        "lb-allowed": f"set lb-allowed {{ {FE_TYPE} . ip saddr ; flags interval ; }}",
        "svc-counters": f"set svc-counters {{ typeof ct mark ; {counted} }}",
        "ep-counters": f"set ep-counters {{ {FE_TYPE} ; {counted} }}",
    }
    return decls[name]


def _add_decl(name: str) -> str:
    """`add set|map ip podnet NAME { ... }` for a set or map created by a delta."""
    decl = _set_decl(name)
    kind = decl.split(" ", 1)[0]
    return "add " + decl.replace(f"{kind} ", f"{kind} {FAMILY} {TABLE} ", 1)


def _affinity_decl(t: int) -> str:
    return (f"map affinity-{t} {{ typeof ip saddr . ct mark : ip daddr . th dport ; "
            f"flags dynamic,timeout ; timeout {t}s ; }}")


def bypass_rules(st: RulesetState) -> list[str]:
    """The `local-bypass` chain: externalTrafficPolicy Local frontends reached from a pod or the node."""
    out = []
    for k in sorted(st.bypass_counts):
        # the node's own connections are masqueraded (a local source address may not reach the pod)
        out += [f"fib saddr type local {FE_EXPR} @local-bypass-{k} "
                f"meta mark set meta mark | {MASQ_MARK:#x} goto bypass-{k}",
                f"ip saddr {st.cluster_cidr} {FE_EXPR} @local-bypass-{k} goto bypass-{k}"]
    return out


def dispatch_rules(st: RulesetState) -> list[str]:
    """The `frontends` chain: one rule per endpoint count K."""
    return [f"{FE_EXPR} @frontends-{k} goto ep-{k}" for k in sorted(st.backend_counts)]


# chains whose rules follow the set of endpoint counts: a delta that changes it flushes and refills
# them. They hold only plain-set lookups and gotos: a rule bound to a data map (`map @svc-ids`)
# makes the kernel walk that map's elements when it is added (~30 ms at 100,000 Services)
DISPATCH_CHAINS = (("local-bypass", bypass_rules), ("frontends", dispatch_rules))


def chains(st: RulesetState) -> list[tuple[str, list[str]]]:
    """(chain header, rules) of the fixed chains; ep-K chains are rendered separately."""
    timeouts = sorted(st.affinity_timeouts)
    services = [f"ct mark set {FE_EXPR} map @svc-ids"]
    services += [f"meta l4proto {{ tcp, udp, sctp }} ct mark @affinity-svcs-{t} "
                 f"dnat ip to ip saddr . ct mark map @affinity-{t}" for t in timeouts]
    services += [
        "jump local-bypass",
        f"{FE_EXPR} @masq-frontends meta mark set meta mark | {MASQ_MARK:#x}",
        # a ClusterIP reached from outside the pod network (a node, a host-network pod); by address
        # only: a port the ClusterIP does not define is not DNATed and is rejected in filter
        f"ip saddr != {st.cluster_cidr} ip daddr @cluster-ips "
        f"meta mark set meta mark | {MASQ_MARK:#x}",
        "goto frontends",
    ]
    post = [f"ct status dnat ct mark @affinity-svcs-{t} update @affinity-{t} "
            f"{{ ip saddr . ct mark timeout {t}s : ip daddr . th dport }}" for t in timeouts]
    post += [
        f"meta mark & {MASQ_MARK:#x} == {MASQ_MARK:#x} masquerade",
        # pods reaching an endpoint off the pod network (the API server on the host's node-network
        # address, behind the `kubernetes` Service): the host has no route back to pod IPs
        f"ct status dnat ip saddr {st.cluster_cidr} ip daddr != {st.cluster_cidr} masquerade",
    ]
    common = [
        f"ct state new {FE_EXPR} @no-endpoints-reject goto reject-svc",
        f"ct state new {FE_EXPR} @no-endpoints-drop drop",
        # a Service's connections carry its id (non-zero) in ct mark; their first packet creates
        # the counter elements (see the module's docstring); `update` alone counts each packet
        # once (a lookup in a set declared with `counter` counts too: lookup + update was twice)
        "ct status dnat ct mark != 0 update @svc-counters { ct mark }",
        f"ct status dnat ct mark != 0 ct direction original update @ep-counters {{ {FE_EXPR} }}",
        "ct status dnat ct mark != 0 ct direction reply "
        "update @ep-counters { ip saddr . meta l4proto . th sport }",
    ]
    # as kube-proxy: a port a ClusterIP does not define is refused, an unallocated service IP dropped
    # (after the no-endpoints verdicts; DNATed packets no longer carry a service address)
    cluster_check = ["ip daddr @cluster-ips goto reject-svc"]
    if st.service_cidr:
        cluster_check.append(f"ip daddr {st.service_cidr} drop")
    after_dnat = ["jump filter-common", "ct state new jump cluster-ips-check"]
    # hairpin: the destination (after DNAT) is reached through the interface the packet came in
    # on, i.e. a pod reaching itself; masqueraded so that its reply comes back through the node
    hairpin = (f"ct state new ct status dnat fib daddr . iif oif exists "
               f"meta mark set meta mark | {MASQ_MARK:#x}")
    return [
        ("chain reject-svc", ["meta l4proto tcp reject with tcp reset", "reject"]),
        ("chain cluster-ips-check", cluster_check),
        ("chain local-bypass", bypass_rules(st)),
        ("chain frontends", dispatch_rules(st)),
        ("chain services", services),
        ("chain nat-prerouting { type nat hook prerouting priority dstnat ; policy accept ;",
         ["jump services"]),
        ("chain nat-output { type nat hook output priority -100 ; policy accept ;", ["jump services"]),
        ("chain nat-postrouting { type nat hook postrouting priority srcnat ; policy accept ;", post),
        ("chain filter-prerouting { type filter hook prerouting priority -110 ; policy accept ;",
         [f"{FE_EXPR} @lb-restricted {FE_EXPR} . ip saddr != @lb-allowed drop"]),
        ("chain filter-common", common),
        ("chain filter-input { type filter hook input priority filter ; policy accept ;",
         ["jump filter-common"]),
        ("chain filter-forward { type filter hook forward priority filter ; policy accept ;",
         [hairpin, *after_dnat]),
        ("chain filter-output { type filter hook output priority filter ; policy accept ;", after_dnat),
    ]




FULL_PREFIX = f"add table {FAMILY} {TABLE}\ndelete table {FAMILY} {TABLE}\n"


def is_full(text: str) -> bool:
    """True for a transaction that replaces the whole table."""
    return text.startswith(FULL_PREFIX)


@without_gc
def render_full(st: RulesetState) -> str:
    """One `nft -f` transaction that replaces `table ip podnet` atomically (no window without rules)."""
    sets = element_texts(st)
    counts = shared_counts(st)
    out = [f"add table {FAMILY} {TABLE}", f"delete table {FAMILY} {TABLE}", f"table {FAMILY} {TABLE} {{"]
    for name in sorted(sets):
        decl = _set_decl(name, len(counts[name]) if name in COUNTER_SETS else 0)
        head, _, rest = decl.partition("{")
        lines = [s.strip() for s in rest.rstrip("} ").split(";") if s.strip()]
        out.append(f"\t{head.strip()} {{")
        out.extend(f"\t\t{ln}" for ln in lines)
        if sets[name]:
            out.append("\t\telements = { " + ",\n\t\t\t".join(sets[name]) + " }")
        out.append("\t}")
    for t in sorted(st.affinity_timeouts):
        head, _, rest = _affinity_decl(t).partition("{")
        out.append(f"\t{head.strip()} {{")
        out.extend(f"\t\t{s.strip()}" for s in rest.rstrip("} ").split(";") if s.strip())
        out.append("\t}")
    for k in sorted(st.backend_counts):
        out.append(f"\tchain ep-{k} {{")
        out.append(f"\t\tdnat ip to {FE_EXPR} . numgen random mod {k} map @backends-{k}")
        out.append("\t}")
    for k in sorted(st.bypass_counts):
        out.append(f"\tchain bypass-{k} {{")
        out.append(f"\t\tdnat ip to {FE_EXPR} . numgen random mod {k} map @bypass-backends-{k}")
        out.append("\t}")
    for header, rules in chains(st):
        if header.endswith(";"):
            name, _, hook = header.partition("{")
            out.append(f"\t{name.strip()} {{")
            out.append("\t\t" + " ".join(hook.split()))
        else:
            out.append(f"\t{header} {{")
        out.extend(f"\t\t{r}" for r in rules)
        out.append("\t}")
    out.append("}")
    return "\n".join(out) + "\n"


def render_delta(old: RulesetState, new: RulesetState) -> str:
    """Element adds/deletes turning `old` into `new`, proportional to the change.

    "" means nothing to do. A structural change (another cluster CIDR or set of
    affinity timeouts, or another service CIDR) returns render_full(new) instead: see `is_full`.
    """
    if (old.cluster_cidr, old.service_cidr) != (new.cluster_cidr, new.service_cidr) \
            or old.affinity_timeouts != new.affinity_timeouts:
        return render_full(new)
    out: list[str] = []
    for k in sorted(new.backend_counts - old.backend_counts):
        out.append(_add_decl(f"frontends-{k}"))
        out.append(_add_decl(f"backends-{k}"))
        out.append(f"add chain {FAMILY} {TABLE} ep-{k} {{ dnat ip to {FE_EXPR} . numgen random mod {k} "
                   f"map @backends-{k} ; }}")
    for k in sorted(new.bypass_counts - old.bypass_counts):
        out.append(_add_decl(f"local-bypass-{k}"))
        out.append(_add_decl(f"bypass-backends-{k}"))
        out.append(f"add chain {FAMILY} {TABLE} bypass-{k} {{ dnat ip to {FE_EXPR} . numgen random mod {k} "
                   f"map @bypass-backends-{k} ; }}")
    # the dispatch rules name the per-K sets: another set of endpoint counts rewrites their chain
    # (a rule per K) in the same transaction
    rewrite: list[str] = []
    for chain, rules in DISPATCH_CHAINS:
        old_rules, new_rules = rules(old), rules(new)
        if old_rules != new_rules:
            rewrite.append(f"flush chain {FAMILY} {TABLE} {chain}")
            rewrite += [f"add rule {FAMILY} {TABLE} {chain} {r}" for r in new_rules]
    deletes: list[str] = []
    adds: list[str] = []
    a: ElementSets = {}
    b: ElementSets = {}
    # the counts move from `old` to `new` and are updated in place, so the cost follows the change
    # (`old` recomputes its own if asked again); `before` keeps old's entries of the touched keys
    new_counts = shared_counts(old)
    del old.cache["counts"]
    old_sizes = [counter_size(len(new_counts[name])) for name in COUNTER_SETS]
    for t in new.affinity_timeouts:
        new_counts.setdefault(f"affinity-svcs-{t}", {})
    before: dict[tuple[str, str], bool] = {}  # touched shared element → was it in `old`
    for fo, fn in changed_frontends(old, new):
        for side, f, pods in ((a, fo, old.pods), (b, fn, new.pods)):
            for name, ek, text in frontend_elements(f, pods) if f is not None else ():
                side.setdefault(name, {})[ek] = text
        for name, ek in shared_items(fo) if fo is not None else ():
            d = new_counts[name]
            if (name, ek) not in before:
                before[(name, ek)] = ek in d
            cnt = d[ek]
            if cnt == 1:
                del d[ek]
            else:
                d[ek] = cnt - 1
        for name, ek in shared_items(fn) if fn is not None else ():
            d = new_counts[name]
            if (name, ek) not in before:
                before[(name, ek)] = ek in d
            d[ek] = d.get(ek, 0) + 1
    new.cache["counts"] = new_counts
    if old_sizes != [counter_size(len(new_counts[name])) for name in COUNTER_SETS]:
        return render_full(new)  # a counter set outgrew (or shrank below) its declared size
    for (name, ek), was in before.items():
        if was:
            a.setdefault(name, {})[ek] = ek
        if ek in new_counts[name]:
            b.setdefault(name, {})[ek] = ek
    for name in sorted(set(a) | set(b)):
        old_e, new_e = a.get(name, {}), b.get(name, {})
        gone = [k for k in sorted(old_e) if k not in new_e or new_e[k] != old_e[k]]
        come = [new_e[k] for k in sorted(new_e) if k not in old_e or new_e[k] != old_e[k]]
        if name in COUNTER_SETS:
            # made by the data path (or not: an idle Service's), so nothing to add; `add` before
            # `delete` so that the delete finds it either way (a missing one fails the transaction)
            if gone:
                listed = ", ".join(gone)
                deletes.append(f"add element {FAMILY} {TABLE} {name} {{ {listed} }}")
                deletes.append(f"delete element {FAMILY} {TABLE} {name} {{ {listed} }}")
            continue
        if gone:
            deletes.append(f"delete element {FAMILY} {TABLE} {name} {{ {', '.join(gone)} }}")
        if come:
            adds.append(f"add element {FAMILY} {TABLE} {name} {{ {', '.join(come)} }}")
    flush = [f"flush map {FAMILY} {TABLE} affinity-{t}" for t in sorted(_affinity_losses(old, new))]
    # endpoint counts no frontend uses any more: their chain and map go (after the elements that
    # referred to them), so the table stays what a full render would make
    unused = []
    for k in sorted(old.backend_counts - new.backend_counts):
        unused += [f"delete chain {FAMILY} {TABLE} ep-{k}", f"delete map {FAMILY} {TABLE} backends-{k}",
                   f"delete set {FAMILY} {TABLE} frontends-{k}"]
    for k in sorted(old.bypass_counts - new.bypass_counts):
        unused += [f"delete chain {FAMILY} {TABLE} bypass-{k}",
                   f"delete map {FAMILY} {TABLE} bypass-backends-{k}",
                   f"delete set {FAMILY} {TABLE} local-bypass-{k}"]
    out += deletes + flush + rewrite + adds + unused
    return "\n".join(out) + ("\n" if out else "")


def changed_frontends(old: RulesetState, new: RulesetState) -> list[tuple[Frontend | None, Frontend | None]]:
    """(old, new) frontend pairs that differ (None = absent), in key order; cached on `new`."""
    got: list[tuple[Frontend | None, Frontend | None]] | None = new.cache.get("changed")
    ref = new.cache.get("changed_from")
    if got is None or ref is None or ref() is not old:
        got = []
        for key in sorted(old.frontends.keys() | new.frontends.keys()):
            fo, fn = old.frontends.get(key), new.frontends.get(key)
            if fo is not fn and fo != fn:
                got.append((fo, fn))
        # a weak reference: a strong one would keep every state since the first alive (a leak)
        new.cache["changed"], new.cache["changed_from"] = got, weakref.ref(old)
    return got


def _affinity_losses(old: RulesetState, new: RulesetState) -> set[int]:
    """Affinity timeouts whose services lost an endpoint: their sticky entries must go."""
    out: set[int] = set()
    for f, nf in changed_frontends(old, new):
        if f is None or not f.affinity_timeout:
            continue
        if nf is None or not set(f.endpoints) <= set(nf.endpoints):
            out.add(f.affinity_timeout)
    return out
