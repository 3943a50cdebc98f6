from __future__ import annotations

from pathlib import Path

import pytest

from podnet.store import MemoryStore, SqliteStore, StoreError, open_store


async def test_memory_url() -> None:
    store = open_store("memory://")
    assert isinstance(store, MemoryStore)
    await store.close()


@pytest.mark.parametrize("form", ["sqlite://{path}", "{path}"])
async def test_sqlite_url_and_bare_path(tmp_path: Path, form: str) -> None:
    path = tmp_path / "cluster.db"
    store = open_store(form.format(path=path))
    assert isinstance(store, SqliteStore)
    await store.create("namespaces", {"metadata": {"name": "default"}})
    await store.close()
    assert path.exists()
    again = open_store(f"sqlite://{path}")
    assert (await again.get("namespaces", "", "default"))["metadata"]["resourceVersion"] == "1"
    await again.close()


@pytest.mark.parametrize(("url", "message"), [
    ("etcd://", "store URL 'etcd://' names no etcd endpoint; use etcd://HOST:PORT[,HOST:PORT...]"),
    ("redis://x", "store URL 'redis://x': unsupported scheme 'redis'; use memory://, sqlite:///path/to/file.db"),
    ("sqlite://", "store URL 'sqlite://' has no file path; use sqlite:///path/to/file.db"),
    ("", "store URL is empty"),
    ("sqlite:///nonexistent-dir-podnet/x.db",
     "store file '/nonexistent-dir-podnet/x.db': directory '/nonexistent-dir-podnet' does not exist"),
])
def test_bad_urls_are_explained(url: str, message: str) -> None:
    with pytest.raises(ValueError) as err:
        open_store(url)
    assert str(err.value).startswith(message)


async def test_not_a_database_file(tmp_path: Path) -> None:
    path = tmp_path / "junk.db"
    path.write_bytes(b"this is not sqlite" * 100)
    with pytest.raises(StoreError, match=r"cannot open store file '.*junk\.db': file is not a database"):
        SqliteStore(path)
