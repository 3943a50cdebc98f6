"""Store benchmark: creates per second (memory vs SQLite) and watch fan-out latency.

Run: .venv/bin/python bench/bench_store.py [--creates N] [--seconds S]

Fan-out: 10 watchers on `services`, 1,000 objects created; latency is from the start of
each create call to each watcher receiving that object's event (p50 / p99 over all
10,000 deliveries). "paced" yields to the event loop after every write (steady load);
"burst" writes all 1,000 back to back, then lets the watchers drain (worst case queueing).
Every phase is bounded by count and by time.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import shutil
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))

from podnet.store import MemoryStore, SqliteStore, Store


def service(i: int) -> dict[str, object]:
    return {"apiVersion": "v1", "kind": "Service",
            "metadata": {"name": f"svc-{i}", "namespace": "default", "labels": {"app": f"app-{i % 50}"},
                         "uid": f"00000000-0000-0000-0000-{i:012d}",
                         "creationTimestamp": "2026-01-01T00:00:00Z"},
            "spec": {"type": "ClusterIP", "clusterIP": f"10.96.{i // 250}.{i % 250 + 1}",
                     "ports": [{"name": "http", "port": 80, "targetPort": 8080, "protocol": "TCP"}],
                     "selector": {"app": f"app-{i % 50}"}, "sessionAffinity": "None"},
            "status": {"loadBalancer": {}}}


async def creates_per_second(store: Store, limit: int, seconds: float) -> tuple[int, float]:
    start = time.perf_counter()
    deadline = start + seconds
    done = 0
    while done < limit and time.perf_counter() < deadline:
        await store.create("services", service(done))
        done += 1
        await asyncio.sleep(0)  # as a server does between requests (lets checkpoints finish)
    return done, done / (time.perf_counter() - start)


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


async def fanout(store: Store, watchers: int, objects: int, paced: bool, timeout: float) -> list[float]:
    started: dict[str, float] = {}
    latencies: list[float] = []
    ready = asyncio.Event()
    registered = 0
    base_rv = await store.current_rv()

    async def watch() -> None:
        nonlocal registered
        seen = 0
        it = store.watch("services", None, base_rv)
        first = asyncio.ensure_future(it.__anext__())
        registered += 1
        if registered == watchers:
            ready.set()
        event = await first
        while True:
            latencies.append(time.perf_counter() - started[event.object["metadata"]["name"]])
            seen += 1
            if seen == objects:
                await it.aclose()  # type: ignore[attr-defined]
                return
            event = await it.__anext__()

    tasks = [asyncio.create_task(watch()) for _ in range(watchers)]
    await ready.wait()
    await asyncio.sleep(0.01)
    for i in range(objects):
        name = f"svc-{i}"
        started[name] = time.perf_counter()
        await store.create("services", service(i))
        if paced:
            await asyncio.sleep(0)
    await asyncio.wait_for(asyncio.gather(*tasks), timeout)
    return latencies


async def run(args: argparse.Namespace) -> None:
    tmp = Path(tempfile.mkdtemp(prefix=f"podnet-bench-store-{os.getpid()}-"))
    try:
        makers: list[tuple[str, Callable[[str], Store]]] = [
            ("memory", lambda _n: MemoryStore(history=args.creates + 10)),
            ("sqlite", lambda n: SqliteStore(tmp / f"{n}.db")),
            ("sqlite durable=True (fsync/commit)",
             lambda n: SqliteStore(tmp / f"{n}-fsync.db", durable=True)),
        ]
        print(f"creates (up to {args.creates} objects or {args.seconds:.0f} s each):")
        for label, make in makers:
            store = make("creates")
            limit = args.creates if "durable" not in label else min(args.creates, 2000)
            done, rate = await creates_per_second(store, limit, args.seconds)
            await store.close()
            print(f"  {label:38s} {rate:10,.0f} creates/s  ({done} objects)")

        print(f"watch fan-out: {args.watchers} watchers x {args.objects} objects (write -> receive):")
        for label, make in makers[:2]:
            for paced in (True, False):
                store = make(f"fanout-{paced}")
                lat = await fanout(store, args.watchers, args.objects, paced, timeout=args.seconds * 3)
                await store.close()
                mode = "paced" if paced else "burst"
                print(f"  {label:6s} {mode}: p50 {percentile(lat, 0.50) * 1e3:7.3f} ms   "
                      f"p99 {percentile(lat, 0.99) * 1e3:7.3f} ms   max {max(lat) * 1e3:7.3f} ms   "
                      f"mean {statistics.fmean(lat) * 1e3:7.3f} ms   ({len(lat)} deliveries)")
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--creates", type=int, default=20000, help="objects per create run (default 20000)")
    parser.add_argument("--seconds", type=float, default=10.0, help="time bound per phase (default 10)")
    parser.add_argument("--watchers", type=int, default=10)
    parser.add_argument("--objects", type=int, default=1000)
    args = parser.parse_args()
    asyncio.run(run(args))


if __name__ == "__main__":
    main()
