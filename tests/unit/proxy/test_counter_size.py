"""Counter sets are declared with a size (nft's default for a dynamic set is 65,535 elements, and the
kernel refuses more); a sync that moves a counter set to another size replaces the table."""

from __future__ import annotations

import pytest
from proxy_fixtures import NODE1, ep, eslice, port, state_of, svc

from podnet.proxy import render
from podnet.proxy.render import counter_size, is_full, render_delta, render_full


def test_counter_size_leaves_room_for_twice_the_elements_in_powers_of_two() -> None:
    assert [counter_size(n) for n in (0, 1, 32768, 32769, 65536, 100_000)] == \
        [65536, 65536, 65536, 131072, 131072, 262144]


def states(n: int, previous: render.RulesetState | None = None) -> render.RulesetState:
    svcs = [svc(f"s{i}", f"10.96.1.{i + 1}", [port(80, 8080)]) for i in range(n)]
    slices = [eslice(f"s{i}", [ep(f"10.244.1.{i + 2}", "n1")], [("", 8080, "TCP")]) for i in range(n)]
    return state_of(svcs, slices, NODE1, previous=previous)


def test_growing_past_a_counter_size_makes_the_sync_full(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(render, "MIN_COUNTER_SIZE", 4)
    s2 = states(2)
    assert "size 4" in render_full(s2)
    s3 = states(3, s2)
    text = render_delta(s2, s3)
    assert is_full(text) and "size 8" in text  # 3 Services need room for 6: the next power of two
    s4 = states(4, s3)
    assert not is_full(render_delta(s3, s4))  # still within size 8
    assert is_full(render_delta(s4, states(2, s4)))  # and back down to size 4
