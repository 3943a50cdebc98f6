"""`pods/portforward`: `kubectl port-forward` and the Python client's `portforward`, to a pod's ports.

Two client protocols arrive on the same URL, both as a WebSocket upgrade:
- `SPDY/3.1+portforward.k8s.io` (kubectl >= v1.31, client-go's tunnelling dialer): the WebSocket's
  binary messages carry a SPDY/3.1 byte stream (api/spdy.py). For every local connection kubectl opens
  an *error* and a *data* stream with headers `streamType`, `port` and `requestID`; the pair is
  forwarded once both exist. The server ends both streams when the pod side ends; a failure is written
  to the error stream, which kubectl prints after `an error occurred forwarding L -> R:`.
- `v4.channel.k8s.io` (the official Python client): ports in the `ports` query; for the i-th port,
  channel 2i carries data and 2i+1 errors, each opened by a frame holding the port (2 bytes, little
  endian); the WebSocket closes when every port's connection has ended.
Each forwarded connection is one WebSocket to the node agent's `/portForward/<ns>/<pod>?port=N`
(agent/portforward.py), over the same mutual TLS as exec and logs.

- a plain `Upgrade: SPDY/3.1` with `X-Stream-Protocol-Version: portforward.k8s.io` (kubectl with
  KUBECTL_PORT_FORWARD_WEBSOCKETS=false, kubectl before v1.31, client-go's SPDY dialer): the API server
  answers `101 Switching Protocols` itself and runs the same SPDY session as in the WebSocket tunnel on the
  taken-over connection (api/upgrade.py).
kubectl resolves `deployment/x` and `svc/x` to a pod (and a Service port to its target port) itself.
Streams without a `requestID` header (clients older than Kubernetes 1.6) are paired as the kubelet does:
an error stream with id N and a data stream with id N+2.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import struct
from collections.abc import Awaitable, Callable
from urllib.parse import quote

import aiohttp
from aiohttp import WSMsgType, web

from podnet.api import objmeta, spdy, upgrade
from podnet.api.errors import APIError, bad_request
from podnet.api.exec_proxy import ExecProxy, offered_protocols
from podnet.model import kinds

log = logging.getLogger(__name__)

SPDY_TUNNEL = "SPDY/3.1+portforward.k8s.io"
CHANNELS = "v4.channel.k8s.io"
PROTOCOLS = (SPDY_TUNNEL, CHANNELS)
SPDY = "SPDY/3.1"
SPDY_PROTOCOLS = ("portforward.k8s.io",)  # X-Stream-Protocol-Version, as the kubelet's SupportedProtocols
PAIR_TIMEOUT = 30.0  # kubelet's streamCreationTimeout


def parse_ports(values: list[str]) -> list[int]:
    """The `ports` query (repeated or comma-separated), checked as the kubelet does."""
    ports: list[int] = []
    for value in values:
        for part in value.split(","):
            part = part.strip()
            try:
                port = int(part)
            except ValueError:
                raise bad_request(f'unable to parse "{part}" as a port: must be an integer') from None
            if not 0 < port < 65536:
                raise bad_request(f"port {port} must be > 0 and < 65536")
            ports.append(port)
    if not ports:
        raise bad_request("at least 1 port must be specified")
    return ports


class PodLink:
    """One forwarded TCP connection, through the agent: send/half-close upstream, iterate downstream."""

    def __init__(self, ws: aiohttp.ClientWebSocketResponse, session: aiohttp.ClientSession):
        self.ws = ws
        self._session = session
        self.error = ""

    async def send(self, data: bytes) -> None:
        if not self.ws.closed:
            await self.ws.send_bytes(data)

    async def shutdown_write(self) -> None:
        if not self.ws.closed:
            await self.ws.send_str(json.dumps({"shutdown": "write"}))

    async def pump_to(self, deliver: Callable[[bytes], Awaitable[None]]) -> None:
        """Deliver what the pod sends until it closes; `self.error` says why it could not connect."""
        async for msg in self.ws:
            if msg.type == WSMsgType.BINARY:
                await deliver(msg.data)
            elif msg.type == WSMsgType.TEXT:
                with contextlib.suppress(ValueError, AttributeError):
                    self.error = str(json.loads(msg.data).get("error") or "")
            else:
                break

    async def close(self) -> None:
        await self.ws.close()
        await self._session.close()


class PortForwardProxy:
    def __init__(self, nodes: ExecProxy):
        self.nodes = nodes  # resolves a pod's node endpoint and holds the kubelet client TLS

    async def _open(self, base: str, ns: str, name: str, port: int) -> PodLink:
        url = f"{base}/portForward/{quote(ns, safe='')}/{quote(name, safe='')}?port={port}"
        timeout = aiohttp.ClientTimeout(total=None, sock_connect=self.nodes.connect_timeout)
        session = aiohttp.ClientSession(timeout=timeout,
                                        connector=aiohttp.TCPConnector(ssl=self.nodes.kubelet_tls or False))
        try:
            ws = await session.ws_connect(url, max_msg_size=0)
        except aiohttp.WSServerHandshakeError as e:
            await session.close()
            raise ConnectionError(f"the node agent refused the forward: {e.status} {e.message}") from None
        except (aiohttp.ClientError, OSError, TimeoutError) as e:
            await session.close()
            raise ConnectionError(f"error dialing backend: {e}") from None
        return PodLink(ws, session)

    async def serve(self, request: web.Request, ns: str, name: str) -> web.StreamResponse:
        pod = await self.nodes.registry.get(kinds.PODS, ns, name)
        phase = str(objmeta.d(pod.get("status")).get("phase") or "")
        if phase in ("Succeeded", "Failed"):
            raise bad_request(f"cannot port-forward to a pod that has completed: pod {name} is {phase}")
        base = await self.nodes.node_base_url(pod)
        if request.headers.get("Upgrade", "").lower() != "websocket":
            if not upgrade.wants_upgrade(request, SPDY):
                raise bad_request("pods/portforward needs a connection upgrade: WebSocket "
                                  f"(Sec-WebSocket-Protocol {', '.join(PROTOCOLS)}) or {SPDY} "
                                  f"(X-Stream-Protocol-Version {', '.join(SPDY_PROTOCOLS)})")
            try:
                protocol = upgrade.negotiate(request, SPDY_PROTOCOLS)
            except upgrade.NegotiationError as e:
                return e.response()
            conn = await upgrade.accept(request, SPDY, {upgrade.PROTOCOL_VERSION: protocol})
            await self._serve_spdy(conn.write, conn.read, base, ns, name)
            return conn.response
        offered = offered_protocols(request)
        chosen = next((p for p in offered if p in PROTOCOLS), "")
        if not chosen:
            supported = ", ".join(f'"{p}"' for p in PROTOCOLS)
            raise bad_request(f'Sec-WebSocket-Protocol: Unsupported value: "{", ".join(offered)}": '
                              f"supported values: {supported}")
        ports = parse_ports(request.query.getall("ports", [])) if chosen == CHANNELS else []
        client = web.WebSocketResponse(protocols=(chosen,), max_msg_size=0, autoping=True)
        await client.prepare(request)
        try:
            if chosen == SPDY_TUNNEL:
                await self._serve_spdy(client.send_bytes, _binary_messages(client), base, ns, name)
            else:
                await self._serve_channels(client, base, ns, name, ports)
        finally:
            await client.close()
        return client

    # ---- SPDY, plain or tunnelled in a WebSocket (kubectl) ---------------------------------------------

    async def _serve_spdy(self, send: Callable[[bytes], Awaitable[None]],
                          receive: Callable[[], Awaitable[bytes]], base: str, ns: str, name: str) -> None:
        """One SPDY session: `receive()` gives the client's bytes (b"" at the end), `send` writes."""
        pairs: dict[str, dict[str, spdy.Stream]] = {}
        tasks: set[asyncio.Task[None]] = set()

        def on_stream(stream: spdy.Stream) -> None:
            kind = stream.header("streamType")
            key = stream.header("requestID") or str(stream.id - 2 if kind == "data" else stream.id)
            if kind not in ("data", "error"):
                task = asyncio.create_task(_refuse(stream, f'invalid stream type "{kind}"'))
            else:
                pair = pairs.setdefault(key, {})
                pair[kind] = stream
                if len(pair) < 2:
                    return
                del pairs[key]
                task = asyncio.create_task(self._forward_pair(base, ns, name, pair["data"], pair["error"]))
            tasks.add(task)
            task.add_done_callback(tasks.discard)

        session = spdy.Session(send, on_stream)
        try:
            await session.serve(receive)
        except spdy.ProtocolError as e:
            log.info("port-forward to %s/%s: %s", ns, name, e)
        finally:
            session.close()
            for t in list(tasks):
                t.cancel()
            for t in list(tasks):
                with contextlib.suppress(asyncio.CancelledError, Exception):
                    await t

    async def _forward_pair(self, base: str, ns: str, name: str, data: spdy.Stream,
                            error: spdy.Stream) -> None:
        session = data.session
        try:
            try:
                port = int(data.header("port"))
            except ValueError:
                await _refuse(error, f'invalid port "{data.header("port")}"', data)
                return
            try:
                link = await self._open(base, ns, name, port)
            except ConnectionError as e:
                await _refuse(error, str(e), data)
                return
            try:
                await _pipe(link, data.read, data.write)
                if link.error:
                    await error.write(link.error.encode())
            finally:
                await link.close()
            with contextlib.suppress(ConnectionError):
                await data.close()
                await error.close()
        except ConnectionError:
            pass  # the client went away
        finally:
            session.forget(data)
            session.forget(error)

    # ---- channels (Python client) -----------------------------------------------------------------

    async def _serve_channels(self, client: web.WebSocketResponse, base: str, ns: str, name: str,
                              ports: list[int]) -> None:
        lock = asyncio.Lock()

        async def send(channel: int, payload: bytes) -> None:
            async with lock:
                await client.send_bytes(bytes([channel]) + payload)

        inboxes: list[asyncio.Queue[bytes]] = []
        for i, port in enumerate(ports):
            for channel in (2 * i, 2 * i + 1):
                await send(channel, struct.pack("<H", port))
            inboxes.append(asyncio.Queue(maxsize=64))

        async def one(i: int, port: int) -> None:
            try:
                link = await self._open(base, ns, name, port)
            except ConnectionError as e:
                await send(2 * i + 1, str(e).encode())
                return
            try:
                async def deliver(chunk: bytes) -> None:
                    await send(2 * i, chunk)
                await _pipe(link, inboxes[i].get, deliver)
                if link.error:
                    await send(2 * i + 1, link.error.encode())
            finally:
                await link.close()

        forwards = asyncio.gather(*(one(i, p) for i, p in enumerate(ports)))

        async def read_client() -> None:
            async for msg in client:
                if msg.type != WSMsgType.BINARY or not msg.data:
                    break
                channel = msg.data[0]
                if channel % 2 == 0 and channel // 2 < len(inboxes) and len(msg.data) > 1:
                    await inboxes[channel // 2].put(bytes(msg.data[1:]))
            for q in inboxes:  # the client is gone: end every upstream
                with contextlib.suppress(asyncio.QueueFull):
                    q.put_nowait(b"")

        reader = asyncio.create_task(read_client())
        try:
            await forwards
        finally:
            reader.cancel()
            with contextlib.suppress(asyncio.CancelledError, ConnectionError):
                await reader


def _binary_messages(client: web.WebSocketResponse) -> Callable[[], Awaitable[bytes]]:
    """The WebSocket tunnel as a byte stream: the next binary message's bytes, b"" once it closes."""

    async def receive() -> bytes:
        while True:
            msg = await client.receive()
            if msg.type != WSMsgType.BINARY:
                return b""
            if msg.data:
                return bytes(msg.data)

    return receive


async def _pipe(link: PodLink, read: Callable[[], Awaitable[bytes]],
                deliver: Callable[[bytes], Awaitable[None]]) -> None:
    """Client bytes (`read()`, b"" at its end) up to the pod, pod bytes down through `deliver`, until
    the pod side ends."""

    async def up() -> None:
        while True:
            chunk = await read()
            if not chunk:
                await link.shutdown_write()
                return
            await link.send(chunk)

    up_task = asyncio.create_task(up())
    try:
        await link.pump_to(deliver)
    finally:
        up_task.cancel()
        with contextlib.suppress(asyncio.CancelledError, ConnectionError, RuntimeError):
            await up_task


async def _refuse(error: spdy.Stream, message: str, data: spdy.Stream | None = None) -> None:
    with contextlib.suppress(ConnectionError):
        await error.write(message.encode())
        await error.close()
        if data is not None:
            await data.close()
    error.session.forget(error)
    if data is not None:
        data.session.forget(data)


__all__ = ["PROTOCOLS", "APIError", "PortForwardProxy", "parse_ports"]
