"""metrics.k8s.io/v1beta1 (`kubectl top`, the Python client's metrics calls), as metrics-server serves it.

    GET /apis/metrics.k8s.io/v1beta1/nodes[/<name>]
    GET /apis/metrics.k8s.io/v1beta1[/namespaces/<ns>]/pods[/<name>]     (labelSelector, fieldSelector)

Nothing is stored: on each request every node agent is asked for its latest sample (`/stats/usage`,
over the same mutual TLS as exec and logs; agent/usage.py), and NodeMetrics / PodMetrics are built from
it. A node or pod whose agent has no CPU rate yet (a second sample is needed) is left out, as
metrics-server leaves out what it has not scraped twice; asked for by name it is 404 in metrics-server's
words (`podmetrics.metrics.k8s.io "ns/name" not found`).
"""

from __future__ import annotations

import asyncio
import datetime as dt
from typing import Any

import aiohttp
from aiohttp import web

from podnet.api import objmeta, routing
from podnet.api.errors import APIError, method_not_allowed
from podnet.api.exec_proxy import ExecProxy
from podnet.api.handlers import json_response
from podnet.api.selection import make_filter
from podnet.model import kinds
from podnet.model.kinds import Obj

API_VERSION = "metrics.k8s.io/v1beta1"
FETCH_TIMEOUT = 5.0


def _stamp(t: float) -> str:
    return objmeta.rfc3339(dt.datetime.fromtimestamp(t, dt.UTC))


def _window(seconds: float) -> str:
    return f"{max(1, round(seconds))}s"


def _usage(cpu_nanocores: int, memory_bytes: int) -> dict[str, str]:
    return {"cpu": f"{cpu_nanocores}n", "memory": f"{memory_bytes // 1024}Ki"}


def _meta(obj: Obj, *, namespaced: bool) -> dict[str, Any]:
    src = objmeta.metadata(obj)
    meta: dict[str, Any] = {"name": objmeta.name_of(obj)}
    if namespaced:
        meta["namespace"] = objmeta.namespace_of(obj)
    meta["creationTimestamp"] = objmeta.rfc3339(dt.datetime.now(dt.UTC))
    if src.get("labels"):
        meta["labels"] = dict(src["labels"])
    return meta


def _not_found(what: str, name: str) -> APIError:
    return APIError(404, "NotFound", f'{what}.metrics.k8s.io "{name}" not found',
                    {"name": name, "group": "metrics.k8s.io", "kind": what})


class MetricsApi:
    def __init__(self, nodes: ExecProxy):
        self.nodes = nodes  # node endpoints and the kubelet client TLS

    @staticmethod
    def handles(target: routing.Target) -> bool:
        return target.rt in kinds.METRICS

    async def _usage_of(self, node: Obj) -> dict[str, Any]:
        try:
            base = await self.nodes.node_url(node)
            timeout = aiohttp.ClientTimeout(total=FETCH_TIMEOUT)
            connector = aiohttp.TCPConnector(ssl=self.nodes.kubelet_tls or False)
            async with aiohttp.ClientSession(timeout=timeout, connector=connector) as session, \
                    session.get(f"{base}/stats/usage") as resp:
                if resp.status != 200:
                    return {}
                data = await resp.json()
                return data if isinstance(data, dict) else {}
        except (aiohttp.ClientError, OSError, TimeoutError, ValueError, APIError):
            return {}  # an unreachable node has no metrics, as with metrics-server

    async def _all_usage(self) -> list[tuple[Obj, dict[str, Any]]]:
        nodes = (await self.nodes.registry.list(kinds.NODES, None, make_filter(kinds.NODES, "", ""))).items
        usages = await asyncio.gather(*(self._usage_of(n) for n in nodes))
        return list(zip(nodes, usages, strict=True))

    async def serve(self, request: web.Request, target: routing.Target) -> web.StreamResponse:
        if request.method != "GET" or target.subresource:
            raise method_not_allowed()
        q = request.query
        if target.rt is kinds.NODEMETRICS:
            flt = make_filter(kinds.NODES, q.get("labelSelector", ""), q.get("fieldSelector", ""))
            items: list[dict[str, Any]] = []
            for node, usage in await self._all_usage():
                u = usage.get("node") or {}
                if u.get("cpu") is None or not flt.matches(node):
                    continue
                items.append({"kind": "NodeMetrics", "apiVersion": API_VERSION,
                              "metadata": _meta(node, namespaced=False), "timestamp": _stamp(u["timestamp"]),
                              "window": _window(u["window"]),
                              "usage": _usage(int(u["cpu"]), int(u["memory"]))})
            if target.name:
                found = [i for i in items if i["metadata"]["name"] == target.name]
                if not found:
                    raise _not_found("nodemetrics", target.name)
                return json_response(found[0])
            return json_response({"kind": "NodeMetricsList", "apiVersion": API_VERSION,
                                  "metadata": {}, "items": items})
        flt = make_filter(kinds.PODS, q.get("labelSelector", ""), q.get("fieldSelector", ""))
        ns = target.namespace or None
        pods = {(objmeta.namespace_of(p), objmeta.name_of(p)): p
                for p in (await self.nodes.registry.list(kinds.PODS, ns, flt)).items}
        items = []
        for _, usage in await self._all_usage():
            for pu in usage.get("pods") or []:
                pod = pods.get((str(pu.get("namespace")), str(pu.get("name"))))
                containers = pu.get("containers") or []
                if pod is None or not containers or any(c.get("cpu") is None for c in containers):
                    continue
                first = containers[0]
                usages = [{"name": c["name"], "usage": _usage(int(c["cpu"]), int(c["memory"]))}
                          for c in containers]
                items.append({"kind": "PodMetrics", "apiVersion": API_VERSION,
                              "metadata": _meta(pod, namespaced=True),
                              "timestamp": _stamp(first["timestamp"]),
                              "window": _window(first["window"]), "containers": usages})
        items.sort(key=lambda i: (i["metadata"]["namespace"], i["metadata"]["name"]))
        if target.name:
            found = [i for i in items if i["metadata"]["name"] == target.name]
            if not found:
                raise _not_found("podmetrics", f"{target.namespace}/{target.name}")
            return json_response(found[0])
        return json_response({"kind": "PodMetricsList", "apiVersion": API_VERSION, "metadata": {},
                              "items": items})
