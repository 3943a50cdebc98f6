"""Security of a running cluster (issue 19): no credential on any process's command line, credential
files and the state directory readable by root only, and the node endpoint on <nodeIP>:10250 refusing
every caller but the API server (no client certificate: refused, also from a pod and as a non-root user);
and `kubectl delete ns` of a big namespace neither hangs nor stalls other clients.

Traffic goes only from the host to the node IPs on the cluster's own bridge, and inside its namespaces.
"""

from __future__ import annotations

import http.client
import json
import os
import shutil
import ssl
import stat
import subprocess
import sys
import threading
import time
import urllib.parse
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml
from cluster_support import Cluster, running_cluster, wait_for

from podnet.core import journal as jr
from podnet.core import naming

pytestmark = [
    pytest.mark.kernel,
    pytest.mark.e2e,
    pytest.mark.xdist_group("security-e2e"),
    pytest.mark.skipif(os.geteuid() != 0, reason="needs root: network namespaces and nftables"),
    pytest.mark.skipif(shutil.which("kubectl") is None, reason="kubectl is not installed"),
]


AGNHOST = "registry.k8s.io/e2e-test-images/agnhost:2.53"


@pytest.fixture(scope="module")
def cluster() -> Iterator[Cluster]:
    with running_cluster("sec", "--nodes", "2") as c:
        c.apply({"apiVersion": "v1", "kind": "Pod",
                 "metadata": {"name": "target", "labels": {"app": "target"}},
                 "spec": {"containers": [{"name": "app", "image": AGNHOST,
                                          "args": ["netexec", "--http-port=8080", "--udp-port=-1"]}]}})
        c.wait_ready("app=target", 1)
        yield c


def _cmdlines() -> dict[int, str]:
    out = {}
    for d in Path("/proc").iterdir():
        if d.name.isdigit():
            try:
                out[int(d.name)] = (d / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
            except OSError:
                continue
    return out


def _secrets(c: Cluster) -> list[str]:
    """The admin token, and every private key of the cluster (its base64 body lines)."""
    cfg = json.loads(Path(c.state_dir, "config.json").read_text())
    out = [cfg["token"], "PRIVATE KEY"]
    out += [p.read_text().strip() for p in Path(c.state_dir).glob("nodes/*/token")]  # node credentials
    for key in Path(c.state_dir).glob("**/*.key"):
        text = key.read_text(errors="replace")
        out += [line for line in text.splitlines() if len(line) >= 16 and not line.startswith("-----")]
    return out


def test_no_credential_on_any_command_line(cluster: Cluster) -> None:
    join_token = cluster.podnet("token", "create", "--name", cluster.name).stdout.strip()
    secrets = [*_secrets(cluster), join_token, join_token.split(".")[1]]
    assert all(len(s) >= 11 for s in secrets) and len(secrets) > 5
    lines = _cmdlines()
    ours = [line for line in lines.values() if f"--name {cluster.name}" in line]
    agents = [line for line in ours if " agent " in line]
    assert len(agents) == 2 and any(" controlplane " in line for line in ours), ours
    # the agents are forked by the supervisor (their cmdline is a title); the argv they stand for, as the
    # journal records it for restarts, names the token file and never a token
    argvs = [" ".join(e.attrs["argv"]) for e in jr.Journal(cluster.state_dir).entries(jr.PROCESS)
             if e.name.startswith("agent-")]
    assert len(argvs) == 2 and all("--token-file" in a and "--token " not in a for a in argvs), argvs
    # each agent reads its own node's credential, not the admin token
    assert all(f"/nodes/{a.split('--node-name ')[1].split()[0]}/token" in a for a in argvs), argvs
    assert all("--token " not in a for a in agents), agents
    leaks = {pid: line for pid, line in lines.items() for s in secrets if s in line}
    assert not leaks, f"credentials on command lines: {leaks}"


def _mode(p: Path) -> int:
    return stat.S_IMODE(p.stat().st_mode)


def test_credential_files_and_the_state_directory_are_root_only(cluster: Cluster) -> None:
    cluster.podnet("token", "create", "--name", cluster.name)
    d = Path(cluster.state_dir)
    assert _mode(d) == 0o700
    private = ["config.json", "token", "kubeconfig", "store.db", "ca.key", "server.key", "join-tokens.json"]
    private += [p.name for p in d.glob("store.db-*")]
    private += [str(p.relative_to(d)) for p in (d / "logs").glob("*.log")]
    private += [str(p.relative_to(d)) for p in d.glob("**/*.key")]
    private += [str(p.relative_to(d)) for p in d.glob("nodes/*/token")] + ["join-nodes.json"]
    assert len(list(d.glob("nodes/*/token"))) == 2
    modes = {name: oct(_mode(d / name)) for name in private}
    assert all(m == oct(0o600) for m in modes.values()), modes
    # nobody but root reads anything in it: not even the list of files
    res = subprocess.run(["setpriv", "--reuid=nobody", "--regid=nogroup", "--clear-groups", "--",
                          "cat", str(d / "config.json")], capture_output=True, text=True, timeout=10)
    assert res.returncode != 0 and "Permission denied" in res.stderr
    # and podnet says so instead of "no clusters"
    res = subprocess.run(["setpriv", "--reuid=nobody", "--regid=nogroup", "--clear-groups", "--",
                          sys.executable, "-m", "podnet.cli.main", "list"], env=cluster.env,
                         capture_output=True, text=True, timeout=30)
    assert res.returncode == 1
    assert "the clusters' state is readable by root only; run this as root" in res.stderr


def _curl(*args: str, prefix: tuple[str, ...] = ()) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*prefix, "curl", "-sS", "--max-time", "5", *args], capture_output=True, text=True,
                          timeout=20)


