"""Compact copies of Services, EndpointSlices and Pods for the cluster DNS server's caches.

The DNS server watches every Service, EndpointSlice and Pod of the cluster; as the API serves them
(managedFields, uids, owner references, timestamps, selectors, a Pod's whole spec and status) most of
what it would hold is never read. These transforms (`Informer(transform=...)`, as the agent's
`proxy/compact.py`) keep only what `records.DnsIndex` answers with: names, IPs, ports, hostnames,
readiness and the few spec fields that decide the kind of answer; repeated strings are interned and
lists become tuples. The informer and the index then share the one small copy. Read-only by
convention, as every informer cache is.
"""

from __future__ import annotations

import sys
from typing import Any

from podnet.model.kinds import Obj
from podnet.model.services import SERVICE_NAME_LABEL

_READY: dict[Any, Obj] = {}  # the few distinct `conditions` maps, shared


def _s(v: Any) -> Any:
    return sys.intern(v) if type(v) is str else v


def _meta(meta: Any, labels: tuple[str, ...] = ()) -> Obj:
    meta = meta if isinstance(meta, dict) else {}
    out: Obj = {"name": _s(meta.get("name")), "namespace": _s(meta.get("namespace")),
                "resourceVersion": meta.get("resourceVersion")}
    lab = meta.get("labels") or {}
    kept = {k: _s(lab[k]) for k in labels if isinstance(lab, dict) and k in lab}
    if kept:
        out["labels"] = kept
    return out


def _ports(ports: Any) -> tuple[Obj, ...]:
    if not isinstance(ports, list):
        return ()
    return tuple({k: _s(p[k]) for k in ("name", "protocol", "port") if k in p}
                 for p in ports if isinstance(p, dict))


def _strings(items: Any) -> tuple[str, ...]:
    return tuple(_s(i) for i in items) if isinstance(items, list) else ()


def dns_service(svc: Obj) -> Obj:
    """What the DNS index reads of a Service: its kind of answer, its ClusterIPs and its ports."""
    spec = svc.get("spec") or {}
    out_spec: Obj = {k: _s(spec[k]) for k in ("type", "clusterIP", "externalName", "publishNotReadyAddresses")
                     if k in spec}
    if "clusterIPs" in spec:
        out_spec["clusterIPs"] = _strings(spec["clusterIPs"])
    if "ports" in spec:
        out_spec["ports"] = _ports(spec["ports"])
    return {"kind": "Service", "metadata": _meta(svc.get("metadata")), "spec": out_spec}


def _endpoint(ep: Any) -> Obj:
    if not isinstance(ep, dict):
        return {}
    out: Obj = {"addresses": _strings(ep.get("addresses"))}
    cond = ep.get("conditions")
    if isinstance(cond, dict) and "ready" in cond:
        ready = cond["ready"]
        shared = type(ready) is bool
        out["conditions"] = _READY.setdefault(ready, {"ready": ready}) if shared else {"ready": ready}
    if ep.get("hostname"):
        out["hostname"] = _s(ep["hostname"])
    return out


def dns_slice(sl: Obj) -> Obj:
    """What the DNS index reads of an EndpointSlice: its Service, address type, ports and endpoints."""
    out: Obj = {"kind": "EndpointSlice", "metadata": _meta(sl.get("metadata"), (SERVICE_NAME_LABEL,))}
    if "addressType" in sl:
        out["addressType"] = _s(sl["addressType"])
    out["ports"] = _ports(sl.get("ports"))
    eps = sl.get("endpoints")
    out["endpoints"] = tuple(_endpoint(ep) for ep in eps) if isinstance(eps, list) else ()
    return out


def dns_pod(pod: Obj) -> Obj:
    """What the DNS index reads of a Pod: its IPs, its phase and whether it is on the host network."""
    status = pod.get("status") or {}
    out_status: Obj = {k: _s(status[k]) for k in ("podIP", "phase") if k in status}
    ips = status.get("podIPs")
    if isinstance(ips, list):
        out_status["podIPs"] = tuple({"ip": _s(p.get("ip"))} for p in ips if isinstance(p, dict))
    out: Obj = {"kind": "Pod", "metadata": _meta(pod.get("metadata")), "status": out_status}
    if (pod.get("spec") or {}).get("hostNetwork"):
        out["spec"] = {"hostNetwork": True}
    return out
