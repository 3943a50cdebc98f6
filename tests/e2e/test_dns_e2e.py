"""Cluster DNS as pods see it, on a real cluster: names in the same and in another namespace, each record
type queried with dig from inside a pod at the cluster DNS IP, a deleted Service turning to NXDOMAIN,
lookups recovering after the DNS server's container is killed, and the DNS server running as its own
ServiceAccount (kube-system/coredns) with no node or admin credential.
"""

from __future__ import annotations

import base64
import json
import os
import shutil
import signal
import ssl
import subprocess
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest
from cluster_support import Cluster, running_cluster

from podnet.agent.podstate import find_container_pid

pytestmark = [
    pytest.mark.kernel,
    pytest.mark.e2e,
    pytest.mark.skipif(os.geteuid() != 0, reason="needs root: network namespaces and nftables"),
    pytest.mark.skipif(shutil.which("kubectl") is None, reason="kubectl is not installed"),
    pytest.mark.skipif(shutil.which("dig") is None, reason="dig is not installed (dnsutils)"),
]

AGNHOST = "registry.k8s.io/e2e-test-images/agnhost:2.53"
DNS_IP = "10.96.0.10"

MANIFEST = f"""
apiVersion: v1
kind: Namespace
metadata: {{name: other}}
---
apiVersion: apps/v1
kind: Deployment
metadata: {{name: back-end, namespace: other}}
spec:
  replicas: 1
  selector: {{matchLabels: {{app: back-end-other}}}}
  template:
    metadata: {{labels: {{app: back-end-other}}}}
    spec:
      containers:
      - {{name: netexec, image: "{AGNHOST}", args: ["netexec", "--http-port=8080", "--udp-port=-1"]}}
---
apiVersion: v1
kind: Service
metadata: {{name: back-end, namespace: other}}
spec:
  selector: {{app: back-end-other}}
  ports: [{{name: http, port: 80, targetPort: 8080}}]
---
apiVersion: apps/v1
kind: Deployment
metadata: {{name: web}}
spec:
  replicas: 2
  selector: {{matchLabels: {{app: web}}}}
  template:
    metadata: {{labels: {{app: web}}}}
    spec:
      containers:
      - name: netexec
        image: "{AGNHOST}"
        args: ["netexec", "--http-port=8080", "--udp-port=-1"]
        readinessProbe: {{httpGet: {{path: /healthz, port: 8080}}, periodSeconds: 1}}
---
apiVersion: v1
kind: Service
metadata: {{name: back-end}}
spec:
  selector: {{app: web}}
  ports: [{{name: http, port: 80, targetPort: 8080}}]
---
apiVersion: v1
kind: Service
metadata: {{name: web-headless}}
spec:
  clusterIP: None
  selector: {{app: web}}
  ports: [{{name: http, port: 8080}}]
---
apiVersion: v1
kind: Service
metadata: {{name: search-engine}}
spec:
  type: ExternalName
  externalName: search.example.org
"""


@pytest.fixture(scope="module")
def dns_cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    with running_cluster("dns", "--nodes", "2") as c:
        manifest = tmp_path_factory.mktemp("dns") / "app.yaml"
        manifest.write_text(MANIFEST)
        c.kubectl("apply", "-f", str(manifest))
        c.wait_ready("app=web", 2)
        # the cluster DNS pod may still be starting (podnet up returns once the nodes are Ready): until it
        # is Ready its ClusterIP has no endpoint and rejects at once, as kube-proxy does
        c.kubectl("wait", "-n", "kube-system", "--for=condition=Ready", "pod", "-l", "k8s-app=kube-dns",
                  "--timeout=60s", timeout=90)
        yield c


def _client(c: Cluster) -> str:
    return str(sorted(p["metadata"]["name"] for p in c.ready_pods("app=web"))[0])


def _in_pod(c: Cluster, pod: str, *cmd: str, check: bool = True) -> str:
    return c.podnet("exec", "--name", c.name, pod, "--", *cmd, check=check).stdout


def _dig(c: Cluster, pod: str, *args: str, check: bool = True) -> str:
    """dig at the cluster DNS IP; with check=False a timeout is just an empty answer (for polling)."""
    return _in_pod(c, pod, "dig", "+time=2", "+tries=1", f"@{DNS_IP}", *args, check=check)


def _wait(what: str, fn: object, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while not fn():  # type: ignore[operator]
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.3)


