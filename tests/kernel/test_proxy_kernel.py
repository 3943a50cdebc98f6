"""The proxy's rules in a real kernel: a self-contained 2-node topology in network namespaces.

    outside (172.31.250.100) ─┐
    node n1 eth0 (.1) ────────┼── bridge in a "lan" netns
    node n2 eth0 (.2) ────────┘
    pods: ptp veths (pod /32, default via 169.254.1.1, proxy-ARP on the node side),
          n1: a (10.244.1.10), b (10.244.1.11), client (10.244.1.20); n2: c (10.244.2.10)

Every pod runs a tiny HTTP server answering "<name> <peer ip>". The same
ruleset is loaded into FakeNft, and the kernel's choices must match its trace.
"""

from __future__ import annotations

import json
import os
import random
import subprocess
import sys
import textwrap
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from podnet.net.nodenet import service_route
from podnet.proxy.fake import FakeNft, Packet
from podnet.proxy.nft import RealNft
from podnet.proxy.render import render_delta, render_full
from podnet.proxy.serviceports import EndpointInfo, NodeFacts, ServicePortInfo
from podnet.proxy.state import RulesetState, build_state

pytestmark = [pytest.mark.kernel,
              pytest.mark.skipif(os.geteuid() != 0, reason="needs root for network namespaces")]

LAN = "172.31.250"
N1_IP, N2_IP, OUT_IP = f"{LAN}.1", f"{LAN}.2", f"{LAN}.100"
PODS = {"a": ("n1", "10.244.1.10"), "b": ("n1", "10.244.1.11"), "client": ("n1", "10.244.1.20"),
        "c": ("n2", "10.244.2.10")}
ALL_CIDRS = ("10.244.1.0/24", "10.244.2.0/24")
SVC_CIDR = "10.96.0.0/12"
NODES = {"n1": NodeFacts("n1", (N1_IP,), "10.244.0.0/16", "10.244.1.0/24", ALL_CIDRS, service_cidr=SVC_CIDR),
         "n2": NodeFacts("n2", (N2_IP,), "10.244.0.0/16", "10.244.2.0/24", ALL_CIDRS, service_cidr=SVC_CIDR)}

SERVER = textwrap.dedent("""
    import http.server, socket, sys
    name = sys.argv[1]
    class H(http.server.BaseHTTPRequestHandler):
        def do_GET(self):
            body = f"{name} {self.client_address[0]}".encode()
            self.send_response(200)
            self.send_header("Content-Length", str(len(body)))
            self.send_header("Connection", "close")
            self.end_headers()
            self.wfile.write(body)
        def log_message(self, *a):
            pass
    def udp():
        u = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        u.bind(("0.0.0.0", 8080))
        while True:
            data, peer = u.recvfrom(2048)
            u.sendto(f"{name} {peer[0]}".encode(), peer)
    import threading
    threading.Thread(target=udp, daemon=True).start()
    http.server.ThreadingHTTPServer.allow_reuse_address = True
    http.server.ThreadingHTTPServer(("0.0.0.0", 8080), H).serve_forever()
""")

CLIENT = textwrap.dedent("""
    import json, socket, sys, time
    host, port, n = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
    timeout, pause = float(sys.argv[4]), float(sys.argv[5])
    out = []
    deadline = time.monotonic() + 30
    for _ in range(n):
        if time.monotonic() > deadline:
            break
        t = time.monotonic()
        try:
            with socket.create_connection((host, port), timeout=timeout) as s:
                s.sendall(b"GET / HTTP/1.0\\r\\nHost: x\\r\\n\\r\\n")
                data = b""
                while True:
                    chunk = s.recv(4096)
                    if not chunk:
                        break
                    data += chunk
            out.append({"ok": data.split(b"\\r\\n\\r\\n", 1)[1].decode(), "t": time.monotonic() - t})
        except Exception as e:
            out.append({"err": type(e).__name__, "t": time.monotonic() - t})
        time.sleep(pause)
    print(json.dumps(out))
""")


def sh(*args: str, check: bool = True) -> str:
    p = subprocess.run(list(args), capture_output=True, text=True, timeout=30, check=False)
    if check and p.returncode != 0:
        raise RuntimeError(f"{' '.join(args)}: {p.stderr.strip()}")
    return p.stdout


