"""`podnet agent`: the node agent (started by `podnet up` inside the node's network namespace)."""

from __future__ import annotations

import argparse
import asyncio
import faulthandler
import ipaddress
import logging
import os
import signal
from pathlib import Path

from podnet.cli.main import CLIError
from podnet.core.config import DEFAULT_KUBELET_PORT
from podnet.core.logfiles import rotate_stderr_log


def register(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    p = sub.add_parser("agent", help="run a node agent (pods, routes, service proxy) for one node",
                       description="Run the node agent for NODE: it registers the Node, runs the pods "
                       "scheduled to it, keeps routes to other nodes and programs Services. Started by "
                       "`podnet up` inside the node's network namespace.")
    p.add_argument("--name", required=True, help="cluster name")
    p.add_argument("--node-name", required=True, help="this node's Kubernetes name")
    p.add_argument("--node-ip", required=True, help="this node's IP on the node network")
    p.add_argument("--server", required=True, help="API server: http(s)://host:port or unix:///path.sock")
    p.add_argument("--token-file", default="", metavar="PATH",
                   help="file holding the bearer token for the API server (mode 0600, as kubelet's "
                   "kubeconfig); default: the PODNET_API_TOKEN environment variable (never the command "
                   "line)")
    p.add_argument("--state-dir", required=True, help="the cluster's state directory")
    p.add_argument("--kubelet-port", type=int, default=DEFAULT_KUBELET_PORT,
                   help=f"kubelet-style endpoint port ({DEFAULT_KUBELET_PORT})")
    p.add_argument("--no-proxy", action="store_true", help="do not run the service proxy")
    p.add_argument("--no-routes", action="store_true", help="do not program routes to other nodes")
    p.set_defaults(func=run)


def read_token(path: str) -> str:
    """The API token from --token-file (which must not be readable by others), else $PODNET_API_TOKEN."""
    if not path:
        return os.environ.get("PODNET_API_TOKEN", "")
    try:
        st = os.stat(path)
        text = Path(path).read_text().strip()
    except OSError as e:
        raise CLIError(f"cannot read --token-file {path}: {e.strerror}") from None
    if st.st_mode & 0o077:
        raise CLIError(f"--token-file {path} is readable by others (mode {st.st_mode & 0o777:04o}): "
                       f"make it 0600 (chmod 600 {path})")
    return text


def run(args: argparse.Namespace) -> int:
    from podnet.agent.hostmount import rejoin_host_mount_ns

    mount_note = rejoin_host_mount_ns()  # first, while the process has a single thread
    # Files the agent makes for pods (resolv.conf, volumes, image roots) must be readable by the
    # containers' users; the state directory around them is 0700 and credentials are written 0600.
    os.umask(0o022)
    faulthandler.register(signal.SIGUSR1, all_threads=True)  # `kill -USR1 <agent>`: stacks to the log
    from podnet.agent.main import AgentOptions, run_agent

    try:
        ipaddress.IPv4Address(args.node_ip)
    except ValueError:
        raise CLIError(f"--node-ip {args.node_ip!r} is not an IPv4 address (e.g. 172.30.0.11)") from None
    if not 1 <= args.kubelet_port <= 65535:
        raise CLIError(f"--kubelet-port {args.kubelet_port} is out of range: must be 1-65535")
    if not args.server.startswith(("http://", "https://", "unix://")):
        raise CLIError(f"--server {args.server!r} must start with http://, https:// or unix://")
    token = read_token(args.token_file)
    logging.getLogger("podnet").setLevel(logging.DEBUG if args.verbose else logging.INFO)
    if not logging.getLogger().handlers:
        logging.basicConfig(format="%(asctime)s %(name)s %(levelname)s %(message)s")
    logging.getLogger("pyroute2").setLevel(logging.WARNING)
    rotate_stderr_log(logging.DEBUG if args.verbose else logging.INFO)  # the agent's log: bounded
    for h in logging.getLogger().handlers:
        h.setLevel(logging.DEBUG if args.verbose else logging.INFO)
    logging.getLogger("podnet.agent").info("%s", mount_note)
    opts = AgentOptions(cluster=args.name, node_name=args.node_name, node_ip=args.node_ip, server=args.server,
                        token=token, state_dir=Path(args.state_dir), kubelet_port=args.kubelet_port,
                        run_proxy=not args.no_proxy, manage_routes=not args.no_routes)
    try:
        asyncio.run(run_agent(opts))
    except TimeoutError as e:
        raise CLIError(str(e)) from None
    return 0
