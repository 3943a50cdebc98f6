"""`kubectl exec` over plain SPDY/3.1 (`KUBECTL_REMOTE_COMMAND_WEBSOCKETS=false`, kubectl before v1.30,
client-go's SPDY executor), bridged onto the node agent's `channel.k8s.io` WebSocket (agent/exec_ws.py):
the same exec backend as the WebSocket path, only the client side differs.

The handshake (api/upgrade.py) picks the client's first `X-Stream-Protocol-Version` among `PROTOCOLS`, as the
kubelet's remotecommand server does. The client then opens one SPDY stream per standard stream, named by its
`streamType` header: `error` (always), `stdin`, `stdout`, `stderr` (never with a TTY) and, with a TTY from
v3 on, `resize`. The server waits up to 30 s (the kubelet's stream creation timeout) for as many streams as
the request asked for, and only then reads the agent, so nothing the command prints is lost. Then:
  agent channel 1 / 2           -> the stdout / stderr stream
  stdin stream data, its FIN    -> channel 0; the v5 CLOSE signal for stdin (channel 255)
  resize stream                 -> a sequence of JSON TerminalSize objects, each sent on channel 4
  agent status (channel 3)      -> the error stream: v4 the metav1.Status JSON as is (kubectl takes the
                                   exit code from its ExitCode cause); v1-v3 a failure's message text,
                                   nothing on success
When the agent's stream ends the stdout, stderr and error streams get FIN (kubectl reads each to its end),
then GOAWAY, and the connection closes. A client that goes away closes the agent's stream, which ends the
command.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging

import aiohttp
from aiohttp import WSMsgType

from podnet.api import spdy
from podnet.api.channels import CLOSE, LOST_STATUS, RESIZE, STATUS, STDERR, STDIN, STDOUT, StreamFlags
from podnet.api.upgrade import Upgraded

log = logging.getLogger(__name__)

V4, V3, V2, V1 = "v4.channel.k8s.io", "v3.channel.k8s.io", "v2.channel.k8s.io", "channel.k8s.io"
PROTOCOLS = (V4, V3, V2, V1)
STREAM_CREATION_TIMEOUT = 30.0
MAX_RESIZE_BACKLOG = 4096  # bytes of an unfinished resize message before the resize stream is ignored


def supports_resize(protocol: str) -> bool:
    return protocol in (V4, V3)


def expected_streams(flags: StreamFlags, protocol: str) -> int:
    """How many streams the client opens for this request (the kubelet counts them the same way)."""
    return (1 + flags.stdin + flags.stdout + flags.stderr
            + (flags.tty and supports_resize(protocol)))


def stream_types(protocol: str) -> tuple[str, ...]:
    return ("error", "stdin", "stdout", "stderr", "resize") if supports_resize(protocol) else \
        ("error", "stdin", "stdout", "stderr")


def error_stream_payload(protocol: str, status: bytes) -> bytes:
    """What the error stream carries for the agent's metav1.Status: the JSON itself from v4 on; before,
    the message of a failure as text and nothing for success (the kubelet's v1WriteStatusFunc)."""
    if protocol == V4:
        return status
    try:
        st = json.loads(status)
    except ValueError:
        return status
    if not isinstance(st, dict) or st.get("status") == "Success":
        return b""
    return str(st.get("message") or "").encode()


class ResizeDecoder:
    """The resize stream is a sequence of JSON objects (`{"Width":W,"Height":H}`), split anywhere."""

    def __init__(self) -> None:
        self._buf = ""
        self._decoder = json.JSONDecoder()
        self.broken = False

    def feed(self, data: bytes) -> list[dict[str, int]]:
        if self.broken:
            return []
        self._buf += data.decode("utf-8", errors="replace")
        sizes: list[dict[str, int]] = []
        while True:
            text = self._buf.lstrip()
            if not text:
                self._buf = ""
                return sizes
            try:
                obj, end = self._decoder.raw_decode(text)
            except ValueError:
                self._buf = text
                if len(text) > MAX_RESIZE_BACKLOG:
                    self.broken = True  # not JSON: the kubelet stops reading resizes too
                return sizes
            self._buf = text[end:]
            if isinstance(obj, dict):
                with contextlib.suppress(TypeError, ValueError):
                    sizes.append({"Width": int(obj.get("Width") or 0), "Height": int(obj.get("Height") or 0)})


async def serve(conn: Upgraded, upstream: aiohttp.ClientWebSocketResponse, protocol: str,
                flags: StreamFlags) -> None:
    """Run one exec session on an upgraded connection until the agent or the client ends it."""
    expected = expected_streams(flags, protocol)
    known = stream_types(protocol)
    streams: dict[str, spdy.Stream] = {}
    arrived = asyncio.Event()
    count = 0

    def on_stream(stream: spdy.Stream) -> None:
        nonlocal count
        kind = stream.header("streamType")
        if kind not in known:
            log.info("exec over SPDY: unexpected stream type %r", kind)
            return
        streams[kind] = stream
        count += 1
        if count >= expected:
            arrived.set()

    session = spdy.Session(conn.write, on_stream)
    reader = asyncio.create_task(session.serve(conn.read), name="exec-spdy-client")
    try:
        waiting = asyncio.create_task(arrived.wait())
        done, _ = await asyncio.wait({reader, waiting}, timeout=STREAM_CREATION_TIMEOUT,
                                     return_when=asyncio.FIRST_COMPLETED)
        waiting.cancel()
        if not arrived.is_set():
            log.info("exec over SPDY: %s", "timed out waiting for client to create streams"
                     if reader not in done else "the client left before creating its streams")
            return
        if protocol == V1 and "stdin" in streams:
            await streams["stdin"].close()  # v1 clients expect the server's side of stdin closed at once
        await _bridge(streams, upstream, protocol, reader)
        await session.goaway()
    finally:
        reader.cancel()
        with contextlib.suppress(asyncio.CancelledError, spdy.ProtocolError, ConnectionError, RuntimeError):
            await reader
        session.close()


async def _bridge(streams: dict[str, spdy.Stream], upstream: aiohttp.ClientWebSocketResponse,
                  protocol: str, client: asyncio.Task[None]) -> None:
    pumps: list[asyncio.Task[None]] = []
    if "stdin" in streams:
        pumps.append(asyncio.create_task(_stdin(streams["stdin"], upstream)))
    if "resize" in streams:
        pumps.append(asyncio.create_task(_resize(streams["resize"], upstream)))
    to_client = asyncio.create_task(_from_agent(streams, upstream))
    try:
        done, _ = await asyncio.wait({to_client, client}, return_when=asyncio.FIRST_COMPLETED)
        if to_client not in done:  # the client went away: closing the agent's stream ends the command
            with contextlib.suppress(ConnectionError, RuntimeError):
                await upstream.close()
            return
        status = to_client.result()
        with contextlib.suppress(ConnectionError, RuntimeError):
            for kind in ("stdout", "stderr"):
                if kind in streams:
                    await streams[kind].close()
            error = streams.get("error")
            if error is not None:
                payload = error_stream_payload(protocol, status or json.dumps(LOST_STATUS).encode())
                if payload:
                    await error.write(payload)
                await error.close()
    finally:
        for task in (*pumps, to_client):
            task.cancel()
        for task in (*pumps, to_client):
            with contextlib.suppress(asyncio.CancelledError, ConnectionError, RuntimeError):
                await task


async def _from_agent(streams: dict[str, spdy.Stream], upstream: aiohttp.ClientWebSocketResponse) -> bytes:
    """Copy the agent's stdout/stderr to the client's streams; the status payload (b"" if none came)."""
    targets = {STDOUT: streams.get("stdout"), STDERR: streams.get("stderr")}
    status = b""
    async for msg in upstream:
        if msg.type == WSMsgType.BINARY:
            data: bytes = msg.data
        elif msg.type == WSMsgType.TEXT:
            data = msg.data.encode()
        else:
            break
        if not data:
            continue
        channel, payload = data[0], data[1:]
        if channel == STATUS:
            status = payload
        else:
            target = targets.get(channel)
            if target is not None and payload:
                await target.write(payload)
    return status


async def _stdin(stream: spdy.Stream, upstream: aiohttp.ClientWebSocketResponse) -> None:
    while chunk := await stream.read():
        await upstream.send_bytes(bytes([STDIN]) + chunk)
    if upstream.protocol == "v5.channel.k8s.io" and not upstream.closed:
        await upstream.send_bytes(bytes([CLOSE, STDIN]))  # the client closed stdin: so does the command


async def _resize(stream: spdy.Stream, upstream: aiohttp.ClientWebSocketResponse) -> None:
    decoder = ResizeDecoder()
    while chunk := await stream.read():
        for size in decoder.feed(chunk):
            await upstream.send_bytes(bytes([RESIZE]) + json.dumps(size).encode())
