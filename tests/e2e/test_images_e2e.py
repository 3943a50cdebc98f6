"""Real container images, end to end with the real kubectl and no network: images built here from
busybox-static (umoci), served by local `docker-registry` instances on 127.0.0.1 (one behind
htpasswd auth), run by runc inside the pods' network namespaces of a 2-node cluster.
"""

from __future__ import annotations

import base64
import json
import os
import shutil
import signal
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from cluster_support import Cluster, http_get, running_cluster, wait_for
from image_support import (
    build_layout,
    docker_archive,
    fault_server,
    oci_archive,
    registry,
    tools_missing,
    unique_image,
)

pytestmark = [
    pytest.mark.kernel,
    pytest.mark.e2e,
    pytest.mark.xdist_group("images-e2e"),
    pytest.mark.skipif(os.geteuid() != 0, reason="needs root: network namespaces, runc"),
    pytest.mark.skipif(shutil.which("kubectl") is None, reason="kubectl is not installed"),
    pytest.mark.skipif(bool(tools_missing()), reason=tools_missing() or "ok"),
]


class Env:
    def __init__(self, cluster: Cluster, work: Path, layout: Path, reg: Any, auth_reg: Any, digest: str):
        self.c = cluster
        self.work = work
        self.layout = layout
        self.reg = reg
        self.auth_reg = auth_reg
        self.digest = digest


@pytest.fixture(scope="module")
def env() -> Iterator[Env]:
    work = Path(tempfile.mkdtemp(prefix="pnimg"))
    try:
        layout = build_layout(work)
        with registry(work / "reg") as reg, \
                registry(work / "authreg", user="podnet", password="s3cret-pw") as areg:
            digest = reg.push(layout, "httpd", "app/httpd:1.0")
            reg.push(layout, "multi", "app/multi:1.0")
            reg.push(layout, "escape", "app/escape:1.0")
            areg.push(layout, "httpd", "private/httpd:1.0")
            with running_cluster("img", "--nodes", "2", "--image-pull-timeout", "6", "--images", "auto") as c:
                yield Env(c, work, layout, reg, areg, digest)
    finally:
        shutil.rmtree(work, ignore_errors=True)


