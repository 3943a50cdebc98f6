"""API responsiveness while large YAML bodies arrive (issue 19 item 6).

Run: .venv/bin/python bench/bench_api_bodies.py [--uploads 4] [--rounds 2] [--seconds 60] [-o json]

An API server runs in its own process (memory store, http on 127.0.0.1, a random bearer token passed
through the environment). A prober GETs one small ConfigMap every 10 ms and records each latency:
  * quiet:  20 s... or until 300 samples, with nothing else going on (the baseline, same run);
  * loaded: while `--uploads` clients each POST a ~3 MB YAML ConfigMap `--rounds` times, back to back
            (3.08 MB, just under the API's 3 MiB body limit; 70,000 keys, so 140,000 YAML scalars).
The figure is the small-GET p99 under load (target < 100 ms) against the quiet p99. For scale, the
same document is also parsed in this process with PyYAML's pure-Python safe_load, which is what the
API server did on its event loop before: that time is how long every client used to wait.
Bounded: every request has a 120 s timeout and the whole loaded phase `--seconds`.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import secrets
import subprocess
import sys
import time
from pathlib import Path

import aiohttp
import yaml

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import Figure, Report, machine_line, p50, p99

SMALL = "/api/v1/namespaces/default/configmaps/small"
SERVER = """
import asyncio, os, signal
from podnet.api.server import APIServer
from podnet.store.memory import MemoryStore

async def serve():
    server = APIServer(MemoryStore(), tokens=[os.environ.pop("BENCH_API_TOKEN")])
    await server.bootstrap()
    port = await server.start("127.0.0.1", 0)
    print(f"listening on http://127.0.0.1:{port}", flush=True)
    stop = asyncio.Event()
    asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, stop.set)
    await stop.wait()
    await server.stop()

asyncio.run(serve())
"""


def big_yaml(keys: int = 70_000) -> bytes:
    data = {f"key-{i:06d}": f"value-{i:06d}-{'x' * 16}" for i in range(keys)}
    doc = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "big"}, "data": data}
    return yaml.safe_dump(doc, width=1000).encode()


async def probe(session: aiohttp.ClientSession, url: str, stop: asyncio.Event, out: list[float],
                max_samples: int) -> None:
    while not stop.is_set() and len(out) < max_samples:
        t = time.perf_counter()
        async with session.get(url + SMALL) as resp:
            await resp.read()
            if resp.status != 200:
                raise RuntimeError(f"small GET answered {resp.status}")
        out.append((time.perf_counter() - t) * 1000)
        await asyncio.sleep(0.01)


async def upload(session: aiohttp.ClientSession, url: str, body: bytes, rounds: int,
                 took: list[float], codes: list[int]) -> None:
    for _ in range(rounds):
        t = time.perf_counter()
        async with session.post(url + "/api/v1/namespaces/default/configmaps", data=body,
                                headers={"Content-Type": "application/yaml"}) as resp:
            await resp.read()
            codes.append(resp.status)
        took.append(time.perf_counter() - t)


async def run(args: argparse.Namespace, report: Report) -> None:
    token = secrets.token_hex(16)
    env = {**os.environ, "BENCH_API_TOKEN": token}
    proc = subprocess.Popen([sys.executable, "-c", SERVER], env=env, stdout=subprocess.PIPE, text=True)
    try:
        assert proc.stdout is not None
        line = proc.stdout.readline()
        url = line.strip().rsplit(" ", 1)[-1]
        if not url.startswith("http://"):
            raise RuntimeError(f"API server did not start: {line!r}")
        headers = {"Authorization": f"Bearer {token}"}
        timeout = aiohttp.ClientTimeout(total=120)
        async with aiohttp.ClientSession(headers=headers, timeout=timeout) as session:
            async with session.post(url + "/api/v1/namespaces/default/configmaps",
                                    json={"metadata": {"name": "small"}, "data": {"a": "b"}}) as resp:
                assert resp.status == 201, await resp.text()
            quiet: list[float] = []
            stop = asyncio.Event()
            await asyncio.wait_for(probe(session, url, stop, quiet, 300), 60)
            body = big_yaml()
            loaded: list[float] = []
            took: list[float] = []
            codes: list[int] = []
            prober = asyncio.create_task(probe(session, url, stop, loaded, 10**9))
            start = time.perf_counter()
            try:
                await asyncio.wait_for(asyncio.gather(*(upload(session, url, body, args.rounds, took, codes)
                                                        for _ in range(args.uploads))), args.seconds)
            finally:
                stop.set()
                await prober
            elapsed = time.perf_counter() - start
    finally:
        proc.terminate()
        proc.wait(10)
    t = time.perf_counter()
    yaml.load(body, Loader=yaml.SafeLoader)
    pure = time.perf_counter() - t
    report.info.update({"body_bytes": len(body), "uploads": args.uploads, "rounds": args.rounds,
                        "upload_answers": sorted(set(codes)), "loaded_seconds": round(elapsed, 1),
                        "loaded_samples": len(loaded), "quiet_samples": len(quiet)})
    g = "small GET during 3 MB YAML POSTs"
    report.add(Figure(g, "p99 under load", p99(loaded), "ms", p99(quiet), "quiet, same run",
                      note=f"{args.uploads} uploaders x {args.rounds}, {len(loaded)} samples"))
    report.add(Figure(g, "p50 under load", p50(loaded), "ms", p50(quiet), "quiet, same run"))
    report.add(Figure(g, "max under load", max(loaded), "ms"))
    report.add(Figure(g, "one 3 MB YAML POST answered in (median)", p50(took), "s", pure,
                      "PyYAML pure-Python safe_load of it (the old parser, on the event loop)"))


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--uploads", type=int, default=4, help="concurrent uploaders (default 4)")
    ap.add_argument("--rounds", type=int, default=2, help="3 MB POSTs per uploader (default 2)")
    ap.add_argument("--seconds", type=float, default=120, help="bound on the loaded phase (default 120)")
    ap.add_argument("-o", "--output", choices=["table", "json"], default="table")
    args = ap.parse_args()
    report = Report("api_bodies")
    asyncio.run(run(args, report))
    print(machine_line(report.info["machine"]), file=sys.stderr)
    report.print(args.output == "json")
    return 0


if __name__ == "__main__":
    sys.exit(main())
