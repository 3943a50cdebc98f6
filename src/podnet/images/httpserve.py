"""A tiny asyncio HTTP/1.1 server for the built-in images: one request per connection, stdlib only.

Images must start fast, so this avoids importing aiohttp.
"""

from __future__ import annotations

import asyncio
import logging
import sys
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from urllib.parse import parse_qs, urlsplit

log = logging.getLogger(__name__)

REASONS = {200: "OK", 201: "Created", 204: "No Content", 301: "Moved Permanently", 302: "Found",
           400: "Bad Request", 404: "Not Found", 405: "Method Not Allowed", 412: "Precondition Failed",
           500: "Internal Server Error", 503: "Service Unavailable"}


@dataclass
class Request:
    method: str
    path: str
    query: dict[str, list[str]]
    headers: dict[str, str]
    peer: tuple[str, int]
    body: bytes = b""

    def arg(self, name: str, default: str = "") -> str:
        vals = self.query.get(name)
        return vals[0] if vals else default


@dataclass
class Response:
    status: int = 200
    body: bytes | str = b""
    content_type: str = "text/plain; charset=utf-8"
    headers: dict[str, str] = field(default_factory=dict)


Handler = Callable[[Request], Awaitable[Response]]


def peer_of(writer: asyncio.StreamWriter) -> tuple[str, int]:
    peer = writer.get_extra_info("peername") or ("", 0)
    host = str(peer[0])
    if host.startswith("::ffff:"):
        host = host[len("::ffff:"):]
    return host, int(peer[1])


async def _read_request(reader: asyncio.StreamReader, peer: tuple[str, int]) -> Request | None:
    line = await reader.readline()
    if not line:
        return None
    parts = line.decode("latin-1").strip().split()
    if len(parts) < 2:
        raise ValueError("bad request line")
    headers: dict[str, str] = {}
    while True:
        h = await reader.readline()
        if h in (b"\r\n", b"\n", b""):
            break
        k, _, v = h.decode("latin-1").partition(":")
        headers[k.strip().lower()] = v.strip()
    body = b""
    n = int(headers.get("content-length", "0") or 0)
    if 0 < n <= 10 * 1024 * 1024:
        body = await reader.readexactly(n)
    url = urlsplit(parts[1])
    return Request(parts[0].upper(), url.path or "/", parse_qs(url.query, keep_blank_values=True),
                   headers, peer, body)


async def _write_response(writer: asyncio.StreamWriter, resp: Response, head_only: bool) -> None:
    body = resp.body.encode() if isinstance(resp.body, str) else resp.body
    lines = [f"HTTP/1.1 {resp.status} {REASONS.get(resp.status, 'Status')}",
             f"Content-Type: {resp.content_type}", f"Content-Length: {len(body)}", "Connection: close"]
    lines += [f"{k}: {v}" for k, v in resp.headers.items()]
    writer.write(("\r\n".join(lines) + "\r\n\r\n").encode("latin-1"))
    if not head_only:
        writer.write(body)
    await writer.drain()


def make_connection_handler(handler: Handler) -> Callable[[asyncio.StreamReader, asyncio.StreamWriter],
                                                          Awaitable[None]]:
    async def on_conn(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            req = await asyncio.wait_for(_read_request(reader, peer_of(writer)), 30)
            if req is None:
                return
            try:
                resp = await handler(req)
            except Exception as e:  # a handler bug answers 500, never kills the server
                log.exception("handler failed")
                resp = Response(500, f"internal error: {e}\n")
            await _write_response(writer, resp, req.method == "HEAD")
        except (TimeoutError, ValueError, ConnectionError, asyncio.IncompleteReadError):
            pass
        finally:
            writer.close()
            try:
                await writer.wait_closed()
            except (ConnectionError, OSError):
                pass

    return on_conn


async def serve_http(handler: Handler, port: int, host: str | None = None) -> asyncio.Server:
    """Listen on host:port (all addresses when host is None); port 0 picks a free port."""
    return await asyncio.start_server(make_connection_handler(handler), host=host, port=port,
                                      reuse_address=True)


def bound_port(server: asyncio.Server) -> int:
    return int(server.sockets[0].getsockname()[1])


async def wait_forever_or_signal() -> None:
    """Block until SIGTERM or SIGINT (so containers stop promptly and cleanly)."""
    import signal

    loop = asyncio.get_running_loop()
    stop = asyncio.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    await stop.wait()


def serve_until_signal(handler: Handler, port: int, host: str | None, *, ready: str, prog: str) -> int:
    """An image's whole life as an HTTP server: listen, print `ready`, serve until SIGTERM or SIGINT.
    Returns the exit code: 0, or 1 with `<prog>: <error>` on stderr when it cannot listen."""

    async def run() -> None:
        await serve_http(handler, port, host)
        print(ready, flush=True)
        await wait_forever_or_signal()

    try:
        asyncio.run(run())
    except OSError as e:
        print(f"{prog}: {e}", file=sys.stderr)
        return 1
    return 0
