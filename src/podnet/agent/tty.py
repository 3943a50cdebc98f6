"""A command on a pseudo-terminal, bridged to a `channel.k8s.io` WebSocket (`kubectl exec -it`).

The command gets the terminal's slave side as stdin, stdout and stderr and as its controlling terminal
(a new session), so a shell shows its prompt, echoes what is typed and job control works. Everything it
writes comes back on the stdout channel; stdin-channel bytes are typed into the terminal; resize
messages (`{"Width": W, "Height": H}` on channel 4) set the window size, as the kubelet's does.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import fcntl
import json
import os
import struct
import termios
from collections.abc import AsyncIterator

from aiohttp import WSMsgType, web

STDIN, STDOUT, RESIZE, CLOSE = 0, 1, 4, 255
CHUNK = 32768


async def channel_frames(ws: web.WebSocketResponse) -> AsyncIterator[tuple[int, bytes]]:
    """The client's `channel.k8s.io` frames as (channel, payload), for exec, a terminal and attach alike.

    The channel protocols carry the same bytes in TEXT frames as in BINARY ones (the kubelet reads both
    into a byte slice): the Python client sends stdin given as str in TEXT frames. Other frames and
    empty ones carry nothing."""
    async for msg in ws:
        data = msg.data.encode() if msg.type == WSMsgType.TEXT else msg.data
        if msg.type not in (WSMsgType.BINARY, WSMsgType.TEXT) or not data:
            continue
        yield data[0], data[1:]


def set_window_size(fd: int, width: int, height: int) -> None:
    fcntl.ioctl(fd, termios.TIOCSWINSZ, struct.pack("HHHH", max(0, height), max(0, width), 0, 0))


def _controlling_tty() -> None:  # runs in the child between fork and exec
    fcntl.ioctl(0, termios.TIOCSCTTY, 0)


async def serve_tty(ws: web.WebSocketResponse, argv: list[str], env: dict[str, str],
                    want_stdin: bool) -> int | None:
    """Run argv on a new pseudo-terminal until it exits; its exit code (None if it could not start)."""
    master, slave = os.openpty()
    env = dict(env or os.environ)
    env.setdefault("TERM", "xterm")
    try:
        proc = await asyncio.create_subprocess_exec(*argv, env=env, stdin=slave, stdout=slave, stderr=slave,
                                                    start_new_session=True, preexec_fn=_controlling_tty)
    except OSError as e:
        os.close(master)
        os.close(slave)
        await ws.send_bytes(bytes([3]) + json.dumps(
            {"metadata": {}, "status": "Failure", "message": str(e), "reason": "InternalError"}).encode())
        return None
    os.close(slave)
    os.set_blocking(master, False)
    loop = asyncio.get_running_loop()
    output: asyncio.Queue[bytes] = asyncio.Queue()

    def readable() -> None:
        try:
            data = os.read(master, CHUNK)
        except BlockingIOError:
            return
        except OSError as e:  # EIO: every slave side is closed (the command and its children ended)
            if e.errno != errno.EIO:
                raise
            data = b""
        if not data:
            loop.remove_reader(master)
        output.put_nowait(data)

    loop.add_reader(master, readable)

    async def to_client() -> None:
        while True:
            data = await output.get()
            if not data:
                return
            if not ws.closed:
                await ws.send_bytes(bytes([STDOUT]) + data)

    async def from_client() -> None:
        async for channel, payload in channel_frames(ws):
            if channel == STDIN and want_stdin:
                with contextlib.suppress(OSError):
                    os.write(master, payload)
            elif channel == RESIZE:
                with contextlib.suppress(ValueError, TypeError, OSError, AttributeError):
                    size = json.loads(payload)
                    set_window_size(master, int(size.get("Width", 0)), int(size.get("Height", 0)))
            elif channel == CLOSE and payload[:1] == bytes([STDIN]):
                with contextlib.suppress(OSError):
                    os.write(master, b"\x04")  # end of input, as a typed Ctrl-D
        if proc.returncode is None:  # the client went away: hang up the terminal
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, 1)

    reader = asyncio.create_task(from_client())
    try:
        pump = asyncio.create_task(to_client())
        code = await proc.wait()
        with contextlib.suppress(asyncio.TimeoutError):
            await asyncio.wait_for(pump, 2.0)  # what it printed last
        return code
    finally:
        loop.remove_reader(master)
        os.close(master)
        reader.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await reader
