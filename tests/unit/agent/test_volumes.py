"""Pod volumes as the kubelet prepares them (podnet.agent.volumes), on a temporary directory; env from
Secrets (podnet.agent.envbuild); the ServiceAccount admission that adds the token volume."""

from __future__ import annotations

import base64
import os
import stat
from pathlib import Path
from typing import Any

import pytest

from podnet.agent.envbuild import EnvError, build_env
from podnet.agent.volumes import (
    DATA_DIR,
    PodVolumes,
    VolumeError,
    VolumeSources,
    check_host_path,
    write_atomic,
)
from podnet.api.admission import TOKEN_MOUNT_PATH, admit_pod
from podnet.model.kinds import Obj


def b64(s: str) -> str:
    return base64.b64encode(s.encode()).decode()


class Objects:
    def __init__(self) -> None:
        self.configmaps: dict[tuple[str, str], Obj] = {}
        self.secrets: dict[tuple[str, str], Obj] = {}
        self.tokens: list[tuple[str, str, int]] = []

    async def cm(self, ns: str, name: str) -> Obj | None:
        return self.configmaps.get((ns, name))

    async def secret(self, ns: str, name: str) -> Obj | None:
        return self.secrets.get((ns, name))

    async def token(self, pod: Obj, audience: str, seconds: int) -> tuple[str, float]:
        self.tokens.append((pod["metadata"]["name"], audience, seconds))
        return f"token-{len(self.tokens)}", 4102444800.0


def make(tmp_path: Path) -> tuple[PodVolumes, Objects]:
    objs = Objects()
    sources = VolumeSources(objs.cm, objs.secret, objs.token, tmp_path / "shm")
    return PodVolumes(tmp_path / "pod", sources), objs


def pod_with(volumes: list[dict[str, Any]], mounts: list[dict[str, Any]] | None = None) -> Obj:
    return {
        "metadata": {"name": "p", "namespace": "ns", "uid": "uid-1", "labels": {"app": "web", "tier": "a"}},
        "spec": {
            "volumes": volumes,
            "containers": [
                {
                    "name": "c",
                    "image": "x",
                    "volumeMounts": mounts or [],
                    "resources": {"limits": {"memory": "64Mi", "cpu": "250m"}},
                }
            ],
        },
    }


def test_atomic_writer_layout_and_update(tmp_path: Path) -> None:
    target = tmp_path / "vol"
    assert write_atomic(target, {"a": (b"1", 0o644), "dir/b": (b"2", 0o600)})
    first = os.readlink(target / DATA_DIR)
    assert first.startswith("..") and os.readlink(target / "a") == "..data/a"
    assert (target / "a").read_text() == "1" and (target / "dir" / "b").read_text() == "2"
    assert stat.S_IMODE((target / "dir" / "b").stat().st_mode) == 0o600
    assert not write_atomic(target, {"a": (b"1", 0o644), "dir/b": (b"2", 0o600)})  # nothing changed
    assert write_atomic(target, {"a": (b"changed", 0o644)})
    assert os.readlink(target / DATA_DIR) != first and not (target / first).exists()
    assert (target / "a").read_text() == "changed" and not (target / "dir").exists()


async def test_configmap_volume_items_modes_and_updates(tmp_path: Path) -> None:
    vols, objs = make(tmp_path)
    objs.configmaps[("ns", "app")] = {"data": {"port-server.py": "print(1)", "other": "x"}}
    pod = pod_with(
        [
            {
                "name": "code",
                "configMap": {
                    "name": "app",
                    "defaultMode": 0o755,
                    "items": [{"key": "port-server.py", "path": "server.py"}],
                },
            }
        ],
        [{"name": "code", "mountPath": "/opt"}],
    )
    await vols.setup(pod)
    [mount] = vols.mounts(pod, pod["spec"]["containers"][0])
    assert (mount.destination, mount.readonly) == ("/opt", True)
    f = Path(mount.source) / "server.py"
    assert f.read_text() == "print(1)" and stat.S_IMODE(f.stat().st_mode) == 0o755
    assert not (Path(mount.source) / "other").exists()
    objs.configmaps[("ns", "app")] = {"data": {"port-server.py": "print(2)"}}
    assert await vols.refresh(pod) == ["code"]
    assert f.read_text() == "print(2)"


