"""The machine's image store: one OCI image layout shared by every cluster and node on this machine.

    <state root>/images/
      oci/               OCI image layout (index.json + blobs/sha256/<hex>): layers are stored once,
                         named by their digest; each image is an index entry named by its reference
      rootfs/<hex>/      an image unpacked once (by `umoci unpack`), keyed by its manifest digest: the
                         shared read-only lower layer of every container that runs it
      uses/<hex>/<id>    which live containers run an image (so `prune` keeps it)
      lock               flock: shared while reading blobs or copying new ones in, exclusive while
                         index.json changes or blobs are removed
      auth.json          optional node-level registry credentials (0600), handed to skopeo by path

Blobs arrive through skopeo, which writes each one under a temporary name, checks its digest and
renames it; a pull is a temporary layout whose blobs go straight to the shared blob directory and
whose index entry is merged into the store's index only once the whole image is there. A pull
killed half way leaves at most unreferenced blobs, which `prune` removes.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import shutil
import subprocess
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from podnet.core.config import state_root
from podnet.images.registry import ImageRef, ImageRefError, parse_ref

REF_ANNOTATION = "org.opencontainers.image.ref.name"
MANIFEST_TYPES = ("application/vnd.oci.image.manifest.v1+json",
                  "application/vnd.docker.distribution.manifest.v2+json")


class StoreError(Exception):
    pass


@dataclass(frozen=True)
class StoredImage:
    name: str  # the reference it is stored under, canonical (docker.io/library/nginx:1.25)
    digest: str  # manifest digest, sha256:...
    size: int  # manifest + config + layers, bytes
    created: str

    @property
    def repository(self) -> str:
        return parse_ref(self.name).repository

    @property
    def image_id(self) -> str:
        """What Kubernetes shows as containerStatuses[].imageID: repository@manifest digest."""
        return f"{self.repository}@{self.digest}"


@dataclass(frozen=True)
class ImageConfig:
    """The parts of an image's config a runtime needs (OCI image spec `config`)."""
    entrypoint: list[str]
    cmd: list[str]
    env: list[str]
    working_dir: str
    user: str
    exposed_ports: list[str]

    @classmethod
    def from_blob(cls, data: dict[str, Any]) -> ImageConfig:
        c = data.get("config") or {}
        return cls(list(c.get("Entrypoint") or []), list(c.get("Cmd") or []), list(c.get("Env") or []),
                   str(c.get("WorkingDir") or ""), str(c.get("User") or ""),
                   sorted((c.get("ExposedPorts") or {}).keys()))


def canonical_name(image: str) -> str:
    """The name an image is stored under: docker.io/library/busybox:latest, 127.0.0.1:5000/app@sha256:..."""
    ref = parse_ref(image)
    if ref.digest:
        return f"{ref.repository}@{ref.digest}"
    return f"{ref.repository}:{ref.tag}"


def _hex(digest: str) -> str:
    algo, _, h = digest.partition(":")
    if algo != "sha256" or len(h) != 64 or any(c not in "0123456789abcdef" for c in h):
        raise StoreError(f"unsupported digest {digest!r}: expected sha256:<64 hex digits>")
    return h