def nsx(ns: str, *args: str, check: bool = True) -> str:
    return sh("ip", "netns", "exec", ns, *args, check=check)


@dataclass
class Topo:
    tag: str
    tmp: Path
    netns: list[str] = field(default_factory=list)
    procs: list[subprocess.Popen[bytes]] = field(default_factory=list)

    def ns(self, name: str) -> str:
        return f"pk{self.tag}-{name}"

    def add_ns(self, name: str) -> str:
        ns = self.ns(name)
        sh("ip", "netns", "add", ns)
        self.netns.append(ns)
        nsx(ns, "ip", "link", "set", "lo", "up")
        return ns

    def veth(self, ns_a: str, if_a: str, ns_b: str, if_b: str) -> None:
        tmp_a, tmp_b = f"pk{self.tag}x", f"pk{self.tag}y"
        sh("ip", "link", "add", tmp_a, "type", "veth", "peer", "name", tmp_b)
        sh("ip", "link", "set", tmp_a, "netns", ns_a)
        sh("ip", "link", "set", tmp_b, "netns", ns_b)
        nsx(ns_a, "ip", "link", "set", tmp_a, "name", if_a)
        nsx(ns_b, "ip", "link", "set", tmp_b, "name", if_b)
        nsx(ns_a, "ip", "link", "set", if_a, "up")
        nsx(ns_b, "ip", "link", "set", if_b, "up")

    def build(self) -> None:
        lan = self.add_ns("lan")
        nsx(lan, "ip", "link", "add", "br0", "type", "bridge")
        nsx(lan, "ip", "link", "set", "br0", "up")
        for i, (name, ip) in enumerate((("n1", N1_IP), ("n2", N2_IP), ("out", OUT_IP))):
            ns = self.add_ns(name)
            self.veth(ns, "eth0", lan, f"p{i}")
            nsx(lan, "ip", "link", "set", f"p{i}", "master", "br0")
            nsx(ns, "ip", "addr", "add", f"{ip}/24", "dev", "eth0")
        for node, other_ip, other_cidr in (("n1", N2_IP, "10.244.2.0/24"), ("n2", N1_IP, "10.244.1.0/24")):
            ns = self.ns(node)
            nsx(ns, "sysctl", "-qw", "net.ipv4.ip_forward=1")
            nsx(ns, "ip", "route", "add", other_cidr, "via", other_ip)
            # as podnet's nodes (net/nodenet.py): no default route, the pods' gateway (for proxy ARP)
            # and the service CIDR out of the uplink
            nsx(ns, "ip", "route", "add", "169.254.1.1/32", "dev", "eth0", "scope", "link")
            r = service_route(SVC_CIDR, "eth0", N1_IP if node == "n1" else N2_IP)
            nsx(ns, "ip", "route", "add", r.dst, "dev", "eth0", "scope", "link", "src", str(r.src))
        for i, (pod, (node, ip)) in enumerate(sorted(PODS.items())):
            ns = self.add_ns(f"pod-{pod}")
            nns = self.ns(node)
            self.veth(ns, "eth0", nns, f"v{i}")
            nsx(nns, "sysctl", "-qw", f"net.ipv4.conf.v{i}.proxy_arp=1")
            nsx(nns, "sysctl", "-qw", f"net.ipv4.neigh.v{i}.proxy_delay=0")
            nsx(ns, "ip", "addr", "add", f"{ip}/32", "dev", "eth0")
            nsx(ns, "ip", "route", "add", "169.254.1.1", "dev", "eth0", "scope", "link")
            nsx(ns, "ip", "route", "add", "default", "via", "169.254.1.1", "dev", "eth0")
            nsx(nns, "ip", "route", "add", f"{ip}/32", "dev", f"v{i}")
            if pod != "client":
                script = self.tmp / "server.py"
                script.write_text(SERVER)
                cmd = ["ip", "netns", "exec", ns, sys.executable, str(script), pod]
                self.procs.append(subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL))
        (self.tmp / "client.py").write_text(CLIENT)
        self.wait_servers()

    def wait_servers(self) -> None:
        for pod in PODS:
            if pod == "client":
                continue
            for _ in range(100):
                if nsx(self.ns(f"pod-{pod}"), "ss", "-ltnH", "sport = :8080").strip():
                    break
                time.sleep(0.05)
            else:
                raise RuntimeError(f"server in pod {pod} did not start")

    def requests(self, from_ns: str, host: str, port: int, n: int, timeout: float = 2.0,
                 pause: float = 0.0) -> list[dict[str, object]]:
        out = nsx(self.ns(from_ns), sys.executable, str(self.tmp / "client.py"), host, str(port), str(n),
                  str(timeout), str(pause))
        result: list[dict[str, object]] = json.loads(out)
        return result

    def cleanup(self) -> None:
        for p in self.procs:
            p.terminate()
        for p in self.procs:
            try:
                p.wait(timeout=5)
            except subprocess.TimeoutExpired:
                p.kill()
        for ns in reversed(self.netns):
            sh("ip", "netns", "del", ns, check=False)


