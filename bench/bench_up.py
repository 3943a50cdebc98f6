"""Benchmark: time of `podnet up --nodes N` until every node is Ready, idle memory of the cluster's
processes (sum of RSS), and time of `podnet down`.

    sudo .venv/bin/python bench/bench_up.py [--nodes 3] [--rounds 3] [--network host-gw|vxlan] [--idle 5]

Runs in a private state root (a temporary directory), under a cluster name of its own, and removes the
cluster after each round (also when a round fails).
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from podnet.cluster.cgroup import ClusterCgroup
from podnet.core import journal as jr

PODNET = [sys.executable, "-c", "from podnet.cli.main import main; raise SystemExit(main())"]


def rss_kib(pid: int) -> int:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    except (FileNotFoundError, ProcessLookupError):
        pass
    return 0


def cluster_pids(name: str, state_dir: Path) -> list[int]:
    cg = ClusterCgroup.for_cluster(name)
    if cg is not None and cg.usable and cg.pids():
        return cg.pids()
    return [int(e.attrs["pid"]) for e in jr.Journal(state_dir).entries(jr.PROCESS) if "pid" in e.attrs]


def one_round(
    name: str, nodes: int, network: str, idle: float, env: dict[str, str]
) -> tuple[float, int, int, float]:
    t0 = time.monotonic()
    r = subprocess.run(
        [*PODNET, "up", "--name", name, "--nodes", str(nodes), "--network", network],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    t_up = time.monotonic() - t0
    if r.returncode != 0:
        raise SystemExit(f"podnet up failed:\n{r.stderr}")
    time.sleep(idle)
    state_dir = Path(env["PODNET_STATE_ROOT"]) / "clusters" / name
    pids = cluster_pids(name, state_dir)
    rss = sum(rss_kib(p) for p in pids)
    t0 = time.monotonic()
    r = subprocess.run(
        [*PODNET, "down", "--name", name], env=env, capture_output=True, text=True, timeout=120
    )
    t_down = time.monotonic() - t0
    if r.returncode != 0:
        raise SystemExit(f"podnet down failed:\n{r.stderr}")
    return t_up, rss, len(pids), t_down


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--nodes", type=int, default=3)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--network", choices=("host-gw", "vxlan"), default="host-gw")
    ap.add_argument(
        "--idle", type=float, default=5.0, help="seconds to let the cluster settle before measuring"
    )
    args = ap.parse_args()
    if os.geteuid() != 0:
        print("run as root: the benchmark creates network namespaces", file=sys.stderr)
        return 2
    root = tempfile.mkdtemp(prefix="podnet-bench-")
    env = {**os.environ, "PODNET_STATE_ROOT": root}
    ups, downs, rsss = [], [], []
    try:
        for i in range(args.rounds):
            name = f"bench{os.getpid() % 10000}r{i}"
            try:
                t_up, rss, nproc, t_down = one_round(name, args.nodes, args.network, args.idle, env)
            finally:
                subprocess.run([*PODNET, "down", "--name", name], env=env, capture_output=True, timeout=120)
            ups.append(t_up)
            downs.append(t_down)
            rsss.append(rss)
            print(
                f"round {i + 1}: up {t_up:5.2f}s   idle RSS {rss / 1024:6.1f} MiB in {nproc} processes   "
                f"down {t_down:5.2f}s"
            )
    finally:
        shutil.rmtree(root, ignore_errors=True)
    print(f"\npodnet up --nodes {args.nodes} --network {args.network}, {args.rounds} round(s):")
    print(
        f"  up to all nodes Ready: median {statistics.median(ups):.2f}s  (min {min(ups):.2f}s, "
        f"max {max(ups):.2f}s)"
    )
    print(f"  idle memory (sum of RSS): median {statistics.median(rsss) / 1024:.1f} MiB")
    print(f"  down: median {statistics.median(downs):.2f}s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
