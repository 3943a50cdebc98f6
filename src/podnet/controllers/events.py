"""core/v1 Events, shaped as Kubernetes components write them (what `kubectl describe` and
`kubectl get events` show)."""

from __future__ import annotations

import datetime as dt

from podnet.controllers.timeutil import rfc3339, utcnow
from podnet.model.kinds import Obj

CONTROLLER_MANAGER = "controller-manager"


def make_event(involved: Obj, reason: str, message: str, type: str = "Normal",
               component: str = CONTROLLER_MANAGER, now: dt.datetime | None = None) -> Obj:
    """An Event about `involved` (any object with apiVersion/kind/metadata).

    Named `<object>.<hex nanoseconds>` as client-go's recorder names them; cluster-scoped
    objects (Nodes) get their events in the `default` namespace.
    """
    t = now or utcnow()
    meta = involved.get("metadata") or {}
    name = str(meta.get("name") or meta.get("generateName") or "unknown")
    ns = str(meta.get("namespace") or "default")
    ref: Obj = {"kind": involved.get("kind", ""), "name": name}
    if meta.get("namespace"):
        ref["namespace"] = meta["namespace"]
    for src, dst in (("uid", "uid"), ("resourceVersion", "resourceVersion")):
        if meta.get(src):
            ref[dst] = meta[src]
    if involved.get("apiVersion"):
        ref["apiVersion"] = involved["apiVersion"]
    stamp = rfc3339(t)
    nanos = int(t.timestamp() * 1_000_000_000)
    return {
        "apiVersion": "v1",
        "kind": "Event",
        "metadata": {"name": f"{name}.{nanos:x}", "namespace": ns},
        "involvedObject": ref,
        "reason": reason,
        "message": message,
        "type": type,
        "source": {"component": component},
        "firstTimestamp": stamp,
        "lastTimestamp": stamp,
        "count": 1,
        "reportingComponent": component,
        "reportingInstance": "",
    }
