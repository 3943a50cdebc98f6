"""Cluster-level benchmarks on a real `podnet up` cluster (root; bounded in time).

    sudo .venv/bin/python bench/bench_cluster.py [--quick] [-o json] [--phases up,memory,...]

Phases (each bounded; the cluster is removed at the end, also on failure or Ctrl-C):
  up           `podnet up --nodes 3` to every node Ready and to the DNS pod Ready, a few rounds (p50),
               next to peers' *published* figures (k3d ~20 s, kind ~33 s, minikube ~51 s; not measured here)
  memory       sum of RSS and PSS of every process in the idle cluster's cgroup, per process kind,
               next to k3s's *published* ~500 MB idle
  startup      pod create -> Running and -> Ready: pods one by one, then a Deployment scaled 0 -> N (burst)
  throughput   iperf3 pod -> pod across nodes, direct vs via a ClusterIP (6 rounds, order alternating), ratio
  connlat      TCP connect latency pod -> ClusterIP -> pod (other node) with few Services, direct pod IP as
               the baseline; repeated after the bulk Services exist
  programming  for each size in --services (e.g. 1000,10000): grow to that many Services (in namespace
               bench-bulk, each selecting the same 3 pods), time until the last is reachable everywhere and
               the cluster's memory; then new Service -> first successful connection through its ClusterIP
               from a pod on EVERY node (and its EndpointSlice ready, on a watch); new pod + Service -> same
  capacity     on a fresh cluster: a Deployment of pause pods scaled up in steps until --max-pods,
               create->Running p99 > 30 s, pods not Running in time, or MemAvailable < --min-free-gib;
               count reached and memory per pod

Traffic flows only inside the cluster's own pod namespaces (pollers run in probe pods via nsenter);
every poll loop is bounded in count and time. The cluster lives under its own state root and name.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import shutil
import sys
import tempfile
import time
import traceback
from collections.abc import Callable
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from common import (
    PODNET,
    Figure,
    Report,
    mem_available_kib,
    p50,
    p99,
    proc_cmdline,
    proc_mem_kib,
    sh,
)

from podnet.client.client import ApiClient, ApiError
from podnet.client.informer import Informer
from podnet.cluster.cgroup import ClusterCgroup
from podnet.core.config import ClusterConfig
from podnet.core.naming import node_netns, pod_netns
from podnet.model.kinds import DEPLOYMENTS, ENDPOINTSLICES, NAMESPACES, PODS, SERVICES, Obj

NS = "default"
BULK_NS = "bench-bulk"  # the bulk Services live apart: their env vars would not fit in a pod's environment
PAUSE = "registry.k8s.io/pause:3.9"
AGNHOST = "registry.k8s.io/e2e-test-images/agnhost:2.53"
BUSYBOX = "docker.io/library/busybox:1.36"
PHASES = ("up", "memory", "startup", "throughput", "connlat", "programming", "capacity")
PUBLISHED_UP = {"k3d": 20.0, "kind": 33.0, "minikube": 51.0}
K3S_IDLE_MIB = 500.0

# Runs inside a pod's network namespace; one JSON command per stdin line, one JSON answer per line.
# Runs inside a pod's or a node's network namespace; one JSON command per stdin line, one JSON
# answer per line. "wait" starts a fresh non-blocking connect every 2 ms (each given up after
# 0.1 s, before the kernel's first SYN retransmission at 1 s), so a connection started just after
# the rules arrive succeeds at once: a single blocking connect with a timeout would add up to that
# timeout when the first SYNs are dropped (an address of the service CIDR no rule knows yet is
# dropped). At most 64 attempts in flight, 30,000 in all.
POLLER = r"""
import errno, json, selectors, socket, sys, time
def wait(ip, port, limit):
    sel = selectors.DefaultSelector()
    end = time.monotonic() + min(float(limit), 60.0)
    tries, ok, nxt, t = 0, False, 0.0, 0.0
    try:
        while time.monotonic() < end and not ok:
            now = time.monotonic()
            if now >= nxt and tries < 30000 and len(sel.get_map()) < 64:
                s = socket.socket()
                s.setblocking(False)
                tries += 1
                err = s.connect_ex((ip, port))
                if err == 0:
                    ok, t = True, time.time()
                    s.close()
                    break
                if err in (errno.EINPROGRESS, errno.EALREADY):
                    sel.register(s, selectors.EVENT_WRITE, now + 0.1)
                else:
                    s.close()
                nxt = now + 0.002
            for key, _ in sel.select(timeout=max(0.0, min(0.002, nxt - time.monotonic()))):
                s = key.fileobj
                if s.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR) == 0 and not ok:
                    ok, t = True, time.time()
                sel.unregister(s)
                s.close()
            now = time.monotonic()
            for key in list(sel.get_map().values()):
                if key.data < now:
                    sel.unregister(key.fileobj)
                    key.fileobj.close()
    finally:
        for key in list(sel.get_map().values()):
            key.fileobj.close()
        sel.close()
    return {"ok": ok, "t": t if ok else time.time(), "tries": tries}
for line in sys.stdin:
    cmd = json.loads(line)
    if cmd["op"] == "wait":
        out = wait(cmd["ip"], cmd["port"], cmd["limit"])
    else:
        lat = []
        for _ in range(min(int(cmd["n"]), 5000)):
            s = socket.socket()
            s.settimeout(1.0)
            t0 = time.perf_counter()
            try:
                s.connect((cmd["ip"], cmd["port"]))
                lat.append(time.perf_counter() - t0)
            except OSError:
                pass
            finally:
                s.close()
        out = {"lat": lat}
    print(json.dumps(out), flush=True)
"""


def listen_drops(netns: str) -> int:
    """TcpExt ListenDrops of a network namespace: SYNs dropped because a listener's queue was full."""
    argv = ["nsenter", f"--net=/run/netns/{netns}", "--", "cat", "/proc/net/netstat"]
    p = sh(argv, check=False, timeout=10)
    lines = [ln.split() for ln in p.stdout.splitlines() if ln.startswith("TcpExt:")]
    if len(lines) >= 2 and "ListenDrops" in lines[0]:
        return int(lines[1][lines[0].index("ListenDrops")])
    return 0


