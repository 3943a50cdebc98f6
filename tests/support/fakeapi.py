"""A minimal in-memory Kubernetes API (list + watch only) for testing and benchmarking the DNS server
without the full API server. Objects are changed in-process with `put` / `delete`.

It serves `GET` list and `?watch=1` streams (from a resourceVersion, with history) for
any resource type in `podnet.model.kinds`, cluster-wide or per namespace, and `/readyz`.
"""

from __future__ import annotations

import asyncio
import contextlib
import copy
import json
from typing import Any

from aiohttp import web

from podnet.model.kinds import Obj, ResourceType, by_plural


class FakeApi:
    def __init__(self) -> None:
        self.rv = 0
        self.objects: dict[str, dict[tuple[str, str], Obj]] = {}
        self.history: list[tuple[int, str, str, Obj]] = []  # (rv, plural-key, type, obj)
        self._watchers: set[tuple[str, str | None, asyncio.Queue[tuple[str, Obj] | None]]] = set()
        self._runner: web.AppRunner | None = None
        self.url = ""

    # ---- in-process writes ---------------------------------------------------
    def put(self, rt: ResourceType, obj: Obj) -> Obj:
        obj = copy.deepcopy(obj)
        meta = obj.setdefault("metadata", {})
        if rt.namespaced:
            meta.setdefault("namespace", "default")
        key = (str(meta.get("namespace", "")), str(meta["name"]))
        store = self.objects.setdefault(rt.key, {})
        etype = "MODIFIED" if key in store else "ADDED"
        self.rv += 1
        meta["resourceVersion"] = str(self.rv)
        obj["apiVersion"], obj["kind"] = rt.api_version, rt.kind
        store[key] = obj
        self._publish(rt, etype, obj)
        return copy.deepcopy(obj)

    def delete(self, rt: ResourceType, namespace: str, name: str) -> None:
        store = self.objects.get(rt.key, {})
        obj = store.pop((namespace, name))
        self.rv += 1
        obj["metadata"]["resourceVersion"] = str(self.rv)
        self._publish(rt, "DELETED", obj)

    def _publish(self, rt: ResourceType, etype: str, obj: Obj) -> None:
        snapshot = copy.deepcopy(obj)
        self.history.append((self.rv, rt.key, etype, snapshot))
        ns = snapshot["metadata"].get("namespace")
        for key, wns, q in list(self._watchers):
            if key == rt.key and (wns is None or wns == ns):
                q.put_nowait((etype, snapshot))

    # ---- HTTP ------------------------------------------------------------------
    async def _readyz(self, _req: web.Request) -> web.Response:
        return web.Response(text="ok")

    async def _collection(self, req: web.Request) -> web.StreamResponse:
        group = req.match_info.get("group", "")
        rt = by_plural(group, req.match_info["plural"])
        if rt is None:
            return web.json_response({"kind": "Status", "status": "Failure", "code": 404,
                                      "reason": "NotFound", "message": "the server could not find "
                                      "the requested resource"}, status=404)
        ns = req.match_info.get("namespace")
        if req.query.get("watch") in ("1", "true"):
            return await self._watch(req, rt, ns)
        items = [copy.deepcopy(o) for (ons, _), o in sorted(self.objects.get(rt.key, {}).items())
                 if ns is None or ons == ns]
        return web.json_response({"kind": rt.list_kind_name(), "apiVersion": rt.api_version,
                                  "metadata": {"resourceVersion": str(self.rv)}, "items": items})

    async def _watch(self, req: web.Request, rt: ResourceType, ns: str | None) -> web.StreamResponse:
        since = int(req.query.get("resourceVersion") or self.rv)
        timeout = float(req.query.get("timeoutSeconds") or 1800)
        q: asyncio.Queue[tuple[str, Obj] | None] = asyncio.Queue()
        for rv, key, etype, obj in self.history:
            if rv > since and key == rt.key and (ns is None or obj["metadata"].get("namespace") == ns):
                q.put_nowait((etype, obj))
        entry = (rt.key, ns, q)
        self._watchers.add(entry)
        resp = web.StreamResponse(headers={"Content-Type": "application/json"})
        await resp.prepare(req)
        loop = asyncio.get_running_loop()
        end = loop.time() + timeout
        try:
            while True:
                left = end - loop.time()
                if left <= 0:
                    break
                try:
                    item = await asyncio.wait_for(q.get(), left)
                except TimeoutError:
                    break
                if item is None:
                    break
                line: dict[str, Any] = {"type": item[0], "object": item[1]}
                await resp.write(json.dumps(line).encode() + b"\n")
        except (ConnectionError, asyncio.CancelledError):
            pass
        finally:
            self._watchers.discard(entry)
        return resp

    def app(self) -> web.Application:
        app = web.Application()
        app.router.add_get("/readyz", self._readyz)
        app.router.add_get("/api/{version}/{plural}", self._collection)
        app.router.add_get("/api/{version}/namespaces/{namespace}/{plural}", self._collection)
        app.router.add_get("/apis/{group}/{version}/{plural}", self._collection)
        app.router.add_get("/apis/{group}/{version}/namespaces/{namespace}/{plural}", self._collection)
        return app

    async def start(self, *, unix_path: str | None = None, host: str = "127.0.0.1", port: int = 0) -> str:
        """Serve; returns the URL (`unix://...` or `http://host:port`)."""
        self._runner = web.AppRunner(self.app(), access_log=None, handler_cancellation=True)
        await self._runner.setup()
        if unix_path:
            site: web.BaseSite = web.UnixSite(self._runner, unix_path)
            await site.start()
            self.url = f"unix://{unix_path}"
        else:
            tsite = web.TCPSite(self._runner, host, port)
            await tsite.start()
            bound = next(int(a[1]) for a in self._runner.addresses if isinstance(a, tuple))
            self.url = f"http://{host}:{bound}"
        return self.url

    async def stop(self) -> None:
        for _, _, q in list(self._watchers):
            q.put_nowait(None)
        if self._runner is not None:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self._runner.cleanup(), 2.0)
            self._runner = None
