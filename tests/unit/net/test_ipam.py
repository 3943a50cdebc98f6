"""IPAM: reserved addresses, idempotence, round robin, persistence, full, several processes at once."""

from __future__ import annotations

import json
import multiprocessing
from pathlib import Path

import pytest

from podnet.net.ipam import Ipam, IpamError, IpamFullError


def test_first_addresses_skip_network_and_dot_one(tmp_path: Path) -> None:
    ipam = Ipam(tmp_path / "ipam.json", "10.244.1.0/24")
    assert ipam.allocate("pod-a") == "10.244.1.2"
    assert ipam.allocate("pod-b") == "10.244.1.3"
    assert ipam.allocate("pod-a") == "10.244.1.2"  # idempotent per owner
    assert ipam.capacity == 253


def test_persisted_across_instances_and_released_ip_not_reused_at_once(tmp_path: Path) -> None:
    f = tmp_path / "ipam.json"
    Ipam(f, "10.244.1.0/24").allocate("a")
    Ipam(f, "10.244.1.0/24").allocate("b")
    again = Ipam(f, "10.244.1.0/24")  # a restarted agent
    assert again.allocations() == {"a": "10.244.1.2", "b": "10.244.1.3"}
    assert again.release("a") == "10.244.1.2"
    assert again.release("a") is None
    assert again.allocate("c") == "10.244.1.4"  # round robin: .2 is not handed out again right away
    assert json.loads(f.read_text())["allocations"] == {"b": "10.244.1.3", "c": "10.244.1.4"}


def test_full_and_wraparound(tmp_path: Path) -> None:
    ipam = Ipam(tmp_path / "ipam.json", "10.0.0.0/29")  # .2 .. .6
    got = [ipam.allocate(f"p{i}") for i in range(5)]
    assert got == ["10.0.0.2", "10.0.0.3", "10.0.0.4", "10.0.0.5", "10.0.0.6"]
    with pytest.raises(IpamFullError, match=r"no free pod IP in 10.0.0.0/29: all 5 addresses are in use"):
        ipam.allocate("p5")
    ipam.release("p1")
    assert ipam.allocate("p5") == "10.0.0.3"
    assert ipam.owner_of("10.0.0.3") == "p5"


def test_bad_input(tmp_path: Path) -> None:
    with pytest.raises(IpamError, match=r"invalid podCIDR '10.244.1.1/24'"):
        Ipam(tmp_path / "x.json", "10.244.1.1/24")
    with pytest.raises(IpamError, match=r"an IP allocation needs an owner"):
        Ipam(tmp_path / "x.json", "10.244.1.0/24").allocate("")
    (tmp_path / "bad.json").write_text("{not json")
    with pytest.raises(IpamError, match=r"is corrupt"):
        Ipam(tmp_path / "bad.json", "10.244.1.0/24").allocate("a")


def test_state_for_another_cidr_with_live_allocations_is_refused(tmp_path: Path) -> None:
    f = tmp_path / "ipam.json"
    Ipam(f, "10.244.1.0/24").allocate("a")
    with pytest.raises(IpamError, match=r"is for podCIDR 10.244.1.0/24, not 10.244.2.0/24"):
        Ipam(f, "10.244.2.0/24").allocate("b")


def _worker(path: str, prefix: str, n: int, out: multiprocessing.Queue[list[str]]) -> None:
    ipam = Ipam(Path(path), "10.244.0.0/22")
    out.put([ipam.allocate(f"{prefix}-{i}") for i in range(n)])


def test_two_processes_allocating_at_once_never_share_an_ip(tmp_path: Path) -> None:
    ctx = multiprocessing.get_context("fork")
    q: multiprocessing.Queue[list[str]] = ctx.Queue()
    f = str(tmp_path / "ipam.json")
    procs = [ctx.Process(target=_worker, args=(f, name, 60, q)) for name in ("a", "b")]
    for p in procs:
        p.start()
    results = [q.get(timeout=30), q.get(timeout=30)]
    for p in procs:
        p.join(timeout=10)
    ips = results[0] + results[1]
    assert len(ips) == 120 and len(set(ips)) == 120
    assert len(Ipam(Path(f), "10.244.0.0/22").allocations()) == 120
