"""glibc's allocator, for long-lived daemons: fixed trim and mmap thresholds, `malloc_trim`.

glibc starts with blocks of 128 KiB or more served by mmap (returned to the system when freed)
and the free top of a heap given back once it exceeds 128 KiB. Its dynamic threshold then raises
both after the first large block is freed: the mmap threshold to that block's size (up to 32 MiB)
and the trim threshold to twice that. A node agent frees such blocks (a full sync's text, a list
response), and from then on each thread's malloc arena (the nft and usage-sampling worker threads
have one each) kept freed memory: the agents' resident memory crept up by ~40 KiB per 1,000 Service
cycles each (bench/bench_soak.py; malloc_stats showed 3.7 MB arenas with 0.2-1.3 MB in use, and
`malloc_trim` gave 1.9 MiB back: freed memory, not live objects). Setting the thresholds
explicitly turns the dynamic adjustment off (mallopt(3)), so freed memory goes back as it did
before the first large free.

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
