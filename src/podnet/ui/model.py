"""The JSON the page draws, built from API objects and `podnet top`'s counters (pure, tested alone)."""

from __future__ import annotations

from typing import Any

from podnet.model.kinds import Obj
from podnet.model.services import SERVICE_NAME_LABEL


def _ready(conds: list[Obj] | None) -> bool:
    return any(c.get("type") == "Ready" and c.get("status") == "True" for c in conds or [])


def _node_ip(node: Obj) -> str:
    for a in (node.get("status") or {}).get("addresses") or []:
        if a.get("type") == "InternalIP":
            return str(a.get("address", ""))
    return ""


def _endpoint_counters(counters: dict[str, Any]) -> dict[str, int]:
    """`ip:port/proto (pod)` → packets, keyed `ip:port/PROTO` (summed over nodes by `gather_counters`)."""
    out: dict[str, int] = {}
    for e in counters.get("endpoints") or []:
        key = str(e.get("endpoint", "")).split(" ", 1)[0]
        ip, _, rest = key.partition(":")
        port, _, proto = rest.partition("/")
        k = f"{ip}:{port}/{proto.upper()}"
        out[k] = out.get(k, 0) + int(e.get("packets", 0))
    return out


def _service_counters(counters: dict[str, Any]) -> dict[str, int]:
    """`ns/name:port/PROTO` → packets, summed per Service `ns/name`."""
    out: dict[str, int] = {}
    for s in counters.get("services") or []:
        name = str(s.get("service", "")).rsplit(":", 1)[0]
        out[name] = out.get(name, 0) + int(s.get("packets", 0))
    return out


def build_view(nodes: list[Obj], pods: list[Obj], services: list[Obj], slices: list[Obj],
               counters: dict[str, Any] | None = None) -> dict[str, Any]:
    """Nodes, pods and Services with their ready endpoint pods and packet counters.

    Every namespace but kube-system is shown (as `podnet status` does by default)."""
    counters = counters or {}
    ep_pk = _endpoint_counters(counters)
    svc_pk = _service_counters(counters)

    def shown(o: Obj) -> bool:
        return (o.get("metadata") or {}).get("namespace") != "kube-system"

    # ready endpoints per Service, from its EndpointSlices
    ready: dict[tuple[str, str], list[dict[str, Any]]] = {}
    for s in slices:
        meta = s.get("metadata") or {}
        svc = (meta.get("labels") or {}).get(SERVICE_NAME_LABEL)
        if not svc:
            continue
        ports = s.get("ports") or []
        lst = ready.setdefault((meta.get("namespace", ""), svc), [])
        for ep in s.get("endpoints") or []:
            if not (ep.get("conditions") or {}).get("ready", True):
                continue
            ref = ep.get("targetRef") or {}
            for addr in ep.get("addresses") or []:
                packets = sum(ep_pk.get(f"{addr}:{p.get('port')}/{str(p.get('protocol', 'TCP')).upper()}", 0)
                              for p in ports)
                lst.append({"ip": addr, "pod": ref.get("name", "") if ref.get("kind") == "Pod" else "",
                            "node": ep.get("nodeName", ""), "packets": packets})

    out_nodes = [{
        "name": n["metadata"]["name"], "ip": _node_ip(n),
        "podCIDR": (n.get("spec") or {}).get("podCIDR", ""),
        "ready": _ready((n.get("status") or {}).get("conditions")),
    } for n in sorted(nodes, key=lambda n: str(n["metadata"]["name"]))]
    out_pods = [{
        "namespace": p["metadata"].get("namespace", ""), "name": p["metadata"]["name"],
        "node": (p.get("spec") or {}).get("nodeName", ""),
        "ip": (p.get("status") or {}).get("podIP", ""),
        "phase": (p.get("status") or {}).get("phase", "Pending"),
        "ready": _ready((p.get("status") or {}).get("conditions")),
        "deleting": bool(p["metadata"].get("deletionTimestamp")),
    } for p in sorted(pods, key=lambda p: (p["metadata"].get("namespace", ""), p["metadata"]["name"]))
        if shown(p)]
    out_svcs = []
    for s in sorted(services, key=lambda s: (s["metadata"].get("namespace", ""), s["metadata"]["name"])):
        if not shown(s):
            continue
        spec = s.get("spec") or {}
        ns, name = s["metadata"].get("namespace", ""), s["metadata"]["name"]
        ingress = [i.get("ip") or i.get("hostname") for i in
                   ((s.get("status") or {}).get("loadBalancer") or {}).get("ingress") or []]
        eps = sorted(ready.get((ns, name), []), key=lambda e: (e["pod"], e["ip"]))
        out_svcs.append({
            "namespace": ns, "name": name, "type": spec.get("type", "ClusterIP"),
            "clusterIP": spec.get("clusterIP", ""),
            "ports": [{"port": p.get("port"), "protocol": p.get("protocol", "TCP"),
                       "nodePort": p.get("nodePort")} for p in spec.get("ports") or []],
            "lbIPs": [i for i in ingress if i], "externalIPs": list(spec.get("externalIPs") or []),
            "endpoints": eps, "packets": svc_pk.get(f"{ns}/{name}", 0),
        })
    drops = [{"policy": str(d.get("policy", "")), "packets": int(d.get("packets", 0))}
             for d in counters.get("policy_drops") or []]
    return {"nodes": out_nodes, "pods": out_pods, "services": out_svcs, "policyDrops": drops,
            "counterErrors": list(counters.get("errors") or [])}


def events_text(events: list[Obj]) -> str:
    """`kubectl describe`'s Events section as plain lines, oldest first: TYPE REASON (xCOUNT) MESSAGE."""
    if not events:
        return "<none>\n"

    def when(e: Obj) -> str:
        return str(e.get("lastTimestamp") or e.get("eventTime") or e.get("firstTimestamp")
                   or (e.get("metadata") or {}).get("creationTimestamp") or "")

    lines = []
    for e in sorted(events, key=when):
        count = int(e.get("count") or 1)
        lines.append(f"{when(e)}  {e.get('type', 'Normal')}  {e.get('reason', '')}"
                     + (f" (x{count})" if count > 1 else "") + f"  {e.get('message', '')}")
    return "\n".join(lines) + "\n"
