"""The netlink adapter: everything podnet asks of the kernel's networking, as one interface.

`NetOps` is the interface; `podnet.net.real.RealNetOps` performs it with
pyroute2, `podnet.net.fake.FakeNetOps` models it in memory with the same
behaviour (the kernel tests run one scenario on both and compare). Every
method takes `netns`: a named network namespace (under /run/netns) or None
for the namespace of the calling process.

Only IPv4 and the main routing table are modelled.
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass
from typing import Protocol

# Route protocol numbers (rtm_protocol). podnet marks the routes it owns with its own
# numbers, so a reconcile loop can tell its routes from everything else.
PROTO_KERNEL = 2
PROTO_BOOT = 3
PROTO_STATIC = 4
PROTO_PODNET_NODE = 77  # routes between nodes (host-gw / vxlan) and host guard routes
PROTO_PODNET_POD = 78  # the /32 route to each pod on its node

IFNAME_MAX = 15


class NetOpsError(Exception):
    """A netlink operation failed; the message names the object and the namespace."""


class NotFoundError(NetOpsError):
    """The namespace, link, address, route or entry does not exist."""


class ExistsError(NetOpsError):
    """The object already exists."""


class InvalidError(NetOpsError):
    """The request is not valid: bad name, unreachable gateway, link down, wrong kind, ..."""


def where(netns: str | None) -> str:
    return f"network namespace {netns!r}" if netns else "the current network namespace"


def check_ifname(name: str) -> None:
    if not name or len(name) > IFNAME_MAX or "/" in name or any(c.isspace() for c in name):
        raise InvalidError(f"invalid interface name {name!r}: must be 1-{IFNAME_MAX} characters "
                           "without '/' or spaces")


def check_netns_name(name: str) -> None:
    if not name or name in (".", "..") or "/" in name or len(name) > 255:
        raise InvalidError(f"invalid network namespace name {name!r}: must be 1-255 characters without '/'")


def normalize_dst(dst: str) -> str:
    """'default' → '0.0.0.0/0'; '10.0.0.5' → '10.0.0.5/32'; host bits are refused."""
    if dst == "default":
        return "0.0.0.0/0"
    try:
        return str(ipaddress.IPv4Network(dst, strict=True))
    except ValueError as e:
        raise InvalidError(f"invalid route destination {dst!r}: {e}") from None


@dataclass(frozen=True)
class Link:
    name: str
    kind: str  # "veth", "bridge", "vxlan", "loopback", or what the kernel says
    up: bool
    mtu: int
    mac: str
    master: str | None = None
    peer_netns: str | None = None  # not always known; informational
    vni: int | None = None  # vxlan only
    local: str | None = None  # vxlan only
    dstport: int | None = None  # vxlan only


@dataclass(frozen=True)
class Addr:
    ifname: str
    cidr: str  # "10.244.1.5/32": the address and its prefix length


@dataclass(frozen=True)
class Route:
    """A route in the main table. `dst` is a network ("10.244.1.0/24", "0.0.0.0/0")."""

    dst: str
    type: str = "unicast"  # or "unreachable"
    via: str | None = None
    dev: str | None = None
    scope: str = "universe"  # "universe", "link" or "host"
    onlink: bool = False
    metric: int = 0
    proto: int = PROTO_BOOT
    src: str | None = None  # preferred source address for locally generated packets ("src" in `ip route`)

    def key(self) -> tuple[str, int]:
        """What the kernel considers the identity of a route in one table (no TOS used here)."""
        return (self.dst, self.metric)

    def shape(self) -> tuple[str, str, str | None, str | None, str, bool, int, int]:
        return (self.dst, self.type, self.via, self.dev, self.scope, self.onlink, self.metric, self.proto)


@dataclass(frozen=True)
class Neigh:
    ifname: str
    ip: str
    mac: str


@dataclass(frozen=True)
class Fdb:
    ifname: str
    mac: str
    dst: str



class NetOps(Protocol):
    # ---- namespaces ----
    def netns_add(self, name: str) -> None: ...
    def netns_del(self, name: str) -> None: ...
    def netns_exists(self, name: str) -> bool: ...
    def netns_list(self) -> list[str]: ...

    # ---- links ----
    def veth_add(self, name: str, peer: str, *, netns: str | None = None, peer_netns: str | None = None,
                 mtu: int | None = None) -> None: ...
    def bridge_add(self, name: str, *, netns: str | None = None) -> None: ...
    def vxlan_add(self, name: str, *, vni: int, local: str, dstport: int, netns: str | None = None,
                  mtu: int | None = None, mac: str | None = None) -> None: ...
    def link_set(self, name: str, *, netns: str | None = None, up: bool | None = None,
                 master: str | None = None, mtu: int | None = None) -> None: ...
    def link_del(self, name: str, *, netns: str | None = None) -> None: ...
    def link_get(self, name: str, *, netns: str | None = None) -> Link | None: ...
    def link_list(self, *, netns: str | None = None) -> list[Link]: ...

    # ---- addresses ----
    def addr_add(self, ifname: str, cidr: str, *, netns: str | None = None) -> None: ...
    def addr_del(self, ifname: str, cidr: str, *, netns: str | None = None) -> None: ...
    def addr_list(self, *, netns: str | None = None, ifname: str | None = None) -> list[Addr]: ...

    # ---- routes (main table) ----
    def route_add(self, route: Route, *, netns: str | None = None) -> None: ...
    def route_replace(self, route: Route, *, netns: str | None = None) -> None: ...
    def route_del(self, dst: str, *, metric: int = 0, netns: str | None = None) -> None: ...
    def route_list(self, *, netns: str | None = None) -> list[Route]: ...

    # ---- neighbours and forwarding database ----
    def neigh_add(self, ifname: str, ip: str, mac: str, *, netns: str | None = None) -> None: ...
    def neigh_del(self, ifname: str, ip: str, *, netns: str | None = None) -> None: ...
    def neigh_list(self, ifname: str, *, netns: str | None = None) -> list[Neigh]: ...
    def fdb_add(self, ifname: str, mac: str, dst: str, *, netns: str | None = None) -> None: ...
    def fdb_del(self, ifname: str, mac: str, dst: str, *, netns: str | None = None) -> None: ...
    def fdb_list(self, ifname: str, *, netns: str | None = None) -> list[Fdb]: ...

    # ---- sysctl ----
    def sysctl_set(self, key: str, value: str, *, netns: str | None = None) -> None: ...
    def sysctl_get(self, key: str, *, netns: str | None = None) -> str: ...
