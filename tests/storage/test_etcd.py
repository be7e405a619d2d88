"""What only the etcd backend promises, against real etcd processes on loopback: `etcd://` URLs,
learning another client's compaction, watch responses larger than any line limit, watches that
survive a member being killed, and a three-member cluster (write through one member, watch on
another, kill -9 a member under write load and find every acknowledged write).

The contract suite itself runs against etcd from `test_backends.py`."""

from __future__ import annotations

import asyncio
import contextlib
import signal
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest

from pykube_server.storage.backend import Compacted, Event, KeyNotFound
from pykube_server.storage.etcd import EtcdBackend, EtcdError, TLSConfig, prefix_end
from pykube_server.storage.factory import open_backend, parse_etcd_url
from tests.storage.backend_contract import take
from tests.storage.etcd_server import EtcdCluster


@pytest.fixture
def etcd(tmp_path: Path) -> Iterator[EtcdCluster]:
    cluster = EtcdCluster(tmp_path).start()
    try:
        yield cluster
    finally:
        cluster.stop()


@pytest.fixture
def etcd3(tmp_path: Path) -> Iterator[EtcdCluster]:
    cluster = EtcdCluster(tmp_path, 3, heartbeat_ms=25, election_ms=250).start()
    try:
        yield cluster
    finally:
        cluster.stop()


@contextlib.asynccontextmanager
async def opened(endpoints: list[str]) -> AsyncIterator[EtcdBackend]:
    db = await EtcdBackend.open(endpoints)
    try:
        yield db
    finally:
        await db.aclose()


# -- no etcd needed -----------------------------------------------------------------------


def test_parse_etcd_urls() -> None:
    assert parse_etcd_url("etcd://127.0.0.1:2379") == (["127.0.0.1:2379"], None)
    assert parse_etcd_url("etcd://a:1,b:2/") == (["a:1", "b:2"], None)
    assert parse_etcd_url("etcd://a:1?tls=true") == (["a:1"], TLSConfig())
    assert parse_etcd_url("etcd://a:1?cacert=/ca.pem&cert=/c.pem&key=/k.pem") == (
        ["a:1"], TLSConfig("/ca.pem", "/c.pem", "/k.pem"))
    assert prefix_end(b"/a/") == b"/a0"
    assert prefix_end(b"a\xff") == b"b" and prefix_end(b"") == b"\0"


async def test_unreachable_etcd_fails_to_open() -> None:
    from tests.storage.etcd_server import free_ports

    with pytest.raises(TimeoutError):
        await EtcdBackend.open([f"127.0.0.1:{free_ports(1)[0]}"], timeout=0.5)


# -- one member ---------------------------------------------------------------------------


async def test_open_backend_etcd_url(etcd: EtcdCluster) -> None:
    db = await open_backend("etcd://" + ",".join(etcd.endpoints))
    try:
        assert isinstance(db, EtcdBackend)
        assert await db.create("/registry/namespaces/default", b"{}") == 1
    finally:
        await db.aclose()


async def test_keys_and_values_are_stored_as_kube_apiserver_writes_them(etcd: EtcdCluster) -> None:
    async with opened(etcd.endpoints) as db:
        await db.create("/registry/pods/ns/p", b'{"kind":"Pod"}')
        raw = await db._call("/v3/kv/range", {"key": "L3JlZ2lzdHJ5L3BvZHMvbnMvcA=="}, idempotent=True)
        assert raw["kvs"][0]["value"] == "eyJraW5kIjoiUG9kIn0="  # base64 of the JSON
        assert int(raw["kvs"][0]["mod_revision"]) == 2  # etcd's own revision (ours + 1)


async def test_compaction_by_another_client_is_learnt(etcd: EtcdCluster) -> None:
    async with opened(etcd.endpoints) as a, opened(etcd.endpoints) as b, opened(etcd.endpoints) as d:
        for i in range(6):
            await a.create(f"/k/{i}", b"")
        await a.compact(4)
        assert (a.compacted_revision, b.compacted_revision) == (4, 0)
        with pytest.raises(Compacted) as info:
            await b.get("/k/0", revision=2)
        assert info.value.revision == 4 and b.compacted_revision == 4
        async with opened(etcd.endpoints) as c:
            assert c.compacted_revision == 4  # learnt at open
        await a.compact(5)
        with pytest.raises(Compacted) as info:  # d believes 0: etcd's answer to the watch corrects it
            await anext(d.watch("/k/", revision=3))
        assert info.value.revision == 5 and d.compacted_revision == 5
        await b.compact(5)  # already there: a no-op
        with pytest.raises(ValueError):
            await b.compact(99)


async def test_watch_from_zero_and_from_the_compacted_revision(etcd: EtcdCluster) -> None:
    """The watch cache follows the backend with one watch on /registry/ from the compacted
    revision (0 when nothing was compacted)."""
    async with opened(etcd.endpoints) as db:
        for i in range(3):
            await db.create(f"/registry/things/{i}", b"{}")
        watch = db.watch("/registry/", revision=0)
        assert [e.kv.mod_revision for e in await take(watch, 3)] == [1, 2, 3]
        await watch.aclose()  # type: ignore[attr-defined]
        await db.compact(2)
        watch = db.watch("/registry/", revision=db.compacted_revision)
        assert [e.kv.key for e in await take(watch, 1)] == ["/registry/things/2"]
        await watch.aclose()  # type: ignore[attr-defined]


