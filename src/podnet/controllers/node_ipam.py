"""Node IPAM: give each Node a podCIDR (the next free /24 of the cluster's pod CIDR).

The Nodes themselves are the record: a CIDR is free when no Node holds it, so a deleted
Node's range becomes free again.
"""

from __future__ import annotations

import copy
import ipaddress

from podnet.controllers import objects
from podnet.controllers.actions import Action
from podnet.controllers.events import make_event
from podnet.model.kinds import EVENTS, NODES, Obj

COMPONENT = "cidrAllocator"


def used_cidrs(nodes: list[Obj]) -> list[ipaddress.IPv4Network | ipaddress.IPv6Network]:
    out = []
    for n in nodes:
        spec = n.get("spec") or {}
        for c in [spec.get("podCIDR"), *(spec.get("podCIDRs") or [])]:
            if c:
                try:
                    out.append(ipaddress.ip_network(str(c), strict=False))
                except ValueError:
                    continue
    return out


def next_free_cidr(pod_cidr: str, mask: int, nodes: list[Obj]) -> str | None:
    net = ipaddress.ip_network(pod_cidr, strict=False)
    if mask < net.prefixlen:
        raise ValueError(f"node CIDR mask /{mask} is larger than the cluster pod CIDR {pod_cidr}")
    used = used_cidrs(nodes)
    for sub in net.subnets(new_prefix=mask):
        if not any(sub.overlaps(u) for u in used if u.version == sub.version):
            return str(sub)
    return None


def reconcile_node_cidr(node: Obj, nodes: list[Obj], pod_cidr: str, mask: int) -> list[Action]:
    if objects.is_deleting(node):
        return []
    spec = node.get("spec") or {}
    if spec.get("podCIDR"):
        if spec.get("podCIDRs"):
            return []
        new = copy.deepcopy(node)
        new["spec"]["podCIDRs"] = [spec["podCIDR"]]
        return [Action("update", NODES, new)]
    others = [n for n in nodes if objects.name(n) != objects.name(node)]
    cidr = next_free_cidr(pod_cidr, mask, others)
    if cidr is None:
        return [Action("event", EVENTS, make_event(
            node, "CIDRNotAvailable", f"Node {objects.name(node)} status is now: CIDRNotAvailable",
            type="Normal", component=COMPONENT))]
    new = copy.deepcopy(node)
    new.setdefault("spec", {})["podCIDR"] = cidr
    new["spec"]["podCIDRs"] = [cidr]
    return [Action("update", NODES, new)]
