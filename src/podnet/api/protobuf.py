"""Decode the Kubernetes protobuf encoding for the request bodies kubectl sends that way.

kubectl's typed clients (`kubectl create namespace|configmap|service|deployment`, some deletes)
POST `application/vnd.kubernetes.protobuf`: the magic `k8s\\x00`, then a `runtime.Unknown`
{typeMeta{apiVersion, kind}, raw} whose `raw` is the object in the field numbering of
k8s.io/api's generated.proto. podnet answers in JSON (clients accept it) and decodes these
bodies with the small schemas below; a kind without a schema gets 415.

Zero values are dropped, as JSON's omitempty would (except fields whose zero is meaningful).
"""

from __future__ import annotations

import base64
import datetime as dt
from dataclasses import dataclass
from typing import Any

MAGIC = b"k8s\x00"


class ProtobufError(ValueError):
    pass


@dataclass(frozen=True)
class F:
    name: str
    kind: str  # s, i, b, msg, map, bmap, qmap, rs, rmsg, ios, time
    sub: dict[int, F] | None = None
    keep_zero: bool = False


def _read_varint(buf: bytes, pos: int) -> tuple[int, int]:
    result = shift = 0
    while True:
        if pos >= len(buf):
            raise ProtobufError("truncated varint")
        b = buf[pos]
        pos += 1
        result |= (b & 0x7F) << shift
        if not b & 0x80:
            return result, pos
        shift += 7
        if shift > 70:
            raise ProtobufError("varint too long")


def _fields(buf: bytes) -> list[tuple[int, int, Any]]:
    out: list[tuple[int, int, Any]] = []
    pos = 0
    while pos < len(buf):
        key, pos = _read_varint(buf, pos)
        num, wire = key >> 3, key & 7
        val: int | bytes
        if wire == 0:
            val, pos = _read_varint(buf, pos)
        elif wire == 2:
            n, pos = _read_varint(buf, pos)
            if pos + n > len(buf):
                raise ProtobufError("truncated field")
            val, pos = buf[pos:pos + n], pos + n
        elif wire == 1:
            val, pos = buf[pos:pos + 8], pos + 8
        elif wire == 5:
            val, pos = buf[pos:pos + 4], pos + 4
        else:
            raise ProtobufError(f"unsupported wire type {wire}")
        out.append((num, wire, val))
    return out


def _signed(v: int) -> int:
    return v - (1 << 64) if v >= 1 << 63 else v


def _map_entry(raw: bytes) -> tuple[str, bytes]:
    key, val = "", b""
    for num, _, v in _fields(raw):
        if num == 1 and isinstance(v, bytes):
            key = v.decode()
        elif num == 2 and isinstance(v, bytes):
            val = v
    return key, val


