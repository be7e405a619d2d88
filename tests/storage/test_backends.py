"""The backend contract over memory, SQLite and a real etcd (one fresh member per test, skipped
only where the etcd binary is missing), plus what only SQLite promises: restart, group
commit, `kill -9` durability, physical compaction and watch catch-up from the table. Also the
URL factory and the compactor loop (driven by a fake clock)."""

from __future__ import annotations

import asyncio
import os
import signal
import sqlite3
import subprocess
import sys
import textwrap
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from pykube_server.storage.backend import Backend, Compacted, Conflict, KeyExists, KeyNotFound, KeyValue
from pykube_server.storage.compactor import run_compactor
from pykube_server.storage.etcd import EtcdBackend
from pykube_server.storage.factory import open_backend
from pykube_server.storage.memory import MemoryBackend
from pykube_server.storage.sqlite import SQLiteBackend, prefix_end
from tests.storage.backend_contract import BackendContract, summary, take
from tests.storage.etcd_server import EtcdCluster

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(params=["memory", "sqlite", "etcd"])
async def backend(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Backend]:
    store: Backend
    etcd: EtcdCluster | None = None
    if request.param == "memory":
        store = MemoryBackend()
    elif request.param == "sqlite":
        store = await SQLiteBackend.open(tmp_path / "db")
    else:  # a fresh member per test: the contract counts revisions from an empty store
        etcd = await asyncio.to_thread(EtcdCluster(tmp_path).start)
        store = await EtcdBackend.open(etcd.endpoints)
    try:
        yield store
    finally:
        await store.aclose()
        if etcd is not None:
            etcd.stop()


class TestContract(BackendContract):
    pass


# -- SQLite only -------------------------------------------------------------------------


def rows(path: Path) -> list[tuple[int, str, int, int]]:
    with sqlite3.connect(path) as conn:
        return list(conn.execute("SELECT id, key, created, deleted FROM kine ORDER BY id"))


async def test_restart_keeps_data_revision_and_index(tmp_path: Path) -> None:
    async with await SQLiteBackend.open(tmp_path / "db") as db:
        await db.create("/a", b"1")
        await db.create("/b", b"1")
        await db.update("/a", b"2", revision=1)
        await db.delete("/b")
    async with await SQLiteBackend.open(tmp_path / "db") as db:
        assert await db.current_revision() == 4
        assert await db.get("/a") == KeyValue("/a", b"2", 1, 3)
        with pytest.raises(Conflict):
            await db.update("/a", b"x", revision=1)
        with pytest.raises(KeyExists):
            await db.create("/a", b"x")
        with pytest.raises(KeyNotFound):
            await db.delete("/b")
        assert await db.update("/a", b"3", revision=3) == 5
        assert await db.create("/b", b"again") == 6


async def test_revision_survives_compacting_away_the_newest_rows(tmp_path: Path) -> None:
    async with await SQLiteBackend.open(tmp_path / "db") as db:
        await db.create("/a", b"")
        await db.create("/b", b"")
        await db.delete("/a")
        await db.delete("/b")
        await db.compact(4)
    assert rows(tmp_path / "db") == []
    async with await SQLiteBackend.open(tmp_path / "db") as db:
        assert (await db.current_revision(), db.compacted_revision) == (4, 4)
        with pytest.raises(Compacted):
            await db.get("/a", revision=3)
        assert await db.create("/a", b"") == 5


async def test_group_commit_batches_concurrent_writes(tmp_path: Path) -> None:
    async with await SQLiteBackend.open(tmp_path / "db") as db:
        await db.create("/first", b"")
        before = db.transactions
        revs = await asyncio.gather(*(db.create(f"/c/{i}", b"x" * 1024) for i in range(64)))
        assert sorted(revs) == list(range(2, 66))
        assert db.transactions - before <= 2  # 64 one-write transactions without group commit


