"""Objects and watch helpers shared by the store tests (imported as `store_helpers`, like
store_factories)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import aclosing
from typing import Any

import pytest

from podnet.store import WatchEvent
from podnet.store.etcd_local import etcd_binary

Obj = dict[str, Any]

needs_etcd = pytest.mark.skipif(
    etcd_binary() is None, reason="etcd is not installed (no /usr/bin/etcd; apt-get install etcd-server)")


def svc(name: str, namespace: str = "default", **labels: str) -> Obj:
    return {"apiVersion": "v1", "kind": "Service",
            "metadata": {"name": name, "namespace": namespace, "labels": dict(labels)},
            "spec": {"ports": [{"port": 80, "protocol": "TCP"}]}}


def rv(obj: Obj) -> int:
    return int(obj["metadata"]["resourceVersion"])


async def take(it: AsyncIterator[WatchEvent], n: int, timeout: float = 3.0) -> list[WatchEvent]:
    """The next n events of a watch; then the watch is closed."""
    out: list[WatchEvent] = []

    async def run() -> None:
        async with aclosing(it) as events:  # type: ignore[type-var]
            async for event in events:
                out.append(event)
                if len(out) == n:
                    return

    await asyncio.wait_for(run(), timeout)
    return out
