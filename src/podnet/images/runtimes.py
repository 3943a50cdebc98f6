"""Choosing the OCI runtime for this machine: the first of runc, crun that really runs a container here.

Each candidate runs a throw-away container (a busybox-static root filesystem, `true`) once; the
verdict is kept in the image store (`runtime.json`), keyed by the runtimes' paths and versions and
the machine's cgroup mounts, so it is tried again only when one of those changes. On this kind of
machine (cgroup v1 controllers plus a cgroup2 mount: "hybrid") crun refuses to run
("cgroups in hybrid mode not supported") and runc works.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import tempfile
from dataclasses import asdict, dataclass, field
from pathlib import Path

from podnet.images.store import ImageStore

CANDIDATES = ("runc", "crun")
PROBE_BINARIES = ("/bin/busybox", "/usr/bin/busybox")


@dataclass
class RuntimeChoice:
    name: str  # "" when none works
    path: str
    version: str
    refused: dict[str, str] = field(default_factory=dict)  # runtime -> why not

    def describe(self) -> str:
        why = "; ".join(f"{k}: {v}" for k, v in self.refused.items())
        if not self.name:
            return "no OCI runtime works on this machine" + (f" ({why})" if why else "")
        return f"{self.name} {self.version}" + (f" (not {why})" if why else "")


def _version(path: str) -> str:
    try:
        out = subprocess.run([path, "--version"], capture_output=True, text=True, timeout=10).stdout
    except (OSError, subprocess.TimeoutExpired):
        return ""
    first = out.strip().splitlines()[0] if out.strip() else ""
    return first.split()[-1] if first else ""


def _cgroup_signature() -> str:
    try:
        lines = Path("/proc/self/mounts").read_text().splitlines()
    except OSError:
        return ""
    return ",".join(sorted(ln.split()[1] for ln in lines if ln.split()[2:3] in (["cgroup"], ["cgroup2"])))


def _busybox() -> str | None:
    for p in PROBE_BINARIES:
        if os.path.exists(p):
            return p
    return None


def probe(path: str, busybox: str) -> str:
    """"" when `path` runs a container here, else its error."""
    tmp = Path(tempfile.mkdtemp(prefix="podnet-runtime-probe-"))
    cid = f"podnet-probe-{os.getpid()}-{Path(path).name}"
    parent = f"podnet-probe-{os.getpid()}"  # this process's own: concurrent probes never share it
    try:
        rootfs = tmp / "bundle" / "rootfs"
        (rootfs / "bin").mkdir(parents=True)
        shutil.copy2(busybox, rootfs / "bin" / "busybox")
        from podnet.images.ocispec import RunSpec, runtime_config

        cfg = runtime_config(RunSpec(argv=["/bin/busybox", "true"], env=["PATH=/bin"], cwd="/", uid=0, gid=0,
                                     additional_gids=[], hostname="probe", netns_path="",
                                     cgroups_path=f"/{parent}/{cid}"))
        (tmp / "bundle" / "config.json").write_text(json.dumps(cfg))
        try:
            r = subprocess.run([path, "--root", str(tmp / "state"), "run", "--bundle", str(tmp / "bundle"),
                                cid], capture_output=True, text=True, timeout=30, stdin=subprocess.DEVNULL)
        except subprocess.TimeoutExpired:
            return "timed out running a test container"
        subprocess.run([path, "--root", str(tmp / "state"), "delete", "--force", cid], capture_output=True,
                       timeout=30)
        if r.returncode != 0:
            err = (r.stderr or r.stdout).strip().splitlines()
            return err[-1][-300:] if err else f"exit status {r.returncode}"
        return ""
    except OSError as e:
        return str(e)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
        _remove_probe_cgroups(parent)


def _remove_probe_cgroups(parent: str) -> None:
    """The probe's parent cgroup in every hierarchy, once empty (never raises: it is tidying up)."""
    try:
        mounts = Path("/proc/self/mounts").read_text().splitlines()
    except OSError:
        return
    for line in mounts:
        parts = line.split()
        if len(parts) > 2 and parts[2] in ("cgroup", "cgroup2"):
            d = Path(parts[1]) / parent
            try:
                for child in d.iterdir():
                    if child.is_dir():
                        child.rmdir()
                d.rmdir()
            except OSError:
                pass


def choose(store: ImageStore | None = None, *, candidates: tuple[str, ...] = CANDIDATES) -> RuntimeChoice:
    """The runtime to use on this machine (cached per machine while nothing relevant changes)."""
    store = store or ImageStore()
    found = [(c, shutil.which(c) or "") for c in candidates]
    key_src = json.dumps([[c, p, _version(p) if p else ""] for c, p in found] + [_cgroup_signature()])
    key = hashlib.sha256(key_src.encode()).hexdigest()
    cache = store.root / "runtime.json"
    try:
        data = json.loads(cache.read_text())
        if data.get("key") == key:
            return RuntimeChoice(**data["choice"])
    except (OSError, ValueError, TypeError, KeyError):
        pass
    busybox = _busybox()
    refused: dict[str, str] = {}
    choice = RuntimeChoice("", "", "", refused)
    for name, path in found:
        if not path:
            refused[name] = "not installed"
            continue
        if busybox is None:
            refused[name] = "cannot test it: busybox-static is not installed"
            continue
        err = probe(path, busybox)
        if err:
            refused[name] = err
        elif not choice.name:
            choice = RuntimeChoice(name, path, _version(path), refused)
    store.ensure()
    tmp = cache.with_suffix(".tmp")
    tmp.write_text(json.dumps({"key": key, "choice": asdict(choice)}))
    os.replace(tmp, cache)
    return choice
