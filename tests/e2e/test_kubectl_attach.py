"""`kubectl run -it --rm`, `kubectl attach` and the Python client's attach stream, with the real kubectl
driven through tmux (a real terminal: raw mode, window size) against a 1-node cluster.

The console is held by the container's shim; these tests see it the way a user does. Nothing here sends
network traffic beyond the API server and the node agent.
"""

from __future__ import annotations

import os
import random
import shutil
import subprocess
import time
from collections.abc import Iterator
from typing import Any

import pytest
from cluster_support import Cluster, running_cluster

pytestmark = [
    pytest.mark.kernel,
    pytest.mark.e2e,
    pytest.mark.xdist_group("kubectl-attach-e2e"),
    pytest.mark.skipif(os.geteuid() != 0, reason="needs root: network namespaces and nftables"),
    pytest.mark.skipif(shutil.which("kubectl") is None, reason="kubectl is not installed"),
    pytest.mark.skipif(shutil.which("tmux") is None, reason="tmux is not installed"),
]

PROMPT_HINT = "If you don't see a command prompt, try pressing enter."


def pod(name: str, command: list[str], **container: Any) -> dict[str, Any]:
    return {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": name},
            "spec": {"terminationGracePeriodSeconds": 1,
                     "containers": [{"name": name[:8], "image": "busybox", "command": command, **container}]}}


@pytest.fixture(scope="module")
def cluster() -> Iterator[Cluster]:
    with running_cluster("att", "--nodes", "1") as c:
        c.apply({"apiVersion": "v1", "kind": "List", "items": [
            pod("shell", ["sh"], stdin=True, tty=True),
            pod("ticker", ["sh", "-c", "i=0; while :; do i=$((i+1)); echo tick-$i; sleep 0.3; done"]),
        ]})
        for name in ("shell", "ticker"):
            c.kubectl("wait", "--for=condition=Ready", f"pod/{name}", "--timeout=90s", timeout=100)
        yield c


class Terminal:
    """One tmux session running a command in a 100x30 terminal."""

    def __init__(self, name: str, command: str):
        self.name = f"{name}{os.getpid()}"
        self.tmux("new-session", "-d", "-s", self.name, "-x", "100", "-y", "30",
                  f"{command}; echo KUBECTL-EXIT=$?; sleep 60")

    @staticmethod
    def tmux(*args: str) -> str:
        return subprocess.run(["tmux", *args], capture_output=True, text=True, timeout=10).stdout

    def screen(self) -> str:
        return self.tmux("capture-pane", "-p", "-J", "-S", "-200", "-t", self.name)

    def wait_for(self, text: str, timeout: float = 30) -> str:
        deadline = time.monotonic() + timeout
        while True:
            s = self.screen()
            if text in s:
                return s
            if time.monotonic() > deadline:
                raise AssertionError(f"{text!r} not on the screen after {timeout}s:\n{s}")
            time.sleep(0.1)

    def type(self, line: str) -> None:
        self.tmux("send-keys", "-t", self.name, line, "Enter")

    def close(self) -> None:
        self.tmux("kill-session", "-t", self.name)


def kubectl_line(c: Cluster) -> str:
    return f"kubectl --kubeconfig {c.kubeconfig} --cache-dir {c.root}/kcache"


def test_run_it_rm_gives_a_shell_then_deletes_the_pod_and_returns_its_exit_code(cluster: Cluster) -> None:
    n = random.randrange(10_000, 99_999)
    start = time.monotonic()
    t = Terminal("pnrun", f"{kubectl_line(cluster)} run tmp --image=busybox --rm -it --restart=Never -- sh")
    try:
        t.wait_for(PROMPT_HINT)
        attached = time.monotonic() - start
        t.type(f"echo hi-$(({n}+1)); stty size")
        s = t.wait_for(f"hi-{n + 1}\n")  # the shell's answer, not the echo of what was typed
        t.wait_for("30 100")  # kubectl's terminal size reached the container's terminal
        spec = cluster.get_json("pod", "tmp")["spec"]["containers"][0]
        assert (spec.get("stdin"), spec.get("stdinOnce"), spec.get("tty")) == (True, True, True)
        typed_exit = time.monotonic()
        t.type("exit 3")
        s = t.wait_for("KUBECTL-EXIT=")
        ended = time.monotonic() - typed_exit
        assert 'pod "tmp" deleted' in s, s
        assert "pod default/tmp terminated (Error)" in s, s
        assert "KUBECTL-EXIT=3" in s, s  # kubectl run returns the container's exit code
        print(f"\nkubectl run -it: attached {attached:.2f}s after start; exit -> kubectl done {ended:.2f}s")
    finally:
        t.close()
    deadline = time.monotonic() + 30
    while cluster.kubectl("get", "pod", "tmp", check=False).returncode == 0:
        assert time.monotonic() < deadline, "pod tmp is still there"
        time.sleep(0.2)


