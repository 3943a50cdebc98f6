"""EndpointSlice controller on bulk Service creates (issue 16: >= 2,000 Services per second).

    .venv/bin/python bench/bench_slice_rate.py [--services 10000] [--pods-per-service 3] [--nodes 3]
        [--phases controller,e2e] [--concurrency 64] [--baseline | --baseline-src DIR] [--profile FILE]
        [-o json]

The control plane as `podnet controlplane` runs it: one process with the API server (SQLite store
in a temporary directory, the Service allocation hooks, listening on a unix socket) and the
controller manager talking to it through that socket. The pods exist before anything is measured
(`--pods-per-service` Ready pods per Service, spread over `--nodes` nodes, written straight into the
store: setup, not measured). Phases:

- controller: the Services exist (created through the API before the controllers start); time from
  the controller manager's start until every Service has its correct EndpointSlice in the store.
  Reports Services/s, with the informers' initial list time on its own.
- e2e: the controllers run; a client process creates the Services through the API as fast
  as it can (`--concurrency` requests in flight); for each Service, the time from its create request
  until its slice (all endpoints ready) is seen on a watch. Reports the create rate, p50/p99/max of
  that latency and when the last slice was ready.

"Correct" is checked against the store at the end of each phase: labels
(kubernetes.io/service-name, endpointslice.kubernetes.io/managed-by), the controller
ownerReference to the Service's uid, the ports, every selected pod's IP once with
ready/serving/terminating = true/true/false.

Baseline, same run: `--baseline` repeats the controller phase with the write path the controllers
had before they ran in-process (one HTTP request per slice and per Endpoints object);
`--baseline-src DIR` instead runs each phase again with the code of another checkout (e.g.
`git worktree add /tmp/base <commit>`), through that checkout's own copy of this bench.

The process uses the control plane's garbage-collector thresholds (`podnet.core.gctune`); the
controller phase reports the time spent in the collector.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import cProfile
import datetime as dt
import gc
import json
import logging
import os
import pstats
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from common import Figure, Report, machine_line, p50, p99

from podnet.allocators import ServiceHooks
from podnet.api.server import APIServer
from podnet.client.client import ApiClient
from podnet.client.informer import Informer
from podnet.controllers.inprocess import InProcessClient
from podnet.controllers.runner import ControllerManager
from podnet.core.config import ClusterConfig
from podnet.core.gctune import tune_for_large_heap
from podnet.model.kinds import ENDPOINTSLICES, NODES, PODS, SERVICES
from podnet.model.services import ENDPOINTSLICE_CONTROLLER, MANAGED_BY_LABEL, SERVICE_NAME_LABEL
from podnet.store.memory import MemoryStore
from podnet.store.sqlite import SqliteStore

NS = "default"
PORT = 8080


def now_rfc3339() -> str:
    return dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def svc_name(i: int) -> str:
    return f"svc-{i:05d}"


def service_body(i: int) -> dict[str, Any]:
    return {"apiVersion": "v1", "kind": "Service", "metadata": {"name": svc_name(i), "namespace": NS},
            "spec": {"selector": {"app": svc_name(i)},
                     "ports": [{"name": "http", "port": 80, "targetPort": PORT}]}}


def pod_ip(i: int, j: int, per: int) -> str:
    n = i * per + j
    return f"10.{64 + n // 65536}.{(n // 256) % 256}.{n % 256}"


def pod_object(i: int, j: int, per: int, nodes: int) -> dict[str, Any]:
    n = i * per + j
    ip = pod_ip(i, j, per)
    return {
        "apiVersion": "v1", "kind": "Pod",
        "metadata": {"name": f"{svc_name(i)}-{j}", "namespace": NS,
                     "uid": f"00000000-0000-4000-8000-{n:012d}", "labels": {"app": svc_name(i)},
                     "creationTimestamp": "2026-12-06T00:00:00Z"},
        "spec": {"nodeName": f"node-{n % nodes + 1}",
                 "containers": [{"name": "c", "image": "busybox",
                                 "ports": [{"containerPort": PORT, "protocol": "TCP"}]}]},
        "status": {"phase": "Running", "podIP": ip, "podIPs": [{"ip": ip}],
                   "conditions": [{"type": "Ready", "status": "True"}]},
    }


async def seed(store: SqliteStore | MemoryStore, services: int, per: int, nodes: int) -> None:
    for k in range(nodes):
        await store.create(NODES.key, {
            "apiVersion": "v1", "kind": "Node",
            "metadata": {"name": f"node-{k + 1}", "uid": f"node-uid-{k}",
                         "creationTimestamp": "2026-12-06T00:00:00Z"},
            "spec": {"podCIDR": f"10.244.{k}.0/24"},
            "status": {"conditions": [{"type": "Ready", "status": "True",
                                       "lastHeartbeatTime": now_rfc3339()}]}})
    for i in range(services):
        for j in range(per):
            await store.create(PODS.key, pod_object(i, j, per, nodes))


def slice_ok(s: dict[str, Any], svc_uid: str | None, i: int, per: int) -> bool:
    meta = s.get("metadata") or {}
    lab = meta.get("labels") or {}
    if lab.get(SERVICE_NAME_LABEL) != svc_name(i) or lab.get(MANAGED_BY_LABEL) != ENDPOINTSLICE_CONTROLLER:
        return False
    if svc_uid is not None and not any(r.get("uid") == svc_uid and r.get("controller")
                                       for r in meta.get("ownerReferences") or []):
        return False
    if s.get("ports") != [{"name": "http", "port": PORT, "protocol": "TCP"}]:
        return False
    eps = s.get("endpoints") or []
    want = {pod_ip(i, j, per) for j in range(per)}
    got = [a for e in eps for a in e.get("addresses") or []]
    return (len(got) == per and set(got) == want and all(
        e.get("conditions") == {"ready": True, "serving": True, "terminating": False} for e in eps))


class SliceWatch:
    """When each Service's slice first became complete (every endpoint there and ready), from a watch:
    the store's own watch in the control-plane process (`store`), or an HTTP watch (`client`)."""

    def __init__(self, per: int, *, store: SqliteStore | MemoryStore | None = None,
                 client: ApiClient | None = None):
        self.store = store
        self.client = client
        self.per = per
        self.ready_at: dict[str, float] = {}
        self.error = ""
        self.task: asyncio.Task[None] | None = None
        self.informer: Informer | None = None

    async def start(self) -> None:
        if self.store is not None:
            rv = await self.store.current_rv()
            events: Any = self.store.watch(ENDPOINTSLICES.key, NS, rv)
        else:  # an informer, as an agent has: it relists when its watch falls too far behind (410)
            assert self.client is not None
            self.informer = Informer(self.client, ENDPOINTSLICES, NS)
            self.informer.add_handler(lambda et, obj, old: self.seen(obj))
            self.informer.start()
            await self.informer.synced.wait()
            return
        self.task = asyncio.create_task(self.run(events))

    async def run(self, events: Any) -> None:
        try:
            async for ev in events:
                self.seen(ev.object)
        except Exception as e:
            self.error = f"{type(e).__name__}: {e}"
            raise

    def seen(self, s: dict[str, Any]) -> None:
        name = ((s.get("metadata") or {}).get("labels") or {}).get(SERVICE_NAME_LABEL, "")
        if name in self.ready_at or not name.startswith("svc-"):
            return
        if slice_ok(s, None, int(name[4:]), self.per):
            self.ready_at[name] = time.time()

    async def stop(self) -> None:
        if self.informer is not None:
            await self.informer.stop()
        if self.task is not None:
            self.task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self.task


