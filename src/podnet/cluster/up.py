"""`podnet up`: a cluster from nothing — address plan, bridge, guard routes, control plane, nodes, agents.

Every kernel object and process is recorded in the cluster's journal before
it is made, so `podnet down` can remove exactly what `up` made, also after a
crash; if `up` fails half-way it tears down what it made and says why.
"""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import ipaddress
import os
import secrets
import socket
import ssl
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO
from urllib.parse import urlsplit

from podnet.api.auth import issue_node_credential
from podnet.cluster.cgroup import ClusterCgroup
from podnet.cluster.hostnet import (
    AddressPlanError,
    check_ranges,
    choose_node_network,
    parse_cidr,
    parse_lb_pool,
    parse_port_range,
)
from podnet.cluster.procs import Started, is_same_process, start_process
from podnet.cluster.supervise import start_supervisor, supervisor_alive
from podnet.core import journal as jr
from podnet.core import naming
from podnet.core.config import (
    DEFAULT_NAME,
    DEFAULT_NETWORK,
    DEFAULT_NODE_GRACE_SECONDS,
    DEFAULT_NODE_PORT_RANGE,
    DEFAULT_NODES,
    DEFAULT_POD_CIDR,
    DEFAULT_SERVICE_CIDR,
    ClusterConfig,
    make_private_dir,
    state_root,
    write_private,
)
from podnet.core.layout import MAX_NODES, NodePlan, default_lb_pool, host_cidr, plan_nodes
from podnet.core.lbpool import parse_pool
from podnet.net.nodenet import MODES, setup_node_netns
from podnet.net.nsthread import netns_exec_argv
from podnet.net.ops import PROTO_PODNET_NODE, ExistsError, NetOps, Route


class UpError(Exception):
    """`up` could not make the cluster; the message says why (and where the logs are)."""


Reporter = Callable[[str], contextlib.AbstractContextManager[None]]


@contextlib.contextmanager
def quiet_step(text: str) -> Iterator[None]:
    yield


ArgvFn = Callable[[ClusterConfig, NodePlan], list[str]]


@dataclass
class UpOptions:
    name: str = DEFAULT_NAME
    nodes: int = DEFAULT_NODES
    network: str = DEFAULT_NETWORK
    pod_cidr: str = DEFAULT_POD_CIDR
    service_cidr: str = DEFAULT_SERVICE_CIDR
    node_network: str = ""
    lb_pool: str = ""
    node_port_range: str = DEFAULT_NODE_PORT_RANGE
    node_grace_seconds: float = DEFAULT_NODE_GRACE_SECONDS
    max_pods: int = 110
    images: str = "auto"
    insecure_registries: list[str] = field(default_factory=list)
    image_pull_timeout: float = 120.0
    wait_timeout: float = 90.0
    start_agents: bool = True
    listen: str = ""  # ADDR[:PORT]: the API also listens there (TLS) for machines that `podnet join`
    audit_log: str = ""  # PATH: the API server writes an audit log there
    store: str = ""  # "" = SQLite in the state dir; "etcd://HOST:PORT[,HOST:PORT...][/prefix]"
    # how to start the processes; tests may replace them
    controlplane_argv: Callable[[ClusterConfig], list[str]] | None = None
    agent_argv: ArgvFn | None = None


def _check_store(url: str, cluster: str) -> str:
    """`sqlite` (the default) or an etcd URL; anything else is refused with what is allowed.
    An etcd URL without a key prefix gets `/podnet/<cluster>`, so clusters can share one etcd."""
    if url == "sqlite":
        return url
    if url.startswith("etcd://"):
        from podnet.store.etcd import parse_etcd_url

        try:
            endpoints, _prefix = parse_etcd_url(url)
        except ValueError as e:
            raise UpError(f"invalid --store {url!r}: {e}") from None
        if endpoints:
            _check_etcd_reachable(url, endpoints)
            return url if "/" in url[len("etcd://"):] else f"{url}/podnet/{cluster}"
    raise UpError(f"invalid --store {url!r}: use 'sqlite' (the default: one file in the state directory) "
                  "or 'etcd://HOST:PORT[,HOST:PORT...]'")


def _check_etcd_reachable(url: str, endpoints: list[str], timeout: float = 3.0) -> None:
    """Before anything is built: at least one etcd endpoint of --store accepts a TCP connection."""
    from podnet.store.etcd_http import normalize_endpoint

    errors = []
    for endpoint in endpoints:
        parts = urlsplit(normalize_endpoint(endpoint))
        try:
            with socket.create_connection((parts.hostname or "", parts.port or 0), timeout=timeout):
                return
        except OSError as e:
            errors.append(f"{endpoint}: {e.strerror or e}")
    raise UpError(f"etcd of --store {url!r} is unreachable ({'; '.join(errors)}): start etcd first, or "
                  "leave out --store to keep the cluster's objects in SQLite")


