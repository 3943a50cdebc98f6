"""Mount points the built-in runtime has to make on the host's filesystem, and their removal.

The built-in runtime runs containers on the host's root filesystem in a private mount namespace,
so a volume mounted at a path that does not exist on the host (`mountPath: /etc/settings`) needs
an empty directory (or file) there to bind onto. That path is shared by every podnet cluster on
the machine (whatever their state roots), so who uses it is kept in one machine-wide registry
(`/var/lib/podnet/mountpoints.json`, 0600, under an flock). A registry object works for one scope
(a cluster's state directory): `claim(key, mounts)` makes what is missing and records exactly the
paths it made, owned by `<scope>/<key>/` (key = a pod's uid); `release(key)` drops that owner and
removes a made path once nobody uses it (only while it is still an empty directory or an empty
file: a path someone filled is left alone); `release_scope()` does it for every pod of the cluster
(`podnet down`, also after a crash).
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

MACHINE_REGISTRY = Path("/var/lib/podnet/mountpoints.json")


class MountPointRegistry:
    def __init__(self, scope: str | Path, path: Path = MACHINE_REGISTRY):
        self.scope = str(scope).rstrip("/") + "/"
        self.path = path

    @contextlib.contextmanager
    def _locked(self) -> Iterator[dict[str, Any]]:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            raw = b""
            while chunk := os.read(fd, 1 << 16):
                raw += chunk
            try:
                data = json.loads(raw) if raw.strip() else {}
            except ValueError:
                data = {}
            if not isinstance(data, dict):
                data = {}
            yield data
            out = json.dumps(data, sort_keys=True).encode()
            os.lseek(fd, 0, os.SEEK_SET)
            os.ftruncate(fd, 0)
            os.write(fd, out)
        finally:
            os.close(fd)

    def claim(self, key: str, mounts: Iterable[tuple[str, str]]) -> list[str]:
        """Make the missing mount points of (destination, source) pairs; returns the paths made."""
        owner = f"{self.scope}{key}/"
        made_now: list[str] = []
        with self._locked() as data:
            for dst, src in mounts:
                real = os.path.realpath(dst)
                entry = data.get(real)
                if entry is None and os.path.lexists(real):
                    continue  # the host's own path: not ours to track
                if entry is None or not os.path.lexists(real):
                    made = _make(real, is_dir=os.path.isdir(src))
                    if entry is None:
                        if not made:
                            continue
                        entry = data[real] = {"made": made, "owners": []}
                    made_now += made
                if owner not in entry["owners"]:
                    entry["owners"].append(owner)
        return made_now

    def release(self, key: str) -> list[str]:
        """Drop the owner `key`; remove the made paths nobody uses any more (returned)."""
        return self._release(f"{self.scope}{key}/")

    def release_scope(self) -> list[str]:
        """Drop every owner of this scope (all pods of the cluster)."""
        return self._release(self.scope)

    def _release(self, owner_prefix: str) -> list[str]:
        removed: list[str] = []
        with self._locked() as data:
            for real in list(data):
                entry = data[real]
                owners = [o for o in entry.get("owners", []) if not str(o).startswith(owner_prefix)]
                if owners:
                    entry["owners"] = owners
                    continue
                del data[real]
                for path in reversed(entry.get("made", [])):
                    if _remove_if_empty(str(path)):
                        removed.append(str(path))
        return removed


def _make(real: str, *, is_dir: bool) -> list[str]:
    """Create `real` (a directory, or an empty file) and its missing parents; the paths made, top first."""
    missing: list[str] = []
    p = real
    while not os.path.lexists(p):
        missing.append(p)
        parent = os.path.dirname(p)
        if parent == p:
            break
        p = parent
    missing.reverse()
    for i, path in enumerate(missing):
        if i == len(missing) - 1 and not is_dir:
            with open(path, "a"):
                pass
        else:
            os.mkdir(path, 0o755)
    return missing


def _remove_if_empty(path: str) -> bool:
    try:
        if os.path.ismount(path):
            return False
        st = os.lstat(path)
        if os.path.isdir(path) and not os.path.islink(path):
            os.rmdir(path)  # fails (and keeps it) when something was put inside
            return True
        if st.st_size == 0 and os.path.isfile(path):
            os.unlink(path)
            return True
    except OSError:
        pass
    return False
