"""`podnet trace` (how a connection is handled, from the live nftables rules) and `podnet top` (counters)."""

from __future__ import annotations

import argparse
import asyncio
import ipaddress
import json
import sys
import time
from typing import Any

from podnet.cli.cmd_policy import LiveTables, drop_counters, judge
from podnet.cli.common import add_name_flag, client_for, load_config
from podnet.cli.main import CLIError
from podnet.cli.output import add_output_flag, console, emit, err_console
from podnet.client.client import ApiError
from podnet.core.config import ClusterConfig
from podnet.core.naming import node_netns
from podnet.model.kinds import ENDPOINTSLICES, NODES, PODS, SERVICES, Obj
from podnet.net.ops import NetOpsError
from podnet.net.real import RealNetOps
from podnet.proxy.explain import Explanation, counters_from_json, explain, node_ip
from podnet.proxy.lbip import lb_owner
from podnet.proxy.nft import NftError, RealNft
from podnet.proxy.nft_interp import Packet, RuleInterpreter
from podnet.proxy.serviceports import NodeFacts, build_service_ports


def register(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    p = sub.add_parser(
        "trace", help="explain how a connection is handled by the Service rules",
        description="Trace the first packet of a connection through the live nftables rules of the node "
        "it enters: which Service matched, the candidate endpoints and their nodes, DNAT/SNAT, the "
        "route onwards; or why it is rejected or dropped.")
    add_name_flag(p)
    p.add_argument("--from", dest="source", required=True, metavar="POD|NODE|outside",
                   help="a pod ([namespace/]name), a node name, or 'outside' (the host on the node network)")
    p.add_argument("dest", metavar="DEST[:PORT]",
                   help="an IP, a Service ([namespace/]name) or a pod, with an optional :port "
                   "(default: the Service's first port, else 80)")
    p.add_argument("--proto", choices=("tcp", "udp", "sctp"), default="tcp", help="protocol (default tcp)")
    add_output_flag(p)
    p.set_defaults(func=run_trace)
    for name in ("top", "traffic"):  # `traffic`: an alias of `top`, kept for scripts that use it
        q = sub.add_parser(name,
                           help="packets and bytes per Service and endpoint, from every node's counters"
                           if name == "top" else "the same as `podnet top`",
                           description="Per-Service and per-endpoint packet/byte counters, summed over the "
                           "kernel counters of every node." + (" (An alias of `podnet top`.)"
                                                               if name == "traffic" else ""))
        add_name_flag(q)
        q.add_argument("--watch", action="store_true", help="refresh every 2 seconds until Ctrl-C")
        add_output_flag(q)
        q.set_defaults(func=run_top)


async def _fetch(cfg: ClusterConfig) -> tuple[list[Obj], list[Obj], list[Obj], list[Obj]]:
    async with client_for(cfg) as c:
        try:
            nodes = (await c.list(NODES)).get("items") or []
            pods = (await c.list(PODS)).get("items") or []
            svcs = (await c.list(SERVICES)).get("items") or []
            slices = (await c.list(ENDPOINTSLICES)).get("items") or []
        except (ApiError, OSError) as e:
            raise CLIError(f"cannot reach the API server of cluster {cfg.name!r} at {cfg.api_url}: "
                           f"{e}") from e
    return nodes, pods, svcs, slices


def _find(objs: list[Obj], ref: str) -> Obj | None:
    ns, _, name = ref.rpartition("/")
    for o in objs:
        m = o["metadata"]
        if m["name"] == name and (m.get("namespace", "") == (ns or "default") or not m.get("namespace")):
            return o
    return None


def _split_port(dest: str) -> tuple[str, int | None]:
    host, sep, port = dest.rpartition(":")
    if not sep:
        return dest, None
    if not port.isdigit() or not 1 <= int(port) <= 65535:
        raise CLIError(f"invalid port {port!r} in {dest!r}: must be a number 1-65535")
    return host, int(port)


def resolve(source: str, dest: str, nodes: list[Obj], pods: list[Obj], svcs: list[Obj],
            cfg: ClusterConfig, slices: list[Obj] | None = None) -> tuple[str, str, str, int, str]:
    """(src ip, entry node, dst ip, port, entry kind 'in'|'local') from the user's words."""
    if not nodes:
        raise CLIError("the cluster has no nodes yet")
    names = [n["metadata"]["name"] for n in nodes]
    host, port = _split_port(dest)
    dst = ""
    try:
        dst = str(ipaddress.IPv4Address(host))
    except ValueError:
        pass
    if not dst:
        svc = _find(svcs, host)
        pod = _find(pods, host)
        if svc is not None and (svc.get("spec") or {}).get("clusterIP") not in (None, "", "None"):
            dst = svc["spec"]["clusterIP"]
            if port is None and (svc["spec"].get("ports") or []):
                port = int(svc["spec"]["ports"][0]["port"])
        elif pod is not None and (pod.get("status") or {}).get("podIP"):
            dst = pod["status"]["podIP"]
        else:
            raise CLIError(f"destination {host!r} is not an IPv4 address, a Service with a ClusterIP or a "
                           f"pod with an IP")
    port = port or 80
    by_node_ip = {node_ip(n): n["metadata"]["name"] for n in nodes}
    if source == "outside":
        src = _outside_ip(cfg)
        entry = by_node_ip.get(dst) or _lb_entry(dst, svcs, slices or [], nodes, cfg) or sorted(names)[0]
        return src, entry, dst, port, "in"
    if source in names:
        n = next(x for x in nodes if x["metadata"]["name"] == source)
        return node_ip(n), source, dst, port, "local"
    pod = _find(pods, source)
    if pod is None:
        raise CLIError(f"--from {source!r}: no pod or node of that name (nodes: {', '.join(sorted(names))}; "
                       "pods as [namespace/]name; or 'outside')")
    ip = (pod.get("status") or {}).get("podIP")
    node = (pod.get("spec") or {}).get("nodeName")
    if not ip or not node:
        raise CLIError(f"pod {source!r} has no IP or node yet")
    return ip, node, dst, port, "in"


def _outside_ip(cfg: ClusterConfig) -> str:
    if cfg.node_network:
        return str(next(ipaddress.ip_network(cfg.node_network, strict=False).hosts()))
    return "192.0.2.1"


def _lb_entry(ip: str, svcs: list[Obj], slices: list[Obj], nodes: list[Obj],
              cfg: ClusterConfig) -> str | None:
    """The node that carries a LoadBalancer / external IP: the same choice the agents make."""
    built = build_service_ports(svcs, slices, NodeFacts("", (), cfg.pod_cidr))
    for sp in built.ports:
        if ip in sp.lb_ips or ip in sp.external_ips:
            return lb_owner(ip, sp, nodes)
    return None


def trace_connection(cfg: ClusterConfig, source: str, dest: str, proto: str) -> Explanation:
    """`podnet trace`'s engine: the explanation of one connection (lines for people, data for JSON)."""
    nodes, pods, svcs, slices = asyncio.run(_fetch(cfg))
    src, entry, dst, port, kind = resolve(source, dest, nodes, pods, svcs, cfg, slices)
    netns = node_netns(cfg.name, entry)
    try:
        text = RealNft(netns).list_table_text(stateless=True)
    except NftError as e:
        raise CLIError(f"cannot read the rules of node {entry} (netns {netns}): {e}") from e
    if not text:
        raise CLIError(f"node {entry} has no podnet rules yet (netns {netns}): is its agent running?")
    rules = RuleInterpreter()
    try:
        rules.apply(text)
    except NftError as e:
        raise CLIError(f"cannot interpret the rules of node {entry}: {e}") from e
    entry_node = next(n for n in nodes if n["metadata"]["name"] == entry)
    local_ips, routes, devices = node_routing(netns, node_ip(entry_node))
    res = rules.trace(Packet(src, dst, port, proto, entry=kind), local_ips=local_ips, routes=routes,
                      devices=devices)
    ex = explain(res, src=src, dst=dst, port=port, proto=proto, entry_node=entry, pods=pods, nodes=nodes)
    add_policy_step(ex.lines, ex.data, cfg, pods, nodes, src,
                    [] if ex.data.get("reason") else (list(res.candidates) or [(dst, port)]), proto)
    return ex


def run_trace(args: argparse.Namespace) -> int:
    cfg = load_config(args.name)
    ex = trace_connection(cfg, args.source, args.dest, args.proto)
    if args.output == "json":
        json.dump(ex.data, sys.stdout, indent=2)
        sys.stdout.write("\n")
    else:
        for line in ex.lines:
            console.print(line, highlight=False, markup=False, soft_wrap=True)
    return 0


def add_policy_step(lines: list[str], data: dict[str, Any], cfg: ClusterConfig, pods: list[Obj],
                    nodes: list[Obj], src: str, targets: list[tuple[str, int]], proto: str) -> None:
    """NetworkPolicy's verdict on the packet as it reaches each possible pod (after DNAT)."""
    tables = LiveTables(cfg)
    data["policy"] = []
    for ip, p in targets:
        try:
            v = judge(tables, pods, nodes, src, ip, p, proto)
        except CLIError as e:
            lines.append(f"policy: unknown ({e})")
            continue
        lines.extend(v.lines)
        data["policy"].append(v.data)


Routing = tuple[tuple[str, ...], tuple[str, ...] | None, dict[str, str] | None]


def node_routing(netns: str, ip: str) -> Routing:
    """The node's own addresses, the destinations its main routing table reaches and each one's
    device (None: unknown)."""
    ops = RealNetOps()
    try:
        local = tuple(sorted({a.cidr.split("/")[0] for a in ops.addr_list(netns=netns)} | {ip}))
        unicast = [r for r in ops.route_list(netns=netns) if r.type == "unicast"]
    except NetOpsError:
        return (ip,), None, None
    return local, tuple(r.dst for r in unicast), {r.dst: r.dev or f"via {r.via}" for r in unicast}


def gather_counters(cfg: ClusterConfig, nodes: list[str]) -> dict[str, Any]:
    svcs: dict[str, list[int]] = {}
    eps: dict[str, list[int]] = {}
    errors = []
    for n in nodes:
        try:
            doc = RealNft(node_netns(cfg.name, n)).list_ruleset_json()
        except NftError as e:
            errors.append(f"{n}: {e}")
            continue
        s, e_ = counters_from_json(doc)
        for src, dst in ((s, svcs), (e_, eps)):
            for k, (pk, by) in src.items():
                acc = dst.setdefault(k, [0, 0])
                acc[0] += pk
                acc[1] += by
    drops, perrors = drop_counters(cfg, nodes)
    return {"services": [{"service": k, "packets": v[0], "bytes": v[1]} for k, v in sorted(svcs.items())],
            "endpoints": [{"endpoint": k, "packets": v[0], "bytes": v[1]} for k, v in sorted(eps.items())],
            "policy_drops": drops, "errors": errors + perrors}


def run_top(args: argparse.Namespace) -> int:
    cfg = load_config(args.name)
    nodes, _, _, _ = asyncio.run(_fetch(cfg))
    names = sorted(n["metadata"]["name"] for n in nodes)
    while True:
        data = gather_counters(cfg, names)
        rows: list[list[Any]] = [["service", d["service"], d["packets"], d["bytes"]]
                                 for d in data["services"]]
        rows += [["endpoint", d["endpoint"], d["packets"], d["bytes"]] for d in data["endpoints"]]
        rows += [["policy drops", d["policy"], d["packets"], d["bytes"]] for d in data["policy_drops"]]
        if args.watch and args.output != "json":
            console.clear()
        emit(args, data, ("KIND", "NAME", "PACKETS", "BYTES"), rows, title=f"traffic of cluster {cfg.name}")
        for err in data["errors"]:
            err_console.print(f"[yellow]warning[/]: {err}", highlight=False)
        if not args.watch:
            return 0
        time.sleep(2)
