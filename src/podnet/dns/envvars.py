"""Service environment variables for a container, as the kubelet writes them.

Kubernetes: pkg/kubelet/envvars/envvars.go (`FromServices`) and the kubelet's
`getServiceEnvVarMap`:

* services whose ClusterIP is set (not "" and not "None": headless and
  ExternalName services are skipped);
* the `kubernetes` Service of namespace `default` always, even with
  `enableServiceLinks: false`;
* every other Service of the pod's namespace when `enableServiceLinks` (default true);
  a Service named `kubernetes` in the pod's own namespace replaces the default one
  when service links are on.

Variables set explicitly in the container's `env` win over these; that merge is
the caller's (the pod runtime's) job.
"""

from __future__ import annotations

from podnet.model.kinds import Obj

MASTER_SERVICES = frozenset({"kubernetes"})


def env_name(name: str) -> str:
    """`my-svc` -> `MY_SVC` (kubelet's makeEnvVariableName)."""
    return name.replace("-", "_").upper()


def is_service_ip_set(svc: Obj) -> bool:
    ip = (svc.get("spec") or {}).get("clusterIP")
    return bool(ip) and ip != "None"


def _vars_for(svc: Obj) -> dict[str, str]:
    spec = svc.get("spec") or {}
    ip = str(spec["clusterIP"])
    prefix = env_name(str(svc["metadata"]["name"]))
    ports = spec.get("ports") or []
    out: dict[str, str] = {f"{prefix}_SERVICE_HOST": ip}
    if not ports:
        return out
    out[f"{prefix}_SERVICE_PORT"] = str(int(ports[0]["port"]))
    for p in ports:
        if p.get("name"):
            out[f"{prefix}_SERVICE_PORT_{env_name(str(p['name']))}"] = str(int(p["port"]))
    for i, p in enumerate(ports):
        proto = str(p.get("protocol") or "TCP")
        port = int(p["port"])
        url = f"{proto.lower()}://{ip}:{port}"
        if i == 0:
            out[f"{prefix}_PORT"] = url
        pp = f"{prefix}_PORT_{port}_{proto.upper()}"
        out[pp] = url
        out[f"{pp}_PROTO"] = proto.lower()
        out[f"{pp}_PORT"] = str(port)
        out[f"{pp}_ADDR"] = ip
    return out


def service_env_vars(services: list[Obj], namespace: str,
                     enable_service_links: bool = True) -> dict[str, str]:
    """The `{NAME}_SERVICE_HOST`, `{NAME}_PORT_...` variables a pod in `namespace` gets.

    `services`: all Services the kubelet knows (any namespaces); `enable_service_links`
    is the pod's `spec.enableServiceLinks` (None/absent means true).
    """
    chosen: dict[str, Obj] = {}
    for svc in services:
        if not is_service_ip_set(svc):
            continue
        meta = svc.get("metadata") or {}
        name, ns = str(meta.get("name") or ""), str(meta.get("namespace") or "default")
        if ns == "default" and name in MASTER_SERVICES:
            chosen.setdefault(name, svc)
        elif ns == namespace and enable_service_links:
            chosen[name] = svc
    env: dict[str, str] = {}
    for name in sorted(chosen):
        env.update(_vars_for(chosen[name]))
    return env


def pod_service_env_vars(pod: Obj, services: list[Obj]) -> dict[str, str]:
    """`service_env_vars` for a pod object (reads its namespace and `spec.enableServiceLinks`)."""
    links = (pod.get("spec") or {}).get("enableServiceLinks")
    ns = str((pod.get("metadata") or {}).get("namespace") or "default")
    return service_env_vars(services, ns, links is None or bool(links))
