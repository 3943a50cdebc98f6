"""The `podnet` command: one sub-command module per area, each registering its own parsers."""

from __future__ import annotations

import argparse
import logging
import sys
from types import ModuleType

from podnet import __version__


def _command_modules() -> tuple[ModuleType, ...]:
    """One module per area, each with `register(subparsers)`; its parsers set `func(args) -> int`.
    Imported here (not at the top) because each of them imports this module for CLIError."""
    from podnet.cli import (
        cmd_agent,  # agent: one per node (started by `up`, or by hand on another machine)
        cmd_apply,  # apply: kubectl apply after local, located manifest checks
        cmd_cluster,  # up, down, list, kubeconfig
        cmd_daemons,  # controlplane (started by `up`)
        cmd_demo,  # demo
        cmd_exec,  # exec, node-exec, curl
        cmd_image,  # image pull/load/ls/rm/prune: the machine's image store
        cmd_join,  # token create/list/revoke, join, leave: nodes on other machines
        cmd_kubectl,  # kubectl passthrough
        cmd_policy,  # policy check: NetworkPolicy verdicts from the live rules
        cmd_status,  # status
        cmd_trace,  # trace, top/traffic
        cmd_ui,  # ui: the live web view
    )

    return (cmd_cluster, cmd_kubectl, cmd_apply, cmd_exec, cmd_status, cmd_trace, cmd_demo, cmd_daemons,
            cmd_agent, cmd_join, cmd_image, cmd_policy, cmd_ui)


def _daemon_modules(command: str | None) -> tuple[ModuleType, ...] | None:
    """The one module a daemon's command needs: daemons import nothing of the other commands (memory)."""
    if command == "agent":
        from podnet.cli import cmd_agent

        return (cmd_agent,)
    if command in ("controlplane", "supervise"):
        from podnet.cli import cmd_daemons

        return (cmd_daemons,)
    return None


def build_parser(modules: tuple[ModuleType, ...] | None = None) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="podnet",
        description="Kubernetes networking made real on this machine: pods, nodes and Services "
        "in network namespaces and nftables, driven by kubectl.",
    )
    parser.add_argument("--version", action="version", version=f"podnet {__version__}")
    parser.add_argument("-v", "--verbose", action="store_true", help="log debug output to stderr")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for mod in modules or _command_modules():
        mod.register(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    parser = build_parser(_daemon_modules(next((a for a in argv if not a.startswith("-")), None)))
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.DEBUG if args.verbose else logging.WARNING,
                        format="%(asctime)s %(name)s %(levelname)s %(message)s")
    func = getattr(args, "func", None)
    if func is None:
        parser.print_help()
        return 0
    try:
        return int(func(args) or 0)
    except KeyboardInterrupt:
        return 130
    except CLIError as e:
        print(f"error: {e}", file=sys.stderr)
        return e.exit_code


class CLIError(Exception):
    """An error for the user: printed as `error: <message>`, no traceback."""

    def __init__(self, message: str, exit_code: int = 1):
        super().__init__(message)
        self.exit_code = exit_code


if __name__ == "__main__":
    # Under `python -m podnet.cli.main` this file runs as __main__; the sub-command modules import
    # podnet.cli.main (a second copy), whose CLIError is the one they raise: dispatch through it.
    from podnet.cli.main import main as _main

    sys.exit(_main())