async def verify(store: SqliteStore | MemoryStore, services: int, per: int) -> int:
    """How many Services have exactly one managed slice, and it is correct."""
    svcs, _ = await store.list(SERVICES.key, NS)
    uids = {s["metadata"]["name"]: s["metadata"]["uid"] for s in svcs}
    slices, _ = await store.list(ENDPOINTSLICES.key, NS)
    by: dict[str, list[dict[str, Any]]] = {}
    for s in slices:
        by.setdefault((s["metadata"].get("labels") or {}).get(SERVICE_NAME_LABEL, ""), []).append(s)
    ok = 0
    for i in range(services):
        mine = by.get(svc_name(i), [])
        if len(mine) == 1 and slice_ok(mine[0], uids.get(svc_name(i)), i, per):
            ok += 1
    return ok


async def wait_for(cond: Any, what: str, timeout: float, watch: SliceWatch | None = None) -> None:
    deadline = time.monotonic() + timeout
    while not cond():
        if watch is not None and watch.error:
            raise RuntimeError(f"the slice watch ended: {watch.error}")
        if time.monotonic() > deadline:
            raise TimeoutError(f"gave up waiting for {what} after {timeout}s")
        await asyncio.sleep(0.02)


class GcTimer:
    """Time the process spends in the garbage collector (gen 2: full collections), while started."""

    def __init__(self) -> None:
        self.seconds = [0.0, 0.0, 0.0]
        self.counts = [0, 0, 0]
        self._t = 0.0

    def _cb(self, phase: str, info: dict[str, Any]) -> None:
        if phase == "start":
            self._t = time.perf_counter()
        else:
            g = int(info["generation"])
            self.seconds[g] += time.perf_counter() - self._t
            self.counts[g] += 1

    def __enter__(self) -> GcTimer:
        gc.callbacks.append(self._cb)
        return self

    def __exit__(self, *exc: object) -> None:
        gc.callbacks.remove(self._cb)

    def line(self) -> str:
        return (f"GC {sum(self.seconds):.2f} s ({self.counts[2]} full collections: "
                f"{self.seconds[2]:.2f} s)")


