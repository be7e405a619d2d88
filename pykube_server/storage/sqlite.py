"""The embedded backend: etcd semantics on one SQLite log table, kine style.

Every successful write appends one row to `kine` whose `id` *is* the revision: `key`, a `created`
and a `deleted` flag, the key's `create_revision`, `prev_revision` (the row this one supersedes,
0 for a creation) and `value` (for a deletion: the last value, so a delete event can carry it).
"The state at revision R" is, per key, the newest row with `id <= R` unless it is a deletion;
that one query shape serves `get`, `scan` (consistent pagination) and nothing needs a snapshot.

Why it is shaped this way:

* **One writer, group commit.** This process is the store's only writer, so the committed state
  is mirrored in memory: an index `key -> (create_revision, mod_revision)` of live keys, rebuilt
  on open. A single writer task takes every queued create/update/delete, checks each op's
  precondition in order against the index plus the batch's own earlier ops (a failing op gets
  its own error and the others go on), inserts all rows with one `executemany`, commits once
  and then acknowledges the whole batch. 32 concurrent writers thus cost about one transaction
  per 32 writes instead of 32.
* **Durability.** WAL with `synchronous=NORMAL`: a commit has `write()`n its frames to the WAL
  file before it returns, so once a write is acknowledged the bytes are in the kernel's page
  cache and survive the process being killed (even `kill -9`); only a power loss or kernel
  crash can lose the last commits, and never corrupts the file. Pass `synchronous="FULL"` to
  fsync every commit when that matters more than throughput.
* **Revisions survive restart.** The revision is `max(max(id), compacted revision)`; the
  compacted revision is kept in the `meta` table, because compaction may delete the newest
  rows (a trailing deletion's tombstone) and the counter must never go back.
* **Readers never see a batch half-written.** Reads go through a second connection (WAL lets it
  read while the writer writes) and are bounded by the revision last acknowledged, which is only
  advanced after the commit.
* **Watch without polling.** After each commit the batch's events go to a bounded in-memory
  ring (one event per revision, so it is indexed by revision) and one broadcast `asyncio.Event`
  wakes the watchers. A watcher is a cursor: it reads from the ring when the ring still holds
  its next revision and from the table otherwise, so the switch from history to live events has
  no gap and no duplicate by construction, and a slow watcher never blocks the writer.
* **Commits on the event loop.** With `synchronous=NORMAL` a commit is a few `write()`s into
  the page cache, a few hundred microseconds for a batch, so the writer runs the batch's
  `executemany` and `COMMIT` directly on the loop: handing each batch to aiosqlite's thread and
  back cost more CPU in GIL hand-offs than the SQL itself (a third of a Pod create's server CPU,
  measured with bench/api.py). What can take long stays on aiosqlite's thread: the WAL
  checkpoint (it fsyncs; SQLite's automatic one would run inside a commit, so it is off and the
  writer checkpoints every CHECKPOINT_ROWS rows between batches), compaction, and every read.
  `synchronous=FULL` or `EXTRA` fsyncs in each commit, so then commits go through the thread.
* **Compaction** runs under the writer lock (between batches) and deletes, up to the revision,
  every row that is superseded or a deletion; each live key's latest row stays.
"""

from __future__ import annotations

import asyncio
import os
from collections import deque
from collections.abc import AsyncIterator, Callable, Sequence
from dataclasses import dataclass, field
from types import TracebackType
from typing import Any, Literal

import aiosqlite

from pykube_server.storage.backend import (
    Compacted,
    Conflict,
    Event,
    KeyExists,
    KeyNotFound,
    KeyValue,
    Page,
    StorageError,
)

WATCH_BUFFER_EVENTS = 4096
"""Recent events kept in memory for live watch delivery; older ones are read from the table."""
WATCH_CHUNK_REVISIONS = 1000
"""Revisions a watcher catches up per step, from the ring or the table."""
MAX_BATCH_OPS = 2000
"""Writes committed in one transaction at most (bounds latency and SQL variable counts)."""
CHECKPOINT_ROWS = 4000
"""Rows written between WAL checkpoints when commits run on the loop (SQLite's own automatic
checkpoint, off then, would run every ~1,000 pages of WAL)."""

