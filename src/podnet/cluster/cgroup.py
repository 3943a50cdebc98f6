"""One cgroup v2 per cluster (`<cgroup2 mount>/podnet-<name>`): every process of the cluster, the
agents' children included, lives in it, so `cgroup.kill` ends them all at once, even those nobody
recorded. Used only where the machine allows it (a cgroup2 mount we can write, with `cgroup.kill`);
the journal stays the record of what podnet started."""

from __future__ import annotations

import contextlib
import os
import time
from pathlib import Path


def cgroup_mounts() -> list[Path]:
    """Every cgroup hierarchy's mount point (v1 controllers and cgroup2)."""
    try:
        lines = Path("/proc/self/mounts").read_text().splitlines()
    except OSError:
        return []
    return [Path(p[1]) for p in (ln.split() for ln in lines) if len(p) > 2 and p[2] in ("cgroup", "cgroup2")]


def remove_container_cgroups(cluster: str, timeout: float = 3.0) -> None:
    """The cgroups the OCI runtime made for the cluster's containers (`podnet-<cluster>/<container>` in
    every hierarchy): their processes are killed, then the directories removed. The cluster's own
    cgroup2 directory is left to `ClusterCgroup.remove`."""
    import signal

    two = cgroup2_mount()
    for root in cgroup_mounts():
        top = root / f"podnet-{cluster}"
        if not top.is_dir():
            continue
        children = [d for d in top.iterdir() if d.is_dir()]
        for d in children:
            deadline = time.monotonic() + timeout
            while time.monotonic() < deadline:
                try:
                    pids = [int(x) for x in (d / "cgroup.procs").read_text().split()]
                except (OSError, ValueError):
                    pids = []
                if not pids:
                    break
                for pid in pids:
                    with contextlib.suppress(OSError):
                        os.kill(pid, signal.SIGKILL)
                time.sleep(0.02)
            with contextlib.suppress(OSError):
                d.rmdir()
        if root != two:
            with contextlib.suppress(OSError):
                top.rmdir()


def cgroup2_mount() -> Path | None:
    """Where the cgroup v2 hierarchy is mounted (/sys/fs/cgroup or /sys/fs/cgroup/unified), if anywhere."""
    try:
        lines = Path("/proc/self/mounts").read_text().splitlines()
    except OSError:
        return None
    for line in lines:
        parts = line.split()
        if len(parts) >= 3 and parts[2] == "cgroup2":
            return Path(parts[1])
    return None


class ClusterCgroup:
    def __init__(self, path: Path):
        self.path = path

    @classmethod
    def for_cluster(cls, cluster: str) -> ClusterCgroup | None:
        root = cgroup2_mount()
        if root is None or not (root / "cgroup.procs").exists():
            return None
        return cls(root / f"podnet-{cluster}")

    @property
    def procs_file(self) -> Path:
        return self.path / "cgroup.procs"

    @property
    def usable(self) -> bool:
        return (self.path / "cgroup.kill").exists()

    def create(self) -> bool:
        """Make the cgroup; False when the machine does not allow it (then podnet goes on without)."""
        try:
            self.path.mkdir(exist_ok=True)
        except OSError:
            return False
        return self.usable

    def pids(self) -> list[int]:
        try:
            return [int(x) for x in self.procs_file.read_text().split()]
        except (FileNotFoundError, ValueError):
            return []

    def kill_all(self, timeout: float = 3.0) -> None:
        """SIGKILL every process in the cgroup (and its descendants) and wait until it is empty."""
        if not self.usable:
            return
        with contextlib.suppress(OSError):
            (self.path / "cgroup.kill").write_text("1")
        deadline = time.monotonic() + timeout
        while self.pids() and time.monotonic() < deadline:
            for pid in self.pids():  # our own children stay as zombies (and in the cgroup) until reaped
                with contextlib.suppress(ChildProcessError, OSError):
                    os.waitpid(pid, os.WNOHANG)
            time.sleep(0.02)

    def remove(self) -> None:
        with contextlib.suppress(FileNotFoundError, OSError):
            self.path.rmdir()
