"""The event recorder under a scheduler's load: identical events fold into one write (count
grows, as client-go's correlator counts repeats), writes of one key never overlap, and when too
many distinct events wait, new ones are dropped and counted with one warning, not one log line
each. A recording fake client stands in for the API server, so the order of writes is seen."""

from __future__ import annotations

import asyncio
import logging
from typing import Any

import pytest

from pykube_server.api.types import Obj
from pykube_server.client.clock import FakeClock
from pykube_server.client.events import EventRecorder

POD = {"kind": "Pod", "apiVersion": "v1", "metadata": {"name": "p", "namespace": "ns", "uid": "u1"}}


class RecordingClient:
    def __init__(self) -> None:
        self.writes: list[tuple[str, Obj]] = []
        self.stored: dict[str, Obj] = {}
        self.gate: asyncio.Event | None = None
        self.active = 0
        self.max_active = 0

    async def _enter(self) -> None:
        self.active += 1
        self.max_active = max(self.max_active, self.active)
        if self.gate is not None:
            await self.gate.wait()
        await asyncio.sleep(0)
        self.active -= 1

    async def create(self, resource: Any, body: Obj, **kwargs: Any) -> Obj:
        await self._enter()
        self.writes.append(("create", body))
        self.stored[body["metadata"]["name"]] = body
        return body

    async def patch(self, resource: Any, name: str, patch: Obj, **kwargs: Any) -> Obj:
        await self._enter()
        self.writes.append(("patch", patch))
        merged = {**self.stored[name], **patch}
        self.stored[name] = merged
        return merged


async def test_identical_events_waiting_are_written_once_with_their_count() -> None:
    client = RecordingClient()
    recorder = EventRecorder(client, component="default-scheduler", clock=FakeClock())  # type: ignore[arg-type]
    for _ in range(3):
        recorder.event(POD, "Warning", "FailedScheduling", "0/3 nodes are available")
    recorder.event(POD, "Normal", "Scheduled", "Successfully assigned ns/p to n1")
    task = asyncio.create_task(recorder.run())
    await asyncio.wait_for(recorder.flush(), 5)
    task.cancel()
    assert [(kind, body["reason"], body["count"]) for kind, body in client.writes] == [
        ("create", "FailedScheduling", 3), ("create", "Scheduled", 1)]
    assert recorder.aggregated == 2 and recorder.dropped == 0


async def test_a_repeat_during_the_write_of_its_key_waits_and_becomes_a_patch() -> None:
    client = RecordingClient()
    client.gate = asyncio.Event()
    clock = FakeClock()
    recorder = EventRecorder(client, component="default-scheduler", clock=clock)  # type: ignore[arg-type]
    task = asyncio.create_task(recorder.run())
    recorder.event(POD, "Warning", "FailedScheduling", "no room")
    for _ in range(20):
        await asyncio.sleep(0)
    assert client.active == 1                          # the first write is in flight
    clock.step(5)
    recorder.event(POD, "Warning", "FailedScheduling", "no room")
    recorder.event(POD, "Warning", "FailedScheduling", "no room")
    for _ in range(20):
        await asyncio.sleep(0)
    assert client.max_active == 1                      # never two writes of one key at once
    client.gate.set()
    await asyncio.wait_for(recorder.flush(), 5)
    task.cancel()
    assert [kind for kind, _ in client.writes] == ["create", "patch"]
    assert client.writes[1][1]["count"] == 3
    assert client.writes[1][1]["lastTimestamp"] == "2025-01-01T00:00:05Z"


async def test_distinct_events_are_written_concurrently() -> None:
    client = RecordingClient()
    client.gate = asyncio.Event()
    recorder = EventRecorder(client, component="default-scheduler", clock=FakeClock(), writers=4)  # type: ignore[arg-type]
    task = asyncio.create_task(recorder.run())
    for i in range(10):
        recorder.event({**POD, "metadata": {**POD["metadata"], "name": f"p{i}"}}, "Normal", "Scheduled", f"m{i}")
    for _ in range(20):
        await asyncio.sleep(0)
    assert client.max_active == 4
    client.gate.set()
    await asyncio.wait_for(recorder.flush(), 5)
    task.cancel()
    assert len(client.writes) == 10


async def test_overflow_drops_and_counts_with_one_warning(caplog: pytest.LogCaptureFixture) -> None:
    client = RecordingClient()
    recorder = EventRecorder(client, component="default-scheduler", clock=FakeClock(), queue_size=3)  # type: ignore[arg-type]
    with caplog.at_level(logging.WARNING, logger="pykube_server.client.events"):
        for i in range(10):
            recorder.event({**POD, "metadata": {**POD["metadata"], "name": f"p{i}"}}, "Normal", "Scheduled", f"m{i}")
    assert recorder.dropped == 7
    warnings = [r for r in caplog.records if "event queue full" in r.getMessage()]
    assert len(warnings) == 1
    task = asyncio.create_task(recorder.run())
    await asyncio.wait_for(recorder.flush(), 5)
    task.cancel()
    assert [body["metadata"]["name"].split(".")[0] for _, body in client.writes] == ["p0", "p1", "p2"]
