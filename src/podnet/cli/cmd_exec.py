"""`podnet exec`, `podnet node-exec`, `podnet curl`: run things inside a pod or a node, or from outside."""

from __future__ import annotations

import argparse
import asyncio
import ipaddress
import os
import subprocess
import sys
from urllib.parse import urlsplit

from podnet.cli.main import CLIError
from podnet.core.config import ClusterConfig
from podnet.model.kinds import Obj

CURL_TIMEOUT = 10


def register(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    from podnet.cli.common import add_name_flag

    p = sub.add_parser("exec", help="run a command inside a pod's network and mount namespaces",
                       description="Run CMD inside POD (its network, mount and UTS namespaces, with the "
                       "container's environment); stdin, stdout and the exit code pass through.")
    add_name_flag(p)
    p.add_argument("pod", metavar="POD")
    p.add_argument("-n", "--namespace", default="default")
    p.add_argument("-c", "--container", default="", help="container name (default: the first)")
    p.add_argument("cmd", nargs=argparse.REMAINDER, metavar="-- CMD...")
    p.set_defaults(func=run_exec)

    n = sub.add_parser("node-exec", help="run a command inside a node's network namespace")
    add_name_flag(n)
    n.add_argument("node", metavar="NODE", help="node name (e.g. podnet-node-1 or node-1)")
    n.add_argument("cmd", nargs=argparse.REMAINDER, metavar="-- CMD...")
    n.set_defaults(func=run_node_exec)

    c = sub.add_parser("curl", help="HTTP GET from a pod, a node or outside the cluster",
                       description="An HTTP GET with curl from inside a pod or a node, or from this host "
                       "('outside': only node IPs and LoadBalancer IPs on the node network).")
    add_name_flag(c)
    c.add_argument("--from", dest="source", default="outside", metavar="POD|NODE|outside")
    c.add_argument("-n", "--namespace", default="default", help="namespace of the --from pod")
    c.add_argument("url", metavar="URL")
    c.set_defaults(func=run_curl)


def _cmd(args: argparse.Namespace) -> list[str]:
    cmd = list(args.cmd)
    if cmd and cmd[0] == "--":
        cmd = cmd[1:]
    if not cmd:
        raise CLIError("no command given: put it after --, e.g. `podnet exec web -- ip addr`")
    return cmd


# ---- lookups -------------------------------------------------------------------
def _get(cfg: ClusterConfig, rt_name: str, name: str, namespace: str | None = None) -> Obj:
    from podnet.cli.common import client_for
    from podnet.client.client import ApiError
    from podnet.model import kinds

    rt = kinds.PODS if rt_name == "pods" else kinds.NODES

    async def go() -> Obj:
        async with client_for(cfg) as client:
            return await client.get(rt, name, namespace)

    try:
        return asyncio.run(go())
    except ApiError as e:
        if e.code == 404:
            where = f' in namespace "{namespace}"' if namespace else ""
            raise CLIError(f'{rt_name} "{name}" not found{where}') from None
        raise CLIError(f"API error: {e}") from None
    except OSError as e:
        raise CLIError(f"cannot reach the API server of cluster: {e}") from None


def pod_target(cfg: ClusterConfig, pod_name: str, namespace: str, container: str) -> tuple[int, str]:
    """(container PID, container name) of a running container of a pod."""
    from podnet.agent.podstate import find_container_pid

    pod = _get(cfg, "pods", pod_name, namespace)
    spec: Obj = pod.get("spec") or {}
    meta: Obj = pod.get("metadata") or {}
    names = [str(c.get("name")) for c in spec.get("containers") or []]
    if not container:
        container = names[0] if names else ""
        if len(names) > 1:
            print(f'Defaulted container "{container}" out of: {", ".join(names)}', file=sys.stderr)
    elif container not in names:
        raise CLIError(f"container {container} is not valid for pod {pod_name}: "
                       f"choose one of: [{' '.join(names)}]")
    node = str(spec.get("nodeName") or "")
    if not node:
        raise CLIError(f'pod "{pod_name}" is not scheduled to a node yet')
    pid = find_container_pid(cfg.state_dir, node, str(meta.get("uid")), container)
    if pid is None:
        state = ""
        for cs in (pod.get("status") or {}).get("containerStatuses") or []:
            if cs.get("name") == container:
                st = cs.get("state") or {}
                state = next(iter(st), "")
                reason = (st.get(state) or {}).get("reason", "")
                state = f" ({state}{': ' + reason if reason else ''})"
        raise CLIError(f'container "{container}" in pod "{pod_name}" is not running{state}')
    return pid, container


def node_netns_for(cfg: ClusterConfig, node: str) -> str:
    from podnet.core import naming

    cluster = cfg.name
    for candidate in (node, f"{cluster}-{node}"):
        ns = naming.node_netns(cluster, candidate)
        if os.path.exists(f"/run/netns/{ns}"):
            return ns
    raise CLIError(f'node "{node}" not found in cluster "{cluster}" (no network namespace '
                   f'{naming.node_netns(cluster, node)!r}); see `podnet status --name {cluster}`')


def in_pod_argv(pid: int, cmd: list[str]) -> list[str]:
    from podnet.agent.nsexec import nsenter_argv

    return nsenter_argv(pid, cmd)


def in_node_argv(netns: str, cmd: list[str]) -> list[str]:
    return ["nsenter", f"--net=/run/netns/{netns}", "--", *cmd]


def _run(argv: list[str], env: dict[str, str] | None = None) -> int:
    try:
        return subprocess.run(argv, env=env, check=False).returncode
    except FileNotFoundError as e:
        raise CLIError(f"cannot run {argv[0]!r}: {e.strerror}") from None


# ---- commands ---------------------------------------------------------------------
def run_exec(args: argparse.Namespace) -> int:
    from podnet.agent.nsexec import container_environ
    from podnet.cli.common import load_config

    cmd = _cmd(args)
    cfg = load_config(args.name)
    pid, _ = pod_target(cfg, args.pod, args.namespace, args.container)
    env = container_environ(pid) or None
    return _run(in_pod_argv(pid, cmd), env)


def run_node_exec(args: argparse.Namespace) -> int:
    from podnet.cli.common import load_config

    cmd = _cmd(args)
    cfg = load_config(args.name)
    return _run(in_node_argv(node_netns_for(cfg, args.node), cmd))


def check_outside_target(url: str, *, node_network: str, pod_cidr: str, service_cidr: str) -> None:
    """Refuse URLs the host must not send to: only IPs on the node network (node and LB IPs) are allowed."""
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https"):
        raise CLIError(f"URL {url!r} must start with http:// or https://")
    host = parts.hostname or ""
    try:
        ip = ipaddress.ip_address(host)
    except ValueError:
        raise CLIError(f"from outside, the URL must name an IP on the node network "
                       f"({node_network or 'unset'}), not {host!r}: names resolve with the cluster DNS "
                       "only inside pods") from None
    for cidr, what in ((pod_cidr, "pod"), (service_cidr, "service")):
        if cidr and ip in ipaddress.ip_network(cidr, strict=False):
            raise CLIError(f"{ip} is in the {what} CIDR {cidr}: it is reachable only inside the cluster. "
                           f"Use --from POD or --from NODE, or a NodePort/LoadBalancer address on the node "
                           f"network {node_network}")
    if not node_network or ip not in ipaddress.ip_network(node_network, strict=False):
        raise CLIError(f"{ip} is not on the cluster's node network {node_network or '(unset)'}: from "
                       "outside, podnet sends only to node IPs and LoadBalancer IPs on that network")


def curl_argv(url: str) -> list[str]:
    return ["curl", "-sS", "--max-time", str(CURL_TIMEOUT), "-w", "\n%{http_code}", url]


def print_curl_result(proc: subprocess.CompletedProcess[str]) -> int:
    if proc.returncode != 0:
        sys.stderr.write(proc.stderr)
        return proc.returncode
    body, _, code = proc.stdout.rpartition("\n")
    print(f"HTTP {code}")
    sys.stdout.write(body if body.endswith("\n") or not body else body + "\n")
    return 0 if code.startswith(("2", "3")) else 1


def run_curl(args: argparse.Namespace) -> int:
    from podnet.cli.common import load_config

    cfg = load_config(args.name)
    source = args.source
    if source == "outside":
        check_outside_target(args.url, node_network=cfg.node_network, pod_cidr=cfg.pod_cidr,
                             service_cidr=cfg.service_cidr)
        argv = curl_argv(args.url)
    else:
        try:
            argv = in_node_argv(node_netns_for(cfg, source), curl_argv(args.url))
        except CLIError:
            pid, _ = pod_target(cfg, source, args.namespace, "")
            argv = in_pod_argv(pid, curl_argv(args.url))
    try:
        proc = subprocess.run(argv, capture_output=True, text=True, check=False, timeout=CURL_TIMEOUT + 5)
    except FileNotFoundError as e:
        raise CLIError(f"cannot run {argv[0]!r}: {e.strerror}") from None
    except subprocess.TimeoutExpired:
        raise CLIError(f"no answer from {args.url} within {CURL_TIMEOUT}s") from None
    return print_curl_result(proc)
