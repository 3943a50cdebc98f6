"""Admission that changes a pod on create, as kube-apiserver's ServiceAccount plugin does: the pod
runs as `spec.serviceAccountName` (`default` when unset) and, unless `automountServiceAccountToken`
is false on the pod or its ServiceAccount, gets the `kube-api-access-<random>` projected volume
(a bound token, the cluster CA from `kube-root-ca.crt`, the namespace) mounted read-only at
/var/run/secrets/kubernetes.io/serviceaccount in every container."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from podnet.api import objmeta as m
from podnet.model.kinds import Obj

TOKEN_MOUNT_PATH = "/var/run/secrets/kubernetes.io/serviceaccount"
TOKEN_EXPIRATION = 3607  # kube-apiserver's default for the projected token (1h + 7s)

ServiceAccountGetter = Callable[[str, str], Awaitable[Obj | None]]


def api_access_volume(name: str) -> dict[str, Any]:
    return {"name": name, "projected": {"defaultMode": 420, "sources": [
        {"serviceAccountToken": {"expirationSeconds": TOKEN_EXPIRATION, "path": "token"}},
        {"configMap": {"name": "kube-root-ca.crt", "items": [{"key": "ca.crt", "path": "ca.crt"}]}},
        {"downwardAPI": {"items": [{"fieldRef": {"apiVersion": "v1", "fieldPath": "metadata.namespace"},
                                    "path": "namespace"}]}},
    ]}}


def _containers(spec: dict[str, Any]) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    for key in ("initContainers", "containers"):
        listed = spec.get(key)
        if isinstance(listed, list):
            out.extend(c for c in listed if isinstance(c, dict))
    return out


async def admit_pod(pod: Obj, get_service_account: ServiceAccountGetter) -> None:
    spec = pod.get("spec")
    if not isinstance(spec, dict):
        return
    sa_name = spec.get("serviceAccountName") or spec.get("serviceAccount") or "default"
    if not isinstance(sa_name, str):
        return  # a wrong type: validation answers it
    spec["serviceAccountName"] = sa_name
    spec["serviceAccount"] = sa_name
    if spec.get("automountServiceAccountToken") is False:
        return
    ns = m.namespace_of(pod)
    if spec.get("automountServiceAccountToken") is None:
        sa = await get_service_account(ns, sa_name)
        if sa is not None and sa.get("automountServiceAccountToken") is False:
            return
    containers = _containers(spec)
    if any(not isinstance(c.get("volumeMounts") or [], list) for c in containers):
        return
    if any(isinstance(vm, dict) and vm.get("mountPath") == TOKEN_MOUNT_PATH
           for c in containers for vm in c.get("volumeMounts") or []):
        return
    volumes = spec.get("volumes")
    if volumes is not None and not isinstance(volumes, list):
        return
    name = m.generate_name("kube-api-access-")
    spec["volumes"] = [*(volumes or []), api_access_volume(name)]
    for c in containers:
        mounts = c.get("volumeMounts")
        if mounts is not None and not isinstance(mounts, list):
            continue
        c["volumeMounts"] = [*(mounts or []), {"name": name, "mountPath": TOKEN_MOUNT_PATH, "readOnly": True}]
