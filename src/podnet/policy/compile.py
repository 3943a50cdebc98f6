"""NetworkPolicies + pods + namespaces → the policy state of one node. Pure: no I/O.

The state is map-shaped, as the service proxy's is:

* `ingress-class` / `egress-class` map a local pod's IP to the chain of its *class*: the set of
  policies selecting it in that direction. Pods selected by the same policies share a chain, so
  the number of chains is bounded by the node's pods, not by the number of policies.
* a class chain holds the allow rules of its policies, one nft rule per (rule, kind of peer, kind
  of port); peers and ports are named sets keyed by their definition, so a pod joining or leaving
  changes set elements, not rules: `pods-*` (pod IPs chosen by pod/namespace selectors), `cidr-*`
  (ipBlock ranges with the excepts cut out), `ports-*` (protocol . port intervals) and
  `np-in-NAME` / `np-out-NAME` (named ports resolved per pod from its container ports:
  `ip . protocol . port`). The chain ends in a drop that counts per policy (`drop-*` counters).
"""

from __future__ import annotations

import functools
import hashlib
import ipaddress
import json
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from podnet.model.kinds import Obj
from podnet.model.selectors import Selector, SelectorError, from_label_selector

INGRESS, EGRESS = "ingress", "egress"
PROTOS = {"TCP": "tcp", "UDP": "udp", "SCTP": "sctp"}
MAX_DROP_COUNTERS = 32  # named counters on one drop rule (nft caps expressions per rule)

Elements = dict[str, dict[str, str]]  # set/map name → {key: element text}


@dataclass(frozen=True)
class SetDef:
    typeof: str  # "ip saddr", "meta l4proto . th dport", "ip daddr : verdict", ...
    interval: bool = False
    comment: str = ""


@dataclass(frozen=True)
class CompiledRule:
    """One NetworkPolicy rule turned into nft rule lines and the sets they use."""

    lines: tuple[str, ...]
    sets: dict[str, SetDef]
    elements: Elements
    named: tuple[tuple[str, str], ...]  # (protocol, port name) the rule uses


@dataclass
class PolicyState:
    sets: dict[str, SetDef] = field(default_factory=dict)
    elements: Elements = field(default_factory=dict)
    chains: dict[str, tuple[str, ...]] = field(default_factory=dict)
    counters: dict[str, str] = field(default_factory=dict)  # name → comment ("ns/name ingress")
    classes: dict[str, tuple[str, ...]] = field(default_factory=dict)  # chain → policy keys
    problems: list[str] = field(default_factory=list)

    def structure(self) -> tuple[object, ...]:
        """What only a full sync can change: the sets' definitions, the chains and the counters."""
        return (sorted(self.sets.items()), sorted(self.chains.items()), sorted(self.counters.items()))


BASE_SETS: dict[str, SetDef] = {
    "ingress-class": SetDef("ip daddr : verdict", comment="isolated local pod -> its ingress class"),
    "egress-class": SetDef("ip saddr : verdict", comment="isolated local pod -> its egress class"),
    "self": SetDef("ip saddr . ip daddr", comment="a local pod to itself (through a Service): allowed"),
}


def short_hash(text: str) -> str:
    return hashlib.sha1(text.encode()).hexdigest()[:12]


def quote(s: str) -> str:
    return '"' + s.replace('"', "'").replace("\\", "/")[:120] + '"'


def _d(v: Any) -> dict[str, Any]:
    return v if isinstance(v, dict) else {}


def _items(v: Any) -> list[dict[str, Any]]:
    return [x for x in v if isinstance(x, dict)] if isinstance(v, list) else []


def policy_key(np: Obj) -> str:
    meta = _d(np.get("metadata"))
    return f"{meta.get('namespace', '')}/{meta.get('name', '')}"


@dataclass(frozen=True)
class PodInfo:
    ip: str
    namespace: str
    name: str
    node: str
    labels: dict[str, str]
    ports: tuple[tuple[str, str, int], ...]  # (name, protocol, number) of named container ports


_INFO_MEMO: dict[tuple[str, str, str, str], PodInfo | None] = {}