def test_the_node_endpoint_answers_only_the_api_server(cluster: Cluster, tmp_path: Path) -> None:
    """issue 19 #1: /run, /exec and /containerLogs on <nodeIP>:10250 need the API server's client
    certificate: refused without one (as root, as nobody, from a pod), and with a node's own certificate."""
    pod = cluster.get_json("pod", "target")
    node_ip, uid = pod["status"]["hostIP"], pod["metadata"]["uid"]
    node = pod["spec"]["nodeName"]
    d = Path(cluster.state_dir)
    marker = tmp_path / "pwned"
    tmp_path.chmod(0o777)
    run = f"https://{node_ip}:10250/run/default/target/app"
    body = json.dumps(["touch", str(marker)])
    ca = ["--cacert", str(d / "ca.crt")]
    attempts = {
        "root, no client certificate": _curl(*ca, "-X", "POST", run, "-d", body),
        "root, TLS unverified": _curl("-k", "-X", "POST", run, "-d", body),
        "root, plain http": _curl("-X", "POST", f"http://{node_ip}:10250/run/default/target/app", "-d", body),
        "nobody": _curl("-k", "-X", "POST", run, "-d", body,
                        prefix=("setpriv", "--reuid=nobody", "--regid=nogroup", "--clear-groups", "--")),
        "a pod": _curl("-k", "-X", "POST", run, "-d", body,
                       prefix=("nsenter", f"--net=/run/netns/{naming.pod_netns(cluster.name, uid)}", "--")),
        "a node's own certificate": _curl(*ca, "--cert", str(d / "nodes" / node / "kubelet.crt"),
                                          "--key", str(d / "nodes" / node / "kubelet.key"),
                                          "-X", "POST", run, "-d", body, "-w", "%{http_code}"),
    }
    for who, res in attempts.items():
        assert res.returncode != 0 or res.stdout.endswith("403"), (who, res.stdout, res.stderr)
    assert not marker.exists()
    # the API server's client certificate is what kubectl's exec and logs go through
    client = ["--cert", str(d / "apiserver-kubelet-client.crt"),
              "--key", str(d / "apiserver-kubelet-client.key")]
    ok = _curl(*ca, *client, "-X", "POST", run, "-d", json.dumps(["echo", "allowed"]))
    assert ok.returncode == 0 and ok.stdout == "allowed\n", ok.stderr
    out = cluster.kubectl("exec", "target", "--", "sh", "-c", "echo through the API server").stdout
    assert out == "through the API server\n"
    logs = cluster.kubectl("logs", "target").stdout
    assert "Started HTTP server on port 8080" in logs


