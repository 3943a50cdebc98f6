"""Forwarding of names outside the cluster domain to upstream resolvers, with a hard deadline.

`choose_upstreams("auto")` takes the nameservers of the host's resolv.conf that this
network namespace can route to (checked with a connected UDP socket: no packet is
sent), skipping loopback addresses (inside a pod namespace they are not the host's
resolver, and could be this server itself).
"""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
import socket
from pathlib import Path

from dnslib import DNSRecord

Upstream = tuple[str, int]


def parse_upstream(text: str) -> Upstream:
    """`10.0.0.2`, `10.0.0.2:5353`, `fd00::2`, `[fd00::2]:5353` -> (ip, port)."""
    text = text.strip()
    host, port = text, 53
    if text.startswith("["):
        host, _, rest = text[1:].partition("]")
        if rest.startswith(":"):
            port = int(rest[1:])
    elif text.count(":") == 1:
        host, _, p = text.partition(":")
        port = int(p)
    try:
        ip = ipaddress.ip_address(host)
    except ValueError:
        raise ValueError(f"--upstream {text!r}: not an IP address (use IP, IP:PORT, auto or none)") from None
    if not 0 < port < 65536:
        raise ValueError(f"--upstream {text!r}: port {port} is not in 1-65535")
    return str(ip), port


def routable(ip: str, port: int = 53) -> bool:
    family = socket.AF_INET6 if ":" in ip else socket.AF_INET
    with socket.socket(family, socket.SOCK_DGRAM) as s:
        try:
            s.connect((ip, port))  # a route lookup only: UDP connect sends nothing
        except OSError:
            return False
    return True


def choose_upstreams(spec: str, resolv_conf: str = "/etc/resolv.conf") -> list[Upstream]:
    """`none` -> []; `auto` -> reachable host resolvers; else a comma-separated list of IP[:PORT]."""
    spec = spec.strip()
    if spec in ("", "none"):
        return []
    if spec != "auto":
        return [parse_upstream(part) for part in spec.split(",") if part.strip()]
    try:
        text = Path(resolv_conf).read_text()
    except OSError:
        return []
    out: list[Upstream] = []
    for line in text.splitlines():
        fields = line.split("#", 1)[0].split()
        if len(fields) >= 2 and fields[0] == "nameserver":
            try:
                ip = ipaddress.ip_address(fields[1].split("%")[0])
            except ValueError:
                continue
            if ip.is_loopback or ip.is_unspecified:
                continue
            if routable(str(ip)):
                out.append((str(ip), 53))
    return out


class _OneAnswer(asyncio.DatagramProtocol):
    def __init__(self, txid: int, fut: asyncio.Future[bytes]):
        self.txid = txid
        self.fut = fut

    def datagram_received(self, data: bytes, addr: tuple[str | object, ...]) -> None:
        if len(data) >= 12 and int.from_bytes(data[:2], "big") == self.txid and not self.fut.done():
            self.fut.set_result(data)

    def error_received(self, exc: Exception) -> None:
        if not self.fut.done():
            self.fut.set_exception(exc)


async def udp_exchange(server: Upstream, query: bytes, timeout: float) -> bytes:
    loop = asyncio.get_running_loop()
    fut: asyncio.Future[bytes] = loop.create_future()
    txid = int.from_bytes(query[:2], "big")
    transport, _ = await loop.create_datagram_endpoint(lambda: _OneAnswer(txid, fut), remote_addr=server)
    try:
        transport.sendto(query)
        return await asyncio.wait_for(fut, timeout)
    finally:
        transport.close()


async def tcp_exchange(server: Upstream, query: bytes, timeout: float) -> bytes:
    async def go() -> bytes:
        reader, writer = await asyncio.open_connection(server[0], server[1])
        try:
            writer.write(len(query).to_bytes(2, "big") + query)
            await writer.drain()
            n = int.from_bytes(await reader.readexactly(2), "big")
            return await reader.readexactly(n)
        finally:
            writer.close()
            with contextlib.suppress(Exception):
                await writer.wait_closed()
    return await asyncio.wait_for(go(), timeout)


class Forwarder:
    """Tries each upstream in turn within one overall deadline; None when none answered."""

    def __init__(self, upstreams: list[Upstream], timeout: float = 2.0, max_inflight: int = 256):
        self.upstreams = upstreams
        self.timeout = timeout
        self._max = max_inflight
        self._inflight = 0
        self._pending: set[bytes] = set()  # queries out upstream right now, to spot a forwarding loop

    @property
    def enabled(self) -> bool:
        return bool(self.upstreams)

    def busy(self) -> bool:
        return self._inflight >= self._max

    def looping(self, query: bytes) -> bool:
        """True when this very query (same id and bytes) is already out upstream: it came back to us."""
        return bytes(query) in self._pending

    async def forward(self, query: bytes, *, tcp: bool = False) -> bytes | None:
        if not self.upstreams or self.busy():
            return None
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.timeout
        self._inflight += 1
        key = bytes(query)
        self._pending.add(key)
        try:
            per_try = max(self.timeout / len(self.upstreams), 0.2)
            for server in self.upstreams:
                left = deadline - loop.time()
                if left <= 0:
                    break
                try:
                    data = await udp_exchange(server, query, min(per_try, left))
                    if DNSRecord.parse(data).header.tc:
                        left = deadline - loop.time()
                        if tcp and left > 0:
                            data = await tcp_exchange(server, query, left)
                    return data
                except (TimeoutError, OSError, EOFError, asyncio.IncompleteReadError):
                    continue
                except Exception:  # an unparsable upstream answer: try the next one
                    continue
            return None
        finally:
            self._inflight -= 1
            self._pending.discard(key)
