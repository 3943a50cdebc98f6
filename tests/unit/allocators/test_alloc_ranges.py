"""ClusterIP, NodePort and LoadBalancer pool allocators: bands, exact errors, exhaustion."""

from __future__ import annotations

import ipaddress
import random

import pytest

from podnet.allocators import (
    AlreadyAllocated,
    ClusterIPAllocator,
    LoadBalancerPool,
    NodePortAllocator,
    NotInRange,
    RangeFull,
)
from podnet.allocators.bitmap import static_band_size


def test_static_band_formulas_match_kube_apiserver() -> None:
    # ipallocator (KEP-3070): min(max(16, size/16), 256)
    assert static_band_size(256, lo=16, hi=256, step=16) == 16  # /24
    assert static_band_size(1 << 20, lo=16, hi=256, step=16) == 256  # /12
    assert static_band_size(8, lo=16, hi=256, step=16) == 0
    # portallocator (KEP-3668): min(max(16, size/32), 128); default range -> 86
    assert static_band_size(2768, lo=16, hi=128, step=32) == 86
    assert NodePortAllocator(30000, 32767).static_band == 86


def test_cluster_ip_dynamic_allocation_uses_upper_band_and_skips_reserved() -> None:
    a = ClusterIPAllocator("10.0.0.0/24", rng=random.Random(1))
    got = [a.allocate_next() for _ in range(254 - 16)]
    offsets = sorted(int(ipaddress.ip_address(ip)) - int(ipaddress.ip_address("10.0.0.1")) for ip in got)
    assert offsets[0] == 16  # the whole upper band first: 10.0.0.17 .. 10.0.0.254
    assert len(set(got)) == len(got)
    assert "10.0.0.255" not in got and "10.0.0.0" not in got
    # now the static band, but never the first address (the `kubernetes` Service's)
    more = [a.allocate_next() for _ in range(15)]
    assert "10.0.0.1" not in more
    assert set(more) == {f"10.0.0.{i}" for i in range(2, 17)}
    with pytest.raises(RangeFull, match=r"^range is full$"):
        a.allocate_next()
    assert a.allocate("10.0.0.1") == "10.0.0.1"  # asked for by number: fine


def test_cluster_ip_requested_errors_use_kubernetes_wording() -> None:
    a = ClusterIPAllocator("10.96.0.0/12")
    assert a.allocate("10.96.0.10") == "10.96.0.10"
    with pytest.raises(AlreadyAllocated) as e1:
        a.allocate("10.96.0.10")
    assert str(e1.value) == "provided IP is already allocated"
    with pytest.raises(NotInRange) as e2:
        a.allocate("192.168.0.10")
    assert str(e2.value) == ("the provided IP (192.168.0.10) is not in the valid range. "
                             "The range of valid IPs is 10.96.0.0/12")
    for edge in ("10.96.0.0", "10.111.255.255"):  # network and broadcast
        with pytest.raises(NotInRange):
            a.allocate(edge)
    a.release("10.96.0.10")
    assert a.allocate("10.96.0.10") == "10.96.0.10"


def test_cluster_ip_refuses_tiny_range() -> None:
    with pytest.raises(ValueError, match="at least 8 IP addresses"):
        ClusterIPAllocator("10.0.0.0/30")


def test_node_port_bands_and_errors() -> None:
    a = NodePortAllocator(30000, 32767, rng=random.Random(7))
    auto = [a.allocate_next() for _ in range(500)]
    assert min(auto) >= 30086  # dynamic band only while it has room
    assert len(set(auto)) == 500
    with pytest.raises(NotInRange) as e:
        a.allocate(40000)
    assert str(e.value) == ("provided port is not in the valid range. "
                            "The range of valid ports is 30000-32767")
    a.allocate(30005)
    with pytest.raises(AlreadyAllocated) as e2:
        a.allocate(30005)
    assert str(e2.value) == "provided port is already allocated"


def test_node_port_falls_back_to_static_band_then_full() -> None:
    a = NodePortAllocator(30000, 30099)  # size 100 -> static band 16
    assert a.static_band == 16
    got = [a.allocate_next() for _ in range(100)]
    assert sorted(got[:84]) == list(range(30016, 30100))
    assert sorted(got[84:]) == list(range(30000, 30016))
    with pytest.raises(RangeFull):
        a.allocate_next()


def test_lb_pool_ranges_and_errors() -> None:
    p = LoadBalancerPool("172.31.5.200-172.31.5.202, 172.31.6.0/30")
    assert p.enabled and p.size() == 5
    assert p.allocate_next() == "172.31.5.200"  # lowest first: predictable EXTERNAL-IPs
    assert p.allocate("172.31.6.2") == "172.31.6.2"
    with pytest.raises(AlreadyAllocated):
        p.allocate("172.31.6.2")
    with pytest.raises(NotInRange) as e:
        p.allocate("10.1.1.1")
    assert "is not in the LoadBalancer pool (172.31.5.200-172.31.5.202, 172.31.6.0/30)" in str(e.value)
    assert [p.allocate_next() for _ in range(3)] == ["172.31.5.201", "172.31.5.202", "172.31.6.1"]
    with pytest.raises(RangeFull):
        p.allocate_next()
    p.release("172.31.5.201")
    assert p.allocate_next() == "172.31.5.201"


@pytest.mark.parametrize("spec", ["", "none", "None"])
def test_lb_pool_disabled(spec: str) -> None:
    p = LoadBalancerPool(spec)
    assert not p.enabled
    with pytest.raises(RangeFull):
        p.allocate_next()


@pytest.mark.parametrize("spec", ["172.31.5.250-172.31.5.200", "banana", "10.0.0.1-fd00::1"])
def test_lb_pool_bad_spec_names_the_part(spec: str) -> None:
    with pytest.raises(ValueError, match="invalid LoadBalancer pool"):
        LoadBalancerPool(spec)
