"""`kubectl exec` (and the Python client's exec stream) through the API server to the node agent.

One 1-node cluster (`podnet up` in a private PODNET_STATE_ROOT) serves the module; an agnhost netexec
pod is the target. Nothing here sends network traffic beyond the API server and the node agent.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from typing import Any

import pytest

pytestmark = [
    pytest.mark.kernel,
    pytest.mark.e2e,
    pytest.mark.xdist_group("kubectl-exec-e2e"),
    pytest.mark.skipif(os.geteuid() != 0, reason="needs root: network namespaces and nftables"),
    pytest.mark.skipif(shutil.which("kubectl") is None, reason="kubectl is not installed"),
]

AGNHOST = "registry.k8s.io/e2e-test-images/agnhost:2.53"
POD = "exec-target"


class Cluster:
    def __init__(self, name: str, root: str):
        self.name = name
        self.root = root
        self.env = dict(os.environ, PODNET_STATE_ROOT=root)
        self.kubeconfig = f"{root}/clusters/{name}/kubeconfig"

    def podnet(self, *args: str, timeout: float = 120,
               check: bool = True) -> subprocess.CompletedProcess[str]:
        res = subprocess.run([sys.executable, "-m", "podnet.cli.main", *args], env=self.env,
                             capture_output=True, text=True, timeout=timeout)
        if check and res.returncode != 0:
            raise AssertionError(f"podnet {' '.join(args)} failed ({res.returncode}):\n"
                                 f"{res.stdout}\n{res.stderr}")
        return res

    def kubectl(self, *args: str, stdin: str | None = None, timeout: float = 30,
                check: bool = True) -> subprocess.CompletedProcess[str]:
        argv = ["kubectl", "--kubeconfig", self.kubeconfig, "--cache-dir", f"{self.root}/kcache", *args]
        res = subprocess.run(argv, input=stdin, capture_output=True, text=True, timeout=timeout,
                             stdin=None if stdin is not None else subprocess.DEVNULL)
        if check and res.returncode != 0:
            raise AssertionError(f"kubectl {' '.join(args)} failed ({res.returncode}):\n"
                                 f"{res.stdout}\n{res.stderr}")
        return res

    def wait_ready(self, name: str, timeout: float = 90) -> dict[str, Any]:
        deadline = time.monotonic() + timeout
        while True:
            res = self.kubectl("get", "pod", name, "-o", "json", check=False)
            if res.returncode == 0:
                pod = json.loads(res.stdout)
                conds = pod.get("status", {}).get("conditions", [])
                if any(c["type"] == "Ready" and c["status"] == "True" for c in conds):
                    return dict(pod)
            if time.monotonic() > deadline:
                raise AssertionError(f"pod {name} not Ready after {timeout}s:\n"
                                     + self.kubectl("get", "pods", "-A", "-o", "wide", check=False).stdout)
            time.sleep(0.5)


@pytest.fixture(scope="module")
def cluster() -> Iterator[Cluster]:
    root = tempfile.mkdtemp(prefix="pnexec")
    c = Cluster(f"ex{os.getpid() % 100000}", root)
    try:
        c.podnet("up", "--name", c.name, "--nodes", "1", timeout=180)
        manifest = {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": POD},
                    "spec": {"containers": [{"name": "agnhost", "image": AGNHOST, "args": ["netexec"]}]}}
        c.kubectl("apply", "-f", "-", stdin=json.dumps(manifest))
        c.wait_ready(POD)
        yield c
    finally:
        c.podnet("down", "--name", c.name, timeout=120, check=False)
        shutil.rmtree(root, ignore_errors=True)


def test_exec_prints_output_and_exits_with_the_commands_code(cluster: Cluster) -> None:
    res = cluster.kubectl("exec", POD, "--", "sh", "-c", "echo hi; exit 3", check=False)
    assert res.stdout == "hi\n"
    assert res.returncode == 3
    assert "command terminated with exit code 3" in res.stderr


def test_exec_runs_inside_the_pod(cluster: Cluster) -> None:
    res = cluster.kubectl("exec", POD, "--", "hostname")
    assert res.stdout.strip() == POD
    res = cluster.kubectl("exec", POD, "-c", "agnhost", "--", "sh", "-c", "echo out; echo err >&2")
    assert (res.stdout, res.stderr) == ("out\n", "err\n")


def test_exec_stdin_passes_through(cluster: Cluster) -> None:
    data = "line one\nline two\n" + "x" * 100_000 + "\n"
    res = cluster.kubectl("exec", "-i", POD, "--", "cat", stdin=data)
    assert res.returncode == 0
    assert res.stdout == data


def test_exec_errors_are_kubernetes_errors(cluster: Cluster) -> None:
    res = cluster.kubectl("exec", "nope", "--", "true", check=False)
    assert res.returncode == 1
    assert 'Error from server (NotFound): pods "nope" not found' in res.stderr
    res = cluster.kubectl("exec", POD, "-c", "zzz", "--", "true", check=False)
    assert res.returncode == 1
    assert f"container zzz is not valid for pod {POD}" in res.stderr
    pending = {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "exec-pending"},
               "spec": {"nodeSelector": {"podnet-test": "no-such-node"},
                        "containers": [{"name": "agnhost", "image": AGNHOST, "args": ["netexec"]}]}}
    cluster.kubectl("apply", "-f", "-", stdin=json.dumps(pending))
    res = cluster.kubectl("exec", "exec-pending", "--", "true", check=False)
    assert res.returncode == 1
    assert "Error from server (BadRequest): pod exec-pending does not have a host assigned" in res.stderr


def _spdy_kubectl(cluster: Cluster, *args: str, stdin: str | None = None,
                  timeout: float = 30) -> subprocess.CompletedProcess[str]:
    """kubectl with WebSockets off: a plain `Upgrade: SPDY/3.1` (client-go's SPDY executor)."""
    argv = ["kubectl", "--kubeconfig", cluster.kubeconfig, "--cache-dir", f"{cluster.root}/kcache", *args]
    return subprocess.run(argv, env=dict(os.environ, KUBECTL_REMOTE_COMMAND_WEBSOCKETS="false"),
                          input=stdin, capture_output=True, text=True, timeout=timeout,
                          stdin=None if stdin is not None else subprocess.DEVNULL)


def test_exec_over_plain_spdy_streams_and_exit_code(cluster: Cluster) -> None:
    res = _spdy_kubectl(cluster, "-v=6", "exec", POD, "--", "sh", "-c", "echo out; echo err >&2; exit 3")
    assert res.stdout == "out\n"
    assert res.stderr.count("err\n") == 1 and "command terminated with exit code 3" in res.stderr
    assert res.returncode == 3
    # it really went over SPDY: kubectl -v=6 logs the request it upgraded, and no WebSocket one
    assert "101 Switching Protocols" in res.stderr and "websocket" not in res.stderr.lower()


def test_exec_over_plain_spdy_passes_stdin(cluster: Cluster) -> None:
    data = "first\nsecond\n" + "y" * 200_000 + "\n"
    res = _spdy_kubectl(cluster, "exec", "-i", POD, "--", "sh", "-c", "cat; echo done >&2", stdin=data)
    assert (res.returncode, res.stderr) == (0, "done\n")
    assert res.stdout == data


def test_python_client_exec_stream(cluster: Cluster) -> None:
    kubernetes = pytest.importorskip("kubernetes")
    from kubernetes.stream import stream

    api_client = kubernetes.config.new_client_from_config(config_file=cluster.kubeconfig)
    try:
        core = kubernetes.client.CoreV1Api(api_client)
        resp = stream(core.connect_get_namespaced_pod_exec, POD, "default",
                      command=["sh", "-c", "echo from-python; exit 2"], stderr=True, stdin=False, stdout=True,
                      tty=False, _preload_content=False)
        resp.run_forever(timeout=20)
        assert resp.read_stdout() == "from-python\n"
        assert resp.returncode == 2
        resp.close()
    finally:
        api_client.close()


def test_exec_outlives_the_clients_websocket_heartbeat(cluster: Cluster) -> None:
    # kubectl pings every 5 s over the WebSocket; the proxy must answer and keep the stream open
    start = time.monotonic()
    res = cluster.kubectl("exec", POD, "--", "sh", "-c", "echo start; sleep 7; echo done")
    assert res.stdout == "start\ndone\n"
    assert time.monotonic() - start >= 7


@pytest.mark.parametrize("as_text", [True, False], ids=["text-frames", "binary-frames"])
def test_python_client_stdin_as_text_and_binary_frames(cluster: Cluster, as_text: bool) -> None:
    # the client sends stdin given as str in WebSocket TEXT frames, bytes in BINARY frames: both are stdin
    kubernetes = pytest.importorskip("kubernetes")
    from kubernetes.stream import stream

    api_client = kubernetes.config.new_client_from_config(config_file=cluster.kubeconfig)
    try:
        core = kubernetes.client.CoreV1Api(api_client)
        resp = stream(core.connect_get_namespaced_pod_exec, POD, "default",
                      command=["sh", "-c", "read x; echo got:$x"],
                      stderr=True, stdin=True, stdout=True, tty=False, _preload_content=False)
        line = "hello-from-stdin\n"
        resp.write_stdin(line if as_text else line.encode())
        deadline = time.monotonic() + 20
        out = ""
        while resp.is_open() and time.monotonic() < deadline and "got:" not in out:
            resp.update(timeout=1)
            out += resp.read_stdout() or ""
        assert out == "got:hello-from-stdin\n"
        resp.close()
    finally:
        api_client.close()


def _tmux(*args: str) -> str:
    return subprocess.run(["tmux", *args], capture_output=True, text=True, timeout=10).stdout


@pytest.mark.skipif(shutil.which("tmux") is None, reason="tmux is not installed")
@pytest.mark.parametrize("transport", ["websocket", "spdy"])
def test_exec_it_gives_an_interactive_terminal(cluster: Cluster, transport: str) -> None:
    session = f"pnexec{os.getpid()}{transport}"
    env = "KUBECTL_REMOTE_COMMAND_WEBSOCKETS=false " if transport == "spdy" else ""
    kubectl = (f"{env}kubectl --kubeconfig {cluster.kubeconfig} --cache-dir {cluster.root}/kcache "
               f"exec -it {POD} -- sh")
    _tmux("new-session", "-d", "-s", session, "-x", "100", "-y", "30",
          f"{kubectl}; echo KUBECTL-EXIT=$?; sleep 60")
    try:
        def screen() -> str:
            return _tmux("capture-pane", "-p", "-t", session)

        def wait_screen(text: str, timeout: float = 20) -> str:
            deadline = time.monotonic() + timeout
            while time.monotonic() < deadline:
                s = screen()
                if text in s:
                    return s
                time.sleep(0.2)
            raise AssertionError(f"{text!r} not on the screen:\n{screen()}")

        wait_screen("#")  # the shell's prompt: it runs on a terminal
        _tmux("send-keys", "-t", session, "tty; echo sum-$((40+2)); stty size", "Enter")
        wait_screen("sum-42")
        s = wait_screen(" 100\n")  # `stty size` prints "<rows> <columns>" after the sum
        assert "/dev/pts/" in s  # its stdin is a terminal
        assert "tty; echo sum-$((40+2)); stty size" in s  # what was typed is echoed by the terminal
        assert "30 100" in s or "29 100" in s  # kubectl sent the window's size
        _tmux("send-keys", "-t", session, "exit 3", "Enter")
        s = wait_screen("KUBECTL-EXIT=")
        assert "KUBECTL-EXIT=3" in s, s
    finally:
        _tmux("kill-session", "-t", session)