# ---- objects ------------------------------------------------------------------------------------
def pod(
    name: str,
    labels: dict[str, str],
    image: str,
    *,
    node: str = "",
    args: list[str] | None = None,
    command: list[str] | None = None,
) -> Obj:
    c: Obj = {"name": "c", "image": image}
    if args:
        c["args"] = args
    if command:
        c["command"] = command
    spec: Obj = {"containers": [c], "terminationGracePeriodSeconds": 1}
    if node:
        spec["nodeName"] = node
    return {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": name, "labels": labels}, "spec": spec}


def netexec_pod(name: str, labels: dict[str, str], node: str = "", probe: bool = False) -> Obj:
    """agnhost netexec on :8080; with `probe`, Ready only once it answers HTTP (checked every second)."""
    p = pod(name, labels, AGNHOST, node=node, args=["netexec", "--http-port=8080"])
    if probe:
        p["spec"]["containers"][0]["readinessProbe"] = {
            "httpGet": {"path": "/healthz", "port": 8080},
            "periodSeconds": 1,
            "timeoutSeconds": 1,
        }
    return p


def service(name: str, selector: dict[str, str], port: int, target: int) -> Obj:
    return {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": {"name": name},
        "spec": {"selector": selector, "ports": [{"port": port, "targetPort": target, "protocol": "TCP"}]},
    }


def bench_slice(svc: str, pods: list[tuple[str, str, str]], target: int) -> Obj:
    """The EndpointSlice of a selector-less Service, written by the bench (--bulk-slices direct):
    one ready endpoint per (pod name, pod IP, node)."""
    return {
        "apiVersion": "discovery.k8s.io/v1",
        "kind": "EndpointSlice",
        "metadata": {"name": f"{svc}-bench", "labels": {"kubernetes.io/service-name": svc,
                                                          "endpointslice.kubernetes.io/managed-by": "bench"}},
        "addressType": "IPv4",
        "ports": [{"name": "", "port": target, "protocol": "TCP"}],
        "endpoints": [{"addresses": [ip], "nodeName": node, "conditions": {"ready": True},
                       "targetRef": {"kind": "Pod", "namespace": BULK_NS, "name": name}}
                      for name, ip, node in pods],
    }


def pause_deployment(name: str, replicas: int) -> Obj:
    labels = {"app": name}
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": name},
        "spec": {
            "replicas": replicas,
            "selector": {"matchLabels": labels},
            "template": {
                "metadata": {"labels": labels},
                "spec": {
                    "terminationGracePeriodSeconds": 1,
                    "containers": [{"name": "pause", "image": PAUSE}],
                },
            },
        },
    }


def is_ready(p: Obj) -> bool:
    return any(
        c.get("type") == "Ready" and c.get("status") == "True"
        for c in (p.get("status") or {}).get("conditions") or []
    )


# ---- watching pods --------------------------------------------------------------------------------
class PodWatch:
    """Wall-clock times at which each pod (by name) was first seen, seen Running, seen Ready, deleted."""

    def __init__(self, client: ApiClient, namespace: str | None):
        self.inf = Informer(client, PODS, namespace)
        self.inf.add_handler(self._on)
        self.added: dict[str, float] = {}
        self.running: dict[str, float] = {}
        self.ready: dict[str, float] = {}
        self.changed = asyncio.Event()

    def _on(self, etype: str, obj: Obj, old: Obj | None) -> None:
        now = time.time()
        name = str(obj["metadata"]["name"])
        if etype == "DELETED":
            for d in (self.added, self.running, self.ready):
                d.pop(name, None)
        else:
            self.added.setdefault(name, now)
            if (obj.get("status") or {}).get("phase") == "Running":
                self.running.setdefault(name, now)
            if is_ready(obj):
                self.ready.setdefault(name, now)
        self.changed.set()

    async def start(self) -> None:
        self.inf.start()
        await asyncio.wait_for(self.inf.synced.wait(), 30)

    async def stop(self) -> None:
        await self.inf.stop()

    def pods(self, prefix: str = "") -> list[Obj]:
        return [p for p in self.inf.list() if str(p["metadata"]["name"]).startswith(prefix)]

    async def until(self, pred: Callable[[], bool], timeout: float) -> bool:
        end = time.monotonic() + timeout
        while not pred():
            left = end - time.monotonic()
            if left <= 0:
                return False
            self.changed.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self.changed.wait(), min(left, 0.5))
        return True


# ---- pollers inside probe pods ----------------------------------------------------------------------
class Poller:
    def __init__(self, node: str, netns: str):
        self.node = node
        self.netns = netns
        self.proc: asyncio.subprocess.Process | None = None

    async def start(self) -> None:
        self.proc = await asyncio.create_subprocess_exec(
            "nsenter",
            f"--net=/run/netns/{self.netns}",
            "--",
            sys.executable,
            "-c",
            POLLER,
            stdin=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.PIPE,
        )

    async def ask(self, cmd: dict[str, Any], timeout: float) -> dict[str, Any]:
        assert self.proc and self.proc.stdin and self.proc.stdout
        self.proc.stdin.write((json.dumps(cmd) + "\n").encode())
        await self.proc.stdin.drain()
        line = await asyncio.wait_for(self.proc.stdout.readline(), timeout)
        if not line:
            raise RuntimeError(f"poller on {self.node} exited")
        res: dict[str, Any] = json.loads(line)
        return res

    async def wait_connect(self, ip: str, port: int, limit: float) -> dict[str, Any]:
        return await self.ask({"op": "wait", "ip": ip, "port": port, "limit": limit}, limit + 10)

    async def latencies(self, ip: str, port: int, n: int) -> list[float]:
        res = await self.ask({"op": "lat", "ip": ip, "port": port, "n": n}, 5 + n * 1.1)
        return [float(x) for x in res["lat"]]

    async def close(self) -> None:
        if self.proc is None:
            return
        if self.proc.stdin:
            self.proc.stdin.close()
        try:
            await asyncio.wait_for(self.proc.wait(), 5)
        except TimeoutError:
            self.proc.kill()
            await self.proc.wait()