class ControlPlane:
    def __init__(self, tmp: Path, args: argparse.Namespace):
        self.tmp = tmp
        self.args = args
        self.sock = str(tmp / "api.sock")
        self.store: SqliteStore | MemoryStore = (
            SqliteStore(tmp / "store.db", history=max(100000, args.services * 10)) if args.store == "sqlite"
            else MemoryStore(history=max(100000, args.services * 10)))
        self.server = APIServer(self.store, hooks={"services": ServiceHooks("10.96.0.0/12", (30000, 32767))})
        self.mgr: ControllerManager | None = None
        self.heartbeats: asyncio.Task[None] | None = None
        self.clients: list[ApiClient] = []

    def client(self) -> ApiClient:
        c = ApiClient(f"unix://{self.sock}")
        self.clients.append(c)
        return c

    async def start(self) -> None:
        tune_for_large_heap()  # as `podnet controlplane` does
        await self.server.bootstrap()
        await seed(self.store, self.args.services, self.args.pods_per_service, self.args.nodes)
        await self.server.start("127.0.0.1", 0, unix_path=self.sock)
        self.heartbeats = asyncio.create_task(self._heartbeat(self.client()))

    async def _heartbeat(self, client: ApiClient) -> None:
        """The nodes' agents: a Ready heartbeat every 5 s, or the node lifecycle controller would (rightly)
        mark the nodes and their pods not ready during a long run."""
        while True:
            await asyncio.sleep(5)
            for k in range(self.args.nodes):
                node = await client.get(NODES, f"node-{k + 1}")
                node["status"]["conditions"][0]["lastHeartbeatTime"] = now_rfc3339()
                await client.update_status(NODES, node)

    def manager(self, over_http: bool) -> ControllerManager:
        """The controller manager as `podnet controlplane` wires it (in-process client), or as it was
        before (every call over the unix socket)."""
        client = self.client() if over_http else InProcessClient(self.server, f"unix://{self.sock}")
        if not over_http:
            self.clients.append(client)
        self.mgr = ControllerManager(client, ClusterConfig(name="bench", lb_pool="none"))
        return self.mgr

    async def stop(self) -> None:
        if self.heartbeats is not None:
            self.heartbeats.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self.heartbeats
        if self.mgr is not None:
            await self.mgr.stop()
        for c in self.clients:
            await c.close()
        await self.server.stop()
        await self.store.close()


