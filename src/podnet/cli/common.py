"""Helpers shared by CLI commands: which cluster, its config, an API client."""

from __future__ import annotations

import argparse
import os

from podnet.cli.main import CLIError
from podnet.client.client import ApiClient
from podnet.core.config import DEFAULT_NAME, ClusterConfig, state_root

DEFAULT_CLUSTER = os.environ.get("PODNET_CLUSTER", DEFAULT_NAME)


def add_name_flag(p: argparse.ArgumentParser) -> None:
    p.add_argument("--name", default=DEFAULT_CLUSTER,
                   help=f"cluster name (default: $PODNET_CLUSTER or {DEFAULT_CLUSTER!r})")


def load_config(name: str) -> ClusterConfig:
    try:
        return ClusterConfig.load(name)
    except FileNotFoundError:
        known = sorted(p.name for p in (state_root() / "clusters").glob("*") if (p / "config.json").exists())
        hint = f"; clusters here: {', '.join(known)}" if known else "; create one with `podnet up`"
        raise CLIError(f'cluster "{name}" not found{hint}') from None


def client_for(cfg: ClusterConfig) -> ApiClient:
    """A client over the cluster's unix socket when this machine has it, else TLS on loopback."""
    if cfg.api_socket.exists():
        return ApiClient(f"unix://{cfg.api_socket}", token=cfg.token)
    return ApiClient(cfg.api_url, token=cfg.token, ca_file=str(cfg.ca_file))


def kubeconfig_path(cfg: ClusterConfig) -> str:
    return str(cfg.state_dir / "kubeconfig")
