"""The LoadBalancer IP pool: where `type: LoadBalancer` Services get their EXTERNAL-IP.

The pool spec (ClusterConfig.lb_pool) is parsed by podnet.core.lbpool; this module keeps which
of its addresses are taken. "" or "none" means no pool: such Services stay `<pending>` as on a
cluster without a load-balancer implementation.

podnet handles Services whose `spec.loadBalancerClass` is unset or `podnet.io/lb`
(LB_CLASS). Any other class belongs to someone else's controller: podnet leaves it
alone (no IP, no status), exactly as Kubernetes' built-in cloud controller does.
Automatic allocation hands out the lowest free address, so IPs are predictable.
"""

from __future__ import annotations

import ipaddress

from podnet.allocators.errors import AlreadyAllocated, NotInRange, RangeFull
from podnet.core.lbpool import PoolSpec
from podnet.model.kinds import Obj

LB_CLASS = "podnet.io/lb"
"""The spec.loadBalancerClass podnet answers for (besides an unset class)."""

LB_IP_ANNOTATION = "podnet.io/lb-ip"
"""Records the pool IP a Service holds; the Services themselves are the allocation record."""


def handles(svc: Obj) -> bool:
    """True when podnet is the load-balancer implementation for this Service."""
    spec = svc.get("spec") or {}
    if spec.get("type") != "LoadBalancer":
        return False
    cls = spec.get("loadBalancerClass")
    return cls in (None, "", LB_CLASS)


class LoadBalancerPool(PoolSpec):
    """The pool with which of its addresses are taken: the one record the Service hook allocates from."""

    def __init__(self, spec: str = ""):
        super().__init__(spec)
        self._used: set[int] = set()

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
        for a, b in self.ranges:
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
