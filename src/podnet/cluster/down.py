"""`podnet down`: remove exactly what a cluster's journal recorded — processes, namespaces, host links,
host routes, host nft tables, its cgroup — then its state directory. Works after a crash or a `kill -9`
of every podnet process, and is idempotent: what is already gone is skipped."""

from __future__ import annotations

import contextlib
import shutil
import subprocess
from dataclasses import dataclass, field
from pathlib import Path

from podnet.agent.mountpoints import MountPointRegistry
from podnet.agent.volumes import MEMORY_VOLUME_ROOT
from podnet.cluster.cgroup import ClusterCgroup, remove_container_cgroups
from podnet.cluster.procs import stop_processes
from podnet.cluster.supervise import SUPERVISOR
from podnet.core import journal as jr
from podnet.core.config import state_root
from podnet.net.ops import NetOps, NetOpsError, NotFoundError


@dataclass
class DownReport:
    name: str
    processes: list[int] = field(default_factory=list)
    netns: list[str] = field(default_factory=list)
    links: list[str] = field(default_factory=list)
    routes: list[str] = field(default_factory=list)
    nft: list[str] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)
    state_dir_removed: bool = False

    def summary(self) -> str:
        parts = [f"{len(self.processes)} process(es)", f"{len(self.netns)} namespace(s)",
                 f"{len(self.links)} link(s)", f"{len(self.routes)} route(s)"]
        if self.nft:
            parts.append(f"{len(self.nft)} nft table(s)")
        return "removed " + ", ".join(parts)


def cluster_dir(name: str) -> Path:
    return state_root() / "clusters" / name


def _int_or_none(v: object) -> int | None:
    try:
        return int(str(v))
    except (TypeError, ValueError):
        return None


def teardown(name: str, ops: NetOps, *, keep_state: bool = False, grace: float = 3.0) -> DownReport:
    """Remove everything recorded for cluster `name`. Never raises for objects already gone."""
    state_dir = cluster_dir(name)
    journal = jr.Journal(state_dir)
    entries = journal.entries()
    rep = DownReport(name=name)

    # 1. processes: the supervisor first (it would restart the others), then SIGTERM (agents may tidy
    # up), SIGKILL the rest, then the whole cgroup
    procs, daemons = [], []
    for e in entries:
        if e.kind == jr.PROCESS and e.name == SUPERVISOR:
            pid = _int_or_none(e.attrs.get("pid"))
            if pid is not None and pid > 1:
                rep.processes += stop_processes([(pid, _int_or_none(e.attrs.get("starttime")))], grace=grace)
    entries = journal.entries()  # read again: the supervisor may have restarted a daemon meanwhile
    for e in entries:
        if e.kind == jr.PROCESS and e.name != SUPERVISOR:
            pid = _int_or_none(e.attrs.get("pid"))
            if pid is not None and pid > 1:
                procs.append((pid, _int_or_none(e.attrs.get("starttime"))))
                if e.name == "controlplane" or e.name.startswith("agent-"):
                    daemons.append(pid)
    # podnet's own daemons get `grace` seconds to tidy up; what they ran (containers) is killed after them
    rep.processes += stop_processes(procs, grace=grace, wait_for=daemons)
    for e in entries:
        if e.kind == jr.CGROUP and Path(e.name).name.startswith("podnet-"):  # only a cgroup podnet made
            cg = ClusterCgroup(Path(e.name))
            cg.kill_all()
            remove_container_cgroups(name)
            cg.remove()
    remove_container_cgroups(name)  # also where the machine gave the cluster no cgroup of its own

    # 2. nft tables in the host namespace (tables inside our namespaces go with them)
    for e in entries:
        if e.kind == jr.NFT and not e.attrs.get("netns"):
            family, _, table = e.name.partition(" ")
            r = subprocess.run(["nft", "delete", "table", family, table], capture_output=True, text=True,
                               timeout=10)
            if r.returncode == 0:
                rep.nft.append(e.name)
            elif "No such file" not in r.stderr:
                rep.problems.append(f"nft table {e.name}: {r.stderr.strip()}")

    # 3. namespaces, newest first (pods before their nodes)
    for e in reversed([e for e in entries if e.kind == jr.NETNS]):
        if ops.netns_exists(e.name):
            try:
                ops.netns_del(e.name)
                rep.netns.append(e.name)
            except NotFoundError:
                pass
            except (NetOpsError, OSError) as ex:
                rep.problems.append(f"namespace {e.name}: {ex}")

    # 4. host links, then host routes
    for e in reversed([e for e in entries if e.kind == jr.LINK]):
        ns = e.attrs.get("netns") or None
        if ns is not None and not ops.netns_exists(str(ns)):
            continue
        try:
            if ops.link_get(e.name, netns=ns) is not None:
                ops.link_del(e.name, netns=ns)
                rep.links.append(e.name)
        except NotFoundError:
            pass
        except (NetOpsError, OSError) as ex:
            rep.problems.append(f"link {e.name}: {ex}")
    for e in entries:
        if e.kind == jr.ROUTE and not e.attrs.get("netns"):
            metric = _int_or_none(e.attrs.get("metric")) or 0
            if metric == 0:
                continue  # never delete by destination alone: it could be someone else's route
            try:
                ops.route_del(e.name, metric=metric)
                rep.routes.append(f"{e.name} metric {metric}")
            except NotFoundError:
                pass
            except (NetOpsError, OSError) as ex:
                rep.problems.append(f"route {e.name}: {ex}")

    # 5. what the built-in runtime made on the host filesystem: memory volumes, mount points no one uses
    for e in entries:
        if e.kind == jr.DIR and Path(e.name).parent == MEMORY_VOLUME_ROOT and Path(e.name).name == name:
            shutil.rmtree(e.name, ignore_errors=True)
    try:
        MountPointRegistry(state_dir).release_scope()
    except OSError as ex:
        rep.problems.append(f"mount points: {ex}")

    # 6. the state directory
    if not keep_state and not rep.problems:
        with contextlib.suppress(FileNotFoundError):
            shutil.rmtree(state_dir)
        rep.state_dir_removed = True
    return rep
