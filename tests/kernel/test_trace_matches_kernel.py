"""`podnet trace` agrees with the kernel: one real packet per path through the Service rules.

Two podnet nodes are built with podnet's own node code (net/nodenet.py: the node namespace on a
bridge, its routes — including the service CIDR's — reconciled as the agent does), pods are
veth'd namespaces running a tiny TCP server that answers "<pod name> <peer address>", and an
outside client sits on the node network at the address `podnet trace --from outside` assumes.
The rules are rendered from API objects served by a small in-memory API, which the `podnet
trace` command (run as a user runs it, in a subprocess) reads too. For every case a real
connection is made from a pod, from a node's own namespace or from outside, and what the client
sees — which pod answered and the source address it saw, refused at once, timed out, no route —
must be what `podnet trace -o json` says for the same packet, and what Kubernetes specifies.

    outside 172.31.253.1 ─┐ bridge (own "lan" namespace)
    node n1 .11 ──────────┤  pods: a 10.244.1.10, client 10.244.1.20
    node n2 .12 ──────────┘  pods: c 10.244.2.10
"""

from __future__ import annotations

import asyncio
import json
import os
import random
import subprocess
import sys
import textwrap
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from fakeapi import FakeApi  # small list+watch API, reused as a test double

from podnet.core.config import ClusterConfig
from podnet.core.naming import node_netns
from podnet.model.kinds import ENDPOINTSLICES, NODES, PODS, SERVICES
from podnet.net.nodenet import NodeInfo, reconcile_node_routes, setup_node_netns
from podnet.net.real import RealNetOps
from podnet.proxy.lbip import lb_owner
from podnet.proxy.libnft import LibNft
from podnet.proxy.nft import Nft, RealNft
from podnet.proxy.render import render_full
from podnet.proxy.serviceports import NodeFacts, build_service_ports
from podnet.proxy.state import build_state

pytestmark = [pytest.mark.kernel,
              pytest.mark.skipif(os.geteuid() != 0, reason="needs root for network namespaces")]

NET = "172.31.253"
OUT_IP = f"{NET}.1"  # the first host of the node network: where `podnet trace --from outside` starts
NODE_IPS = {"n1": f"{NET}.11", "n2": f"{NET}.12"}
NODE_CIDRS = {"n1": "10.244.1.0/24", "n2": "10.244.2.0/24"}
POD_IPS = {"a": ("n1", "10.244.1.10"), "client": ("n1", "10.244.1.20"), "c": ("n2", "10.244.2.10")}
LB_IP, FW_IP, EXT_IP = f"{NET}.200", f"{NET}.201", f"{NET}.150"
SVC_CIDR = "10.96.0.0/12"

SERVER = textwrap.dedent("""
    import socket, sys
    name = sys.argv[1]
    s = socket.socket()
    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    s.bind(("0.0.0.0", 8080))
    s.listen(64)
    while True:
        c, peer = s.accept()
        c.sendall(f"{name} {peer[0]}".encode())
        c.close()
""")

CLIENT = textwrap.dedent("""
    import errno, json, socket, sys, time
    host, port, n = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
    out = []
    for _ in range(n):
        t = time.monotonic()
        try:
            with socket.create_connection((host, port), timeout=1.0) as s:
                data = b""
                while chunk := s.recv(256):
                    data += chunk
            out.append({"ok": data.decode(), "t": time.monotonic() - t})
        except (TimeoutError, socket.timeout):
            out.append({"err": "timeout", "t": time.monotonic() - t})
        except OSError as e:
            out.append({"err": errno.errorcode.get(e.errno or 0, str(e)), "t": time.monotonic() - t})
    print(json.dumps(out))
""")


def sh(*args: str, check: bool = True) -> str:
    p = subprocess.run(list(args), capture_output=True, text=True, timeout=30, check=False)
    if check and p.returncode != 0:
        raise RuntimeError(f"{' '.join(args)}: {p.stderr.strip()}")
    return p.stdout


def nsx(ns: str, *args: str, check: bool = True) -> str:
    return sh("ip", "netns", "exec", ns, *args, check=check)