@pytest.fixture(scope="module")
def topo(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Topo]:
    t = Topo(f"{os.getpid() % 100000}{random.randint(0, 99)}", tmp_path_factory.mktemp("proxy-kernel"))
    try:
        t.build()
        yield t
    finally:
        t.cleanup()


def ep(pod: str, port: int = 8080) -> EndpointInfo:
    node, ip = PODS[pod]
    return EndpointInfo(ip, port, node, pod=f"default/{pod}")


def ports(web_eps: tuple[str, ...] = ("a", "b", "c")) -> list[ServicePortInfo]:
    return [
        ServicePortInfo("default", "web", "http", "TCP", 80, "10.96.0.20", node_port=30080,
                        endpoints=tuple(ep(p) for p in web_eps)),
        ServicePortInfo("default", "local", "", "TCP", 80, "10.96.0.21", node_port=30082, etp_local=True,
                        svc_type="NodePort", endpoints=(ep("c"),)),
        ServicePortInfo("default", "empty", "", "TCP", 80, "10.96.0.22"),
        ServicePortInfo("default", "self", "", "TCP", 80, "10.96.0.23", endpoints=(ep("a"),)),
        ServicePortInfo("default", "itp", "", "TCP", 80, "10.96.0.24", itp_local=True, endpoints=(ep("c"),)),
    ]


def load(topo: Topo, web_eps: tuple[str, ...] = ("a", "b", "c")) -> dict[str, RulesetState]:
    states = {}
    for node, facts in NODES.items():
        st = build_state(ports(web_eps), facts)
        RealNft(topo.ns(node)).apply(render_full(st))
        states[node] = st
    return states


def fake_for(st: RulesetState) -> FakeNft:
    f = FakeNft()
    f.apply(render_full(st))
    return f


def served_by(results: list[dict[str, object]]) -> list[tuple[str, str]]:
    out = []
    for r in results:
        assert "ok" in r, f"request failed: {r}"
        name, peer = str(r["ok"]).split()
        out.append((name, peer))
    return out


def test_cluster_ip_spreads_over_every_endpoint_without_snat(topo: Topo) -> None:
    states = load(topo)
    got = served_by(topo.requests("pod-client", "10.96.0.20", 80, 60))
    assert {name for name, _ in got} == {"a", "b", "c"}
    assert {peer for _, peer in got} == {PODS["client"][1]}  # the server sees the client pod IP
    tr = fake_for(states["n1"]).trace(Packet(PODS["client"][1], "10.96.0.20", 80), NODES["n1"].ips)
    assert {ip for ip, _ in tr.candidates} == {PODS[n][1] for n, _ in got}
    assert not any(tr.masquerade_by_candidate.values())


def test_node_port_from_outside_is_masqueraded_on_every_node(topo: Topo) -> None:
    states = load(topo)
    for node_ip in (N1_IP, N2_IP):
        got = served_by(topo.requests("out", node_ip, 30080, 30))
        assert {name for name, _ in got} == {"a", "b", "c"}
        assert OUT_IP not in {peer for _, peer in got}
    tr = fake_for(states["n1"]).trace(Packet(OUT_IP, N1_IP, 30080), NODES["n1"].ips)
    assert all(tr.masquerade_by_candidate.values()) and len(tr.candidates) == 3


