"""Secondary indexes over informer caches, so a reconcile looks at the few objects it needs
instead of scanning every pod or slice in the cluster."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Mapping

from podnet.controllers import objects as o
from podnet.model.kinds import Obj


class LabelIndex:
    """(namespace, label key, label value) -> object keys, and namespace -> object keys."""

    def __init__(self) -> None:
        self._by_label: dict[tuple[str, str, str], set[str]] = defaultdict(set)
        self._by_ns: dict[str, set[str]] = defaultdict(set)
        self._seen: dict[str, tuple[str, tuple[tuple[str, str], ...]]] = {}

    def put(self, obj: Obj) -> None:
        k = o.key(obj)
        ns = o.namespace(obj)
        pairs = tuple(sorted((str(a), str(b)) for a, b in o.labels(obj).items()))
        if self._seen.get(k) == (ns, pairs):
            return
        self.drop(k)
        self._seen[k] = (ns, pairs)
        self._by_ns[ns].add(k)
        for a, b in pairs:
            self._by_label[(ns, a, b)].add(k)

    def drop(self, k: str) -> None:
        prev = self._seen.pop(k, None)
        if prev is None:
            return
        ns, pairs = prev
        self._by_ns[ns].discard(k)
        for a, b in pairs:
            s = self._by_label.get((ns, a, b))
            if s is not None:
                s.discard(k)
                if not s:
                    del self._by_label[(ns, a, b)]

    def in_namespace(self, ns: str) -> set[str]:
        return set(self._by_ns.get(ns, ()))

    def matching(self, ns: str, equality: Mapping[str, str]) -> set[str]:
        """Keys that may match an equality selector (a superset: callers still match fully)."""
        if not equality:
            return set()
        best: set[str] | None = None
        for a, b in equality.items():
            s = self._by_label.get((ns, str(a), str(b)), set())
            if best is None or len(s) < len(best):
                best = s
        return set(best or ())


class SelectorIndex:
    """Objects with an equality selector (Services), indexed by each (namespace, key, value) pair of
    it: the candidates for a pod are found from the pod's own labels."""

    def __init__(self) -> None:
        self._by_pair: dict[tuple[str, str, str], set[str]] = defaultdict(set)
        self._seen: dict[str, tuple[str, tuple[tuple[str, str], ...]]] = {}

    def put(self, k: str, ns: str, selector: Mapping[str, str] | None) -> None:
        pairs = tuple(sorted((str(a), str(b)) for a, b in (selector or {}).items()))
        if self._seen.get(k) == (ns, pairs):
            return
        self.drop(k)
        self._seen[k] = (ns, pairs)
        for a, b in pairs:
            self._by_pair[(ns, a, b)].add(k)

    def drop(self, k: str) -> None:
        prev = self._seen.pop(k, None)
        if prev is None:
            return
        ns, pairs = prev
        for a, b in pairs:
            s = self._by_pair.get((ns, a, b))
            if s is not None:
                s.discard(k)
                if not s:
                    del self._by_pair[(ns, a, b)]

    def candidates(self, ns: str, label_sets: Iterable[Mapping[str, str]]) -> set[str]:
        out: set[str] = set()
        for labels in label_sets:
            for a, b in labels.items():
                out |= self._by_pair.get((ns, str(a), str(b)), set())
        return out


class GroupIndex:
    """group (e.g. (namespace, service name)) -> object keys."""

    def __init__(self) -> None:
        self._groups: dict[tuple[str, str], set[str]] = defaultdict(set)
        self._of: dict[str, tuple[str, str]] = {}

    def put(self, k: str, group: tuple[str, str] | None) -> None:
        self.drop(k)
        if group is not None:
            self._of[k] = group
            self._groups[group].add(k)

    def drop(self, k: str) -> None:
        g = self._of.pop(k, None)
        if g is not None:
            self._groups[g].discard(k)
            if not self._groups[g]:
                del self._groups[g]

    def get(self, group: tuple[str, str]) -> set[str]:
        return set(self._groups.get(group, ()))
