"""The proxy keeps only its current state: a long run of incremental syncs must not keep the states
before it alive (each patched state once referenced the one before it: the agents' memory leak)."""

from __future__ import annotations

import gc
import weakref

from test_incremental import deliver, new_runner, service_obj, slice_obj

from podnet.proxy.state import RulesetState


def live_states() -> int:
    gc.collect()
    return sum(1 for x in gc.get_objects() if isinstance(x, RulesetState))


async def test_incremental_syncs_do_not_keep_old_states_alive() -> None:
    r, _ = new_runner()
    deliver(r.services, "ADDED", service_obj("a", 0, 1))
    await r.sync_once()
    assert r.state is not None
    first = weakref.ref(r.state)
    before = live_states()
    for i in range(200):
        deliver(r.slices, "MODIFIED", slice_obj("a", 0, ["10.244.1.1", "10.244.1.2"][: 1 + i % 2], False,
                                                10 + i))
        await r.sync_once()
    assert r.patched_syncs == 200
    assert first() is None
    assert live_states() <= before


async def test_a_sync_with_nothing_changed_keeps_the_state_and_applies_nothing() -> None:
    r, nft = new_runner()
    deliver(r.services, "ADDED", service_obj("a", 0, 1))
    node = {"metadata": {"name": "n1", "resourceVersion": "5"}, "spec": {"podCIDR": "10.244.1.0/24"},
            "status": {"addresses": [{"type": "InternalIP", "address": "172.31.5.11"}]}}
    deliver(r.nodes, "ADDED", node)
    await r.sync_once()
    state = r.state
    texts: list[str] = []
    real_apply = nft.apply

    def apply(text: str) -> None:
        texts.append(text)
        real_apply(text)

    nft.apply = apply  # type: ignore[method-assign]
    for rv in (6, 7):  # heartbeats: the node facts the proxy uses stay the same
        deliver(r.nodes, "MODIFIED", {**node, "metadata": {"name": "n1", "resourceVersion": str(rv)}})
        await r.sync_once()
    assert r.state is state
    assert texts == []
