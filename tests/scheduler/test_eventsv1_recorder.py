"""kube-scheduler's events.k8s.io/v1 recorder (client-go tools/events): the Event's shape, and
repeats of one (action, reason, controller, regarding, related) becoming a `series` merge-patched
onto the first Event, whose note stays; a repeat after the 6-minute series window is a new Event."""

from __future__ import annotations

import asyncio
import re
import socket

from pykube_server.client.clock import FakeClock
from pykube_server.client.eventsv1 import SERIES_FINISH_SECONDS, EventsV1Recorder
from pykube_server.client.rest import PatchType
from tests.scheduler.test_event_recorder import POD, RecordingClient


class PatchTypeClient(RecordingClient):
    def __init__(self) -> None:
        super().__init__()
        self.patch_types: list[PatchType] = []
        self.resources: list[str] = []

    async def create(self, resource, body, **kwargs):  # type: ignore[no-untyped-def]
        self.resources.append(resource.api_version)
        return await super().create(resource, body, **kwargs)

    async def patch(self, resource, name, patch, **kwargs):  # type: ignore[no-untyped-def]
        self.patch_types.append(kwargs.get("patch_type"))
        return await super().patch(resource, name, patch, **kwargs)


async def _flushed(recorder: EventsV1Recorder) -> None:
    task = asyncio.create_task(recorder.run())
    await asyncio.wait_for(recorder.flush(), 5)
    task.cancel()


async def test_scheduled_event_has_kube_schedulers_shape() -> None:
    client = PatchTypeClient()
    recorder = EventsV1Recorder(client, controller="default-scheduler", clock=FakeClock())  # type: ignore[arg-type]
    recorder.event(POD, "Normal", "Scheduled", "Successfully assigned ns/p to n1", action="Binding")
    await _flushed(recorder)
    [(kind, body)] = client.writes
    assert kind == "create" and client.resources == ["events.k8s.io/v1"]
    assert body["apiVersion"] == "events.k8s.io/v1" and body["kind"] == "Event"
    assert re.fullmatch(r"p\.[0-9a-f]+", body["metadata"]["name"]) and body["metadata"]["namespace"] == "ns"
    assert body["reportingController"] == "default-scheduler"
    assert body["reportingInstance"] == f"default-scheduler-{socket.gethostname()}"
    assert (body["action"], body["reason"], body["type"], body["note"]) == (
        "Binding", "Scheduled", "Normal", "Successfully assigned ns/p to n1")
    assert body["regarding"] == {"kind": "Pod", "namespace": "ns", "name": "p", "uid": "u1", "apiVersion": "v1"}
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}Z", body["eventTime"])
    assert not {"series", "related", "message", "involvedObject", "count", "source"} & set(body)


async def test_repeats_become_a_series_patched_onto_the_first_event() -> None:
    client = PatchTypeClient()
    clock = FakeClock()
    recorder = EventsV1Recorder(client, controller="default-scheduler", clock=clock)  # type: ignore[arg-type]
    recorder.event(POD, "Warning", "FailedScheduling", "0/3 nodes", action="Scheduling")
    await _flushed(recorder)
    recorder.event(POD, "Warning", "FailedScheduling", "0/4 nodes", action="Scheduling")
    await _flushed(recorder)
    recorder.event(POD, "Warning", "FailedScheduling", "0/4 nodes", action="Scheduling")
    await _flushed(recorder)
    kinds = [kind for kind, _ in client.writes]
    assert kinds == ["create", "patch", "patch"]
    assert [w[1]["series"]["count"] for w in client.writes[1:]] == [2, 3]
    assert set(client.writes[1][1]) == {"series"} and client.patch_types == [PatchType.MERGE, PatchType.MERGE]
    name = client.writes[0][1]["metadata"]["name"]
    assert client.stored[name]["note"] == "0/3 nodes" and client.stored[name]["series"]["count"] == 3
    clock.step(SERIES_FINISH_SECONDS + 1)
    recorder.event(POD, "Warning", "FailedScheduling", "0/4 nodes", action="Scheduling")
    await _flushed(recorder)
    assert client.writes[-1][0] == "create" and "series" not in client.writes[-1][1]


async def test_related_object_is_part_of_the_event_and_its_identity() -> None:
    client = PatchTypeClient()
    recorder = EventsV1Recorder(client, controller="default-scheduler", instance="i", clock=FakeClock())  # type: ignore[arg-type]
    other = {"kind": "Pod", "apiVersion": "v1", "metadata": {"name": "big", "namespace": "ns", "uid": "u2"}}
    recorder.event(POD, "Normal", "Preempted", "Preempted by pod u2 on node n1", action="Preempting", related=other)
    recorder.event(POD, "Normal", "Preempted", "Preempted by pod u2 on node n1", action="Preempting")
    await _flushed(recorder)
    assert [kind for kind, _ in client.writes] == ["create", "create"]
    assert client.writes[0][1]["related"]["name"] == "big" and client.writes[0][1]["reportingInstance"] == "i"
