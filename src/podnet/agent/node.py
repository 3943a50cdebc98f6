"""This node's Node object: registration, status (addresses, capacity, nodeInfo, conditions), heartbeats."""

from __future__ import annotations

import os
import platform
import socket
from pathlib import Path
from typing import Any

from podnet import __version__
from podnet.agent.status import rfc3339
from podnet.model.kinds import Obj

KUBELET_VERSION = "v1.32.0-podnet"
RUNTIME_VERSION = f"podnet://{'.'.join(__version__.split('.')[:2])}"
MAX_PODS = 110

_ARCH = {"x86_64": "amd64", "aarch64": "arm64", "armv7l": "arm", "ppc64le": "ppc64le", "s390x": "s390x"}


def _read(path: str) -> str:
    try:
        return Path(path).read_text().strip()
    except OSError:
        return ""


def memory_kib() -> int:
    for line in _read("/proc/meminfo").splitlines():
        if line.startswith("MemTotal:"):
            return int(line.split()[1])
    return 0


def os_image() -> str:
    for line in _read("/etc/os-release").splitlines():
        if line.startswith("PRETTY_NAME="):
            return line.partition("=")[2].strip('"')
    return "Linux"


def arch() -> str:
    return _ARCH.get(platform.machine(), platform.machine())


def node_labels(name: str) -> dict[str, str]:
    return {"kubernetes.io/hostname": name, "kubernetes.io/os": "linux", "kubernetes.io/arch": arch(),
            "beta.kubernetes.io/os": "linux", "beta.kubernetes.io/arch": arch()}


def capacity(max_pods: int = MAX_PODS) -> dict[str, str]:
    return {"cpu": str(os.cpu_count() or 1), "memory": f"{memory_kib()}Ki", "pods": str(max_pods),
            "ephemeral-storage": "0", "hugepages-2Mi": "0"}


def node_info(name: str) -> dict[str, str]:
    machine_id = _read("/etc/machine-id") or name
    boot_id = _read("/proc/sys/kernel/random/boot_id")
    return {"machineID": machine_id, "systemUUID": machine_id, "bootID": boot_id,
            "kernelVersion": platform.release(), "osImage": os_image(), "operatingSystem": "linux",
            "architecture": arch(), "containerRuntimeVersion": RUNTIME_VERSION,
            "kubeletVersion": KUBELET_VERSION, "kubeProxyVersion": KUBELET_VERSION}


class NodeConditions:
    """The five node conditions with their kubelet reasons; keeps lastTransitionTime across updates."""

    def __init__(self) -> None:
        self._since: dict[str, tuple[str, str]] = {}

    def _cond(self, ctype: str, ok_status: str, status_ok: bool, reason_ok: str, msg_ok: str,
              reason_bad: str, msg_bad: str, now: str) -> Obj:
        status = ok_status if status_ok else ("False" if ok_status == "True" else "True")
        prev = self._since.get(ctype)
        since = prev[1] if prev and prev[0] == status else now
        self._since[ctype] = (status, since)
        return {"type": ctype, "status": status, "lastHeartbeatTime": now, "lastTransitionTime": since,
                "reason": reason_ok if status_ok else reason_bad, "message": msg_ok if status_ok else msg_bad}

    def build(self, *, ready: bool, not_ready_message: str, network_ok: bool, now: str | None = None
              ) -> list[Obj]:
        ts = now or rfc3339()
        return [
            self._cond("NetworkUnavailable", "False", network_ok, "RouteCreated",
                       "RouteController created a route", "NoRouteCreated",
                       "Node created without a route", ts),
            self._cond("MemoryPressure", "False", True, "KubeletHasSufficientMemory",
                       "kubelet has sufficient memory available", "", "", ts),
            self._cond("DiskPressure", "False", True, "KubeletHasNoDiskPressure",
                       "kubelet has no disk pressure", "", "", ts),
            self._cond("PIDPressure", "False", True, "KubeletHasSufficientPID",
                       "kubelet has sufficient PID available", "", "", ts),
            self._cond("Ready", "True", ready, "KubeletReady", "kubelet is posting ready status",
                       "KubeletNotReady", not_ready_message, ts),
        ]


def node_status(name: str, ip: str, kubelet_port: int, conditions: list[Obj],
                max_pods: int = MAX_PODS) -> Obj:
    cap = capacity(max_pods)
    return {
        "addresses": [{"type": "InternalIP", "address": ip}, {"type": "Hostname", "address": name}],
        "capacity": cap,
        "allocatable": dict(cap),
        "conditions": conditions,
        "daemonEndpoints": {"kubeletEndpoint": {"Port": kubelet_port}},
        "nodeInfo": node_info(name),
        "images": [],
    }


def new_node(name: str, ip: str, kubelet_port: int, conditions: list[Obj], max_pods: int = MAX_PODS) -> Obj:
    return {"apiVersion": "v1", "kind": "Node",
            "metadata": {"name": name, "labels": node_labels(name),
                         "annotations": {"node.alpha.kubernetes.io/ttl": "0",
                                         "podnet.io/host": socket.gethostname()}},
            "spec": {},
            "status": node_status(name, ip, kubelet_port, conditions, max_pods)}


def pod_cidr_of(node: Obj) -> str:
    spec: dict[str, Any] = node.get("spec") or {}
    return str(spec.get("podCIDR") or "")


def internal_ip(node: Obj) -> str:
    for a in (node.get("status") or {}).get("addresses") or []:
        if a.get("type") == "InternalIP":
            return str(a.get("address") or "")
    return ""
