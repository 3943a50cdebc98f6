"""EndpointSlice latency benchmark: pod becomes Ready -> its endpoint is ready in the EndpointSlice.

    .venv/bin/python bench/bench_endpoints.py [--services 1000] [--samples 200] [--interval 0.01]

Runs podnet's API server (MemoryStore) and the controller manager in this process, the
controllers talking HTTP to the server on 127.0.0.1 as they do in a cluster. Creates
`--services` Services, each selecting one pod (pods already bound to a node, with an IP,
not Ready), waits until every Service has its slice, then marks `--samples` random pods
Ready one after another (`--interval` apart) and times, on a watch of EndpointSlices, the
moment each endpoint turns ready. A second phase does the same with all samples at once
(burst). Every phase is bounded in time.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import datetime as dt
import logging
import random
import statistics
import sys
import time
from typing import Any

from podnet.allocators import ServiceHooks
from podnet.api.server import APIServer
from podnet.client.client import ApiClient
from podnet.controllers.runner import ControllerManager
from podnet.core.config import ClusterConfig
from podnet.model.kinds import ENDPOINTSLICES, NODES, PODS, SERVICES
from podnet.store.memory import MemoryStore

NS = "default"


def now() -> str:
    return dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def pct(values: list[float], p: float) -> float:
    s = sorted(values)
    return s[min(len(s) - 1, max(0, round(p / 100 * len(s)) - 1))]


async def bounded_gather(coros: list[Any], limit: int = 64) -> list[Any]:
    sem = asyncio.Semaphore(limit)

    async def one(c: Any) -> Any:
        async with sem:
            return await c
    return await asyncio.gather(*(one(c) for c in coros))


class SliceWatch:
    """Records when each service's endpoint becomes ready (from a watch, not polling)."""

    def __init__(self, client: ApiClient):
        self.client = client
        self.ready_at: dict[str, float] = {}
        self.slices: set[str] = set()
        self.task: asyncio.Task[None] | None = None

    async def run(self) -> None:
        async for ev in self.client.watch(ENDPOINTSLICES, NS, resource_version="0", bookmarks=False):
            s = ev.object
            svc = (s.get("metadata", {}).get("labels") or {}).get("kubernetes.io/service-name", "")
            self.slices.add(svc)
            if any((e.get("conditions") or {}).get("ready") for e in s.get("endpoints") or []):
                self.ready_at.setdefault(svc, time.perf_counter())


async def mark_ready(client: ApiClient, name: str) -> float:
    pod = await client.get(PODS, name, NS)
    pod["status"]["conditions"] = [{"type": "Ready", "status": "True", "lastTransitionTime": now()}]
    t0 = time.perf_counter()
    await client.update_status(PODS, pod)
    return t0


async def wait_for(cond: Any, what: str, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while not cond():
        if time.monotonic() > deadline:
            raise TimeoutError(f"gave up waiting for {what} after {timeout}s")
        await asyncio.sleep(0.05)


async def phase(client: ApiClient, watch: SliceWatch, names: list[str], interval: float,
                timeout: float) -> list[float]:
    starts: dict[str, float] = {}
    if interval > 0:
        for n in names:
            starts[n] = await mark_ready(client, f"{n}-pod")
            await asyncio.sleep(interval)
    else:
        got = await bounded_gather([mark_ready(client, f"{n}-pod") for n in names])
        starts = dict(zip(names, got, strict=True))
    await wait_for(lambda: all(n in watch.ready_at for n in names), "endpoints to turn ready", timeout)
    return [(watch.ready_at[n] - starts[n]) * 1000 for n in names]


async def main(args: argparse.Namespace) -> int:
    logging.basicConfig(level=logging.WARNING)
    store = MemoryStore(history=max(10000, args.services * 20))
    hooks = ServiceHooks("10.96.0.0/12", (30000, 32767))
    server = APIServer(store, hooks={"services": hooks})
    await server.bootstrap()
    port = await server.start("127.0.0.1", 0)
    client = ApiClient(f"http://127.0.0.1:{port}")
    ctl_client = ApiClient(f"http://127.0.0.1:{port}")
    mgr = ControllerManager(ctl_client, ClusterConfig(name="bench", lb_pool="none"))
    watch = SliceWatch(client)
    try:
        t = time.perf_counter()
        await client.create(NODES, {"metadata": {"name": "node-1"},
                                    "status": {"conditions": [{"type": "Ready", "status": "True",
                                                               "lastHeartbeatTime": now()}]}})
        names = [f"svc-{i:05d}" for i in range(args.services)]
        await bounded_gather([client.create(SERVICES, {
            "metadata": {"name": n}, "spec": {"selector": {"app": n}, "ports": [{"port": 80}]}})
            for n in names])
        pods = await bounded_gather([client.create(PODS, {
            "metadata": {"name": f"{n}-pod", "labels": {"app": n}},
            "spec": {"nodeName": "node-1", "containers": [{"name": "c", "image": "busybox"}]}})
            for n in names])
        await bounded_gather([client.update_status(PODS, {
            **p, "status": {"phase": "Running", "podIP": f"10.244.{i // 250}.{i % 250 + 1}",
                            "podIPs": [{"ip": f"10.244.{i // 250}.{i % 250 + 1}"}],
                            "conditions": [{"type": "Ready", "status": "False"}]}})
            for i, p in enumerate(pods)])
        setup = time.perf_counter() - t
        t = time.perf_counter()
        await mgr.start()
        watch.task = asyncio.create_task(watch.run())
        await wait_for(lambda: len(watch.slices) >= args.services, "initial slices", args.timeout)
        initial = time.perf_counter() - t
        rng = random.Random(1)
        sample = rng.sample(names, min(args.samples * 2, len(names)))
        paced = await phase(client, watch, sample[:args.samples], args.interval, args.timeout)
        burst = await phase(client, watch, sample[args.samples:], 0.0, args.timeout)
        print(f"services={args.services} pods={args.services} (setup over HTTP {setup:.1f}s; controller "
              f"start to {args.services} slices {initial:.2f}s)")
        for label, lat in ((f"paced, one every {args.interval * 1000:.0f} ms", paced),
                           (f"burst of {len(burst)} at once", burst)):
            if lat:
                print(f"  pod Ready -> endpoint ready in slice [{label}]: n={len(lat)} "
                      f"p50={statistics.median(lat):.1f} ms p99={pct(lat, 99):.1f} ms max={max(lat):.1f} ms")
        loops = ", ".join(f"{n}:{lp.syncs}/{lp.errors}" for n, lp in mgr.loops.items())
        print(f"  controller syncs/errors: {loops}")
        return 0
    finally:
        if watch.task is not None:
            watch.task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await watch.task
        await mgr.stop()
        await client.close()
        await ctl_client.close()
        await server.stop()
        await store.close()


def parse(argv: list[str]) -> argparse.Namespace:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--services", type=int, default=1000)
    ap.add_argument("--samples", type=int, default=200, help="pods marked Ready per phase")
    ap.add_argument("--interval", type=float, default=0.01, help="seconds between paced updates")
    ap.add_argument("--timeout", type=float, default=120.0, help="bound for each wait")
    return ap.parse_args(argv)


if __name__ == "__main__":
    sys.exit(asyncio.run(asyncio.wait_for(main(parse(sys.argv[1:])), timeout=600)))
