"""Compact copies of Services and EndpointSlices for the node agent's caches.

An agent holds every Service and EndpointSlice of the cluster; as they come from the API
(managedFields, uids, owner references, timestamps, selectors, one dict per endpoint condition)
they cost ~13 KB per Service with its slice. These transforms (`Informer(transform=...)`) keep only
what the proxy (`proxy/serviceports.py`, `proxy/lbip.py`) and the pods' service environment variables
(`dns/envvars.py`) read, share repeated strings and the few distinct endpoint condition maps, and
use tuples for lists; an endpoint's targetRef becomes the "namespace/name" string the proxy shows, a
slice's last-change-trigger-time annotation a float. The copies are read-only by convention, as
every informer cache is.

Only strings of few distinct values are shared (`sys.intern`: namespaces, types, protocols, port
names, policies, node names, the labels' fixed values). Strings that are born and die with one
object (names, clusterIPs, endpoint addresses, pod keys) are kept as decoded: the interpreter's
table of interned strings is one dict whose every insertion uses a slot until the dict is rebuilt,
at three times the strings then alive, rounded up to a power of two; interning every new name made
agents rebuild it every few thousand Service cycles, and once double it (1.9 MiB more per agent at
~18,000 cycles of bench/bench_soak.py, never given back), for a saving of one string per object.
"""

from __future__ import annotations

import sys
from typing import Any

from podnet.model.kinds import Obj
from podnet.model.services import HEADLESS_LABEL, MANAGED_BY_LABEL, SERVICE_NAME_LABEL
from podnet.proxy.serviceports import POD_KEY, PROXY_NAME_LABEL
from podnet.proxy.tracker import TRIGGER_KEY, trigger_time

_SOURCE_RANGES_ANNOTATION = "service.beta.kubernetes.io/load-balancer-source-ranges"
_TRIGGER_ANNOTATION = "endpoints.kubernetes.io/last-change-trigger-time"
_SERVICE_LABELS = (PROXY_NAME_LABEL,)
_SLICE_LABELS = (SERVICE_NAME_LABEL, MANAGED_BY_LABEL, HEADLESS_LABEL)
_UNIQUE_LABELS = frozenset({SERVICE_NAME_LABEL})  # its value is a Service's name: not interned
_SERVICE_SPEC = ("type", "externalTrafficPolicy", "internalTrafficPolicy", "sessionAffinity",
                 "healthCheckNodePort")  # interned; clusterIP is copied as it is
_SERVICE_SPEC_LISTS = ("externalIPs", "loadBalancerSourceRanges")
_conditions: dict[tuple[Any, Any, Any], dict[str, Any]] = {}


def _s(v: Any) -> Any:
    """A string of few distinct values, shared (interned); only for such strings (see above)."""
    return sys.intern(v) if type(v) is str else v


def _meta(meta: Obj, labels: tuple[str, ...], annotations: tuple[str, ...]) -> Obj:
    out: Obj = {"name": meta.get("name"), "resourceVersion": meta.get("resourceVersion")}
    if "namespace" in meta:
        out["namespace"] = _s(meta["namespace"])
    lab = meta.get("labels") or {}
    kept = {k: lab[k] if k in _UNIQUE_LABELS else _s(lab[k]) for k in labels if k in lab}
    if kept:
        out["labels"] = kept
    ann = meta.get("annotations") or {}
    kept = {k: ann[k] for k in annotations if k in ann}
    if kept:
        out["annotations"] = kept
    return out


def _port(p: Any, keys: tuple[str, ...]) -> Any:
    if not isinstance(p, dict):
        return p  # bad input is kept as it is: the proxy reports it
    return {k: _s(p[k]) for k in keys if k in p}


def compact_service(svc: Obj) -> Obj:
    """What the proxy and the service environment variables read of a Service."""
    spec = svc.get("spec") or {}
    out_spec: Obj = {k: _s(spec[k]) for k in _SERVICE_SPEC if k in spec}
    if "clusterIP" in spec:
        out_spec["clusterIP"] = spec["clusterIP"]
    for k in _SERVICE_SPEC_LISTS:
        if spec.get(k):
            out_spec[k] = tuple(spec[k]) if isinstance(spec[k], list) else spec[k]
    if spec.get("sessionAffinityConfig"):
        out_spec["sessionAffinityConfig"] = spec["sessionAffinityConfig"]
    ports = spec.get("ports")
    if ports:
        out_spec["ports"] = tuple(_port(p, ("name", "protocol", "port", "nodePort")) for p in ports) \
            if isinstance(ports, list) else ports
    out: Obj = {"kind": "Service", "metadata": _meta(svc.get("metadata") or {}, _SERVICE_LABELS,
                                                     (_SOURCE_RANGES_ANNOTATION, _TRIGGER_ANNOTATION)),
                "spec": out_spec}
    ingress = ((svc.get("status") or {}).get("loadBalancer") or {}).get("ingress")
    if ingress:
        out["status"] = {"loadBalancer": {"ingress": tuple(
            {"ip": i.get("ip")} if isinstance(i, dict) else i for i in ingress)}}
    return out


def _condition(c: Any) -> Any:
    if not isinstance(c, dict):
        return c
    k = (c.get("ready"), c.get("serving"), c.get("terminating"))
    if len(c) > 3 or any(v is not None and not isinstance(v, bool) for v in k):
        return c
    got = _conditions.get(k)
    if got is None:
        got = _conditions[k] = {n: v for n, v in zip(("ready", "serving", "terminating"), k, strict=True)
                                if v is not None}
    return got


def _endpoint(e: Any) -> Any:
    if not isinstance(e, dict):
        return e
    out: Obj = {}
    addrs = e.get("addresses")
    if addrs:
        out["addresses"] = (addrs[0],) if isinstance(addrs, list) else addrs
    if "conditions" in e:
        out["conditions"] = _condition(e["conditions"])
    if e.get("nodeName"):
        out["nodeName"] = _s(e["nodeName"])
    ref = e.get("targetRef")
    if isinstance(ref, dict) and ref.get("name"):
        out[POD_KEY] = f"{ref.get('namespace', '')}/{ref['name']}"  # all the proxy reads of it
    return out


def compact_slice(sl: Obj) -> Obj:
    """What the proxy reads of an EndpointSlice."""
    meta = sl.get("metadata") or {}
    out: Obj = {"kind": "EndpointSlice", "metadata": _meta(meta, _SLICE_LABELS, ()),
                "addressType": _s(sl.get("addressType", "IPv4"))}
    t = trigger_time(sl)
    if t is not None:
        out[TRIGGER_KEY] = t
    ports = sl.get("ports")
    if ports:
        out["ports"] = tuple(_port(p, ("name", "port", "protocol")) for p in ports) \
            if isinstance(ports, list) else ports
    eps = sl.get("endpoints")
    if eps:
        out["endpoints"] = tuple(_endpoint(e) for e in eps) if isinstance(eps, list) else eps
    return out
