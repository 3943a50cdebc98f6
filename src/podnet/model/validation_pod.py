"""Pod and pod-template validation: `ValidatePodCreate`, `ValidatePodUpdate`, `ValidatePodSpec`
(pkg/apis/core/validation). Paths, error types and messages follow Kubernetes; rarely used
corners (security contexts, affinity, volumes' inner fields) are checked only for shape.
"""

from __future__ import annotations

from typing import Any

from podnet.model import names
from podnet.model.errors import (
    ErrorType,
    FieldError,
    GoValue,
    duplicate,
    forbidden,
    go_string_slice,
    invalid,
    not_supported,
    required,
)
from podnet.model.quantity import QUANTITY_FORMAT_MSG, parse_quantity
from podnet.model.validation_meta import (
    as_int,
    validate_label_name,
    validate_labels,
    validate_nonnegative,
    validate_object_meta,
    validate_object_meta_update,
)
from podnet.model.validation_service import validate_port_num_or_name

MAX_INT32 = 2**31 - 1
PROTOCOLS = ("SCTP", "TCP", "UDP")
RESTART_POLICIES = ("Always", "OnFailure", "Never")
DNS_POLICIES = ("ClusterFirstWithHostNet", "ClusterFirst", "Default", "None")
PULL_POLICIES = ("Always", "IfNotPresent", "Never")
TERMINATION_MESSAGE_POLICIES = ("File", "FallbackToLogsOnError")
HTTP_SCHEMES = ("HTTP", "HTTPS")
VOLUME_SOURCES = (
    "hostPath",
    "emptyDir",
    "gcePersistentDisk",
    "awsElasticBlockStore",
    "gitRepo",
    "secret",
    "nfs",
    "iscsi",
    "glusterfs",
    "persistentVolumeClaim",
    "rbd",
    "flexVolume",
    "cinder",
    "cephfs",
    "flocker",
    "downwardAPI",
    "fc",
    "azureFile",
    "configMap",
    "vsphereVolume",
    "quobyte",
    "azureDisk",
    "photonPersistentDisk",
    "projected",
    "portworxVolume",
    "scaleIO",
    "storageos",
    "csi",
    "ephemeral",
    "image",
)
UPDATABLE_POD_FIELDS = (
    "pod updates may not change fields other than `spec.containers[*].image`,`spec.initContainers[*].image`,"
    "`spec.activeDeadlineSeconds`,`spec.tolerations` (only additions to existing tolerations),"
    "`spec.terminationGracePeriodSeconds` (allow it to be set to 1 if it was previously negative)"
)
NO_INIT_SIDECAR = "may not be set for init containers without restartPolicy=Always"


def _d(v: Any) -> dict[str, Any]:
    return v if isinstance(v, dict) else {}


def _items(v: Any) -> list[dict[str, Any]]:
    return [x if isinstance(x, dict) else {} for x in v] if isinstance(v, list) else []


def not_found(path: str, value: Any) -> FieldError:
    return FieldError(ErrorType.NOT_FOUND, path, value)


# --------------------------------------------------------------------------- containers


def _validate_container_ports(ports: Any, path: str) -> list[FieldError]:
    errs: list[FieldError] = []
    seen: set[str] = set()
    for i, port in enumerate(_items(ports)):
        p = f"{path}[{i}]"
        name = port.get("name") or ""
        if name:
            msgs = names.port_name_errors(str(name))
            if msgs:
                errs.extend(invalid(f"{p}.name", name, m) for m in msgs)
            elif name in seen:
                errs.append(duplicate(f"{p}.name", name))
            else:
                seen.add(str(name))
        cp = port.get("containerPort")
        if not cp:
            errs.append(required(f"{p}.containerPort", ""))
        else:
            cpi = as_int(cp)
            if cpi is None:
                errs.append(
                    invalid(f"{p}.containerPort", GoValue(str(cp)), names.inclusive_range_error(1, 65535))
                )
            else:
                errs.extend(invalid(f"{p}.containerPort", cpi, m) for m in names.port_num_errors(cpi))
        hp = as_int(port.get("hostPort")) or 0
        if hp != 0:
            errs.extend(invalid(f"{p}.hostPort", hp, m) for m in names.port_num_errors(hp))
        proto = port.get("protocol") or ""
        if not proto:
            errs.append(required(f"{p}.protocol", ""))
        elif proto not in PROTOCOLS:
            errs.append(not_supported(f"{p}.protocol", proto, PROTOCOLS))
    return errs


