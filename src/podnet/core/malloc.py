"""glibc's allocator, for long-lived daemons: fixed trim and mmap thresholds, `malloc_trim`.

glibc starts with blocks of 128 KiB or more served by mmap (returned to the system when freed)
and the free top of a heap given back once it exceeds 128 KiB. Its dynamic threshold then raises
both after the first large block is freed: the mmap threshold to that block's size (up to 32 MiB)
and the trim threshold to twice that. In a node agent the first full proxy sync's text is such a
block, so from then on every thread's malloc arena (the nft and sampling worker threads have one
each) kept up to twice that size of freed memory, and the agents' resident memory crept up by
~40 KiB per 1,000 Service cycles each until it got there (bench/bench_soak.py: freed memory,
given back by `malloc_trim`, not live objects). Setting the thresholds explicitly turns the dynamic
adjustment off (mallopt(3)), so freed memory goes back as it did before the first large free.

Everything here is a no-op where the C library has no such functions (musl, macOS).
"""

from __future__ import annotations

import ctypes
import ctypes.util
import functools

M_TRIM_THRESHOLD = -1  # mallopt(3) parameter numbers (malloc.h)
M_MMAP_THRESHOLD = -3
DEFAULT_THRESHOLD = 128 * 1024  # glibc's own starting value for both


@functools.cache
def libc() -> ctypes.CDLL | None:
    name = ctypes.util.find_library("c")
    try:
        return ctypes.CDLL(name) if name else None
    except OSError:
        return None


def fix_thresholds(mmap_threshold: int = DEFAULT_THRESHOLD, trim_threshold: int = DEFAULT_THRESHOLD) -> bool:
    """Fix glibc's mmap and trim thresholds (turning their dynamic adjustment off); whether it could."""
    mallopt = getattr(libc(), "mallopt", None)
    if mallopt is None:
        return False
    mallopt.restype = ctypes.c_int
    mallopt.argtypes = [ctypes.c_int, ctypes.c_int]
    return bool(mallopt(M_MMAP_THRESHOLD, mmap_threshold)) and bool(mallopt(M_TRIM_THRESHOLD, trim_threshold))


def trim() -> None:
    """Give freed heap memory back to the system (glibc's malloc_trim(0), every arena)."""
    fn = getattr(libc(), "malloc_trim", None)
    if fn is not None:
        fn(0)
