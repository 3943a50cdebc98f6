"""SQLite Store: one file, current objects plus an event log for watch history.

Durability: WAL journal with `synchronous=NORMAL`. A commit appends the
transaction to the WAL with write(2) before `COMMIT` returns, so once a write is
acknowledged it is in the kernel's page cache and survives `kill -9` of this
process (the next open replays the WAL). NORMAL skips the fsync per commit, so a
power loss or kernel crash may lose the last transactions (never corrupts the
file). `durable=True` selects `synchronous=FULL` (fsync per commit) for that
case, at a large cost in writes/s.

Threading: the sqlite3 calls run directly on the event loop. With no fsync in the
commit path a write transaction costs ~50 us — less than a hop to a worker thread —
and running each write to completion without awaiting is what makes the
resourceVersion order, the commit order and the watch fan-out order one and the
same without locks. The one slow part, WAL checkpoints (they fsync), runs in a worker
thread on its own connection (_checkpoint.py). Long history replays are read in chunks.

One process owns the file (the API server); a second writer would be detected by
the event log's primary key (a duplicate resourceVersion fails the write).
"""

from __future__ import annotations

import contextlib
import sqlite3
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any, cast

from podnet.core import fastjson
from podnet.store._checkpoint import BackgroundCheckpointer
from podnet.store._keys import Obj, identity, stamp
from podnet.store._watch import DEFAULT_WATCH_BUFFER, HubStore
from podnet.store.base import AlreadyExists, Conflict, EventType, Expired, NotFound, StoreError, WatchEvent

_SCHEMA = """
CREATE TABLE IF NOT EXISTS objects (
    key TEXT NOT NULL,
    namespace TEXT NOT NULL,
    name TEXT NOT NULL,
    rv INTEGER NOT NULL,
    obj TEXT NOT NULL,
    PRIMARY KEY (key, namespace, name)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS events (
    rv INTEGER PRIMARY KEY,
    type TEXT NOT NULL,
    key TEXT NOT NULL,
    namespace TEXT NOT NULL,
    obj TEXT NOT NULL,
    prev_rv INTEGER
);
CREATE TABLE IF NOT EXISTS meta (
    name TEXT PRIMARY KEY,
    value INTEGER NOT NULL
);
"""

_REPLAY_CHUNK = 500


def _dumps(obj: Obj) -> str:
    return fastjson.dumps(obj)


def _loads(text: str) -> Obj:
    return cast(Obj, fastjson.loads(text))


