"""`podnet start`: a cluster back from its state directory, after a reboot of the machine or `podnet stop`.

What a reboot loses is re-made where missing (podnet.cluster.supervise.restore_network): the bridge
and the host's address, the guard routes, the node namespaces and their links, the cluster's cgroup.
Then the supervisor is started, and it starts the control plane and the agents the journal records
(with the argv they were started with); the store, the CA, the tokens and the kubeconfig are kept.
If the API port was taken meanwhile by another program, a free one is chosen and the kubeconfig is
written again.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
import time
from collections.abc import Callable

from podnet.cluster.cgroup import ClusterCgroup
from podnet.cluster.supervise import restore_network, start_supervisor, supervised, supervisor_alive
from podnet.cluster.up import Reporter, _ready_nodes, api_answers, free_port, quiet_step, write_kubeconfig
from podnet.core import journal as jr
from podnet.core.config import ClusterConfig
from podnet.net.ops import NetOps


class StartError(Exception):
    """The cluster could not be started; the message says why."""


def _port_free(port: int) -> bool:
    with socket.socket() as s:
        try:
            s.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def start(cfg: ClusterConfig, ops: NetOps, *, step: Reporter = quiet_step, wait_timeout: float = 90.0,
          node_progress: Callable[[int, int], None] | None = None) -> None:
    journal = jr.Journal(cfg.state_dir)
    daemons = [e.name for e in journal.entries(jr.PROCESS) if supervised(e.name)]
    if not daemons:
        raise StartError(f'cluster "{cfg.name}" records no control plane in its journal: it cannot be '
                         f"started (remove it with `podnet down --name {cfg.name}`)")
    with step(f"Network of cluster {cfg.name} in place"):
        try:
            restore_network(cfg, ops, journal)
        except Exception as e:
            raise StartError(f"cannot re-make the cluster's network: {e}") from e
    cg = ClusterCgroup.for_cluster(cfg.name)
    if cg is not None:
        journal.record(jr.CGROUP, str(cg.path))
        if not cg.create():
            cg = None
    if not api_answers(cfg.api_port, 1.0) and not _port_free(cfg.api_port):
        old = cfg.api_port
        cfg.api_port = free_port()
        cfg.save()
        with contextlib.suppress(OSError):
            write_kubeconfig(cfg)
        with step(f"API port {old} is taken by another program: the API moves to {cfg.api_port}"):
            pass
    with step("Supervisor running (it starts the control plane and the agents)"):
        if not supervisor_alive(journal):
            start_supervisor(cfg, journal, cg)
    deadline = time.monotonic() + wait_timeout
    with step(f"Control plane: API on {cfg.api_url}"):
        while not api_answers(cfg.api_port, 1.0):
            if time.monotonic() > deadline:
                raise StartError(f"the API did not answer within {wait_timeout:.0f}s; see "
                                 f"{cfg.state_dir / 'logs'}/controlplane.log and supervisor.log")
            time.sleep(0.2)
    want = {d.removeprefix("agent-") for d in daemons if d.startswith("agent-")}
    if want:
        with step(f"Every node Ready ({len(want)})"):
            ready: set[str] = set()
            while True:
                with contextlib.suppress(Exception):  # the API may still be settling
                    ready = asyncio.run(_ready_nodes(cfg)) & want
                if node_progress is not None:
                    node_progress(len(ready), len(want))
                if ready == want:
                    break
                if time.monotonic() > deadline:
                    raise StartError(f"nodes not Ready within {wait_timeout:.0f}s: "
                                     f"{', '.join(sorted(want - ready))}; agent logs are in "
                                     f"{cfg.state_dir / 'logs'}")
                time.sleep(0.3)
    write_kubeconfig(cfg)
