"""RealNetOps: NetOps performed on the kernel with pyroute2 (netlink sockets, no `ip` processes).

One netlink socket per namespace is kept open (a few at most, least recently
used closed first: an open socket keeps a deleted namespace alive). Errors
come back as the NetOps error classes with the object and namespace named.
"""

from __future__ import annotations

import errno
import ipaddress
import os
import socket
import threading
from collections import OrderedDict
from collections.abc import Callable
from typing import Any, TypeVar

from pyroute2 import IPRoute
from pyroute2 import netns as pr_netns
from pyroute2.netlink.exceptions import NetlinkError

from podnet.net.nsthread import create_netns, netns_path, remove_netns, run_in_netns, socket_in_netns
from podnet.net.ops import (
    Addr,
    ExistsError,
    Fdb,
    InvalidError,
    Link,
    Neigh,
    NetOpsError,
    NotFoundError,
    Route,
    check_ifname,
    check_netns_name,
    normalize_dst,
    where,
)

T = TypeVar("T")

MAIN_TABLE = 254
NETLINK_ROUTE = 0
IFF_UP = 0x1
RTNH_F_ONLINK = 0x4
NUD_PERMANENT = 0x80
AF_BRIDGE = 7
_SCOPES = {"universe": 0, "link": 253, "host": 254}
_SCOPE_NAMES = {v: k for k, v in _SCOPES.items()}
_TYPES = {"unicast": 1, "unreachable": 7}
_TYPE_NAMES = {v: k for k, v in _TYPES.items()}
_SOCKET_CACHE = 8


def _translate(e: NetlinkError, what: str, netns: str | None) -> NetOpsError:
    code = e.code
    text = f"{what} in {where(netns)}: {os.strerror(code) if code else e}"
    if code == errno.EEXIST:
        return ExistsError(text)
    if code in (errno.ENODEV, errno.ENOENT, errno.ESRCH):
        return NotFoundError(text)
    return InvalidError(text)


