"""Pod events as kubelet posts them (Pulled, Created, Started, Killing, Unhealthy, BackOff, Failed),
so `kubectl describe pod` and `kubectl get events` tell the pod's story.

Repeats of the same (pod, reason, message) bump `count` and `lastTimestamp` of one Event, as
kubelet's event correlator does. Posting never blocks or fails the runtime.
"""

from __future__ import annotations

import asyncio
import logging
import secrets
from collections import OrderedDict

from podnet.agent.status import rfc3339
from podnet.client.client import ApiClient, ApiError
from podnet.model.kinds import EVENTS, Obj

log = logging.getLogger(__name__)
MAX_TRACKED = 4096


def event_object(pod: Obj, *, etype: str, reason: str, message: str, field_path: str, node: str,
                 now: str) -> Obj:
    meta = pod.get("metadata") or {}
    ns = str(meta.get("namespace") or "default")
    involved: Obj = {"kind": "Pod", "namespace": ns, "name": meta.get("name"), "uid": meta.get("uid"),
                     "apiVersion": "v1"}
    if meta.get("resourceVersion"):
        involved["resourceVersion"] = meta["resourceVersion"]
    if field_path:
        involved["fieldPath"] = field_path
    return {"apiVersion": "v1", "kind": "Event",
            "metadata": {"name": f"{meta.get('name')}.{secrets.token_hex(8)}", "namespace": ns},
            "involvedObject": involved, "reason": reason, "message": message, "type": etype,
            "source": {"component": "kubelet", "host": node}, "reportingComponent": "kubelet",
            "reportingInstance": node, "firstTimestamp": now, "lastTimestamp": now, "count": 1}


class EventRecorder:
    def __init__(self, client: ApiClient, node: str):
        self.client = client
        self.node = node
        self._seen: OrderedDict[tuple[str, str, str, str], tuple[str, str, int]] = OrderedDict()
        self._tasks: set[asyncio.Task[None]] = set()

    def record(self, pod: Obj, etype: str, reason: str, message: str, field_path: str = "") -> None:
        t = asyncio.create_task(self._post(pod, etype, reason, message, field_path))
        self._tasks.add(t)
        t.add_done_callback(self._tasks.discard)

    async def _post(self, pod: Obj, etype: str, reason: str, message: str, field_path: str) -> None:
        meta = pod.get("metadata") or {}
        ns = str(meta.get("namespace") or "default")
        key = (str(meta.get("uid")), reason, message, field_path)
        now = rfc3339()
        try:
            if key in self._seen:
                name, _, count = self._seen[key]
                self._seen[key] = (name, ns, count + 1)
                await self.client.patch(EVENTS, name, {"count": count + 1, "lastTimestamp": now}, ns)
                return
            ev = event_object(pod, etype=etype, reason=reason, message=message, field_path=field_path,
                              node=self.node, now=now)
            self._seen[key] = (ev["metadata"]["name"], ns, 1)
            while len(self._seen) > MAX_TRACKED:
                self._seen.popitem(last=False)
            await self.client.create(EVENTS, ev, ns)
        except (ApiError, OSError) as e:
            self._seen.pop(key, None)
            log.debug("event %s for %s/%s not posted: %s", reason, ns, meta.get("name"), e)
        except Exception as e:  # aiohttp errors while the API restarts
            self._seen.pop(key, None)
            log.debug("event %s not posted: %s", reason, e)
