"""`podnet status`: the cluster's network at a glance — nodes, pods, Services and their endpoints."""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
from typing import Any

from rich.console import Console
from rich.table import Table

from podnet.cli.common import add_name_flag, client_for, load_config
from podnet.cli.main import CLIError
from podnet.cli.output import add_output_flag, make_console
from podnet.client.client import ApiError
from podnet.model.kinds import ENDPOINTSLICES, NODES, PODS, SERVICES, Obj
from podnet.model.services import SERVICE_NAME_LABEL


def register(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    p = sub.add_parser(
        "status",
        help="nodes, pods and Services with their addresses, at a glance",
        description="Show the cluster's network: each node's IP and podCIDR, each pod's IP and node, "
        "each Service's ClusterIP, NodePorts, external IP and how many endpoints are ready.",
    )
    add_name_flag(p)
    add_output_flag(p)
    p.add_argument("-A", "--all-namespaces", action="store_true",
                   help="include kube-system and every other namespace (default: all but kube-system)")
    p.set_defaults(func=run)


def _ready(conds: list[Obj] | None) -> bool:
    return any(c.get("type") == "Ready" and c.get("status") == "True" for c in conds or [])


def _node_ip(node: Obj) -> str:
    for a in node.get("status", {}).get("addresses", []) or []:
        if a.get("type") == "InternalIP":
            return str(a.get("address", ""))
    return ""


def summarize(nodes: list[Obj], pods: list[Obj], services: list[Obj], slices: list[Obj],
              all_namespaces: bool) -> dict[str, Any]:
    """Pure: the status view from API objects (tested without a cluster)."""
    def shown(o: Obj) -> bool:
        return all_namespaces or o["metadata"].get("namespace") != "kube-system"

    ready_eps: dict[tuple[str, str], int] = {}
    total_eps: dict[tuple[str, str], int] = {}
    for s in slices:
        svc = s["metadata"].get("labels", {}).get(SERVICE_NAME_LABEL)
        if not svc:
            continue
        key = (s["metadata"].get("namespace", ""), svc)
        for ep in s.get("endpoints") or []:
            total_eps[key] = total_eps.get(key, 0) + 1
            if (ep.get("conditions") or {}).get("ready", True):
                ready_eps[key] = ready_eps.get(key, 0) + 1

    out_nodes = [{
        "name": n["metadata"]["name"],
        "ip": _node_ip(n),
        "podCIDR": n.get("spec", {}).get("podCIDR", ""),
        "ready": _ready(n.get("status", {}).get("conditions")),
    } for n in sorted(nodes, key=lambda n: n["metadata"]["name"])]
    out_pods = [{
        "namespace": p["metadata"].get("namespace", ""),
        "name": p["metadata"]["name"],
        "ip": p.get("status", {}).get("podIP", ""),
        "node": p.get("spec", {}).get("nodeName", ""),
        "phase": p.get("status", {}).get("phase", "Pending"),
        "ready": _ready(p.get("status", {}).get("conditions")),
        "labels": p["metadata"].get("labels", {}),
    } for p in sorted(pods, key=lambda p: (p["metadata"].get("namespace", ""), p["metadata"]["name"]))
        if shown(p)]
    out_svcs = []
    for s in sorted(services, key=lambda s: (s["metadata"].get("namespace", ""), s["metadata"]["name"])):
        if not shown(s):
            continue
        spec = s.get("spec", {})
        key = (s["metadata"].get("namespace", ""), s["metadata"]["name"])
        ingress = [i.get("ip") or i.get("hostname") for i in
                   s.get("status", {}).get("loadBalancer", {}).get("ingress", []) or []]
        external = ingress + list(spec.get("externalIPs") or [])
        out_svcs.append({
            "namespace": key[0], "name": key[1],
            "type": spec.get("type", "ClusterIP"),
            "clusterIP": spec.get("clusterIP", ""),
            "ports": [{"port": p.get("port"), "protocol": p.get("protocol", "TCP"),
                       "targetPort": p.get("targetPort"), "nodePort": p.get("nodePort")}
                      for p in spec.get("ports") or []],
            "externalIPs": external,
            "pending": spec.get("type") == "LoadBalancer" and not ingress,
            "selector": spec.get("selector") or {},
            "readyEndpoints": ready_eps.get(key, 0),
            "endpoints": total_eps.get(key, 0),
        })
    return {"nodes": out_nodes, "pods": out_pods, "services": out_svcs}


def _ports_text(svc: dict[str, Any]) -> str:
    """As `kubectl get svc` prints PORT(S): `80:30008/TCP,53/UDP`."""
    parts = []
    for p in svc["ports"]:
        t = f"{p['port']}"
        if p.get("nodePort"):
            t += f":{p['nodePort']}"
        parts.append(f"{t}/{p['protocol']}")
    return ",".join(parts)


def _qualified(ns: str, name: str) -> str:
    return name if ns == "default" else f"{ns}/{name}"


def _table(title: str, columns: tuple[str, ...]) -> Table:
    # kubectl-like: no box, two spaces between columns, so addresses fit in 80 columns unbroken
    t = Table(title=title, title_justify="left", box=None, header_style="bold", pad_edge=False,
              title_style="bold underline")
    for c in columns:
        t.add_column(c, overflow="fold")
    return t


def render(view: dict[str, Any], console: Console) -> None:
    t = _table("Nodes", ("NODE", "IP", "POD CIDR", "READY"))
    for n in view["nodes"]:
        t.add_row(n["name"], n["ip"], n["podCIDR"], "yes" if n["ready"] else "[red]no[/red]")
    console.print(t)
    console.print()
    t = _table("Pods (namespace/ shown when not default)", ("POD", "IP", "NODE", "STATUS"))
    for p in view["pods"]:
        status = p["phase"] + ("" if p["ready"] or p["phase"] != "Running" else " (not ready)")
        t.add_row(_qualified(p["namespace"], p["name"]), p["ip"] or "-", p["node"] or "-", status)
    console.print(t)
    console.print()
    t = _table("Services (READY: ready endpoints / all endpoints; - : no selector)",
               ("SERVICE", "TYPE", "CLUSTER-IP", "EXTERNAL-IP", "PORT(S)", "READY"))
    for s in view["services"]:
        ext = ",".join(s["externalIPs"]) or ("<pending>" if s["pending"] else "<none>")
        eps = f"{s['readyEndpoints']}/{s['endpoints']}" if s["selector"] else "-"
        t.add_row(_qualified(s["namespace"], s["name"]), s["type"], s["clusterIP"], ext, _ports_text(s), eps)
    console.print(t)


async def _fetch(args: argparse.Namespace) -> dict[str, Any]:
    cfg = load_config(args.name)
    async with client_for(cfg) as c:
        try:
            nodes, pods, svcs, slices = await asyncio.gather(
                c.list(NODES), c.list(PODS), c.list(SERVICES), c.list(ENDPOINTSLICES))
        except (ApiError, OSError) as e:
            raise CLIError(f'cannot reach the API server of cluster "{args.name}": {e}') from None
    return summarize(nodes["items"], pods["items"], svcs["items"], slices["items"], args.all_namespaces)


def run(args: argparse.Namespace) -> int:
    try:
        view = asyncio.run(_fetch(args))
    except Exception as e:  # aiohttp connection errors
        if isinstance(e, CLIError):
            raise
        raise CLIError(f'cannot reach the API server of cluster "{args.name}": {e}') from None
    if args.output == "json":
        json.dump(view, sys.stdout, indent=2)
        sys.stdout.write("\n")
    else:
        render(view, make_console())
    return 0
