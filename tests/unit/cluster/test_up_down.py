"""`up` planning and the up → down cycle on FakeNetOps with a stand-in control plane (no root needed)."""

from __future__ import annotations

import os
import secrets
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from podnet.cluster.down import teardown
from podnet.cluster.procs import is_same_process, proc_starttime, stop_processes
from podnet.cluster.status import cluster_status
from podnet.cluster.up import UpError, UpOptions, plan_config, up
from podnet.core import journal as jr
from podnet.core.config import ClusterConfig
from podnet.core.layout import plan_nodes
from podnet.net.fake import FakeNetOps
from podnet.net.ops import Route

# A stand-in for `podnet controlplane`: answers /readyz on the cluster's API port.
STUB_CP = r"""
import http.server, json, sys, os
cfg = json.load(open(os.path.join(os.environ["PODNET_STATE_ROOT"], "clusters", sys.argv[1], "config.json")))
class H(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        self.send_response(200 if self.path == "/readyz" else 404)
        self.end_headers()
        self.wfile.write(b"ok")
    def log_message(self, *a): pass
http.server.HTTPServer(("127.0.0.1", cfg["api_port"]), H).serve_forever()
"""

HOST = [
    Route(dst="0.0.0.0/0", via="192.0.2.1", dev="eth0"),
    Route(dst="192.0.2.0/24", dev="eth0", scope="link"),
]