def run_helper(mode: str, sock: str, args: argparse.Namespace) -> subprocess.Popen[str]:
    return subprocess.Popen([sys.executable, __file__, mode, sock, "--services", str(args.services),
                             "--pods-per-service", str(args.pods_per_service),
                             "--concurrency", str(args.concurrency), "--timeout", str(args.timeout)],
                            stdout=subprocess.PIPE, text=True)


async def watcher(sock: str, args: argparse.Namespace) -> None:
    """The watching client process (as an agent is): prints "watching" once its watch is open, then
    each Service's slice-ready time (wall clock) when every slice is complete."""
    async with ApiClient(f"unix://{sock}") as client:
        watch = SliceWatch(args.pods_per_service, client=client)
        await watch.start()
        print("watching", flush=True)
        try:
            await wait_for(lambda: len(watch.ready_at) >= args.services, "every slice", args.timeout, watch)
        except TimeoutError:
            cache = watch.informer.cache if watch.informer is not None else {}
            missing = sorted(set(map(svc_name, range(args.services))) - set(watch.ready_at))
            print(f"watcher: {len(watch.ready_at)} ready, {len(cache)} slices cached; first missing "
                  f"{missing[:3]}", file=sys.stderr)
            raise
        finally:
            await watch.stop()
    print(json.dumps(watch.ready_at), flush=True)


async def creator(sock: str, args: argparse.Namespace) -> None:
    """The creating client process (as kubectl apply is): creates the Services as fast as it can with
    `--concurrency` requests in flight; prints each one's send time (wall clock)."""
    sent: dict[str, float] = {}
    async with ApiClient(f"unix://{sock}") as client:
        it = iter(range(args.services))

        async def worker() -> None:
            for i in it:
                sent[svc_name(i)] = time.time()
                await client.create(SERVICES, service_body(i), NS)
        t0 = time.time()
        await asyncio.gather(*(worker() for _ in range(args.concurrency)))
        t1 = time.time()
    print(json.dumps({"start": t0, "end": t1, "sent": sent}))


async def create_all(client: ApiClient, services: int, concurrency: int) -> None:
    it = iter(range(services))

    async def worker() -> None:
        for i in it:
            await client.create(SERVICES, service_body(i), NS)
    await asyncio.gather(*(worker() for _ in range(concurrency)))


async def phase_controller(args: argparse.Namespace, report: Report, legacy: bool) -> tuple[float, float]:
    label = "controllers over HTTP (before)" if legacy else "now"
    with tempfile.TemporaryDirectory(prefix="podnet-bench-eps-") as d:
        cp = ControlPlane(Path(d), args)
        try:
            await cp.start()
            await create_all(cp.client(), args.services, args.concurrency)
            watch = SliceWatch(args.pods_per_service, store=cp.store)
            await watch.start()
            mgr = cp.manager(legacy)
            prof = cProfile.Profile() if args.profile and not legacy else None
            cpu0 = time.process_time()
            t0 = time.time()
            if prof is not None:
                prof.enable()
            with GcTimer() as gct:
                await mgr.start()
                t_listed = time.time()
                await wait_for(lambda: len(watch.ready_at) >= args.services, "every slice", args.timeout,
                               watch)
            t1 = max(watch.ready_at.values())
            if prof is not None:
                prof.disable()
            cpu = time.process_time() - cpu0
            ok = await verify(cp.store, args.services, args.pods_per_service)
            await watch.stop()
        finally:
            await cp.stop()
    if prof is not None:
        prof.dump_stats(args.profile)
        pstats.Stats(args.profile).sort_stats("tottime").print_stats(35)
    rate = args.services / (t1 - t0)
    print(f"  controller [{label}]: {args.services} Services -> slices in {t1 - t0:.2f} s "
          f"(informers listed in {t_listed - t0:.2f} s), {rate:,.0f} Services/s, process CPU {cpu:.2f} s, "
          f"{gct.line()}; "
          f"correct: {ok}/{args.services}", file=sys.stderr)
    if ok != args.services:
        report.errors.append(f"controller [{label}]: only {ok} of {args.services} slices correct")
    return rate, args.services / cpu


