"""A small async client for the Kubernetes REST API, used by controllers, agents, DNS and the CLI.

It speaks to podnet's API server exactly as an outside client would, over
`http://`, `https://` (with a CA file) or a `unix://` socket path (reachable
from any network namespace on the machine).
"""

from __future__ import annotations

import asyncio
import json
import os
import ssl
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote, urlencode

import aiohttp

from podnet.model.kinds import Obj, ResourceType


class ApiError(Exception):
    """A non-2xx answer; `status` is the Kubernetes Status object when the server sent one."""

    def __init__(self, code: int, status: dict[str, Any]):
        super().__init__(f"{code} {status.get('reason', '')}: {status.get('message', '')}")
        self.code = code
        self.status = status

    @property
    def reason(self) -> str:
        return str(self.status.get("reason", ""))


@dataclass(frozen=True)
class WatchEvent:
    type: str  # ADDED, MODIFIED, DELETED, BOOKMARK, ERROR
    object: Obj


def resource_path(rt: ResourceType, namespace: str | None = None, name: str | None = None,
                  subresource: str | None = None) -> str:
    base = f"/apis/{rt.group}/{rt.version}" if rt.group else f"/api/{rt.version}"
    if rt.namespaced and namespace:
        base += f"/namespaces/{quote(namespace)}"
    base += f"/{rt.plural}"
    if name:
        base += f"/{quote(name)}"
        if subresource:
            base += f"/{subresource}"
    return base