def controlplane_argv(cfg: ClusterConfig) -> list[str]:
    return [sys.executable, "-m", "podnet.cli.main", "controlplane", "--name", cfg.name]


def agent_argv(cfg: ClusterConfig, node: NodePlan) -> list[str]:
    return [sys.executable, "-m", "podnet.cli.main", "agent", "--name", cfg.name, "--node-name", node.name,
            "--node-ip", node.ip, "--server", f"unix://{cfg.api_socket}",
            "--token-file", str(cfg.node_token_file(node.name)), "--state-dir", str(cfg.state_dir)]


def write_node_credentials(cfg: ClusterConfig, nodes: list[NodePlan]) -> None:
    """Each agent's own credential (`<token>:<node>`, bound to its node; 0600 under the 0700 state
    directory): agents are authorized as their node (node rules and NodeRestriction), not as the admin."""
    for n in nodes:
        path = cfg.node_token_file(n.name)
        if path.exists():
            continue
        make_private_dir(path.parent)
        write_private(path, issue_node_credential(cfg.state_dir, n.name) + "\n")


def free_port(host: str = "127.0.0.1") -> int:
    with socket.socket() as s:
        s.bind((host, 0))
        return int(s.getsockname()[1])


def known_clusters() -> list[ClusterConfig]:
    out = []
    for p in sorted((state_root() / "clusters").glob("*/config.json")):
        with contextlib.suppress(OSError, ValueError, TypeError):
            out.append(ClusterConfig.from_json(p.read_text()))
    return out


# ---- planning (no side effects) --------------------------------------------------------------
def plan_config(opts: UpOptions, host_routes: list[Route]) -> ClusterConfig:
    """Check the options against the host and the other clusters; the new cluster's config."""
    err = naming.validate_cluster_name(opts.name)
    if err:
        raise UpError(err)
    if not 1 <= opts.nodes <= MAX_NODES:
        raise UpError(f"invalid node count {opts.nodes} (--nodes): must be between 1 and {MAX_NODES}")
    if opts.network not in MODES:
        raise UpError(f"invalid network mode {opts.network!r} (--network): must be one of {', '.join(MODES)}")
    cfg = ClusterConfig(name=opts.name, nodes=opts.nodes, network=opts.network)
    if (cfg.state_dir / "config.json").exists():
        raise UpError(f'cluster "{opts.name}" already exists (state in {cfg.state_dir}): start it again '
                      f"with `podnet start --name {opts.name}` (after a reboot, or if it is stopped), "
                      f"remove it with `podnet down --name {opts.name}`, or choose another --name")
    try:
        pod = parse_cidr("pod CIDR", "--pod-cidr", opts.pod_cidr)
        svc = parse_cidr("service CIDR", "--service-cidr", opts.service_cidr)
        mask = cfg.node_cidr_mask
        if pod.prefixlen > mask or 2 ** (mask - pod.prefixlen) <= opts.nodes:
            need = mask - opts.nodes.bit_length()
            raise AddressPlanError(f"pod CIDR {pod} (--pod-cidr) is too small for {opts.nodes} node(s) "
                                   f"with a /{mask} each: use a /{need} or larger")
        others = [c for c in known_clusters() if c.name != opts.name]
        if opts.node_network:
            node_net = parse_cidr("node network", "--node-network", opts.node_network)
            if node_net.num_addresses < opts.nodes + 4:
                raise AddressPlanError(f"node network {node_net} (--node-network) is too small for "
                                       f"{opts.nodes} nodes")
            for c in others:
                if c.node_network and node_net.overlaps(ipaddress.IPv4Network(c.node_network)):
                    raise AddressPlanError(f"the node network {node_net} overlaps the node network "
                                           f"{c.node_network} of cluster {c.name!r}: choose another with "
                                           "--node-network")
        else:
            node_net = ipaddress.IPv4Network(choose_node_network(
                host_routes, avoid=[str(pod), str(svc), *(c.node_network for c in others)]))
        check_ranges(pod_cidr=str(pod), service_cidr=str(svc), node_network=str(node_net), routes=host_routes)
        parse_port_range(opts.node_port_range)
        pool = parse_lb_pool(opts.lb_pool, str(node_net)) if opts.lb_pool else default_lb_pool(str(node_net))
    except AddressPlanError as e:
        raise UpError(str(e)) from None
    cfg.pod_cidr, cfg.service_cidr, cfg.node_network = str(pod), str(svc), str(node_net)
    cfg.node_port_range, cfg.lb_pool = opts.node_port_range, pool
    last_node = node_net[1 + opts.nodes]
    if any(int(lo) <= int(last_node) for lo, _hi in parse_pool(pool)):
        raise UpError(f"LoadBalancer pool {pool} (--lb-pool) overlaps the node IPs "
                      f"{node_net[2]}-{last_node}: start it after {last_node}")
    cfg.api_port = free_port()
    cfg.token = secrets.token_hex(24)
    if opts.listen:
        cfg.listen = _check_listen(opts.listen)
    if opts.store:
        cfg.store = _check_store(opts.store, opts.name)
    cfg.node_grace_seconds = opts.node_grace_seconds
    cfg.audit_log = str(Path(opts.audit_log).resolve()) if opts.audit_log else ""
    if opts.images not in ("auto", "real", "builtin"):
        raise UpError(f"invalid --images {opts.images!r}: must be one of auto, real, builtin")
    cfg.images, cfg.insecure_registries = opts.images, list(opts.insecure_registries)
    cfg.image_pull_timeout = opts.image_pull_timeout
    if not 1 <= opts.max_pods <= 10000:
        raise UpError(f"invalid --max-pods {opts.max_pods}: must be between 1 and 10000")
    cfg.max_pods = opts.max_pods
    return cfg