# kubectl 1.32 attaches over WebSocket; with KUBECTL_REMOTE_COMMAND_WEBSOCKETS=false it sends a plain
# `Upgrade: SPDY/3.1` (client-go's SPDY executor, as older kubectl and clients do)
SPDY_ENV = "KUBECTL_REMOTE_COMMAND_WEBSOCKETS=false"


@pytest.mark.parametrize("transport", ["websocket", "spdy"])
def test_attach_to_a_running_shell_keeps_its_state_between_sessions(cluster: Cluster, transport: str) -> None:
    env = f"{SPDY_ENV} " if transport == "spdy" else ""
    t = Terminal("pnatt", f"{env}{kubectl_line(cluster)} attach -it shell")
    try:
        t.wait_for(PROMPT_HINT)
        t.type("X=state-$((20+22)); tty")
        t.wait_for("/dev/pts/")
    finally:
        t.close()  # kubectl goes away; the shell stays (no stdinOnce)
    time.sleep(0.5)
    assert cluster.get_json("pod", "shell")["status"]["phase"] == "Running"
    t = Terminal("pnatt2", f"{env}{kubectl_line(cluster)} attach -it shell")
    try:
        t.wait_for(PROMPT_HINT)
        t.type(f"echo got-$X-{transport}")
        t.wait_for(f"got-state-42-{transport}")
    finally:
        t.close()


def test_attach_over_plain_spdy_streams_output(cluster: Cluster) -> None:
    argv = ["kubectl", "--kubeconfig", cluster.kubeconfig, "--cache-dir", f"{cluster.root}/kcache", "-v=6",
            "attach", "ticker"]
    proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True, env=dict(os.environ, KUBECTL_REMOTE_COMMAND_WEBSOCKETS="false"))
    try:
        assert_ticks_follow(proc)
    finally:
        proc.kill()
        _, err = proc.communicate(timeout=10)
    # it really went over SPDY: kubectl -v=6 logs the upgraded request, and no WebSocket one
    assert "/attach?" in err and "101 Switching Protocols" in err, err
    assert "websocket" not in err.lower(), err


def assert_ticks_follow(proc: subprocess.Popen[str]) -> None:
    """The ticker container's output reaches kubectl: two consecutive ticks."""
    assert proc.stdout is not None
    first = proc.stdout.readline()
    assert first.startswith("tick-"), first
    second = proc.stdout.readline()
    assert int(second.split("-")[1]) == int(first.split("-")[1]) + 1


def test_attach_to_a_container_without_stdin_or_tty_streams_its_output(cluster: Cluster) -> None:
    argv = ["kubectl", "--kubeconfig", cluster.kubeconfig, "--cache-dir", f"{cluster.root}/kcache",
            "attach", "-it", "ticker"]
    proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True)
    try:
        assert_ticks_follow(proc)  # output arrives, though kubectl's stdin ended at once
    finally:
        proc.kill()
        _, err = proc.communicate(timeout=10)
    # kubectl's own words, from the pod's spec: the container has no terminal
    assert "error: Unable to use a TTY - container ticker did not allocate one" in err, err


def test_attach_errors(cluster: Cluster) -> None:
    res = cluster.kubectl("attach", "nope", check=False)
    assert (res.returncode, res.stderr.strip()) == (1, 'Error from server (NotFound): pods "nope" not found')
    finished = pod("finished", ["true"])
    finished["spec"]["restartPolicy"] = "Never"
    cluster.apply(finished)
    cluster.kubectl("wait", "--for=jsonpath={.status.phase}=Succeeded", "pod/finished", "--timeout=60s",
                    timeout=70)
    res = cluster.kubectl("attach", "finished", check=False)
    assert res.returncode == 1
    assert "cannot attach a container in a completed pod; current phase is Succeeded" in res.stderr


def test_python_client_attach_stream(cluster: Cluster) -> None:
    kubernetes = pytest.importorskip("kubernetes")
    from kubernetes.client.rest import ApiException
    from kubernetes.stream import stream

    api_client = kubernetes.config.new_client_from_config(config_file=cluster.kubeconfig)
    try:
        core = kubernetes.client.CoreV1Api(api_client)
        resp = stream(core.connect_get_namespaced_pod_attach, "shell", "default", stdin=True, stdout=True,
                      stderr=False, tty=True, _preload_content=False)
        resp.write_stdin("echo py-$((6*7))\n")  # a str: a TEXT frame
        out = ""
        deadline = time.monotonic() + 20
        while "py-42\r\n" not in out and time.monotonic() < deadline:
            resp.update(timeout=1)
            out += resp.read_stdout() or ""
        assert "py-42\r\n" in out, out
        resp.close()
        with pytest.raises(ApiException) as e:
            stream(core.connect_get_namespaced_pod_attach, "shell", "default", container="zzz", stdin=False,
                   stdout=True, stderr=True, tty=False, _preload_content=False)
        assert "container zzz is not valid for pod shell" in str(e.value.body or e.value)
    finally:
        api_client.close()
