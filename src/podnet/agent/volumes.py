"""Pod volumes on this node, as the kubelet prepares them, for both container runtimes.

`PodVolumes(pod_dir, sources)` owns one pod's volume directories
(`<pod dir>/volumes/kubernetes.io~<plugin>/<name>`, as the kubelet lays them out):

- `await setup(pod)` makes every volume ready, or raises `VolumeError` with the kubelet's text
  (`MountVolume.SetUp failed for volume "config" : configmap "app" not found`): the pod then
  stays in ContainerCreating and the agent posts a FailedMount event;
- `await refresh(pod)` rewrites configMap, secret, downwardAPI and projected contents that changed
  (and ServiceAccount tokens at 80% of their life), through `AtomicWriter`: files are written into
  a fresh `..<timestamp>` directory, `..data` is switched to it with one rename, and the visible
  names are symlinks through `..data`, so a reader never sees a half-written update;
- `mounts(pod, container)` gives the container's bind mounts as `Mount(destination, source,
  readonly)`: the built-in runtime's shim and the OCI bundle both consume that list.

Supported: emptyDir (`medium: Memory` lives under /dev/shm; `sizeLimit` checked by
`over_size_limit`), configMap and secret (items, defaultMode/mode, optional), downwardAPI,
projected (serviceAccountToken, configMap, secret, downwardAPI), hostPath (with its type checks),
subPath, readOnly. Secret contents are never logged.
"""

from __future__ import annotations

import base64
import datetime as dt
import os
import shutil
import stat
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from podnet.images.ocispec import Mount
from podnet.model.kinds import Obj
from podnet.model.quantity import parse_quantity

Getter = Callable[[str, str], Awaitable[Obj | None]]
TokenRequester = Callable[[Obj, str, int], Awaitable[tuple[str, float] | None]]
"""(pod, audience, expirationSeconds) -> (token, expiry as unix time), None when refused."""

DEFAULT_MODE = 0o644
DATA_DIR = "..data"
PLUGINS = {
    "emptyDir": "empty-dir",
    "configMap": "configmap",
    "secret": "secret",
    "downwardAPI": "downward-api",
    "projected": "projected",
    "hostPath": "host-path",
}
READ_ONLY_KINDS = ("configMap", "secret", "downwardAPI", "projected")
MEMORY_VOLUME_ROOT = Path("/dev/shm/podnet")  # + /<cluster>/<pod uid>/<volume>


class VolumeError(Exception):
    """A volume cannot be set up now (the message is the kubelet's event text)."""


@dataclass
class VolumeSources:
    get_configmap: Getter
    get_secret: Getter
    request_token: TokenRequester | None = None
    shm_root: Path = MEMORY_VOLUME_ROOT


def _d(v: Any) -> dict[str, Any]:
    return v if isinstance(v, dict) else {}


def _l(v: Any) -> list[Any]:
    return v if isinstance(v, list) else []


def volume_kind(volume: dict[str, Any]) -> str:
    return next((k for k in PLUGINS if k in volume), "")


# ---------------------------------------------------------------------------- AtomicWriter


Payload = dict[str, tuple[bytes, int]]
"""relative path -> (content, mode)."""


def _current(target: Path) -> Payload:
    data = target / DATA_DIR
    out: Payload = {}
    if not data.is_dir():
        return out
    for root, _dirs, files in os.walk(data, followlinks=True):
        for f in files:
            p = Path(root) / f
            rel = str(p.relative_to(data))
            out[rel] = (p.read_bytes(), stat.S_IMODE(p.stat().st_mode))
    return out


def write_atomic(target: Path, payload: Payload) -> bool:
    """Make target hold exactly payload (kubelet's AtomicWriter); False when nothing changed."""
    target.mkdir(parents=True, exist_ok=True)
    if (target / DATA_DIR).exists() and _current(target) == payload:
        return False
    stamp = dt.datetime.now(dt.UTC).strftime("..%Y_%m_%d_%H_%M_%S.") + f"{time.time_ns() % 10**9:09d}"
    ts_dir = target / stamp
    ts_dir.mkdir(mode=0o755)
    for rel, (content, mode) in payload.items():
        p = ts_dir / rel
        p.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(p, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "wb") as f:
            f.write(content)
        os.chmod(p, mode)
    old = os.readlink(target / DATA_DIR) if (target / DATA_DIR).is_symlink() else ""
    tmp = target / "..data_tmp"
    if tmp.is_symlink() or tmp.exists():
        tmp.unlink()
    os.symlink(stamp, tmp)
    os.rename(tmp, target / DATA_DIR)
    top = {rel.split("/", 1)[0] for rel in payload}
    for name in top:
        link = target / name
        if not link.is_symlink():
            if link.exists():
                shutil.rmtree(link) if link.is_dir() else link.unlink()
            os.symlink(f"{DATA_DIR}/{name}", link)
    for entry in target.iterdir():
        if entry.name.startswith(".."):
            continue
        if entry.name not in top and entry.is_symlink():
            entry.unlink()
    if old and old != stamp:
        shutil.rmtree(target / old, ignore_errors=True)
    return True