def test_etp_local_drops_without_local_endpoint_and_keeps_client_ip(topo: Topo) -> None:
    states = load(topo)
    dropped = topo.requests("out", N1_IP, 30082, 1, timeout=1.0)
    assert dropped[0].get("err") in ("TimeoutError", "timeout")
    assert fake_for(states["n1"]).trace(Packet(OUT_IP, N1_IP, 30082), NODES["n1"].ips).verdict == "drop"
    got = served_by(topo.requests("out", N2_IP, 30082, 5))
    assert got == [("c", OUT_IP)] * 5
    tr = fake_for(states["n2"]).trace(Packet(OUT_IP, N2_IP, 30082), NODES["n2"].ips)
    assert tr.candidates == [(PODS["c"][1], 8080)] and not tr.masquerade


def test_no_endpoints_is_refused_at_once(topo: Topo) -> None:
    states = load(topo)
    res = topo.requests("pod-client", "10.96.0.22", 80, 3, timeout=3.0)
    for r in res:
        assert r["err"] == "ConnectionRefusedError"
        assert float(str(r["t"])) < 0.5, res  # a timeout would take 3 s
    tr = fake_for(states["n1"]).trace(Packet(PODS["client"][1], "10.96.0.22", 80), NODES["n1"].ips)
    assert (tr.verdict, tr.reject_with) == ("reject", "tcp reset")


def test_hairpin_pod_reaches_itself_through_its_service(topo: Topo) -> None:
    states = load(topo)
    got = served_by(topo.requests("pod-a", "10.96.0.23", 80, 3))
    assert {name for name, _ in got} == {"a"}
    assert PODS["a"][1] not in {peer for _, peer in got}  # masqueraded, else the reply would not return
    tr = fake_for(states["n1"]).trace(Packet(PODS["a"][1], "10.96.0.23", 80), NODES["n1"].ips)
    assert tr.masquerade


def test_delta_removing_an_endpoint_stops_traffic_to_it(topo: Topo) -> None:
    states = load(topo)
    new = build_state(ports(("a", "c")), NODES["n1"], states["n1"].svc_ids)
    delta = render_delta(states["n1"], new)
    assert delta and "delete table" not in delta
    RealNft(topo.ns("n1")).apply(delta)
    got = served_by(topo.requests("pod-client", "10.96.0.20", 80, 40))
    assert {name for name, _ in got} == {"a", "c"}


def test_restart_full_sync_converges_without_a_failed_request(topo: Topo) -> None:
    load(topo)
    script = topo.tmp / "client.py"
    proc = subprocess.Popen(["ip", "netns", "exec", topo.ns("pod-client"), sys.executable, str(script),
                             "10.96.0.20", "80", "150", "2", "0.01"], stdout=subprocess.PIPE, text=True)
    try:
        for _ in range(10):  # what a restarted agent does: the whole table replaced in one transaction
            st = build_state(ports(), NODES["n1"])
            RealNft(topo.ns("n1")).apply(render_full(st))
            time.sleep(0.05)
        out, _ = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    results = json.loads(out)
    assert len(results) == 150
    assert [r for r in results if "err" in r] == []


def test_fake_reads_back_the_kernel_listing(topo: Topo) -> None:
    states = load(topo)
    listing = RealNft(topo.ns("n1")).list_table_text()
    f = FakeNft()
    f.apply(listing)
    for fe in states["n1"].frontends.values():
        a = f.trace(Packet(PODS["client"][1], fe.ip, fe.port, fe.proto), NODES["n1"].ips)
        b = fake_for(states["n1"]).trace(Packet(PODS["client"][1], fe.ip, fe.port, fe.proto), NODES["n1"].ips)
        assert (a.verdict, a.candidates, a.service) == (b.verdict, b.candidates, b.service)


