"""LoadBalancer IPs on the node network: each IP lives on exactly one node at a time.

Every agent computes the same owner for an IP from the same inputs (the sorted
ready node names, narrowed to nodes with local endpoints for
externalTrafficPolicy Local), so no coordination is needed. The owner adds the
IP as a /32 on its uplink and announces it with a gratuitous ARP.
"""

from __future__ import annotations

import ipaddress
import logging
import socket
import struct
import zlib
from collections.abc import Iterable
from typing import Any

from podnet.proxy.serviceports import ServicePortInfo, external_endpoints

log = logging.getLogger(__name__)


def owner_of(ip: str, candidates: Iterable[str]) -> str | None:
    """The node that carries `ip`: `sorted(candidates)[crc32(ip) % n]` (stable across processes)."""
    nodes = sorted(set(candidates))
    if not nodes:
        return None
    return nodes[zlib.crc32(ip.encode()) % len(nodes)]


def lb_owner(ip: str, sp: ServicePortInfo, nodes: list[dict[str, Any]], fallback: str = "") -> str | None:
    """The node carrying LoadBalancer `ip` of `sp`: ready nodes, narrowed to nodes with local
    endpoints when externalTrafficPolicy is Local (so the IP lands where traffic is served)."""
    ready = [n["metadata"]["name"] for n in nodes if node_is_ready(n)] or ([fallback] if fallback else [])
    cands = ready
    if sp.etp_local:
        cands = [n for n in ready if external_endpoints(sp, n)] or ready
    return owner_of(ip, cands)


def node_is_ready(node: dict[str, Any]) -> bool:
    status = node.get("status") or {}
    conds = status.get("conditions") if isinstance(status, dict) else None
    if not conds:
        return True  # no conditions reported yet: treat as ready (agents report Ready later)
    for c in conds:
        if isinstance(c, dict) and c.get("type") == "Ready":
            return c.get("status") == "True"
    return True


def gratuitous_arp(ifname: str, ip: str) -> None:
    """Broadcast an ARP reply announcing `ip` at `ifname`'s MAC (best effort)."""
    try:
        with socket.socket(socket.AF_PACKET, socket.SOCK_RAW, socket.htons(0x0806)) as s:
            s.bind((ifname, 0))
            mac = s.getsockname()[4][:6]
            ipb = ipaddress.IPv4Address(ip).packed
            bcast = b"\xff" * 6
            arp = struct.pack("!HHBBH6s4s6s4s", 1, 0x0800, 6, 4, 2, mac, ipb, bcast, ipb)
            s.send(bcast + mac + struct.pack("!H", 0x0806) + arp)
    except OSError as e:
        log.debug("gratuitous ARP for %s on %s failed: %s", ip, ifname, e)


class LBAddresses:
    """Keeps the LB /32s on `ifname` (in the current netns) equal to the wanted set, within `pool`."""

    def __init__(self, ifname: str, pool: Iterable[str] = ()):
        self.ifname = ifname
        self.pool = [ipaddress.ip_network(p, strict=False) for p in pool]
        self.current: set[str] = set()
        self.checked = False  # the interface was inspected at least once (stale /32s removed)

    def _in_pool(self, ip: str) -> bool:
        if not self.pool:
            return True
        a = ipaddress.ip_address(ip)
        return any(a in n for n in self.pool)

    def sync(self, wanted: set[str]) -> None:
        if self.checked and wanted == self.current:
            return
        from pyroute2 import IPRoute  # imported lazily: unit tests of the runner never touch netlink

        with IPRoute() as ipr:
            idx_list = ipr.link_lookup(ifname=self.ifname)
            if not idx_list:
                log.warning("LoadBalancer IPs: interface %s not found", self.ifname)
                return
            idx = idx_list[0]
            have = {a.get_attr("IFA_ADDRESS") for a in ipr.get_addr(index=idx, family=socket.AF_INET)
                    if a["prefixlen"] == 32}
            have = {ip for ip in have if ip and self._in_pool(ip)}
            for ip in sorted(have - wanted):
                if ip in self.current or self.pool:
                    ipr.addr("del", index=idx, address=ip, prefixlen=32)
            for ip in sorted(wanted - have):
                ipr.addr("add", index=idx, address=ip, prefixlen=32)
                gratuitous_arp(self.ifname, ip)
        self.current = set(wanted)
        self.checked = True
