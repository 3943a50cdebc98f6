"""Pod and pod-template validation: `ValidatePodCreate`, `ValidatePodUpdate`, `ValidatePodSpec`
(pkg/apis/core/validation). Paths, error types and messages follow Kubernetes; rarely used
corners (security contexts, affinity, volumes' inner fields) are checked only for shape.
Container-level rules live in validation_container.py.
"""

from __future__ import annotations

import json
from typing import Any

from podnet.model import names
from podnet.model.errors import FieldError, forbidden, go_string_slice, invalid, not_supported, required
from podnet.model.validation_container import (
    as_dict,
    dict_items,
    validate_containers,
    validate_init_containers,
    validate_volumes,
)
from podnet.model.validation_meta import (
    as_int,
    validate_annotations,
    validate_label_name,
    validate_labels,
    validate_object_meta,
    validate_object_meta_update,
)

MAX_INT32 = 2**31 - 1
RESTART_POLICIES = ("Always", "OnFailure", "Never")
DNS_POLICIES = ("ClusterFirstWithHostNet", "ClusterFirst", "Default", "None")
UPDATABLE_POD_FIELDS = (
    "pod updates may not change fields other than `spec.containers[*].image`,`spec.initContainers[*].image`,"
    "`spec.activeDeadlineSeconds`,`spec.tolerations` (only additions to existing tolerations),"
    "`spec.terminationGracePeriodSeconds` (allow it to be set to 1 if it was previously negative)"
)


def _validate_dns_config(cfg: Any, policy: Any, path: str) -> list[FieldError]:
    errs: list[FieldError] = []
    if policy == "None":
        if cfg is None:
            return [required(path, "must provide `dnsConfig` when `dnsPolicy` is None")]
        if not as_dict(cfg).get("nameservers"):
            return [
                required(
                    f"{path}.nameservers", "must provide at least one DNS nameserver when `dnsPolicy` is None"
                )
            ]
    if cfg is None:
        return errs
    cfg = as_dict(cfg)
    servers = [str(s) for s in cfg.get("nameservers") or []]
    if len(servers) > 3:
        errs.append(
            invalid(f"{path}.nameservers", go_string_slice(servers), "must not have more than 3 nameservers")
        )
    for i, ns in enumerate(servers):
        errs.extend(invalid(f"{path}.nameservers[{i}]", ns, m) for m in names.ip_errors(ns))
    searches = [str(s) for s in cfg.get("searches") or []]
    if len(searches) > 32:
        errs.append(
            invalid(f"{path}.searches", go_string_slice(searches), "must not have more than 32 search paths")
        )
    if len(" ".join(searches)) > 2048:
        errs.append(
            invalid(
                f"{path}.searches",
                go_string_slice(searches),
                "must not have more than 2048 characters (including spaces) in the search list",
            )
        )
    for i, s in enumerate(searches):
        s = s[:-1] if s.endswith(".") else s
        errs.extend(invalid(f"{path}.searches[{i}]", s, m) for m in names.dns1123_subdomain_errors(s))
    for i, opt in enumerate(dict_items(cfg.get("options"))):
        if not opt.get("name"):
            errs.append(required(f"{path}.options[{i}]", "must not be empty"))
    return errs


def _validate_tolerations(tols: Any, path: str) -> list[FieldError]:
    errs: list[FieldError] = []
    for i, t in enumerate(dict_items(tols)):
        p = f"{path}[{i}]"
        key = str(t.get("key") or "")
        op = t.get("operator") or ""
        if key:
            errs.extend(validate_label_name(key, f"{p}.key"))
        if not key and op != "Exists":
            errs.append(
                invalid(
                    f"{p}.operator",
                    op,
                    "operator must be Exists when `key` is empty, which means "
                    '"match all values and all keys"',
                )
            )
        if t.get("tolerationSeconds") is not None and t.get("effect") != "NoExecute":
            errs.append(
                invalid(
                    f"{p}.effect",
                    t.get("effect") or "",
                    "effect must be 'NoExecute' when `tolerationSeconds` is set",
                )
            )
        value = str(t.get("value") or "")
        if op in ("Equal", ""):
            msgs = names.label_value_errors(value)
            if msgs:
                errs.append(invalid(f"{p}.operator", value, ";".join(msgs)))
        elif op == "Exists":
            if value:
                errs.append(
                    invalid(f"{p}.operator", value, "value must be empty when `operator` is 'Exists'")
                )
        else:
            errs.append(not_supported(f"{p}.operator", op, ["Equal", "Exists"], keep_order=True))
        effect = t.get("effect") or ""
        if effect and effect not in ("NoSchedule", "PreferNoSchedule", "NoExecute"):
            errs.append(
                not_supported(
                    f"{p}.effect", effect, ["NoSchedule", "PreferNoSchedule", "NoExecute"], keep_order=True
                )
            )
    return errs


