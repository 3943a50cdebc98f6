"""Keep CPython's full garbage collections off a process's long-lived objects.

A node agent holds every Service and EndpointSlice of the cluster (2.5 million tracked objects at
100,000 Services). CPython's cyclic collector walks all of them in every full (generation 2)
collection: a 1.2-1.7 s pause of the whole event loop at 100,000 Services, ~90 ms at 10,000.

`FreezeAfterFullCollection` moves what survived a full collection into the collector's permanent
generation (`gc.freeze()`) as that collection ends, when that collection took longer than
`min_pause_s`. Right after a full collection every tracked object is reachable, so nothing that is
garbage then is frozen; later full collections walk only the objects made since, so a pause stays
near `min_pause_s` however large the caches grow. Cheaper collections freeze nothing: objects of
medium life (requests, watch streams) are frozen only at those rare moments.

Freezing does not keep objects alive: reference counting still frees a frozen object when its
last reference goes. What it gives up is reclaiming *cycles* among frozen objects that become
garbage later (the agent's caches hold acyclic compact copies; bench_agent_gc.py checks that
memory stays flat). `gc.freeze()` itself is a constant-time list splice.
"""

from __future__ import annotations

import gc
import time
from dataclasses import dataclass
from typing import Any

FULL = 2  # the oldest generation


@dataclass
class FreezeAfterFullCollection:
    """Install once per process (`install`); `uninstall` restores the default behaviour."""

    min_pause_s: float = 0.05  # freeze after a full collection that took at least this long
    freezes: int = 0
    last_full_s: float = 0.0  # duration of the last full collection (seconds)
    _started: float = 0.0
    installed: bool = False

    def install(self) -> None:
        if not self.installed:
            gc.callbacks.append(self._on_gc)
            self.installed = True

    def uninstall(self) -> None:
        if self.installed:
            gc.callbacks.remove(self._on_gc)
            self.installed = False
            gc.unfreeze()

    def _on_gc(self, phase: str, info: dict[str, Any]) -> None:
        if info.get("generation") != FULL:
            return
        if phase == "start":
            self._started = time.perf_counter()
            return
        # "stop": the collection is over and every generation is merged into the oldest, so this
        # freezes survivors only (no collection runs from here: freezing moves a list)
        self.last_full_s = time.perf_counter() - self._started
        if self.last_full_s >= self.min_pause_s:
            gc.freeze()
            self.freezes += 1


FREEZER = FreezeAfterFullCollection()


def freeze_long_lived() -> FreezeAfterFullCollection:
    """The process-wide freezer, installed (idempotent)."""
    FREEZER.install()
    return FREEZER
