"""podnet's Kubernetes-compatible API server (aiohttp).

    server = APIServer(store, hooks={"services": ServiceHooks(...)}, tokens=["secret"])
    await server.bootstrap()                 # default, kube-system, kube-public, kube-node-lease
    port = await server.start("127.0.0.1", 0, unix_path="/run/podnet/api.sock")
    ...
    await server.stop()

`make_app()` gives the aiohttp Application alone (tests drive it with aiohttp's TestServer).
`python -m podnet.cluster.standalone_api` runs one alone (no nodes, no controllers) for tests.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import hmac
import logging
import secrets
import ssl
import time
from collections.abc import Awaitable, Callable, Collection, Mapping
from pathlib import Path
from typing import Protocol

from aiohttp import web

from podnet.api import bodies, discovery, listen, openapi_http, routing
from podnet.api.audit import AuditLog
from podnet.api.crds import CRDHooks
from podnet.api.deletion import Deleter
from podnet.api.errors import APIError, internal_error, unauthorized
from podnet.api.gc import GarbageCollector
from podnet.api.handlers import ResourceHandler, json_response, status_response
from podnet.api.hooks import ResourceHooks
from podnet.api.identity import ADMIN, USER_KEY, Identity, TokenSecretHooks
from podnet.api.logs import LogProxy
from podnet.api.metrics import MetricsApi
from podnet.api.registry import Registry
from podnet.api.sa_tokens import looks_like_jwt
from podnet.api.subresources import Subresources
from podnet.api.watch import Watcher
from podnet.model import kinds
from podnet.store.base import Store

log = logging.getLogger(__name__)

MAX_BODY = 3 * 1024 * 1024  # kube-apiserver's request body limit (3 MiB)
OPEN_PATHS = ("/healthz", "/livez", "/readyz", "/version")
BOOTSTRAP_NAMESPACES = ("default", "kube-system", "kube-public", "kube-node-lease")

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


class TokenAuthorizer(Protocol):
    """Decides requests that do not carry the admin token (podnet.api.auth.NodeAuthorizer)."""

    async def handle(self, request: web.Request, token: str, handler: Handler) -> web.StreamResponse: ...


def _not_found() -> APIError:
    return APIError(404, "NotFound", "the server could not find the requested resource", {})


class APIServer:
    def __init__(self, store: Store, *, hooks: Mapping[str, ResourceHooks] | None = None,
                 tokens: Collection[str] = (), version: str = "v1.32.0",
                 authorizer: TokenAuthorizer | None = None, sa_key: bytes | None = None,
                 audit_log: Path | None = None):
        self.store = store
        self.audit = AuditLog(audit_log) if audit_log is not None else None
        self.tokens = [t for t in tokens if t]
        # requests whose bearer token is not one of `tokens` (join tokens: podnet.api.auth)
        self.authorizer = authorizer
        self.version = version
        self.registry = Registry(store, hooks)
        self.crd_hooks = CRDHooks()  # serves the resources CustomResourceDefinitions define
        self.registry.hooks.setdefault(kinds.CUSTOMRESOURCEDEFINITIONS.key, self.crd_hooks)
        # ServiceAccount tokens, RBAC, impersonation, access reviews (podnet.api.identity)
        self.identity = Identity(self.registry, sa_key if sa_key is not None else secrets.token_bytes(32))
        self.registry.hooks.setdefault(kinds.SECRETS.key, TokenSecretHooks(self.identity))
        self.deleter = Deleter(self.registry)
        self.subresources = Subresources(self.registry)
        self.gc = GarbageCollector(self.deleter)
        self._stopping = asyncio.Event()
        self.watcher = Watcher(store, self._stopping)
        self.logs = LogProxy(self.registry)
        self.resources = ResourceHandler(self.registry, self.deleter, self.subresources, self.watcher,
                                         self.logs)
        self.metrics = MetricsApi(self.resources.execs)  # metrics.k8s.io, from the node agents
        self._runner: web.AppRunner | None = None
        self.server_address = "127.0.0.1:6443"

    def use_kubelet_tls(self, ctx: ssl.SSLContext) -> None:
        """Call node endpoints (pods/log, pods/exec) over https with this context: it presents the
        API server's client certificate and checks the node's serving certificate against the CA."""
        self.logs.kubelet_tls = ctx
        self.resources.execs.kubelet_tls = ctx

    # ---- application -----------------------------------------------------------------------

    def make_app(self) -> web.Application:
        app = web.Application(client_max_size=MAX_BODY, middlewares=[self._errors, self._auth])
        app.router.add_route("*", "/{tail:.*}", self._dispatch)
        app.on_startup.append(self._on_startup)
        app.on_shutdown.append(self._on_shutdown)
        app.on_cleanup.append(self._on_cleanup)
        return app

    async def _on_startup(self, app: web.Application) -> None:
        self._stopping.clear()
        await self.gc.start()

    async def _on_shutdown(self, app: web.Application) -> None:
        self._stopping.set()

    async def _on_cleanup(self, app: web.Application) -> None:
        await self.gc.stop()
        await self.logs.close()

    @web.middleware
    async def _errors(self, request: web.Request, handler: Handler) -> web.StreamResponse:
        if self.audit is not None or log.isEnabledFor(logging.DEBUG):
            return await self._logged(request, handler)
        return await self._answer(request, handler)

    async def _logged(self, request: web.Request, handler: Handler) -> web.StreamResponse:
        """Requests are logged at debug level only (`podnet controlplane` logs at info), and to the
        audit log when there is one."""
        start = time.monotonic()
        received = dt.datetime.now(dt.UTC)
        resp = await self._answer(request, handler)
        log.debug("%s %s %d %.1fms", request.method, request.path_qs, resp.status,
                  (time.monotonic() - start) * 1000)
        if self.audit is not None:
            try:
                self.audit.record(request, resp.status, received)
            except Exception:
                log.exception("audit log write failed")
        return resp

    async def _answer(self, request: web.Request, handler: Handler) -> web.StreamResponse:
        try:
            return await handler(request)
        except APIError as e:
            return status_response(e)
        except web.HTTPRequestEntityTooLarge:
            from podnet.api.errors import too_large

            err = too_large()
            return status_response(err)
        except web.HTTPException:
            raise
        except (asyncio.CancelledError, ConnectionError):
            raise
        except Exception as e:
            log.exception("%s %s failed", request.method, request.path)
            err = internal_error(f"{type(e).__name__}: {e}")
            return status_response(err)

    @web.middleware
    async def _auth(self, request: web.Request, handler: Handler) -> web.StreamResponse:
        if self.tokens and not _is_open(request.path):
            header = request.headers.get("Authorization", "")
            scheme, _, token = header.partition(" ")
            token = token.strip()
            if scheme.lower() != "bearer" or not any(hmac.compare_digest(token, t) for t in self.tokens):
                if scheme.lower() == "bearer" and looks_like_jwt(token):
                    return await self.identity.handle_token(request, token, handler)
                if self.authorizer is None:
                    raise unauthorized()
                return await self.authorizer.handle(request, token if scheme.lower() == "bearer" else "",
                                                    handler)
        impersonated = request.headers.get("Impersonate-User", "")
        if impersonated:
            return await self.identity.impersonate(request, impersonated, handler)
        request[USER_KEY] = ADMIN
        return await handler(request)

    async def _dispatch(self, request: web.Request) -> web.StreamResponse:
        path = request.path
        if path in ("/healthz", "/livez", "/readyz") or path.startswith(("/healthz/", "/livez/", "/readyz/")):
            return web.Response(text="ok", content_type="text/plain")
        if path in ("/version", "/version/"):
            return json_response(discovery.version_info(self.version))
        if path == "/openapi/v2":
            return openapi_http.v2(request)
        if path == "/openapi/v3":
            return openapi_http.v3_index(request)
        if path.startswith("/openapi/v3/"):
            answer = openapi_http.v3_group(request, path[len("/openapi/v3/"):])
            if answer is None:
                raise _not_found()
            return answer
        target = routing.parse_path(path)
        if target is None:
            raise _not_found()
        if isinstance(target, routing.Discovery):
            if request.method != "GET":
                raise APIError(405, "MethodNotAllowed",
                               "the server does not allow this method on the requested resource")
            return json_response(self._discovery(target))
        if Identity.handles(target):
            return await self.identity.serve(request, target, None)
        if MetricsApi.handles(target):
            return await self.metrics.serve(request, target)
        return await self.resources.handle(request, target)

    def _discovery(self, d: routing.Discovery) -> dict[str, object]:
        doc: dict[str, object] | None
        if d.kind == "versions":
            doc = discovery.api_versions(self.server_address)
        elif d.kind == "groups":
            doc = discovery.api_group_list()
        elif d.kind == "group":
            doc = discovery.api_group(d.group)
        else:
            doc = discovery.resource_list(d.group, d.version)
        if doc is None:
            raise _not_found()
        return doc

    # ---- lifecycle -------------------------------------------------------------------------

    async def bootstrap(self) -> None:
        """Serve the stored CRDs' resources; create the namespaces every cluster has, if missing."""
        await self.crd_hooks.load(self.store)
        await self.identity.ensure_bootstrap_policy()
        for ns in BOOTSTRAP_NAMESPACES:
            try:
                await self.registry.create(kinds.NAMESPACES, "", {"metadata": {"name": ns}})
            except APIError as e:
                if e.reason != "AlreadyExists":
                    raise

    async def start(self, host: str | None, port: int, unix_path: str | None = None,
                    ssl_context: ssl.SSLContext | None = None) -> int:
        """Listen on host:port (host None: every interface) and optionally a unix socket; returns
        the TCP port bound (port 0 picks a free one)."""
        if self._runner is not None:
            raise RuntimeError("API server already started")
        bodies.share_the_gil()
        runner = web.AppRunner(self.make_app(), handle_signals=False, shutdown_timeout=5.0,
                               **listen.HANDLER_ARGS)
        await runner.setup()
        self._runner = runner
        bound = 0
        try:
            site = listen.APISite(runner, host, port, ssl_context=ssl_context)
            await site.start()
            for addr in runner.addresses:
                if isinstance(addr, tuple) and len(addr) >= 2:
                    bound = int(addr[1])
                    break
            if unix_path:
                await listen.APISite(runner, unix_path=unix_path).start()
        except BaseException:
            await self.stop()
            raise
        self.server_address = f"{host or '0.0.0.0'}:{bound}"
        if host not in ("127.0.0.1", "::1", "localhost") and ssl_context is None:
            log.warning("API server listens on %s without TLS", host or "every interface")
        return bound

    async def add_listener(self, host: str, port: int, ssl_context: ssl.SSLContext | None = None) -> None:
        """Also listen on host:port (after `start`), e.g. the address other machines join through."""
        if self._runner is None:
            raise RuntimeError("API server not started")
        await listen.APISite(self._runner, host, port, ssl_context=ssl_context).start()

    async def stop(self) -> None:
        self._stopping.set()
        runner, self._runner = self._runner, None
        if runner is not None:
            await runner.cleanup()


def _is_open(path: str) -> bool:
    return any(path == p or path.startswith(p + "/") for p in OPEN_PATHS)
