"""The web server of `podnet ui`: loopback only, every request authenticated.

A one-time link token (made in this process, printed by the command) is exchanged for an HttpOnly,
SameSite=Strict session cookie; API clients may send the cluster token as `Authorization: Bearer`.
The data comes from a `Backend` the caller supplies (the CLI layer wires it to the cluster)."""

from __future__ import annotations

import hmac
import json
import logging
import secrets
from importlib import resources
from typing import Any, Protocol

from aiohttp import web

log = logging.getLogger(__name__)

COOKIE = "podnet_ui"
LOOPBACK = "127.0.0.1"
STATIC = {"/app.js": ("app.js", "text/javascript"), "/app.css": ("app.css", "text/css")}
OBJECT_KINDS = ("pod", "service")


class UIError(Exception):
    """A request the backend refuses, with a message for the user (shown as 400 text)."""


class Backend(Protocol):
    async def view(self) -> dict[str, Any]: ...

    async def trace(self, source: str, dest: str, proto: str) -> dict[str, Any]: ...

    async def object_yaml(self, kind: str, namespace: str, name: str) -> str: ...


def _asset(name: str) -> bytes:
    return resources.files("podnet.ui").joinpath("static", name).read_bytes()


def _same(a: str, b: str) -> bool:
    return bool(a) and bool(b) and hmac.compare_digest(a.encode(), b.encode())


class Auth:
    """The one-time link token, the session secret it is exchanged for, and the cluster token."""

    def __init__(self, cluster_token: str, link_token: str | None = None):
        self.cluster_token = cluster_token
        self.link_token: str | None = link_token or secrets.token_urlsafe(32)
        self.session = secrets.token_urlsafe(32)

    def redeem(self, token: str) -> bool:
        if self.link_token is not None and _same(token, self.link_token):
            self.link_token = None  # one time only
            return True
        return False

    def allowed(self, request: web.Request) -> bool:
        if _same(request.cookies.get(COOKIE, ""), self.session):
            return True
        scheme, _, cred = request.headers.get("Authorization", "").partition(" ")
        return scheme.lower() == "bearer" and _same(cred.strip(), self.cluster_token)


async def _no_content() -> web.Response:
    return web.Response(status=204)


def make_app(backend: Backend, auth: Auth) -> web.Application:
    @web.middleware
    async def guard(request: web.Request, handler: Any) -> web.StreamResponse:
        host = (request.host or "").rsplit(":", 1)[0]
        if host not in (LOOPBACK, "localhost"):  # DNS rebinding: only our own loopback names
            return web.Response(status=421, text="podnet ui answers on 127.0.0.1 only\n")
        if request.path == "/" and "token" in request.query:
            if not auth.redeem(request.query["token"]):
                return web.Response(status=401, text="this link was already used or is wrong: "
                                    "run `podnet ui` again for a new one\n")
            done = web.Response(status=302, headers={"Location": "/"})
            done.set_cookie(COOKIE, auth.session, httponly=True, samesite="Strict", path="/")
            return done
        if not auth.allowed(request):
            return web.Response(status=401, text="unauthorized: open the link `podnet ui` printed\n",
                                headers={"WWW-Authenticate": 'Bearer realm="podnet ui"'})
        resp: web.StreamResponse = await handler(request)
        resp.headers["Cache-Control"] = "no-store"
        resp.headers["X-Content-Type-Options"] = "nosniff"
        resp.headers["Content-Security-Policy"] = ("default-src 'self'; script-src 'self'; "
                                                   "style-src 'self'; img-src 'self' data:")
        return resp

    async def index(_: web.Request) -> web.Response:
        return web.Response(body=_asset("index.html"), content_type="text/html")

    async def static(request: web.Request) -> web.Response:
        name, ctype = STATIC[request.path]
        return web.Response(body=_asset(name), content_type=ctype)

    async def view(_: web.Request) -> web.Response:
        try:
            data = await backend.view()
        except UIError as e:
            return web.json_response({"error": str(e)}, status=503)
        return web.json_response(data)

    async def trace(request: web.Request) -> web.Response:
        if request.content_type != "application/json":
            return web.json_response({"error": "send the form as application/json"}, status=415)
        try:
            body = await request.json()
        except (json.JSONDecodeError, UnicodeDecodeError):
            return web.json_response({"error": "the body is not JSON"}, status=400)
        if not isinstance(body, dict):
            return web.json_response({"error": "the body must be a JSON object"}, status=400)
        source, dest = str(body.get("source") or "").strip(), str(body.get("dest") or "").strip()
        proto = str(body.get("proto") or "tcp").lower()
        if not source or not dest:
            return web.json_response({"error": "source and destination are required"}, status=400)
        if proto not in ("tcp", "udp", "sctp"):
            return web.json_response({"error": f"protocol {proto!r}: must be tcp, udp or sctp"}, status=400)
        try:
            return web.json_response(await backend.trace(source, dest, proto))
        except UIError as e:
            return web.json_response({"error": str(e)}, status=400)

    async def obj(request: web.Request) -> web.Response:
        kind, ns, name = (request.query.get(k, "") for k in ("kind", "namespace", "name"))
        if kind not in OBJECT_KINDS or not name:
            return web.Response(status=400, text=f"kind must be one of {', '.join(OBJECT_KINDS)} "
                                "and name is required\n")
        try:
            text = await backend.object_yaml(kind, ns or "default", name)
        except UIError as e:
            return web.Response(status=404, text=f"{e}\n")
        return web.Response(text=text, content_type="text/plain")

    app = web.Application(middlewares=[guard])
    app.router.add_get("/", index)
    for path in STATIC:
        app.router.add_get(path, static)
    app.router.add_get("/favicon.ico", lambda _: _no_content())
    app.router.add_get("/api/view", view)
    app.router.add_post("/api/trace", trace)
    app.router.add_get("/api/object", obj)
    return app
