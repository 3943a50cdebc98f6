"""The real kubectl v1.32 against podnet's API server: apply, get, describe, delete, scale, watch."""

from __future__ import annotations

import importlib.util
import json
import subprocess
import time

import pytest
import yaml
from kube_support import ApiServerProc

pytestmark = pytest.mark.e2e

HAS_ALLOCATORS = importlib.util.find_spec("podnet.allocators.service_hooks") is not None

SVC = """apiVersion: v1
kind: Service
metadata:
  name: {name}
  labels:
    app: {name}
spec:
  selector:
    app: {name}
  ports:
  - name: http
    port: {port}
    targetPort: 8080
"""

DEPLOY = """apiVersion: apps/v1
kind: Deployment
metadata:
  name: {name}
spec:
  replicas: 1
  selector:
    matchLabels:
      app: {name}
  template:
    metadata:
      labels:
        app: {name}
    spec:
      containers:
      - name: web
        image: nginx:1.27
        ports:
        - containerPort: 8080
"""


def test_version_and_api_resources(apiserver: ApiServerProc) -> None:
    out = apiserver.kubectl("version", "-o", "json").stdout
    assert json.loads(out)["serverVersion"]["gitVersion"] == "v1.32.0"
    out = apiserver.kubectl("api-resources").stdout
    lines = {line.split()[0]: line for line in out.splitlines()[1:]}
    assert "svc" in lines["services"] and "deploy" in lines["deployments"]
    assert "endpointslices" in lines


def test_apply_create_then_reapply_keeps_server_set_fields(apiserver: ApiServerProc) -> None:
    res = apiserver.kubectl("apply", "-f", "-", input=SVC.format(name="apply-svc", port=80))
    assert res.stdout.strip() == "service/apply-svc created"
    first = json.loads(apiserver.kubectl("get", "svc", "apply-svc", "-o", "json").stdout)
    res = apiserver.kubectl("apply", "-f", "-", input=SVC.format(name="apply-svc", port=80))
    assert res.stdout.strip() == "service/apply-svc unchanged"
    res = apiserver.kubectl("apply", "-f", "-", input=SVC.format(name="apply-svc", port=8081))
    assert res.stdout.strip() == "service/apply-svc configured"
    after = json.loads(apiserver.kubectl("get", "svc", "apply-svc", "-o", "json").stdout)
    assert [p["port"] for p in after["spec"]["ports"]] == [8081]
    assert after["metadata"]["uid"] == first["metadata"]["uid"]
    assert after["spec"].get("clusterIP") == first["spec"].get("clusterIP")
    if HAS_ALLOCATORS:
        assert after["spec"]["clusterIP"].startswith("10.")
    assert "kubectl.kubernetes.io/last-applied-configuration" in after["metadata"]["annotations"]


def test_get_in_every_output_format(apiserver: ApiServerProc) -> None:
    apiserver.kubectl("apply", "-f", "-", input=SVC.format(name="get-svc", port=80))
    apiserver.kubectl("apply", "-f", "-", input=DEPLOY.format(name="get-deploy"))
    out = apiserver.kubectl("get", "svc", "get-svc").stdout.splitlines()
    assert out[0].split() == ["NAME", "TYPE", "CLUSTER-IP", "EXTERNAL-IP", "PORT(S)", "AGE"]
    assert out[1].split()[0] == "get-svc" and "80/TCP" in out[1]
    out = apiserver.kubectl("get", "svc", "get-svc", "-o", "wide").stdout.splitlines()
    assert out[0].split()[-1] == "SELECTOR" and out[1].split()[-1] == "app=get-svc"
    doc = yaml.safe_load(apiserver.kubectl("get", "svc", "get-svc", "-o", "yaml").stdout)
    assert doc["kind"] == "Service" and doc["spec"]["ports"][0]["targetPort"] == 8080
    out = apiserver.kubectl("get", "svc", "get-svc", "-o", "jsonpath={.spec.ports[0].name}").stdout
    assert out == "http"
    res = apiserver.kubectl("get", "svc,pods,deploy,nodes,endpoints,endpointslices", check=False)
    assert res.returncode == 0, res.stderr
    assert "service/get-svc" in res.stdout and "deployment.apps/get-deploy" in res.stdout
    kinds = "svc,pods,deploy,nodes,endpoints,endpointslices"
    res = apiserver.kubectl("get", kinds, "-o", "wide", check=False)
    assert res.returncode == 0, res.stderr
    deploy_header = next(line for line in res.stdout.splitlines()
                         if line.startswith("NAME") and "UP-TO-DATE" in line)
    assert deploy_header.split()[-3:] == ["CONTAINERS", "IMAGES", "SELECTOR"]
    res = apiserver.kubectl("get", "deploy", "-A", check=False)
    assert res.stdout.splitlines()[0].split()[:2] == ["NAMESPACE", "NAME"]
    res = apiserver.kubectl("get", "pods", "-n", "kube-public", check=False)
    assert res.returncode == 0 and "No resources found in kube-public namespace." in res.stderr
    res = apiserver.kubectl("get", "svc", "nope", check=False)
    assert res.returncode == 1
    assert res.stderr.strip() == 'Error from server (NotFound): services "nope" not found'


