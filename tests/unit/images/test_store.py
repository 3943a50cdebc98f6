"""The machine's image store (an OCI layout) and how podnet calls skopeo, without a registry."""

from __future__ import annotations

import base64
import hashlib
import json
import stat
from pathlib import Path
from typing import Any

import pytest

from podnet.images import skopeo
from podnet.images.skopeo import PullError, PullOptions, pull_argv, skopeo_reason
from podnet.images.store import REF_ANNOTATION, ImageStore, StoreError, canonical_name


def put(store: ImageStore, data: bytes) -> str:
    h = hashlib.sha256(data).hexdigest()
    (store.blobs / h).write_bytes(data)
    return "sha256:" + h


def add_image(store: ImageStore, name: str, layer: bytes = b"layer", cmd: str = "sh") -> str:
    store.ensure()
    conf = {"Cmd": [cmd], "Env": ["PATH=/bin"], "WorkingDir": "/w", "User": "33"}
    cfg = json.dumps({"created": "2026-01-01T00:00:00Z", "config": conf}).encode()
    man = json.dumps({"schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json",
                      "config": {"digest": put(store, cfg), "size": len(cfg)},
                      "layers": [{"digest": put(store, layer), "size": len(layer)}]}).encode()
    digest = put(store, man)
    store.add_entries([{"mediaType": "application/vnd.oci.image.manifest.v1+json", "digest": digest,
                        "size": len(man), "annotations": {REF_ANNOTATION: canonical_name(name)}}])
    return digest


def test_canonical_names() -> None:
    assert canonical_name("busybox") == "docker.io/library/busybox:latest"
    assert canonical_name("127.0.0.1:5000/app:1") == "127.0.0.1:5000/app:1"
    d = "sha256:" + "a" * 64
    assert canonical_name(f"localhost:5000/app:1@{d}") == f"localhost:5000/app@{d}"


def test_add_find_by_tag_and_digest_config_remove(tmp_path: Path) -> None:
    store = ImageStore(tmp_path / "images")
    digest = add_image(store, "127.0.0.1:5000/app:1.0")
    img = store.find("127.0.0.1:5000/app:1.0")
    assert img is not None and img.digest == digest
    assert img.image_id == f"127.0.0.1:5000/app@{digest}"
    assert store.find(f"127.0.0.1:5000/app@{digest}") == img  # by digest: any tag of that repository
    assert store.find(f"127.0.0.1:5000/other@{digest}") is None
    assert store.config_of(img).cmd == ["sh"] and store.config_of(img).user == "33"
    assert stat.S_IMODE(store.root.stat().st_mode) == 0o700
    store.remove("127.0.0.1:5000/app:1.0")
    assert store.find("127.0.0.1:5000/app:1.0") is None
    with pytest.raises(StoreError, match="is not in the image store"):
        store.remove("127.0.0.1:5000/app:1.0")


def test_an_entry_with_missing_blobs_is_not_added(tmp_path: Path) -> None:
    store = ImageStore(tmp_path / "images")
    digest = add_image(store, "a/b:1")
    man = json.loads(store.blob_path(digest).read_text())
    store.blob_path(man["layers"][0]["digest"]).unlink()
    with pytest.raises(StoreError, match="is missing"):
        store.add_entries([{"digest": digest, "size": 1, "annotations": {REF_ANNOTATION: "docker.io/a/b:2"}}])


def test_layers_stored_once_and_prune(tmp_path: Path) -> None:
    store = ImageStore(tmp_path / "images")
    add_image(store, "a/one:1", layer=b"shared", cmd="one")
    add_image(store, "a/two:1", layer=b"shared", cmd="two")
    assert len(list(store.blobs.iterdir())) == 5  # 1 shared layer + 2 configs + 2 manifests
    (store.blobs / ("f" * 64)).write_bytes(b"left by a killed pull")
    removed, freed = store.prune(all_unused=False)
    assert removed == [] and freed == len(b"left by a killed pull")
    store.remove("a/one:1")
    store.prune(all_unused=False)
    assert len(list(store.blobs.iterdir())) == 3
    removed, _ = store.prune(all_unused=True)
    assert removed == ["docker.io/a/two:1"]
    assert list(store.blobs.iterdir()) == []


def test_prune_keeps_images_a_live_container_uses(tmp_path: Path) -> None:
    import os

    from podnet.agent.launcher import proc_start_time

    store = ImageStore(tmp_path / "images")
    digest = add_image(store, "a/used:1")
    store.record_use(digest, "c1", os.getpid(), proc_start_time(os.getpid()) or 0)
    assert store.prune(all_unused=True)[0] == []
    store.forget_use(digest, "c1")
    assert store.prune(all_unused=True)[0] == ["docker.io/a/used:1"]


def test_pull_argv_plain_http_only_for_local_and_listed_registries(tmp_path: Path) -> None:
    store = ImageStore(tmp_path / "images")
    local = pull_argv("127.0.0.1:5000/app:1", "oci:/t:x", store, PullOptions(), None)
    assert "--src-tls-verify=false" in local and "--src-no-creds" in local
    assert local[-2] == "docker://127.0.0.1:5000/app:1"
    assert "--src-tls-verify=false" in pull_argv("localhost:5000/app", "oci:/t:x", store, PullOptions(), None)
    remote = pull_argv("registry.example:5000/app:1", "oci:/t:x", store, PullOptions(), Path("/a/auth.json"))
    assert "--src-tls-verify=false" not in remote
    assert remote[remote.index("--authfile") + 1] == "/a/auth.json"
    listed = pull_argv("registry.example:5000/app:1", "oci:/t:x", store,
                       PullOptions(insecure_registries=("registry.example:5000",), host_netns="/proc/1/fd/3"),
                       None)
    assert "--src-tls-verify=false" in listed
    assert listed[:3] == ["nsenter", "--net=/proc/1/fd/3", "--"]
    assert listed[listed.index("--dest-shared-blob-dir") + 1] == str(store.layout / "blobs")


def test_credentials_reach_skopeo_only_in_a_private_file(tmp_path: Path) -> None:
    store = ImageStore(tmp_path / "images")
    auths: dict[str, Any] = {"127.0.0.1:5000": {"auth": base64.b64encode(b"u:secret-pw").decode()}}
    _, argv = skopeo._prepare("127.0.0.1:5000/app:1", store, PullOptions(auths=auths))
    assert not any("secret-pw" in a or auths["127.0.0.1:5000"]["auth"] in a for a in argv)
    authfile = Path(argv[argv.index("--authfile") + 1])
    assert stat.S_IMODE(authfile.stat().st_mode) == 0o600
    assert json.loads(authfile.read_text()) == {"auths": auths}


def test_dockerconfigjson_and_skopeo_errors() -> None:
    data = base64.b64encode(json.dumps({"auths": {"r:5000": {"auth": "eDp5"}}}).encode()).decode()
    assert skopeo.auths_from_dockerconfigjson(data) == {"r:5000": {"auth": "eDp5"}}
    with pytest.raises(PullError, match=r"invalid \.dockerconfigjson"):
        skopeo.auths_from_dockerconfigjson("not base64!")
    err = ('time="2026-12-06T11:15:20Z" level=fatal msg="initializing source docker://127.0.0.1:1/foo:1: '
           'reading manifest 1 in 127.0.0.1:1/foo: manifest unknown: manifest unknown"\n')
    assert skopeo_reason(err) == ("initializing source docker://127.0.0.1:1/foo:1: reading manifest 1 in "
                                  "127.0.0.1:1/foo: manifest unknown: manifest unknown")
