"""kubeconfig files for a podnet cluster, shaped like the ones `kind get kubeconfig` prints."""

from __future__ import annotations

import base64
from pathlib import Path
from typing import Any

import yaml


def render_kubeconfig(cluster_name: str, server: str, token: str, ca_file: Path | None = None) -> str:
    """A kubeconfig whose cluster, user and (current) context are all named `podnet-<name>`,
    namespace default; with TLS, the CA certificate is inlined as certificate-authority-data."""
    name = f"podnet-{cluster_name}"
    cluster: dict[str, Any] = {}
    if ca_file is not None:
        cluster["certificate-authority-data"] = base64.b64encode(ca_file.read_bytes()).decode()
    cluster["server"] = server
    user: dict[str, Any] = {"token": token} if token else {}
    doc = {
        "apiVersion": "v1",
        "clusters": [{"cluster": cluster, "name": name}],
        "contexts": [{"context": {"cluster": name, "namespace": "default", "user": name}, "name": name}],
        "current-context": name,
        "kind": "Config",
        "preferences": {},
        "users": [{"name": name, "user": user}],
    }
    return yaml.safe_dump(doc, sort_keys=False, default_flow_style=False)
