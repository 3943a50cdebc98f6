"""Store implementations under the contract suite (imported by conftest.py and the tests).

To run the suite against a new implementation (etcd, issue #9), add a factory to
FACTORIES: every test in test_contract.py then runs against it too.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pytest

from podnet.store import MemoryStore, SqliteStore, Store
from podnet.store.etcd import EtcdStore
from podnet.store.etcd_local import etcd_binary, shared_etcd


@dataclass
class StoreFactory:
    name: str
    persistent: bool
    make: Callable[[Path, int], Store]  # (directory for files, history length)


FACTORIES = [
    StoreFactory("memory", False, lambda _d, history: MemoryStore(history=history)),
    StoreFactory("sqlite", True, lambda d, history: SqliteStore(d / "store.db", history=history)),
]


def _etcd(directory: Path, history: int) -> Store:
    """EtcdStore on this process's throwaway etcd, under a prefix of its own per test directory."""
    if etcd_binary() is None:
        pytest.skip("etcd is not installed (/usr/bin/etcd missing; apt-get install etcd-server)")
    return EtcdStore(shared_etcd().endpoints, prefix=f"/podnet-test/{directory.name}", history=history)


FACTORIES.append(StoreFactory("etcd", True, _etcd))


class Opener:
    """Opens stores of one implementation in a private directory; closes them all at teardown."""

    def __init__(self, factory: StoreFactory, directory: Path):
        self.factory = factory
        self.directory = directory
        self.opened: list[Store] = []

    def open(self, history: int = 10000) -> Store:
        store = self.factory.make(self.directory, history)
        self.opened.append(store)
        return store
