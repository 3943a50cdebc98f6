"""FreezeAfterFullCollection: survivors of a slow full collection are frozen, garbage is not."""

from __future__ import annotations

import gc
import weakref
from collections.abc import Iterator

import pytest

from podnet.core.gcfreeze import FreezeAfterFullCollection


class Node:
    def __init__(self) -> None:
        self.other: Node | None = None


@pytest.fixture
def freezer() -> Iterator[FreezeAfterFullCollection]:
    f = FreezeAfterFullCollection(min_pause_s=0.0)  # every full collection counts as slow
    f.install()
    try:
        yield f
    finally:
        f.uninstall()


def _in_collector(obj: object) -> bool:
    return any(o is obj for o in gc.get_objects())


def test_survivors_of_a_full_collection_are_frozen_and_garbage_cycles_collected(
        freezer: FreezeAfterFullCollection) -> None:
    live = Node()
    live.other = live
    garbage = Node()
    garbage.other = garbage
    gone = weakref.ref(garbage)
    del garbage
    gc.collect()
    assert gone() is None  # the cycle that was garbage was collected, not frozen
    assert freezer.freezes >= 1 and gc.get_freeze_count() > 0
    assert not _in_collector(live)  # frozen: later full collections do not walk it
    gc.collect(0)
    assert not _in_collector(live)
    later = Node()
    assert _in_collector(later)


def test_fast_full_collections_freeze_nothing() -> None:
    before = gc.get_freeze_count()  # other tests in this worker may have frozen objects (fork server)
    f = FreezeAfterFullCollection(min_pause_s=3600.0)
    f.install()
    try:
        live = Node()
        gc.collect()
        assert f.freezes == 0 and f.last_full_s > 0
        assert gc.get_freeze_count() == before and _in_collector(live)
    finally:
        f.uninstall()


def test_a_frozen_object_is_still_freed_by_reference_counting(freezer: FreezeAfterFullCollection) -> None:
    obj = Node()
    ref = weakref.ref(obj)
    gc.collect()
    assert not _in_collector(obj)
    del obj
    assert ref() is None


def test_uninstall_unfreezes(freezer: FreezeAfterFullCollection) -> None:
    live = Node()
    gc.collect()
    assert not _in_collector(live)
    freezer.uninstall()
    assert gc.get_freeze_count() == 0 and _in_collector(live)
