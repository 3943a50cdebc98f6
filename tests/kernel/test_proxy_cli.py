"""`podnet trace` and `podnet top` as a user runs them: a real node netns with podnet's rules,
an in-memory API (list only) and the CLI in a subprocess."""

from __future__ import annotations

import asyncio
import json
import os
import random
import subprocess
import sys
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from fakeapi import FakeApi  # small list+watch API of the DNS area, reused as a test double

from podnet.core.config import ClusterConfig
from podnet.core.naming import node_netns
from podnet.model.kinds import ENDPOINTSLICES, NODES, PODS, SERVICES
from podnet.proxy.nft import RealNft
from podnet.proxy.render import render_full
from podnet.proxy.serviceports import NodeFacts, build_service_ports
from podnet.proxy.state import build_state

pytestmark = [pytest.mark.kernel,
              pytest.mark.skipif(os.geteuid() != 0, reason="needs root for network namespaces")]


def pod(name: str, node: str, ip: str) -> dict[str, object]:
    return {"metadata": {"name": name, "namespace": "default"}, "spec": {"nodeName": node},
            "status": {"podIP": ip, "phase": "Running"}}


def node(name: str, ip: str, cidr: str) -> dict[str, object]:
    return {"metadata": {"name": name}, "spec": {"podCIDR": cidr, "podCIDRs": [cidr]},
            "status": {"addresses": [{"type": "InternalIP", "address": ip}],
                       "conditions": [{"type": "Ready", "status": "True"}]}}


def slice_(svc: str, eps: list[tuple[str, str]]) -> dict[str, object]:
    return {"metadata": {"name": f"{svc}-x", "namespace": "default",
                         "labels": {"kubernetes.io/service-name": svc}},
            "addressType": "IPv4", "ports": [{"name": "", "port": 8080, "protocol": "TCP"}],
            "endpoints": [{"addresses": [ip], "nodeName": n, "conditions": {"ready": True},
                           "targetRef": {"kind": "Pod", "namespace": "default", "name": f"web-{ip[-1]}"}}
                          for ip, n in eps]}


