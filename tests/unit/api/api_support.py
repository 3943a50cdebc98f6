"""Helpers for the API tests: an APIServer over a MemoryStore behind aiohttp's test client."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from aiohttp.test_utils import TestClient, TestServer

from podnet.api.server import APIServer
from podnet.store.base import Store
from podnet.store.memory import MemoryStore


@dataclass
class Api:
    client: TestClient  # type: ignore[type-arg]
    server: APIServer
    store: Store

    async def call(self, method: str, path: str, body: Any = None, *, ctype: str = "application/json",
                   headers: dict[str, str] | None = None, params: dict[str, str] | None = None,
                   ) -> tuple[int, Any]:
        data = None
        if body is not None:
            data = body if isinstance(body, str | bytes) else json.dumps(body)
        hdrs = {"Content-Type": ctype} if data is not None else {}
        hdrs.update(headers or {})
        resp = await self.client.request(method, path, data=data, headers=hdrs, params=params)
        text = await resp.text()
        try:
            return resp.status, json.loads(text)
        except ValueError:
            return resp.status, text


SVC_PATH = "/api/v1/namespaces/default/services"
POD_PATH = "/api/v1/namespaces/default/pods"
DEPLOY_PATH = "/apis/apps/v1/namespaces/default/deployments"


def service(name: str, port: int = 80, **spec: Any) -> dict[str, Any]:
    return {"apiVersion": "v1", "kind": "Service",
            "metadata": {"name": name, "labels": {"app": name}},
            "spec": {"selector": {"app": name}, "ports": [{"port": port, "targetPort": port}], **spec}}


def pod(name: str, labels: dict[str, str] | None = None, node: str = "", **extra: Any) -> dict[str, Any]:
    spec: dict[str, Any] = {"containers": [{"name": "main", "image": "busybox", "command": ["sleep", "1"]}]}
    if node:
        spec["nodeName"] = node
    return {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": name, "labels": labels or {"app": name}},
            "spec": spec, **extra}


def deployment(name: str, replicas: int = 1) -> dict[str, Any]:
    labels = {"app": name}
    return {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": name},
            "spec": {"replicas": replicas, "selector": {"matchLabels": labels},
                     "template": {"metadata": {"labels": labels},
                                  "spec": {"containers": [{"name": "web", "image": "nginx"}]}}}}


async def make_api(tokens: tuple[str, ...] = (), hooks: dict[str, Any] | None = None,
                   store: Store | None = None) -> Api:
    """An API server over `store` (a new MemoryStore by default) behind aiohttp's test client."""
    store = store if store is not None else MemoryStore()
    server = APIServer(store, tokens=tokens, hooks=hooks)
    await server.bootstrap()
    client = TestClient(TestServer(server.make_app()))
    await client.start_server()
    return Api(client, server, store)
