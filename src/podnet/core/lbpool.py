"""The LoadBalancer pool spec (`ClusterConfig.lb_pool`, `podnet up --lb-pool`), parsed in one place.

A spec is comma-separated parts: a range `A-B`, a CIDR, or one address, e.g.
`172.31.5.200-172.31.5.250` or `172.31.5.192/27,172.31.5.250`. "" or "none" means no pool:
LoadBalancer Services then stay `<pending>`, as on a cluster without a load-balancer implementation.

Who uses it: the API server's Service hook allocates from it (podnet.allocators.lb_pool, the only
owner of which address a Service holds), the LoadBalancer status controller asks whether it has room,
`podnet up` checks it lies on the node network (podnet.cluster.hostnet), and each node's proxy keeps
only addresses inside it on its uplink (podnet.proxy.lbip).
"""

from __future__ import annotations

import ipaddress
import logging

log = logging.getLogger(__name__)

IPAddr = ipaddress.IPv4Address | ipaddress.IPv6Address
IPNet = ipaddress.IPv4Network | ipaddress.IPv6Network
Range = tuple[IPAddr, IPAddr]

_EXPECTED = "(expected 'A-B' ranges or CIDRs, comma-separated, or 'none')"


def _parse_part(part: str) -> IPNet | Range:
    """One part of a spec: a CIDR as its network, `A-B` or one address as an inclusive range."""
    if "/" in part:
        return ipaddress.ip_network(part, strict=False)
    if "-" in part:
        a, _, b = part.partition("-")
        first, last = ipaddress.ip_address(a.strip()), ipaddress.ip_address(b.strip())
        if first.version != last.version or int(first) > int(last):
            raise ValueError("the range must run from a lower to a higher address of one family")
        return first, last
    ip = ipaddress.ip_address(part)
    return ip, ip


def _parts(spec: str) -> list[str]:
    text = (spec or "").strip()
    if text.lower() in ("", "none"):
        return []
    return [p.strip() for p in text.split(",") if p.strip()]


def parse_pool(spec: str) -> list[Range]:
    """The addresses a pool hands out, as inclusive (first, last) ranges; a CIDR of more than two
    addresses leaves out its network and broadcast addresses. Raises ValueError naming the bad part."""
    ranges: list[Range] = []
    for part in _parts(spec):
        try:
            got = _parse_part(part)
        except ValueError as e:
            raise ValueError(f"invalid LoadBalancer pool {spec!r}: {part!r}: {e} {_EXPECTED}") from None
        if isinstance(got, tuple):
            ranges.append(got)
        elif got.num_addresses > 2:
            ranges.append((got.network_address + 1, got.broadcast_address - 1))
        else:
            ranges.append((got.network_address, got.broadcast_address))
    return ranges


def pool_networks(spec: str) -> list[str]:
    """The pool as CIDRs (what may be put on, and removed from, a node's uplink). Lenient, for a node
    that must keep working: a part that does not parse (or "none") is skipped with a warning."""
    out: list[str] = []
    for part in _parts(spec):
        if part.lower() == "none":
            continue
        try:
            got = _parse_part(part)
        except ValueError:
            log.warning("LoadBalancer pool %r is not a range or CIDR: ignored", part)
            continue
        nets = [got] if not isinstance(got, tuple) else ipaddress.summarize_address_range(*got)  # type: ignore[arg-type]
        out += [str(n) for n in nets]
    return out


class PoolSpec:
    """A parsed pool: its ranges, size and membership (no allocation state)."""

    def __init__(self, spec: str = ""):
        self.spec = (spec or "").strip()
        self.ranges = parse_pool(spec)

    @property
    def enabled(self) -> bool:
        return bool(self.ranges)

    def size(self) -> int:
        return sum(int(b) - int(a) + 1 for a, b in self.ranges)

    def contains(self, ip: str) -> bool:
        try:
            v = ipaddress.ip_address(ip)
        except ValueError:
            return False
        return any(a.version == v.version and int(a) <= int(v) <= int(b) for a, b in self.ranges)
