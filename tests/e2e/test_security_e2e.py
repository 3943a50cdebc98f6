"""Security of a running cluster (issue 19): no credential on any process's command line, credential
files and the state directory readable by root only, and the node endpoint on <nodeIP>:10250 refusing
every caller but the API server (no client certificate: refused, also from a pod and as a non-root user).

Traffic goes only from the host to the node IPs on the cluster's own bridge, and inside its namespaces.
"""

from __future__ import annotations

import json
import os
import shutil
import stat
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
from cluster_support import Cluster, running_cluster

pytestmark = [
    pytest.mark.kernel,
    pytest.mark.e2e,
    pytest.mark.xdist_group("security-e2e"),
    pytest.mark.skipif(os.geteuid() != 0, reason="needs root: network namespaces and nftables"),
    pytest.mark.skipif(shutil.which("kubectl") is None, reason="kubectl is not installed"),
]


@pytest.fixture(scope="module")
def cluster() -> Iterator[Cluster]:
    with running_cluster("sec", "--nodes", "2") as c:
        yield c


def _cmdlines() -> dict[int, str]:
    out = {}
    for d in Path("/proc").iterdir():
        if d.name.isdigit():
            try:
                out[int(d.name)] = (d / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
            except OSError:
                continue
    return out


def _secrets(c: Cluster) -> list[str]:
    cfg = json.loads(Path(c.state_dir, "config.json").read_text())
    return [cfg["token"]]


def test_no_credential_on_any_command_line(cluster: Cluster) -> None:
    join_token = cluster.podnet("token", "create", "--name", cluster.name).stdout.strip()
    secrets = [*_secrets(cluster), join_token, join_token.split(".")[1]]
    assert all(len(s) >= 16 for s in secrets)
    lines = _cmdlines()
    ours = [line for line in lines.values() if f"--name {cluster.name}" in line]
    agents = [line for line in ours if " agent " in line]
    assert len(agents) == 2 and any(" controlplane " in line for line in ours), ours
    assert all("--token-file" in a and "--token " not in a for a in agents), agents
    leaks = {pid: line for pid, line in lines.items() for s in secrets if s in line}
    assert not leaks, f"credentials on command lines: {leaks}"


def _mode(p: Path) -> int:
    return stat.S_IMODE(p.stat().st_mode)


def test_credential_files_and_the_state_directory_are_root_only(cluster: Cluster) -> None:
    cluster.podnet("token", "create", "--name", cluster.name)
    d = Path(cluster.state_dir)
    assert _mode(d) == 0o700
    private = ["config.json", "token", "kubeconfig", "store.db", "ca.key", "server.key", "join-tokens.json"]
    private += [p.name for p in d.glob("store.db-*")]
    private += [str(p.relative_to(d)) for p in (d / "logs").glob("*.log")]
    private += [str(p.relative_to(d)) for p in d.glob("**/*.key")]
    modes = {name: oct(_mode(d / name)) for name in private}
    assert all(m == oct(0o600) for m in modes.values()), modes
    # nobody but root reads anything in it: not even the list of files
    res = subprocess.run(["setpriv", "--reuid=nobody", "--regid=nogroup", "--clear-groups", "--",
                          "cat", str(d / "config.json")], capture_output=True, text=True, timeout=10)
    assert res.returncode != 0 and "Permission denied" in res.stderr