def _check_listen(text: str) -> str:
    """`--listen ADDR[:PORT]` as "ADDR:PORT", checked: an address of this machine, a free port."""
    from podnet.cluster.join import parse_listen

    try:
        addr, port = parse_listen(text)
    except ValueError as e:
        raise UpError(str(e)) from None
    with socket.socket() as s:
        try:
            s.bind((addr, port))
        except OSError as e:
            raise UpError(f"cannot listen on {addr}:{port} (--listen): {e.strerror}; it must be an address "
                          "this machine holds and a free port") from None
    return f"{addr}:{port}"


# ---- doing it ---------------------------------------------------------------------------------
def _log_tail(path: Path, lines: int = 15) -> str:
    try:
        text = path.read_text(errors="replace").splitlines()[-lines:]
    except FileNotFoundError:
        return "(no log)"
    return "\n".join("    " + t for t in text) or "    (empty log)"


def _add_guard_route(ops: NetOps, journal: jr.Journal, dst: str, metric: int) -> int:
    for m in range(metric, metric + 20):
        journal.record(jr.ROUTE, dst, metric=m, netns=None)
        try:
            ops.route_add(Route(dst=dst, type="unreachable", metric=m, proto=PROTO_PODNET_NODE))
            return m
        except ExistsError:
            journal.forget(jr.ROUTE, dst)
    raise UpError(f"cannot add the guard route 'unreachable {dst}': metrics {metric}-{metric + 19} are taken")


def api_answers(port: int, timeout: float = 2.0) -> bool:
    """True when 127.0.0.1:port answers /readyz with 200, over http or https (the CA is not checked here)."""
    insecure = ssl.create_default_context()
    insecure.check_hostname = False
    insecure.verify_mode = ssl.CERT_NONE
    for scheme in ("http", "https"):
        try:
            with urllib.request.urlopen(f"{scheme}://127.0.0.1:{port}/readyz", timeout=timeout,
                                        context=insecure if scheme == "https" else None) as resp:
                if resp.status == 200:
                    return True
        except (urllib.error.URLError, OSError, ssl.SSLError):
            continue
    return False


Daemon = tuple[str, list[str], Path]  # label, argv, log file


def start_supervised(journal: jr.Journal, daemons: list[Daemon], cg: ClusterCgroup | None, *,
                     env: dict[str, str] | None = None, pass_fds: tuple[int, ...] = (),
                     timeout: float = 30.0) -> dict[str, Started]:
    """Have the cluster's supervisor start `daemons` (label, argv, log): each recorded in the journal with
    its argv and log and no PID, which the supervisor starts at its next check (by fork, sharing its
    modules: all of them in one check) and records. Without a live supervisor, started here (with `env`
    and `pass_fds`)."""
    if not supervisor_alive(journal):
        return {label: start_process(journal, label, argv, log, cgroup=cg, env=env, pass_fds=pass_fds)
                for label, argv, log in daemons}
    for label, argv, log in daemons:
        journal.record(jr.PROCESS, label, argv=list(argv), log=str(log))
    deadline = time.monotonic() + timeout
    logs = {label: log for label, _, log in daemons}
    started: dict[str, Started] = {}
    while True:
        for e in journal.entries(jr.PROCESS):
            pid, st = e.attrs.get("pid"), e.attrs.get("starttime")
            if e.name in logs and isinstance(pid, int) and pid > 1:
                st = st if isinstance(st, int) else None
                started[e.name] = Started(label=e.name, pid=pid, starttime=st, log=logs[e.name])
        if len(started) == len(logs):
            return started
        if time.monotonic() > deadline or not supervisor_alive(journal):
            missing = ", ".join(sorted(set(logs) - set(started)))
            raise UpError(f"the supervisor did not start {missing} within {timeout:.0f}s; its log: "
                          f"{journal.state_dir / 'logs' / 'supervisor.log'}")
        time.sleep(0.02)


