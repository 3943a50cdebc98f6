"""Per-resource rules the write pipeline applies, as kube-apiserver's registry strategies do.

Pure functions on dicts: what a create resets, what an update keeps from the stored
object, which resources count generations, and the bridge to the model's defaulting
and validation (`podnet.model.defaults`, `podnet.model.validation`).
"""

from __future__ import annotations

import base64
import binascii
import copy
from typing import Any

from podnet.api import objmeta
from podnet.model import defaults as model_defaults
from podnet.model import kinds, openapi_schema, wiretypes
from podnet.model import validation as model_validation
from podnet.model.errors import FieldError, invalid, required
from podnet.model.kinds import Obj, ResourceType
from podnet.model.qos import qos_class

ALLOW_CREATE_ON_UPDATE = frozenset({"services", "endpoints", "events", kinds.ROLES.key,
                                    kinds.ROLEBINDINGS.key, kinds.CLUSTERROLES.key,
                                    kinds.CLUSTERROLEBINDINGS.key})
"""Resources a PUT may create (`AllowCreateOnUpdate()` is true for these in Kubernetes)."""

GENERATION = frozenset(rt.key for rt in (
    kinds.DEPLOYMENTS, kinds.REPLICASETS, kinds.DAEMONSETS, kinds.STATEFULSETS, kinds.REPLICATIONCONTROLLERS,
    kinds.JOBS, kinds.CRONJOBS, kinds.PODDISRUPTIONBUDGETS, kinds.HORIZONTALPODAUTOSCALERS,
    kinds.CUSTOMRESOURCEDEFINITIONS))
"""Resources whose metadata.generation counts spec changes."""

SERVER_META = ("uid", "creationTimestamp", "deletionTimestamp", "deletionGracePeriodSeconds", "generation")


def apply_defaults(obj: Obj) -> None:
    if obj.get("kind") == "Secret" and obj.get("apiVersion") == "v1":
        merge_string_data(obj)
    schema = openapi_schema.schema_for(str(obj.get("apiVersion") or ""), str(obj.get("kind") or ""))
    if schema is not None:
        openapi_schema.prune(obj, schema)  # custom resources keep only the fields their schema declares
    model_defaults.apply_defaults(obj)


def validate(obj: Obj, old: Obj | None = None, types_checked: bool = False) -> list[FieldError]:
    """`types_checked`: `type_errors` found nothing in this object and nothing changed it since (the
    registry, when no write hook ran in between): the wire-type pass is not repeated."""
    errs: list[FieldError] = []
    if not objmeta.d(obj.get("metadata")).get("name"):
        errs.append(required("metadata.name", "name or generateName is required"))
    model_errs = model_validation.validate(obj, old, types_checked=types_checked)
    # the model may report the missing name itself: keep one copy
    seen = {x.error() for x in errs}
    return errs + [e for e in model_errs if e.error() not in seen]


def type_errors(obj: Obj) -> list[FieldError]:
    """Fields of the wrong JSON type (podnet.model.wiretypes), checked before the write hooks run."""
    return wiretypes.type_errors(obj)


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
    elif rt in (kinds.DEPLOYMENTS, kinds.REPLICASETS, kinds.JOBS, kinds.CRONJOBS):
        obj["status"] = {}
    elif rt in INITIAL_STATUS:
        obj["status"] = copy.deepcopy(INITIAL_STATUS[rt])
    elif rt is kinds.CUSTOMRESOURCEDEFINITIONS:
        apply_defaults(obj)  # the accepted names are the defaulted ones (singular, listKind)
        obj["status"] = crd_status(obj)
    elif rt is kinds.APISERVICES:
        obj["status"] = {"conditions": [{"type": "Available", "status": "True", "reason": "Local",
                                         "message": "Local APIServices are always available",
                                         "lastTransitionTime": objmeta.rfc3339(objmeta.now())}]}
    if rt is kinds.JOBS:
        from podnet.model.validation_workloads import generate_job_selector

        generate_job_selector(obj)
    if rt.key in GENERATION:
        obj["metadata"]["generation"] = 1
    else:
        obj["metadata"].pop("generation", None)


def prepare_for_update(rt: ResourceType, new: Obj, old: Obj) -> None:
    """Keep server-set metadata and, where a status subresource exists, the stored status."""
    meta, old_meta = new["metadata"], objmeta.d(old.get("metadata"))
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
        old_fins = objmeta.d(old.get("spec")).get("finalizers")
        spec: dict[str, Any] = new["spec"] if isinstance(new.get("spec"), dict) else {}
        if old_fins is not None:
            spec["finalizers"] = copy.deepcopy(old_fins)
        else:
            spec.pop("finalizers", None)
        new["spec"] = spec


