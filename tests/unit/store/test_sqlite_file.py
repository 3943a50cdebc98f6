"""SqliteStore specifics: WAL checkpoints keep the file bounded; durable mode; file errors."""

from __future__ import annotations

import asyncio
import os
from pathlib import Path

from podnet.store import SqliteStore


def svc(i: int) -> dict[str, object]:
    return {"metadata": {"name": f"s{i}", "namespace": "default"}, "spec": {"pad": "x" * 500}}


async def test_checkpoints_keep_the_wal_bounded(tmp_path: Path) -> None:
    db = tmp_path / f"wal-{os.getpid()}.db"
    store = SqliteStore(db)
    try:
        wal = Path(f"{db}-wal")
        sizes = []
        for i in range(6000):  # ~20 MiB of objects + event log
            await store.create("services", svc(i))
            if i % 500 == 499:
                await asyncio.sleep(0.02)  # give the checkpoint thread a moment, as real traffic does
                sizes.append(wal.stat().st_size)
        # Without checkpoints the WAL would hold every page written (~4 pages per commit: > 90 MiB
        # here); with them it is reused from its start after each pause.
        assert max(sizes) < 40 * 1024 * 1024, sizes
        assert db.stat().st_size > 4 * 1024 * 1024  # pages did reach the main file
        await asyncio.sleep(0.3)  # writes pause: the checkpoint catches up ...
        await store.create("services", svc(6000))  # ... and this write starts the WAL over
        assert wal.stat().st_size <= 16 * 1024 * 1024
    finally:
        await store.close()
    again = SqliteStore(db)
    try:
        assert await again.current_rv() == 6001
        assert len((await again.list("services"))[0]) == 6001
    finally:
        await again.close()


async def test_durable_mode_round_trip(tmp_path: Path) -> None:
    db = tmp_path / "durable.db"
    store = SqliteStore(db, durable=True)
    try:
        created = await store.create("services", svc(1))
        assert created["metadata"]["resourceVersion"] == "1"
    finally:
        await store.close()
    again = SqliteStore(db)
    try:
        assert (await again.get("services", "default", "s1"))["spec"]["pad"] == "x" * 500
    finally:
        await again.close()


async def test_closed_store_refuses_writes(tmp_path: Path) -> None:
    store = SqliteStore(tmp_path / "closed.db")
    await store.close()
    try:
        await store.create("services", svc(1))
    except Exception as e:
        assert "is closed" in str(e)
    else:
        raise AssertionError("write to a closed store succeeded")
