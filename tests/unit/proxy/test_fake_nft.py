"""FakeNft behaves like the kernel on transactions: all or nothing, missing objects are errors."""

from __future__ import annotations

import pytest
from proxy_fixtures import all_cases, state_of

from podnet.proxy.explain import counters_from_json
from podnet.proxy.fake import FakeNft
from podnet.proxy.nft import NftError
from podnet.proxy.render import render_full


def test_failed_transaction_changes_nothing() -> None:
    f = FakeNft()
    svcs, slices = all_cases()
    f.apply(render_full(state_of(svcs, slices)))
    before = dict(f.set_elements("frontends-3"))
    assert ("10.96.0.20", "tcp", "80") in before
    with pytest.raises(NftError, match="No such file or directory"):
        f.apply("delete element ip podnet frontends-3 { 10.96.0.20 . tcp . 80 }\n"
                "delete element ip podnet frontends-3 { 10.99.9.9 . tcp . 1 }\n")
    assert f.set_elements("frontends-3") == before


def test_goto_to_missing_chain_is_refused() -> None:
    f = FakeNft()
    svcs, slices = all_cases()
    f.apply(render_full(state_of(svcs, slices)))
    with pytest.raises(NftError, match="chain ep-9"):
        f.apply("add rule ip podnet services ip daddr . meta l4proto . th dport @frontends-3 goto ep-9\n")


def test_add_existing_key_with_other_data_is_refused() -> None:
    f = FakeNft()
    svcs, slices = all_cases()
    f.apply(render_full(state_of(svcs, slices)))
    with pytest.raises(NftError, match="File exists"):
        f.apply("add element ip podnet svc-ids { 10.96.0.20 . tcp . 80 : 999 }\n")


def test_syntax_errors_are_reported() -> None:
    with pytest.raises(NftError, match="syntax error"):
        FakeNft().apply("frobnicate table ip podnet\n")


def test_list_ruleset_json_has_set_elements_with_comments() -> None:
    f = FakeNft()
    assert f.list_ruleset_json() == {"nftables": []}
    svcs, slices = all_cases()
    f.apply(render_full(state_of(svcs, slices)))
    doc = f.list_ruleset_json()
    sc = next(i["set"] for i in doc["nftables"] if "set" in i and i["set"]["name"] == "svc-counters")
    assert sc["elem"] == []  # the data path makes the counter elements, not the sync
    # `podnet top` still lists every Service port and endpoint, idle ones with zeros
    svc_counts, ep_counts = counters_from_json(doc)
    assert svc_counts["default/empty:/TCP"] == (0, 0)
    assert svc_counts["default/web:http/TCP"] == (0, 0)
    assert ep_counts["10.244.1.5:8080/tcp (default/pod-10-244-1-5)"] == (0, 0)
    assert ep_counts["10.244.1.8:5353/udp (default/pod-10-244-1-8)"] == (0, 0)
