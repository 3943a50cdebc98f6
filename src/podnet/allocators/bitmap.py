"""A set of integer offsets [0, size) split into a low "static" band and an upper "dynamic" band.

kube-apiserver's ipallocator (KEP-3070) and portallocator (KEP-3668) both do this:
values a user asks for by number may come from anywhere in the range, while
values picked automatically come from the upper band first and only fall back to
the low band when the upper one is full. That keeps the low band mostly free for
well-known values (the `kubernetes` Service IP, cluster DNS at .10, fixed NodePorts).
"""

from __future__ import annotations

import random


def static_band_size(size: int, *, lo: int, hi: int, step: int) -> int:
    """`calculateRangeOffset`: min(max(lo, size/step), hi), and 0 for ranges smaller than `lo`."""
    if size < lo:
        return 0
    return min(max(lo, size // step), hi)


class BandedBitmap:
    """Tracks which offsets are taken. Pure, synchronous: every call is atomic on one event loop."""

    def __init__(self, size: int, static_band: int, rng: random.Random | None = None,
                 never_auto: frozenset[int] = frozenset()):
        if size <= 0:
            raise ValueError(f"allocator range must hold at least one value, got size {size}")
        self.size = size
        self.static_band = max(0, min(static_band, size))
        self._used: set[int] = set()
        self._rng = rng or random.Random()
        self._never_auto = never_auto  # offsets handed out only when asked for by number

    def __len__(self) -> int:
        return len(self._used)

    def has(self, offset: int) -> bool:
        return offset in self._used

    def free_count(self) -> int:
        return self.size - len(self._used)

    def allocate(self, offset: int) -> bool:
        """Take `offset`; False if it was already taken."""
        if not 0 <= offset < self.size:
            raise IndexError(offset)
        if offset in self._used:
            return False
        self._used.add(offset)
        return True

    def release(self, offset: int) -> None:
        self._used.discard(offset)

    def allocate_next(self) -> int | None:
        """A random free offset from the dynamic band, else from the static band; None when full."""
        got = self._scan(self.static_band, self.size)
        if got is None:
            got = self._scan(0, self.static_band)
        if got is not None:
            self._used.add(got)
        return got

    def _scan(self, start: int, end: int) -> int | None:
        """Random start in [start, end), then a wrap-around scan, as the bitmap allocator does."""
        n = end - start
        if n <= 0:
            return None
        first = self._rng.randrange(n)
        for i in range(n):
            off = start + (first + i) % n
            if off not in self._used and off not in self._never_auto:
                return off
        return None
