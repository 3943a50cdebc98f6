"""healthCheckNodePort responders (LoadBalancer + externalTrafficPolicy Local), as kube-proxy serves them.

`GET /` on the port answers 200 when this node has local endpoints for the
service and the proxy itself is healthy (proxy/health.py), 503 otherwise, with
`{"service": {...}, "localEndpoints": n, "serviceProxyHealthy": <bool>}`.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Awaitable, Callable
from typing import Any

from aiohttp import web

log = logging.getLogger(__name__)


class HealthChecks:
    def __init__(self, host: str = "0.0.0.0", healthy: Callable[[], bool] = lambda: True):
        self.host = host
        self.healthy = healthy
        self.info: dict[int, tuple[str, int]] = {}  # port → (ns/name, local endpoints)
        self.runners: dict[int, web.AppRunner] = {}

    def _handler(self, port: int) -> Callable[[web.Request], Awaitable[web.StreamResponse]]:
        async def handle(request: web.Request) -> web.Response:
            svc, n = self.info.get(port, ("", 0))
            ns, _, name = svc.partition("/")
            proxy_ok = self.healthy()
            body: dict[str, Any] = {"service": {"namespace": ns, "name": name}, "localEndpoints": n,
                                    "serviceProxyHealthy": proxy_ok}
            return web.Response(status=200 if n > 0 and proxy_ok else 503, text=json.dumps(body),
                                content_type="application/json",
                                headers={"X-Content-Type-Options": "nosniff"})
        return handle

    async def sync(self, wanted: dict[int, tuple[str, int]]) -> None:
        self.info = dict(wanted)
        for port in sorted(set(self.runners) - set(wanted)):
            await self.runners.pop(port).cleanup()
        for port in sorted(set(wanted) - set(self.runners)):
            app = web.Application()
            app.router.add_get("/{tail:.*}", self._handler(port))
            runner = web.AppRunner(app, access_log=None)
            await runner.setup()
            try:
                await web.TCPSite(runner, self.host, port, reuse_address=True).start()
            except OSError as e:
                log.warning("healthCheckNodePort %d for %s: cannot listen: %s", port, wanted[port][0], e)
                await runner.cleanup()
                continue
            self.runners[port] = runner

    async def close(self) -> None:
        await self.sync({})
