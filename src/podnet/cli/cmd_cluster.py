"""`podnet up`, `podnet down`, `podnet list`, `podnet kubeconfig`: clusters on this machine."""

from __future__ import annotations

import argparse
import contextlib
import os
import sys
import time
from collections.abc import Iterator

from rich.status import Status

from podnet.cli.common import add_name_flag, load_config
from podnet.cli.main import CLIError
from podnet.cli.output import add_output_flag, emit, err_console
from podnet.core.config import (
    DEFAULT_NETWORK,
    DEFAULT_NODE_GRACE_SECONDS,
    DEFAULT_NODE_PORT_RANGE,
    DEFAULT_NODES,
    DEFAULT_POD_CIDR,
    DEFAULT_SERVICE_CIDR,
)

IMAGE_MODES = ("auto", "real", "builtin")


def _images_default() -> str:
    """`--images` unless given: $PODNET_IMAGES (podnet's own test suite and demo set `builtin`, so they never
    contact a registry outside the machine), else auto."""
    mode = os.environ.get("PODNET_IMAGES", "").strip()
    return mode if mode in IMAGE_MODES else "auto"


def register(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    p = sub.add_parser(
        "up", help="create a cluster: node network, nodes, control plane and agents",
        description="Create cluster NAME on this machine: a bridge for the node network, one network "
        "namespace per node, the control plane and one agent per node; waits until every node is Ready "
        "and writes a kubeconfig.")
    add_name_flag(p)
    p.add_argument("--nodes", type=int, default=DEFAULT_NODES,
                   help=f"number of nodes (default {DEFAULT_NODES})")
    p.add_argument("--network", choices=("host-gw", "vxlan"), default=DEFAULT_NETWORK,
                   help="how pods reach other nodes: plain routes (host-gw, default) or a VXLAN overlay")
    p.add_argument("--pod-cidr", default=DEFAULT_POD_CIDR,
                   help=f"cluster pod CIDR (default {DEFAULT_POD_CIDR})")
    p.add_argument("--service-cidr", default=DEFAULT_SERVICE_CIDR,
                   help=f"service CIDR (default {DEFAULT_SERVICE_CIDR})")
    p.add_argument("--node-network", default="", metavar="CIDR",
                   help="the node network (default: the first free /24 of 172.30.0.0/15)")
    p.add_argument("--lb-pool", default="", metavar="FIRST-LAST|none",
                   help="LoadBalancer IP pool on the node network (default .200-.250), or 'none'")
    p.add_argument("--node-port-range", default=DEFAULT_NODE_PORT_RANGE, metavar="A-B",
                   help=f"NodePort range (default {DEFAULT_NODE_PORT_RANGE})")
    p.add_argument("--wait-timeout", type=float, default=90.0, metavar="SECONDS",
                   help="how long to wait for the API and for nodes to be Ready (default 90)")
    p.add_argument("--listen", default="", metavar="ADDR[:PORT]",
                   help="also serve the API (TLS) on ADDR (default port 6443) so other machines can "
                   "`podnet join`; prints the join command")
    p.add_argument("--store", default="", metavar="sqlite|etcd://HOST:PORT[,...]",
                   help="where the API keeps objects: SQLite in the state directory (default) or an "
                   "etcd cluster")
    p.add_argument("--node-grace", type=float, default=DEFAULT_NODE_GRACE_SECONDS, metavar="SECONDS",
                   help="how long a node may miss heartbeats before it is NotReady "
                   f"(default {DEFAULT_NODE_GRACE_SECONDS:g})")
    p.add_argument("--audit-log", default="", metavar="PATH",
                   help="the API server also writes an audit log there: one JSON line per request "
                   "(audit.k8s.io/v1 Event, level Metadata), rotated at 100 MiB; default: none")
    p.add_argument("--max-pods", type=int, default=110, metavar="N",
                   help="pods each node accepts (the kubelet's maxPods; default 110)")
    p.add_argument("--images", choices=IMAGE_MODES, default=_images_default(),
                   help="auto (default, or $PODNET_IMAGES): pull real images, podnet's built-in stand-in "
                   "where one cannot be pulled; real: real images only (ErrImagePull otherwise); builtin: "
                   "stand-ins only, no registry is ever contacted")
    p.add_argument("--insecure-registry", action="append", default=[], metavar="HOST[:PORT]",
                   help="a registry reachable over plain HTTP or unverified TLS (repeatable); "
                   "localhost and 127.0.0.1 always are")
    p.add_argument("--image-pull-timeout", type=float, default=120.0, metavar="SECONDS",
                   help="give up a pull after this long (default 120)")
    p.add_argument("--no-agents", action="store_true",
                   help="create the nodes but start no agents (debugging; nodes will not be Ready)")
    p.set_defaults(func=run_up)

    p = sub.add_parser(
        "down", help="remove a cluster and everything it made",
        description="Stop the cluster's processes and remove its namespaces, links, routes and state "
        "directory: exactly what its journal recorded. Safe to run again, and after a crash.")
    add_name_flag(p)
    p.add_argument("--all", action="store_true", help="remove every cluster on this machine")
    p.set_defaults(func=run_down)

    p = sub.add_parser(
        "start", help="start a cluster again (after a reboot of the machine, or `podnet stop`)",
        description="Bring cluster NAME back from its state directory: re-make its bridge, routes and "
        "node namespaces where they are missing, start its supervisor (which starts the control plane "
        "and the agents), and wait until the API answers and every node is Ready. The objects in the "
        "store are kept; pods are started again by their nodes' agents.")
    add_name_flag(p)
    p.add_argument("--wait-timeout", type=float, default=90.0, metavar="SECONDS",
                   help="how long to wait for the API and for nodes to be Ready (default 90)")
    p.set_defaults(func=run_start)

    p = sub.add_parser(
        "stop", help="stop a cluster but keep its state (`podnet start` brings it back)",
        description="Stop the cluster's processes (supervisor first) and remove its namespaces, links and "
        "routes, as `podnet down` does, but keep its state directory: the store, the CA, the tokens.")
    add_name_flag(p)
    p.set_defaults(func=run_stop)

    p = sub.add_parser("list", help="clusters on this machine with their nodes, status and API address")
    add_output_flag(p)
    p.set_defaults(func=run_list)

    p = sub.add_parser("kubeconfig", help="print a cluster's kubeconfig",
                       description="Print the kubeconfig of cluster NAME, e.g. "
                       "`podnet kubeconfig > ~/.kube/podnet.yaml`.")
    add_name_flag(p)
    p.set_defaults(func=run_kubeconfig)


def _need_root() -> None:
    if os.geteuid() != 0:
        raise CLIError("this command changes network namespaces, links and routes: run it as root")


class _Steps:
    """One Rich status line per step of `up`, ticked off (✓) or crossed (✗) when it ends."""

    def __init__(self) -> None:
        self._status: Status | None = None
        self._text = ""

    @contextlib.contextmanager
    def step(self, text: str) -> Iterator[None]:
        t0 = time.monotonic()
        self._text = text
        with err_console.status(text + " ...") as status:
            self._status = status
            try:
                yield
            except BaseException:
                err_console.print(f"[red]✗[/red] {text}")
                raise
            finally:
                self._status = None
        err_console.print(f"[green]✓[/green] {text} [dim]({time.monotonic() - t0:.1f}s)[/dim]")

    def nodes_ready(self, ready: int, total: int) -> None:
        if self._status is not None:
            self._status.update(f"{self._text} ... {ready}/{total} Ready")


def run_up(args: argparse.Namespace) -> int:
    _need_root()
    os.umask(0o077)  # state, logs and credentials: root only
    from podnet.cluster.up import UpError, UpOptions, up
    from podnet.net.real import RealNetOps

    opts = UpOptions(name=args.name, nodes=args.nodes, network=args.network, pod_cidr=args.pod_cidr,
                     service_cidr=args.service_cidr, node_network=args.node_network, lb_pool=args.lb_pool,
                     node_port_range=args.node_port_range, wait_timeout=args.wait_timeout,
                     start_agents=not args.no_agents, listen=args.listen, store=args.store,
                     node_grace_seconds=args.node_grace, audit_log=args.audit_log)
    if args.node_grace <= 0:
        raise CLIError(f"invalid --node-grace {args.node_grace:g}: must be more than 0 seconds")
    if args.image_pull_timeout <= 0:
        raise CLIError(f"invalid --image-pull-timeout {args.image_pull_timeout:g}: "
                       "must be more than 0 seconds")
    opts.images, opts.insecure_registries = args.images, list(args.insecure_registry)
    opts.image_pull_timeout = args.image_pull_timeout
    opts.max_pods = args.max_pods
    if args.wait_timeout <= 0:
        raise CLIError(f"invalid --wait-timeout {args.wait_timeout}: must be more than 0 seconds")
    ops = RealNetOps()
    t0 = time.monotonic()
    steps = _Steps()
    try:
        cfg = up(opts, ops, step=steps.step, node_progress=steps.nodes_ready)
    except UpError as e:
        raise CLIError(str(e)) from None
    finally:
        ops.close()
    kc = cfg.state_dir / "kubeconfig"
    err_console.print(f"\nCluster [bold]{cfg.name}[/bold] is up in {time.monotonic() - t0:.1f}s: "
                      f"{cfg.nodes} node(s) on {cfg.node_network} ({cfg.network}), API {cfg.api_url}")
    name_flag = "" if cfg.name == "podnet" else f" --name {cfg.name}"
    err_console.print(f"  export KUBECONFIG={kc}\n  kubectl get nodes\n"
                      f"or: podnet kubectl{name_flag} get nodes\n"
                      f"See it live in a browser: podnet ui{name_flag}  (prints a one-time link)")
    if cfg.listen:
        from podnet.api.auth import JoinTokens
        from podnet.cluster.join import join_command

        token = JoinTokens(cfg.state_dir).create(description="created by podnet up")
        err_console.print("\nOther machines join this cluster with (the token is valid for 24h; "
                          f"`podnet token create{name_flag}` makes more):")
        print(join_command(cfg, token), flush=True)
    return 0


def run_down(args: argparse.Namespace) -> int:
    _need_root()
    from podnet.cluster.down import cluster_dir, teardown
    from podnet.core.config import state_root
    from podnet.net.real import RealNetOps

    if args.all:  # every state directory, also one whose config was never written
        root = state_root() / "clusters"
        names = sorted(p.name for p in root.iterdir() if p.is_dir()) if root.is_dir() else []
        if not names:
            err_console.print("no clusters on this machine")
            return 0
    else:
        if not cluster_dir(args.name).exists():
            err_console.print(f'cluster "{args.name}" does not exist (nothing to remove)')
            return 0
        names = [args.name]
    ops = RealNetOps()
    failed = False
    try:
        for name in names:
            with err_console.status(f"Removing cluster {name} ..."):
                rep = teardown(name, ops)
            if rep.problems:
                failed = True
                err_console.print(f"[red]✗[/red] cluster {name}: {rep.summary()}; could not remove:")
                for p in rep.problems:
                    err_console.print(f"    {p}")
                err_console.print(f"  state kept in {cluster_dir(name)}; "
                                  f"run `podnet down --name {name}` again")
            else:
                err_console.print(f"[green]✓[/green] cluster {name}: {rep.summary()}")
    finally:
        ops.close()
    return 1 if failed else 0


def run_start(args: argparse.Namespace) -> int:
    _need_root()
    os.umask(0o077)
    from podnet.cluster.start import StartError, start
    from podnet.net.real import RealNetOps

    if args.wait_timeout <= 0:
        raise CLIError(f"invalid --wait-timeout {args.wait_timeout}: must be more than 0 seconds")
    cfg = load_config(args.name)
    ops = RealNetOps()
    t0 = time.monotonic()
    steps = _Steps()
    try:
        start(cfg, ops, step=steps.step, wait_timeout=args.wait_timeout, node_progress=steps.nodes_ready)
    except StartError as e:
        raise CLIError(str(e)) from None
    finally:
        ops.close()
    err_console.print(f"\nCluster [bold]{cfg.name}[/bold] is running again in {time.monotonic() - t0:.1f}s: "
                      f"API {cfg.api_url}")
    return 0


def run_stop(args: argparse.Namespace) -> int:
    _need_root()
    from podnet.cluster.down import cluster_dir, teardown
    from podnet.net.real import RealNetOps

    if not (cluster_dir(args.name) / "config.json").exists():
        raise CLIError(f'cluster "{args.name}" does not exist; see `podnet list`')
    ops = RealNetOps()
    try:
        with err_console.status(f"Stopping cluster {args.name} ..."):
            rep = teardown(args.name, ops, keep_state=True)
    finally:
        ops.close()
    if rep.problems:
        err_console.print(f"[red]✗[/red] cluster {args.name}: {rep.summary()}; could not remove:")
        for p in rep.problems:
            err_console.print(f"    {p}")
        return 1
    err_console.print(f"[green]✓[/green] cluster {args.name} stopped ({rep.summary()}); state kept in "
                      f"{cluster_dir(args.name)}; `podnet start --name {args.name}` brings it back")
    return 0


def run_list(args: argparse.Namespace) -> int:
    from podnet.cluster.status import list_clusters
    from podnet.core.config import state_root

    for d in (state_root(), state_root() / "clusters"):
        if d.exists() and not os.access(d, os.R_OK | os.X_OK):
            raise CLIError(f"cannot read {d}: the clusters' state is readable by root only; run this as root")
    from podnet.cluster.join import list_joined

    clusters = list_clusters()
    joined = list_joined()  # nodes this machine runs for clusters elsewhere (`podnet join --background`)
    rows: list[tuple[object, ...]] = [(c.name, c.status, len(c.nodes), c.network, c.node_network, c.api)
                                      for c in clusters]
    rows += [(j.cluster, j.status + ("" if j.supervised else ", unsupervised"), f"joined as {j.node}", "", "",
              j.server) for j in joined]
    emit(args, [c.to_dict() for c in clusters] + [j.to_dict() for j in joined],
         ["NAME", "STATUS", "NODES", "NETWORK", "NODE NETWORK", "API"], rows)
    if not clusters and not joined and getattr(args, "output", "table") != "json":
        err_console.print("no clusters; create one with `podnet up`")
    return 0


def run_kubeconfig(args: argparse.Namespace) -> int:
    cfg = load_config(args.name)
    path = cfg.state_dir / "kubeconfig"
    try:
        sys.stdout.write(path.read_text())
    except FileNotFoundError:
        raise CLIError(f'cluster "{args.name}" has no kubeconfig yet ({path}): is it still starting? '
                       "See `podnet list`") from None
    return 0