# ---------------------------------------------------------------------------- payloads


def _mode(item: dict[str, Any], default: int) -> int:
    mode = item.get("mode")
    return int(mode) & 0o777 if isinstance(mode, int) and not isinstance(mode, bool) else default


def _default_mode(src: dict[str, Any]) -> int:
    mode = src.get("defaultMode")
    return int(mode) & 0o777 if isinstance(mode, int) and not isinstance(mode, bool) else DEFAULT_MODE


def _keyed(data: dict[str, bytes], src: dict[str, Any], default_mode: int, what: str) -> Payload:
    """configMap/secret items (`items` picks and renames keys; none: every key)."""
    items = [_d(i) for i in _l(src.get("items"))]
    if not items:
        return {k: (v, default_mode) for k, v in data.items()}
    out: Payload = {}
    for item in items:
        key = str(item.get("key") or "")
        if key not in data:
            if src.get("optional"):
                continue
            raise VolumeError(f"{what} references non-existent {what} key: {key}")
        out[str(item.get("path") or key)] = (data[key], _mode(item, default_mode))
    return out


def _configmap_bytes(cm: Obj) -> dict[str, bytes]:
    data = {str(k): str(v).encode() for k, v in _d(cm.get("data")).items()}
    for k, v in _d(cm.get("binaryData")).items():
        try:
            data[str(k)] = base64.b64decode(str(v))
        except ValueError:
            continue
    return data


def _secret_bytes(secret: Obj) -> dict[str, bytes]:
    out: dict[str, bytes] = {}
    for k, v in _d(secret.get("data")).items():
        try:
            out[str(k)] = base64.b64decode(str(v))
        except ValueError:
            continue
    return out


def _format_map(m: dict[str, Any]) -> str:
    return "\n".join(f'{k}="{v}"' for k, v in sorted(m.items()))


def downward_value(pod: Obj, item: dict[str, Any], containers: list[Obj]) -> str:
    """A downwardAPI file's content (fieldRef or resourceFieldRef), as the kubelet renders it."""
    meta = _d(pod.get("metadata"))
    ref = _d(item.get("fieldRef"))
    if ref:
        path = str(ref.get("fieldPath") or "")
        simple = {
            "metadata.name": meta.get("name"),
            "metadata.namespace": meta.get("namespace"),
            "metadata.uid": meta.get("uid"),
        }
        if path in simple:
            return str(simple[path] or "")
        if path == "metadata.labels":
            return _format_map(_d(meta.get("labels")))
        if path == "metadata.annotations":
            return _format_map(_d(meta.get("annotations")))
        for prefix, src in (
            ("metadata.labels", meta.get("labels")),
            ("metadata.annotations", meta.get("annotations")),
        ):
            if path.startswith(prefix + "['") and path.endswith("']"):
                return str(_d(src).get(path[len(prefix) + 2 : -2], ""))
        raise VolumeError(f'unsupported fieldPath: "{path}"')
    res = _d(item.get("resourceFieldRef"))
    if res:
        name = str(res.get("containerName") or "")
        container = next(
            (c for c in containers if c.get("name") == name), containers[0] if containers else {}
        )
        return resource_value(container, res)
    return ""


def resource_value(container: Obj, ref: dict[str, Any]) -> str:
    """`resourceFieldRef` as the kubelet resolves it: the container's limit (or request), in units of
    `divisor` rounded up; an unset limit reads as the node's allocatable (reported here as 0)."""
    resource = str(ref.get("resource") or "")
    kind, _, what = resource.partition(".")
    value = _d(_d(container.get("resources")).get(kind)).get(what)
    divisor_text = str(ref.get("divisor") or "1")
    try:
        amount = parse_quantity(str(value)) if value is not None else 0
        divisor = parse_quantity(divisor_text) or 1
    except ValueError:
        return "0"
    import math

    return str(math.ceil(amount / divisor)) if amount else "0"


