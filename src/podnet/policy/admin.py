"""AdminNetworkPolicy (ANP) and BaselineAdminNetworkPolicy (BANP) → class chains of one node. Pure.

The evaluation order per packet and direction is the one of sig-network's kube-network-policies:
the ANPs selecting the pod, by ascending priority and, within one ANP, in rule order (Allow: the
direction is allowed, NetworkPolicy and BANP are skipped; Deny: dropped; Pass: the remaining ANP
rules are skipped and NetworkPolicy decides); then NetworkPolicy, as before; then, only if no
NetworkPolicy selects the pod in that direction, the BANP (Allow/Deny); if nothing matched, allowed.
Two ANPs of the same priority: upstream leaves their order undefined; podnet orders them by name.

The shape mirrors NetworkPolicy's: `anp-ingress-class` / `anp-egress-class` map a local pod's IP to
the chain of its ANP class (the ANPs selecting it, in evaluation order), `banp-ingress-class` /
`banp-egress-class` map the BANP's subject pods to its chain; peers and ports are named sets keyed
by their definition (`pods-*`: pod and node IPs, `cidr-*`: networks, `ports-*`, `np-in-*`/`np-out-*`
for named ports), so a pod joining or leaving changes set elements, not chains.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from podnet.model.kinds import Obj
from podnet.model.selectors import SelectorError
from podnet.policy.compile import (
    EGRESS,
    INGRESS,
    PROTOS,
    Elements,
    Index,
    PodInfo,
    SetDef,
    cidr_ranges,
    port_intervals,
    quote,
    short_hash,
)

ANP_KIND = "AdminNetworkPolicy"
BANP_KIND = "BaselineAdminNetworkPolicy"
NP_TIER = {INGRESS: "ingress-np", EGRESS: "egress-np"}  # where Pass and "no ANP rule matched" go
ADMIN_MAPS = {
    (ANP_KIND, INGRESS): "anp-ingress-class",
    (ANP_KIND, EGRESS): "anp-egress-class",
    (BANP_KIND, INGRESS): "banp-ingress-class",
    (BANP_KIND, EGRESS): "banp-egress-class",
}
ADMIN_SETS: dict[str, SetDef] = {
    "anp-ingress-class": SetDef(
        "ip daddr : verdict", comment="local pod -> the AdminNetworkPolicies on its ingress"
    ),
    "anp-egress-class": SetDef(
        "ip saddr : verdict", comment="local pod -> the AdminNetworkPolicies on its egress"
    ),
    "banp-ingress-class": SetDef(
        "ip daddr : verdict", comment="local pod -> the BaselineAdminNetworkPolicy ingress"
    ),
    "banp-egress-class": SetDef(
        "ip saddr : verdict", comment="local pod -> the BaselineAdminNetworkPolicy egress"
    ),
}
SVC_NAME = re.compile(r"(?=.*[a-z])[a-z0-9]([a-z0-9-]{0,13}[a-z0-9])?")  # what a container port name may be
TAGS = {
    (ANP_KIND, INGRESS): "ai",
    (ANP_KIND, EGRESS): "ae",
    (BANP_KIND, INGRESS): "bi",
    (BANP_KIND, EGRESS): "be",
}


def _d(v: Any) -> dict[str, Any]:
    return v if isinstance(v, dict) else {}


def _items(v: Any) -> list[dict[str, Any]]:
    return [x for x in v if isinstance(x, dict)] if isinstance(v, list) else []


def admin_name(obj: Obj) -> str:
    return str(_d(obj.get("metadata")).get("name") or "")


def priority(obj: Obj) -> int:
    p = _d(obj.get("spec")).get("priority")
    return p if isinstance(p, int) and not isinstance(p, bool) else 1 << 30


def anp_order(anps: Iterable[Obj]) -> list[Obj]:
    """Evaluation order: ascending priority, then by name (podnet's choice where upstream has none)."""
    return sorted(anps, key=lambda a: (priority(a), admin_name(a)))


def short_kind(kind: str) -> str:
    return "ANP" if kind == ANP_KIND else "BANP"


@dataclass
class AdminRules:
    """What the admin policies add to a node's state."""

    sets: dict[str, SetDef] = field(default_factory=dict)
    elements: Elements = field(default_factory=dict)
    chains: dict[str, tuple[str, ...]] = field(default_factory=dict)
    counters: dict[str, str] = field(default_factory=dict)
    classes: dict[str, tuple[str, ...]] = field(default_factory=dict)
    named: set[tuple[str, str, str]] = field(default_factory=set)  # (side, "", port name)
    problems: list[str] = field(default_factory=list)


def _selected(idx: Index, spec_part: dict[str, Any], path: str) -> tuple[PodInfo, ...]:
    """Pods chosen by a subject or peer: `namespaces` (a namespace selector) or `pods`."""
    if "namespaces" in spec_part:
        return idx.pods(
            idx.namespaces(spec_part["namespaces"], f"{path}.namespaces"), {}, f"{path}.namespaces"
        )
    if "pods" in spec_part:
        pods = _d(spec_part["pods"])
        namespaces = idx.namespaces(pods.get("namespaceSelector") or {}, f"{path}.pods.namespaceSelector")
        return idx.pods(namespaces, pods.get("podSelector") or {}, f"{path}.pods.podSelector")
    return ()


def _node_ips(idx: Index, nodes: list[Obj], sel: Any, path: str) -> list[str]:
    s = idx.selector(sel, path)
    out = []
    for n in nodes:
        meta = _d(n.get("metadata"))
        if s.matches({str(k): str(v) for k, v in _d(meta.get("labels")).items()}):
            out += [
                str(a.get("address"))
                for a in _items(_d(n.get("status")).get("addresses"))
                if a.get("type") == "InternalIP" and "." in str(a.get("address") or "")
            ]
    return out


def _ports(ports: list[dict[str, Any]]) -> tuple[list[str], list[str], bool]:
    """portNumber/portRange as `proto . lo-hi` elements, the named ports, and whether any port can match."""
    numeric: list[dict[str, Any]] = []
    named: list[str] = []
    for p in ports:
        if isinstance(p.get("portNumber"), dict):
            pn = p["portNumber"]
            if str(pn.get("protocol") or "TCP") in PROTOS and isinstance(pn.get("port"), int):
                numeric.append({"protocol": pn.get("protocol") or "TCP", "port": pn["port"]})
        elif isinstance(p.get("portRange"), dict):
            pr = p["portRange"]
            start, end = pr.get("start"), pr.get("end")
            if (
                str(pr.get("protocol") or "TCP") in PROTOS
                and isinstance(start, int)
                and isinstance(end, int)
                and start <= end
            ):
                numeric.append({"protocol": pr.get("protocol") or "TCP", "port": start, "endPort": end})
        elif isinstance(p.get("namedPort"), str) and SVC_NAME.fullmatch(p["namedPort"]):
            named.append(
                p["namedPort"]
            )  # a name no container port can have (not IANA_SVC_NAME) matches nothing
    elems, _ = port_intervals(numeric)
    return elems, sorted(set(named)), bool(elems or named)


def compile_admin_rule(
    obj: Obj,
    direction: str,
    index: int,
    rule: dict[str, Any],
    idx: Index,
    nodes: list[Obj],
    counter: str,
    out: AdminRules,
) -> list[str]:
    """One ANP/BANP rule: nft lines (one per kind of peer x kind of port) and the sets they use."""
    kind = str(obj.get("kind") or ANP_KIND)
    name = admin_name(obj)
    action = str(rule.get("action") or "")
    # the comment explain reads back: fixed fields first, so nft's 128-byte limit only cuts the rule's
    # name, which is free text (kept to printable ASCII: a newline or a quote would break the transaction)
    rule_name = re.sub(r"[^\x20-\x7e]", "?", str(rule.get("name") or ""))
    where = f"{short_kind(kind)} {action} {direction}[{index}] {name} {rule_name}".rstrip()
    other = "saddr" if direction == INGRESS else "daddr"
    peers = _items(rule.get("from" if direction == INGRESS else "to"))
    path = f"spec.{direction}[{index}].{'from' if direction == INGRESS else 'to'}"
    ips: dict[str, str] = {}
    nets: list[str] = []
    for j, peer in enumerate(peers):
        for p in _selected(idx, peer, f"{path}[{j}]"):
            ips[p.ip] = p.ip
        if direction == EGRESS and "nodes" in peer:
            for ip in _node_ips(idx, nodes, peer["nodes"], f"{path}[{j}].nodes"):
                ips[ip] = ip
        if direction == EGRESS and isinstance(peer.get("networks"), list):
            nets += [str(n) for n in peer["networks"]]
    peer_matches: list[str] = []
    if any("namespaces" in p or "pods" in p or "nodes" in p for p in peers):
        # cluster-wide peers: the same peers in any rule of any admin policy share one set
        definition = json.dumps(["admin", [{k: v for k, v in p.items() if k != "networks"} for p in peers]],
                                sort_keys=True)
        set_name = f"pods-{short_hash(definition)}"
        out.sets[set_name] = SetDef("ip saddr", comment=where)
        out.elements.setdefault(set_name, {}).update(ips)
        peer_matches.append(f"ip {other} @{set_name}")
    if nets:
        ranges = cidr_ranges([{"cidr": n} for n in nets])
        set_name = f"cidr-{short_hash(json.dumps(ranges))}"
        out.sets[set_name] = SetDef("ip saddr", interval=True, comment=where)
        out.elements[set_name] = {r: r for r in ranges}
        peer_matches.append(f"ip {other} @{set_name}")
    port_matches: list[str] = [""]
    if "ports" in rule:
        numeric, named, any_port = _ports(_items(rule.get("ports")))
        if not any_port:
            return []
        port_matches = []
        if numeric:
            set_name = f"ports-{short_hash(json.dumps(numeric))}"
            out.sets[set_name] = SetDef("meta l4proto . th dport", interval=True)
            out.elements[set_name] = {e: e for e in numeric}
            port_matches.append(f"meta l4proto . th dport @{set_name}")
        side = "in" if direction == INGRESS else "out"
        for pname in named:
            out.named.add((side, "", pname))
            port_matches.append(f"ip daddr . meta l4proto . th dport @np-{side}-{pname}")
    if action == "Allow":
        verdict = "accept" if direction == INGRESS else "return"
    elif action == "Deny":
        verdict = f"counter name {quote(counter)} drop"
    else:
        verdict = f"goto {NP_TIER[direction]}"
    if not verdict.startswith("counter"):
        verdict = f"counter {verdict}"
    return [
        " ".join(x for x in (pm, po, f"{verdict} comment {quote(where)}") if x)
        for pm in peer_matches
        for po in port_matches
    ]


def build_admin(
    admins: Iterable[Obj], idx: Index, local: list[PodInfo], nodes: list[Obj]
) -> tuple[AdminRules, dict[str, dict[str, str]]]:
    """The chains and sets of the node's admin policies, and the elements of the four class maps."""
    out = AdminRules(sets=dict(ADMIN_SETS))
    maps: dict[str, dict[str, str]] = {name: {} for name in ADMIN_SETS}
    local_ips = {p.ip for p in local}
    anps = anp_order(a for a in admins if a.get("kind") == ANP_KIND)
    banps = [a for a in admins if a.get("kind") == BANP_KIND and admin_name(a) == "default"]
    per_pod: dict[str, dict[str, list[Obj]]] = {INGRESS: {}, EGRESS: {}}
    lines: dict[tuple[str, str], list[str]] = {}
    for obj in [*anps, *banps]:
        kind, name = str(obj.get("kind")), admin_name(obj)
        spec = _d(obj.get("spec"))
        try:
            subject = [
                p for p in _selected(idx, _d(spec.get("subject")), "spec.subject") if p.ip in local_ips
            ]
        except SelectorError as e:
            out.problems.append(f"{kind} {name}: {e}: ignored")
            continue
        if not subject:
            continue
        for direction in (INGRESS, EGRESS):
            rules = _items(spec.get(direction))
            if not rules:
                continue
            tag = TAGS[(kind, direction)]
            counter = f"drop-{tag}-{short_hash(kind + '/' + name)}"
            compiled: list[str] = []
            for i, rule in enumerate(rules):
                try:
                    compiled += compile_admin_rule(obj, direction, i, rule, idx, nodes, counter, out)
                except SelectorError as e:
                    out.problems.append(f"{kind} {name} {direction}[{i}]: {e}: the rule matches nothing")
            lines[(kind + "/" + name, direction)] = compiled
            if any(" drop " in ln for ln in compiled):
                out.counters[counter] = f"{kind} {name} {direction}"
            if kind == ANP_KIND:
                for p in subject:
                    per_pod[direction].setdefault(p.ip, []).append(obj)
            else:
                chain = f"{tag}-{short_hash(name)}"
                out.chains[chain] = tuple(compiled)
                out.classes[chain] = (f"{kind}/{name}",)
                for p in subject:
                    maps[ADMIN_MAPS[(kind, direction)]][p.ip] = f"{p.ip} : goto {chain}"
    for direction in (INGRESS, EGRESS):
        tag = TAGS[(ANP_KIND, direction)]
        for ip, members_objs in sorted(per_pod[direction].items()):
            members = tuple(f"{ANP_KIND}/{admin_name(a)}" for a in members_objs)
            chain = f"{tag}-{short_hash(' '.join(members))}"
            if chain not in out.chains:
                body = [ln for m in members for ln in lines.get((m, direction), [])]
                body.append(f"goto {NP_TIER[direction]}")
                out.chains[chain] = tuple(body)
                out.classes[chain] = members
            maps[ADMIN_MAPS[(ANP_KIND, direction)]][ip] = f"{ip} : goto {chain}"
    return out, maps
