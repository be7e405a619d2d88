"""`pykube-server migrate --from URL --to URL`: move a stopped cluster's data to another store.

Every live key under `/registry/` is copied as of one revision of the source (a consistent
snapshot: pages are read at that revision), in batches with progress on standard error. Values
are copied as stored, so objects encrypted at rest stay encrypted with the same keys (keep the
same --encryption-provider-config).

resourceVersions stay monotonic across the move: before the first copy the destination is
renumbered so its next revision is above the source's current one (etcd: a stored revision
offset, see `storage/etcd.py`; SQLite: its revision counter, kept as the compacted revision).
So every resourceVersion a client saw before is lower than any it sees after; an informer
resuming with an old one gets 410 Expired and relists, as after any compaction.

A destination that already holds keys is refused unless --force, which makes it an exact copy
(keys the source lacks are deleted). Master leases (`/registry/masterleases/`) are not copied:
they describe the API servers of the old cluster.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
from collections.abc import Callable
from typing import TextIO

import aiosqlite

from pykube_server.storage import sqlite as sqlite_backend
from pykube_server.storage.backend import Backend, KeyExists, KeyNotFound
from pykube_server.storage.etcd import EtcdBackend
from pykube_server.storage.factory import SUPPORTED_URLS, open_backend

PREFIX = "/registry/"
SKIPPED = ("/registry/masterleases/",)
DEFAULT_BATCH = 500
WRITERS = 32
"""Writes in flight at once (SQLite group-commits them; etcd pipelines them)."""


class MigrationError(Exception):
    """The migration cannot start (the message says why); nothing was written."""


def add_flags(p: argparse.ArgumentParser) -> None:
    p.add_argument("--from", dest="source", required=True, help=f"storage URL to copy from ({SUPPORTED_URLS})")
    p.add_argument("--to", dest="destination", required=True, help="storage URL to copy to")
    p.add_argument("--force", action="store_true",
                   help="overwrite a destination that already holds data (it becomes an exact copy)")
    p.add_argument("--batch-size", type=int, default=DEFAULT_BATCH, help=f"keys per batch (default {DEFAULT_BATCH})")
    p.add_argument("--log-level", default="INFO")


async def main(args: argparse.Namespace) -> None:
    try:
        await migrate(args.source, args.destination, force=args.force, batch_size=args.batch_size)
    except MigrationError as exc:
        print(f"error: {exc}", file=sys.stderr)
        raise SystemExit(1) from None


async def migrate(source_url: str, destination_url: str, *, force: bool = False,
                  batch_size: int = DEFAULT_BATCH, out: TextIO | None = None) -> tuple[int, int]:
    """Copy; returns (keys copied, the destination's revision afterwards)."""
    out = out or sys.stderr
    if batch_size <= 0:
        raise MigrationError("--batch-size must be positive")
    if source_url == destination_url:
        raise MigrationError("--from and --to name the same store")
    for url in (source_url, destination_url):
        if url.startswith("memory:"):
            raise MigrationError(f"{url}: a memory store lives only inside one process; nothing to migrate")
    source = await open_backend(source_url)
    try:
        revision = await source.current_revision()
        total = await _count(source, revision)
        print(f"migrating {total} keys from {source_url} at revision {revision} to {destination_url}",
              file=out, flush=True)
        destination = await _prepared_destination(destination_url, revision, force=force)
        try:
            copied = await _copy(source, destination, revision, batch_size,
                                 progress=lambda n: print(f"copied {n}/{total} keys", file=out, flush=True))
            if force:
                await _delete_extra(source, destination, revision)
            final = await destination.current_revision()
        finally:
            await destination.aclose()
    finally:
        await source.aclose()
    print(f"done: {copied} keys; the destination's resourceVersions continue from {final}"
          f" (the source was at {revision})", file=out, flush=True)
    return copied, final


async def _count(backend: Backend, revision: int) -> int:
    n, after = 0, ""
    while True:
        page = await backend.scan(PREFIX, revision=revision, after=after, limit=DEFAULT_BATCH * 4)
        n += sum(1 for kv in page.items if not kv.key.startswith(SKIPPED))
        if not page.more or not page.items:
            return n
        after = page.items[-1].key


async def _prepared_destination(url: str, floor: int, *, force: bool) -> Backend:
    """Open the destination, refuse it when it holds data (unless `force`), and renumber it
    so that its next revision is above `floor`."""
    destination = await open_backend(url)
    try:
        page = await destination.scan(PREFIX, limit=1)
        if page.items and not force:
            raise MigrationError(f"the destination {url} already holds data (e.g. {page.items[0].key});"
                                 " pass --force to overwrite it")
        if isinstance(destination, EtcdBackend):
            await destination.start_revisions_after(floor)
            return destination
        if not isinstance(destination, sqlite_backend.SQLiteBackend):
            raise MigrationError(f"cannot migrate into {url}")
        current = await destination.current_revision()
    except BaseException:
        await destination.aclose()
        raise
    await destination.aclose()
    if floor > current:
        await _raise_sqlite_counter(url, floor)
    return await open_backend(url)


async def _raise_sqlite_counter(url: str, floor: int) -> None:
    """SQLite's revision is max(newest row, compacted revision): recording `floor` as compacted
    makes the next write `floor + 1` (and reads before it are Compacted, which they are)."""
    path = url.partition("://")[2].partition("?")[0]
    async with aiosqlite.connect(path) as conn:
        await conn.execute(sqlite_backend._SAVE_COMPACTED, (floor,))
        await conn.commit()


async def _copy(source: Backend, destination: Backend, revision: int, batch_size: int,
                progress: Callable[[int], None]) -> int:
    slots = asyncio.Semaphore(WRITERS)

    async def put(key: str, value: bytes) -> None:
        async with slots:
            try:
                await destination.create(key, value)
            except KeyExists:  # only with --force
                try:
                    await destination.update(key, value, revision=0)
                except KeyNotFound:
                    await destination.create(key, value)

    copied, after = 0, ""
    while True:
        page = await source.scan(PREFIX, revision=revision, after=after, limit=batch_size)
        items = [kv for kv in page.items if not kv.key.startswith(SKIPPED)]
        # A batch is written concurrently: the order of its new revisions does not matter,
        # every copied object gets a new resourceVersion anyway.
        await asyncio.gather(*(put(kv.key, kv.value) for kv in items))
        copied += len(items)
        if items:
            progress(copied)
        if not page.more or not page.items:
            return copied
        after = page.items[-1].key


async def _delete_extra(source: Backend, destination: Backend, revision: int) -> None:
    """With --force: delete destination keys the source does not have."""
    after = ""
    while True:
        page = await destination.scan(PREFIX, after=after, limit=DEFAULT_BATCH)
        for kv in page.items:
            try:
                await source.get(kv.key, revision=revision)
            except KeyNotFound:
                try:
                    await destination.delete(kv.key)
                except KeyNotFound:
                    pass
        if not page.more or not page.items:
            return
        after = page.items[-1].key