async def phase_e2e(args: argparse.Namespace, report: Report, legacy: bool) -> dict[str, float]:
    label = "controllers over HTTP (before)" if legacy else "now"
    with tempfile.TemporaryDirectory(prefix="podnet-bench-eps-") as d:
        cp = ControlPlane(Path(d), args)
        try:
            await cp.start()
            await cp.manager(legacy).start()
            loop = asyncio.get_running_loop()
            watching = run_helper("--watcher", cp.sock, args)
            assert watching.stdout is not None
            line = await loop.run_in_executor(None, watching.stdout.readline)
            if line.strip() != "watching":
                raise RuntimeError(f"watcher failed to start: {line!r}")
            creating = run_helper("--creator", cp.sock, args)
            out, _ = await loop.run_in_executor(None, creating.communicate)
            seen, _ = await loop.run_in_executor(None, watching.communicate)
            if creating.returncode != 0 or watching.returncode != 0:
                ok = await verify(cp.store, args.services, args.pods_per_service)
                slices, _ = await cp.store.list(ENDPOINTSLICES.key, NS)
                m = cp.mgr
                print(f"store: {ok} correct, {len(slices)} slices; endpoints loop "
                      f"{m.loops['endpoints'].syncs if m else 0} syncs, "
                      f"{m.loops['endpoints'].errors if m else 0} errors", file=sys.stderr)
                raise RuntimeError(f"creator/watcher failed ({creating.returncode}/{watching.returncode})")
            res = json.loads(out)
            res["ready"] = json.loads(seen)
            ok = await verify(cp.store, args.services, args.pods_per_service)
        finally:
            await cp.stop()
    sent: dict[str, float] = res["sent"]
    ready: dict[str, float] = res["ready"]
    lat = [(ready[n] - t) * 1000 for n, t in sent.items()]
    create_s = res["end"] - res["start"]
    last = max(ready.values()) - res["start"]
    print(f"  e2e [{label}]: {args.services} Services created in {create_s:.2f} s "
          f"({args.services / create_s:,.0f}/s); last slice ready {last:.2f} s after the first create; "
          f"create -> slice ready p50 {p50(lat):.0f} ms, p99 {p99(lat):.0f} ms, max {max(lat):.0f} ms; "
          f"correct: {ok}/{args.services}", file=sys.stderr)
    if ok != args.services:
        report.errors.append(f"e2e [{label}]: only {ok} of {args.services} slices correct")
    return {"create_rate": args.services / create_s, "create_s": create_s, "last": last, "p50": p50(lat),
            "p99": p99(lat), "max": max(lat)}


def tree_figures(args: argparse.Namespace, phase: str) -> dict[str, float]:
    """One phase measured with another checkout's code (`--baseline-src`: e.g. a worktree of main before
    this change), run now as a subprocess of that checkout's bench: its figures by name."""
    src = Path(args.baseline_src).resolve()
    cmd = [sys.executable, str(src / "bench" / "bench_slice_rate.py"), "--services", str(args.services),
           "--pods-per-service", str(args.pods_per_service), "--nodes", str(args.nodes), "--phases", phase,
           "--concurrency", str(args.concurrency), "--timeout", str(args.timeout), "-o", "json"]
    res = subprocess.run(cmd, env={**os.environ, "PYTHONPATH": str(src / "src")}, capture_output=True,
                         text=True, timeout=args.timeout * 3 + 120)
    sys.stderr.write("".join(f"  [baseline {src.name}] {line}\n" for line in res.stderr.splitlines()
                             if line.startswith("  ")))
    if res.returncode != 0:
        raise RuntimeError(f"baseline bench in {src} failed ({res.returncode}): {res.stderr[-2000:]}")
    return {str(f["name"]): float(f["value"]) for f in json.loads(res.stdout)["figures"]}


