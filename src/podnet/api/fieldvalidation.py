"""Server-side field validation (`?fieldValidation=Ignore|Warn|Strict`) for unknown fields.

As kube-apiserver does since v1.27: a field the kind's v1 schema lacks (`selector:` indented
under a Service port) is never stored. What the client hears depends on the request's
`fieldValidation` (the server's default, when absent, is `Warn`):

- `Warn`:   one `Warning: 299 - "unknown field \\"spec.ports[0].selector\\""` header per field;
            kubectl prints `Warning: unknown field "spec.ports[0].selector"`.
- `Ignore`: nothing.
- `Strict`: POST/PUT 400 `Service in version "v1" cannot be handled as a Service: strict
            decoding error: unknown field "..."`; PATCH 422 ` "" is invalid: patch: Invalid value: ...`.
- server-side apply: 400 `failed to create typed patch object (...): .spec...: field not
            declared in schema`, whatever `fieldValidation` says (Kubernetes' typed conversion).

kubectl v1.32 always sends the parameter, from its `--validate` flag: `strict` (the default)
-> Strict, `warn` -> Warn, `false` -> Ignore. The Python client sends none (-> Warn).

Which fields are unknown: `podnet.model.fieldcheck`. Handlers call `directive()` once per
request, `check_body()` on a decoded POST/PUT body, `check_patched()` on a patched object,
and `add_warnings()` on the response.
"""

from __future__ import annotations

import json
from typing import Any

from aiohttp import web

from podnet.api.errors import APIError, bad_request
from podnet.model import fieldcheck
from podnet.model.errors import FieldError, go_quote, invalid, not_supported
from podnet.model.kinds import Obj, ResourceType

IGNORE, WARN, STRICT = "Ignore", "Warn", "Strict"
_ALLOWED = ("", IGNORE, WARN, STRICT)


def directive(request: web.Request, options_kind: str) -> str:
    """The request's `fieldValidation` (Warn when absent); an unknown value is 422, as
    `ValidateCreateOptions` / `ValidateUpdateOptions` / `ValidatePatchOptions` answer."""
    value = request.query.get("fieldValidation", "")
    if value not in _ALLOWED:
        err = not_supported("fieldValidation", value, list(_ALLOWED))
        raise _options_invalid(options_kind, [err])
    return value or WARN


def _options_invalid(options_kind: str, errs: list[FieldError]) -> APIError:
    causes = [{"reason": e.type.reason, "message": e.body(), "field": e.field} for e in errs]
    text = errs[0].error() if len(errs) == 1 else "[" + ", ".join(e.error() for e in errs) + "]"
    return APIError(422, "Invalid", f'{options_kind}.meta.k8s.io "" is invalid: {text}',
                    {"group": "meta.k8s.io", "kind": options_kind, "causes": causes})


def check_body(rt: ResourceType, body: Obj, mode: str) -> list[str]:
    """A POST/PUT body: unknown fields dropped; Strict raises 400; returns the warning texts."""
    if mode == STRICT:
        paths = fieldcheck.unknown_fields(body, rt.kind)
        if paths:
            kind = str(body.get("kind") or rt.kind)
            raise bad_request(f'{kind} in version "{rt.version}" cannot be handled as a {rt.kind}: '
                              f"{fieldcheck.strict_decoding_error(paths)}")
        return []
    paths = fieldcheck.drop_unknown_fields(body, rt.kind)
    return [fieldcheck.unknown_field_message(p) for p in paths] if mode == WARN else []


def check_patched(rt: ResourceType, patched: Obj, mode: str, patch_value: str,
                  old: Obj | None = None) -> list[str]:
    """An object after a merge / JSON / strategic patch: as `check_body`, but Strict is the
    422 Kubernetes' patcher returns: ` "" is invalid: patch: Invalid value: "<patch>": ...`.
    Unknown fields the stored `old` object already had (stored before podnet dropped them;
    Kubernetes never stores any) are dropped without a word."""
    legacy = set(fieldcheck.unknown_fields(old, rt.kind)) if old is not None else set()
    if mode == STRICT:
        paths = [p for p in fieldcheck.unknown_fields(patched, rt.kind) if p not in legacy]
        if paths:
            err = invalid("patch", patch_value, fieldcheck.strict_decoding_error(paths))
            raise APIError(422, "Invalid", f' "" is invalid: {err.error()}',
                           {"causes": [{"reason": err.type.reason, "message": err.body(), "field": "patch"}]})
    paths = [p for p in fieldcheck.drop_unknown_fields(patched, rt.kind) if p not in legacy]
    return [fieldcheck.unknown_field_message(p) for p in paths] if mode == WARN else []


def check_applied(rt: ResourceType, name: str, config: Obj) -> None:
    """Server-side apply: the applied configuration is converted to the typed schema, which
    fails on an unknown field whatever `fieldValidation` says (structured-merge-diff's
    `field not declared in schema`). Kubernetes answers 500 for this (a known bug); podnet
    answers 400 BadRequest with the same text."""
    paths = fieldcheck.unknown_fields(config, rt.kind)
    if not paths:
        return
    gv = rt.api_version if rt.group else f"/{rt.version}"
    raw_meta = config.get("metadata")
    meta: dict[str, Any] = raw_meta if isinstance(raw_meta, dict) else {}
    # objectGVKNN: namespace and name as the applied configuration gives them
    where = f"{meta.get('namespace') or ''}/{meta.get('name') or name}"
    errs = [f".{p}: field not declared in schema" for p in paths]
    text = errs[0] if len(errs) == 1 else "errors:\n" + "\n".join(f"  {e}" for e in errs)
    raise bad_request(f"failed to create typed patch object ({where}; {gv}, Kind={rt.kind}): {text}")


def go_map_text(value: Any) -> str:
    """`fmt.Sprintf("%+v", patchMap)` of a decoded JSON patch: `map[spec:map[ports:[map[port:80]]]]`."""
    return _go_v(value)


def _go_v(value: Any) -> str:
    if isinstance(value, dict):
        return "map[" + " ".join(f"{k}:{_go_v(v)}" for k, v in sorted(value.items())) + "]"
    if isinstance(value, list):
        return "[" + " ".join(_go_v(v) for v in value) + "]"
    if value is None:
        return "<nil>"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        return repr(value) if not value.is_integer() else str(int(value))
    return str(value)


def patch_value(ctype: str, body: Any, patched: Obj) -> str:
    """The value Kubernetes quotes in a strict PATCH error: the patch map for a strategic merge
    patch, the patched object's JSON for merge and JSON patches."""
    if "strategic" in ctype:
        return go_map_text(body)
    return json.dumps(patched, separators=(",", ":"))


def warning_header(text: str) -> str:
    """RFC 7234 warning as kube-apiserver writes it: `299 - "<text, Go-quoted>"`."""
    return f"299 - {go_quote(text)}"


def add_warnings(response: web.StreamResponse, warnings: list[str]) -> web.StreamResponse:
    seen: set[str] = set()
    for text in warnings:
        if text not in seen:
            seen.add(text)
            response.headers.add("Warning", warning_header(text))
    return response
