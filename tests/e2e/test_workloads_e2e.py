"""Everyday workloads with the real kubectl and the official Python client (issue 13): Secrets,
ServiceAccounts and RBAC, volumes, DaemonSets, StatefulSets, Jobs and CronJobs on a 2-node cluster."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from typing import Any

import pytest
from cluster_support import Cluster, running_cluster, wait_for

from podnet.model import kinds

pytestmark = pytest.mark.e2e


@pytest.fixture(scope="module")
def cluster() -> Iterator[Cluster]:
    with running_cluster("wl", "--nodes", "2") as c:
        wait_for(
            "default ServiceAccount",
            lambda: c.kubectl("get", "sa", "default", check=False).returncode == 0,
            30,
        )
        yield c


def apply_yaml(c: Cluster, text: str) -> None:
    res = subprocess.run(
        ["kubectl", "--kubeconfig", c.kubeconfig, "apply", "-f", "-"],
        input=text,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert res.returncode == 0, res.stderr


def pod_running(c: Cluster, name: str, timeout: float = 60) -> None:
    def running() -> bool:
        pod = c.get_json("pod", name)
        return bool(pod.get("status", {}).get("phase") == "Running")

    wait_for(f"pod {name} Running", running, timeout)


def in_pod(c: Cluster, pod: str, script: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    return c.kubectl("exec", pod, "--", "sh", "-c", script, check=check, timeout=90)


def test_api_resources_lists_every_served_kind(cluster: Cluster) -> None:
    out = cluster.kubectl("api-resources", "--no-headers").stdout
    names = {line.split()[0] for line in out.splitlines() if line.strip()}
    want = {rt.plural for rt in (*kinds.ALL_RESOURCES, *kinds.REVIEWS)}
    assert want <= names, want - names
    line = next(line for line in out.splitlines() if line.startswith("daemonsets "))
    assert line.split()[1] == "ds"


def test_kubectl_create_everyday_kinds(cluster: Cluster) -> None:
    c = cluster
    c.kubectl("create", "secret", "generic", "wl-creds", "--from-literal=password=s3cr3t")
    c.kubectl("create", "configmap", "wl-cfg", "--from-literal=mode=blue")
    c.kubectl("create", "serviceaccount", "wl-bot")
    c.kubectl("create", "role", "wl-reader", "--verb=get,list", "--resource=pods")
    c.kubectl("create", "rolebinding", "wl-rb", "--role=wl-reader", "--serviceaccount=default:wl-bot")
    c.kubectl("create", "job", "wl-once", "--image=busybox", "--", "sh", "-c", "echo hi")
    c.kubectl("create", "cronjob", "wl-tick", "--image=busybox", "--schedule=*/5 * * * *", "--", "true")
    secret = c.get_json("secret", "wl-creds")
    assert secret["type"] == "Opaque" and secret["data"] == {"password": "czNjcjN0"}
    table = c.kubectl("get", "secret", "wl-creds").stdout.split()
    assert table[:4] == ["NAME", "TYPE", "DATA", "AGE"] and table[5:7] == ["Opaque", "1"]
    assert c.get_json("rolebinding", "wl-rb")["roleRef"]["name"] == "wl-reader"
    assert c.get_json("cronjob", "wl-tick")["spec"]["concurrencyPolicy"] == "Allow"
    wait_for(
        "job wl-once complete",
        lambda: any(
            cond["type"] == "Complete" and cond["status"] == "True"
            for cond in c.get_json("job", "wl-once").get("status", {}).get("conditions", [])
        ),
        60,
    )
    # the value never shows in errors
    res = c.kubectl("create", "secret", "generic", "wl-creds", "--from-literal=password=hunter2", check=False)
    assert res.returncode != 0 and "hunter2" not in res.stderr


def test_daemonset_runs_a_pod_on_every_node(cluster: Cluster) -> None:
    apply_yaml(
        cluster,
        """
apiVersion: apps/v1
kind: DaemonSet
metadata: {name: wl-agent}
spec:
  selector: {matchLabels: {app: wl-agent}}
  template:
    metadata: {labels: {app: wl-agent}}
    spec:
      containers: [{name: a, image: busybox, command: [sh, -c, "sleep 3600"]}]
""",
    )
    nodes = {n["metadata"]["name"] for n in cluster.get_json("nodes")["items"]}
    pods = cluster.wait_ready("app=wl-agent", len(nodes), timeout=90)
    assert {p["spec"]["nodeName"] for p in pods} == nodes
    ds = cluster.get_json("daemonset", "wl-agent")
    wait_for(
        "daemonset status",
        lambda: cluster.get_json("daemonset", "wl-agent")["status"].get("numberReady") == len(nodes),
        30,
    )
    assert ds["spec"]["updateStrategy"]["type"] == "RollingUpdate"


def test_statefulset_pods_resolve_each_other_by_name(cluster: Cluster) -> None:
    apply_yaml(
        cluster,
        """
