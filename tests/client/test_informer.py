"""Informer: list, watch, resume, relist on 410 with diffs, resync; unit tests over a scripted
list/watch client and integration tests against a real in-process API server."""

from __future__ import annotations

import asyncio
import contextlib
from collections import deque
from collections.abc import AsyncIterator, Callable
from typing import Any

import pytest

from pykube_server.api import errors
from pykube_server.api.types import Obj
from pykube_server.client.clock import FakeClock
from pykube_server.client.informer import FuncHandler, Informer, InformerFactory
from pykube_server.client.rest import CONFIGMAPS, PODS, Client, Resource, TransportError
from pykube_server.testing import LocalCluster


def obj(name: str, rv: str, ns: str = "default") -> Obj:
    return {"kind": "ConfigMap", "apiVersion": "v1", "metadata": {"name": name, "namespace": ns, "resourceVersion": rv}}


def page(items: list[Obj], rv: str, cont: str = "") -> Obj:
    return {"kind": "ConfigMapList", "apiVersion": "v1", "items": items,
            "metadata": {"resourceVersion": rv, **({"continue": cont} if cont else {})}}


def ev(kind: str, o: Obj) -> Obj:
    return {"type": kind, "object": o}


class Recorder:
    """An EventHandler that writes down what it is told."""

    def __init__(self) -> None:
        self.seen: list[tuple[str, str, str]] = []

    def on_add(self, o: Obj) -> None:
        self.seen.append(("add", o["metadata"]["name"], o["metadata"].get("resourceVersion", "")))

    def on_update(self, old: Obj, new: Obj) -> None:
        self.seen.append(("update", new["metadata"]["name"], new["metadata"].get("resourceVersion", "")))

    def on_delete(self, o: Obj) -> None:
        self.seen.append(("delete", o["metadata"]["name"], o["metadata"].get("resourceVersion", "")))


class ScriptedClient:
    """Answers list() and watch() from scripts; a watch with no script left blocks forever."""

    def __init__(self) -> None:
        self.lists: deque[Obj | Exception] = deque()
        self.watches: deque[list[Obj | Exception]] = deque()
        self.calls: list[tuple[str, dict[str, Any]]] = []

    async def list(self, resource: Resource, **kwargs: Any) -> Obj:
        self.calls.append(("list", kwargs))
        answer = self.lists.popleft()
        if isinstance(answer, Exception):
            raise answer
        return answer

    async def watch(self, resource: Resource, **kwargs: Any) -> AsyncIterator[Obj]:
        self.calls.append(("watch", kwargs))
        if not self.watches:
            await asyncio.Event().wait()
        for item in self.watches.popleft():
            if isinstance(item, Exception):
                raise item
            yield item

    def watch_rvs(self) -> list[str]:
        return [kw["resource_version"] for name, kw in self.calls if name == "watch"]

    def list_count(self) -> int:
        return sum(1 for name, _ in self.calls if name == "list")


async def until(cond: Callable[[], bool], timeout: float = 5.0) -> None:
    async with asyncio.timeout(timeout):
        while not cond():
            await asyncio.sleep(0.005)


@contextlib.asynccontextmanager
async def running(informer: Informer | InformerFactory) -> AsyncIterator[None]:
    task = asyncio.create_task(informer.run())
    try:
        yield
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)


def scripted(*lists: Obj | Exception, watches: list[list[Obj | Exception]] = []) -> tuple[ScriptedClient, Informer, Recorder, FakeClock]:
    client = ScriptedClient()
    client.lists.extend(lists)
    client.watches.extend(watches)
    clock = FakeClock()
    informer = Informer(client, CONFIGMAPS, namespace="default", clock=clock)
    rec = Recorder()
    informer.add_handler(rec)
    return client, informer, rec, clock


async def test_list_then_watch_from_list_rv_with_bookmarks() -> None:
    client, informer, rec, _ = scripted(page([obj("a", "5"), obj("b", "6")], "10"))
    async with running(informer):
        await asyncio.wait_for(informer.wait_synced(), 1)
        await until(lambda: client.watch_rvs() == ["10"])
    assert rec.seen == [("add", "a", "5"), ("add", "b", "6")]
    watch_kwargs = client.calls[1][1]
    assert watch_kwargs["allow_bookmarks"] is True and 300 <= watch_kwargs["timeout_seconds"] <= 600
    assert "resource_version" not in client.calls[0][1]  # a consistent list, not from a cache


