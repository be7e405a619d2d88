"""EventRecorder: Event bodies, client-go's repeat aggregation (PATCH count and lastTimestamp
within 10 minutes), re-creation, spam filtering and retries; against a real API server."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from typing import Any

from pykube_server.api.types import Obj
from pykube_server.client.clock import FAKE_EPOCH, FakeClock
from pykube_server.client.events import EventRecorder, unix_nanos
from pykube_server.client.rest import CONFIGMAPS, EVENTS, NAMESPACES, Client, TransportError


@contextlib.asynccontextmanager
async def recording(client: Client, clock: FakeClock) -> AsyncIterator[EventRecorder]:
    recorder = EventRecorder(client, component="pykube-test-controller", host="node-1", clock=clock)
    task = asyncio.create_task(recorder.run())
    try:
        yield recorder
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)


async def events(client: Client, namespace: str = "default") -> list[Obj]:
    return (await client.list(EVENTS, namespace=namespace))["items"]


async def a_configmap(client: Client) -> Obj:
    return await client.create(CONFIGMAPS, {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "cfg"}})


async def test_event_body(client: Client) -> None:
    clock = FakeClock()
    cm = await a_configmap(client)
    async with recording(client, clock) as recorder:
        recorder.event(cm, "Normal", "Synced", "all good", field_path="data")
        await recorder.flush()
    [event] = await events(client)
    assert event["metadata"]["name"] == f"cfg.{unix_nanos(FAKE_EPOCH):x}"
    assert event["involvedObject"] == {"kind": "ConfigMap", "namespace": "default", "name": "cfg",
                                       "uid": cm["metadata"]["uid"], "apiVersion": "v1",
                                       "resourceVersion": cm["metadata"]["resourceVersion"], "fieldPath": "data"}
    assert (event["reason"], event["message"], event["type"], event["count"]) == ("Synced", "all good", "Normal", 1)
    assert event["source"] == {"component": "pykube-test-controller", "host": "node-1"}
    assert event["reportingComponent"] == "pykube-test-controller" and event["reportingInstance"] == "node-1"
    assert event["firstTimestamp"] == event["lastTimestamp"] == "2025-01-01T00:00:00Z"


async def test_repeats_are_aggregated_within_ten_minutes(client: Client) -> None:
    clock = FakeClock()
    cm = await a_configmap(client)
    async with recording(client, clock) as recorder:
        recorder.event(cm, "Warning", "Failed", "boom")
        await recorder.flush()
        clock.step(60)
        recorder.event(cm, "Warning", "Failed", "boom")
        recorder.event(cm, "Warning", "Failed", "other message")   # a different key
        await recorder.flush()
        clock.step(599)
        recorder.event(cm, "Warning", "Failed", "boom")
        await recorder.flush()
        clock.step(601)                                            # window passed: a new Event
        recorder.event(cm, "Warning", "Failed", "boom")
        await recorder.flush()
    by_message: dict[str, list[Obj]] = {}
    for event in await events(client):
        by_message.setdefault(event["message"], []).append(event)
    assert len(by_message["other message"]) == 1
    first, second = sorted(by_message["boom"], key=lambda e: e["firstTimestamp"])
    assert first["count"] == 3
    assert (first["firstTimestamp"], first["lastTimestamp"]) == ("2025-01-01T00:00:00Z", "2025-01-01T00:10:59Z")
    assert second["count"] == 1 and second["firstTimestamp"] == "2025-01-01T00:21:00Z"


async def test_cluster_scoped_object_and_recreation_after_delete(client: Client) -> None:
    clock = FakeClock()
    ns = await client.get(NAMESPACES, "default")
    async with recording(client, clock) as recorder:
        recorder.event(ns, "Normal", "Seen", "hello")
        await recorder.flush()
        [event] = await events(client)
        await client.delete(EVENTS, event["metadata"]["name"], namespace="default")
        recorder.event(ns, "Normal", "Seen", "hello")
        await recorder.flush()
    [again] = await events(client)
    assert again["metadata"]["name"] == event["metadata"]["name"] and again["count"] == 2
    assert again["involvedObject"]["kind"] == "Namespace" and "namespace" not in again["involvedObject"]


async def test_spam_filter_and_invalid_type(client: Client) -> None:
    clock = FakeClock()
    cm = await a_configmap(client)
    async with recording(client, clock) as recorder:
        recorder.event(cm, "Bogus", "X", "dropped")
        for i in range(27):
            clock.step(0.001)                          # distinct names: `<obj>.<hex nanos>`
            recorder.event(cm, "Normal", "Storm", f"message {i}")
        await recorder.flush()
        assert len(await events(client)) == 25
        clock.step(300)                                # one more token every 5 minutes
        recorder.event(cm, "Normal", "Storm", "after the storm")
        await recorder.flush()
    assert len(await events(client)) == 26


class FlakyClient:
    """Refuses the first create with a transport error."""

    def __init__(self) -> None:
        self.creates = 0

    async def create(self, resource: Any, body: Obj, **kwargs: Any) -> Obj:
        self.creates += 1
        if self.creates == 1:
            raise TransportError("connection refused")
        return body


async def test_transport_errors_are_retried_on_the_clock() -> None:
    clock = FakeClock()
    flaky = FlakyClient()
    recorder = EventRecorder(flaky, component="c", clock=clock, rand=lambda: 0.5)  # type: ignore[arg-type]
    cm = {"kind": "ConfigMap", "apiVersion": "v1", "metadata": {"name": "x", "namespace": "d"}}
    task = asyncio.create_task(recorder.record(recorder.make_event(cm, "Normal", "R", "m")))
    await clock.wait_for_waiters()
    assert clock.pending() == [5.0]                   # first retry jittered: 10 s * rand
    clock.step(5)
    written = await asyncio.wait_for(task, 5)
    assert written is not None and flaky.creates == 2