class SqliteStore(HubStore):
    def __init__(self, path: str | Path, history: int = 100000, *, durable: bool = False,
                 watch_buffer: int = DEFAULT_WATCH_BUFFER):
        if history < 1:
            raise ValueError(f"history must be at least 1, got {history}")
        super().__init__(watch_buffer)
        self.path = Path(path)
        self.history = history
        self._compact_slack = max(100, history // 20)
        if not self.path.parent.is_dir():
            raise ValueError(f"store file {str(self.path)!r}: directory "
                             f"{str(self.path.parent)!r} does not exist")
        try:
            self._db = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False)
            self._db.execute("PRAGMA journal_mode=WAL")
            self._db.execute(f"PRAGMA synchronous={'FULL' if durable else 'NORMAL'}")
            self._db.execute("PRAGMA wal_autocheckpoint=0")  # see _checkpoint.py
            self._db.execute("PRAGMA journal_size_limit=16777216")  # WAL file size kept after a reset
            self._db.executescript(_SCHEMA)
            columns = {row[1] for row in self._db.execute("PRAGMA table_info(events)")}
            if "prev_rv" not in columns:  # a file written before events named their previous version
                self._db.execute("ALTER TABLE events ADD COLUMN prev_rv INTEGER")
        except sqlite3.DatabaseError as e:
            raise StoreError(f"cannot open store file {str(self.path)!r}: {e}") from e
        self._rv, self._compacted_to = self._recover()
        self._checkpointer = BackgroundCheckpointer(self.path)
        self._closed = False

    def _recover(self) -> tuple[int, int]:
        """(current rv, compaction floor) from the file: the rv continues after a restart."""
        row = self._db.execute("SELECT MAX(rv), MIN(rv) FROM events").fetchone()
        max_event, min_event = row[0] or 0, row[1] or 0
        max_obj = self._db.execute("SELECT MAX(rv) FROM objects").fetchone()[0] or 0
        floor_row = self._db.execute("SELECT value FROM meta WHERE name='compacted_to'").fetchone()
        floor = floor_row[0] if floor_row else 0
        rv = max(max_event, max_obj, floor)
        floor = max(floor, min_event - 1) if min_event else rv
        return rv, floor

    # -- writes -----------------------------------------------------------------------------

    @contextlib.contextmanager
    def _transaction(self) -> Iterator[None]:
        """BEGIN IMMEDIATE ... (the body commits through _finish); rolled back if the body fails."""
        if self._closed:
            raise StoreError(f"store {str(self.path)!r} is closed")
        self._db.execute("BEGIN IMMEDIATE")
        try:
            yield
        finally:
            self._rollback()

    @contextlib.contextmanager
    def _write_errors(self) -> Iterator[None]:
        """SQLite failures (disk full, file locked by another process, ...) as a StoreError that
        names the file; nothing was committed."""
        try:
            yield
        except sqlite3.IntegrityError as e:
            raise StoreError(f"store file {str(self.path)!r}: write conflicts with existing data ({e}); "
                             "is another process writing to this file?") from e
        except sqlite3.Error as e:
            raise StoreError(f"store file {str(self.path)!r}: write failed: {e}") from e

    def _finish(self, type_: EventType, key: str, namespace: str, obj: Obj, text: str,
                prev_rv: int | None = None) -> None:
        """Append the event, commit, then publish: called inside the write transaction. `prev_rv` is
        the version the write replaced (the event that wrote it holds the previous object)."""
        rv = self._rv + 1
        self._db.execute("INSERT INTO events (rv, type, key, namespace, obj, prev_rv) "
                         "VALUES (?, ?, ?, ?, ?, ?)", (rv, type_, key, namespace, text, prev_rv))
        self._db.execute("COMMIT")
        self._rv = rv
        self._publish(WatchEvent(type_, obj, rv, key, text=text))
        # Committed and published: housekeeping below must not turn the write into a failure.
        with contextlib.suppress(sqlite3.Error):
            self._checkpointer.note_commit(self._db)
            if rv - self._compacted_to > self.history + self._compact_slack:
                self._compact_sync(rv - self.history + 1)

    def _rollback(self) -> None:
        if self._db.in_transaction:
            self._db.execute("ROLLBACK")

    def _next_version(self, obj: Obj) -> tuple[Obj, int, str]:
        """What a write of obj stores: a copy stamped with the next resourceVersion, that version, and
        the copy's JSON text. The copy is decoded from the text (faster than copying the object, and
        the same value a later read returns); obj itself is not changed."""
        rv = self._rv + 1
        meta = obj.get("metadata")
        stamped = {**obj, "metadata": {**(meta if isinstance(meta, dict) else {}),
                                       "resourceVersion": str(rv)}}
        text = _dumps(stamped)
        return _loads(text), rv, text

    async def create(self, key: str, obj: Obj) -> Obj:
        namespace, name = identity(obj)
        stored, rv, text = self._next_version(obj)
        with self._write_errors(), self._transaction():
            try:
                self._db.execute("INSERT INTO objects (key, namespace, name, rv, obj) VALUES (?, ?, ?, ?, ?)",
                                 (key, namespace, name, rv, text))
            except sqlite3.IntegrityError:
                raise AlreadyExists(key, namespace, name) from None
            self._finish("ADDED", key, namespace, stored, text)
        return _loads(text)

    async def get(self, key: str, namespace: str, name: str) -> Obj:
        row = self._db.execute("SELECT obj FROM objects WHERE key=? AND namespace=? AND name=?",
                               (key, namespace, name)).fetchone()
        if row is None:
            raise NotFound(key, namespace, name)
        return _loads(row[0])

    def _stored_rv(self, key: str, namespace: str, name: str) -> int | None:
        row = self._db.execute("SELECT rv FROM objects WHERE key=? AND namespace=? AND name=?",
                               (key, namespace, name)).fetchone()
        return None if row is None else int(row[0])

    async def update(self, key: str, obj: Obj, expected_rv: int | None = None) -> Obj:
        namespace, name = identity(obj)
        stored, rv, text = self._next_version(obj)
        with self._write_errors(), self._transaction():
            prev_rv = self._stored_rv(key, namespace, name)
            if prev_rv is None:
                raise NotFound(key, namespace, name)
            if expected_rv is not None and prev_rv != expected_rv:
                raise Conflict(key, namespace, name)
            self._db.execute("UPDATE objects SET rv=?, obj=? WHERE key=? AND namespace=? AND name=?",
                             (rv, text, key, namespace, name))
            self._finish("MODIFIED", key, namespace, stored, text, prev_rv)
        return _loads(text)

    async def delete(self, key: str, namespace: str, name: str, expected_rv: int | None = None) -> Obj:
        with self._write_errors(), self._transaction():
            row = self._db.execute("SELECT rv, obj FROM objects WHERE key=? AND namespace=? AND name=?",
                                   (key, namespace, name)).fetchone()
            if row is None:
                raise NotFound(key, namespace, name)
            if expected_rv is not None and int(row[0]) != expected_rv:
                raise Conflict(key, namespace, name)
            self._db.execute("DELETE FROM objects WHERE key=? AND namespace=? AND name=?",
                             (key, namespace, name))
            last = _loads(row[1])
            stamp(last, self._rv + 1)
            text = _dumps(last)
            self._finish("DELETED", key, namespace, last, text, int(row[0]))
        return _loads(text)

    # -- reads ------------------------------------------------------------------------------

    async def list(self, key: str, namespace: str | None = None) -> tuple[list[Obj], int]:
        if namespace is None:
            rows = self._db.execute("SELECT obj FROM objects WHERE key=? ORDER BY namespace, name", (key,))
        else:
            rows = self._db.execute("SELECT obj FROM objects WHERE key=? AND namespace=? ORDER BY name",
                                    (key, namespace))
        return [_loads(r[0]) for r in rows.fetchall()], self._rv

    # -- watch history ----------------------------------------------------------------------

    def _check_watchable(self, from_rv: int) -> None:
        if from_rv < self._compacted_to:
            raise Expired(from_rv, self._compacted_to + 1, self._rv)

    async def _history(self, key: str, namespace: str | None, from_rv: int,
                       to_rv: int) -> AsyncIterator[WatchEvent]:
        after = from_rv
        while after < to_rv:
            if after < self._compacted_to:
                raise Expired(after, self._compacted_to + 1, self._rv)
            # each event with the object it replaced (the event that wrote that version), so a watch
            # can judge the event against the object as it was before it
            sql = ("SELECT e.rv, e.type, e.obj, p.obj FROM events e LEFT JOIN events p ON p.rv = e.prev_rv "
                   "WHERE e.rv > ? AND e.rv <= ? AND e.key = ?")
            args: list[Any] = [after, to_rv, key]
            if namespace is not None:
                sql += " AND e.namespace = ?"
                args.append(namespace)
            rows = self._db.execute(sql + " ORDER BY e.rv LIMIT ?", (*args, _REPLAY_CHUNK)).fetchall()
            if not rows:
                return
            for rv, type_, text, prev_text in rows:
                yield WatchEvent(type_, _loads(text), rv, key, _loads(prev_text) if prev_text else None,
                                 text=text)
            after = rows[-1][0]
            if len(rows) < _REPLAY_CHUNK:
                return

    def _compact_sync(self, keep_from_rv: int) -> None:
        floor = min(keep_from_rv - 1, self._rv)
        if floor <= self._compacted_to:
            return
        self._db.execute("BEGIN IMMEDIATE")
        try:
            # Kept below the floor, as etcd keeps each key's latest version at a compaction: the event
            # that wrote each object's current version and those whose versions retained events replaced
            # (the objects before later events). They are never replayed (a watch starts above the floor).
            self._db.execute("DELETE FROM events WHERE rv <= ? AND rv NOT IN (SELECT rv FROM objects) AND "
                             "rv NOT IN (SELECT prev_rv FROM events WHERE rv > ? AND prev_rv IS NOT NULL)",
                             (floor, floor))
            self._db.execute("INSERT INTO meta (name, value) VALUES ('compacted_to', ?) "
                             "ON CONFLICT(name) DO UPDATE SET value=excluded.value", (floor,))
            self._db.execute("COMMIT")
        finally:
            self._rollback()
        self._compacted_to = floor

    async def compact(self, keep_from_rv: int) -> None:
        self._compact_sync(keep_from_rv)

    async def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        self._close_watches()
        await self._checkpointer.close()
        self._db.close()
