"""Several machines on one: `podnet up --listen` on the host, then two "machines" (network namespaces on
a private segment of their own, NOT the cluster's node network) run `podnet join` over TLS. Pods on the
two machines reach each other over VXLAN with their own addresses, a Service spreads over pods on both,
a wrong CA hash or a revoked token is refused, and `podnet leave` removes what the agent made.

All traffic stays on the test's own segment and namespaces: the host talks only to the machines' node
IPs on that segment; pod traffic starts inside pod namespaces.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest
from cluster_support import Cluster, Segment, http_get, in_machine, new_segment, wait_for

pytestmark = [
    pytest.mark.kernel,
    pytest.mark.e2e,
    pytest.mark.xdist_group("join-e2e"),
    pytest.mark.skipif(os.geteuid() != 0, reason="needs root: network namespaces and nftables"),
    pytest.mark.skipif(shutil.which("kubectl") is None, reason="kubectl is not installed"),
]

AGNHOST = "registry.k8s.io/e2e-test-images/agnhost:2.53"
JOIN_RE = re.compile(r"^podnet join --server (https://\S+) --token (\S+) "
                     r"--ca-cert-hash (sha256:[0-9a-f]{64})$", re.M)


@dataclass
class Joined:
    cluster: Cluster
    seg: Segment
    server: str
    token: str
    ca_hash: str
    nodes: list[str]
    fg: subprocess.Popen[bytes] | None = None  # machine 1's foreground `podnet join`
    fg_log: str = ""  # its terminal output

    def state_dir(self, i: int) -> str:
        return f"{self.cluster.root}/machines/m{i}"

    def join(self, i: int, *extra: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        prefix = in_machine(self.seg, i)
        return self.cluster.podnet("join", "--server", self.server, "--token", self.token, "--ca-cert-hash",
                                   self.ca_hash, "--node-name", self.nodes[i], "--state-dir",
                                   self.state_dir(i), "--background", "--wait-timeout", "40", *extra,
                                   prefix=prefix, check=check, timeout=60)

    def leave(self, i: int, check: bool = True) -> subprocess.CompletedProcess[str]:
        return self.cluster.podnet("leave", "--state-dir", self.state_dir(i), prefix=in_machine(self.seg, i),
                                   check=check, timeout=60)

    def in_pod(self, pod: dict[str, Any], *cmd: str) -> str:
        from podnet.core import naming

        ns = naming.pod_netns(self.cluster.name, pod["metadata"]["uid"])
        res = subprocess.run(["nsenter", f"--net=/run/netns/{ns}", "--", *cmd], capture_output=True,
                             text=True, timeout=15)
        assert res.returncode == 0, res.stderr
        return res.stdout


@pytest.fixture(scope="module")
def joined() -> Iterator[Joined]:
    tag = str(os.getpid() % 100000)
    seg = new_segment(tag, 2)
    root = tempfile.mkdtemp(prefix="pnjoin")
    c = Cluster(f"jn{tag}", root)
    j: Joined | None = None
    fg: subprocess.Popen[bytes] | None = None
    fg_log = open(f"{root}/machine1-join.log", "wb")  # noqa: SIM115 - closed in finally
    try:
        up = c.podnet("up", "--name", c.name, "--nodes", "1", "--network", "vxlan", "--listen",
                      f"{seg.host_ip}:{_free_port(seg.host_ip)}", timeout=180)
        m = JOIN_RE.search(up.stdout)
        assert m, f"no join command in the output of up:\n{up.stdout}\n{up.stderr}"
        j = Joined(c, seg, m.group(1), m.group(2), m.group(3), [f"m0-{tag}", f"m1-{tag}"])
        j.join(0)
        # machine 1: in the foreground (join becomes the agent), under `ip netns exec`, which moves it
        # into a private mount namespace
        fg = subprocess.Popen(["ip", "netns", "exec", seg.netns(1), sys.executable, "-m", "podnet.cli.main",
                               "join", "--server", j.server, "--token", j.token, "--ca-cert-hash", j.ca_hash,
                               "--node-name", j.nodes[1], "--state-dir", j.state_dir(1)],
                              env=c.env, stdout=fg_log, stderr=subprocess.STDOUT)
        j.fg, j.fg_log = fg, fg_log.name
        wait_for(f"{j.nodes[1]} Ready",
                 lambda: j.nodes[1] in c.node_ips() and c.node_ready(j.nodes[1]) == "True", timeout=40)
        yield j
    finally:
        if j is not None:
            for i in range(2):
                if os.path.exists(f"{j.state_dir(i)}/join.json"):
                    j.leave(i, check=False)
        if fg is not None:
            try:
                fg.wait(timeout=10)
            except subprocess.TimeoutExpired:
                fg.kill()
                fg.wait(timeout=5)
        fg_log.close()
        c.podnet("down", "--name", c.name, timeout=120, check=False)
        seg.destroy()
        shutil.rmtree(root, ignore_errors=True)


def _free_port(host: str) -> int:
    import socket

    with socket.socket() as s:
        s.bind((host, 0))
        return int(s.getsockname()[1])


def _pods(j: Joined) -> list[dict[str, Any]]:
    docs: list[dict[str, Any]] = []
    for i, node in enumerate(j.nodes):
        for k in range(2):
            docs.append({"apiVersion": "v1", "kind": "Pod",
                         "metadata": {"name": f"web-{i}-{k}", "labels": {"app": "web"}},
                         "spec": {"nodeName": node, "containers": [{
                             "name": "netexec", "image": AGNHOST,
                             "args": ["netexec", "--http-port=8080", "--udp-port=-1"],
                             "readinessProbe": {"httpGet": {"path": "/healthz", "port": 8080},
                                                "periodSeconds": 1}}]}})
    docs.append({"apiVersion": "v1", "kind": "Service", "metadata": {"name": "web"},
                 "spec": {"type": "NodePort", "selector": {"app": "web"},
                          "ports": [{"port": 80, "targetPort": 8080}]}})
    return docs


@pytest.fixture(scope="module")
def web(joined: Joined) -> Joined:
    joined.cluster.apply({"apiVersion": "v1", "kind": "List", "items": _pods(joined)})
    joined.cluster.wait_ready("app=web", 4, timeout=60)
    return joined


def test_machines_register_as_ready_nodes_with_their_own_ip_and_pod_cidr(joined: Joined) -> None:
    nodes = {n["metadata"]["name"]: n for n in joined.cluster.get_json("nodes")["items"]}
    assert set(joined.nodes) <= set(nodes) and len(nodes) == 3
    ips = joined.cluster.node_ips()
    cidrs = {n["spec"]["podCIDR"] for n in nodes.values()}
    assert len(cidrs) == 3
    for i, name in enumerate(joined.nodes):
        assert ips[name] == joined.seg.machine_ip(i)
        assert joined.cluster.node_ready(name) == "True"
    # each machine's agent runs in its machine and talks TLS to the --listen address
    with open(f"{joined.state_dir(0)}/join.json") as f:
        st = json.load(f)
    assert st["server"] == joined.server and st["node"] == joined.nodes[0]
    listed = json.loads(joined.cluster.podnet("token", "list", "--name", joined.cluster.name, "-o",
                                              "json").stdout)
    assert [t["id"] for t in listed] == [joined.token.split(".")[0]]


def test_no_join_token_or_node_credential_on_a_command_line(joined: Joined) -> None:
    """issue 19 #2: the joined machines' agents read their credential from a 0600 file."""
    secret = joined.token.split(".")[1]
    agents = 0
    for d in os.listdir("/proc"):
        if not d.isdigit():
            continue
        try:
            with open(f"/proc/{d}/cmdline", "rb") as f:
                line = f.read().replace(b"\0", b" ").decode(errors="replace")
        except OSError:
            continue
        assert secret not in line, f"PID {d}: {line}"
        agents += " agent " in line and any(f"--node-name {n} " in line for n in joined.nodes)
    assert agents == 2
    for i in range(2):
        st = os.stat(f"{joined.state_dir(i)}/token")
        assert st.st_mode & 0o777 == 0o600
        assert os.stat(joined.state_dir(i)).st_mode & 0o777 == 0o700


