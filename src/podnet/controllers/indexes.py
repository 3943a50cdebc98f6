"""Secondary indexes over informer caches, so a reconcile looks at the few objects it needs
instead of scanning every pod or slice in the cluster."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Mapping

from podnet.controllers import objects
from podnet.model.kinds import Obj

_Pairs = tuple[tuple[str, str], ...]


class _PairIndex:
    """(namespace, key, value) -> object keys, for each pair of one string map per object (its
    labels, or its equality selector)."""

    def __init__(self) -> None:
        self._by_pair: dict[tuple[str, str, str], set[str]] = defaultdict(set)
        self._seen: dict[str, tuple[str, _Pairs]] = {}

    @staticmethod
    def pairs_of(mapping: Mapping[str, str] | None) -> _Pairs:
        return tuple(sorted((str(a), str(b)) for a, b in (mapping or {}).items()))

    def holds(self, k: str, ns: str, pairs: _Pairs) -> bool:
        """Whether k is indexed in ns under exactly these pairs already."""
        return self._seen.get(k) == (ns, pairs)

    def put(self, k: str, ns: str, pairs: _Pairs) -> None:
        """Index k under these pairs (k must have been dropped first)."""
        self._seen[k] = (ns, pairs)
        for a, b in pairs:
            self._by_pair[(ns, a, b)].add(k)

    def drop(self, k: str) -> str | None:
        """Forget k; the namespace it was indexed in, or None when it was not."""
        prev = self._seen.pop(k, None)
        if prev is None:
            return None
        ns, pairs = prev
        for a, b in pairs:
            s = self._by_pair.get((ns, a, b))
            if s is not None:
                s.discard(k)
                if not s:
                    del self._by_pair[(ns, a, b)]
        return ns

    def keys_with(self, ns: str, key: str, value: str) -> set[str]:
        """The live set of keys indexed under one pair (do not modify it)."""
        return self._by_pair.get((ns, key, value), set())


class LabelIndex:
    """(namespace, label key, label value) -> object keys, and namespace -> object keys."""

    def __init__(self) -> None:
        self._labels = _PairIndex()
        self._by_ns: dict[str, set[str]] = defaultdict(set)

    def put(self, obj: Obj) -> None:
        k = objects.key(obj)
        ns = objects.namespace(obj)
        pairs = _PairIndex.pairs_of(objects.labels(obj))
        if self._labels.holds(k, ns, pairs):
            return
        self.drop(k)
        self._labels.put(k, ns, pairs)
        self._by_ns[ns].add(k)

    def drop(self, k: str) -> None:
        ns = self._labels.drop(k)
        if ns is not None:
            self._by_ns[ns].discard(k)

    def in_namespace(self, ns: str) -> set[str]:
        return set(self._by_ns.get(ns, ()))

    def matching(self, ns: str, equality: Mapping[str, str]) -> set[str]:
        """Keys that may match an equality selector (a superset: callers still match fully)."""
        if not equality:
            return set()
        best: set[str] | None = None
        for a, b in equality.items():
            s = self._labels.keys_with(ns, str(a), str(b))
            if best is None or len(s) < len(best):
                best = s
        return set(best or ())


class SelectorIndex:
    """Objects with an equality selector (Services), indexed by each (namespace, key, value) pair of
    it: the candidates for a pod are found from the pod's own labels."""

    def __init__(self) -> None:
        self._selectors = _PairIndex()

    def put(self, k: str, ns: str, selector: Mapping[str, str] | None) -> None:
        pairs = _PairIndex.pairs_of(selector)
        if self._selectors.holds(k, ns, pairs):
            return
        self.drop(k)
        self._selectors.put(k, ns, pairs)

    def drop(self, k: str) -> None:
        self._selectors.drop(k)

    def candidates(self, ns: str, label_sets: Iterable[Mapping[str, str]]) -> set[str]:
        out: set[str] = set()
        for labels in label_sets:
            for a, b in labels.items():
                out |= self._selectors.keys_with(ns, str(a), str(b))
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
