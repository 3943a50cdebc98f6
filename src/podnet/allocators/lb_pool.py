"""The LoadBalancer IP pool: where `type: LoadBalancer` Services get their EXTERNAL-IP.

Pool spec (ClusterConfig.lb_pool): comma-separated ranges `A-B` or CIDRs, e.g.
`172.31.5.200-172.31.5.250` or `172.31.5.192/27,172.31.5.250`. "" or "none"
means no pool: such Services stay `<pending>` as on a cluster without a
load-balancer implementation.

podnet handles Services whose `spec.loadBalancerClass` is unset or `podnet.io/lb`
(LB_CLASS). Any other class belongs to someone else's controller: podnet leaves it
alone (no IP, no status), exactly as Kubernetes' built-in cloud controller does.
Automatic allocation hands out the lowest free address, so IPs are predictable.
"""

from __future__ import annotations

import ipaddress

from podnet.allocators.errors import AlreadyAllocated, NotInRange, RangeFull
from podnet.model.kinds import Obj

LB_CLASS = "podnet.io/lb"
"""The spec.loadBalancerClass podnet answers for (besides an unset class)."""

LB_IP_ANNOTATION = "podnet.io/lb-ip"
"""Records the pool IP a Service holds; the Services themselves are the allocation record."""

IPAddr = ipaddress.IPv4Address | ipaddress.IPv6Address


def parse_pool(spec: str) -> list[tuple[IPAddr, IPAddr]]:
    """Parse a pool spec into inclusive (first, last) ranges. Raises ValueError naming the bad part."""
    text = (spec or "").strip()
    if text.lower() in ("", "none"):
        return []
    ranges: list[tuple[IPAddr, IPAddr]] = []
    for raw in text.split(","):
        part = raw.strip()
        if not part:
            continue
        try:
            if "/" in part:
                net = ipaddress.ip_network(part, strict=False)
                hosts = [net.network_address, net.broadcast_address]
                if net.num_addresses > 2:
                    hosts = [net.network_address + 1, net.broadcast_address - 1]
                ranges.append((hosts[0], hosts[1]))
            elif "-" in part:
                a, _, b = part.partition("-")
                first, last = ipaddress.ip_address(a.strip()), ipaddress.ip_address(b.strip())
                if first.version != last.version or int(first) > int(last):
                    raise ValueError("the range must run from a lower to a higher address of one family")
                ranges.append((first, last))
            else:
                ip = ipaddress.ip_address(part)
                ranges.append((ip, ip))
        except ValueError as e:
            raise ValueError(f"invalid LoadBalancer pool {spec!r}: {part!r}: {e} "
                             "(expected 'A-B' ranges or CIDRs, comma-separated, or 'none')") from None
    return ranges


def handles(svc: Obj) -> bool:
    """True when podnet is the load-balancer implementation for this Service."""
    spec = svc.get("spec") or {}
    if spec.get("type") != "LoadBalancer":
        return False
    cls = spec.get("loadBalancerClass")
    return cls in (None, "", LB_CLASS)


class LoadBalancerPool:
    def __init__(self, spec: str = ""):
        self.spec = (spec or "").strip()
        self._ranges = parse_pool(spec)
        self._used: set[int] = set()

    @property
    def enabled(self) -> bool:
        return bool(self._ranges)

    def size(self) -> int:
        return sum(int(b) - int(a) + 1 for a, b in self._ranges)

    def contains(self, ip: str) -> bool:
        try:
            v = ipaddress.ip_address(ip)
        except ValueError:
            return False
        return any(a.version == v.version and int(a) <= int(v) <= int(b) for a, b in self._ranges)

    def allocate(self, ip: str) -> str:
        if not self.contains(ip):
            pool = self.spec if self.enabled else "none"
            raise NotInRange(f"provided IP is not in the LoadBalancer pool ({pool})")
        v = ipaddress.ip_address(ip)
        if int(v) in self._used:
            raise AlreadyAllocated("IP")
        self._used.add(int(v))
        return str(v)

    def allocate_next(self) -> str:
        for a, b in self._ranges:
            for n in range(int(a), int(b) + 1):
                if n not in self._used:
                    self._used.add(n)
                    return str(ipaddress.ip_address(n) if a.version == 4 else ipaddress.IPv6Address(n))
        raise RangeFull()

    def release(self, ip: str) -> None:
        try:
            self._used.discard(int(ipaddress.ip_address(ip)))
        except ValueError:
            pass

    def has(self, ip: str) -> bool:
        try:
            return int(ipaddress.ip_address(ip)) in self._used
        except ValueError:
            return False

    def used(self) -> int:
        return len(self._used)

    def free(self) -> int:
        return self.size() - len(self._used)