async def test_missing_configmap_and_secret_use_kubelet_words(tmp_path: Path) -> None:
    vols, objs = make(tmp_path)
    pod = pod_with([{"name": "config", "configMap": {"name": "absent"}}])
    with pytest.raises(
        VolumeError,
        match=r'^MountVolume.SetUp failed for volume "config" : '
        r'configmap "absent" not found$',
    ):
        await vols.setup(pod)
    pod = pod_with([{"name": "creds", "secret": {"secretName": "db"}}])
    with pytest.raises(
        VolumeError, match=r'^MountVolume.SetUp failed for volume "creds" : secret "db" not found$'
    ):
        await vols.setup(pod)
    objs.secrets[("ns", "db")] = {"data": {"user": b64("admin")}}
    pod = pod_with(
        [{"name": "creds", "secret": {"secretName": "db", "items": [{"key": "pw", "path": "pw"}]}}]
    )
    with pytest.raises(VolumeError, match=r"secret references non-existent secret key: pw$"):
        await vols.setup(pod)
    pod = pod_with([{"name": "opt", "configMap": {"name": "absent", "optional": True}}])
    await vols.setup(pod)  # optional: an empty volume


async def test_secret_volume_decodes_values(tmp_path: Path) -> None:
    vols, objs = make(tmp_path)
    objs.secrets[("ns", "db")] = {"data": {"password": b64("s3cr3t")}}
    pod = pod_with(
        [{"name": "creds", "secret": {"secretName": "db"}}], [{"name": "creds", "mountPath": "/etc/db"}]
    )
    await vols.setup(pod)
    [mount] = vols.mounts(pod, pod["spec"]["containers"][0])
    assert (Path(mount.source) / "password").read_text() == "s3cr3t"


async def test_projected_service_account_volume(tmp_path: Path) -> None:
    vols, objs = make(tmp_path)
    objs.configmaps[("ns", "kube-root-ca.crt")] = {"data": {"ca.crt": "PEM"}}
    pod = pod_with([])
    await admit_pod(pod, lambda ns, name: _none())
    assert pod["spec"]["serviceAccountName"] == "default"
    vol = pod["spec"]["volumes"][0]
    assert vol["name"].startswith("kube-api-access-")
    assert pod["spec"]["containers"][0]["volumeMounts"] == [
        {"name": vol["name"], "mountPath": TOKEN_MOUNT_PATH, "readOnly": True}
    ]
    await vols.setup(pod)
    [mount] = vols.mounts(pod, pod["spec"]["containers"][0])
    src = Path(mount.source)
    assert {p.name for p in src.iterdir() if not p.name.startswith("..")} == {"token", "ca.crt", "namespace"}
    assert (src / "token").read_text() == "token-1" and (src / "namespace").read_text() == "ns"
    assert objs.tokens == [("p", "", 3607)]
    await vols.refresh(pod)
    assert len(objs.tokens) == 1  # still fresh: not asked again


async def _none() -> None:
    return None


async def test_no_token_when_automount_is_off() -> None:
    pod = pod_with([])
    pod["spec"]["automountServiceAccountToken"] = False
    await admit_pod(pod, lambda ns, name: _none())
    assert pod["spec"]["volumes"] == [] and pod["spec"]["containers"][0]["volumeMounts"] == []


