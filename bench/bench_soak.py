"""Soak benchmark: node agent memory over many Service create/patch/delete cycles, then idle.

Brings up its own cluster (private state root, unique name), keeps `--background` Services in place
(so each proxy sync has a real ruleset to work on), then runs `--cycles` cycles of "create a Service
(with a selector: the EndpointSlice controller follows), patch its labels, delete it" through the
API with `--workers` cycles in flight, sampling the agents' RSS/PSS (every agent process of the
cluster's cgroup) every `--sample-every` cycles, then idles `--idle` seconds sampling every 5 s.

Flat memory means: the agents' memory at the end is within a few MiB of the first sample taken
after the warm-up (10 % of the cycles), and idle growth is ~0 KiB/s. The baseline of each ratio is
the same run's first sample.

    sudo .venv/bin/python bench/bench_soak.py                 # 3,000 cycles (~2 min)
    sudo .venv/bin/python bench/bench_soak.py --full          # 30,000 cycles, as issue 19 asks
"""

from __future__ import annotations

import argparse
import asyncio
import os
import shutil
import sys
import tempfile
import time
import traceback
from pathlib import Path

from common import PODNET, Figure, Report, proc_cmdline, proc_mem_kib, sh

from podnet.client.client import ApiClient, ApiError
from podnet.cluster.cgroup import ClusterCgroup
from podnet.core.config import ClusterConfig
from podnet.model.kinds import NAMESPACES, SERVICES, Obj

NS = "soak"


def service(name: str) -> Obj:
    return {"metadata": {"name": name, "labels": {"soak": "yes"}},
            "spec": {"selector": {"app": name}, "ports": [{"port": 80, "targetPort": 8080}]}}


def agent_memory(cluster: str) -> tuple[list[int], int, int]:
    """(each agent's RSS KiB, RSS KiB, PSS KiB) summed over the cluster's agent processes."""
    cg = ClusterCgroup.for_cluster(cluster)
    each: list[int] = []
    rss = pss = 0
    for pid in cg.pids() if cg is not None else []:
        if " agent " in " ".join(proc_cmdline(pid)):
            r, p = proc_mem_kib(pid)
            each.append(r)
            rss, pss = rss + r, pss + p
    return each, rss, pss


