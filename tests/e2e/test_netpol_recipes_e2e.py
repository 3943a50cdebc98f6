"""The well-known "Kubernetes Network Policy Recipes" (ahmetb/kubernetes-network-policy-recipes), applied
as people copy them, with the real kubectl, on one 2-node cluster; each recipe is checked with real
packets before and after it is applied, then deleted again.

Targets: `web` pods (agnhost serve-hostname on TCP 80) behind a NodePort Service; clients in the
recipe's namespace and in `other` / `prod` namespaces; "external" is the host (to the NodePort) for
ingress and a node's own address (its kubelet port) for egress, both outside every pod selector.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator

import pytest
from cluster_support import Cluster, running_cluster
from netpol_support import PROBER

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="needs root (network namespaces, nftables)")

SFX = str(os.getpid() % 100000)
NS, OTHER, PROD = f"recipes-{SFX}", f"other-{SFX}", f"prod-{SFX}"

SETUP = f"""
apiVersion: v1
kind: Namespace
metadata: {{name: {NS}}}
---
apiVersion: v1
kind: Namespace
metadata: {{name: {OTHER}}}
---
apiVersion: v1
kind: Namespace
metadata: {{name: {PROD}, labels: {{purpose: production}}}}
""" + "".join(f"""
---
apiVersion: v1
kind: Pod
metadata: {{name: {name}, namespace: {ns}, labels: {labels}}}
spec:
  containers:
  - name: main
    image: registry.k8s.io/e2e-test-images/agnhost:2.52
    args: ["serve-hostname", "--port", "80", "--tcp", "--http=false"]
    ports: [{{containerPort: 80, name: http}}]
""" for name, ns, labels in (
    ("web", NS, "{app: web}"), ("api", NS, "{app: bookstore, role: api}"),
    ("bookstore-client", NS, "{app: bookstore}"), ("client", NS, "{app: client}"),
    ("other-client", OTHER, "{app: client}"), ("prod-client", PROD, "{app: client}"),
    ("monitoring", NS, "{role: monitoring}"), ("foo", NS, "{app: foo}"),
)) + f"""
---
apiVersion: v1
kind: Service
metadata: {{name: web, namespace: {NS}}}
spec:
  type: NodePort
  selector: {{app: web}}
  ports: [{{port: 80, targetPort: 80}}]
"""


@pytest.fixture(scope="module")
def cluster() -> Iterator[Cluster]:
    with running_cluster("nr", "--nodes", "2") as c:
        kubectl(c, "apply", "-f", "-", stdin=SETUP)
        kubectl(c, "wait", "--for=condition=Ready", "pod", "--all", "-n", NS, "--timeout=120s")
        for ns in (OTHER, PROD):
            kubectl(c, "wait", "--for=condition=Ready", "pod", "--all", "-n", ns, "--timeout=120s")
        yield c


def kubectl(c: Cluster, *args: str, stdin: str | None = None) -> str:
    res = subprocess.run(["kubectl", "--kubeconfig", c.kubeconfig, *args], input=stdin, capture_output=True,
                         text=True, timeout=150)
    assert res.returncode == 0, f"kubectl {' '.join(args)}: {res.stdout}{res.stderr}"
    return res.stdout


def pod(c: Cluster, ns: str, name: str) -> dict[str, str]:
    p = json.loads(kubectl(c, "get", "pod", "-n", ns, name, "-o", "json"))
    return {"ip": p["status"]["podIP"], "netns": f"pn-{c.name}-pod-{p['metadata']['uid']}",
            "node": p["spec"]["nodeName"]}


def connects(c: Cluster, src: tuple[str, str], ip: str, port: int = 80, proto: str = "tcp") -> bool:
    """One TCP connection from a pod, with real packets (bounded by a 1 s timeout); "tcp" expects the
    server's answer, "tcp-connect" only the handshake."""
    netns = pod(c, *src)["netns"]
    res = subprocess.run(["nsenter", f"--net=/run/netns/{netns}", sys.executable, "-c", PROBER,
                          json.dumps([ip]), proto, str(port), "1.0"],
                         capture_output=True, text=True, timeout=30)
    assert res.returncode == 0, res.stderr
    return bool(json.loads(res.stdout)[0])


