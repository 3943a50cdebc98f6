"""The cluster DNS server as a real process inside a scratch network namespace, queried with `dig`.

The API (podnet's API server on an in-memory store when it is importable, else the
minimal list+watch fake) runs in this test process on a unix socket, which the DNS
process reaches from its namespace. All DNS traffic stays on the namespace's loopback.
"""

from __future__ import annotations

import asyncio
import os
import secrets
import shutil
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any, Protocol

import pytest
from fakeapi import FakeApi

from podnet.model.kinds import ENDPOINTSLICES, PODS, SERVICES, ResourceType

pytestmark = [
    pytest.mark.kernel,
    pytest.mark.skipif(os.geteuid() != 0, reason="needs root for network namespaces"),
    pytest.mark.skipif(shutil.which("dig") is None or shutil.which("ip") is None, reason="needs dig and ip"),
]

Obj = dict[str, Any]
TOKEN = "dns-test-token"


class Backend(Protocol):
    url: str

    async def put(self, rt: ResourceType, obj: Obj) -> None: ...
    async def delete(self, rt: ResourceType, namespace: str, name: str) -> None: ...
    async def stop(self) -> None: ...


class FakeBackend:
    def __init__(self, fake: FakeApi):
        self.fake, self.url = fake, fake.url

    async def put(self, rt: ResourceType, obj: Obj) -> None:
        self.fake.put(rt, obj)

    async def delete(self, rt: ResourceType, namespace: str, name: str) -> None:
        self.fake.delete(rt, namespace, name)

    async def stop(self) -> None:
        await self.fake.stop()


class RealBackend:
    """podnet's API server on a MemoryStore, written to over HTTP like any client."""

    def __init__(self, server: Any, url: str):
        from podnet.client.client import ApiClient
        self.server, self.url = server, url
        self.client = ApiClient(url, TOKEN)

    async def put(self, rt: ResourceType, obj: Obj) -> None:
        from podnet.client.client import ApiError
        meta = obj["metadata"]
        try:
            await self.client.create(rt, obj, meta.get("namespace"))
        except ApiError as e:
            if e.code != 409:
                raise
            cur = await self.client.get(rt, meta["name"], meta.get("namespace"))
            obj = {**obj, "metadata": {**meta, "resourceVersion": cur["metadata"]["resourceVersion"]}}
            await self.client.update(rt, obj)

    async def delete(self, rt: ResourceType, namespace: str, name: str) -> None:
        await self.client.delete(rt, name, namespace)

    async def stop(self) -> None:
        await self.client.close()
        await self.server.stop()


async def start_backend(sock: str) -> Backend:
    try:
        from podnet.api.server import APIServer
        from podnet.store.memory import MemoryStore
    except ImportError:
        fake = FakeApi()
        await fake.start(unix_path=sock)
        return FakeBackend(fake)
    server = APIServer(MemoryStore(), tokens=[TOKEN])
    await server.bootstrap()
    await server.start("127.0.0.1", 0, unix_path=sock)
    return RealBackend(server, f"unix://{sock}")


@pytest.fixture
def netns() -> Iterator[str]:
    name = f"pdns{os.getpid() % 100000}{secrets.token_hex(3)}"
    subprocess.run(["ip", "netns", "add", name], check=True, timeout=10)
    try:
        subprocess.run(["ip", "-n", name, "link", "set", "lo", "up"], check=True, timeout=10)
        yield name
    finally:
        subprocess.run(["ip", "netns", "del", name], timeout=10)


@pytest.fixture
async def backend(tmp_path: Path) -> AsyncIterator[Backend]:
    b = await start_backend(str(tmp_path / "api.sock"))
    try:
        yield b
    finally:
        await b.stop()


async def run(argv: list[str], timeout: float = 10.0) -> str:
    p = await asyncio.create_subprocess_exec(*argv, stdout=asyncio.subprocess.PIPE,
                                             stderr=asyncio.subprocess.STDOUT)
    try:
        out, _ = await asyncio.wait_for(p.communicate(), timeout)
    except TimeoutError:
        p.kill()
        await p.wait()
        raise
    return out.decode()


