"""Real-image pods (runc) next to today's built-in pods, in one run on one cluster (root; bounded in time).

    sudo .venv/bin/python bench/bench_images.py [--quick] [-o json] [--serial 20] [--target 1000]

A pause-like image is built here (busybox-static, `sleep` as PID 1; umoci) and loaded with
`podnet image load`, so every real-image start below uses the cached image (no registry involved).
The built-in baseline is `registry.k8s.io/pause:3.9`, which runs podnet's stand-in (a Python process).

  startup   pods created one at a time, create call -> pod seen Running on a watch: p50 and p99,
            real image vs built-in (target: real p50 < 150 ms)
  memory    PSS and RSS per pod of what each pod runs (shim + container processes), real vs built-in
            (target: real <= 3 MiB)
  capacity  a Deployment of the real pause-like image scaled up in steps (default 100) to --target,
            with each node's maxPods (`podnet up --max-pods`) set to fit it; stops when a step's pods
            are not all Running within 30 s + 1.5 s per pod of the step, or MemAvailable <
            --min-free-gib, or the time limit. Each step's create->Running p99 is reported. Memory per
            pod from the drop of MemAvailable. (target: >= 1,000 Running)

The cluster lives under its own state root and name and is removed at the end, also on failure.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import shutil
import subprocess
import sys
import tempfile
import time
import traceback
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from bench_cluster import NS, PodWatch, pod
from common import PODNET, Figure, Report, mem_available_kib, p50, p99, proc_mem_kib, sh

from podnet.client.client import ApiClient
from podnet.core.config import ClusterConfig
from podnet.model.kinds import DEPLOYMENTS, PODS, Obj

BUILTIN = "registry.k8s.io/pause:3.9"
REAL = "bench.podnet.test/pause:1"
BUSYBOX = next((p for p in ("/bin/busybox", "/usr/bin/busybox") if os.path.exists(p)), "")


def build_pause_image(work: Path) -> Path:
    """An OCI layout with one image: busybox-static whose PID 1 is `sleep` (a pause-like process)."""
    layout = work / "oci"
    sh(["umoci", "init", "--layout", str(layout)])
    sh(["umoci", "new", "--image", f"{layout}:pause"])
    bundle = work / "bundle"
    sh(["umoci", "unpack", "--rootless", "--image", f"{layout}:pause", str(bundle)])
    (bundle / "rootfs" / "bin").mkdir(parents=True, exist_ok=True)
    shutil.copy2(BUSYBOX, bundle / "rootfs" / "bin" / "sleep")
    sh(["umoci", "repack", "--image", f"{layout}:pause", str(bundle)])
    sh(["umoci", "config", "--image", f"{layout}:pause", "--config.entrypoint", "/bin/sleep",
        "--config.cmd", "2147483647"])
    return layout


def deployment(name: str, image: str, replicas: int) -> Obj:
    labels = {"app": name}
    return {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": name},
            "spec": {"replicas": replicas, "selector": {"matchLabels": labels},
                     "template": {"metadata": {"labels": labels},
                                  "spec": {"terminationGracePeriodSeconds": 1,
                                           "containers": [{"name": "c", "image": image}]}}}}


def pod_processes(state_dir: Path, uid: str) -> list[int]:
    """The shim and the container process of every container of pod `uid` (from the agents' state)."""
    import json

    pids: list[int] = []
    for f in state_dir.glob(f"nodes/*/pods/{uid}/containers/*/*/pid.json"):
        if (f.parent / "exit.json").exists():
            continue
        try:
            cpid = int(json.loads(f.read_text())["pid"])
            ppid = int(Path(f"/proc/{cpid}/stat").read_text().rsplit(")", 1)[1].split()[1])
        except (OSError, ValueError, KeyError, IndexError):
            continue
        pids += [ppid, cpid]
    return pids


class Bench:
    def __init__(self, a: argparse.Namespace):
        self.a = a
        self.r = Report("images")
        self.root = Path(tempfile.mkdtemp(prefix="pnbimg"))
        self.name = f"bimg{os.getpid() % 100000}"
        self.env = dict(os.environ, PODNET_STATE_ROOT=str(self.root))
        self.t0 = time.monotonic()

    def left(self) -> float:
        return float(self.a.time_limit) - (time.monotonic() - self.t0)

    def podnet(self, *args: str, timeout: float = 300) -> str:
        return sh([*PODNET, *args], env=self.env, timeout=timeout).stdout

    async def run(self) -> None:
        layout = build_pause_image(self.root / "img")
        self.podnet("image", "load", "-i", str(layout), "--name", REAL)
        per_node = -(-self.a.target // self.a.nodes) + 20
        out = self.podnet("up", "--name", self.name, "--nodes", str(self.a.nodes),
                          "--max-pods", str(per_node))
        del out
        from podnet.images.runtimes import choose
        from podnet.images.store import ImageStore

        self.r.info["runtime"] = choose(ImageStore(self.root / "images")).describe()  # as `up` chose it
        cfg = ClusterConfig.from_json((self.root / "clusters" / self.name / "config.json").read_text())
        self.state_dir = cfg.state_dir if str(cfg.state_dir).startswith(str(self.root)) else \
            self.root / "clusters" / self.name
        os.environ["PODNET_STATE_ROOT"] = str(self.root)
        self.c = ApiClient(f"unix://{self.state_dir / 'api.sock'}", cfg.token)
        self.w = PodWatch(self.c, NS)
        await self.w.start()
        try:
            await self.startup_and_memory()
            if not self.a.skip_capacity:
                await self.capacity()
        finally:
            await self.w.stop()
            await self.c.close()

    async def serial(self, prefix: str, image: str, n: int) -> list[float]:
        times = []
        for i in range(n):
            name = f"{prefix}-{i}"
            t0 = time.time()
            await self.c.create(PODS, pod(name, {"bench": prefix}, image))
            if not await self.w.until(lambda n=name: n in self.w.running, 60):  # type: ignore[misc]
                raise RuntimeError(f"pod {name} not Running within 60s")
            times.append(self.w.running[name] - t0)
        return times

    def memory_of(self, prefix: str) -> tuple[float, float, int]:
        """Mean (PSS MiB, RSS MiB) per pod over the Running pods named prefix-*, and how many."""
        pss = rss = 0
        count = 0
        for p in self.w.pods(prefix + "-"):
            pids = pod_processes(self.state_dir, str(p["metadata"]["uid"]))
            if not pids:
                continue
            count += 1
            for pid in pids:
                r, s = proc_mem_kib(pid)
                rss += r
                pss += s
        return (pss / count / 1024, rss / count / 1024, count) if count else (float("nan"), float("nan"), 0)

    async def startup_and_memory(self) -> None:
        n = 5 if self.a.quick else self.a.serial
        await self.serial("warm-real", REAL, 1)  # first use: unpack once per machine
        await self.serial("warm-builtin", BUILTIN, 1)  # first use: the failed pull is remembered
        real = await self.serial("real", REAL, n)
        builtin = await self.serial("builtin", BUILTIN, n)
        self.r.add(Figure("startup", f"real image pod create -> Running, p50 of {n} (cached image)",
                          p50(real) * 1e3, "ms", baseline=p50(builtin) * 1e3, baseline_label="built-in pod",
                          note=f"p99 {p99(real) * 1e3:.0f} ms (built-in p99 {p99(builtin) * 1e3:.0f} ms); "
                               "target < 150 ms",
                          extra={"p99_ms": p99(real) * 1e3, "builtin_p99_ms": p99(builtin) * 1e3}))
        await asyncio.sleep(2)
        rpss, rrss, rn = self.memory_of("real")
        bpss, brss, bn = self.memory_of("builtin")
        self.r.add(Figure("memory", f"per real pause-like pod: PSS of shim + container ({rn} pods)", rpss,
                          "MiB", baseline=bpss, baseline_label="built-in pause pod",
                          note=f"RSS {rrss:.1f} MiB (built-in {brss:.1f} MiB, {bn} pods); target <= 3 MiB"))
        for prefix in ("warm-real", "warm-builtin", "real", "builtin"):
            for p in self.w.pods(prefix + "-"):
                await self.c.delete(PODS, str(p["metadata"]["name"]), NS, grace_period=0)
        await self.w.until(lambda: not self.w.pods("real-") and not self.w.pods("builtin-"), 60)

    async def capacity(self) -> None:
        step = 20 if self.a.quick else self.a.step
        cap = 40 if self.a.quick else self.a.target
        min_free = self.a.min_free_gib * 2**20
        avail0 = mem_available_kib()
        await self.c.create(DEPLOYMENTS, deployment("cap", REAL, 0))
        reached, stop, steps = 0, f"reached --target {cap}", []
        avail_at = avail0
        t_start = time.time()
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
            limit = 30 + 1.5 * step

            def done(t: int = target) -> bool:
                up = sum(1 for p in self.w.running if p.startswith("cap-"))
                return up >= t or mem_available_kib() < min_free

            ok = await self.w.until(done, limit)
            running = [p for p in self.w.running if p.startswith("cap-")]
            own = [self.w.running[p] - self.w.added[p] for p in running
                   if p in self.w.added and self.w.added[p] >= t0 - 0.5]
            steps.append({"target": target, "running": len(running), "seconds": time.time() - t0,
                          "p99_create_to_running_s": p99(own), "load1": os.getloadavg()[0],
                          "mem_available_gib": mem_available_kib() / 2**20})
            print(f"  capacity step: {len(running)}/{target} Running in {time.time() - t0:.1f}s, "
                  f"create->Running p99 {p99(own):.1f}s, MemAvailable {mem_available_kib() / 2**20:.1f} GiB",
                  file=sys.stderr, flush=True)
            if len(running) >= target:
                reached = target
                avail_at = mem_available_kib()
            if not ok or len(running) < target:
                stop = f"not all {target} pods Running within {limit:.0f}s ({len(running)} were)"
                break
        total = time.time() - t_start
        pss, rss, counted = self.memory_of("cap")
        self.r.add(Figure("capacity", f"real-image pause pods Running on this machine ({self.a.nodes} nodes)",
                          reached, "pods", higher_is_better=True,
                          note=f"stopped: {stop}; {total:.0f} s in all; target >= 1,000",
                          extra={"steps": steps}))
        per_avail = (avail0 - avail_at) / reached / 1024 if reached else float("nan")
        self.r.add(Figure("capacity", "memory per real-image pod (MemAvailable drop / pods)", per_avail,
                          "MiB",
                          note=f"PSS of shim + container {pss:.2f} MiB, RSS {rss:.1f} MiB ({counted} pods)"))
        await self.c.delete(DEPLOYMENTS, "cap", NS)

    def cleanup(self) -> None:
        subprocess.run([*PODNET, "down", "--name", self.name], env=self.env, capture_output=True, timeout=600)
        shutil.rmtree(self.root, ignore_errors=True)


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--quick", action="store_true", help="a short run: few pods")
    ap.add_argument("-o", "--output", choices=("table", "json"), default="table")
    ap.add_argument("--nodes", type=int, default=5,
                    help="nodes (each node's podCIDR is a /24: 253 pods at most per node)")
    ap.add_argument("--serial", type=int, default=20, help="pods of each kind created one at a time")
    ap.add_argument("--step", type=int, default=100, help="capacity: pods added per step")
    ap.add_argument("--target", type=int, default=1000, help="capacity: stop once this many pods Run")
    ap.add_argument("--min-free-gib", type=float, default=4.0)
    ap.add_argument("--skip-capacity", action="store_true")
    ap.add_argument("--time-limit", type=float, default=1500.0, help="seconds for the whole run")
    return ap.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    a = parse_args(argv)
    if os.geteuid() != 0:
        print("bench_images needs root", file=sys.stderr)
        return 2
    b = Bench(a)
    try:
        asyncio.run(b.run())
    except Exception as e:
        b.r.errors.append(f"{type(e).__name__}: {e}")
        traceback.print_exc()
    finally:
        b.cleanup()
    b.r.print(a.output == "json")
    return 1 if b.r.errors else 0


if __name__ == "__main__":
    sys.exit(main())
