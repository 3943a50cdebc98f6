"""The stock CoreDNS Corefile configures podnet's DNS server."""

from __future__ import annotations

from pathlib import Path

import pytest

from podnet.dns.corefile import CorefileError, parse_corefile
from podnet.dns.server import parse_args

KUBEADM_COREFILE = """\
.:53 {
    errors
    health {
       lameduck 5s
    }
    ready
    kubernetes cluster.local in-addr.arpa ip6.arpa {
       pods insecure
       fallthrough in-addr.arpa ip6.arpa
       ttl 30
    }
    prometheus :9153
    forward . /etc/resolv.conf {
       max_concurrent 1000
    }
    cache 30
    loop
    reload
    loadbalance
}
"""


def test_kubeadm_corefile() -> None:
    s = parse_corefile(KUBEADM_COREFILE)
    assert (s.port, s.cluster_domain, s.pods, s.ttl) == (53, "cluster.local", "insecure", 30)
    assert (s.upstream, s.resolv_conf) == ("auto", "/etc/resolv.conf")
    assert (s.health_port, s.ready_port) == (8080, 8181)
    assert s.ignored == ["errors", "prometheus", "cache", "loop", "reload", "loadbalance"]


def test_custom_zone_port_and_forward_ips() -> None:
    s = parse_corefile("corp.example:1053 {\n kubernetes corp.example\n forward . 10.0.0.2 dns://10.0.0.3:5353\n"
                       " health :9080\n ready 127.0.0.1:9181\n}\n")
    assert (s.port, s.cluster_domain, s.upstream) == (1053, "corp.example", "10.0.0.2,10.0.0.3:5353")
    assert (s.health_port, s.ready_port) == (9080, 9181)


def test_unbalanced_braces_are_reported() -> None:
    with pytest.raises(CorefileError, match=r"unbalanced '\{'"):
        parse_corefile(".:53 {\n kubernetes cluster.local {\n}\n")


def test_conf_flag_fills_unset_flags_and_explicit_flags_win(tmp_path: Path) -> None:
    conf = tmp_path / "Corefile"
    conf.write_text(KUBEADM_COREFILE)
    args = parse_args(["--api-server", "unix:///x.sock", "-conf", str(conf), "--ttl", "7"])
    assert (args.cluster_domain, args.port, args.pods, args.ttl) == ("cluster.local", 53, "insecure", 7)
    assert (args.upstream, args.resolv_conf, args.health_port, args.ready_port) == (
        "auto", "/etc/resolv.conf", 8080, 8181)
    plain = parse_args(["--api-server", "unix:///x.sock"])
    assert (plain.pods, plain.ttl, plain.port) == ("verified", 5, 53)


def test_unreadable_conf_is_a_clear_error(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    missing = tmp_path / "nope"
    with pytest.raises(SystemExit) as e:
        parse_args(["--api-server", "unix:///x.sock", "-conf", str(missing)])
    assert e.value.code == 2
    err = capsys.readouterr().err
    assert f"-conf '{missing}': cannot read the Corefile: No such file or directory" in err
