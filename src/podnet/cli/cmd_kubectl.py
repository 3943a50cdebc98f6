"""`podnet kubectl ARGS...`: the installed kubectl, pointed at a podnet cluster."""

from __future__ import annotations

import argparse
import os
import shutil

from podnet.cli.common import add_name_flag, kubeconfig_path, load_config
from podnet.cli.main import CLIError


def register(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    p = sub.add_parser(
        "kubectl",
        help="run the installed kubectl against a podnet cluster",
        description="Run kubectl with KUBECONFIG set to the cluster's kubeconfig. "
        "Everything after `kubectl` is passed through, e.g. `podnet kubectl get svc -o wide`.",
    )
    add_name_flag(p)
    p.add_argument("args", nargs=argparse.REMAINDER, help="arguments for kubectl")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    cfg = load_config(args.name)
    kubectl = shutil.which("kubectl")
    if kubectl is None:
        raise CLIError("kubectl is not installed; install it, or use the kubeconfig from `podnet kubeconfig`")
    kargs = list(args.args)
    if kargs and kargs[0] == "--":
        kargs = kargs[1:]
    env = dict(os.environ, KUBECONFIG=kubeconfig_path(cfg))
    os.execve(kubectl, [kubectl, *kargs], env)
    return 0  # not reached