apiVersion: v1
kind: Service
metadata: {name: wlweb}
spec:
  clusterIP: None
  selector: {app: wlweb}
  ports: [{port: 80}]
---
apiVersion: apps/v1
kind: StatefulSet
metadata: {name: wlweb}
spec:
  serviceName: wlweb
  replicas: 2
  selector: {matchLabels: {app: wlweb}}
  template:
    metadata: {labels: {app: wlweb}}
    spec:
      containers: [{name: w, image: busybox, command: [sh, -c, "sleep 3600"]}]
""",
    )
    pods = cluster.wait_ready("app=wlweb", 2, timeout=90)
    assert sorted(p["metadata"]["name"] for p in pods) == ["wlweb-0", "wlweb-1"]
    ip0 = next(p["status"]["podIP"] for p in pods if p["metadata"]["name"] == "wlweb-0")

    def resolves() -> bool:
        out = in_pod(cluster, "wlweb-1", "getent hosts wlweb-0.wlweb", check=False).stdout
        return out.split()[:1] == [ip0]

    wait_for("wlweb-0.wlweb from wlweb-1", resolves, 30)
    assert in_pod(cluster, "wlweb-1", "hostname").stdout.strip() == "wlweb-1"


def test_jobs_complete_and_fail_after_backoff_limit(cluster: Cluster) -> None:
    apply_yaml(
        cluster,
        """
apiVersion: batch/v1
kind: Job
metadata: {name: wl-ok}
spec:
  completions: 2
  template:
    spec:
      restartPolicy: Never
      containers: [{name: c, image: busybox, command: [sh, -c, "echo done"]}]
---
apiVersion: batch/v1
kind: Job
metadata: {name: wl-bad}
spec:
  backoffLimit: 1
  template:
    spec:
      restartPolicy: Never
      containers: [{name: c, image: busybox, command: [sh, -c, "exit 3"]}]
""",
    )

    def condition(job: str) -> dict[str, Any] | None:
        for cond in cluster.get_json("job", job).get("status", {}).get("conditions", []):
            if cond["type"] in ("Complete", "Failed") and cond["status"] == "True":
                return dict(cond)
        return None

    done = wait_for("wl-ok complete", lambda: condition("wl-ok"), 90)
    assert done["type"] == "Complete"
    assert cluster.get_json("job", "wl-ok")["status"]["succeeded"] == 2
    failed = wait_for("wl-bad failed", lambda: condition("wl-bad"), 90)
    assert (failed["type"], failed["reason"], failed["message"]) == (
        "Failed",
        "BackoffLimitExceeded",
        "Job has reached the specified backoff limit",
    )
    assert cluster.get_json("job", "wl-bad")["status"]["failed"] == 2
    row = cluster.kubectl("get", "job", "wl-bad", "--no-headers").stdout.split()
    assert row[:3] == ["wl-bad", "Failed", "0/1"]


def test_secret_as_env_and_file_and_configmap_update_after_edit(cluster: Cluster) -> None:
    c = cluster
    c.kubectl("create", "secret", "generic", "wl-db", "--from-literal=password=pa55")
    c.kubectl("create", "configmap", "wl-settings", "--from-literal=mode=blue")
    apply_yaml(
        c,
        """
apiVersion: v1
kind: Pod
metadata: {name: wl-reader}
spec:
  containers:
  - name: main
    image: busybox
    command: [sh, -c, "sleep 3600"]
    env:
    - name: DB_PASSWORD
      valueFrom: {secretKeyRef: {name: wl-db, key: password}}
    volumeMounts:
    - {name: creds, mountPath: /etc/wl-creds, readOnly: true}
    - {name: settings, mountPath: /etc/wl-settings}
  volumes:
  - name: creds
    secret: {secretName: wl-db, defaultMode: 0400}
  - name: settings
    configMap: {name: wl-settings}
