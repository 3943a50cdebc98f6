"""Persistence with a cluster-wide resourceVersion and watch.

`open_store(url)` picks the implementation:

- `memory://` — `MemoryStore` (tests, throwaway clusters)
- `sqlite:///abs/path.db`, `sqlite://rel/path.db` or a bare path — `SqliteStore`
- `etcd://HOST:PORT[,HOST:PORT...][/key-prefix]` — `EtcdStore` (key prefix /registry by default)
"""

from __future__ import annotations

from pathlib import Path

from podnet.store.base import (
    AlreadyExists,
    Conflict,
    Expired,
    NotFound,
    Store,
    StoreError,
    WatchEvent,
)
from podnet.store.etcd import EtcdStore
from podnet.store.memory import MemoryStore
from podnet.store.sqlite import SqliteStore

__all__ = [
    "AlreadyExists",
    "Conflict",
    "EtcdStore",
    "Expired",
    "MemoryStore",
    "NotFound",
    "SqliteStore",
    "Store",
    "StoreError",
    "WatchEvent",
    "open_store",
]


def open_store(url: str) -> Store:
    """Open the store named by `url` (see the module docstring). Raises ValueError for a URL
    this build cannot serve, naming the URL and the accepted forms."""
    scheme, sep, rest = url.partition("://")
    if not sep:
        if not url:
            raise ValueError("store URL is empty; use memory:// or sqlite:///path/to/file.db")
        return SqliteStore(Path(url))
    if scheme == "memory":
        return MemoryStore()
    if scheme == "sqlite":
        if not rest:
            raise ValueError(f"store URL {url!r} has no file path; use sqlite:///path/to/file.db")
        return SqliteStore(Path(rest))
    if scheme == "etcd":
        return EtcdStore.from_url(url)
    raise ValueError(f"store URL {url!r}: unsupported scheme {scheme!r}; "
                     "use memory://, sqlite:///path/to/file.db, etcd://HOST:PORT or a file path")
