"""A node's network: its namespace on the node network, and its routes to the other nodes' pods.

Two modes, chosen per cluster:
- host-gw: `<other node's podCIDR> via <other node IP> dev <uplink>` — the
  nodes share one L2 network, so plain routes suffice (flannel's host-gw);
- vxlan: one VXLAN device per node (VNI per cluster, local = node IP), whose
  address is the network address of the node's podCIDR (the "VTEP address");
  per remote node a permanent neighbour entry (VTEP address → VTEP MAC), an
  FDB entry (VTEP MAC → remote node IP) and
  `<podCIDR> via <remote VTEP address> dev <vxlan> onlink` (flannel's vxlan).
  VTEP MACs are derived from node IPs, so nothing has to be exchanged.

Routes podnet owns carry protocol PROTO_PODNET_NODE; `reconcile_node_routes`
adds what is missing, fixes what differs and removes the rest of them (level-
triggered, idempotent). Planning is pure (`plan_node_network`).
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass, field
from typing import Literal

from podnet.core import naming
from podnet.net.ops import PROTO_PODNET_NODE, Fdb, InvalidError, Neigh, NetOps, NotFoundError, Route

Mode = Literal["host-gw", "vxlan"]
MODES: tuple[str, ...] = ("host-gw", "vxlan")
VXLAN_IF = "podnet-vxlan"
VXLAN_PORT = 8472
VXLAN_OVERHEAD = 50


@dataclass(frozen=True)
class NodeInfo:
    name: str
    ip: str
    pod_cidr: str  # "" while the node has none yet


@dataclass(frozen=True)
class VxlanSpec:
    name: str
    vni: int
    local: str
    dstport: int
    mac: str
    addr: str  # "10.244.1.0/32"
    mtu: int


@dataclass(frozen=True)
class NodeNetworkPlan:
    routes: tuple[Route, ...]
    vxlan: VxlanSpec | None
    neighs: tuple[Neigh, ...] = field(default=())
    fdbs: tuple[Fdb, ...] = field(default=())


def vtep_mac(node_ip: str) -> str:
    """A locally administered unicast MAC derived from the node IP: 0e:70:<the IP's four bytes>."""
    b = ipaddress.IPv4Address(node_ip).packed
    return "0e:70:" + ":".join(f"{x:02x}" for x in b)


def vtep_addr(pod_cidr: str) -> str:
    return str(ipaddress.IPv4Network(pod_cidr).network_address)


def pod_mtu(mode: str, uplink_mtu: int = 1500) -> int:
    """The MTU pods on a node should get: the uplink's, less the VXLAN header in vxlan mode."""
    return uplink_mtu - VXLAN_OVERHEAD if mode == "vxlan" else uplink_mtu


def _check(mode: str, my_node: NodeInfo, others: list[NodeInfo], vni: int) -> None:
    if mode not in MODES:
        raise InvalidError(f"unsupported network mode {mode!r}: must be one of {', '.join(MODES)}")
    if mode == "vxlan" and not 1 <= vni <= 0xFFFFFF:
        raise InvalidError(f"invalid VXLAN id {vni}: must be between 1 and 16777215")
    for n in (my_node, *others):
        try:
            ipaddress.IPv4Address(n.ip)
            if n.pod_cidr:
                ipaddress.IPv4Network(n.pod_cidr, strict=True)
        except ValueError as e:
            raise InvalidError(f"node {n.name!r}: {e}") from None


def service_route(service_cidr: str, uplink: str, node_ip: str) -> Route:
    """The node's route for the service CIDR: out of the uplink, from the node IP.

    Kubernetes nodes route Service addresses somewhere (usually their default route), so the
    routing decision for a ClusterIP succeeds and the Service rules give the verdict: DNAT in
    nat output re-routes a node's own packets to the chosen endpoint, a pod's packets are DNATed
    before routing, and what no rule translates (no endpoints, undefined port, unallocated
    address) is rejected or dropped by the filter hooks before it could leave. Without this
    route connect() from the node fails at once with ENETUNREACH and pods get ICMP net-unreachable.
    """
    return Route(dst=str(ipaddress.IPv4Network(service_cidr, strict=False)), dev=uplink, scope="link",
                 proto=PROTO_PODNET_NODE, src=node_ip)


def api_route(api_ip: str, gateway: str, uplink: str, node_ip: str) -> Route:
    """The node's route to the API's advertise address when that address is not on the node network
    (`podnet up --listen` on another address of the host): through the host, which holds it.

    Kubernetes nodes reach the advertise address through their default route; podnet's node
    namespaces have none on purpose (nothing may leave the machine), so they get this one address.
    Pods reach it only through the `kubernetes` Service: DNATed there and masqueraded to the node IP.
    """
    return Route(dst=f"{ipaddress.IPv4Address(api_ip)}/32", via=gateway, dev=uplink, proto=PROTO_PODNET_NODE,
                 src=node_ip)


