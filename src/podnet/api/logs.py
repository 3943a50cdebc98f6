"""`pods/log`: proxy to the node agent's kubelet-style endpoint and stream its answer.

GET http://<status.hostIP>:<node kubelet port, default 10250>/containerLogs/<ns>/<pod>/<container>
with follow, tailLines, timestamps, previous, sinceSeconds, limitBytes passed through.
"""

from __future__ import annotations

import ssl
from typing import Any
from urllib.parse import quote, urlencode

import aiohttp
from aiohttp import web

from podnet.api import objmeta
from podnet.api.errors import APIError, bad_request
from podnet.api.registry import Registry
from podnet.core.config import DEFAULT_KUBELET_PORT
from podnet.model import kinds
from podnet.model.kinds import Obj

_BOOL_PARAMS = ("follow", "timestamps", "previous", "insecureSkipTLSVerifyBackend")
_INT_PARAMS = ("tailLines", "sinceSeconds", "limitBytes")


def _container_names(pod: Obj) -> tuple[list[str], list[str]]:
    spec = objmeta.d(pod.get("spec"))
    main = [str(c.get("name")) for c in spec.get("containers") or [] if isinstance(c, dict)]
    init = [str(c.get("name")) for c in spec.get("initContainers") or [] if isinstance(c, dict)]
    return main, init


def pick_container(pod: Obj, requested: str) -> str:
    name = str(objmeta.d(pod.get("metadata")).get("name"))
    main, init = _container_names(pod)
    if not requested:
        if len(main) == 1:
            return main[0]
        choices = " ".join(main)
        if init:
            raise bad_request(f"a container name must be specified for pod {name}, choose one of: "
                              f"[{choices}] or one of the init containers: [{' '.join(init)}]")
        raise bad_request(f"a container name must be specified for pod {name}, choose one of: [{choices}]")
    if requested not in main and requested not in init:
        raise bad_request(f"container {requested} is not valid for pod {name}")
    return requested


def _waiting_reason(pod: Obj, container: str) -> str | None:
    """Why the container has not started (None when it has)."""
    status = objmeta.d(pod.get("status"))
    statuses = [*(status.get("initContainerStatuses") or []), *(status.get("containerStatuses") or [])]
    for cs in statuses:
        if isinstance(cs, dict) and cs.get("name") == container:
            state = objmeta.d(cs.get("state"))
            if "waiting" in state and not objmeta.d(cs.get("lastState")).get("terminated"):
                return str(objmeta.d(state.get("waiting")).get("reason") or "ContainerCreating")
            return None
    return "ContainerCreating"


def _log_query(query: Any) -> dict[str, str]:
    out: dict[str, str] = {}
    for p in _BOOL_PARAMS:
        if p in query:
            v = str(query[p]).lower()
            if v not in ("true", "false", "1", "0", ""):
                raise bad_request(f'{p}: Invalid value: "{query[p]}": must be a boolean')
            out[p] = "true" if v in ("true", "1", "") else "false"
    for p in _INT_PARAMS:
        if p in query:
            try:
                n = int(query[p])
            except ValueError:
                raise bad_request(f'{p}: Invalid value: "{query[p]}": must be an integer') from None
            if n < 0 or (p != "tailLines" and n == 0):
                raise APIError(422, "Invalid", f'PodLogOptions "" is invalid: {p}: Invalid value: {n}: '
                               f"must be greater than {'or equal to ' if p == 'tailLines' else ''}0")
            out[p] = str(n)
    return out


class LogProxy:
    def __init__(self, registry: Registry, kubelet_tls: ssl.SSLContext | None = None):
        self.registry = registry
        # https with the API server's client certificate (the cluster's node endpoints require it);
        # None: plain http (test doubles of the agent)
        self.kubelet_tls = kubelet_tls
        self._session: aiohttp.ClientSession | None = None

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None

    def _client(self) -> aiohttp.ClientSession:
        if self._session is None or self._session.closed:
            connector = aiohttp.TCPConnector(ssl=self.kubelet_tls or False)
            self._session = aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=None, sock_connect=5),
                                                  connector=connector)
        return self._session

    async def target(self, ns: str, name: str, query: Any) -> str:
        """The kubelet URL for a log request (raises the Kubernetes error when there is none)."""
        pod = await self.registry.get(kinds.PODS, ns, name)
        container = pick_container(pod, str(query.get("container", "")))
        params = _log_query(query)
        host_ip = str(objmeta.d(pod.get("status")).get("hostIP") or "")
        node_name = str(objmeta.d(pod.get("spec")).get("nodeName") or "")
        reason = _waiting_reason(pod, container)
        if not node_name or not host_ip or reason is not None:
            raise bad_request(f'container "{container}" in pod "{name}" is waiting to start: '
                              f"{reason or 'ContainerCreating'}")
        port = DEFAULT_KUBELET_PORT
        try:
            node = await self.registry.get(kinds.NODES, "", node_name)
            endpoints = objmeta.d(objmeta.d(node.get("status")).get("daemonEndpoints"))
            ep = objmeta.d(endpoints.get("kubeletEndpoint"))
            port = int(ep.get("Port") or DEFAULT_KUBELET_PORT)
        except APIError:
            pass
        host = f"[{host_ip}]" if ":" in host_ip else host_ip
        scheme = "https" if self.kubelet_tls is not None else "http"
        url = f"{scheme}://{host}:{port}/containerLogs/{quote(ns)}/{quote(name)}/{quote(container)}"
        return url + ("?" + urlencode(params) if params else "")

    async def serve(self, request: web.Request, ns: str, name: str) -> web.StreamResponse:
        url = await self.target(ns, name, request.query)
        try:
            upstream = await self._client().get(url)
        except (aiohttp.ClientError, OSError) as e:
            raise APIError(500, "InternalError", f'Get "{url}": {e}') from None
        try:
            if upstream.status >= 400:
                text = (await upstream.text()).strip()
                raise APIError(upstream.status, _reason(upstream.status), text or upstream.reason or "error")
            resp = web.StreamResponse(status=200, headers={"Content-Type": "text/plain"})
            resp.enable_chunked_encoding()
            await resp.prepare(request)
            try:
                async for chunk in upstream.content.iter_any():
                    await resp.write(chunk)
            except (ConnectionError, aiohttp.ClientError):
                pass
            try:
                await resp.write_eof()
            except ConnectionError:
                pass
            return resp
        finally:
            upstream.release()


def _reason(code: int) -> str:
    reasons = {400: "BadRequest", 401: "Unauthorized", 403: "Forbidden", 404: "NotFound"}
    return reasons.get(code, "InternalError")