# ---- the benchmark ----------------------------------------------------------------------------------
class Bench:
    def __init__(self, args: argparse.Namespace, root: Path, report: Report):
        self.a = args
        self.root = root
        self.r = report
        self.env = {**os.environ, "PODNET_STATE_ROOT": str(root)}
        self.prefix = f"jb{os.getpid() % 100000}"
        self.name = ""  # the cluster kept for the phases after `up`
        self.made: list[str] = []  # every cluster name ever brought up (all are removed at the end)
        self.deadline = time.monotonic() + args.time_limit
        self.client: ApiClient | None = None
        self.watch: PodWatch | None = None
        self.nodes: list[str] = []
        self.pollers: dict[str, Poller] = {}
        self.node_pollers: dict[str, Poller] = {}  # in the nodes' own namespaces (--probe-from node)
        self.ips: dict[str, str] = {}

    # -- helpers --
    def left(self) -> float:
        return float(self.deadline - time.monotonic())

    def want(self, phase: str, need: float = 30) -> bool:
        if phase not in self.a.phases:
            return False
        if self.left() < need:
            self.r.errors.append(f"phase {phase} skipped: time limit ({self.a.time_limit:.0f}s) nearly used")
            return False
        print(f"== {phase} (time left {self.left():.0f}s)", file=sys.stderr, flush=True)
        return True

    @property
    def c(self) -> ApiClient:
        assert self.client is not None
        return self.client

    @property
    def w(self) -> PodWatch:
        assert self.watch is not None
        return self.watch

    def podnet(self, *args: str, timeout: float = 300) -> None:
        sh([*PODNET, *args], env=self.env, timeout=timeout)

    def down(self, name: str) -> None:
        sh([*PODNET, "down", "--name", name], env=self.env, timeout=600, check=False)

    async def connect(self, name: str) -> None:
        cfg = ClusterConfig.load(name)
        self.client = ApiClient(f"unix://{cfg.api_socket}", token=cfg.token, timeout=60)
        self.watch = PodWatch(self.client, None)  # every namespace; the bench's pod names are unique
        await self.watch.start()
        nodes = await self.c.request("GET", "/api/v1/nodes")
        self.nodes = sorted(str(n["metadata"]["name"]) for n in nodes["items"])

    async def dns_ready(self, timeout: float) -> bool:
        end = time.monotonic() + timeout
        while time.monotonic() < end:
            pods = await self.c.list(PODS, "kube-system", label_selector="k8s-app=kube-dns")
            if any(is_ready(p) for p in pods.get("items") or []):
                return True
            await asyncio.sleep(0.05)
        return False

    async def create_ready(self, objs: list[Obj], timeout: float = 60, ns: str = NS) -> None:
        for o in objs:
            await self.c.create(PODS, o, ns)
        names = [str(o["metadata"]["name"]) for o in objs]
        if not await self.w.until(lambda: all(n in self.w.ready for n in names), timeout):
            raise RuntimeError(
                f"pods not Ready within {timeout:.0f}s: "
                + ", ".join(n for n in names if n not in self.w.ready)
            )
        for o in objs:
            n = str(o["metadata"]["name"])
            self.ips[n] = str((await self.c.get(PODS, n, ns))["status"]["podIP"])

    async def pod_uid(self, name: str) -> str:
        return str((await self.c.get(PODS, name, NS))["metadata"]["uid"])

    async def count_services(self) -> int:
        return len((await self.c.list(SERVICES)).get("items") or [])

    # -- phase: up (and memory) --
    async def phase_up(self) -> None:
        rounds = 1 if self.a.quick or "up" not in self.a.phases else self.a.up_rounds
        ups, dns = [], []
        for i in range(rounds):
            name = f"{self.prefix}u{i}"
            self.made.append(name)
            t0 = time.monotonic()
            self.podnet("up", "--name", name, "--nodes", str(self.a.nodes), timeout=300)
            t_up = time.monotonic() - t0
            await self.connect(name)
            if not await self.dns_ready(120):
                raise RuntimeError("the DNS pod was not Ready within 120s of `podnet up` returning")
            t_dns = time.monotonic() - t0
            ups.append(t_up)
            dns.append(t_dns)
            print(f"  round {i + 1}: nodes Ready {t_up:.2f}s, DNS pod Ready {t_dns:.2f}s", file=sys.stderr)
            if i < rounds - 1:
                await self.disconnect()
                self.down(name)
        self.name = self.made[-1]
        if "up" not in self.a.phases:
            return
        others = ", ".join(f"{k} ~{v:.0f} s" for k, v in PUBLISHED_UP.items())
        self.r.add(
            Figure(
                "up",
                f"podnet up --nodes {self.a.nodes} -> all nodes Ready (p50 of {rounds})",
                p50(ups),
                "s",
                PUBLISHED_UP["k3d"],
                "k3d, published",
                note=f"published: {others}",
                extra={"rounds": ups},
            )
        )
        self.r.add(
            Figure(
                "up",
                f"podnet up --nodes {self.a.nodes} -> DNS pod Ready (p50 of {rounds})",
                p50(dns),
                "s",
                PUBLISHED_UP["kind"],
                "kind, published",
                extra={"rounds": dns},
            )
        )

    async def disconnect(self) -> None:
        for p in [*self.pollers.values(), *self.node_pollers.values()]:
            await p.close()
        self.pollers.clear()
        self.node_pollers.clear()
        if self.watch is not None:
            await self.watch.stop()
            self.watch = None
        if self.client is not None:
            await self.client.close()
            self.client = None

    def cluster_memory(self) -> dict[str, tuple[int, int, int]]:
        """Per process kind: (count, RSS KiB, PSS KiB) over the cluster cgroup's processes."""
        cg = ClusterCgroup.for_cluster(self.name)
        pids = cg.pids() if cg is not None else []
        kinds: dict[str, tuple[int, int, int]] = {}
        for pid in pids:
            argv = " ".join(proc_cmdline(pid))
            # the daemons forked by the supervisor carry their own argv as a title ("podnet agent ...")
            if "controlplane" in argv:
                kind = "control plane"
            elif " agent " in argv:
                kind = "node agents"
            elif " supervise " in argv:
                kind = "supervisor"
            elif "shim.py" in argv:
                kind = "container shims"
            elif "podnet.dns.server" in argv:
                kind = "DNS server"
            else:
                kind = "containers (other)"
            rss, pss = proc_mem_kib(pid)
            n, r, p = kinds.get(kind, (0, 0, 0))
            kinds[kind] = (n + 1, r + rss, p + pss)
        return kinds

    def agent_memory(self) -> list[tuple[int, int]]:
        """(RSS KiB, PSS KiB) of each node agent process."""
        cg = ClusterCgroup.for_cluster(self.name)
        pids = cg.pids() if cg is not None else []
        return [proc_mem_kib(pid) for pid in pids if " agent " in " ".join(proc_cmdline(pid))]

    async def phase_memory(self) -> None:
        await asyncio.sleep(self.a.idle)
        kinds = self.cluster_memory()
        if not kinds:
            self.r.errors.append("memory: the cluster has no cgroup with processes on this machine")
            return
        rss = sum(v[1] for v in kinds.values()) / 1024
        pss = sum(v[2] for v in kinds.values()) / 1024
        nproc = sum(v[0] for v in kinds.values())
        per = "; ".join(f"{k} x{n}: {r / 1024:.0f}/{p / 1024:.0f}" for k, (n, r, p) in sorted(kinds.items()))
        self.r.add(
            Figure(
                "memory",
                f"idle {self.a.nodes}-node cluster, sum of RSS ({nproc} processes)",
                rss,
                "MiB",
                K3S_IDLE_MIB,
                "k3s, published",
                note=f"RSS/PSS MiB: {per}",
                extra={k: {"count": n, "rss_kib": r, "pss_kib": p} for k, (n, r, p) in kinds.items()},
            )
        )
        self.r.add(
            Figure(
                "memory",
                "idle cluster, sum of PSS (shared pages counted once)",
                pss,
                "MiB",
                K3S_IDLE_MIB,
                "k3s, published",
            )
        )

    # -- phase: pod startup --
    async def phase_startup(self) -> None:
        n_serial = 5 if self.a.quick else self.a.serial_pods
        run, rdy = [], []
        for i in range(n_serial):
            name = f"serial-{i}"
            t0 = time.time()
            await self.c.create(PODS, pod(name, {"bench": "serial"}, PAUSE))
            if not await self.w.until(lambda n=name: n in self.w.ready, 60):  # type: ignore[misc]
                raise RuntimeError(f"pod {name} not Ready within 60s")
            run.append(self.w.running[name] - t0)
            rdy.append(self.w.ready[name] - t0)
        for i in range(n_serial):
            await self.c.delete(PODS, f"serial-{i}", NS, grace_period=0)
        self.r.add(
            Figure(
                "startup",
                f"pod create -> Running, one by one (p50 of {n_serial})",
                p50(run) * 1e3,
                "ms",
                note=f"p99 {p99(run) * 1e3:.0f} ms",
                extra={"p99_ms": p99(run) * 1e3},
            )
        )
        self.r.add(
            Figure(
                "startup",
                f"pod create -> Ready, one by one (p50 of {n_serial})",
                p50(rdy) * 1e3,
                "ms",
                note=f"p99 {p99(rdy) * 1e3:.0f} ms",
                extra={"p99_ms": p99(rdy) * 1e3},
            )
        )

        n = 20 if self.a.quick else self.a.burst_pods
        await self.c.create(DEPLOYMENTS, pause_deployment("burst", 0))
        t0 = time.time()
        await self.c.patch(DEPLOYMENTS, "burst", {"spec": {"replicas": n}}, NS)
        ok = await self.w.until(
            lambda: sum(1 for p in self.w.ready if p.startswith("burst-")) >= n, max(60.0, n * 1.0)
        )
        names = [p for p in self.w.ready if p.startswith("burst-")]
        if not ok:
            self.r.errors.append(f"startup burst: only {len(names)}/{n} pods Ready in time")
        run = [self.w.running[p] - t0 for p in names if p in self.w.running]
        rdy = [self.w.ready[p] - t0 for p in names]
        own = [
            self.w.running[p] - self.w.added[p] for p in names if p in self.w.running and p in self.w.added
        ]
        self.r.add(
            Figure(
                "startup",
                f"burst: Deployment 0 -> {n}, scale -> pod Running p50",
                p50(run),
                "s",
                note=f"p99 {p99(run):.2f} s; all {len(names)} Ready after {max(rdy, default=0):.1f} s",
                extra={"p99_s": p99(run), "all_ready_s": max(rdy, default=0)},
            )
        )
        self.r.add(
            Figure(
                "startup",
                f"burst: Deployment 0 -> {n}, scale -> pod Ready p50",
                p50(rdy),
                "s",
                note=f"p99 {p99(rdy):.2f} s",
                extra={"p99_s": p99(rdy)},
            )
        )
        self.r.add(
            Figure(
                "startup",
                "burst: pod object created -> Running p50",
                p50(own),
                "s",
                note=f"p99 {p99(own):.2f} s (from the pod's own creation, not the scale request)",
                extra={"p99_s": p99(own)},
            )
        )
        await self.c.delete(DEPLOYMENTS, "burst", NS, propagation="Background")
        if not await self.w.until(lambda: not self.w.pods("burst-") and not self.w.pods("serial-"), 120):
            self.r.errors.append("startup: burst/serial pods still present 120s after deletion")

    # -- the fixture pods the network phases share --
    async def setup_network(self) -> None:
        if self.pollers:
            return
        objs = [pod(f"probe-{i}", {"bench": "probe"}, PAUSE, node=n) for i, n in enumerate(self.nodes)]
        objs.append(netexec_pod("lat-be", {"bench": "lat"}, node=self.nodes[0]))
        objs.append(
            pod(
                "iperf",
                {"bench": "iperf"},
                BUSYBOX,
                node=self.nodes[0],
                command=["iperf3", "-s", "-p", "5201"],
            )
        )
        await self.create_ready(objs)
        await self.c.create(SERVICES, service("lat", {"bench": "lat"}, 80, 8080))
        await self.c.create(SERVICES, service("iperf", {"bench": "iperf"}, 5201, 5201))
        for i in range(max(0, 10 - await self.count_services())):  # "few": 10 Services in the cluster
            s = await self.c.create(SERVICES, service(f"few-{i}", {"bench": "lat"}, 80, 8080))
            self.ips["svc-few"] = str(s["spec"]["clusterIP"])
        for i, n in enumerate(self.nodes):
            p = Poller(n, pod_netns(self.name, await self.pod_uid(f"probe-{i}")))
            await p.start()
            self.pollers[n] = p
        for name in ("lat", "iperf"):
            self.ips["svc-" + name] = str((await self.c.get(SERVICES, name, NS))["spec"]["clusterIP"])
        # every Service programmed on every node before anything is timed
        waits = [(80, "svc-lat"), (5201, "svc-iperf")] + ([(80, "svc-few")] if "svc-few" in self.ips else [])
        for port, key in waits:
            res = await asyncio.gather(
                *(p.wait_connect(self.ips[key], port, 30) for p in self.pollers.values())
            )
            if not all(r["ok"] for r in res):
                raise RuntimeError(f"Service {key} not reachable from every node within 30s")

    async def probes(self) -> list[Poller]:
        """Where "reachable from every node" is tested: each node's own namespace (--probe-from node,
        as a node-level process would connect) or the probe pod on each node."""
        if self.a.probe_from == "pod":
            return list(self.pollers.values())
        if not self.node_pollers:
            for n in self.nodes:
                p = Poller(n, node_netns(self.name, n))
                await p.start()
                self.node_pollers[n] = p
        return list(self.node_pollers.values())

    def client_poller(self) -> Poller:
        """The probe pod on another node than the servers (node 0)."""
        return self.pollers[self.nodes[1 % len(self.nodes)]]

    # -- phase: throughput --
    async def iperf(self, ip: str, seconds: int) -> float:
        return (await self.iperf_cost(ip, seconds))[0]

    async def iperf_cost(self, ip: str, seconds: int) -> tuple[float, float]:
        """(received Gbit/s, CPU seconds per GB of sender + receiver): the CPU cost moves far less than
        the rate when other processes take turns on the cores."""
        netns = self.client_poller().netns
        for attempt in range(3):
            p = await asyncio.create_subprocess_exec(
                "nsenter",
                f"--net=/run/netns/{netns}",
                "--",
                "iperf3",
                "-c",
                ip,
                "-p",
                "5201",
                "-t",
                str(seconds),
                *(["-A", self.a.iperf_affinity] if self.a.iperf_affinity else []),
                "-J",
                stdout=asyncio.subprocess.PIPE,
                stderr=asyncio.subprocess.PIPE,
            )
            out, _ = await asyncio.wait_for(p.communicate(), seconds + 20)
            try:
                d = json.loads(out)
                end = d["end"]
                gbps = float(end["sum_received"]["bits_per_second"]) / 1e9
                cpu = end.get("cpu_utilization_percent") or {}
                secs = float(end["sum_received"]["seconds"])
                gb = float(end["sum_received"]["bytes"]) / 1e9
                cost = (float(cpu.get("host_total", 0)) + float(cpu.get("remote_total", 0))) / 100 * secs / gb
                return gbps, cost
            except (ValueError, KeyError):
                if attempt == 2:
                    raise RuntimeError(
                        f"iperf3 to {ip} failed: {out.decode(errors='replace')[-300:]}"
                    ) from None
                await asyncio.sleep(1)  # "the server is busy" right after the previous test
        raise AssertionError("unreachable")

    async def phase_throughput(self) -> None:
        await self.setup_network()
        rounds, secs = (1, 2) if self.a.quick else (self.a.iperf_rounds, self.a.iperf_seconds)
        direct: list[float] = []
        via: list[float] = []
        costs: dict[str, list[float]] = {"direct": [], "clusterip": []}
        for i in range(rounds):
            # alternate which path goes first (ABBA...), so a drift in the machine's load hits both alike
            order = (("direct", direct), ("clusterip", via))
            for what, into in order if i % 2 == 0 else order[::-1]:
                target = self.ips["iperf" if what == "direct" else "svc-iperf"]
                rate, cost = await self.iperf_cost(target, secs)
                into.append(rate)
                costs[what].append(cost)
                await asyncio.sleep(0.5)
            print(f"  round {i + 1}: direct {direct[-1]:.2f}, ClusterIP {via[-1]:.2f} Gbit/s "
                  f"(ratio {via[-1] / direct[-1]:.3f}); iperf3 CPU per GB direct "
                  f"{costs['direct'][-1]:.3f} s, ClusterIP {costs['clusterip'][-1]:.3f} s",
                  file=sys.stderr, flush=True)
        pair_ratios = [v / d for v, d in zip(via, direct, strict=True) if d]
        q = sorted(pair_ratios)
        spread = (f"per-round ratios min {q[0]:.3f}, quartiles {q[len(q) // 4]:.3f} / "
                  f"{q[(3 * len(q)) // 4]:.3f}, max {q[-1]:.3f}") if q else "no rounds"
        self.r.add(
            Figure(
                "throughput",
                f"iperf3 CPU s per GB (sender + receiver) via a ClusterIP (median, {rounds} rounds)",
                p50(costs["clusterip"]),
                "s/GB",
                p50(costs["direct"]),
                "direct pod -> pod, same run",
                note="the work per byte; less sensitive to other processes than the rate",
                extra=costs,
            )
        )
        self.r.add(
            Figure(
                "throughput",
                f"iperf3 pod -> ClusterIP -> pod, other node (median, {rounds} alternating rounds x {secs}s)",
                p50(via),
                "Gbit/s",
                p50(direct),
                "direct pod -> pod, same run",
                higher_is_better=True,
                note=f"median of per-round ratios {p50(pair_ratios):.3f} ({spread}); target >= 0.98; "
                "kube-proxy iptables published 0.96"
                + (f"; iperf3 -A {self.a.iperf_affinity}" if self.a.iperf_affinity else ""),
                extra={"direct": direct, "clusterip": via, "round_ratios": pair_ratios},
            )
        )

    # -- phase: connection latency --
    async def conn_latency(self, label: str) -> None:
        await self.setup_network()
        n = 100 if self.a.quick else self.a.connects
        nsvc = await self.count_services()
        cp = self.client_poller()
        direct: list[float] = []
        via: list[float] = []
        server_ns = pod_netns(self.name, await self.pod_uid("lat-be"))
        drops0 = listen_drops(server_ns)
        for _ in range(2):  # alternate, so drift in the machine's load hits both alike
            direct += await cp.latencies(self.ips["lat-be"], 8080, n // 2)
            via += await cp.latencies(self.ips["svc-lat"], 80, n // 2)
        asked = n // 2 * 2
        drops = listen_drops(server_ns) - drops0
        note = (
            f"p99 {p99(via) * 1e6:.0f} us vs direct {p99(direct) * 1e6:.0f} us over {asked} connects; "
            f"connect timeouts (1 s): {asked - len(via)} via ClusterIP, {asked - len(direct)} direct; "
            f"server's ListenDrops +{drops}"
        )
        self.r.add(
            Figure(
                "connlat",
                f"TCP connect via ClusterIP, {nsvc} Services: p50",
                p50(via) * 1e6,
                "us",
                p50(direct) * 1e6,
                "direct pod IP, same run",
                note=note,
                extra={"services": nsvc, "p99_us": p99(via) * 1e6, "direct_p99_us": p99(direct) * 1e6},
            )
        )

    # -- phase: bulk services + programming latency --
    async def bulk_services(self, target: int) -> bool:
        """Grow the cluster to `target` Services; False when the last one never became reachable."""
        await self.setup_network()
        have = await self.count_services()
        todo = max(0, target - have)
        if todo == 0:
            return True
        if "bulk-be-0" not in self.ips:
            await self.c.create(
                NAMESPACES, {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": BULK_NS}}
            )
            await self.create_ready(
                [netexec_pod(f"bulk-be-{i}", {"bench": "bulk"}, node=n) for i, n in enumerate(self.nodes)],
                ns=BULK_NS,
            )
        direct = self.a.bulk_slices == "direct"
        pods = [(f"bulk-be-{i}", self.ips[f"bulk-be-{i}"], n) for i, n in enumerate(self.nodes)]
        sem = asyncio.Semaphore(16)
        last: list[tuple[str, str]] = []  # (name, ClusterIP) in the order the API answered
        min_free = self.a.min_free_gib * 2**20
        stopped = ""

        async def one(i: int) -> None:
            nonlocal stopped
            async with sem:
                if stopped:
                    return
                if i % 1000 == 0:
                    avail = mem_available_kib()
                    print(f"  bulk: {len(last)}/{todo} created in {time.monotonic() - t0:.0f}s, "
                          f"MemAvailable {avail / 2**20:.1f} GiB", file=sys.stderr, flush=True)
                    if avail < min_free or self.left() < 120:
                        stopped = (f"MemAvailable {avail / 2**20:.1f} GiB < {self.a.min_free_gib} GiB"
                                   if avail < min_free else "time limit")
                        return
                name = f"bulk-{have + i:06d}"
                svc = service(name, {"bench": "bulk"}, 80, 8080)
                if direct:  # a Service without selector; its slice written here, not by the controller
                    del svc["spec"]["selector"]
                s = await self.c.create(SERVICES, svc, BULK_NS)
                if direct:
                    await self.c.create(ENDPOINTSLICES, bench_slice(name, pods, 8080), BULK_NS)
                last.append((str(s["metadata"]["name"]), str(s["spec"]["clusterIP"])))

        limit = min(float(self.a.bulk_wait), max(60.0, todo / 20), self.left() - 60)
        t0 = time.monotonic()
        await asyncio.gather(*(one(i) for i in range(todo)))
        t_created = time.monotonic() - t0
        if stopped:
            self.r.errors.append(f"bulk: stopped creating after {len(last)} of {todo} Services: {stopped}")
            todo = len(last)
            if not last:
                return False
        t0_wall = time.time() - t_created
        name, ip = last[-1]
        slice_task = asyncio.create_task(self.wait_slice_ready(name, limit, ns=BULK_NS))
        ok = await self.wait_everywhere(ip, 80, limit)
        t_all = time.monotonic() - t0
        t_slice = await slice_task
        if not ok:
            self.r.errors.append(
                f"bulk: the last of {todo} Services was not reachable everywhere within {limit:.0f}s"
            )
        slice_note = "never" if t_slice is None else f"{t_slice - t0_wall:.1f} s"
        self.r.add(
            Figure(
                "programming",
                f"create {todo} Services through the API (16 in flight), to {have + todo}"
                + (" (+ their EndpointSlices, written by the bench)" if direct else ""),
                todo / t_created if t_created else 0.0,
                "Services/s",
                higher_is_better=True,
                note=f"created in {t_created:.1f} s; the last one's EndpointSlice ready after {slice_note}, "
                f"reachable from every node after {t_all:.1f} s" + ("" if ok else " (timed out)"),
                extra={
                    "created_s": t_created,
                    "slice_ready_s": None if t_slice is None else t_slice - t0_wall,
                    "reachable_s": t_all if ok else None,
                },
            )
        )
        kinds = self.cluster_memory()
        agents = self.agent_memory()
        per = "; ".join(f"{k} x{n}: {r / 1024:.0f}/{q / 1024:.0f}" for k, (n, r, q) in sorted(kinds.items()))
        each = ", ".join(f"{r / 1024:.0f}/{q / 1024:.0f}" for r, q in agents)
        self.r.add(
            Figure(
                "memory",
                f"cluster with {have + todo} Services (bulk just programmed), sum of RSS",
                sum(v[1] for v in kinds.values()) / 1024,
                "MiB",
                note=f"RSS/PSS MiB: {per}; each agent {each}",
                extra={k: {"count": n, "rss_kib": r, "pss_kib": q} for k, (n, r, q) in kinds.items()}
                | {"agents_rss_pss_kib": agents},
            )
        )
        self.r.add(
            Figure(
                "memory",
                f"cluster with {have + todo} Services, sum of PSS (shared pages counted once)",
                sum(v[2] for v in kinds.values()) / 1024,
                "MiB",
                note=f"node agents' PSS each: {', '.join(f'{q / 1024:.0f}' for _, q in agents)} MiB",
            )
        )
        return ok

    async def wait_slice_ready(self, svc: str, limit: float, ns: str = NS) -> float | None:
        """time.time() when Service `svc` is first seen with an EndpointSlice holding a ready endpoint.

        One list, then a watch filtered by label: polling a list would load the API server with a scan
        of every slice per poll, and slow down what is being measured."""
        sel = f"kubernetes.io/service-name={svc}"

        def ready(sl: Obj) -> bool:
            return (sl.get("metadata", {}).get("labels") or {}).get(
                "kubernetes.io/service-name"
            ) == svc and any((ep.get("conditions") or {}).get("ready") for ep in sl.get("endpoints") or [])

        async def go() -> float | None:
            lst = await self.c.list(ENDPOINTSLICES, ns, label_selector=sel)
            if any(ready(sl) for sl in lst.get("items") or []):
                return time.time()
            rv = str((lst.get("metadata") or {}).get("resourceVersion") or "")
            async for ev in self.c.watch(
                ENDPOINTSLICES, ns, resource_version=rv, label_selector=sel, timeout_seconds=int(limit) + 1
            ):
                if ev.type in ("ADDED", "MODIFIED") and ready(ev.object):
                    return time.time()
            return None

        try:
            return await asyncio.wait_for(go(), limit)
        except (TimeoutError, ApiError):
            return None

    async def wait_everywhere(self, ip: str, port: int, limit: float) -> bool:
        """Poll until a connect to ip:port succeeds from every probe pod (in rounds of at most 60 s)."""
        end = time.monotonic() + limit
        pending = await self.probes()
        while pending and time.monotonic() < end:
            left = min(60.0, end - time.monotonic())
            res = await asyncio.gather(*(p.wait_connect(ip, port, left) for p in pending))
            pending = [p for p, r in zip(pending, res, strict=True) if not r["ok"]]
        return not pending

    async def phase_programming(self, size: int) -> None:
        await self.setup_network()
        trials = 3 if self.a.quick else self.a.trials
        pod_trials = 3 if self.a.quick else self.a.pod_trials
        probes = await self.probes()
        svc_only: list[float] = []
        slice_ready: list[float] = []
        per_trial: list[dict[str, Any]] = []  # where the slow trials spent their time
        with_pod: list[float] = []
        ready_to_conn: list[float] = []
        if "prog-be" not in self.ips:
            await self.create_ready([netexec_pod("prog-be", {"bench": "prog"}, node=self.nodes[0])])
        failed = 0
        for i in range(trials):
            if failed >= 3 or self.left() < 60:
                self.r.errors.append(f"programming at {size}: stopped after {i} trials (failures or time)")
                break
            t0 = time.time()
            s = await self.c.create(SERVICES, service(f"prog-{size}-{i}", {"bench": "prog"}, 80, 8080))
            ip = str(s["spec"]["clusterIP"])
            slice_task = asyncio.create_task(self.wait_slice_ready(f"prog-{size}-{i}", 30))
            res = await asyncio.gather(*(p.wait_connect(ip, 80, 30) for p in probes))
            t_slice = await slice_task
            if t_slice is not None:
                slice_ready.append(t_slice - t0)
            per_trial.append({"slice_ms": None if t_slice is None else round((t_slice - t0) * 1e3, 1),
                              "nodes_ms": [round((float(r["t"]) - t0) * 1e3, 1) for r in res]})
            if all(r["ok"] for r in res):
                svc_only.append(max(float(r["t"]) for r in res) - t0)
            else:
                failed += 1
                self.r.errors.append(
                    f"programming: Service prog-{size}-{i} not reachable from every node in 30s"
                )
        failed = 0
        for i in range(pod_trials):
            if failed >= 3 or self.left() < 60:
                self.r.errors.append(f"programming at {size}: pod+Service stopped after {i} trials")
                break
            t0 = time.time()
            name = f"progp-{size}-{i}"
            await self.c.create(
                PODS, netexec_pod(name, {"progp": str(i)}, node=self.nodes[i % len(self.nodes)], probe=True)
            )
            s = await self.c.create(SERVICES, service(name, {"progp": str(i)}, 80, 8080))
            ip = str(s["spec"]["clusterIP"])
            res = await asyncio.gather(*(p.wait_connect(ip, 80, 45) for p in probes))
            if all(r["ok"] for r in res):
                t_conn = max(float(r["t"]) for r in res)
                with_pod.append(t_conn - t0)
                await self.w.until(lambda n=name: n in self.w.ready, 10)  # type: ignore[misc]
                if name in self.w.ready:
                    ready_to_conn.append(t_conn - self.w.ready[name])
            else:
                failed += 1
                self.r.errors.append(f"programming: pod+Service {name} not reachable from every node in 45s")
            await self.c.delete(PODS, name, NS, grace_period=0)
        nsvc = await self.count_services()
        self.r.add(
            Figure(
                "programming",
                f"new Service -> connect OK from all {len(self.nodes)} nodes, {nsvc} Services: p50",
                p50(svc_only) * 1e3,
                "ms",
                note=f"p99 {p99(svc_only) * 1e3:.0f} ms over {len(svc_only)} trials; its EndpointSlice "
                f"seen ready (on a watch) after p50 {p50(slice_ready) * 1e3:.0f} ms",
                extra={
                    "p99_ms": p99(svc_only) * 1e3,
                    "trials_ms": [x * 1e3 for x in svc_only],
                    "slice_ready_p50_ms": p50(slice_ready) * 1e3,
                    "per_trial": per_trial,
                },
            )
        )
        self.r.add(
            Figure(
                "programming",
                "new pod + Service -> connect OK from all nodes: p50",
                p50(with_pod) * 1e3,
                "ms",
                note=f"p99 {p99(with_pod) * 1e3:.0f} ms over {len(with_pod)} trials (includes pod start)",
                extra={"p99_ms": p99(with_pod) * 1e3},
            )
        )
        self.r.add(
            Figure(
                "programming",
                "pod Ready (seen on a watch) -> connect OK from all nodes: p50",
                p50(ready_to_conn) * 1e3,
                "ms",
                note=f"p99 {p99(ready_to_conn) * 1e3:.0f} ms",
                extra={"p99_ms": p99(ready_to_conn) * 1e3},
            )
        )

    # -- phase: capacity --
    async def phase_capacity(self) -> None:
        step = 10 if self.a.quick else self.a.step
        cap = 30 if self.a.quick else self.a.max_pods
        min_free = self.a.min_free_gib * 2**20
        avail0 = mem_available_kib()
        kinds0 = self.cluster_memory()
        rss0, pss0 = sum(v[1] for v in kinds0.values()), sum(v[2] for v in kinds0.values())
        await self.c.create(DEPLOYMENTS, pause_deployment("cap", 0))
        reached, stop, steps = 0, f"reached --max-pods {cap}", []
        mem_at = (avail0, rss0, pss0)
        while reached < cap:
            target = min(cap, reached + step)
            if mem_available_kib() < min_free:
                stop = f"MemAvailable below {self.a.min_free_gib} GiB"
                break
            if self.left() < 60:
                stop = "benchmark time limit"
                break
            t0 = time.time()
            await self.c.patch(DEPLOYMENTS, "cap", {"spec": {"replicas": target}}, NS)
            limit = 30 + 0.5 * step

            def done(t: int = target) -> bool:
                return (
                    sum(1 for p in self.w.running if p.startswith("cap-")) >= t
                    or mem_available_kib() < min_free
                )

            ok = await self.w.until(done, limit)
            running = [p for p in self.w.running if p.startswith("cap-")]
            own = [
                self.w.running[p] - self.w.added[p]
                for p in running
                if p in self.w.added and self.w.added[p] >= t0 - 0.5
            ]
            steps.append(
                {
                    "target": target,
                    "running": len(running),
                    "seconds": time.time() - t0,
                    "p99_create_to_running_s": p99(own),
                    "load1": os.getloadavg()[0],
                    "mem_available_gib": mem_available_kib() / 2**20,
                }
            )
            print(
                f"  capacity step: {len(running)}/{target} Running in {time.time() - t0:.1f}s, "
                f"create->Running p99 {p99(own):.1f}s, MemAvailable {mem_available_kib() / 2**20:.1f} GiB",
                file=sys.stderr,
                flush=True,
            )
            if len(running) >= target:
                reached = target
                kinds = self.cluster_memory()
                mem_at = (
                    mem_available_kib(),
                    sum(v[1] for v in kinds.values()),
                    sum(v[2] for v in kinds.values()),
                )
            if not ok or len(running) < target:
                stop = f"not all {target} pods Running within {limit:.0f}s ({len(running)} were)"
                stop += await self.why_not_running()
                break
            if own and p99(own) > 30:
                stop = f"create->Running p99 {p99(own):.1f}s > 30s"
                break
        per_avail = (avail0 - mem_at[0]) / reached / 1024 if reached else float("nan")
        per_pss = (mem_at[2] - pss0) / reached / 1024 if reached else float("nan")
        per_rss = (mem_at[1] - rss0) / reached / 1024 if reached else float("nan")
        self.r.add(
            Figure(
                "capacity",
                "pause pods Running on this machine (3 nodes)",
                reached,
                "pods",
                higher_is_better=True,
                note=f"stopped: {stop}",
                extra={"steps": steps},
            )
        )
        self.r.add(
            Figure(
                "capacity",
                "memory per pod (drop of MemAvailable / pods)",
                per_avail,
                "MiB",
                note=f"PSS {per_pss:.1f} MiB, RSS {per_rss:.1f} MiB per pod (shim + pause process)",
            )
        )

    async def why_not_running(self) -> str:
        for p in self.w.pods("cap-"):
            if (p.get("status") or {}).get("phase") == "Running":
                continue
            st = p.get("status") or {}
            name = p["metadata"]["name"]
            for cs in st.get("containerStatuses") or []:
                for state in (cs.get("state") or {}).values():
                    if state.get("reason"):
                        return f"; e.g. {name}: {state.get('reason')} {state.get('message', '')}"
            for c in st.get("conditions") or []:
                if c.get("status") == "False" and c.get("message"):
                    return f"; e.g. {name}: {c['message']}"
            return f"; e.g. {name}: phase {st.get('phase', '?')}, node {p['spec'].get('nodeName')}"
        return ""

    # -- the whole run --
    async def run(self) -> None:
        try:
            await self.phase_up()  # every other phase needs the cluster it leaves up
            if self.want("memory"):
                await self.phase_memory()
            if self.want("startup", 60):
                await self.phase_startup()
            if self.want("throughput", 40):
                await self.phase_throughput()
            if self.want("connlat"):
                await self.conn_latency("few")
            for size in [50] if self.a.quick else self.a.services:
                if not self.want("programming", 120):
                    break
                ok = await self.bulk_services(size)
                if "connlat" in self.a.phases:
                    await self.conn_latency(str(size))
                if not ok:
                    self.r.errors.append(f"programming at {size} Services skipped: the bulk never settled")
                    break
                await self.phase_programming(size)
            if self.want("capacity", 90) and self.pollers:
                # on a fresh cluster: the one above may carry thousands of Services and extra pods
                await self.disconnect()
                self.down(self.name)
                self.name = f"{self.prefix}cap"
                self.made.append(self.name)
                self.podnet("up", "--name", self.name, "--nodes", str(self.a.nodes), timeout=300)
                await self.connect(self.name)
            if "capacity" in self.a.phases and self.left() >= 90:
                await self.phase_capacity()
        finally:
            await self.disconnect()


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--quick", action="store_true", help="a short run: 1 round, few pods and trials")
    ap.add_argument("-o", "--output", choices=("table", "json"), default="table")
    ap.add_argument(
        "--phases", default=",".join(PHASES), help=f"comma-separated subset of {','.join(PHASES)}"
    )
    ap.add_argument("--nodes", type=int, default=3)
    ap.add_argument("--up-rounds", type=int, default=3)
    ap.add_argument("--idle", type=float, default=5.0, help="seconds the cluster idles before memory is read")
    ap.add_argument("--serial-pods", type=int, default=20)
    ap.add_argument("--burst-pods", type=int, default=100)
    ap.add_argument("--iperf-rounds", type=int, default=6)
    ap.add_argument("--iperf-seconds", type=int, default=5)
    ap.add_argument("--iperf-affinity", default="",
                    help="iperf3 -A N[,M]: the client on CPU N, the server on CPU M (empty: no pinning)")
    ap.add_argument("--connects", type=int, default=400)
    ap.add_argument(
        "--services",
        default="1000",
        help="Services in the cluster for programming latency: one size or several, e.g. 1000,10000",
    )
    ap.add_argument("--trials", type=int, default=20, help="programming: new-Service trials per size")
    ap.add_argument("--pod-trials", type=int, default=10,
                    help="programming: new pod + Service trials per size")
    ap.add_argument("--probe-from", choices=("node", "pod"), default="node",
                    help="programming: connect from each node's own namespace or from a probe pod on it")
    ap.add_argument("--bulk-slices", choices=("controller", "direct"), default="controller",
                    help="bulk Services: with a selector (the EndpointSlice controller writes their slices) "
                    "or without one, their slices created by the bench through the API")
    ap.add_argument("--bulk-wait", type=float, default=600.0,
                    help="seconds to wait for the last bulk Service to be reachable everywhere")
    ap.add_argument("--step", type=int, default=100, help="capacity: pods added per step")
    ap.add_argument("--max-pods", type=int, default=1000)
    ap.add_argument("--min-free-gib", type=float, default=4.0)
    ap.add_argument("--time-limit", type=float, default=1500.0, help="seconds for the whole run")
    a = ap.parse_args(argv)
    a.phases = [p.strip() for p in a.phases.split(",") if p.strip()]
    bad = [p for p in a.phases if p not in PHASES]
    if bad:
        ap.error(f"unknown phase(s) {', '.join(bad)}: choose from {', '.join(PHASES)}")
    checks = {
        "--nodes": (a.nodes, 2, 10),
        "--up-rounds": (a.up_rounds, 1, 10),
        "--serial-pods": (a.serial_pods, 1, 500),
        "--burst-pods": (a.burst_pods, 1, 500),
        "--iperf-rounds": (a.iperf_rounds, 1, 20),
        "--iperf-seconds": (a.iperf_seconds, 1, 60),
        "--connects": (a.connects, 2, 5000),
        "--trials": (a.trials, 1, 200),
        "--pod-trials": (a.pod_trials, 0, 200),
        "--step": (a.step, 1, 1000),
        "--max-pods": (a.max_pods, 1, 2000),
    }
    try:
        a.services = sorted(int(x) for x in a.services.split(",") if x.strip())
    except ValueError:
        ap.error(f"--services {a.services!r}: must be whole numbers separated by commas, e.g. 1000,10000")
    if not a.services or any(not 1 <= n <= 100_000 for n in a.services):
        ap.error(f"--services {a.services}: each must be between 1 and 100000")
    for flag, (v, lo, hi) in checks.items():
        if not lo <= v <= hi:
            ap.error(f"{flag} {v}: must be between {lo} and {hi}")
    return a


def main(argv: list[str] | None = None) -> int:
    a = parse_args(argv)
    if os.geteuid() != 0:
        print("run as root: the benchmark creates network namespaces", file=sys.stderr)
        return 2
    if shutil.which("iperf3") is None and "throughput" in a.phases:
        print("iperf3 is not installed: drop the throughput phase (--phases ...)", file=sys.stderr)
        return 2
    root = Path(tempfile.mkdtemp(prefix="podnet-bench-cluster-"))
    os.environ["PODNET_STATE_ROOT"] = str(root)  # ClusterConfig.load reads it
    report = Report("podnet cluster benchmarks" + (" (quick)" if a.quick else ""))
    report.info["args"] = {k: v for k, v in vars(a).items()}
    bench = Bench(a, root, report)
    rc = 0
    try:
        asyncio.run(bench.run())
    except (RuntimeError, ApiError, OSError, TimeoutError) as e:
        report.errors.append(f"{type(e).__name__}: {e}")
        rc = 1
    except Exception as e:  # a bug here: keep the figures so far, remove the cluster, show where
        traceback.print_exc()
        report.errors.append(f"{type(e).__name__}: {e} (bug in the benchmark; traceback on stderr)")
        rc = 1
    except KeyboardInterrupt:
        report.errors.append("interrupted")
        rc = 130
    finally:
        t0 = time.monotonic()
        for name in bench.made:
            bench.down(name)
        report.info["down_s"] = round(time.monotonic() - t0, 1)
        left = list((root / "clusters").glob("*")) if (root / "clusters").exists() else []
        if left:
            report.errors.append(f"state left in {root}: {[p.name for p in left]} (run podnet down)")
        else:
            shutil.rmtree(root, ignore_errors=True)
    report.print(a.output == "json")
    return rc


if __name__ == "__main__":
    sys.exit(main())
