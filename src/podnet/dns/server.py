"""The cluster DNS server: UDP + TCP DNS answered from a watch cache of the Kubernetes API.

    python -m podnet.dns.server [--api-server URL] [--token T] [--cluster-domain cluster.local]
                                [--listen 0.0.0.0] [--port 53] [--upstream IP[:PORT][,...]|auto|none]

Services, EndpointSlices and Pods are watched through `Informer`s (list once, then
watch: no polling) that cache compact copies (`dns/compact.py`); every event
updates the `DnsIndex` at once, so answers follow the API within milliseconds.
Names in the cluster domain are answered from the index (SERVFAIL until the
informers have synced); other names go to the upstream resolvers with a 2 s
overall deadline, else SERVFAIL: a query never hangs.
As CoreDNS: `/health` on :8080 answers 200 while the process runs, `/ready` on
:8181 answers 200 once the informers have synced (503 before). Nothing is logged
per query.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import os
import signal
import socket
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import cast

from dnslib import DNSRecord

from podnet.client.client import ApiClient
from podnet.client.informer import Informer
from podnet.dns.compact import dns_pod, dns_service, dns_slice
from podnet.dns.corefile import CorefileError, parse_corefile
from podnet.dns.records import DnsIndex, PodsMode
from podnet.dns.upstream import Forwarder, choose_upstreams
from podnet.dns.wire import BadQuery, Query, answer_reply, parse_query, rcode_reply
from podnet.model.kinds import ENDPOINTSLICES, PODS, SERVICES, Obj

log = logging.getLogger("podnet.dns")

TCP_IDLE_TIMEOUT = 10.0
TCP_MAX_CONNECTIONS = 256
CACHE_MAX_ENTRIES = 20000


class _Later:
    """The answer needs I/O (forwarding upstream)."""


LATER = _Later()


@dataclass
class Stats:
    queries: int = 0
    forwarded: int = 0
    servfail: int = 0


class DnsServer:
    """Answers DNS messages from a `DnsIndex`; forwards the rest through a `Forwarder`."""

    def __init__(self, index: DnsIndex, forwarder: Forwarder | None = None,
                 is_ready: Callable[[], bool] = lambda: True):
        self.index = index
        self.forwarder = forwarder or Forwarder([])
        self.is_ready = is_ready
        self.stats = Stats()
        self._udp: asyncio.DatagramTransport | None = None
        self._tcp: asyncio.Server | None = None
        self._tasks: set[asyncio.Task[None]] = set()
        self._tcp_conns = 0
        # Packed answers by (transport, query without its id), valid while the index is unchanged.
        self._cache: dict[tuple[bool, bytes], bytes] = {}
        self._cache_serial = -1
        self._cacheable = False

    # ---- answering -----------------------------------------------------------
    def answer_now(self, data: bytes, *, udp: bool) -> bytes | _Later | None:
        """The reply if it can be given without I/O; `LATER` if it needs `answer`; None: drop."""
        self.stats.queries += 1
        return self._answer_now(data, udp)

    def _answer_now(self, data: bytes, udp: bool) -> bytes | _Later | None:
        if self._cache_serial != self.index.serial:
            self._cache.clear()
            self._cache_serial = self.index.serial
        key = (udp, bytes(data[2:]))
        hit = self._cache.get(key)
        if hit is not None:
            return data[:2] + hit
        try:
            q = parse_query(data)
        except BadQuery as bad:
            return bad.reply
        reply = self._local(q, udp)
        if isinstance(reply, bytes) and self._cacheable:
            if len(self._cache) >= CACHE_MAX_ENTRIES:
                self._cache.clear()
            self._cache[key] = reply[2:]
        return reply

    def _local(self, q: Query, udp: bool) -> bytes | _Later:
        recursion = self.forwarder.enabled
        self._cacheable = False
        if self.index.in_zone(q.qname):
            if not self.is_ready():
                self.stats.servfail += 1
                return rcode_reply(q, "SERVFAIL", recursion=recursion)
            self._cacheable = True
            ans = self.index.lookup(q.qname, q.qtype)
            if (q.qtype in ("A", "AAAA") and self.forwarder.enabled
                    and self.index.cname_target_outside(ans) is not None):
                return LATER
            return answer_reply(q, ans, udp=udp, recursion=recursion)
        ans = self.index.lookup(q.qname, q.qtype)
        if ans.authoritative:
            self._cacheable = True
            return answer_reply(q, ans, udp=udp, recursion=recursion)
        if not self.forwarder.enabled or self.forwarder.busy() or self.forwarder.looping(q.raw):
            self.stats.servfail += 1
            return rcode_reply(q, "SERVFAIL", recursion=recursion)
        return LATER

    async def answer(self, data: bytes, *, udp: bool, counted: bool = False) -> bytes | None:
        """The reply to one DNS message (None: send nothing). `counted`: answer_now saw it already."""
        now = self._answer_now(data, udp) if counted else self.answer_now(data, udp=udp)
        if not isinstance(now, _Later):
            return now
        q = parse_query(data)
        recursion = self.forwarder.enabled
        if self.index.in_zone(q.qname):  # a CNAME (ExternalName) pointing outside: resolve its target
            ans = self.index.lookup(q.qname, q.qtype)
            target = self.index.cname_target_outside(ans)
            extra = []
            if target is not None:
                sub = DNSRecord.question(target, q.qtype)
                got = await self.forwarder.forward(sub.pack(), tcp=not udp)
                if got is not None:
                    with contextlib.suppress(Exception):
                        extra = list(DNSRecord.parse(got).rr)
            return answer_reply(q, ans, udp=udp, recursion=recursion, extra_answers=extra)
        self.stats.forwarded += 1
        got = await self.forwarder.forward(data, tcp=not udp)
        if got is None:
            self.stats.servfail += 1
            return rcode_reply(q, "SERVFAIL", recursion=recursion)
        return got

    # ---- transports ------------------------------------------------------------
    def _spawn(self, coro: asyncio.Future[None] | asyncio.Task[None] | object) -> None:
        task: asyncio.Task[None] = asyncio.ensure_future(coro)  # type: ignore[arg-type]
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def start(self, host: str = "0.0.0.0", port: int = 53) -> int:
        """Listen on UDP and TCP `host:port` (0: a free port, the same for both). Returns the port."""
        loop = asyncio.get_running_loop()
        family = socket.AF_INET6 if ":" in host else socket.AF_INET
        last: OSError | None = None
        for _ in range(20 if port == 0 else 1):
            udp_sock = socket.socket(family, socket.SOCK_DGRAM)
            try:
                udp_sock.bind((host, port))
                bound = udp_sock.getsockname()[1]
                tcp_sock = socket.socket(family, socket.SOCK_STREAM)
                tcp_sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
                try:
                    tcp_sock.bind((host, bound))
                except OSError as e:
                    tcp_sock.close()
                    raise e
            except OSError as e:
                udp_sock.close()
                last = e
                continue
            self._udp, _ = await loop.create_datagram_endpoint(lambda: _UdpProtocol(self), sock=udp_sock)
            self._tcp = await asyncio.start_server(self._tcp_client, sock=tcp_sock, backlog=128)
            return int(bound)
        raise OSError(f"cannot listen for DNS on {host}:{port}: {last}")

    async def _udp_later(self, transport: asyncio.DatagramTransport, data: bytes,
                         addr: tuple[str | object, ...]) -> None:
        try:
            r = await self.answer(data, udp=True, counted=True)
        except Exception:
            log.exception("DNS answer failed")
            return
        if r is not None and not transport.is_closing():
            transport.sendto(r, addr)

    async def _tcp_client(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        if self._tcp_conns >= TCP_MAX_CONNECTIONS:
            writer.close()
            return
        self._tcp_conns += 1
        try:
            while True:
                head = await asyncio.wait_for(reader.readexactly(2), TCP_IDLE_TIMEOUT)
                data = await asyncio.wait_for(reader.readexactly(int.from_bytes(head, "big")), 5.0)
                r = await self.answer(data, udp=False)
                if r is None:
                    break
                writer.write(len(r).to_bytes(2, "big") + r)
                await writer.drain()
        except (TimeoutError, asyncio.IncompleteReadError, ConnectionError):
            pass
        except Exception:
            log.exception("DNS over TCP failed")
        finally:
            self._tcp_conns -= 1
            writer.close()

    async def stop(self) -> None:
        if self._udp is not None:
            self._udp.close()
            self._udp = None
        if self._tcp is not None:
            self._tcp.close()
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self._tcp.wait_closed(), 1.0)
            self._tcp = None
        for t in list(self._tasks):
            t.cancel()
        if self._tasks:
            await asyncio.gather(*self._tasks, return_exceptions=True)


class _UdpProtocol(asyncio.DatagramProtocol):
    def __init__(self, server: DnsServer):
        self.server = server
        self.transport: asyncio.DatagramTransport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.DatagramTransport, transport)

    def datagram_received(self, data: bytes, addr: tuple[str | object, ...]) -> None:
        if self.transport is None:
            return
        r = self.server.answer_now(data, udp=True)
        if isinstance(r, _Later):
            self.server._spawn(self.server._udp_later(self.transport, data, addr))
        elif r is not None:
            self.transport.sendto(r, addr)


class HealthServer:
    """CoreDNS-style probes: `/health` (liveness) and `/ready` (informers synced), each on its own port.

    Two fixed answers need no web framework: a minimal HTTP/1.1 responder on asyncio streams (one
    request per connection, `Connection: close`), which keeps aiohttp's server (~2.5 MiB) out of
    the DNS pod's memory."""

    MAX_HEAD = 8192
    TIMEOUT = 5.0

    def __init__(self, is_ready: Callable[[], bool]):
        self.is_ready = is_ready
        self._servers: list[asyncio.Server] = []
        self.ports: dict[str, int] = {}

    def _answer(self, what: str) -> tuple[int, str]:
        if what == "ready" and not self.is_ready():
            return 503, "kubernetes"
        return 200, "OK"

    async def _serve(self, what: str, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), self.TIMEOUT)
            parts = head.split(b"\r\n", 1)[0].split()
            if len(parts) != 3 or not parts[2].startswith(b"HTTP/1."):
                status, text = 400, "400: Bad Request"
            elif parts[0] not in (b"GET", b"HEAD"):
                status, text = 405, "405: Method Not Allowed"
            elif parts[1].split(b"?", 1)[0] != f"/{what}".encode():
                status, text = 404, "404: Not Found"
            else:
                status, text = self._answer(what)
            body = text.encode()
            reason = {200: "OK", 400: "Bad Request", 404: "Not Found", 405: "Method Not Allowed",
                      503: "Service Unavailable"}[status]
            writer.write(f"HTTP/1.1 {status} {reason}\r\nContent-Type: text/plain; charset=utf-8\r\n"
                         f"Content-Length: {len(body)}\r\nConnection: close\r\n\r\n".encode()
                         + (b"" if parts[:1] == [b"HEAD"] else body))
            await asyncio.wait_for(writer.drain(), self.TIMEOUT)
        except (TimeoutError, asyncio.IncompleteReadError, asyncio.LimitOverrunError, ConnectionError,
                ValueError):
            pass
        finally:
            writer.close()

    async def start(self, host: str, health_port: int | None, ready_port: int | None) -> None:
        for what, port in (("health", health_port), ("ready", ready_port)):
            if port is None or port < 0:
                continue

            async def serve(r: asyncio.StreamReader, w: asyncio.StreamWriter, what: str = what) -> None:
                await self._serve(what, r, w)

            server = await asyncio.start_server(serve, host, port, limit=self.MAX_HEAD)
            self._servers.append(server)
            self.ports[what] = int(server.sockets[0].getsockname()[1])

    async def stop(self) -> None:
        for s in self._servers:
            s.close()
            await s.wait_closed()
        self._servers.clear()


