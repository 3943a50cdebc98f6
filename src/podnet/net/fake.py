"""FakeNetOps: an in-memory model of the kernel's namespaces, links, addresses, routes and neighbours.

It follows the kernel's rules where podnet depends on them (checked by
tests/kernel/test_net_ops_parity.py, which runs one scenario on both):
duplicate names fail, names are at most 15 characters, a route through a
link that is down fails, a gateway must be reachable on-link unless `onlink`
is set, an address on an up link adds its connected route, taking a link down
drops the routes through it, deleting one end of a veth deletes the other,
deleting a namespace deletes its links.
"""

from __future__ import annotations

import ipaddress
import itertools
from dataclasses import dataclass, field, replace

from podnet.net.ops import (
    PROTO_KERNEL,
    Addr,
    ExistsError,
    Fdb,
    InvalidError,
    Link,
    Neigh,
    NotFoundError,
    Route,
    check_ifname,
    check_netns_name,
    normalize_dst,
    where,
)

_Key = str | None  # namespace key: its name, or None for the current namespace

_DEFAULT_SYSCTLS = {
    "net.ipv4.ip_forward": "0",
    "net.ipv4.conf.all.rp_filter": "0",
    "net.ipv4.conf.default.rp_filter": "0",
    "net.ipv4.conf.all.forwarding": "0",
}
_PER_LINK_DEFAULTS = {"proxy_arp": "0", "rp_filter": "0", "forwarding": "0"}
_PER_LINK_NEIGH_DEFAULTS = {"proxy_delay": "80"}


@dataclass
class _Link:
    name: str
    kind: str
    mac: str
    mtu: int
    up: bool = False
    master: str | None = None
    peer: tuple[_Key, str] | None = None
    vni: int | None = None
    local: str | None = None
    dstport: int | None = None
    mtu_fixed: bool = False  # a bridge follows its ports' smallest MTU until one is set explicitly


@dataclass
class _Namespace:
    links: dict[str, _Link] = field(default_factory=dict)
    addrs: list[Addr] = field(default_factory=list)
    routes: list[Route] = field(default_factory=list)
    neighs: list[Neigh] = field(default_factory=list)
    fdbs: list[Fdb] = field(default_factory=list)
    sysctls: dict[str, str] = field(default_factory=dict)