def test_names_in_the_same_and_another_namespace(dns_cluster: Cluster) -> None:
    c = dns_cluster
    pod = _client(c)
    here = c.get_json("svc", "back-end")["spec"]["clusterIP"]
    there = c.get_json("svc", "back-end", "-n", "other")["spec"]["clusterIP"]
    assert here != there
    assert _in_pod(c, pod, "getent", "hosts", "back-end").split()[0] == here
    assert _in_pod(c, pod, "getent", "hosts", "back-end.other").split()[0] == there
    assert _in_pod(c, pod, "getent", "hosts", "back-end.other.svc.cluster.local").split()[0] == there
    def other_ready() -> bool:
        return any(x["type"] == "Ready" and x["status"] == "True"
                   for p in c.get_json("pods", "-n", "other")["items"]
                   for x in p["status"].get("conditions", []))
    _wait("the back-end in namespace other", other_ready, 60)
    other_pod = c.get_json("pods", "-n", "other")["items"][0]["metadata"]["name"]
    assert _in_pod(c, pod, "curl", "-s", "--max-time", "3", "http://back-end.other/hostname") == other_pod


def test_record_types_from_inside_a_pod(dns_cluster: Cluster) -> None:
    c = dns_cluster
    pod = _client(c)
    cip = c.get_json("svc", "back-end")["spec"]["clusterIP"]
    web_ips = sorted(p["status"]["podIP"] for p in c.ready_pods("app=web"))
    assert _dig(c, pod, "+short", "back-end.default.svc.cluster.local", "A").split() == [cip]
    srv = _dig(c, pod, "+short", "_http._tcp.back-end.default.svc.cluster.local", "SRV").split()
    assert srv[2] == "80" and srv[3] == "back-end.default.svc.cluster.local."
    rev = ".".join(reversed(cip.split("."))) + ".in-addr.arpa"
    assert _dig(c, pod, "+short", rev, "PTR").split() == ["back-end.default.svc.cluster.local."]
    assert sorted(_dig(c, pod, "+short", "web-headless.default.svc.cluster.local").split()) == web_ips
    dashed = web_ips[0].replace(".", "-")
    assert _dig(c, pod, "+short", f"{dashed}.default.pod.cluster.local").split() == [web_ips[0]]
    cname = _dig(c, pod, "+short", "search-engine.default.svc.cluster.local", "CNAME").split()
    assert cname == ["search.example.org."]
    nx = _dig(c, pod, "no-such-service.default.svc.cluster.local")
    assert "status: NXDOMAIN" in nx
    # outside the cluster domain: a fast SERVFAIL (no upstream reachable from pods), never a hang
    t0 = time.monotonic()
    out = _dig(c, pod, "example.org")
    assert "status: SERVFAIL" in out and time.monotonic() - t0 < 3.5


def test_deleted_service_turns_to_nxdomain(dns_cluster: Cluster) -> None:
    c = dns_cluster
    pod = _client(c)
    c.kubectl("create", "service", "clusterip", "short-lived", "--tcp=80:8080")
    _wait("short-lived to resolve",
          lambda: _dig(c, pod, "+short", "short-lived.default.svc.cluster.local", check=False).strip() != "",
          10)
    c.kubectl("delete", "service", "short-lived")
    _wait("short-lived to turn NXDOMAIN",
          lambda: "status: NXDOMAIN" in _dig(c, pod, "short-lived.default.svc.cluster.local"), 5)


def test_lookups_recover_after_the_dns_container_is_killed(dns_cluster: Cluster) -> None:
    c = dns_cluster
    pod = _client(c)
    dns = c.get_json("pods", "-n", "kube-system", "-l", "k8s-app=kube-dns")["items"][0]
    before = dns["status"]["containerStatuses"][0]["restartCount"]
    pid = find_container_pid(Path(c.state_dir), dns["spec"]["nodeName"], dns["metadata"]["uid"], "coredns")
    assert pid is not None
    os.kill(pid, signal.SIGKILL)  # the DNS server process of our own cluster, found by its recorded PID

    def restarted() -> bool:
        p = c.get_json("pods", "-n", "kube-system", dns["metadata"]["name"])
        return int(p["status"]["containerStatuses"][0]["restartCount"]) > before
    _wait("the DNS container to be restarted", restarted, 30)
    cip = c.get_json("svc", "back-end")["spec"]["clusterIP"]
    _wait("lookups to recover",
          lambda: _dig(c, pod, "+short", "back-end.default.svc.cluster.local", check=False).split() == [cip],
          30)