async def dig(netns: str, *args: str) -> str:
    return await run(["ip", "netns", "exec", netns, "dig", "@127.0.0.1", "+tries=1", "+time=2", *args])


async def dig_short(netns: str, *args: str) -> list[str]:
    return sorted(line for line in (await dig(netns, "+short", *args)).splitlines() if line)


def status(dig_output: str) -> str:
    for line in dig_output.splitlines():
        if "status:" in line:
            return line.split("status:")[1].split(",")[0].strip()
    raise AssertionError(f"no status in dig output:\n{dig_output}")


# Inside the namespace: ask until the name is NXDOMAIN (bounded: 3 s, at most 3000 queries)
# and print the monotonic clock (the same clock in every namespace) when it first is.
WATCH_NXDOMAIN = r"""
import socket, sys, time
from dnslib import DNSRecord, RCODE
name = sys.argv[1]
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.settimeout(0.5)
end = time.monotonic() + 3
sent = 0
ready = False
while time.monotonic() < end and sent < 3000:
    q = DNSRecord.question(name)
    s.sendto(q.pack(), ("127.0.0.1", 53)); sent += 1
    try:
        r = DNSRecord.parse(s.recv(4096))
    except TimeoutError:
        continue
    if r.header.rcode == RCODE.NOERROR and not ready:
        ready = True
        print("ready", flush=True)
    if r.header.rcode == RCODE.NXDOMAIN and ready:
        print(f"nxdomain {time.monotonic():.6f}", flush=True)
        break
    time.sleep(0.001)
"""


def svc(name: str, ip: str | None, ports: list[Obj] | None = None) -> Obj:
    spec: Obj = {"type": "ClusterIP", "ports": ports or [{"name": "http", "port": 80, "protocol": "TCP",
                                                         "targetPort": 8080}]}
    if ip == "None":
        spec["clusterIP"] = "None"
    elif ip:
        spec.update({"clusterIP": ip, "clusterIPs": [ip]})
    return {"apiVersion": "v1", "kind": "Service", "metadata": {"name": name, "namespace": "default"},
            "spec": spec}


async def seed(b: Backend) -> None:
    await b.put(SERVICES, svc("web", "10.96.0.50"))
    await b.put(SERVICES, svc("db", "None"))
    await b.put(SERVICES, {"apiVersion": "v1", "kind": "Service",
                           "metadata": {"name": "ext", "namespace": "default"},
                           "spec": {"type": "ExternalName", "externalName": "db.example.org"}})
    await b.put(ENDPOINTSLICES, {
        "apiVersion": "discovery.k8s.io/v1", "kind": "EndpointSlice",
        "metadata": {"name": "db-x1", "namespace": "default", "labels": {"kubernetes.io/service-name": "db"}},
        "addressType": "IPv4", "ports": [{"name": "pg", "port": 5432, "protocol": "TCP"}],
        "endpoints": [
            {"addresses": ["10.244.1.5"], "hostname": "db-0", "conditions": {"ready": True}},
            {"addresses": ["10.244.2.7"], "conditions": {"ready": True}},
            {"addresses": ["10.244.3.9"], "conditions": {"ready": False}},
        ]})
    await b.put(PODS, {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p1", "namespace": "default"},
                       "spec": {"containers": [{"name": "c", "image": "busybox"}]}})