class ApiClient:
    def __init__(self, server: str, token: str = "", ca_file: str | None = None,
                 timeout: float = 30.0, token_file: str | None = None, user_agent: str = ""):
        """`token_file`: read the bearer token from this file, again whenever it changes (a projected
        ServiceAccount token, which the node rotates), as client-go's in-cluster config does."""
        self.server = server
        self.token = token
        self._token_file = token_file
        self._token_seen: tuple[int, int, int] | None = None
        self._ca_file = ca_file
        self._user_agent = user_agent
        self._timeout = timeout
        self._session: aiohttp.ClientSession | None = None

    def _base(self) -> str:
        return "http://localhost" if self.server.startswith("unix://") else self.server.rstrip("/")

    async def session(self) -> aiohttp.ClientSession:
        if self._session is None or self._session.closed:
            connector: aiohttp.BaseConnector
            if self.server.startswith("unix://"):
                connector = aiohttp.UnixConnector(path=self.server[len("unix://"):])
            elif self.server.startswith("https://"):
                ctx = ssl.create_default_context(cafile=self._ca_file)
                connector = aiohttp.TCPConnector(ssl=ctx)
            else:
                connector = aiohttp.TCPConnector()
            headers = {"Accept": "application/json"}
            if self._user_agent:
                headers["User-Agent"] = self._user_agent
            if self.token and not self._token_file:
                headers["Authorization"] = f"Bearer {self.token}"
            self._session = aiohttp.ClientSession(connector=connector, headers=headers)
        return self._session

    def _auth(self) -> dict[str, str]:
        """The Authorization header of a request when the token comes from a file (else the session's)."""
        if not self._token_file:
            return {}
        try:
            st = os.stat(self._token_file)
            seen = (st.st_ino, st.st_mtime_ns, st.st_size)
            if seen != self._token_seen:
                with open(self._token_file) as f:
                    self.token = f.read().strip()
                self._token_seen = seen
        except OSError:
            pass  # keep the last token read; the server answers 401 if there is none
        return {"Authorization": f"Bearer {self.token}"} if self.token else {}

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None

    async def __aenter__(self) -> ApiClient:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    async def request(self, method: str, path: str, *, params: dict[str, str] | None = None,
                      body: Any = None, content_type: str = "application/json") -> Any:
        s = await self.session()
        url = self._base() + path
        if params:
            url += "?" + urlencode(params)
        data = None if body is None else (body if isinstance(body, str | bytes) else json.dumps(body))
        headers = {"Content-Type": content_type} if data is not None else {}
        headers.update(self._auth())
        async with s.request(method, url, data=data, headers=headers,
                             timeout=aiohttp.ClientTimeout(total=self._timeout)) as resp:
            text = await resp.text()
            if resp.status >= 400:
                try:
                    status = json.loads(text)
                except ValueError:
                    status = {"message": text, "code": resp.status}
                raise ApiError(resp.status, status)
            if resp.content_type == "application/json":
                return json.loads(text) if text else None
            return text

    # ---- typed verbs ----------------------------------------------------
    async def get(self, rt: ResourceType, name: str, namespace: str | None = None) -> Obj:
        res: Obj = await self.request("GET", resource_path(rt, namespace, name))
        return res

    async def list(self, rt: ResourceType, namespace: str | None = None, *,
                   label_selector: str = "", field_selector: str = "") -> Obj:
        params = {}
        if label_selector:
            params["labelSelector"] = label_selector
        if field_selector:
            params["fieldSelector"] = field_selector
        res: Obj = await self.request("GET", resource_path(rt, namespace), params=params)
        return res

    async def create(self, rt: ResourceType, obj: Obj, namespace: str | None = None) -> Obj:
        ns = namespace or obj.get("metadata", {}).get("namespace") or ("default" if rt.namespaced else None)
        res: Obj = await self.request("POST", resource_path(rt, ns), body=obj)
        return res

    async def update(self, rt: ResourceType, obj: Obj, subresource: str | None = None) -> Obj:
        meta = obj["metadata"]
        path = resource_path(rt, meta.get("namespace"), meta["name"], subresource)
        res: Obj = await self.request("PUT", path, body=obj)
        return res

    async def update_status(self, rt: ResourceType, obj: Obj) -> Obj:
        return await self.update(rt, obj, "status")

    async def patch(self, rt: ResourceType, name: str, patch: Any, namespace: str | None = None, *,
                    patch_type: str = "application/merge-patch+json", subresource: str | None = None) -> Obj:
        res: Obj = await self.request("PATCH", resource_path(rt, namespace, name, subresource),
                                      body=patch, content_type=patch_type)
        return res

    async def delete(self, rt: ResourceType, name: str, namespace: str | None = None, *,
                     propagation: str | None = None, grace_period: int | None = None) -> Any:
        body: dict[str, Any] = {"kind": "DeleteOptions", "apiVersion": "v1"}
        if propagation:
            body["propagationPolicy"] = propagation
        if grace_period is not None:
            body["gracePeriodSeconds"] = grace_period
        return await self.request("DELETE", resource_path(rt, namespace, name), body=body)

    async def watch(self, rt: ResourceType, namespace: str | None = None, *, resource_version: str = "",
                    timeout_seconds: int | None = None, bookmarks: bool = True,
                    label_selector: str = "", field_selector: str = "") -> AsyncIterator[WatchEvent]:
        """Stream watch events until the server closes the stream. Raises ApiError (e.g. 410)."""
        params = {"watch": "1"}
        if resource_version:
            params["resourceVersion"] = resource_version
        if timeout_seconds is not None:
            params["timeoutSeconds"] = str(timeout_seconds)
        if bookmarks:
            params["allowWatchBookmarks"] = "true"
        if label_selector:
            params["labelSelector"] = label_selector
        if field_selector:
            params["fieldSelector"] = field_selector
        s = await self.session()
        url = self._base() + resource_path(rt, namespace) + "?" + urlencode(params)
        async with s.get(url, headers=self._auth(),
                         timeout=aiohttp.ClientTimeout(total=None, sock_read=None)) as resp:
            if resp.status >= 400:
                text = await resp.text()
                try:
                    status = json.loads(text)
                except ValueError:
                    status = {"message": text}
                raise ApiError(resp.status, status)
            while True:
                line = await resp.content.readline()
                if not line:
                    return
                line = line.strip()
                if not line:
                    continue
                ev = json.loads(line)
                if ev.get("type") == "ERROR":
                    st = ev.get("object", {})
                    raise ApiError(int(st.get("code", 500)), st)
                yield WatchEvent(ev["type"], ev["object"])

    async def wait_ready(self, timeout: float = 30.0) -> None:
        """Wait until /readyz answers ok."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        last: Exception | None = None
        while loop.time() < deadline:
            try:
                await self.request("GET", "/readyz")
                return
            except (aiohttp.ClientError, ApiError, OSError) as e:
                last = e
                await asyncio.sleep(0.05)
        raise TimeoutError(f"API server at {self.server} not ready after {timeout}s: {last}")
