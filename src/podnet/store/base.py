"""The store contract: objects with a cluster-wide, strictly increasing resourceVersion, and watch.

Every implementation (in-memory, SQLite, later etcd) passes the same contract suite
(tests/unit/store/test_contract.py). Callers only see this interface.

Keys: a resource's store key (`ResourceType.key`: `services`, `apps/deployments`),
a namespace ("" for cluster-scoped) and a name. The store sets
`metadata.resourceVersion` on every write; it does no defaulting or validation.
"""

from __future__ import annotations

import abc
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from typing import Any, Literal

Obj = dict[str, Any]

EventType = Literal["ADDED", "MODIFIED", "DELETED"]


class StoreError(Exception):
    pass


class NotFound(StoreError):
    def __init__(self, key: str, namespace: str, name: str):
        super().__init__(f"{key} {namespace}/{name} not found")
        self.key, self.namespace, self.name = key, namespace, name


class AlreadyExists(StoreError):
    def __init__(self, key: str, namespace: str, name: str):
        super().__init__(f"{key} {namespace}/{name} already exists")
        self.key, self.namespace, self.name = key, namespace, name


class Conflict(StoreError):
    """The caller's expected resourceVersion is not the stored one."""

    def __init__(self, key: str, namespace: str, name: str):
        super().__init__(f"{key} {namespace}/{name}: resourceVersion mismatch")
        self.key, self.namespace, self.name = key, namespace, name


class Expired(StoreError):
    """A watch or list asked for a resourceVersion older than the compacted history."""

    def __init__(self, requested: int, oldest: int, current: int):
        super().__init__(f"too old resource version: {requested} ({current})")
        self.requested, self.oldest, self.current = requested, oldest, current


@dataclass(frozen=True)
class WatchEvent:
    type: EventType
    object: Obj  # for DELETED: the last state, with the deletion's resourceVersion
    resource_version: int
    key: str  # store key of the resource, e.g. "services"
    prev: Obj | None = None  # the object before this event, where the store knows it (None: unknown)
    # the object's JSON text where the store has it at hand (SQLite): watchers' copies are decoded
    # from it, which is cheaper than copying the object
    text: str | None = field(default=None, repr=False, compare=False)


class Store(abc.ABC):
    """Async store interface. All methods return deep copies the caller may mutate."""

    @abc.abstractmethod
    async def create(self, key: str, obj: Obj) -> Obj:
        """Insert a new object (namespace/name from obj.metadata). Raises AlreadyExists."""

    @abc.abstractmethod
    async def get(self, key: str, namespace: str, name: str) -> Obj:
        """Raises NotFound."""

    @abc.abstractmethod
    async def update(self, key: str, obj: Obj, expected_rv: int | None = None) -> Obj:
        """Replace an existing object. With expected_rv, raise Conflict unless it is the stored
        resourceVersion. Raises NotFound if absent."""

    @abc.abstractmethod
    async def delete(self, key: str, namespace: str, name: str, expected_rv: int | None = None) -> Obj:
        """Remove and return the object (its resourceVersion set to the deletion's revision)."""

    @abc.abstractmethod
    async def list(self, key: str, namespace: str | None = None) -> tuple[list[Obj], int]:
        """All objects of a resource (in one namespace, or all when None), sorted by namespace/name,
        with the store's current resourceVersion."""

    @abc.abstractmethod
    def watch(self, key: str, namespace: str | None, from_rv: int) -> AsyncIterator[WatchEvent]:
        """Events with resourceVersion > from_rv, in order, then live ones. Raises Expired (on
        first iteration) if from_rv is older than the retained history. Ends only when the
        consumer stops iterating or the store closes."""

    @abc.abstractmethod
    async def current_rv(self) -> int:
        """The latest resourceVersion handed out (0 for an empty store)."""

    async def check_retained(self, rv: int) -> None:  # noqa: B027 - optional
        """Raise Expired when changes after rv are no longer known (compacted history); stores that
        cannot tell do nothing."""

    async def compact(self, keep_from_rv: int) -> None:  # noqa: B027 - optional
        """Drop watch history older than keep_from_rv (later watches from before it get Expired)."""

    def on_commit(self, key: str, fn: Callable[[WatchEvent], None]) -> bool:
        """Call fn(event) for every write of `key` as it commits, before any later write or read can
        see the store (fn must not change the event). False when the store cannot promise that (its
        events arrive later, e.g. etcd's watch): then fn is not called."""
        return False

    async def close(self) -> None:  # noqa: B027 - optional
        """Release resources; live watches end."""