def settle(fn: object, want: bool, tries: int = 6) -> bool:
    got = not want
    for _ in range(tries):
        got = fn()  # type: ignore[operator]
        if got == want:
            return got
        time.sleep(0.5)
    return got


@pytest.fixture
def recipe(cluster: Cluster) -> Iterator[object]:
    applied: list[str] = []

    def apply(text: str) -> None:
        kubectl(cluster, "apply", "-f", "-", stdin=text)
        applied.append(text)

    yield apply
    for text in applied:
        subprocess.run(["kubectl", "--kubeconfig", cluster.kubeconfig, "delete", "--ignore-not-found",
                        "--wait=false", "-f", "-"], input=text, capture_output=True, text=True, timeout=60)


def web_ip(c: Cluster) -> str:
    return pod(c, NS, "web")["ip"]


def test_01_deny_all_traffic_to_an_application(cluster: Cluster, recipe: object) -> None:
    ip = web_ip(cluster)
    assert connects(cluster, (NS, "client"), ip)
    recipe(f"""
kind: NetworkPolicy
apiVersion: networking.k8s.io/v1
metadata:
  name: web-deny-all
  namespace: {NS}
spec:
  podSelector:
    matchLabels:
      app: web
  ingress: []
""")  # type: ignore[operator]
    assert not settle(lambda: connects(cluster, (NS, "client"), ip), False)
    assert not connects(cluster, (OTHER, "other-client"), ip)
    assert connects(cluster, (NS, "client"), pod(cluster, NS, "api")["ip"])  # other apps unaffected


def test_02_limit_traffic_to_an_application(cluster: Cluster, recipe: object) -> None:
    api = pod(cluster, NS, "api")["ip"]
    recipe(f"""
kind: NetworkPolicy
apiVersion: networking.k8s.io/v1
metadata:
  name: api-allow
  namespace: {NS}
spec:
  podSelector:
    matchLabels:
      app: bookstore
      role: api
  ingress:
  - from:
      - podSelector:
          matchLabels:
            app: bookstore
""")  # type: ignore[operator]
    assert not settle(lambda: connects(cluster, (NS, "client"), api), False)
    assert connects(cluster, (NS, "bookstore-client"), api)


def test_03_and_04_deny_non_whitelisted_and_other_namespaces(cluster: Cluster, recipe: object) -> None:
    ip = web_ip(cluster)
    recipe(f"""
kind: NetworkPolicy
apiVersion: networking.k8s.io/v1
metadata:
  namespace: {NS}
  name: deny-from-other-namespaces
spec:
  podSelector:
    matchLabels:
  ingress:
  - from:
    - podSelector: {{}}
""")  # type: ignore[operator]
    assert not settle(lambda: connects(cluster, (OTHER, "other-client"), ip), False)
    assert connects(cluster, (NS, "client"), ip)


def test_05_allow_traffic_from_all_namespaces(cluster: Cluster, recipe: object) -> None:
    ip = web_ip(cluster)
    recipe(f"""
kind: NetworkPolicy
apiVersion: networking.k8s.io/v1
metadata:
  namespace: {NS}
  name: web-allow-all-namespaces
spec:
  podSelector:
    matchLabels:
      app: web
  ingress:
  - from:
    - namespaceSelector: {{}}
""")  # type: ignore[operator]
    assert settle(lambda: connects(cluster, (OTHER, "other-client"), ip), True)
    assert connects(cluster, (PROD, "prod-client"), ip) and connects(cluster, (NS, "client"), ip)


def test_06_allow_traffic_only_from_a_namespace(cluster: Cluster, recipe: object) -> None:
    ip = web_ip(cluster)
    recipe(f"""
kind: NetworkPolicy
apiVersion: networking.k8s.io/v1
metadata:
  name: web-allow-prod
  namespace: {NS}
spec:
  podSelector:
    matchLabels:
      app: web
  ingress:
  - from:
    - namespaceSelector:
        matchLabels:
          purpose: production
""")  # type: ignore[operator]
    assert not settle(lambda: connects(cluster, (OTHER, "other-client"), ip), False)
    assert connects(cluster, (PROD, "prod-client"), ip)
    assert not connects(cluster, (NS, "client"), ip)


