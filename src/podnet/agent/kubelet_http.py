"""The kubelet-style endpoint on the node IP: /healthz, /pods, /containerLogs, /run, /exec, /attach,
/portForward.

The API server proxies `kubectl logs` and `kubectl exec` here:
GET /containerLogs/<ns>/<pod>/<container>?follow=&tailLines=&timestamps=&previous=&limitBytes=

As the kubelet's port 10250, it serves TLS with the node's serving certificate (signed by the cluster CA)
and requires a client certificate from the cluster CA; of those, only the API server's kubelet client
(CN podnet-apiserver-kubelet-client, O system:masters) may call it: anything else gets no answer
(no certificate: the TLS handshake fails) or 403.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import ssl
from collections.abc import Awaitable, Callable
from pathlib import Path

from aiohttp import web

from podnet.agent.attach_ws import open_console, serve_attach
from podnet.agent.exec_ws import serve_exec
from podnet.agent.logs import follow_log, read_log
from podnet.agent.nsexec import exec_in
from podnet.agent.pods import ContainerRunner
from podnet.agent.portforward import serve_port_forward
from podnet.agent.runtime import PodRuntime
from podnet.agent.usage import UsageSampler, process_tree
from podnet.core.tls import is_kubelet_client

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def _bool(q: str | None) -> bool:
    return (q or "").lower() in ("true", "1")


def _int(q: str | None, name: str) -> int | None:
    if q is None or q == "":
        return None
    try:
        return int(q)
    except ValueError:
        raise web.HTTPBadRequest(text=f'{name}: Invalid value: "{q}": must be an integer') from None


@web.middleware
async def _only_the_api_server(request: web.Request, handler: Handler) -> web.StreamResponse:
    peer = request.transport.get_extra_info("peercert") if request.transport is not None else None
    if not is_kubelet_client(peer):
        who = _common_name(peer) or "system:anonymous"
        raise web.HTTPForbidden(text=f"Forbidden (user={who}, verb={request.method.lower()}, resource=nodes, "
                                "subresource=proxy): only the API server may call this endpoint")
    return await handler(request)


def _common_name(peer: object) -> str:
    if not isinstance(peer, dict):
        return ""
    for rdn in peer.get("subject") or ():
        for pair in rdn:
            if isinstance(pair, tuple) and len(pair) == 2 and pair[0] == "commonName":
                return str(pair[1])
    return ""


class KubeletServer:
    def __init__(self, runtime: PodRuntime):
        self.runtime = runtime
        self._runner: web.AppRunner | None = None
        self.usage = UsageSampler()
        self._sampling: asyncio.Task[None] | None = None
        self._latest: dict[str, object] = {"node": None, "pods": []}

    def app(self, authenticate: bool = False) -> web.Application:
        app = web.Application(middlewares=[_only_the_api_server] if authenticate else [])
        app.router.add_get("/healthz", self.healthz)
        app.router.add_get("/pods", self.pods)
        app.router.add_get("/containerLogs/{ns}/{pod}/{container}", self.container_logs)
        app.router.add_post("/run/{ns}/{pod}/{container}", self.run)
        app.router.add_get("/exec/{ns}/{pod}/{container}", self.exec)
        app.router.add_post("/exec/{ns}/{pod}/{container}", self.exec)
        app.router.add_get("/attach/{ns}/{pod}/{container}", self.attach)
        app.router.add_post("/attach/{ns}/{pod}/{container}", self.attach)
        app.router.add_get("/portForward/{ns}/{pod}", self.port_forward)
        app.router.add_get("/stats/usage", self.stats_usage)
        return app

    async def start(self, host: str, port: int, ssl_context: ssl.SSLContext | None = None) -> int:
        """Listen on host:port; with `ssl_context` (podnet.core.tls.kubelet_server_ssl_context) over
        mutual TLS, answering only the API server's kubelet client. Without: plain HTTP (tests only)."""
        self._runner = web.AppRunner(self.app(authenticate=ssl_context is not None), access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, host, port, reuse_address=True, ssl_context=ssl_context)
        await site.start()
        self._sampling = asyncio.ensure_future(self._sample_forever())
        return next((int(a[1]) for a in self._runner.addresses if isinstance(a, tuple)), port)

    async def stop(self) -> None:
        if self._sampling is not None:
            self._sampling.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._sampling
            self._sampling = None
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    async def healthz(self, request: web.Request) -> web.Response:
        return web.Response(text="ok")

    async def pods(self, request: web.Request) -> web.Response:
        items = [w.pod for w in self.runtime.workers.values()]
        return web.json_response({"kind": "PodList", "apiVersion": "v1", "metadata": {}, "items": items})

    def _runner_for(self, ns: str, pod: str, container: str) -> ContainerRunner:
        w = self.runtime.find(ns, pod)
        if w is None:
            raise web.HTTPNotFound(text=f'pod "{pod}" in namespace "{ns}" is not running on this node')
        for r in w.init_runners + w.runners:
            if r.name == container:
                return r
        raise web.HTTPBadRequest(text=f"container {container} is not valid for pod {pod}")

    async def container_logs(self, request: web.Request) -> web.StreamResponse:
        ns, pod, container = (request.match_info[k] for k in ("ns", "pod", "container"))
        q = request.query
        r = self._runner_for(ns, pod, container)
        tail = _int(q.get("tailLines"), "tailLines")
        limit = _int(q.get("limitBytes"), "limitBytes")
        timestamps = _bool(q.get("timestamps"))
        dirs = r.w.deps.dirs
        attempt = r.rec.attempt
        if _bool(q.get("previous")):
            if r.view.restart_count == 0 or attempt == 0:
                raise web.HTTPBadRequest(
                    text=f'previous terminated container "{container}" in pod "{pod}" not found')
            attempt -= 1
        log_path: Path = dirs.log_path(r.w.uid, container, attempt)
        if not _bool(q.get("follow")) or _bool(q.get("previous")):
            return web.Response(body=read_log(log_path, tail=tail, timestamps=timestamps, limit_bytes=limit),
                                content_type="text/plain")
        run_dir = dirs.run_dir(r.w.uid, container, attempt)

        def finished() -> bool:
            return (run_dir / "exit.json").exists() or r.w.done.is_set() or r.rec.attempt != attempt

        resp = web.StreamResponse(status=200, headers={"Content-Type": "text/plain"})
        resp.enable_chunked_encoding()
        await resp.prepare(request)
        sent = 0
        try:
            async for chunk in follow_log(log_path, tail=tail, timestamps=timestamps, finished=finished):
                if limit is not None:
                    chunk = chunk[:max(0, limit - sent)]
                if chunk:
                    await resp.write(chunk)
                    sent += len(chunk)
                if limit is not None and sent >= limit:
                    break
            await resp.write_eof()
        except ConnectionError:
            pass
        return resp

    async def exec(self, request: web.Request) -> web.StreamResponse:
        """WebSocket exec (channel.k8s.io framing), for the API server to proxy `kubectl exec` to."""
        ns, pod, container = (request.match_info[k] for k in ("ns", "pod", "container"))
        r = self._runner_for(ns, pod, container)
        pid = r.proc.container_pid() if r.proc is not None else None
        if pid is None:
            raise web.HTTPBadRequest(text=f'container "{container}" in pod "{pod}" is not running')
        return await serve_exec(request, pid)

    async def attach(self, request: web.Request) -> web.StreamResponse:
        """WebSocket attach to the container's console (its shim's attach socket; agent/attach_ws.py)."""
        ns, pod, container = (request.match_info[k] for k in ("ns", "pod", "container"))
        if not any(_bool(request.query.get(f)) for f in ("stdin", "stdout", "stderr")):
            raise web.HTTPBadRequest(text="you must specify at least 1 of stdin, stdout, stderr")
        r = self._runner_for(ns, pod, container)
        # the kubelet's words when the runtime has no running container of that name (kubelet_pods.go)
        not_found = f"container {container} not found in pod {pod}_{ns}"
        if r.proc is None or r.proc.container_pid() is None or not r.proc.alive():
            raise web.HTTPInternalServerError(text=not_found)
        if request.headers.get("Upgrade", "").lower() != "websocket":
            # nothing wrong but the missing upgrade (the API server asks so to learn of errors first)
            raise web.HTTPBadRequest(text="No WebSocket UPGRADE hdr: attach is served over WebSocket")
        run_dir = r.w.deps.dirs.run_dir(r.w.uid, container, r.rec.attempt)
        console = await open_console(run_dir)
        if console is None:
            raise web.HTTPInternalServerError(text=not_found)
        spec = r.spec
        return await serve_attach(request, console, stdin=bool(spec.get("stdin")), tty=bool(spec.get("tty")),
                                  stdin_once=bool(spec.get("stdinOnce")))

    async def port_forward(self, request: web.Request) -> web.StreamResponse:
        """One forwarded TCP connection to `localhost:<port>` in the pod's network namespace."""
        ns, pod = request.match_info["ns"], request.match_info["pod"]
        port = _int(request.query.get("port"), "port")
        if port is None or not 0 < port < 65536:
            raise web.HTTPBadRequest(text=f'port: Invalid value: "{request.query.get("port", "")}": '
                                     "must be between 1 and 65535, inclusive")
        w = self.runtime.find(ns, pod)
        if w is None:
            raise web.HTTPNotFound(text=f'pod "{pod}" in namespace "{ns}" is not running on this node')
        netns = w.deps.network.netns_path(w.uid) if w.deps.use_netns and not w.host_network else ""
        return await serve_port_forward(request, port, w.uid, netns)

    def sample_usage(self) -> dict[str, object]:
        """CPU (nanocores; None until a second sample) and memory (bytes) of every running container and
        of the node (the agent and every container), as `/stats/usage` serves it (api/metrics.py)."""
        pods: list[dict[str, object]] = []
        node_pids = set(process_tree(os.getpid()))
        keys: set[str] = {"node"}
        for w in list(self.runtime.workers.values()):
            containers = []
            for r in w.runners:
                pid = r.proc.container_pid() if r.proc is not None else None
                if pid is None:
                    continue
                pids = process_tree(pid)
                node_pids.update(pids)
                key = f"{w.uid}/{r.name}"
                keys.add(key)
                u = self.usage.sample(key, pids)
                containers.append({"name": r.name, "cpu": u.nanocores, "memory": u.memory_bytes,
                                   "timestamp": u.timestamp, "window": u.window})
            if containers:
                pods.append({"namespace": w.namespace, "name": w.name, "uid": w.uid,
                             "containers": containers})
        u = self.usage.sample("node", sorted(node_pids))
        self.usage.forget_except(keys)
        return {"node": {"cpu": u.nanocores, "memory": u.memory_bytes, "timestamp": u.timestamp,
                         "window": u.window}, "pods": pods}

    async def _sample_forever(self, every: float = 5.0) -> None:
        while True:
            with contextlib.suppress(Exception):
                self._latest = await asyncio.to_thread(self.sample_usage)
            await asyncio.sleep(every)

    async def stats_usage(self, request: web.Request) -> web.Response:
        return web.json_response(self._latest)

    async def run(self, request: web.Request) -> web.Response:
        """kubelet's /run: run `cmd` (query, space-separated, or JSON list body) in the container."""
        ns, pod, container = (request.match_info[k] for k in ("ns", "pod", "container"))
        r = self._runner_for(ns, pod, container)
        body = await request.text()
        cmd: list[str]
        if body.strip().startswith("["):
            cmd = [str(c) for c in json.loads(body)]
        else:
            cmd = (request.query.get("cmd") or body).split()
        if not cmd:
            raise web.HTTPBadRequest(text="cmd is required")
        pid = r.proc.container_pid() if r.proc is not None else None
        if pid is None:
            raise web.HTTPBadRequest(text=f'container "{container}" in pod "{pod}" is not running')
        code, out = await exec_in(pid, cmd, {}, 60.0)
        return web.Response(text=out, headers={"X-Exit-Code": str(code)})