def pod_info(pod: Obj) -> PodInfo | None:
    """The facts policy needs from a pod, or None for pods that do not take part (no IP yet,
    host network, finished). Memoized per stored version of the pod (its resourceVersion)."""
    meta = _d(pod.get("metadata"))
    rv = str(meta.get("resourceVersion") or "")
    if not rv:
        return _pod_info(pod)
    key = (str(meta.get("namespace") or ""), str(meta.get("name") or ""), rv,
           str(_d(pod.get("status")).get("podIP") or ""))
    if key not in _INFO_MEMO:
        if len(_INFO_MEMO) > 200_000:
            _INFO_MEMO.clear()
        _INFO_MEMO[key] = _pod_info(pod)
    return _INFO_MEMO[key]


def _pod_info(pod: Obj) -> PodInfo | None:
    meta, spec, status = _d(pod.get("metadata")), _d(pod.get("spec")), _d(pod.get("status"))
    ip = str(status.get("podIP") or "")
    if not ip or spec.get("hostNetwork") or status.get("phase") in ("Succeeded", "Failed"):
        return None
    try:
        ipaddress.IPv4Address(ip)
    except ValueError:
        return None
    ports: list[tuple[str, str, int]] = []
    for c in _items(spec.get("containers")) + _items(spec.get("initContainers")):
        for p in _items(c.get("ports")):
            num = p.get("containerPort")
            if p.get("name") and isinstance(num, int) and not isinstance(num, bool):
                ports.append((str(p["name"]), PROTOS.get(str(p.get("protocol") or "TCP"), "tcp"), num))
    labels = {str(k): str(v) for k, v in _d(meta.get("labels")).items()}
    return PodInfo(ip, str(meta.get("namespace") or ""), str(meta.get("name") or ""),
                   str(spec.get("nodeName") or ""), labels, tuple(ports))


class Index:
    """Pods by namespace and namespaces' labels, with memoized selector results."""

    def __init__(self, pods: Iterable[PodInfo], namespaces: Iterable[Obj]):
        self.by_ns: dict[str, list[PodInfo]] = {}
        self.by_label: dict[tuple[str, str, str], list[PodInfo]] = {}  # (namespace, key, value) → pods
        self.all: list[PodInfo] = []
        seen: set[str] = set()
        for p in sorted(pods, key=lambda p: (p.namespace, p.name)):
            if p.ip in seen:  # an IP handed to a new pod while the old one is still listed: first wins
                continue
            seen.add(p.ip)
            self.by_ns.setdefault(p.namespace, []).append(p)
            for k, v in p.labels.items():
                self.by_label.setdefault((p.namespace, k, v), []).append(p)
            self.all.append(p)
        self.ns_labels: dict[str, dict[str, str]] = {}
        for ns in namespaces:
            meta = _d(ns.get("metadata"))
            labels = _d(meta.get("labels"))
            self.ns_labels[str(meta.get("name") or "")] = {str(k): str(v) for k, v in labels.items()}
        self._selectors: dict[str, Selector] = {}
        self._ns_memo: dict[str, tuple[str, ...]] = {}
        self._pod_memo: dict[tuple[tuple[str, ...], str], tuple[PodInfo, ...]] = {}

    def selector(self, sel: Any, path: str) -> Selector:
        key = json.dumps(sel, sort_keys=True)
        got = self._selectors.get(key)
        if got is None:
            got = self._selectors[key] = from_label_selector(_d(sel), path)
        return got

    def namespaces(self, sel: Any, path: str) -> tuple[str, ...]:
        key = json.dumps(sel, sort_keys=True)
        got = self._ns_memo.get(key)
        if got is None:
            s = self.selector(sel, path)
            got = self._ns_memo[key] = tuple(sorted(n for n, lb in self.ns_labels.items() if s.matches(lb)))
        return got

    def pods(self, namespaces: tuple[str, ...], sel: Any, path: str) -> tuple[PodInfo, ...]:
        key = (namespaces, json.dumps(sel, sort_keys=True))
        got = self._pod_memo.get(key)
        if got is None:
            s = self.selector(sel, path)
            eq = next((r for r in s.requirements if r.op in ("=", "==", "in")), None)
            out: list[PodInfo] = []
            for ns in namespaces:
                if eq is not None:  # candidates from the label index, in the namespace's order
                    cands = [p for v in eq.values for p in self.by_label.get((ns, eq.key, v), ())]
                    if len(eq.values) > 1:
                        cands.sort(key=lambda p: p.name)
                else:
                    cands = self.by_ns.get(ns, [])
                out.extend(p for p in cands if s.matches(p.labels))
            got = self._pod_memo[key] = tuple(out)
        return got