def test_counters_count_service_and_endpoint_traffic(topo: Topo) -> None:
    from podnet.proxy.explain import counters_from_json

    load(topo)
    # a reference count of the same packets, in a table of the test's own: every packet of a DNATed
    # connection that passes the node's filter hooks, counted once by the kernel
    ref = "pn-test-ref"
    hooks = "".join(f"chain {h} {{ type filter hook {h} priority 10 ; ct status dnat counter ; }}\n"
                    for h in ("input", "forward", "output"))
    nsx(topo.ns("n1"), "nft", f"table ip {ref} {{\n{hooks}}}")
    try:
        served_by(topo.requests("pod-client", "10.96.0.23", 80, 4))
        svcs, eps = counters_from_json(RealNft(topo.ns("n1")).list_ruleset_json())
        listing = json.loads(nsx(topo.ns("n1"), "nft", "-j", "list", "table", "ip", ref))
    finally:
        nsx(topo.ns("n1"), "nft", "delete", "table", "ip", ref)
    seen = sum(int(i["rule"]["expr"][-1]["counter"]["packets"]) for i in listing["nftables"] if "rule" in i)
    assert seen >= 4 * 5  # each request is at least SYN, ACK, data, FIN, ACK
    pk, by = svcs["default/self:/TCP"]
    assert pk == seen and by > 0  # each packet counted once, as the kernel saw it
    assert eps[f"{PODS['a'][1]}:8080/tcp (default/a)"][0] == seen
    assert svcs["default/web:http/TCP"] == (0, 0)


def test_counters_of_endpoints_and_services_that_go_are_removed_by_the_delta(topo: Topo) -> None:
    """The data path makes the counter elements; a delta removes those of an endpoint / Service that
    went away (whether traffic made them or not) and keeps the others' counts."""
    from podnet.proxy.explain import counters_from_json

    def ep_counts() -> dict[str, tuple[int, int]]:
        return counters_from_json(RealNft(topo.ns("n1")).list_ruleset_json())[1]

    def counted(name: str) -> set[str]:
        doc = RealNft(topo.ns("n1")).list_ruleset_json()
        s = next(i["set"] for i in doc["nftables"] if "set" in i and i["set"]["name"] == name)
        return {json.dumps(e["elem"]["val"]) for e in s.get("elem") or []}

    states = load(topo)
    old = states["n1"]
    served_by(topo.requests("pod-client", "10.96.0.20", 80, 12))  # web: a, b, c
    served_by(topo.requests("pod-client", "10.96.0.23", 80, 2))  # self: a
    before = ep_counts()
    a, b = f"{PODS['a'][1]}:8080/tcp (default/a)", f"{PODS['b'][1]}:8080/tcp (default/b)"
    assert before[a][0] > 0 and before[b][0] > 0
    ids = counted("svc-counters")
    assert len(ids) == 2  # web and self, made by their first packets
    # b leaves web, and Service self goes
    new = build_state([p for p in ports(("a", "c")) if p.name != "self"], NODES["n1"], old.svc_ids)
    RealNft(topo.ns("n1")).apply(render_delta(old, new))
    after = ep_counts()
    assert b not in after  # no element, no backend: gone from `podnet top`
    assert after[a] == before[a]  # still web's endpoint: its count is kept
    assert counted("svc-counters") == {str(old.svc_ids["default/web:http/TCP"])}
    # b comes back: listed again, from zero (its old element went with the delta)
    again = build_state(ports(("a", "b", "c")), NODES["n1"], new.svc_ids)
    RealNft(topo.ns("n1")).apply(render_delta(new, again))
    assert ep_counts()[b] == (0, 0)


def test_load_balancer_ip_lives_on_its_owner_node(topo: Topo) -> None:
    lb = f"{LAN}.200"
    sps = [ServicePortInfo("default", "lb", "", "TCP", 80, "10.96.0.30", node_port=30090, lb_ips=(lb,),
                           svc_type="LoadBalancer", endpoints=(ep("a"), ep("c")))]
    for node, facts in NODES.items():
        RealNft(topo.ns(node)).apply(render_full(build_state(sps, facts)))
    mgr = f"from podnet.proxy.lbip import LBAddresses; m = LBAddresses('eth0', ['{LAN}.200/32'])"
    code = f"{mgr}; m.sync({{'{lb}'}})"
    nsx(topo.ns("n2"), sys.executable, "-c", code)
    try:
        got = served_by(topo.requests("out", lb, 80, 20))
        assert {name for name, _ in got} == {"a", "c"}
    finally:
        code = f"{mgr}; m.sync(set())"
        nsx(topo.ns("n2"), sys.executable, "-c", code)
    assert f"{lb}/32" not in nsx(topo.ns("n2"), "ip", "-4", "addr", "show", "eth0")


