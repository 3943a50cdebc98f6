"""CronJob controller: create a Job from `jobTemplate` at each scheduled time (in `timeZone`, UTC by
default), honouring `suspend`, `startingDeadlineSeconds` and `concurrencyPolicy` (Allow, Forbid:
skip while one runs, Replace: delete the running one first), keep `status.active`,
`lastScheduleTime` and `lastSuccessfulTime`, and delete finished Jobs beyond the history limits.

`reconcile_cronjob(cj, jobs, now)` returns (actions, seconds until the next schedule).
"""

from __future__ import annotations

import copy
import datetime as dt
import zoneinfo
from typing import Any

from podnet.controllers import objects
from podnet.controllers.actions import Action, delete_action
from podnet.controllers.events import make_event
from podnet.controllers.job import finished
from podnet.controllers.timeutil import utcnow
from podnet.model.cron import CronError, parse
from podnet.model.kinds import CRONJOBS, JOBS, Obj

COMPONENT = "cronjob-controller"
SCHEDULED_ANNOTATION = "batch.kubernetes.io/cronjob-scheduled-timestamp"
MAX_MISSED = 100


def _iso(t: dt.datetime) -> str:
    return t.astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _parse(text: Any) -> dt.datetime | None:
    try:
        return dt.datetime.strptime(str(text), "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=dt.UTC)
    except ValueError:
        return None


def job_name(cj: Obj, scheduled: dt.datetime) -> str:
    """`getJobName`: the CronJob's name and the scheduled time in minutes since the epoch."""
    return f"{objects.name(cj)}-{int(scheduled.timestamp() // 60)}"


def new_job(cj: Obj, scheduled: dt.datetime) -> Obj:
    tmpl = (cj.get("spec") or {}).get("jobTemplate") or {}
    tmeta = tmpl.get("metadata") or {}
    annotations = dict(tmeta.get("annotations") or {})
    annotations[SCHEDULED_ANNOTATION] = scheduled.astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    meta: dict[str, Any] = {
        "name": job_name(cj, scheduled),
        "namespace": objects.namespace(cj),
        "labels": dict(tmeta.get("labels") or {}),
        "annotations": annotations,
        "ownerReferences": [objects.owner_ref_to(cj)],
    }
    return {
        "apiVersion": "batch/v1",
        "kind": "Job",
        "metadata": meta,
        "spec": copy.deepcopy(tmpl.get("spec") or {}),
    }


def _zone(cj: Obj) -> dt.tzinfo:
    tz = (cj.get("spec") or {}).get("timeZone")
    if tz:
        try:
            return zoneinfo.ZoneInfo(str(tz))
        except (zoneinfo.ZoneInfoNotFoundError, ValueError):
            pass
    return dt.UTC


def reconcile_cronjob(
    cj: Obj, jobs: list[Obj], now: dt.datetime | None = None
) -> tuple[list[Action], float | None]:
    now = now or utcnow()
    if objects.is_deleting(cj):
        return [], None
    spec = cj.get("spec") or {}
    ns = objects.namespace(cj)
    mine = [j for j in jobs
            if objects.namespace(j) == ns and (objects.controller_ref(j) or {}).get("uid") == objects.uid(cj)]
    active = [j for j in mine if finished(j) is None and not objects.is_deleting(j)]
    actions: list[Action] = []
    status: dict[str, Any] = copy.deepcopy(cj.get("status") or {})
    try:
        schedule = parse(str(spec.get("schedule") or ""))
    except CronError:
        return [], None
    zone = _zone(cj)
    last = _parse(status.get("lastScheduleTime")) or objects.creation_time(cj) or now
    # the most recent missed time since the last run (local wall-clock times in the zone)
    missed: dt.datetime | None = None
    t = last.astimezone(zone).replace(tzinfo=None)
    now_local = now.astimezone(zone).replace(tzinfo=None)
    count = 0
    while True:
        nxt = schedule.next(t)
        if nxt > now_local:
            break
        missed, t = nxt, nxt
        count += 1
        if count > 10000:
            break
    if count > MAX_MISSED:
        actions.append(
            Action(
                "event",
                CRONJOBS,
                make_event(
                    cj,
                    "TooManyMissedTimes",
                    "too many missed start times. Set or decrease .spec.startingDeadlineSeconds "
                    "or check clock skew",
                    "Warning",
                    COMPONENT,
                    now,
                ),
            )
        )
    next_run = schedule.next(now_local).replace(tzinfo=zone).astimezone(dt.UTC)
    requeue = max(1.0, (next_run - now).total_seconds())
    if missed is not None and spec.get("suspend") is not True:
        scheduled = missed.replace(tzinfo=zone).astimezone(dt.UTC)
        deadline = spec.get("startingDeadlineSeconds")
        too_late = isinstance(deadline, int) and (now - scheduled).total_seconds() > deadline
        policy = spec.get("concurrencyPolicy") or "Allow"
        name = job_name(cj, scheduled)
        if too_late:
            actions.append(
                Action(
                    "event",
                    CRONJOBS,
                    make_event(
                        cj,
                        "MissSchedule",
                        f"Missed scheduled time to start a job: {_iso(scheduled)}",
                        "Warning",
                        COMPONENT,
                        now,
                    ),
                )
            )
        elif any(objects.name(j) == name for j in mine):
            pass  # already made
        elif policy == "Forbid" and active:
            actions.append(
                Action(
                    "event",
                    CRONJOBS,
                    make_event(
                        cj,
                        "JobAlreadyActive",
                        "Not starting job because prior execution is running and concurrency "
                        "policy is Forbid",
                        "Normal",
                        COMPONENT,
                        now,
                    ),
                )
            )
            requeue = min(requeue, 10.0)
        else:
            if policy == "Replace":
                for j in active:
                    ev = make_event(
                        cj, "SuccessfulDelete", f"Deleted job {objects.name(j)}", component=COMPONENT, now=now
                    )
                    actions.append(delete_action(JOBS, j, then_event=ev))
                active = []
            ev = make_event(cj, "SuccessfulCreate", f"Created job {name}", component=COMPONENT, now=now)
            job = new_job(cj, scheduled)
            actions.append(Action("create", JOBS, job, then_event=ev))
            status["lastScheduleTime"] = _iso(scheduled)
            active = [*active, job]
    # history limits: the oldest finished Jobs beyond the limits go
    for outcome, key, default in (
        ("Complete", "successfulJobsHistoryLimit", 3),
        ("Failed", "failedJobsHistoryLimit", 1),
    ):
        limit = spec.get(key)
        limit = default if not isinstance(limit, int) else limit
        done = sorted(
            (j for j in mine if (finished(j) or ("", None))[0] == outcome and not objects.is_deleting(j)),
            key=lambda j: (objects.creation_time(j) or now, objects.name(j)),
        )
        for j in done[: max(0, len(done) - limit)]:
            ev = make_event(
                cj,
                "SawCompletedJob" if outcome == "Complete" else "SuccessfulDelete",
                f"Deleted job {objects.name(j)}",
                component=COMPONENT,
                now=now,
            )
            actions.append(delete_action(JOBS, j, then_event=ev))
    successes = [f[1] for f in (finished(j) for j in mine) if f is not None and f[0] == "Complete" and f[1]]
    if successes:
        status["lastSuccessfulTime"] = _iso(max(successes))
    refs = [
        {
            "apiVersion": "batch/v1",
            "kind": "Job",
            "name": objects.name(j),
            "namespace": ns,
            **({"uid": objects.uid(j)} if objects.uid(j) else {}),
        }
        for j in active
    ]
    if refs:
        status["active"] = sorted(refs, key=lambda r: r["name"])
    else:
        status.pop("active", None)
    if status != (cj.get("status") or {}):
        new = copy.deepcopy(cj)
        new["status"] = status
        actions.append(Action("update_status", CRONJOBS, new))
    return actions, requeue