_SCHEMA = (
    """CREATE TABLE IF NOT EXISTS kine (
        id INTEGER PRIMARY KEY,
        key TEXT NOT NULL,
        created INTEGER NOT NULL,
        deleted INTEGER NOT NULL,
        create_revision INTEGER NOT NULL,
        prev_revision INTEGER NOT NULL,
        value BLOB NOT NULL)""",
    "CREATE INDEX IF NOT EXISTS kine_key_id ON kine (key, id)",
    "CREATE TABLE IF NOT EXISTS meta (name TEXT PRIMARY KEY, value INTEGER NOT NULL)",
)
_INSERT = (
    "INSERT INTO kine (id, key, created, deleted, create_revision, prev_revision, value)"
    " VALUES (?, ?, ?, ?, ?, ?, ?)"
)
_LATEST_ROWS = "SELECT MAX(id) AS mid FROM kine WHERE {where} GROUP BY key"
_SCAN = (
    "SELECT k.key, k.value, k.create_revision, k.id FROM kine AS k"
    f" JOIN ({_LATEST_ROWS}) AS m ON k.id = m.mid WHERE k.deleted = 0 ORDER BY k.key LIMIT ?"
)
_GET = (
    "SELECT value, create_revision, id, deleted FROM kine"
    " WHERE key = ? AND id <= ? ORDER BY id DESC LIMIT 1"
)
_HISTORY = (
    "SELECT a.id, a.key, a.created, a.deleted, a.create_revision, a.prev_revision, a.value,"
    " b.value FROM kine AS a LEFT JOIN kine AS b ON b.id = a.prev_revision"
    " WHERE a.id > ? AND a.id <= ? {keys} ORDER BY a.id"
)
_COMPACT = (
    "DELETE FROM kine WHERE id <= ?1 AND (deleted = 1 OR id NOT IN"
    " (SELECT MAX(id) FROM kine WHERE id <= ?1 GROUP BY key))"
)
_SAVE_COMPACTED = (
    "INSERT INTO meta (name, value) VALUES ('compact_revision', ?)"
    " ON CONFLICT (name) DO UPDATE SET value = excluded.value"
)

_State = tuple[int, int]
"""(create_revision, mod_revision) of a live key."""
_Row = tuple[int, str, int, int, int, int, bytes]
_Params = Callable[[int], list[Any]]
"""The parameters of a read, given the revision it is bounded by."""


def prefix_end(prefix: str) -> str | None:
    """The least string greater than every string starting with `prefix` (None: unbounded).

    Code-point order of `str` equals SQLite's BINARY order of UTF-8 TEXT, so `[prefix, end)`
    is an index range."""
    while prefix:
        last = ord(prefix[-1]) + 1
        if last <= 0x10FFFF:
            return prefix[:-1] + chr(0xE000 if 0xD800 <= last < 0xE000 else last)
        prefix = prefix[:-1]
    return None


def _key_range(column: str, prefix: str, after: str = "") -> tuple[str, list[Any]]:
    conds, params = [f"{column} > ?" if after >= prefix else f"{column} >= ?"], [max(prefix, after)]
    end = prefix_end(prefix)
    if end is not None:
        conds.append(f"{column} < ?")
        params.append(end)
    return " AND ".join(conds), params


_Kind = Literal["create", "update", "delete"]


@dataclass(slots=True)
class _Op:
    kind: _Kind
    key: str
    value: bytes
    expected: int
    future: asyncio.Future[Any]