def test_pods_on_two_machines_talk_over_vxlan_without_nat(web: Joined) -> None:
    pods = {p["metadata"]["name"]: p for p in web.cluster.ready_pods("app=web")}
    client, server = pods["web-0-0"], pods["web-1-0"]
    assert client["spec"]["nodeName"] != server["spec"]["nodeName"]
    out = web.in_pod(client, "curl", "-s", "--max-time", "3",
                     f"http://{server['status']['podIP']}:8080/clientip")
    assert out.strip().rsplit(":", 1)[0] == client["status"]["podIP"]
    route = subprocess.run([*in_machine(web.seg, 0), "ip", "route", "get", server["status"]["podIP"]],
                           capture_output=True, text=True, timeout=10).stdout
    assert "dev podnet-vxlan" in route, route


def test_a_service_spreads_over_pods_on_both_machines(web: Joined) -> None:
    pods = web.cluster.ready_pods("app=web")
    names = {p["metadata"]["name"] for p in pods}
    svc = web.cluster.get_json("svc", "web")
    node_port, cip = svc["spec"]["ports"][0]["nodePort"], svc["spec"]["clusterIP"]
    seen = {http_get(f"http://{web.seg.machine_ip(0)}:{node_port}/hostname") for _ in range(30)}
    assert seen == names, seen  # from the host to machine 0's node IP, served on both machines
    client = next(p for p in pods if p["metadata"]["name"] == "web-1-1")
    from_pod = {web.in_pod(client, "curl", "-s", "--max-time", "3", f"http://{cip}/hostname").strip()
                for _ in range(20)}
    assert {n.split("-")[1] for n in from_pod} == {"0", "1"}, from_pod