def decode_message(buf: bytes, schema: dict[int, F]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for num, wire, val in _fields(buf):
        f = schema.get(num)
        if f is None:
            continue
        if f.kind == "s":
            if wire == 2:
                out[f.name] = _b(val, f).decode()
        elif f.kind == "i":
            out[f.name] = _signed(val) if isinstance(val, int) else 0
        elif f.kind == "b":
            out[f.name] = bool(val) if isinstance(val, int) else False
        elif f.kind == "msg":
            out[f.name] = decode_message(_b(val, f), f.sub or {})
        elif f.kind == "rmsg":
            out.setdefault(f.name, []).append(decode_message(_b(val, f), f.sub or {}))
        elif f.kind == "rs":
            out.setdefault(f.name, []).append(_b(val, f).decode())
        elif f.kind in ("map", "bmap", "qmap"):
            k, v = _map_entry(_b(val, f))
            if f.kind == "map":
                out.setdefault(f.name, {})[k] = v.decode()
            elif f.kind == "bmap":
                out.setdefault(f.name, {})[k] = base64.b64encode(v).decode()
            else:
                out.setdefault(f.name, {})[k] = decode_message(v, {1: F("string", "s")}).get("string", "")
        elif f.kind == "ios":
            d = decode_message(_b(val, f), {1: F("type", "i"), 2: F("intVal", "i"), 3: F("strVal", "s")})
            out[f.name] = d.get("strVal", "") if d.get("type") == 1 else d.get("intVal", 0)
        elif f.kind == "time":
            d = decode_message(_b(val, f), {1: F("seconds", "i"), 2: F("nanos", "i")})
            secs = int(d.get("seconds") or 0)
            if secs:
                out[f.name] = dt.datetime.fromtimestamp(secs, dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    for f in schema.values():  # omitempty
        if f.name in out and not f.keep_zero and _is_zero(out[f.name]):
            del out[f.name]
    return out


def _b(val: int | bytes, f: F) -> bytes:
    if not isinstance(val, bytes):
        raise ProtobufError(f"field {f.name}: expected a length-delimited value")
    return val


def _is_zero(v: Any) -> bool:
    return v is False or v == 0 or v == "" or v == {} or v == []


# ---- schemas (field numbers from k8s.io/api and k8s.io/apimachinery generated.proto) -------------

OWNER = {1: F("kind", "s"), 3: F("name", "s"), 4: F("uid", "s"), 5: F("apiVersion", "s"),
         6: F("controller", "b", keep_zero=True), 7: F("blockOwnerDeletion", "b", keep_zero=True)}
META = {1: F("name", "s"), 2: F("generateName", "s"), 3: F("namespace", "s"), 5: F("uid", "s"),
        6: F("resourceVersion", "s"), 7: F("generation", "i"), 8: F("creationTimestamp", "time"),
        11: F("labels", "map"), 12: F("annotations", "map"), 13: F("ownerReferences", "rmsg", OWNER),
        14: F("finalizers", "rs")}
LABEL_SELECTOR = {1: F("matchLabels", "map"),
                  2: F("matchExpressions", "rmsg", {1: F("key", "s"), 2: F("operator", "s"),
                                                    3: F("values", "rs")})}
SERVICE_PORT = {1: F("name", "s"), 2: F("protocol", "s"), 3: F("port", "i", keep_zero=True),
                4: F("targetPort", "ios"), 5: F("nodePort", "i"), 6: F("appProtocol", "s")}
SERVICE_SPEC = {1: F("ports", "rmsg", SERVICE_PORT), 2: F("selector", "map"), 3: F("clusterIP", "s"),
                4: F("type", "s"), 5: F("externalIPs", "rs"), 7: F("sessionAffinity", "s"),
                8: F("loadBalancerIP", "s"), 9: F("loadBalancerSourceRanges", "rs"),
                10: F("externalName", "s"), 11: F("externalTrafficPolicy", "s"),
                12: F("healthCheckNodePort", "i"), 13: F("publishNotReadyAddresses", "b"),
                17: F("ipFamilyPolicy", "s"), 18: F("clusterIPs", "rs"),
                19: F("ipFamilies", "rs"), 20: F("allocateLoadBalancerNodePorts", "b", keep_zero=True),
                21: F("loadBalancerClass", "s"), 22: F("internalTrafficPolicy", "s")}
CONTAINER_PORT = {1: F("name", "s"), 2: F("hostPort", "i"), 3: F("containerPort", "i", keep_zero=True),
                  4: F("protocol", "s"), 5: F("hostIP", "s")}
CONTAINER = {1: F("name", "s"), 2: F("image", "s"), 3: F("command", "rs"), 4: F("args", "rs"),
             5: F("workingDir", "s"), 6: F("ports", "rmsg", CONTAINER_PORT),
             7: F("env", "rmsg", {1: F("name", "s"), 2: F("value", "s")}),
             8: F("resources", "msg", {1: F("limits", "qmap"), 2: F("requests", "qmap")}),
             13: F("terminationMessagePath", "s"), 14: F("imagePullPolicy", "s"), 16: F("stdin", "b"),
             17: F("stdinOnce", "b"), 18: F("tty", "b"), 20: F("terminationMessagePolicy", "s")}
POD_SPEC = {2: F("containers", "rmsg", CONTAINER), 3: F("restartPolicy", "s"),
            4: F("terminationGracePeriodSeconds", "i", keep_zero=True), 5: F("activeDeadlineSeconds", "i"),
            6: F("dnsPolicy", "s"), 7: F("nodeSelector", "map"), 8: F("serviceAccountName", "s"),
            10: F("nodeName", "s"), 11: F("hostNetwork", "b"), 20: F("initContainers", "rmsg", CONTAINER)}
POD_TEMPLATE = {1: F("metadata", "msg", META), 2: F("spec", "msg", POD_SPEC)}
INT_OR_STRING_FIELDS = {1: F("maxUnavailable", "ios"), 2: F("maxSurge", "ios")}
DEPLOYMENT_SPEC = {1: F("replicas", "i", keep_zero=True), 2: F("selector", "msg", LABEL_SELECTOR),
                   3: F("template", "msg", POD_TEMPLATE),
                   4: F("strategy", "msg", {1: F("type", "s"),
                                            2: F("rollingUpdate", "msg", INT_OR_STRING_FIELDS)}),
                   5: F("minReadySeconds", "i"), 6: F("revisionHistoryLimit", "i", keep_zero=True),
                   7: F("paused", "b"), 9: F("progressDeadlineSeconds", "i")}

POLICY_RULE = {1: F("verbs", "rs"), 2: F("apiGroups", "rs"), 3: F("resources", "rs"),
               4: F("resourceNames", "rs"), 5: F("nonResourceURLs", "rs")}
SUBJECT = {1: F("kind", "s"), 2: F("apiGroup", "s"), 3: F("name", "s"), 4: F("namespace", "s")}
ROLE_REF = {1: F("apiGroup", "s"), 2: F("kind", "s"), 3: F("name", "s")}
JOB_SPEC = {1: F("parallelism", "i", keep_zero=True), 2: F("completions", "i", keep_zero=True),
            3: F("activeDeadlineSeconds", "i"), 4: F("selector", "msg", LABEL_SELECTOR),
            5: F("manualSelector", "b"), 6: F("template", "msg", POD_TEMPLATE),
            7: F("backoffLimit", "i", keep_zero=True), 8: F("ttlSecondsAfterFinished", "i", keep_zero=True),
            9: F("completionMode", "s"), 10: F("suspend", "b")}
CRONJOB_SPEC = {1: F("schedule", "s"), 2: F("startingDeadlineSeconds", "i"), 3: F("concurrencyPolicy", "s"),
                4: F("suspend", "b"), 5: F("jobTemplate", "msg", {1: F("metadata", "msg", META),
                                                                  2: F("spec", "msg", JOB_SPEC)}),
                6: F("successfulJobsHistoryLimit", "i", keep_zero=True),
                7: F("failedJobsHistoryLimit", "i", keep_zero=True), 8: F("timeZone", "s")}
RESOURCE_ATTRIBUTES = {1: F("namespace", "s"), 2: F("verb", "s"), 3: F("group", "s"), 4: F("version", "s"),
                       5: F("resource", "s"), 6: F("subresource", "s"), 7: F("name", "s")}
ACCESS_REVIEW_SPEC = {1: F("resourceAttributes", "msg", RESOURCE_ATTRIBUTES),
                      2: F("nonResourceAttributes", "msg", {1: F("path", "s"), 2: F("verb", "s")}),
                      3: F("user", "s"), 4: F("groups", "rs"), 6: F("uid", "s")}

SCHEMAS: dict[tuple[str, str], dict[int, F]] = {
    ("v1", "Secret"): {1: F("metadata", "msg", META), 2: F("data", "bmap"), 3: F("type", "s"),
                       4: F("stringData", "map"), 5: F("immutable", "b", keep_zero=True)},
    ("v1", "ServiceAccount"): {1: F("metadata", "msg", META),
                               2: F("secrets", "rmsg", {3: F("name", "s"), 1: F("kind", "s"),
                                                        2: F("namespace", "s")}),
                               3: F("imagePullSecrets", "rmsg", {1: F("name", "s")}),
                               4: F("automountServiceAccountToken", "b", keep_zero=True)},
    ("rbac.authorization.k8s.io/v1", "Role"): {1: F("metadata", "msg", META),
                                               2: F("rules", "rmsg", POLICY_RULE)},
    ("rbac.authorization.k8s.io/v1", "ClusterRole"): {
        1: F("metadata", "msg", META), 2: F("rules", "rmsg", POLICY_RULE),
        3: F("aggregationRule", "msg", {1: F("clusterRoleSelectors", "rmsg", LABEL_SELECTOR)})},
    ("rbac.authorization.k8s.io/v1", "RoleBinding"): {1: F("metadata", "msg", META),
                                                      2: F("subjects", "rmsg", SUBJECT),
                                                      3: F("roleRef", "msg", ROLE_REF)},
    ("rbac.authorization.k8s.io/v1", "ClusterRoleBinding"): {1: F("metadata", "msg", META),
                                                             2: F("subjects", "rmsg", SUBJECT),
                                                             3: F("roleRef", "msg", ROLE_REF)},
    ("batch/v1", "Job"): {1: F("metadata", "msg", META), 2: F("spec", "msg", JOB_SPEC)},
    ("batch/v1", "CronJob"): {1: F("metadata", "msg", META), 2: F("spec", "msg", CRONJOB_SPEC)},
    ("policy/v1", "PodDisruptionBudget"): {1: F("metadata", "msg", META), 2: F("spec", "msg", {
        1: F("minAvailable", "ios"), 2: F("selector", "msg", LABEL_SELECTOR), 3: F("maxUnavailable", "ios"),
        4: F("unhealthyPodEvictionPolicy", "s")})},
    ("authorization.k8s.io/v1", "SelfSubjectAccessReview"): {1: F("metadata", "msg", META),
                                                            2: F("spec", "msg", ACCESS_REVIEW_SPEC)},
    ("authorization.k8s.io/v1", "SubjectAccessReview"): {1: F("metadata", "msg", META),
                                                        2: F("spec", "msg", ACCESS_REVIEW_SPEC)},
    ("authorization.k8s.io/v1", "LocalSubjectAccessReview"): {1: F("metadata", "msg", META),
                                                             2: F("spec", "msg", ACCESS_REVIEW_SPEC)},
    ("authorization.k8s.io/v1", "SelfSubjectRulesReview"): {1: F("metadata", "msg", META),
                                                           2: F("spec", "msg", {1: F("namespace", "s")})},
    ("authentication.k8s.io/v1", "TokenRequest"): {1: F("metadata", "msg", META), 2: F("spec", "msg", {
        1: F("audiences", "rs"), 4: F("expirationSeconds", "i"),
        3: F("boundObjectRef", "msg", {1: F("kind", "s"), 2: F("apiVersion", "s"), 3: F("name", "s"),
                                       4: F("uid", "s")})})},
    ("authentication.k8s.io/v1", "SelfSubjectReview"): {1: F("metadata", "msg", META)},
    ("authentication.k8s.io/v1", "TokenReview"): {1: F("metadata", "msg", META), 2: F("spec", "msg", {
        1: F("token", "s"), 2: F("audiences", "rs")})},
    ("v1", "Namespace"): {1: F("metadata", "msg", META), 2: F("spec", "msg", {1: F("finalizers", "rs")})},
    ("v1", "ConfigMap"): {1: F("metadata", "msg", META), 2: F("data", "map"), 3: F("binaryData", "bmap"),
                          4: F("immutable", "b", keep_zero=True)},
    ("v1", "Service"): {1: F("metadata", "msg", META), 2: F("spec", "msg", SERVICE_SPEC)},
    ("apps/v1", "Deployment"): {1: F("metadata", "msg", META), 2: F("spec", "msg", DEPLOYMENT_SPEC)},
    ("v1", "Pod"): {1: F("metadata", "msg", META), 2: F("spec", "msg", POD_SPEC)},
    ("v1", "DeleteOptions"): {1: F("gracePeriodSeconds", "i", keep_zero=True),
                              2: F("preconditions", "msg", {1: F("uid", "s"), 2: F("resourceVersion", "s")}),
                              3: F("orphanDependents", "b", keep_zero=True), 4: F("propagationPolicy", "s"),
                              5: F("dryRun", "rs")},
}


def decode(body: bytes) -> dict[str, Any]:
    """A Kubernetes protobuf body as the JSON-shaped object. Raises ProtobufError."""
    if not body.startswith(MAGIC):
        raise ProtobufError("the body does not start with the Kubernetes protobuf magic number")
    try:
        unknown = decode_message(body[len(MAGIC):], {1: F("typeMeta", "msg", {1: F("apiVersion", "s"),
                                                                             2: F("kind", "s")})})
        type_meta = unknown.get("typeMeta") or {}
        api_version, kind = str(type_meta.get("apiVersion", "")), str(type_meta.get("kind", ""))
        raw = _raw_bytes(body[len(MAGIC):])
        schema = SCHEMAS.get((api_version, kind))
        if schema is None and kind == "DeleteOptions":
            schema = SCHEMAS[("v1", "DeleteOptions")]
        if schema is None:
            raise ProtobufError(f"podnet cannot decode {kind or 'objects'} ({api_version}) sent as "
                                f"protobuf; send JSON")
        obj = decode_message(raw, schema)
    except UnicodeDecodeError as e:
        raise ProtobufError(f"invalid protobuf body: {e}") from None
    return {"apiVersion": api_version, "kind": kind, **obj}


def _raw_bytes(unknown: bytes) -> bytes:
    for num, wire, val in _fields(unknown):
        if num == 2 and wire == 2:
            return bytes(val)
    return b""
