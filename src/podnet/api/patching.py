"""PATCH bodies: JSON merge patch, JSON patch, strategic merge patch; content-type dispatch."""

from __future__ import annotations

import copy
from typing import Any

import jsonpatch

from podnet.api import bodies
from podnet.api.errors import APIError, bad_request, invalid
from podnet.api.smp import PatchError, apply_strategic_merge
from podnet.model.errors import FieldError, required, too_long
from podnet.model.errors import invalid as invalid_field
from podnet.model.kinds import ResourceType

MERGE = "application/merge-patch+json"
JSON_PATCH = "application/json-patch+json"
STRATEGIC = "application/strategic-merge-patch+json"
APPLY = "application/apply-patch+yaml"
PATCH_TYPES = (JSON_PATCH, MERGE, APPLY, STRATEGIC)


def unsupported_media_type(ctype: str) -> APIError:
    return APIError(415, "UnsupportedMediaType",
                    f"the body of the request was in an unknown format - accepted media types include: "
                    f"{', '.join(PATCH_TYPES)}")


PATCH_OPTIONS = ResourceType("meta.k8s.io", "v1", "PatchOptions", "patchoptions", "patchoptions", False)
FIELD_MANAGER_MAX_LENGTH = 128


def validate_patch_options(ctype: str, field_manager: str) -> None:
    """apimachinery's ValidatePatchOptions: apply needs a fieldManager (kubectl sends "kubectl";
    controllers must set one), of at most 128 printable characters. 422 PatchOptions Invalid."""
    errs: list[FieldError] = []
    if ctype == APPLY and not field_manager:
        errs.append(required("fieldManager", "is required for apply patch"))
    if len(field_manager.encode()) > FIELD_MANAGER_MAX_LENGTH:
        errs.append(too_long("fieldManager", FIELD_MANAGER_MAX_LENGTH))
    for i, ch in enumerate(field_manager):
        if not ch.isprintable():
            errs.append(invalid_field("fieldManager", field_manager,
                                      f"invalid character U+{ord(ch):04X} (at position {i})"))
    if errs:
        raise invalid(PATCH_OPTIONS, "", errs)


def media_type(content_type: str) -> str:
    return content_type.split(";", 1)[0].strip().lower()


async def decode_patch(ctype: str, raw: bytes) -> Any:
    if not raw.strip():
        return None
    try:
        return await (bodies.decode_yaml(raw) if ctype == APPLY else bodies.decode_json(raw))
    except bodies.DecodeError as e:
        kind = "yaml" if ctype == APPLY else "json"
        raise bad_request(f"error decoding patch: {kind} parse error: {e}") from None


def merge_patch(target: Any, patch: Any) -> Any:
    """RFC 7386."""
    if not isinstance(patch, dict):
        return copy.deepcopy(patch)
    result = copy.deepcopy(target) if isinstance(target, dict) else {}
    for k, v in patch.items():
        if v is None:
            result.pop(k, None)
        else:
            result[k] = merge_patch(result.get(k), v)
    return result


def apply_patch(rt: ResourceType | None, ctype: str, doc: dict[str, Any], patch: Any) -> dict[str, Any]:
    """Apply a decoded merge / JSON / strategic patch to doc (not modified). Raises APIError."""
    if ctype == MERGE:
        if not isinstance(patch, dict):
            raise bad_request("error decoding patch: merge patch body must be a JSON object")
        out = merge_patch(doc, patch)
    elif ctype == JSON_PATCH:
        if not isinstance(patch, list):
            raise bad_request("json: cannot unmarshal object into Go value of type jsonpatch.Patch")
        try:
            out = jsonpatch.JsonPatch(patch).apply(copy.deepcopy(doc))
        except (jsonpatch.JsonPatchException, jsonpatch.JsonPointerException) as e:
            raise APIError(422, "Invalid", f"the server rejected our request due to an error in our "
                           f"request: {_one_line(e)}") from e
        except (TypeError, KeyError, ValueError) as e:
            raise bad_request(f"invalid JSON patch: {_one_line(e)}") from e
    elif ctype == STRATEGIC:
        try:
            out = apply_strategic_merge(rt, doc, patch)
        except PatchError as e:
            raise bad_request(str(e)) from e
    else:
        raise unsupported_media_type(ctype)
    if not isinstance(out, dict):
        raise bad_request("the patched object is not a JSON object")
    return out


def _one_line(e: Exception) -> str:
    return " ".join(str(e).split())
