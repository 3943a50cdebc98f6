"""What the agent must remember about a pod across its own restarts: `<pod dir>/state.json`.

Pod dir: `<state_dir>/nodes/<node>/pods/<uid>/`; each container start has its own
run dir `containers/<name>/<attempt>/` holding the log, pid.json and exit.json.
"""

from __future__ import annotations

import json
import logging
import shutil
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

log = logging.getLogger(__name__)


@dataclass
class ContainerRecord:
    name: str
    attempt: int = 0  # run dir number of the current/last start
    restart_count: int = 0
    shim_pid: int = 0
    shim_start: int = 0
    state: dict[str, Any] = field(default_factory=dict)
    last_state: dict[str, Any] = field(default_factory=dict)
    started_at: float = 0.0
    backoff: float = 0.0
    done: bool = False  # will not run again (terminated under Never/OnFailure, or init container done)


@dataclass
class PodRecord:
    uid: str
    namespace: str
    name: str
    pod_ip: str = ""
    netns: str = ""
    start_time: str = ""
    init_done: bool = False
    containers: dict[str, ContainerRecord] = field(default_factory=dict)

    def container(self, name: str) -> ContainerRecord:
        if name not in self.containers:
            self.containers[name] = ContainerRecord(name)
        return self.containers[name]


class PodDirs:
    def __init__(self, root: Path):
        self.root = root  # <state_dir>/nodes/<node>/pods

    def pod_dir(self, uid: str) -> Path:
        return self.root / uid

    def run_dir(self, uid: str, container: str, attempt: int) -> Path:
        return self.pod_dir(uid) / "containers" / container / str(attempt)

    def log_path(self, uid: str, container: str, attempt: int) -> Path:
        return self.run_dir(uid, container, attempt) / "log"

    def prune_runs(self, uid: str, container: str, keep_from: int) -> None:
        """Drop run dirs older than `keep_from` (kubelet keeps the current and the previous log)."""
        base = self.pod_dir(uid) / "containers" / container
        if not base.is_dir():
            return
        for d in base.iterdir():
            if d.name.isdigit() and int(d.name) < keep_from:
                shutil.rmtree(d, ignore_errors=True)

    def save(self, rec: PodRecord) -> None:
        d = self.pod_dir(rec.uid)
        d.mkdir(parents=True, exist_ok=True)
        tmp = d / "state.json.tmp"
        tmp.write_text(json.dumps(asdict(rec), indent=1))
        tmp.replace(d / "state.json")

    def load(self, uid: str) -> PodRecord | None:
        try:
            data = json.loads((self.pod_dir(uid) / "state.json").read_text())
        except (FileNotFoundError, ValueError):
            return None
        conts = {k: ContainerRecord(**v) for k, v in (data.pop("containers", None) or {}).items()}
        try:
            return PodRecord(**data, containers=conts)
        except TypeError:
            log.warning("ignoring unreadable pod state for %s", uid)
            return None

    def load_all(self) -> dict[str, PodRecord]:
        out: dict[str, PodRecord] = {}
        if not self.root.is_dir():
            return out
        for d in self.root.iterdir():
            rec = self.load(d.name)
            if rec is not None:
                out[rec.uid] = rec
        return out

    def remove(self, uid: str) -> None:
        shutil.rmtree(self.pod_dir(uid), ignore_errors=True)


def find_container_pid(state_dir: Path, node: str, uid: str, container: str) -> int | None:
    """The PID of a running container process, from the agent's state files (for `podnet exec`)."""
    dirs = PodDirs(state_dir / "nodes" / node / "pods")
    rec = dirs.load(uid)
    if rec is None or container not in rec.containers:
        return None
    c = rec.containers[container]
    try:
        data = json.loads((dirs.run_dir(uid, container, c.attempt) / "pid.json").read_text())
        pid = int(data["pid"])
    except (FileNotFoundError, ValueError, KeyError):
        return None
    if (dirs.run_dir(uid, container, c.attempt) / "exit.json").exists() or not Path(f"/proc/{pid}").exists():
        return None
    return pid
