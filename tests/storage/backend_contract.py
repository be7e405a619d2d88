"""The `Backend` contract, written once and run against every implementation.

A test module subclasses `BackendContract` and provides a `backend` fixture. Expected values
follow etcd's MVCC semantics (one global revision per write, failed writes consume none, reads
as of a revision, compaction keeps what is needed to read at the compacted revision and later).
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest

from pykube_server.storage.backend import (
    Backend,
    Compacted,
    Conflict,
    Event,
    KeyExists,
    KeyNotFound,
    KeyValue,
)


async def take(it: AsyncIterator[Event], n: int, timeout: float = 5.0) -> list[Event]:
    async with asyncio.timeout(timeout):
        return [await anext(it) for _ in range(n)]


async def nothing_more(it: AsyncIterator[Event]) -> bool:
    """True when the watch has no event ready after letting other tasks run. Cancelling the
    pending read ends the watch, so this is the last thing a test asks of it."""
    task = asyncio.ensure_future(anext(it))
    for _ in range(20):
        await asyncio.sleep(0)
    done = task.done()
    task.cancel()
    try:
        await task
    except (asyncio.CancelledError, StopAsyncIteration):
        pass
    return not done


def summary(events: list[Event]) -> list[tuple[str, str, int]]:
    return [(e.kind, e.kv.key, e.kv.mod_revision) for e in events]


class BackendContract:
    # -- basics ---------------------------------------------------------------------------

    async def test_empty_store(self, backend: Backend) -> None:
        assert await backend.current_revision() == 0
        with pytest.raises(KeyNotFound):
            await backend.get("/a")
        page = await backend.scan("/")
        assert (list(page.items), page.revision, page.more) == ([], 0, False)

    async def test_create_assigns_increasing_revisions(self, backend: Backend) -> None:
        assert await backend.create("/a", b"1") == 1
        assert await backend.create("/b", b"2") == 2
        assert await backend.get("/a") == KeyValue("/a", b"1", 1, 1)
        assert await backend.current_revision() == 2

    async def test_create_existing_key_fails_without_consuming_a_revision(self, backend: Backend) -> None:
        await backend.create("/a", b"1")
        await backend.update("/a", b"2", revision=1)
        with pytest.raises(KeyExists) as info:
            await backend.create("/a", b"3")
        assert (info.value.key, info.value.revision) == ("/a", 2)
        assert await backend.current_revision() == 2
        assert await backend.create("/b", b"") == 3

    async def test_update_is_compare_and_swap(self, backend: Backend) -> None:
        await backend.create("/a", b"1")
        await backend.create("/other", b"x")
        assert await backend.update("/a", b"2", revision=1) == 3
        assert await backend.get("/a") == KeyValue("/a", b"2", 1, 3)
        with pytest.raises(Conflict) as info:
            await backend.update("/a", b"stale", revision=1)
        assert info.value.revision == 3
        assert (await backend.get("/a")).value == b"2"
        assert await backend.current_revision() == 3

    async def test_update_zero_revision_is_unconditional(self, backend: Backend) -> None:
        await backend.create("/a", b"1")
        assert await backend.update("/a", b"2", revision=0) == 2

    async def test_update_missing_key(self, backend: Backend) -> None:
        with pytest.raises(KeyNotFound):
            await backend.update("/a", b"1", revision=1)
        await backend.create("/a", b"1")
        await backend.delete("/a")
        with pytest.raises(KeyNotFound):
            await backend.update("/a", b"1", revision=0)

    async def test_delete_returns_last_value_at_deletion_revision(self, backend: Backend) -> None:
        await backend.create("/a", b"1")
        await backend.update("/a", b"2", revision=1)
        assert await backend.delete("/a", revision=2) == KeyValue("/a", b"2", 1, 3)
        with pytest.raises(KeyNotFound):
            await backend.get("/a")
        with pytest.raises(KeyNotFound):
            await backend.delete("/a")
        assert await backend.current_revision() == 3

    async def test_delete_is_compare_and_swap(self, backend: Backend) -> None:
        await backend.create("/a", b"1")
        await backend.update("/a", b"2", revision=1)
        with pytest.raises(Conflict) as info:
            await backend.delete("/a", revision=1)
        assert info.value.revision == 2
        assert (await backend.delete("/a")).mod_revision == 3  # 0 = unconditional

    async def test_recreate_after_delete_starts_a_new_lifetime(self, backend: Backend) -> None:
        await backend.create("/a", b"1")
        await backend.delete("/a")
        assert await backend.create("/a", b"again") == 3
        assert await backend.get("/a") == KeyValue("/a", b"again", 3, 3)

    # -- scan -----------------------------------------------------------------------------

    async def test_scan_prefix_order_and_deleted_keys(self, backend: Backend) -> None:
        for key in ["/r/pods/b", "/r/pods/a", "/r/podsx/c", "/r/pod", "/r/pods/c"]:
            await backend.create(key, key.encode())
        await backend.delete("/r/pods/c")
        page = await backend.scan("/r/pods/")
        assert [kv.key for kv in page.items] == ["/r/pods/a", "/r/pods/b"]
        assert page.items[0] == KeyValue("/r/pods/a", b"/r/pods/a", 2, 2)
        assert (page.revision, page.more) == (6, False)
        assert [kv.key for kv in (await backend.scan("")).items] == [
            "/r/pod", "/r/pods/a", "/r/pods/b", "/r/podsx/c"]

    async def test_scan_after_and_limit(self, backend: Backend) -> None:
        for i in range(5):
            await backend.create(f"/k/{i}", b"")
        first = await backend.scan("/k/", limit=2)
        assert ([kv.key for kv in first.items], first.more) == (["/k/0", "/k/1"], True)
        rest = await backend.scan("/k/", after="/k/1", limit=3)
        assert ([kv.key for kv in rest.items], rest.more) == (["/k/2", "/k/3", "/k/4"], False)
        exact = await backend.scan("/k/", after="/k/2", limit=2)
        assert exact.more is False
        assert (await backend.scan("/k/", after="/k/4")).items == []
        assert [kv.key for kv in (await backend.scan("/k/", after="/a")).items][0] == "/k/0"

    async def test_scan_more_ignores_deleted_keys(self, backend: Backend) -> None:
        for key in ["/k/a", "/k/b", "/k/c"]:
            await backend.create(key, b"")
        await backend.delete("/k/c")
        page = await backend.scan("/k/", limit=2)
        assert page.more is False

    async def test_unicode_keys_sort_by_code_point(self, backend: Backend) -> None:
        keys = ["/u/\u00e9", "/u/z", "/u/\U0001f600", "/u/\uffff", "/u/A"]
        for key in keys:
            await backend.create(key, b"")
        await backend.create("/u\U0010ffff", b"")  # just past the prefix
        assert [kv.key for kv in (await backend.scan("/u/")).items] == sorted(keys)
        assert [kv.key for kv in (await backend.scan("/u/\U0001f600")).items] == ["/u/\U0001f600"]

    # -- MVCC reads -----------------------------------------------------------------------

    async def test_get_and_scan_as_of_a_revision(self, backend: Backend) -> None:
        await backend.create("/k/a", b"a1")  # 1
        await backend.create("/k/b", b"b1")  # 2
        await backend.update("/k/a", b"a2", revision=1)  # 3
        await backend.delete("/k/b")  # 4
        await backend.create("/k/c", b"c1")  # 5
        assert await backend.get("/k/a", revision=2) == KeyValue("/k/a", b"a1", 1, 1)
        assert await backend.get("/k/b", revision=3) == KeyValue("/k/b", b"b1", 2, 2)
        with pytest.raises(KeyNotFound):
            await backend.get("/k/b", revision=4)
        with pytest.raises(KeyNotFound):
            await backend.get("/k/c", revision=4)
        page = await backend.scan("/k/", revision=3)
        assert page.revision == 3
        assert [(kv.key, kv.value) for kv in page.items] == [("/k/a", b"a2"), ("/k/b", b"b1")]

    async def test_consistent_pagination_at_a_revision(self, backend: Backend) -> None:
        for i in range(4):
            await backend.create(f"/k/{i}", b"old")
        first = await backend.scan("/k/", limit=2)
        await backend.update("/k/2", b"new", revision=3)
        await backend.delete("/k/3")
        await backend.create("/k/25", b"new")
        rest = await backend.scan("/k/", revision=first.revision, after=first.items[-1].key, limit=2)
        assert [(kv.key, kv.value) for kv in rest.items] == [("/k/2", b"old"), ("/k/3", b"old")]
        assert rest.revision == first.revision == 4

    async def test_future_revision_is_refused(self, backend: Backend) -> None:
        await backend.create("/a", b"")
        with pytest.raises(ValueError):
            await backend.get("/a", revision=2)
        with pytest.raises(ValueError):
            await backend.scan("/", revision=2)

    # -- compaction -----------------------------------------------------------------------

    async def _history(self, backend: Backend) -> None:
        await backend.create("/k/a", b"a1")  # 1
        await backend.create("/k/b", b"b1")  # 2
        await backend.update("/k/a", b"a2", revision=1)  # 3
        await backend.delete("/k/b")  # 4
        await backend.create("/k/c", b"c1")  # 5
        await backend.update("/k/a", b"a3", revision=3)  # 6

    async def test_compaction_keeps_reads_at_and_after_the_compacted_revision(self, backend: Backend) -> None:
        await self._history(backend)
        await backend.compact(5)
        assert getattr(backend, "compacted_revision") == 5
        assert await backend.current_revision() == 6
        page = await backend.scan("/k/", revision=5)
        assert [(kv.key, kv.value, kv.mod_revision) for kv in page.items] == [
            ("/k/a", b"a2", 3), ("/k/c", b"c1", 5)]
        assert await backend.get("/k/a") == KeyValue("/k/a", b"a3", 1, 6)
        with pytest.raises(KeyNotFound):
            await backend.get("/k/b", revision=5)
        for read in (backend.get("/k/a", revision=4), backend.scan("/k/", revision=4)):
            with pytest.raises(Compacted) as info:
                await read
            assert info.value.revision == 5

    async def test_compaction_is_idempotent_and_refuses_the_future(self, backend: Backend) -> None:
        await self._history(backend)
        await backend.compact(4)
        await backend.compact(4)
        await backend.compact(2)
        assert getattr(backend, "compacted_revision") == 4
        with pytest.raises(ValueError):
            await backend.compact(7)
        await backend.compact(6)
        assert await backend.current_revision() == 6
        assert [kv.key for kv in (await backend.scan("/k/", revision=6)).items] == ["/k/a", "/k/c"]
        assert await backend.create("/k/d", b"") == 7

    # -- watch ----------------------------------------------------------------------------

    async def test_watch_replays_history_then_follows_live_writes(self, backend: Backend) -> None:
        await backend.create("/w/a", b"1")
        await backend.create("/w/b", b"1")
        watch = backend.watch("/w/", revision=1)
        assert summary(await take(watch, 1)) == [("put", "/w/b", 2)]
        await backend.update("/w/a", b"2", revision=1)
        await backend.delete("/w/b")
        assert summary(await take(watch, 2)) == [("put", "/w/a", 3), ("delete", "/w/b", 4)]
        assert await nothing_more(watch)
        await watch.aclose()  # type: ignore[attr-defined]

    async def test_watch_event_values_and_prev(self, backend: Backend) -> None:
        await backend.create("/w/a", b"v1")
        await backend.update("/w/a", b"v2", revision=1)
        await backend.delete("/w/a")
        await backend.create("/w/a", b"v3")
        expected = [
            Event("put", KeyValue("/w/a", b"v1", 1, 1)),
            Event("put", KeyValue("/w/a", b"v2", 1, 2), KeyValue("/w/a", b"v1", 1, 1)),
            Event("delete", KeyValue("/w/a", b"v2", 1, 3), KeyValue("/w/a", b"v2", 1, 2)),
            Event("put", KeyValue("/w/a", b"v3", 4, 4)),
        ]
        history = backend.watch("/w/", revision=0)
        assert await take(history, 4) == expected
        await history.aclose()  # type: ignore[attr-defined]
        live = backend.watch("/w/", revision=4)
        await backend.update("/w/a", b"v4", revision=4)
        await backend.delete("/w/a", revision=5)
        assert await take(live, 2) == [
            Event("put", KeyValue("/w/a", b"v4", 4, 5), KeyValue("/w/a", b"v3", 4, 4)),
            Event("delete", KeyValue("/w/a", b"v4", 4, 6), KeyValue("/w/a", b"v4", 4, 5)),
        ]
        await live.aclose()  # type: ignore[attr-defined]

    async def test_watch_filters_by_prefix(self, backend: Backend) -> None:
        watch = backend.watch("/r/pods/", revision=0)
        for key in ["/r/pods/a", "/r/podsx", "/r/services/a", "/r/pods/b"]:
            await backend.create(key, b"")
        assert summary(await take(watch, 2)) == [("put", "/r/pods/a", 1), ("put", "/r/pods/b", 4)]
        assert await nothing_more(watch)
        await watch.aclose()  # type: ignore[attr-defined]

    async def test_watch_from_the_future_starts_after_it(self, backend: Backend) -> None:
        watch = backend.watch("/", revision=2)
        for i in range(4):
            await backend.create(f"/{i}", b"")
        assert summary(await take(watch, 2)) == [("put", "/2", 3), ("put", "/3", 4)]
        await watch.aclose()  # type: ignore[attr-defined]

    async def test_watch_has_no_gap_or_duplicate_while_writes_race(self, backend: Backend) -> None:
        for i in range(50):
            await backend.create(f"/w/{i:03}", b"h")
        watch = backend.watch("/w/", revision=10)

        async def writer(n: int) -> None:
            for i in range(n):
                await backend.create(f"/w/live{n}-{i}", b"l")
                await asyncio.sleep(0)

        async with asyncio.TaskGroup() as tg:
            tg.create_task(writer(40))
            tg.create_task(writer(30))
            events = await take(watch, 40 + 70)
        assert [e.kv.mod_revision for e in events] == list(range(11, 121))
        assert await nothing_more(watch)
        await watch.aclose()  # type: ignore[attr-defined]

    async def test_watch_from_a_compacted_revision_fails(self, backend: Backend) -> None:
        for i in range(4):
            await backend.create(f"/w/{i}", b"")
        await backend.compact(3)
        with pytest.raises(Compacted) as info:
            await anext(backend.watch("/w/", revision=2))
        assert info.value.revision == 3
        watch = backend.watch("/w/", revision=3)
        assert summary(await take(watch, 1)) == [("put", "/w/3", 4)]
        await watch.aclose()  # type: ignore[attr-defined]

    async def test_closed_watch_stops(self, backend: Backend) -> None:
        watch = backend.watch("/", revision=0)
        await backend.create("/a", b"")
        await take(watch, 1)
        await watch.aclose()  # type: ignore[attr-defined]
        with pytest.raises(StopAsyncIteration):
            await anext(watch)
        await backend.create("/b", b"")  # writes do not trip over the closed watch

    async def test_cancelled_watch_read_ends_the_watch(self, backend: Backend) -> None:
        watch = backend.watch("/", revision=0)
        pending = asyncio.ensure_future(anext(watch))
        await asyncio.sleep(0)
        pending.cancel()
        with pytest.raises(asyncio.CancelledError):
            await pending
        with pytest.raises(StopAsyncIteration):
            await anext(watch)

    async def test_closing_the_backend_ends_watches(self, backend: Backend) -> None:
        watch = backend.watch("/", revision=0)
        waiting = asyncio.ensure_future(anext(watch))
        await asyncio.sleep(0)
        await backend.aclose()
        await backend.aclose()
        with pytest.raises(StopAsyncIteration):
            async with asyncio.timeout(5):
                await waiting
        with pytest.raises(RuntimeError):
            await backend.create("/a", b"")

    # -- concurrency ----------------------------------------------------------------------

    async def test_concurrent_creates_get_distinct_revisions(self, backend: Backend) -> None:
        revs = await asyncio.gather(*(backend.create(f"/c/{i}", b"x") for i in range(64)))
        assert sorted(revs) == list(range(1, 65))
        assert len((await backend.scan("/c/")).items) == 64

    async def test_concurrent_compare_and_swap_has_one_winner(self, backend: Backend) -> None:
        rev = await backend.create("/a", b"0")
        results = await asyncio.gather(
            *(backend.update("/a", str(i).encode(), revision=rev) for i in range(16)), return_exceptions=True)
        winners = [r for r in results if isinstance(r, int)]
        assert len(winners) == 1
        assert all(isinstance(r, Conflict) for r in results if not isinstance(r, int))
        assert (await backend.get("/a")).mod_revision == winners[0]

    async def test_concurrent_creates_of_one_key_have_one_winner(self, backend: Backend) -> None:
        creates = (backend.create("/a", b"x") for _ in range(8))
        results = await asyncio.gather(*creates, return_exceptions=True)
        assert results[0] == 1  # submission order decides
        assert all(isinstance(r, KeyExists) and r.revision == 1 for r in results[1:])
