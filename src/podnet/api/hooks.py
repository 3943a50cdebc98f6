"""Registry hooks: per-resource work the API server does around a write.

The API server's write pipeline is, as in kube-apiserver:
    decode -> defaults -> hooks.before_create (allocation) -> validation -> store
A hook error (an `APIError`) is returned on its own, before validation runs.
If a later step fails, the server calls `Reservation.release()` so nothing leaks.

The Service hook (ClusterIP / NodePort / LoadBalancer allocation) lives in
`podnet.allocators`; the API server knows hooks only through this protocol.
"""

from __future__ import annotations

from typing import Protocol

from podnet.model.kinds import Obj, ResourceType
from podnet.store.base import Store


class Reservation(Protocol):
    def release(self) -> None:
        """Undo what before_create/before_update reserved (the write did not happen)."""

    def commit(self) -> None:
        """The write happened; values freed by the update (e.g. old NodePorts) may now be released."""


class NoReservation:
    def release(self) -> None:
        pass

    def commit(self) -> None:
        pass


class ResourceHooks(Protocol):
    async def load(self, store: Store) -> None:
        """Rebuild in-memory state (e.g. allocator bitmaps) from the store at startup."""

    async def before_create(self, rt: ResourceType, obj: Obj) -> Reservation:
        """Mutate obj (e.g. set spec.clusterIP). Raise APIError to refuse."""

    async def before_update(self, rt: ResourceType, new: Obj, old: Obj) -> Reservation:
        """Mutate new (keep allocated values, allocate for new ports/type). Raise APIError to refuse."""

    async def after_delete(self, rt: ResourceType, obj: Obj) -> None:
        """Release what obj held."""
