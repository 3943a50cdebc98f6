"""Which pods back a Service and on which ports: the shared part of the Endpoints and
EndpointSlice controllers (`podutil.FindPort`, `ShouldPodBeInEndpoints`)."""

from __future__ import annotations

import functools
import ipaddress
from typing import Any

from podnet.controllers import objects
from podnet.model.kinds import Obj
from podnet.model.selectors import from_map


def has_selector(svc: Obj) -> bool:
    spec = svc.get("spec") or {}
    return bool(spec.get("selector")) and spec.get("type") != "ExternalName"


def address_family(svc: Obj) -> str:
    fams = (svc.get("spec") or {}).get("ipFamilies") or ["IPv4"]
    return "IPv6" if fams[0] == "IPv6" else "IPv4"


@functools.lru_cache(maxsize=1 << 17)
def _ip_version(ip: str) -> int:
    """4 or 6, or 0 for a string that is no IP address (parsed once per address, not per reconcile)."""
    try:
        return ipaddress.ip_address(ip).version
    except ValueError:
        return 0


def pod_ip_for(pod: Obj, family: str) -> str:
    want = 6 if family == "IPv6" else 4
    for ip in objects.pod_ips(pod):
        if _ip_version(ip) == want:
            return ip
    return ""


def selected_pods(svc: Obj, pods: list[Obj]) -> list[Obj]:
    """Pods in the Service's namespace matching its selector that have an IP and are not terminal
    (terminating pods included: the caller decides)."""
    sel = from_map((svc.get("spec") or {}).get("selector"))
    ns = objects.namespace(svc)
    fam = address_family(svc)
    out = [p for p in pods
           if objects.namespace(p) == ns and sel.matches(objects.labels(p)) and not objects.pod_is_terminal(p)
           and pod_ip_for(p, fam)]
    out.sort(key=lambda p: (objects.name(p), objects.uid(p)))
    return out


def find_port(pod: Obj, svc_port: dict[str, Any]) -> int | None:
    """The pod port a Service port's targetPort means: a number as is, a name looked up in the
    pod's containers (and restartable init containers) with the same protocol."""
    target = svc_port.get("targetPort")
    if target is None or target == "" or target == 0:
        target = svc_port.get("port")
    if isinstance(target, int) and not isinstance(target, bool):
        return target
    if isinstance(target, str) and target.isdigit():
        return int(target)
    proto = svc_port.get("protocol") or "TCP"
    spec = pod.get("spec") or {}
    containers = list(spec.get("containers") or [])
    containers += [c for c in spec.get("initContainers") or []
                   if isinstance(c, dict) and c.get("restartPolicy") == "Always"]
    for c in containers:
        for cp in (c.get("ports") or []) if isinstance(c, dict) else []:
            if cp.get("name") == target and (cp.get("protocol") or "TCP") == proto:
                n = cp.get("containerPort")
                if isinstance(n, int):
                    return n
    return None


def endpoint_ports(svc: Obj, pod: Obj) -> list[dict[str, Any]]:
    """The Service's ports resolved for one pod, as EndpointSlice/Endpoints ports; ports the pod
    does not define are left out."""
    out: list[dict[str, Any]] = []
    for sp in (svc.get("spec") or {}).get("ports") or []:
        if not isinstance(sp, dict):
            continue
        n = find_port(pod, sp)
        if n is None:
            continue
        ep: dict[str, Any] = {"name": str(sp.get("name") or ""), "port": n,
                              "protocol": sp.get("protocol") or "TCP"}
        if sp.get("appProtocol"):
            ep["appProtocol"] = sp["appProtocol"]
        out.append(ep)
    return out


def hostname_for(svc: Obj, pod: Obj) -> str:
    spec = pod.get("spec") or {}
    if spec.get("hostname") and spec.get("subdomain") == objects.name(svc):
        return str(spec["hostname"])
    return ""


def target_ref(pod: Obj) -> dict[str, Any]:
    ref: dict[str, Any] = {"kind": "Pod", "namespace": objects.namespace(pod), "name": objects.name(pod)}
    if objects.uid(pod):
        ref["uid"] = objects.uid(pod)
    return ref


def pod_endpoint_fields(svc: Obj, pod: Obj) -> dict[str, Any]:
    """What an Endpoints address and an EndpointSlice endpoint both say about their pod, in wire
    order: `hostname` (when the pod's subdomain is the Service), `nodeName`, `targetRef`."""
    fields: dict[str, Any] = {}
    host = hostname_for(svc, pod)
    if host:
        fields["hostname"] = host
    if objects.node_name(pod):
        fields["nodeName"] = objects.node_name(pod)
    fields["targetRef"] = target_ref(pod)
    return fields
