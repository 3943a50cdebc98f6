"""PolicyRunner against an in-memory list+watch API and a recording nft: full sync at start, element
deltas for pod changes, admit before a pod's containers, and one refused policy never taking the
others down."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Callable
from pathlib import Path

import pytest
from fakeapi import FakeApi
from policy_fixtures import IPS, NAMESPACES, PODS, netpol, pod

from podnet.client.client import ApiClient
from podnet.model.kinds import NAMESPACES as NS_RT
from podnet.model.kinds import NETWORKPOLICIES
from podnet.model.kinds import PODS as PODS_RT
from podnet.policy.explain import Packet, judge_direction, parse_table
from podnet.policy.nft import FakePolicyNft, PolicyNftError
from podnet.policy.render import is_full, render_full
from podnet.policy.runner import PolicyRunner


async def until(cond: Callable[[], bool], timeout: float = 5.0) -> None:
    loop = asyncio.get_running_loop()
    end = loop.time() + timeout
    while not cond():
        assert loop.time() < end, "condition not reached in time"
        await asyncio.sleep(0.01)


class CheckNft(FakePolicyNft):
    """Refuses any transaction holding a rule of z/bad (stands in for what nft would refuse)."""

    def apply(self, text: str) -> None:
        if "z/bad ingress[0]" in text:
            raise PolicyNftError("nft -f - failed: Error: Could not process rule: injected")
        super().apply(text)


@pytest.fixture
async def api(tmp_path: Path) -> AsyncIterator[FakeApi]:
    fake = FakeApi()
    await fake.start(unix_path=str(tmp_path / "api.sock"))
    for n in NAMESPACES:
        fake.put(NS_RT, n)
    for p in PODS:
        fake.put(PODS_RT, p)
    try:
        yield fake
    finally:
        await fake.stop()


@contextlib.asynccontextmanager
async def running(api: FakeApi) -> AsyncIterator[tuple[PolicyRunner, CheckNft]]:
    client = ApiClient(api.url)
    nft = CheckNft()
    r = PolicyRunner(client, "n1", nft, min_interval=0.01, check_nft=CheckNft())
    task = asyncio.create_task(r.run())
    try:
        await asyncio.wait_for(r.synced_once.wait(), 5)
        yield r, nft
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
        await client.close()


def verdict(text: str, src: str, dst: str, port: int = 80) -> str:
    return judge_direction(parse_table(text), "ingress", Packet(IPS[src], IPS[dst], "tcp", port)).verdict


async def test_first_sync_is_full_then_pod_changes_are_element_deltas(api: FakeApi) -> None:
    async with running(api) as (r, nft):
        assert is_full(nft.applied[0])
        api.put(NETWORKPOLICIES, netpol("x", "from-y", ingress=[{"from": [
            {"namespaceSelector": {"matchLabels": {"ns": "y"}}}]}]))
        await until(lambda: r.state is not None and bool(r.state.elements["ingress-class"]))
        assert is_full(nft.applied[-1])
        assert verdict(render_full(r.state), "y/b", "x/a") == "allowed"  # type: ignore[arg-type]
        n = len(nft.applied)
        api.put(PODS_RT, pod("y", "d", "10.244.2.99", "n2", {"pod": "d"}))
        await until(lambda: len(nft.applied) > n)
        assert nft.applied[-1].startswith("add element ip podnet-policy pods-")
        assert "10.244.2.99" in nft.applied[-1] and not is_full(nft.applied[-1])


async def test_status_only_pod_changes_do_not_sync(api: FakeApi) -> None:
    async with running(api) as (r, _nft):
        syncs = r.metrics.syncs
        p = pod("x", "a", IPS["x/a"])
        p["status"]["conditions"] = [{"type": "Ready", "status": "True"}]
        api.put(PODS_RT, p)
        await asyncio.sleep(0.2)
        assert r.metrics.syncs == syncs


async def test_admit_programs_a_new_pod_before_its_status_has_an_ip(api: FakeApi) -> None:
    async with running(api) as (r, nft):
        api.put(NETWORKPOLICIES, netpol("x", "deny"))
        await until(lambda: r.state is not None and bool(r.state.elements["ingress-class"]))
        new = pod("x", "new", "", "n1", {"pod": "new"})
        new["status"] = {"phase": "Pending"}
        api.put(PODS_RT, new)
        await r.admit(new, "10.244.1.77")
        assert r.state is not None and "10.244.1.77" in r.state.elements["ingress-class"]
        assert "10.244.1.77" in nft.applied[-1]


async def test_a_policy_nft_refuses_leaves_the_others_enforced(api: FakeApi) -> None:
    async with running(api) as (r, nft):
        api.put(NETWORKPOLICIES, netpol("x", "from-y", podSelector={"matchLabels": {"pod": "a"}}, ingress=[
            {"from": [{"namespaceSelector": {"matchLabels": {"ns": "y"}}}]}]))
        api.put(NETWORKPOLICIES, netpol("z", "bad", podSelector={"matchLabels": {"pod": "a"}}, ingress=[
            {"from": [{"podSelector": {"matchLabels": {"any": "thing"}}}]}]))
        await until(lambda: r.metrics.broken == ["z/bad"])
        last = nft.applied[-1]
        assert verdict(last, "y/b", "x/a") == "allowed" and verdict(last, "z/b", "x/a") == "dropped"
        assert verdict(last, "x/b", "z/a") == "dropped"  # the refused policy's pod stays isolated
        api.delete(NETWORKPOLICIES, "z", "bad")
        await until(lambda: "z/bad" not in r.broken and r.state is not None
                    and IPS["z/a"] not in r.state.elements["ingress-class"])