class _Prober(threading.Thread):
    """GETs one small object over the cluster's TLS API port every 20 ms (one kept-alive connection,
    as a client would) and records each latency in ms; bounded by `stop` and 600 samples per minute."""

    def __init__(self, c: Cluster):
        super().__init__(daemon=True)
        kc = yaml.safe_load(Path(c.kubeconfig).read_text())
        self.server = urllib.parse.urlparse(kc["clusters"][0]["cluster"]["server"])
        self.token = kc["users"][0]["user"]["token"]
        self.ctx = ssl.create_default_context(cafile=str(Path(c.state_dir, "ca.crt")))
        self.stop = threading.Event()
        self.latencies: list[float] = []
        self.errors: list[str] = []

    def run(self) -> None:
        conn = http.client.HTTPSConnection(self.server.hostname, self.server.port, context=self.ctx,
                                           timeout=30)
        auth = {"Authorization": f"Bearer {self.token}"}
        deadline = time.monotonic() + 120
        while not self.stop.is_set() and time.monotonic() < deadline:
            t = time.perf_counter()
            try:
                conn.request("GET", "/api/v1/namespaces/default", headers=auth)
                resp = conn.getresponse()
                resp.read()
                if resp.status != 200:
                    self.errors.append(str(resp.status))
            except (OSError, http.client.HTTPException) as e:
                self.errors.append(repr(e))
                conn.close()
            self.latencies.append((time.perf_counter() - t) * 1000)
            time.sleep(0.02)
        conn.close()


def test_kubectl_delete_of_a_namespace_with_a_thousand_services_returns_and_stalls_nobody(
        cluster: Cluster) -> None:
    """issue 19 #13: the real `kubectl delete ns` (which waits for the namespace's DELETED watch event)
    of a namespace with 1,000 Services and 6 running pods returns within seconds, and a small GET
    sent meanwhile by another client is never held up for long (the cleanup yields the event loop)."""
    sel = {"app": "nsdel"}
    items: list[dict[str, object]] = [{"apiVersion": "v1", "kind": "Namespace",
                                       "metadata": {"name": "nsdel"}}]
    items += [{"apiVersion": "v1", "kind": "Service", "metadata": {"name": f"s{i}", "namespace": "nsdel"},
               "spec": {"selector": sel, "ports": [{"port": 80, "targetPort": 8080}]}} for i in range(1000)]
    template = {"metadata": {"labels": sel},
                "spec": {"containers": [{"name": "c", "image": "registry.k8s.io/pause:3.9"}]}}
    items.append({"apiVersion": "apps/v1", "kind": "Deployment",
                  "metadata": {"name": "nsdel", "namespace": "nsdel"},
                  "spec": {"replicas": 6, "selector": {"matchLabels": sel}, "template": template}})
    cluster.apply({"apiVersion": "v1", "kind": "List", "items": items})
    wait_for("6 running pods in nsdel", lambda: cluster.kubectl(
        "get", "pods", "-n", "nsdel", "--no-headers").stdout.count("Running") >= 6, 120)
    quiet = _Prober(cluster)  # the same prober with nothing else going on: the machine's own noise
    quiet.start()
    time.sleep(4)
    quiet.stop.set()
    quiet.join(10)
    prober = _Prober(cluster)
    prober.start()
    try:
        time.sleep(1)
        t = time.monotonic()
        res = cluster.kubectl("delete", "ns", "nsdel", timeout=120)
        took = time.monotonic() - t
    finally:
        prober.stop.set()
        prober.join(10)
    assert res.stdout.strip() == 'namespace "nsdel" deleted'
    assert took < 30, f"kubectl delete ns took {took:.1f} s"
    gone = cluster.kubectl("get", "ns", "nsdel", check=False)
    assert gone.returncode == 1 and 'namespaces "nsdel" not found' in gone.stderr
    lat = sorted(prober.latencies)
    assert not prober.errors and len(lat) > 20, (prober.errors, len(lat))
    p99 = lat[min(len(lat) - 1, int(0.99 * len(lat)))]
    noise = max(quiet.latencies)
    print(f"kubectl delete ns: {took:.2f} s; small GET meanwhile: {len(lat)} samples, "
          f"p50 {lat[len(lat) // 2]:.1f} ms, p99 {p99:.1f} ms, max {lat[-1]:.1f} ms "
          f"(quiet max {noise:.1f} ms)")
    # before the cleanup yielded, a GET waited 3.8 s here (quiet p99 8 ms); a loaded machine's own
    # noise (other processes on the two cores) is allowed for
    limit = max(1000.0, 4 * noise)
    assert p99 < limit, f"small GETs waited {p99:.0f} ms (p99) during the deletion; limit {limit:.0f} ms"


