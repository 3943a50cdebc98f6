"""Where an agent proxy's memory goes over many Service cycles: Python objects or the C allocator.

    .venv/bin/python bench/bench_soak_heap.py [--cycles 30000] [--background 300] [--sync-every 8]

One process plays a node agent's proxy without a cluster: the agent's shared compact informers and its
ProxyRunner (the nft step skipped), fed the watch events a real cluster sends per cycle (Service
ADDED, EndpointSlice ADDED, Service MODIFIED (labels), Service and slice DELETED; JSON decoded event by
event as the informer does), with a proxy sync every `--sync-every` cycles, on top of `--background`
Services. Every `--cycles`/10 cycles it records:

* VmRSS, and VmRSS again right after glibc's `malloc_trim(0)` (what the allocator held free);
* the bytes tracemalloc traces (live Python allocations) when `--trace` (slower);
* `gc.get_objects()` counted by type (Python objects tracked by the collector).

A leak of Python objects shows as traced bytes or object counts that grow with the cycles; freed
memory the allocator keeps shows as RSS that `malloc_trim` gives back; fragmentation as RSS that grows
while neither traced bytes nor the objects do and `malloc_trim` cannot return it.
No root needed; nothing is sent anywhere. With `--libnft` (root) the syncs are applied through the
agents' libnftables context (`LibNft`, on asyncio's worker thread as the agent does) in a scratch
network namespace of its own, and each sample also shows the resident memory by kind (the main
thread's malloc heap, the worker threads' malloc arenas, other anonymous memory): libnftables'
memory shows in the arenas.
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import ctypes
import ctypes.util
import gc
import json
import os
import subprocess
import sys
import time
import tracemalloc
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_agent_memory import NODES_N, NullNft, no_conntrack, node, rss_kib, service_json, slice_json
from common import Figure, Report, rss_parts

from podnet.client.client import ApiClient
from podnet.client.informer import Informer
from podnet.core.config import ClusterConfig
from podnet.proxy.libnft import LibNft
from podnet.proxy.metrics import ProxyMetrics
from podnet.proxy.runner import ProxyInformers, ProxyRunner


def malloc_trim() -> bool:
    name = ctypes.util.find_library("c")
    trim = getattr(ctypes.CDLL(name), "malloc_trim", None) if name else None
    if trim is None:
        return False
    trim(0)
    return True


def event(inf: Informer, etype: str, raw: bytes) -> None:
    """One watch event as Informer.run handles it: decode, shape, cache, handlers."""
    obj = inf._shape(json.loads(raw))
    meta = obj["metadata"]
    key = f"{meta['namespace']}/{meta['name']}"
    prev = inf.cache.get(key)
    if etype == "DELETED":
        inf.cache.pop(key, None)
    else:
        inf.cache[key] = obj
    for h in inf.handlers:
        h(etype, obj, prev)


def relabel(raw: bytes, rv: int) -> bytes:
    obj = json.loads(raw)
    obj["metadata"]["labels"]["cycle"] = str(rv)
    obj["metadata"]["resourceVersion"] = str(rv)
    return json.dumps(obj).encode()


def objects_by_type() -> collections.Counter[str]:
    return collections.Counter(type(o).__name__ for o in gc.get_objects())


async def run(args: argparse.Namespace, report: Report) -> None:
    if args.trace:
        tracemalloc.start(1)
    client = ApiClient("http://127.0.0.1:9")  # never contacted
    informers = ProxyInformers.own(client)
    nft: Any = LibNft(args.netns) if args.netns else NullNft()
    runner = ProxyRunner(client, "node-1", "172.30.0.2", ClusterConfig(name="bench"), nft,
                         metrics=ProxyMetrics(), conntrack=no_conntrack, shared=informers)
    for n in range(1, NODES_N + 1):
        informers.nodes.cache[f"node-{n}"] = node(n)
    for i in range(args.background):
        event(informers.services, "ADDED", service_json(i))
        event(informers.slices, "ADDED", slice_json(i, 3))
    await runner.sync_once()
    samples: list[dict[str, Any]] = []
    every = max(1, args.cycles // 10)
    first_types: collections.Counter[str] | None = None
    prev_snap: tracemalloc.Snapshot | None = None
    t0 = time.perf_counter()
    for c in range(args.cycles + 1):
        if c % every == 0:
            gc.collect()
            rss = rss_kib()
            untrimmed = rss_parts(os.getpid())
            trimmed = rss_kib() if malloc_trim() else rss
            types = objects_by_type()
            first_types = first_types or types
            traced = tracemalloc.get_traced_memory()[0] // 1024 if args.trace else -1
            parts = rss_parts(os.getpid())
            samples.append({"cycle": c, "rss_kib": rss, "rss_after_trim_kib": trimmed, "traced_kib": traced,
                            "objects": sum(types.values()), "parts_kib": parts,
                            "parts_before_trim_kib": untrimmed})
            print(f"  cycle {c:6d}: RSS {rss / 1024:7.1f} MiB, after malloc_trim {trimmed / 1024:7.1f} MiB, "
                  f"traced {traced / 1024:6.1f} MiB, gc objects {sum(types.values()):,}; "
                  f"heap {untrimmed['heap'] / 1024:.1f} arenas {untrimmed['arenas'] / 1024:.2f} "
                  f"anon {untrimmed['anon'] / 1024:.1f} MiB (after the trim: {parts['heap'] / 1024:.1f}, "
                  f"{parts['arenas'] / 1024:.2f}, {parts['anon'] / 1024:.1f})", file=sys.stderr)
            if args.trace:  # where the traced heap changed since the last sample
                snap = tracemalloc.take_snapshot().filter_traces(
                    [tracemalloc.Filter(False, tracemalloc.__file__)])
                for d in snap.compare_to(prev_snap, "lineno")[:4] if prev_snap is not None else []:
                    fr = d.traceback[0]
                    print(f"      {d.size_diff / 1024:+8.1f} KiB {d.count_diff:+6d} blocks  "
                          f"{fr.filename.rsplit('/', 2)[-1]}:{fr.lineno}", file=sys.stderr)
                prev_snap = snap
        if c == args.cycles:
            break
        i = args.background + c
        event(informers.services, "ADDED", service_json(i))
        event(informers.slices, "ADDED", slice_json(i, 3))
        event(informers.services, "MODIFIED", relabel(service_json(i), 10**6 + c))
        event(informers.services, "DELETED", service_json(i))
        event(informers.slices, "DELETED", slice_json(i, 3))
        if c % args.sync_every == 0:
            await runner.sync_once()
    elapsed = time.perf_counter() - t0
    await runner.sync_once()
    last_types = objects_by_type()
    assert first_types is not None
    grew = {k: last_types[k] - first_types[k] for k in last_types if last_types[k] - first_types[k] > 50}
    warm = samples[1]
    end = samples[-1]
    per_k = 1000 / max(1, end["cycle"] - warm["cycle"])
    report.info.update({"cycles": args.cycles, "background": args.background, "sync_every": args.sync_every,
                        "seconds": round(elapsed, 1), "samples": samples, "object_types_grown": grew})
    g = f"proxy heap over {args.cycles:,} Service cycles (in-process, {args.background} background)"
    report.add(Figure(g, "RSS at the end", end["rss_kib"] / 1024, "MiB", warm["rss_kib"] / 1024,
                      f"after {warm['cycle']:,} cycles (warm-up)"))
    report.add(Figure(g, "RSS growth per 1,000 cycles after warm-up",
                      (end["rss_kib"] - warm["rss_kib"]) * per_k, "KiB"))
    report.add(Figure(g, "RSS after malloc_trim(0), end", end["rss_after_trim_kib"] / 1024, "MiB",
                      warm["rss_after_trim_kib"] / 1024, "same after the warm-up"))
    report.add(Figure(g, "gc-tracked Python objects, end", end["objects"], "", warm["objects"],
                      "after the warm-up", note=f"types grown by > 50: {grew or 'none'}"))
    if args.trace:
        report.add(Figure(g, "traced Python heap, end", end["traced_kib"] / 1024, "MiB",
                          warm["traced_kib"] / 1024, "after the warm-up"))


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--cycles", type=int, default=30000)
    ap.add_argument("--background", type=int, default=300)
    ap.add_argument("--sync-every", type=int, default=8, help="cycles between proxy syncs (default 8)")
    ap.add_argument("--trace", action="store_true", help="also trace the Python heap (tracemalloc; slower)")
    ap.add_argument("--libnft", action="store_true",
                    help="apply the syncs through libnftables in a scratch network namespace (root)")
    ap.add_argument("-o", "--output", choices=["table", "json"], default="table")
    args = ap.parse_args()
    args.netns = f"pn-soakheap-{os.getpid()}" if args.libnft else ""
    report = Report("soak_heap")
    if args.netns:
        subprocess.run(["ip", "netns", "add", args.netns], check=True)
    try:
        asyncio.run(run(args, report))
    finally:
        if args.netns:
            subprocess.run(["ip", "netns", "del", args.netns], check=False)
    report.print(args.output == "json")
    return 0


if __name__ == "__main__":
    sys.exit(main())
