"""Getting images into the store with skopeo (containers/image: registries, token flows, digests,
multi-arch indexes resolved to this machine's platform, docker-save and OCI archives).

A copy goes to a temporary OCI layout whose blobs land directly in the store's shared blob
directory (`--dest-shared-blob-dir`, so layers already there are not fetched again); the new
index entry joins the store's index only once skopeo has finished and every blob is present.

Credentials reach skopeo only through `--authfile` (a 0600 file in the store's 0700 tree, removed
after the copy), never on a command line. Registries on localhost/127.0.0.1, and those listed as
insecure, may answer over plain HTTP (`--src-tls-verify=false`); every other registry needs TLS.
"""

from __future__ import annotations

import asyncio
import base64
import json
import os
import re
import shutil
import subprocess
import tarfile
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from podnet.images.registry import ImageRefError, parse_ref
from podnet.images.store import REF_ANNOTATION, ImageStore, StoredImage, StoreError, canonical_name

LOCAL_REGISTRY_HOSTS = ("localhost", "127.0.0.1", "[::1]")
DEFAULT_TIMEOUT = 120.0


class PullError(Exception):
    """A pull failed; `message` is the registry's (or skopeo's) reason, as the pod status shows it."""

    def __init__(self, message: str):
        super().__init__(message)
        self.message = message


@dataclass
class PullOptions:
    insecure_registries: Sequence[str] = ()
    auths: dict[str, Any] = field(default_factory=dict)  # a docker config.json "auths" map
    timeout: float = DEFAULT_TIMEOUT
    host_netns: str = ""  # run skopeo in this network namespace (the machine's own), "" = ours


def registry_host(image: str) -> str:
    return parse_ref(image).repository.split("/", 1)[0]


def plain_http_allowed(host: str, insecure: Sequence[str]) -> bool:
    name = host.rsplit(":", 1)[0] if not host.startswith("[") else host.split("]")[0] + "]"
    return name in LOCAL_REGISTRY_HOSTS or host in insecure or name in insecure


def auths_from_dockerconfigjson(data: str) -> dict[str, Any]:
    """The `auths` map of a kubernetes.io/dockerconfigjson Secret's `.dockerconfigjson` (base64 in `data`)."""
    try:
        doc = json.loads(base64.b64decode(data).decode())
        auths = doc.get("auths") or {}
    except (ValueError, UnicodeDecodeError, AttributeError) as e:
        raise PullError(f"invalid .dockerconfigjson: {e}") from None
    return dict(auths) if isinstance(auths, dict) else {}


def _read_node_auths(store: ImageStore) -> dict[str, Any]:
    try:
        doc = json.loads(store.auth_file.read_text())
    except (OSError, ValueError):
        return {}
    auths = doc.get("auths") if isinstance(doc, dict) else None
    return dict(auths) if isinstance(auths, dict) else {}


def _write_authfile(path: Path, auths: dict[str, Any]) -> None:
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as f:
        json.dump({"auths": auths}, f)


_FATAL = re.compile(r'level=fatal msg="((?:[^"\\]|\\.)*)"')


def skopeo_reason(stderr: str) -> str:
    """skopeo's own error text, without its log framing."""
    m = _FATAL.search(stderr)
    if m:
        return m.group(1).replace('\\"', '"')
    lines = [ln for ln in stderr.strip().splitlines() if ln.strip()]
    return lines[-1] if lines else "skopeo failed"


def pull_argv(image: str, layout_ref: str, store: ImageStore, opts: PullOptions,
              authfile: Path | None) -> list[str]:
    host = registry_host(image)
    argv = ["skopeo", "--command-timeout", f"{max(1, int(opts.timeout))}s", "copy", "--quiet",
            "--dest-shared-blob-dir", str(store.layout / "blobs")]
    if plain_http_allowed(host, opts.insecure_registries):
        argv.append("--src-tls-verify=false")
    if authfile is not None:
        argv += ["--authfile", str(authfile)]
    else:
        argv.append("--src-no-creds")
    argv += [f"docker://{canonical_name(image)}", layout_ref]
    if opts.host_netns:
        argv = ["nsenter", f"--net={opts.host_netns}", "--", *argv]
    return argv


def _prepare(image: str, store: ImageStore, opts: PullOptions) -> tuple[Path, list[str]]:
    try:
        name = canonical_name(image)
    except ImageRefError as e:
        raise PullError(str(e)) from None
    store.ensure()
    tmp = store.tmpdir("pull-")
    auths = _read_node_auths(store) | opts.auths
    authfile = None
    if auths:
        authfile = tmp / "auth.json"
        _write_authfile(authfile, auths)
    return tmp, pull_argv(image, f"oci:{tmp / 'oci'}:{name}", store, opts, authfile)


def _finish(image: str, store: ImageStore, tmp: Path) -> StoredImage:
    try:
        index = json.loads((tmp / "oci" / "index.json").read_text())
        entries = [m for m in index.get("manifests") or []
                   if (m.get("annotations") or {}).get(REF_ANNOTATION)]
        store.add_entries(entries)
    except (OSError, ValueError, StoreError) as e:
        raise PullError(f"storing {image}: {e}") from None
    img = store.find(image)
    if img is None:
        raise PullError(f"storing {image}: the copied image is not in the store")
    return img


