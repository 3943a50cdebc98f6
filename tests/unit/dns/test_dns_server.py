"""The DNS server in-process on 127.0.0.1, fed through real informers by a list+watch API on a unix socket."""

from __future__ import annotations

import asyncio
import os
import socket
import time
from collections.abc import AsyncIterator
from pathlib import Path

import aiohttp
import pytest
from dns_fixtures import endpoint, endpoint_slice, pod, service
from dnslib import QTYPE, RCODE, RR, A, DNSRecord
from fakeapi import FakeApi

from podnet.dns.server import ClusterDns, main
from podnet.dns.upstream import choose_upstreams, parse_upstream, udp_exchange
from podnet.model.kinds import ENDPOINTSLICES, PODS, SERVICES


async def ask(port: int, name: str, qtype: str = "A", *, tcp: bool = False,
              timeout: float = 3.0) -> DNSRecord:
    q = DNSRecord.question(name, qtype)
    if tcp:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        try:
            data = q.pack()
            writer.write(len(data).to_bytes(2, "big") + data)
            n = int.from_bytes(await asyncio.wait_for(reader.readexactly(2), timeout), "big")
            raw = await asyncio.wait_for(reader.readexactly(n), timeout)
        finally:
            writer.close()
    else:
        raw = await udp_exchange(("127.0.0.1", port), q.pack(), timeout)
    reply = DNSRecord.parse(raw)
    assert reply.header.id == q.header.id
    return reply


def rdata(reply: DNSRecord) -> list[str]:
    return sorted(str(rr.rdata) for rr in reply.rr)


@pytest.fixture
async def api(tmp_path: Path) -> AsyncIterator[FakeApi]:
    fake = FakeApi()
    await fake.start(unix_path=str(tmp_path / f"api-{os.getpid()}.sock"))
    try:
        yield fake
    finally:
        await fake.stop()


async def start_dns(api: FakeApi, **kw: object) -> ClusterDns:
    kw.setdefault("upstream", "none")
    dns = ClusterDns(api.url, "tok", listen="127.0.0.1", port=0, health_port=0, ready_port=0, **kw)  # type: ignore[arg-type]
    await dns.start()
    await dns.wait_synced(10)
    return dns


@pytest.fixture
async def dns(api: FakeApi) -> AsyncIterator[ClusterDns]:
    api.put(SERVICES, service("my-svc", ports=[{"name": "http", "port": 80, "protocol": "TCP"}]))
    api.put(SERVICES, service("db", cluster_ip="None"))
    api.put(ENDPOINTSLICES, endpoint_slice("db-1", "db", [endpoint("10.244.1.5", hostname="db-0"),
                                                           endpoint("10.244.2.7")]))
    api.put(PODS, pod("p1", "10.244.2.7"))
    d = await start_dns(api)
    try:
        yield d
    finally:
        await d.stop()


async def test_answers_each_record_type_over_udp_and_tcp(dns: ClusterDns) -> None:
    for tcp in (False, True):
        r = await ask(dns.port, "my-svc.default.svc.cluster.local", tcp=tcp)
        assert r.header.rcode == RCODE.NOERROR and r.header.aa == 1
        assert rdata(r) == ["10.96.0.50"]
        r = await ask(dns.port, "db.default.svc.cluster.local", tcp=tcp)
        assert rdata(r) == ["10.244.1.5", "10.244.2.7"]
        r = await ask(dns.port, "_http._tcp.my-svc.default.svc.cluster.local", "SRV", tcp=tcp)
        assert rdata(r) == ["0 100 80 my-svc.default.svc.cluster.local."]
        r = await ask(dns.port, "50.0.96.10.in-addr.arpa", "PTR", tcp=tcp)
        assert rdata(r) == ["my-svc.default.svc.cluster.local."]
        r = await ask(dns.port, "10-244-2-7.default.pod.cluster.local", tcp=tcp)
        assert rdata(r) == ["10.244.2.7"]
        r = await ask(dns.port, "db-0.db.default.svc.cluster.local", tcp=tcp)
        assert rdata(r) == ["10.244.1.5"]


async def test_nxdomain_has_soa_and_question_case_is_kept(dns: ClusterDns) -> None:
    r = await ask(dns.port, "missing.default.svc.cluster.local")
    assert r.header.rcode == RCODE.NXDOMAIN
    assert [QTYPE[a.rtype] for a in r.auth] == ["SOA"]
    r = await ask(dns.port, "My-Svc.Default.SVC.cluster.local")
    assert str(r.q.qname) == "My-Svc.Default.SVC.cluster.local."
    assert str(r.rr[0].rname) == "My-Svc.Default.SVC.cluster.local."


