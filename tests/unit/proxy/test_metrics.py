"""Prometheus text of the proxy metrics."""

from __future__ import annotations

from podnet.proxy.metrics import ProxyMetrics


def test_histograms_and_counters_render_in_prometheus_text() -> None:
    m = ProxyMetrics()
    m.observe_sync(0.012, full=True)
    m.observe_sync(0.003, full=False)
    m.observe_programming(0.4)
    m.sync_failed("nft -f - failed: boom")
    text = m.render()
    assert 'kubeproxy_sync_proxy_rules_duration_seconds_bucket{le="0.004"} 1' in text
    assert 'kubeproxy_sync_proxy_rules_duration_seconds_bucket{le="0.016"} 2' in text
    assert 'kubeproxy_sync_proxy_rules_duration_seconds_bucket{le="+Inf"} 2' in text
    assert "kubeproxy_sync_proxy_rules_duration_seconds_count 2" in text
    assert 'kubeproxy_network_programming_duration_seconds_bucket{le="0.25"} 0' in text
    assert 'kubeproxy_network_programming_duration_seconds_bucket{le="0.5"} 1' in text
    assert "podnet_proxy_sync_failures_total 1" in text
    assert "podnet_proxy_full_syncs_total 1" in text and "podnet_proxy_partial_syncs_total 1" in text
    last = next(ln for ln in text.splitlines() if ln.startswith("kubeproxy_sync_proxy_rules_last_timestamp"))
    assert float(last.split()[1]) > 1.7e9
    assert "# TYPE kubeproxy_sync_proxy_rules_duration_seconds histogram" in text
