"""The pod network (the CNI role): one point-to-point veth per pod, no bridge, no NAT.

Pod side (`eth0` in the pod's namespace): the pod IP as a /32, a link-scope
route to the gateway 169.254.1.1 and the default route through it. Node side
(a veth named from the pod uid): proxy ARP on, so the node answers for the
gateway, and a /32 route to the pod IP. This is Calico's layout.

`plan_pod_network` says what must exist (pure); `add_pod_network` makes the
kernel match it, whatever part already exists (idempotent).
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass, field

from podnet.core import naming
from podnet.net.ops import PROTO_PODNET_POD, InvalidError, NetOps, NotFoundError, Route

POD_GATEWAY = naming.POD_GATEWAY
POD_IF = naming.POD_IF


def host_if_name(pod_uid: str) -> str:
    """The node-side veth name of a pod (at most 15 characters, stable for the pod uid)."""
    return naming.pod_host_if(pod_uid)


@dataclass(frozen=True)
class PodNetworkPlan:
    node_netns: str | None
    pod_netns: str
    host_if: str
    pod_if: str
    pod_addr: str  # "10.244.1.5/32"
    mtu: int
    pod_routes: tuple[Route, ...]
    node_routes: tuple[Route, ...]
    node_sysctls: dict[str, str] = field(default_factory=dict)


def plan_pod_network(*, node_netns: str | None, pod_netns: str, pod_ip: str, host_if: str,
                     mtu: int = 1500) -> PodNetworkPlan:
    try:
        ip = ipaddress.IPv4Address(pod_ip)
    except ValueError:
        raise InvalidError(f"invalid pod IP {pod_ip!r}: must be an IPv4 address like 10.244.1.5") from None
    if not 576 <= mtu <= 65535:
        raise InvalidError(f"invalid MTU {mtu}: must be between 576 and 65535")
    return PodNetworkPlan(
        node_netns=node_netns, pod_netns=pod_netns, host_if=host_if, pod_if=POD_IF, pod_addr=f"{ip}/32",
        mtu=mtu,
        pod_routes=(
            Route(dst=f"{POD_GATEWAY}/32", dev=POD_IF, scope="link", proto=PROTO_PODNET_POD),
            Route(dst="0.0.0.0/0", via=POD_GATEWAY, dev=POD_IF, proto=PROTO_PODNET_POD),
        ),
        node_routes=(Route(dst=f"{ip}/32", dev=host_if, scope="link", proto=PROTO_PODNET_POD),),
        node_sysctls={
            f"net.ipv4.conf.{host_if}.proxy_arp": "1",
            f"net.ipv4.neigh.{host_if}.proxy_delay": "0",  # answer ARP at once, not after 0.8 s
            f"net.ipv4.conf.{host_if}.rp_filter": "0",
        },
    )


def apply_pod_network(ops: NetOps, plan: PodNetworkPlan) -> None:
    node, pod = plan.node_netns, plan.pod_netns
    if not ops.netns_exists(pod):
        ops.netns_add(pod)
    host = ops.link_get(plan.host_if, netns=node)
    inner = ops.link_get(plan.pod_if, netns=pod)
    if host is not None and (host.kind != "veth" or inner is None or inner.kind != "veth"):
        ops.link_del(plan.host_if, netns=node)  # half-made or foreign: start again
        host = None
        inner = ops.link_get(plan.pod_if, netns=pod)
    if host is None:
        if inner is not None:
            ops.link_del(plan.pod_if, netns=pod)
        ops.veth_add(plan.host_if, plan.pod_if, netns=node, peer_netns=pod, mtu=plan.mtu)
    else:
        for name, ns, link in ((plan.host_if, node, host), (plan.pod_if, pod, inner)):
            if link is not None and link.mtu != plan.mtu:
                ops.link_set(name, netns=ns, mtu=plan.mtu)

    # pod side
    ops.link_set("lo", netns=pod, up=True)
    ops.link_set(plan.pod_if, netns=pod, up=True)
    for a in ops.addr_list(netns=pod, ifname=plan.pod_if):
        if a.cidr != plan.pod_addr:
            ops.addr_del(plan.pod_if, a.cidr, netns=pod)
    if all(a.cidr != plan.pod_addr for a in ops.addr_list(netns=pod, ifname=plan.pod_if)):
        ops.addr_add(plan.pod_if, plan.pod_addr, netns=pod)
    for r in plan.pod_routes:  # in order: the gateway's link route before the default route
        ops.route_replace(r, netns=pod)

    # node side
    for key, value in plan.node_sysctls.items():
        ops.sysctl_set(key, value, netns=node)
    ops.link_set(plan.host_if, netns=node, up=True)
    for r in ops.route_list(netns=node):
        if r.dev == plan.host_if and r.proto == PROTO_PODNET_POD and r not in plan.node_routes:
            ops.route_del(r.dst, metric=r.metric, netns=node)  # the pod's old IP
    for r in plan.node_routes:
        ops.route_replace(r, netns=node)


def add_pod_network(ops: NetOps, *, node_netns: str | None, pod_netns: str, pod_ip: str, host_if: str,
                    mtu: int = 1500) -> None:
    """Wire `pod_netns` to its node with `pod_ip`; creates the pod namespace if needed; idempotent."""
    apply_pod_network(ops, plan_pod_network(node_netns=node_netns, pod_netns=pod_netns, pod_ip=pod_ip,
                                            host_if=host_if, mtu=mtu))


def del_pod_network(ops: NetOps, *, node_netns: str | None, pod_netns: str, host_if: str,
                    delete_netns: bool = True) -> None:
    """Remove a pod's veth (and its route with it) and, unless told not to, its namespace; idempotent."""
    try:
        ops.link_del(host_if, netns=node_netns)
    except NotFoundError:
        pass
    if delete_netns and ops.netns_exists(pod_netns):
        try:
            ops.netns_del(pod_netns)
        except NotFoundError:
            pass
