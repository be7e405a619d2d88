"""The storage backend seam: etcd's data model behind one small protocol.

Every backend (memory, SQLite, etcd) implements `Backend`; one contract suite
(`tests/storage/backend_contract.py`) runs against all of them. Values are opaque bytes (the
object's JSON without its resourceVersion, which the layer above stamps from `mod_revision`).
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass
from typing import Literal, Protocol


@dataclass(frozen=True, slots=True)
class KeyValue:
    key: str
    value: bytes
    create_revision: int
    mod_revision: int


@dataclass(frozen=True, slots=True)
class Event:
    kind: Literal["put", "delete"]
    kv: KeyValue
    """For "delete": the last value, with mod_revision = the deletion's revision."""
    prev: KeyValue | None = None


@dataclass(frozen=True, slots=True)
class Page:
    items: Sequence[KeyValue]
    revision: int
    """The revision the page was read at."""
    more: bool


class StorageError(Exception):
    def __init__(self, key: str, revision: int = 0) -> None:
        super().__init__(key, revision)
        self.key, self.revision = key, revision


class KeyNotFound(StorageError):
    pass


class KeyExists(StorageError):
    pass


class Conflict(StorageError):
    """The expected revision is no longer current; `revision` is the current mod_revision."""


class Compacted(StorageError):
    """The requested revision is older than retained history (the API answers 410)."""


class Backend(Protocol):
    """A revisioned, ordered key-value store.

    Revisions are cluster-wide, strictly increasing integers; every write gets a new one.
    Implementations are safe for concurrent use by many tasks. A write that returned has been
    made durable (it survives the server process being killed).
    """

    async def get(self, key: str, *, revision: int = 0) -> KeyValue:
        """Value at `revision` (0 = latest). Raises KeyNotFound, Compacted."""

    async def scan(self, prefix: str, *, revision: int = 0, after: str = "", limit: int = 0) -> Page:
        """Live keys under `prefix` in key order, strictly after `after`, as of `revision`
        (0 = latest). `limit` 0 = no limit. Raises Compacted."""

    async def create(self, key: str, value: bytes) -> int:
        """Returns the new revision. Raises KeyExists."""

    async def update(self, key: str, value: bytes, *, revision: int) -> int:
        """Compare-and-swap on mod_revision. Returns the new revision.
        Raises KeyNotFound, Conflict."""

    async def delete(self, key: str, *, revision: int = 0) -> KeyValue:
        """0 = unconditional. Returns the deleted value with mod_revision set to the deletion's
        revision. Raises KeyNotFound, Conflict."""

    def watch(self, prefix: str, *, revision: int) -> AsyncIterator[Event]:
        """Events under `prefix` with mod_revision > `revision`, in revision order, until the
        iterator is closed. Raises Compacted (on first iteration) if `revision` is older than
        retained history."""

    async def current_revision(self) -> int:
        """The revision of the latest write (0 for an empty store)."""

    async def compact(self, revision: int) -> None:
        """Forget history older than `revision`; later reads/watches below it raise Compacted."""

    async def aclose(self) -> None:
        """Idempotent."""