class FakeNetOps:
    def __init__(self) -> None:
        self._ns: dict[_Key, _Namespace] = {None: self._new_ns()}
        self._macs = itertools.count(1)

    # ---- helpers --------------------------------------------------------------
    @staticmethod
    def _new_ns() -> _Namespace:
        ns = _Namespace()
        ns.links["lo"] = _Link(name="lo", kind="loopback", mac="00:00:00:00:00:00", mtu=65536)
        return ns

    def _mac(self) -> str:
        n = next(self._macs)
        return "02:fa:" + ":".join(f"{(n >> s) & 0xFF:02x}" for s in (24, 16, 8, 0))

    def _get_ns(self, netns: _Key) -> _Namespace:
        try:
            return self._ns[netns]
        except KeyError:
            raise NotFoundError(f"network namespace {netns!r} does not exist") from None

    def _get_link(self, ns: _Namespace, name: str, netns: _Key) -> _Link:
        try:
            return ns.links[name]
        except KeyError:
            raise NotFoundError(f"link {name!r} does not exist in {where(netns)}") from None

    def _check_new_link(self, ns: _Namespace, name: str, netns: _Key) -> None:
        check_ifname(name)
        if name in ns.links:
            raise ExistsError(f"link {name!r} already exists in {where(netns)}")

    def _drop_link_state(self, ns: _Namespace, name: str) -> None:
        ns.addrs = [a for a in ns.addrs if a.ifname != name]
        ns.routes = [r for r in ns.routes if r.dev != name]
        ns.neighs = [n for n in ns.neighs if n.ifname != name]
        ns.fdbs = [f for f in ns.fdbs if f.ifname != name]
        for other in ns.links.values():
            if other.master == name:
                other.master = None
        for bridge in ns.links.values():
            if bridge.kind == "bridge":
                self._adjust_bridge_mtu(ns, bridge.name)
        prefixes = (f"net.ipv4.conf.{name}.", f"net.ipv4.neigh.{name}.")
        ns.sysctls = {k: v for k, v in ns.sysctls.items() if not k.startswith(prefixes)}

    def _remove_link(self, netns: _Key, name: str) -> None:
        ns = self._ns.get(netns)
        if ns is None or name not in ns.links:
            return
        link = ns.links.pop(name)
        self._drop_link_state(ns, name)
        if link.peer is not None:
            peer_ns, peer_name = link.peer
            self._remove_link(peer_ns, peer_name)

    @staticmethod
    def _adjust_bridge_mtu(ns: _Namespace, bridge: str) -> None:
        """A bridge follows the smallest MTU of its ports (1500 with none) until its MTU is set."""
        b = ns.links[bridge]
        if not b.mtu_fixed:
            b.mtu = min((x.mtu for x in ns.links.values() if x.master == bridge), default=1500)

    @staticmethod
    def _connected(addr: Addr) -> Route | None:
        iface = ipaddress.IPv4Interface(addr.cidr)
        if iface.network.prefixlen == 32 or iface.ip.is_loopback:  # loopback routes live in the local table
            return None
        return Route(dst=str(iface.network), dev=addr.ifname, scope="link", proto=PROTO_KERNEL)

    # ---- namespaces -------------------------------------------------------------
    def netns_add(self, name: str) -> None:
        check_netns_name(name)
        if name in self._ns:
            raise ExistsError(f"network namespace {name!r} already exists")
        self._ns[name] = self._new_ns()

    def netns_del(self, name: str) -> None:
        ns = self._get_ns(name)
        for link_name in list(ns.links):
            self._remove_link(name, link_name)
        del self._ns[name]

    def netns_exists(self, name: str) -> bool:
        return name in self._ns and name is not None

    def netns_list(self) -> list[str]:
        return sorted(k for k in self._ns if k is not None)

    # ---- links ------------------------------------------------------------------
    def veth_add(self, name: str, peer: str, *, netns: str | None = None, peer_netns: str | None = None,
                 mtu: int | None = None) -> None:
        ns = self._get_ns(netns)
        pns = self._get_ns(peer_netns)
        self._check_new_link(ns, name, netns)
        self._check_new_link(pns, peer, peer_netns)
        if netns == peer_netns and name == peer:
            raise ExistsError(f"link {peer!r} already exists in {where(netns)}")
        m = mtu or 1500
        ns.links[name] = _Link(name=name, kind="veth", mac=self._mac(), mtu=m, peer=(peer_netns, peer))
        pns.links[peer] = _Link(name=peer, kind="veth", mac=self._mac(), mtu=m, peer=(netns, name))

    def bridge_add(self, name: str, *, netns: str | None = None) -> None:
        ns = self._get_ns(netns)
        self._check_new_link(ns, name, netns)
        ns.links[name] = _Link(name=name, kind="bridge", mac=self._mac(), mtu=1500)

    def vxlan_add(self, name: str, *, vni: int, local: str, dstport: int, netns: str | None = None,
                  mtu: int | None = None, mac: str | None = None) -> None:
        ns = self._get_ns(netns)
        self._check_new_link(ns, name, netns)
        if not 1 <= vni <= 0xFFFFFF:
            raise InvalidError(f"invalid VXLAN id {vni}: must be between 1 and 16777215")
        if not 1 <= dstport <= 65535:
            raise InvalidError(f"invalid VXLAN port {dstport}: must be between 1 and 65535")
        ipaddress.IPv4Address(local)
        ns.links[name] = _Link(name=name, kind="vxlan", mac=mac or self._mac(), mtu=mtu or 1450,
                               vni=vni, local=local, dstport=dstport)

    def link_set(self, name: str, *, netns: str | None = None, up: bool | None = None,
                 master: str | None = None, mtu: int | None = None) -> None:
        ns = self._get_ns(netns)
        link = self._get_link(ns, name, netns)
        if master is not None:
            m = self._get_link(ns, master, netns)
            if m.kind != "bridge":
                raise InvalidError(f"link {master!r} in {where(netns)} is not a bridge")
            link.master = master
            self._adjust_bridge_mtu(ns, master)
        if mtu is not None:
            link.mtu = mtu
            link.mtu_fixed = True
        if up is True and not link.up:
            link.up = True
            if link.kind == "loopback" and not any(a.ifname == name for a in ns.addrs):
                ns.addrs.append(Addr(ifname=name, cidr="127.0.0.1/8"))
            for a in ns.addrs:
                r = self._connected(a) if a.ifname == name else None
                if r is not None and all(x.key() != r.key() for x in ns.routes):
                    ns.routes.append(r)
        elif up is False and link.up:
            link.up = False
            ns.routes = [r for r in ns.routes if r.dev != name]

    def link_del(self, name: str, *, netns: str | None = None) -> None:
        ns = self._get_ns(netns)
        link = self._get_link(ns, name, netns)
        if link.kind == "loopback":
            raise InvalidError(f"cannot delete the loopback link of {where(netns)}")
        self._remove_link(netns, name)

    def link_get(self, name: str, *, netns: str | None = None) -> Link | None:
        ns = self._get_ns(netns)
        link = ns.links.get(name)
        return None if link is None else self._public(link)

    @staticmethod
    def _public(link: _Link) -> Link:
        return Link(name=link.name, kind=link.kind, up=link.up, mtu=link.mtu, mac=link.mac,
                    master=link.master,
                    peer_netns=link.peer[0] if link.peer else None, vni=link.vni, local=link.local,
                    dstport=link.dstport)

    def link_list(self, *, netns: str | None = None) -> list[Link]:
        return [self._public(link) for link in self._get_ns(netns).links.values()]

    # ---- addresses --------------------------------------------------------------
    def addr_add(self, ifname: str, cidr: str, *, netns: str | None = None) -> None:
        ns = self._get_ns(netns)
        link = self._get_link(ns, ifname, netns)
        try:
            iface = ipaddress.IPv4Interface(cidr)
        except ValueError as e:
            raise InvalidError(f"invalid address {cidr!r}: {e}") from None
        addr = Addr(ifname=ifname, cidr=str(iface))
        if addr in ns.addrs:
            raise ExistsError(f"address {addr.cidr} already exists on {ifname!r} in {where(netns)}")
        ns.addrs.append(addr)
        r = self._connected(addr)
        if link.up and r is not None and all(x.key() != r.key() for x in ns.routes):
            ns.routes.append(r)

    def addr_del(self, ifname: str, cidr: str, *, netns: str | None = None) -> None:
        ns = self._get_ns(netns)
        self._get_link(ns, ifname, netns)
        addr = Addr(ifname=ifname, cidr=str(ipaddress.IPv4Interface(cidr)))
        if addr not in ns.addrs:
            raise NotFoundError(f"address {addr.cidr} does not exist on {ifname!r} in {where(netns)}")
        ns.addrs.remove(addr)
        r = self._connected(addr)
        if r is not None:
            ns.routes = [x for x in ns.routes if not (x.proto == PROTO_KERNEL and x.key() == r.key()
                                                      and x.dev == ifname)]

    def addr_list(self, *, netns: str | None = None, ifname: str | None = None) -> list[Addr]:
        ns = self._get_ns(netns)
        return [a for a in ns.addrs if ifname is None or a.ifname == ifname]

    # ---- routes -----------------------------------------------------------------
    def _validate_route(self, ns: _Namespace, route: Route, netns: _Key) -> Route:
        route = replace(route, dst=normalize_dst(route.dst))
        if route.type == "unreachable":
            if route.dev or route.via:
                raise InvalidError(f"an unreachable route to {route.dst} takes no device or gateway")
            return route
        if route.type != "unicast":
            raise InvalidError(f"route type {route.type!r} is not supported: 'unicast' or 'unreachable'")
        if route.dev is None and route.via is None:
            raise InvalidError(f"route to {route.dst} needs a device or a gateway")
        dev = route.dev
        if route.src is not None and not any(
                a.cidr.split("/")[0] == route.src for a in self.addr_list(netns=netns)):
            raise InvalidError(f"route to {route.dst}: source {route.src} is not an address of "
                               f"{where(netns)} (invalid prefsrc)")
        if dev is not None:
            link = self._get_link(ns, dev, netns)
            if not link.up:
                raise InvalidError(f"route to {route.dst}: link {dev!r} in {where(netns)} is down "
                                   "(network is down)")
        if route.via is not None:
            gw = ipaddress.IPv4Address(route.via)
            if route.onlink:
                if dev is None:
                    raise InvalidError(f"route to {route.dst}: 'onlink' needs a device")
            else:
                covering = [r for r in ns.routes if r.type == "unicast" and r.via is None
                            and r.scope in ("link", "host") and gw in ipaddress.IPv4Network(r.dst)
                            and (dev is None or r.dev == dev)]
                if not covering:
                    raise InvalidError(f"route to {route.dst}: gateway {route.via} is unreachable from "
                                       f"{where(netns)} (no on-link route to it)")
                if dev is None:
                    best = max(covering, key=lambda r: ipaddress.IPv4Network(r.dst).prefixlen)
                    route = replace(route, dev=best.dev)
        return route

    def route_add(self, route: Route, *, netns: str | None = None) -> None:
        ns = self._get_ns(netns)
        route = self._validate_route(ns, route, netns)
        if any(r.key() == route.key() for r in ns.routes):
            raise ExistsError(f"route to {route.dst} (metric {route.metric}) already exists "
                              f"in {where(netns)}")
        ns.routes.append(route)

    def route_replace(self, route: Route, *, netns: str | None = None) -> None:
        ns = self._get_ns(netns)
        route = self._validate_route(ns, route, netns)
        ns.routes = [r for r in ns.routes if r.key() != route.key()]
        ns.routes.append(route)

    def route_del(self, dst: str, *, metric: int = 0, netns: str | None = None) -> None:
        ns = self._get_ns(netns)
        d = normalize_dst(dst)
        matches = [r for r in ns.routes if r.dst == d and (metric == 0 or r.metric == metric)]
        if not matches:
            raise NotFoundError(f"route to {d} (metric {metric}) does not exist in {where(netns)}")
        victim = min(matches, key=lambda r: r.metric)
        ns.routes.remove(victim)

    def route_list(self, *, netns: str | None = None) -> list[Route]:
        return list(self._get_ns(netns).routes)

    # ---- neighbours and fdb -----------------------------------------------------
    def neigh_add(self, ifname: str, ip: str, mac: str, *, netns: str | None = None) -> None:
        ns = self._get_ns(netns)
        self._get_link(ns, ifname, netns)
        if any(n.ifname == ifname and n.ip == ip for n in ns.neighs):
            raise ExistsError(f"neighbour {ip} already exists on {ifname!r} in {where(netns)}")
        ns.neighs.append(Neigh(ifname=ifname, ip=ip, mac=mac.lower()))

    def neigh_del(self, ifname: str, ip: str, *, netns: str | None = None) -> None:
        ns = self._get_ns(netns)
        self._get_link(ns, ifname, netns)
        found = [n for n in ns.neighs if n.ifname == ifname and n.ip == ip]
        if not found:
            raise NotFoundError(f"neighbour {ip} does not exist on {ifname!r} in {where(netns)}")
        ns.neighs.remove(found[0])

    def neigh_list(self, ifname: str, *, netns: str | None = None) -> list[Neigh]:
        ns = self._get_ns(netns)
        self._get_link(ns, ifname, netns)
        return [n for n in ns.neighs if n.ifname == ifname]

    def fdb_add(self, ifname: str, mac: str, dst: str, *, netns: str | None = None) -> None:
        ns = self._get_ns(netns)
        self._get_link(ns, ifname, netns)
        entry = Fdb(ifname=ifname, mac=mac.lower(), dst=dst)
        if entry in ns.fdbs:
            raise ExistsError(f"fdb entry {mac} dst {dst} already exists on {ifname!r} in {where(netns)}")
        ns.fdbs.append(entry)

    def fdb_del(self, ifname: str, mac: str, dst: str, *, netns: str | None = None) -> None:
        ns = self._get_ns(netns)
        self._get_link(ns, ifname, netns)
        entry = Fdb(ifname=ifname, mac=mac.lower(), dst=dst)
        if entry not in ns.fdbs:
            raise NotFoundError(f"fdb entry {mac} dst {dst} does not exist on {ifname!r} in {where(netns)}")
        ns.fdbs.remove(entry)

    def fdb_list(self, ifname: str, *, netns: str | None = None) -> list[Fdb]:
        ns = self._get_ns(netns)
        self._get_link(ns, ifname, netns)
        return [f for f in ns.fdbs if f.ifname == ifname]

    # ---- sysctl -----------------------------------------------------------------
    def _sysctl_default(self, ns: _Namespace, key: str, netns: _Key) -> str:
        if key in _DEFAULT_SYSCTLS:
            return _DEFAULT_SYSCTLS[key]
        parts = key.split(".")
        if len(parts) == 5 and parts[:2] == ["net", "ipv4"] and parts[3] in ns.links:
            if parts[2] == "conf" and parts[4] in _PER_LINK_DEFAULTS:
                return _PER_LINK_DEFAULTS[parts[4]]
            if parts[2] == "neigh" and parts[4] in _PER_LINK_NEIGH_DEFAULTS:
                return _PER_LINK_NEIGH_DEFAULTS[parts[4]]
        raise NotFoundError(f"sysctl {key} does not exist in {where(netns)}")

    def sysctl_set(self, key: str, value: str, *, netns: str | None = None) -> None:
        ns = self._get_ns(netns)
        if key not in ns.sysctls:
            self._sysctl_default(ns, key, netns)  # raises when the key does not exist
        ns.sysctls[key] = str(value)

    def sysctl_get(self, key: str, *, netns: str | None = None) -> str:
        ns = self._get_ns(netns)
        if key in ns.sysctls:
            return ns.sysctls[key]
        return self._sysctl_default(ns, key, netns)
