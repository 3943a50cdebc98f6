"""What changed since the last sync: the proxy's change tracker (kube-proxy's ServiceChangeTracker and
EndpointsChangeTracker in one), fed by the informers' events.

It keeps, per Service key, whether its object or one of its EndpointSlices changed, the slices of
each Service in the slice cache's order (that order decides which of two slices naming the same
endpoint wins, so an incremental sync must see the order a full build sees), the change trigger
times (for the network programming latency), and whether something happened that only a full sync
handles (a node change, an object of a shape the incremental path does not know).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime

from podnet.client.informer import obj_key
from podnet.model.kinds import Obj
from podnet.model.services import HEADLESS_LABEL, SERVICE_NAME_LABEL

TRIGGER_ANNOTATION = "endpoints.kubernetes.io/last-change-trigger-time"


TRIGGER_KEY = "podnet.triggerTime"  # in compact copies (proxy/compact.py): the annotation, parsed


def trigger_time(obj: Obj) -> float | None:
    if TRIGGER_KEY in obj:
        return float(obj[TRIGGER_KEY])
    ann = (obj.get("metadata") or {}).get("annotations") or {}
    v = ann.get(TRIGGER_ANNOTATION)
    if not v:
        return None
    try:
        return datetime.fromisoformat(str(v).replace("Z", "+00:00")).timestamp()
    except ValueError:
        return None


def slice_service(sl: Obj) -> str | None:
    """The `namespace/service` key a slice is grouped under, as slices_by_service groups it."""
    meta = sl.get("metadata") or {}
    labels = meta.get("labels") or {}
    svc = labels.get(SERVICE_NAME_LABEL)
    if not svc or HEADLESS_LABEL in labels:
        return None
    return f"{meta.get('namespace', '')}/{svc}"


@dataclass
class Changes:
    """What one sync has to do (taken from the tracker at the start of the sync)."""

    services: set[str]  # keys of Services whose object or slices changed
    triggers: list[float]  # when the changes were made (epoch seconds)
    full: bool  # only a full rebuild is safe (nodes changed, an unknown shape, a reset)


@dataclass
class ChangeTracker:
    on_change: Callable[[], None] = lambda: None  # called after every event (wakes the sync loop)
    pending: set[str] = field(default_factory=set)
    triggers: list[float] = field(default_factory=list)
    full: bool = True  # nothing known yet
    service_keys: set[str] = field(default_factory=set)
    slice_seq: dict[str, int] = field(default_factory=dict)  # slice key → position in the cache's order
    slice_group: dict[str, str] = field(default_factory=dict)  # slice key → the Service key it serves
    group_slices: dict[str, list[str]] = field(default_factory=dict)  # Service key → its slice keys
    next_seq: int = 0

    # ---- events -------------------------------------------------------------------------
    def on_service(self, etype: str, obj: Obj, old: Obj | None) -> None:
        meta = obj.get("metadata") or {}
        if meta.get("namespace"):
            key = obj_key(obj)
            self.pending.add(key)
            if etype == "DELETED":
                self.service_keys.discard(key)
            else:
                self.service_keys.add(key)
        else:
            self.full = True  # not a shape the incremental path knows
        self._trigger(obj)

    def on_slice(self, etype: str, obj: Obj, old: Obj | None) -> None:
        key = obj_key(obj)
        prev = self.slice_group.pop(key, None)
        if prev is not None:
            self._ungroup(key, prev)
            self.pending.add(prev)
        if etype == "DELETED":
            self.slice_seq.pop(key, None)
        else:
            if key not in self.slice_seq:
                self.slice_seq[key] = self.next_seq
                self.next_seq += 1
            svc = slice_service(obj)
            if svc is not None:
                self.slice_group[key] = svc
                self.group_slices.setdefault(svc, []).append(key)
                self.pending.add(svc)
        self._trigger(obj)

    def on_node(self, etype: str, obj: Obj, old: Obj | None) -> None:
        """Node facts are compared by the sync itself (a heartbeat changes none of them)."""
        self._trigger(obj)

    def _ungroup(self, key: str, svc: str) -> None:
        group = self.group_slices.get(svc)
        if group is not None:
            if key in group:
                group.remove(key)
            if not group:
                del self.group_slices[svc]

    def _trigger(self, obj: Obj) -> None:
        t = trigger_time(obj)
        if t is None and obj.get("kind") in ("EndpointSlice", "Service"):
            t = time.time()  # no trigger-time annotation: measure from the event's arrival
        if t is not None:
            self.triggers.append(t)
        self.on_change()

    # ---- syncs --------------------------------------------------------------------------
    def take(self, services: Mapping[str, Obj], slices: Mapping[str, Obj]) -> Changes:
        """The changes since the last take; `full` also when the caches and the tracker disagree
        (e.g. a cache filled without events)."""
        full = self.full or len(services) != len(self.service_keys) or len(slices) != len(self.slice_seq)
        ch = Changes(self.pending, self.triggers, full)
        self.pending, self.triggers, self.full = set(), [], False
        return ch

    def give_back(self, ch: Changes) -> None:
        """A sync failed: its changes are still to do (and a full sync follows)."""
        self.pending |= ch.services
        self.triggers = ch.triggers + self.triggers
        self.full = True

    def reset(self, slices: Mapping[str, Obj], services: Mapping[str, Obj]) -> None:
        """Start over from the caches (after a full build): slice order and grouping as they are now."""
        self.slice_seq, self.slice_group, self.group_slices = {}, {}, {}
        for i, (key, sl) in enumerate(slices.items()):
            self.slice_seq[key] = i
            svc = slice_service(sl)
            if svc is not None:
                self.slice_group[key] = svc
                self.group_slices.setdefault(svc, []).append(key)
        self.next_seq = len(self.slice_seq)
        self.service_keys = set(services)

    def slices_of(self, svc: str, slices: Mapping[str, Obj]) -> list[Obj]:
        """The Service's slices in the cache's order."""
        keys = sorted(self.group_slices.get(svc, ()), key=self.slice_seq.__getitem__)
        return [slices[k] for k in keys]
