"""`attach` on the kubelet endpoint: a WebSocket session on a running container's console.

GET /attach/<ns>/<pod>/<container>?stdin=1&stdout=1&stderr=1&tty=1
Subprotocols and framing as exec (agent/exec_ws.py: v5/v4.channel.k8s.io, one channel byte per
message), so the API server proxies both alike. The container's stdin and terminal are held by its
shim (agent/console.py), not by the agent: the session is a client of the shim's attach socket.

As containerd's attach (which the kubelet hands attach to): output is streamed from the moment of the
attach on (nothing is replayed; `kubectl logs` has the rest); input goes to the container only if its
spec has `stdin: true` (else the client's stdin, and its end, are ignored); with a terminal there is no
separate stderr. A session ends when the container exits, or when the client goes away; when the
client's stdin ends (v5 close of channel 0) the session ends too, except with `stdinOnce` and no
terminal, where the container's stdin is closed instead and the session streams on until the container
exits. The end is a Success status on channel 3, as the kubelet sends; the container's exit code is in
the pod's status (what `kubectl run` reads).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import socket
from pathlib import Path

from aiohttp import web

from podnet.agent.console import EXIT, RESIZE, STDIN_END, socket_path
from podnet.agent.exec_ws import PROTOCOLS
from podnet.agent.tty import channel_frames

STDIN, STDOUT, STDERR, STATUS, RESIZE_CHANNEL, CLOSE = 0, 1, 2, 3, 4, 255
SUCCESS = {"metadata": {}, "status": "Success"}
RECV = 64 * 1024 + 1


def _flag(request: web.Request, name: str) -> bool:
    return request.query.get(name, "").lower() in ("1", "true")


async def open_console(run_dir: Path) -> socket.socket | None:
    """A connection to the shim's attach socket in `run_dir`; None when nothing listens there."""
    try:
        dir_fd = os.open(run_dir, os.O_PATH | os.O_DIRECTORY | os.O_CLOEXEC)
    except OSError:
        return None
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_SEQPACKET | socket.SOCK_CLOEXEC)
    sock.setblocking(False)
    try:
        await asyncio.get_running_loop().sock_connect(sock, socket_path(dir_fd))
    except OSError:
        sock.close()
        return None
    finally:
        os.close(dir_fd)
    return sock


def resize_message(payload: bytes) -> bytes | None:
    """A channel-4 `{"Width": W, "Height": H}` as the console's RESIZE message."""
    try:
        size = json.loads(payload)
        width, height = int(size.get("Width", 0)), int(size.get("Height", 0))
    except (ValueError, TypeError, AttributeError):
        return None
    if not (0 <= width < 65536 and 0 <= height < 65536):
        return None
    return bytes([RESIZE]) + f"{width} {height}".encode()


async def serve_attach(request: web.Request, console: socket.socket, *, stdin: bool, tty: bool,
                       stdin_once: bool) -> web.StreamResponse:
    """Bridge one client WebSocket to the console connection (which this closes). `stdin`, `tty` and
    `stdin_once` are the container's own settings (its spec)."""
    # a container without stdin takes no input: the client's stdin, and its end, are ignored (containerd)
    want_in, want_out = _flag(request, "stdin") and stdin, _flag(request, "stdout")
    want_err = _flag(request, "stderr") and not tty
    loop = asyncio.get_running_loop()
    ws = web.WebSocketResponse(protocols=PROTOCOLS, max_msg_size=0)
    try:
        await ws.prepare(request)
    except BaseException:
        console.close()
        raise
    input_ended = asyncio.Event()
    send_lock = asyncio.Lock()

    async def to_console(message: bytes) -> None:
        async with send_lock:
            with contextlib.suppress(OSError):
                await loop.sock_sendall(console, message)

    async def from_console() -> None:
        while True:
            try:
                data = await loop.sock_recv(console, RECV)
            except OSError:
                return
            if not data or data[0] == EXIT:
                return
            kind, payload = data[0], data[1:]
            if ((kind == STDOUT and want_out) or (kind == STDERR and want_err)) and not ws.closed:
                with contextlib.suppress(ConnectionError, RuntimeError):
                    await ws.send_bytes(bytes([kind]) + payload)

    async def from_client() -> None:
        async for channel, payload in channel_frames(ws):
            if channel == STDIN and want_in and payload:
                await to_console(bytes([STDIN]) + payload)
            elif channel == RESIZE_CHANNEL:
                message = resize_message(payload)
                if message is not None:
                    await to_console(message)
            elif channel == CLOSE and payload[:1] == bytes([STDIN]) and want_in:
                await to_console(bytes([STDIN_END]))
                if not (stdin_once and not tty):
                    input_ended.set()  # as containerd: the session ends with its input
        if want_in and not input_ended.is_set():
            await to_console(bytes([STDIN_END]))

    tasks = {asyncio.create_task(from_console(), name="attach-console"),
             asyncio.create_task(from_client(), name="attach-client"),
             asyncio.create_task(input_ended.wait(), name="attach-input-ended")}
    try:
        await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
        if not ws.closed:
            with contextlib.suppress(ConnectionError, RuntimeError):
                await ws.send_bytes(bytes([STATUS]) + json.dumps(SUCCESS).encode())
    finally:
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError, ConnectionError, RuntimeError):
                await task
        console.close()
        await ws.close()
    return ws
