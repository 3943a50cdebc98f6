"""render_full / render_delta against golden files (regenerate with PODNET_UPDATE_GOLDEN=1)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from proxy_fixtures import CASES, NODE1, all_cases, ep, eslice, state_of

from podnet.proxy.fake import FakeNft
from podnet.proxy.render import is_full, render_delta, render_full

GOLDEN = Path(__file__).parent / "golden"
UPDATE = os.environ.get("PODNET_UPDATE_GOLDEN") == "1"


def check_golden(name: str, text: str) -> None:
    path = GOLDEN / name
    if UPDATE:
        path.write_text(text)
    assert path.exists(), f"golden file {path} missing: run with PODNET_UPDATE_GOLDEN=1 once and review it"
    assert text == path.read_text(), f"{name} differs from its golden file"


@pytest.mark.parametrize("case", sorted(CASES))
def test_full_ruleset_matches_golden(case: str) -> None:
    svcs, slices = CASES[case]()
    st = state_of(svcs, slices)
    assert st.problems == []
    text = render_full(st)
    check_golden(f"{case}.nft", text)
    FakeNft().apply(text)  # and it is a valid transaction for the interpreter


def test_delta_remove_one_endpoint_matches_golden() -> None:
    svcs, slices = all_cases()
    old = state_of(svcs, slices)
    slices2 = [s for s in slices if s["metadata"]["labels"]["kubernetes.io/service-name"] != "web"]
    slices2.append(eslice("web", [ep("10.244.1.5", "n1"), ep("10.244.3.5", "n3")], [("http", 8080, "TCP")]))
    new = state_of(svcs, slices2, previous=old)
    delta = render_delta(old, new)
    assert delta is not None
    check_golden("delta_remove_endpoint.nft", delta)
    # proportional to the change: only the web service's elements are touched
    assert "10.96.0.21" not in delta and "10.96.0.26" not in delta
    assert delta.count("\n") < 12


def test_delta_applies_and_equals_full_render() -> None:
    svcs, slices = all_cases()
    old = state_of(svcs, slices)
    extra = eslice("empty", [ep("10.244.3.30", "n3")], [("", 8080, "TCP")], name="empty-b")
    new = state_of(svcs[1:], [*slices, extra], previous=old)
    a, b = FakeNft(), FakeNft()
    a.apply(render_full(old))
    delta = render_delta(old, new)
    assert delta
    a.apply(delta)
    b.apply(render_full(new))
    for name, s in b.table.sets.items():
        assert {k: e.data for k, e in a.table.sets[name].elements.items()} == \
               {k: e.data for k, e in s.elements.items()}, name


def test_no_change_gives_empty_delta() -> None:
    svcs, slices = all_cases()
    st = state_of(svcs, slices)
    assert render_delta(st, state_of(svcs, slices, previous=st)) == ""


def test_new_affinity_timeout_needs_full_sync() -> None:
    svcs, slices = CASES["cluster_ip"]()
    old = state_of(svcs, slices)
    svcs[0]["spec"]["sessionAffinity"] = "ClientIP"
    new = state_of(svcs, slices, previous=old)
    text = render_delta(old, new)
    assert is_full(text) and text == render_full(new)


def test_chain_count_does_not_grow_with_services() -> None:
    from podnet.proxy.serviceports import EndpointInfo, ServicePortInfo
    from podnet.proxy.state import build_state

    def chains_for(n: int) -> int:
        ports = [ServicePortInfo("default", f"s{i}", "", "TCP", 80, f"10.96.{i // 250}.{i % 250 + 1}",
                                 endpoints=tuple(EndpointInfo(f"10.244.{j}.{i % 250 + 1}", 8080, "n1")
                                                 for j in range(1, 4)))
                 for i in range(n)]
        return render_full(build_state(ports, NODE1)).count("\tchain ")

    assert chains_for(10) == chains_for(2000)


def test_random_delta_chains_match_full_renders() -> None:
    """Many random syncs in a row (shared endpoints, UDP, affinity, Local): deltas == full render."""
    import random

    from podnet.proxy.serviceports import EndpointInfo, ServicePortInfo
    from podnet.proxy.state import build_state

    rng = random.Random(7)
    pool = [EndpointInfo(f"10.244.{n}.{i}", 8080, f"n{n}", pod=f"default/p{n}-{i}")
            for n in (1, 2) for i in range(1, 6)]

    def random_ports() -> list[ServicePortInfo]:
        out = []
        for i in range(8):
            if rng.random() < 0.2:
                continue
            out.append(ServicePortInfo("default", f"s{i}", "", rng.choice(["TCP", "UDP"]), 80,
                                       f"10.96.0.{i + 1}", node_port=30000 + i if i % 2 else 0,
                                       etp_local=i == 3, itp_local=i == 5,
                                       affinity_timeout=300 if i == 6 else 0,
                                       endpoints=tuple(sorted(rng.sample(pool, rng.randint(0, 4))))))
        return out

    memo: dict = {}  # type: ignore[type-arg]
    prev = build_state(random_ports(), NODE1, None, memo)
    live = FakeNft()
    live.apply(render_full(prev))
    for _ in range(60):
        new = build_state(random_ports(), NODE1, prev.svc_ids, memo)
        delta = render_delta(prev, new)
        live.apply(delta)
        ref = FakeNft()
        ref.apply(render_full(new))
        for name, s in ref.table.sets.items():
            if name.startswith("affinity-") and not name.startswith("affinity-svcs"):
                continue
            got = {k: e.data for k, e in live.table.sets[name].elements.items()}
            assert got == {k: e.data for k, e in s.elements.items()}, name
        for name, s in live.table.sets.items():  # maps of endpoint counts no longer used are empty
            if name not in ref.table.sets:
                assert s.elements == {}, name
        prev = new