def relaxed_env_var_name_errors(name: str) -> list[str]:
    """`IsRelaxedEnvVarName` (RelaxedEnvironmentVariableValidation, on by default since 1.32)."""
    errs: list[str] = []
    if not name:
        errs.append("environment variable name must be non-empty")
    for ch in name:
        if ord(ch) > 127 or not ch.isprintable() or ch == "=":
            errs.append(
                "a valid environment variable name must consist only of printable ASCII characters "
                "other than '='"
            )
            break
    return errs


def _validate_env(env: Any, path: str) -> list[FieldError]:
    errs: list[FieldError] = []
    for i, ev in enumerate(_items(env)):
        p = f"{path}[{i}]"
        name = str(ev.get("name") or "")
        if not name:
            errs.append(required(f"{p}.name", ""))
        errs.extend(invalid(f"{p}.name", name, m) for m in relaxed_env_var_name_errors(name))
        vf = ev.get("valueFrom")
        if vf is None:
            continue
        vf = _d(vf)
        sources = [
            k for k in ("fieldRef", "resourceFieldRef", "configMapKeyRef", "secretKeyRef") if vf.get(k)
        ]
        vp = f"{p}.valueFrom"
        if not sources:
            errs.append(
                invalid(
                    vp,
                    "",
                    "must specify one of: `fieldRef`, `resourceFieldRef`, "
                    "`configMapKeyRef` or `secretKeyRef`",
                )
            )
        elif ev.get("value"):
            errs.append(invalid(vp, "", "may not be specified when `value` is not empty"))
        elif len(sources) > 1:
            errs.append(invalid(vp, "", "may not have more than one field specified at a time"))
        fr = vf.get("fieldRef")
        if isinstance(fr, dict) and not fr.get("fieldPath"):
            errs.append(required(f"{vp}.fieldRef.fieldPath", ""))
        for key in ("configMapKeyRef", "secretKeyRef"):
            ref = vf.get(key)
            if isinstance(ref, dict) and not ref.get("key"):
                errs.append(required(f"{vp}.{key}.key", ""))
    return errs


def _validate_handler(handler: dict[str, Any], path: str) -> list[FieldError]:
    errs: list[FieldError] = []
    count = 0
    for key in ("exec", "httpGet", "tcpSocket", "grpc", "sleep"):
        action = handler.get(key)
        if action is None:
            continue
        if count > 0:
            errs.append(forbidden(f"{path}.{key}", "may not specify more than 1 handler type"))
            continue
        count += 1
        action = _d(action)
        ap = f"{path}.{key}"
        if key == "exec":
            if not action.get("command"):
                errs.append(required(f"{ap}.command", ""))
        elif key == "httpGet":
            if not action.get("path"):
                errs.append(required(f"{ap}.path", ""))
            errs.extend(validate_port_num_or_name(action.get("port"), f"{ap}.port"))
            scheme = action.get("scheme") or ""
            if scheme not in HTTP_SCHEMES:
                errs.append(not_supported(f"{ap}.scheme", scheme, HTTP_SCHEMES))
        elif key == "tcpSocket":
            errs.extend(validate_port_num_or_name(action.get("port"), f"{ap}.port"))
        elif key == "grpc":
            port = as_int(action.get("port")) or 0
            errs.extend(invalid(f"{ap}.port", port, m) for m in names.port_num_errors(port))
        elif key == "sleep":
            secs = as_int(action.get("seconds")) or 0
            if secs <= 0:
                errs.append(
                    invalid(
                        f"{ap}.seconds",
                        secs,
                        "must be greater than 0 and less than "
                        "terminationGracePeriodSeconds (30). Enable AllowPodLifecycleSleepActionZeroValue "
                        "feature gate for zero sleep.",
                    )
                )
    if count == 0:
        errs.append(required(path, "must specify a handler type"))
    return errs


