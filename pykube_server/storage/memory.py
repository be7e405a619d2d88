"""The reference MVCC backend: etcd's data model held entirely in memory.

It is the executable definition of the `Backend` contract and the default in tests, so it is
written for obviousness rather than speed:

* every key keeps its versions (revision, value or tombstone) in a list sorted by revision, and
  the set of keys is a sorted list, so a read "as of revision R" is two bisections;
* every write appends one `Event` to a global log that is kept until compaction, so a watch is
  just a cursor into that log: history and live delivery are the same code path, which is what
  makes "no gap, no duplicate at the switch-over" hold by construction;
* watchers sleep on one broadcast `asyncio.Event` that each write replaces, so there is no
  per-watcher queue to overflow and nothing to unregister when an iterator is dropped.

Writes never await, so each one is atomic with respect to other tasks. Nothing is durable.

Semantics shared with the other backends (see `backend.py`): revisions start at 1 and grow by one
per successful write; failed writes consume none; `compact(C)` keeps everything needed to read
at any revision >= C, and reads or watches from a revision below C raise `Compacted` whose
`revision` is C; reading at a revision newer than the current one raises ValueError.
"""

from __future__ import annotations

import asyncio
import bisect
from collections.abc import AsyncIterator
from types import TracebackType

from pykube_server.storage.backend import (
    Compacted,
    Conflict,
    Event,
    KeyExists,
    KeyNotFound,
    KeyValue,
    Page,
)

WATCH_CHUNK_EVENTS = 1000
"""How many log entries a watcher copies out at once (bounds the work per wake-up)."""

_Version = tuple[int, KeyValue | None]
"""(revision, value at that revision or None for a deletion tombstone)."""


def _rev_of(version: _Version) -> int:
    return version[0]