def api_via(api_ip: str, node_network: str, node_ip: str) -> tuple[str, str] | None:
    """(advertise address, gateway) for `api_route` when a node on `node_network` needs it: the address is
    set and off the node network, and the node is on it (its host holds the network's first address)."""
    if not api_ip or not node_network:
        return None
    net = ipaddress.IPv4Network(node_network)
    if ipaddress.IPv4Address(api_ip) in net or ipaddress.IPv4Address(node_ip) not in net:
        return None
    return api_ip, str(net[1])


def plan_node_network(*, mode: str, my_node: NodeInfo, others: list[NodeInfo], vni: int, uplink: str,
                      uplink_mtu: int = 1500, vxlan_name: str = VXLAN_IF,
                      dstport: int = VXLAN_PORT, service_cidr: str = "",
                      api_via: tuple[str, str] | None = None) -> NodeNetworkPlan:
    """What a node's namespace needs so its pods reach the pods of `others` and it can route
    the service CIDR and, with `api_via` = (advertise address, gateway), the API (pure)."""
    _check(mode, my_node, others, vni)
    routes: list[Route] = [
        # Something must route the pods' gateway address out of another link, or proxy ARP stays silent.
        Route(dst=f"{naming.POD_GATEWAY}/32", dev=uplink, scope="link", proto=PROTO_PODNET_NODE),
    ]
    if service_cidr:
        routes.append(service_route(service_cidr, uplink, my_node.ip))
    if api_via is not None:
        routes.append(api_route(api_via[0], api_via[1], uplink, my_node.ip))
    peers = sorted((n for n in others if n.pod_cidr and n.name != my_node.name), key=lambda n: n.name)
    if mode == "host-gw":
        routes += [Route(dst=n.pod_cidr, via=n.ip, dev=uplink, proto=PROTO_PODNET_NODE) for n in peers]
        return NodeNetworkPlan(routes=tuple(routes), vxlan=None)
    if not my_node.pod_cidr:
        return NodeNetworkPlan(routes=tuple(routes), vxlan=None)
    vx = VxlanSpec(name=vxlan_name, vni=vni, local=my_node.ip, dstport=dstport, mac=vtep_mac(my_node.ip),
                   addr=f"{vtep_addr(my_node.pod_cidr)}/32", mtu=uplink_mtu - VXLAN_OVERHEAD)
    # src = the node IP: a node reaching a pod on another node shows its own address (as in host-gw),
    # not the VTEP's; the pod's reply then goes back over the node network.
    routes += [Route(dst=n.pod_cidr, via=vtep_addr(n.pod_cidr), dev=vxlan_name, onlink=True,
                     proto=PROTO_PODNET_NODE, src=my_node.ip) for n in peers]
    neighs = tuple(Neigh(ifname=vxlan_name, ip=vtep_addr(n.pod_cidr), mac=vtep_mac(n.ip)) for n in peers)
    fdbs = tuple(Fdb(ifname=vxlan_name, mac=vtep_mac(n.ip), dst=n.ip) for n in peers)
    return NodeNetworkPlan(routes=tuple(routes), vxlan=vx, neighs=neighs, fdbs=fdbs)


def find_uplink(ops: NetOps, node_ip: str, netns: str | None) -> tuple[str, int]:
    """The link that holds `node_ip` in `netns`, and its MTU."""
    for a in ops.addr_list(netns=netns):
        if a.cidr.split("/")[0] == node_ip:
            link = ops.link_get(a.ifname, netns=netns)
            return a.ifname, (link.mtu if link else 1500)
    raise NotFoundError(f"no link holds the node IP {node_ip} in "
                        f"{'network namespace ' + repr(netns) if netns else 'the current network namespace'}")


def _apply_vxlan(ops: NetOps, netns: str | None, vx: VxlanSpec, plan: NodeNetworkPlan) -> None:
    link = ops.link_get(vx.name, netns=netns)
    if link is not None and (link.kind != "vxlan" or link.vni != vx.vni or link.local != vx.local
                             or link.dstport != vx.dstport or link.mac.lower() != vx.mac):
        ops.link_del(vx.name, netns=netns)
        link = None
    if link is None:
        ops.vxlan_add(vx.name, vni=vx.vni, local=vx.local, dstport=vx.dstport, netns=netns, mtu=vx.mtu,
                      mac=vx.mac)
    elif link.mtu != vx.mtu:
        ops.link_set(vx.name, netns=netns, mtu=vx.mtu)
    addrs = ops.addr_list(netns=netns, ifname=vx.name)
    for a in addrs:
        if a.cidr != vx.addr:
            ops.addr_del(vx.name, a.cidr, netns=netns)
    if all(a.cidr != vx.addr for a in addrs):
        ops.addr_add(vx.name, vx.addr, netns=netns)
    ops.link_set(vx.name, netns=netns, up=True)

    want_neigh = {n.ip: n for n in plan.neighs}
    for n in ops.neigh_list(vx.name, netns=netns):
        if want_neigh.get(n.ip) != n:
            ops.neigh_del(vx.name, n.ip, netns=netns)
    have_neigh = set(ops.neigh_list(vx.name, netns=netns))
    for n in plan.neighs:
        if n not in have_neigh:
            ops.neigh_add(vx.name, n.ip, n.mac, netns=netns)

    want_fdb = set(plan.fdbs)
    have_fdb = set(ops.fdb_list(vx.name, netns=netns))
    for f in have_fdb - want_fdb:
        ops.fdb_del(vx.name, f.mac, f.dst, netns=netns)
    for f in plan.fdbs:
        if f not in have_fdb:
            ops.fdb_add(vx.name, f.mac, f.dst, netns=netns)


