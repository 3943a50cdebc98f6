"""Server-side printing for the workload, identity, policy and extension kinds, with the columns
kube-apiserver's printers give them (pkg/printers/internalversion/printers.go), and for custom
resources from their CRD's `additionalPrinterColumns`.

`KIND_PRINTERS` is merged into `podnet.api.tables.PRINTERS`; `custom_printer(crd_version)` builds
the printer of a custom resource.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from podnet.api.tables import (
    _CONTAINERS,
    _IMAGES,
    AGE,
    NAME,
    Column,
    TablePrinter,
    _container_cells,
    _d,
    _i,
    _l,
    _s,
    format_label_selector,
    format_labels,
    human_duration_ns,
    parse_time,
    since,
)
from podnet.model import kinds
from podnet.model.kinds import Obj


def _name_age(obj: Obj, now: datetime) -> tuple[str, str]:
    meta = _d(obj.get("metadata"))
    return _s(meta.get("name")), since(meta.get("creationTimestamp"), now)


def _created_at(obj: Obj, _now: datetime) -> list[Any]:
    meta = _d(obj.get("metadata"))
    return [_s(meta.get("name")), meta.get("creationTimestamp")]


CREATED_AT = Column(
    "Created At",
    type="date",
    description="CreationTimestamp is a timestamp representing the server time when this object was created.",
)


def _secret(obj: Obj, now: datetime) -> list[Any]:
    name, age = _name_age(obj, now)
    return [name, _s(obj.get("type")), len(_d(obj.get("data"))), age]


def _service_account(obj: Obj, now: datetime) -> list[Any]:
    name, age = _name_age(obj, now)
    return [name, len(_l(obj.get("secrets"))), age]


def _binding(obj: Obj, now: datetime) -> list[Any]:
    name, age = _name_age(obj, now)
    ref = _d(obj.get("roleRef"))
    users, groups, sas = [], [], []
    for s in _l(obj.get("subjects")):
        s = _d(s)
        if s.get("kind") == "User":
            users.append(_s(s.get("name")))
        elif s.get("kind") == "Group":
            groups.append(_s(s.get("name")))
        elif s.get("kind") == "ServiceAccount":
            sas.append(f"{_s(s.get('namespace'))}/{_s(s.get('name'))}")
    return [
        name,
        f"{_s(ref.get('kind'))}/{_s(ref.get('name'))}",
        age,
        ", ".join(users),
        ", ".join(groups),
        ", ".join(sas),
    ]


def _daemonset(obj: Obj, now: datetime) -> list[Any]:
    name, age = _name_age(obj, now)
    spec, status = _d(obj.get("spec")), _d(obj.get("status"))
    tmpl = spec.get("template")
    names, images = _container_cells(tmpl)
    return [
        name,
        _i(status.get("desiredNumberScheduled")),
        _i(status.get("currentNumberScheduled")),
        _i(status.get("numberReady")),
        _i(status.get("updatedNumberScheduled")),
        _i(status.get("numberAvailable")),
        format_labels(_d(_d(tmpl).get("spec")).get("nodeSelector")),
        age,
        names,
        images,
        format_label_selector(spec.get("selector")),
    ]


def _statefulset(obj: Obj, now: datetime) -> list[Any]:
    name, age = _name_age(obj, now)
    spec, status = _d(obj.get("spec")), _d(obj.get("status"))
    names, images = _container_cells(spec.get("template"))
    return [name, f"{_i(status.get('readyReplicas'))}/{_i(spec.get('replicas'))}", age, names, images]


def _rc(obj: Obj, now: datetime) -> list[Any]:
    name, age = _name_age(obj, now)
    spec, status = _d(obj.get("spec")), _d(obj.get("status"))
    names, images = _container_cells(spec.get("template"))
    return [
        name,
        _i(spec.get("replicas")),
        _i(status.get("replicas")),
        _i(status.get("readyReplicas")),
        age,
        names,
        images,
        format_labels(spec.get("selector")),
    ]


def _has_condition(status: dict[str, Any], kind: str) -> bool:
    return any(
        _d(c).get("type") == kind and _d(c).get("status") == "True" for c in _l(status.get("conditions"))
    )


def job_status_word(job: Obj) -> str:
    status = _d(job.get("status"))
    if _has_condition(status, "Complete"):
        return "Complete"
    if _has_condition(status, "Failed"):
        return "Failed"
    if _d(job.get("metadata")).get("deletionTimestamp"):
        return "Terminating"
    for cond in ("Suspended", "FailureTarget", "SuccessCriteriaMet"):
        if _has_condition(status, cond):
            return cond
    return "Running"


def job_completions(job: Obj) -> str:
    spec, status = _d(job.get("spec")), _d(job.get("status"))
    succeeded = _i(status.get("succeeded"))
    if spec.get("completions") is not None:
        return f"{succeeded}/{_i(spec.get('completions'))}"
    parallelism = _i(spec.get("parallelism"))
    return f"{succeeded}/1 of {parallelism}" if parallelism > 1 else f"{succeeded}/1"


def _job(obj: Obj, now: datetime) -> list[Any]:
    name, age = _name_age(obj, now)
    spec, status = _d(obj.get("spec")), _d(obj.get("status"))
    start, end = parse_time(status.get("startTime")), parse_time(status.get("completionTime"))
    duration = ""
    if start is not None:
        delta = (end or now) - start
        duration = human_duration_ns((delta.days * 86400 + delta.seconds) * 1_000_000_000)
    names, images = _container_cells(spec.get("template"))
    return [
        name,
        job_status_word(obj),
        job_completions(obj),
        duration,
        age,
        names,
        images,
        format_label_selector(spec.get("selector")),
    ]


def _cronjob(obj: Obj, now: datetime) -> list[Any]:
    name, age = _name_age(obj, now)
    spec, status = _d(obj.get("spec")), _d(obj.get("status"))
    last = since(status.get("lastScheduleTime"), now) if status.get("lastScheduleTime") else "<none>"
    jspec = _d(_d(spec.get("jobTemplate")).get("spec"))
    names, images = _container_cells(jspec.get("template"))
    return [
        name,
        _s(spec.get("schedule")),
        _s(spec.get("timeZone")) or "<none>",
        "True" if spec.get("suspend") is True else "False",
        len(_l(status.get("active"))),
        last,
        age,
        names,
        images,
        format_label_selector(jspec.get("selector")),
    ]


def _pdb(obj: Obj, now: datetime) -> list[Any]:
    name, age = _name_age(obj, now)
    spec, status = _d(obj.get("spec")), _d(obj.get("status"))
    lo = spec.get("minAvailable")
    hi = spec.get("maxUnavailable")
    return [
        name,
        "N/A" if lo is None else str(lo),
        "N/A" if hi is None else str(hi),
        _i(status.get("disruptionsAllowed")),
        age,
    ]


def _hpa_targets(hpa: Obj) -> str:
    spec, status = _d(hpa.get("spec")), _d(hpa.get("status"))
    current = [_d(c) for c in _l(status.get("currentMetrics"))]
    parts: list[str] = []
    for i, metric in enumerate(_l(spec.get("metrics"))):
        metric = _d(metric)
        if metric.get("type") != "Resource":
            parts.append("<unknown>")
            continue
        res = _d(metric.get("resource"))
        target = _d(res.get("target"))
        cur = "<unknown>"
        if i < len(current):
            cm = _d(_d(current[i].get("resource")).get("current"))
            if cm.get("averageUtilization") is not None:
                cur = f"{cm['averageUtilization']}%"
            elif cm.get("averageValue") is not None:
                cur = _s(cm["averageValue"])
        if target.get("averageUtilization") is not None:
            parts.append(f"{_s(res.get('name'))}: {cur}/{target['averageUtilization']}%")
        else:
            parts.append(
                f"{_s(res.get('name'))}: {cur}/{_s(target.get('averageValue') or target.get('value'))}"
            )
    if len(parts) > 3:
        return ", ".join(parts[:3]) + f" + {len(parts) - 3} more..."
    return ", ".join(parts) or "<none>"


def _hpa(obj: Obj, now: datetime) -> list[Any]:
    name, age = _name_age(obj, now)
    spec, status = _d(obj.get("spec")), _d(obj.get("status"))
    ref = _d(spec.get("scaleTargetRef"))
    lo = spec.get("minReplicas")
    return [
        name,
        f"{_s(ref.get('kind'))}/{_s(ref.get('name'))}",
        _hpa_targets(obj),
        "<unset>" if lo is None else str(lo),
        _i(spec.get("maxReplicas")),
        _i(status.get("currentReplicas")),
        age,
    ]


def _apiservice(obj: Obj, now: datetime) -> list[Any]:
    name, age = _name_age(obj, now)
    svc = _d(_d(obj.get("spec")).get("service"))
    service = f"{_s(svc.get('namespace'))}/{_s(svc.get('name'))}" if svc else "Local"
    cond = next(
        (_d(c) for c in _l(_d(obj.get("status")).get("conditions")) if _d(c).get("type") == "Available"), None
    )
    if cond is None:
        available = "Unknown"
    elif cond.get("status") == "True":
        available = "True"
    else:
        available = f"{_s(cond.get('status'))} ({_s(cond.get('reason'))})"
    return [name, service, available, age]


def _controller_revision(obj: Obj, now: datetime) -> list[Any]:
    name, age = _name_age(obj, now)
    owner = next(
        (_d(r) for r in _l(_d(obj.get("metadata")).get("ownerReferences")) if _d(r).get("controller")), None
    )
    controller = "<none>"
    if owner is not None:
        group = _s(owner.get("apiVersion")).rpartition("/")[0]
        kind = _s(owner.get("kind")).lower()
        controller = f"{kind}.{group}/{_s(owner.get('name'))}" if group else f"{kind}/{_s(owner.get('name'))}"
    return [name, controller, _i(obj.get("revision")), age]


_SELECTOR = Column("Selector", priority=1, description="Label selector for pods.")

KIND_PRINTERS: dict[str, TablePrinter] = {
    kinds.SECRETS.key: TablePrinter(
        (
            NAME,
            Column("Type", description="The type of the secret"),
            Column("Data", description="The number of entries in the secret"),
            AGE,
        ),
        _secret,
    ),
    kinds.SERVICEACCOUNTS.key: TablePrinter(
        (
            NAME,
            Column(
                "Secrets",
                description="Secrets is a list of the secrets in the same namespace that pods "
                "running using this ServiceAccount are allowed to use.",
            ),
            AGE,
        ),
        _service_account,
    ),
    kinds.ROLES.key: TablePrinter((NAME, CREATED_AT), _created_at),
    kinds.CLUSTERROLES.key: TablePrinter((NAME, CREATED_AT), _created_at),
    kinds.ROLEBINDINGS.key: TablePrinter(
        (
            NAME,
            Column("Role", description="Role to which this RoleBinding refers"),
            AGE,
            Column("Users", priority=1, description="Users in the roleBinding"),
            Column("Groups", priority=1, description="Groups in the roleBinding"),
            Column("ServiceAccounts", priority=1, description="ServiceAccounts in the roleBinding"),
        ),
        _binding,
    ),
    kinds.CLUSTERROLEBINDINGS.key: TablePrinter(
        (
            NAME,
            Column("Role", description="ClusterRole to which this ClusterRoleBinding refers"),
            AGE,
            Column("Users", priority=1, description="Users in the clusterRoleBinding"),
            Column("Groups", priority=1, description="Groups in the clusterRoleBinding"),
            Column("ServiceAccounts", priority=1, description="ServiceAccounts in the clusterRoleBinding"),
        ),
        _binding,
    ),
    kinds.DAEMONSETS.key: TablePrinter(
        (
            NAME,
            Column(
                "Desired",
                type="integer",
                description="The total number of nodes that should be running the "
                "daemon pod (including nodes correctly running the "
                "daemon pod).",
            ),
            Column(
                "Current",
                type="integer",
                description="The number of nodes that are running at least 1 daemon "
                "pod and are supposed to run the daemon pod.",
            ),
            Column(
                "Ready",
                type="integer",
                description="numberReady is the number of nodes that should be running "
                "the daemon pod and have one or more of the daemon pod "
                "running with a Ready Condition.",
            ),
            Column(
                "Up-to-date",
                type="integer",
                description="The total number of nodes that are running updated daemon pod",
            ),
            Column(
                "Available",
                type="integer",
                description="The number of nodes that should be running the "
                "daemon pod and have one or more of the daemon pod "
                "running and available (ready for at least "
                "spec.minReadySeconds)",
            ),
            Column(
                "Node Selector",
                description="NodeSelector is a selector which must be true for the pod to fit on a node.",
            ),
            AGE,
            _CONTAINERS,
            _IMAGES,
            _SELECTOR,
        ),
        _daemonset,
    ),
    kinds.STATEFULSETS.key: TablePrinter(
        (NAME, Column("Ready", description="Number of the pod with ready state"), AGE, _CONTAINERS, _IMAGES),
        _statefulset,
    ),
    kinds.REPLICATIONCONTROLLERS.key: TablePrinter(
        (
            NAME,
            Column("Desired", type="integer", description="Replicas is the number of desired replicas."),
            Column(
                "Current",
                type="integer",
                description="Replicas is the most recently observed number of replicas.",
            ),
            Column(
                "Ready",
                type="integer",
                description="The number of ready replicas for this replication controller.",
            ),
            AGE,
            _CONTAINERS,
            _IMAGES,
            Column(
                "Selector",
                priority=1,
                description="Selector is a label query over pods that should match the Replicas count.",
            ),
        ),
        _rc,
    ),
    kinds.JOBS.key: TablePrinter(
        (
            NAME,
            Column("Status", description="Status of the job."),
            Column("Completions", description="The completion status of the job."),
            Column("Duration", description="Time required to complete the job."),
            AGE,
            _CONTAINERS,
            _IMAGES,
            _SELECTOR,
        ),
        _job,
    ),
    kinds.CRONJOBS.key: TablePrinter(
        (
            NAME,
            Column("Schedule", description="The schedule in Cron format."),
            Column("Timezone", description="The time zone name for the given schedule."),
            Column(
                "Suspend",
                type="boolean",
                description="This flag tells the controller to suspend subsequent executions.",
            ),
            Column("Active", type="integer", description="A list of pointers to currently running jobs."),
            Column(
                "Last Schedule",
                description="Information when was the last time the job was successfully scheduled.",
            ),
            AGE,
            _CONTAINERS,
            _IMAGES,
            _SELECTOR,
        ),
        _cronjob,
    ),
    kinds.PODDISRUPTIONBUDGETS.key: TablePrinter(
        (
            NAME,
            Column("Min Available", description="The minimum number of pods that must be available."),
            Column("Max Unavailable", description="The maximum number of pods that may be unavailable."),
            Column(
                "Allowed Disruptions",
                type="integer",
                description="Calculated number of pods that may be disrupted at this time.",
            ),
            AGE,
        ),
        _pdb,
    ),
    kinds.HORIZONTALPODAUTOSCALERS.key: TablePrinter(
        (
            NAME,
            Column("Reference", description="reference to scaled resource"),
            Column("Targets", description="the target and current metrics"),
            Column("MinPods", description="minimum number of pods that may be created"),
            Column("MaxPods", type="integer", description="maximum number of pods that may be created"),
            Column("Replicas", type="integer", description="current number of replicas"),
            AGE,
        ),
        _hpa,
    ),
    kinds.APISERVICES.key: TablePrinter(
        (
            NAME,
            Column("Service", description="The reference to the service that hosts this API endpoint."),
            Column("Available", description="Whether this service is available."),
            AGE,
        ),
        _apiservice,
    ),
    kinds.CUSTOMRESOURCEDEFINITIONS.key: TablePrinter((NAME, CREATED_AT), _created_at),
    kinds.CONTROLLERREVISIONS.key: TablePrinter(
        (
            NAME,
            Column("Controller", description="Controller of the object"),
            Column(
                "Revision",
                type="integer",
                description="Revision indicates the revision of the state represented by Data.",
            ),
            AGE,
        ),
        _controller_revision,
    ),
}


# -- custom resources -------------------------------------------------------------------------


def _json_path_value(obj: Obj, path: str) -> Any:
    """The value at a simple JSONPath (`.spec.replicas`, `.status.conditions[0].type`)."""
    cur: Any = obj
    for part in [p for p in path.strip().lstrip("$").split(".") if p]:
        name, _, rest = part.partition("[")
        cur = cur.get(name) if isinstance(cur, dict) else None
        while rest:
            idx, _, rest = rest.partition("]")
            rest = rest.lstrip("[")
            if isinstance(cur, list) and idx.isdigit() and int(idx) < len(cur):
                cur = cur[int(idx)]
            else:
                return None
    return cur


def custom_printer(version: dict[str, Any]) -> TablePrinter:
    """A CRD version's table: Name, its additionalPrinterColumns, or Age when it has none."""
    extra = [_d(c) for c in _l(version.get("additionalPrinterColumns"))]
    if not extra:
        extra = [{"name": "Age", "type": "date", "jsonPath": ".metadata.creationTimestamp"}]
    columns = (
        NAME,
        *(
            Column(
                _s(c.get("name")),
                type=_s(c.get("type")) or "string",
                format=_s(c.get("format")),
                description=_s(c.get("description")),
                priority=_i(c.get("priority")),
            )
            for c in extra
        ),
    )

    def cells(obj: Obj, now: datetime) -> list[Any]:
        row: list[Any] = [_s(_d(obj.get("metadata")).get("name"))]
        for c in extra:
            value = _json_path_value(obj, _s(c.get("jsonPath")))
            if c.get("type") == "date":
                row.append(since(value, now) if value else "<unknown>")
            elif value is None:
                row.append("<none>" if c.get("type") == "string" else None)
            elif isinstance(value, dict | list):
                import json

                row.append(json.dumps(value, separators=(",", ":")))
            else:
                row.append(value)
        return row

    return TablePrinter(columns, cells)


# The admin network policies are CRDs upstream (network-policy-api): their CRDs' printer columns.
KIND_PRINTERS[kinds.ADMINNETWORKPOLICIES.key] = custom_printer({"additionalPrinterColumns": [
    {"name": "Priority", "type": "string", "jsonPath": ".spec.priority"},
    {"name": "Age", "type": "date", "jsonPath": ".metadata.creationTimestamp"}]})
KIND_PRINTERS[kinds.BASELINEADMINNETWORKPOLICIES.key] = custom_printer({})