class ClusterDns:
    """The whole server: API client, three informers, the index, DNS listeners, probes."""

    def __init__(self, api_server: str, token: str = "", *, token_file: str | None = None,
                 ca_file: str | None = None, cluster_domain: str = "cluster.local",
                 listen: str = "0.0.0.0", port: int = 53, upstream: str = "auto", ttl: int = 5,
                 pods: PodsMode = "verified", dns_ip: str | None = None,
                 health_port: int | None = 8080, ready_port: int | None = 8181,
                 resolv_conf: str = "/etc/resolv.conf", upstream_timeout: float = 2.0):
        self.client = ApiClient(api_server, token, ca_file=ca_file, token_file=token_file)
        self.index = DnsIndex(cluster_domain, ttl=ttl, pods=pods, dns_ip=dns_ip)
        self.informers: list[Informer] = []
        # the caches hold compact copies: only the names, IPs and ports the index answers with
        for rt, shape in ((SERVICES, dns_service), (ENDPOINTSLICES, dns_slice), (PODS, dns_pod)):
            inf = Informer(self.client, rt, transform=shape)
            inf.add_handler(self._handler(rt.kind))
            self.informers.append(inf)
        upstreams = choose_upstreams(upstream, resolv_conf)
        upstreams = [u for u in upstreams if not (u[0] == listen and u[1] == port)
                     and not (u[0] == dns_ip and u[1] == 53)]  # never forward to ourselves
        self.forwarder = Forwarder(upstreams, upstream_timeout)
        self.dns = DnsServer(self.index, self.forwarder, self.ready)
        self.health = HealthServer(self.ready)
        self.listen, self.port = listen, port
        self.health_port, self.ready_port = health_port, ready_port

    def _handler(self, kind: str) -> Callable[[str, Obj, Obj | None], None]:
        def handle(event_type: str, obj: Obj, _old: Obj | None) -> None:
            self.index.apply(event_type, obj, kind)
        return handle

    def ready(self) -> bool:
        return all(i.synced.is_set() for i in self.informers)

    async def start(self) -> int:
        """Start watching and listening; returns the DNS port. Answers SERVFAIL in-zone until synced."""
        for inf in self.informers:
            inf.start()
        self.port = await self.dns.start(self.listen, self.port)
        await self.health.start(self.listen, self.health_port, self.ready_port)
        return self.port

    async def wait_synced(self, timeout: float = 30.0) -> None:
        await asyncio.wait_for(asyncio.gather(*(i.synced.wait() for i in self.informers)), timeout)

    async def stop(self) -> None:
        await self.dns.stop()
        await self.health.stop()
        for inf in self.informers:
            await inf.stop()
        await self.client.close()


