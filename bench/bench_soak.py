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
import signal
import sys
import tempfile
import time
import traceback
import tracemalloc
from pathlib import Path

from common import PODNET, Figure, Report, proc_cmdline, proc_mem_kib, rss_parts, sh

from podnet.client.client import ApiClient, ApiError
from podnet.cluster.cgroup import ClusterCgroup
from podnet.core.config import ClusterConfig
from podnet.model.kinds import NAMESPACES, SERVICES, Obj

NS = "soak"


def service(name: str) -> Obj:
    return {"metadata": {"name": name, "labels": {"soak": "yes"}},
            "spec": {"selector": {"app": name}, "ports": [{"port": 80, "targetPort": 8080}]}}


def slope(xs: list[float], ys: list[float]) -> float:
    """Least-squares slope of ys over xs (0 when xs do not vary)."""
    n = len(xs)
    mx, my = sum(xs) / n, sum(ys) / n
    var = sum((x - mx) ** 2 for x in xs)
    return sum((x - mx) * (y - my) for x, y in zip(xs, ys, strict=True)) / var if var else 0.0


def agent_pids(cluster: str) -> list[int]:
    cg = ClusterCgroup.for_cluster(cluster)
    return sorted(pid for pid in (cg.pids() if cg is not None else [])
                  if " agent " in " ".join(proc_cmdline(pid)))