def pod(name: str, image: str, **extra: Any) -> dict[str, Any]:
    container: dict[str, Any] = {"name": "main", "image": image}
    container.update(extra.pop("container", {}))
    spec: dict[str, Any] = {"terminationGracePeriodSeconds": 2, "containers": [container]}
    spec.update(extra)
    return {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": name}, "spec": spec}


def waiting_reason(c: Cluster, name: str) -> tuple[str, str]:
    p = c.get_json("pod", name)
    for s in p.get("status", {}).get("containerStatuses") or []:
        w = s.get("state", {}).get("waiting")
        if w:
            return str(w.get("reason")), str(w.get("message", ""))
    return "", ""


def running(c: Cluster, name: str) -> dict[str, Any] | None:
    p = c.get_json("pod", name)
    st = (p.get("status", {}).get("containerStatuses") or [{}])[0]
    return st if "running" in st.get("state", {}) else None


def test_deployment_by_tag_then_digest_behind_a_nodeport_on_every_node(env: Env) -> None:
    c = env.c
    image = f"{env.reg.host}/app/httpd:1.0"
    c.apply({"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "web"},
             "spec": {"replicas": 2, "selector": {"matchLabels": {"app": "web"}},
                      "template": {"metadata": {"labels": {"app": "web"}},
                                   "spec": {"terminationGracePeriodSeconds": 2,
                                            "containers": [{"name": "httpd", "image": image,
                                                            "ports": [{"containerPort": 80}]}]}}}})
    c.apply({"apiVersion": "v1", "kind": "Service", "metadata": {"name": "web"},
             "spec": {"type": "NodePort", "selector": {"app": "web"}, "ports": [{"port": 80}]}})
    pods = c.wait_ready("app=web", 2, timeout=90)
    for p in pods:
        st = p["status"]["containerStatuses"][0]
        assert st["imageID"] == f"{env.reg.host}/app/httpd@{env.digest}"
    node_port = c.get_json("svc", "web")["spec"]["ports"][0]["nodePort"]
    for ip in c.node_ips().values():
        assert wait_for(f"answer on {ip}:{node_port}",
                        lambda ip=ip: _get(f"http://{ip}:{node_port}/"), 30) == "hello from a real image\n"

    by_digest = f"{env.reg.host}/app/httpd@{env.digest}"
    c.kubectl("set", "image", "deployment/web", f"httpd={by_digest}")
    c.kubectl("rollout", "status", "deployment/web", "--timeout=90s", timeout=100)

    def on_digest() -> list[dict[str, Any]]:
        ps = c.ready_pods("app=web")
        done = len(ps) == 2 and all(p["spec"]["containers"][0]["image"] == by_digest for p in ps)
        return ps if done else []

    for p in wait_for("pods on the digest reference", on_digest, 60):
        assert p["status"]["containerStatuses"][0]["imageID"] == by_digest
    for ip in c.node_ips().values():
        assert wait_for(f"answer on {ip}:{node_port}",
                        lambda ip=ip: _get(f"http://{ip}:{node_port}/"), 30) == "hello from a real image\n"
    events = c.kubectl("get", "events", "-o", "json").stdout
    assert f'Successfully pulled image \\"{image}\\"' in events


def _get(url: str) -> str:
    try:
        return http_get(url)
    except OSError:
        return ""


def test_exec_logs_environment_and_whiteout_in_a_real_image(env: Env) -> None:
    c = env.c
    c.apply(pod("shell", f"{env.reg.host}/app/multi:1.0", container={
        "command": ["sh", "-c", "echo started as $(id -u) with $GREETING; exec httpd -f -p 8080 -h /www"],
        "env": [{"name": "EXTRA", "value": "from-pod"}]}))
    wait_for("shell running", lambda: running(c, "shell"), 60)
    out = c.kubectl("exec", "shell", "--", "sh", "-c",
                    "ls /www; echo pid1=$(cat /proc/1/comm); hostname; echo $EXTRA $GREETING; "
                    "cat /etc/resolv.conf").stdout
    assert "second.txt" in out and "gone.txt" not in out, out  # the whiteout of the second layer
    assert "index.html" in out
    assert "pid1=httpd" in out  # its own PID namespace
    assert "\nshell\n" in out
    assert "from-pod from-image" in out
    assert "nameserver 10.96.0.10" in out
    logs = wait_for("log line", lambda: c.kubectl("logs", "shell").stdout, 20)
    assert logs == "started as 0 with from-image\n"
    fail = c.kubectl("exec", "shell", "--", "sh", "-c", "exit 7", check=False)
    assert fail.returncode == 7


def terminated(c: Cluster, name: str) -> dict[str, Any] | None:
    p = c.get_json("pod", name)
    st = (p.get("status", {}).get("containerStatuses") or [{}])[0]
    t = st.get("state", {}).get("terminated")
    return t if t else None


def test_exit_codes_and_reasons_completed_error_oomkilled(env: Env) -> None:
    c = env.c
    image = f"{env.reg.host}/app/httpd:1.0"
    c.apply(pod("done-ok", image, restartPolicy="Never", container={"command": ["sh", "-c", "exit 0"]}))
    c.apply(pod("done-err", image, restartPolicy="Never", container={"command": ["sh", "-c", "exit 3"]}))
    c.apply(pod("oom", image, restartPolicy="Never", container={
        "command": ["dd", "if=/dev/zero", "of=/dev/null", "bs=64M", "count=4"],
        "resources": {"limits": {"memory": "16Mi"}}}))
    ok = wait_for("done-ok terminated", lambda: terminated(c, "done-ok"), 60)
    assert (ok["exitCode"], ok["reason"]) == (0, "Completed")
    err = wait_for("done-err terminated", lambda: terminated(c, "done-err"), 60)
    assert (err["exitCode"], err["reason"]) == (3, "Error")
    oom = wait_for("oom terminated", lambda: terminated(c, "oom"), 60)
    assert (oom["exitCode"], oom["reason"]) == (137, "OOMKilled"), oom
    assert c.get_json("pod", "done-ok")["status"]["phase"] == "Succeeded"
    assert c.get_json("pod", "done-err")["status"]["phase"] == "Failed"


def test_security_context_user_read_only_root_and_run_as_non_root(env: Env) -> None:
    c = env.c
    image = f"{env.reg.host}/app/httpd:1.0"
    c.apply(pod("locked", image, container={
        "command": ["sleep", "3600"],
        "securityContext": {"runAsUser": 33, "runAsGroup": 33, "allowPrivilegeEscalation": False}}))
    c.apply(pod("readonly", image, container={
        "command": ["sleep", "3600"], "securityContext": {"readOnlyRootFilesystem": True}}))
    wait_for("locked running", lambda: running(c, "locked"), 60)
    out = c.kubectl("exec", "locked", "--", "sh", "-c",
                    "id -u; id -g; grep -E 'CapEff|NoNewPrivs' /proc/1/status").stdout
    assert out.startswith("33\n33\n"), out
    assert "CapEff:\t0000000000000000" in out, out  # not root: no effective capabilities
    assert "NoNewPrivs:\t1" in out, out
    wait_for("readonly running", lambda: running(c, "readonly"), 60)
    out = c.kubectl("exec", "readonly", "--", "sh", "-c", "touch /www/x 2>&1; echo rc=$?").stdout
    assert "Read-only file system" in out and "rc=1" in out, out
    c.apply(pod("nonroot", image, container={"securityContext": {"runAsNonRoot": True}}))
    _, msg = wait_for("runAsNonRoot refused", lambda: waiting_reason(c, "nonroot")[0] ==
                           "CreateContainerConfigError" and waiting_reason(c, "nonroot"), 60)
    uid = c.get_json("pod", "nonroot")["metadata"]["uid"]
    assert msg == ('container has runAsNonRoot and image will run as root '
                   f'(pod: "nonroot_default({uid})", container: main)'), msg


def test_probes_restart_and_graceful_stop_of_a_real_image(env: Env) -> None:
    c = env.c
    image = f"{env.reg.host}/app/httpd:1.0"
    c.apply(pod("probed", image, container={
        "readinessProbe": {"exec": {"command": ["cat", "/www/index.html"]}, "periodSeconds": 1},
        "livenessProbe": {"httpGet": {"path": "/", "port": 80}, "periodSeconds": 1}}))
    wait_for("probed Ready", lambda: any(cond["type"] == "Ready" and cond["status"] == "True" for cond in
                                         c.get_json("pod", "probed")["status"].get("conditions", [])), 60)
    # a liveness probe that fails: the container is restarted, lastState says why it ended
    c.apply(pod("unlive", image, container={
        "livenessProbe": {"httpGet": {"path": "/", "port": 8081}, "periodSeconds": 1,
                          "failureThreshold": 1}}))

    def restarted() -> dict[str, Any] | None:
        st = (c.get_json("pod", "unlive")["status"].get("containerStatuses") or [{}])[0]
        return st if st.get("restartCount", 0) >= 1 and st.get("lastState", {}).get("terminated") else None

    st = wait_for("restart after failed liveness", restarted, 60)
    assert st["lastState"]["terminated"]["exitCode"] == 137  # httpd as PID 1 ignores SIGTERM: SIGKILL
    # graceful stop: SIGTERM, then SIGKILL after terminationGracePeriodSeconds (2 s here)
    t0 = time.monotonic()
    c.kubectl("delete", "pod", "probed", "--wait=true", timeout=60)
    assert time.monotonic() - t0 < 20


def test_image_pull_secret_against_the_authenticated_registry(env: Env) -> None:
    c = env.c
    image = f"{env.auth_reg.host}/private/httpd:1.0"
    c.apply(pod("nosecret", image))
    _, msg = wait_for("ErrImagePull without credentials",
                           lambda: waiting_reason(c, "nosecret")[0] in ("ErrImagePull", "ImagePullBackOff")
                           and waiting_reason(c, "nosecret"), 60)
    assert "unauthorized" in msg.lower() or "authentication required" in msg.lower(), msg
    config = base64.b64encode(json.dumps({"auths": env.auth_reg.auths()}).encode()).decode()
    c.apply({"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "regcred"},
             "type": "kubernetes.io/dockerconfigjson", "data": {".dockerconfigjson": config}})
    c.apply(pod("withsecret", image, imagePullSecrets=[{"name": "regcred"}]))
    st = wait_for("pod pulled with the secret", lambda: running(c, "withsecret"), 60)
    assert st["imageID"].startswith(f"{env.auth_reg.host}/private/httpd@sha256:")


def test_image_load_of_docker_save_and_oci_archives(env: Env) -> None:
    c = env.c
    d = docker_archive(env.layout, "httpd", env.work / "docker.tar", "example.test/saved:1")
    o = oci_archive(env.layout, "multi", env.work / "oci.tar", "example.test/oci:2")
    out = c.podnet("image", "load", "-i", str(d)).stdout
    assert "Loaded image: example.test/saved:1" in out
    out = c.podnet("image", "load", "-i", str(o)).stdout
    assert "Loaded image: example.test/oci:2" in out
    names = {i["name"] for i in json.loads(c.podnet("image", "ls", "-o", "json").stdout)}
    assert {"example.test/saved:1", "example.test/oci:2"} <= names
    for name, image in (("saved", "example.test/saved:1"), ("ociimg", "example.test/oci:2")):
        c.apply(pod(name, image, container={"imagePullPolicy": "Never"}))
        wait_for(f"{name} running", lambda name=name: running(c, name), 60)
    out = c.kubectl("exec", "ociimg", "--", "ls", "/www").stdout
    assert "second.txt" in out


def test_layer_escape_refused_and_nothing_written_outside(env: Env) -> None:
    c = env.c
    c.apply(pod("escape", f"{env.reg.host}/app/escape:1.0"))
    _, msg = wait_for("escape refused",
                           lambda: waiting_reason(c, "escape")[0] in ("ErrImagePull", "ImagePullBackOff")
                           and waiting_reason(c, "escape"), 60)
    assert "'../escaped'" in msg and "leaves the image's root filesystem" in msg, msg
    images = Path(c.root) / "images"
    assert not list(Path(c.root).rglob("escaped"))
    assert not (images / "rootfs" / "escaped").exists()


def test_unpullable_image_backs_off_with_kubernetes_reasons(env: Env) -> None:
    c = env.c
    image = f"{env.reg.host}/app/nothing:1.0"
    c.apply(pod("missing", image))
    wait_for("ImagePullBackOff", lambda: waiting_reason(c, "missing")[0] == "ImagePullBackOff", 60)
    _, msg = waiting_reason(c, "missing")
    want = f'Back-off pulling image "{image}": ErrImagePull: Failed to pull image "{image}"'
    assert msg.startswith(want), msg
    assert "manifest unknown" in msg
    # nginx is not in the store and may not be pulled (tests never reach registries outside this machine):
    # the cluster (--images auto) runs the stand-in, and says so
    c.apply(pod("standin", "nginx:1.25", container={"imagePullPolicy": "Never"}))
    wait_for("stand-in running", lambda: running(c, "standin"), 60)
    p = c.get_json("pod", "standin")
    note = "started podnet's built-in stand-in for nginx: image not present and imagePullPolicy is Never"
    assert note in p["status"].get("message", "")
    events = c.kubectl("get", "events", "--field-selector", "involvedObject.name=standin").stdout
    assert "started podnet's built-in stand-in for nginx" in events


def wait_pull_error(c: Cluster, name: str, timeout: float = 60) -> str:
    def err() -> str:
        reason, msg = waiting_reason(c, name)
        return msg if reason in ("ErrImagePull", "ImagePullBackOff") else ""

    return str(wait_for(f"{name}: ErrImagePull", err, timeout))


def test_a_blob_whose_digest_does_not_match_is_refused(env: Env) -> None:
    c = env.c
    layout = unique_image(env.layout, env.work / "corrupt", "corrupt")
    with registry(env.work / "badreg") as reg:
        reg.push(layout, "corrupt", "app/corrupt:1.0")
        blobs = list((env.work / "badreg" / "data").rglob("blobs/sha256/*/*/data"))
        layers = [b for b in blobs if b.stat().st_size > 1000]
        assert layers
        for b in layers:
            data = bytearray(b.read_bytes())
            data[len(data) // 2] ^= 0xFF
            b.write_bytes(bytes(data))
        image = f"{reg.host}/app/corrupt:1.0"
        c.apply(pod("corrupt", image))
        msg = wait_pull_error(c, "corrupt")
        assert "digest" in msg.lower(), msg
        names = {i["name"] for i in json.loads(c.podnet("image", "ls", "-o", "json").stdout)}
        assert image not in names


@pytest.mark.parametrize(("mode", "expect"), [("500", "500"), ("hang", "")])
def test_registry_errors_and_hangs_are_err_image_pull_within_the_timeout(env: Env, mode: str,
                                                                         expect: str) -> None:
    c = env.c
    bystander = f"bystander-{mode}"  # a pod of its own that must keep running meanwhile
    c.apply(pod(bystander, f"{env.reg.host}/app/multi:1.0", container={"command": ["sleep", "3600"]}))
    wait_for(f"{bystander} running", lambda: running(c, bystander), 60)
    with fault_server(mode) as port:
        name = f"fault-{mode}"
        t0 = time.monotonic()
        c.apply(pod(name, f"127.0.0.1:{port}/app/x:1"))
        msg = wait_pull_error(c, name, timeout=40)
        took = time.monotonic() - t0
        assert f'Failed to pull image "127.0.0.1:{port}/app/x:1": ' in msg, msg
        if expect:
            assert expect in msg, msg
        else:  # the cluster's --image-pull-timeout (6 s) bounds a registry that never answers
            assert "timeout" in msg.lower() or "deadline" in msg.lower() or "no answer" in msg, msg
            assert took < 30
        # other pods are unaffected meanwhile
        assert running(c, bystander)


def test_an_agent_restarted_by_the_supervisor_still_pulls_from_the_machine(env: Env) -> None:
    c = env.c
    nodes = sorted(c.node_ips())
    for node in nodes:
        os.kill(c.journal_pid(f"agent-{node}"), signal.SIGKILL)
    olds = {n: c.journal_pid(f"agent-{n}") for n in nodes}
    wait_for("agents restarted", lambda: all(c.journal_pid(f"agent-{n}") != olds[n] for n in nodes), 30)
    wait_for("nodes Ready", lambda: all(c.node_ready(n) == "True" for n in nodes), 60)
    image = f"{env.reg.host}/app/multi:1.0"
    c.apply(pod("after-restart", image, container={"imagePullPolicy": "Always",
                                                   "command": ["sleep", "3600"]}))
    st = wait_for("pulled by a restarted agent", lambda: running(c, "after-restart"), 60)
    assert st["imageID"].startswith(f"{env.reg.host}/app/multi@sha256:")
    events = c.kubectl("get", "events", "--field-selector", "involvedObject.name=after-restart").stdout
    assert f'Successfully pulled image "{image}"' in events


def test_down_after_kill_9_removes_containers_and_keeps_the_image_store(env: Env) -> None:
    c = env.c
    pids = []
    for f in Path(c.state_dir).rglob("pid.json"):
        data = json.loads(f.read_text())
        if data.get("oci") and not (f.parent / "exit.json").exists():
            pids.append(int(data["pid"]))
    assert pids, "no real-image container is running"
    for node in c.node_ips():
        os.kill(c.journal_pid(f"agent-{node}"), signal.SIGKILL)
    c.podnet("down", "--name", c.name, timeout=120)
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline and any(Path(f"/proc/{p}").exists() for p in pids):
        time.sleep(0.1)
    assert not [p for p in pids if Path(f"/proc/{p}").exists()]
    assert not list(Path("/sys/fs/cgroup").glob(f"*/podnet-{c.name}"))
    names = {i["name"] for i in json.loads(c.podnet("image", "ls", "-o", "json").stdout)}
    assert f"{env.reg.host}/app/httpd:1.0" in names


def test_images_real_mode_has_no_stand_ins() -> None:
    """`podnet up --images real`: an image that is not there is refused with Kubernetes' reason even where
    podnet has a stand-in for it (nginx; imagePullPolicy Never: tests reach no registry outside this
    machine); `podnet up` chose the runtime (runc on this machine)."""
    with running_cluster("imgr", "--nodes", "1", "--images", "real") as c:
        c.apply(pod("web", "nginx:1.25", container={"imagePullPolicy": "Never"}))
        wait_for("ErrImageNeverPull", lambda: waiting_reason(c, "web")[0] == "ErrImageNeverPull", 60)
        _, msg = waiting_reason(c, "web")
        assert msg == 'Container image "nginx:1.25" is not present with pull policy of Never', msg
        events = c.kubectl("get", "events", "--field-selector", "involvedObject.name=web").stdout
        assert "BuiltinStandIn" not in events and "stand-in" not in events
        chosen = json.loads((Path(c.root) / "images" / "runtime.json").read_text())["choice"]
        assert chosen["name"] == "runc"  # what `podnet up` printed as "Container runtime: runc ..."