async def test_downward_api_and_resource_fields(tmp_path: Path) -> None:
    vols, _ = make(tmp_path)
    pod = pod_with(
        [
            {
                "name": "info",
                "downwardAPI": {
                    "items": [
                        {"path": "labels", "fieldRef": {"fieldPath": "metadata.labels"}},
                        {"path": "name", "fieldRef": {"fieldPath": "metadata.name"}},
                        {
                            "path": "mem",
                            "resourceFieldRef": {
                                "containerName": "c",
                                "resource": "limits.memory",
                                "divisor": "1Mi",
                            },
                        },
                        {
                            "path": "cpu",
                            "resourceFieldRef": {
                                "containerName": "c",
                                "resource": "limits.cpu",
                                "divisor": "1m",
                            },
                        },
                    ]
                },
            }
        ],
        [{"name": "info", "mountPath": "/etc/podinfo"}],
    )
    await vols.setup(pod)
    src = Path(vols.mounts(pod, pod["spec"]["containers"][0])[0].source)
    assert (src / "labels").read_text() == 'app="web"\ntier="a"'
    assert (src / "name").read_text() == "p"
    assert (src / "mem").read_text() == "64" and (src / "cpu").read_text() == "250"


async def test_empty_dir_sub_path_read_only_and_memory(tmp_path: Path) -> None:
    vols, _ = make(tmp_path)
    pod = pod_with(
        [
            {"name": "scratch", "emptyDir": {}},
            {"name": "fast", "emptyDir": {"medium": "Memory", "sizeLimit": "1Ki"}},
        ],
        [
            {"name": "scratch", "mountPath": "/data", "subPath": "logs", "readOnly": True},
            {"name": "fast", "mountPath": "/cache"},
        ],
    )
    await vols.setup(pod)
    sub, fast = vols.mounts(pod, pod["spec"]["containers"][0])
    assert (
        sub.readonly
        and sub.source.endswith("kubernetes.io~empty-dir/scratch/logs")
        and Path(sub.source).is_dir()
    )
    assert fast.source == str(tmp_path / "shm" / "uid-1" / "fast") and not fast.readonly
    assert vols.over_size_limit(pod) is None
    (Path(fast.source) / "big").write_bytes(b"x" * 2048)
    assert vols.over_size_limit(pod) == 'Usage of EmptyDir volume "fast" exceeds the limit "1Ki". '
    vols.cleanup(pod)
    assert not (tmp_path / "shm" / "uid-1").exists()


def test_host_path_types(tmp_path: Path) -> None:
    check_host_path({"path": str(tmp_path / "new"), "type": "DirectoryOrCreate"})
    assert (tmp_path / "new").is_dir()
    check_host_path({"path": str(tmp_path / "f"), "type": "FileOrCreate"})
    assert (tmp_path / "f").is_file()
    with pytest.raises(VolumeError, match=f"^hostPath type check failed: {tmp_path}/f is not a directory$"):
        check_host_path({"path": str(tmp_path / "f"), "type": "Directory"})
    with pytest.raises(VolumeError, match=r"is not a socket file$"):
        check_host_path({"path": str(tmp_path / "f"), "type": "Socket"})
    check_host_path({"path": str(tmp_path / "missing"), "type": ""})  # no type: no check


async def test_env_from_secrets() -> None:
    objs = Objects()
    objs.secrets[("ns", "db")] = {"data": {"user": b64("admin"), "pw": b64("s3cr3t")}}
    container = {
        "name": "c",
        "envFrom": [{"secretRef": {"name": "db"}, "prefix": "DB_"}],
        "env": [{"name": "PASSWORD", "valueFrom": {"secretKeyRef": {"name": "db", "key": "pw"}}}],
    }
    pod = pod_with([])
    env = await build_env(
        pod,
        container,
        pod_ip="10.0.0.1",
        host_ip="1.1.1.1",
        service_env={},
        get_configmap=objs.cm,
        get_secret=objs.secret,
    )
    assert env["DB_user"] == "admin" and env["PASSWORD"] == "s3cr3t"
    container = {
        "name": "c",
        "env": [{"name": "X", "valueFrom": {"secretKeyRef": {"name": "db", "key": "nope"}}}],
    }
    with pytest.raises(EnvError, match=r"^couldn.t find key nope in Secret ns/db$"):
        await build_env(
            pod,
            container,
            pod_ip="",
            host_ip="",
            service_env={},
            get_configmap=objs.cm,
            get_secret=objs.secret,
        )