def _validate_probe(probe: Any, path: str, must_succeed_once: bool) -> list[FieldError]:
    if probe is None:
        return []
    probe = _d(probe)
    errs = _validate_handler(probe, path)
    for key in (
        "initialDelaySeconds",
        "timeoutSeconds",
        "periodSeconds",
        "successThreshold",
        "failureThreshold",
    ):
        errs.extend(validate_nonnegative(probe.get(key), f"{path}.{key}"))
    tg = as_int(probe.get("terminationGracePeriodSeconds"))
    if tg is not None and tg <= 0:
        errs.append(invalid(f"{path}.terminationGracePeriodSeconds", tg, "must be greater than 0"))
    if must_succeed_once and (as_int(probe.get("successThreshold")) or 0) != 1:
        errs.append(invalid(f"{path}.successThreshold", probe.get("successThreshold", 0), "must be 1"))
    return errs


def _validate_resources(res: Any, path: str) -> list[FieldError]:
    errs: list[FieldError] = []
    res = _d(res)
    parsed: dict[str, dict[str, Any]] = {"limits": {}, "requests": {}}
    for section in ("limits", "requests"):
        for name, value in _d(res.get(section)).items():
            rp = f"{path}.{section}[{name}]"
            if (
                "/" not in name
                and name not in ("cpu", "memory", "ephemeral-storage")
                and not name.startswith("hugepages-")
            ):
                errs.append(invalid(rp, name, "must be a standard resource type or fully qualified"))
                continue
            try:
                q = parse_quantity(value)
            except ValueError:
                errs.append(invalid(rp, str(value), QUANTITY_FORMAT_MSG))
                continue
            if q < 0:
                errs.append(invalid(rp, str(value), "must be greater than or equal to 0"))
            parsed[section][name] = (q, value)
    for name, (req, raw) in parsed["requests"].items():
        lim = parsed["limits"].get(name)
        if lim is not None and req > lim[0]:
            errs.append(
                invalid(
                    f"{path}.requests", str(raw), f"must be less than or equal to {name} limit of {lim[1]}"
                )
            )
    return errs


def _validate_volume_mounts(mounts: Any, volumes: dict[str, dict[str, Any]], path: str) -> list[FieldError]:
    errs: list[FieldError] = []
    seen: set[str] = set()
    for i, m in enumerate(_items(mounts)):
        p = f"{path}[{i}]"
        name = m.get("name") or ""
        if not name:
            errs.append(required(f"{p}.name", ""))
        if name not in volumes:
            errs.append(not_found(f"{p}.name", name))
        mp = m.get("mountPath") or ""
        if not mp:
            errs.append(required(f"{p}.mountPath", ""))
        if mp in seen:
            errs.append(invalid(f"{p}.mountPath", mp, "must be unique"))
        seen.add(mp)
    return errs


def _validate_container_common(
    c: dict[str, Any], volumes: dict[str, dict[str, Any]], path: str
) -> list[FieldError]:
    errs: list[FieldError] = []
    name = c.get("name") or ""
    if not name:
        errs.append(required(f"{path}.name", ""))
    else:
        errs.extend(invalid(f"{path}.name", name, m) for m in names.dns1123_label_errors(str(name)))
    if not c.get("image"):
        errs.append(required(f"{path}.image", ""))
    tmp = c.get("terminationMessagePolicy") or ""
    if not tmp:
        errs.append(required(f"{path}.terminationMessagePolicy", ""))
    elif tmp not in TERMINATION_MESSAGE_POLICIES:
        errs.append(
            not_supported(
                f"{path}.terminationMessagePolicy", tmp, TERMINATION_MESSAGE_POLICIES, keep_order=True
            )
        )
    errs.extend(_validate_container_ports(c.get("ports"), f"{path}.ports"))
    errs.extend(_validate_env(c.get("env"), f"{path}.env"))
    errs.extend(_validate_volume_mounts(c.get("volumeMounts"), volumes, f"{path}.volumeMounts"))
    pp = c.get("imagePullPolicy") or ""
    if not pp:
        errs.append(required(f"{path}.imagePullPolicy", ""))
    elif pp not in PULL_POLICIES:
        errs.append(not_supported(f"{path}.imagePullPolicy", pp, PULL_POLICIES, keep_order=True))
    errs.extend(_validate_resources(c.get("resources"), f"{path}.resources"))
    return errs