async def test_commits_on_the_loop_checkpoint_the_wal_themselves(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # NORMAL commits run on the event loop with SQLite's automatic checkpoint off, so the writer
    # must checkpoint every CHECKPOINT_ROWS rows or the WAL grows without bound; FULL commits
    # keep SQLite's own checkpoint. Either way everything written is there after a reopen.
    from pykube_server.storage import sqlite as sqlite_backend

    monkeypatch.setattr(sqlite_backend, "CHECKPOINT_ROWS", 50)
    for synchronous in ("NORMAL", "FULL"):
        path = tmp_path / f"db-{synchronous}"
        async with await SQLiteBackend.open(path, synchronous=synchronous) as db:  # type: ignore[arg-type]
            for round_ in range(8):
                await asyncio.gather(*(db.create(f"/k/{round_}/{i}", b"v" * 4096) for i in range(40)))
            wal = Path(str(path) + "-wal")
            if synchronous == "NORMAL":  # 320 rows of 4 KiB; a checkpoint every 50 lets the WAL be reused
                assert wal.stat().st_size < 320 * 4096 // 2, wal.stat().st_size
        async with await SQLiteBackend.open(path, synchronous=synchronous) as db:  # type: ignore[arg-type]
            assert await db.current_revision() == 320
            assert (await db.get("/k/7/39")).value == b"v" * 4096


async def test_failed_ops_in_a_batch_do_not_affect_the_others(tmp_path: Path) -> None:
    async with await SQLiteBackend.open(tmp_path / "db") as db:
        await db.create("/u", b"1")
        await db.create("/d", b"1")
        before = db.transactions
        results = await asyncio.gather(
            db.create("/n", b"n"),
            db.create("/n", b"again"),
            db.update("/u", b"stale", revision=99),
            db.update("/u", b"2", revision=1),
            db.delete("/d"),
            db.delete("/d"),
            db.update("/n", b"n2", revision=3),
            return_exceptions=True,
        )
        assert db.transactions - before == 1
        assert results[0] == 3 and results[3] == 4 and results[6] == 6
        assert isinstance(results[1], KeyExists) and results[1].revision == 3
        assert isinstance(results[2], Conflict) and results[2].revision == 1
        assert results[4] == KeyValue("/d", b"1", 2, 5)
        assert isinstance(results[5], KeyNotFound)
        assert [kv.key for kv in (await db.scan("/")).items] == ["/n", "/u"]
        assert (await db.get("/n")).value == b"n2"
    assert [r[0] for r in rows(tmp_path / "db")] == [1, 2, 3, 4, 5, 6]


CHILD = textwrap.dedent("""
    import asyncio, sys
    from pykube_server.storage.sqlite import SQLiteBackend

    async def writer(db, i):
        n = 0
        while True:
            rev = await db.create(f"/k/{i}/{n}", b"v" * 512)
            sys.stdout.write(f"/k/{i}/{n} {rev}\\n")
            sys.stdout.flush()
            n += 1

    async def main():
        db = await SQLiteBackend.open(sys.argv[1])
        await asyncio.gather(*(writer(db, i) for i in range(8)))

    asyncio.run(main())
""")


async def test_acknowledged_writes_survive_kill_9(tmp_path: Path) -> None:
    child = subprocess.Popen(
        [sys.executable, "-c", CHILD, str(tmp_path / "db")], cwd=ROOT, stdout=subprocess.PIPE, text=True)
    assert child.stdout is not None
    try:
        acked = [child.stdout.readline() for _ in range(300)]
    finally:
        os.kill(child.pid, signal.SIGKILL)
        child.wait()
    acked += child.stdout.readlines()
    writes = dict(line.split() for line in acked if line.endswith("\n"))
    assert len(writes) >= 300
    async with await SQLiteBackend.open(tmp_path / "db") as db:
        for key, rev in writes.items():
            assert (await db.get(key)).mod_revision == int(rev)
        assert await db.current_revision() >= max(int(r) for r in writes.values())


async def test_aclose_commits_queued_writes(tmp_path: Path) -> None:
    db = await SQLiteBackend.open(tmp_path / "db")
    writes = [asyncio.ensure_future(db.create(f"/q/{i}", b"")) for i in range(10)]
    await asyncio.sleep(0)  # queued, not yet committed
    assert await db.current_revision() == 0
    await db.aclose()
    assert sorted(w.result() for w in writes) == list(range(1, 11))
    async with await SQLiteBackend.open(tmp_path / "db") as db:
        assert len((await db.scan("/q/")).items) == 10


async def test_compaction_deletes_superseded_rows(tmp_path: Path) -> None:
    async with await SQLiteBackend.open(tmp_path / "db") as db:
        await db.create("/a", b"1")  # 1
        await db.create("/b", b"1")  # 2
        await db.update("/a", b"2", revision=1)  # 3
        await db.delete("/b")  # 4
        await db.update("/a", b"3", revision=3)  # 5
        await db.create("/c", b"1")  # 6
        await db.compact(4)
        assert rows(tmp_path / "db") == [(3, "/a", 0, 0), (5, "/a", 0, 0), (6, "/c", 1, 0)]
        await db.compact(6)
        assert rows(tmp_path / "db") == [(5, "/a", 0, 0), (6, "/c", 1, 0)]


async def test_watch_catches_up_from_the_table_then_goes_live(tmp_path: Path) -> None:
    async with await SQLiteBackend.open(tmp_path / "db", watch_buffer_events=4) as db:
        for i in range(20):
            await db.create(f"/w/{i:02}", b"")
        await db.update("/w/00", b"x", revision=1)
        watch = db.watch("/w/", revision=0)
        history = await take(watch, 21)
        assert [e.kv.mod_revision for e in history] == list(range(1, 22))
        assert history[-1].prev == KeyValue("/w/00", b"", 1, 1)
        await db.create("/w/live", b"")
        assert summary(await take(watch, 1)) == [("put", "/w/live", 22)]
        for i in range(10):  # falls behind the 4-event ring: must come back through the table
            await db.create(f"/w/late{i}", b"")
        assert [e.kv.mod_revision for e in await take(watch, 10)] == list(range(23, 33))
        await watch.aclose()  # type: ignore[attr-defined]


async def test_watch_behind_the_ring_and_compaction_is_compacted(tmp_path: Path) -> None:
    async with await SQLiteBackend.open(tmp_path / "db", watch_buffer_events=2) as db:
        watch = db.watch("/", revision=0)
        for i in range(6):
            await db.create(f"/{i}", b"")
        await db.compact(5)
        with pytest.raises(Compacted):
            await anext(watch)


def test_prefix_end() -> None:
    assert prefix_end("/a/") == "/a0"
    assert prefix_end("") is None
    assert prefix_end("a\U0010ffff") == "b"
    assert prefix_end("\ud7ff") == "\ue000"


# -- factory -----------------------------------------------------------------------------


async def test_open_backend_urls(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    memory = await open_backend("memory://")
    assert isinstance(memory, MemoryBackend)
    await memory.aclose()
    absolute = await open_backend(f"sqlite://{tmp_path}/abs.db")
    assert isinstance(absolute, SQLiteBackend)
    await absolute.aclose()
    assert (tmp_path / "abs.db").exists()
    monkeypatch.chdir(tmp_path)
    relative = await open_backend("sqlite://rel.db")
    await relative.aclose()
    assert (tmp_path / "rel.db").exists()


@pytest.mark.parametrize(
    "url", ["postgres://x", "sqlite://", "/tmp/x.db", "memory://x", "etcd://", "etcd://host",
            "etcd://h:1?timeout=3", "etcd://h:1/path", "etcd://h:1?key=k.pem"])
async def test_open_backend_refuses_other_urls(url: str) -> None:
    with pytest.raises(ValueError, match="storage URL"):
        await open_backend(url)


# -- compactor ---------------------------------------------------------------------------


class FakeTime:
    """The compactor's clock and sleep; each sleep hands control back to the test."""

    def __init__(self) -> None:
        self.now = 0.0
        self.slept: asyncio.Queue[float] = asyncio.Queue()
        self.wake: asyncio.Queue[None] = asyncio.Queue()

    def clock(self) -> float:
        return self.now

    async def sleep(self, seconds: float) -> None:
        await self.slept.put(seconds)
        await self.wake.get()
        self.now += seconds


async def test_compactor_keeps_the_retention_window() -> None:
    db, time = MemoryBackend(), FakeTime()
    task = asyncio.create_task(run_compactor(
        db, retention_seconds=120, interval_seconds=60, clock=time.clock, sleep=time.sleep))
    compacted = []
    for _ in range(5):  # iterations at t = 0, 60, 120, 180, 240
        assert await time.slept.get() == 60
        compacted.append(db.compacted_revision)
        await db.create(f"/{time.now}", b"")
        await time.wake.put(None)
    await time.slept.get()
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    # the revision sampled at t is compacted at t + 120: rev 0 at t=120, 1 at 180, 2 at 240
    assert compacted + [db.compacted_revision] == [0, 0, 0, 1, 2, 3]