def cidr_ranges(blocks: Iterable[dict[str, Any]]) -> list[str]:
    """IPv4 ipBlocks with their excepts cut out, merged: the elements of an interval set."""
    key = tuple((str(b.get("cidr") or ""), tuple(str(e) for e in b.get("except") or [])) for b in blocks)
    return list(_cidr_ranges(key))


@functools.lru_cache(maxsize=4096)
def _cidr_ranges(blocks: tuple[tuple[str, tuple[str, ...]], ...]) -> tuple[str, ...]:
    nets: list[ipaddress.IPv4Network] = []
    for cidr, excepts in blocks:
        try:
            net = ipaddress.ip_network(cidr, strict=False)
        except ValueError:
            continue
        if not isinstance(net, ipaddress.IPv4Network):
            continue  # the policy table is IPv4, as podnet's pod network is
        parts = [net]
        for ex in excepts:
            try:
                exn = ipaddress.ip_network(ex, strict=False)
            except ValueError:
                continue
            if not isinstance(exn, ipaddress.IPv4Network):
                continue
            nxt: list[ipaddress.IPv4Network] = []
            for p in parts:
                if exn.subnet_of(p) and exn != p:
                    nxt.extend(p.address_exclude(exn))
                elif p.subnet_of(exn):
                    continue
                else:
                    nxt.append(p)
            parts = nxt
        nets.extend(parts)
    return tuple(str(n) for n in ipaddress.collapse_addresses(nets))


def port_intervals(ports: list[dict[str, Any]]) -> tuple[list[str], list[tuple[str, str]]]:
    """Numeric ports as merged `proto . lo-hi` elements, and the named ones as (proto, name)."""
    spans: dict[str, list[tuple[int, int]]] = {}
    named: list[tuple[str, str]] = []
    for p in ports:
        proto = PROTOS.get(str(p.get("protocol") or "TCP"))
        if proto is None:
            continue
        port, end = p.get("port"), p.get("endPort")
        if port is None:
            spans.setdefault(proto, []).append((0, 65535))
        elif isinstance(port, int) and not isinstance(port, bool):
            hi = end if isinstance(end, int) and not isinstance(end, bool) and end >= port else port
            spans.setdefault(proto, []).append((port, hi))
        else:
            named.append((proto, str(port)))
    out: list[str] = []
    for proto in sorted(spans):
        merged: list[list[int]] = []
        for lo, hi in sorted(spans[proto]):
            if merged and lo <= merged[-1][1] + 1:
                merged[-1][1] = max(merged[-1][1], hi)
            else:
                merged.append([lo, hi])
        out += [f"{proto} . {lo}" if lo == hi else f"{proto} . {lo}-{hi}" for lo, hi in merged]
    return out, sorted(set(named))


