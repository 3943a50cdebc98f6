"""The node's pod runtime: one `PodWorker` per pod bound to this node, fed by the pod informer.

It adopts pods an earlier agent left running (state files under the node's pod dir),
and cleans up after pods that were deleted while no agent was watching.
"""

from __future__ import annotations

import asyncio
import functools
import logging
import signal

from podnet.agent.pods import PodDeps, PodWorker, pod_key
from podnet.agent.podstate import PodRecord
from podnet.model.kinds import Obj
from podnet.net.netlink_thread import in_netlink_thread

log = logging.getLogger(__name__)


class PodRuntime:
    def __init__(self, deps: PodDeps):
        self.deps = deps
        self.workers: dict[str, PodWorker] = {}
        self.records: dict[str, PodRecord] = deps.dirs.load_all()
        self._tasks: set[asyncio.Task[None]] = set()

    def find(self, namespace: str, name: str) -> PodWorker | None:
        for w in self.workers.values():
            if w.namespace == namespace and w.name == name:
                return w
        return None

    async def on_pod(self, etype: str, pod: Obj, old: Obj | None = None) -> None:
        """Informer handler for pods with spec.nodeName == this node."""
        meta = pod.get("metadata") or {}
        uid = str(meta.get("uid") or "")
        if not uid:
            return
        w = self.workers.get(uid)
        if etype == "DELETED":
            if w is not None:
                w.update(pod)
                w.request_stop()
            elif uid in self.records:
                await self.cleanup_record(self.records.pop(uid))
            return
        if (pod.get("spec") or {}).get("nodeName") != self.deps.node_name:
            return
        if w is not None:
            w.update(pod)
            return
        rec = self.records.pop(uid, None)
        terminating = bool(meta.get("deletionTimestamp"))
        phase = (pod.get("status") or {}).get("phase")
        if rec is None and (terminating or phase in ("Succeeded", "Failed")):
            if terminating:  # nothing of it runs here: let the API forget it
                await self._finish_quietly(pod)
            return
        w = PodWorker(pod, self.deps, rec)
        self.workers[uid] = w
        log.info("pod %s: %s", pod_key(pod), "adopting" if rec else "starting")
        w.update(pod)
        task = w.start()
        self._tasks.add(task)
        task.add_done_callback(functools.partial(self._done, uid))

    def _done(self, uid: str, task: asyncio.Task[None]) -> None:
        self._tasks.discard(task)
        self.workers.pop(uid, None)
        if not task.cancelled() and task.exception() is not None:
            log.error("pod worker %s failed: %r", uid, task.exception())

    async def _finish_quietly(self, pod: Obj) -> None:
        try:
            await self.deps.finish_delete(pod)
        except Exception as e:
            log.warning("pod %s: final delete failed: %s", pod_key(pod), e)

    async def cleanup_orphans(self, known_uids: set[str]) -> None:
        """After the first pod list: remove what is left of pods the API no longer has."""
        for uid in [u for u in self.records if u not in known_uids]:
            await self.cleanup_record(self.records.pop(uid))

    async def cleanup_record(self, rec: PodRecord) -> None:
        log.info("pod %s/%s (%s) is gone from the API: removing its processes and network",
                 rec.namespace, rec.name, rec.uid)
        for c in rec.containers.values():
            if not c.shim_pid:
                continue
            run_dir = self.deps.dirs.run_dir(rec.uid, c.name, c.attempt)
            proc = self.deps.launcher.adopt(run_dir, c.shim_pid, c.shim_start)
            if proc is not None and proc.alive():
                proc.signal(signal.SIGKILL)
        try:
            await in_netlink_thread(self.deps.network.teardown, rec.uid)
        except Exception as e:
            log.error("pod %s: network teardown failed: %s", rec.uid, e)
        self.deps.dirs.remove(rec.uid)

    async def close(self) -> None:
        """Stop following pods; their processes keep running (a restarted agent adopts them)."""
        for t in list(self._tasks):
            t.cancel()
        if self._tasks:
            await asyncio.gather(*self._tasks, return_exceptions=True)