def node_obj(name: str) -> dict[str, Any]:
    return {"metadata": {"name": name}, "spec": {"podCIDR": NODE_CIDRS[name], "podCIDRs": [NODE_CIDRS[name]]},
            "status": {"addresses": [{"type": "InternalIP", "address": NODE_IPS[name]}],
                       "conditions": [{"type": "Ready", "status": "True"}]}}


def pod_obj(name: str) -> dict[str, Any]:
    node, ip = POD_IPS[name]
    return {"metadata": {"name": name, "namespace": "default"}, "spec": {"nodeName": node},
            "status": {"podIP": ip, "phase": "Running"}}


def svc_obj(name: str, ip: str, *, type_: str = "ClusterIP", node_port: int = 0, lb_ip: str = "",
            **spec: Any) -> dict[str, Any]:
    port: dict[str, Any] = {"name": "", "port": 80, "protocol": "TCP", "targetPort": 8080}
    if node_port:
        port["nodePort"] = node_port
    s: dict[str, Any] = {"metadata": {"name": name, "namespace": "default"},
                         "spec": {"type": type_, "clusterIP": ip, "clusterIPs": [ip], "ports": [port],
                                  **spec}}
    if type_ != "ClusterIP":
        s["spec"].setdefault("externalTrafficPolicy", "Cluster")
    if lb_ip:
        s["status"] = {"loadBalancer": {"ingress": [{"ip": lb_ip, "ipMode": "VIP"}]}}
    return s


def slice_obj(svc: str, pods: list[str]) -> dict[str, Any]:
    return {"metadata": {"name": f"{svc}-x", "namespace": "default",
                         "labels": {"kubernetes.io/service-name": svc}},
            "addressType": "IPv4", "ports": [{"name": "", "port": 8080, "protocol": "TCP"}],
            "endpoints": [{"addresses": [POD_IPS[p][1]], "nodeName": POD_IPS[p][0],
                           "conditions": {"ready": True},
                           "targetRef": {"kind": "Pod", "namespace": "default", "name": p}} for p in pods]}


SERVICES_ = [
    svc_obj("web", "10.96.0.20", type_="NodePort", node_port=30080),  # a (local to n1) and c (remote)
    svc_obj("local", "10.96.0.21", type_="NodePort", node_port=30082, externalTrafficPolicy="Local"),
    svc_obj("empty", "10.96.0.22", type_="NodePort", node_port=30084),  # no endpoints
    svc_obj("self", "10.96.0.23"),  # only a: a reaching itself through its Service (hairpin)
    svc_obj("itp", "10.96.0.24", internalTrafficPolicy="Local"),  # only c, on n2
    svc_obj("lb", "10.96.0.25", type_="LoadBalancer", node_port=30090, lb_ip=LB_IP),
    svc_obj("near", "10.96.0.26"),  # only a: DNAT to a pod on the client's node
    svc_obj("far", "10.96.0.27"),  # only c: DNAT to a pod on the other node
    svc_obj("fw", "10.96.0.28", type_="LoadBalancer", node_port=30091, lb_ip=FW_IP,
            loadBalancerSourceRanges=["10.0.0.0/8"]),
    svc_obj("sticky", "10.96.0.29", sessionAffinity="ClientIP",
            sessionAffinityConfig={"clientIP": {"timeoutSeconds": 300}}),
    svc_obj("ext", "10.96.0.30", externalIPs=[EXT_IP]),  # an external IP no node holds: reached via a node
]
SLICES = [slice_obj("web", ["a", "c"]), slice_obj("local", ["c"]), slice_obj("self", ["a"]),
          slice_obj("itp", ["c"]), slice_obj("lb", ["a", "c"]), slice_obj("near", ["a"]),
          slice_obj("far", ["c"]), slice_obj("fw", ["a"]), slice_obj("sticky", ["a", "c"]),
          slice_obj("ext", ["a"])]