class Soak:
    def __init__(self, a: argparse.Namespace, report: Report):
        self.a = a
        self.r = report
        self.name = f"soak{os.getpid() % 100000}"
        self.samples: list[tuple[int, float, int, int]] = []  # (cycles done, t, RSS KiB, PSS KiB)
        self.done = 0
        self.errors = 0
        self.deadline = time.monotonic() + a.time_limit

    def sample(self, t0: float) -> None:
        each, rss, pss = agent_memory(self.name)
        self.samples.append((self.done, time.monotonic() - t0, rss, pss))
        print(f"  {self.done:>6} cycles  {time.monotonic() - t0:7.1f}s  agents x{len(each)}: "
              f"RSS {rss / 1024:7.1f} MiB  PSS {pss / 1024:7.1f} MiB  (RSS each "
              f"{' '.join(f'{r / 1024:.1f}' for r in each)})", file=sys.stderr, flush=True)

    async def churn(self, c: ApiClient, worker: int, t0: float) -> None:
        i = worker
        while i < self.a.cycles and time.monotonic() < self.deadline:
            name = f"c{worker}-{i % 7}"
            try:
                await c.create(SERVICES, service(name), NS)
                await c.patch(SERVICES, name, {"metadata": {"labels": {"cycle": str(i)}}}, NS)
                await c.delete(SERVICES, name, NS)
            except ApiError as e:
                self.errors += 1
                if self.errors <= 5:
                    print(f"  cycle {i}: {e}", file=sys.stderr)
            self.done += 1
            if self.done % self.a.sample_every == 0:
                self.sample(t0)
            i += self.a.workers

    async def run(self) -> None:
        cfg = ClusterConfig.load(self.name)
        c = ApiClient(f"unix://{cfg.api_socket}", token=cfg.token, timeout=60)
        try:
            await c.create(NAMESPACES, {"metadata": {"name": NS}})
            sem = asyncio.Semaphore(16)

            async def bg(i: int) -> None:
                async with sem:
                    await c.create(SERVICES, service(f"bg-{i}"), NS)
            await asyncio.gather(*(bg(i) for i in range(self.a.background)))
            await asyncio.sleep(5)
            t0 = time.monotonic()
            self.sample(t0)
            await asyncio.gather(*(self.churn(c, w, t0) for w in range(self.a.workers)))
            churn_s = time.monotonic() - t0
            self.sample(t0)
            idle_start = len(self.samples) - 1
            end = time.monotonic() + self.a.idle
            while time.monotonic() < min(end, self.deadline):
                await asyncio.sleep(5)
                self.sample(t0)
            self.report(churn_s, idle_start)
        finally:
            await c.close()

    def report(self, churn_s: float, idle_start: int) -> None:
        warm = next((s for s in self.samples if s[0] >= self.a.cycles // 10), self.samples[0])
        churn_end = self.samples[idle_start]
        last = self.samples[-1]
        per_k = (churn_end[2] - warm[2]) / max(1, (churn_end[0] - warm[0])) * 1000
        self.r.add(Figure("soak", f"agents' RSS after {churn_end[0]:,} cycles (sum, {self.a.nodes} agents)",
                          churn_end[2] / 1024, "MiB", warm[2] / 1024, f"same run after {warm[0]:,} cycles",
                          note=f"{churn_end[0] / churn_s:.0f} cycles/s, {self.errors} API errors; "
                               f"{self.a.background} background Services"))
        self.r.add(Figure("soak", "agents' PSS at the end of the churn", churn_end[3] / 1024, "MiB",
                          warm[3] / 1024, f"same run after {warm[0]:,} cycles"))
        self.r.add(Figure("soak", "agents' RSS growth per 1,000 cycles after the warm-up", per_k, "KiB",
                          note="issue 19 measured ~66,000 KiB per 1,000 cycles (3 agents) before the fix"))
        idle_s = last[1] - churn_end[1]
        if idle_s > 0:
            self.r.add(Figure("soak", f"agents' RSS growth while idle ({idle_s:.0f} s)",
                              (last[2] - churn_end[2]) / idle_s, "KiB/s",
                              note="issue 19 measured ~160 KiB/s before the fix"))
        self.r.info["samples"] = self.samples


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--cycles", type=int, default=3000, help="create/patch/delete cycles (default 3000)")
    ap.add_argument("--full", action="store_true", help="30,000 cycles and 120 s idle (the issue's soak)")
    ap.add_argument("--nodes", type=int, default=3)
    ap.add_argument("--workers", type=int, default=8, help="cycles in flight")
    ap.add_argument("--background", type=int, default=300, help="Services kept during the soak")
    ap.add_argument("--sample-every", type=int, default=0, help="cycles between samples (default cycles/20)")
    ap.add_argument("--idle", type=float, default=30.0, help="seconds of idle sampling after the churn")
    ap.add_argument("--time-limit", type=float, default=3600.0, help="seconds for the whole run")
    ap.add_argument("-o", "--output", choices=("table", "json"), default="table")
    a = ap.parse_args(argv)
    if a.full:
        a.cycles, a.idle = max(a.cycles, 30000), max(a.idle, 120.0)
    for flag, v, lo, hi in (("--cycles", a.cycles, 10, 200000), ("--nodes", a.nodes, 1, 5),
                            ("--workers", a.workers, 1, 64), ("--background", a.background, 0, 20000)):
        if not lo <= v <= hi:
            ap.error(f"{flag} {v}: must be between {lo} and {hi}")
    a.sample_every = a.sample_every or max(1, a.cycles // 20)
    return a


def main(argv: list[str] | None = None) -> int:
    a = parse_args(argv)
    if os.geteuid() != 0:
        print("run as root: the benchmark creates network namespaces", file=sys.stderr)
        return 2
    root = Path(tempfile.mkdtemp(prefix="podnet-bench-soak-"))
    os.environ["PODNET_STATE_ROOT"] = str(root)
    env = {**os.environ}
    report = Report(f"podnet agent soak ({a.cycles:,} Service cycles)")
    report.info["args"] = vars(a)
    soak = Soak(a, report)
    rc = 0
    try:
        sh([*PODNET, "up", "--name", soak.name, "--nodes", str(a.nodes), "--lb-pool", "none"], env=env,
           timeout=300)
        asyncio.run(soak.run())
    except (RuntimeError, ApiError, OSError, TimeoutError) as e:
        report.errors.append(f"{type(e).__name__}: {e}")
        rc = 1
    except Exception as e:
        traceback.print_exc()
        report.errors.append(f"{type(e).__name__}: {e} (bug in the benchmark)")
        rc = 1
    except KeyboardInterrupt:
        report.errors.append("interrupted")
        rc = 130
    finally:
        sh([*PODNET, "down", "--name", soak.name], env=env, timeout=600, check=False)
        if not list((root / "clusters").glob("*")) if (root / "clusters").exists() else True:
            shutil.rmtree(root, ignore_errors=True)
        else:
            report.errors.append(f"state left in {root} (run podnet down)")
    report.print(a.output == "json")
    return rc


if __name__ == "__main__":
    sys.exit(main())