async def main(args: argparse.Namespace) -> int:
    logging.basicConfig(level=getattr(logging, os.environ.get("BENCH_LOG", "WARNING")))
    report = Report("bench_slice_rate")
    report.info.update(services=args.services, pods_per_service=args.pods_per_service, nodes=args.nodes)
    phases = args.phases.split(",")
    before = "controllers over HTTP, unix socket (before)"
    if args.baseline_src:
        before = f"code in {Path(args.baseline_src).name}, same run"
    if "controller" in phases:
        rate_name = f"Services -> slices per second, {args.services} pre-existing"
        cpu_name = "Services per CPU-second of the control-plane process"
        now, now_cpu = await phase_controller(args, report, legacy=False)
        base: float | None = None
        base_cpu: float | None = None
        if args.baseline_src:
            tf = tree_figures(args, "controller")
            base, base_cpu = tf[rate_name], tf[cpu_name]
        elif args.baseline:
            base, base_cpu = await phase_controller(args, report, legacy=True)
        report.add(Figure("controller", rate_name, now, "/s", baseline=base, baseline_label=before,
                          higher_is_better=True))
        report.add(Figure("controller", cpu_name, now_cpu, "/s", baseline=base_cpu, baseline_label=before,
                          higher_is_better=True))
    if "e2e" in phases:
        e = await phase_e2e(args, report, legacy=False)
        b: dict[str, float] | None = None
        if args.baseline_src:
            tf = tree_figures(args, "e2e")
            b = {"create_rate": tf["Services created per second (client process, API)"],
                 "last": tf["first create -> last Service's slice ready"],
                 **{q: tf[f"create -> slice ready {q}"] for q in ("p50", "p99", "max")}}
        elif args.baseline:
            b = await phase_e2e(args, report, legacy=True)
        report.add(Figure("e2e", "Services created per second (client process, API)", e["create_rate"], "/s",
                          baseline=b["create_rate"] if b else None, baseline_label=before,
                          higher_is_better=True))
        report.add(Figure("e2e", "first create -> last Service's slice ready", e["last"], "s",
                          baseline=b["last"] if b else None, baseline_label=before,
                          note=f"creating them took {e['create_s']:.1f} s"))
        for q in ("p50", "p99", "max"):
            report.add(Figure("e2e", f"create -> slice ready {q}", e[q], "ms", baseline=b[q] if b else None,
                              baseline_label=before))
    print(machine_line(report.info["machine"]), file=sys.stderr)
    report.print(args.output == "json")
    return 1 if report.errors else 0


def parse(argv: list[str]) -> argparse.Namespace:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--services", type=int, default=10000)
    ap.add_argument("--pods-per-service", type=int, default=3)
    ap.add_argument("--nodes", type=int, default=3)
    ap.add_argument("--phases", default="controller,e2e")
    ap.add_argument("--store", default="sqlite", choices=["sqlite", "memory"],
                    help="the control plane's store (podnet's default: sqlite)")
    ap.add_argument("--baseline", action="store_true",
                    help="also measure each phase with the controllers over HTTP (the path before)")
    ap.add_argument("--baseline-src", default="",
                    help="instead: measure each phase also with the code of this checkout (e.g. a git "
                         "worktree of main before a change), in a subprocess of its own bench")
    ap.add_argument("--concurrency", type=int, default=64, help="create requests in flight")
    ap.add_argument("--timeout", type=float, default=300.0, help="bound for each wait (s)")
    ap.add_argument("--profile", default="", help="cProfile the controller phase into this file")
    ap.add_argument("--creator", default="", help=argparse.SUPPRESS)
    ap.add_argument("--watcher", default="", help=argparse.SUPPRESS)
    ap.add_argument("-o", "--output", default="", choices=["", "json"])
    return ap.parse_args(argv)


if __name__ == "__main__":
    a = parse(sys.argv[1:])
    if a.creator or a.watcher:
        asyncio.run(creator(a.creator, a) if a.creator else watcher(a.watcher, a))
        sys.exit(0)
    os.umask(0o077)
    sys.exit(asyncio.run(asyncio.wait_for(main(a), timeout=1800)))
