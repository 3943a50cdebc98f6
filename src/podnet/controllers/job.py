"""Job controller: run pods until `completions` succeed, at most `parallelism` at once; give up after
`backoffLimit` failures (or `activeDeadlineSeconds`), then report Complete or Failed as
kube-controller-manager does (conditions, counts, start/completion times, events); delete finished
Jobs `ttlSecondsAfterFinished` later.

`reconcile_job(job, pods, now)` returns (actions, seconds until it wants to look again or None).
Failed pods are re-created after the Job backoff (10s, doubling, at most 6 min).
"""

from __future__ import annotations

import copy
import datetime as dt
from typing import Any

from podnet.controllers import objects
from podnet.controllers.actions import Action, delete_action
from podnet.controllers.events import make_event
from podnet.controllers.timeutil import utcnow
from podnet.model.kinds import JOBS, PODS, Obj
from podnet.model.selectors import SelectorError, from_label_selector

COMPONENT = "job-controller"
BACKOFF_BASE = 10.0
BACKOFF_MAX = 360.0
INDEX_ANNOTATION = "batch.kubernetes.io/job-completion-index"
INDEX_LABEL = "batch.kubernetes.io/job-completion-index"


def _iso(t: dt.datetime) -> str:
    return t.astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _parse(text: Any) -> dt.datetime | None:
    try:
        return dt.datetime.strptime(str(text), "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=dt.UTC)
    except ValueError:
        return None


def _cond(status: dict[str, Any], ctype: str) -> dict[str, Any] | None:
    for c in status.get("conditions") or []:
        if isinstance(c, dict) and c.get("type") == ctype and c.get("status") == "True":
            return c
    return None


def finished(job: Obj) -> tuple[str, dt.datetime | None] | None:
    """("Complete"|"Failed", when) once the Job has finished, else None."""
    status = job.get("status") or {}
    for ctype in ("Complete", "Failed"):
        c = _cond(status, ctype)
        if c is not None:
            return ctype, _parse(c.get("lastTransitionTime"))
    return None


def _condition(ctype: str, reason: str, message: str, now: dt.datetime) -> dict[str, Any]:
    t = _iso(now)
    return {
        "type": ctype,
        "status": "True",
        "reason": reason,
        "message": message,
        "lastProbeTime": t,
        "lastTransitionTime": t,
    }


def _pod_index(pod: Obj) -> int | None:
    value = (objects.meta(pod).get("annotations") or {}).get(INDEX_ANNOTATION)
    try:
        return int(str(value))
    except ValueError:
        return None


def new_pod(job: Obj, index: int | None = None) -> Obj:
    tmpl = (job.get("spec") or {}).get("template") or {}
    tmeta = tmpl.get("metadata") or {}
    meta: dict[str, Any] = {
        "generateName": f"{objects.name(job)}-",
        "namespace": objects.namespace(job),
        "ownerReferences": [objects.owner_ref_to(job)],
        "labels": dict(tmeta.get("labels") or {}),
    }
    annotations = dict(tmeta.get("annotations") or {})
    spec = copy.deepcopy(tmpl.get("spec") or {})
    if index is not None:
        meta["generateName"] = f"{objects.name(job)}-{index}-"
        annotations[INDEX_ANNOTATION] = str(index)
        meta["labels"][INDEX_LABEL] = str(index)
        spec.setdefault("hostname", f"{objects.name(job)}-{index}")
        for c in spec.get("containers") or []:
            if isinstance(c, dict):
                env = [
                    e
                    for e in c.get("env") or []
                    if isinstance(e, dict) and e.get("name") != "JOB_COMPLETION_INDEX"
                ]
                env.append(
                    {
                        "name": "JOB_COMPLETION_INDEX",
                        "valueFrom": {
                            "fieldRef": {
                                "apiVersion": "v1",
                                "fieldPath": f"metadata.annotations['{INDEX_ANNOTATION}']",
                            }
                        },
                    }
                )
                c["env"] = env
    if annotations:
        meta["annotations"] = annotations
    return {"apiVersion": "v1", "kind": "Pod", "metadata": meta, "spec": spec}


def _int(value: Any, default: int) -> int:
    return value if isinstance(value, int) and not isinstance(value, bool) else default


def _failures(pods: list[Obj], restart_policy: str) -> int:
    failed = sum(1 for p in pods if objects.pod_phase(p) == "Failed")
    if restart_policy == "OnFailure":
        failed += sum(objects.restart_count(p) for p in pods if not objects.pod_is_terminal(p))
    return failed


def _last_failure(pods: list[Obj]) -> dt.datetime | None:
    times: list[dt.datetime] = []
    for p in pods:
        if objects.pod_phase(p) != "Failed":
            continue
        for cs in (p.get("status") or {}).get("containerStatuses") or []:
            t = _parse(((cs.get("state") or {}).get("terminated") or {}).get("finishedAt"))
            if t is not None:
                times.append(t)
        if not times:
            created = objects.creation_time(p)
            if created is not None:
                times.append(created)
    return max(times) if times else None


def reconcile_job(
    job: Obj, pods: list[Obj], now: dt.datetime | None = None
) -> tuple[list[Action], float | None]:
    now = now or utcnow()
    if objects.is_deleting(job):
        return [], None
    spec = job.get("spec") or {}
    status: dict[str, Any] = copy.deepcopy(job.get("status") or {})
    actions: list[Action] = []
    try:
        sel = from_label_selector(spec.get("selector"))
    except SelectorError:
        return [], None
    ns = objects.namespace(job)
    mine = [
        p
        for p in pods
        if objects.namespace(p) == ns
        and (objects.controller_ref(p) or {}).get("uid") == objects.uid(job)
        and sel.matches(objects.labels(p))
    ]
    active = [p for p in mine if not objects.pod_is_terminal(p) and not objects.is_deleting(p)]
    succeeded = [p for p in mine if objects.pod_phase(p) == "Succeeded"]
    done = finished(job)
    if done is not None:
        for p in active:
            actions.append(delete_action(PODS, p))
        ttl_actions, after = _ttl(job, done[1], now)
        return actions + ttl_actions, after
    restart = str(((spec.get("template") or {}).get("spec") or {}).get("restartPolicy") or "")
    failed_count = _failures(mine, restart)
    completions = spec.get("completions")
    parallelism = _int(spec.get("parallelism"), 1)
    backoff_limit = _int(spec.get("backoffLimit"), 6)
    suspended = spec.get("suspend") is True
    indexed = spec.get("completionMode") == "Indexed"
    if not suspended and not status.get("startTime"):
        status["startTime"] = _iso(now)
    conditions: list[dict[str, Any]] = [c for c in status.get("conditions") or [] if isinstance(c, dict)]
    requeue: float | None = None
    fail: tuple[str, str] | None = None
    if failed_count > backoff_limit:
        fail = ("BackoffLimitExceeded", "Job has reached the specified backoff limit")
    deadline = spec.get("activeDeadlineSeconds")
    start = _parse(status.get("startTime"))
    if fail is None and isinstance(deadline, int) and start is not None and not suspended:
        left = (start + dt.timedelta(seconds=deadline) - now).total_seconds()
        if left <= 0:
            fail = ("DeadlineExceeded", "Job was active longer than specified deadline")
        else:
            requeue = left
    if indexed:
        done_indexes = {i for i in (_pod_index(p) for p in succeeded) if i is not None}
        n_succeeded = len(done_indexes)
    else:
        done_indexes = set()
        n_succeeded = len(succeeded)
    complete = n_succeeded >= int(completions) if completions is not None else n_succeeded > 0 and not active
    if fail is not None:
        for p in active:
            actions.append(delete_action(PODS, p))
        conditions += [
            _condition("FailureTarget", fail[0], fail[1], now),
            _condition("Failed", fail[0], fail[1], now),
        ]
        actions.append(Action("event", JOBS, make_event(job, fail[0], fail[1], "Warning", COMPONENT, now)))
        active = []
    elif complete:
        conditions += [
            _condition(
                "SuccessCriteriaMet", "CompletionsReached", "Reached expected number of succeeded pods", now
            ),
            _condition("Complete", "CompletionsReached", "Reached expected number of succeeded pods", now),
        ]
        status["completionTime"] = _iso(now)
        actions.append(
            Action("event", JOBS, make_event(job, "Completed", "Job completed", "Normal", COMPONENT, now))
        )
        for p in active:
            actions.append(delete_action(PODS, p))
        active = []
    elif suspended:
        for p in active:
            actions.append(delete_action(PODS, p))
        if not _cond(status, "Suspended"):
            conditions.append(_condition("Suspended", "JobSuspended", "Job suspended", now))
        active = []
    else:
        conditions = [c for c in conditions if c.get("type") != "Suspended"]
        if completions is not None:
            want = min(parallelism, int(completions) - n_succeeded)
        else:
            want = parallelism if n_succeeded == 0 else 0
        missing = want - len(active)
        if missing > 0:
            delay = 0.0
            failed_pods = failed_count if restart != "OnFailure" else 0
            last = _last_failure(mine)
            if failed_pods > 0 and last is not None:
                backoff = min(BACKOFF_BASE * 2 ** (failed_pods - 1), BACKOFF_MAX)
                delay = (last + dt.timedelta(seconds=backoff) - now).total_seconds()
            if delay > 0:
                requeue = delay if requeue is None else min(requeue, delay)
            else:
                indexes: list[Any] = [None] * missing
                if indexed and completions is not None:
                    busy = {_pod_index(p) for p in active} | done_indexes
                    indexes = [i for i in range(int(completions)) if i not in busy][:missing]
                for index in indexes:
                    ev = make_event(
                        job, "SuccessfulCreate", "Created pod: {name}", component=COMPONENT, now=now
                    )
                    actions.append(Action("create", PODS, new_pod(job, index), then_event=ev))
        elif missing < 0:
            for p in sorted(active, key=lambda p: objects.creation_time(p) or now, reverse=True)[:-missing]:
                actions.append(delete_action(PODS, p))
    status["active"] = len(active) if fail is None and not complete else 0
    status["succeeded"] = n_succeeded
    status["failed"] = failed_count
    status["ready"] = sum(1 for p in active if objects.pod_is_ready(p))
    status["terminating"] = sum(1 for p in mine if objects.is_deleting(p) and not objects.pod_is_terminal(p))
    status["uncountedTerminatedPods"] = {}
    if indexed:
        status["completedIndexes"] = _ranges(sorted(done_indexes))
    for key in ("active", "succeeded", "failed", "terminating"):
        if not status[key]:
            status.pop(key)
    if conditions:
        status["conditions"] = conditions
    if status != (job.get("status") or {}):
        new = copy.deepcopy(job)
        new["status"] = status
        actions.append(Action("update_status", JOBS, new))
    if fail is not None or complete:
        ttl = _ttl_seconds(job)
        if ttl is not None:
            requeue = float(ttl) if requeue is None else min(requeue, float(ttl))
    return actions, requeue


def _ranges(indexes: list[int]) -> str:
    parts: list[str] = []
    i = 0
    while i < len(indexes):
        j = i
        while j + 1 < len(indexes) and indexes[j + 1] == indexes[j] + 1:
            j += 1
        parts.append(str(indexes[i]) if i == j else f"{indexes[i]}-{indexes[j]}")
        i = j + 1
    return ",".join(parts)


def _ttl_seconds(job: Obj) -> int | None:
    ttl = (job.get("spec") or {}).get("ttlSecondsAfterFinished")
    return ttl if isinstance(ttl, int) and not isinstance(ttl, bool) else None


def _ttl(job: Obj, when: dt.datetime | None, now: dt.datetime) -> tuple[list[Action], float | None]:
    """The TTL-after-finished controller: delete a finished Job once its TTL has passed."""
    ttl = _ttl_seconds(job)
    if ttl is None:
        return [], None
    finished_at = when or _parse((job.get("status") or {}).get("completionTime")) or now
    left = (finished_at + dt.timedelta(seconds=ttl) - now).total_seconds()
    if left > 0:
        return [], left
    return [delete_action(JOBS, job)], None
