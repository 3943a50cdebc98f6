"""Secret, ServiceAccount and RBAC validation (pkg/apis/core/validation, pkg/apis/rbac/validation).

Secret values never appear in a message: only keys are shown, and the contents of a malformed
docker config are shown as `<secret contents redacted>`, as Kubernetes does.
"""

from __future__ import annotations

import base64
import binascii
import json
from typing import Any

from podnet.model import names
from podnet.model.errors import FieldError, forbidden, invalid, not_supported, required, too_long
from podnet.model.validation_meta import (
    FIELD_IMMUTABLE_MSG,
    validate_object_meta,
    validate_object_meta_update,
)
from podnet.model.validation_misc import config_key_errors

MAX_SECRET_BYTES = 1024 * 1024
IMMUTABLE_SET_MSG = "field is immutable when `immutable` is set"
RBAC_GROUP = "rbac.authorization.k8s.io"
SECRET_TYPES = (
    "Opaque",
    "kubernetes.io/service-account-token",
    "kubernetes.io/dockercfg",
    "kubernetes.io/dockerconfigjson",
    "kubernetes.io/basic-auth",
    "kubernetes.io/ssh-auth",
    "kubernetes.io/tls",
    "bootstrap.kubernetes.io/token",
)
REDACTED = "<secret contents redacted>"


def _d(v: Any) -> dict[str, Any]:
    return v if isinstance(v, dict) else {}


def _list(v: Any) -> list[Any]:
    return v if isinstance(v, list) else []


def secret_bytes(value: Any) -> bytes | None:
    """A `data` value decoded from base64 (None if it is not valid base64)."""
    if not isinstance(value, str):
        return None
    try:
        return base64.b64decode(value, validate=True)
    except (binascii.Error, ValueError):
        return None


def _go_json_error(raw: bytes) -> str | None:
    try:
        data = json.loads(raw)
    except ValueError as e:
        return f"invalid character at offset {getattr(e, 'pos', 0)}: {str(e).split(':')[0].lower()}"
    if not isinstance(data, dict):
        return f"json: cannot unmarshal {type(data).__name__} into Go value of type map[string]interface {{}}"
    return None


def validate_secret(obj: dict[str, Any], old: dict[str, Any] | None = None) -> list[FieldError]:
    """`ValidateSecret` / `ValidateSecretUpdate` (stringData has been merged into data already)."""
    meta = obj.get("metadata")
    if old is None:
        errs = validate_object_meta(meta, True, names.name_is_dns_subdomain)
    else:
        errs = validate_object_meta_update(meta, old.get("metadata"))
        if (obj.get("type") or "Opaque") != (old.get("type") or "Opaque"):
            errs.append(invalid("type", obj.get("type") or "", FIELD_IMMUTABLE_MSG))
        if old.get("immutable") is True:
            if obj.get("immutable") is not True:
                errs.append(forbidden("immutable", IMMUTABLE_SET_MSG))
            if _d(obj.get("data")) != _d(old.get("data")):
                errs.append(forbidden("data", IMMUTABLE_SET_MSG))
    data = _d(obj.get("data"))
    total = 0
    for key, value in data.items():
        errs.extend(invalid(f"data[{key}]", key, m) for m in config_key_errors(str(key)))
        raw = secret_bytes(value)
        total += len(raw) if raw is not None else len(str(value))
    if total > MAX_SECRET_BYTES:
        errs.append(too_long("data", MAX_SECRET_BYTES))
    stype = obj.get("type") or "Opaque"
    if stype == "kubernetes.io/service-account-token":
        if not _d(_d(meta).get("annotations")).get("kubernetes.io/service-account.name"):
            errs.append(required("metadata.annotations[kubernetes.io/service-account.name]", ""))
    elif stype in ("kubernetes.io/dockercfg", "kubernetes.io/dockerconfigjson"):
        key = ".dockercfg" if stype == "kubernetes.io/dockercfg" else ".dockerconfigjson"
        if key not in data:
            errs.append(required(f"data[{key}]", ""))
        else:
            why = _go_json_error(secret_bytes(data[key]) or b"")
            if why:
                errs.append(invalid(f"data[{key}]", REDACTED, why))
    elif stype == "kubernetes.io/basic-auth":
        if "username" not in data and "password" not in data:
            errs.append(required("data[username]", ""))
            errs.append(required("data[password]", ""))
    elif stype == "kubernetes.io/ssh-auth":
        if not secret_bytes(data.get("ssh-privatekey")):
            errs.append(required("data[ssh-privatekey]", ""))
    elif stype == "kubernetes.io/tls":
        for key in ("tls.crt", "tls.key"):
            if key not in data:
                errs.append(required(f"data[{key}]", ""))
    return errs


def validate_service_account(obj: dict[str, Any], old: dict[str, Any] | None = None) -> list[FieldError]:
    if old is None:
        return validate_object_meta(obj.get("metadata"), True, names.name_is_dns_subdomain)
    return validate_object_meta_update(obj.get("metadata"), old.get("metadata"))


# --------------------------------------------------------------------------- RBAC


def _rbac_name(name: str, prefix: bool = False) -> list[str]:
    return names.path_segment_name_errors(name, prefix)