def test_session_affinity_sticks_to_one_endpoint(topo: Topo) -> None:
    sps = [ServicePortInfo("default", "sticky", "", "TCP", 80, "10.96.0.40", affinity_timeout=60,
                           endpoints=(ep("a"), ep("b"), ep("c")))]
    st = build_state(sps, NODES["n1"])
    RealNft(topo.ns("n1")).apply(render_full(st))
    got = served_by(topo.requests("pod-client", "10.96.0.40", 80, 20))
    assert len({name for name, _ in got}) == 1
    got_out = served_by(topo.requests("pod-a", "10.96.0.40", 80, 10))  # another client: its own sticky pick
    assert len({name for name, _ in got_out}) == 1
    listing = RealNft(topo.ns("n1")).list_table_text()
    f = FakeNft()
    f.apply(listing)  # the kernel's affinity entries, read back, make the fake sticky too
    tr = f.trace(Packet(PODS["client"][1], "10.96.0.40", 80), NODES["n1"].ips)
    assert tr.sticky and tr.candidates == [(PODS[got[0][0]][1], 8080)]


UDP_CLIENT = textwrap.dedent("""
    import json, socket, sys
    host, port, n = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.bind(("0.0.0.0", 40444))  # one source port: every datagram belongs to the same conntrack flow
    s.settimeout(1.0)
    s.connect((host, port))
    out = []
    for _ in range(n):
        try:
            s.send(b"hi")
            out.append({"ok": s.recv(2048).decode()})
        except Exception as e:
            out.append({"err": type(e).__name__})
    print(json.dumps(out))
""")


def udp_requests(topo: Topo, host: str, port: int, n: int) -> list[dict[str, object]]:
    script = topo.tmp / "udp_client.py"
    script.write_text(UDP_CLIENT)
    out = nsx(topo.ns("pod-client"), sys.executable, str(script), host, str(port), str(n))
    result: list[dict[str, object]] = json.loads(out)
    return result


def test_udp_service_and_conntrack_flush_of_removed_endpoint(topo: Topo) -> None:
    from podnet.proxy.runner import udp_conntrack_commands

    def udp_ports(eps: tuple[str, ...]) -> list[ServicePortInfo]:
        return [ServicePortInfo("default", "dns", "dns", "UDP", 53, "10.96.0.50",
                                endpoints=tuple(ep(p) for p in eps)),
                ServicePortInfo("default", "nodns", "", "UDP", 53, "10.96.0.51")]

    old = build_state(udp_ports(("a", "b")), NODES["n1"])
    RealNft(topo.ns("n1")).apply(render_full(old))
    first = served_by(udp_requests(topo, "10.96.0.50", 53, 3))
    assert len({name for name, _ in first}) == 1  # one flow, one endpoint
    assert first[0][1] == PODS["client"][1]
    chosen = first[0][0]
    keep = "b" if chosen == "a" else "a"
    new = build_state(udp_ports((keep,)), NODES["n1"], old.svc_ids)
    RealNft(topo.ns("n1")).apply(render_delta(old, new))
    cmds = udp_conntrack_commands(old, new)
    assert cmds == [["-p", "udp", "--reply-src", PODS[chosen][1], "--reply-port-src", "8080"]]
    for c in cmds:  # what the runner runs inside the node's netns
        nsx(topo.ns("n1"), "conntrack", "-D", *c, check=False)
    after = served_by(udp_requests(topo, "10.96.0.50", 53, 3))
    assert {name for name, _ in after} == {keep}
    refused = udp_requests(topo, "10.96.0.51", 53, 1)
    assert refused == [{"err": "ConnectionRefusedError"}]  # icmp port-unreachable from the reject rule


def test_node_itself_reaches_cluster_ip_through_the_output_hook(topo: Topo) -> None:
    states = load(topo)
    got = served_by(topo.requests("n1", "10.96.0.20", 80, 30))
    assert {name for name, _ in got} == {"a", "b", "c"}
    tr = fake_for(states["n1"]).trace(Packet(N1_IP, "10.96.0.20", 80, entry="local"), NODES["n1"].ips)
    assert len(tr.candidates) == 3


