"""Runs the controllers against the API server, as an outside client.

Informers (list + watch caches) feed per-controller work queues keyed by object;
workers reconcile from the caches (level-triggered: an event only says *which* key to
look at), execute the resulting actions through `ApiClient`, and retry a key with
backoff when the API refuses. Objects the controllers write are put into the caches
right away, and deleted pods are remembered until their DELETED event arrives, so a
reconcile never acts twice on a stale cache.

Entry point: `await run_controllers(client, config)` (runs until cancelled), or
`ControllerManager(client, config)` with `start()`/`stop()` for tests.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import itertools
import logging
import time
from collections.abc import Iterable, Iterator
from typing import Any

import aiohttp

from podnet.allocators.lb_pool import handles
from podnet.client.client import ApiClient, ApiError, resource_path
from podnet.client.informer import Informer
from podnet.controllers import objects
from podnet.controllers.actions import Action
from podnet.controllers.deployment import reconcile_deployment
from podnet.controllers.endpoint_ports import has_selector
from podnet.controllers.endpoints import cleanup_endpoints, reconcile_endpoints
from podnet.controllers.endpointslices import (
    cleanup_slices,
    reconcile_endpoint_slices,
)
from podnet.controllers.framework import Controller, ControllerRunner, ControlLoop, Watch, own_key
from podnet.controllers.indexes import GroupIndex, LabelIndex, SelectorIndex
from podnet.controllers.lb_status import reconcile_lb_status, recorded_ip
from podnet.controllers.node_ipam import reconcile_node_cidr
from podnet.controllers.node_lifecycle import reconcile_node_health
from podnet.controllers.replicaset import reconcile_replicaset
from podnet.controllers.scheduler import missing_node_event, schedule, wants_scheduling
from podnet.controllers.template_hash import equal_ignore_hash
from podnet.controllers.timeutil import utcnow
from podnet.controllers.workloads import WorkloadControllers
from podnet.core.config import ClusterConfig
from podnet.core.lbpool import PoolSpec
from podnet.model.kinds import (
    DEPLOYMENTS,
    ENDPOINTS,
    ENDPOINTSLICES,
    EVENTS,
    NODES,
    PODS,
    REPLICASETS,
    SERVICES,
    Obj,
    ResourceType,
)
from podnet.model.selectors import Selector, SelectorError, from_label_selector, from_map
from podnet.model.services import ENDPOINTSLICE_CONTROLLER, MANAGED_BY_LABEL, SERVICE_NAME_LABEL

log = logging.getLogger(__name__)

TOMBSTONE_SECONDS = 60.0
LB_RETRY_SECONDS = 5.0
_event_seq = itertools.count()


def _same_version(a: Obj, b: Obj) -> bool:
    rv = objects.meta(a).get("resourceVersion")
    return bool(rv) and rv == objects.meta(b).get("resourceVersion")


def _split(key: str) -> tuple[str, str]:
    ns, _, name = key.rpartition("/")
    return ns, name


class ControllerManager:
    """kube-controller-manager's controllers on a `ControllerRunner`: the shared caches and their
    indexes, the action executor, and one `Controller` declaration per control loop (`_declare`)."""

    def __init__(self, client: ApiClient, config: ClusterConfig, *, resync_seconds: float = 60.0,
                 node_check_seconds: float = 1.0):
        self.client = client
        self.config = config
        self.resync_seconds = resync_seconds
        self.node_check_seconds = node_check_seconds
        self.grace_seconds = config.node_grace_seconds
        self._heartbeats: dict[str, tuple[str, dt.datetime]] = {}  # node -> (heartbeat, when seen)
        pool_spec = config.lb_pool
        try:
            self.lb_pool = PoolSpec(pool_spec)
        except ValueError:
            log.warning("LoadBalancer pool %r is invalid; pending Services will not be retried", pool_spec)
            self.lb_pool = PoolSpec("")
        self.runner = ControllerRunner(client, resync_seconds=resync_seconds, tick_seconds=node_check_seconds)
        self.informers: dict[str, Informer] = self.runner.informers
        self.loops: dict[str, ControlLoop] = self.runner.loops
        self._tombstones: dict[str, float] = {}  # pod uid -> monotonic deadline
        self._deleted_services: set[str] = set()
        self._told: set[tuple[str, str]] = set()  # (uid, what) events said once
        self._lb_last_try: dict[str, float] = {}
        self._selector_cache: dict[str, tuple[str, Selector]] = {}
        self._binding_supported: bool | None = None
        self.pod_index = LabelIndex()
        self.svc_index = SelectorIndex()
        self.slice_index = GroupIndex()
        self.pods_by_node = GroupIndex()  # ("", node name) -> pod keys
        self.unscheduled: set[str] = set()  # keys of the cached pods the scheduler should place
        for rt in (SERVICES, PODS, NODES, ENDPOINTSLICES, ENDPOINTS, REPLICASETS, DEPLOYMENTS):
            self.runner.informer(rt)
        self.runner.add_cache_hook(SERVICES, self._services_changed)
        self.runner.add_cache_hook(PODS, self._pods_changed)
        self.runner.add_cache_hook(ENDPOINTSLICES, self._slices_changed)
        self.runner.add_cache_hook(REPLICASETS, self._replicasets_changed)
        for c in self._declare():
            self.runner.register(c)
        for c in WorkloadControllers(self).declare():  # Job, CronJob, DaemonSet, StatefulSet, RC, SA
            self.runner.register(c)

    # ---- lifecycle ----------------------------------------------------------------------
    async def start(self, sync_timeout: float | None = 30.0) -> None:
        """Start the informers, wait until each has listed once (None: as long as it takes; the
        informers retry on their own), then start the workers."""
        await self.runner.start(sync_timeout)

    async def stop(self) -> None:
        await self.runner.stop()

    async def run(self) -> None:
        try:
            await self.start(sync_timeout=None)
            await asyncio.Event().wait()
        finally:
            await self.stop()

    # ---- caches -------------------------------------------------------------------------
    def cache(self, rt: ResourceType) -> Informer:
        return self.informers[rt.key]

    def _items(self, rt: ResourceType, namespace: str | None = None) -> list[Obj]:
        items = self.cache(rt).cache.values()
        if namespace is None:
            return list(items)
        return [x for x in items if objects.namespace(x) == namespace]

    def _live_pods(self, namespace: str | None = None, keys: set[str] | None = None, *,
                   skip_deleted: bool = True) -> list[Obj]:
        """Pods from the cache (all, one namespace's, or the given keys), by default minus the ones we
        deleted (a stale event must not bring them back for the ReplicaSet count)."""
        now = time.monotonic()
        for uid, deadline in list(self._tombstones.items()):
            if deadline < now:
                del self._tombstones[uid]
        if keys is None and namespace is not None:
            keys = self.pod_index.in_namespace(namespace)
        if keys is None:
            pods = self._items(PODS)
        else:
            cache = self.cache(PODS).cache
            pods = [p for p in (cache.get(k) for k in sorted(keys)) if p is not None]
        if not skip_deleted:
            return pods
        return [p for p in pods if objects.uid(p) not in self._tombstones]

    def _index(self, rt: ResourceType, k: str, obj: Obj | None) -> None:
        """Keep the secondary indexes in step with a cache change (obj None: removed)."""
        if rt.key == PODS.key:
            if obj is None:
                self.pod_index.drop(k)
                self.pods_by_node.drop(k)
                self.unscheduled.discard(k)
            else:
                self.pod_index.put(obj)
                node = objects.node_name(obj)
                self.pods_by_node.put(k, ("", node) if node else None)
                if wants_scheduling(obj):
                    self.unscheduled.add(k)
                else:
                    self.unscheduled.discard(k)
        elif rt.key == SERVICES.key:
            if obj is None or not has_selector(obj):
                self.svc_index.drop(k)
            else:
                self.svc_index.put(k, objects.namespace(obj), (obj.get("spec") or {}).get("selector"))
        elif rt.key == ENDPOINTSLICES.key:
            lab = objects.labels(obj) if obj is not None else {}
            if (obj is not None and lab.get(MANAGED_BY_LABEL) == ENDPOINTSLICE_CONTROLLER
                    and lab.get(SERVICE_NAME_LABEL)):
                self.slice_index.put(k, (objects.namespace(obj), lab[SERVICE_NAME_LABEL]))
            else:
                self.slice_index.drop(k)

    def _remember(self, rt: ResourceType, obj: Any) -> None:
        """Put an object the API returned into the cache unless the cache already has a newer one."""
        inf = self.informers.get(rt.key)
        if inf is None or not isinstance(obj, dict) or obj.get("kind") == "Status":
            return
        meta = obj.get("metadata") or {}
        if not meta.get("name"):
            return
        obj.setdefault("apiVersion", rt.api_version)
        obj.setdefault("kind", rt.kind)
        k = objects.key(obj)
        have = inf.cache.get(k)
        try:
            newer = have is None or int(meta.get("resourceVersion") or 0) >= int(
                (have.get("metadata") or {}).get("resourceVersion") or 0)
        except ValueError:
            newer = True
        if newer:
            inf.cache[k] = obj
            self._index(rt, k, obj)

    def _selector(self, obj: Obj, kind: str) -> Selector | None:
        k = f"{kind}:{objects.key(obj)}"
        rv = str(objects.meta(obj).get("resourceVersion") or "")
        hit = self._selector_cache.get(k)
        if hit is not None and hit[0] == rv and rv:
            return hit[1]
        spec = obj.get("spec") or {}
        try:
            raw = spec.get("selector")
            sel = from_map(raw) if kind == "svc" else from_label_selector(raw)
        except SelectorError:
            return None
        self._selector_cache[k] = (rv, sel)
        return sel

    # ---- the controllers: what each watches, how events map to keys, its reconcile ------------
    def _declare(self) -> list[Controller]:
        return [
            Controller("endpoints", self._sync_endpoints, workers=4, all_keys=self._service_keys, watches=(
                Watch(SERVICES, lambda et, svc, old: (objects.key(svc),)),
                Watch(PODS, lambda et, pod, old: self._services_selecting(pod, old)),
                Watch(ENDPOINTSLICES, self._slice_service),
                Watch(ENDPOINTS, self._endpoints_lost))),
            Controller("replicaset", self._sync_replicaset, workers=2,
                       all_keys=lambda: self._keys(REPLICASETS), watches=(
                           Watch(REPLICASETS, own_key),
                           Watch(PODS, lambda et, pod, old: self._owners(et, pod, REPLICASETS, "rs")))),
            Controller("deployment", self._sync_deployment, workers=2,
                       all_keys=lambda: self._keys(DEPLOYMENTS), watches=(
                           Watch(DEPLOYMENTS, own_key),
                           Watch(REPLICASETS, lambda et, rs, old: self._owners(et, rs, DEPLOYMENTS, "dep")))),
            Controller("scheduler", self._sync_scheduler, all_keys=self._pods_to_schedule, watches=(
                Watch(PODS, self._pod_to_schedule),
                Watch(NODES, lambda et, node, old: sorted(self.unscheduled)))),
            Controller("nodeipam", self._sync_node_ipam, all_keys=lambda: self._keys(NODES),
                       watches=(Watch(NODES, own_key),)),
            Controller("nodelifecycle", self._sync_node_lifecycle, all_keys=lambda: self._keys(NODES),
                       period=self.node_check_seconds, watches=(Watch(NODES, own_key),)),
            Controller("loadbalancer", self._sync_lb, all_keys=self._service_keys,
                       watches=(Watch(SERVICES, self._lb_services),)),
        ]

    def _keys(self, rt: ResourceType) -> list[str]:
        return [objects.key(x) for x in self._items(rt)]

    def _service_keys(self) -> list[str]:
        return self._keys(SERVICES)

    def _add(self, loop: str, key: str) -> None:
        self.runner.enqueue(loop, key)

    # cache hooks: run before any controller sees the event
    def _services_changed(self, etype: str, obj: Obj, old: Obj | None) -> None:
        k = objects.key(obj)
        self._index(SERVICES, k, None if etype == "DELETED" else obj)
        if etype == "DELETED":
            self._deleted_services.add(k)
            self._selector_cache.pop(f"svc:{k}", None)
        else:
            self._deleted_services.discard(k)

    def _pods_changed(self, etype: str, pod: Obj, old: Obj | None) -> None:
        self._index(PODS, objects.key(pod), None if etype == "DELETED" else pod)
        if etype == "DELETED":
            self._tombstones.pop(objects.uid(pod), None)

    def _slices_changed(self, etype: str, sl: Obj, old: Obj | None) -> None:
        self._index(ENDPOINTSLICES, objects.key(sl), None if etype == "DELETED" else sl)

    def _replicasets_changed(self, etype: str, rs: Obj, old: Obj | None) -> None:
        if etype == "DELETED":
            self._selector_cache.pop(f"rs:{objects.key(rs)}", None)

    # event -> keys
    def _owners(self, etype: str, obj: Obj, owner_rt: ResourceType, sel_kind: str) -> list[str]:
        """The controller of `obj` (a pod's ReplicaSet, a ReplicaSet's Deployment); for an orphan that
        still exists, every owner in its namespace whose selector matches it (one may adopt it)."""
        ref = objects.controller_ref(obj)
        ns = objects.namespace(obj)
        if ref is not None:
            return [f"{ns}/{ref.get('name')}"] if ref.get("kind") == owner_rt.kind else []
        out: list[str] = []
        if etype != "DELETED":
            for owner in self._items(owner_rt, ns):
                sel = self._selector(owner, sel_kind)
                if sel is not None and sel.matches(objects.labels(obj)):
                    out.append(objects.key(owner))
        return out

    def _lb_services(self, etype: str, svc: Obj, old: Obj | None) -> list[str]:
        keys = [objects.key(svc)]
        freed = old is not None and recorded_ip(old) and (
            etype == "DELETED" or recorded_ip(svc) != recorded_ip(old))
        if freed:
            # a pool IP came free: pending LoadBalancer Services get another chance
            keys += [objects.key(s) for s in self._items(SERVICES) if handles(s) and not recorded_ip(s)]
        return keys

    def _services_selecting(self, pod: Obj, old: Obj | None) -> Iterable[str]:
        ns = objects.namespace(pod)
        label_sets = [objects.labels(pod)] + ([objects.labels(old)] if old is not None else [])
        services = self.cache(SERVICES)
        for k in self.svc_index.candidates(ns, label_sets):
            svc = services.cache.get(k)
            if svc is None:
                continue
            sel = self._selector(svc, "svc")
            if sel is not None and any(sel.matches(lab) for lab in label_sets):
                yield objects.key(svc)

    @staticmethod
    def _slice_service(etype: str, sl: Obj, old: Obj | None) -> list[str]:
        if etype != "DELETED" and old is not None and _same_version(old, sl):
            # the echo of our own write, already in the cache (`_remember`): nothing changed, so
            # nothing to reconcile (kube-controller-manager's endpointSliceTracker skips these too)
            return []
        lab = objects.labels(sl)
        if lab.get(MANAGED_BY_LABEL) == ENDPOINTSLICE_CONTROLLER and lab.get(SERVICE_NAME_LABEL):
            return [f"{objects.namespace(sl)}/{lab[SERVICE_NAME_LABEL]}"]
        return []

    def _endpoints_lost(self, etype: str, ep: Obj, old: Obj | None) -> list[str]:
        if etype == "DELETED" and self.cache(SERVICES).get(objects.name(ep),
                                                           objects.namespace(ep)) is not None:
            return [objects.key(ep)]
        return []

    def _needs_scheduler(self, pod: Obj) -> bool:
        """Waiting for a node, or bound to a node that does not exist (known only once the nodes are
        listed: at start the pods may be listed first, and every bound pod would look orphaned; the
        start's `all_keys` pass finds those pods)."""
        node = objects.node_name(pod)
        nodes = self.cache(NODES)
        return wants_scheduling(pod) or bool(node and nodes.synced.is_set() and nodes.get(node) is None)

    def _pod_to_schedule(self, etype: str, pod: Obj, old: Obj | None) -> list[str]:
        return [objects.key(pod)] if etype != "DELETED" and self._needs_scheduler(pod) else []

    def _pods_to_schedule(self) -> list[str]:
        """Pods waiting for a node and pods bound to a node that does not exist (on start and resync;
        a node event only brings back the pods waiting for a node, from `unscheduled`)."""
        return [objects.key(p) for p in self._items(PODS) if self._needs_scheduler(p)]

    async def execute(self, actions: list[Action]) -> None:
        """Run actions in order; raises the first API error that needs a retry."""
        latest_rv: dict[tuple[str, str, str], str] = {}
        for a in actions:
            ident = (a.rt.key, a.namespace, a.name)
            if a.verb in ("update", "update_status") and ident in latest_rv:
                a.obj["metadata"]["resourceVersion"] = latest_rv[ident]
            try:
                result = await self._call(a)
            except ApiError as e:
                if e.code == 404 and a.verb in ("delete", "update", "update_status"):
                    log.debug("%s: already gone", a.describe())
                    continue
                raise
            if isinstance(result, dict) and a.verb in ("create", "update", "update_status"):
                rv = str((result.get("metadata") or {}).get("resourceVersion") or "")
                if rv:
                    latest_rv[ident] = rv
                self._remember(a.rt, result)
            if a.then_event is not None:
                created = str((result.get("metadata") or {}).get("name") or "") \
                    if isinstance(result, dict) else ""
                await self.post_event(a.then_event, created or a.name)

    async def _call(self, a: Action) -> Any:
        ns = a.namespace or None
        if a.verb == "create":
            return await self.client.create(a.rt, a.obj, ns)
        if a.verb == "update":
            return await self.client.update(a.rt, a.obj)
        if a.verb == "update_status":
            return await self.client.update_status(a.rt, a.obj)
        if a.verb == "delete":
            res = await self.client.delete(a.rt, a.name, ns)
            self._after_delete(a, res)
            return res
        if a.verb == "bind":
            return await self._bind(a.obj)
        if a.verb == "event":
            await self.post_event(a.obj, "")
            return None
        raise ValueError(f"unknown action verb {a.verb!r}")

    def _after_delete(self, a: Action, res: Any) -> None:
        if a.rt.key == PODS.key and objects.uid(a.obj):
            self._tombstones[objects.uid(a.obj)] = time.monotonic() + TOMBSTONE_SECONDS
        inf = self.informers.get(a.rt.key)
        if inf is None:
            return
        k = f"{a.namespace}/{a.name}" if a.namespace else a.name
        if isinstance(res, dict) and res.get("kind") != "Status" and objects.is_deleting(res):
            self._remember(a.rt, res)  # graceful deletion: the object stays, terminating
        else:
            inf.cache.pop(k, None)
            self._index(a.rt, k, None)

    async def post_event(self, event: Obj, created_name: str) -> None:
        ev = {**event, "metadata": dict(event.get("metadata") or {})}
        if created_name and "{name}" in str(ev.get("message", "")):
            ev["message"] = str(ev["message"]).replace("{name}", created_name)
            ev["involvedObject"] = dict(ev.get("involvedObject") or {})
        involved = str((ev.get("involvedObject") or {}).get("name") or "event")
        ev["metadata"]["name"] = f"{involved}.{time.time_ns() + next(_event_seq):x}"
        try:
            await self.client.create(EVENTS, ev, ev["metadata"].get("namespace") or "default")
        except (ApiError, aiohttp.ClientError, OSError, TimeoutError) as e:
            log.debug("could not record event %s: %s", ev.get("reason"), e)

    async def _bind(self, b: Obj) -> Any:
        ns, name = objects.namespace(b), objects.name(b)
        node = str((b.get("target") or {}).get("name") or "")
        if self._binding_supported is not False:
            try:
                res = await self.client.request("POST", resource_path(PODS, ns, name, "binding"), body=b)
                self._binding_supported = True
                self._mark_bound(ns, name, node)
                return res
            except ApiError as e:
                if e.code not in (404, 405) or self._binding_supported:
                    raise
                # is it the pod that is missing, or the binding endpoint?
                try:
                    await self.client.get(PODS, name, ns)
                except ApiError as e2:
                    if e2.code == 404:
                        return None
                    raise
                log.warning("the API server has no pods/binding subresource; binding by PUT of "
                            "spec.nodeName instead")
                self._binding_supported = False
        pod = await self.client.get(PODS, name, ns)
        if objects.uid(b) and objects.uid(pod) != objects.uid(b):
            return None
        pod.setdefault("spec", {})["nodeName"] = node
        res = await self.client.update(PODS, pod)
        self._remember(PODS, res)
        return res

    def _mark_bound(self, ns: str, name: str, node: str) -> None:
        inf = self.cache(PODS)
        k = f"{ns}/{name}"
        pod = inf.cache.get(k)
        if pod is not None:
            pod = {**pod, "spec": {**(pod.get("spec") or {}), "nodeName": node}}
            inf.cache[k] = pod
            self._index(PODS, k, pod)

    # ---- sync functions -----------------------------------------------------------------
    async def _sync_endpoints(self, key: str) -> None:
        ns, name = _split(key)
        svc = self.cache(SERVICES).get(name, ns)
        slice_cache = self.cache(ENDPOINTSLICES).cache
        slices = [s for s in (slice_cache.get(k) for k in sorted(self.slice_index.get((ns, name))))
                  if s is not None]
        existing = self.cache(ENDPOINTS).get(name, ns)
        if svc is None:
            actions = cleanup_slices(ns, name, slices)
            if key in self._deleted_services:
                actions += cleanup_endpoints(existing)
                self._deleted_services.discard(key)
            await self.execute(actions)
            return
        selector = (svc.get("spec") or {}).get("selector") or {}
        # terminating pods stay in the slices (terminating=true) until they are gone
        pods = self._live_pods(keys=self.pod_index.matching(ns, selector), skip_deleted=False)
        actions = reconcile_endpoint_slices(svc, pods, slices) + reconcile_endpoints(svc, pods, existing)
        await self.execute(actions)

    async def _sync_replicaset(self, key: str) -> None:
        ns, name = _split(key)
        rs = self.cache(REPLICASETS).get(name, ns)
        if rs is None:
            return
        await self.execute(reconcile_replicaset(rs, self._live_pods(ns)))

    async def _sync_deployment(self, key: str) -> None:
        ns, name = _split(key)
        dep = self.cache(DEPLOYMENTS).get(name, ns)
        if dep is None:
            return
        actions = reconcile_deployment(dep, self._items(REPLICASETS, ns))
        try:
            await self.execute(actions)
        except ApiError as e:
            creates = [a for a in actions if a.verb == "create" and a.rt.key == REPLICASETS.key]
            if e.code == 409 and e.reason == "AlreadyExists" and creates:
                await self._replicaset_name_taken(dep, creates[0].obj)
            raise

    async def _replicaset_name_taken(self, dep: Obj, wanted: Obj) -> None:
        """The ReplicaSet name `<deployment>-<hash>` exists: ours (the cache lags) or a hash collision,
        which bumps status.collisionCount so the next hash differs (as kube-controller-manager does)."""
        ns, rs_name = objects.namespace(dep), objects.name(wanted)
        try:
            existing = await self.client.get(REPLICASETS, rs_name, ns)
        except ApiError:
            return
        same = equal_ignore_hash((existing.get("spec") or {}).get("template") or {},
                                 (wanted.get("spec") or {}).get("template") or {})
        if same and objects.controller_ref(existing) is not None and \
                (objects.controller_ref(existing) or {}).get("uid") == objects.uid(dep):
            self._remember(REPLICASETS, existing)
            return
        new = {**dep, "status": dict(dep.get("status") or {})}
        new["status"]["collisionCount"] = int(new["status"].get("collisionCount") or 0) + 1
        self._remember(DEPLOYMENTS, await self.client.update_status(DEPLOYMENTS, new))

    async def _sync_scheduler(self, key: str) -> None:
        ns, name = _split(key)
        pod = self.cache(PODS).get(name, ns)
        if pod is None:
            return
        nodes = self._items(NODES)
        if objects.node_name(pod):
            told = (objects.uid(pod), "node:" + objects.node_name(pod))
            if told not in self._told:
                actions = missing_node_event(pod, nodes)
                if actions:
                    self._told.add(told)
                    await self.execute(actions)
            return
        await self.execute(schedule(pod, nodes, self._live_pods()))

    async def _sync_node_ipam(self, key: str) -> None:
        node = self.cache(NODES).get(key)
        if node is None:
            return
        await self.execute(reconcile_node_cidr(node, self._items(NODES), self.config.pod_cidr,
                                               self.config.node_cidr_mask))

    async def _sync_node_lifecycle(self, key: str) -> None:
        node = self.cache(NODES).get(key)
        if node is None:
            return
        await self.execute(reconcile_node_health(node, self._pods_on(key), grace_seconds=self.grace_seconds,
                                                 observed_at=self._heartbeat_observed(key, node)))

    def _pods_on(self, node: str) -> Iterator[Obj]:
        """The cached pods bound to a node, by name (lazily: read only when iterated)."""
        cache = self.cache(PODS).cache
        for k in sorted(self.pods_by_node.get(("", node))):
            pod = cache.get(k)
            if pod is not None:
                yield pod

    def _heartbeat_observed(self, key: str, node: Obj) -> dt.datetime:
        """When this controller last saw `node`'s heartbeat change (first sight counts as a change)."""
        ready = objects.condition(node, "Ready") or {}
        beat = str(ready.get("lastHeartbeatTime") or "")
        seen = self._heartbeats.get(key)
        if seen is None or seen[0] != beat:
            seen = (beat, utcnow())
            self._heartbeats[key] = seen
        return seen[1]

    async def _sync_lb(self, key: str) -> None:
        ns, name = _split(key)
        svc = self.cache(SERVICES).get(name, ns)
        if svc is None:
            self._lb_last_try.pop(key, None)
            return
        is_lb = (svc.get("spec") or {}).get("type") == "LoadBalancer"  # only they need the others
        actions = reconcile_lb_status(svc, self.lb_pool, self._items(SERVICES) if is_lb else [])
        todo: list[Action] = []
        for a in actions:
            if a.verb == "update":  # ask the hook to allocate again: at most every few seconds
                last = self._lb_last_try.get(key, 0.0)
                wait = last + LB_RETRY_SECONDS - time.monotonic()
                if wait > 0:
                    self.runner.enqueue_after("loadbalancer", key, wait)
                    continue
                self._lb_last_try[key] = time.monotonic()
            elif a.verb == "event":
                told = (objects.uid(svc), "lb-full")
                if told in self._told:
                    continue
                self._told.add(told)
            todo.append(a)
        await self.execute(todo)


async def run_controllers(client: ApiClient, config: ClusterConfig) -> None:
    """Run every controller until cancelled."""
    await ControllerManager(client, config).run()