async def test_dns_server_in_netns_answers_dig(netns: str, backend: Backend) -> None:
    await seed(backend)
    env = {**os.environ, "PODNET_API_SERVER": backend.url, "PODNET_API_TOKEN": TOKEN}
    proc = await asyncio.create_subprocess_exec(
        "ip", "netns", "exec", netns, sys.executable, "-m", "podnet.dns.server",
        "--listen", "0.0.0.0", "--port", "53", "--upstream", "none", "--pods", "insecure",
        env=env, stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.PIPE)
    try:
        deadline = time.monotonic() + 15
        while True:
            out = await run(["ip", "netns", "exec", netns, "curl", "-s", "-m", "1", "-o", "/dev/null",
                             "-w", "%{http_code}", "http://127.0.0.1:8181/ready"])
            if out.strip() == "200":
                break
            assert proc.returncode is None, "DNS server exited early"
            assert time.monotonic() < deadline, f"not ready after 15 s (last /ready: {out!r})"
            await asyncio.sleep(0.1)
        health = await run(["ip", "netns", "exec", netns, "curl", "-s", "-m", "1", "http://127.0.0.1:8080/health"])
        assert health == "OK"

        assert await dig_short(netns, "web.default.svc.cluster.local", "A") == ["10.96.0.50"]
        assert await dig_short(netns, "+tcp", "web.default.svc.cluster.local", "A") == ["10.96.0.50"]
        assert await dig_short(netns, "db.default.svc.cluster.local", "A") == ["10.244.1.5", "10.244.2.7"]
        assert await dig_short(netns, "db-0.db.default.svc.cluster.local") == ["10.244.1.5"]
        assert await dig_short(netns, "_pg._tcp.db.default.svc.cluster.local", "SRV") == [
            "0 50 5432 10-244-2-7.db.default.svc.cluster.local.",
            "0 50 5432 db-0.db.default.svc.cluster.local."]
        assert await dig_short(netns, "_http._tcp.web.default.svc.cluster.local", "SRV") == [
            "0 100 80 web.default.svc.cluster.local."]
        assert await dig_short(netns, "-x", "10.96.0.50") == ["web.default.svc.cluster.local."]
        assert await dig_short(netns, "-x", "10.244.1.5") == ["db-0.db.default.svc.cluster.local."]
        assert await dig_short(netns, "10-244-2-7.default.pod.cluster.local") == ["10.244.2.7"]
        assert await dig_short(netns, "ext.default.svc.cluster.local", "CNAME") == ["db.example.org."]
        assert await dig_short(netns, "dns-version.cluster.local", "TXT") == ['"1.0.1"']
        assert status(await dig(netns, "nope.default.svc.cluster.local")) == "NXDOMAIN"
        assert status(await dig(netns, "web.default.svc.cluster.local", "AAAA")) == "NOERROR"
        t0 = time.monotonic()
        assert status(await dig(netns, "example.com")) == "SERVFAIL"  # no upstream: fails fast
        assert time.monotonic() - t0 < 1.5

        # Service deleted -> NXDOMAIN within 100 ms, seen from inside the namespace
        watcher = await asyncio.create_subprocess_exec(
            "ip", "netns", "exec", netns, sys.executable, "-c", WATCH_NXDOMAIN,
            "web.default.svc.cluster.local", stdout=asyncio.subprocess.PIPE)
        try:
            assert watcher.stdout is not None
            line = await asyncio.wait_for(watcher.stdout.readline(), 5)
            assert line.decode().strip() == "ready"
            t_delete = time.monotonic()
            await backend.delete(SERVICES, "default", "web")
            line = await asyncio.wait_for(watcher.stdout.readline(), 5)
            word, _, when = line.decode().strip().partition(" ")
            assert word == "nxdomain", line
            lag = float(when) - t_delete
            print(f"{type(backend).__name__}: NXDOMAIN {lag * 1000:.1f} ms after the delete")
            assert lag < 0.1, f"NXDOMAIN {lag * 1000:.1f} ms after the delete"
        finally:
            if watcher.returncode is None:
                watcher.kill()
            await watcher.wait()
    finally:
        if proc.returncode is None:
            proc.terminate()
            try:
                await asyncio.wait_for(proc.wait(), 5)
            except TimeoutError:
                proc.kill()
                await proc.wait()
        assert proc.stderr is not None
        err = (await proc.stderr.read()).decode()
        assert "Traceback" not in err, err