def compile_rule(np: Obj, direction: str, index: int, rule: dict[str, Any], idx: Index) -> CompiledRule:
    """One ingress/egress rule of a policy: its nft lines (with `accept` for ingress, `return` for
    egress, so the ingress check still follows) and the sets they reference."""
    ns = str(_d(np.get("metadata")).get("namespace") or "")
    key = policy_key(np)
    where = f"{key} {direction}[{index}]"
    peer_field = "from" if direction == INGRESS else "to"
    other = "saddr" if direction == INGRESS else "daddr"
    sets: dict[str, SetDef] = {}
    elements: Elements = {}
    peers = _items(rule.get(peer_field))
    peer_matches: list[str] = []
    if not peers:
        peer_matches.append("")
    else:
        selector_peers = [p for p in peers if p.get("ipBlock") is None]
        blocks = [_d(p["ipBlock"]) for p in peers if p.get("ipBlock") is not None]
        if selector_peers:
            ips: dict[str, str] = {}
            for j, p in enumerate(selector_peers):
                path = f"spec.{direction}[{index}].{peer_field}[{j}]"
                if p.get("namespaceSelector") is not None:
                    namespaces = idx.namespaces(p["namespaceSelector"], f"{path}.namespaceSelector")
                else:
                    namespaces = (ns,)
                pod_sel = p.get("podSelector") if p.get("podSelector") is not None else {}
                for pod in idx.pods(namespaces, pod_sel, f"{path}.podSelector"):
                    ips[pod.ip] = pod.ip
            definition = json.dumps([ns, [[p.get("podSelector"), p.get("namespaceSelector")]
                                          for p in selector_peers]], sort_keys=True)
            name = f"pods-{short_hash(definition)}"
            sets[name] = SetDef("ip saddr", comment=where)
            elements[name] = ips
            peer_matches.append(f"ip {other} @{name}")
        if blocks:
            ranges = cidr_ranges(blocks)
            name = f"cidr-{short_hash(json.dumps(ranges))}"
            sets[name] = SetDef("ip saddr", interval=True, comment=where)
            elements[name] = {r: r for r in ranges}
            peer_matches.append(f"ip {other} @{name}")
    ports = _items(rule.get("ports"))
    port_matches: list[str] = []
    named: list[tuple[str, str]] = []
    if not ports:
        port_matches.append("")
    else:
        numeric, named = port_intervals(ports)
        if numeric:
            name = f"ports-{short_hash(json.dumps(numeric))}"
            sets[name] = SetDef("meta l4proto . th dport", interval=True)
            elements[name] = {e: e for e in numeric}
            port_matches.append(f"meta l4proto . th dport @{name}")
        side = "in" if direction == INGRESS else "out"
        for proto, pname in named:
            port_matches.append(f"meta l4proto {proto} ip daddr . meta l4proto . th dport @np-{side}-{pname}")
    verdict = "accept" if direction == INGRESS else "return"
    lines = tuple(" ".join(x for x in (pm, po, f"counter {verdict} comment {quote(where)}") if x)
                  for pm in peer_matches for po in port_matches)
    return CompiledRule(lines, sets, elements, tuple(named))


def _policy_types(spec: dict[str, Any]) -> list[str]:
    types = [str(t) for t in spec.get("policyTypes") or []]
    if not types:  # not defaulted (an object from an older store): Kubernetes' defaulting
        types = ["Ingress"] + (["Egress"] if spec.get("egress") else [])
    return types


