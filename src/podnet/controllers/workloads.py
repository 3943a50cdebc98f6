"""The workload and identity controllers (ServiceAccount + root CA, Job, CronJob, DaemonSet,
StatefulSet, ReplicationController) declared on the `ControllerManager`'s runner: what each watches,
how events map to keys, and a reconcile that reads the shared caches, runs the pure reconcile
function and executes its actions."""

from __future__ import annotations

import copy
import logging
from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

from podnet.controllers import objects
from podnet.controllers.actions import Action
from podnet.controllers.cronjob import reconcile_cronjob
from podnet.controllers.daemonset import reconcile_daemonset
from podnet.controllers.framework import Controller, Watch, own_key
from podnet.controllers.job import reconcile_job
from podnet.controllers.replicaset import reconcile_replicaset
from podnet.controllers.serviceaccounts import ROOT_CA_CONFIGMAP, reconcile_namespace
from podnet.controllers.statefulset import reconcile_statefulset
from podnet.model.kinds import (
    CONFIGMAPS,
    CRONJOBS,
    DAEMONSETS,
    JOBS,
    NAMESPACES,
    NODES,
    PODS,
    REPLICASETS,
    REPLICATIONCONTROLLERS,
    SERVICEACCOUNTS,
    STATEFULSETS,
    Obj,
    ResourceType,
)

if TYPE_CHECKING:
    from podnet.controllers.runner import ControllerManager

log = logging.getLogger(__name__)


def _owner_keys(kind: str) -> Any:
    """Map an owned object's event to its controller's key (`<ns>/<owner>`) when the owner is `kind`."""

    def keys(etype: str, obj: Obj, old: Obj | None) -> Iterable[str]:
        out = []
        for x in (obj, old):
            ref = objects.controller_ref(x) if x is not None else None
            if ref is not None and ref.get("kind") == kind:
                out.append(f"{objects.namespace(x or obj)}/{ref.get('name')}")
        return dict.fromkeys(out)

    return keys


class WorkloadControllers:
    def __init__(self, m: ControllerManager):
        self.m = m
        try:
            self.ca_pem = m.config.ca_file.read_text()
        except OSError:
            self.ca_pem = ""
        for rt in (
            NAMESPACES,
            SERVICEACCOUNTS,
            CONFIGMAPS,
            JOBS,
            CRONJOBS,
            DAEMONSETS,
            STATEFULSETS,
            REPLICATIONCONTROLLERS,
        ):
            m.runner.informer(rt)

    def declare(self) -> list[Controller]:
        return [
            Controller(
                "serviceaccount",
                self._sync_namespace,
                all_keys=lambda: self._keys(NAMESPACES),
                watches=(
                    Watch(NAMESPACES, own_key),
                    Watch(SERVICEACCOUNTS,
                          lambda et, sa, old: (objects.namespace(sa),) if et == "DELETED" else ()),
                    Watch(
                        CONFIGMAPS,
                        lambda et, cm, old: (
                            (objects.namespace(cm),) if objects.name(cm) == ROOT_CA_CONFIGMAP else ()),
                    ),
                ),
            ),
            Controller(
                "job",
                self._sync_job,
                workers=2,
                all_keys=lambda: self._keys(JOBS),
                watches=(Watch(JOBS, own_key), Watch(PODS, _owner_keys("Job"))),
            ),
            Controller(
                "cronjob",
                self._sync_cronjob,
                all_keys=lambda: self._keys(CRONJOBS),
                watches=(Watch(CRONJOBS, own_key), Watch(JOBS, _owner_keys("CronJob"))),
            ),
            Controller(
                "daemonset",
                self._sync_daemonset,
                workers=2,
                all_keys=lambda: self._keys(DAEMONSETS),
                watches=(
                    Watch(DAEMONSETS, own_key),
                    Watch(PODS, _owner_keys("DaemonSet")),
                    Watch(NODES, lambda et, node, old: self._keys(DAEMONSETS)),
                ),
            ),
            Controller(
                "statefulset",
                self._sync_statefulset,
                workers=2,
                all_keys=lambda: self._keys(STATEFULSETS),
                watches=(Watch(STATEFULSETS, own_key), Watch(PODS, _owner_keys("StatefulSet"))),
            ),
            Controller(
                "replicationcontroller",
                self._sync_rc,
                workers=2,
                all_keys=lambda: self._keys(REPLICATIONCONTROLLERS),
                watches=(
                    Watch(REPLICATIONCONTROLLERS, own_key),
                    Watch(PODS, _owner_keys("ReplicationController")),
                ),
            ),
        ]

    def _keys(self, rt: ResourceType) -> list[str]:
        return [objects.key(x) for x in self.m.cache(rt).cache.values()]

    def _get(self, rt: ResourceType, key: str) -> Obj | None:
        obj = self.m.cache(rt).cache.get(key)
        return obj if isinstance(obj, dict) else None

    def _in_ns(self, rt: ResourceType, ns: str) -> list[Obj]:
        return [x for x in self.m.cache(rt).cache.values() if objects.namespace(x) == ns]

    async def _sync_namespace(self, key: str) -> None:
        ns = self._get(NAMESPACES, key)
        if ns is None:
            return
        await self.m.execute(
            reconcile_namespace(
                ns, self._in_ns(SERVICEACCOUNTS, key), self._in_ns(CONFIGMAPS, key), self.ca_pem
            )
        )

    async def _sync_job(self, key: str) -> None:
        job = self._get(JOBS, key)
        if job is None:
            return
        actions, after = reconcile_job(job, self.m._live_pods(objects.namespace(job)))
        await self.m.execute(actions)
        if after is not None:
            self.m.runner.enqueue_after("job", key, after + 0.5)

    async def _sync_cronjob(self, key: str) -> None:
        cj = self._get(CRONJOBS, key)
        if cj is None:
            return
        actions, after = reconcile_cronjob(cj, self._in_ns(JOBS, objects.namespace(cj)))
        await self.m.execute(actions)
        if after is not None:
            self.m.runner.enqueue_after("cronjob", key, after + 0.5)

    async def _sync_daemonset(self, key: str) -> None:
        ds = self._get(DAEMONSETS, key)
        if ds is None:
            return
        nodes = list(self.m.cache(NODES).cache.values())
        await self.m.execute(reconcile_daemonset(ds, self.m._live_pods(objects.namespace(ds)), nodes))

    async def _sync_statefulset(self, key: str) -> None:
        sts = self._get(STATEFULSETS, key)
        if sts is None:
            return
        await self.m.execute(reconcile_statefulset(sts, self.m._live_pods(objects.namespace(sts))))

    async def _sync_rc(self, key: str) -> None:
        rc = self._get(REPLICATIONCONTROLLERS, key)
        if rc is None:
            return
        await self.m.execute(reconcile_replication_controller(rc, self.m._live_pods(objects.namespace(rc))))


def reconcile_replication_controller(rc: Obj, pods: list[Obj]) -> list[Action]:
    """The ReplicaSet logic on a ReplicationController (its selector is a plain label map)."""
    view = copy.deepcopy(rc)
    selector = (rc.get("spec") or {}).get("selector")
    view.setdefault("spec", {})["selector"] = {
        "matchLabels": dict(selector) if isinstance(selector, dict) else {}
    }
    actions = reconcile_replicaset(view, pods)
    for a in actions:
        if a.rt is REPLICASETS:
            a.rt = REPLICATIONCONTROLLERS
            a.obj["spec"]["selector"] = copy.deepcopy(selector)
    return actions