class ImageStore:
    def __init__(self, root: Path | None = None):
        self.root = root if root is not None else state_root() / "images"
        self.layout = self.root / "oci"
        self.blobs = self.layout / "blobs" / "sha256"
        self.rootfs_dir = self.root / "rootfs"
        self.uses_dir = self.root / "uses"
        self.auth_file = self.root / "auth.json"

    # ---- setup and locking ----
    def ensure(self) -> None:
        for d in (self.root, self.layout, self.blobs, self.rootfs_dir, self.uses_dir, self.root / "tmp"):
            d.mkdir(parents=True, exist_ok=True)
        os.chmod(self.root, 0o700)
        layout = self.layout / "oci-layout"
        if not layout.exists():
            layout.write_text(json.dumps({"imageLayoutVersion": "1.0.0"}))
        if not (self.layout / "index.json").exists():
            self._write_index({"schemaVersion": 2, "manifests": []})

    @contextlib.contextmanager
    def lock(self, exclusive: bool) -> Iterator[None]:
        self.ensure()
        fd = os.open(self.root / "lock", os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX if exclusive else fcntl.LOCK_SH)
            yield
        finally:
            os.close(fd)  # closing drops the lock

    def tmpdir(self, prefix: str) -> Path:
        self.ensure()
        return Path(tempfile.mkdtemp(prefix=prefix, dir=self.root / "tmp"))

    # ---- index ----
    def _read_index(self) -> dict[str, Any]:
        try:
            data: dict[str, Any] = json.loads((self.layout / "index.json").read_text())
        except FileNotFoundError:
            return {"schemaVersion": 2, "manifests": []}
        except ValueError as e:
            raise StoreError(f"image store index {self.layout / 'index.json'} is corrupt: {e}") from None
        return data

    def _write_index(self, index: dict[str, Any]) -> None:
        path = self.layout / "index.json"
        tmp = path.with_name(f".index.{os.getpid()}.tmp")
        tmp.write_text(json.dumps(index))
        os.replace(tmp, path)

    def blob_path(self, digest: str) -> Path:
        return self.blobs / _hex(digest)

    def read_blob(self, digest: str) -> dict[str, Any]:
        try:
            data: dict[str, Any] = json.loads(self.blob_path(digest).read_text())
        except FileNotFoundError:
            raise StoreError(f"blob {digest} is missing from the image store") from None
        return data

    def _entries(self) -> list[dict[str, Any]]:
        return [m for m in self._read_index().get("manifests") or []
                if (m.get("annotations") or {}).get(REF_ANNOTATION)]

    def _image(self, entry: dict[str, Any]) -> StoredImage:
        digest = str(entry["digest"])
        size = int(entry.get("size") or 0)
        created = ""
        with contextlib.suppress(StoreError, OSError, ValueError, KeyError):
            manifest = self.read_blob(digest)
            size += int(manifest["config"].get("size") or 0)
            size += sum(int(layer.get("size") or 0) for layer in manifest.get("layers") or [])
            created = str(self.read_blob(str(manifest["config"]["digest"])).get("created") or "")
        return StoredImage(str(entry["annotations"][REF_ANNOTATION]), digest, size, created)

    def images(self) -> list[StoredImage]:
        return sorted((self._image(e) for e in self._entries()), key=lambda i: i.name)

    def find(self, image: str) -> StoredImage | None:
        """The stored image for a reference: by name, or by repository + digest for digest references."""
        try:
            ref = parse_ref(image)
        except ImageRefError:
            return None
        name = canonical_name(image)
        entries = self._entries()
        for e in entries:
            if e["annotations"][REF_ANNOTATION] == name:
                return self._image(e)
        if ref.digest:
            for e in entries:
                other = _safe_ref(str(e["annotations"][REF_ANNOTATION]))
                if other is not None and other.repository == ref.repository and e.get("digest") == ref.digest:
                    return self._image(e)
        return None

    def config_of(self, img: StoredImage) -> ImageConfig:
        manifest = self.read_blob(img.digest)
        return ImageConfig.from_blob(self.read_blob(str(manifest["config"]["digest"])))

    def add_entries(self, entries: list[dict[str, Any]]) -> None:
        """Merge index entries (from a finished copy) into the store's index; the blobs must all be here."""
        with self.lock(exclusive=True):
            for e in entries:
                self._check_complete(str(e["digest"]))
            index = self._read_index()
            names = {e["annotations"][REF_ANNOTATION] for e in entries}
            kept = [m for m in index.get("manifests") or []
                    if (m.get("annotations") or {}).get(REF_ANNOTATION) not in names]
            index["manifests"] = kept + entries
            self._write_index(index)

    def _check_complete(self, manifest_digest: str) -> None:
        manifest = self.read_blob(manifest_digest)
        if manifest.get("mediaType") not in (None, *MANIFEST_TYPES) or "layers" not in manifest:
            raise StoreError(f"{manifest_digest} is not an image manifest ({manifest.get('mediaType')})")
        for d in [manifest["config"]["digest"], *(layer["digest"] for layer in manifest["layers"])]:
            if not self.blob_path(str(d)).exists():
                raise StoreError(f"blob {d} of {manifest_digest} is missing")

    def remove(self, image: str) -> StoredImage:
        with self.lock(exclusive=True):
            img = self.find(image)
            if img is None:
                raise StoreError(f"image {image!r} is not in the image store (podnet image ls lists them)")
            index = self._read_index()
            index["manifests"] = [m for m in index.get("manifests") or []
                                  if (m.get("annotations") or {}).get(REF_ANNOTATION) != img.name]
            self._write_index(index)
            return img

    # ---- uses and garbage collection ----
    def record_use(self, digest: str, use_id: str, pid: int, starttime: int) -> None:
        d = self.uses_dir / _hex(digest)
        d.mkdir(parents=True, exist_ok=True)
        (d / use_id).write_text(json.dumps({"pid": pid, "starttime": starttime}))

    def forget_use(self, digest: str, use_id: str) -> None:
        with contextlib.suppress(OSError, StoreError):
            (self.uses_dir / _hex(digest) / use_id).unlink()

    def in_use(self) -> set[str]:
        """Manifest digests that a live container runs (stale use records are dropped)."""
        used: set[str] = set()
        if not self.uses_dir.exists():
            return used
        for d in self.uses_dir.iterdir():
            for f in d.iterdir():
                try:
                    rec = json.loads(f.read_text())
                    alive = _start_time(int(rec["pid"])) == int(rec["starttime"])
                except (OSError, ValueError, KeyError):
                    alive = False
                if alive:
                    used.add("sha256:" + d.name)
                else:
                    f.unlink(missing_ok=True)
            with contextlib.suppress(OSError):
                d.rmdir()
        return used

    def prune(self, *, all_unused: bool) -> tuple[list[str], int]:
        """Remove images no live container uses (with `all_unused`), then every unreferenced blob and
        unpacked root filesystem. Returns (names removed, bytes freed)."""
        freed = 0
        removed: list[str] = []
        with self.lock(exclusive=True):
            used = self.in_use()
            index = self._read_index()
            if all_unused:
                keep = []
                for m in index.get("manifests") or []:
                    name = (m.get("annotations") or {}).get(REF_ANNOTATION)
                    if name and m.get("digest") not in used:
                        removed.append(str(name))
                    else:
                        keep.append(m)
                index["manifests"] = keep
                self._write_index(index)
            live: set[str] = set()
            for m in index.get("manifests") or []:
                live.add(str(m["digest"]))
                with contextlib.suppress(StoreError, KeyError, ValueError):
                    man = self.read_blob(str(m["digest"]))
                    live.add(str(man["config"]["digest"]))
                    live.update(str(layer["digest"]) for layer in man.get("layers") or [])
            for blob in self.blobs.iterdir():
                if "sha256:" + blob.name not in live:
                    freed += blob.stat().st_size
                    blob.unlink()
            for d in self.rootfs_dir.iterdir():
                digest = "sha256:" + d.name.removeprefix(".tmp-").split(".")[0]
                if d.name.startswith(".tmp-") or (digest not in live and digest not in used):
                    shutil.rmtree(d, ignore_errors=True)
            shutil.rmtree(self.root / "tmp", ignore_errors=True)
        return removed, freed

    # ---- unpacking ----
    def unpacked(self, img: StoredImage, unpack: UnpackFn | None = None) -> Path:
        """The image's root filesystem, unpacked once per machine (shared, never written to)."""
        h = _hex(img.digest)
        final = self.rootfs_dir / h
        if (final / "rootfs").is_dir():
            return final / "rootfs"
        with self.lock(exclusive=False):
            if (final / "rootfs").is_dir():
                return final / "rootfs"
            tmp = self.rootfs_dir / f".tmp-{h}.{os.getpid()}.{time.monotonic_ns()}"
            try:
                (unpack or umoci_unpack)(self, img, tmp)
                try:
                    os.rename(tmp, final)
                except OSError:  # someone else finished first
                    shutil.rmtree(tmp, ignore_errors=True)
            finally:
                if tmp.exists():
                    shutil.rmtree(tmp, ignore_errors=True)
        return final / "rootfs"


def _safe_ref(name: str) -> ImageRef | None:
    try:
        return parse_ref(name)
    except ImageRefError:
        return None


def _start_time(pid: int) -> int | None:
    """Start time of a live process (field 22 of /proc/PID/stat), None when gone or a zombie."""
    try:
        rest = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except (OSError, IndexError):
        return None
    return None if rest[0] == "Z" else int(rest[19])


UnpackFn = Callable[["ImageStore", StoredImage, Path], None]


def umoci_unpack(store: ImageStore, img: StoredImage, dest: Path) -> None:
    """Unpack with umoci (whiteouts applied, paths kept inside the root), after podnet's layer checks."""
    from podnet.images.layercheck import check_image_layers

    check_image_layers(store, img)
    r = subprocess.run(["umoci", "unpack", "--image", f"{store.layout}:{img.name}", str(dest)],
                       capture_output=True, text=True, timeout=600)
    if r.returncode != 0:
        raise StoreError(f"unpacking {img.name} failed: {r.stderr.strip()[-2000:]}")
