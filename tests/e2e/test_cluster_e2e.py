"""The whole system as a user runs it: `podnet up`, the mission's example applied with the real kubectl,
traffic from the host to every node's NodePort and to the LoadBalancer IP, pods following a Deployment,
no NAT inside the cluster, DNS by Service name, `podnet demo`, and `podnet down` leaving nothing behind.

One 3-node cluster serves the module (bringing one up takes seconds, not minutes, but still dominates).
Traffic goes only from the host to node IPs / LB IPs on the cluster's own bridge, or between the
cluster's own namespaces.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from cluster_support import EXAMPLES, Cluster, http_get, running_cluster

pytestmark = [
    pytest.mark.kernel,
    pytest.mark.e2e,
    pytest.mark.xdist_group("cluster-e2e"),
    pytest.mark.skipif(os.geteuid() != 0, reason="needs root: network namespaces and nftables"),
    pytest.mark.skipif(shutil.which("kubectl") is None, reason="kubectl is not installed"),
]

@pytest.fixture(scope="module")
def cluster() -> Iterator[Cluster]:
    with running_cluster("e2e", "--nodes", "3") as c:
        yield c


@pytest.fixture(scope="module")
def myapp(cluster: Cluster) -> Cluster:
    cluster.kubectl("apply", "-f", str(EXAMPLES / "myapp"))
    cluster.wait_ready("app=myapp,type=front-end", 3, timeout=120)
    cluster.wait_ready("app=myapp,type=back-end", 2, timeout=120)
    return cluster


def test_nodes_are_ready_with_their_own_ip_and_pod_cidr(cluster: Cluster) -> None:
    nodes = cluster.get_json("nodes")["items"]
    assert len(nodes) == 3
    cidrs = {n["spec"]["podCIDR"] for n in nodes}
    assert len(cidrs) == 3
    assert len(set(cluster.node_ips().values())) == 3
    for n in nodes:
        ready = [c for c in n["status"]["conditions"] if c["type"] == "Ready"]
        assert ready and ready[0]["status"] == "True", n["metadata"]["name"]


def test_mission_services_get_their_addresses(myapp: Cluster) -> None:
    svc = myapp.get_json("svc", "myapp-service")
    assert svc["spec"]["type"] == "NodePort"
    assert svc["spec"]["ports"][0]["nodePort"] == 30008
    assert svc["spec"]["clusterIP"].startswith("10.")
    lb = myapp.get_json("svc", "myapp-lb")
    assert 30000 <= lb["spec"]["ports"][0]["nodePort"] <= 32767
    assert lb["status"]["loadBalancer"]["ingress"][0]["ip"]
    out = myapp.kubectl("get", "svc", "myapp-service").stdout
    assert "80:30008/TCP" in out and "NodePort" in out
    eps = myapp.get_json("endpoints", "myapp-service")
    addrs = [a["ip"] for s in eps.get("subsets", []) for a in s.get("addresses", [])]
    assert len(addrs) == 3


@pytest.mark.parametrize(("node_port", "message"), [
    (40000, "provided port is not in the valid range. The range of valid ports is 30000-32767"),
    (30008, "provided port is already allocated"),  # taken by myapp-service
])
def test_bad_node_ports_are_refused_with_kubernetes_messages(myapp: Cluster, tmp_path: Path, node_port: int,
                                                             message: str) -> None:
    name = f"np-{node_port}"
    manifest = tmp_path / "svc.yaml"
    manifest.write_text(json.dumps({
        "apiVersion": "v1", "kind": "Service", "metadata": {"name": name},
        "spec": {"type": "NodePort", "selector": {"app": "x"},
                 "ports": [{"port": 80, "nodePort": node_port}]}}))
    res = myapp.kubectl("apply", "-f", str(manifest), check=False)
    assert res.returncode == 1
    assert res.stderr.strip() == (f'The Service "{name}" is invalid: spec.ports[0].nodePort: Invalid value: '
                                  f"{node_port}: {message}")
    assert myapp.kubectl("get", "svc", name, check=False).returncode == 1  # nothing was stored


def test_nodeport_answers_on_every_node_and_reaches_all_three_pods(myapp: Cluster) -> None:
    front = {p["metadata"]["name"] for p in myapp.ready_pods("app=myapp,type=front-end")}
    backs = {p["metadata"]["name"] for p in myapp.ready_pods("app=myapp,type=back-end")}
    seen: set[str] = set()
    per_node: dict[str, set[str]] = {}
    for node, ip in myapp.node_ips().items():
        for _ in range(20):  # 60 requests in all, bounded
            data = json.loads(http_get(f"http://{ip}:30008/"))
            seen.add(data["frontend"]["pod"])
            per_node.setdefault(node, set()).add(data["frontend"]["pod"])
            assert data.get("backend") in backs, data  # front-end reached back-end by DNS name
    assert seen == front
    assert all(per_node[n] for n in per_node) and len(per_node) == 3


def test_loadbalancer_ip_reachable_from_the_host(myapp: Cluster) -> None:
    lb_ip = myapp.get_json("svc", "myapp-lb")["status"]["loadBalancer"]["ingress"][0]["ip"]
    front = {p["metadata"]["name"] for p in myapp.ready_pods("app=myapp,type=front-end")}
    seen = {json.loads(http_get(f"http://{lb_ip}/"))["frontend"]["pod"] for _ in range(30)}
    assert seen <= front and len(seen) >= 2


def test_pod_to_pod_across_nodes_has_no_nat(myapp: Cluster) -> None:
    backs = myapp.ready_pods("app=myapp,type=back-end")
    fronts = myapp.ready_pods("app=myapp,type=front-end")
    client = fronts[0]
    server = next((b for b in backs if b["spec"]["nodeName"] != client["spec"]["nodeName"]), backs[0])
    out = myapp.podnet("exec", "--name", myapp.name, client["metadata"]["name"], "--", "curl", "-s",
                       "--max-time", "3", f"http://{server['status']['podIP']}:80/clientip").stdout
    assert out.strip().rsplit(":", 1)[0] == client["status"]["podIP"]


def test_dns_names_resolve_inside_a_pod(myapp: Cluster) -> None:
    pod = myapp.ready_pods("app=myapp,type=front-end")[0]["metadata"]["name"]
    cluster_ip = myapp.get_json("svc", "back-end")["spec"]["clusterIP"]
    out = myapp.podnet("exec", "--name", myapp.name, pod, "--", "getent", "hosts", "back-end").stdout
    assert out.split()[0] == cluster_ip
    out = myapp.podnet("exec", "--name", myapp.name, pod, "--", "getent", "hosts",
                       "back-end.default.svc.cluster.local").stdout
    assert out.split()[0] == cluster_ip


def test_kubectl_logs_describe_and_events(myapp: Cluster) -> None:
    back = myapp.ready_pods("app=myapp,type=back-end")[0]["metadata"]["name"]
    assert "Started HTTP server on port 80" in myapp.kubectl("logs", back).stdout
    desc = myapp.kubectl("describe", "svc", "myapp-service").stdout
    assert "NodePort:" in desc and "30008/TCP" in desc
    fronts = sorted(p["status"]["podIP"] for p in myapp.ready_pods("app=myapp,type=front-end"))
    line = next(ln for ln in desc.splitlines() if ln.startswith("Endpoints:"))
    assert sorted(x.split(":")[0] for x in line.split()[1].split(",")) == fronts
    events = myapp.kubectl("get", "events").stdout
    assert "Scheduled" in events and "ScalingReplicaSet" in events


def test_demo_shows_all_front_ends_through_several_nodes(myapp: Cluster) -> None:
    res = myapp.podnet("demo", "--name", myapp.name, "--requests", "10", "-o", "json", timeout=180)
    data = json.loads(res.stdout)
    ok = [r for r in data["results"] if r["ok"]]
    assert len(ok) == len(data["results"])
    front = {p["metadata"]["name"] for p in myapp.ready_pods("app=myapp,type=front-end")}
    assert {r["frontend"] for r in ok} >= front
    entries = {r["entry"] for r in ok if r["entry"].endswith("NodePort")}
    assert len(entries) >= 2


def test_trace_explains_outside_to_nodeport_from_the_live_rules(myapp: Cluster) -> None:
    ips = myapp.node_ips()
    entry_node, entry_ip = sorted(ips.items())[0]
    data = json.loads(myapp.podnet("trace", "--name", myapp.name, "--from", "outside",
                                   f"{entry_ip}:30008", "-o", "json").stdout)
    assert data["entryNode"] == entry_node
    assert data["service"].startswith("default/myapp-service")
    fronts = {p["status"]["podIP"] for p in myapp.ready_pods("app=myapp,type=front-end")}
    assert {c["ip"] for c in data["candidates"]} == fronts
    assert all(c["masquerade"] for c in data["candidates"])
    text = myapp.podnet("trace", "--name", myapp.name, "--from", "outside", f"{entry_ip}:30008").stdout
    assert "masquerade" in text and "dnat" in text


def test_trace_pod_to_cluster_ip_spreads_without_snat(myapp: Cluster) -> None:
    client = myapp.ready_pods("app=myapp,type=front-end")[0]["metadata"]["name"]
    cip = myapp.get_json("svc", "back-end")["spec"]["clusterIP"]
    data = json.loads(myapp.podnet("trace", "--name", myapp.name, "--from", client, f"{cip}:80",
                                   "-o", "json").stdout)
    backs = {p["status"]["podIP"] for p in myapp.ready_pods("app=myapp,type=back-end")}
    assert {c["ip"] for c in data["candidates"]} == backs
    assert not any(c["masquerade"] for c in data["candidates"])


def test_status_and_top_output_are_well_formed(myapp: Cluster) -> None:
    for ip in myapp.node_ips().values():
        http_get(f"http://{ip}:30008/")
    view = json.loads(myapp.podnet("status", "--name", myapp.name, "-o", "json").stdout)
    svc = next(s for s in view["services"] if s["name"] == "myapp-service")
    assert svc["readyEndpoints"] == 3 and svc["ports"][0]["nodePort"] == 30008
    assert len(view["nodes"]) == 3 and all(n["ready"] for n in view["nodes"])
    top = json.loads(myapp.podnet("top", "--name", myapp.name, "-o", "json").stdout)
    counted = {s["service"]: s["packets"] for s in top["services"]}
    assert any(k.startswith("default/myapp-service") and v > 0 for k, v in counted.items()), counted
    text = myapp.podnet("top", "--name", myapp.name).stdout
    rows = [ln for ln in text.splitlines() if "myapp-service" in ln]
    assert rows and all(ln.split("│")[0].strip() == "service" for ln in rows), text
    fronts = {p["metadata"]["name"] for p in myapp.ready_pods("app=myapp,type=front-end")}
    assert all(name in text for name in fronts), text  # per-endpoint rows name their pods


@pytest.mark.skipif(shutil.which("tmux") is None, reason="tmux is not installed")
def test_status_in_a_terminal(myapp: Cluster) -> None:
    """`podnet status` as a person sees it: a 100-column terminal driven by tmux."""
    session = f"pnstatus{os.getpid()}"
    env_args = [f"PODNET_STATE_ROOT={myapp.root}"]
    cmd = f"env {' '.join(env_args)} {sys.executable} -m podnet.cli.main status --name {myapp.name}; sleep 30"
    subprocess.run(["tmux", "new-session", "-d", "-s", session, "-x", "100", "-y", "50", cmd], check=True)
    try:
        deadline = time.monotonic() + 20
        screen = ""
        while time.monotonic() < deadline:
            screen = subprocess.run(["tmux", "capture-pane", "-p", "-t", session], capture_output=True,
                                    text=True).stdout
            if "myapp-service" in screen:
                break
            time.sleep(0.3)
        assert "Nodes" in screen and "Pods" in screen and "Services" in screen
        line = next((ln for ln in screen.splitlines() if "myapp-service" in ln), screen)
        assert "NodePort" in line and "80:30008/TCP" in line and "3/3" in line
        assert all(len(ln) <= 100 for ln in screen.splitlines())
    finally:
        subprocess.run(["tmux", "kill-session", "-t", session], capture_output=True)


def test_replaced_pods_follow_the_service(myapp: Cluster) -> None:
    """Delete one front-end pod and add two more while requests keep flowing to a NodePort: the deleted
    pod stops answering, the new ones answer within a second of being Ready, and no request fails."""
    before = {p["metadata"]["name"] for p in myapp.ready_pods("app=myapp,type=front-end")}
    victim = sorted(before)[0]
    ip = sorted(myapp.node_ips().values())[0]
    results: list[tuple[float, str | None]] = []
    stop = threading.Event()

    def load() -> None:  # bounded: at most 600 requests, 20 per second
        for _ in range(600):
            if stop.is_set():
                return
            try:
                results.append((time.monotonic(), json.loads(http_get(f"http://{ip}:30008/"))["frontend"]["pod"]))
            except (OSError, ValueError) as e:
                results.append((time.monotonic(), f"FAILED: {e}"))
            time.sleep(0.05)

    loader = threading.Thread(target=load, daemon=True)
    loader.start()
    try:
        time.sleep(1.0)
        t_delete = time.monotonic()
        myapp.kubectl("delete", "pod", victim, "--wait=false")
        myapp.kubectl("scale", "deployment", "myapp-front-end", "--replicas=4")
        deadline = time.monotonic() + 60
        while True:
            now = {p["metadata"]["name"] for p in myapp.ready_pods("app=myapp,type=front-end")}
            if victim not in now and len(now) == 4:
                break
            assert time.monotonic() < deadline, f"front-end pods did not follow: {now}"
            time.sleep(0.2)
        t_ready = time.monotonic()
        time.sleep(3.0)
    finally:
        stop.set()
        loader.join(timeout=10)
    failed = [r for r in results if r[1] is None or r[1].startswith("FAILED")]
    assert not failed, failed
    new = now - before
    assert len(new) == 2
    late = [pod for t, pod in results if t > t_delete + 1.0]
    assert victim not in late
    after_ready = {pod for t, pod in results if t > t_ready + 1.0}
    assert new & after_ready, (new, after_ready)
    myapp.kubectl("scale", "deployment", "myapp-front-end", "--replicas=3")
