"""The controllers' secondary indexes: what a lookup returns after objects are added, relabelled,
moved and dropped."""

from __future__ import annotations

from podnet.controllers.indexes import GroupIndex, LabelIndex, SelectorIndex
from podnet.model.kinds import Obj


def pod(ns: str, name: str, **labels: str) -> Obj:
    return {"metadata": {"namespace": ns, "name": name, "labels": dict(labels)}}


def test_label_index_follows_relabels_and_drops() -> None:
    idx = LabelIndex()
    idx.put(pod("a", "p1", app="web", tier="fe"))
    idx.put(pod("a", "p2", app="web"))
    idx.put(pod("b", "p3", app="web"))
    assert idx.matching("a", {"app": "web"}) == {"a/p1", "a/p2"}
    assert idx.matching("a", {"app": "web", "tier": "fe"}) == {"a/p1"}  # the smallest candidate set
    assert idx.matching("a", {}) == set()
    assert idx.in_namespace("a") == {"a/p1", "a/p2"}

    idx.put(pod("a", "p1", app="db"))  # relabelled: gone from its old pairs
    assert idx.matching("a", {"app": "web"}) == {"a/p2"}
    assert idx.matching("a", {"tier": "fe"}) == set()
    assert idx.matching("a", {"app": "db"}) == {"a/p1"}

    idx.drop("a/p2")
    idx.drop("a/unknown")  # dropping what was never put is a no-op
    assert idx.matching("a", {"app": "web"}) == set()
    assert idx.in_namespace("a") == {"a/p1"}
    assert idx.in_namespace("b") == {"b/p3"}


def test_label_index_results_are_copies() -> None:
    idx = LabelIndex()
    idx.put(pod("a", "p1", app="web"))
    got = idx.matching("a", {"app": "web"})
    got.add("a/intruder")
    idx.in_namespace("a").add("a/intruder")
    assert idx.matching("a", {"app": "web"}) == {"a/p1"}
    assert idx.in_namespace("a") == {"a/p1"}


def test_selector_index_candidates_by_any_pair() -> None:
    idx = SelectorIndex()
    idx.put("a/web", "a", {"app": "web"})
    idx.put("a/fe", "a", {"tier": "fe", "app": "web"})
    idx.put("b/web", "b", {"app": "web"})
    idx.put("a/none", "a", None)
    assert idx.candidates("a", [{"app": "web"}]) == {"a/web", "a/fe"}
    assert idx.candidates("a", [{"tier": "fe"}, {"app": "db"}]) == {"a/fe"}
    idx.put("a/fe", "a", {"tier": "be"})  # the selector changed
    assert idx.candidates("a", [{"app": "web"}]) == {"a/web"}
    idx.drop("a/web")
    assert idx.candidates("a", [{"app": "web"}, {"tier": "be"}]) == {"a/fe"}
    assert idx.candidates("b", [{"app": "web"}]) == {"b/web"}


def test_group_index_moves_keys_between_groups() -> None:
    idx = GroupIndex()
    idx.put("a/s1", ("a", "web"))
    idx.put("a/s2", ("a", "web"))
    idx.put("a/s1", ("a", "db"))
    assert idx.get(("a", "web")) == {"a/s2"}
    assert idx.get(("a", "db")) == {"a/s1"}
    idx.put("a/s2", None)
    assert idx.get(("a", "web")) == set()