def build_state(policies: Iterable[Obj], pods: Iterable[Obj], namespaces: Iterable[Obj], node: str,
                extra_local: dict[str, Obj] | None = None, broken: Iterable[str] = (),
                admins: Iterable[Obj] = (), nodes: Iterable[Obj] = ()) -> PolicyState:
    """The node's policy state. `extra_local` adds local pods by IP whose status does not carry
    the IP yet (a pod being started on this node: programmed before its containers run).
    Policies in `broken` (nft refused them) still isolate their pods but allow nothing.
    `admins` are the AdminNetworkPolicies and the BaselineAdminNetworkPolicy (policy/admin.py);
    `nodes` the Node objects their egress `nodes` peers choose from."""
    from podnet.policy.admin import build_admin  # admin builds on this module's sets and index

    broken = set(broken)
    infos: list[PodInfo] = []
    listed: set[str] = set()
    for pod in pods:
        info = pod_info(pod)
        if info is not None:
            infos.append(info)
            listed.add(info.ip)
    for ip, pod in sorted((extra_local or {}).items()):
        if ip in listed:
            continue
        p2 = dict(pod)
        p2["status"] = {**_d(pod.get("status")), "podIP": ip}
        p2["spec"] = {**_d(pod.get("spec")), "nodeName": node}
        info = pod_info(p2)
        if info is not None:
            infos.append(info)
    idx = Index(infos, namespaces)
    local = [p for p in idx.all if p.node == node]
    st = PolicyState(sets=dict(BASE_SETS))
    st.elements = {name: {} for name in BASE_SETS}
    st.elements["self"] = {f"{p.ip} . {p.ip}": f"{p.ip} . {p.ip}" for p in local}
    classes: dict[str, dict[str, list[str]]] = {INGRESS: {}, EGRESS: {}}  # direction → ip → policy keys
    rules: dict[tuple[str, str], list[CompiledRule]] = {}
    named_used: set[tuple[str, str, str]] = set()  # (side, proto, name)
    admin, admin_maps = build_admin(admins, idx, local, list(nodes))
    st.problems += admin.problems
    st.sets.update(admin.sets)
    for name, elems in admin.elements.items():
        st.elements.setdefault(name, {}).update(elems)
    st.elements.update(admin_maps)
    st.chains.update(admin.chains)
    st.classes.update(admin.classes)
    st.counters.update(admin.counters)
    named_used |= admin.named
    for np in sorted(policies, key=policy_key):
        key = policy_key(np)
        spec = _d(np.get("spec"))
        ns = str(_d(np.get("metadata")).get("namespace") or "")
        try:
            targets = idx.pods((ns,), spec.get("podSelector") or {}, "spec.podSelector")
        except SelectorError as e:
            st.problems.append(f"NetworkPolicy {key}: {e}: ignored")
            continue
        local_targets = [p for p in targets if p.node == node]
        if not local_targets:
            continue
        for direction, type_name in ((INGRESS, "Ingress"), (EGRESS, "Egress")):
            if type_name not in _policy_types(spec):
                continue
            compiled: list[CompiledRule] = []
            if key in broken:
                st.problems.append(f"NetworkPolicy {key}: nft refused its rules: its pods allow nothing")
            for i, rule in enumerate([] if key in broken else _items(spec.get(direction))):
                try:
                    compiled.append(compile_rule(np, direction, i, rule, idx))
                except SelectorError as e:
                    st.problems.append(f"NetworkPolicy {key} {direction}[{i}]: {e}: the rule allows nothing")
            rules[(key, direction)] = compiled
            for cr in compiled:
                for name, sd in cr.sets.items():
                    st.sets.setdefault(name, sd)
                    st.elements.setdefault(name, {}).update(cr.elements[name])
                side = "in" if direction == INGRESS else "out"
                named_used.update((side, proto, pname) for proto, pname in cr.named)
            for p in local_targets:
                classes[direction].setdefault(p.ip, []).append(key)
            tag = "in" if direction == INGRESS else "eg"
            st.counters[f"drop-{tag}-{short_hash(key)}"] = f"{key} {direction}"
    for side, _proto, pname in sorted(named_used):
        name = f"np-{side}-{pname}"
        if name in st.sets:
            continue
        st.sets[name] = SetDef("ip daddr . meta l4proto . th dport", comment=f"named port {pname}")
        owners = local if side == "in" else idx.all
        st.elements[name] = {f"{p.ip} . {proto} . {num}": f"{p.ip} . {proto} . {num}"
                             for p in owners for (n, proto, num) in p.ports if n == pname}
    for direction, tag, map_name in ((INGRESS, "in", "ingress-class"), (EGRESS, "eg", "egress-class")):
        for ip, keys in sorted(classes[direction].items()):
            members = tuple(sorted(keys))
            chain = f"{tag}-{short_hash(' '.join(members))}"
            if chain not in st.chains:
                lines = [line for k in members for cr in rules.get((k, direction), []) for line in cr.lines]
                counters = [f"counter name {quote(f'drop-{tag}-{short_hash(k)}')}"
                            for k in members[:MAX_DROP_COUNTERS]]
                why = quote(f"dropped {direction}: {','.join(members)}")
                lines.append(" ".join([*counters, f"drop comment {why}"]))
                st.chains[chain] = tuple(lines)
                st.classes[chain] = members
            st.elements[map_name][ip] = f"{ip} : goto {chain}"
    return st
