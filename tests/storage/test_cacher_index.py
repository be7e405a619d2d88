"""Watchers indexed by an exact field value (kube's watch-cache trigger functions): a watch with
`spec.nodeName=node-1` is offered only events of pods that are, or were, on node-1, so a thousand
kubelet watches do not each test every pod event. What a watcher receives must not change."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest

from pykube_server.storage.cacher import CachedObject, Cacher, Watcher
from pykube_server.storage.memory import MemoryBackend
from pykube_server.storage.store import Store

ROOT = "/registry/pods"


def _node_of(root: str, obj: dict) -> dict[str, str]:
    return {"spec.nodeName": (obj.get("spec") or {}).get("nodeName", "")}


@pytest.fixture
async def cache() -> AsyncIterator[tuple[Cacher, Store]]:
    backend = MemoryBackend()
    cacher = Cacher(backend, roots=[ROOT], field_indexer=_node_of)
    runner = asyncio.create_task(cacher.run())
    await cacher.wait_ready()
    try:
        yield cacher, Store(backend, cacher)
    finally:
        runner.cancel()
        await asyncio.gather(runner, return_exceptions=True)


def _on(node: str, calls: list[str]):
    def match(obj: CachedObject) -> bool:
        calls.append(obj.name)
        return obj.fields.get("spec.nodeName", "") == node
    return match


def _seen(watcher: Watcher) -> list[tuple[str, str]]:
    return [(kind, obj.name) for kind, obj in watcher.drain()]


async def test_indexed_watchers_see_moves_and_nothing_else(cache: tuple[Cacher, Store]) -> None:
    cacher, store = cache
    calls_a: list[str] = []
    calls_b: list[str] = []
    calls_any: list[str] = []
    on_a = cacher.watch(ROOT, namespace="", matcher=_on("a", calls_a), since=cacher.revision,
                        trigger=("spec.nodeName", "a"))
    on_b = cacher.watch(ROOT, namespace="", matcher=_on("b", calls_b), since=cacher.revision,
                        trigger=("spec.nodeName", "b"))
    unassigned = cacher.watch(ROOT, namespace="ns", matcher=_on("", calls_any), since=cacher.revision,
                              trigger=("spec.nodeName", ""))
    assert on_a and on_b and unassigned
    for i in range(20):
        await store.create(f"{ROOT}/ns/other{i}", {"metadata": {"name": f"other{i}"}, "spec": {"nodeName": "z"}})
    created = await store.create(f"{ROOT}/ns/p", {"metadata": {"name": "p"}, "spec": {}})
    rv = int(created["metadata"]["resourceVersion"])
    moved = await store.update(f"{ROOT}/ns/p", {**created, "spec": {"nodeName": "a"}}, revision=rv)
    rv = int(moved["metadata"]["resourceVersion"])
    moved = await store.update(f"{ROOT}/ns/p", {**moved, "spec": {"nodeName": "b"}}, revision=rv)
    await store.delete(f"{ROOT}/ns/p")
    await cacher.wait_fresh()
    assert _seen(unassigned) == [("ADDED", "p"), ("DELETED", "p")]
    assert _seen(on_a) == [("ADDED", "p"), ("DELETED", "p")]
    assert _seen(on_b) == [("ADDED", "p"), ("DELETED", "p")]
    # the pods on node z were never tested against the node a/b/"" watchers
    assert not any(name.startswith("other") for name in calls_a + calls_b + calls_any)


async def test_stopped_indexed_watcher_gets_nothing(cache: tuple[Cacher, Store]) -> None:
    cacher, store = cache
    w = cacher.watch(ROOT, namespace="", matcher=_on("a", []), since=cacher.revision, trigger=("spec.nodeName", "a"))
    assert w is not None
    cacher.stop_watch(ROOT, w)
    await store.create(f"{ROOT}/ns/p", {"metadata": {"name": "p"}, "spec": {"nodeName": "a"}})
    await cacher.wait_fresh()
    assert _seen(w) == []
    assert not cacher.resource(ROOT).watchers
