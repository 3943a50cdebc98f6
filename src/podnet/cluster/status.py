"""`podnet list`: the clusters on this machine, read from their state directories and the journal.

running:    the control plane and every agent are alive and the API answers /readyz;
restarting: some are not (or the API does not answer yet), and the supervisor is bringing them back;
stopped:    none of its processes is alive (after a reboot, or `podnet stop`: `podnet start`);
broken:     some are alive and some not, and no supervisor is running.
`supervised` says whether the cluster's supervisor (podnet.cluster.supervise) is alive.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

from podnet.cluster.procs import is_same_process
from podnet.cluster.supervise import supervised, supervisor_alive
from podnet.cluster.up import api_answers, known_clusters
from podnet.core import journal as jr
from podnet.core.config import ClusterConfig
from podnet.core.layout import plan_nodes


@dataclass
class ClusterStatus:
    name: str
    status: str
    api: str
    network: str
    node_network: str
    pod_cidr: str
    service_cidr: str
    nodes: list[str] = field(default_factory=list)
    processes_alive: int = 0
    processes_recorded: int = 0
    supervised: bool = False
    state_dir: str = ""
    kubeconfig: str = ""

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def api_ready(cfg: ClusterConfig, timeout: float = 1.0) -> bool:
    return api_answers(cfg.api_port, timeout)


def cluster_status(cfg: ClusterConfig) -> ClusterStatus:
    # podnet's own daemons; containers the agents record may end on their own without harm
    journal = jr.Journal(cfg.state_dir)
    procs = [e for e in journal.entries(jr.PROCESS) if supervised(e.name)]
    sup = supervisor_alive(journal)
    alive = 0
    for e in procs:
        pid = e.attrs.get("pid")
        if isinstance(pid, int) and is_same_process(pid, e.attrs.get("starttime")):
            alive += 1
    if procs and alive == len(procs) and api_ready(cfg):
        status = "running"
    elif sup:
        status = "restarting"
    elif alive == 0:
        status = "stopped"
    else:
        status = "broken"
    try:
        nodes = [n.name for n in plan_nodes(cfg)]
    except (ValueError, TypeError):
        nodes = []
    kubeconfig = cfg.state_dir / "kubeconfig"
    return ClusterStatus(name=cfg.name, status=status, api=cfg.api_url, network=cfg.network,
                         node_network=cfg.node_network, pod_cidr=cfg.pod_cidr, service_cidr=cfg.service_cidr,
                         nodes=nodes, processes_alive=alive, processes_recorded=len(procs), supervised=sup,
                         state_dir=str(cfg.state_dir),
                         kubeconfig=str(kubeconfig) if kubeconfig.exists() else "")


def list_clusters() -> list[ClusterStatus]:
    return [cluster_status(c) for c in known_clusters()]