SA_DIR = "/var/run/secrets/kubernetes.io/serviceaccount"  # where the kubelet mounts a pod's API access
SA_TOKEN_FILE = f"{SA_DIR}/token"
SA_CA_FILE = f"{SA_DIR}/ca.crt"


def _in_cluster_server() -> str:
    host, port = os.environ.get("KUBERNETES_SERVICE_HOST", ""), os.environ.get("KUBERNETES_SERVICE_PORT", "")
    if not host or not port:
        return ""
    return f"https://[{host}]:{port}" if ":" in host else f"https://{host}:{port}"


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m podnet.dns.server",
                                description="podnet cluster DNS: answers <svc>.<ns>.svc.<domain> and friends "
                                            "from the Kubernetes API (Services, EndpointSlices, Pods).")
    p.add_argument("--api-server", default=os.environ.get("PODNET_API_SERVER", "") or _in_cluster_server(),
                   help="API server URL: http://..., https://... or unix:///path.sock "
                        "(default: $PODNET_API_SERVER, else the `kubernetes` Service from "
                        "$KUBERNETES_SERVICE_HOST/PORT, trusting the ServiceAccount's ca.crt)")
    p.add_argument("--token", default=os.environ.get("PODNET_API_TOKEN", ""),
                   help="bearer token (default: $PODNET_API_TOKEN; without one, the pod's ServiceAccount "
                        "token, --token-file)")
    p.add_argument("--token-file", default=SA_TOKEN_FILE,
                   help="read the bearer token from this file, again when it changes, when no --token is "
                        f"given (default: the pod's ServiceAccount token, {SA_TOKEN_FILE})")
    p.add_argument("--cluster-domain", default=None, help="the cluster's DNS zone (default cluster.local)")
    p.add_argument("--listen", default="0.0.0.0", help="address for DNS and the probes")
    p.add_argument("--port", "-dns.port", dest="port", type=int, default=None,
                   help="DNS port, UDP and TCP (default 53; 0: any free port)")
    p.add_argument("--upstream", default=None,
                   help="where names outside the cluster domain go: IP[:PORT][,IP[:PORT]...], "
                        "'auto' (the host's /etc/resolv.conf, if reachable; the default) "
                        "or 'none' (SERVFAIL)")
    p.add_argument("--upstream-timeout", type=float, default=2.0, help="seconds, for all upstream tries")
    p.add_argument("--resolv-conf", default=None,
                   help="resolv.conf read by --upstream auto (default /etc/resolv.conf)")
    p.add_argument("--ttl", type=int, default=None, help="TTL of cluster records, seconds (default 5)")
    p.add_argument("--pods", choices=("verified", "insecure", "disabled"), default=None,
                   help="<a-b-c-d>.<ns>.pod.<domain> records: only for existing pods (verified, the "
                        "default), for any address (insecure), or none")
    p.add_argument("--dns-ip", default=None, help="this server's Service IP, for the zone's NS record")
    p.add_argument("--health-port", type=int, default=None, help="/health port (default 8080; -1: off)")
    p.add_argument("--ready-port", type=int, default=None, help="/ready port (default 8181; -1: off)")
    p.add_argument("--conf", "-conf", dest="conf", default=None,
                   help="a CoreDNS Corefile to take the zone, port, forward, ttl, pods, health and ready "
                        "settings from (flags given explicitly win)")
    p.add_argument("--log-level", default="WARNING", help="DEBUG, INFO, WARNING, ERROR")
    return p


