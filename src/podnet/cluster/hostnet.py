"""The host side of a cluster: choosing and checking its address ranges against the host's routes.

Pure functions over a list of routes (tested without root); `podnet up` feeds
them the host namespace's main table.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable, Sequence

from podnet.core.layout import CANDIDATE_NODE_NETWORKS
from podnet.core.lbpool import parse_pool
from podnet.net.ops import PROTO_PODNET_NODE, Route


class AddressPlanError(ValueError):
    """A range collides with a host route or with another range; the message names both."""


def describe_route(r: Route) -> str:
    """A route the way `ip route` prints it."""
    parts = [r.type] if r.type != "unicast" else []
    parts.append("default" if r.dst == "0.0.0.0/0" else r.dst)
    if r.via:
        parts += ["via", r.via]
    if r.dev:
        parts += ["dev", r.dev]
    if r.metric:
        parts += ["metric", str(r.metric)]
    return " ".join(parts)


def is_podnet_guard(r: Route) -> bool:
    """An `unreachable` guard route of some podnet cluster (clusters may share pod/service CIDRs)."""
    return r.type == "unreachable" and r.proto == PROTO_PODNET_NODE


def colliding_route(cidr: str, routes: Iterable[Route], *, ignore_guards: bool) -> Route | None:
    """The first non-default host route overlapping `cidr`, if any."""
    net = ipaddress.IPv4Network(cidr)
    for r in routes:
        if r.dst == "0.0.0.0/0" or (ignore_guards and is_podnet_guard(r)):
            continue
        if net.overlaps(ipaddress.IPv4Network(r.dst)):
            return r
    return None


def parse_cidr(label: str, flag: str, value: str) -> ipaddress.IPv4Network:
    try:
        return ipaddress.IPv4Network(value, strict=True)
    except ValueError as e:
        raise AddressPlanError(f"invalid {label} {value!r} ({flag}): {e}; expected a network like "
                               "10.244.0.0/16") from None


MIN_SERVICE_ADDRESSES = 8  # a /29: network and broadcast, the `kubernetes` Service, and a few more
MAX_SERVICE_PREFIX = 12  # kube-apiserver: "the mask must be >= 12" for IPv4 service ranges


def _special_use(net: ipaddress.IPv4Network) -> str:
    """What kind of address range this is, when it cannot carry pods, Services or nodes ("" if fine)."""
    checks = [(net.is_loopback, "a loopback range (127.0.0.0/8)"),
              (net.is_link_local, "a link-local range (169.254.0.0/16)"),
              (net.is_multicast, "a multicast range (224.0.0.0/4)"),
              (net.overlaps(ipaddress.IPv4Network("0.0.0.0/8")), "in 0.0.0.0/8 ('this network')"),
              (net.overlaps(ipaddress.IPv4Network("240.0.0.0/4")), "reserved (240.0.0.0/4)")]
    return next((what for hit, what in checks if hit), "")


def check_ranges(*, pod_cidr: str, service_cidr: str, node_network: str, routes: Sequence[Route]) -> None:
    """Refuse ranges that overlap each other or a route the host already has, special-use ranges
    (loopback, link-local, multicast, ...), and a service CIDR too small or too large."""
    ranges = [("pod CIDR", "--pod-cidr", pod_cidr, True),
              ("service CIDR", "--service-cidr", service_cidr, True),
              ("node network", "--node-network", node_network, False)]
    nets = [(label, flag, parse_cidr(label, flag, v)) for label, flag, v, _ in ranges]
    examples = {"--pod-cidr": "10.244.0.0/16", "--service-cidr": "10.96.0.0/16",
                "--node-network": "172.30.0.0/24"}
    for label, flag, net in nets:
        what = _special_use(net)
        if what:
            raise AddressPlanError(f"the {label} {net} ({flag}) is {what}: choose a private range such as "
                                   f"{examples[flag]}")
    svc = nets[1][2]
    if svc.num_addresses < MIN_SERVICE_ADDRESSES:
        raise AddressPlanError(f"the service CIDR {svc} (--service-cidr) is too small: it has "
                               f"{svc.num_addresses} address(es), Services need at least "
                               f"{MIN_SERVICE_ADDRESSES} (a /29 or larger, e.g. 10.96.0.0/16)")
    if svc.prefixlen < MAX_SERVICE_PREFIX:
        raise AddressPlanError(f"the service CIDR {svc} (--service-cidr) is too large: for 32-bit "
                               f"addresses the mask must be >= {MAX_SERVICE_PREFIX}")
    for i, (la, fa, a) in enumerate(nets):
        for lb, fb, b in nets[i + 1:]:
            if a.overlaps(b):
                raise AddressPlanError(f"the {la} {a} ({fa}) overlaps the {lb} {b} ({fb}): choose ranges "
                                       "that do not overlap")
    for (label, flag, value, ignore_guards), (_, _, net) in zip(ranges, nets, strict=True):
        r = colliding_route(str(net), routes, ignore_guards=ignore_guards)
        if r is not None:
            raise AddressPlanError(f"the {label} {value} collides with the host route '{describe_route(r)}': "
                                   f"choose another range with {flag}")


def choose_node_network(routes: Sequence[Route], avoid: Iterable[str] = ()) -> str:
    """The first candidate /24 (172.30.0.0/24, 172.30.1.0/24, ...) no route and no `avoid` range touches."""
    avoid_nets = [ipaddress.IPv4Network(a) for a in avoid if a]
    for cand in CANDIDATE_NODE_NETWORKS:
        net = ipaddress.IPv4Network(cand)
        if colliding_route(cand, routes, ignore_guards=False) is None and not any(
                net.overlaps(a) for a in avoid_nets):
            return cand
    raise AddressPlanError("no free node network in 172.30.0.0/15: every /24 collides with a host route or "
                           "another cluster; give one with --node-network")


def parse_port_range(value: str) -> tuple[int, int]:
    lo_s, sep, hi_s = value.partition("-")
    try:
        lo, hi = int(lo_s), int(hi_s)
    except ValueError:
        lo, hi = -1, -1
    if not sep or not (1 <= lo <= hi <= 65535):
        raise AddressPlanError(f"invalid node port range {value!r} (--node-port-range): expected A-B with "
                               "1 <= A <= B <= 65535, e.g. 30000-32767")
    return lo, hi


def parse_lb_pool(value: str, node_network: str) -> str:
    """Check an LB pool 'A-B' (addresses on the node network, A <= B); 'none' disables it."""
    if value == "none":
        return value
    net = ipaddress.IPv4Network(node_network)
    try:
        ranges = parse_pool(value)
    except ValueError:
        ranges = []
    # `up` takes one range FIRST-LAST of IPv4 addresses (the API server's pool takes more forms)
    lo, hi = ranges[0] if len(ranges) == 1 else (None, None)
    if "-" not in value or "/" in value or not isinstance(lo, ipaddress.IPv4Address) \
            or not isinstance(hi, ipaddress.IPv4Address):
        raise AddressPlanError(f"invalid LoadBalancer pool {value!r} (--lb-pool): expected FIRST-LAST, e.g. "
                               f"{net[200] if net.num_addresses >= 256 else net[2]}-"
                               f"{net[250] if net.num_addresses >= 256 else net[-2]}, or 'none'")
    if lo not in net or hi not in net or lo in (net.network_address, net[1]) or hi == net.broadcast_address:
        raise AddressPlanError(f"LoadBalancer pool {value} (--lb-pool) must lie on the node network {net}, "
                               "without its network, host (.1) or broadcast address")
    return f"{lo}-{hi}"
