"""`exec` on the kubelet endpoint: a command in a container, streamed over a WebSocket with the
Kubernetes `channel.k8s.io` framing (what `kubectl exec` speaks), so the API server can proxy
`pods/exec` here byte for byte.

GET /exec/<ns>/<pod>/<container>?command=sh&command=-c&command=...&stdin=1&stdout=1&stderr=1
Subprotocols v5.channel.k8s.io (stdin close on channel 255) and v4.channel.k8s.io.
Each binary message is one channel byte + payload: 0 stdin, 1 stdout, 2 stderr, 3 status
(a metav1.Status JSON), 4 resize (`{"Width": W, "Height": H}`), 255 close. With `tty=true` the command
runs on a pseudo-terminal (its controlling terminal, TERM=xterm unless the container sets one): stdout
carries everything it writes, stdin goes to the terminal, resize messages set the window size
(agent/tty.py).
"""

from __future__ import annotations

import asyncio
import contextlib
import json

from aiohttp import web

from podnet.agent.nsexec import container_environ, nsenter_argv
from podnet.agent.tty import channel_frames, serve_tty

PROTOCOLS = ("v5.channel.k8s.io", "v4.channel.k8s.io")
STDIN, STDOUT, STDERR, STATUS, RESIZE, CLOSE = 0, 1, 2, 3, 4, 255


def exit_status(code: int) -> dict[str, object]:
    if code == 0:
        return {"metadata": {}, "status": "Success"}
    return {"metadata": {}, "status": "Failure",
            "message": f"command terminated with non-zero exit code: exit status {code}",
            "reason": "NonZeroExitCode",
            "details": {"causes": [{"reason": "ExitCode", "message": str(code)}]}}


def _flag(request: web.Request, name: str) -> bool:
    return request.query.get(name, "").lower() in ("1", "true")


async def serve_exec(request: web.Request, pid: int) -> web.StreamResponse:
    cmd = request.query.getall("command", [])
    if not cmd:
        raise web.HTTPBadRequest(text="you must specify at least 1 command")
    ws = web.WebSocketResponse(protocols=PROTOCOLS, max_msg_size=0)
    await ws.prepare(request)
    want_in, want_out, want_err = _flag(request, "stdin"), _flag(request, "stdout"), _flag(request, "stderr")
    if _flag(request, "tty"):
        code = await serve_tty(ws, nsenter_argv(pid, cmd), container_environ(pid), want_in)
        if code is not None and not ws.closed:
            await ws.send_bytes(bytes([STATUS]) + json.dumps(exit_status(code)).encode())
        await ws.close()
        return ws
    try:
        proc = await asyncio.create_subprocess_exec(
            *nsenter_argv(pid, cmd), env=container_environ(pid) or None,
            stdin=asyncio.subprocess.PIPE if want_in else asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE, start_new_session=True)
    except OSError as e:
        await ws.send_bytes(bytes([STATUS]) + json.dumps(
            {"metadata": {}, "status": "Failure", "message": str(e), "reason": "InternalError"}).encode())
        await ws.close()
        return ws

    async def pump(stream: asyncio.StreamReader | None, channel: int, forward: bool) -> None:
        if stream is None:
            return
        while True:
            chunk = await stream.read(32768)
            if not chunk:
                return
            if forward and not ws.closed:
                await ws.send_bytes(bytes([channel]) + chunk)

    async def feed() -> None:
        async for ch, payload in channel_frames(ws):
            if ch == STDIN and proc.stdin is not None:
                proc.stdin.write(payload)
                with contextlib.suppress(ConnectionError):
                    await proc.stdin.drain()
            elif ch == CLOSE and payload[:1] == bytes([STDIN]) and proc.stdin is not None:
                proc.stdin.close()
        if proc.stdin is not None:  # the client went away: no more input
            proc.stdin.close()

    feeder = asyncio.create_task(feed())
    try:
        await asyncio.gather(pump(proc.stdout, STDOUT, want_out), pump(proc.stderr, STDERR, want_err))
        code = await proc.wait()
        if not ws.closed:
            await ws.send_bytes(bytes([STATUS]) + json.dumps(exit_status(code)).encode())
    finally:
        if proc.returncode is None:
            proc.kill()
            await proc.wait()
        feeder.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await feeder
        await ws.close()
    return ws
