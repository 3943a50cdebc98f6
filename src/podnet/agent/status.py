"""Pod status as kubelet reports it, computed from the runtime's view of each container. Pure.

phase follows kubelet's getPhase; conditions are PodReadyToStartContainers, Initialized,
Ready, ContainersReady and PodScheduled; qosClass follows the resource rules.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field

from podnet.model.kinds import Obj
from podnet.model.qos import qos_class


def rfc3339(t: float | None = None) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(time.time() if t is None else t))


@dataclass
class ContainerView:
    """What the runtime knows about one container; `state` is the Kubernetes ContainerState dict."""

    name: str
    image: str
    image_id: str = ""
    container_id: str = ""
    state: Obj = field(default_factory=lambda: {"waiting": {"reason": "ContainerCreating"}})
    last_state: Obj = field(default_factory=dict)
    restart_count: int = 0
    ready: bool = False
    started: bool = False

    def to_status(self) -> Obj:
        st: Obj = {"name": self.name, "state": self.state, "lastState": self.last_state, "ready": self.ready,
                   "restartCount": self.restart_count, "image": self.image, "imageID": self.image_id,
                   "started": self.started}
        if self.container_id:
            st["containerID"] = self.container_id
        return st

    @property
    def running(self) -> bool:
        return "running" in self.state

    @property
    def terminated(self) -> Obj | None:
        t: Obj | None = self.state.get("terminated")
        return t


def pod_phase(restart_policy: str, containers: list[ContainerView], *, init_pending: bool = False,
              init_failed: bool = False) -> str:
    if init_failed:
        return "Failed"
    if init_pending:
        return "Pending"
    running = stopped = succeeded = waiting = 0
    for c in containers:
        if c.running:
            running += 1
        elif c.terminated is not None:
            stopped += 1
            if int(c.terminated.get("exitCode", 0)) == 0:
                succeeded += 1
        elif c.last_state.get("terminated") is not None:
            stopped += 1
        else:
            waiting += 1
    if waiting > 0:
        return "Pending"
    if running > 0:
        return "Running"
    if stopped > 0:
        if restart_policy == "Always":
            return "Running"
        if stopped == succeeded:
            return "Succeeded"
        if restart_policy == "Never":
            return "Failed"
        return "Running"
    return "Pending"


def _cond(old: dict[str, Obj], ctype: str, status: bool, reason: str = "", message: str = "",
          now: str = "") -> Obj:
    s = "True" if status else "False"
    prev = old.get(ctype)
    ltt = prev.get("lastTransitionTime") if prev and prev.get("status") == s else None
    c: Obj = {"type": ctype, "status": s, "lastProbeTime": None, "lastTransitionTime": ltt or now}
    if not status and reason:
        c["reason"] = reason
    if not status and message:
        c["message"] = message
    return c


def build_status(pod: Obj, *, host_ip: str, pod_ip: str, containers: list[ContainerView],
                 init_containers: list[ContainerView] | None = None, sandbox_ready: bool,
                 start_time: str, init_done: bool = True, init_failed: bool = False,
                 phase_override: str = "", now: float | None = None) -> Obj:
    """The full `status` of a pod, keeping lastTransitionTime of unchanged conditions."""
    spec = pod.get("spec") or {}
    old_status = pod.get("status") or {}
    old = {c.get("type", ""): c for c in old_status.get("conditions") or []}
    ts = rfc3339(now)
    restart_policy = str(spec.get("restartPolicy") or "Always")
    phase = phase_override or pod_phase(restart_policy, containers, init_pending=not init_done,
                                        init_failed=init_failed)
    not_ready = [c.name for c in containers if not c.ready]
    all_ready = not not_ready and init_done and phase == "Running"
    if phase == "Succeeded":
        all_ready = False
    unready_msg = f"containers with unready status: [{' '.join(not_ready)}]" if not_ready else ""
    ready_reason = "PodCompleted" if phase in ("Succeeded", "Failed") else "ContainersNotReady"
    init_list = init_containers or []
    incomplete = [c.name for c in init_list if not (c.terminated and c.terminated.get("exitCode") == 0)]
    conds = [
        _cond(old, "PodReadyToStartContainers", sandbox_ready, now=ts),
        _cond(old, "Initialized", init_done or phase in ("Succeeded",), "ContainersNotInitialized",
              f"containers with incomplete status: [{' '.join(incomplete)}]", now=ts),
        _cond(old, "Ready", all_ready, ready_reason, unready_msg, now=ts),
        _cond(old, "ContainersReady", all_ready, ready_reason, unready_msg, now=ts),
        _cond(old, "PodScheduled", True, now=ts),
    ]
    status: Obj = {
        "phase": phase,
        "conditions": conds,
        "hostIP": host_ip,
        "hostIPs": [{"ip": host_ip}] if host_ip else [],
        "startTime": start_time,
        "containerStatuses": [c.to_status() for c in containers],
        "qosClass": qos_class(pod),
    }
    if pod_ip:
        status["podIP"] = pod_ip
        status["podIPs"] = [{"ip": pod_ip}]
    if init_list:
        status["initContainerStatuses"] = [c.to_status() for c in init_list]
    return status