async def test_service_changes_show_within_100ms(api: FakeApi, dns: ClusterDns) -> None:
    async def wait_for(name: str, want_rcode: int) -> float:
        t0 = time.monotonic()
        while time.monotonic() - t0 < 2.0:
            r = await ask(dns.port, name)
            if r.header.rcode == want_rcode and (want_rcode != RCODE.NOERROR or r.rr):
                return time.monotonic() - t0
            await asyncio.sleep(0.002)
        raise AssertionError(f"{name} not {RCODE[want_rcode]} within 2 s")

    api.put(SERVICES, service("fresh", cluster_ip="10.96.0.88"))
    assert await wait_for("fresh.default.svc.cluster.local", RCODE.NOERROR) < 0.1
    api.delete(SERVICES, "default", "fresh")
    assert await wait_for("fresh.default.svc.cluster.local", RCODE.NXDOMAIN) < 0.1
    # a headless service follows its EndpointSlices
    api.put(ENDPOINTSLICES, endpoint_slice("db-1", "db", [endpoint("10.244.3.3")]))
    t0 = time.monotonic()
    while rdata(await ask(dns.port, "db.default.svc.cluster.local")) != ["10.244.3.3"]:
        assert time.monotonic() - t0 < 0.1
        await asyncio.sleep(0.002)


async def test_outside_names_fail_fast_without_upstream(dns: ClusterDns) -> None:
    t0 = time.monotonic()
    r = await ask(dns.port, "example.com")
    assert r.header.rcode == RCODE.SERVFAIL
    assert time.monotonic() - t0 < 0.5


class FakeUpstream(asyncio.DatagramProtocol):
    """A resolver on 127.0.0.1 that answers every A question with 192.0.2.1 (or stays silent)."""

    def __init__(self, silent: bool = False):
        self.silent = silent
        self.seen: list[str] = []

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport

    def datagram_received(self, data: bytes, addr: tuple[str, int]) -> None:
        q = DNSRecord.parse(data)
        self.seen.append(str(q.q.qname))
        if self.silent:
            return
        reply = q.reply()
        reply.add_answer(RR(q.q.qname, QTYPE.A, rdata=A("192.0.2.1"), ttl=30))
        self.transport.sendto(reply.pack(), addr)  # type: ignore[attr-defined]


async def fake_upstream(silent: bool = False) -> tuple[asyncio.DatagramTransport, FakeUpstream, int]:
    loop = asyncio.get_running_loop()
    proto = FakeUpstream(silent)
    transport, _ = await loop.create_datagram_endpoint(lambda: proto, local_addr=("127.0.0.1", 0))
    return transport, proto, transport.get_extra_info("sockname")[1]


async def test_forwards_outside_names_and_resolves_external_name(api: FakeApi) -> None:
    transport, up, port = await fake_upstream()
    api.put(SERVICES, service("ext", type_="ExternalName", external_name="db.example.org"))
    d = await start_dns(api, upstream=f"127.0.0.1:{port}")
    try:
        r = await ask(d.port, "www.example.net")
        assert r.header.rcode == RCODE.NOERROR and rdata(r) == ["192.0.2.1"]
        r = await ask(d.port, "ext.default.svc.cluster.local")
        assert [(QTYPE[a.rtype], str(a.rdata)) for a in r.rr] == [("CNAME", "db.example.org."),
                                                                  ("A", "192.0.2.1")]
        assert up.seen == ["www.example.net.", "db.example.org."]
        # in-zone names never go upstream
        await ask(d.port, "nothere.default.svc.cluster.local")
        assert len(up.seen) == 2
    finally:
        await d.stop()
        transport.close()


async def test_silent_upstream_gives_servfail_after_the_deadline(api: FakeApi) -> None:
    transport, up, port = await fake_upstream(silent=True)
    d = await start_dns(api, upstream=f"127.0.0.1:{port}", upstream_timeout=0.3)
    try:
        t0 = time.monotonic()
        r = await ask(d.port, "slow.example.net")
        elapsed = time.monotonic() - t0
        assert r.header.rcode == RCODE.SERVFAIL
        assert 0.25 < elapsed < 1.5
        assert up.seen == ["slow.example.net."]
    finally:
        await d.stop()
        transport.close()