class RealNetOps:
    """Safe to share between threads: one lock serialises the netlink sockets it caches."""

    def __init__(self) -> None:
        self._sockets: OrderedDict[str | None, Any] = OrderedDict()
        self._lock = threading.RLock()

    # ---- sockets ----------------------------------------------------------------
    def _ipr(self, netns: str | None) -> Any:
        ipr = self._sockets.get(netns)
        if ipr is not None:
            self._sockets.move_to_end(netns)
            return ipr
        if netns is not None and not os.path.exists(netns_path(netns)):
            raise NotFoundError(f"network namespace {netns!r} does not exist")
        if netns is None:
            ipr = IPRoute()
        else:  # a netlink socket made inside the namespace by a thread: pyroute2 would fork for it
            sock = socket_in_netns(netns, socket.AF_NETLINK, socket.SOCK_DGRAM, NETLINK_ROUTE)
            ipr = IPRoute(fileno=sock.detach())
        self._sockets[netns] = ipr
        while len(self._sockets) > _SOCKET_CACHE:
            _, old = self._sockets.popitem(last=False)
            old.close()
        return ipr

    def _drop_socket(self, netns: str | None) -> None:
        ipr = self._sockets.pop(netns, None)
        if ipr is not None:
            ipr.close()

    def close(self) -> None:
        with self._lock:
            for key in list(self._sockets):
                self._drop_socket(key)

    def _call(self, netns: str | None, what: str, fn: Callable[[Any], T]) -> T:
        with self._lock:
            try:
                return fn(self._ipr(netns))
            except NetlinkError as e:
                raise _translate(e, what, netns) from None

    def _index(self, ipr: Any, name: str, netns: str | None) -> int:
        found = ipr.link_lookup(ifname=name)
        if not found:
            raise NotFoundError(f"link {name!r} does not exist in {where(netns)}")
        return int(found[0])

    # ---- namespaces -------------------------------------------------------------
    def netns_add(self, name: str) -> None:
        check_netns_name(name)
        if os.path.exists(netns_path(name)):
            raise ExistsError(f"network namespace {name!r} already exists")
        try:
            create_netns(name)
        except FileExistsError:
            raise ExistsError(f"network namespace {name!r} already exists") from None

    def netns_del(self, name: str) -> None:
        if not os.path.exists(netns_path(name)):
            raise NotFoundError(f"network namespace {name!r} does not exist")
        # Delete the links first: the kernel destroys a namespace's devices (and their veth peers in
        # other namespaces) asynchronously, and only once nothing holds the namespace any more.
        try:
            for link in self.link_list(netns=name):
                if link.kind != "loopback":
                    try:
                        self.link_del(link.name, netns=name)
                    except NotFoundError:
                        pass
        except (NetOpsError, OSError):
            pass  # not a live namespace (an empty mount point left by a crash): remove the name anyway
        finally:
            with self._lock:
                self._drop_socket(name)
        remove_netns(name)

    def netns_exists(self, name: str) -> bool:
        return os.path.exists(netns_path(name))

    def netns_list(self) -> list[str]:
        return sorted(pr_netns.listnetns())

    # ---- links ------------------------------------------------------------------
    def veth_add(self, name: str, peer: str, *, netns: str | None = None, peer_netns: str | None = None,
                 mtu: int | None = None) -> None:
        check_ifname(name)
        check_ifname(peer)
        peer_spec: dict[str, Any] = {"ifname": peer}
        if mtu:
            peer_spec["mtu"] = mtu
        fd: int | None = None
        if peer_netns != netns:
            path = "/proc/self/ns/net" if peer_netns is None else netns_path(peer_netns)
            try:
                fd = os.open(path, os.O_RDONLY)
            except FileNotFoundError:
                raise NotFoundError(f"network namespace {peer_netns!r} does not exist") from None
            peer_spec["net_ns_fd"] = fd
        if peer_netns != netns and self.link_get(peer, netns=peer_netns) is not None:
            if fd is not None:
                os.close(fd)
            raise ExistsError(f"link {peer!r} already exists in {where(peer_netns)}")
        kw: dict[str, Any] = {"ifname": name, "kind": "veth", "peer": peer_spec}
        if mtu:
            kw["mtu"] = mtu
        try:
            self._call(netns, f"add veth {name!r}", lambda ipr: ipr.link("add", **kw))
        finally:
            if fd is not None:
                os.close(fd)

    def bridge_add(self, name: str, *, netns: str | None = None) -> None:
        check_ifname(name)
        self._call(netns, f"add bridge {name!r}", lambda ipr: ipr.link("add", ifname=name, kind="bridge"))

    def vxlan_add(self, name: str, *, vni: int, local: str, dstport: int, netns: str | None = None,
                  mtu: int | None = None, mac: str | None = None) -> None:
        check_ifname(name)
        if not 1 <= vni <= 0xFFFFFF:
            raise InvalidError(f"invalid VXLAN id {vni}: must be between 1 and 16777215")
        if not 1 <= dstport <= 65535:
            raise InvalidError(f"invalid VXLAN port {dstport}: must be between 1 and 65535")
        kw: dict[str, Any] = {"ifname": name, "kind": "vxlan", "vxlan_id": vni, "vxlan_local": local,
                              "vxlan_port": dstport, "vxlan_learning": 0, "mtu": mtu or 1450}
        if mac:
            kw["address"] = mac
        self._call(netns, f"add vxlan {name!r}", lambda ipr: ipr.link("add", **kw))

    def link_set(self, name: str, *, netns: str | None = None, up: bool | None = None,
                 master: str | None = None, mtu: int | None = None) -> None:
        def do(ipr: Any) -> None:
            idx = self._index(ipr, name, netns)
            kw: dict[str, Any] = {}
            if master is not None:
                m = self.link_get(master, netns=netns)
                if m is None:
                    raise NotFoundError(f"link {master!r} does not exist in {where(netns)}")
                if m.kind != "bridge":
                    raise InvalidError(f"link {master!r} in {where(netns)} is not a bridge")
                kw["master"] = self._index(ipr, master, netns)
            if mtu is not None:
                kw["mtu"] = mtu
            if kw:
                ipr.link("set", index=idx, **kw)
            if up is not None:
                ipr.link("set", index=idx, state="up" if up else "down")
        self._call(netns, f"set link {name!r}", do)

    def link_del(self, name: str, *, netns: str | None = None) -> None:
        def do(ipr: Any) -> None:
            idx = self._index(ipr, name, netns)
            if name == "lo":
                raise InvalidError(f"cannot delete the loopback link of {where(netns)}")
            ipr.link("del", index=idx)
        self._call(netns, f"delete link {name!r}", do)

    def link_get(self, name: str, *, netns: str | None = None) -> Link | None:
        for link in self.link_list(netns=netns):
            if link.name == name:
                return link
        return None

    def link_list(self, *, netns: str | None = None) -> list[Link]:
        msgs = self._call(netns, "list links", lambda ipr: list(ipr.get_links()))
        names = {m["index"]: m.get_attr("IFLA_IFNAME") for m in msgs}
        out = []
        for m in msgs:
            kind, vni, local, port = None, None, None, None
            info = m.get_attr("IFLA_LINKINFO")
            if info is not None:
                kind = info.get_attr("IFLA_INFO_KIND")
                data = info.get_attr("IFLA_INFO_DATA")
                if kind == "vxlan" and data is not None:
                    vni = data.get_attr("IFLA_VXLAN_ID")
                    local = data.get_attr("IFLA_VXLAN_LOCAL")
                    port = data.get_attr("IFLA_VXLAN_PORT")
            name = m.get_attr("IFLA_IFNAME")
            if kind is None:
                kind = "loopback" if name == "lo" else "device"
            master = m.get_attr("IFLA_MASTER")
            out.append(Link(name=name, kind=kind, up=bool(m["flags"] & IFF_UP), mtu=m.get_attr("IFLA_MTU"),
                            mac=str(m.get_attr("IFLA_ADDRESS") or ""),
                            master=names.get(master) if master else None,
                            vni=vni, local=local, dstport=port))
        return out

    # ---- addresses --------------------------------------------------------------
    def addr_add(self, ifname: str, cidr: str, *, netns: str | None = None) -> None:
        try:
            iface = ipaddress.IPv4Interface(cidr)
        except ValueError as e:
            raise InvalidError(f"invalid address {cidr!r}: {e}") from None

        def do(ipr: Any) -> None:
            idx = self._index(ipr, ifname, netns)
            ipr.addr("add", index=idx, address=str(iface.ip), prefixlen=iface.network.prefixlen)
        self._call(netns, f"add address {iface} to {ifname!r}", do)

    def addr_del(self, ifname: str, cidr: str, *, netns: str | None = None) -> None:
        iface = ipaddress.IPv4Interface(cidr)

        def do(ipr: Any) -> None:
            idx = self._index(ipr, ifname, netns)
            ipr.addr("del", index=idx, address=str(iface.ip), prefixlen=iface.network.prefixlen)
        try:
            self._call(netns, f"delete address {iface} from {ifname!r}", do)
        except InvalidError as e:  # EADDRNOTAVAIL: the address is not there
            raise NotFoundError(str(e)) from None

    def addr_list(self, *, netns: str | None = None, ifname: str | None = None) -> list[Addr]:
        def do(ipr: Any) -> list[Addr]:
            names = {m["index"]: m.get_attr("IFLA_IFNAME") for m in ipr.get_links()}
            out = []
            for m in ipr.get_addr(family=socket.AF_INET):
                name = names.get(m["index"])
                ip = m.get_attr("IFA_LOCAL") or m.get_attr("IFA_ADDRESS")
                if name is None or (ifname is not None and name != ifname):
                    continue
                out.append(Addr(ifname=name, cidr=f"{ip}/{m['prefixlen']}"))
            return out
        return self._call(netns, "list addresses", do)

    # ---- routes -----------------------------------------------------------------
    def _route_kw(self, ipr: Any, route: Route, netns: str | None) -> dict[str, Any]:
        if route.type not in _TYPES:
            raise InvalidError(f"route type {route.type!r} is not supported: 'unicast' or 'unreachable'")
        if route.scope not in _SCOPES:
            raise InvalidError(f"route scope {route.scope!r} is not supported: universe, link or host")
        dst = normalize_dst(route.dst)
        net = ipaddress.IPv4Network(dst)
        kw: dict[str, Any] = {"dst": str(net.network_address), "dst_len": net.prefixlen, "table": MAIN_TABLE,
                              "type": _TYPES[route.type], "proto": route.proto,
                              "scope": _SCOPES[route.scope]}
        if route.metric:
            kw["priority"] = route.metric
        if route.type == "unreachable":
            if route.dev or route.via:
                raise InvalidError(f"an unreachable route to {dst} takes no device or gateway")
            return kw
        if route.dev is None and route.via is None:
            raise InvalidError(f"route to {dst} needs a device or a gateway")
        if route.dev is not None:
            kw["oif"] = self._index(ipr, route.dev, netns)
        if route.via is not None:
            kw["gateway"] = route.via
        if route.src is not None:
            kw["prefsrc"] = route.src
        if route.onlink:
            if route.dev is None:
                raise InvalidError(f"route to {dst}: 'onlink' needs a device")
            kw["flags"] = RTNH_F_ONLINK
        return kw

    def route_add(self, route: Route, *, netns: str | None = None) -> None:
        self._call(netns, f"add route to {route.dst}",
                   lambda ipr: ipr.route("add", **self._route_kw(ipr, route, netns)))

    def route_replace(self, route: Route, *, netns: str | None = None) -> None:
        self._call(netns, f"replace route to {route.dst}",
                   lambda ipr: ipr.route("replace", **self._route_kw(ipr, route, netns)))

    def route_del(self, dst: str, *, metric: int = 0, netns: str | None = None) -> None:
        d = normalize_dst(dst)
        matches = [r for r in self.route_list(netns=netns)
                   if r.dst == d and (metric == 0 or r.metric == metric)]
        if not matches:
            raise NotFoundError(f"route to {d} (metric {metric}) does not exist in {where(netns)}")
        victim = min(matches, key=lambda r: r.metric)
        net = ipaddress.IPv4Network(d)
        kw: dict[str, Any] = {"dst": str(net.network_address), "dst_len": net.prefixlen, "table": MAIN_TABLE,
                              "type": _TYPES.get(victim.type, 1), "priority": victim.metric}
        self._call(netns, f"delete route to {d}", lambda ipr: ipr.route("del", **kw))

    def route_list(self, *, netns: str | None = None) -> list[Route]:
        def do(ipr: Any) -> list[Route]:
            names = {m["index"]: m.get_attr("IFLA_IFNAME") for m in ipr.get_links()}
            out = []
            for m in ipr.get_routes(family=socket.AF_INET, table=MAIN_TABLE):
                table = m.get_attr("RTA_TABLE") or m["table"]
                if table != MAIN_TABLE or m["type"] not in _TYPE_NAMES:
                    continue
                dst = m.get_attr("RTA_DST") or "0.0.0.0"
                oif = m.get_attr("RTA_OIF")
                dev = names.get(oif) if oif is not None else None
                rtype = _TYPE_NAMES[m["type"]]
                out.append(Route(dst=f"{dst}/{m['dst_len']}", type=rtype, via=m.get_attr("RTA_GATEWAY"),
                                 dev=None if rtype == "unreachable" else dev,
                                 scope=_SCOPE_NAMES.get(m["scope"], str(m["scope"])),
                                 onlink=bool(m["flags"] & RTNH_F_ONLINK),
                                 metric=m.get_attr("RTA_PRIORITY") or 0,
                                 proto=m["proto"], src=m.get_attr("RTA_PREFSRC")))
            return out
        return self._call(netns, "list routes", do)

    # ---- neighbours and fdb -----------------------------------------------------
    def neigh_add(self, ifname: str, ip: str, mac: str, *, netns: str | None = None) -> None:
        if any(n.ip == ip for n in self.neigh_list(ifname, netns=netns)):
            raise ExistsError(f"neighbour {ip} already exists on {ifname!r} in {where(netns)}")

        def do(ipr: Any) -> None:
            idx = self._index(ipr, ifname, netns)
            ipr.neigh("add", dst=ip, lladdr=mac, ifindex=idx, state=NUD_PERMANENT, family=socket.AF_INET)
        self._call(netns, f"add neighbour {ip} on {ifname!r}", do)

    def neigh_del(self, ifname: str, ip: str, *, netns: str | None = None) -> None:
        if not any(n.ip == ip for n in self.neigh_list(ifname, netns=netns)):
            raise NotFoundError(f"neighbour {ip} does not exist on {ifname!r} in {where(netns)}")

        def do(ipr: Any) -> None:
            idx = self._index(ipr, ifname, netns)
            ipr.neigh("del", dst=ip, ifindex=idx, family=socket.AF_INET)
        self._call(netns, f"delete neighbour {ip} on {ifname!r}", do)

    def neigh_list(self, ifname: str, *, netns: str | None = None) -> list[Neigh]:
        """The permanent IPv4 neighbour entries of a link (learned ones are left out)."""
        def do(ipr: Any) -> list[Neigh]:
            idx = self._index(ipr, ifname, netns)
            out = []
            for m in ipr.get_neighbours(ifindex=idx, family=socket.AF_INET):
                if m["ifindex"] != idx or not m["state"] & NUD_PERMANENT:
                    continue
                out.append(Neigh(ifname=ifname, ip=m.get_attr("NDA_DST"),
                                 mac=str(m.get_attr("NDA_LLADDR") or "").lower()))
            return out
        return self._call(netns, f"list neighbours of {ifname!r}", do)

    def fdb_add(self, ifname: str, mac: str, dst: str, *, netns: str | None = None) -> None:
        entry = Fdb(ifname=ifname, mac=mac.lower(), dst=dst)
        if entry in self.fdb_list(ifname, netns=netns):
            raise ExistsError(f"fdb entry {mac} dst {dst} already exists on {ifname!r} in {where(netns)}")

        def do(ipr: Any) -> None:
            idx = self._index(ipr, ifname, netns)
            ipr.fdb("append", ifindex=idx, lladdr=mac, dst=dst, state=NUD_PERMANENT)
        self._call(netns, f"add fdb entry {mac} on {ifname!r}", do)

    def fdb_del(self, ifname: str, mac: str, dst: str, *, netns: str | None = None) -> None:
        entry = Fdb(ifname=ifname, mac=mac.lower(), dst=dst)
        if entry not in self.fdb_list(ifname, netns=netns):
            raise NotFoundError(f"fdb entry {mac} dst {dst} does not exist on {ifname!r} in {where(netns)}")

        def do(ipr: Any) -> None:
            idx = self._index(ipr, ifname, netns)
            ipr.fdb("del", ifindex=idx, lladdr=mac, dst=dst)
        self._call(netns, f"delete fdb entry {mac} on {ifname!r}", do)

    def fdb_list(self, ifname: str, *, netns: str | None = None) -> list[Fdb]:
        def do(ipr: Any) -> list[Fdb]:
            idx = self._index(ipr, ifname, netns)
            out = []
            for m in ipr.fdb("dump", ifindex=idx):
                dst = m.get_attr("NDA_DST")
                if m["ifindex"] != idx or dst is None:
                    continue
                out.append(Fdb(ifname=ifname, mac=str(m.get_attr("NDA_LLADDR")).lower(), dst=dst))
            return out
        return self._call(netns, f"list fdb of {ifname!r}", do)

    # ---- sysctl -----------------------------------------------------------------
    @staticmethod
    def _sysctl_path(key: str) -> str:
        if not key or "/" in key or ".." in key:
            raise InvalidError(f"invalid sysctl name {key!r}")
        return "/proc/sys/" + key.replace(".", "/")

    def sysctl_set(self, key: str, value: str, *, netns: str | None = None) -> None:
        path = self._sysctl_path(key)

        def write() -> None:
            try:
                with open(path, "w") as f:
                    f.write(str(value))
            except FileNotFoundError:
                raise NotFoundError(f"sysctl {key} does not exist in {where(netns)}") from None
        run_in_netns(netns, write)

    def sysctl_get(self, key: str, *, netns: str | None = None) -> str:
        path = self._sysctl_path(key)

        def read() -> str:
            try:
                with open(path) as f:
                    return f.read().strip()
            except FileNotFoundError:
                raise NotFoundError(f"sysctl {key} does not exist in {where(netns)}") from None
        return run_in_netns(netns, read)
