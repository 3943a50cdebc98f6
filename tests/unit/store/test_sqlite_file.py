"""SqliteStore specifics: WAL checkpoints keep the file bounded; durable mode; file errors."""

from __future__ import annotations

import asyncio
import os
from pathlib import Path

from podnet.store import SqliteStore, StoreError


def svc(i: int) -> dict[str, object]:
    return {"metadata": {"name": f"s{i}", "namespace": "default"}, "spec": {"pad": "x" * 500}}


async def test_checkpoints_keep_the_wal_bounded(tmp_path: Path) -> None:
    db = tmp_path / f"wal-{os.getpid()}.db"
    store = SqliteStore(db)
    try:
        wal = Path(f"{db}-wal")
        for i in range(6000):  # ~4 WAL pages per commit: ~100 MiB if nothing were checkpointed
            await store.create("services", svc(i))
            if i % 500 == 499:
                await asyncio.sleep(0.02)  # requests pause now and then: checkpoints catch up
        assert db.stat().st_size > 4 * 1024 * 1024  # pages did reach the main file
        # Once the writes pause, the checkpoint finishes and the next write starts the WAL over
        # (truncated to journal_size_limit, 16 MiB). Bounded wait: the machine may be busy.
        sizes = []
        for n in range(50):
            await asyncio.sleep(0.1)
            await store.create("services", svc(6000 + n))
            sizes.append(wal.stat().st_size)
            if sizes[-1] <= 16 * 1024 * 1024:
                break
        assert sizes[-1] <= 16 * 1024 * 1024, sizes
        total = 6000 + len(sizes)
    finally:
        await store.close()
    again = SqliteStore(db)
    try:
        assert await again.current_rv() == total
        assert len((await again.list("services"))[0]) == total
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


async def test_a_second_writer_on_the_same_file_is_refused_not_merged(tmp_path: Path) -> None:
    db = tmp_path / "shared.db"
    first, second = SqliteStore(db), SqliteStore(db)
    try:
        await first.create("services", svc(1))
        try:
            await second.create("services", svc(2))  # its own counter also says rv 1
        except StoreError as e:
            assert "is another process writing to this file?" in str(e)
            assert str(db) in str(e)
        else:
            raise AssertionError("two writers handed out the same resourceVersion")
        assert [o["metadata"]["name"] for o in (await first.list("services"))[0]] == ["s1"]
    finally:
        await first.close()
        await second.close()
