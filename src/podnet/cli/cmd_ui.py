"""`podnet ui`: the live web view of a cluster, served on 127.0.0.1 (see podnet.ui)."""

from __future__ import annotations

import argparse
import asyncio
import sys
import time
from typing import Any

import yaml
from aiohttp import web

from podnet.cli.cmd_trace import gather_counters, trace_connection
from podnet.cli.common import add_name_flag, client_for, load_config
from podnet.cli.main import CLIError
from podnet.client.client import ApiClient, ApiError
from podnet.core.config import ClusterConfig
from podnet.model.kinds import ENDPOINTSLICES, EVENTS, NODES, PODS, SERVICES
from podnet.ui.model import build_view, events_text
from podnet.ui.server import LOOPBACK, Auth, UIError, make_app

COUNTER_TTL = 0.5  # seconds: several open pages share one read of the nftables counters


def register(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    p = sub.add_parser(
        "ui", help="a live web view of nodes, pods, Services and their traffic (on 127.0.0.1)",
        description="Serve a live picture of the cluster on 127.0.0.1: nodes with their IPs and podCIDRs, "
        "pods inside their nodes, Services with lines to their ready endpoints and packet counters, a "
        "form that explains how a connection is handled (`podnet trace`), and each object's YAML. "
        "Prints a one-time link (http://127.0.0.1:PORT/?token=...) that logs the browser in; other "
        "clients send the cluster token as `Authorization: Bearer`. Nothing listens beyond loopback.")
    add_name_flag(p)
    p.add_argument("--port", type=int, default=0,
                   help="port on 127.0.0.1 to listen on (default: any free port, printed)")
    p.set_defaults(func=run)


class ClusterBackend:
    """The page's data from one cluster: its API (one open client) and its nodes' nftables counters."""

    def __init__(self, cfg: ClusterConfig, client: ApiClient):
        self.cfg = cfg
        self.client = client
        self._counters: tuple[float, dict[str, Any]] = (0.0, {})
        self._lock = asyncio.Lock()

    async def _counters_for(self, nodes: list[str]) -> dict[str, Any]:
        async with self._lock:
            at, data = self._counters
            if time.monotonic() - at > COUNTER_TTL:
                data = await asyncio.to_thread(gather_counters, self.cfg, nodes)
                self._counters = (time.monotonic(), data)
            return data

    async def view(self) -> dict[str, Any]:
        try:
            nodes, pods, svcs, slices = await asyncio.gather(
                self.client.list(NODES), self.client.list(PODS), self.client.list(SERVICES),
                self.client.list(ENDPOINTSLICES))
        except (ApiError, OSError) as e:
            raise UIError(f"cannot reach the API server of cluster {self.cfg.name!r}: {e}") from e
        names = sorted(n["metadata"]["name"] for n in nodes.get("items") or [])
        counters = await self._counters_for(names)
        view = build_view(nodes.get("items") or [], pods.get("items") or [], svcs.get("items") or [],
                          slices.get("items") or [], counters)
        view["cluster"] = self.cfg.name
        view["nodeNetwork"] = self.cfg.node_network or ""
        view["time"] = time.time()
        return view

    async def trace(self, source: str, dest: str, proto: str) -> dict[str, Any]:
        try:
            ex = await asyncio.to_thread(trace_connection, self.cfg, source, dest, proto)
        except CLIError as e:
            raise UIError(str(e)) from e
        return {"lines": ex.lines, "data": ex.data}

    async def object_yaml(self, kind: str, namespace: str, name: str) -> str:
        rt = PODS if kind == "pod" else SERVICES
        try:
            obj = await self.client.get(rt, name, namespace)
        except ApiError as e:
            raise UIError(f"{kind} {namespace}/{name}: {e}") from e
        text: str = yaml.safe_dump(obj, sort_keys=False, default_flow_style=False, width=10_000)
        kind_name = "Pod" if kind == "pod" else "Service"
        try:
            events = (await self.client.list(
                EVENTS, namespace, field_selector=f"involvedObject.kind={kind_name},"
                f"involvedObject.name={name}")).get("items") or []
        except ApiError as e:
            return text + f"\n# Events: cannot list them: {e}\n"
        return text + "\n# Events\n" + events_text(events)


async def serve(cfg: ClusterConfig, port: int, ready: asyncio.Event | None = None) -> None:
    auth = Auth(cfg.token)
    async with client_for(cfg) as client:
        runner = web.AppRunner(make_app(ClusterBackend(cfg, client), auth), access_log=None)
        await runner.setup()
        try:
            site = web.TCPSite(runner, LOOPBACK, port)
            try:
                await site.start()
            except OSError as e:
                raise CLIError(f"cannot listen on {LOOPBACK}:{port}: {e.strerror or e}") from None
            bound = runner.addresses[0][1]
            print(f"podnet ui for cluster {cfg.name}: open this one-time link in a browser on this machine\n"
                  f"  http://{LOOPBACK}:{bound}/?token={auth.link_token}\n"
                  "(it logs that browser in; run `podnet ui` again for a new link; Ctrl-C stops)",
                  flush=True)
            if ready is not None:
                ready.set()
            await asyncio.Event().wait()
        finally:
            await runner.cleanup()


def run(args: argparse.Namespace) -> int:
    if not 0 <= args.port <= 65535:
        raise CLIError(f"--port {args.port}: must be 0-65535 (0: any free port)")
    cfg = load_config(args.name)
    try:
        asyncio.run(serve(cfg, args.port))
    except KeyboardInterrupt:
        print("stopped", file=sys.stderr)
    return 0