@dataclass
class Lab:
    name: str
    root: Path
    netns: list[str] = field(default_factory=list)
    procs: list[subprocess.Popen[bytes]] = field(default_factory=list)

    def ns_of(self, who: str) -> str:
        if who in NODE_IPS:
            return node_netns(self.name, who)
        return f"{self.name}-{who}"

    def add_ns(self, ns: str) -> str:
        sh("ip", "netns", "add", ns)
        self.netns.append(ns)
        nsx(ns, "ip", "link", "set", "lo", "up")
        return ns

    def veth(self, ns_a: str, if_a: str, ns_b: str, if_b: str) -> None:
        sh("ip", "-n", ns_a, "link", "add", if_a, "type", "veth", "peer", "name", if_b, "netns", ns_b)
        nsx(ns_a, "ip", "link", "set", if_a, "up")
        nsx(ns_b, "ip", "link", "set", if_b, "up")

    def build(self) -> None:
        ops = RealNetOps()
        lan = self.add_ns(f"{self.name}-lan")
        nsx(lan, "ip", "link", "add", "br0", "type", "bridge")
        nsx(lan, "ip", "link", "set", "br0", "up")
        infos = [NodeInfo(n, NODE_IPS[n], NODE_CIDRS[n]) for n in NODE_IPS]
        for i, (node, ip) in enumerate(NODE_IPS.items()):
            ns = self.ns_of(node)
            self.netns.append(ns)
            setup_node_netns(ops, netns=ns, host_if=f"h{i}", bridge="br0", node_ip_cidr=f"{ip}/24",
                             host_netns=lan)
            me = next(n for n in infos if n.name == node)
            reconcile_node_routes(ops, netns=ns, mode="host-gw", my_node=me, others=infos, vni=1,
                                  service_cidr=SVC_CIDR)
        out = self.add_ns(self.ns_of("outside"))
        self.veth(out, "eth0", lan, "hout")
        nsx(lan, "ip", "link", "set", "hout", "master", "br0")
        nsx(out, "ip", "addr", "add", f"{OUT_IP}/24", "dev", "eth0")
        (self.root / "server.py").write_text(SERVER)
        (self.root / "client.py").write_text(CLIENT)
        for i, (pod, (node, ip)) in enumerate(sorted(POD_IPS.items())):
            ns, nns = self.add_ns(self.ns_of(pod)), self.ns_of(node)
            self.veth(ns, "eth0", nns, f"v{i}")
            nsx(nns, "sysctl", "-qw", f"net.ipv4.conf.v{i}.proxy_arp=1")
            nsx(nns, "sysctl", "-qw", f"net.ipv4.neigh.v{i}.proxy_delay=0")
            nsx(nns, "ip", "route", "add", f"{ip}/32", "dev", f"v{i}")
            nsx(ns, "ip", "addr", "add", f"{ip}/32", "dev", "eth0")
            nsx(ns, "ip", "route", "add", "169.254.1.1", "dev", "eth0", "scope", "link")
            nsx(ns, "ip", "route", "add", "default", "via", "169.254.1.1", "dev", "eth0")
            if pod != "client":
                cmd = ["ip", "netns", "exec", ns, sys.executable, str(self.root / "server.py"), pod]
                self.procs.append(subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL))
        for pod in ("a", "c"):
            for _ in range(100):
                if nsx(self.ns_of(pod), "ss", "-ltnH", "sport = :8080").strip():
                    break
                subprocess.run(["sleep", "0.05"], check=False)

    def program(self) -> None:
        """Every node's rules, as its agent renders them; LoadBalancer IPs on their owner node.

        n1's go through libnftables (`LibNft`, what agents use), n2's through the `nft` binary (the
        fallback when the library is missing): a trace from either node checks either path."""
        nodes = [node_obj(n) for n in NODE_IPS]
        for node in NODE_IPS:
            facts = NodeFacts(node, (NODE_IPS[node],), "10.244.0.0/16", NODE_CIDRS[node],
                              tuple(NODE_CIDRS.values()), tuple(NODE_IPS.values()), SVC_CIDR)
            built = build_service_ports(SERVICES_, SLICES, facts)
            nft: Nft = LibNft(self.ns_of(node)) if node == "n1" else RealNft(self.ns_of(node))
            nft.apply(render_full(build_state(built.ports, facts)))
            if isinstance(nft, LibNft):
                nft.close()
        built = build_service_ports(SERVICES_, SLICES, NodeFacts("", (), "10.244.0.0/16"))
        for sp in built.ports:
            for ip in sp.lb_ips:
                owner = lb_owner(ip, sp, nodes)
                assert owner is not None
                nsx(self.ns_of(owner), "ip", "addr", "add", f"{ip}/32", "dev", "eth0")

    def connect(self, who: str, host: str, port: int, n: int = 1) -> list[dict[str, Any]]:
        out = nsx(self.ns_of(who), sys.executable, str(self.root / "client.py"), host, str(port), str(n))
        got: list[dict[str, Any]] = json.loads(out)
        return got

    def cleanup(self) -> None:
        for p in self.procs:
            p.terminate()
        for p in self.procs:
            try:
                p.wait(timeout=5)
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait()
        for ns in reversed(self.netns):
            sh("ip", "netns", "del", ns, check=False)