async def test_watch_responses_larger_than_a_line_limit(etcd: EtcdCluster) -> None:
    async with opened(etcd.endpoints) as db:
        value = b'{"data":"' + b"x" * 64 * 1024 + b'"}'
        await asyncio.gather(*(db.create(f"/big/{i:03}", value) for i in range(40)))
        watch = db.watch("/big/", revision=0)
        events = await take(watch, 40, timeout=20)
        assert [e.kv.mod_revision for e in events] == list(range(1, 41))
        assert all(e.kv.value == value for e in events)
        await watch.aclose()  # type: ignore[attr-defined]


async def test_watch_resumes_without_gap_after_the_member_restarts(etcd: EtcdCluster) -> None:
    member = etcd.members[0]
    async with opened(etcd.endpoints) as db:
        watch = db.watch("/w/", revision=0)
        for i in range(5):
            await db.create(f"/w/{i}", b"")
        assert len(await take(watch, 5)) == 5
        member.kill(signal.SIGKILL)
        pending = asyncio.ensure_future(take(watch, 5, timeout=30))
        await asyncio.sleep(0.3)  # the watch notices and starts retrying
        member.start(etcd.binary, f"{member.name}={member.peer_url}", heartbeat_ms=10, election_ms=100)
        async with asyncio.timeout(20):
            while True:
                try:
                    await db.create("/w/5", b"")
                    break
                except EtcdError:
                    await asyncio.sleep(0.1)
        for i in range(6, 10):
            await db.create(f"/w/{i}", b"")
        events = await pending
        assert [e.kv.mod_revision for e in events] == list(range(6, 11))
        await watch.aclose()  # type: ignore[attr-defined]


# -- three members ------------------------------------------------------------------------


async def test_write_through_one_member_watch_on_another(etcd3: EtcdCluster) -> None:
    m0, m1, _ = etcd3.endpoints
    async with opened([m0]) as writer, opened([m1]) as reader:
        watch = reader.watch("/r/", revision=0)
        revs = [await writer.create(f"/r/{i}", str(i).encode()) for i in range(20)]
        await writer.update("/r/3", b"x", revision=revs[3])
        deleted = await writer.delete("/r/4")
        events: list[Event] = await take(watch, 22)
        assert [e.kv.mod_revision for e in events] == [*revs, revs[-1] + 1, deleted.mod_revision]
        assert events[-2].prev is not None and events[-2].prev.value == b"3"
        assert events[-1].kind == "delete" and events[-1].kv.value == b"4"
        assert (await reader.get("/r/3")).value == b"x"  # linearizable read on the other member
        await watch.aclose()  # type: ignore[attr-defined]


async def test_kill_9_a_member_under_write_load_loses_no_acknowledged_write(etcd3: EtcdCluster) -> None:
    victim = etcd3.members[0]  # the member the writers are pinned to (first endpoint)
    survivors = etcd3.endpoints[1:]
    acked: dict[str, int] = {}
    failures: list[BaseException] = []
    stop = asyncio.Event()

    async with opened(etcd3.endpoints) as db, opened(survivors[1:]) as observer:
        watch = observer.watch("/load/", revision=0)

        async def writer(w: int) -> None:
            n = 0
            while not stop.is_set():
                key = f"/load/{w}/{n}"
                n += 1
                try:
                    acked[key] = await db.create(key, b"v" * 256)
                except (EtcdError, asyncio.TimeoutError) as exc:  # unknown outcome: not acked
                    failures.append(exc)
                    await asyncio.sleep(0.02)

        writers = [asyncio.create_task(writer(w)) for w in range(8)]
        while len(acked) < 200:
            await asyncio.sleep(0.01)
        victim.kill(signal.SIGKILL)
        before_kill = len(acked)
        async with asyncio.timeout(30):
            while len(acked) < before_kill + 300:
                await asyncio.sleep(0.01)
        stop.set()
        await asyncio.gather(*writers)
        assert db.endpoints[db._current] != f"http://{victim.endpoint}"  # moved to a survivor

        for key, rev in acked.items():
            assert (await observer.get(key)).mod_revision == rev
        # The watch on a survivor saw every write (acknowledged or not) once, in order.
        final, seen = await observer.current_revision(), []
        async with asyncio.timeout(30):
            while not seen or seen[-1].kv.mod_revision < final:
                seen.append(await anext(watch))
        revisions = [e.kv.mod_revision for e in seen]
        assert revisions == sorted(set(revisions))
        assert acked.items() <= {e.kv.key: e.kv.mod_revision for e in seen}.items()
        assert len(seen) - len(acked) <= len(failures)  # the rest: writes whose ack was lost
        await watch.aclose()  # type: ignore[attr-defined]
        with pytest.raises(KeyNotFound):
            await observer.get("/load/never")
