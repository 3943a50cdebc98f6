"""StatefulSet controller: pods with stable names `<set>-<ordinal>`, each with hostname = its name and
subdomain = `spec.serviceName` (so the headless Service gives it `web-0.web.<ns>.svc...`), started
in ordinal order and each only once the previous ones are Running and Ready (OrderedReady; Parallel
starts them together), removed from the highest ordinal down, and re-created under the same name
when they fail or are deleted. A changed template rolls out from the highest ordinal down to
`partition`, one pod at a time (RollingUpdate; OnDelete waits for the user).
"""

from __future__ import annotations

import copy
import datetime as dt
import re
from typing import Any

from podnet.controllers import objects
from podnet.controllers.actions import Action, delete_action
from podnet.controllers.events import make_event
from podnet.controllers.template_hash import compute_hash
from podnet.controllers.timeutil import utcnow
from podnet.model.kinds import PODS, STATEFULSETS, Obj
from podnet.model.selectors import SelectorError, from_label_selector

COMPONENT = "statefulset-controller"
HASH_LABEL = "controller-revision-hash"
POD_NAME_LABEL = "statefulset.kubernetes.io/pod-name"
POD_INDEX_LABEL = "apps.kubernetes.io/pod-index"


def revision(sts: Obj) -> str:
    return f"{objects.name(sts)}-{compute_hash((sts.get('spec') or {}).get('template') or {})}"


def ordinal_of(sts: Obj, pod: Obj) -> int | None:
    m = re.fullmatch(re.escape(objects.name(sts)) + r"-(\d+)", objects.name(pod))
    return int(m.group(1)) if m else None


def new_pod(sts: Obj, ordinal: int, rev: str) -> Obj:
    spec = sts.get("spec") or {}
    tmpl = spec.get("template") or {}
    tmeta = tmpl.get("metadata") or {}
    name = f"{objects.name(sts)}-{ordinal}"
    labels = dict(tmeta.get("labels") or {})
    labels.update({HASH_LABEL: rev, POD_NAME_LABEL: name, POD_INDEX_LABEL: str(ordinal)})
    meta: dict[str, Any] = {
        "name": name,
        "namespace": objects.namespace(sts),
        "labels": labels,
        "ownerReferences": [objects.owner_ref_to(sts)],
    }
    if tmeta.get("annotations"):
        meta["annotations"] = dict(tmeta["annotations"])
    pspec = copy.deepcopy(tmpl.get("spec") or {})
    pspec["hostname"] = name
    if spec.get("serviceName"):
        pspec["subdomain"] = spec["serviceName"]
    return {"apiVersion": "v1", "kind": "Pod", "metadata": meta, "spec": pspec}


def _running_ready(pod: Obj) -> bool:
    return objects.pod_phase(pod) == "Running" and objects.pod_is_ready(pod) and not objects.is_deleting(pod)


def reconcile_statefulset(sts: Obj, pods: list[Obj], now: dt.datetime | None = None) -> list[Action]:
    now = now or utcnow()
    if objects.is_deleting(sts):
        return []
    spec = sts.get("spec") or {}
    try:
        sel = from_label_selector(spec.get("selector"))
    except SelectorError:
        return []
    ns = objects.namespace(sts)
    replicas_value = spec.get("replicas")
    replicas = replicas_value if isinstance(replicas_value, int) else 1
    start = int((spec.get("ordinals") or {}).get("start") or 0)
    parallel = spec.get("podManagementPolicy") == "Parallel"
    rev = revision(sts)
    mine: dict[int, Obj] = {}
    for p in pods:
        if (
            objects.namespace(p) != ns
            or (objects.controller_ref(p) or {}).get("uid") != objects.uid(sts)
            or not sel.matches(objects.labels(p))
        ):
            continue
        ordinal = ordinal_of(sts, p)
        if ordinal is not None:
            mine[ordinal] = p
    wanted = range(start, start + replicas)
    actions: list[Action] = []
    blocked = False
    for ordinal in wanted:
        pod = mine.get(ordinal)
        if pod is None:
            if blocked:
                break
            ev = make_event(
                sts,
                "SuccessfulCreate",
                f"create Pod {objects.name(sts)}-{ordinal} in StatefulSet {objects.name(sts)} successful",
                component=COMPONENT,
                now=now,
            )
            actions.append(Action("create", PODS, new_pod(sts, ordinal, rev), then_event=ev))
            if not parallel:
                blocked = True
            continue
        if objects.pod_phase(pod) == "Failed" and not objects.is_deleting(pod):
            ev = make_event(
                sts,
                "RecreatingFailedPod",
                f"StatefulSet {ns}/{objects.name(sts)} is recreating failed Pod {objects.name(pod)}",
                "Warning",
                COMPONENT,
                now,
            )
            actions.append(delete_action(PODS, pod, then_event=ev))
            blocked = blocked or not parallel
            continue
        if not parallel and not _running_ready(pod):
            blocked = True
    # scale down: highest ordinal first, one at a time unless Parallel
    extra = sorted((i for i in mine if i not in wanted), reverse=True)
    all_ready = (
        all(_running_ready(mine[i]) for i in wanted if i in mine)
        and len([i for i in wanted if i in mine]) == replicas
    )
    for i in extra:
        pod = mine[i]
        if objects.is_deleting(pod):
            if not parallel:
                break
            continue
        if not parallel and not all_ready:
            break
        ev = make_event(
            sts,
            "SuccessfulDelete",
            f"delete Pod {objects.name(pod)} in StatefulSet {objects.name(sts)} successful",
            component=COMPONENT,
            now=now,
        )
        actions.append(delete_action(PODS, pod, then_event=ev))
        if not parallel:
            break
    # rolling update: highest ordinal first, down to the partition, one at a time
    strategy = spec.get("updateStrategy") or {}
    if (strategy.get("type") or "RollingUpdate") == "RollingUpdate" and all_ready and not extra:
        partition = int((strategy.get("rollingUpdate") or {}).get("partition") or 0)
        for i in sorted(wanted, reverse=True):
            if i < start + partition:
                break
            pod = mine.get(i)
            if pod is not None and objects.labels(pod).get(HASH_LABEL) != rev:
                actions.append(delete_action(PODS, pod))
                break
    current = [p for i, p in mine.items() if i in wanted and not objects.is_deleting(p)]
    old_status = sts.get("status") or {}
    status: dict[str, Any] = {
        "replicas": len(current),
        "readyReplicas": sum(1 for p in current if objects.pod_is_ready(p)),
        "currentReplicas": sum(1 for p in current if objects.labels(p).get(HASH_LABEL) == rev),
        "updatedReplicas": sum(1 for p in current if objects.labels(p).get(HASH_LABEL) == rev),
        "availableReplicas": sum(
            1 for p in current if objects.pod_is_available(p, int(spec.get("minReadySeconds") or 0), now)
        ),
        "currentRevision": rev,
        "updateRevision": rev,
        "collisionCount": int(old_status.get("collisionCount") or 0),
    }
    if objects.meta(sts).get("generation") is not None:
        status["observedGeneration"] = objects.meta(sts)["generation"]
    if status != old_status:
        new = copy.deepcopy(sts)
        new["status"] = status
        actions.append(Action("update_status", STATEFULSETS, new))
    return actions
