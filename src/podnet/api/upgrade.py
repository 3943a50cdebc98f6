"""A plain HTTP/1.1 connection upgrade on aiohttp's server: `101 Switching Protocols`, then the handler
owns the connection's bytes both ways (what Go's `http.Hijacker` gives the kubelet for SPDY/3.1).

aiohttp upgrades to WebSocket by itself only, and its HTTP parser does not treat `Upgrade: SPDY/3.1` as an
upgrade. Its request handler has the hook its own `WebSocketResponse` takes the connection over with:
`RequestHandler.set_parser(parser)` sends every byte that arrives from then on to `parser.feed_data()`
instead of the HTTP parser, and calls `parser.feed_eof()` when the connection is lost. `accept()` installs
such a parser (a byte buffer with flow control: the transport stops reading while more than `LIMIT`
bytes wait) *before* it writes the 101, so no byte of the new protocol is ever parsed as HTTP. Writes go
through the response's payload writer, which adds no framing to a 101 (no chunked encoding, no length)
and waits for the transport to drain. The response is marked `force_close`: when the handler returns it,
aiohttp closes the connection instead of reading another request from it.
"""

from __future__ import annotations

import asyncio
from typing import Any

from aiohttp import web
from multidict import CIMultiDict

from podnet.api.errors import APIError, bad_request

LIMIT = 1 << 20  # bytes read ahead of the consumer before the transport stops reading


class _Inbox:
    """The parser aiohttp feeds once the connection is ours: bytes in arrival order, then end of file."""

    def __init__(self, transport: asyncio.Transport | None):
        self._transport = transport
        self._buf = bytearray()
        self._eof = False
        self._paused = False
        self._waiter: asyncio.Future[None] | None = None

    def _wake(self) -> None:
        if self._waiter is not None and not self._waiter.done():
            self._waiter.set_result(None)

    # aiohttp's payload-parser interface (what RequestHandler.data_received/connection_lost call)
    def feed_data(self, data: bytes) -> tuple[bool, bytes]:
        self._buf += data
        self._wake()
        if len(self._buf) > LIMIT and not self._paused and self._transport is not None:
            self._paused = True
            self._transport.pause_reading()
        return False, b""

    def feed_eof(self) -> None:
        self._eof = True
        self._wake()

    async def read(self) -> bytes:
        while not self._buf and not self._eof:
            self._waiter = asyncio.get_running_loop().create_future()
            try:
                await self._waiter
            finally:
                self._waiter = None
        data = bytes(self._buf)
        self._buf.clear()
        transport = self._transport
        if self._paused and not self._eof and transport is not None and not transport.is_closing():
            self._paused = False
            transport.resume_reading()
        return data


class Upgraded:
    """The taken-over connection: `read()` (b"" once the client closed it) and `write()`."""

    def __init__(self, response: web.StreamResponse, inbox: _Inbox):
        self.response = response
        self._inbox = inbox

    async def read(self) -> bytes:
        return await self._inbox.read()

    async def write(self, data: bytes) -> None:
        await self.response.write(data)


def wants_upgrade(request: web.Request, protocol: str) -> bool:
    """`Connection` names `upgrade` and `Upgrade` names `protocol` (case-insensitive substrings, as
    k8s.io/apimachinery's SPDY response upgrader checks them)."""
    connection = ",".join(request.headers.getall("Connection", [])).lower()
    upgrade = ",".join(request.headers.getall("Upgrade", [])).lower()
    return "upgrade" in connection and protocol.lower() in upgrade


async def accept(request: web.Request, protocol: str, headers: dict[str, str]) -> Upgraded:
    """Answer `101 Switching Protocols` (`Connection: Upgrade`, `Upgrade: <protocol>`, plus `headers`) and
    take the connection over. Return the response object from the handler once done with it."""
    handler: Any = request.protocol  # aiohttp's RequestHandler; set_parser is typed for its WebSocketReader
    inbox = _Inbox(request.transport)
    handler.set_parser(inbox)
    response = web.StreamResponse(status=101, reason="Switching Protocols",
                                  headers={"Connection": "Upgrade", "Upgrade": protocol, **headers})
    response.force_close()
    await response.prepare(request)
    return Upgraded(response, inbox)


# ---- the httpstream handshake (k8s.io/apimachinery/pkg/util/httpstream: Handshake) -------------------

PROTOCOL_VERSION = "X-Stream-Protocol-Version"
ACCEPTED_VERSIONS = "X-Accepted-Stream-Protocol-Versions"


class NegotiationError(APIError):
    """No protocol both sides speak: 403, with the server's list in X-Accepted-Stream-Protocol-Versions."""

    def __init__(self, offered: list[str], supported: tuple[str, ...]):
        super().__init__(403, "Forbidden", "unable to upgrade: unable to negotiate protocol: client supports "
                         f"[{' '.join(offered)}], server accepts [{' '.join(supported)}]")
        self.supported = supported

    def response(self) -> web.Response:
        headers = CIMultiDict([(ACCEPTED_VERSIONS, p) for p in self.supported])
        headers["Cache-Control"] = "no-cache, private"
        return web.Response(status=self.code, body=self.body(), content_type="application/json",
                            headers=headers)


def negotiate(request: web.Request, supported: tuple[str, ...]) -> str:
    """The protocol for the stream: the first of the client's `X-Stream-Protocol-Version` values (comma
    separated, in its order of preference) that the server speaks. No header: 400; no common one:
    NegotiationError (403)."""
    offered = [p.strip() for h in request.headers.getall(PROTOCOL_VERSION, []) for p in h.split(",")
               if p.strip()]
    if not offered:
        raise bad_request(f"unable to upgrade: {PROTOCOL_VERSION} is required")
    chosen = next((p for p in offered if p in supported), "")
    if not chosen:
        raise NegotiationError(offered, supported)
    return chosen
