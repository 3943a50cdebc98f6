"""Per-resource rules the write pipeline applies, as kube-apiserver's registry strategies do.

Pure functions on dicts: what a create resets, what an update keeps from the stored
object, which resources count generations, and the bridge to the model's defaulting
and validation (`podnet.model.defaults`, `podnet.model.validation`).
"""

from __future__ import annotations

import copy
from typing import Any

from podnet.api import meta as m
from podnet.model import defaults as model_defaults
from podnet.model import kinds
from podnet.model import validation as model_validation
from podnet.model.errors import FieldError, invalid, required
from podnet.model.kinds import Obj, ResourceType
from podnet.model.qos import qos_class

ALLOW_CREATE_ON_UPDATE = frozenset({"services", "endpoints", "events"})
"""Resources a PUT may create (`AllowCreateOnUpdate()` is true for these in Kubernetes)."""

GENERATION = frozenset({kinds.DEPLOYMENTS.key, kinds.REPLICASETS.key})
"""Resources whose metadata.generation counts spec changes."""

SERVER_META = ("uid", "creationTimestamp", "deletionTimestamp", "deletionGracePeriodSeconds", "generation")


def apply_defaults(obj: Obj) -> None:
    model_defaults.apply_defaults(obj)


def validate(obj: Obj, old: Obj | None = None) -> list[FieldError]:
    errs: list[FieldError] = []
    if not m.d(obj.get("metadata")).get("name"):
        errs.append(required("metadata.name", "name or generateName is required"))
    model_errs = model_validation.validate(obj, old)
    # the model may report the missing name itself: keep one copy
    seen = {x.error() for x in errs}
    return errs + [e for e in model_errs if e.error() not in seen]


def has_status_subresource(rt: ResourceType) -> bool:
    return "status" in rt.subresources


def prepare_for_create(rt: ResourceType, obj: Obj) -> None:
    """Reset what a client may not set on create (`PrepareForCreate`)."""
    if rt is kinds.PODS:
        obj["status"] = {"phase": "Pending", "qosClass": qos_class(obj)}
    elif rt is kinds.NAMESPACES:
        obj["status"] = {"phase": "Active"}
        spec: dict[str, Any] = obj["spec"] if isinstance(obj.get("spec"), dict) else {}
        spec["finalizers"] = ["kubernetes"]
        obj["spec"] = spec
    elif rt is kinds.SERVICES:
        obj["status"] = {"loadBalancer": {}}
    elif rt in (kinds.DEPLOYMENTS, kinds.REPLICASETS):
        obj["status"] = {}
    if rt.key in GENERATION:
        obj["metadata"]["generation"] = 1
    else:
        obj["metadata"].pop("generation", None)


def prepare_for_update(rt: ResourceType, new: Obj, old: Obj) -> None:
    """Keep server-set metadata and, where a status subresource exists, the stored status."""
    meta, old_meta = new["metadata"], m.d(old.get("metadata"))
    for k in SERVER_META:
        if k in old_meta:
            meta[k] = copy.deepcopy(old_meta[k])
        else:
            meta.pop(k, None)
    if "managedFields" not in meta and "managedFields" in old_meta:
        meta["managedFields"] = copy.deepcopy(old_meta["managedFields"])
    if has_status_subresource(rt):
        if "status" in old:
            new["status"] = copy.deepcopy(old["status"])
        else:
            new.pop("status", None)
    if rt is kinds.NAMESPACES:
        old_fins = m.d(old.get("spec")).get("finalizers")
        spec: dict[str, Any] = new["spec"] if isinstance(new.get("spec"), dict) else {}
        if old_fins is not None:
            spec["finalizers"] = copy.deepcopy(old_fins)
        else:
            spec.pop("finalizers", None)
        new["spec"] = spec


def bump_generation(rt: ResourceType, new: Obj, old: Obj) -> None:
    if rt.key not in GENERATION:
        return
    gen = int(m.d(old.get("metadata")).get("generation") or 1)
    if new.get("spec") != old.get("spec"):
        gen += 1
    new["metadata"]["generation"] = gen


def label_selector_string(selector: Any) -> str:
    """metav1.FormatLabelSelector: `a=b,c in (x,y)`, sorted as Kubernetes prints it."""
    if not isinstance(selector, dict):
        return ""
    parts = [f"{k}={v}" for k, v in sorted(m.d(selector.get("matchLabels")).items())]
    for e in selector.get("matchExpressions") or []:
        op, key = str(e.get("operator", "")), str(e.get("key", ""))
        values = sorted(str(v) for v in e.get("values") or [])
        if op == "In":
            parts.append(f"{key} in ({','.join(values)})")
        elif op == "NotIn":
            parts.append(f"{key} notin ({','.join(values)})")
        elif op == "Exists":
            parts.append(key)
        elif op == "DoesNotExist":
            parts.append(f"!{key}")
    return ",".join(parts)


def validate_replicas(value: Any) -> list[FieldError]:
    if isinstance(value, bool) or not isinstance(value, int):
        return [invalid("spec.replicas", value, "must be an integer")]
    if value < 0:
        return [invalid("spec.replicas", value, "must be greater than or equal to 0")]
    return []