def _policy_rule(rule: dict[str, Any], namespaced: bool, path: str) -> list[FieldError]:
    errs: list[FieldError] = []
    if not _list(rule.get("verbs")):
        errs.append(required(f"{path}.verbs", "verbs must contain at least one value"))
    urls = _list(rule.get("nonResourceURLs"))
    if urls:
        shown = "[" + " ".join(str(u) for u in urls) + "]"
        from podnet.model.errors import GoValue

        if namespaced:
            errs.append(
                invalid(
                    f"{path}.nonResourceURLs",
                    GoValue(shown),
                    "namespaced rules cannot apply to non-resource URLs",
                )
            )
        if _list(rule.get("apiGroups")) or _list(rule.get("resources")) or _list(rule.get("resourceNames")):
            errs.append(
                invalid(
                    f"{path}.nonResourceURLs",
                    GoValue(shown),
                    "rules cannot apply to both regular resources and non-resource URLs",
                )
            )
        return errs
    if not _list(rule.get("apiGroups")):
        errs.append(required(f"{path}.apiGroups", "resource rules must supply at least one api group"))
    if not _list(rule.get("resources")):
        errs.append(required(f"{path}.resources", "resource rules must supply at least one resource"))
    return errs


def _role(obj: dict[str, Any], old: dict[str, Any] | None, namespaced: bool) -> list[FieldError]:
    if old is None:
        errs = validate_object_meta(obj.get("metadata"), namespaced, _rbac_name)
    else:
        errs = validate_object_meta_update(obj.get("metadata"), old.get("metadata"))
    for i, rule in enumerate(_list(obj.get("rules"))):
        errs.extend(_policy_rule(_d(rule), namespaced, f"rules[{i}]"))
    return errs


def validate_role(obj: dict[str, Any], old: dict[str, Any] | None = None) -> list[FieldError]:
    return _role(obj, old, True)


def validate_cluster_role(obj: dict[str, Any], old: dict[str, Any] | None = None) -> list[FieldError]:
    errs = _role(obj, old, False)
    agg = obj.get("aggregationRule")
    if isinstance(agg, dict) and not _list(agg.get("clusterRoleSelectors")):
        errs.append(
            required(
                "aggregationRule.clusterRoleSelectors",
                "at least one clusterRoleSelector required if aggregationRule is non-nil",
            )
        )
    return errs


def _subject(s: dict[str, Any], namespaced: bool, path: str) -> list[FieldError]:
    errs: list[FieldError] = []
    name = str(s.get("name") or "")
    if not name:
        errs.append(required(f"{path}.name", ""))
    kind = s.get("kind") or ""
    group = s.get("apiGroup") or ""
    if kind == "ServiceAccount":
        if name:
            errs.extend(invalid(f"{path}.name", name, m) for m in names.name_is_dns_subdomain(name))
        if group:
            errs.append(not_supported(f"{path}.apiGroup", group, [""]))
        if not namespaced and not s.get("namespace"):
            errs.append(required(f"{path}.namespace", ""))
    elif kind in ("User", "Group"):
        if group != RBAC_GROUP:
            errs.append(not_supported(f"{path}.apiGroup", group, [RBAC_GROUP]))
    else:
        errs.append(not_supported(f"{path}.kind", kind, ["ServiceAccount", "User", "Group"], keep_order=True))
    return errs


def _binding(obj: dict[str, Any], old: dict[str, Any] | None, namespaced: bool) -> list[FieldError]:
    if old is None:
        errs = validate_object_meta(obj.get("metadata"), namespaced, _rbac_name)
    else:
        errs = validate_object_meta_update(obj.get("metadata"), old.get("metadata"))
    ref = _d(obj.get("roleRef"))
    if (ref.get("apiGroup") or "") != RBAC_GROUP:
        errs.append(not_supported("roleRef.apiGroup", ref.get("apiGroup") or "", [RBAC_GROUP]))
    kinds = ["Role", "ClusterRole"] if namespaced else ["ClusterRole"]
    if (ref.get("kind") or "") not in kinds:
        errs.append(not_supported("roleRef.kind", ref.get("kind") or "", kinds, keep_order=True))
    rname = str(ref.get("name") or "")
    if not rname:
        errs.append(required("roleRef.name", ""))
    else:
        errs.extend(invalid("roleRef.name", rname, m) for m in _rbac_name(rname))
    for i, s in enumerate(_list(obj.get("subjects"))):
        errs.extend(_subject(_d(s), namespaced, f"subjects[{i}]"))
    if old is not None and _d(old.get("roleRef")) != ref:
        from podnet.model.errors import GoValue

        shown = GoValue(
            f'rbac.RoleRef{{APIGroup:"{ref.get("apiGroup") or ""}", Kind:"{ref.get("kind") or ""}", '
            f'Name:"{rname}"}}'
        )
        errs.append(invalid("roleRef", shown, "cannot change roleRef"))
    return errs


def validate_role_binding(obj: dict[str, Any], old: dict[str, Any] | None = None) -> list[FieldError]:
    return _binding(obj, old, True)


def validate_cluster_role_binding(obj: dict[str, Any], old: dict[str, Any] | None = None) -> list[FieldError]:
    return _binding(obj, old, False)
