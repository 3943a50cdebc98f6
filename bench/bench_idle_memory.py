"""Idle memory of a whole cluster, process by process: daemons forked by the supervisor (today) vs every
daemon its own interpreter (before), and what each extra node costs.

    sudo .venv/bin/python bench/bench_idle_memory.py [--nodes 3] [--extra 2] [--idle 8] [-o json]

For each variant it brings up a cluster of --nodes nodes and one of --nodes + --extra nodes (one after the
other, in a private state root, under names of its own), waits until every pod (the cluster DNS) is Ready
and --idle seconds more, reads RSS, PSS and private memory (/proc/PID/smaps_rollup) of every process in the
cluster's cgroup and its sub-cgroups, names each by the cluster's journal (control plane, agent,
supervisor, shim server) or its command line (DNS server, container shim), and removes the cluster.

- `fork server` (today's `podnet up`): the supervisor imports the daemons' modules once, freezes them for
  the collector and forks the control plane and the agents from that image (cluster/forkstart.py).
- `exec` (before, the baseline in the same run): `PODNET_NO_FORKSERVER=1`, so the supervisor starts every
  daemon as `python -m podnet.cli.main ...`, each importing its modules itself.

PSS divides each shared page among the processes that map it, so the sum of PSS over the cluster counts
the interpreter and the shared modules once. Everything else on the machine that maps the same files
(other Python processes) takes its share too, so absolute figures move a little with the machine.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from common import PODNET, Figure, Report, proc_cmdline, sh

from podnet.cluster.cgroup import ClusterCgroup
from podnet.core import journal as jr

VARIANTS = {"fork server": {}, "exec": {"PODNET_NO_FORKSERVER": "1"}}


def smaps(pid: int) -> dict[str, int]:
    out: dict[str, int] = {}
    try:
        for line in Path(f"/proc/{pid}/smaps_rollup").read_text().splitlines()[1:]:
            key, _, rest = line.partition(":")
            out[key] = int(rest.split()[0])
    except (OSError, ValueError, IndexError):
        return {}
    return out


def cluster_pids(name: str) -> list[int]:
    cg = ClusterCgroup.for_cluster(name)
    if cg is None or not cg.path.exists():
        return []
    pids: list[int] = []
    for procs in cg.path.rglob("cgroup.procs"):
        try:
            pids += [int(x) for x in procs.read_text().split()]
        except (OSError, ValueError):
            continue
    return sorted(set(pids))


def kind_of(pid: int, labels: dict[int, str]) -> str:
    label = labels.get(pid, "")
    if label == "controlplane":
        return "control plane"
    if label.startswith("agent-"):
        return "node agent"
    if label == "supervisor":
        return "supervisor"
    if label.startswith("shim-server"):
        return "shim server"
    argv = " ".join(proc_cmdline(pid))
    if "shim.py" in argv:
        return "container shim"
    if "podnet.dns.server" in argv:
        return "DNS server"
    return "container"


def measure_cluster(name: str, state_root: Path, env: dict[str, str]) -> list[dict[str, Any]]:
    state_dir = state_root / "clusters" / name
    labels = {int(e.attrs["pid"]): e.name for e in jr.Journal(state_dir).entries(jr.PROCESS)
              if isinstance(e.attrs.get("pid"), int)}
    rows = []
    for pid in cluster_pids(name):
        m = smaps(pid)
        if not m:
            continue
        rows.append({"pid": pid, "kind": kind_of(pid, labels), "label": labels.get(pid, ""),
                     "rss_kib": m.get("Rss", 0), "pss_kib": m.get("Pss", 0),
                     "private_kib": m.get("Private_Clean", 0) + m.get("Private_Dirty", 0)})
    return rows


def wait_pods_ready(name: str, env: dict[str, str], timeout: float = 120.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        p = sh([*PODNET, "kubectl", "--name", name, "get", "pods", "-A", "-o", "json"], env=env, check=False,
               timeout=30)
        if p.returncode == 0:
            items = json.loads(p.stdout).get("items") or []
            ready = [any(c.get("type") == "Ready" and c.get("status") == "True"
                         for c in (i.get("status") or {}).get("conditions") or []) for i in items]
            if items and all(ready):
                return
        time.sleep(0.5)
    raise RuntimeError(f"the pods of cluster {name} were not Ready within {timeout:.0f}s")


def one(name: str, nodes: int, idle: float, state_root: Path, extra_env: dict[str, str]) -> dict[str, Any]:
    env = dict(os.environ, PODNET_STATE_ROOT=str(state_root), **extra_env)
    try:
        t0 = time.monotonic()
        sh([*PODNET, "up", "--name", name, "--nodes", str(nodes)], env=env, timeout=300)
        up_s = time.monotonic() - t0
        wait_pods_ready(name, env)
        time.sleep(idle)
        rows = measure_cluster(name, state_root, env)
    finally:
        sh([*PODNET, "down", "--name", name], env=env, check=False, timeout=120)
    return {"nodes": nodes, "up_s": up_s, "processes": rows,
            "rss_kib": sum(r["rss_kib"] for r in rows), "pss_kib": sum(r["pss_kib"] for r in rows)}


def by_kind(rows: list[dict[str, Any]]) -> dict[str, dict[str, int]]:
    out: dict[str, dict[str, int]] = {}
    for r in rows:
        k = out.setdefault(r["kind"], {"count": 0, "rss_kib": 0, "pss_kib": 0, "private_kib": 0})
        k["count"] += 1
        for f in ("rss_kib", "pss_kib", "private_kib"):
            k[f] += r[f]
    return out


def print_table(variant: str, res: dict[str, Any]) -> None:
    print(f"\n{variant}, {res['nodes']} nodes (podnet up {res['up_s']:.1f}s): per process, MiB",
          file=sys.stderr)
    print(f"  {'kind':16s} {'label':22s} {'RSS':>7s} {'PSS':>7s} {'private':>8s}", file=sys.stderr)
    for r in sorted(res["processes"], key=lambda r: (r["kind"], r["label"])):
        label = r["label"][:22]
        print(f"  {r['kind']:16s} {label:22s} {r['rss_kib'] / 1024:7.1f} {r['pss_kib'] / 1024:7.1f} "
              f"{r['private_kib'] / 1024:8.1f}", file=sys.stderr)
    print(f"  {'total':39s} {res['rss_kib'] / 1024:7.1f} {res['pss_kib'] / 1024:7.1f}", file=sys.stderr)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--nodes", type=int, default=3)
    ap.add_argument("--extra", type=int, default=2, help="extra nodes for the per-node cost (0: skip)")
    ap.add_argument("--idle", type=float, default=8.0, help="seconds idle after the pods are Ready")
    ap.add_argument("--variants", default=",".join(VARIANTS), help="fork server,exec")
    ap.add_argument("-o", "--output", choices=("table", "json"), default="table")
    a = ap.parse_args(argv)
    if os.geteuid() != 0:
        ap.error("needs root: it brings up clusters")
    if not 1 <= a.nodes <= 20 or not 0 <= a.extra <= 10:
        ap.error("--nodes must be 1-20 and --extra 0-10")
    variants = [v.strip() for v in a.variants.split(",") if v.strip()]
    if not variants or any(v not in VARIANTS for v in variants):
        ap.error(f"--variants: choose from {', '.join(VARIANTS)}")
    report = Report(f"idle cluster memory, {a.nodes} nodes (+{a.extra}): fork server vs exec")
    root = Path(tempfile.mkdtemp(prefix="podnet-bench-idlemem-"))
    results: dict[str, dict[str, Any]] = {}
    try:
        for i, v in enumerate(variants):
            sizes = [a.nodes] + ([a.nodes + a.extra] if a.extra else [])
            results[v] = {}
            for n in sizes:
                try:
                    res = one(f"bim{os.getpid() % 1000}{i}n{n}", n, a.idle, root, VARIANTS[v])
                except (RuntimeError, OSError) as e:
                    report.errors.append(f"{v}, {n} nodes: {e}")
                    continue
                res["by_kind"] = by_kind(res["processes"])
                results[v][str(n)] = res
                print_table(v, res)
    finally:
        shutil.rmtree(root, ignore_errors=True)
    report.info["results"] = results
    new = results.get("fork server", {})
    old = results.get("exec", {})
    base, big = str(a.nodes), str(a.nodes + a.extra)
    if base in new:
        kinds = ", ".join(f"{k} {v['count']}x {v['pss_kib'] / 1024:.1f}"
                          for k, v in sorted(new[base]["by_kind"].items()))
        for field, what in (("pss_kib", "PSS"), ("rss_kib", "RSS")):
            before = old[base][field] / 1024 if base in old else None
            report.add(Figure("memory", f"idle {a.nodes}-node cluster, sum of {what}",
                              new[base][field] / 1024, "MiB", before, "exec'd daemons, same run",
                              note=f"PSS MiB by kind: {kinds}" if what == "PSS" else ""))
        if big in new:
            per = (new[big]["pss_kib"] - new[base]["pss_kib"]) / a.extra / 1024
            per_old = ((old[big]["pss_kib"] - old[base]["pss_kib"]) / a.extra / 1024
                       if big in old and base in old else None)
            report.add(Figure("memory", f"each extra node, PSS ({a.nodes} -> {a.nodes + a.extra} nodes)", per,
                              "MiB", per_old, "exec'd daemons, same run"))
    report.print(a.output == "json")
    return 1 if report.errors else 0


if __name__ == "__main__":
    sys.exit(main())
