"""`podnet controlplane`: the API server, its store and allocators, and the controllers, in one process.

`podnet up` starts it in the background; it can also run in the foreground for debugging.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import os
import signal
from pathlib import Path

from podnet.cli.common import add_name_flag, load_config
from podnet.cli.main import CLIError
from podnet.core.config import ClusterConfig, make_private_dir
from podnet.core.logfiles import rotate_stderr_log

log = logging.getLogger("podnet.controlplane")


def register(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    p = sub.add_parser(
        "controlplane",
        help="run a cluster's control plane (API server + controllers) in the foreground",
        description="Serve the Kubernetes API for cluster NAME on 127.0.0.1:<api_port> and on the "
        "unix socket in its state directory, and run the controllers. `podnet up` starts this for you.",
    )
    add_name_flag(p)
    p.add_argument("--no-controllers", action="store_true", help="serve the API only")
    p.add_argument("--audit-log", default="", metavar="PATH",
                   help="also write an audit log: one JSON line per request (audit.k8s.io/v1 Event, level "
                   "Metadata), rotated at 100 MiB; default: none")
    p.set_defaults(func=run)

    p = sub.add_parser(
        "supervise",
        help="keep a cluster's control plane and agents running (started by `podnet up`/`start`)",
        description="Watch the control plane and the node agents of cluster NAME (as its journal records "
        "them) and restart one that dies, with back-off: at once, then after 1, 2, 4 ... 30 s while it "
        "keeps dying. `podnet up` and `podnet start` run it in the background; `podnet down` and "
        "`podnet stop` end it first. With --state-dir, the agent of a machine that joined a cluster "
        "(`podnet join --background` runs it; `podnet leave` ends it first); with --foreground as well, it "
        "starts that agent, shows its log, and stops it on Ctrl-C or SIGTERM (a foreground `podnet join` "
        "becomes this).")
    add_name_flag(p)
    p.add_argument("--state-dir", default="",
                   help="supervise the joined node whose state is in this directory instead of cluster NAME")
    p.add_argument("--foreground", action="store_true",
                   help="with --state-dir: start the node's agent, show its log here, stop it on Ctrl-C")
    p.set_defaults(func=run_supervise)


def run_supervise(args: argparse.Namespace) -> int:
    from podnet.cluster.forkstart import ForkStarter
    from podnet.cluster.supervise import run_supervisor

    if os.geteuid() != 0:
        raise CLIError("the supervisor starts network namespaces' daemons: run it as root")
    os.umask(0o077)
    logging.basicConfig(format="%(asctime)s %(name)s %(levelname)s %(message)s", level=logging.INFO)
    if args.state_dir:
        from podnet.cluster.supervise import run_joined_supervisor

        state_dir = Path(args.state_dir)
        if not (state_dir / "join.json").exists():
            raise CLIError(f"{state_dir} holds no joined node (join.json is missing)")
        if not args.foreground:
            rotate_stderr_log(logging.INFO)
            run_joined_supervisor(state_dir)
            return 0
        return _supervise_joined_foreground(state_dir)
    if args.foreground:
        raise CLIError("--foreground goes with --state-dir (a joined node's agent)")
    cfg = load_config(args.name)
    cfg.token = ""  # the daemons it forks read their own credentials; none is kept here for them to inherit
    rotate_stderr_log(logging.INFO)
    # the supervisor is the daemons' fork server: they share the modules it imported (forkstart.py)
    starter = ForkStarter(_run_podnet, {"controlplane": _preload_controlplane, "agent": _preload_agent})
    run_supervisor(cfg, starter.start)
    return 0


def _supervise_joined_foreground(state_dir: Path) -> int:
    import json
    import sys

    from podnet.cli.output import err_console
    from podnet.cluster.join import running_agent
    from podnet.cluster.supervise import run_joined_supervisor

    logging.getLogger().setLevel(logging.INFO)  # the supervisor's started/restarted/stopped lines here
    if running_agent(state_dir) is not None:
        raise CLIError(f"this machine already runs the agent of {state_dir}: `podnet list` shows it; "
                       f"`podnet leave --state-dir {state_dir}` stops it")
    try:
        restarts = run_joined_supervisor(state_dir, foreground=True, out=sys.stderr.buffer)
    except ValueError as e:
        raise CLIError(str(e)) from None
    try:
        node = str(json.loads((state_dir / "join.json").read_text()).get("node", ""))
    except (OSError, ValueError):  # `podnet leave` stopped us and removed the state directory
        err_console.print(f"agent stopped ({restarts} restart(s)); the node left (`podnet leave`)")
        return 0
    err_console.print(f"agent for node {node} stopped ({restarts} restart(s)); the node stays in the cluster "
                      f"(NotReady until an agent runs again): `podnet join` resumes it, `podnet leave "
                      f"--state-dir {state_dir}` removes it here")
    return 0


def _run_podnet(args: list[str]) -> int:
    """`podnet ARGS` in a daemon forked by the supervisor."""
    from podnet.cli import main

    return main.main(args)


def _preload_controlplane() -> None:
    """What `podnet controlplane` imports (see `serve`), for the supervisor to share with it."""
    import _strptime  # noqa: F401 - time.strptime's lazy import

    import cryptography.hazmat.backends.openssl.backend  # noqa: F401 - on the first key or certificate

    import podnet.allocators.service_hooks
    import podnet.api.auth
    import podnet.api.sa_tokens
    import podnet.api.server
    import podnet.client.client
    import podnet.cluster.bootstrap
    import podnet.cluster.join
    import podnet.controllers.runner
    import podnet.core.tls
    import podnet.model.defaults_kinds
    import podnet.store
    import podnet.store.sqlite  # noqa: F401


def _preload_agent() -> None:
    """What `podnet agent` imports, for the supervisor to share with the agents it forks (checked against
    an exec'd agent's `PYTHONPROFILEIMPORTTIME=1` log: a module imported later is simply not shared)."""
    import podnet.agent.hostmount
    import podnet.agent.main
    import podnet.cli.cmd_agent
    import podnet.dns.envvars
    import podnet.dns.podconfig
    import podnet.images.runtimes
    import podnet.images.store
    import podnet.net.nodenet
    import podnet.net.real
    import podnet.policy.admin  # noqa: F401


def run(args: argparse.Namespace) -> int:
    os.umask(0o077)  # the store, its WAL, the socket, keys: readable by root only
    cfg = load_config(args.name)
    logging.getLogger().setLevel(logging.INFO)
    rotate_stderr_log(logging.INFO)  # controlplane.log: 10 MiB, then .1 .. .3 (requests: debug level)
    path = args.audit_log or cfg.audit_log  # the flag, else what `podnet up --audit-log` recorded
    audit = Path(path).resolve() if path else None
    asyncio.run(serve(cfg, controllers=not args.no_controllers, audit_log=audit))
    return 0


async def serve(cfg: ClusterConfig, *, controllers: bool = True, audit_log: Path | None = None) -> None:
    from podnet.allocators.service_hooks import ServiceHooks
    from podnet.api.auth import node_authorizer
    from podnet.api.server import APIServer
    from podnet.client.client import ApiClient
    from podnet.cluster.bootstrap import bootstrap_cluster_objects, keep_kubernetes_service
    from podnet.cluster.join import parse_listen, publish_cluster_info
    from podnet.core.gctune import tune_for_large_heap
    from podnet.core.tls import (
        ensure_ca_and_cert,
        ensure_kubelet_client_cert,
        kubelet_client_ssl_context,
        server_ssl_context,
    )
    from podnet.store import open_store

    tune_for_large_heap()  # the controllers' informer caches and the API server's indexes are long-lived
    store_url = cfg.store if "://" in cfg.store else f"sqlite:///{cfg.state_dir / 'store.db'}"
    make_private_dir(cfg.state_dir)
    store = open_store(store_url)
    for suffix in ("", "-wal", "-shm"):  # also a store made before files were private
        with contextlib.suppress(FileNotFoundError):
            os.chmod(cfg.state_dir / f"store.db{suffix}", 0o600)
    hooks = ServiceHooks(cfg.service_cidr, cfg.node_port_bounds(),
                         "" if cfg.lb_pool == "none" else cfg.lb_pool)
    await hooks.load(store)
    from podnet.api.sa_tokens import load_or_create_key

    # ServiceAccount tokens stay valid across control-plane restarts: one signing key per cluster
    server = APIServer(store, hooks={"services": hooks}, tokens=[cfg.token],
                       sa_key=load_or_create_key(cfg.state_dir), audit_log=audit_log)
    host_ip = cfg.host_ip
    reserved = {host_ip: "the host's address on the node network"} if host_ip else {}
    # join tokens and NodeRestriction (podnet.api.auth)
    server.authorizer = node_authorizer(cfg.state_dir, server.registry, reserved)
    await server.bootstrap()
    sock = cfg.api_socket
    with contextlib.suppress(FileNotFoundError):
        sock.unlink()
    # TCP is TLS-only: kubectl sends bearer tokens only over https. The unix socket (reachable
    # only by root on this machine, from any network namespace) is plain HTTP.
    # the `kubernetes` Service IP too: in-cluster clients connect to KUBERNETES_SERVICE_HOST
    hosts = ["127.0.0.1", "localhost", cfg.kubernetes_service_ip] + ([host_ip] if host_ip else [])
    # `podnet up --listen ADDR:PORT`: other machines join here
    listen_addr, listen_port = parse_listen(cfg.listen) if cfg.listen else ("", 0)
    if listen_addr:
        hosts.append(listen_addr)
    ca, crt, key = ensure_ca_and_cert(cfg.state_dir, hosts)
    tls = server_ssl_context(crt, key)
    server.identity.ca_pem = ca.read_text()  # what token Secrets carry as ca.crt
    # pods/log and pods/exec reach node endpoints over mutual TLS (podnet.core.tls)
    server.use_kubelet_tls(kubelet_client_ssl_context(ca, *ensure_kubelet_client_cert(cfg.state_dir)))
    await server.start("127.0.0.1", cfg.api_port, unix_path=str(sock), ssl_context=tls)
    if listen_addr:
        await server.add_listener(listen_addr, listen_port, ssl_context=tls)
        log.info("API server also on https://%s:%s", listen_addr, listen_port)
    if host_ip and (host_ip, cfg.api_port) != (listen_addr, listen_port):
        # in-cluster clients reach the API through the `kubernetes` Service, whose endpoint is
        # host_ip:api_port on podnet's own node network (TLS, and every request needs a token) unless
        # the API listens for other machines (--listen): then it is that address (cfg.api_advertise)
        await server.add_listener(host_ip, cfg.api_port, ssl_context=tls)
        log.info("API server also on https://%s:%s for pods", host_ip, cfg.api_port)
    log.info("API server on https://127.0.0.1:%s and %s", cfg.api_port, sock)

    client = ApiClient(f"unix://{sock}", token=cfg.token)
    await bootstrap_cluster_objects(client, cfg)
    await publish_cluster_info(client, cfg)
    tasks: list[asyncio.Task[object]] = [asyncio.ensure_future(keep_kubernetes_service(client, cfg))]
    ctl_client: ApiClient | None = None
    if controllers:
        from podnet.controllers.inprocess import InProcessClient
        from podnet.controllers.runner import run_controllers

        # the controllers call this process's registry and store watch directly (no HTTP per write)
        ctl_client = InProcessClient(server, f"unix://{sock}", token=cfg.token)
        tasks.append(asyncio.ensure_future(run_controllers(ctl_client, cfg)))

    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    await stop.wait()
    for t in tasks:
        t.cancel()
    for t in tasks:
        with contextlib.suppress(asyncio.CancelledError, Exception):
            await t
    await client.close()
    if ctl_client is not None:
        await ctl_client.close()
    await server.stop()
    await store.close()
