"""gc_paused / without_gc: the collector is off inside, back as it was afterwards (also after an error)."""

from __future__ import annotations

import gc

import pytest

from podnet.core.gcpause import gc_paused, without_gc


def test_collector_is_off_inside_and_back_on_after_an_error() -> None:
    assert gc.isenabled()
    with pytest.raises(ValueError, match="boom"), gc_paused():
        assert not gc.isenabled()
        raise ValueError("boom")
    assert gc.isenabled()


def test_a_collector_switched_off_by_the_caller_stays_off() -> None:
    gc.disable()
    try:
        with gc_paused():
            with gc_paused():
                pass
            assert not gc.isenabled()
        assert not gc.isenabled()
    finally:
        gc.enable()


def test_decorated_function_runs_without_collector_and_returns_its_value() -> None:
    @without_gc
    def probe(x: int) -> tuple[int, bool]:
        return x * 2, gc.isenabled()

    assert probe(21) == (42, False)
    assert gc.isenabled()
