"""API responsiveness while a big namespace is deleted (issue 19 item 13).

Run: .venv/bin/python bench/bench_ns_delete.py [--services 1600] [--pods 16] [--rounds 2] [-o json]
     [--src OTHER/src]   (the control plane from another source tree, e.g. a worktree of an older commit)

A control plane as `podnet controlplane` runs it (API server, SQLite store, Service allocators and
every controller, in one process; no nodes) starts in a private state root. Per round a namespace gets
`--services` Services selecting `--pods` pods (unbound: no node runs them), their EndpointSlices
and Endpoints from the controllers; then it is deleted the way `kubectl delete ns` does it, and a
prober GETs one small object (`/api/v1/namespaces/default`, over the API's unix socket) every 10 ms
until the namespace is gone. The baseline is the same prober on the same server with nothing else
going on, in the same run. Figures: the small GET's p99 and max during the deletion, and how long
the namespace took to go.
Bounded: every request has a 60 s timeout; a round waits at most 120 s for the namespace to go.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import secrets
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import aiohttp

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import Figure, Report, machine_line, p50, p99

SERVER = """
import asyncio, os, socket, sys
from podnet.core.config import ClusterConfig
from podnet.cli.cmd_daemons import serve
s = socket.socket(); s.bind(("127.0.0.1", 0)); port = s.getsockname()[1]; s.close()
cfg = ClusterConfig(name="nsdel", api_port=port, token=os.environ.pop("BENCH_API_TOKEN"), dns=False)
print(cfg.api_socket, flush=True)
asyncio.run(serve(cfg))
"""
SMALL = "/api/v1/namespaces/default"


async def probe(session: aiohttp.ClientSession, stop: asyncio.Event, out: list[float], limit: int) -> None:
    while not stop.is_set() and len(out) < limit:
        t = time.perf_counter()
        async with session.get("http://api" + SMALL) as resp:
            await resp.read()
            if resp.status != 200:
                raise RuntimeError(f"small GET answered {resp.status}")
        out.append((time.perf_counter() - t) * 1000)
        await asyncio.sleep(0.01)


async def fill(session: aiohttp.ClientSession, ns: str, services: int, pods: int) -> None:
    async def post(path: str, body: dict[str, object]) -> None:
        async with session.post("http://api" + path, json=body) as resp:
            if resp.status != 201:
                raise RuntimeError(f"POST {path}: {resp.status} {await resp.text()}")

    await post("/api/v1/namespaces", {"metadata": {"name": ns}})
    sem = asyncio.Semaphore(16)

    async def one(path: str, body: dict[str, object]) -> None:
        async with sem:
            await post(path, body)

    sel = {"app": "load"}
    await asyncio.gather(*(one(f"/api/v1/namespaces/{ns}/services",
                               {"metadata": {"name": f"s{i}"},
                                "spec": {"selector": sel, "ports": [{"port": 80, "targetPort": 8080}]}})
                           for i in range(services)))
    await asyncio.gather(*(one(f"/api/v1/namespaces/{ns}/pods",
                               {"metadata": {"name": f"p{i}", "labels": sel},
                                "spec": {"containers": [{"name": "c", "image": "pause"}]}})
                           for i in range(pods)))


async def wait_slices(session: aiohttp.ClientSession, ns: str, want: int) -> int:
    """EndpointSlices made by the controller for the namespace's Services (waits up to 120 s)."""
    have = 0
    for _ in range(240):
        async with session.get(f"http://api/apis/discovery.k8s.io/v1/namespaces/{ns}/endpointslices") as r:
            have = len((await r.json())["items"])
        if have >= want:
            break
        await asyncio.sleep(0.5)
    return have


async def delete_and_wait(session: aiohttp.ClientSession, ns: str) -> float:
    t = time.perf_counter()
    async with session.delete(f"http://api/api/v1/namespaces/{ns}") as resp:
        if resp.status != 200:
            raise RuntimeError(f"DELETE namespace {ns}: {resp.status}")
    for _ in range(1200):
        async with session.get(f"http://api/api/v1/namespaces/{ns}") as resp:
            await resp.read()
            if resp.status == 404:
                return time.perf_counter() - t
        await asyncio.sleep(0.1)
    raise RuntimeError(f"namespace {ns} still there after 120 s")