async def test_probes_and_servfail_before_sync(api: FakeApi, tmp_path: Path) -> None:
    d = await start_dns(api)
    try:
        async with aiohttp.ClientSession() as s:
            for what in ("health", "ready"):
                async with s.get(f"http://127.0.0.1:{d.health.ports[what]}/{what}") as resp:
                    assert (resp.status, await resp.text()) == (200, "OK")
    finally:
        await d.stop()
    # an API server that never answers: not ready, and in-zone names get SERVFAIL, not a hang
    dead = tmp_path / f"dead-{os.getpid()}.sock"
    srv = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    srv.bind(str(dead))
    srv.listen(1)
    d = ClusterDns(f"unix://{dead}", listen="127.0.0.1", port=0, health_port=0, ready_port=0, upstream="none")
    try:
        await d.start()
        r = await ask(d.port, "my-svc.default.svc.cluster.local")
        assert r.header.rcode == RCODE.SERVFAIL
        async with aiohttp.ClientSession() as s:
            async with s.get(f"http://127.0.0.1:{d.health.ports['ready']}/ready") as resp:
                assert resp.status == 503
            async with s.get(f"http://127.0.0.1:{d.health.ports['health']}/health") as resp:
                assert resp.status == 200
    finally:
        await d.stop()
        srv.close()


async def test_garbage_and_truncation(dns: ClusterDns, api: FakeApi) -> None:
    loop = asyncio.get_running_loop()
    # garbage with a query header gets FORMERR; a lone byte gets nothing
    fut: asyncio.Future[bytes] = loop.create_future()

    class P(asyncio.DatagramProtocol):
        def datagram_received(self, data: bytes, addr: object) -> None:
            if not fut.done():
                fut.set_result(data)

    t, _ = await loop.create_datagram_endpoint(P, remote_addr=("127.0.0.1", dns.port))
    try:
        t.sendto(b"\x12\x34\x01\x00\x00\x01\x00\x00\x00\x00\x00\x00\xff\xff")
        reply = DNSRecord.parse(await asyncio.wait_for(fut, 2))
        assert reply.header.id == 0x1234 and reply.header.rcode == RCODE.FORMERR
    finally:
        t.close()
    # 60 endpoints do not fit 512 bytes over UDP: TC set, full answer over TCP
    api.put(ENDPOINTSLICES, endpoint_slice("db-1", "db", [endpoint(f"10.244.5.{i}") for i in range(1, 61)]))
    await asyncio.sleep(0.05)
    r = await ask(dns.port, "db.default.svc.cluster.local")
    assert r.header.tc == 1 and r.rr == []
    r = await ask(dns.port, "db.default.svc.cluster.local", tcp=True)
    assert len(r.rr) == 60


def test_upstream_parsing_and_auto(tmp_path: Path) -> None:
    assert parse_upstream("10.0.0.2") == ("10.0.0.2", 53)
    assert parse_upstream("10.0.0.2:5353") == ("10.0.0.2", 5353)
    assert parse_upstream("[fd00::2]:5353") == ("fd00::2", 5353)
    with pytest.raises(ValueError, match=r"--upstream 'dns\.google': not an IP address"):
        parse_upstream("dns.google")
    conf = tmp_path / "resolv.conf"
    conf.write_text("nameserver 127.0.0.53\nnameserver 0.0.0.0\n")
    assert choose_upstreams("auto", str(conf)) == []  # loopback / unspecified are never used
    assert choose_upstreams("none", str(conf)) == []
    assert choose_upstreams("auto", str(tmp_path / "missing")) == []


