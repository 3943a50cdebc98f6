"""The proxy's own health and metrics endpoints, as kube-proxy serves them.

- `/healthz` and `/livez` on port 10256 (kube-proxy's `--healthz-bind-address`, all addresses):
  200 while no change has waited for a sync longer than the health timeout (kube-proxy: twice its
  sync period, 60 s), 503 after; `/healthz` also answers 503 when the node is being deleted or
  tainted `ToBeDeletedByClusterAutoscaler`. The body is kube-proxy's: `{"lastUpdated": …,
  "currentTime": …, "nodeEligible": …}` (`/livez`: without nodeEligible). Status only: no secret.
- `/metrics` on 127.0.0.1:10249 (kube-proxy's `--metrics-bind-address` default): the Prometheus
  text of proxy/metrics.py. Bound to loopback of the node's namespace, so only the node itself
  (node-exec, hostNetwork pods) can read it.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from aiohttp import web

from podnet.proxy.metrics import ProxyMetrics

log = logging.getLogger(__name__)

HEALTHZ_PORT = 10256
METRICS_PORT = 10249
HEALTH_TIMEOUT = 60.0  # kube-proxy: twice its sync period (30 s)
TO_BE_DELETED_TAINT = "ToBeDeletedByClusterAutoscaler"


def go_time(t: float) -> str:
    """A Unix time as Go's time.Time String() prints it in UTC ("0001-01-01 00:00:00 +0000 UTC" for 0)."""
    if t <= 0:
        return "0001-01-01 00:00:00 +0000 UTC"
    d = dt.datetime.fromtimestamp(t, tz=dt.UTC)
    frac = f"{d.microsecond:06d}".rstrip("0")
    return f"{d:%Y-%m-%d %H:%M:%S}" + (f".{frac}" if frac else "") + " +0000 UTC"


def proxy_healthy(metrics: ProxyMetrics, now: float, timeout: float = HEALTH_TIMEOUT) -> bool:
    """kube-proxy's rule: healthy unless a change has been pending a sync for `timeout` or longer."""
    pending = metrics.oldest_pending
    return pending == 0 or now - pending < timeout


def node_eligible(node: dict[str, object] | None) -> bool:
    """False when the node is being deleted or tainted for deletion (kube-proxy's SyncNode)."""
    if node is None:
        return True
    meta = node.get("metadata") or {}
    if isinstance(meta, dict) and meta.get("deletionTimestamp"):
        return False
    spec = node.get("spec") or {}
    taints = spec.get("taints") if isinstance(spec, dict) else None
    return not any(isinstance(t, dict) and t.get("key") == TO_BE_DELETED_TAINT for t in taints or [])


def health_body(metrics: ProxyMetrics, now: float, eligible: bool | None,
                timeout: float = HEALTH_TIMEOUT) -> tuple[int, str]:
    """(HTTP status, body) of /healthz (`eligible` given) or /livez (None)."""
    healthy = proxy_healthy(metrics, now, timeout) and eligible is not False
    last = now if healthy else metrics.last_sync  # as kube-proxy: "recent" while healthy
    body: dict[str, object] = {"lastUpdated": go_time(last), "currentTime": go_time(now)}
    if eligible is not None:
        body["nodeEligible"] = eligible
    return (200 if healthy else 503), json.dumps(body)


@dataclass
class ProxyStatusServer:
    metrics: ProxyMetrics
    eligible: Callable[[], bool] = lambda: True
    healthz_addr: tuple[str, int] = ("0.0.0.0", HEALTHZ_PORT)
    metrics_addr: tuple[str, int] = ("127.0.0.1", METRICS_PORT)
    timeout: float = HEALTH_TIMEOUT
    clock: Callable[[], float] = time.time
    runners: list[web.AppRunner] = field(default_factory=list)

    async def _health(self, request: web.Request) -> web.Response:
        eligible = self.eligible() if request.path == "/healthz" else None
        status, body = health_body(self.metrics, self.clock(), eligible, self.timeout)
        return web.Response(status=status, body=body.encode(),  # kube-proxy's exact header: no charset
                            headers={"Content-Type": "application/json", "X-Content-Type-Options": "nosniff"})

    async def _metrics(self, request: web.Request) -> web.Response:
        return web.Response(body=self.metrics.render().encode(), headers={
            "Content-Type": "text/plain; version=0.0.4; charset=utf-8", "X-Content-Type-Options": "nosniff"})

    async def start(self) -> None:
        health = web.Application()
        health.router.add_get("/healthz", self._health)
        health.router.add_get("/livez", self._health)
        scrape = web.Application()
        scrape.router.add_get("/metrics", self._metrics)
        for app, (host, port), what in ((health, self.healthz_addr, "healthz"),
                                        (scrape, self.metrics_addr, "metrics")):
            runner = web.AppRunner(app, access_log=None)
            await runner.setup()
            try:
                await web.TCPSite(runner, host, port, reuse_address=True).start()
            except OSError as e:
                log.warning("proxy %s on %s:%d: cannot listen: %s", what, host, port, e)
                await runner.cleanup()
                continue
            self.runners.append(runner)

    async def close(self) -> None:
        while self.runners:
            await self.runners.pop().cleanup()
