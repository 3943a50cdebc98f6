"""Garbage-collection pauses of a node agent's proxy, CPython's defaults vs freezing after full collections.

    .venv/bin/python bench/bench_agent_gc.py [--services 10000,100000] [--cycles 3000]

Each variant runs in its own fresh process, for each size: the agent's shared compact informers and
its ProxyRunner (the nft step skipped) receive `--services` Services and their EndpointSlices as an
informer's initial list does (JSON decoded object by object), one full proxy sync runs, then
`--cycles` Service cycles follow as watch events (a Service and its slice added, the Service
relabelled, both deleted; a proxy sync every 8 cycles, as bench_soak_heap). Every collection the
interpreter runs by itself is timed through `gc.callbacks`.

- `default`: CPython's collector as configured out of the box (what agents did before).
- `freeze`: `core/gcfreeze.freeze_long_lived()` installed at start, as agents do now: after a full
  collection that took ≥ 50 ms its survivors are frozen (`gc.freeze()`).

Reported per variant: the longest automatic full collection during the load and during the cycles,
how many there were, what an explicit `gc.collect()` costs at the end, and the resident memory and
tracked objects (frozen included) before and after the cycles (frozen objects are never collected
as cycles: memory must not grow). No root needed; nothing is sent anywhere.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import json
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_agent_memory import (
    NODES_N,
    NullNft,
    deliver,
    no_conntrack,
    node,
    rss_kib,
    service_json,
    slice_json,
)
from bench_soak_heap import event, relabel
from common import Figure, Report

from podnet.client.client import ApiClient
from podnet.core.config import ClusterConfig
from podnet.core.gcfreeze import freeze_long_lived
from podnet.proxy.metrics import ProxyMetrics
from podnet.proxy.runner import ProxyInformers, ProxyRunner

VARIANTS = ("default", "freeze")


class Pauses:
    """Durations of the collections the interpreter runs by itself, by generation."""

    def __init__(self) -> None:
        self.full: list[float] = []
        self.young: list[float] = []
        self._t = 0.0
        self.explicit = False

    def __call__(self, phase: str, info: dict[str, Any]) -> None:
        if self.explicit:
            return
        if phase == "start":
            self._t = time.perf_counter()
        else:
            (self.full if info["generation"] == 2 else self.young).append(time.perf_counter() - self._t)

    def take(self) -> dict[str, Any]:
        out = {"full_n": len(self.full), "full_max_s": max(self.full, default=0.0),
               "full_total_s": sum(self.full), "young_max_s": max(self.young, default=0.0)}
        self.full, self.young = [], []
        return out


def tracked() -> int:
    return len(gc.get_objects()) + gc.get_freeze_count()


async def measure(variant: str, services: int, cycles: int) -> dict[str, Any]:
    pauses = Pauses()
    gc.callbacks.append(pauses)  # first: it times the collection, the freezer's callback comes after
    if variant == "freeze":
        freezer = freeze_long_lived()
    client = ApiClient("http://127.0.0.1:9")  # never contacted
    informers = ProxyInformers.own(client)
    runner = ProxyRunner(client, "node-1", "172.30.0.2", ClusterConfig(name="bench"), NullNft(),
                         metrics=ProxyMetrics(), conntrack=no_conntrack, shared=informers)
    for n in range(1, NODES_N + 1):
        informers.nodes.cache[f"node-{n}"] = node(n)
    t0 = time.perf_counter()
    for i in range(services):
        deliver(informers.services, service_json(i))
        deliver(informers.slices, slice_json(i, 3))
    await runner.sync_once()
    load_s = time.perf_counter() - t0
    load = pauses.take()
    rss0, obj0 = rss_kib(), tracked()
    t0 = time.perf_counter()
    for c in range(cycles):
        i = services + c
        event(informers.services, "ADDED", service_json(i))
        event(informers.slices, "ADDED", slice_json(i, 3))
        event(informers.services, "MODIFIED", relabel(service_json(i), 10**6 + c))
        event(informers.services, "DELETED", service_json(i))
        event(informers.slices, "DELETED", slice_json(i, 3))
        if c % 8 == 0:
            await runner.sync_once()
    await runner.sync_once()
    cycles_s = time.perf_counter() - t0
    churn = pauses.take()
    rss1, obj1 = rss_kib(), tracked()
    pauses.explicit = True
    t = time.perf_counter()
    gc.collect()
    explicit_s = time.perf_counter() - t
    assert runner.state is not None and len(runner.state.frontends) == services
    return {"variant": variant, "services": services, "cycles": cycles, "load_s": load_s,
            "cycles_s": cycles_s,
            "load": load, "churn": churn, "explicit_collect_s": explicit_s,
            "rss_before_kib": rss0, "rss_after_kib": rss1, "objects_before": obj0, "objects_after": obj1,
            "frozen": gc.get_freeze_count(), "freezes": freezer.freezes if variant == "freeze" else 0}


def child(args: argparse.Namespace) -> int:
    print(json.dumps(asyncio.run(measure(args.variant, args.services_one, args.cycles))))
    return 0


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--services", default="10000,100000", help="comma-separated Service counts")
    ap.add_argument("--cycles", type=int, default=3000)
    ap.add_argument("--variant", choices=VARIANTS, help=argparse.SUPPRESS)
    ap.add_argument("--services-one", type=int, help=argparse.SUPPRESS)
    ap.add_argument("-o", "--output", choices=("table", "json"), default="table")
    args = ap.parse_args(argv)
    if args.variant:
        return child(args)
    report = Report("agent_gc")
    for n in (int(x) for x in args.services.split(",")):
        got: dict[str, dict[str, Any]] = {}
        for v in VARIANTS:
            out = subprocess.run([sys.executable, __file__, "--variant", v, "--services-one", str(n),
                                  "--cycles", str(args.cycles)], capture_output=True, text=True, check=True)
            got[v] = json.loads(out.stdout.strip().splitlines()[-1])
            print(f"  {n:,} {v}: {got[v]}", file=sys.stderr)
        d, f = got["default"], got["freeze"]
        g = f"agent proxy, {n:,} Services x 3 endpoints, then {args.cycles:,} Service cycles"
        report.add(Figure(g, "longest automatic full collection, load + first sync",
                          f["load"]["full_max_s"] * 1000, "ms", d["load"]["full_max_s"] * 1000, "default",
                          note=f"full collections {f['load']['full_n']} vs {d['load']['full_n']}"))
        report.add(Figure(g, "longest automatic full collection, cycles",
                          f["churn"]["full_max_s"] * 1000, "ms", d["churn"]["full_max_s"] * 1000, "default",
                          note=f"full collections {f['churn']['full_n']} vs {d['churn']['full_n']}"))
        report.add(Figure(g, "explicit gc.collect() at the end", f["explicit_collect_s"] * 1000, "ms",
                          d["explicit_collect_s"] * 1000, "default"))
        for v in (f, d):
            report.add(Figure(g, f"{v['variant']}: RSS growth over the cycles",
                              (v["rss_after_kib"] - v["rss_before_kib"]) / 1024, "MiB",
                              note=f"RSS {v['rss_after_kib'] / 1024:.0f} MiB; tracked objects "
                                   f"{v['objects_before']:,} → {v['objects_after']:,} "
                                   f"(frozen {v['frozen']:,}, {v['freezes']} freezes)"))
    report.print(args.output == "json")
    return 0


if __name__ == "__main__":
    sys.exit(main())