@pytest.fixture(scope="module")
def lab(tmp_path_factory: pytest.TempPathFactory) -> Any:
    name = f"dpt{os.getpid() % 10000}{random.randint(0, 99)}"
    root = tmp_path_factory.mktemp("trace-kernel")
    lab = Lab(name, root)
    try:
        lab.build()
        lab.program()
        yield lab
    finally:
        lab.cleanup()


@pytest.fixture
async def api(lab: Lab, monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[Lab]:
    monkeypatch.setenv("PODNET_STATE_ROOT", str(lab.root))
    cfg = ClusterConfig(name=lab.name, api_port=1, node_network=f"{NET}.0/24", service_cidr=SVC_CIDR)
    cfg.save()
    fake = FakeApi()
    await fake.start(unix_path=str(cfg.api_socket))  # the CLI prefers the cluster's unix socket
    for rt, items in ((NODES, [node_obj(n) for n in NODE_IPS]), (PODS, [pod_obj(p) for p in POD_IPS]),
                      (SERVICES, SERVICES_), (ENDPOINTSLICES, SLICES)):
        for o in items:
            fake.put(rt, o)
    try:
        yield lab
    finally:
        await fake.stop()


async def trace(lab: Lab, src: str, dst: str, port: int) -> dict[str, Any]:
    env = {**os.environ, "PODNET_STATE_ROOT": str(lab.root)}
    podnet_cmd = str(Path(sys.executable).parent / "podnet")
    proc = await asyncio.create_subprocess_exec(
        podnet_cmd, "trace", "--name", lab.name, "--from", src, f"{dst}:{port}", "-o", "json", env=env,
        stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    out, err = await asyncio.wait_for(proc.communicate(), 60)
    assert proc.returncode == 0, err.decode()
    got: dict[str, Any] = json.loads(out)
    return got


N1, N2 = NODE_IPS["n1"], NODE_IPS["n2"]
# (client, destination, port, connections, what Kubernetes specifies: the pods that may answer,
#  or "refused" / "timeout" / "unreachable")
CASES: list[tuple[str, str, int, int, object]] = [
    ("client", "10.96.0.26", 80, 1, {"a"}),  # DNAT to a pod on the same node, no SNAT
    ("client", "10.96.0.27", 80, 1, {"c"}),  # DNAT to a pod on the other node, no SNAT
    ("client", "10.96.0.20", 80, 6, {"a", "c"}),  # random among all endpoints
    ("client", "10.96.0.22", 80, 1, "refused"),  # no endpoints: reject
    ("client", "10.96.0.20", 81, 1, "refused"),  # a port the ClusterIP does not define: reject
    ("client", "10.96.0.24", 80, 1, "timeout"),  # internalTrafficPolicy Local, no endpoint on n1: drop
    ("client", "10.96.0.99", 80, 1, "timeout"),  # unallocated address of the service CIDR: drop
    ("client", N1, 30082, 1, {"c"}),  # externalTrafficPolicy Local from a pod: every endpoint, no SNAT
    ("client", LB_IP, 80, 4, {"a", "c"}),  # LoadBalancer IP from inside the cluster
    ("client", "192.0.2.9", 80, 1, "unreachable"),  # nodes have no default route
    ("a", "10.96.0.23", 80, 1, {"a"}),  # hairpin: masqueraded so the reply comes back
    ("n1", "10.96.0.26", 80, 1, {"a"}),  # a node's own namespace (hostNetwork pods) reaches ClusterIPs
    ("n1", "10.96.0.27", 80, 1, {"c"}),
    ("n1", "10.96.0.20", 80, 4, {"a", "c"}),
    ("n1", "10.96.0.22", 80, 1, "refused"),
    ("n1", "10.96.0.20", 81, 1, "refused"),
    ("n1", "10.96.0.24", 80, 1, "timeout"),
    ("n1", "10.96.0.99", 80, 1, "timeout"),
    ("n2", "10.96.0.24", 80, 1, {"c"}),  # the ITP Local Service from the node that has its endpoint
    ("n1", N1, 30082, 2, {"c"}),  # externalTrafficPolicy Local from the node itself: every endpoint
    ("client", EXT_IP, 80, 2, {"a"}),  # an external IP, from a pod (the pod's node DNATs it)
    ("outside", N1, 30080, 6, {"a", "c"}),  # NodePort, externalTrafficPolicy Cluster: masqueraded
    ("outside", N1, 30082, 1, "timeout"),  # NodePort, externalTrafficPolicy Local, no local endpoint: drop
    ("outside", N2, 30082, 2, {"c"}),  # ... with a local endpoint: the client address is kept
    ("outside", N1, 30084, 1, "refused"),  # NodePort without endpoints: reject
    ("outside", LB_IP, 80, 4, {"a", "c"}),  # LoadBalancer IP, on its owner node
    ("outside", FW_IP, 80, 1, "timeout"),  # loadBalancerSourceRanges without the client: drop
]

KERNEL_ERR = {"refused": "ECONNREFUSED", "timeout": "timeout", "unreachable": "ENETUNREACH"}
TRACE_VERDICT = {"refused": "reject", "timeout": "drop", "unreachable": "unreachable"}


async def test_every_path_trace_says_what_the_kernel_does(api: Lab) -> None:
    lab = api
    client_ip = {"outside": OUT_IP, **NODE_IPS, **{p: ip for p, (_, ip) in POD_IPS.items()}}
    failures: list[str] = []
    for who, dst, port, n, want in CASES:
        tr = await trace(lab, who, dst, port)
        seen = await asyncio.to_thread(lab.connect, who, dst, port, n)
        what = f"{who} → {dst}:{port}"
        if isinstance(want, str):
            if tr["verdict"] != TRACE_VERDICT[want]:
                failures.append(f"{what}: trace says {tr['verdict']}, Kubernetes: {want}")
            errs = {r.get("err") for r in seen}
            if errs != {KERNEL_ERR[want]}:
                failures.append(f"{what}: the client saw {seen}, Kubernetes: {want}")
            if want == "refused" and max(r["t"] for r in seen) > 0.5:
                failures.append(f"{what}: refused only after {seen}")
            continue
        assert isinstance(want, set)
        if tr["verdict"] != "accept":
            failures.append(f"{what}: trace says {tr['verdict']} ({tr.get('reason')}), expected an answer")
            continue
        cands = {c["ip"]: c for c in tr["candidates"]}
        if {c["pod"].split("/")[1] for c in cands.values()} != want:
            failures.append(f"{what}: trace's candidates {sorted(cands)}, Kubernetes: {sorted(want)}")
        for r in seen:
            if "ok" not in r:
                failures.append(f"{what}: the client saw {r}, trace says one of {sorted(cands)} answers")
                continue
            pod, peer = r["ok"].split()
            cand = cands.get(POD_IPS[pod][1])
            if cand is None:
                failures.append(f"{what}: answered by {pod}, not one of trace's candidates {sorted(cands)}")
                continue
            entry = tr["entryNode"]
            expect_peer = NODE_IPS[entry] if cand["masquerade"] else client_ip[who]
            if peer != expect_peer:
                failures.append(f"{what}: {pod} saw the client as {peer}; trace says masquerade="
                                f"{cand['masquerade']} (so {expect_peer})")
    assert failures == []


async def test_session_affinity_trace_follows_the_kernels_sticky_choice(api: Lab) -> None:
    """After a client's first connections, the kernel's affinity entry (read back by trace) names
    the one pod every later connection of that client reaches."""
    lab = api
    seen = await asyncio.to_thread(lab.connect, "client", "10.96.0.29", 80, 6)
    pods = {str(r.get("ok", "")).split()[0] for r in seen}
    assert len(pods) == 1 and pods <= {"a", "c"}, seen
    tr = await trace(lab, "client", "10.96.0.29", 80)
    assert [c["ip"] for c in tr["candidates"]] == [POD_IPS[pods.pop()][1]], tr
    assert any("session-affinity" in step or "affinity" in step for step in tr["steps"]), tr["steps"]