def test_a_wrong_ca_hash_or_a_revoked_token_is_refused(joined: Joined) -> None:
    c = joined.cluster
    bad_hash = "sha256:" + "0" * 64
    res = c.podnet("join", "--server", joined.server, "--token", joined.token, "--ca-cert-hash", bad_hash,
                   "--node-name", "intruder", "--state-dir", f"{c.root}/intruder", "--background",
                   prefix=in_machine(joined.seg, 0), check=False)
    assert res.returncode == 1
    assert f"not the --ca-cert-hash {bad_hash}: refusing to trust this server" in res.stderr
    cmd = c.podnet("token", "create", "--name", c.name, "--ttl", "10m", "--print-join-command").stdout
    m = JOIN_RE.search(cmd)
    assert m and m.group(1) == joined.server and m.group(3) == joined.ca_hash, cmd
    spare = m.group(2)
    c.podnet("token", "revoke", "--name", c.name, spare.split(".")[0])
    res = c.podnet("join", "--server", joined.server, "--token", spare, "--ca-cert-hash", joined.ca_hash,
                   "--node-name", "intruder", "--state-dir", f"{c.root}/intruder", "--background",
                   prefix=in_machine(joined.seg, 0), check=False)
    assert res.returncode == 1
    assert "the API server rejected the join token (401 Unauthorized)" in res.stderr
    assert not os.path.exists(f"{c.root}/intruder")
    assert "intruder" not in c.node_ips()


# ---- the `kubernetes` Service from every machine -------------------------------------------------------
SA = "/var/run/secrets/kubernetes.io/serviceaccount"


def _api_client_pod(name: str, node: str) -> dict[str, Any]:
    """A pod that asks the API, through the `kubernetes` Service, with its own ServiceAccount token (as an
    in-cluster client does): /version at the ClusterIP ($KUBERNETES_SERVICE_HOST), then, by the
    Service's name, a list its ServiceAccount may not do (403 naming it)."""
    get = f'curl -sS --max-time 3 --cacert {SA}/ca.crt -H "Authorization: Bearer $(cat {SA}/token)"'
    script = (f"for i in $(seq 60); do v=$({get} https://$KUBERNETES_SERVICE_HOST/version) && break; "
              f'sleep 1; done; echo "version: $v"; '
              # by name, at the address given (not looked up: the DNS pods run on the machine that ran
              # `up`, whose nodes the joined machines do not reach); TLS checks the name
              f"f=$({get} --resolve kubernetes.default.svc:443:$KUBERNETES_SERVICE_HOST "
              'https://kubernetes.default.svc/api/v1/namespaces/default/pods); echo "named: $f"; echo done; '
              "sleep 3600")
    return {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": name},
            "spec": {"nodeName": node, "terminationGracePeriodSeconds": 1,
                     "containers": [{"name": "c", "image": "busybox", "command": ["sh", "-c", script]}]}}


