"""Container-level validation shared by Pods and pod templates: names, images, ports, env,
probes, resources, volume mounts and volumes (pkg/apis/core/validation `validateContainers` & co).
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
    invalid,
    not_supported,
    required,
)
from podnet.model.quantity import QUANTITY_FORMAT_MSG, parse_quantity
from podnet.model.validation_meta import as_int, validate_nonnegative
from podnet.model.validation_service import validate_port_num_or_name, validate_port_protocol

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
NO_INIT_SIDECAR = "may not be set for init containers without restartPolicy=Always"


def as_dict(v: Any) -> dict[str, Any]:
    return v if isinstance(v, dict) else {}


def dict_items(v: Any) -> list[dict[str, Any]]:
    return [x if isinstance(x, dict) else {} for x in v] if isinstance(v, list) else []


def not_found(path: str, value: Any) -> FieldError:
    return FieldError(ErrorType.NOT_FOUND, path, value)


# --------------------------------------------------------------------------- containers


def _validate_container_ports(ports: Any, path: str) -> list[FieldError]:
    errs: list[FieldError] = []
    seen: set[str] = set()
    for i, port in enumerate(dict_items(ports)):
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
        errs.extend(validate_port_protocol(port.get("protocol"), f"{p}.protocol"))
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
    for i, ev in enumerate(dict_items(env)):
        p = f"{path}[{i}]"
        name = str(ev.get("name") or "")
        if not name:
            errs.append(required(f"{p}.name", ""))
        errs.extend(invalid(f"{p}.name", name, m) for m in relaxed_env_var_name_errors(name))
        vf = ev.get("valueFrom")
        if vf is None:
            continue
        vf = as_dict(vf)
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
        action = as_dict(action)
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
    probe = as_dict(probe)
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
    res = as_dict(res)
    parsed: dict[str, dict[str, Any]] = {"limits": {}, "requests": {}}
    for section in ("limits", "requests"):
        for name, value in as_dict(res.get(section)).items():
            rp = f"{path}.{section}[{name}]"
            if (
                "/" not in name
                and name not in ("cpu", "memory", "ephemeral-storage")
                and not name.startswith("hugepages-")
            ):
                errs.append(invalid(rp, name, "must be a standard resource for containers"))
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
    for i, m in enumerate(dict_items(mounts)):
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


def validate_containers(containers: Any, volumes: dict[str, dict[str, Any]], path: str) -> list[FieldError]:
    items = dict_items(containers)
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
        for port in dict_items(c.get("ports")):
            hp = as_int(port.get("hostPort")) or 0
            if hp == 0:
                continue
            key = f"{port.get('protocol') or ''}/{port.get('hostIP') or ''}/{hp}"
            if key in seen:
                errs.append(duplicate(path, key))
            seen.add(key)
    return errs


def validate_init_containers(
    inits: Any, regular: Any, volumes: dict[str, dict[str, Any]], path: str
) -> list[FieldError]:
    errs: list[FieldError] = []
    seen = {str(c.get("name") or "") for c in dict_items(regular)}
    for i, c in enumerate(dict_items(inits)):
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


def validate_volumes(vols: Any, path: str) -> tuple[dict[str, dict[str, Any]], list[FieldError]]:
    errs: list[FieldError] = []
    out: dict[str, dict[str, Any]] = {}
    for i, v in enumerate(dict_items(vols)):
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
