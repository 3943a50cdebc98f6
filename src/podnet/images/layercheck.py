"""Checks on an image's layers before anything is unpacked: what podnet refuses to write.

umoci keeps every path inside the root filesystem (it resolves names with securejoin, so `../`
and symlinks are clamped to the root rather than followed out of it), and it would create device
nodes as root. podnet refuses such layers outright, with a message naming the layer and the entry:

  - a name that is absolute or climbs out with `..`;
  - a hard link whose target is absolute or climbs out;
  - a symbolic link whose relative target climbs above the root (an absolute target is resolved
    inside the container's root at run time and is fine: /bin/sh -> /bin/busybox);
  - an entry written through a symbolic link an earlier entry created (the classic escape);
  - character or block device nodes;
  - an image whose layers unpack to more than the size limit (PODNET_IMAGE_MAX_BYTES, default 8 GiB).
"""

from __future__ import annotations

import os
import posixpath
import tarfile
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from podnet.images.store import ImageStore, StoredImage

DEFAULT_MAX_BYTES = 8 << 30


class LayerError(Exception):
    pass


def max_image_bytes() -> int:
    try:
        return int(os.environ.get("PODNET_IMAGE_MAX_BYTES", DEFAULT_MAX_BYTES))
    except ValueError:
        return DEFAULT_MAX_BYTES


def _climbs_out(path: str) -> bool:
    norm = posixpath.normpath("/" + path)
    depth = 0
    for part in path.split("/"):
        if part == "..":
            depth -= 1
            if depth < 0:
                return True
        elif part not in ("", "."):
            depth += 1
    return not norm.startswith("/")


def check_layer(tf: tarfile.TarFile, layer: str, *, budget: int, symlinks: set[str]) -> int:
    """Check one layer's entries; returns the bytes it unpacks to. `symlinks` carries across layers."""
    total = 0
    for m in tf:
        name = m.name
        where = f"layer {layer}: entry {name!r}"
        if name.startswith("/") or _climbs_out(name):
            raise LayerError(f"{where}: the path leaves the image's root filesystem")
        clean = posixpath.normpath(name).lstrip("/")
        parts = clean.split("/")
        for i in range(1, len(parts)):
            if "/".join(parts[:i]) in symlinks:
                raise LayerError(f"{where}: written through the symbolic link {'/'.join(parts[:i])!r}")
        base = posixpath.basename(clean)
        if base.startswith(".wh."):
            symlinks.discard(posixpath.join(posixpath.dirname(clean), base[4:]).lstrip("/"))
            continue
        if m.ischr() or m.isblk():
            raise LayerError(f"{where}: device nodes are not allowed in images run by podnet")
        if m.islnk() and (m.linkname.startswith("/") or _climbs_out(m.linkname)):
            raise LayerError(f"{where}: hard link to {m.linkname!r} leaves the image's root filesystem")
        if m.issym():
            target = m.linkname
            if not target.startswith("/") and _climbs_out(posixpath.join(posixpath.dirname(clean), target)):
                raise LayerError(f"{where}: symbolic link to {target!r} leaves the image's root filesystem")
            symlinks.add(clean)
        else:
            symlinks.discard(clean)
        total += max(0, m.size)
        if total > budget:
            raise LayerError(f"layer {layer}: the image unpacks to more than the limit of "
                             f"{max_image_bytes()} bytes (PODNET_IMAGE_MAX_BYTES)")
    return total


def check_image_layers(store: ImageStore, img: StoredImage) -> None:
    from podnet.images.store import StoreError

    manifest = store.read_blob(img.digest)
    budget = max_image_bytes()
    symlinks: set[str] = set()
    for layer in manifest.get("layers") or []:
        digest = str(layer["digest"])
        media = str(layer.get("mediaType") or "")
        if "zstd" in media:
            raise StoreError(f"{img.name}: layer {digest} is zstd-compressed, which podnet cannot unpack")
        try:
            with tarfile.open(store.blob_path(digest), "r:*") as tf:
                budget -= check_layer(tf, digest, budget=budget, symlinks=symlinks)
        except LayerError as e:
            raise StoreError(f"{img.name}: refused: {e}") from None
        except (tarfile.TarError, OSError, EOFError) as e:
            raise StoreError(f"{img.name}: layer {digest} is not a readable tar archive: {e}") from None
