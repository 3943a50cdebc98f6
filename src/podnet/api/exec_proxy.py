"""`pods/exec` and `pods/attach`: the WebSocket `kubectl exec`/`attach` opens on the API server, piped to the
node agent's /exec or /attach (one agent-side interface: channel.k8s.io WebSockets).

    GET|POST /api/v1/namespaces/<ns>/pods/<pod>/exec?command=..&container=..&stdin=&stdout=&stderr=&tty=
    GET|POST /api/v1/namespaces/<ns>/pods/<pod>/attach?container=..&stdin=&stdout=&stderr=&tty=
    Upgrade: websocket, Sec-WebSocket-Protocol: v5.channel.k8s.io, v4.channel.k8s.io, ...

The pod is resolved the way kube-apiserver does it (pkg/registry/core/pod/strategy.go streamLocation):
404 for a missing pod, 400 `container Y is not valid for pod X`, 400 `pod X does not have a host
assigned`. Then a WebSocket is opened to `http://<hostIP>:<kubelet port>/exec/<ns>/<pod>/<container>`
with the subprotocols the client offered that the agent speaks, and only once the agent accepted is
the client's upgrade answered, with the subprotocol the agent chose. Frames (channel byte + payload)
go through unchanged both ways until one side closes; the agent's last frame on channel 3 is the
metav1.Status carrying the exit code, which kubectl turns into its own exit code.

A plain `Upgrade: SPDY/3.1` request (kubectl with KUBECTL_REMOTE_COMMAND_WEBSOCKETS=false, older kubectl,
client-go's SPDY executor) gets the same pod and agent errors; otherwise the API server answers the upgrade
itself once the agent accepted, and bridges the client's SPDY streams onto the same agent WebSocket
(api/exec_spdy.py). A request that asks for no upgrade at all gets a 400 that says what is needed.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import ssl
from typing import Any
from urllib.parse import quote, urlencode

import aiohttp
from aiohttp import WSMsgType, web

from podnet.api import exec_spdy, objmeta, upgrade
from podnet.api.channels import AGENT_PROTOCOLS, LOST_STATUS, STATUS, StreamFlags
from podnet.api.errors import APIError, bad_request
from podnet.api.registry import Registry
from podnet.core.config import DEFAULT_KUBELET_PORT
from podnet.model import kinds
from podnet.model.kinds import Obj

log = logging.getLogger(__name__)

PROTOCOLS = AGENT_PROTOCOLS
"""The WebSocket subprotocols of pods/exec: those the node agent speaks (podnet.agent.exec_ws)."""

SPDY = "SPDY/3.1"
STATUS_CHANNEL = STATUS
DEFAULT_CONTAINER_ANNOTATION = "kubectl.kubernetes.io/default-container"
CONNECT_TIMEOUT = 10.0
_REASONS = {400: "BadRequest", 401: "Unauthorized", 403: "Forbidden", 404: "NotFound", 409: "Conflict"}


def container_names(pod: Obj) -> list[str]:
    """Every container exec may target: app containers, then init and ephemeral ones."""
    spec = objmeta.d(pod.get("spec"))
    names: list[str] = []
    for key in ("containers", "initContainers", "ephemeralContainers"):
        names.extend(str(c.get("name")) for c in spec.get(key) or [] if isinstance(c, dict) and c.get("name"))
    return names


def pick_container(pod: Obj, requested: str) -> str:
    """The container an exec runs in: the requested one (which must exist), else the one the
    `kubectl.kubernetes.io/default-container` annotation names, else the first container."""
    name = objmeta.name_of(pod)
    if requested:
        if requested not in container_names(pod):
            raise bad_request(f"container {requested} is not valid for pod {name}")
        return requested
    main = [str(c.get("name")) for c in objmeta.d(pod.get("spec")).get("containers") or []
            if isinstance(c, dict) and c.get("name")]
    annotations = objmeta.d(objmeta.metadata(pod).get("annotations"))
    annotated = str(annotations.get(DEFAULT_CONTAINER_ANNOTATION) or "")
    if annotated and annotated in container_names(pod):
        return annotated
    if not main:
        raise bad_request(f"a container name must be specified for pod {name}")
    return main[0]


def offered_protocols(request: web.Request) -> list[str]:
    """The Sec-WebSocket-Protocol values the client offered, in its order of preference."""
    out: list[str] = []
    for header in request.headers.getall("Sec-WebSocket-Protocol", []):
        out.extend(p.strip() for p in header.split(",") if p.strip())
    return out


def is_websocket(request: web.Request) -> bool:
    return request.headers.get("Upgrade", "").lower() == "websocket"


def _agent_query(query: Any, sub: str = "exec") -> list[tuple[str, str]]:
    """command (repeated, exec only) and the stream flags for the agent; validates them as the kubelet
    does."""
    command = [str(c) for c in query.getall("command", [])] if sub == "exec" else []
    if sub == "exec" and not command:
        raise bad_request("you must specify at least 1 command")
    flags = StreamFlags.from_query(query)
    if not flags.any:
        raise bad_request("you must specify at least 1 of stdin, stdout, stderr")
    values = {"stdin": flags.stdin, "stdout": flags.stdout, "stderr": flags.stderr, "tty": flags.tty}
    return [*(("command", c) for c in command), *((f, "true" if v else "false") for f, v in values.items())]


class ExecProxy:
    def __init__(self, registry: Registry, connect_timeout: float = CONNECT_TIMEOUT,
                 kubelet_tls: ssl.SSLContext | None = None):
        self.registry = registry
        self.connect_timeout = connect_timeout
        # https with the API server's client certificate (the cluster's node endpoints require it);
        # None: plain http (test doubles of the agent)
        self.kubelet_tls = kubelet_tls

    async def target(self, ns: str, name: str, query: Any, sub: str = "exec") -> str:
        """The node agent's exec (or attach) URL for this request (raises the Kubernetes error when there
        is none)."""
        pod = await self.registry.get(kinds.PODS, ns, name)
        container = pick_container(pod, str(query.get("container", "")))
        params = _agent_query(query, sub)
        base = await self.node_base_url(pod)
        return (f"{base}/{sub}/{quote(ns, safe='')}/{quote(name, safe='')}/"
                f"{quote(container, safe='')}?{urlencode(params)}")

    async def node_base_url(self, pod: Obj) -> str:
        """`https://<host IP>:<kubelet port>` of the node the pod is bound to (the Kubernetes error
        when it has none)."""
        name = objmeta.name_of(pod)
        node_name = str(objmeta.d(pod.get("spec")).get("nodeName") or "")
        if not node_name:
            raise bad_request(f"pod {name} does not have a host assigned")
        host_ip = str(objmeta.d(pod.get("status")).get("hostIP") or "")
        try:
            node: Obj | None = await self.registry.get(kinds.NODES, "", node_name)
        except APIError:
            node = None
        try:
            return await self.node_url(node or {"metadata": {"name": node_name}}, host_ip)
        except APIError:
            raise bad_request(f'pod {name} has no host IP yet: node "{node_name}" reports no '
                              f"InternalIP address") from None

    async def node_url(self, node: Obj, host_ip: str = "") -> str:
        """`https://<node IP>:<kubelet port>` of a Node object (its InternalIP unless `host_ip`)."""
        status = objmeta.d(node.get("status"))
        ep = objmeta.d(objmeta.d(status.get("daemonEndpoints")).get("kubeletEndpoint"))
        port = int(ep.get("Port") or DEFAULT_KUBELET_PORT)
        if not host_ip:
            host_ip = next((str(a.get("address")) for a in status.get("addresses") or []
                            if isinstance(a, dict) and a.get("type") == "InternalIP"), "")
        if not host_ip:
            raise bad_request(f'node "{objmeta.name_of(node)}" reports no InternalIP address')
        host = f"[{host_ip}]" if ":" in host_ip else host_ip
        scheme = "https" if self.kubelet_tls is not None else "http"
        return f"{scheme}://{host}:{port}"

    async def serve(self, request: web.Request, ns: str, name: str, sub: str = "exec") -> web.StreamResponse:
        """Proxy one `pods/exec` (sub "exec") or `pods/attach` (sub "attach") session to the node agent."""
        url = await self.target(ns, name, request.query, sub)
        spdy_protocol = ""
        if is_websocket(request):
            offered = offered_protocols(request)
            wanted = [p for p in offered if p in PROTOCOLS]
            if not wanted:
                supported = ", ".join(f'"{p}"' for p in PROTOCOLS)
                raise bad_request(f'Sec-WebSocket-Protocol: Unsupported value: "{", ".join(offered)}": '
                                  f"supported values: {supported}")
        elif upgrade.wants_upgrade(request, SPDY):
            try:
                spdy_protocol = upgrade.negotiate(request, exec_spdy.PROTOCOLS)
            except upgrade.NegotiationError as e:
                return e.response()
            wanted = list(PROTOCOLS)
        else:
            wanted = []
        timeout = aiohttp.ClientTimeout(total=None, sock_connect=self.connect_timeout)
        connector = aiohttp.TCPConnector(ssl=self.kubelet_tls or False)
        async with aiohttp.ClientSession(timeout=timeout, connector=connector) as session:
            if not wanted:
                await self._agent_error(session, url)
                raise bad_request(f"pods/{sub} needs a connection upgrade: WebSocket (Sec-WebSocket-Protocol "
                                  f"{', '.join(PROTOCOLS)}) or {SPDY} (X-Stream-Protocol-Version "
                                  f"{', '.join(exec_spdy.PROTOCOLS)})")
            try:
                upstream = await session.ws_connect(url, protocols=wanted, max_msg_size=0,
                                                    timeout=aiohttp.ClientWSTimeout(ws_close=5.0))
            except aiohttp.WSServerHandshakeError as e:
                await self._agent_error(session, url)
                raise APIError(502, "InternalError",
                               f"unable to upgrade connection to the node agent: {e.status} {e.message}"
                               ) from None
            except (aiohttp.ClientError, OSError, TimeoutError) as e:
                raise APIError(500, "InternalError", f"error dialing backend: {_why(e)}") from None
            try:
                if spdy_protocol:
                    conn = await upgrade.accept(request, SPDY, {upgrade.PROTOCOL_VERSION: spdy_protocol})
                    flags = StreamFlags.from_query(request.query)
                    await exec_spdy.serve(conn, upstream, spdy_protocol, flags)
                    return conn.response
                return await self._pipe(request, upstream)
            finally:
                await upstream.close()

    async def _agent_error(self, session: aiohttp.ClientSession, url: str) -> None:
        """Raise the agent's own refusal of this exec (asked for with a plain GET, which starts no
        process); return when the agent finds nothing wrong but the missing upgrade."""
        try:
            async with session.get(url) as resp:
                text = (await resp.text()).strip()
                status = resp.status
        except (aiohttp.ClientError, OSError, TimeoutError) as e:
            raise APIError(500, "InternalError", f"error dialing backend: {_why(e)}") from None
        if status < 400 or text.startswith("No WebSocket UPGRADE"):
            return  # the agent would run it: what failed is the upgrade alone
        raise APIError(status, _REASONS.get(status, "InternalError"), text or f"node agent answered {status}")

    async def _pipe(self, request: web.Request,
                    upstream: aiohttp.ClientWebSocketResponse) -> web.StreamResponse:
        protocol = upstream.protocol or PROTOCOLS[0]
        client = web.WebSocketResponse(protocols=(protocol,), max_msg_size=0)
        await client.prepare(request)
        to_agent = asyncio.create_task(_forward(client, upstream), name="exec-client-to-agent")
        to_client = asyncio.create_task(_forward(upstream, client), name="exec-agent-to-client")
        try:
            done, _ = await asyncio.wait({to_agent, to_client}, return_when=asyncio.FIRST_COMPLETED)
            if to_client in done:  # the agent finished (exit status sent): end the client's stream too
                if not to_client.result() and not client.closed:
                    with contextlib.suppress(ConnectionError, RuntimeError):
                        await client.send_bytes(bytes([STATUS_CHANNEL]) + json.dumps(LOST_STATUS).encode())
                with contextlib.suppress(ConnectionError, RuntimeError):
                    await client.close()
            else:  # the client went away: stop the command's stream
                with contextlib.suppress(ConnectionError, RuntimeError):
                    await upstream.close()
        finally:
            for task in (to_agent, to_client):
                task.cancel()
            for task in (to_agent, to_client):
                with contextlib.suppress(asyncio.CancelledError, ConnectionError, RuntimeError):
                    await task
            with contextlib.suppress(ConnectionError, RuntimeError):
                await client.close()
        return client


async def _forward(src: web.WebSocketResponse | aiohttp.ClientWebSocketResponse,
                   dst: web.WebSocketResponse | aiohttp.ClientWebSocketResponse) -> bool:
    """Copy data frames from src to dst until src closes (or dst can no longer be written);
    True when one of them was a frame on the status channel."""
    saw_status = False
    async for msg in src:
        try:
            if msg.type == WSMsgType.BINARY:
                saw_status = saw_status or msg.data[:1] == bytes([STATUS_CHANNEL])
                await dst.send_bytes(msg.data)
            elif msg.type == WSMsgType.TEXT:
                await dst.send_str(msg.data)
            elif msg.type == WSMsgType.ERROR:
                log.debug("exec stream error: %s", msg.data)
                break
        except (ConnectionError, RuntimeError):
            break
    return saw_status


def _why(e: BaseException) -> str:
    return str(e) or type(e).__name__
