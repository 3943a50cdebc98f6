"""EndpointSlice controller: a Service's selected pods as discovery.k8s.io/v1 EndpointSlices.

As kube-controller-manager does it: one endpoint per pod with conditions
ready/serving/terminating, slices grouped by the resolved port set, at most
`max_per_slice` (100) endpoints each, labelled `kubernetes.io/service-name` and
`endpointslice.kubernetes.io/managed-by`, owned by the Service; a placeholder slice
(no endpoints, no ports) when nothing matches. Existing slices are reused and only
written when their content changes.
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
from podnet.model.kinds import ENDPOINTSLICES, Obj
from podnet.model.services import (
    ENDPOINTSLICE_CONTROLLER,
    HEADLESS_LABEL,
    MANAGED_BY_LABEL,
    SERVICE_NAME_LABEL,
    without_cluster_ip,
)

MAX_ENDPOINTS_PER_SLICE = 100

PortsKey = object  # compared for equality only


def is_managed_slice_of(slice_: Obj, ns: str, svc_name: str) -> bool:
    lab = objects.labels(slice_)
    return (objects.namespace(slice_) == ns and lab.get(SERVICE_NAME_LABEL) == svc_name
            and lab.get(MANAGED_BY_LABEL) == ENDPOINTSLICE_CONTROLLER)


def _ports_key(ports: list[dict[str, Any]]) -> PortsKey:
    """The same value for the same port set, in any order (every field counts)."""
    try:
        return tuple(sorted(map(_port_items, ports))) if len(ports) > 1 else tuple(map(_port_items, ports))
    except TypeError:  # a field that is not a scalar (not from this controller): compare as JSON
        return json.dumps(sorted(json.dumps(p, sort_keys=True) for p in ports))


def _port_items(p: dict[str, Any]) -> tuple[tuple[str, Any], ...]:
    items = tuple(sorted(p.items()))
    hash(items)
    return items


def _endpoint(svc: Obj, pod: Obj, family: str) -> dict[str, Any]:
    serving = objects.pod_is_ready(pod)
    terminating = objects.is_deleting(pod)
    publish = bool((svc.get("spec") or {}).get("publishNotReadyAddresses"))
    return {
        "addresses": [pod_ip_for(pod, family)],
        "conditions": {"ready": publish or (serving and not terminating), "serving": serving,
                       "terminating": terminating},
        **pod_endpoint_fields(svc, pod),
    }


def _ep_id(ep: dict[str, Any]) -> str:
    ref = ep.get("targetRef") or {}
    return str(ref.get("uid") or f"{ref.get('namespace')}/{ref.get('name')}") + "|" + ",".join(
        ep.get("addresses") or [])


def desired_labels(svc: Obj) -> dict[str, str]:
    lab = {k: v for k, v in objects.labels(svc).items()
           if k not in (SERVICE_NAME_LABEL, MANAGED_BY_LABEL, HEADLESS_LABEL)}
    lab[SERVICE_NAME_LABEL] = objects.name(svc)
    lab[MANAGED_BY_LABEL] = ENDPOINTSLICE_CONTROLLER
    if without_cluster_ip(svc):
        lab[HEADLESS_LABEL] = ""
    return lab


def _owner(svc: Obj) -> dict[str, Any]:
    return {"apiVersion": "v1", "kind": "Service", "name": objects.name(svc), "uid": objects.uid(svc),
            "controller": True, "blockOwnerDeletion": True}


def _new_slice(svc: Obj, family: str, ports: list[dict[str, Any]], eps: list[dict[str, Any]]) -> Obj:
    return {
        "apiVersion": "discovery.k8s.io/v1",
        "kind": "EndpointSlice",
        "metadata": {"generateName": f"{objects.name(svc)}-", "namespace": objects.namespace(svc),
                     "labels": desired_labels(svc), "ownerReferences": [_owner(svc)]},
        "addressType": family,
        "ports": ports,
        "endpoints": eps,
    }


def reconcile_endpoint_slices(svc: Obj, pods: list[Obj], slices: list[Obj],
                              max_per_slice: int = MAX_ENDPOINTS_PER_SLICE) -> list[Action]:
    """Actions that make the Service's managed slices match its selected pods.

    `pods`: pods of the Service's namespace (others are ignored); `slices`: existing slices (only
    the ones managed for this Service are considered).
    """
    if not has_selector(svc):
        return []
    ns, svc_name = objects.namespace(svc), objects.name(svc)
    family = address_family(svc)
    mine = sorted((s for s in slices if is_managed_slice_of(s, ns, svc_name)), key=objects.name)

    # desired: endpoint id -> (ports key, ports, endpoint)
    desired: dict[str, tuple[PortsKey, list[dict[str, Any]], dict[str, Any]]] = {}
    for pod in selected_pods(svc, pods):
        ports = endpoint_ports(svc, pod)
        ep = _endpoint(svc, pod, family)
        desired[_ep_id(ep)] = (_ports_key(ports), ports, ep)

    placed: set[str] = set()
    plan: list[tuple[Obj, list[dict[str, Any]], list[dict[str, Any]]]] = []  # slice, ports, eps
    for s in mine:
        s_ports = list(s.get("ports") or [])
        key = _ports_key(s_ports)
        keep: list[dict[str, Any]] = []
        if s.get("addressType") == family:
            for ep in s.get("endpoints") or []:
                eid = _ep_id(ep)
                want = desired.get(eid)
                if want is not None and want[0] == key and eid not in placed and len(keep) < max_per_slice:
                    keep.append(want[2])
                    placed.add(eid)
        plan.append((s, s_ports, keep))

    # place the rest: fullest fitting slice of the same port set first, then recycled, then new
    todo: dict[PortsKey, tuple[list[dict[str, Any]], list[dict[str, Any]]]] = {}
    for eid, (key, ports, ep) in desired.items():
        if eid not in placed:
            todo.setdefault(key, (ports, []))[1].append(ep)
    new_slices: list[tuple[list[dict[str, Any]], list[dict[str, Any]]]] = []
    for key, (ports, eps) in todo.items():
        same = sorted((p for p in plan if p[0].get("addressType") == family
                       and _ports_key(p[1]) == key and len(p[2]) < max_per_slice),
                      key=lambda p: -len(p[2]))
        for _, _, keep in same:
            room = max_per_slice - len(keep)
            keep.extend(eps[:room])
            eps = eps[room:]
        for i in range(0, len(eps), max_per_slice):
            new_slices.append((ports, eps[i:i + max_per_slice]))

    # recycle slices that ended up empty instead of delete + create
    for idx, (s, _ports, keep) in enumerate(plan):
        if keep or not new_slices or s.get("addressType") != family:
            continue
        ports, eps = new_slices.pop(0)
        plan[idx] = (s, ports, eps)

    actions: list[Action] = []
    non_empty = [p for p in plan if p[2]]
    empty = [p for p in plan if not p[2]]
    if not desired and not new_slices:
        # a placeholder slice: no endpoints, no ports
        same_family = [p for p in empty if p[0].get("addressType") == family]
        if same_family:
            s = same_family[0][0]
            empty = [p for p in empty if p[0] is not s]
            non_empty.append((s, [], []))
        else:
            new_slices.append(([], []))
    for s, ports, eps in non_empty:
        upd = _updated(svc, s, family, ports, eps)
        if upd is not None:
            actions.append(Action("update", ENDPOINTSLICES, upd))
    for ports, eps in new_slices:
        actions.append(Action("create", ENDPOINTSLICES, _new_slice(svc, family, ports, eps)))
    for s, _, _ in empty:
        actions.append(delete_action(ENDPOINTSLICES, s))
    return actions


def _updated(svc: Obj, s: Obj, family: str, ports: list[dict[str, Any]],
             eps: list[dict[str, Any]]) -> Obj | None:
    """The slice with the wanted content, or None when it already has it."""
    want_labels = desired_labels(svc)
    owner = _owner(svc)
    refs = objects.meta(s).get("ownerReferences") or []
    owned = any(r.get("uid") == owner["uid"] and r.get("controller") for r in refs)
    if (s.get("addressType") == family and (s.get("ports") or []) == ports
            and (s.get("endpoints") or []) == eps and objects.labels(s) == want_labels and owned):
        return None
    new = copy.deepcopy(s)
    new["addressType"] = family
    new["ports"] = ports
    new["endpoints"] = eps
    new["metadata"]["labels"] = want_labels
    if not owned:
        new["metadata"]["ownerReferences"] = [r for r in refs if not r.get("controller")] + [owner]
    return new


def cleanup_slices(ns: str, svc_name: str, slices: list[Obj]) -> list[Action]:
    """The Service is gone: delete the slices managed for it (what ownerReference GC would do)."""
    return [delete_action(ENDPOINTSLICES, s) for s in slices if is_managed_slice_of(s, ns, svc_name)]
