"""Endpoints controller: the legacy core/v1 Endpoints object kept in step with the slices.

Ready pods (or all, with `publishNotReadyAddresses`) go to `addresses`, the others to
`notReadyAddresses`; terminating pods are left out (unless publishNotReadyAddresses);
addresses with the same resolved port set share a subset (`RepackSubsets`).
"""

from __future__ import annotations

import copy
import json
from typing import Any

from podnet.controllers import objects
from podnet.controllers.actions import Action, delete_action
from podnet.controllers.endpoint_ports import (
    address_family,
    endpoint_ports,
    has_selector,
    pod_endpoint_fields,
    pod_ip_for,
    selected_pods,
)
from podnet.model.kinds import ENDPOINTS, Obj
from podnet.model.services import HEADLESS_LABEL, without_cluster_ip

MAX_ADDRESSES = 1000
OVER_CAPACITY = "endpoints.kubernetes.io/over-capacity"


def desired_subsets(svc: Obj, pods: list[Obj]) -> list[dict[str, Any]]:
    publish = bool((svc.get("spec") or {}).get("publishNotReadyAddresses"))
    family = address_family(svc)
    has_ports = bool((svc.get("spec") or {}).get("ports"))
    groups: dict[str, tuple[list[dict[str, Any]], list[dict[str, Any]], list[dict[str, Any]]]] = {}
    for pod in selected_pods(svc, pods):
        if objects.is_deleting(pod) and not publish:
            continue
        ports = [{k: v for k, v in p.items()} for p in endpoint_ports(svc, pod)]
        for p in ports:
            if not p["name"]:
                del p["name"]
        if has_ports and not ports:
            continue
        addr: dict[str, Any] = {"ip": pod_ip_for(pod, family), **pod_endpoint_fields(svc, pod)}
        ports.sort(key=lambda p: (p.get("name", ""), p["port"], p["protocol"]))
        key = json.dumps(ports, sort_keys=True)
        entry = groups.setdefault(key, ([], [], ports))
        (entry[0] if publish or objects.pod_is_ready(pod) else entry[1]).append(addr)
    subsets: list[dict[str, Any]] = []
    for key in sorted(groups):
        ready, not_ready, ports = groups[key]
        sub: dict[str, Any] = {}
        if ready:
            sub["addresses"] = sorted(ready, key=lambda a: (a["ip"], a["targetRef"]["name"]))
        if not_ready:
            sub["notReadyAddresses"] = sorted(not_ready, key=lambda a: (a["ip"], a["targetRef"]["name"]))
        if ports:
            sub["ports"] = ports
        subsets.append(sub)
    return subsets


def _truncate(subsets: list[dict[str, Any]]) -> tuple[list[dict[str, Any]], bool]:
    total = sum(len(s.get("addresses") or []) + len(s.get("notReadyAddresses") or []) for s in subsets)
    if total <= MAX_ADDRESSES:
        return subsets, False
    left = MAX_ADDRESSES
    out: list[dict[str, Any]] = []
    for s in subsets:
        s = dict(s)
        for k in ("addresses", "notReadyAddresses"):
            if k in s:
                s[k] = s[k][:left]
                left -= len(s[k])
                if not s[k]:
                    del s[k]
        if "addresses" in s or "notReadyAddresses" in s:
            out.append(s)
    return out, True


def reconcile_endpoints(svc: Obj, pods: list[Obj], existing: Obj | None) -> list[Action]:
    """Actions that make `Endpoints/<svc>` list the Service's selected pods (none for selectorless
    or ExternalName Services: their Endpoints belong to the user)."""
    if not has_selector(svc):
        return []
    subsets, truncated = _truncate(desired_subsets(svc, pods))
    labels = objects.labels(svc)
    if without_cluster_ip(svc):
        labels[HEADLESS_LABEL] = ""
    else:
        labels.pop(HEADLESS_LABEL, None)
    if existing is None:
        meta: dict[str, Any] = {"name": objects.name(svc), "namespace": objects.namespace(svc),
                                "labels": labels}
        if truncated:
            meta["annotations"] = {OVER_CAPACITY: "truncated"}
        obj: Obj = {"apiVersion": "v1", "kind": "Endpoints", "metadata": meta}
        if subsets:
            obj["subsets"] = subsets
        return [Action("create", ENDPOINTS, obj)]
    annotations = dict(objects.meta(existing).get("annotations") or {})
    if truncated:
        annotations[OVER_CAPACITY] = "truncated"
    else:
        annotations.pop(OVER_CAPACITY, None)
    if ((existing.get("subsets") or []) == subsets and objects.labels(existing) == labels
            and (objects.meta(existing).get("annotations") or {}) == annotations):
        return []
    new = copy.deepcopy(existing)
    new["metadata"]["labels"] = labels
    if annotations or "annotations" in new["metadata"]:
        new["metadata"]["annotations"] = annotations
    if subsets:
        new["subsets"] = subsets
    else:
        new.pop("subsets", None)
    return [Action("update", ENDPOINTS, new)]


def cleanup_endpoints(existing: Obj | None) -> list[Action]:
    """The Service is gone: its same-named Endpoints go too (as the Endpoints controller does)."""
    if existing is None:
        return []
    return [delete_action(ENDPOINTS, existing)]
