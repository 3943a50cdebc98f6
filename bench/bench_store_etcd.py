"""Store benchmark, etcd vs SQLite in the same run: creates per second and watch fan-out latency.

Run: .venv/bin/python bench/bench_store_etcd.py [--creates N] [--seconds S] [--watchers W] [--objects K]

Stores compared (each freshly made, etcd members started by this script and killed by PID):
- sqlite: SqliteStore on a file in the temp dir (WAL, synchronous=NORMAL: no fsync per commit)
- etcd 1 member, disk: data dir in the temp dir; etcd fsyncs its WAL on every commit
- etcd 1 member, tmpfs: data dir on /dev/shm (fsync costs nothing): the client + raft cost alone
- etcd 3 members, tmpfs: a real quorum on loopback

creates: one at a time ("serial"), then 32 in flight ("concurrent": etcd batches them in raft).
fan-out: W watchers on `services`, K objects created one at a time, yielding to the event loop
after each; latency is from the start of each create call to each watcher receiving its event
(p50 / p99 over W*K deliveries).
Every phase is bounded by count and by time; nothing leaves this machine (loopback only).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import shutil
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))

from bench_store import percentile, service  # the same objects and percentile as the SQLite bench

from podnet.store import EtcdStore, SqliteStore, Store
from podnet.store.etcd_local import EtcdCluster, etcd_binary, scratch_dir, start_etcd_cluster


async def creates(store: Store, limit: int, seconds: float, in_flight: int) -> tuple[int, float]:
    start = time.perf_counter()
    deadline = start + seconds
    next_i = 0
    done = 0

    async def worker() -> None:
        nonlocal next_i, done
        while next_i < limit and time.perf_counter() < deadline:
            i = next_i
            next_i += 1
            await store.create("services", service(i))
            done += 1

    await asyncio.gather(*(worker() for _ in range(in_flight)))
    return done, done / (time.perf_counter() - start)


async def fanout(store: Store, watchers: int, objects: int, timeout: float) -> list[float]:
    started: dict[str, float] = {}
    latencies: list[float] = []
    base_rv = await store.current_rv()
    opened = 0
    all_open = asyncio.Event()

    async def watch() -> None:
        nonlocal opened
        seen = 0
        it = store.watch("services", None, base_rv)
        first = asyncio.ensure_future(it.__anext__())
        opened += 1
        if opened == watchers:
            all_open.set()
        event = await first
        try:
            while True:
                latencies.append(time.perf_counter() - started[event.object["metadata"]["name"]])
                seen += 1
                if seen == objects:
                    return
                event = await it.__anext__()
        finally:
            await it.aclose()  # type: ignore[attr-defined]

    tasks = [asyncio.create_task(watch()) for _ in range(watchers)]
    await all_open.wait()
    await asyncio.sleep(0.3)  # let every watch stream be established (etcd: created + synced)
    deadline = time.perf_counter() + timeout
    for i in range(objects):
        if time.perf_counter() > deadline:
            break
        name = f"svc-{i}"
        started[name] = time.perf_counter()
        await store.create("services", service(i))
        await asyncio.sleep(0)  # SQLite's create never yields: let its watchers run (steady load)
    try:
        await asyncio.wait_for(asyncio.gather(*tasks), timeout)
    except TimeoutError:
        for t in tasks:
            t.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
    return latencies


async def run(args: argparse.Namespace) -> None:
    tmp = Path(tempfile.mkdtemp(prefix=f"podnet-bench-etcd-{os.getpid()}-"))
    clusters: list[EtcdCluster] = []
    counter = 0

    def etcd_maker(cluster: EtcdCluster) -> Callable[[], Awaitable[Store]]:
        async def make() -> Store:
            nonlocal counter
            counter += 1
            return EtcdStore(cluster.endpoints, prefix=f"/bench-{counter}", history=10 ** 9)
        return make

    def sqlite_maker() -> Callable[[], Awaitable[Store]]:
        async def make() -> Store:
            nonlocal counter
            counter += 1
            return SqliteStore(tmp / f"bench-{counter}.db")
        return make

    try:
        makers: list[tuple[str, Callable[[], Awaitable[Store]]]] = [("sqlite", sqlite_maker())]
        if etcd_binary() is None:
            print("etcd is not installed (no /usr/bin/etcd): only SQLite is measured")
        else:
            disk = start_etcd_cluster(1, tmp / "etcd-disk")
            clusters.append(disk)
            shm_dir = scratch_dir("podnet-bench-etcd")
            one = start_etcd_cluster(1, shm_dir / "one")
            clusters.append(one)
            three = start_etcd_cluster(3, shm_dir / "three")
            clusters.append(three)
            makers += [("etcd 1 member, disk", etcd_maker(disk)),
                       ("etcd 1 member, tmpfs", etcd_maker(one)),
                       ("etcd 3 members, tmpfs", etcd_maker(three))]

        print(f"creates (up to {args.creates} objects or {args.seconds:g} s each run):")
        for label, make in makers:
            row = []
            for in_flight in (1, 32):
                store = await make()
                done, rate = await creates(store, args.creates, args.seconds, in_flight)
                await store.close()
                row.append(f"{'serial' if in_flight == 1 else 'concurrent(32)'} {rate:9,.0f}/s ({done})")
            print(f"  {label:24s} " + "   ".join(row))

        print(f"watch fan-out: {args.watchers} watchers x {args.objects} objects, one create at a time "
              "(create start -> event received):")
        for label, make in makers:
            store = await make()
            lat = await fanout(store, args.watchers, args.objects, timeout=args.seconds * 3)
            await store.close()
            if not lat:
                print(f"  {label:24s} no deliveries")
                continue
            print(f"  {label:24s} p50 {percentile(lat, 0.50) * 1e3:7.3f} ms   "
                  f"p99 {percentile(lat, 0.99) * 1e3:7.3f} ms   max {max(lat) * 1e3:7.3f} ms   "
                  f"({len(lat)} deliveries)")
    finally:
        for cluster in clusters:
            cluster.cleanup()
        for cluster in clusters:
            shutil.rmtree(cluster.directory.parent, ignore_errors=True)
        shutil.rmtree(tmp, ignore_errors=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--creates", type=int, default=5000, help="objects per create run (default 5000)")
    parser.add_argument("--seconds", type=float, default=5.0, help="time bound per run (default 5)")
    parser.add_argument("--watchers", type=int, default=10)
    parser.add_argument("--objects", type=int, default=500)
    args = parser.parse_args()
    asyncio.run(run(args))


if __name__ == "__main__":
    main()