def test_cli_errors_are_clear(capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("PODNET_API_SERVER", raising=False)
    with pytest.raises(SystemExit) as e:
        main([])
    assert e.value.code == 2
    assert "--api-server is required (or set PODNET_API_SERVER)" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        main(["--api-server", "ftp://x"])
    assert "--api-server 'ftp://x': must start with http://, https:// or unix://" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        main(["--api-server", "http://127.0.0.1:1", "--upstream", "bogus"])
    assert "--upstream 'bogus': not an IP address" in capsys.readouterr().err
    with pytest.raises(SystemExit) as e:
        main(["--help"])
    assert e.value.code == 0
    assert "--cluster-domain" in capsys.readouterr().out


def test_answer_cache_keeps_ids_and_follows_index_changes() -> None:
    from podnet.dns.records import DnsIndex
    from podnet.dns.server import DnsServer

    idx = DnsIndex()
    srv = DnsServer(idx)
    idx.apply("ADDED", service("a", cluster_ip="10.96.0.5"))

    def query(txid: int) -> DNSRecord:
        q = DNSRecord.question("a.default.svc.cluster.local")
        q.header.id = txid
        raw = srv.answer_now(bytes(q.pack()), udp=True)
        assert isinstance(raw, bytes)
        r = DNSRecord.parse(raw)
        assert r.header.id == txid
        return r

    assert rdata(query(1)) == ["10.96.0.5"]
    assert rdata(query(2)) == ["10.96.0.5"]  # served from the cache, with its own id
    idx.apply("MODIFIED", service("a", cluster_ip="10.96.0.6"))
    assert rdata(query(3)) == ["10.96.0.6"]
    idx.apply("DELETED", service("a"))
    assert query(4).header.rcode == RCODE.NXDOMAIN


async def test_forwarding_loop_is_cut_at_once() -> None:
    from podnet.dns.records import DnsIndex
    from podnet.dns.server import DnsServer
    from podnet.dns.upstream import Forwarder

    srv = DnsServer(DnsIndex())
    port = await srv.start("127.0.0.1", 0)
    srv.forwarder = Forwarder([("127.0.0.1", port)], timeout=1.0)  # upstream = this server itself
    try:
        t0 = time.monotonic()
        r = await ask(port, "loop.example.com")
        assert r.header.rcode == RCODE.SERVFAIL
        assert time.monotonic() - t0 < 0.5
        assert srv.stats.forwarded == 1  # the query came back once and was refused, no storm
        assert srv.stats.queries == 2
    finally:
        await srv.stop()


async def test_port_in_use_is_a_clear_error() -> None:
    from podnet.dns.records import DnsIndex
    from podnet.dns.server import DnsServer

    busy = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    busy.bind(("127.0.0.1", 0))
    port = busy.getsockname()[1]
    try:
        with pytest.raises(OSError, match=rf"cannot listen for DNS on 127\.0\.0\.1:{port}: .*in use"):
            await DnsServer(DnsIndex()).start("127.0.0.1", port)
    finally:
        busy.close()


async def test_probe_server_speaks_plain_http_and_refuses_the_rest() -> None:
    """The probes' minimal HTTP responder: the path of its port only, GET and HEAD, bounded requests."""
    from podnet.dns.server import HealthServer

    ready = False
    h = HealthServer(lambda: ready)
    await h.start("127.0.0.1", 0, 0)

    async def raw(what: str, request: bytes) -> bytes:
        r, w = await asyncio.open_connection("127.0.0.1", h.ports[what])
        w.write(request)
        await w.drain()
        try:
            return await asyncio.wait_for(r.read(), 5)
        except ConnectionResetError:  # closed on us with the request unread
            return b""
        finally:
            w.close()

    try:
        assert (await raw("ready", b"GET /ready HTTP/1.1\r\nHost: x\r\n\r\n")).startswith(
            b"HTTP/1.1 503 Service Unavailable\r\n")
        ready = True
        got = await raw("ready", b"GET /ready?verbose HTTP/1.1\r\nHost: x\r\n\r\n")
        assert got.startswith(b"HTTP/1.1 200 OK\r\n") and got.endswith(b"\r\n\r\nOK")
        assert b"Content-Length: 2\r\n" in got and b"Connection: close\r\n" in got
        head = await raw("health", b"HEAD /health HTTP/1.1\r\n\r\n")
        assert head.startswith(b"HTTP/1.1 200 OK\r\n") and head.endswith(b"\r\n\r\n")
        assert (await raw("health", b"GET /ready HTTP/1.1\r\n\r\n")).startswith(b"HTTP/1.1 404 Not Found")
        assert (await raw("health", b"POST /health HTTP/1.1\r\n\r\n")).startswith(b"HTTP/1.1 405 ")
        assert (await raw("health", b"hello\r\n\r\n")).startswith(b"HTTP/1.1 400 Bad Request")
        assert await raw("health", b"GET /" + b"a" * 20000 + b" HTTP/1.1\r\n\r\n") == b""  # too long: closed
        url = f"http://127.0.0.1:{h.ports['health']}/health"
        async with aiohttp.ClientSession() as s, s.get(url) as resp:  # a real client, as the agent's probes
            assert (resp.status, await resp.text()) == (200, "OK")
    finally:
        await h.stop()