def agent_memory(cluster: str) -> tuple[list[int], int, int]:
    """(each agent's RSS KiB, RSS KiB, PSS KiB) summed over the cluster's agent processes."""
    each: list[int] = []
    rss = pss = 0
    for pid in agent_pids(cluster):
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
        self.parts: list[dict[str, int]] = []  # each sample's rss_parts summed over the agents
        # tracemalloc snapshots (--trace): after the warm-up, then at each of these cycle counts
        self.snap_at = sorted({a.cycles // 10, *a.snap_at}) if a.trace else []
        self.snaps: list[tuple[str, dict[int, tracemalloc.Snapshot]]] = []

    def sample(self, t0: float) -> None:
        each, rss, pss = agent_memory(self.name)
        parts = {"heap": 0, "arenas": 0, "anon": 0, "file": 0}
        for pid in agent_pids(self.name):
            for k, v in rss_parts(pid).items():
                parts[k] += v
        self.samples.append((self.done, time.monotonic() - t0, rss, pss))
        self.parts.append(parts)
        print(f"  {self.done:>6} cycles  {time.monotonic() - t0:7.1f}s  agents x{len(each)}: "
              f"RSS {rss / 1024:7.1f} MiB  PSS {pss / 1024:7.1f} MiB  (RSS each "
              f"{' '.join(f'{r / 1024:.1f}' for r in each)}; heap {parts['heap'] / 1024:.1f} "
              f"arenas {parts['arenas'] / 1024:.1f} anon {parts['anon'] / 1024:.1f} "
              f"file {parts['file'] / 1024:.1f})", file=sys.stderr, flush=True)
        if self.a.trace and self.snap_at and self.done >= self.snap_at[0]:
            self.snap_at.pop(0)
            self.snapshot(f"after {self.done:,} cycles")

    def snapshot(self, label: str) -> None:
        """Every agent writes a tracemalloc snapshot (SIGUSR2, agents started with PYTHONTRACEMALLOC)."""
        nodes = ClusterConfig.load(self.name).state_dir / "nodes"
        pids = agent_pids(self.name)
        before = set(nodes.glob("*/tracemalloc-*.snap"))
        for pid in pids:
            os.kill(pid, signal.SIGUSR2)
        snaps: dict[int, tracemalloc.Snapshot] = {}
        deadline = time.monotonic() + 120
        while len(snaps) < len(pids) and time.monotonic() < deadline:
            time.sleep(1.0)
            for f in set(nodes.glob("*/tracemalloc-*.snap")) - before:
                pid = int(f.name.split("-")[1])
                if pid not in snaps:
                    try:
                        snaps[pid] = tracemalloc.Snapshot.load(str(f))
                    except (EOFError, OSError, ValueError):
                        continue  # still being written
                    f.unlink()
        traced = sum(sum(st.size for st in sn.statistics("filename")) for sn in snaps.values())
        self.snaps.append((label, snaps))
        print(f"  tracemalloc {label}: {len(snaps)} agents, traced heap {traced / 2**20:.2f} MiB",
              file=sys.stderr, flush=True)

    def compare_snapshots(self) -> None:
        """What the agents' Python heap gained from each snapshot to the next, and overall."""
        if len(self.snaps) < 2:
            return
        pairs = list(zip(self.snaps, self.snaps[1:], strict=False))
        if len(self.snaps) > 2:
            pairs.append((self.snaps[0], self.snaps[-1]))
        for (first_label, first), (label, snaps) in pairs:
            self.compare(first_label, first, label, snaps)
        sys.stderr.flush()

    def compare(self, first_label: str, first: dict[int, tracemalloc.Snapshot], label: str,
                snaps: dict[int, tracemalloc.Snapshot]) -> None:
        key = "traceback" if self.a.trace > 1 else "lineno"
        total = 0
        diffs: dict[str, list[int]] = {}
        for pid, sn in snaps.items():
            if pid not in first:
                continue
            for d in sn.compare_to(first[pid], key):
                where = " < ".join(f"{fr.filename.rsplit('/site-packages/', 1)[-1].rsplit('/src/', 1)[-1]}"
                                   f":{fr.lineno}" for fr in d.traceback)
                acc = diffs.setdefault(where, [0, 0])
                acc[0] += d.size_diff
                acc[1] += d.count_diff
                total += d.size_diff
        top = sorted(diffs.items(), key=lambda kv: -abs(kv[1][0]))[:12]
        print(f"  tracemalloc {label} against {first_label}: traced heap {total / 1024:+.0f} KiB "
              f"(all agents); top lines:", file=sys.stderr)
        for where, (size, count) in top:
            print(f"    {size / 1024:+9.1f} KiB {count:+7d} blocks  {where}", file=sys.stderr)
        self.r.info.setdefault("tracemalloc", []).append(
            {"label": label, "against": first_label, "traced_diff_kib": round(total / 1024, 1),
             "top": [{"where": w, "kib": round(sz / 1024, 1), "blocks": n} for w, (sz, n) in top]})

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
            if self.a.trace:
                self.snapshot("at the end of the churn")
            end = time.monotonic() + self.a.idle
            while time.monotonic() < min(end, self.deadline):
                await asyncio.sleep(5)
                self.sample(t0)
            if self.a.trace:
                self.snapshot("at the end of the idle time")
                self.compare_snapshots()
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
        churn = [s for s in self.samples[:idle_start + 1] if s[0] >= warm[0]]
        if len(churn) >= 3:  # every sample after the warm-up, not only the two ends
            self.r.add(Figure("soak", "agents' RSS growth per 1,000 cycles after the warm-up, least squares",
                              slope([s[0] for s in churn], [s[2] for s in churn]) * 1000, "KiB",
                              note=f"{len(churn)} samples"))
        idle_s = last[1] - churn_end[1]
        if idle_s > 0:
            self.r.add(Figure("soak", f"agents' RSS growth while idle ({idle_s:.0f} s)",
                              (last[2] - churn_end[2]) / idle_s, "KiB/s",
                              note="issue 19 measured ~160 KiB/s before the fix"))
            idle = self.samples[idle_start:]
            if len(idle) >= 3:
                self.r.add(Figure("soak", "agents' RSS growth while idle, least squares",
                                  slope([s[1] for s in idle], [s[2] for s in idle]), "KiB/s",
                                  note=f"{len(idle)} samples"))
        self.r.info["samples"] = self.samples
        self.r.info["rss_parts_kib"] = self.parts


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
    ap.add_argument("--trace", type=int, default=0, metavar="FRAMES",
                    help="start the cluster with PYTHONTRACEMALLOC=FRAMES and compare the agents' "
                         "tracemalloc snapshots (after the warm-up, --snap-at, end of churn, end of idle); "
                         "slows the agents: for finding growth, not for the figures")
    ap.add_argument("--snap-at", type=int, action="append", default=[], metavar="CYCLES",
                    help="with --trace: also take a snapshot after this many cycles (repeatable)")
    ap.add_argument("-o", "--output", choices=("table", "json"), default="table")
    a = ap.parse_args(argv)
    if a.full:
        a.cycles, a.idle = max(a.cycles, 30000), max(a.idle, 120.0)
    for flag, v, lo, hi in (("--cycles", a.cycles, 10, 200000), ("--nodes", a.nodes, 1, 5),
                            ("--workers", a.workers, 1, 64), ("--background", a.background, 0, 20000),
                            ("--trace", a.trace, 0, 64)):
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
    if a.trace:  # the supervisor traces from its start; the daemons it forks go on tracing
        env["PYTHONTRACEMALLOC"] = str(a.trace)
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