DEFAULTS = {"cluster_domain": "cluster.local", "port": 53, "upstream": "auto",
            "resolv_conf": "/etc/resolv.conf", "ttl": 5, "pods": "verified", "health_port": 8080,
            "ready_port": 8181}


def _apply_corefile(p: argparse.ArgumentParser, args: argparse.Namespace) -> None:
    """Fill unset flags from the Corefile (if any), then from DEFAULTS."""
    if args.conf:
        try:
            text = Path(args.conf).read_text()
        except OSError as e:
            p.error(f"-conf {args.conf!r}: cannot read the Corefile: {e.strerror}")
        try:
            core = parse_corefile(text)
        except CorefileError as e:
            p.error(f"-conf {args.conf!r}: {e}")
        if core.pods is not None and core.pods not in ("verified", "insecure", "disabled"):
            p.error(f"-conf {args.conf!r}: kubernetes pods {core.pods!r} is not supported: "
                    "use verified, insecure or disabled")
        for key in DEFAULTS:
            if getattr(args, key) is None and getattr(core, key) is not None:
                setattr(args, key, getattr(core, key))
    for key, value in DEFAULTS.items():
        if getattr(args, key) is None:
            setattr(args, key, value)


def _check_args(p: argparse.ArgumentParser, args: argparse.Namespace) -> None:
    _apply_corefile(p, args)
    if not args.api_server:
        p.error("--api-server is required (or set PODNET_API_SERVER), e.g. unix:///var/lib/podnet/"
                "clusters/podnet/api.sock or http://127.0.0.1:6443")
    if not args.api_server.startswith(("http://", "https://", "unix://")):
        p.error(f"--api-server {args.api_server!r}: must start with http://, https:// or unix://")
    if not 0 <= args.port < 65536:
        p.error(f"--port {args.port}: must be in 0-65535")
    if args.ttl < 0:
        p.error(f"--ttl {args.ttl}: must be 0 or more")
    if args.upstream_timeout <= 0:
        p.error(f"--upstream-timeout {args.upstream_timeout}: must be more than 0")
    try:
        choose_upstreams(args.upstream, args.resolv_conf)
    except ValueError as e:
        p.error(str(e))
    domain = args.cluster_domain.strip(".")
    if not domain or any(not part for part in domain.split(".")):
        p.error(f"--cluster-domain {args.cluster_domain!r}: must be a DNS name such as cluster.local")