def _validate_containers(containers: Any, volumes: dict[str, dict[str, Any]], path: str) -> list[FieldError]:
    items = _items(containers)
    if not items:
        return [required(path, "")]
    errs: list[FieldError] = []
    seen: set[str] = set()
    for i, c in enumerate(items):
        p = f"{path}[{i}]"
        errs.extend(_validate_container_common(c, volumes, p))
        name = str(c.get("name") or "")
        if name in seen:
            errs.append(duplicate(f"{p}.name", name))
        else:
            seen.add(name)
        errs.extend(_validate_probe(c.get("livenessProbe"), f"{p}.livenessProbe", True))
        errs.extend(_validate_probe(c.get("readinessProbe"), f"{p}.readinessProbe", False))
        errs.extend(_validate_probe(c.get("startupProbe"), f"{p}.startupProbe", True))
        if c.get("restartPolicy") is not None:
            errs.append(forbidden(f"{p}.restartPolicy", "may not be set for non-init containers"))
    errs.extend(_host_port_conflicts(items, path))
    return errs


def _host_port_conflicts(containers: list[dict[str, Any]], path: str) -> list[FieldError]:
    errs: list[FieldError] = []
    seen: set[str] = set()
    for c in containers:
        for port in _items(c.get("ports")):
            hp = as_int(port.get("hostPort")) or 0
            if hp == 0:
                continue
            key = f"{port.get('protocol') or ''}/{port.get('hostIP') or ''}/{hp}"
            if key in seen:
                errs.append(duplicate(path, key))
            seen.add(key)
    return errs


def _validate_init_containers(
    inits: Any, regular: Any, volumes: dict[str, dict[str, Any]], path: str
) -> list[FieldError]:
    errs: list[FieldError] = []
    seen = {str(c.get("name") or "") for c in _items(regular)}
    for i, c in enumerate(_items(inits)):
        p = f"{path}[{i}]"
        errs.extend(_validate_container_common(c, volumes, p))
        rp = c.get("restartPolicy")
        sidecar = rp == "Always"
        if rp is not None and rp != "Always":
            errs.append(not_supported(f"{p}.restartPolicy", rp, ["Always"]))
        name = str(c.get("name") or "")
        if name in seen:
            errs.append(duplicate(f"{p}.name", name))
        elif name:
            seen.add(name)
        if sidecar:
            errs.extend(_validate_probe(c.get("livenessProbe"), f"{p}.livenessProbe", True))
            errs.extend(_validate_probe(c.get("readinessProbe"), f"{p}.readinessProbe", False))
            errs.extend(_validate_probe(c.get("startupProbe"), f"{p}.startupProbe", True))
        else:
            for key in ("lifecycle", "livenessProbe", "readinessProbe", "startupProbe"):
                if c.get(key) is not None:
                    errs.append(forbidden(f"{p}.{key}", NO_INIT_SIDECAR))
    return errs


def _validate_volumes(vols: Any, path: str) -> tuple[dict[str, dict[str, Any]], list[FieldError]]:
    errs: list[FieldError] = []
    out: dict[str, dict[str, Any]] = {}
    for i, v in enumerate(_items(vols)):
        p = f"{path}[{i}]"
        el: list[FieldError] = []
        sources = [k for k in VOLUME_SOURCES if v.get(k) is not None]
        if not sources:
            el.append(required(p, "must specify a volume type"))
        for extra in sources[1:]:
            el.append(forbidden(f"{p}.{extra}", "may not specify more than 1 volume type"))
        name = str(v.get("name") or "")
        if not name:
            el.append(required(f"{p}.name", ""))
        else:
            el.extend(invalid(f"{p}.name", name, m) for m in names.dns1123_label_errors(name))
        if name in out:
            el.append(duplicate(f"{p}.name", name))
        if el:
            errs.extend(el)
        else:
            out[name] = v
    return out, errs


