"""`podnet demo --ui-minutes N`: the web view served while bounded traffic keeps flowing."""

from __future__ import annotations

import asyncio
import time
from typing import Any

import pytest
from aiohttp import web
from rich.console import Console

from podnet.cli import cmd_demo, cmd_ui
from podnet.core.config import ClusterConfig


async def test_live_serves_the_view_and_sends_bounded_traffic_until_the_time_is_up(
        monkeypatch: pytest.MonkeyPatch) -> None:
    hits: list[str] = []

    async def answer(request: web.Request) -> web.Response:  # a server this test started on 127.0.0.1
        hits.append(request.path)
        return web.json_response({"frontend": {"pod": "fe-1", "node": "n1"}, "backend": "be-1"})

    app = web.Application()
    app.router.add_get("/", answer)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = runner.addresses[0][1]
    served: dict[str, Any] = {}

    async def fake_serve(cfg: ClusterConfig, port: int, ready: asyncio.Event | None = None) -> None:
        served["cluster"] = cfg.name
        try:
            await asyncio.Event().wait()
        finally:
            served["stopped"] = True

    monkeypatch.setattr(cmd_ui, "serve", fake_serve)
    try:
        t0 = time.monotonic()
        sent = await cmd_demo.live(ClusterConfig(name="demo"), [f"http://127.0.0.1:{port}/"], 0.02,
                                   Console(quiet=True), every=0.1)
        took = time.monotonic() - t0
    finally:
        await runner.cleanup()
    assert served == {"cluster": "demo", "stopped": True}  # the view ran, and stopped with the traffic
    assert 1.1 <= took < 5  # 0.02 min
    assert sent == len(hits) and 3 <= sent <= 14  # one request per round, rounds bounded by the time


def test_ui_minutes_out_of_range_is_a_clear_error() -> None:
    import argparse

    from podnet.cli.main import CLIError

    args = argparse.Namespace(output="table", requests=12, ui_minutes=500.0)
    with pytest.raises(CLIError, match="--ui-minutes: Invalid value: 500: must be between 0 and 120"):
        cmd_demo.run(args)
