"""Who a controller's requests are, as kube-controller-manager (kubeadm runs it with
`--use-service-account-credentials`) and kube-scheduler make them: each control loop acts as its own
ServiceAccount in kube-system (`system:serviceaccount:kube-system:deployment-controller`, ...), the
scheduler as `system:kube-scheduler`, and what no control loop does itself (the shared informers'
lists and watches) as `system:kube-controller-manager`.

The framework's workers set `CURRENT_LOOP` to their loop's name (a context variable: tasks they start
inherit it); the in-process client reads it to write its calls in the audit log under that identity.
"""

from __future__ import annotations

import contextvars

from podnet.api.audit import CONTROLLER_MANAGER, CONTROLLER_MANAGER_AGENT
from podnet.api.sa_tokens import UserInfo
from podnet.model import kinds
from podnet.model.kinds import ResourceType

CURRENT_LOOP: contextvars.ContextVar[str] = contextvars.ContextVar("podnet_controller_loop", default="")

SCHEDULER = UserInfo("system:kube-scheduler", ("system:authenticated",))

# podnet's control loop -> the ServiceAccount kube-controller-manager's controller uses for it
SERVICE_ACCOUNTS = {
    "endpoints": "endpoint-controller",  # also EndpointSlices: endpointslice-controller (below)
    "replicaset": "replicaset-controller",
    "deployment": "deployment-controller",
    "nodeipam": "node-controller",
    "nodelifecycle": "node-controller",
    "loadbalancer": "service-controller",
    "serviceaccount": "service-account-controller",
    "job": "job-controller",
    "cronjob": "cronjob-controller",
    "daemonset": "daemon-set-controller",
    "statefulset": "statefulset-controller",
    "replicationcontroller": "replication-controller",
}
SCHEDULER_AGENT = "kube-scheduler/podnet (in-process)"


def _service_account(name: str) -> UserInfo:
    return UserInfo(f"system:serviceaccount:kube-system:{name}",
                    ("system:serviceaccounts", "system:serviceaccounts:kube-system", "system:authenticated"))


def current_user(rt: ResourceType) -> tuple[UserInfo, str]:
    """The user and user agent of a request to `rt` made now (from the calling control loop)."""
    loop = CURRENT_LOOP.get()
    if loop == "scheduler":
        return SCHEDULER, SCHEDULER_AGENT
    sa = SERVICE_ACCOUNTS.get(loop, "")
    if sa == "endpoint-controller" and rt is kinds.ENDPOINTSLICES:
        sa = "endpointslice-controller"
    if not sa:
        return CONTROLLER_MANAGER, CONTROLLER_MANAGER_AGENT
    user = _service_account(sa)
    return user, f"{CONTROLLER_MANAGER_AGENT}/{user.name}"
