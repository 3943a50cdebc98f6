"""The API server's listeners: what happens on a connection before a request reaches the app.

    await APISite(runner, host, port, ssl_context=ctx).start()      # TCP, TLS or plain
    await APISite(runner, unix_path=path).start()                     # unix socket (plain)

As kube-apiserver (Go's net/http) does:
- a TLS port answers a plain-HTTP request with `400 Bad Request` and the text "Client sent an HTTP
  request to an HTTPS server." instead of dropping it; other non-TLS bytes are closed on;
- request headers may take up to 1 MiB (Go's DefaultMaxHeaderBytes; aiohttp's default is 8 KiB per
  line), and a request aiohttp cannot parse (header too long, bad request line) is answered with a
  Kubernetes `Status` (JSON), not aiohttp's plain text;
- no access log per request (aiohttp logs every request at INFO): podnet.api.server logs requests at
  debug level.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import socket
import ssl
from collections.abc import Callable
from typing import Any

from aiohttp import web
from aiohttp.http_exceptions import HttpProcessingError, LineTooLong
from aiohttp.web_protocol import RequestHandler
from aiohttp.web_request import BaseRequest

MAX_HEADER_BYTES = 1 << 20
HANDLER_ARGS: dict[str, Any] = {"max_line_size": MAX_HEADER_BYTES, "max_field_size": MAX_HEADER_BYTES,
                                "access_log": None}
"""Keyword arguments for web.AppRunner (passed on to every connection's RequestHandler)."""

PLAIN_HTTP_ON_TLS = b"HTTP/1.0 400 Bad Request\r\n\r\nClient sent an HTTP request to an HTTPS server.\n"
_HTTP_STARTS = (b"GET /", b"HEAD ", b"POST ", b"PUT /", b"OPTIO")  # Go: tlsRecordHeaderLooksLikeHTTP
FIRST_BYTES_TIMEOUT = 10.0


class StatusErrorHandler(RequestHandler):
    """aiohttp's RequestHandler whose answers to unparsable requests are Kubernetes Status JSON."""

    __slots__ = ()

    def handle_error(self, request: BaseRequest, status: int = 500, exc: BaseException | None = None,
                     message: str | None = None) -> web.StreamResponse:
        resp = super().handle_error(request, status, exc, message)  # logs, checks nothing was sent
        if isinstance(exc, LineTooLong):
            text = f"Request Header Fields Too Large: a request line or header may take at most " \
                   f"{MAX_HEADER_BYTES} bytes"
        elif isinstance(exc, HttpProcessingError):
            text = " ".join(exc.message.split())
        else:
            text = " ".join(str(exc or message or "").split()) or "the request could not be parsed"
        reason = "BadRequest" if status == 400 else "InternalError" if status >= 500 else "Invalid"
        if status >= 500:
            text = "Internal error occurred: the request could not be handled"
        body = {"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
                "message": text, "reason": reason, "code": status}
        out = web.Response(status=resp.status, body=json.dumps(body, separators=(",", ":")).encode() + b"\n",
                           content_type="application/json")
        out.force_close()
        return out


def _protocol_factory(runner: web.BaseRunner) -> Callable[[], RequestHandler]:
    server = runner.server
    assert server is not None, "runner.setup() first"

    def make() -> RequestHandler:
        handler = server()
        handler.__class__ = StatusErrorHandler  # same slots, one method more
        return handler

    return make


class _SniffingServer(asyncio.AbstractServer):
    """Accepts on a listening socket and looks at each connection's first bytes: TLS goes to the
    app over ssl_context, plain HTTP gets Go's 400 text, anything else is closed."""

    def __init__(self, sock: socket.socket, factory: Callable[[], RequestHandler], ctx: ssl.SSLContext):
        self._sock = sock
        self._factory = factory
        self._ctx = ctx
        self._loop = asyncio.get_running_loop()
        self._accepting = self._loop.create_task(self._accept())
        self._tasks: set[asyncio.Task[None]] = set()

    @property
    def sockets(self) -> tuple[socket.socket, ...]:
        return (self._sock,) if self._sock.fileno() >= 0 else ()

    def close(self) -> None:
        self._accepting.cancel()
        for t in self._tasks:
            t.cancel()
        self._sock.close()

    async def wait_closed(self) -> None:
        with contextlib.suppress(asyncio.CancelledError):
            await self._accepting

    def get_loop(self) -> asyncio.AbstractEventLoop:
        return self._loop

    def is_serving(self) -> bool:
        return not self._accepting.done()

    async def start_serving(self) -> None:
        return None

    async def serve_forever(self) -> None:
        await self._accepting

    async def _accept(self) -> None:
        while True:
            try:
                conn, _ = await self._loop.sock_accept(self._sock)
            except OSError:
                if self._sock.fileno() < 0:
                    return
                await asyncio.sleep(0.1)  # e.g. EMFILE: try again shortly
                continue
            task = self._loop.create_task(self._serve(conn))
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)

    async def _first_bytes(self, conn: socket.socket) -> bytes:
        readable: asyncio.Future[None] = self._loop.create_future()

        def ready() -> None:
            if not readable.done():
                readable.set_result(None)

        self._loop.add_reader(conn.fileno(), ready)
        try:
            await asyncio.wait_for(readable, FIRST_BYTES_TIMEOUT)
        finally:
            self._loop.remove_reader(conn.fileno())
        return conn.recv(5, socket.MSG_PEEK)

    async def _serve(self, conn: socket.socket) -> None:
        conn.setblocking(False)
        try:
            head = await self._first_bytes(conn)
            if head[:1] == b"\x16":  # a TLS handshake record
                await self._loop.connect_accepted_socket(self._factory, conn, ssl=self._ctx)
                return
            with contextlib.suppress(BlockingIOError):
                conn.recv(65536)  # consume what came: closing on unread data would send a reset
            if head.startswith(_HTTP_STARTS):
                await self._loop.sock_sendall(conn, PLAIN_HTTP_ON_TLS)
            conn.shutdown(socket.SHUT_WR)
        except (OSError, TimeoutError, ssl.SSLError):
            pass
        except asyncio.CancelledError:
            conn.close()
            raise
        conn.close()


class APISite(web.BaseSite):
    """A TCP (plain or TLS) or unix-socket listener of the API server (see the module docstring)."""

    __slots__ = ("_host", "_port", "_unix_path")

    def __init__(self, runner: web.BaseRunner, host: str | None = None, port: int = 0, *,
                 ssl_context: ssl.SSLContext | None = None, unix_path: str | None = None):
        super().__init__(runner, ssl_context=ssl_context)
        self._host = host
        self._port = port
        self._unix_path = unix_path

    @property
    def name(self) -> str:
        if self._unix_path:
            return f"http://unix:{self._unix_path}:"
        return f"{'https' if self._ssl_context else 'http'}://{self._host or '0.0.0.0'}:{self._port}"

    async def start(self) -> None:
        await super().start()
        loop = asyncio.get_running_loop()
        factory = _protocol_factory(self._runner)
        if self._unix_path:
            self._server = await loop.create_unix_server(factory, self._unix_path, backlog=self._backlog)
        elif self._ssl_context is None:
            self._server = await loop.create_server(factory, self._host, self._port, backlog=self._backlog,
                                                    reuse_address=True)
        else:
            sock = socket.create_server((self._host or "", self._port), backlog=self._backlog,
                                        reuse_port=False, family=_family(self._host))
            sock.setblocking(False)
            self._server = _SniffingServer(sock, factory, self._ssl_context)


def _family(host: str | None) -> socket.AddressFamily:
    return socket.AF_INET6 if host and ":" in host else socket.AF_INET
