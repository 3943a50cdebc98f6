"""Which image a container runs, and getting it: the node's side of the machine's image store.

`ImageManager.ensure` decides, per container start, as the kubelet's image manager does:
  - imagePullPolicy Never: the stored image, or ErrImageNeverPull;
  - IfNotPresent: the stored image when there is one, else pull;
  - Always: pull (a fresh manifest; layers already stored are not fetched again).
The cluster's image mode (`podnet up --images`) decides what happens when the image cannot be had:
  - real: ErrImagePull (then ImagePullBackOff, by the caller) with the registry's reason;
  - auto (default): podnet's built-in stand-in for that image where it has one (or where the
    container gives a command to run with the machine's tools), said in an Event and the pod status;
    a registry that failed is not asked again for a minute, so a cluster without network stays fast;
  - builtin: never pull; only the built-in stand-ins run.
Pulls run skopeo in the machine's own network namespace (nodes have no route off the machine),
with credentials from the pod's imagePullSecrets (kubernetes.io/dockerconfigjson) over the
node-level credentials file. Concurrent starts of the same image share one pull.
"""

from __future__ import annotations

import asyncio
import base64
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

from podnet.images.registry import ImageRefError, builtin_images, parse_ref, resolve
from podnet.images.skopeo import (
    PullError,
    PullOptions,
    auths_from_dockerconfigjson,
    pull_async,
    registry_host,
)
from podnet.images.store import ImageStore, StoredImage, StoreError

log = logging.getLogger(__name__)

MODES = ("auto", "real", "builtin")
SecretGetter = Callable[[str, str], Awaitable[dict[str, Any] | None]]
EventFn = Callable[[str, str, str], None]  # (type, reason, message)


class ImageUnavailable(Exception):
    """The container cannot start for want of its image; `reason` is the waiting reason."""

    def __init__(self, reason: str, message: str):
        super().__init__(message)
        self.reason = reason
        self.message = message


@dataclass
class ImageSettings:
    mode: str = "auto"
    insecure_registries: tuple[str, ...] = ()
    pull_timeout: float = 120.0
    host_netns: Callable[[], str] = lambda: ""  # where skopeo runs (the machine's own network namespace)
    unreachable_ttl: float = 60.0


@dataclass
class Resolved:
    image: StoredImage | None  # None: run the built-in stand-in
    stand_in_note: str = ""