def test_08_allow_external_traffic(cluster: Cluster, recipe: object) -> None:
    svc = json.loads(kubectl(cluster, "get", "svc", "-n", NS, "web", "-o", "json"))
    node_port = svc["spec"]["ports"][0]["nodePort"]
    node_ip = cluster.node_ips()[pod(cluster, NS, "web")["node"]]

    def external() -> bool:  # from the host to the node's NodePort, on podnet's own bridge
        try:
            with socket.create_connection((node_ip, node_port), timeout=1.0) as s:
                s.settimeout(1.0)
                return s.recv(100).strip() == b"web"
        except OSError:
            return False

    assert settle(external, True)
    recipe(f"""
kind: NetworkPolicy
apiVersion: networking.k8s.io/v1
metadata:
  name: web-deny-all
  namespace: {NS}
spec:
  podSelector:
    matchLabels:
      app: web
  ingress: []
""")  # type: ignore[operator]
    assert not settle(external, False)
    recipe(f"""
kind: NetworkPolicy
apiVersion: networking.k8s.io/v1
metadata:
  name: web-allow-external
  namespace: {NS}
spec:
  podSelector:
    matchLabels:
      app: web
  ingress:
  - {{}}
""")  # type: ignore[operator]
    assert settle(external, True)


def test_09_allow_traffic_only_to_a_port(cluster: Cluster, recipe: object) -> None:
    api = pod(cluster, NS, "api")["ip"]
    recipe(f"""
kind: NetworkPolicy
apiVersion: networking.k8s.io/v1
metadata:
  name: api-allow-http-from-monitoring
  namespace: {NS}
spec:
  podSelector:
    matchLabels:
      role: api
  ingress:
  - ports:
    - port: http
    from:
    - podSelector:
        matchLabels:
          role: monitoring
""")  # type: ignore[operator]
    assert not settle(lambda: connects(cluster, (NS, "client"), api), False)
    assert connects(cluster, (NS, "monitoring"), api)


def test_11_deny_egress_but_allow_dns(cluster: Cluster, recipe: object) -> None:
    ip = web_ip(cluster)
    assert connects(cluster, (NS, "foo"), ip)
    recipe(f"""
kind: NetworkPolicy
apiVersion: networking.k8s.io/v1
metadata:
  name: foo-deny-egress
  namespace: {NS}
spec:
  podSelector:
    matchLabels:
      app: foo
  policyTypes:
  - Egress
  egress:
  - ports:
    - port: 53
      protocol: UDP
    - port: 53
      protocol: TCP
""")  # type: ignore[operator]
    assert not settle(lambda: connects(cluster, (NS, "foo"), ip), False)
    out = cluster.podnet("exec", "--name", cluster.name, "-n", NS, "foo", "--", "getent", "hosts",
                         f"web.{NS}.svc.cluster.local", timeout=30).stdout
    assert out.split()[0] == json.loads(kubectl(cluster, "get", "svc", "-n", NS, "web", "-o", "json"))[
        "spec"]["clusterIP"]
    assert connects(cluster, (NS, "client"), ip)


def test_14_deny_external_egress(cluster: Cluster, recipe: object) -> None:
    other_node = next(ip for n, ip in cluster.node_ips().items() if n != pod(cluster, NS, "client")["node"])
    assert settle(lambda: connects(cluster, (NS, "client"), other_node, 10250, "tcp-connect"), True)
    recipe(f"""
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata:
  name: foo-deny-external-egress
  namespace: {NS}
spec:
  podSelector:
    matchLabels:
      app: client
  policyTypes:
  - Egress
  egress:
  - ports:
    - port: 53
      protocol: UDP
    - port: 53
      protocol: TCP
  - to:
    - namespaceSelector: {{}}
""")  # type: ignore[operator]
    assert not settle(lambda: connects(cluster, (NS, "client"), other_node, 10250, "tcp-connect"), False)
    assert connects(cluster, (NS, "client"), pod(cluster, PROD, "prod-client")["ip"])
    assert connects(cluster, (NS, "client"), web_ip(cluster))
