"""A cluster's layout as plain data, derived from its ClusterConfig (pure, no I/O).

Node N (1-based) is `<cluster>-node-N` with IP `<node network> + 1 + N` (the
host holds .1). Nodes get their podCIDRs from the control plane's node IPAM
controller (spec.podCIDR), not from here.
"""

from __future__ import annotations

import ipaddress
from dataclasses import asdict, dataclass
from typing import Any

from podnet.core import naming
from podnet.core.config import ClusterConfig

MAX_NODES = 100
CANDIDATE_NODE_NETWORKS = tuple(f"172.30.{i}.0/24" for i in range(256)) + tuple(
    f"172.31.{i}.0/24" for i in range(256))


@dataclass(frozen=True)
class NodePlan:
    name: str
    index: int
    ip: str
    netns: str
    host_if: str

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def host_cidr(cfg: ClusterConfig) -> str:
    net = ipaddress.IPv4Network(cfg.node_network)
    return f"{net[1]}/{net.prefixlen}"


def default_lb_pool(node_network: str) -> str:
    net = ipaddress.IPv4Network(node_network)
    if net.num_addresses < 256:
        hi = net.num_addresses - 2
        lo = max(hi - 10, 2)
        return f"{net[lo]}-{net[hi]}"
    return f"{net[200]}-{net[250]}"


def plan_nodes(cfg: ClusterConfig) -> list[NodePlan]:
    net = ipaddress.IPv4Network(cfg.node_network)
    out = []
    for i in range(1, cfg.nodes + 1):
        name = naming.node_name(cfg.name, i)
        out.append(NodePlan(name=name, index=i, ip=str(net[1 + i]),
                            netns=naming.node_netns(cfg.name, name),
                            host_if=naming.node_host_if(cfg.name, name)))
    return out