def pull(image: str, store: ImageStore, opts: PullOptions) -> StoredImage:
    """Pull `image` into the store (blocking). Raises PullError with skopeo's reason."""
    tmp, argv = _prepare(image, store, opts)
    try:
        with store.lock(exclusive=False):
            try:
                r = subprocess.run(argv, capture_output=True, text=True, timeout=opts.timeout + 10,
                                   stdin=subprocess.DEVNULL)
            except subprocess.TimeoutExpired:
                raise PullError(f"pulling {image}: no answer within {opts.timeout:g}s") from None
        if r.returncode != 0:
            raise PullError(skopeo_reason(r.stderr))
        return _finish(image, store, tmp)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


async def pull_async(image: str, store: ImageStore, opts: PullOptions) -> StoredImage:
    """`pull` for the agent: skopeo runs as a subprocess, the event loop keeps going."""
    tmp, argv = await asyncio.to_thread(_prepare, image, store, opts)
    try:
        lock = store.lock(exclusive=False)
        await asyncio.to_thread(lock.__enter__)
        try:
            proc = await asyncio.create_subprocess_exec(*argv, stdin=asyncio.subprocess.DEVNULL,
                                                        stdout=asyncio.subprocess.DEVNULL,
                                                        stderr=asyncio.subprocess.PIPE)
            try:
                _, err = await asyncio.wait_for(proc.communicate(), opts.timeout + 10)
            except TimeoutError:
                proc.kill()
                await proc.wait()
                raise PullError(f"pulling {image}: no answer within {opts.timeout:g}s") from None
        finally:
            lock.__exit__(None, None, None)
        if proc.returncode != 0:
            raise PullError(skopeo_reason(err.decode(errors="replace")))
        return await asyncio.to_thread(_finish, image, store, tmp)
    finally:
        await asyncio.to_thread(shutil.rmtree, tmp, True)


# ---- load: docker-save archives, OCI archives and OCI layouts ----

def archive_names(path: Path) -> tuple[str, list[tuple[str, str]]]:
    """(skopeo transport, [(source reference, image name or "")]) for an archive or layout at `path`."""
    if path.is_dir():
        return "oci", _oci_index_names(json.loads((path / "index.json").read_text()))
    try:
        with tarfile.open(path, "r:*") as tf:
            names = tf.getnames()
            if "manifest.json" in names or "./manifest.json" in names:
                member = "manifest.json" if "manifest.json" in names else "./manifest.json"
                f = tf.extractfile(member)
                entries = json.loads(f.read()) if f is not None else []
                out: list[tuple[str, str]] = []
                for i, e in enumerate(entries):
                    tags = e.get("RepoTags") or []
                    out += [(t, t) for t in tags] if tags else [(f"@{i}", "")]
                return "docker-archive", out
            member = "index.json" if "index.json" in names else "./index.json"
            f = tf.extractfile(member)
            if f is None:
                raise StoreError(f"{path}: neither a docker-save archive (manifest.json) nor an OCI archive "
                                 "(index.json)")
            return "oci-archive", _oci_index_names(json.loads(f.read()))
    except KeyError:
        raise StoreError(f"{path}: neither a docker-save archive (manifest.json) nor an OCI archive "
                         "(index.json)") from None
    except (tarfile.TarError, OSError, ValueError) as e:
        raise StoreError(f"{path}: not a readable image archive: {e}") from None


def _oci_index_names(index: dict[str, Any]) -> list[tuple[str, str]]:
    out: list[tuple[str, str]] = []
    for i, m in enumerate(index.get("manifests") or []):
        ann = m.get("annotations") or {}
        full = str(ann.get("io.containerd.image.name") or "")
        ref = str(ann.get(REF_ANNOTATION) or "")
        if ref:
            out.append((ref, full or ref))
        else:
            out.append((f"@{i}", full))
    return out


def load(path: Path, store: ImageStore, *, name: str = "") -> list[StoredImage]:
    """Copy every image of an archive/layout into the store. `name` names an image the archive leaves
    unnamed (or renames a single one)."""
    if not path.exists():
        raise StoreError(f"{path}: no such file or directory")
    transport, refs = archive_names(path)
    if not refs:
        raise StoreError(f"{path}: the archive holds no image")
    if name and len(refs) > 1:
        raise StoreError(f"{path} holds {len(refs)} images: --name names only a single one")
    loaded = []
    for src_ref, img_name in refs:
        target = name or img_name
        if not target:
            raise StoreError(f"{path}: image {src_ref} has no name: give one with --name REPOSITORY:TAG")
        try:
            stored_as = canonical_name(target)
        except ImageRefError as e:
            raise StoreError(f"{path}: image name {target!r}: {e}") from None
        src = f"{transport}:{path}"
        if src_ref.startswith("@") and transport == "oci":
            src = f"{transport}:{path}"  # an OCI layout's only unnamed image
        elif src_ref.startswith("@"):
            src += ":" + src_ref
        else:
            src += ":" + src_ref
        tmp = store.tmpdir("load-")
        try:
            argv = ["skopeo", "copy", "--quiet", "--dest-shared-blob-dir", str(store.layout / "blobs"),
                    src, f"oci:{tmp / 'oci'}:{stored_as}"]
            with store.lock(exclusive=False):
                r = subprocess.run(argv, capture_output=True, text=True, timeout=600,
                                   stdin=subprocess.DEVNULL)
            if r.returncode != 0:
                raise StoreError(f"loading {src_ref} from {path}: {skopeo_reason(r.stderr)}")
            loaded.append(_finish(target, store, tmp))
        except PullError as e:
            raise StoreError(e.message) from None
        finally:
            shutil.rmtree(tmp, ignore_errors=True)
    return loaded
