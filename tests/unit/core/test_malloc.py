"""core/malloc.py: with fixed thresholds, memory freed after a large block was freed goes back to the
system; with glibc's dynamic threshold it stays in the process (each case in a fresh interpreter)."""

from __future__ import annotations

import subprocess
import sys
import textwrap

import pytest

from podnet.core import malloc

# Free one 8 MiB block (glibc raises its thresholds to it), then allocate and free 6 MiB in 1 MiB blocks
# from a worker thread (its own malloc arena, as the agent's nft thread), and report how much of the
# 6 MiB the process still holds (KiB of VmRSS above what it held before the blocks).
SCRIPT = textwrap.dedent("""
    import sys, threading
    from podnet.core import malloc
    if sys.argv[1] == "fixed":
        assert malloc.fix_thresholds()
    def rss():
        for line in open("/proc/self/status"):
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    big = bytearray(8 << 20)
    del big
    out = {}
    def work():
        out["before"] = rss()
        blocks = [bytearray(1 << 20) for _ in range(6)]
        out["peak"] = rss()
        del blocks
        out["after"] = rss()
    t = threading.Thread(target=work)
    t.start()
    t.join()
    print(out["peak"] - out["before"], out["after"] - out["before"])
""")


def held_kib(mode: str) -> tuple[int, int]:
    p = subprocess.run([sys.executable, "-c", SCRIPT, mode], capture_output=True, text=True, timeout=60,
                       check=True)
    peak, after = p.stdout.split()
    return int(peak), int(after)


@pytest.mark.skipif(malloc.libc() is None or not hasattr(malloc.libc(), "mallopt"),
                    reason="not glibc")
def test_fixed_thresholds_give_freed_memory_back() -> None:
    peak, kept = held_kib("dynamic")
    assert peak > 5 * 1024 and kept > 5 * 1024  # glibc's dynamic threshold: the 6 MiB stay
    peak, kept = held_kib("fixed")
    assert peak > 5 * 1024 and kept < 1024  # fixed thresholds: they go back when freed


def test_trim_runs() -> None:
    malloc.trim()  # no error on any C library (a no-op without malloc_trim)