def _api(c: Cluster, token: str, method: str, path: str,
         body: object = None) -> tuple[int, dict[str, object]]:
    """A request to the cluster's API (TLS on 127.0.0.1, its CA) with `token`."""
    cfg = json.loads(Path(c.state_dir, "config.json").read_text())
    ctx = ssl.create_default_context(cafile=str(Path(c.state_dir, "ca.crt")))
    req = urllib.request.Request(f"https://127.0.0.1:{cfg['api_port']}{path}", method=method,
                                 data=None if body is None else json.dumps(body).encode(),
                                 headers={"Authorization": f"Bearer {token}",
                                          "Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(req, context=ctx, timeout=10) as resp:
            return int(resp.status), json.loads(resp.read())
    except urllib.error.HTTPError as e:
        return int(e.code), json.loads(e.read())


def test_the_dns_server_runs_as_its_service_account_with_no_node_or_admin_credential(
        dns_cluster: Cluster) -> None:
    """issue 19: the DNS pod authenticates with the token of ServiceAccount kube-system/coredns (bound to
    system:coredns: list/watch only), mounted where Kubernetes mounts it; neither its environment nor its
    ServiceAccount files hold the admin token or a node credential, and its token cannot create a pod."""
    c = dns_cluster
    pod = _client(c)
    dns = c.get_json("pods", "-n", "kube-system", "-l", "k8s-app=kube-dns")["items"][0]
    assert dns["spec"]["serviceAccountName"] == "coredns"
    pid = find_container_pid(Path(c.state_dir), dns["spec"]["nodeName"], dns["metadata"]["uid"], "coredns")
    assert pid is not None
    admin = json.loads(Path(c.state_dir, "config.json").read_text())["token"]
    nodes = [p.read_text().strip() for p in Path(c.state_dir).glob("nodes/*/token")]
    creds = [admin, *nodes, *(n.split(":")[0] for n in nodes)]
    assert len(nodes) == 2 and all(len(x) >= 16 for x in creds)
    environ = Path(f"/proc/{pid}/environ").read_bytes()
    assert b"PODNET_API_SERVER=" in environ and b"PODNET_API_TOKEN=" not in environ
    assert not [x for x in creds if x.encode() in environ]
    sa_dir = "/var/run/secrets/kubernetes.io/serviceaccount"

    def in_container(*cmd: str) -> str:  # in the DNS server's own mount namespace
        res = subprocess.run(["nsenter", "-t", str(pid), "-m", "--", *cmd], capture_output=True, text=True,
                             timeout=10)
        assert res.returncode == 0, res.stderr
        return res.stdout

    assert in_container("ls", sa_dir).split() == ["ca.crt", "namespace", "token"]
    files = {name: in_container("cat", f"{sa_dir}/{name}") for name in ("ca.crt", "namespace", "token")}
    assert files["namespace"] == "kube-system"
    assert not [x for x in creds if any(x in text for text in files.values())]
    token = files["token"].strip()
    claims = json.loads(base64.urlsafe_b64decode(token.split(".")[1] + "=="))
    assert claims["sub"] == "system:serviceaccount:kube-system:coredns"
    assert claims["kubernetes.io"]["pod"]["name"] == dns["metadata"]["name"]
    # what the token can do: list Services (DNS); not what a node or the admin can
    code, body = _api(c, token, "GET", "/api/v1/services")
    assert code == 200 and body["kind"] == "ServiceList"
    user = "system:serviceaccount:kube-system:coredns"
    new_pod = {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "intruder"},
               "spec": {"containers": [{"name": "c", "image": AGNHOST}]}}
    code, body = _api(c, token, "POST", "/api/v1/namespaces/default/pods", new_pod)
    assert code == 403 and body["message"] == (f'pods is forbidden: User "{user}" cannot create resource '
                                               '"pods" in API group "" in the namespace "default"')
    node = dns["spec"]["nodeName"]
    code, body = _api(c, token, "PATCH", f"/api/v1/nodes/{node}", {})
    assert code == 403 and body["message"] == (f'nodes "{node}" is forbidden: User "{user}" cannot patch '
                                               'resource "nodes" in API group "" at the cluster scope')
    assert c.kubectl("get", "pod", "intruder", check=False).returncode != 0
    # and with that identity, DNS answers
    cip = c.get_json("svc", "back-end")["spec"]["clusterIP"]
    assert _dig(c, pod, "+short", "back-end.default.svc.cluster.local").split() == [cip]