# ---------------------------------------------------------------------------- the pod's volumes


class PodVolumes:
    def __init__(self, pod_dir: Path, sources: VolumeSources):
        self.pod_dir = pod_dir
        self.sources = sources
        self.tokens: dict[str, tuple[str, float, float]] = {}  # volume/path -> (token, issued, expiry)

    def volume_dir(self, pod: Obj, volume: dict[str, Any]) -> Path:
        kind = volume_kind(volume)
        name = str(volume.get("name") or "")
        if kind == "hostPath":
            return Path(str(_d(volume["hostPath"]).get("path") or "/"))
        if kind == "emptyDir" and _d(volume.get("emptyDir")).get("medium") == "Memory":
            uid = str(_d(pod.get("metadata")).get("uid") or "pod")
            return self.sources.shm_root / uid / name
        return self.pod_dir / "volumes" / f"kubernetes.io~{PLUGINS.get(kind, 'unknown')}" / name

    async def setup(self, pod: Obj) -> None:
        for volume in _l(_d(pod.get("spec")).get("volumes")):
            volume = _d(volume)
            kind = volume_kind(volume)
            name = str(volume.get("name") or "")
            try:
                if kind == "emptyDir":
                    self.volume_dir(pod, volume).mkdir(parents=True, exist_ok=True, mode=0o777)
                    os.chmod(self.volume_dir(pod, volume), 0o777)
                elif kind == "hostPath":
                    check_host_path(_d(volume["hostPath"]))
                elif kind in READ_ONLY_KINDS:
                    write_atomic(self.volume_dir(pod, volume), await self._payload(pod, volume))
            except VolumeError as e:
                raise VolumeError(f'MountVolume.SetUp failed for volume "{name}" : {e}') from None

    async def refresh(self, pod: Obj) -> list[str]:
        """Rewrite what changed; returns the names of the volumes that changed (missing sources are
        left as they were, as the kubelet does once a volume is set up)."""
        changed: list[str] = []
        for volume in _l(_d(pod.get("spec")).get("volumes")):
            volume = _d(volume)
            if volume_kind(volume) not in READ_ONLY_KINDS:
                continue
            try:
                payload = await self._payload(pod, volume)
            except VolumeError:
                continue
            if write_atomic(self.volume_dir(pod, volume), payload):
                changed.append(str(volume.get("name")))
        return changed

    async def _payload(self, pod: Obj, volume: dict[str, Any]) -> Payload:
        ns = str(_d(pod.get("metadata")).get("namespace") or "default")
        kind = volume_kind(volume)
        src = _d(volume.get(kind))
        mode = _default_mode(src)
        containers = [_d(c) for c in _l(_d(pod.get("spec")).get("containers"))]
        if kind == "configMap":
            return await self._configmap(ns, src, mode)
        if kind == "secret":
            return await self._secret(ns, src, mode, str(src.get("secretName") or ""))
        if kind == "downwardAPI":
            return {
                str(_d(i).get("path")): (downward_value(pod, _d(i), containers).encode(), _mode(_d(i), mode))
                for i in _l(src.get("items"))
            }
        payload: Payload = {}
        for source in _l(src.get("sources")):
            source = _d(source)
            if "configMap" in source:
                payload.update(await self._configmap(ns, _d(source["configMap"]), mode))
            elif "secret" in source:
                sec = _d(source["secret"])
                payload.update(await self._secret(ns, sec, mode, str(sec.get("name") or "")))
            elif "downwardAPI" in source:
                for i in _l(_d(source["downwardAPI"]).get("items")):
                    payload[str(_d(i).get("path"))] = (
                        downward_value(pod, _d(i), containers).encode(),
                        _mode(_d(i), mode),
                    )
            elif "serviceAccountToken" in source:
                sat = _d(source["serviceAccountToken"])
                path = str(sat.get("path") or "token")
                token = await self._token(pod, str(volume.get("name")), sat)
                if token is not None:
                    payload[path] = (token.encode(), _mode(sat, mode if mode != DEFAULT_MODE else 0o644))
        return payload

    async def _configmap(self, ns: str, src: dict[str, Any], mode: int) -> Payload:
        name = str(src.get("name") or "")
        cm = await self.sources.get_configmap(ns, name)
        if cm is None:
            if src.get("optional"):
                return {}
            raise VolumeError(f'configmap "{name}" not found')
        return _keyed(_configmap_bytes(cm), src, mode, "configmap")

    async def _secret(self, ns: str, src: dict[str, Any], mode: int, name: str) -> Payload:
        secret = await self.sources.get_secret(ns, name)
        if secret is None:
            if src.get("optional"):
                return {}
            raise VolumeError(f'secret "{name}" not found')
        return _keyed(_secret_bytes(secret), src, mode, "secret")

    async def _token(self, pod: Obj, volume: str, sat: dict[str, Any]) -> str | None:
        if self.sources.request_token is None:
            return None
        key = f"{volume}/{sat.get('path')}/{sat.get('audience')}"
        seconds = sat.get("expirationSeconds")
        seconds = seconds if isinstance(seconds, int) and not isinstance(seconds, bool) else 3600
        now = time.time()
        held = self.tokens.get(key)
        if held is not None and now < held[1] + 0.8 * (held[2] - held[1]):
            return held[0]
        got = await self.sources.request_token(pod, str(sat.get("audience") or ""), seconds)
        if got is None:
            return None
        self.tokens[key] = (got[0], now, got[1])
        return got[0]

    def mounts(self, pod: Obj, container: Obj) -> list[Mount]:
        volumes = {str(_d(v).get("name")): _d(v) for v in _l(_d(pod.get("spec")).get("volumes"))}
        out: list[Mount] = []
        for vm in _l(container.get("volumeMounts")):
            vm = _d(vm)
            volume = volumes.get(str(vm.get("name")))
            if volume is None or not vm.get("mountPath"):
                continue
            kind = volume_kind(volume)
            source = self.volume_dir(pod, volume)
            sub = str(vm.get("subPath") or "")
            if sub:
                base = source / DATA_DIR if kind in READ_ONLY_KINDS else source
                source = base / sub
                if kind == "emptyDir" and not source.exists():
                    source.mkdir(parents=True, exist_ok=True)
                source = Path(os.path.realpath(source))
            readonly = bool(vm.get("readOnly")) or kind in READ_ONLY_KINDS
            out.append(Mount(str(vm["mountPath"]), str(source), readonly))
        return out

    def over_size_limit(self, pod: Obj) -> str | None:
        """The kubelet's eviction text when an emptyDir holds more than its sizeLimit, else None."""
        for volume in _l(_d(pod.get("spec")).get("volumes")):
            volume = _d(volume)
            limit = _d(volume.get("emptyDir")).get("sizeLimit")
            if "emptyDir" not in volume or limit is None:
                continue
            try:
                cap = parse_quantity(str(limit))
            except ValueError:
                continue
            used = _du(self.volume_dir(pod, volume))
            if used > cap:
                return f'Usage of EmptyDir volume "{volume.get("name")}" exceeds the limit "{limit}". '
        return None

    def cleanup(self, pod: Obj) -> None:
        shutil.rmtree(self.pod_dir / "volumes", ignore_errors=True)
        uid = str(_d(pod.get("metadata")).get("uid") or "")
        if uid:
            shutil.rmtree(self.sources.shm_root / uid, ignore_errors=True)


