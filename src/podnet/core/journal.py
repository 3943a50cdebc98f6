"""The journal: what podnet made in the kernel and which processes it started, for `podnet down`.

Append-only JSON lines in `<state_dir>/journal.jsonl`. Each line is one
`write()` to a file opened with O_APPEND, under an flock, so the CLI, the
control plane and every agent can record at once. Record BEFORE creating the
object or starting the process (a crash in between leaves a record of
something that may not exist, which `down` tolerates, never the other way
round). Recording the same (kind, name) again merges the new attributes into
the old (e.g. a process's PID once it is known); `forget` drops it.

Kinds used by podnet (others may be added; `down` skips kinds it does not know):
  netns    name = namespace name
  link     name = link name, attrs: netns (None = host)
  route    name = destination, attrs: metric, netns (None = host)
  process  name = a label, attrs: pid, starttime, argv
  nft      name = "<family> <table>", attrs: netns (None = host)
  cgroup   name = cgroup directory path
  dir      name = a directory podnet made for the cluster (e.g. /dev/shm/podnet/<cluster>), removed whole
"""

from __future__ import annotations

import fcntl
import json
import os
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

NETNS = "netns"
LINK = "link"
ROUTE = "route"
PROCESS = "process"
NFT = "nft"
CGROUP = "cgroup"
DIR = "dir"

JOURNAL_FILE = "journal.jsonl"


@dataclass
class JournalEntry:
    kind: str
    name: str
    attrs: dict[str, Any] = field(default_factory=dict)
    seq: int = 0  # order of first record


class Journal:
    def __init__(self, state_dir: Path | str):
        self.state_dir = Path(state_dir)
        self.path = self.state_dir / JOURNAL_FILE

    def _append(self, line: dict[str, Any]) -> None:
        self.state_dir.mkdir(parents=True, exist_ok=True)
        data = (json.dumps(line, sort_keys=True, default=str) + "\n").encode()
        fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            written = os.write(fd, data)
            if written != len(data):
                raise OSError(f"short write to {self.path}")
            os.fsync(fd)
        finally:
            os.close(fd)

    def record(self, kind: str, name: str, **attrs: Any) -> None:
        """Note that (kind, name) is (about to be) ours; call BEFORE creating it."""
        self._append({"op": "record", "kind": kind, "name": name, "attrs": attrs, "ts": time.time()})

    def forget(self, kind: str, name: str) -> None:
        """Note that (kind, name) is gone (removed on purpose)."""
        self._append({"op": "forget", "kind": kind, "name": name, "ts": time.time()})

    def entries(self, kind: str | None = None) -> list[JournalEntry]:
        """What is recorded and not forgotten, in the order first recorded."""
        live: dict[tuple[str, str], JournalEntry] = {}
        seq = 0
        try:
            raw = self.path.read_bytes()
        except FileNotFoundError:
            return []
        for line in raw.splitlines():
            try:
                item = json.loads(line)
            except ValueError:
                continue  # a torn last line after a crash
            key = (str(item.get("kind")), str(item.get("name")))
            if item.get("op") == "record":
                if key in live:
                    live[key].attrs.update(item.get("attrs") or {})
                else:
                    seq += 1
                    live[key] = JournalEntry(kind=key[0], name=key[1], attrs=dict(item.get("attrs") or {}),
                                             seq=seq)
            elif item.get("op") == "forget":
                live.pop(key, None)
        out = sorted(live.values(), key=lambda e: e.seq)
        return [e for e in out if kind is None or e.kind == kind]
