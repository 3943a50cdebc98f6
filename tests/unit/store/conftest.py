"""Fixtures: `opener` (one per store implementation, see store_factories.FACTORIES) and `store`."""

from __future__ import annotations

import os
import uuid
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from pathlib import Path

import pytest
from store_factories import FACTORIES, Opener

from podnet.store import Store
from podnet.store.etcd_local import stop_shared_etcd


@pytest.fixture(scope="session", autouse=True)
def _shared_etcd_is_stopped() -> Iterator[None]:
    """The etcd factory starts one etcd per test process on first use; end it (by PID) at the end."""
    try:
        yield
    finally:
        stop_shared_etcd()


@asynccontextmanager
async def _opener(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Opener]:
    directory = tmp_path / f"store-{os.getpid()}-{uuid.uuid4().hex[:8]}"
    directory.mkdir()
    op = Opener(request.param, directory)
    try:
        yield op
    finally:
        for store in op.opened:
            await store.close()


@pytest.fixture(params=FACTORIES, ids=lambda f: f.name)
async def opener(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Opener]:
    async with _opener(request, tmp_path) as op:
        yield op


@pytest.fixture(params=[f for f in FACTORIES if f.persistent], ids=lambda f: f.name)
async def persistent_opener(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Opener]:
    """Only the implementations whose data outlives close() (reopen tests)."""
    async with _opener(request, tmp_path) as op:
        yield op


@pytest.fixture
async def store(opener: Opener) -> Store:
    return opener.open()
