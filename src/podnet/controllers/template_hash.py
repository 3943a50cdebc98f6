"""`pod-template-hash`: a short, stable name for a pod template (ComputeHash in kube-controller-manager).

FNV-1a 32 over the template's canonical JSON (plus the collision count), printed in
decimal and spelled with Kubernetes' safe alphabet (`rand.SafeEncodeString`), e.g. `7c5ddbdf54`.
"""

from __future__ import annotations

import copy
import json
from typing import Any

HASH_LABEL = "pod-template-hash"
_ALPHABET = "bcdfghjklmnpqrstvwxz2456789"


def fnv1a_32(data: bytes) -> int:
    h = 0x811C9DC5
    for b in data:
        h ^= b
        h = (h * 0x01000193) & 0xFFFFFFFF
    return h


def safe_encode(text: str) -> str:
    return "".join(_ALPHABET[ord(c) % len(_ALPHABET)] for c in text)


def strip_hash(template: dict[str, Any]) -> dict[str, Any]:
    t = copy.deepcopy(template or {})
    labels = (t.get("metadata") or {}).get("labels")
    if isinstance(labels, dict):
        labels.pop(HASH_LABEL, None)
    return t


def canonical(template: dict[str, Any]) -> str:
    return json.dumps(strip_hash(template), sort_keys=True, separators=(",", ":"))


def compute_hash(template: dict[str, Any], collision_count: int | None = None) -> str:
    data = canonical(template).encode()
    if collision_count:
        data += str(collision_count).encode()
    return safe_encode(str(fnv1a_32(data)))


def equal_ignore_hash(a: dict[str, Any], b: dict[str, Any]) -> bool:
    return canonical(a) == canonical(b)
