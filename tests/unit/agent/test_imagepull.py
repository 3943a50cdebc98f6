"""The node's image decisions: pull policies, --images auto|real|builtin, pull secrets, shared pulls."""

from __future__ import annotations

import asyncio
import base64
import json
from pathlib import Path
from typing import Any

import pytest

from podnet.agent import imagepull
from podnet.agent.imagepull import ImageManager, ImageSettings, ImageUnavailable
from podnet.images.skopeo import PullError, PullOptions
from podnet.images.store import ImageStore, StoredImage

POD: dict[str, Any] = {"metadata": {"name": "p", "namespace": "ns1"}, "spec": {}}
DIGEST = "sha256:" + "b" * 64


class Harness:
    def __init__(self, tmp: Path, mode: str, monkeypatch: pytest.MonkeyPatch, *, fail: str = ""):
        self.store = ImageStore(tmp / "images")
        self.store.ensure()
        self.pulls: list[tuple[str, PullOptions]] = []
        self.events: list[tuple[str, str, str]] = []
        self.stored: dict[str, StoredImage] = {}
        self.fail = fail
        self.secrets: dict[tuple[str, str], dict[str, Any]] = {}

        async def fake_pull(image: str, store: ImageStore, opts: PullOptions) -> StoredImage:
            self.pulls.append((image, opts))
            await asyncio.sleep(0.01)
            if self.fail:
                raise PullError(self.fail)
            img = StoredImage(image, DIGEST, 1234, "")
            self.stored[image] = img
            return img

        async def get_secret(ns: str, name: str) -> dict[str, Any] | None:
            return self.secrets.get((ns, name))

        monkeypatch.setattr(imagepull, "pull_async", fake_pull)
        monkeypatch.setattr(self.store, "find", lambda image: self.stored.get(image))
        monkeypatch.setattr(self.store, "unpacked", lambda img: tmp / "rootfs")
        self.mgr = ImageManager(self.store, ImageSettings(mode=mode), get_secret)

    def event(self, etype: str, reason: str, msg: str) -> None:
        self.events.append((etype, reason, msg))

    async def ensure(self, image: str, policy: str = "IfNotPresent", pod: dict[str, Any] | None = None,
                     **c: Any) -> Any:
        container = {"name": "c", "image": image, "imagePullPolicy": policy, **c}
        return await self.mgr.ensure(pod or POD, container, self.event)


async def test_if_not_present_pulls_once_then_uses_the_store(tmp_path: Path,
                                                              monkeypatch: pytest.MonkeyPatch) -> None:
    h = Harness(tmp_path, "real", monkeypatch)
    r = await h.ensure("127.0.0.1:5000/app:1")
    assert r.image is not None and r.image.digest == DIGEST
    assert [e[1] for e in h.events] == ["Pulling", "Pulled"]
    assert h.events[1][2].startswith('Successfully pulled image "127.0.0.1:5000/app:1" in ')
    h.events.clear()
    await h.ensure("127.0.0.1:5000/app:1")
    assert len(h.pulls) == 1
    present = 'Container image "127.0.0.1:5000/app:1" already present on machine'
    assert h.events == [("Normal", "Pulled", present)]
    await h.ensure("127.0.0.1:5000/app:1", policy="Always")
    assert len(h.pulls) == 2


async def test_never_and_not_present(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    h = Harness(tmp_path, "real", monkeypatch)
    with pytest.raises(ImageUnavailable) as e:
        await h.ensure("127.0.0.1:5000/app:1", policy="Never")
    assert e.value.reason == "ErrImageNeverPull"
    assert e.value.message == ('Container image "127.0.0.1:5000/app:1" is not present with pull policy '
                               'of Never')
    assert h.pulls == []


async def test_real_mode_pull_failure_is_err_image_pull(tmp_path: Path,
                                                         monkeypatch: pytest.MonkeyPatch) -> None:
    h = Harness(tmp_path, "real", monkeypatch, fail="pinging container registry docker.io: no such host")
    with pytest.raises(ImageUnavailable) as e:
        await h.ensure("nginx:1.25")
    assert e.value.reason == "ErrImagePull"
    assert e.value.message == ('Failed to pull image "nginx:1.25": pinging container registry docker.io: '
                               'no such host')


async def test_auto_mode_runs_the_stand_in_and_remembers_the_unreachable_registry(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    h = Harness(tmp_path, "auto", monkeypatch, fail="dial tcp: lookup registry-1.docker.io: no such host")
    r = await h.ensure("nginx:1.25")
    assert r.image is None
    assert r.stand_in_note == "started podnet's built-in stand-in for nginx: registry not reachable"
    assert ("Normal", "BuiltinStandIn", r.stand_in_note) in h.events
    await h.ensure("nginx:1.26")  # same registry: not asked again for a while
    assert len(h.pulls) == 1
    with pytest.raises(ImageUnavailable, match=r'Failed to pull image "example\.test/no-stand-in:1"'):
        await h.ensure("example.test/no-stand-in:1")  # no stand-in, no command: the pull error stands


async def test_builtin_mode_never_pulls(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    h = Harness(tmp_path, "builtin", monkeypatch)
    assert (await h.ensure("127.0.0.1:5000/app:1")).image is None
    assert h.pulls == []


async def test_concurrent_starts_share_one_pull(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    h = Harness(tmp_path, "real", monkeypatch)
    rs = await asyncio.gather(*(h.ensure("127.0.0.1:5000/app:1", policy="Always") for _ in range(5)))
    assert len(h.pulls) == 1 and all(r.image.digest == DIGEST for r in rs)


async def test_pull_secrets_are_merged_in_order(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    h = Harness(tmp_path, "real", monkeypatch)

    def secret(auths: dict[str, Any]) -> dict[str, Any]:
        data = base64.b64encode(json.dumps({"auths": auths}).encode()).decode()
        return {"type": "kubernetes.io/dockerconfigjson", "data": {".dockerconfigjson": data}}

    h.secrets[("ns1", "first")] = secret({"r:5000": {"auth": "Zmlyc3Q="}})
    h.secrets[("ns1", "second")] = secret({"r:5000": {"auth": "c2Vjb25k"}, "q:1": {"auth": "cQ=="}})
    pod = {**POD, "spec": {"imagePullSecrets": [{"name": "missing"}, {"name": "first"}, {"name": "second"}]}}
    await h.ensure("r:5000/app:1", pod=pod)
    assert h.pulls[0][1].auths == {"r:5000": {"auth": "Zmlyc3Q="}, "q:1": {"auth": "cQ=="}}


async def test_invalid_image_name(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    h = Harness(tmp_path, "real", monkeypatch)
    with pytest.raises(ImageUnavailable) as e:
        await h.ensure("Bad/Name:1")
    assert e.value.reason == "InvalidImageName"