class MemoryBackend:
    """An in-memory `Backend`; see the module docstring for its shape."""

    def __init__(self) -> None:
        self.compacted_revision = 0
        """Reads and watches from revisions below this raise `Compacted`."""
        self._revision = 0
        self._keys: list[str] = []
        self._history: dict[str, list[_Version]] = {}
        self._log: list[Event] = []
        self._signal = asyncio.Event()
        self._closed = False

    async def __aenter__(self) -> MemoryBackend:
        return self

    async def __aexit__(
        self, et: type[BaseException] | None, e: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.aclose()

    # -- reads ---------------------------------------------------------------------------

    async def get(self, key: str, *, revision: int = 0) -> KeyValue:
        at = self._read_revision(key, revision)
        kv = self._value_at(key, at)
        if kv is None:
            raise KeyNotFound(key)
        return kv

    async def scan(self, prefix: str, *, revision: int = 0, after: str = "", limit: int = 0) -> Page:
        at = self._read_revision(prefix, revision)
        if after >= prefix:
            start = bisect.bisect_right(self._keys, after)
        else:
            start = bisect.bisect_left(self._keys, prefix)
        items: list[KeyValue] = []
        for key in self._keys[start:]:
            if not key.startswith(prefix):
                break
            kv = self._value_at(key, at)
            if kv is None:
                continue
            if limit and len(items) == limit:
                return Page(items, at, True)
            items.append(kv)
        return Page(items, at, False)

    async def current_revision(self) -> int:
        return self._revision

    def _read_revision(self, key: str, revision: int) -> int:
        if revision == 0:
            return self._revision
        if revision < self.compacted_revision:
            raise Compacted(key, self.compacted_revision)
        if revision > self._revision:
            raise ValueError(f"revision {revision} is newer than the current revision {self._revision}")
        return revision

    def _value_at(self, key: str, revision: int) -> KeyValue | None:
        versions = self._history.get(key)
        if not versions:
            return None
        i = bisect.bisect_right(versions, revision, key=_rev_of)
        return versions[i - 1][1] if i else None

    def _latest(self, key: str) -> KeyValue | None:
        versions = self._history.get(key)
        return versions[-1][1] if versions else None

    # -- writes --------------------------------------------------------------------------

    async def create(self, key: str, value: bytes) -> int:
        self._check_open()
        current = self._latest(key)
        if current is not None:
            raise KeyExists(key, current.mod_revision)
        rev = self._revision + 1
        self._commit(Event("put", KeyValue(key, value, rev, rev)))
        return rev

    async def update(self, key: str, value: bytes, *, revision: int) -> int:
        """`revision` 0 means unconditional, as for `delete`."""
        self._check_open()
        current = self._current_for_write(key, revision)
        rev = self._revision + 1
        self._commit(Event("put", KeyValue(key, value, current.create_revision, rev), current))
        return rev

    async def delete(self, key: str, *, revision: int = 0) -> KeyValue:
        self._check_open()
        current = self._current_for_write(key, revision)
        rev = self._revision + 1
        gone = KeyValue(key, current.value, current.create_revision, rev)
        self._commit(Event("delete", gone, current))
        return gone

    def _current_for_write(self, key: str, expected: int) -> KeyValue:
        current = self._latest(key)
        if current is None:
            raise KeyNotFound(key)
        if expected and current.mod_revision != expected:
            raise Conflict(key, current.mod_revision)
        return current

    def _commit(self, event: Event) -> None:
        key, rev = event.kv.key, event.kv.mod_revision
        versions = self._history.get(key)
        if versions is None:
            versions = self._history[key] = []
            bisect.insort(self._keys, key)
        versions.append((rev, event.kv if event.kind == "put" else None))
        self._log.append(event)
        self._revision = rev
        self._wake_watchers()

    def _wake_watchers(self) -> None:
        signal, self._signal = self._signal, asyncio.Event()
        signal.set()

    def _check_open(self) -> None:
        if self._closed:
            raise RuntimeError("storage backend is closed")

    # -- watch ---------------------------------------------------------------------------

    def watch(self, prefix: str, *, revision: int) -> AsyncIterator[Event]:
        return self._watch(prefix, revision)

    async def _watch(self, prefix: str, revision: int) -> AsyncIterator[Event]:
        if revision < self.compacted_revision:
            raise Compacted(prefix, self.compacted_revision)
        cursor = revision
        while not self._closed:
            signal = self._signal
            if cursor >= self._revision:
                await signal.wait()
                continue
            events, cursor = self._events_after(prefix, cursor)
            for event in events:
                yield event

    def _events_after(self, prefix: str, cursor: int) -> tuple[list[Event], int]:
        """Matching log entries after `cursor`, at most one chunk, and the new cursor."""
        if cursor < self.compacted_revision:
            raise Compacted(prefix, self.compacted_revision)
        first = self.compacted_revision + 1  # the revision of self._log[0]
        upto = min(self._revision, cursor + WATCH_CHUNK_EVENTS)
        chunk = self._log[cursor + 1 - first : upto + 1 - first]
        return [e for e in chunk if e.kv.key.startswith(prefix)], upto

    # -- maintenance ---------------------------------------------------------------------

    async def compact(self, revision: int) -> None:
        """Forget what is not needed to read at `revision` or later. A revision at or below the
        compacted one is a no-op; one newer than the current revision raises ValueError."""
        if revision > self._revision:
            raise ValueError(f"cannot compact to {revision}: current revision is {self._revision}")
        if revision <= self.compacted_revision:
            return
        del self._log[: revision - self.compacted_revision]
        for key in [k for k in self._keys if self._compact_key(k, revision)]:
            del self._history[key]
            self._keys.pop(bisect.bisect_left(self._keys, key))
        self.compacted_revision = revision

    def _compact_key(self, key: str, revision: int) -> bool:
        """Drop versions superseded at `revision`; True when nothing is left of the key."""
        versions = self._history[key]
        i = bisect.bisect_right(versions, revision, key=_rev_of)
        if i == 0:
            return False
        keep_from = i - 1 if versions[i - 1][1] is not None else i
        del versions[:keep_from]
        return not versions

    async def aclose(self) -> None:
        """Idempotent; running watches end (their iterators finish) and writes are refused."""
        self._closed = True
        self._wake_watchers()