@pytest.fixture
def state_root(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    monkeypatch.setenv("PODNET_STATE_ROOT", str(tmp_path))
    yield tmp_path


def name() -> str:
    return f"t{os.getpid() % 10000}{secrets.token_hex(2)}"


def test_plan_defaults(state_root: Path) -> None:
    cfg = plan_config(UpOptions(name="demo", nodes=2), HOST)
    assert (cfg.node_network, cfg.lb_pool, cfg.pod_cidr) == (
        "172.30.0.0/24",
        "172.30.0.200-172.30.0.250",
        "10.244.0.0/16",
    )
    assert cfg.api_port > 0 and len(cfg.token) == 48
    assert cfg.host_ip == "172.30.0.1"
    assert [n.ip for n in plan_nodes(cfg)] == ["172.30.0.2", "172.30.0.3"]


def test_plan_keeps_the_image_settings_and_max_pods(state_root: Path) -> None:
    cfg = plan_config(UpOptions(name="imgs", images="real", insecure_registries=["reg.lan:5000"],
                                image_pull_timeout=9.0, max_pods=400), HOST)
    assert (cfg.images, cfg.insecure_registries, cfg.image_pull_timeout, cfg.max_pods) == \
        ("real", ["reg.lan:5000"], 9.0, 400)
    assert ClusterConfig.from_json(cfg.to_json()).insecure_registries == ["reg.lan:5000"]


@pytest.mark.parametrize(
    ("opts", "msg"),
    [
        (UpOptions(name="Bad"), "cluster name 'Bad' is invalid"),
        (UpOptions(nodes=0), "invalid node count 0 (--nodes): must be between 1 and 100"),
        (UpOptions(network="flat"), "invalid network mode 'flat' (--network): must be one of host-gw, vxlan"),
        (
            UpOptions(pod_cidr="192.0.2.0/24", nodes=1),
            "pod CIDR 192.0.2.0/24 (--pod-cidr) is too small for 1 node(s) with a /24 each: "
            "use a /23 or larger",
        ),
        (
            UpOptions(pod_cidr="192.0.0.0/16"),
            "the pod CIDR 192.0.0.0/16 collides with the host route '192.0.2.0/24 dev eth0': choose another "
            "range with --pod-cidr",
        ),
        (
            UpOptions(node_network="192.0.2.0/24"),
            "the node network 192.0.2.0/24 collides with the host route '192.0.2.0/24 dev eth0'",
        ),
        (UpOptions(node_port_range="1-x"), "invalid node port range '1-x'"),
        (UpOptions(service_cidr="10.96.0.0/31"),
         "the service CIDR 10.96.0.0/31 (--service-cidr) is too small: it has 2 address(es), Services need "
         "at least 8 (a /29 or larger, e.g. 10.96.0.0/16)"),
        (UpOptions(service_cidr="10.0.0.0/8"),
         "the service CIDR 10.0.0.0/8 (--service-cidr) is too large: for 32-bit addresses the mask must be "
         ">= 12"),
        (UpOptions(node_network="127.0.0.0/24"),
         "the node network 127.0.0.0/24 (--node-network) is a loopback range (127.0.0.0/8): choose a "
         "private range such as 172.30.0.0/24"),
        (UpOptions(pod_cidr="169.254.0.0/16"),
         "the pod CIDR 169.254.0.0/16 (--pod-cidr) is a link-local range (169.254.0.0/16)"),
        (UpOptions(store="etcd://127.0.0.1:1"),
         "etcd of --store 'etcd://127.0.0.1:1' is unreachable (127.0.0.1:1: Connection refused): start "
         "etcd first, or leave out --store to keep the cluster's objects in SQLite"),
        (UpOptions(max_pods=0), "invalid --max-pods 0: must be between 1 and 10000"),
        (UpOptions(images="docker"), "invalid --images 'docker': must be one of auto, real, builtin"),
        (
            UpOptions(lb_pool="172.30.0.3-172.30.0.9"),
            "LoadBalancer pool 172.30.0.3-172.30.0.9 (--lb-pool) overlaps the node IPs 172.30.0.2-172.30.0.4",
        ),
    ],
)
def test_plan_refuses_bad_options(state_root: Path, opts: UpOptions, msg: str) -> None:
    with pytest.raises(UpError) as e:
        plan_config(opts, HOST)
    assert msg in str(e.value)


def test_existing_cluster_name_is_refused_and_next_cluster_gets_next_network(state_root: Path) -> None:
    ClusterConfig(name="one", node_network="172.30.0.0/24").save()
    with pytest.raises(UpError, match='cluster "one" already exists'):
        plan_config(UpOptions(name="one"), HOST)
    assert plan_config(UpOptions(name="two"), HOST).node_network == "172.30.1.0/24"


def stub_argv(cfg: ClusterConfig) -> list[str]:
    return [sys.executable, "-c", STUB_CP, cfg.name]


def test_up_then_down_on_fake_ops(state_root: Path) -> None:
    ops = FakeNetOps()
    n = name()
    cfg = up(
        UpOptions(name=n, nodes=2, start_agents=False, controlplane_argv=stub_argv, wait_timeout=20), ops
    )
    try:
        assert sorted(ops.netns_list()) == [f"pn-{n}-node-1", f"pn-{n}-node-2"]
        bridge = cfg.bridge
        assert [a.cidr for a in ops.addr_list(ifname=bridge)] == ["172.30.0.1/24"]
        guards = {(r.dst, r.type) for r in ops.route_list() if r.type == "unreachable"}
        assert guards == {("10.244.0.0/16", "unreachable"), ("10.96.0.0/12", "unreachable")}
        cp = jr.Journal(cfg.state_dir).entries(jr.PROCESS)[0]
        assert is_same_process(cp.attrs["pid"], cp.attrs["starttime"])
        assert (cfg.state_dir / "kubeconfig").read_text().count(f"https://127.0.0.1:{cfg.api_port}") == 1
        assert cluster_status(cfg).status == "running"
    finally:
        rep = teardown(n, ops)
    assert rep.problems == []
    assert ops.netns_list() == [] and [lk.name for lk in ops.link_list()] == ["lo"]
    assert [r for r in ops.route_list() if r.type == "unreachable"] == []
    assert not is_same_process(cp.attrs["pid"], cp.attrs["starttime"])
    assert not cfg.state_dir.exists()
    assert teardown(n, ops).problems == []  # again: nothing left, no error


def test_failed_up_removes_what_it_made_and_shows_the_log(state_root: Path) -> None:
    ops = FakeNetOps()
    n = name()
    crash = lambda cfg: [sys.executable, "-c", "import sys; print('boom: no store'); sys.exit(3)"]  # noqa: E731
    with pytest.raises(
        UpError, match=r"the control plane exited during start-up; its log .*\n    boom: no store"
    ):
        up(UpOptions(name=n, nodes=1, controlplane_argv=crash, wait_timeout=10), ops)
    assert ops.netns_list() == [] and [r for r in ops.route_list() if r.type == "unreachable"] == []
    assert not (state_root / "clusters" / n).exists()


def test_stop_processes_spares_a_reused_pid(tmp_path: Path) -> None:
    import subprocess

    p = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(30)"])
    try:
        st = proc_starttime(p.pid)
        assert st is not None
        assert stop_processes([(p.pid, st + 1)]) == []  # same PID, other start time: not ours
        assert p.poll() is None
        t0 = time.monotonic()
        assert stop_processes([(p.pid, st)]) == [p.pid]
        assert p.wait(timeout=5) is not None and time.monotonic() - t0 < 4
    finally:
        if p.poll() is None:
            p.kill()
            p.wait()


def test_list_status_running_stopped_broken(state_root: Path) -> None:
    import subprocess

    cfg = ClusterConfig(name="st", node_network="172.30.7.0/24", nodes=2)
    cfg.save()
    j = jr.Journal(cfg.state_dir)
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    j.record(jr.PROCESS, "controlplane", pid=dead.pid, starttime=1)
    st = cluster_status(cfg)
    assert (st.status, st.nodes, st.processes_alive) == ("stopped", ["st-node-1", "st-node-2"], 0)
    me = os.getpid()
    j.record(jr.PROCESS, "agent-st-node-1", pid=me, starttime=proc_starttime(me))
    assert cluster_status(cfg).status == "broken"
    j.record(jr.PROCESS, "container default/web", pid=dead.pid, starttime=1)  # containers do not count
    j.record(jr.PROCESS, "controlplane", pid=me, starttime=proc_starttime(me))
    assert cluster_status(cfg).status == "broken"  # processes alive, but no API answers on port 0


def test_plan_records_the_audit_log_path(state_root: Path) -> None:
    assert plan_config(UpOptions(name="noaudit"), HOST).audit_log == ""
    cfg = plan_config(UpOptions(name="audited", audit_log="rel/audit.log"), HOST)
    assert cfg.audit_log == str(Path("rel/audit.log").resolve())