@pytest.mark.parametrize("where", ["joined", "control-plane"])
def test_pods_on_every_machine_reach_the_api_through_the_kubernetes_service(joined: Joined,
                                                                           where: str) -> None:
    """A pod on a joined machine (and on the machine that ran `podnet up`) reaches the API at
    https://10.96.0.1 and https://kubernetes.default.svc, and is authenticated as its ServiceAccount. The
    Service's endpoints are the API's advertise address (the --listen address), which every node reaches."""
    c = joined.cluster
    listen = joined.server.removeprefix("https://")
    eps = c.get_json("endpoints", "kubernetes")
    assert [f"{a['ip']}:{p['port']}" for s in eps["subsets"] for a in s["addresses"] for p in s["ports"]] \
        == [listen]
    [sl] = c.get_json("endpointslices", "-l", "kubernetes.io/service-name=kubernetes")["items"]
    assert [f"{a}:{p['port']}" for e in sl["endpoints"] for a in e["addresses"] for p in sl["ports"]] \
        == [listen]
    node = joined.nodes[0] if where == "joined" else next(n for n in c.node_ips() if n not in joined.nodes)
    name = f"api-{where}"
    c.apply(_api_client_pod(name, node))
    try:
        out = wait_for(f"{name}'s requests", lambda: (lambda r: r.stdout if "done" in r.stdout else "")(
            c.kubectl("logs", name, check=False)), timeout=90, interval=1)
        version, named = out.split("version: ", 1)[1].split("\nnamed: ", 1)
        assert json.loads(version)["gitVersion"].startswith("v1."), out
        forbidden = named.rsplit("\ndone", 1)[0]
        assert json.loads(forbidden)["message"] == ('pods is forbidden: User "system:serviceaccount:default:'
                                                    'default" cannot list resource "pods" in API group "" in '
                                                    'the namespace "default"'), out
    finally:
        c.kubectl("delete", "pod", name, "--wait=false", check=False)


def test_a_dns_replica_on_a_joined_machine_becomes_ready(joined: Joined) -> None:
    """The cluster DNS server on a joined machine reads Services from the API (through the `kubernetes`
    Service, with its ServiceAccount's token), becomes Ready and answers for the cluster's names."""
    c = joined.cluster
    dep = c.get_json("deployment", "coredns", "-n", "kube-system")
    spec = dep["spec"]["template"]["spec"]
    spec["nodeName"] = joined.nodes[0]
    pod = {"apiVersion": "v1", "kind": "Pod",
           "metadata": {"name": "dns-joined", "namespace": "kube-system", "labels": {"app": "dns-joined"}},
           "spec": spec}
    c.apply(pod)
    try:
        c.kubectl("wait", "-n", "kube-system", "pod/dns-joined", "--for=condition=Ready", "--timeout=60s",
                  timeout=75)
        ip = c.get_json("pod", "dns-joined", "-n", "kube-system")["status"]["podIP"]
        dig = ["dig", "+short", "+time=2", "+tries=2", f"@{ip}", "kubernetes.default.svc.cluster.local"]
        res = subprocess.run([*in_machine(joined.seg, 0), *dig], capture_output=True, text=True, timeout=15)
        assert res.stdout.split() == [c.get_json("svc", "kubernetes")["spec"]["clusterIP"]], res
    finally:
        c.kubectl("delete", "pod", "-n", "kube-system", "dns-joined", "--wait=false", check=False)


def test_a_foreground_join_supervises_its_agent(web: Joined) -> None:
    """issue 19 #10: a foreground `podnet join` is its agent's supervisor (recorded as such, `podnet list`
    says running and supervised): a kill -9 of the agent's recorded PID is followed by a restart, the node
    is Ready again and its pods keep serving; the agent's log and the restart show on the terminal."""
    from podnet.cluster.procs import is_same_process
    from podnet.core import journal as jr

    c, node, d = web.cluster, web.nodes[1], web.state_dir(1)
    assert web.fg is not None and web.fg.poll() is None
    row = _listed(c, node)
    assert row["status"] == "running" and row["supervised"] is True
    [sup] = [e for e in jr.Journal(d).entries(jr.PROCESS) if e.name == "supervisor"]
    assert sup.attrs["pid"] == web.fg.pid  # `ip netns exec` became the join command
    pid, st = _agent_pid(d)
    assert pid != web.fg.pid
    os.kill(pid, 9)
    new = wait_for("the agent restarted", lambda: (lambda p: p if p[0] != pid and is_same_process(*p)
                                                   else None)(_agent_pid(d)), timeout=15, interval=0.2)
    assert not is_same_process(pid, st)
    wait_for(f"{node} Ready after the restart", lambda: c.node_ready(node) == "True", timeout=40)
    row = _listed(c, node)
    assert row["status"] == "running" and row["supervised"] is True and row["agent_pid"] == new[0]
    pods = {p["metadata"]["name"]: p for p in c.ready_pods("app=web")}
    out = web.in_pod(pods["web-0-0"], "curl", "-s", "--max-time", "3",
                     f"http://{pods['web-1-0']['status']['podIP']}:8080/hostname")
    assert out.strip() == "web-1-0"
    with open(web.fg_log, errors="replace") as f:
        term = f.read()
    assert f"started agent-{node} (pid {pid})" in term  # the supervisor's own lines, on the terminal too
    assert f"agent-{node} was not running: restarted it (pid {new[0]}" in term
    assert f"node {node}" in term and "podnet.agent" in term, term[-2000:]  # the agent's own log lines


