"""Turn a rule-interpreter trace plus the cluster's Pods/Nodes into a step-by-step story, and read counters.

Pure functions: the CLI (`podnet trace`, `podnet top`) feeds them API objects and
`nft` output; tests feed them literals.
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass, field
from typing import Any

from podnet.model.kinds import Obj
from podnet.proxy.nft_interp import TraceResult


@dataclass
class Explanation:
    lines: list[str] = field(default_factory=list)
    data: dict[str, Any] = field(default_factory=dict)


def pod_index(pods: list[Obj]) -> dict[str, Obj]:
    out: dict[str, Obj] = {}
    for p in pods:
        ip = (p.get("status") or {}).get("podIP")
        if ip:
            out[ip] = p
    return out


def node_for_ip(ip: str, nodes: list[Obj]) -> tuple[str, str] | None:
    """(node name, podCIDR) whose podCIDR holds `ip`."""
    try:
        addr = ipaddress.IPv4Address(ip)
    except ValueError:
        return None
    for n in nodes:
        spec = n.get("spec") or {}
        for c in spec.get("podCIDRs") or [spec.get("podCIDR")]:
            if c and addr in ipaddress.ip_network(c, strict=False):
                return n["metadata"]["name"], c
    return None


def node_ip(node: Obj) -> str:
    for a in (node.get("status") or {}).get("addresses") or []:
        if a.get("type") == "InternalIP":
            return str(a.get("address", ""))
    return ""


def _route(ip: str, entry_node: str, nodes: list[Obj]) -> str:
    hit = node_for_ip(ip, nodes)
    if hit is None:
        return f"{ip} is in no node's podCIDR: routed by the node's routing table"
    name, cidr = hit
    if name == entry_node:
        return f"{ip} is in {cidr}, this node's own podCIDR: delivered over the pod's veth"
    by_name = {n["metadata"]["name"]: n for n in nodes}
    via = node_ip(by_name[name]) if name in by_name else ""
    return f"{ip} is in {cidr} (podCIDR of {name}): routed to {name}" + (f" via {via}" if via else "")


def verdict_reason(res: TraceResult) -> str:
    """Why a connection is rejected, dropped or unroutable, from the rule that decided it."""
    last = res.steps[-1] if res.steps else None
    chain, rule = (last.chain, last.rule) if last else ("", "")
    if res.verdict == "unreachable":
        return "the node has no route for the destination (the client gets 'Network is unreachable')"
    if res.verdict == "reject":
        if any(s.chain == "cluster-ips-check" for s in res.steps):
            return "the ClusterIP has no Service port with this protocol and port"
        return "the Service has no ready endpoints"
    if res.verdict == "drop":
        if chain == "cluster-ips-check":
            return "no Service holds this address of the service CIDR"
        if "@lb-allowed" in rule:
            return "the source is not in the Service's loadBalancerSourceRanges"
        if "@no-endpoints" in rule:
            kind = res.service.rsplit(" ", 1)[-1] if res.service else ""
            policy = "internalTrafficPolicy" if kind == "clusterIP" else "externalTrafficPolicy"
            return f"{policy} Local and no ready endpoint on this node"
        return "dropped by a rule"
    return ""


def explain(res: TraceResult, *, src: str, dst: str, port: int, proto: str, entry_node: str,
            pods: list[Obj], nodes: list[Obj]) -> Explanation:
    ex = Explanation()
    byip = pod_index(pods)
    who = byip.get(src)
    by_node_ip = {node_ip(n): n["metadata"]["name"] for n in nodes}
    if who:
        src_name = f"pod {who['metadata'].get('namespace')}/{who['metadata']['name']}"
    elif src in by_node_ip:
        src_name = f"node {by_node_ip[src]}"
    else:
        src_name = "outside client"
    ex.lines.append(f"{proto.upper()} connection from {src_name} ({src}) to {dst}:{port}, "
                    f"entering node {entry_node}")
    for s in res.steps:
        ex.lines.append(f"  {s}")
    data: dict[str, Any] = {"from": src, "to": f"{dst}:{port}", "protocol": proto.upper(),
                            "entryNode": entry_node,
                            "service": res.service, "verdict": res.verdict,
                            "steps": [str(s) for s in res.steps]}
    if res.service:
        ex.lines.append(f"Service port matched: {res.service}")
    why = verdict_reason(res)
    if why:
        data["reason"] = why
    if res.verdict == "reject":
        ex.lines.append(f"REJECTED at once ({res.reject_with}): {why}")
    elif res.verdict == "drop":
        ex.lines.append(f"DROPPED: {why}")
    elif res.verdict == "unreachable":
        ex.lines.append(f"NO ROUTE on node {entry_node}: {why}")
    cands: list[dict[str, Any]] = []
    for ip, p in res.candidates:
        pod = byip.get(ip)
        hit = node_for_ip(ip, nodes)
        pod_name = f"{pod['metadata'].get('namespace')}/{pod['metadata']['name']}" if pod else ""
        cands.append({"ip": ip, "port": p, "pod": pod_name, "node": hit[0] if hit else "",
                      "masquerade": res.masquerade_by_candidate.get((ip, p), res.masquerade)})
    data["candidates"] = cands
    if res.candidates:
        n = len(res.candidates)
        how = "the client's session-affinity endpoint" if res.sticky else (
            f"one of {n} endpoints, chosen at random per connection" if n > 1 else "its only endpoint")
        ex.lines.append(f"DNAT {dst}:{port} → {how}:")
        for c in cands:
            snat = ("SNAT (masquerade) to the node address" if c["masquerade"]
                    else "no SNAT: the server sees the client address")
            ex.lines.append(f"  - {c['ip']}:{c['port']} {c['pod'] or ''} on node {c['node'] or '?'}: {snat}")
            ex.lines.append(f"      route: {_route(str(c['ip']), entry_node, nodes)}")
    elif res.verdict == "accept":
        target = byip.get(dst)
        kind = f" (pod {target['metadata'].get('namespace')}/{target['metadata']['name']})" if target else ""
        ex.lines.append(f"No Service matched: pod-to-pod traffic goes direct, no NAT{kind}")
        ex.lines.append(f"  route: {_route(dst, entry_node, nodes)}")
        data["route"] = _route(dst, entry_node, nodes)
    ex.data = data
    return ex


# ---- counters -------------------------------------------------------------------------
def counters_from_json(doc: dict[str, Any]) -> tuple[dict[str, tuple[int, int]], dict[str, tuple[int, int]]]:
    """(per service port, per endpoint) → (packets, bytes) from `nft -j list table ip podnet`.

    Service ports are named by the comments on `svc-ids` (`ns/name:port/PROTO`), endpoints as
    `ip:port/proto (pod)` with the pod from the comments on the `backends-K` maps. The data path
    creates the counter elements on a connection's first packet (render.py), so every Service
    port in `svc-ids` and every endpoint of a backends map without one is listed with zeros.
    Tables written before that change (the comments on the counter elements) read the same.
    """
    svcs: dict[str, tuple[int, int]] = {}
    eps: dict[str, tuple[int, int]] = {}
    id_names: dict[str, str] = {}  # ct mark (decimal) → service port
    ep_pods: dict[str, str] = {}  # "ip:port/proto" → pod
    counted: list[tuple[str, Any, str, int, int]] = []  # (set, val, comment, packets, bytes)
    for item in doc.get("nftables") or []:
        s = item.get("set") or item.get("map")
        if not isinstance(s, dict):
            continue
        name = str(s.get("name", ""))
        for el in s.get("elem") or []:
            key, data = (el[0], el[1]) if isinstance(el, list) and len(el) == 2 else (el, None)
            body = key.get("elem") if isinstance(key, dict) and "elem" in key else {"val": key}
            if not isinstance(body, dict):
                continue
            val, comment = body.get("val"), str(body.get("comment") or "")
            if name == "svc-ids" and data is not None:
                id_names.setdefault(str(data), comment or f"id {data}")
            elif name.startswith(("backends-", "bypass-backends-")):
                parts, target = _parts(val), _parts(data)
                if len(parts) >= 2 and len(target) == 2:
                    ep_pods.setdefault(f"{target[0]}:{target[1]}/{parts[1]}", comment)
            elif name in ("svc-counters", "ep-counters"):
                ctr = body.get("counter") or {}
                counted.append((name, val, comment, int(ctr.get("packets", 0)), int(ctr.get("bytes", 0))))
    for name, val, comment, pk, by in counted:
        if name == "svc-counters":
            svc = id_names.get(str(val)) or comment or f"id {val}"
            svcs[svc] = _add(svcs.get(svc), pk, by)
        else:
            ip, proto, port = [*_parts(val), "", "", ""][:3]
            ep = f"{ip}:{port}/{proto}"
            pod = ep_pods.get(ep) or comment
            label = ep + (f" ({pod})" if pod else "")
            eps[label] = _add(eps.get(label), pk, by)
    for svc in id_names.values():
        svcs.setdefault(svc, (0, 0))
    for ep, pod in ep_pods.items():
        eps.setdefault(ep + (f" ({pod})" if pod else ""), (0, 0))
    return svcs, eps


def _parts(val: Any) -> list[Any]:
    """The parts of a concatenated element value (one part for a plain value)."""
    if isinstance(val, dict):
        return list(val.get("concat") or [])
    return [] if val is None else [val]


def _add(prev: tuple[int, int] | None, pk: int, by: int) -> tuple[int, int]:
    return (pk, by) if prev is None else (prev[0] + pk, prev[1] + by)
