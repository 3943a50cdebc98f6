"""kubectl against podnet: server-side apply, Deployment re-apply, NodePort kept, namespaces, logs."""

from __future__ import annotations

import importlib.util
import json

import pytest
from kube_support import ApiServerProc

pytestmark = pytest.mark.e2e

HAS_ALLOCATORS = importlib.util.find_spec("podnet.allocators.service_hooks") is not None

DEPLOY = """apiVersion: apps/v1
kind: Deployment
metadata:
  name: {name}
spec:
  replicas: 2
  selector:
    matchLabels: {{app: {name}}}
  strategy:
    type: {strategy}
  template:
    metadata:
      labels: {{app: {name}}}
    spec:
      containers:
      - name: web
        image: {image}
        env:
        - {{name: MODE, value: "{mode}"}}
      - name: sidecar
        image: busybox
"""


def _json(apiserver: ApiServerProc, *args: str) -> dict[str, object]:
    out: dict[str, object] = json.loads(apiserver.kubectl(*args, "-o", "json").stdout)
    return out


def test_reapply_deployment_merges_containers_and_switches_strategy(apiserver: ApiServerProc) -> None:
    m1 = DEPLOY.format(name="lc-deploy", strategy="RollingUpdate", image="nginx:1.26", mode="a")
    res = apiserver.kubectl("apply", "-f", "-", input=m1)
    assert res.stdout.strip() == "deployment.apps/lc-deploy created"
    m2 = DEPLOY.format(name="lc-deploy", strategy="Recreate", image="nginx:1.27", mode="b")
    res = apiserver.kubectl("apply", "-f", "-", input=m2)
    assert res.stdout.strip() == "deployment.apps/lc-deploy configured"
    d = _json(apiserver, "get", "deploy", "lc-deploy")
    spec = d["spec"]  # type: ignore[index]
    assert spec["strategy"] == {"type": "Recreate"}  # $retainKeys dropped rollingUpdate
    containers = spec["template"]["spec"]["containers"]
    assert [c["name"] for c in containers] == ["web", "sidecar"]
    assert containers[0]["image"] == "nginx:1.27" and containers[0]["env"] == [{"name": "MODE", "value": "b"}]
    assert d["metadata"]["generation"] == 2  # type: ignore[index]


def test_server_side_apply(apiserver: ApiServerProc) -> None:
    manifest = ("apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: lc-ssa\ndata:\n  a: '1'\n")
    res = apiserver.kubectl("apply", "--server-side", "-f", "-", input=manifest)
    assert res.stdout.strip() == "configmap/lc-ssa serverside-applied"
    res = apiserver.kubectl("apply", "--server-side", "-f", "-", input=manifest.replace("'1'", "'2'"))
    assert res.stdout.strip() == "configmap/lc-ssa serverside-applied"
    cm = _json(apiserver, "get", "cm", "lc-ssa", "--show-managed-fields")
    assert cm["data"] == {"a": "2"}
    managers = [f["manager"] for f in cm["metadata"]["managedFields"]]  # type: ignore[index]
    assert managers == ["kubectl"]


@pytest.mark.skipif(not HAS_ALLOCATORS, reason="NodePort allocation needs podnet.allocators")
def test_reapply_nodeport_service_keeps_cluster_ip_and_node_port(apiserver: ApiServerProc) -> None:
    svc = ("apiVersion: v1\nkind: Service\nmetadata:\n  name: lc-np\nspec:\n  type: NodePort\n"
           "  selector: {{app: lc}}\n  ports:\n  - name: http\n    port: 80\n    targetPort: {tp}\n")
    apiserver.kubectl("apply", "-f", "-", input=svc.format(tp=8080))
    first = _json(apiserver, "get", "svc", "lc-np")
    res = apiserver.kubectl("apply", "-f", "-", input=svc.format(tp=9090))
    assert res.stdout.strip() == "service/lc-np configured"
    after = _json(apiserver, "get", "svc", "lc-np")
    s1, s2 = first["spec"], after["spec"]  # type: ignore[index]
    assert s2["clusterIP"] == s1["clusterIP"] and s2["ports"][0]["targetPort"] == 9090
    node_port = s2["ports"][0]["nodePort"]
    assert 30000 <= node_port <= 32767 and node_port == s1["ports"][0]["nodePort"]
    out = apiserver.kubectl("get", "svc", "lc-np").stdout.splitlines()[1]
    assert f"80:{s2['ports'][0]['nodePort']}/TCP" in out


def test_namespace_create_delete_waits_until_gone(apiserver: ApiServerProc) -> None:
    assert apiserver.kubectl("create", "namespace", "lc-ns").stdout.strip() == "namespace/lc-ns created"
    apiserver.kubectl("-n", "lc-ns", "create", "configmap", "c1", "--from-literal=a=b")
    res = apiserver.kubectl("delete", "namespace", "lc-ns", "--timeout=20s")
    assert res.stdout.strip() == 'namespace "lc-ns" deleted'
    res = apiserver.kubectl("get", "namespace", "lc-ns", check=False)
    assert res.returncode == 1 and 'namespaces "lc-ns" not found' in res.stderr
    res = apiserver.kubectl("-n", "lc-ns", "get", "cm", "c1", check=False)
    assert res.returncode == 1


def test_logs_of_a_pod_not_yet_scheduled(apiserver: ApiServerProc) -> None:
    apiserver.kubectl("run", "lc-pending", "--image=busybox", "--restart=Never", "--", "sleep", "10")
    res = apiserver.kubectl("logs", "lc-pending", check=False)
    assert res.returncode == 1
    assert res.stderr.strip() == ('Error from server (BadRequest): container "lc-pending" in pod '
                                  '"lc-pending" is waiting to start: ContainerCreating')
    res = apiserver.kubectl("delete", "pod", "lc-pending", "--timeout=20s")
    assert res.stdout.strip() == 'pod "lc-pending" deleted'


def test_create_in_missing_namespace(apiserver: ApiServerProc) -> None:
    res = apiserver.kubectl("-n", "lc-missing", "create", "configmap", "x", check=False)
    assert res.returncode == 1
    assert res.stderr.strip() == 'error: failed to create configmap: namespaces "lc-missing" not found'


def test_typed_create_commands_send_protobuf_and_work(apiserver: ApiServerProc) -> None:
    assert apiserver.kubectl("create", "deployment", "lc-typed", "--image=nginx:1.27", "--port=8080",
                             "--replicas=2").stdout.strip() == "deployment.apps/lc-typed created"
    d = _json(apiserver, "get", "deploy", "lc-typed")
    spec = d["spec"]  # type: ignore[index]
    assert spec["replicas"] == 2 and spec["selector"] == {"matchLabels": {"app": "lc-typed"}}
    c = spec["template"]["spec"]["containers"][0]
    assert (c["name"], c["image"]) == ("nginx", "nginx:1.27")
    assert c["ports"] == [{"containerPort": 8080, "protocol": "TCP"}]
    res = apiserver.kubectl("create", "service", "clusterip", "lc-typed", "--tcp=80:8080")
    assert res.stdout.strip() == "service/lc-typed created"
    s = _json(apiserver, "get", "svc", "lc-typed")
    assert s["spec"]["ports"] == [{"name": "80-8080", "port": 80, "protocol": "TCP",  # type: ignore[index]
                                   "targetPort": 8080}]
    res = apiserver.kubectl("create", "configmap", "lc-typed", "--from-literal=k=v")
    assert res.stdout.strip() == "configmap/lc-typed created"
    assert _json(apiserver, "get", "cm", "lc-typed")["data"] == {"k": "v"}
