"""Garbage-collector thresholds for a process that holds large, long-lived caches (the control plane).

CPython's default thresholds (700, 10, 10) start a young collection every 700 net allocations and
consider a full one every 100 young ones. A control plane caches every object of the cluster
(informers: ~40 container objects per pod), and bulk work allocates millions of objects that
survive: with the defaults, `bench/bench_slice_rate.py` (10,000 Services) spent 4.3 s of its 8.9 s of
CPU in the collector, 3.9 s of it in 10 full collections over the whole heap. With these, 0.8 s and
no full collection. Reference-counted objects are freed as before; only cyclic garbage waits longer
(at most a few MiB more before a young collection finds it).
"""

from __future__ import annotations

import gc

LARGE_HEAP_THRESHOLDS = (20000, 20, 20)


def tune_for_large_heap() -> None:
    gc.set_threshold(*LARGE_HEAP_THRESHOLDS)
