"""ClusterIP allocation from the Service CIDR, as kube-apiserver's bitmap ipallocator does it.

- The network and broadcast addresses are never handed out.
- The first usable address (10.96.0.1 in 10.96.0.0/12) belongs to the `kubernetes`
  Service: it is given only to a request that names it.
- Static band (KEP-3070): the lowest min(max(16, size/16), 256) addresses are left to
  explicit requests; automatic allocation picks randomly from the rest first.
"""

from __future__ import annotations

import ipaddress
import random

from podnet.allocators.bitmap import BandedBitmap, static_band_size
from podnet.allocators.errors import AlreadyAllocated, NotInRange, RangeFull


class ClusterIPAllocator:
    def __init__(self, cidr: str, rng: random.Random | None = None):
        try:
            net = ipaddress.ip_network(cidr, strict=False)
        except ValueError as e:
            raise ValueError(f"invalid service CIDR {cidr!r}: {e}") from None
        if net.num_addresses < 8:
            raise ValueError(f"the service cluster IP range must be at least 8 IP addresses, got {cidr}")
        self.cidr = str(net)
        self.network = net
        self._base = int(net.network_address) + 1
        size = min(net.num_addresses - 2, 1 << 24)  # cap huge IPv6 ranges as kube-apiserver does (/104)
        band = static_band_size(net.num_addresses, lo=16, hi=256, step=16)
        self._bits = BandedBitmap(size, band, rng, never_auto=frozenset({0}))

    @property
    def static_band(self) -> int:
        return self._bits.static_band

    def _offset(self, ip: str) -> int:
        try:
            addr = ipaddress.ip_address(ip)
        except ValueError:
            raise NotInRange(self._not_in_range(ip)) from None
        off = int(addr) - self._base
        if addr.version != self.network.version or not 0 <= off < self._bits.size:
            raise NotInRange(self._not_in_range(ip))
        return off

    def _not_in_range(self, ip: str) -> str:
        return f"the provided IP ({ip}) is not in the valid range. The range of valid IPs is {self.cidr}"

    def allocate(self, ip: str) -> str:
        """Take a requested IP. Raises NotInRange or AlreadyAllocated. Returns the canonical form."""
        off = self._offset(ip)
        if not self._bits.allocate(off):
            raise AlreadyAllocated("IP")
        return self._ip(off)

    def allocate_next(self) -> str:
        off = self._bits.allocate_next()
        if off is None:
            raise RangeFull()
        return self._ip(off)

    def release(self, ip: str) -> None:
        try:
            self._bits.release(self._offset(ip))
        except NotInRange:
            pass

    def has(self, ip: str) -> bool:
        try:
            return self._bits.has(self._offset(ip))
        except NotInRange:
            return False

    def contains(self, ip: str) -> bool:
        try:
            self._offset(ip)
        except NotInRange:
            return False
        return True

    def used(self) -> int:
        return len(self._bits)

    def free(self) -> int:
        return self._bits.free_count()

    def _ip(self, off: int) -> str:
        return str(ipaddress.ip_address(self._base + off))