async def test_events_update_cache_and_resume_from_last_rv() -> None:
    bookmark = {"kind": "ConfigMap", "apiVersion": "v1", "metadata": {"resourceVersion": "40"}}
    client, informer, rec, _ = scripted(
        page([obj("a", "5")], "10"),
        watches=[[ev("ADDED", obj("b", "11")), ev("MODIFIED", obj("a", "12")), ev("DELETED", obj("b", "13")),
                  ev("BOOKMARK", bookmark)]])
    async with running(informer):
        await until(lambda: client.watch_rvs() == ["10", "40"])
    assert rec.seen[1:] == [("add", "b", "11"), ("update", "a", "12"), ("delete", "b", "13")]
    assert informer.lister.keys() == ["default/a"]
    assert informer.last_sync_resource_version == "40" and client.list_count() == 1


@pytest.mark.parametrize("expired", [
    errors.Gone("too old resource version: 10 (20)"),
    ev("ERROR", errors.Gone("too old resource version: 10 (20)").status()),
], ids=["http-410", "in-stream-410"])
async def test_410_relists_and_fires_the_differences(expired: Obj | Exception) -> None:
    client, informer, rec, _ = scripted(
        page([obj("a", "5"), obj("b", "6"), obj("c", "7")], "10"),
        page([obj("b", "6"), obj("c", "21"), obj("d", "22")], "25"),
        watches=[[expired]])
    async with running(informer):
        await until(lambda: client.watch_rvs() == ["10", "25"])
    assert rec.seen[3:] == [("delete", "a", "5"), ("update", "c", "21"), ("add", "d", "22")]
    assert sorted(informer.lister.keys()) == ["default/b", "default/c", "default/d"]


async def test_dropped_connection_backs_off_and_rewatches_without_relisting() -> None:
    client, informer, rec, clock = scripted(
        page([], "10"), watches=[[ev("ADDED", obj("a", "11")), TransportError("reset")], [TransportError("refused")]])
    async with running(informer):
        await clock.wait_for_waiters()
        assert clock.pending() == [pytest.approx(0.8)] and len(client.watch_rvs()) == 1
        clock.step(0.8)
        await until(lambda: len(client.watch_rvs()) == 2)
        await clock.wait_for_waiters()
        assert clock.pending() == [pytest.approx(1.6)]    # doubling
        clock.step(1.6)
        await until(lambda: len(client.watch_rvs()) == 3)
    assert client.watch_rvs() == ["10", "11", "11"] and client.list_count() == 1


async def test_short_empty_watch_backs_off() -> None:
    client, informer, _, clock = scripted(page([], "10"), watches=[[]])
    async with running(informer):
        await clock.wait_for_waiters()
        assert len(client.watch_rvs()) == 1
        clock.step(0.8)
        await until(lambda: len(client.watch_rvs()) == 2)


async def test_list_failure_backs_off_and_retries() -> None:
    client, informer, rec, clock = scripted(errors.InternalError("boom"), page([obj("a", "1")], "3"))
    async with running(informer):
        await clock.wait_for_waiters()
        assert not informer.has_synced()
        clock.step(0.8)
        await asyncio.wait_for(informer.wait_synced(), 1)
    assert rec.seen == [("add", "a", "1")]


async def test_paged_list_and_expired_continue_falls_back_to_full_list() -> None:
    client = ScriptedClient()
    client.lists.extend([page([obj("a", "1")], "9", cont="t1"), errors.Gone("continue expired"),
                         page([obj("a", "1"), obj("b", "2")], "12")])
    informer = Informer(client, CONFIGMAPS, namespace="default", page_size=1, clock=FakeClock())
    async with running(informer):
        await asyncio.wait_for(informer.wait_synced(), 1)
    limits = [(kw["limit"], kw["continue_"]) for name, kw in client.calls if name == "list"]
    assert limits == [(1, ""), (1, "t1"), (0, "")]
    assert informer.lister.keys() == ["default/a", "default/b"] and informer.last_sync_resource_version == "12"


async def test_resync_fires_update_for_every_object() -> None:
    client = ScriptedClient()
    client.lists.append(page([obj("a", "1")], "2"))
    clock = FakeClock()
    informer = Informer(client, CONFIGMAPS, resync_period=30, clock=clock)
    rec = Recorder()
    informer.add_handler(rec)
    async with running(informer):
        await informer.wait_synced()
        await clock.wait_for_waiters()
        clock.step(30)
        await until(lambda: len(rec.seen) == 2)
    assert rec.seen == [("add", "a", "1"), ("update", "a", "1")]


async def test_late_handler_gets_existing_objects_and_failing_handler_is_isolated() -> None:
    client, informer, rec, _ = scripted(page([obj("a", "1")], "2"), watches=[[ev("ADDED", obj("b", "3"))]])

    def explode(o: Obj) -> None:
        raise RuntimeError("handler bug")

    informer.add_handler(FuncHandler(add=explode))
    async with running(informer):
        await until(lambda: len(rec.seen) == 2)
        late: list[str] = []
        informer.add_handler(FuncHandler(add=lambda o: late.append(o["metadata"]["name"])))
    assert late == ["a", "b"]