""",
    )
    pod_running(c, "wl-reader")
    out = in_pod(
        c,
        "wl-reader",
        'echo "$DB_PASSWORD"; cat /etc/wl-creds/password; echo; '
        "stat -L -c %a /etc/wl-creds/password; cat /etc/wl-settings/mode",
    ).stdout
    assert out.split() == ["pa55", "pa55", "400", "blue"]
    env = dict(os.environ, KUBE_EDITOR="sed -i s/blue/green/")
    res = subprocess.run(
        ["kubectl", "--kubeconfig", c.kubeconfig, "edit", "configmap", "wl-settings"],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert res.returncode == 0, res.stderr
    wait_for(
        "the edit reaches the mounted file",
        lambda: in_pod(c, "wl-reader", "cat /etc/wl-settings/mode").stdout.strip() == "green",
        30,
    )
    # the built-in runtime made the mount points on the host's filesystem; they go with the pod
    assert os.path.isdir("/etc/wl-settings")
    c.kubectl("delete", "pod", "wl-reader", "--grace-period=1")
    wait_for(
        "the mount points made for the pod are removed",
        lambda: not os.path.exists("/etc/wl-settings") and not os.path.exists("/etc/wl-creds"),
        30,
    )


def test_missing_configmap_holds_pod_in_container_creating(cluster: Cluster) -> None:
    apply_yaml(
        cluster,
        """
apiVersion: v1
kind: Pod
metadata: {name: wl-waiting}
spec:
  containers: [{name: m, image: busybox, command: [sh, -c, "sleep 3600"],
                volumeMounts: [{name: v, mountPath: /etc/wl-missing}]}]
  volumes: [{name: v, configMap: {name: wl-not-there}}]
""",
    )

    def failed_mount() -> str:
        events = cluster.get_json("events", "--field-selector", "involvedObject.name=wl-waiting")["items"]
        return next((e["message"] for e in events if e["reason"] == "FailedMount"), "")

    msg = wait_for("FailedMount event", failed_mount, 30)
    assert msg == 'MountVolume.SetUp failed for volume "v" : configmap "wl-not-there" not found'
    row = cluster.kubectl("get", "pod", "wl-waiting", "--no-headers").stdout.split()
    assert row[1:3] == ["0/1", "ContainerCreating"]
    cluster.kubectl("create", "configmap", "wl-not-there", "--from-literal=a=b")
    pod_running(cluster, "wl-waiting")


def test_service_account_token_rbac_and_can_i(cluster: Cluster) -> None:
    c = cluster
    c.kubectl("create", "serviceaccount", "wl-lister")
    apply_yaml(
        c,
        """
apiVersion: v1
kind: Pod
metadata: {name: wl-client}
spec:
  serviceAccountName: wl-lister
  containers: [{name: m, image: busybox, command: [sh, -c, "sleep 3600"]}]
""",
    )
    pod_running(c, "wl-client")
    listing = "env -u KUBECONFIG kubectl get pods -o name 2>&1"
    out = in_pod(c, "wl-client", listing, check=False).stdout
    assert (
        'Error from server (Forbidden): pods is forbidden: User "system:serviceaccount:default:wl-lister" '
        'cannot list resource "pods" in API group "" in the namespace "default"'
    ) in out
    sa = "--as=system:serviceaccount:default:wl-lister"
    assert c.kubectl("auth", "can-i", "list", "pods", sa, check=False).stdout.strip() == "no"
    c.kubectl("create", "role", "wl-pod-lister", "--verb=get,list,watch", "--resource=pods")
    c.kubectl(
        "create", "rolebinding", "wl-lister", "--role=wl-pod-lister", "--serviceaccount=default:wl-lister"
    )
    assert c.kubectl("auth", "can-i", "list", "pods", sa).stdout.strip() == "yes"
    assert c.kubectl("auth", "can-i", "delete", "pods", sa, check=False).stdout.strip() == "no"
    out = in_pod(c, "wl-client", listing).stdout
    assert "pod/wl-client" in out.split()
    files = in_pod(
        c,
        "wl-client",
        "ls /var/run/secrets/kubernetes.io/serviceaccount; "
        "cat /var/run/secrets/kubernetes.io/serviceaccount/namespace",
    ).stdout.split()
    assert files == ["ca.crt", "namespace", "token", "default"]
    # the official Python client in the pod, with its in-cluster configuration
    script = (
        "from kubernetes import client, config; config.load_incluster_config(); "
        "pods = client.CoreV1Api().list_namespaced_pod('default').items; "
        "print(json.dumps([p.metadata.name for p in pods]))"
    )
    res = c.kubectl("exec", "wl-client", "--", sys.executable, "-c", f"import json; {script}", timeout=90)
    assert "wl-client" in json.loads(res.stdout.strip().splitlines()[-1])
    # deleting the ServiceAccount revokes its tokens at once
    c.kubectl("delete", "serviceaccount", "wl-lister")
    out = in_pod(c, "wl-client", listing, check=False).stdout
    assert "Unauthorized" in out or "must be logged in" in out, out