@dataclass(slots=True)
class _Batch:
    """The ops of one transaction applied in order over the committed index."""

    index: dict[str, _State]
    revision: int
    old_values: dict[int, bytes]
    overlay: dict[str, _State | None] = field(default_factory=dict)
    values: dict[str, bytes] = field(default_factory=dict)
    rows: list[_Row] = field(default_factory=list)
    events: list[Event] = field(default_factory=list)
    outcomes: list[tuple[_Op, Any, StorageError | None]] = field(default_factory=list)

    def apply(self, op: _Op) -> None:
        try:
            result = getattr(self, "_" + op.kind)(op)
        except StorageError as exc:
            self.outcomes.append((op, None, exc))
        else:
            self.outcomes.append((op, result, None))

    def _state(self, key: str) -> _State | None:
        return self.overlay[key] if key in self.overlay else self.index.get(key)

    def _create(self, op: _Op) -> int:
        state = self._state(op.key)
        if state is not None:
            raise KeyExists(op.key, state[1])
        rev = self.revision = self.revision + 1
        event = Event("put", KeyValue(op.key, op.value, rev, rev))
        self._record((rev, op.key, 1, 0, rev, 0, op.value), event)
        self.overlay[op.key], self.values[op.key] = (rev, rev), op.value
        return rev

    def _update(self, op: _Op) -> int:
        old = self._current(op)
        rev = self.revision = self.revision + 1
        kv = KeyValue(op.key, op.value, old.create_revision, rev)
        row = (rev, op.key, 0, 0, old.create_revision, old.mod_revision, op.value)
        self._record(row, Event("put", kv, old))
        self.overlay[op.key], self.values[op.key] = (old.create_revision, rev), op.value
        return rev

    def _delete(self, op: _Op) -> KeyValue:
        old = self._current(op)
        rev = self.revision = self.revision + 1
        kv = KeyValue(op.key, old.value, old.create_revision, rev)
        row = (rev, op.key, 0, 1, old.create_revision, old.mod_revision, old.value)
        self._record(row, Event("delete", kv, old))
        self.overlay[op.key] = None
        return kv

    def _current(self, op: _Op) -> KeyValue:
        state = self._state(op.key)
        if state is None:
            raise KeyNotFound(op.key)
        if op.expected and state[1] != op.expected:
            raise Conflict(op.key, state[1])
        value = self.values[op.key] if op.key in self.overlay else self.old_values.get(state[1], b"")
        return KeyValue(op.key, value, state[0], state[1])

    def _record(self, row: _Row, event: Event) -> None:
        self.rows.append(row)
        self.events.append(event)


def _event_from_row(row: Sequence[Any]) -> Event:
    rev, key, created, deleted, create_rev, prev_rev, value, prev_value = row
    kv = KeyValue(key, value, create_rev, rev)
    if deleted:
        return Event("delete", kv, KeyValue(key, value, create_rev, prev_rev) if prev_rev else None)
    if created or prev_value is None:
        return Event("put", kv)
    return Event("put", kv, KeyValue(key, prev_value, create_rev, prev_rev))