async def run(args: argparse.Namespace) -> int:
    # the pod's ServiceAccount token when no token is given (re-read as the node rotates it)
    token_file = args.token_file if not args.token and args.token_file else None
    # in-cluster (no $SSL_CERT_FILE): trust the cluster CA the ServiceAccount volume carries
    ca_file = SA_CA_FILE if args.api_server.startswith("https://") and not os.environ.get("SSL_CERT_FILE") \
        and os.path.exists(SA_CA_FILE) else None
    dns = ClusterDns(args.api_server, args.token, token_file=token_file, ca_file=ca_file,
                     cluster_domain=args.cluster_domain, listen=args.listen,
                     port=args.port, upstream=args.upstream, ttl=args.ttl, pods=args.pods,
                     dns_ip=args.dns_ip, health_port=args.health_port, ready_port=args.ready_port,
                     resolv_conf=args.resolv_conf, upstream_timeout=args.upstream_timeout)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    try:
        port = await dns.start()
    except OSError as e:
        print(f"error: {e}", file=sys.stderr)
        await dns.stop()
        return 1
    log.info("cluster DNS for %s on %s:%d, upstream %s", dns.index.zone, args.listen, port,
             dns.forwarder.upstreams or "none")
    try:
        await stop.wait()
    finally:
        await dns.stop()
    return 0


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """Command-line flags, completed from -conf (a Corefile) and the defaults, checked (exit 2 if bad)."""
    p = build_parser()
    args = p.parse_args(argv)
    _check_args(p, args)
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    logging.basicConfig(level=args.log_level.upper(), format="%(asctime)s %(name)s %(levelname)s %(message)s")
    return asyncio.run(run(args))


if __name__ == "__main__":
    sys.exit(main())