async def run(args: argparse.Namespace, report: Report) -> None:
    token = secrets.token_hex(16)
    root = Path(tempfile.mkdtemp(prefix="podnet-bench-nsdel-"))
    env = {**os.environ, "BENCH_API_TOKEN": token, "PODNET_STATE_ROOT": str(root)}
    if args.src:
        env["PYTHONPATH"] = str(Path(args.src).resolve())
    proc = subprocess.Popen([sys.executable, "-c", SERVER], env=env, stdout=subprocess.PIPE, text=True,
                            stderr=subprocess.DEVNULL)
    try:
        assert proc.stdout is not None
        sock = proc.stdout.readline().strip()
        for _ in range(200):
            if Path(sock).exists():
                break
            time.sleep(0.05)
        conn = aiohttp.UnixConnector(path=sock, limit=32)
        headers = {"Authorization": f"Bearer {token}"}
        async with aiohttp.ClientSession(connector=conn, headers=headers,
                                         timeout=aiohttp.ClientTimeout(total=60)) as session:
            probe_conn = aiohttp.UnixConnector(path=sock, limit=1)
            async with aiohttp.ClientSession(connector=probe_conn, headers=headers,
                                             timeout=aiohttp.ClientTimeout(total=60)) as prober_session:
                await asyncio.sleep(2)  # controllers start
                quiet: list[float] = []
                await asyncio.wait_for(probe(prober_session, asyncio.Event(), quiet, 300), 60)
                loaded: list[float] = []
                took: list[float] = []
                slices = 0
                for r in range(args.rounds):
                    ns = f"load-{r}"
                    await fill(session, ns, args.services, args.pods)
                    slices = await wait_slices(session, ns, args.services)
                    stop = asyncio.Event()
                    prober = asyncio.create_task(probe(prober_session, stop, loaded, 10**9))
                    try:
                        took.append(await delete_and_wait(session, ns))
                    finally:
                        stop.set()
                        await prober
    finally:
        proc.terminate()
        try:
            proc.wait(20)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        shutil.rmtree(root, ignore_errors=True)
    report.info.update({"services": args.services, "pods": args.pods, "rounds": args.rounds,
                        "endpointslices_before_delete": slices, "src": args.src or "this tree",
                        "samples_during_delete": len(loaded), "quiet_samples": len(quiet)})
    g = f"small GET while a namespace of {args.services} Services + {args.pods} pods is deleted"
    report.add(Figure(g, "p99 during the deletion", p99(loaded), "ms", p99(quiet), "quiet, same run",
                      note=f"{args.rounds} rounds, {len(loaded)} samples"))
    report.add(Figure(g, "p50 during the deletion", p50(loaded), "ms", p50(quiet), "quiet, same run"))
    report.add(Figure(g, "max during the deletion", max(loaded), "ms", max(quiet), "quiet, same run"))
    report.add(Figure(g, "namespace gone after (median)", p50(took), "s",
                      note=f"each: {[round(t, 2) for t in took]}"))


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--services", type=int, default=1600, help="Services in the namespace (default 1600)")
    ap.add_argument("--pods", type=int, default=16, help="pods the Services select (default 16)")
    ap.add_argument("--rounds", type=int, default=2, help="namespaces filled and deleted (default 2)")
    ap.add_argument("--src", default="", help="run the control plane from this source tree (PYTHONPATH)")
    ap.add_argument("-o", "--output", choices=["table", "json"], default="table")
    args = ap.parse_args()
    report = Report("ns_delete")
    asyncio.run(run(args, report))
    print(machine_line(report.info["machine"]), file=sys.stderr)
    report.print(args.output == "json")
    return 0


if __name__ == "__main__":
    sys.exit(main())