def _as(c: Cluster, credential: str, method: str, path: str, body: object) -> tuple[int, dict[str, object]]:
    """One request to the cluster's TLS API port with `credential` as the bearer token."""
    kc = yaml.safe_load(Path(c.kubeconfig).read_text())
    server = urllib.parse.urlparse(kc["clusters"][0]["cluster"]["server"])
    ctx = ssl.create_default_context(cafile=str(Path(c.state_dir, "ca.crt")))
    conn = http.client.HTTPSConnection(server.hostname, server.port, context=ctx, timeout=30)
    try:
        conn.request(method, path, body=json.dumps(body), headers={
            "Authorization": f"Bearer {credential}", "Content-Type": "application/merge-patch+json"})
        resp = conn.getresponse()
        out: dict[str, object] = json.loads(resp.read())
        return resp.status, out
    finally:
        conn.close()


def test_a_node_agents_credential_acts_only_for_its_node(cluster: Cluster) -> None:
    """issue 19: `podnet up`'s agents use per-node credentials (0600 files), so NodeRestriction applies to
    them as to joined nodes: node A's credential cannot touch a pod on node B, B's Node or its podCIDR,
    nor create arbitrary objects; the cluster keeps working with them (the pod above is Ready)."""
    pod = cluster.get_json("pod", "target")
    there = pod["spec"]["nodeName"]
    nodes = sorted(cluster.node_ips())
    here = next(n for n in nodes if n != there)
    cred_file = Path(cluster.state_dir, "nodes", here, "token")
    assert _mode(cred_file) == 0o600
    cred = cred_file.read_text().strip()
    assert cred.endswith(f":{here}")
    code, body = _as(cluster, cred, "PATCH", "/api/v1/namespaces/default/pods/target/status",
                     {"status": {"podIP": "10.244.200.9"}})
    assert code == 403 and body["message"] == (
        f'pods "target" is forbidden: node "{here}" can only update pod status for pods with spec.nodeName '
        "set to itself")
    code, body = _as(cluster, cred, "DELETE", "/api/v1/namespaces/default/pods/target", {})
    assert code == 403 and "can only delete pods with spec.nodeName set to itself" in str(body["message"])
    code, body = _as(cluster, cred, "PATCH", f"/api/v1/nodes/{there}",
                     {"spec": {"podCIDR": "10.244.99.0/24"}})
    assert code == 403, body
    code, body = _as(cluster, cred, "POST", "/api/v1/namespaces/default/configmaps",
                     {"metadata": {"name": "x"}})
    assert code == 403, body
    # the same token is no credential for another node name
    token = cred.rsplit(":", 1)[0]
    code, body = _as(cluster, f"{token}:{there}", "PATCH", "/api/v1/namespaces/default/pods/target/status",
                     {"status": {"podIP": "10.244.200.9"}})
    assert code == 401, body
    assert cluster.get_json("pod", "target")["status"]["podIP"] != "10.244.200.9"
    # with its own credential, the node's agent keeps its Node Ready
    assert all(cluster.node_ready(n) == "True" for n in nodes)
