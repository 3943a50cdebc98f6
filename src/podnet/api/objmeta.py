"""Server-set object metadata: timestamps, uids, generated names, list shapes."""

from __future__ import annotations

import copy
import datetime as dt
import random
import uuid
from typing import Any

from podnet.model.kinds import Obj, ResourceType

# Kubernetes' utilrand alphabet: no vowels, no confusable characters.
_NAME_ALPHABET = "bcdfghjklmnpqrstvwxz2456789"
_MAX_GENERATE_PREFIX = 58  # 63 - 5 random characters


def now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def rfc3339(t: dt.datetime) -> str:
    return t.astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def new_uid() -> str:
    return str(uuid.uuid4())


def generate_name(prefix: str) -> str:
    """`SimpleNameGenerator`: the prefix (cut to 58 characters) plus 5 random characters."""
    # not secret (Kubernetes uses math/rand): the random module's generator, reseeded in every forked
    # process, instead of one urandom read per character
    return prefix[:_MAX_GENERATE_PREFIX] + "".join(random.choices(_NAME_ALPHABET, k=5))


def deep(obj: Any) -> Any:
    return copy.deepcopy(obj)


def d(value: Any) -> dict[str, Any]:
    """value when it is a JSON object, else {}: stored objects of loosely validated kinds may hold
    anything where a map belongs, and reading them must not fail."""
    return value if isinstance(value, dict) else {}


def metadata(obj: Obj) -> dict[str, Any]:
    meta = obj.get("metadata")
    if not isinstance(meta, dict):
        meta = {}
        obj["metadata"] = meta
    return meta


def name_of(obj: Obj) -> str:
    return str((obj.get("metadata") or {}).get("name") or "")


def namespace_of(obj: Obj) -> str:
    return str((obj.get("metadata") or {}).get("namespace") or "")


def uid_of(obj: Obj) -> str:
    return str((obj.get("metadata") or {}).get("uid") or "")


def rv_of(obj: Obj) -> str:
    return str((obj.get("metadata") or {}).get("resourceVersion") or "")


def finalizers_of(obj: Obj) -> list[str]:
    fins = (obj.get("metadata") or {}).get("finalizers") or []
    return [str(f) for f in fins] if isinstance(fins, list) else []


def with_type(rt: ResourceType, obj: Obj) -> Obj:
    """The object with `kind`/`apiVersion` set, as every response carries them."""
    obj["kind"] = rt.kind
    obj["apiVersion"] = rt.api_version
    return obj


def list_object(rt: ResourceType, items: list[Obj], rv: str, cont: str = "",
                remaining: int | None = None) -> Obj:
    meta: dict[str, Any] = {"resourceVersion": rv}
    if cont:
        meta["continue"] = cont
    if remaining is not None:
        meta["remainingItemCount"] = remaining
    return {"kind": rt.list_kind_name(), "apiVersion": rt.api_version, "metadata": meta, "items": items}