def _du(path: Path) -> int:
    total = 0
    for root, _dirs, files in os.walk(path):
        for f in files:
            try:
                total += (Path(root) / f).lstat().st_size
            except OSError:
                pass
    return total


def check_host_path(src: dict[str, Any]) -> None:
    """The kubelet's hostPath type checks (creating the path for the *OrCreate types)."""
    path = Path(str(src.get("path") or ""))
    htype = str(src.get("type") or "")
    if htype == "DirectoryOrCreate":
        if not path.exists():
            path.mkdir(parents=True, mode=0o755)
        htype = "Directory"
    elif htype == "FileOrCreate":
        if not path.exists():
            path.parent.mkdir(parents=True, exist_ok=True)
            path.touch(mode=0o644)
        htype = "File"
    checks = {
        "Directory": (stat.S_ISDIR, "is not a directory"),
        "File": (stat.S_ISREG, "is not a file"),
        "Socket": (stat.S_ISSOCK, "is not a socket file"),
        "CharDevice": (stat.S_ISCHR, "is not a character device"),
        "BlockDevice": (stat.S_ISBLK, "is not a block device"),
    }
    if htype not in checks:
        return
    test, why = checks[htype]
    try:
        ok = test(path.stat().st_mode)
    except OSError:
        ok = False
    if not ok:
        raise VolumeError(f"hostPath type check failed: {path} {why}")
