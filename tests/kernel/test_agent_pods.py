"""The node agent as a real process in a node network namespace, against podnet's API server.

Topology (all in scratch namespaces, nothing in the host namespace but the API's unix socket):
  <tag>-h  "host" namespace holding the node bridge
  pn-<cluster>-node-1  the node: eth0 on the bridge, the agent runs here (`ip netns exec`)
  pn-<cluster>-pod-<uid>  one per pod, made by the agent
Traffic flows only between pod namespaces of this node.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import secrets
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from podnet.api.auth import node_authorizer
from podnet.api.server import APIServer
from podnet.client.client import ApiClient, ApiError
from podnet.core import naming
from podnet.core.journal import Journal
from podnet.core.tls import ensure_ca_and_cert, ensure_kubelet_client_cert
from podnet.model.kinds import CONFIGMAPS, EVENTS, NODES, PODS, SERVICEACCOUNTS
from podnet.net.nodenet import setup_node_netns
from podnet.net.real import RealNetOps
from podnet.store.memory import MemoryStore

pytestmark = [
    pytest.mark.kernel,
    pytest.mark.skipif(os.geteuid() != 0, reason="needs root for network namespaces"),
    pytest.mark.skipif(shutil.which("ip") is None or shutil.which("nsenter") is None,
                       reason="needs ip and nsenter"),
]

Obj = dict[str, Any]
TOKEN = "agent-test-token"
AGNHOST = "registry.k8s.io/e2e-test-images/agnhost:2.53"


@dataclass
class Env:
    root: Path
    cluster: str
    node: str
    node_ns: str
    node_ip: str
    state_dir: Path
    client: ApiClient
    agent: subprocess.Popen[bytes]
    log: Path
    start_agent: Callable[[], subprocess.Popen[bytes]]


async def wait_for(what: str, fn: Callable[[], Awaitable[Any]], timeout: float = 20.0,
                   env: Env | None = None) -> Any:
    deadline = time.monotonic() + timeout
    last: Any = None
    while time.monotonic() < deadline:
        try:
            last = await fn()
        except ApiError as e:
            last = e
        else:
            if last:
                return last
        await asyncio.sleep(0.1)
    if env is not None and env.agent.poll() is None:
        os.kill(env.agent.pid, signal.SIGUSR1)  # the agent dumps its threads' stacks into its log
        await asyncio.sleep(0.5)
    tail = env.log.read_text()[-6000:] if env is not None and env.log.exists() else ""
    rc = env.agent.poll() if env is not None else None
    raise AssertionError(f"timed out waiting for {what}; last={last!r}; agent exit code {rc}\n"
                         f"agent log tail:\n{tail}")


def kill_journaled(state_dir: Path) -> None:
    """Remove what the agent recorded: container process groups and pod namespaces."""
    j = Journal(state_dir)
    for e in j.entries("process"):
        pid = e.attrs.get("pid")
        if pid:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(int(pid), signal.SIGKILL)
    for e in j.entries("netns"):
        subprocess.run(["ip", "netns", "del", e.name], capture_output=True, check=False)


@pytest.fixture
async def env(tmp_path: Path) -> AsyncIterator[Env]:
    tag = f"ka{os.getpid() % 100000}{secrets.token_hex(2)}"
    cluster = tag
    node = naming.node_name(cluster, 1)
    host_ns = f"{tag}-h"
    node_ns = naming.node_netns(cluster, node)
    bridge = "br" + tag[-8:]
    node_ip = "172.31.250.11"
    root = tmp_path / "root"
    state_dir = root / "clusters" / cluster
    state_dir.mkdir(parents=True)
    sock = str(state_dir / "api.sock")  # where the CLI looks for it
    ops = RealNetOps()
    server = APIServer(MemoryStore(), tokens=[TOKEN])
    # the cluster CA signs the node's serving certificate (through the API) and the API server's
    # client certificate for the node endpoint, as in a cluster that `podnet up` made
    ensure_ca_and_cert(state_dir, [])
    ensure_kubelet_client_cert(state_dir)
    server.authorizer = node_authorizer(state_dir, server.registry)
    await server.bootstrap()
    port = await server.start("127.0.0.1", 0, unix_path=sock)
    (state_dir / "config.json").write_text(json.dumps({
        "name": cluster, "network": "host-gw", "api_port": port, "token": TOKEN,
        "node_network": "172.31.250.0/24"}))
    client = ApiClient(f"unix://{sock}", TOKEN)
    # what kube-controller-manager's ServiceAccount and root-CA publisher controllers make in every
    # namespace of a cluster `podnet up` made: every pod mounts its ServiceAccount's token and the CA
    await client.create(SERVICEACCOUNTS, {"metadata": {"name": "default", "namespace": "default"}})
    await client.create(CONFIGMAPS, {"metadata": {"name": "kube-root-ca.crt", "namespace": "default"},
                                     "data": {"ca.crt": (state_dir / "ca.crt").read_text()}})
    log = tmp_path / "agent.log"
    procs: list[subprocess.Popen[bytes]] = []

    def start_agent() -> subprocess.Popen[bytes]:
        argv = ["ip", "netns", "exec", node_ns, sys.executable, "-m", "podnet.cli.main", "agent",
                "--name", cluster, "--node-name", node, "--node-ip", node_ip, "--server", f"unix://{sock}",
                "--state-dir", str(state_dir), "--no-proxy"]
        with open(log, "ab") as out:
            p = subprocess.Popen(argv, stdout=out, stderr=subprocess.STDOUT, start_new_session=True,
                                 env=dict(os.environ, PODNET_API_TOKEN=TOKEN))
        procs.append(p)
        return p

    try:
        def build() -> None:  # pyroute2 must not run on the event loop's thread
            ops.netns_add(host_ns)
            ops.bridge_add(bridge, netns=host_ns)
            ops.link_set(bridge, netns=host_ns, up=True)
            setup_node_netns(ops, netns=node_ns, host_if="v" + tag[-10:], bridge=bridge,
                             node_ip_cidr=f"{node_ip}/24", host_netns=host_ns)

        await asyncio.to_thread(build)
        agent = start_agent()

        async def node_registered() -> bool:
            try:
                await client.get(NODES, node)
                return True
            except ApiError:
                return False

        e = Env(root, cluster, node, node_ns, node_ip, state_dir, client, agent, log, start_agent)
        await wait_for("node registration", node_registered, env=e)
        await client.patch(NODES, node, {"spec": {"podCIDR": "10.244.7.0/24", "podCIDRs": ["10.244.7.0/24"]}})

        async def node_ready() -> bool:
            n = await client.get(NODES, node)
            return any(c["type"] == "Ready" and c["status"] == "True" for c in n["status"]["conditions"])

        await wait_for("node Ready", node_ready, env=e)
        yield e
    finally:
        for p in procs:
            if p.poll() is None:
                os.killpg(p.pid, signal.SIGKILL)
                p.wait()
        kill_journaled(state_dir)
        for ns in (node_ns, host_ns):
            subprocess.run(["ip", "netns", "del", ns], capture_output=True, check=False)
        await client.close()
        await server.stop()


def pod(name: str, node: str, containers: list[Obj], **spec: Any) -> Obj:
    return {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": name, "namespace": "default"},
            "spec": {"nodeName": node, "containers": containers, **spec}}


async def get_pod(env: Env, name: str) -> Obj:
    return await env.client.get(PODS, name, "default")


async def ready_pod(env: Env, name: str) -> Obj | None:
    """The pod when its Ready condition is True, else None (a `wait_for` probe)."""
    p = await get_pod(env, name)
    return p if cond(p, "Ready") == "True" else None


def cond(p: Obj, ctype: str) -> str:
    for c in (p.get("status") or {}).get("conditions") or []:
        if c["type"] == ctype:
            return str(c["status"])
    return ""


def in_netns(ns: str, *cmd: str, timeout: float = 10) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["ip", "netns", "exec", ns, *cmd], capture_output=True, text=True, timeout=timeout,
                          check=False)


async def podnet(env: Env, *args: str) -> subprocess.CompletedProcess[str]:
    """The `podnet` CLI as a user runs it (async: the API server lives on this test's event loop)."""
    cli = str(Path(sys.executable).with_name("podnet"))
    argv = [cli, args[0], "--name", env.cluster, *args[1:]]
    proc = await asyncio.create_subprocess_exec(*argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                                env={**os.environ, "PODNET_STATE_ROOT": str(env.root)})
    try:
        out, err = await asyncio.wait_for(proc.communicate(), 30)
    finally:
        if proc.returncode is None:
            proc.kill()
            await proc.wait()
    return subprocess.CompletedProcess(argv, int(proc.returncode or 0), out.decode(), err.decode())


def container_pid(env: Env, p: Obj, container: str) -> int:
    uid = p["metadata"]["uid"]
    cdir = env.state_dir / "nodes" / env.node / "pods" / uid / "containers" / container
    attempt = max(int(d.name) for d in cdir.iterdir() if d.name.isdigit())
    return int(json.loads((cdir / str(attempt) / "pid.json").read_text())["pid"])


async def test_pod_runs_serves_restarts_and_probes(env: Env) -> None:
    c = env.client
    server = {"name": "web", "image": AGNHOST, "args": ["netexec", "--http-port=8080", "--udp-port=-1"],
              "ports": [{"containerPort": 8080, "name": "http"}],
              "readinessProbe": {"httpGet": {"path": "/healthz", "port": "http"}, "periodSeconds": 1}}
    client_c = {"name": "sleeper", "image": "busybox", "command": ["sleep", "300"]}
    unready = {"name": "never-ready", "image": "busybox", "command": ["sleep", "300"],
               "readinessProbe": {"tcpSocket": {"port": 9999}, "periodSeconds": 1, "failureThreshold": 1}}
    await c.create(PODS, pod("server", env.node, [server]))
    await c.create(PODS, pod("client", env.node, [client_c]))
    await c.create(PODS, pod("unready", env.node, [unready]))

    srv = await wait_for("server Ready", lambda: ready_pod(env, "server"), env=env)
    cli = await wait_for("client Ready", lambda: ready_pod(env, "client"), env=env)
    st = srv["status"]
    assert st["phase"] == "Running" and st["hostIP"] == env.node_ip and st["qosClass"] == "BestEffort"
    assert st["podIP"].startswith("10.244.7.") and st["podIPs"] == [{"ip": st["podIP"]}]
    assert cli["status"]["podIP"] != st["podIP"]
    cs = st["containerStatuses"][0]
    assert cs["ready"] is True and cs["restartCount"] == 0 and "running" in cs["state"]
    types = {x["type"] for x in st["conditions"]}
    assert types >= {"PodScheduled", "Initialized", "ContainersReady", "Ready"}

    # kubelet-style events tell the story in `kubectl describe pod`
    evs = (await c.list(EVENTS, "default"))["items"]
    mine = [(e["reason"], e["message"]) for e in evs if e["involvedObject"]["name"] == "server"]
    assert ("Started", "Started container web") in mine and ("Created", "Created container: web") in mine

    # pod -> pod on the node: agnhost answers with its hostname, the pod name
    client_ns = naming.pod_netns(env.cluster, cli["metadata"]["uid"])
    r = in_netns(client_ns, "curl", "-sS", "--max-time", "5", f"http://{st['podIP']}:8080/hostname")
    assert (r.returncode, r.stdout) == (0, "server"), r.stderr
    r = in_netns(client_ns, "curl", "-sS", "--max-time", "5", f"http://{st['podIP']}:8080/clientip")
    assert r.stdout.rsplit(":", 1)[0] == cli["status"]["podIP"]  # no NAT between pods

    # the CLI: exec in a pod (its hostname, resolv.conf and env), curl from a pod, node-exec, refusals
    r = await podnet(env, "exec", "client", "--", "hostname")
    assert r.stdout == "client\n", (r.returncode, r.stderr)
    resolv = (await podnet(env, "exec", "client", "--", "cat", "/etc/resolv.conf")).stdout
    assert "nameserver 10.96.0.10" in resolv and "search default.svc.cluster.local" in resolv
    assert "HOSTNAME=client" in (await podnet(env, "exec", "client", "--", "env")).stdout
    r = await podnet(env, "curl", "--from", "client", f"http://{st['podIP']}:8080/echo?msg=hi")
    assert (r.returncode, r.stdout) == (0, "HTTP 200\nhi\n"), r.stderr
    r = await podnet(env, "node-exec", "node-1", "--", "ip", "-4", "-o", "addr", "show", "eth0")
    assert env.node_ip in r.stdout
    r = await podnet(env, "curl", f"http://{st['podIP']}:8080/hostname")
    assert r.returncode == 1 and f"{st['podIP']} is in the pod CIDR 10.244.0.0/16" in r.stderr
    r = await podnet(env, "exec", "nope", "--", "true")
    assert r.returncode == 1 and r.stderr == 'error: pods "nope" not found in namespace "default"\n'

    # the failing readiness probe keeps its pod Running but not Ready
    await asyncio.sleep(2.5)
    un = await get_pod(env, "unready")
    assert un["status"]["phase"] == "Running"
    assert cond(un, "Ready") == "False" and cond(un, "ContainersReady") == "False"
    assert un["status"]["containerStatuses"][0]["ready"] is False

    # kill -9 of the container: restarted at once (first restart has no back-off), restartCount 1
    pid = container_pid(env, srv, "web")
    os.kill(pid, signal.SIGKILL)

    async def restarted() -> Obj | None:
        p = await get_pod(env, "server")
        s = p["status"]["containerStatuses"][0]
        return p if s["restartCount"] == 1 and s["ready"] and "running" in s["state"] else None

    after = await wait_for("restartCount 1", restarted, env=env)
    last = after["status"]["containerStatuses"][0]["lastState"]["terminated"]
    assert last["exitCode"] == 137 and last["reason"] == "Error" and last["signal"] == 9
    assert after["status"]["podIP"] == st["podIP"]
    r = in_netns(client_ns, "curl", "-sS", "--max-time", "5", f"http://{st['podIP']}:8080/hostname")
    assert r.stdout == "server"

    # graceful delete: the agent stops the containers, removes the namespace and finishes the delete
    server_ns = naming.pod_netns(env.cluster, srv["metadata"]["uid"])
    await c.delete(PODS, "server", "default")

    async def gone() -> bool:
        try:
            await get_pod(env, "server")
            return False
        except ApiError as e:
            return e.code == 404

    await wait_for("pod deleted", gone, env=env)
    assert not Path(f"/run/netns/{server_ns}").exists()


async def test_agent_restart_adopts_running_pods_and_serves_logs(env: Env) -> None:
    c = env.client
    web = {"name": "web", "image": AGNHOST, "args": ["netexec", "--http-port=8080", "--udp-port=-1"]}
    await c.create(PODS, pod("keeper", env.node, [web]))
    sleeper = {"name": "c", "image": "busybox", "command": ["sleep", "300"]}
    await c.create(PODS, pod("caller", env.node, [sleeper]))
    missing = {"name": "app", "image": "quay.io/example/not-built-in:1.0"}
    await c.create(PODS, pod("no-image", env.node, [missing]))

    keeper = await wait_for("keeper Ready", lambda: ready_pod(env, "keeper"), env=env)
    caller = await wait_for("caller Ready", lambda: ready_pod(env, "caller"), env=env)
    ip = keeper["status"]["podIP"]
    pid = container_pid(env, keeper, "web")
    caller_ns = naming.pod_netns(env.cluster, caller["metadata"]["uid"])

    # an image that is not built in, without a command: ErrImagePull naming the built-in images
    async def pull_error() -> Obj | None:
        p = await get_pod(env, "no-image")
        cs = (p.get("status") or {}).get("containerStatuses") or [{}]
        return p if cs[0].get("state", {}).get("waiting", {}).get("reason") == "ErrImagePull" else None

    p = await wait_for("ErrImagePull", pull_error, env=env)
    assert p["status"]["phase"] == "Pending"
    msg = p["status"]["containerStatuses"][0]["state"]["waiting"]["message"]
    assert 'Failed to pull image "quay.io/example/not-built-in:1.0"' in msg
    assert "registry.k8s.io/e2e-test-images/agnhost" in msg

    # logs through the kubelet endpoint on the node IP (from inside the node namespace)
    async def logged() -> str:
        r = in_netns(env.node_ns, "curl", "-sS", "--max-time", "5", "--cacert", str(env.state_dir / "ca.crt"),
                     "--cert", str(env.state_dir / "apiserver-kubelet-client.crt"),
                     "--key", str(env.state_dir / "apiserver-kubelet-client.key"),
                     f"https://{env.node_ip}:10250/containerLogs/default/keeper/web?tailLines=5")
        return r.stdout if "Started HTTP server on port 8080" in r.stdout else ""

    assert (await wait_for("log line", logged, env=env)) == "Started HTTP server on port 8080\n"

    # the agent dies hard: the container keeps running and serving
    os.killpg(env.agent.pid, signal.SIGKILL)
    env.agent.wait()
    os.kill(pid, 0)
    r = in_netns(caller_ns, "curl", "-sS", "--max-time", "5", f"http://{ip}:8080/hostname")
    assert r.stdout == "keeper"

    # a new agent adopts it: same process, same IP, no restart
    env.agent = env.start_agent()

    async def adopted() -> bool:
        text = env.log.read_text()
        return "pod default/keeper container web: adopted running process" in text

    await wait_for("adoption", adopted, env=env)
    await asyncio.sleep(1.0)
    again = await get_pod(env, "keeper")
    cs = again["status"]["containerStatuses"][0]
    assert cs["restartCount"] == 0 and "running" in cs["state"] and again["status"]["podIP"] == ip
    assert container_pid(env, again, "web") == pid
    r = in_netns(caller_ns, "curl", "-sS", "--max-time", "5", f"http://{ip}:8080/hostname")
    assert r.stdout == "keeper"

    # the adopted process is watched although it is not the new agent's child
    os.kill(pid, signal.SIGKILL)

    async def restarted() -> Obj | None:
        p = await get_pod(env, "keeper")
        s = p["status"]["containerStatuses"][0]
        return p if s["restartCount"] == 1 and "running" in s["state"] else None

    await wait_for("restart after adoption", restarted, env=env)