def validate_pod_spec(spec: Any, path: str = "spec") -> list[FieldError]:
    """`ValidatePodSpec` (shared by Pods and pod templates)."""
    spec = as_dict(spec)
    errs: list[FieldError] = []
    if spec.get("terminationGracePeriodSeconds") is None:
        errs.append(required(f"{path}.terminationGracePeriodSeconds", ""))
    volumes, verrs = validate_volumes(spec.get("volumes"), f"{path}.volumes")
    errs.extend(verrs)
    errs.extend(validate_containers(spec.get("containers"), volumes, f"{path}.containers"))
    errs.extend(
        validate_init_containers(
            spec.get("initContainers"), spec.get("containers"), volumes, f"{path}.initContainers"
        )
    )
    rp = spec.get("restartPolicy") or ""
    if not rp:
        errs.append(required(f"{path}.restartPolicy", ""))
    elif rp not in RESTART_POLICIES:
        errs.append(not_supported(f"{path}.restartPolicy", rp, RESTART_POLICIES, keep_order=True))
    dp = spec.get("dnsPolicy") or ""
    if not dp:
        errs.append(required(f"{path}.dnsPolicy", ""))
    elif dp not in DNS_POLICIES:
        errs.append(not_supported(f"{path}.dnsPolicy", dp, DNS_POLICIES, keep_order=True))
    errs.extend(validate_labels(spec.get("nodeSelector"), f"{path}.nodeSelector"))
    errs.extend(_validate_dns_config(spec.get("dnsConfig"), dp, f"{path}.dnsConfig"))
    for i, gate in enumerate(dict_items(spec.get("readinessGates"))):
        ct = str(gate.get("conditionType") or "")
        errs.extend(
            invalid(f"{path}.readinessGates[{i}].conditionType", ct, m)
            for m in names.qualified_name_errors(ct)
        )
    sa = spec.get("serviceAccountName")
    if sa:
        errs.extend(
            invalid(f"{path}.serviceAccountName", sa, m) for m in names.dns1123_subdomain_errors(str(sa))
        )
    node = spec.get("nodeName")
    if node:
        errs.extend(invalid(f"{path}.nodeName", node, m) for m in names.dns1123_subdomain_errors(str(node)))
    ads = spec.get("activeDeadlineSeconds")
    if ads is not None:
        v = as_int(ads)
        if v is None or v < 1 or v > MAX_INT32:
            errs.append(
                invalid(f"{path}.activeDeadlineSeconds", ads, names.inclusive_range_error(1, MAX_INT32))
            )
    for key in ("hostname", "subdomain"):
        val = spec.get(key)
        if val:
            errs.extend(invalid(f"{path}.{key}", val, m) for m in names.dns1123_label_errors(str(val)))
    errs.extend(_validate_tolerations(spec.get("tolerations"), f"{path}.tolerations"))
    for i, alias in enumerate(dict_items(spec.get("hostAliases"))):
        ap = f"{path}.hostAliases[{i}]"
        errs.extend(
            invalid(f"{ap}.ip", alias.get("ip", ""), m) for m in names.ip_errors(str(alias.get("ip", "")))
        )
        for j, host in enumerate(alias.get("hostnames") or []):
            errs.extend(
                invalid(f"{ap}.hostnames[{j}]", host, m) for m in names.dns1123_subdomain_errors(str(host))
            )
    return errs


def validate_pod_template(tmpl: Any, path: str = "spec.template") -> list[FieldError]:
    """`ValidatePodTemplateSpec`: template labels/annotations and the pod spec."""
    tmpl = as_dict(tmpl)
    meta = as_dict(tmpl.get("metadata"))
    errs = validate_labels(meta.get("labels"), f"{path}.labels")
    errs.extend(validate_annotations(meta.get("annotations"), f"{path}.annotations"))
    errs.extend(validate_pod_spec(tmpl.get("spec"), f"{path}.spec"))
    return errs


def _validate_pod_only(spec: dict[str, Any]) -> list[FieldError]:
    errs: list[FieldError] = []
    for key in ("containers", "initContainers"):
        for i, c in enumerate(dict_items(spec.get(key))):
            image = c.get("image")
            if isinstance(image, str) and image != image.strip():
                errs.append(
                    invalid(f"spec.{key}[{i}].image", image, "must not have leading or trailing whitespace")
                )
    return errs


def _validate_pod_ips(status: Any) -> list[FieldError]:
    errs: list[FieldError] = []
    for i, pip in enumerate(dict_items(as_dict(status).get("podIPs"))):
        ip = str(pip.get("ip", ""))
        errs.extend(invalid(f"status.podIPs[{i}]", ip, m) for m in names.ip_errors(ip))
    return errs


