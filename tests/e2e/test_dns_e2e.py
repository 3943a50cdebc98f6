"""Cluster DNS as pods see it, on a real cluster: names in the same and in another namespace, each record
type queried with dig from inside a pod at the cluster DNS IP, a deleted Service turning to NXDOMAIN,
and lookups recovering after the DNS server's container is killed.
"""

from __future__ import annotations

import os
import shutil
import signal
import time
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
