"""`podnet token create|list|revoke` (on the control plane's machine), `podnet join` and `podnet leave`
(on the machine that joins)."""

from __future__ import annotations

import argparse
import os
from pathlib import Path

from podnet.cli.common import add_name_flag, load_config
from podnet.cli.main import CLIError
from podnet.cli.output import add_output_flag, emit, err_console
from podnet.core.config import DEFAULT_KUBELET_PORT


def register(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    p = sub.add_parser("token", help="join tokens that let other machines join a cluster",
                       description="Join tokens (kubeadm-style abcdef.0123456789abcdef) let `podnet join` "
                       "register a node; the node can then act only as that node.")
    tsub = p.add_subparsers(dest="token_command", metavar="ACTION")
    c = tsub.add_parser("create", help="create a join token and print it")
    add_name_flag(c)
    c.add_argument("--ttl", default="24h", help="how long it can register nodes: 1h, 30m, 2h30m; 0 = forever "
                   "(default 24h)")
    c.add_argument("--description", default="", help="a note shown by `token list`")
    c.add_argument("--print-join-command", action="store_true",
                   help="print the whole `podnet join ...` command instead of the token alone")
    c.set_defaults(func=run_token_create)
    ls = tsub.add_parser("list", help="list join tokens (IDs and expiry; secrets are not stored)")
    add_name_flag(ls)
    add_output_flag(ls)
    ls.set_defaults(func=run_token_list)
    rv = tsub.add_parser("revoke", help="revoke a join token: its nodes get 401 from their next request")
    add_name_flag(rv)
    rv.add_argument("id", help="the token's ID (the part before the dot) or the whole token")
    rv.set_defaults(func=run_token_revoke)
    p.set_defaults(func=lambda args: (p.print_help(), 0)[1])

    j = sub.add_parser(
        "join", help="join this machine to a cluster as a node (run the node agent here)",
        description="Verify the API server's CA, register this machine as a node and run the node agent "
        "in this network namespace. The command with --token and --ca-cert-hash is printed by "
        "`podnet up --listen ADDR` or `podnet token create --print-join-command`.")
    j.add_argument("--server", required=True, help="the API server: https://ADDR:PORT")
    j.add_argument("--token", default=os.environ.get("PODNET_JOIN_TOKEN", ""),
                   help="a join token (abcdef.0123456789abcdef); default: $PODNET_JOIN_TOKEN, which keeps it "
                   "off the command line (the node's agent never has it there: it reads a 0600 file)")
    j.add_argument("--ca-cert-hash", default="", metavar="sha256:HEX",
                   help="trust the server's CA only if its public key has this hash")
    j.add_argument("--ca-file", default="", help="trust the server's CA from this PEM file instead")
    j.add_argument("--node-name", default="", help="this node's name (default: the host name)")
    j.add_argument("--node-ip", default="",
                   help="this node's IP (default: the address this machine reaches the server from)")
    j.add_argument("--state-dir", default="",
                   help="where the node keeps its state (default: $PODNET_STATE_ROOT/joined/<cluster>)")
    j.add_argument("--network", choices=("host-gw", "vxlan"), default="",
                   help="how pods reach other nodes (default: the cluster's mode)")
    j.add_argument("--kubelet-port", type=int, default=DEFAULT_KUBELET_PORT,
                   help=f"the node's kubelet endpoint ({DEFAULT_KUBELET_PORT})")
    j.add_argument("--background", action="store_true",
                   help="run the agent and its supervisor in the background (PIDs in the state directory) "
                   "and return once the node is Ready; without it, join supervises the agent in the "
                   "foreground, shows its log, and Ctrl-C stops both")
    j.add_argument("--wait-timeout", type=float, default=60.0, metavar="SECONDS",
                   help="with --background: how long to wait for the node to be Ready (default 60)")
    j.set_defaults(func=run_join)

    lv = sub.add_parser("leave", help="stop this machine's node agent and remove what it made here",
                        description="Undo `podnet join` on this machine: stop the agent and its pods, "
                        "remove their namespaces, podnet's routes, VXLAN link and nft table, and the "
                        "state directory. The Node object stays in the cluster until deleted there.")
    lv.add_argument("--state-dir", default="", help="the node's state directory (as given to join)")
    lv.add_argument("--cluster", default="", help="the cluster joined (to find the default state directory)")
    lv.set_defaults(func=run_leave)


def run_token_create(args: argparse.Namespace) -> int:
    from podnet.api.auth import JoinTokens, parse_ttl
    from podnet.cluster.join import JoinError, join_command

    cfg = load_config(args.name)
    try:
        ttl = parse_ttl(args.ttl)
    except ValueError as e:
        raise CLIError(str(e)) from None
    if args.print_join_command and not cfg.listen:
        raise CLIError(f'cluster "{cfg.name}" does not listen for other machines: create it with '
                       "`podnet up --listen ADDR[:PORT]`")
    token = JoinTokens(cfg.state_dir).create(ttl, args.description)
    if args.print_join_command:
        try:
            print(join_command(cfg, token))
        except JoinError as e:
            raise CLIError(str(e)) from None
    else:
        print(token)
    return 0


def run_token_list(args: argparse.Namespace) -> int:
    from podnet.api.auth import JoinTokens

    tokens = JoinTokens(load_config(args.name).state_dir).list()
    rows = [(t.id, t.expires or "never", "yes" if t.expired() else "no", t.created, t.description)
            for t in tokens]
    emit(args, [t.to_dict() for t in tokens], ["ID", "EXPIRES", "EXPIRED", "CREATED", "DESCRIPTION"], rows)
    return 0


def run_token_revoke(args: argparse.Namespace) -> int:
    from podnet.api.auth import JoinTokens

    tid = args.id.split(".", 1)[0]
    if not JoinTokens(load_config(args.name).state_dir).revoke(tid):
        raise CLIError(f'join token "{tid}" not found in cluster "{args.name}" (see `podnet token list`)')
    err_console.print(f"join token {tid} revoked: nodes using it get 401 Unauthorized from now on")
    return 0


def run_join(args: argparse.Namespace) -> int:
    from podnet.agent.hostmount import rejoin_host_mount_ns
    from podnet.cluster.join import JoinError, JoinOptions, exec_foreground, plan_join, start_background

    if os.geteuid() != 0:
        raise CLIError("join creates network namespaces, links and nftables rules: run it as root")
    os.umask(0o077)  # the state directory holds the node's credential: root only
    if not args.token:
        raise CLIError("give the join token: --token abcdef.0123456789abcdef, or PODNET_JOIN_TOKEN in the "
                       "environment")
    if args.wait_timeout <= 0:
        raise CLIError(f"invalid --wait-timeout {args.wait_timeout:g}: must be more than 0 seconds")
    rejoin_host_mount_ns()  # under `ip netns exec`: the pods' namespaces must be visible to everyone
    opts = JoinOptions(server=args.server, token=args.token, ca_cert_hash=args.ca_cert_hash,
                       ca_file=args.ca_file, node_name=args.node_name, node_ip=args.node_ip,
                       state_dir=args.state_dir, network=args.network, kubelet_port=args.kubelet_port,
                       background=args.background, wait_timeout=args.wait_timeout)
    try:
        plan = plan_join(opts)
        err_console.print(f"[green]✓[/green] server {plan.server} verified against the cluster CA; cluster "
                          f"{plan.config.name} ({plan.config.network})")
        if not args.background:
            err_console.print(f"running the agent for node {plan.node_name} ({plan.node_ip}) under a "
                              f"supervisor in the foreground (restarted with back-off if it dies; Ctrl-C "
                              f"stops both); state in {plan.state_dir}")
            exec_foreground(plan)  # becomes `podnet supervise --state-dir DIR --foreground`
            return 0  # not reached
        with err_console.status(f"Starting the agent for node {plan.node_name} ({plan.node_ip})") as st:
            proc = start_background(plan, args.wait_timeout, lambda s: st.update(
                f"Starting the agent for node {plan.node_name} ({plan.node_ip}) ... {s}"))
    except JoinError as e:
        raise CLIError(str(e)) from None
    err_console.print(f"[green]✓[/green] node {plan.node_name} ({plan.node_ip}) is Ready; agent PID "
                      f"{proc.pid}, log {proc.log}\n  leave with: podnet leave --state-dir {plan.state_dir}")
    return 0


def run_leave(args: argparse.Namespace) -> int:
    from podnet.cluster.join import JoinError, leave
    from podnet.core.config import state_root
    from podnet.net.real import RealNetOps

    if os.geteuid() != 0:
        raise CLIError("leave removes network namespaces, links and nftables rules: run it as root")
    if args.state_dir:
        state_dir = Path(args.state_dir)
    elif args.cluster:
        state_dir = state_root() / "joined" / args.cluster
    else:
        joined = sorted(p for p in (state_root() / "joined").glob("*") if (p / "join.json").exists())
        if len(joined) != 1:
            where = ", ".join(str(p) for p in joined) or "none"
            raise CLIError(f"say which node to remove with --state-dir or --cluster (joined here: {where})")
        state_dir = joined[0]
    ops = RealNetOps()
    try:
        rep = leave(state_dir, ops)
    except JoinError as e:
        raise CLIError(str(e)) from None
    finally:
        ops.close()
    if rep.problems:
        for p in rep.problems:
            err_console.print(f"  could not remove {p}")
        raise CLIError(f"left the cluster partly; state kept in {state_dir}: run `podnet leave` again")
    err_console.print(f"[green]✓[/green] node {rep.node} left: stopped {len(rep.processes)} process(es), "
                      f"removed {len(rep.removed)} object(s) and {state_dir}\n  on the control plane: "
                      f"kubectl delete node {rep.node}")
    return 0