INITIAL_STATUS: dict[ResourceType, dict[str, Any]] = {
    kinds.DAEMONSETS: {"currentNumberScheduled": 0, "numberMisscheduled": 0, "desiredNumberScheduled": 0,
                       "numberReady": 0},
    kinds.STATEFULSETS: {"replicas": 0, "availableReplicas": 0},
    kinds.REPLICATIONCONTROLLERS: {"replicas": 0},
    kinds.PODDISRUPTIONBUDGETS: {"disruptionsAllowed": 0, "currentHealthy": 0, "desiredHealthy": 0,
                                 "expectedPods": 0},
    kinds.HORIZONTALPODAUTOSCALERS: {"currentReplicas": 0, "desiredReplicas": 0},
}
"""What a create resets `status` to, for kinds whose controllers fill it in."""


def crd_status(crd: Obj) -> dict[str, Any]:
    """A CRD's status once its names are accepted: podnet serves it at once (no name conflicts to
    wait for beyond the built-in ones, which validation already refused)."""
    spec = objmeta.d(crd.get("spec"))
    now = objmeta.rfc3339(objmeta.now())
    listed = spec.get("versions")
    versions = [v for v in listed if isinstance(v, dict)] if isinstance(listed, list) else []
    storage = [str(v.get("name")) for v in versions if v.get("storage")]
    return {
        "acceptedNames": copy.deepcopy(objmeta.d(spec.get("names"))),
        "conditions": [
            {"type": "NamesAccepted", "status": "True", "reason": "NoConflicts",
             "message": "no conflicts found", "lastTransitionTime": now},
            {"type": "Established", "status": "True", "reason": "InitialNamesAccepted",
             "message": "the initial names have been accepted", "lastTransitionTime": now},
        ],
        "storedVersions": storage,
    }


def merge_string_data(secret: Obj) -> None:
    """v1 -> internal conversion of a Secret: `stringData` entries (plain text) overwrite `data`
    entries (base64) of the same key, and `stringData` itself is never stored. A `data` value that
    is not base64 fails decoding (400), as it does in Kubernetes; the value is not echoed."""
    from podnet.api.errors import bad_request

    data = secret.get("data")
    if data is not None and not isinstance(data, dict):
        raise bad_request('Secret in version "v1" cannot be handled as a Secret: json: cannot unmarshal '
                          f"{type(data).__name__} into Go struct field Secret.data of type "
                          "map[string][]uint8")
    for value in (data or {}).values():
        if not isinstance(value, str):
            raise bad_request('Secret in version "v1" cannot be handled as a Secret: json: cannot unmarshal '
                              "non-string into Go struct field Secret.data of type []uint8")
        try:
            base64.b64decode(value, validate=True)
        except (binascii.Error, ValueError):
            raise bad_request('Secret in version "v1" cannot be handled as a Secret: illegal base64 data at '
                              f"input byte {_bad_base64_offset(value)}") from None
    string_data = secret.pop("stringData", None)
    if isinstance(string_data, dict) and string_data:
        merged = dict(data or {})
        for key, value in string_data.items():
            merged[str(key)] = base64.b64encode(str(value).encode()).decode()
        secret["data"] = merged


def _bad_base64_offset(value: str) -> int:
    alphabet = set("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/")
    for i, ch in enumerate(value):
        if ch == "=":
            return i if (len(value) % 4 == 0 and i >= len(value) - 2) is False else len(value)
        if ch not in alphabet:
            return i
    return len(value) - len(value) % 4


def bump_generation(rt: ResourceType, new: Obj, old: Obj) -> None:
    if rt.key not in GENERATION:
        return
    gen = int(objmeta.d(old.get("metadata")).get("generation") or 1)
    if new.get("spec") != old.get("spec"):
        gen += 1
    new["metadata"]["generation"] = gen


def label_selector_string(selector: Any) -> str:
    """metav1.FormatLabelSelector: `a=b,c in (x,y)`, sorted as Kubernetes prints it."""
    if not isinstance(selector, dict):
        return ""
    parts = [f"{k}={v}" for k, v in sorted(objmeta.d(selector.get("matchLabels")).items())]
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
