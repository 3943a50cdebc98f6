"""NodePort allocation, as kube-apiserver's portallocator does it.

Static band (KEP-3668): the lowest min(max(16, size/32), 128) ports of the range
are left to explicit requests (30000-30085 for the default 30000-32767);
automatic allocation picks a random port from the upper band first.
"""

from __future__ import annotations

import random

from podnet.allocators.bitmap import BandedBitmap, static_band_size
from podnet.allocators.errors import AlreadyAllocated, NotInRange, RangeFull


class NodePortAllocator:
    def __init__(self, lo: int, hi: int, rng: random.Random | None = None):
        if not (1 <= lo <= hi <= 65535):
            raise ValueError(f"invalid NodePort range {lo}-{hi}: need 1 <= low <= high <= 65535")
        self.lo, self.hi = lo, hi
        size = hi - lo + 1
        self._bits = BandedBitmap(size, static_band_size(size, lo=16, hi=128, step=32), rng)

    @property
    def range_text(self) -> str:
        return f"{self.lo}-{self.hi}"

    @property
    def static_band(self) -> int:
        return self._bits.static_band

    def contains(self, port: int) -> bool:
        return self.lo <= port <= self.hi

    def allocate(self, port: int) -> int:
        if not self.contains(port):
            raise NotInRange("provided port is not in the valid range. "
                             f"The range of valid ports is {self.range_text}")
        if not self._bits.allocate(port - self.lo):
            raise AlreadyAllocated("port")
        return port

    def allocate_next(self) -> int:
        off = self._bits.allocate_next()
        if off is None:
            raise RangeFull()
        return self.lo + off

    def release(self, port: int) -> None:
        if self.contains(port):
            self._bits.release(port - self.lo)

    def has(self, port: int) -> bool:
        return self.contains(port) and self._bits.has(port - self.lo)

    def used(self) -> int:
        return len(self._bits)

    def free(self) -> int:
        return self._bits.free_count()
