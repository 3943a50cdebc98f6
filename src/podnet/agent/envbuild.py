"""A container's environment, as kubelet builds it: service links, then `env` in order, `$(VAR)` expanded.

Order (later wins): a minimal base (PATH, HOSTNAME), service environment variables,
`envFrom` sources, then each `env` entry, expanded against what came before.
"""

from __future__ import annotations

import base64
import os
from collections.abc import Awaitable, Callable
from typing import Any

from podnet.agent.expansion import expand
from podnet.model.kinds import Obj

DEFAULT_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"

ConfigMapGetter = Callable[[str, str], Awaitable[Obj | None]]
"""(namespace, name) -> ConfigMap or None when it does not exist."""


class EnvError(Exception):
    """The container cannot start: reason CreateContainerConfigError, message as kubelet words it."""


FIELD_PATHS = ("metadata.name", "metadata.namespace", "metadata.uid", "status.podIP", "status.hostIP",
               "spec.nodeName", "spec.serviceAccountName", "status.podIPs", "status.hostIPs")


def field_ref_value(pod: Obj, path: str, *, pod_ip: str, host_ip: str) -> str:
    meta = pod.get("metadata") or {}
    spec = pod.get("spec") or {}
    if path == "metadata.name":
        return str(meta.get("name", ""))
    if path == "metadata.namespace":
        return str(meta.get("namespace", "default"))
    if path == "metadata.uid":
        return str(meta.get("uid", ""))
    if path in ("status.podIP", "status.podIPs"):
        return pod_ip
    if path in ("status.hostIP", "status.hostIPs"):
        return host_ip
    if path == "spec.nodeName":
        return str(spec.get("nodeName", ""))
    if path == "spec.serviceAccountName":
        return str(spec.get("serviceAccountName") or spec.get("serviceAccount") or "default")
    for prefix, src in (("metadata.labels", meta.get("labels")),
                        ("metadata.annotations", meta.get("annotations"))):
        if path.startswith(prefix + "['") and path.endswith("']"):
            return str((src or {}).get(path[len(prefix) + 2:-2], ""))
    raise EnvError(f'unsupported fieldRef fieldPath "{path}": supported values: '
                   + ", ".join(f'"{p}"' for p in FIELD_PATHS))


def resource_field_value(container: Obj, ref: Obj) -> str:
    from podnet.agent.volumes import resource_value  # one rendering for env and downwardAPI files

    return resource_value(container, ref)


async def build_env(pod: Obj, container: Obj, *, pod_ip: str, host_ip: str, service_env: dict[str, str],
                    get_configmap: ConfigMapGetter, extra: dict[str, str] | None = None,
                    get_secret: ConfigMapGetter | None = None) -> dict[str, str]:
    meta = pod.get("metadata") or {}
    ns = str(meta.get("namespace") or "default")
    hostname = str((pod.get("spec") or {}).get("hostname") or meta.get("name", ""))[:63]
    env: dict[str, str] = {"PATH": os.environ.get("PATH", DEFAULT_PATH), "HOSTNAME": hostname}
    env.update(extra or {})
    env.update(service_env)
    for src in container.get("envFrom") or []:
        prefix = str(src.get("prefix") or "")
        ref = src.get("configMapRef")
        if ref:
            cm = await get_configmap(ns, str(ref.get("name", "")))
            if cm is None:
                if ref.get("optional"):
                    continue
                raise EnvError(f'configmap "{ref.get("name", "")}" not found')
            for k, v in (cm.get("data") or {}).items():
                env[prefix + k] = str(v)
        elif src.get("secretRef"):
            sref = src["secretRef"]
            secret = await get_secret(ns, str(sref.get("name", ""))) if get_secret is not None else None
            if secret is None:
                if sref.get("optional"):
                    continue
                raise EnvError(f'secret "{sref.get("name", "")}" not found')
            for k, v in _secret_data(secret).items():
                env[prefix + k] = v
    for item in container.get("env") or []:
        name = str(item.get("name", ""))
        if "value" in item or "valueFrom" not in item:
            env[name] = expand(str(item.get("value") or ""), env)
            continue
        vf: dict[str, Any] = item.get("valueFrom") or {}
        if "fieldRef" in vf:
            env[name] = field_ref_value(pod, str(vf["fieldRef"].get("fieldPath", "")), pod_ip=pod_ip,
                                        host_ip=host_ip)
        elif "resourceFieldRef" in vf:
            env[name] = resource_field_value(container, vf["resourceFieldRef"])
        elif "configMapKeyRef" in vf:
            ref = vf["configMapKeyRef"]
            cm = await get_configmap(ns, str(ref.get("name", "")))
            key = str(ref.get("key", ""))
            if cm is None or key not in (cm.get("data") or {}):
                if ref.get("optional"):
                    continue
                if cm is None:
                    raise EnvError(f'configmap "{ref.get("name", "")}" not found')
                raise EnvError(f'couldn\'t find key {key} in ConfigMap {ns}/{ref.get("name", "")}')
            env[name] = str(cm["data"][key])
        elif "secretKeyRef" in vf:
            ref = vf["secretKeyRef"]
            secret = await get_secret(ns, str(ref.get("name", ""))) if get_secret is not None else None
            key = str(ref.get("key", ""))
            data = _secret_data(secret) if secret is not None else {}
            if secret is None or key not in data:
                if ref.get("optional"):
                    continue
                if secret is None:
                    raise EnvError(f'secret "{ref.get("name", "")}" not found')
                raise EnvError(f'couldn\'t find key {key} in Secret {ns}/{ref.get("name", "")}')
            env[name] = data[key]
    return env


def _secret_data(secret: Obj) -> dict[str, str]:
    out: dict[str, str] = {}
    for k, v in (secret.get("data") or {}).items():
        try:
            out[str(k)] = base64.b64decode(str(v)).decode("utf-8", errors="replace")
        except ValueError:
            continue
    return out
