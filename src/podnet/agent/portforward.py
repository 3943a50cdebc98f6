"""The node side of `kubectl port-forward`: one WebSocket per forwarded TCP connection.

    GET /portForward/<ns>/<pod>?port=N   (Upgrade: websocket)

The agent connects to `localhost:N` inside the pod's network namespace (as containerd does for the
kubelet: a server listening only on the pod's loopback is reachable too), then pipes bytes: BINARY
messages both ways. Control messages are TEXT, JSON: the API server sends `{"shutdown": "write"}` when
the client closed its side (the agent half-closes the TCP connection); the agent sends
`{"error": "..."}` when the connection cannot be made, and closes the WebSocket when the pod closed its
side and everything it sent went out. The API server speaks the client's protocol (api/portforward.py).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import socket

from aiohttp import WSMsgType, web

from podnet.net.nsthread import run_in_netns_at

CONNECT_TIMEOUT = 5.0
CHUNK = 64 * 1024


def connect_in_netns(netns_path: str, port: int, timeout: float = CONNECT_TIMEOUT) -> socket.socket:
    """A TCP connection to 127.0.0.1:port made inside the namespace at `netns_path` ("" = this one);
    the socket stays in that namespace after the thread that made it switched back."""

    def dial() -> socket.socket:
        return socket.create_connection(("127.0.0.1", port), timeout=timeout)

    sock = run_in_netns_at(netns_path, dial) if netns_path else dial()
    sock.settimeout(None)
    sock.setblocking(False)
    return sock


def dial_error(port: int, pod_uid: str, netns_path: str, err: BaseException) -> str:
    """The text kubectl prints after `an error occurred forwarding L -> R:` (kubelet's wording around
    the runtime's)."""
    why = err.strerror.lower() if isinstance(err, OSError) and err.strerror else str(err)
    if isinstance(err, TimeoutError):
        why = "i/o timeout"
    where = netns_path or "the node's network namespace"
    return (f"error forwarding port {port} to pod {pod_uid}, uid : failed to connect to localhost:{port} "
            f'inside namespace "{where}", IPv4: dial tcp4 127.0.0.1:{port}: connect: {why}')


async def serve_port_forward(request: web.Request, port: int, pod_uid: str,
                             netns_path: str) -> web.StreamResponse:
    ws = web.WebSocketResponse(max_msg_size=0, autoping=True)
    await ws.prepare(request)
    try:
        sock = await asyncio.to_thread(connect_in_netns, netns_path, port)
    except (OSError, TimeoutError) as e:
        await ws.send_str(json.dumps({"error": dial_error(port, pod_uid, netns_path, e)}))
        await ws.close()
        return ws
    reader, writer = await asyncio.open_connection(sock=sock, limit=CHUNK)

    async def pod_to_client() -> None:
        while True:
            chunk = await reader.read(CHUNK)
            if not chunk:
                return
            await ws.send_bytes(chunk)

    async def client_to_pod() -> None:
        async for msg in ws:
            if msg.type == WSMsgType.BINARY:
                writer.write(msg.data)
                await writer.drain()
            elif msg.type == WSMsgType.TEXT:
                with contextlib.suppress(ValueError):
                    if json.loads(msg.data).get("shutdown") == "write" and writer.can_write_eof():
                        writer.write_eof()
            else:
                return
        await asyncio.Event().wait()  # the client is gone: wait for the pod side to end

    up = asyncio.create_task(client_to_pod())
    down = asyncio.create_task(pod_to_client())
    try:
        done, _ = await asyncio.wait({up, down}, return_when=asyncio.FIRST_COMPLETED)
        for t in done:
            with contextlib.suppress(ConnectionError, OSError):
                t.result()
    finally:
        for t in (up, down):
            t.cancel()
        for t in (up, down):
            with contextlib.suppress(asyncio.CancelledError, ConnectionError, OSError):
                await t
        writer.close()
        with contextlib.suppress(ConnectionError, OSError):
            await writer.wait_closed()
        await ws.close()
    return ws
