"""Cluster DNS benchmark: throughput and p99 latency at steady offered loads, and update latency.

    .venv/bin/python bench/bench_dns.py [--services 500] [--duration 5] [--rates 1000,2000,4000,8000]

Runs podnet's API server (in-memory store; the list+watch fake if the API server is not
importable) in this process on a unix socket, and the DNS server as its own process
(`python -m podnet.dns.server`) on 127.0.0.1 at a free port. Load is open-loop: queries
for random existing Services are sent at a fixed rate for `--duration` seconds per rate
(UDP, answers matched by id; a query unanswered after 1 s counts as lost); one more phase
sends only distinct queries (random letter case), so the server's answer cache never hits. Every phase
is bounded in time and count. Update latency: a Service is created through the API and
the server is asked every millisecond until it answers the new name (20 rounds).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import random
import socket
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from dnslib import DNSRecord

from podnet.model.kinds import SERVICES

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests" / "support"))
from fakeapi import FakeApi

TOKEN = "bench-token"
MAX_QUERIES_PER_PHASE = 60000  # DNS ids are 16 bits: keep every query of a phase distinct


class Api:
    """The API the DNS server watches; `create_service` writes through it like a client would."""

    def __init__(self) -> None:
        self.url = ""
        self._server: Any = None
        self._client: Any = None
        self._fake: FakeApi | None = None
        self.kind = ""

    async def start(self, sock: str) -> None:
        try:
            from podnet.api.server import APIServer
            from podnet.client.client import ApiClient
            from podnet.store.memory import MemoryStore
        except ImportError:
            self._fake = FakeApi()
            self.url = await self._fake.start(unix_path=sock)
            self.kind = "list+watch fake"
            return
        self._server = APIServer(MemoryStore(), tokens=[TOKEN])
        await self._server.bootstrap()
        await self._server.start("127.0.0.1", 0, unix_path=sock)
        self.url = f"unix://{sock}"
        self._client = ApiClient(self.url, TOKEN)
        self.kind = "podnet API server (MemoryStore)"

    async def create_service(self, name: str, ip: str) -> None:
        obj = {"apiVersion": "v1", "kind": "Service", "metadata": {"name": name, "namespace": "default"},
               "spec": {"type": "ClusterIP", "clusterIP": ip, "clusterIPs": [ip],
                        "ports": [{"name": "http", "port": 80, "protocol": "TCP", "targetPort": 8080}]}}
        if self._fake is not None:
            self._fake.put(SERVICES, obj)
        else:
            await self._client.create(SERVICES, obj, "default")

    async def stop(self) -> None:
        if self._client is not None:
            await self._client.close()
        if self._server is not None:
            await self._server.stop()
        if self._fake is not None:
            await self._fake.stop()


def free_udp_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def mixed_case(name: str) -> str:
    return "".join(c.upper() if random.random() < 0.5 else c for c in name)


def svc_ip(i: int) -> str:
    return f"10.96.{16 + i // 250}.{1 + i % 250}"


class Load(asyncio.DatagramProtocol):
    def __init__(self) -> None:
        self.sent_at: dict[int, float] = {}
        self.latencies: list[float] = []
        self.errors = 0

    def datagram_received(self, data: bytes, addr: object) -> None:
        now = time.perf_counter()
        txid = int.from_bytes(data[:2], "big")
        t = self.sent_at.pop(txid, None)
        if t is None:
            return
        if data[3] & 0x0F:
            self.errors += 1
        self.latencies.append(now - t)


async def offered_load(port: int, packets: list[bytes], rate: int, duration: float) -> dict[str, float]:
    loop = asyncio.get_running_loop()
    proto = Load()
    transport, _ = await loop.create_datagram_endpoint(lambda: proto, remote_addr=("127.0.0.1", port))
    total = min(int(rate * duration), MAX_QUERIES_PER_PHASE)
    start = time.perf_counter()
    sent = 0
    try:
        while sent < total:
            due = min(total, int((time.perf_counter() - start) * rate) + 1)
            while sent < due:
                txid = sent & 0xFFFF
                pkt = packets[sent % len(packets)]
                proto.sent_at[txid] = time.perf_counter()
                transport.sendto(txid.to_bytes(2, "big") + pkt[2:])
                sent += 1
            await asyncio.sleep(0.0005)
        send_time = time.perf_counter() - start
        end = time.perf_counter() + 1.0
        while proto.sent_at and time.perf_counter() < end:
            await asyncio.sleep(0.01)
    finally:
        transport.close()
    lat = sorted(proto.latencies)
    answered = len(lat)

    def pct(p: float) -> float:
        return lat[min(len(lat) - 1, int(p * len(lat)))] * 1000 if lat else float("nan")

    return {"offered": rate, "sent": sent, "answered": answered, "lost": sent - answered,
            "errors": proto.errors, "qps": answered / send_time if send_time else 0.0,
            "p50_ms": pct(0.50), "p99_ms": pct(0.99), "max_ms": lat[-1] * 1000 if lat else float("nan")}


async def ask_until_answered(port: int, name: str, timeout: float = 2.0) -> float:
    loop = asyncio.get_running_loop()
    deadline = time.perf_counter() + timeout
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.setblocking(False)
    try:
        sock.connect(("127.0.0.1", port))
        q = DNSRecord.question(name).pack()
        while time.perf_counter() < deadline:
            await loop.sock_sendall(sock, q)
            try:
                data = await asyncio.wait_for(loop.sock_recv(sock, 4096), 0.2)
            except TimeoutError:
                continue
            except ConnectionRefusedError:  # not listening yet
                await asyncio.sleep(0.01)
                continue
            if (data[3] & 0x0F) == 0 and int.from_bytes(data[6:8], "big") > 0:
                return time.perf_counter()
            await asyncio.sleep(0.001)
    finally:
        sock.close()
    raise TimeoutError(f"{name} not answered within {timeout} s")


async def main_async(args: argparse.Namespace) -> int:
    tmp = Path(tempfile.mkdtemp(prefix="podnet-bench-dns-"))
    api = Api()
    await api.start(str(tmp / "api.sock"))
    proc: asyncio.subprocess.Process | None = None
    try:
        t0 = time.perf_counter()
        for i in range(args.services):
            await api.create_service(f"svc-{i}", svc_ip(i))
        seed_s = time.perf_counter() - t0
        port = free_udp_port()
        env = {**os.environ, "PODNET_API_TOKEN": TOKEN}
        proc = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "podnet.dns.server", "--api-server", api.url, "--listen", "127.0.0.1",
            "--port", str(port), "--upstream", "none", "--health-port", "-1", "--ready-port", "-1", env=env)
        t0 = time.perf_counter()
        await ask_until_answered(port, f"svc-{args.services - 1}.default.svc.cluster.local", timeout=20)
        sync_s = time.perf_counter() - t0
        print(f"API: {api.kind}; {args.services} Services created in {seed_s:.2f} s; "
              f"DNS server up and synced in {sync_s:.2f} s (process start included)")

        names = [f"svc-{random.randrange(args.services)}.default.svc.cluster.local" for _ in range(1000)]
        packets = [DNSRecord.question(n).pack() for n in names]
        print(f"\nsteady offered load, {args.duration:.0f} s per rate, UDP A queries for random Services:")
        print(f"{'offered/s':>10} {'answered/s':>11} {'lost':>6} {'errors':>6} {'p50 ms':>8} {'p99 ms':>8} "
              f"{'max ms':>8}")
        for rate in args.rates:
            r = await offered_load(port, packets, rate, args.duration)
            print(f"{r['offered']:>10.0f} {r['qps']:>11.0f} {r['lost']:>6.0f} {r['errors']:>6.0f} "
                  f"{r['p50_ms']:>8.2f} {r['p99_ms']:>8.2f} {r['max_ms']:>8.2f}")
            await asyncio.sleep(0.5)

        # Every query distinct (random letter case, as resolvers using 0x20 send): no answer cache hits.
        n_miss = min(int(args.miss_rate * args.duration), MAX_QUERIES_PER_PHASE)
        miss_packets = [DNSRecord.question(mixed_case(random.choice(names))).pack() for _ in range(n_miss)]
        r = await offered_load(port, miss_packets, args.miss_rate, args.duration)
        print(f"{r['offered']:>10.0f} {r['qps']:>11.0f} {r['lost']:>6.0f} {r['errors']:>6.0f} "
              f"{r['p50_ms']:>8.2f} {r['p99_ms']:>8.2f} {r['max_ms']:>8.2f}   (all distinct: no cache)")

        lags = []
        for n in range(args.update_rounds):
            name = f"new-{n}"
            t_create = time.perf_counter()
            await api.create_service(name, svc_ip(args.services + n))
            t_answer = await ask_until_answered(port, f"{name}.default.svc.cluster.local")
            lags.append((t_answer - t_create) * 1000)
        lags.sort()
        p99 = lags[min(len(lags) - 1, int(0.99 * len(lags)))]
        print(f"\nupdate latency, Service create (API call) -> A record answered, {len(lags)} rounds: "
              f"median {statistics.median(lags):.1f} ms, p99 {p99:.1f} ms, max {lags[-1]:.1f} ms")
        return 0
    finally:
        if proc is not None and proc.returncode is None:
            proc.terminate()
            try:
                await asyncio.wait_for(proc.wait(), 5)
            except TimeoutError:
                proc.kill()
                await proc.wait()
        await api.stop()
        for f in tmp.iterdir():
            f.unlink()
        tmp.rmdir()


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--services", type=int, default=500, help="Services in the cluster (1-10000)")
    p.add_argument("--duration", type=float, default=5.0, help="seconds of load per rate (0.5-30)")
    p.add_argument("--miss-rate", type=int, default=8000,
                   help="offered queries per second for the no-cache phase (1-50000)")
    p.add_argument("--rates", default="2000,10000,20000,30000",
                   help="offered queries per second, comma-separated")
    p.add_argument("--update-rounds", type=int, default=20, help="Service creations timed (1-200)")
    args = p.parse_args()
    try:
        args.rates = [int(r) for r in args.rates.split(",") if r.strip()]
    except ValueError:
        p.error(f"--rates {args.rates!r}: must be whole numbers separated by commas, e.g. 1000,2000")
    if not 1 <= args.services <= 10000:
        p.error(f"--services {args.services}: must be in 1-10000")
    if not 0.5 <= args.duration <= 30:
        p.error(f"--duration {args.duration}: must be in 0.5-30 seconds")
    if not args.rates or any(not 1 <= r <= 50000 for r in args.rates):
        p.error(f"--rates {args.rates}: each must be in 1-50000")
    if not 1 <= args.miss_rate <= 50000:
        p.error(f"--miss-rate {args.miss_rate}: must be in 1-50000")
    if not 1 <= args.update_rounds <= 200:
        p.error(f"--update-rounds {args.update_rounds}: must be in 1-200")
    return asyncio.run(main_async(args))


if __name__ == "__main__":
    sys.exit(main())