@pytest.fixture
async def cluster(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[tuple[str, Path]]:
    name = f"pkc{os.getpid() % 10000}{random.randint(0, 99)}"
    n1, n2 = f"{name}-node-1", f"{name}-node-2"
    monkeypatch.setenv("PODNET_STATE_ROOT", str(tmp_path))
    cfg = ClusterConfig(name=name, api_port=1, node_network="172.31.252.0/24")
    cfg.save()
    api = FakeApi()
    await api.start(unix_path=str(cfg.api_socket))  # the CLI prefers the cluster's unix socket
    nodes = [node(n1, "172.31.252.11", "10.244.1.0/24"), node(n2, "172.31.252.12", "10.244.2.0/24")]
    objs = {
        NODES: nodes,
        PODS: [pod("client", n1, "10.244.1.20"), pod("web-5", n1, "10.244.1.5"),
               pod("web-6", n2, "10.244.2.6")],
        SERVICES: [{"metadata": {"name": "web", "namespace": "default"},
                    "spec": {"type": "NodePort", "clusterIP": "10.96.0.20",
                             "externalTrafficPolicy": "Cluster",
                             "ports": [{"name": "", "port": 80, "protocol": "TCP", "targetPort": 8080,
                                        "nodePort": 30080}]}},
                   {"metadata": {"name": "empty", "namespace": "default"},
                    "spec": {"type": "ClusterIP", "clusterIP": "10.96.0.21",
                             "ports": [{"name": "", "port": 80, "protocol": "TCP", "targetPort": 80}]}}],
        ENDPOINTSLICES: [slice_("web", [("10.244.1.5", n1), ("10.244.2.6", n2)])],
    }
    for rt, items in objs.items():
        for o in items:
            api.put(rt, o)
    ns = node_netns(name, n1)
    subprocess.run(["ip", "netns", "add", ns], check=True)
    try:
        # the node's link and routes, as a podnet node has them (trace checks the routing decisions)
        for cmd in (["link", "add", "eth0", "type", "veth", "peer", "name", "eth1"],
                    ["link", "set", "eth0", "up"],
                    ["addr", "add", "172.31.252.11/24", "dev", "eth0"],
                    # each local pod: its own veth and /32 route (trace's hairpin test reads the devices)
                    ["link", "add", "vclient", "type", "veth", "peer", "name", "pclient"],
                    ["link", "set", "vclient", "up"], ["link", "set", "pclient", "up"],
                    ["route", "add", "10.244.1.20/32", "dev", "vclient"],
                    ["link", "add", "vweb5", "type", "veth", "peer", "name", "pweb5"],
                    ["link", "set", "vweb5", "up"], ["link", "set", "pweb5", "up"],
                    ["route", "add", "10.244.1.5/32", "dev", "vweb5"],
                    ["route", "add", "10.244.2.0/24", "via", "172.31.252.12"],
                    ["route", "add", "10.96.0.0/12", "dev", "eth0", "src", "172.31.252.11"]):
            subprocess.run(["ip", "-n", ns, *cmd], check=True)
        facts = NodeFacts(n1, ("172.31.252.11",), "10.244.0.0/16", "10.244.1.0/24",
                          ("10.244.1.0/24", "10.244.2.0/24"))
        built = build_service_ports(objs[SERVICES], objs[ENDPOINTSLICES], facts)
        RealNft(ns).apply(render_full(build_state(built.ports, facts)))
        yield name, tmp_path
    finally:
        subprocess.run(["ip", "netns", "del", ns], check=False)
        await api.stop()


async def podnet(state_root: Path, *args: str) -> tuple[int, str, str]:
    env = {**os.environ, "PODNET_STATE_ROOT": str(state_root)}
    podnet_cmd = str(Path(sys.executable).parent / "podnet")  # the installed console script
    proc = await asyncio.create_subprocess_exec(podnet_cmd, *args, env=env,
                                                stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    out, err = await asyncio.wait_for(proc.communicate(), 60)
    return proc.returncode or 0, out.decode(), err.decode()


async def test_trace_pod_to_cluster_ip(cluster: tuple[str, Path]) -> None:
    name, root = cluster
    rc, out, err = await podnet(root, "trace", "--name", name, "--from", "client", "web")
    assert rc == 0, err
    assert "TCP connection from pod default/client (10.244.1.20) to 10.96.0.20:80" in out
    assert "Service port matched: default/web:/TCP clusterIP" in out
    assert "10.244.2.6:8080 default/web-6 on node " + f"{name}-node-2: no SNAT" in out
    assert f"routed to {name}-node-2 via 172.31.252.12" in out


async def test_trace_outside_to_node_port_json(cluster: tuple[str, Path]) -> None:
    name, root = cluster
    rc, out, err = await podnet(root, "trace", "--name", name, "--from", "outside", "172.31.252.11:30080",
                                "-o", "json")
    assert rc == 0, err
    data = json.loads(out)
    assert data["service"] == "default/web:/TCP nodePort" and data["verdict"] == "accept"
    assert [(c["ip"], c["masquerade"]) for c in data["candidates"]] == [("10.244.1.5", True),
                                                                      ("10.244.2.6", True)]


async def test_trace_no_endpoints_and_bad_input(cluster: tuple[str, Path]) -> None:
    name, root = cluster
    rc, out, _ = await podnet(root, "trace", "--name", name, "--from", "client", "empty")
    assert rc == 0
    assert "REJECTED at once (tcp reset): the Service has no ready endpoints" in out
    rc, _, err = await podnet(root, "trace", "--name", name, "--from", "nobody", "web")
    assert rc == 1
    assert err.startswith("error: --from 'nobody': no pod or node of that name")
    assert "Traceback" not in err


async def test_top_reads_counters_of_every_node(cluster: tuple[str, Path]) -> None:
    name, root = cluster
    rc, out, err = await podnet(root, "top", "--name", name, "-o", "json")
    assert rc == 0, err
    data = json.loads(out)
    assert {"service": "default/web:/TCP", "packets": 0, "bytes": 0} in data["services"]
    assert [e for e in data["errors"] if e.startswith(f"{name}-node-2:")] == [
        f"{name}-node-2: network namespace {node_netns(name, name + '-node-2')} does not exist "
        "(Cannot open network namespace)"]  # that node has no netns here