def wait_api_ready(cfg: ClusterConfig, proc: Started, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    url = f"http://127.0.0.1:{cfg.api_port}/readyz"
    while time.monotonic() < deadline:
        if not is_same_process(proc.pid, proc.starttime):
            raise UpError(f"the control plane exited during start-up; its log ({proc.log}):\n"
                          f"{_log_tail(proc.log)}")
        if api_answers(cfg.api_port):
            return
        time.sleep(0.1)
    raise UpError(f"the API server did not become ready on {url} within {timeout:.0f}s; "
                  f"its log ({proc.log}):\n{_log_tail(proc.log)}")


async def _ready_nodes(cfg: ClusterConfig) -> set[str]:
    from podnet.client.client import ApiClient
    from podnet.model.kinds import NODES

    async with ApiClient(f"unix://{cfg.api_socket}", token=cfg.token, timeout=5) as client:
        nodes = await client.list(NODES)
    ready = set()
    for n in nodes.get("items", []):
        for c in n.get("status", {}).get("conditions", []) or []:
            if c.get("type") == "Ready" and c.get("status") == "True":
                ready.add(n["metadata"]["name"])
    return ready


def wait_nodes_ready(cfg: ClusterConfig, agents: dict[str, Started], timeout: float,
                     progress: Callable[[int, int], None] | None = None) -> None:
    deadline = time.monotonic() + timeout
    want = set(agents)
    ready: set[str] = set()
    last_error = ""
    while time.monotonic() < deadline:
        for node, proc in agents.items():
            if not is_same_process(proc.pid, proc.starttime):
                raise UpError(f"the agent of node {node} exited during start-up; its log ({proc.log}):\n"
                              f"{_log_tail(proc.log)}")
        try:
            ready = asyncio.run(_ready_nodes(cfg)) & want
            last_error = ""
        except Exception as e:  # the API may restart or be slow: keep polling until the deadline
            last_error = str(e)
        if progress is not None:
            progress(len(ready), len(want))
        if ready == want:
            return
        time.sleep(0.3)
    missing = ", ".join(sorted(want - ready))
    hint = f" (last API error: {last_error})" if last_error else ""
    raise UpError(f"nodes not Ready within {timeout:.0f}s: {missing}{hint}; agent logs are in "
                  f"{cfg.state_dir / 'logs'}")


def write_kubeconfig(cfg: ClusterConfig) -> Path:
    """`<state_dir>/kubeconfig`: https with the cluster's CA and bearer token.

    The control plane serves TCP only over TLS (kubectl sends no bearer token over plain http);
    it writes `ca.crt` before it answers /readyz.
    """
    from podnet.core.kubeconfig import render_kubeconfig

    path = cfg.state_dir / "kubeconfig"
    ca = cfg.ca_file
    text = render_kubeconfig(cfg.name, cfg.api_url, cfg.token, ca_file=ca if ca.exists() else None)
    write_private(path, text)
    return path


def up(opts: UpOptions, ops: NetOps, step: Reporter = quiet_step,
       node_progress: Callable[[int, int], None] | None = None) -> ClusterConfig:
    """Bring cluster `opts.name` up; on failure remove what was made and raise UpError."""
    # Choosing a free node network and putting the host's address on it must not interleave with
    # another `up` on this machine (whatever its state root), or both could pick the same /24.
    plan_lock = address_plan_lock()
    with step("Address plan checked against the host's routes"):
        cfg = plan_config(opts, ops.route_list())
    cfg.save()
    try:
        _build(cfg, opts, ops, step, node_progress, network_made=plan_lock.close)
    except BaseException as e:
        from podnet.cluster.down import teardown

        with contextlib.suppress(Exception):
            teardown(cfg.name, ops)
        if isinstance(e, UpError):
            raise
        if isinstance(e, KeyboardInterrupt):
            raise UpError("interrupted; everything made so far was removed") from None
        raise UpError(f"{type(e).__name__}: {e}") from e
    finally:
        plan_lock.close()
    return cfg


ADDRESS_PLAN_LOCK = Path("/run/podnet/address-plan.lock")


def address_plan_lock() -> IO[bytes]:
    """An exclusive machine-wide lock (flock), released when the returned file is closed."""
    ADDRESS_PLAN_LOCK.parent.mkdir(parents=True, exist_ok=True)
    f = open(ADDRESS_PLAN_LOCK, "ab")  # noqa: SIM115 - held across calls, closed by the caller
    fcntl.flock(f.fileno(), fcntl.LOCK_EX)
    return f


def _build(cfg: ClusterConfig, opts: UpOptions, ops: NetOps, step: Reporter,
           node_progress: Callable[[int, int], None] | None,
           network_made: Callable[[], None] = lambda: None) -> None:
    journal = jr.Journal(cfg.state_dir)
    logs = cfg.state_dir / "logs"
    bridge = cfg.bridge
    metric = cfg.route_metric
    nodes = plan_nodes(cfg)

    cg = ClusterCgroup.for_cluster(cfg.name)
    if cg is not None:
        journal.record(jr.CGROUP, str(cg.path))
        if not cg.create():
            journal.forget(jr.CGROUP, str(cg.path))
            cg = None

    with step(f"Node network {cfg.node_network}: bridge {bridge}, host {cfg.host_ip}"):
        journal.record(jr.LINK, bridge, netns=None)
        ops.bridge_add(bridge)
        ops.addr_add(bridge, host_cidr(cfg))
        ops.link_set(bridge, up=True)
    network_made()  # the host now has a route for the node network: other `up`s will see it
    with step(f"Host guard routes for {cfg.pod_cidr} (pods) and {cfg.service_cidr} (services)"):
        _add_guard_route(ops, journal, cfg.pod_cidr, metric)
        _add_guard_route(ops, journal, cfg.service_cidr, metric)

    # The supervisor starts first: it forks the control plane and the agents from the modules it has
    # imported once (cluster/forkstart.py), so they share those pages, and restarts one that dies.
    start_supervisor(cfg, journal, cg)
    with step(f"Control plane: API on https://127.0.0.1:{cfg.api_port}"):
        argv = (opts.controlplane_argv or controlplane_argv)(cfg)
        cp = start_supervised(journal, [("controlplane", argv, logs / "controlplane.log")], cg)
        wait_api_ready(cfg, cp["controlplane"], min(opts.wait_timeout, 60.0))

    with step(f"{len(nodes)} node(s): " + ", ".join(n.ip for n in nodes)):
        for n in nodes:
            journal.record(jr.NETNS, n.netns, node=n.name)
            journal.record(jr.LINK, n.host_if, netns=None, node=n.name)
            setup_node_netns(ops, netns=n.netns, host_if=n.host_if, bridge=bridge,
                             node_ip_cidr=f"{n.ip}/{ipaddress.IPv4Network(cfg.node_network).prefixlen}")

    if not opts.start_agents:
        write_kubeconfig(cfg)
        return
    from podnet.images.runtimes import choose

    runtime = choose()
    mode = cfg.images
    if not runtime.name and mode == "real":
        raise UpError(f"--images real: {runtime.describe()}; install runc, or use --images builtin")
    with step(f"Container runtime: {runtime.describe()}; images: {mode}"):
        pass
    agents: dict[str, Started] = {}
    with step(f"{len(nodes)} node agent(s) started ({cfg.network})"):
        write_node_credentials(cfg, nodes)
        make_argv = opts.agent_argv or agent_argv
        # the agents pull images from the machine's own network namespace: hand them a handle on it
        host_net = os.open("/proc/self/ns/net", os.O_RDONLY)
        env = dict(os.environ, PODNET_HOST_NETNS_FD=str(host_net))
        try:
            daemons = [(f"agent-{n.name}", netns_exec_argv(n.netns, make_argv(cfg, n)),
                        logs / f"agent-{n.name}.log") for n in nodes]
            started = start_supervised(journal, daemons, cg, env=env, pass_fds=(host_net,))
            agents = {n.name: started[f"agent-{n.name}"] for n in nodes}
        finally:
            os.close(host_net)
    with step("Every node Ready"):
        wait_nodes_ready(cfg, agents, opts.wait_timeout, node_progress)
    with step("Kubeconfig written; the supervisor restarts a daemon that dies"):
        write_kubeconfig(cfg)