async def test_factory_shares_informers_and_starts_late_ones() -> None:
    client = ScriptedClient()
    client.lists.extend([page([obj("a", "1")], "2"), page([], "3")])
    factory = InformerFactory(client, clock=FakeClock())
    first = factory.informer(CONFIGMAPS)
    assert factory.informer(CONFIGMAPS) is first
    assert factory.informer(CONFIGMAPS, label_selector="x=y") is not first
    assert factory.lister(CONFIGMAPS) is first.lister
    async with running(factory):
        await asyncio.wait_for(factory.wait_for_cache_sync(), 1)
        late = factory.informer(PODS)
        client.lists.append(page([], "4"))
        await asyncio.wait_for(late.wait_synced(), 1)


# --- against the real API server --------------------------------------------------------------


def cm(name: str, value: str = "1") -> Obj:
    return {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": name}, "data": {"v": value}}


def names(rec: Recorder) -> list[tuple[str, str]]:
    return [(kind, name) for kind, name, _ in rec.seen]


async def test_informer_sees_creates_updates_deletes(client: Client) -> None:
    await client.create(CONFIGMAPS, cm("before"))
    informer = Informer(client, CONFIGMAPS, namespace="default")
    rec = Recorder()
    informer.add_handler(rec)
    async with running(informer):
        await informer.wait_synced()
        assert names(rec) == [("add", "before")]
        created = await client.create(CONFIGMAPS, cm("x"))
        await client.update(CONFIGMAPS, {**created, "data": {"v": "2"}})
        await client.delete(CONFIGMAPS, "before", namespace="default")
        await until(lambda: len(rec.seen) == 4)
    assert names(rec) == [("add", "before"), ("add", "x"), ("update", "x"), ("delete", "before")]
    assert informer.lister.get("x", namespace="default")["data"] == {"v": "2"}  # type: ignore[index]
    assert informer.lister.get("before", namespace="default") is None
    assert informer.lister.get("x", namespace="default")["kind"] == "ConfigMap"  # type: ignore[index]


async def test_informer_resumes_after_the_server_closes_its_watch(client: Client, cluster: LocalCluster) -> None:
    informer = Informer(client, CONFIGMAPS, namespace="default")
    rec = Recorder()
    informer.add_handler(rec)
    async with running(informer):
        await informer.wait_synced()
        await client.create(CONFIGMAPS, cm("one"))
        await until(lambda: len(rec.seen) == 1)
        cluster.server.cacher.close_all_watchers()
        await until(lambda: informer.watches == 2)
        await client.create(CONFIGMAPS, cm("two"))
        await until(lambda: len(rec.seen) == 2)
    assert names(rec) == [("add", "one"), ("add", "two")]
    assert informer.relists == 1


class GatedClient(Client):
    """Holds back every watch after the first until `gate` is set, so a test can change (and
    compact) the server's state while the informer is between watches."""

    gate = asyncio.Event()
    calls = 0

    async def watch(self, resource: Resource, **kwargs: Any) -> AsyncIterator[Obj]:  # type: ignore[override]
        self.calls += 1
        if self.calls > 1:
            await self.gate.wait()
        async for event in super().watch(resource, **kwargs):
            yield event


async def test_informer_relists_after_410(cluster: LocalCluster) -> None:
    async with GatedClient.from_kubeconfig(cluster.kubeconfig) as client:
        assert isinstance(client, GatedClient)
        client.gate = asyncio.Event()
        for name in ("gone", "changed", "same"):
            await client.create(CONFIGMAPS, cm(name))
        informer = Informer(client, CONFIGMAPS, namespace="default")
        rec = Recorder()
        informer.add_handler(rec)
        async with running(informer):
            await informer.wait_synced()
            await client.create(CONFIGMAPS, cm("trigger"))
            await until(lambda: len(rec.seen) == 4)
            cluster.server.cacher.close_all_watchers()
            await until(lambda: client.calls == 2)        # parked at the gate with an old RV
            await client.delete(CONFIGMAPS, "gone", namespace="default")
            changed = await client.get(CONFIGMAPS, "changed", namespace="default")
            await client.update(CONFIGMAPS, {**changed, "data": {"v": "2"}})
            await client.create(CONFIGMAPS, cm("new"))
            await cluster.server.backend.compact(await cluster.server.backend.current_revision())
            rec.seen.clear()
            client.gate.set()
            await until(lambda: informer.relists == 2 and len(rec.seen) == 3)
        assert sorted(names(rec)) == [("add", "new"), ("delete", "gone"), ("update", "changed")]
        assert sorted(informer.lister.keys()) == ["default/changed", "default/new", "default/same", "default/trigger"]