def test_leave_removes_what_the_agent_made(web: Joined) -> None:
    from podnet.core import naming

    pods = [p for p in web.cluster.ready_pods("app=web") if p["spec"]["nodeName"] == web.nodes[1]]
    netns = [naming.pod_netns(web.cluster.name, p["metadata"]["uid"]) for p in pods]
    assert pods and all(os.path.exists(f"/run/netns/{ns}") for ns in netns)
    res = web.leave(1)  # machine 1's agent runs under a foreground join: leave stops that supervisor first
    assert f"node {web.nodes[1]} left" in res.stderr
    assert web.fg is not None and web.fg.wait(timeout=10) == 0  # it stopped the agent, then itself
    with open(web.fg_log, errors="replace") as f:
        assert re.search(rf"agent for node {web.nodes[1]} stopped \(\d+ restart\(s\)\)", f.read())
    assert not any(os.path.exists(f"/run/netns/{ns}") for ns in netns)
    assert not os.path.exists(web.state_dir(1))
    links = subprocess.run([*in_machine(web.seg, 1), "ip", "-o", "link"], capture_output=True, text=True,
                           timeout=10).stdout
    assert "podnet-vxlan" not in links
    tables = subprocess.run([*in_machine(web.seg, 1), "nft", "list", "tables"], capture_output=True,
                            text=True, timeout=10).stdout
    assert "podnet" not in tables


def _agent_pid(state_dir: str) -> tuple[int, int | None]:
    from podnet.core import journal as jr

    [entry] = [e for e in jr.Journal(state_dir).entries(jr.PROCESS) if e.name.startswith("agent-")]
    pid, st = entry.attrs.get("pid"), entry.attrs.get("starttime")
    assert isinstance(pid, int)
    return pid, st if isinstance(st, int) else None


def _listed(c: Cluster, node: str) -> dict[str, Any]:
    rows = json.loads(c.podnet("list", "-o", "json").stdout)
    [row] = [r for r in rows if r.get("joined_as") == node]
    return dict(row)


def test_a_killed_joined_agent_is_restarted_and_leave_stops_its_supervisor(joined: Joined) -> None:
    """issue 19: the agent of `podnet join --background` is supervised like a `podnet up` cluster's: a
    kill -9 of its PID (the one the state directory's journal records) is followed by a restart and the
    node stays Ready; `podnet list` says so; `podnet leave` ends the supervisor too."""
    from podnet.cluster.procs import is_same_process
    from podnet.core import journal as jr

    c, node, d = joined.cluster, joined.nodes[0], joined.state_dir(0)
    row = _listed(c, node)
    assert row["status"] == "running" and row["supervised"] is True and row["name"] == c.name
    pid, st = _agent_pid(d)
    os.kill(pid, 9)  # the agent `podnet join` started (recorded in its journal)
    new = wait_for("the agent restarted", lambda: (lambda p: p if p[0] != pid and is_same_process(*p)
                                                   else None)(_agent_pid(d)), timeout=15, interval=0.2)
    assert not is_same_process(pid, st)
    wait_for(f"{node} Ready after the restart", lambda: c.node_ready(node) == "True", timeout=40)
    row = _listed(c, node)
    assert row["status"] == "running" and row["agent_pid"] == new[0]
    sup = [e for e in jr.Journal(d).entries(jr.PROCESS) if e.name == "supervisor"]
    assert len(sup) == 1
    sup_pid, sup_st = sup[0].attrs["pid"], sup[0].attrs.get("starttime")
    assert is_same_process(sup_pid, sup_st)
    res = joined.leave(0)
    assert f"node {node} left" in res.stderr
    assert not is_same_process(sup_pid, sup_st) and not is_same_process(*new)
    assert not os.path.exists(d)
    assert not [r for r in json.loads(c.podnet("list", "-o", "json").stdout) if r.get("joined_as") == node]

