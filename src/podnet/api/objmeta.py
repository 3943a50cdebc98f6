"""Server-set object metadata: timestamps, uids, generated names, list shapes."""

from __future__ import annotations

import copy
import datetime as dt
import os
import random
import threading
import time
from typing import Any

from podnet.model.kinds import Obj, ResourceType

# Kubernetes' utilrand alphabet: no vowels, no confusable characters.
_NAME_ALPHABET = "bcdfghjklmnpqrstvwxz2456789"
_MAX_GENERATE_PREFIX = 58  # 63 - 5 random characters


def now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def rfc3339(t: dt.datetime) -> str:
    return t.astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


_last_second: list[Any] = [-1, ""]


def now_rfc3339() -> str:
    """`rfc3339(now())`, formatted once per second (every create stamps creationTimestamp)."""
    second = int(time.time())
    if second != _last_second[0]:
        _last_second[:] = [second, rfc3339(dt.datetime.fromtimestamp(second, dt.UTC))]
    return str(_last_second[1])


_UID_BATCH = 64
_uid_bytes = bytearray()
_uid_lock = threading.Lock()


def _forget_random_bytes() -> None:
    _uid_bytes.clear()  # a forked child must never hand out its parent's next uids


os.register_at_fork(after_in_child=_forget_random_bytes)


def new_uid() -> str:
    """A random (version 4) UUID, as `str(uuid.uuid4())`, from urandom read 64 uids at a time."""
    with _uid_lock:  # uids are also made on worker threads
        if not _uid_bytes:
            _uid_bytes.extend(os.urandom(16 * _UID_BATCH))
        b = _uid_bytes[-16:]
        del _uid_bytes[-16:]
    b[6] = (b[6] & 0x0F) | 0x40  # version 4
    b[8] = (b[8] & 0x3F) | 0x80  # RFC 4122 variant
    h = b.hex()
    return f"{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:]}"


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