def validate_pod(pod: dict[str, Any]) -> list[FieldError]:
    """`ValidatePodCreate`."""
    spec = as_dict(pod.get("spec"))
    errs = validate_object_meta(pod.get("metadata"), True, names.name_is_dns_subdomain)
    errs.extend(validate_pod_spec(spec))
    errs.extend(_validate_pod_only(spec))
    if spec.get("ephemeralContainers"):
        errs.append(forbidden("spec.ephemeralContainers", "cannot be set on create"))
    if spec.get("nodeName") and spec.get("schedulingGates"):
        errs.append(forbidden("spec.nodeName", "cannot be set until all schedulingGates have been cleared"))
    errs.extend(_validate_pod_ips(pod.get("status")))
    return errs


def _spec_diff(old: Any, new: Any, path: str = "spec") -> list[str]:
    if old == new:
        return []
    if isinstance(old, dict) and isinstance(new, dict):
        out: list[str] = []
        for k in sorted(set(old) | set(new)):
            out.extend(_spec_diff(old.get(k), new.get(k), f"{path}.{k}"))
        return out
    if isinstance(old, list) and isinstance(new, list) and len(old) == len(new):
        out = []
        for i, (a, b) in enumerate(zip(old, new, strict=True)):
            out.extend(_spec_diff(a, b, f"{path}[{i}]"))
        return out
    return [f"  {path}: {_show(old)} -> {_show(new)}"]


def _show(v: Any) -> str:

    return "<unset>" if v is None else json.dumps(v, separators=(",", ":"), sort_keys=True)


def validate_pod_update(new: dict[str, Any], old: dict[str, Any]) -> list[FieldError]:
    """`ValidatePodUpdate`: only images, activeDeadlineSeconds, added tolerations (and a few more) change."""
    errs = validate_object_meta_update(new.get("metadata"), old.get("metadata"))
    errs.extend(validate_object_meta(new.get("metadata"), True, names.name_is_dns_subdomain))
    nspec, ospec = as_dict(new.get("spec")), as_dict(old.get("spec"))
    errs.extend(validate_pod_spec(nspec))
    errs.extend(_validate_pod_only(nspec))
    for key in ("containers", "initContainers"):
        nc, oc = dict_items(nspec.get(key)), dict_items(ospec.get(key))
        if len(nc) != len(oc):
            errs.append(forbidden(f"spec.{key}", "pod updates may not add or remove containers"))
            return errs
    nads, oads = nspec.get("activeDeadlineSeconds"), ospec.get("activeDeadlineSeconds")
    if nads is not None:
        v = as_int(nads)
        if v is None or v < 0 or v > MAX_INT32:
            errs.append(
                invalid("spec.activeDeadlineSeconds", nads, names.inclusive_range_error(0, MAX_INT32))
            )
            return errs
        if oads is not None and (as_int(oads) or 0) < v:
            errs.append(
                invalid("spec.activeDeadlineSeconds", v, "must be less than or equal to previous value")
            )
            return errs
    elif oads is not None:
        errs.append(
            invalid(
                "spec.activeDeadlineSeconds", None, "must not update from a positive integer to nil value"
            )
        )
    old_tols = dict_items(ospec.get("tolerations"))
    new_tols = dict_items(nspec.get("tolerations"))
    for ot in old_tols:
        base = {k: v for k, v in ot.items() if k != "tolerationSeconds"}
        if not any({k: v for k, v in nt.items() if k != "tolerationSeconds"} == base for nt in new_tols):
            errs.append(
                forbidden(
                    "spec.tolerations", "existing toleration can not be modified except its tolerationSeconds"
                )
            )
            break
    if nspec == ospec:
        return errs
    munged = dict(nspec)
    for key in ("containers", "initContainers"):
        if key in munged:
            munged[key] = [
                dict(c, image=oc.get("image"))
                if "image" in oc
                else {k: v for k, v in c.items() if k != "image"}
                for c, oc in zip(dict_items(nspec.get(key)), dict_items(ospec.get(key)), strict=True)
            ]
    for key in ("activeDeadlineSeconds", "tolerations", "schedulingGates"):
        munged.pop(key, None)
        if key in ospec:
            munged[key] = ospec[key]
    otg = as_int(ospec.get("terminationGracePeriodSeconds"))
    if otg is not None and otg < 0 and as_int(munged.get("terminationGracePeriodSeconds")) == 1:
        munged["terminationGracePeriodSeconds"] = otg
    if munged != ospec:
        diff = "\n".join(_spec_diff(ospec, munged))
        errs.append(forbidden("spec", f"{UPDATABLE_POD_FIELDS}\n{diff}"))
    return errs
