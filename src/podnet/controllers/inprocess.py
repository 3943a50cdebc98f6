"""The controllers' API client when they run inside the API server's process (`podnet controlplane`).

kube-controller-manager is a separate process and talks HTTP to kube-apiserver; podnet runs its
controllers in the API server's own process, where every controller write used to cost an HTTP
round trip over the unix socket (encode, parse, decode, respond, decode again) on the same event
loop as the write itself, and every watch event a JSON encode and decode. `InProcessClient` keeps
`ApiClient`'s interface and its semantics but calls the server's registry directly:

- create / update / update_status / delete / get / list go through the same pipeline a request
  does (the body as JSON would carry it, unknown fields dropped, then `Registry.create` /
  `update` / `update_status` / `Deleter.delete`: defaults, Service hooks, admission, validation,
  store), and API errors arrive as the same `ApiError` (code and Status body) the socket gives;
- watch reads the store's watch from the given resourceVersion (410 Expired as `ApiError`, a lost
  store backend ends the stream as a dropped connection does);
- anything else (raw `request`, patch, watches with selectors or without a resourceVersion) still
  goes over the socket.

The controllers are the cluster's own administrator (they use the cluster token), so requests
through here skip authentication and authorization. When the API server keeps an audit log, each call
through here is in it as kube-apiserver records kube-controller-manager's and kube-scheduler's requests
(`api/audit.py` `record_call`; a watch once, when it starts), as the identity `controllers/identity.py`
gives the calling control loop (`system:serviceaccount:kube-system:deployment-controller`, ...,
`system:kube-scheduler`, else `system:kube-controller-manager`); what goes over the socket is audited
there, as the cluster token's user with kube-controller-manager's user agent.
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import AsyncIterator
from typing import Any
from urllib.parse import urlencode

from podnet.api import fieldvalidation, objmeta
from podnet.api.audit import CONTROLLER_MANAGER_AGENT
from podnet.api.deletion import DeleteOptions
from podnet.api.errors import APIError, gone
from podnet.api.selection import make_filter
from podnet.api.server import APIServer
from podnet.client.client import ApiClient, ApiError, WatchEvent
from podnet.controllers.identity import current_user
from podnet.core import fastjson
from podnet.model.kinds import Obj, ResourceType
from podnet.store import base as store_base


def _json_copy(obj: Any) -> Any:
    """What the server would have received over HTTP (tuples as lists, no shared references)."""
    return fastjson.copy(obj)


def _client_error(e: APIError) -> ApiError:
    return ApiError(e.code, dict(e.status()))


log = logging.getLogger("podnet.controllers.inprocess")


class InProcessClient(ApiClient):
    def __init__(self, api: APIServer, server: str, token: str = "", ca_file: str | None = None,
                 timeout: float = 30.0):
        super().__init__(server, token, ca_file, timeout, user_agent=CONTROLLER_MANAGER_AGENT)
        self.api = api

    def _namespace(self, rt: ResourceType, namespace: str | None) -> str:
        return (namespace or "") if rt.namespaced else ""

    def _audit(self, verb: str, rt: ResourceType, ns: str, name: str, code: int, received: dt.datetime,
               **kw: Any) -> None:
        audit = self.api.audit
        if audit is None:
            return
        user, agent = current_user(rt)
        try:
            audit.record_call(verb, rt, ns, name, code, received, user=user, user_agent=agent, **kw)
        except Exception:
            log.exception("audit log write failed")

    async def get(self, rt: ResourceType, name: str, namespace: str | None = None) -> Obj:
        ns, t = self._namespace(rt, namespace), dt.datetime.now(dt.UTC)
        try:
            obj = await self.api.registry.get(rt, ns, name)
        except APIError as e:
            self._audit("get", rt, ns, name, e.code, t)
            raise _client_error(e) from None
        self._audit("get", rt, ns, name, 200, t)
        return obj

    async def list(self, rt: ResourceType, namespace: str | None = None, *,
                   label_selector: str = "", field_selector: str = "") -> Obj:
        ns, t = self._namespace(rt, namespace), dt.datetime.now(dt.UTC)
        query = urlencode({k: v for k, v in (("labelSelector", label_selector),
                                             ("fieldSelector", field_selector)) if v})
        try:
            flt = make_filter(rt, label_selector, field_selector)
            res = await self.api.registry.list(rt, namespace, flt)
        except APIError as e:
            self._audit("list", rt, ns, "", e.code, t, query=query)
            raise _client_error(e) from None
        self._audit("list", rt, ns, "", 200, t, query=query)
        return objmeta.list_object(rt, res.items, res.resource_version, res.cont, res.remaining)

    async def create(self, rt: ResourceType, obj: Obj, namespace: str | None = None) -> Obj:
        ns = namespace or obj.get("metadata", {}).get("namespace") or ("default" if rt.namespaced else None)
        if rt.namespaced and not ns:
            return await super().create(rt, obj, namespace)
        body = _json_copy(obj)
        t = dt.datetime.now(dt.UTC)
        try:
            fieldvalidation.check_body(rt, body, fieldvalidation.WARN)
            created = await self.api.registry.create(rt, ns or "", body, body_is_ours=True)
        except APIError as e:
            self._audit("create", rt, ns or "", "", e.code, t)
            raise _client_error(e) from None
        self._audit("create", rt, ns or "", "", 201, t)
        return created

    async def update(self, rt: ResourceType, obj: Obj, subresource: str | None = None) -> Obj:
        if subresource not in (None, "status"):
            return await super().update(rt, obj, subresource)
        meta = obj["metadata"]
        ns, name = self._namespace(rt, meta.get("namespace")), str(meta["name"])
        body = _json_copy(obj)
        t, sub = dt.datetime.now(dt.UTC), subresource or ""
        try:
            if subresource == "status":
                new = await self.api.registry.update_status(rt, ns, name, body)
            else:
                fieldvalidation.check_body(rt, body, fieldvalidation.WARN)
                new, _ = await self.api.registry.update(rt, ns, name, body)
        except APIError as e:
            self._audit("update", rt, ns, name, e.code, t, subresource=sub)
            raise _client_error(e) from None
        self._audit("update", rt, ns, name, 200, t, subresource=sub)
        return new

    async def delete(self, rt: ResourceType, name: str, namespace: str | None = None, *,
                     propagation: str | None = None, grace_period: int | None = None) -> Any:
        body: dict[str, Any] = {"kind": "DeleteOptions", "apiVersion": "v1"}
        if propagation:
            body["propagationPolicy"] = propagation
        if grace_period is not None:
            body["gracePeriodSeconds"] = grace_period
        ns, t = self._namespace(rt, namespace), dt.datetime.now(dt.UTC)
        try:
            opts = DeleteOptions.from_request(body, {})
            obj, _ = await self.api.deleter.delete(rt, ns, name, opts)
        except APIError as e:
            self._audit("delete", rt, ns, name, e.code, t)
            raise _client_error(e) from None
        self._audit("delete", rt, ns, name, 200, t)
        return obj

    async def watch(self, rt: ResourceType, namespace: str | None = None, *, resource_version: str = "",
                    timeout_seconds: int | None = None, bookmarks: bool = True,
                    label_selector: str = "", field_selector: str = "") -> AsyncIterator[WatchEvent]:
        """Events after `resource_version` straight from the store (no timeout: the stream ends
        when the store closes, loses its backend, or the caller stops reading)."""
        try:
            from_rv = int(resource_version)
        except ValueError:
            from_rv = -1
        if label_selector or field_selector or from_rv <= 0:
            async for ev in super().watch(rt, namespace, resource_version=resource_version,
                                          timeout_seconds=timeout_seconds, bookmarks=bookmarks,
                                          label_selector=label_selector, field_selector=field_selector):
                yield ev
            return
        scope = namespace if rt.namespaced and namespace else None
        t = dt.datetime.now(dt.UTC)
        query = urlencode({"watch": "1", "resourceVersion": resource_version,
                           **({"allowWatchBookmarks": "true"} if bookmarks else {})})
        self._audit("watch", rt, scope or "", "", 200, t, query=query, stage="ResponseStarted")
        agen = self.api.store.watch(rt.key, scope, from_rv)
        try:
            async for sev in agen:
                yield WatchEvent(sev.type, objmeta.with_type(rt, sev.object))
        except store_base.Expired as e:
            self._audit("watch", rt, scope or "", "", 410, t, query=query)
            raise _client_error(gone(str(e.requested), str(e.current))) from None
        except store_base.StoreError:
            return
        finally:
            await agen.aclose()  # type: ignore[attr-defined]