def test_describe_service(apiserver: ApiServerProc) -> None:
    apiserver.kubectl("apply", "-f", "-", input=SVC.format(name="desc-svc", port=80))
    out = apiserver.kubectl("describe", "svc", "desc-svc").stdout
    fields = {line.split(":", 1)[0]: line.split(":", 1)[1].strip() for line in out.splitlines()
              if ":" in line and not line.startswith(" ")}
    assert fields["Name"] == "desc-svc" and fields["Namespace"] == "default"
    assert fields["Selector"] == "app=desc-svc" and fields["Type"] == "ClusterIP"
    assert fields["Port"] == "http  80/TCP" and fields["TargetPort"] == "8080/TCP"
    assert fields["Events"] == "<none>"


def test_delete_from_file(apiserver: ApiServerProc) -> None:
    manifest = SVC.format(name="del-svc", port=80)
    apiserver.kubectl("apply", "-f", "-", input=manifest)
    res = apiserver.kubectl("delete", "-f", "-", input=manifest)
    assert res.stdout.strip() == 'service "del-svc" deleted'
    res = apiserver.kubectl("get", "svc", "del-svc", check=False)
    assert res.returncode == 1 and "NotFound" in res.stderr
    res = apiserver.kubectl("delete", "-f", "-", input=manifest, check=False)
    assert res.returncode == 1
    expected = 'Error from server (NotFound): error when deleting "STDIN": services "del-svc" not found'
    assert expected in res.stderr


def test_scale_deployment(apiserver: ApiServerProc) -> None:
    apiserver.kubectl("apply", "-f", "-", input=DEPLOY.format(name="scale-deploy"))
    res = apiserver.kubectl("scale", "deployment", "scale-deploy", "--replicas=3")
    assert res.stdout.strip() == "deployment.apps/scale-deploy scaled"
    out = apiserver.kubectl("get", "deploy", "scale-deploy", "-o", "jsonpath={.spec.replicas}").stdout
    assert out == "3"


def test_invalid_manifest_prints_the_kubernetes_message(apiserver: ApiServerProc) -> None:
    res = apiserver.kubectl("apply", "-f", "-", input=SVC.format(name="myapp-service", port=0), check=False)
    assert res.returncode == 1
    assert res.stderr.strip() == ('The Service "myapp-service" is invalid: spec.ports[0].port: '
                                  "Invalid value: 0: must be between 1 and 65535, inclusive")


def test_get_watch_sees_a_change(apiserver: ApiServerProc) -> None:
    apiserver.kubectl("apply", "-f", "-", input=SVC.format(name="watch-svc", port=80))
    assert apiserver.kubectl  # the watcher below is our own process; it is ended by its PID
    import os
    import shutil

    cmd = [shutil.which("kubectl") or "kubectl", "--kubeconfig", str(apiserver.kubeconfig),
           "--cache-dir", str(apiserver.cache_dir), "get", "svc", "watch-svc", "-w",
           "--output-watch-events", "-o", "jsonpath={.type} {.object.spec.ports[0].port}{\"\\n\"}"]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            env={**os.environ, "HOME": str(apiserver.cache_dir.parent)})
    try:
        time.sleep(1.0)
        patch = ('{"spec":{"ports":[{"port":80,"$patch":"delete"},'
                 '{"name":"http","port":9090,"targetPort":8080}]}}')
        apiserver.kubectl("patch", "svc", "watch-svc", "-p", patch)
        assert proc.stdout is not None
        deadline = time.monotonic() + 15
        lines: list[str] = []
        while time.monotonic() < deadline:
            line = proc.stdout.readline()
            if not line:
                break
            lines.append(line.strip())
            if line.strip() == "MODIFIED 9090":
                break
        assert "MODIFIED 9090" in lines, lines
    finally:
        proc.kill()
        proc.wait(timeout=5)
        if proc.stdout:
            proc.stdout.close()
        if proc.stderr:
            proc.stderr.close()