@dataclass
class ImageManager:
    store: ImageStore
    settings: ImageSettings
    get_secret: SecretGetter | None = None
    _pulls: dict[str, asyncio.Future[StoredImage]] = field(default_factory=dict)
    _unreachable: dict[str, tuple[float, str]] = field(default_factory=dict)

    def has_stand_in(self, container: dict[str, Any]) -> bool:
        return resolve(str(container.get("image") or "")) is not None or bool(container.get("command"))

    async def ensure(self, pod: dict[str, Any], container: dict[str, Any], event: EventFn) -> Resolved:
        image = str(container.get("image") or "")
        mode = self.settings.mode
        if mode == "builtin":
            return Resolved(None)
        try:
            parse_ref(image)
        except ImageRefError as e:
            raise ImageUnavailable("InvalidImageName",
                                   f'Failed to apply default image tag "{image}": {e}') from None
        policy = str(container.get("imagePullPolicy") or "IfNotPresent")
        present = await asyncio.to_thread(self.store.find, image) if self.store.layout.exists() else None
        stand_in = mode == "auto" and self.has_stand_in(container)
        if policy == "Never":
            if present is not None:
                event("Normal", "Pulled", f'Container image "{image}" already present on machine')
                return await self._unpacked(present, image)
            if stand_in:
                return self._stand_in(image, "image not present and imagePullPolicy is Never", event)
            raise ImageUnavailable("ErrImageNeverPull",
                                   f'Container image "{image}" is not present with pull policy of Never')
        if present is not None and policy == "IfNotPresent":
            event("Normal", "Pulled", f'Container image "{image}" already present on machine')
            return await self._unpacked(present, image)
        host = registry_host(image)
        if stand_in:
            until, why = self._unreachable.get(host, (0.0, ""))
            if until > time.monotonic():
                return self._stand_in(image, why, event)
        event("Normal", "Pulling", f'Pulling image "{image}"')
        t0 = time.monotonic()
        try:
            img = await self._pull_shared(pod, image)
            resolved = await self._unpacked(img, image)
        except (PullError, ImageUnavailable) as e:
            msg = e.message
            if stand_in:
                self._unreachable[host] = (time.monotonic() + self.settings.unreachable_ttl,
                                           _short_reason(msg))
                return self._stand_in(image, _short_reason(msg), event)
            if mode == "auto":  # say what would have run without a registry
                msg += f" (podnet has no built-in stand-in for it: {', '.join(builtin_images())})"
            raise ImageUnavailable("ErrImagePull", f'Failed to pull image "{image}": {msg}') from None
        took = time.monotonic() - t0
        event("Normal", "Pulled", f'Successfully pulled image "{image}" in {took * 1000:.0f}ms '
                                  f'({took * 1000:.0f}ms including waiting). Image size: {img.size} bytes.')
        self._unreachable.pop(host, None)
        return resolved

    async def _unpacked(self, img: StoredImage, image: str) -> Resolved:
        try:
            await asyncio.to_thread(self.store.unpacked, img)
        except StoreError as e:
            raise ImageUnavailable("ErrImagePull",
                                   f'Failed to pull and unpack image "{image}": {e}') from None
        return Resolved(img)

    def _stand_in(self, image: str, why: str, event: EventFn) -> Resolved:
        spec = resolve(image)
        what = spec.repository.rsplit("/", 1)[-1] if spec is not None else image
        note = f"started podnet's built-in stand-in for {what}: {why}"
        if spec is None:
            note = f"ran the command with this machine's tools instead of {image}: {why}"
        event("Normal", "BuiltinStandIn", note)
        return Resolved(None, note)

    async def _pull_shared(self, pod: dict[str, Any], image: str) -> StoredImage:
        fut = self._pulls.get(image)
        if fut is not None:
            return await asyncio.shield(fut)
        fut = asyncio.get_running_loop().create_future()
        self._pulls[image] = fut
        try:
            opts = PullOptions(insecure_registries=self.settings.insecure_registries,
                               auths=await self._pull_secret_auths(pod), timeout=self.settings.pull_timeout,
                               host_netns=self.settings.host_netns())
            img = await pull_async(image, self.store, opts)
            fut.set_result(img)
            return img
        except BaseException as e:
            fut.set_exception(e)
            fut.exception()  # retrieved: no "never retrieved" warning when nobody else waits
            raise
        finally:
            self._pulls.pop(image, None)

    async def _pull_secret_auths(self, pod: dict[str, Any]) -> dict[str, Any]:
        """The merged `auths` of the pod's imagePullSecrets (later secrets do not override earlier)."""
        ns = str((pod.get("metadata") or {}).get("namespace") or "default")
        auths: dict[str, Any] = {}
        for ref in (pod.get("spec") or {}).get("imagePullSecrets") or []:
            name = str((ref or {}).get("name") or "")
            if not name or self.get_secret is None:
                continue
            try:
                secret = await self.get_secret(ns, name)
            except Exception as e:
                log.warning("pull secret %s/%s: %s", ns, name, e)
                continue
            if secret is None:
                log.warning('Unable to retrieve pull secret %s/%s for %s/%s due to secret "%s" not found. '
                            "The image pull may not succeed.", ns, name, ns,
                            (pod.get("metadata") or {}).get("name"), name)
                continue
            data = (secret.get("data") or {}).get(".dockerconfigjson")
            if not data:
                raw = (secret.get("stringData") or {}).get(".dockerconfigjson")
                data = base64.b64encode(str(raw).encode()).decode() if raw else ""
            if data:
                try:
                    for k, v in auths_from_dockerconfigjson(str(data)).items():
                        auths.setdefault(k, v)
                except PullError as e:
                    log.warning("pull secret %s/%s: %s", ns, name, e.message)
        return auths


def _short_reason(msg: str) -> str:
    low = msg.lower()
    if "no such host" in low or "connection refused" in low or "network is unreachable" in low \
            or "no route to host" in low or "i/o timeout" in low or "no answer within" in low:
        return "registry not reachable"
    if "unauthorized" in low or "authentication required" in low or "denied" in low:
        return "registry refused the credentials"
    if "manifest unknown" in low or "not found" in low:
        return "image not found in the registry"
    return msg[:200]