class SQLiteBackend:
    """A `Backend` on one SQLite file; open with `await SQLiteBackend.open(path)`."""

    def __init__(
        self,
        writer: aiosqlite.Connection,
        reader: aiosqlite.Connection,
        *,
        revision: int,
        compacted_revision: int,
        index: dict[str, _State],
        watch_buffer_events: int = WATCH_BUFFER_EVENTS,
        commit_on_loop: bool = False,
    ) -> None:
        """Use `open()`; this adopts two connections already set up on the same file (the writer
        opened with `check_same_thread=False` when `commit_on_loop`)."""
        self.compacted_revision = compacted_revision
        """Reads and watches from revisions below this raise `Compacted`."""
        self.transactions = 0
        """Write transactions committed since open (each acknowledges a whole batch)."""
        self._writer, self._reader = writer, reader
        self._revision = revision
        self._index = index
        self._buffer: deque[Event] = deque(maxlen=watch_buffer_events)
        self._pending: list[_Op] = []
        self._wake = asyncio.Event()
        self._signal = asyncio.Event()
        self._write_lock = asyncio.Lock()
        self._closing = False
        self._closed = asyncio.Event()
        self._commit_on_loop = commit_on_loop
        self._rows_since_checkpoint = 0
        self._writer_task = asyncio.get_running_loop().create_task(self._run_writer(), name="sqlite-writer")

    @classmethod
    async def open(
        cls,
        path: str | os.PathLike[str],
        *,
        synchronous: Literal["NORMAL", "FULL", "EXTRA"] = "NORMAL",
        watch_buffer_events: int = WATCH_BUFFER_EVENTS,
    ) -> SQLiteBackend:
        """Open (creating if needed) the database at `path` and rebuild the in-memory index."""
        if synchronous not in ("NORMAL", "FULL", "EXTRA"):
            raise ValueError(f"synchronous must be NORMAL, FULL or EXTRA, not {synchronous!r}")
        commit_on_loop = synchronous == "NORMAL"
        # the loop and aiosqlite's thread both use the writer, never at once (the write lock)
        writer = await aiosqlite.connect(path, check_same_thread=not commit_on_loop)
        try:
            await _set_up_writer(writer, synchronous, autocheckpoint=not commit_on_loop)
            revision, compacted, index = await _load_state(writer)
            reader = await aiosqlite.connect(path)
        except BaseException:
            await writer.close()
            raise
        try:
            await reader.execute_fetchall("PRAGMA query_only = 1")
        except BaseException:
            await asyncio.gather(writer.close(), reader.close())
            raise
        return cls(
            writer, reader, revision=revision, compacted_revision=compacted, index=index,
            watch_buffer_events=watch_buffer_events, commit_on_loop=commit_on_loop,
        )

    async def __aenter__(self) -> SQLiteBackend:
        return self

    async def __aexit__(
        self, et: type[BaseException] | None, e: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.aclose()

    # -- reads ---------------------------------------------------------------------------

    async def get(self, key: str, *, revision: int = 0) -> KeyValue:
        rows = await self._read(_GET, key, revision, lambda at: [key, at])
        if not rows or rows[0][3]:
            raise KeyNotFound(key)
        value, create_rev, mod_rev, _ = rows[0]
        return KeyValue(key, value, create_rev, mod_rev)

    async def scan(self, prefix: str, *, revision: int = 0, after: str = "", limit: int = 0) -> Page:
        where, params = _key_range("key", prefix, after)
        sql = _SCAN.format(where=where + " AND id <= ?")
        sql_limit = limit + 1 if limit else -1
        at, rows = await self._read_at(sql, prefix, revision, lambda at: [*params, at, sql_limit])
        items = [KeyValue(key, value, crev, mrev) for key, value, crev, mrev in rows]
        more = bool(limit) and len(items) > limit
        return Page(items[:limit] if more else items, at, more)

    async def current_revision(self) -> int:
        return self._revision

    async def _read(self, sql: str, key: str, revision: int, params: _Params) -> list[Any]:
        return (await self._read_at(sql, key, revision, params))[1]

    async def _read_at(self, sql: str, key: str, revision: int, params: _Params) -> tuple[int, list[Any]]:
        """Run a read bounded by a revision. A read at 0 (latest) that a concurrent compaction
        overtook is retried at the new latest revision; an explicit one raises Compacted."""
        while True:
            at = self._check_revision(key, revision)
            rows = list(await self._reader.execute_fetchall(sql, params(at)))
            if at >= self.compacted_revision:
                return at, rows
            if revision:
                raise Compacted(key, self.compacted_revision)

    def _check_revision(self, key: str, revision: int) -> int:
        if revision == 0:
            return self._revision
        if revision < self.compacted_revision:
            raise Compacted(key, self.compacted_revision)
        if revision > self._revision:
            raise ValueError(f"revision {revision} is newer than the current revision {self._revision}")
        return revision

    # -- writes --------------------------------------------------------------------------

    async def create(self, key: str, value: bytes) -> int:
        return await self._submit("create", key, value, 0)  # type: ignore[no-any-return]

    async def update(self, key: str, value: bytes, *, revision: int) -> int:
        """`revision` 0 means unconditional, as for `delete`."""
        return await self._submit("update", key, value, revision)  # type: ignore[no-any-return]

    async def delete(self, key: str, *, revision: int = 0) -> KeyValue:
        return await self._submit("delete", key, b"", revision)  # type: ignore[no-any-return]

    async def _submit(self, kind: _Kind, key: str, value: bytes, expected: int) -> Any:
        """Queue a write for the writer task. If the caller is cancelled before its batch is
        taken the write is dropped; after that it may still be committed (as with etcd)."""
        if self._closing:
            raise RuntimeError("storage backend is closed")
        future: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        self._pending.append(_Op(kind, key, value, expected, future))
        self._wake.set()
        return await future

    async def _run_writer(self) -> None:
        while True:
            if not self._pending:
                if self._closing:
                    return
                self._wake.clear()
                await self._wake.wait()
                continue
            ops, self._pending = self._pending[:MAX_BATCH_OPS], self._pending[MAX_BATCH_OPS:]
            async with self._write_lock:
                await self._commit_batch([op for op in ops if not op.future.done()])
                if self._commit_on_loop and self._rows_since_checkpoint >= CHECKPOINT_ROWS:
                    self._rows_since_checkpoint = 0
                    await self._writer.execute_fetchall("PRAGMA wal_checkpoint(PASSIVE)")  # read: its row ends the statement

    async def _commit_batch(self, ops: list[_Op]) -> None:
        failure: BaseException | None = None
        batch = _Batch(self._index, self._revision, {})
        try:
            batch.old_values = await self._old_values(ops)
            for op in ops:
                batch.apply(op)
            if batch.rows:
                await self._write_rows(batch.rows)
        except Exception as exc:  # the whole batch failed: every op that would have written fails
            failure = exc
        else:
            self._publish(batch)
        for op, result, error in batch.outcomes:
            if not op.future.done():
                if error is not None or failure is not None:
                    op.future.set_exception(error or failure)  # type: ignore[arg-type]
                else:
                    op.future.set_result(result)
        for op in ops[len(batch.outcomes):]:
            if not op.future.done():
                op.future.set_exception(failure or RuntimeError("write not applied"))

    async def _old_values(self, ops: list[_Op]) -> dict[int, bytes]:
        """Current values of the keys updated or deleted (for returned values and `prev`)."""
        ids = {s[1] for op in ops if op.kind != "create" and (s := self._index.get(op.key))}
        if not ids:
            return {}
        marks = ",".join("?" * len(ids))
        sql = f"SELECT id, value FROM kine WHERE id IN ({marks})"
        if self._commit_on_loop:  # primary-key lookups of rows the page cache holds
            rows = self._writer._conn.execute(sql, list(ids)).fetchall()
        else:
            rows = await self._writer.execute_fetchall(sql, list(ids))
        return {rev: value for rev, value in rows}

    async def _write_rows(self, rows: list[_Row]) -> None:
        try:
            if self._commit_on_loop:
                conn = self._writer._conn
                conn.executemany(_INSERT, rows)
                conn.commit()
            else:
                await self._writer.executemany(_INSERT, rows)
                await self._writer.commit()
        except BaseException:
            await asyncio.shield(self._writer.rollback())
            raise
        self.transactions += 1
        self._rows_since_checkpoint += len(rows)

    def _publish(self, batch: _Batch) -> None:
        for key, state in batch.overlay.items():
            if state is None:
                self._index.pop(key, None)
            else:
                self._index[key] = state
        self._buffer.extend(batch.events)
        self._revision = batch.revision
        self._wake_watchers()

    def _wake_watchers(self) -> None:
        signal, self._signal = self._signal, asyncio.Event()
        signal.set()

    # -- watch ---------------------------------------------------------------------------

    def watch(self, prefix: str, *, revision: int) -> AsyncIterator[Event]:
        return self._watch(prefix, revision)

    async def _watch(self, prefix: str, revision: int) -> AsyncIterator[Event]:
        if revision < self.compacted_revision:
            raise Compacted(prefix, self.compacted_revision)
        cursor = revision
        while not self._closed.is_set():
            signal = self._signal
            if cursor >= self._revision:
                await signal.wait()
                continue
            found = self._from_buffer(prefix, cursor)
            events, cursor = found if found is not None else await self._from_table(prefix, cursor)
            for event in events:
                yield event

    def _from_buffer(self, prefix: str, cursor: int) -> tuple[list[Event], int] | None:
        behind = self._revision - cursor
        if behind > len(self._buffer):
            return None
        buffer = self._buffer
        start = len(buffer) - behind
        # Index from the end: a live watcher is a few events behind, and a deque is indexed
        # in O(distance from the nearer end), where islice would walk the whole buffer.
        chunk = [buffer[i] for i in range(start, min(len(buffer), start + WATCH_CHUNK_REVISIONS))]
        return [e for e in chunk if e.kv.key.startswith(prefix)], cursor + len(chunk)

    async def _from_table(self, prefix: str, cursor: int) -> tuple[list[Event], int]:
        if cursor < self.compacted_revision:
            raise Compacted(prefix, self.compacted_revision)
        upto = min(self._revision, cursor + WATCH_CHUNK_REVISIONS)
        where, params = _key_range("a.key", prefix)
        sql = _HISTORY.format(keys="AND " + where)
        rows = await self._reader.execute_fetchall(sql, [cursor, upto, *params])
        if cursor < self.compacted_revision:  # a compaction committed while we read
            raise Compacted(prefix, self.compacted_revision)
        return [_event_from_row(row) for row in rows], upto

    # -- maintenance ---------------------------------------------------------------------

    async def compact(self, revision: int) -> None:
        """Forget what is not needed to read at `revision` or later. A revision at or below the
        compacted one is a no-op; one newer than the current revision raises ValueError."""
        if revision > self._revision:
            raise ValueError(f"cannot compact to {revision}: current revision is {self._revision}")
        async with self._write_lock:
            if revision <= self.compacted_revision:
                return
            previous, self.compacted_revision = self.compacted_revision, revision  # readers re-check
            try:
                await self._writer.execute(_SAVE_COMPACTED, (revision,))
                await self._writer.execute(_COMPACT, (revision,))
                await self._writer.commit()
            except BaseException:
                await asyncio.shield(self._writer.rollback())
                self.compacted_revision = previous
                raise

    async def aclose(self) -> None:
        """Idempotent. Commits the writes already queued, refuses new ones, ends watches."""
        if self._closing:
            await self._closed.wait()
            return
        self._closing = True
        self._wake.set()
        try:
            await self._writer_task
        finally:
            self._closed.set()
            self._wake_watchers()
            await self._writer.close()
            await self._reader.close()


async def _set_up_writer(conn: aiosqlite.Connection, synchronous: str, *, autocheckpoint: bool) -> None:
    rows = list(await conn.execute_fetchall("PRAGMA journal_mode = WAL"))
    if rows[0][0].lower() != "wal":
        raise RuntimeError(f"SQLite refused WAL journal mode (got {rows[0][0]!r})")
    await conn.execute(f"PRAGMA synchronous = {synchronous}")
    if not autocheckpoint:
        await conn.execute("PRAGMA wal_autocheckpoint = 0")
    for statement in _SCHEMA:
        await conn.execute(statement)
    await conn.commit()


async def _load_state(conn: aiosqlite.Connection) -> tuple[int, int, dict[str, _State]]:
    """(revision, compacted revision, index of live keys) from the table."""
    (max_id,), = await conn.execute_fetchall("SELECT COALESCE(MAX(id), 0) FROM kine")
    meta = list(await conn.execute_fetchall("SELECT value FROM meta WHERE name = 'compact_revision'"))
    compacted = meta[0][0] if meta else 0
    sql = (
        "SELECT k.key, k.create_revision, k.id FROM kine AS k"
        " JOIN (SELECT MAX(id) AS mid FROM kine GROUP BY key) AS m ON k.id = m.mid WHERE k.deleted = 0"
    )
    index = {key: (crev, mrev) for key, crev, mrev in await conn.execute_fetchall(sql)}
    return max(max_id, compacted), compacted, index