def test_load_balancer_source_ranges_are_enforced(topo: Topo) -> None:
    lb = f"{LAN}.201"
    addr = ["ip", "addr", "add", f"{lb}/32", "dev", "eth0"]
    nsx(topo.ns("n1"), *addr)
    try:
        for ranges, allowed in (((f"{OUT_IP}/32",), True), (("10.0.0.0/8",), False)):
            sps = [ServicePortInfo("default", "fw", "", "TCP", 80, "10.96.0.31", lb_ips=(lb,),
                                   svc_type="LoadBalancer", source_ranges=ranges, endpoints=(ep("a"),))]
            st = build_state(sps, NODES["n1"])
            RealNft(topo.ns("n1")).apply(render_full(st))
            res = topo.requests("out", lb, 80, 2, timeout=1.0)
            fake = fake_for(st).trace(Packet(OUT_IP, lb, 80), NODES["n1"].ips)
            if allowed:
                assert [n for n, _ in served_by(res)] == ["a", "a"]
                assert fake.verdict == "accept"
            else:
                assert [r.get("err") for r in res] == ["TimeoutError", "TimeoutError"]
                assert fake.verdict == "drop"
    finally:
        nsx(topo.ns("n1"), "ip", "addr", "del", f"{lb}/32", "dev", "eth0", check=False)


def test_sctp_service_rules_load_in_the_kernel(topo: Topo) -> None:
    sps = [ServicePortInfo("default", "sc", "", "SCTP", 9999, "10.96.0.32", endpoints=(ep("a", 9999),)),
           ServicePortInfo("default", "sc0", "", "SCTP", 9998, "10.96.0.33")]
    st = build_state(sps, NODES["n1"])
    RealNft(topo.ns("n1")).apply(render_full(st))  # SCTP sockets are not available here: rules only
    listing = RealNft(topo.ns("n1")).list_table_text()
    assert "10.96.0.32 . sctp . 9999" in listing
    f = FakeNft()
    f.apply(listing)
    assert f.trace(Packet(PODS["client"][1], "10.96.0.32", 9999, "sctp"), NODES["n1"].ips).candidates == [
        (PODS["a"][1], 9999)]
    assert f.trace(Packet(PODS["client"][1], "10.96.0.33", 9998, "sctp"), NODES["n1"].ips).verdict == "reject"


def test_etp_local_from_inside_the_cluster_reaches_remote_endpoints(topo: Topo) -> None:
    states = load(topo)
    got = served_by(topo.requests("pod-client", N1_IP, 30082, 3))  # n1 has no endpoint of "local"
    assert got == [("c", PODS["client"][1])] * 3  # no SNAT for pods
    got = served_by(topo.requests("n1", N1_IP, 30082, 3))  # the node itself
    assert [n for n, _ in got] == ["c"] * 3
    tr = fake_for(states["n1"]).trace(Packet(PODS["client"][1], N1_IP, 30082), NODES["n1"].ips)
    assert tr.candidates == [(PODS["c"][1], 8080)] and not tr.masquerade


def test_verdicts_happen_where_kubernetes_puts_them_from_pods_and_nodes(topo: Topo) -> None:
    """No endpoints / undefined port: refused at once; ITP Local without a local endpoint and
    unallocated service IPs: dropped (the client times out) — from a pod and from the node itself."""
    states = load(topo)
    fake = fake_for(states["n1"])
    cases = [("10.96.0.22", 80, "ConnectionRefusedError", "reject"),  # no endpoints
             ("10.96.0.20", 81, "ConnectionRefusedError", "reject"),  # a port the ClusterIP does not define
             ("10.96.0.24", 80, "TimeoutError", "drop"),  # internalTrafficPolicy Local, endpoint on n2 only
             ("10.96.0.99", 80, "TimeoutError", "drop")]  # no Service holds this address
    for src_ns, src_ip, entry in (("pod-client", PODS["client"][1], "in"), ("n1", N1_IP, "local")):
        for ip, port, err, verdict in cases:
            res = topo.requests(src_ns, ip, port, 1, timeout=1.0)
            assert res[0].get("err") == err, (src_ns, ip, port, res)
            if err == "ConnectionRefusedError":
                assert float(str(res[0]["t"])) < 0.5
            assert fake.trace(Packet(src_ip, ip, port, entry=entry), NODES["n1"].ips).verdict == verdict
    # the same ITP Local Service answers from the node that has the endpoint
    got = served_by(topo.requests("n2", "10.96.0.24", 80, 2))
    assert [n for n, _ in got] == ["c", "c"]
