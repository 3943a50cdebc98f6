"""API errors as Kubernetes `Status` objects (k8s.io/apimachinery/pkg/api/errors).

Raise an `APIError` anywhere on the request path; the server turns it into the
JSON `Status` with the right HTTP code, so kubectl prints what it prints against
a real cluster (`Error from server (NotFound): services "x" not found`).
"""

from __future__ import annotations

import json
from typing import Any

from podnet.model.errors import FieldError, aggregate
from podnet.model.kinds import ResourceType

Status = dict[str, Any]


class APIError(Exception):
    def __init__(self, code: int, reason: str, message: str, details: dict[str, Any] | None = None,
                 metadata: dict[str, Any] | None = None):
        super().__init__(message)
        self.code = code
        self.reason = reason
        self.message = message
        self.details = details
        self.metadata = metadata  # the Status' ListMeta, e.g. {"continue": ...}

    def status(self) -> Status:
        """The metav1.Status, its keys in the struct's field order with empty ones left out
        (`omitempty`), as kube-apiserver's JSON serializer writes it."""
        st: Status = {"kind": "Status", "apiVersion": "v1", "metadata": dict(self.metadata or {}),
                      "status": "Failure"}
        if self.message:
            st["message"] = self.message
        if self.reason:
            st["reason"] = self.reason
        if self.details is not None:  # a pointer in Go: {} when set but empty (e.g. unknown paths)
            st["details"] = _ordered_details(self.details)
        if self.code:
            st["code"] = self.code
        return st

    def body(self) -> bytes:
        """The response body, byte for byte as kube-apiserver sends it (see encode)."""
        return encode(self.status())


# k8s.io/apimachinery/pkg/apis/meta/v1/types.go: StatusDetails and StatusCause, in field order
_DETAILS_ORDER = ("name", "group", "kind", "uid", "causes", "retryAfterSeconds")
_CAUSE_ORDER = ("reason", "message", "field")


def _ordered_details(details: dict[str, Any]) -> dict[str, Any]:
    out = {k: details[k] for k in _DETAILS_ORDER if details.get(k)}
    if "causes" in out:
        out["causes"] = [{k: c[k] for k in _CAUSE_ORDER if c.get(k)} if isinstance(c, dict) else c
                         for c in out["causes"]]
    out.update({k: v for k, v in details.items() if k not in _DETAILS_ORDER and v})
    return out


_GO_ESCAPES = (("<", "\\u003c"), (">", "\\u003e"), ("&", "\\u0026"), ("\u2028", "\\u2028"),
               ("\u2029", "\\u2029"))


def encode(obj: Any) -> bytes:
    """JSON as Go's json.Encoder writes it (kube-apiserver's serializer, runtime/serializer/json):
    compact, UTF-8, <, > and & escaped as \\u003c \\u003e \\u0026, then a newline."""
    text = json.dumps(obj, separators=(",", ":"), ensure_ascii=False)
    for raw, escaped in _GO_ESCAPES:
        if raw in text:
            text = text.replace(raw, escaped)
    return text.encode("utf-8", errors="replace") + b"\n"


def _details(rt: ResourceType, name: str) -> dict[str, Any]:
    d: dict[str, Any] = {"name": name, "kind": rt.plural}
    if rt.group:
        d["group"] = rt.group
    return d


def not_found(rt: ResourceType, name: str) -> APIError:
    return APIError(404, "NotFound", f'{rt.group_resource} "{name}" not found', _details(rt, name))


def already_exists(rt: ResourceType, name: str) -> APIError:
    return APIError(409, "AlreadyExists", f'{rt.group_resource} "{name}" already exists', _details(rt, name))


def conflict(rt: ResourceType, name: str, why: str = "") -> APIError:
    why = why or "the object has been modified; please apply your changes to the latest version and try again"
    return APIError(409, "Conflict", f'Operation cannot be fulfilled on {rt.group_resource} "{name}": {why}',
                    _details(rt, name))


def invalid(rt: ResourceType, name: str, errors: list[FieldError]) -> APIError:
    causes = [{"reason": e.type.reason, "message": e.body(), "field": e.field} for e in errors]
    details: dict[str, Any] = {"name": name, "kind": rt.kind, "causes": causes}
    if not name:
        del details["name"]  # StatusDetails.name is omitempty
    if rt.group:
        details["group"] = rt.group
    return APIError(422, "Invalid", f'{rt.group_kind} "{name}" is invalid: {aggregate(errors)}', details)


def bad_request(message: str) -> APIError:
    return APIError(400, "BadRequest", message)


def gone(requested: str, current: str) -> APIError:
    return APIError(410, "Expired", f"too old resource version: {requested} ({current})")


# apiserver pkg/storage/etcd3/errors.go (inconsistentContinue), with a token to go on at the latest version
INCONSISTENT_CONTINUE = (
    "The provided continue parameter is too old to display a consistent list result. You can start a new "
    "list without the continue parameter, or use the continue token in this response to retrieve the "
    "remainder of the results. Continuing with the provided token results in an inconsistent list - "
    "objects that were created, modified, or deleted between the time the first chunk was returned and "
    "now may show up in the list.")


def continue_expired(new_token: str) -> APIError:
    return APIError(410, "Expired", INCONSISTENT_CONTINUE, metadata={"continue": new_token})


def unauthorized() -> APIError:
    return APIError(401, "Unauthorized", "Unauthorized")


def forbidden(message: str) -> APIError:
    return APIError(403, "Forbidden", message)


def method_not_allowed(
    message: str = "the server does not allow this method on the requested resource",
) -> APIError:
    return APIError(405, "MethodNotAllowed", message)


def internal_error(message: str) -> APIError:
    return APIError(500, "InternalError", f"Internal error occurred: {message}",
                    {"causes": [{"message": message}]})


def too_large() -> APIError:
    return APIError(413, "RequestEntityTooLarge", "Request entity too large: limit is 3145728")


def namespace_not_found(ns: str) -> APIError:
    return APIError(404, "NotFound", f'namespaces "{ns}" not found', {"name": ns, "kind": "namespaces"})


def namespace_terminating(rt: ResourceType, name: str, ns: str) -> APIError:
    return APIError(403, "Forbidden",
                    f'{rt.group_resource} "{name}" is forbidden: unable to create new content in namespace '
                    f"{ns} because it is being terminated",
                    {"name": name, "kind": rt.plural, "causes": [{"reason": "NamespaceTerminating",
                     "message": f"namespace {ns} is being terminated", "field": "metadata.namespace"}]})
