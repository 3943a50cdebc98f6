"""Label and field selectors for list and watch, with kube-apiserver's error text.

Parsing and matching come from `podnet.model.selectors`; this module adds what the API
server does around them: one filter for both, and the 400 BadRequest a malformed
selector gets.
"""

from __future__ import annotations

from dataclasses import dataclass

from podnet.api.errors import APIError, bad_request
from podnet.model import selectors
from podnet.model.kinds import Obj, ResourceType


@dataclass(frozen=True)
class FieldSelector:
    terms: tuple[tuple[str, str, str], ...]  # (field, op, value)

    def matches(self, obj: Obj) -> bool:
        return selectors.field_matches(obj, self.terms)

    def exact_name(self) -> str | None:
        for path, op, value in self.terms:
            if path == "metadata.name" and op in ("=", "=="):
                return value
        return None


@dataclass(frozen=True)
class Filter:
    rt: ResourceType
    labels: selectors.Selector
    fields: FieldSelector
    active: bool

    def matches(self, obj: Obj) -> bool:
        if not self.active:
            return True
        raw = (obj.get("metadata") or {}).get("labels") or {}
        if not isinstance(raw, dict):
            raw = {}
        labels = {str(k): "" if v is None else str(v) for k, v in raw.items()}
        return self.labels.matches(labels) and self.fields.matches(obj)


def make_filter(rt: ResourceType, label_selector: str, field_selector: str) -> Filter:
    """Raises APIError 400 with kube-apiserver's message for a malformed selector."""
    try:
        labels = selectors.parse(label_selector)
        terms = selectors.parse_field_selector(field_selector)
        selectors.check_field_selector(rt.kind, terms)
    except ValueError as e:
        raise _selector_error(rt, label_selector, field_selector, str(e)) from e
    active = bool(label_selector.strip() or field_selector.strip())
    return Filter(rt, labels, FieldSelector(tuple(terms)), active)


def _selector_error(rt: ResourceType, ls: str, fs: str, why: str) -> APIError:
    gvr = f"{rt.api_version}, Resource={rt.plural}" if rt.group else f"/{rt.version}, Resource={rt.plural}"
    return bad_request(f'Unable to find "{gvr}" that match label selector "{ls}", '
                       f'field selector "{fs}": {why}')
