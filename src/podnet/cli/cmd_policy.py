"""`podnet policy check FROM TO PORT`: would the policies (AdminNetworkPolicy, NetworkPolicy,
BaselineAdminNetworkPolicy) let this connection through? Answered from
the live `ip podnet-policy` tables of the nodes involved (the sender's for egress, the receiver's
for ingress), without sending a packet. Also the policy step of `podnet trace` and the per-policy drop
counters of `podnet top`."""

from __future__ import annotations

import argparse
import asyncio
import ipaddress
import json
import sys
from dataclasses import dataclass, field
from typing import Any

from podnet.cli.common import add_name_flag, client_for, load_config
from podnet.cli.main import CLIError
from podnet.cli.output import add_output_flag, console
from podnet.client.client import ApiError
from podnet.core.config import ClusterConfig
from podnet.core.naming import node_netns
from podnet.model.kinds import NODES, PODS, Obj
from podnet.policy.explain import (
    ANP,
    BANP,
    AdminRule,
    Packet,
    Step,
    Table,
    describe,
    is_self,
    judge_direction,
    parse_table,
)
from podnet.policy.nft import PolicyNftError, RealPolicyNft


def register(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    p = sub.add_parser("policy", help="NetworkPolicy and AdminNetworkPolicy: would a connection be allowed, "
                       "and by which rule",
                       description="Questions about NetworkPolicy, AdminNetworkPolicy and "
                       "BaselineAdminNetworkPolicy, answered from the live nftables rules.")
    psub = p.add_subparsers(dest="policy_command", metavar="COMMAND")
    c = psub.add_parser(
        "check", help="would FROM reach TO on PORT? (from the live rules, no packet sent)",
        description="Judge a connection FROM → TO:PORT with the live policy rules of the nodes involved: "
        "the sender's egress (on its node) and the receiver's ingress (on its node), each in the order "
        "AdminNetworkPolicies (by priority), NetworkPolicies, BaselineAdminNetworkPolicy. Names the rule "
        "that allows it (for admin policies: policy, rule name, action), or what drops it. "
        "No packet is sent.")
    add_name_flag(c)
    c.add_argument("source", metavar="FROM", help="a pod ([namespace/]name) or an IPv4 address")
    c.add_argument("dest", metavar="TO", help="a pod ([namespace/]name) or an IPv4 address")
    c.add_argument("port", metavar="PORT", type=_port, help="destination port (1-65535)")
    c.add_argument("--proto", choices=("tcp", "udp", "sctp"), default="tcp", help="protocol (default tcp)")
    add_output_flag(c)
    c.set_defaults(func=run_check)
    p.set_defaults(func=lambda args: (p.print_help(), 0)[1])


def _port(text: str) -> int:
    if not text.isdigit() or not 1 <= int(text) <= 65535:
        raise argparse.ArgumentTypeError(f"invalid port {text!r}: must be a number 1-65535")
    return int(text)


@dataclass
class Verdict:
    allowed: bool
    lines: list[str] = field(default_factory=list)
    data: dict[str, Any] = field(default_factory=dict)


class LiveTables:
    """Each node's policy table, read once (`nft list table ip podnet-policy` in its namespace)."""

    def __init__(self, cfg: ClusterConfig):
        self.cfg = cfg
        self.tables: dict[str, Table] = {}

    def of(self, node: str) -> Table:
        if node not in self.tables:
            nft = RealPolicyNft(node_netns(self.cfg.name, node))
            try:
                text = nft.list_text()
            except PolicyNftError as e:
                raise CLIError(f"cannot read the policy rules of node {node}: {e}") from e
            self.tables[node] = parse_table(text)
        return self.tables[node]


def pod_names(pods: list[Obj]) -> dict[str, str]:
    out = {}
    for p in pods:
        ip = (p.get("status") or {}).get("podIP")
        if ip and not (p.get("spec") or {}).get("hostNetwork"):
            out[str(ip)] = f"{p['metadata'].get('namespace', '')}/{p['metadata']['name']}"
    return out


def _pod_by_ip(pods: list[Obj], ip: str) -> Obj | None:
    for p in pods:
        if (p.get("status") or {}).get("podIP") == ip and not (p.get("spec") or {}).get("hostNetwork"):
            return p
    return None


def _node_ips(nodes: list[Obj]) -> dict[str, str]:
    out = {}
    for n in nodes:
        for a in (n.get("status") or {}).get("addresses") or []:
            if a.get("type") == "InternalIP":
                out[str(a.get("address"))] = n["metadata"]["name"]
    return out


def _step_data(step: Step, node: str) -> dict[str, Any]:
    out: dict[str, Any] = {"direction": step.direction, "node": node, "verdict": step.verdict,
                           "rule": step.rule, "policies": list(step.policies), "tier": step.tier}
    for key, comment in (("admin", step.rule if step.tier in (ANP, BANP) else ""), ("passedBy", step.passed)):
        if comment:
            r = AdminRule.parse(comment)
            out[key] = {"kind": r.kind, "name": r.policy, "rule": r.where, "ruleName": r.name,
                        "action": r.action}
    return out


def judge(tables: LiveTables, pods: list[Obj], nodes: list[Obj], src: str, dst: str, port: int,
          proto: str) -> Verdict:
    """Both sides of one connection, as the kernel judges it."""
    names = pod_names(pods)
    pkt = Packet(src, dst, proto, port)
    v = Verdict(True, data={"from": names.get(src, src), "to": names.get(dst, dst), "port": port,
                            "protocol": proto, "steps": []})
    spod, dpod = _pod_by_ip(pods, src), _pod_by_ip(pods, dst)
    snode = str((spod or {}).get("spec", {}).get("nodeName") or "")
    dnode = str((dpod or {}).get("spec", {}).get("nodeName") or "")
    if spod is not None and src == dst and snode and is_self(tables.of(snode), pkt):
        v.lines.append(f"policy: allowed: pod {names[src]} reaching itself is always allowed")
        v.data["steps"].append({"direction": "self", "verdict": "allowed"})
        v.data["allowed"] = True
        return v
    if spod is not None and snode:
        step = judge_direction(tables.of(snode), "egress", pkt)
        v.lines.append(f"policy (node {snode}): {describe(step, pkt, names)}")
        v.data["steps"].append(_step_data(step, snode))
        v.allowed = v.allowed and step.verdict != "dropped"
    if dpod is not None and dnode:
        if _node_ips(nodes).get(src) == dnode:
            v.lines.append(f"policy (node {dnode}): ingress: allowed: traffic from the pod's own node "
                           "(kubelet probes) is always allowed")
            v.data["steps"].append({"direction": "ingress", "node": dnode, "verdict": "allowed",
                                    "rule": "own node"})
        else:
            step = judge_direction(tables.of(dnode), "ingress", pkt)
            v.lines.append(f"policy (node {dnode}): {describe(step, pkt, names)}")
            v.data["steps"].append(_step_data(step, dnode))
            v.allowed = v.allowed and step.verdict != "dropped"
    if not v.data["steps"]:
        v.lines.append("policy: neither end is a pod: NetworkPolicy does not apply")
    v.data["allowed"] = v.allowed
    return v


async def _fetch(cfg: ClusterConfig) -> tuple[list[Obj], list[Obj]]:
    async with client_for(cfg) as c:
        try:
            pods = (await c.list(PODS)).get("items") or []
            nodes = (await c.list(NODES)).get("items") or []
        except (ApiError, OSError) as e:
            raise CLIError(f"cannot reach the API server of cluster {cfg.name!r} at {cfg.api_url}: "
                           f"{e}") from e
    return pods, nodes


def resolve_ip(ref: str, pods: list[Obj], what: str) -> str:
    try:
        return str(ipaddress.IPv4Address(ref))
    except ValueError:
        pass
    ns, _, name = ref.rpartition("/")
    for p in pods:
        m = p["metadata"]
        if m["name"] == name and m.get("namespace", "") == (ns or "default"):
            ip = (p.get("status") or {}).get("podIP")
            if not ip:
                raise CLIError(f"{what} {ref!r}: the pod has no IP yet")
            return str(ip)
    raise CLIError(f"{what} {ref!r}: no pod {name!r} in namespace {ns or 'default'!r} "
                   "(give a pod as [namespace/]name or an IPv4 address)")


def run_check(args: argparse.Namespace) -> int:
    cfg = load_config(args.name)
    pods, nodes = asyncio.run(_fetch(cfg))
    src = resolve_ip(args.source, pods, "FROM")
    dst = resolve_ip(args.dest, pods, "TO")
    v = judge(LiveTables(cfg), pods, nodes, src, dst, args.port, args.proto)
    if args.output == "json":
        json.dump(v.data, sys.stdout, indent=2)
        sys.stdout.write("\n")
        return 0
    for line in v.lines:
        console.print(line, highlight=False, markup=False, soft_wrap=True)
    console.print(f"verdict: {'allowed' if v.allowed else 'dropped'}", highlight=False, markup=False)
    return 0


def drop_counters(cfg: ClusterConfig, nodes: list[str]) -> tuple[list[dict[str, Any]], list[str]]:
    """Packets each policy dropped, per direction, summed over every node's named counters."""
    acc: dict[str, list[int]] = {}
    errors: list[str] = []
    for n in nodes:
        try:
            doc = RealPolicyNft(node_netns(cfg.name, n)).list_json()
        except PolicyNftError as e:
            errors.append(f"{n}: {e}")
            continue
        for item in doc.get("nftables") or []:
            c = item.get("counter") if isinstance(item, dict) else None
            if isinstance(c, dict) and str(c.get("name", "")).startswith("drop-"):
                a = acc.setdefault(str(c.get("comment") or c.get("name")), [0, 0])
                a[0] += int(c.get("packets") or 0)
                a[1] += int(c.get("bytes") or 0)
    return [{"policy": k, "packets": v[0], "bytes": v[1]} for k, v in sorted(acc.items())], errors