# --------------------------------------------------------------------------- pod spec


def _validate_dns_config(cfg: Any, policy: Any, path: str) -> list[FieldError]:
    errs: list[FieldError] = []
    if policy == "None":
        if cfg is None:
            return [required(path, "must provide `dnsConfig` when `dnsPolicy` is None")]
        if not _d(cfg).get("nameservers"):
            return [
                required(
                    f"{path}.nameservers", "must provide at least one DNS nameserver when `dnsPolicy` is None"
                )
            ]
    if cfg is None:
        return errs
    cfg = _d(cfg)
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
    for i, opt in enumerate(_items(cfg.get("options"))):
        if not opt.get("name"):
            errs.append(required(f"{path}.options[{i}]", "must not be empty"))
    return errs


def _validate_tolerations(tols: Any, path: str) -> list[FieldError]:
    errs: list[FieldError] = []
    for i, t in enumerate(_items(tols)):
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
    spec = _d(spec)
    errs: list[FieldError] = []
    if spec.get("terminationGracePeriodSeconds") is None:
        errs.append(required(f"{path}.terminationGracePeriodSeconds", ""))
    volumes, verrs = _validate_volumes(spec.get("volumes"), f"{path}.volumes")
    errs.extend(verrs)
    errs.extend(_validate_containers(spec.get("containers"), volumes, f"{path}.containers"))
    errs.extend(
        _validate_init_containers(
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
    for i, gate in enumerate(_items(spec.get("readinessGates"))):
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
    for i, alias in enumerate(_items(spec.get("hostAliases"))):
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
    tmpl = _d(tmpl)
    meta = _d(tmpl.get("metadata"))
    errs = validate_labels(meta.get("labels"), f"{path}.labels")
    errs.extend(_validate_annotations(meta.get("annotations"), f"{path}.annotations"))
    errs.extend(validate_pod_spec(tmpl.get("spec"), f"{path}.spec"))
    return errs


def _validate_annotations(annotations: Any, path: str) -> list[FieldError]:
    from podnet.model.validation_meta import validate_annotations

    return validate_annotations(annotations, path)


def _validate_pod_only(spec: dict[str, Any]) -> list[FieldError]:
    errs: list[FieldError] = []
    for key in ("containers", "initContainers"):
        for i, c in enumerate(_items(spec.get(key))):
            image = c.get("image")
            if isinstance(image, str) and image != image.strip():
                errs.append(
                    invalid(f"spec.{key}[{i}].image", image, "must not have leading or trailing whitespace")
                )
    return errs


def _validate_pod_ips(status: Any) -> list[FieldError]:
    errs: list[FieldError] = []
    for i, pip in enumerate(_items(_d(status).get("podIPs"))):
        ip = str(pip.get("ip", ""))
        errs.extend(invalid(f"status.podIPs[{i}]", ip, m) for m in names.ip_errors(ip))
    return errs


def validate_pod(pod: dict[str, Any]) -> list[FieldError]:
    """`ValidatePodCreate`."""
    spec = _d(pod.get("spec"))
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
    import json

    return "<unset>" if v is None else json.dumps(v, separators=(",", ":"), sort_keys=True)


def validate_pod_update(new: dict[str, Any], old: dict[str, Any]) -> list[FieldError]:
    """`ValidatePodUpdate`: only images, activeDeadlineSeconds, added tolerations (and a few more) change."""
    errs = validate_object_meta_update(new.get("metadata"), old.get("metadata"))
    errs.extend(validate_object_meta(new.get("metadata"), True, names.name_is_dns_subdomain))
    nspec, ospec = _d(new.get("spec")), _d(old.get("spec"))
    errs.extend(validate_pod_spec(nspec))
    errs.extend(_validate_pod_only(nspec))
    for key in ("containers", "initContainers"):
        nc, oc = _items(nspec.get(key)), _items(ospec.get(key))
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
    old_tols = _items(ospec.get("tolerations"))
    new_tols = _items(nspec.get("tolerations"))
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
                for c, oc in zip(_items(nspec.get(key)), _items(ospec.get(key)), strict=True)
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