def apply_node_network(ops: NetOps, netns: str | None, plan: NodeNetworkPlan, *,
                       vxlan_name: str = VXLAN_IF) -> None:
    if plan.vxlan is not None:
        _apply_vxlan(ops, netns, plan.vxlan, plan)
    want = {r.key(): r for r in plan.routes}
    have = {r.key(): r for r in ops.route_list(netns=netns) if r.proto == PROTO_PODNET_NODE}
    for key, r in have.items():
        if key not in want:
            ops.route_del(r.dst, metric=r.metric, netns=netns)
    for key, r in want.items():
        if have.get(key) != r:
            ops.route_replace(r, netns=netns)
    if plan.vxlan is None and ops.link_get(vxlan_name, netns=netns) is not None:
        ops.link_del(vxlan_name, netns=netns)


def reconcile_node_routes(ops: NetOps, *, netns: str | None, mode: str, my_node: NodeInfo,
                          others: list[NodeInfo], vni: int, vxlan_name: str = VXLAN_IF,
                          dstport: int = VXLAN_PORT, service_cidr: str = "",
                          api_via: tuple[str, str] | None = None) -> NodeNetworkPlan:
    """Make `netns` (None: this process's namespace) route to every other node's podCIDR (and the
    service CIDR and the API's advertise address when given); returns the plan."""
    uplink, mtu = find_uplink(ops, my_node.ip, netns)
    plan = plan_node_network(mode=mode, my_node=my_node, others=others, vni=vni, uplink=uplink,
                             uplink_mtu=mtu, vxlan_name=vxlan_name, dstport=dstport,
                             service_cidr=service_cidr, api_via=api_via)
    apply_node_network(ops, netns, plan, vxlan_name=vxlan_name)
    return plan


# ---- the node namespace itself (made by `podnet up`) ---------------------------------------------
NODE_SYSCTLS = {
    "net.ipv4.ip_forward": "1",
    "net.ipv4.conf.all.rp_filter": "0",
    "net.ipv4.conf.default.rp_filter": "0",
}


def setup_node_netns(ops: NetOps, *, netns: str, host_if: str, bridge: str, node_ip_cidr: str,
                     host_netns: str | None = None, mtu: int = 1500) -> None:
    """Create a node: namespace `netns`, `eth0` in it holding `node_ip_cidr`, its peer `host_if` on `bridge`.

    Idempotent: what exists is kept, what is missing is made.
    """
    uplink = naming.NODE_UPLINK_IF
    if not ops.netns_exists(netns):
        ops.netns_add(netns)
    host = ops.link_get(host_if, netns=host_netns)
    inner = ops.link_get(uplink, netns=netns)
    if host is not None and inner is None:
        ops.link_del(host_if, netns=host_netns)
        host = None
    if host is None:
        if inner is not None:
            ops.link_del(uplink, netns=netns)
        ops.veth_add(host_if, uplink, netns=host_netns, peer_netns=netns, mtu=mtu)
    ops.link_set(host_if, netns=host_netns, master=bridge, up=True)
    for key, value in NODE_SYSCTLS.items():
        ops.sysctl_set(key, value, netns=netns)
    ops.link_set("lo", netns=netns, up=True)
    ops.link_set(uplink, netns=netns, up=True)
    ops.sysctl_set(f"net.ipv4.conf.{uplink}.rp_filter", "0", netns=netns)
    want = str(ipaddress.IPv4Interface(node_ip_cidr))
    if all(a.cidr != want for a in ops.addr_list(netns=netns, ifname=uplink)):
        ops.addr_add(uplink, want, netns=netns)
    # The pods' gateway must route out of the uplink for proxy ARP to answer (see plan_node_network).
    anchor = Route(dst=f"{naming.POD_GATEWAY}/32", dev=uplink, scope="link", proto=PROTO_PODNET_NODE)
    ops.route_replace(anchor, netns=netns)
