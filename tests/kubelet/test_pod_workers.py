"""The pod worker's state machine over the simulated runtime, with a stub API and a FakeClock."""

from __future__ import annotations

import asyncio
import copy
from collections.abc import AsyncIterator
from typing import Any

import pytest

from pykube_server.client.clock import FakeClock
from pykube_server.kubelet.context import IPAllocator, NodeContext
from pykube_server.kubelet.pod_workers import PodWorker
from pykube_server.kubelet.runtimes.fake import FakeRuntime


class StubClient:
    def __init__(self) -> None:
        self.statuses: list[dict[str, Any]] = []
        self.deleted: list[tuple[str, dict[str, Any]]] = []

    async def patch(self, resource: Any, name: str, patch: dict[str, Any], **kw: Any) -> dict[str, Any]:
        self.statuses.append(copy.deepcopy(patch["status"]))
        return {}

    async def delete(self, resource: Any, name: str, **kw: Any) -> dict[str, Any]:
        self.deleted.append((name, kw))
        return {}


class StubRecorder:
    def __init__(self) -> None:
        self.events: list[tuple[str, str, str]] = []

    def event(self, obj: Any, type: str, reason: str, message: str, *, field_path: str = "") -> None:
        self.events.append((type, reason, message))


def make_pod(*, restart: str = "Always", annotations: dict[str, str] | None = None, init: bool = False) -> dict[str, Any]:
    spec: dict[str, Any] = {"nodeName": "n1", "restartPolicy": restart,
                            "containers": [{"name": "c", "image": "busybox", "imagePullPolicy": "IfNotPresent"}]}
    if init:
        spec["initContainers"] = [{"name": "i", "image": "busybox", "imagePullPolicy": "IfNotPresent"}]
    return {"apiVersion": "v1", "kind": "Pod", "spec": spec, "status": {"phase": "Pending", "qosClass": "BestEffort"},
            "metadata": {"name": "p", "namespace": "ns", "uid": "u1", "annotations": annotations or {}}}


@pytest.fixture
async def env() -> AsyncIterator[tuple[NodeContext, StubClient, StubRecorder, FakeClock]]:
    clock = FakeClock()
    client, recorder = StubClient(), StubRecorder()

    async def getter(kind: str, ns: str, name: str) -> None:
        return None

    ctx = NodeContext(node_name="n1", host_ip="127.0.0.1", client=client, recorder=recorder,  # type: ignore[arg-type]
                      runtime=FakeRuntime(clock=clock), ips=IPAllocator("127.244.1.0/24"), getter=getter,
                      services=lambda ns, links: [], clock=clock)
    yield ctx, client, recorder, clock


def last_state(client: StubClient) -> tuple[str, dict[str, Any]]:
    status = client.statuses[-1]
    return status["phase"], status["containerStatuses"][0]


async def test_running_pod_gets_ip_conditions_and_events(env) -> None:  # type: ignore[no-untyped-def]
    ctx, client, recorder, _ = env
    worker = PodWorker(ctx, make_pod())
    await worker.sync()
    phase, cs = last_state(client)
    status = client.statuses[-1]
    assert phase == "Running" and "running" in cs["state"] and cs["ready"] and cs["started"]
    assert status["podIP"] == "127.244.1.2" and status["hostIP"] == "127.0.0.1"
    assert [c["type"] for c in status["conditions"]] == [
        "PodReadyToStartContainers", "Initialized", "Ready", "ContainersReady", "PodScheduled"]
    assert all(c["status"] == "True" for c in status["conditions"])
    assert [e[1] for e in recorder.events] == ["Pulled", "Created", "Started"]
    assert recorder.events[0][2] == 'Container image "busybox" already present on machine'


async def test_never_restart_failure_is_failed_error(env) -> None:  # type: ignore[no-untyped-def]
    ctx, client, _, clock = env
    pod = make_pod(restart="Never", annotations={"pykube.io/simulate-run-seconds": "1",
                                                 "pykube.io/simulate-exit-code": "1"})
    worker = PodWorker(ctx, pod)
    await worker.sync()
    clock.step(1)
    await worker.sync()
    phase, cs = last_state(client)
    assert phase == "Failed"
    assert cs["state"]["terminated"]["reason"] == "Error" and cs["state"]["terminated"]["exitCode"] == 1


async def test_crash_loop_backs_off_10s_then_20s(env) -> None:  # type: ignore[no-untyped-def]
    ctx, client, recorder, clock = env
    worker = PodWorker(ctx, make_pod(annotations={"pykube.io/simulate-run-seconds": "1",
                                                  "pykube.io/simulate-exit-code": "1"}))
    await worker.sync()
    clock.step(1)
    await worker.sync()  # first restart is immediate
    assert last_state(client)[1]["restartCount"] == 1
    clock.step(1)
    await worker.sync()  # exited again: back-off 10s
    phase, cs = last_state(client)
    assert phase == "Running" and cs["state"]["waiting"]["reason"] == "CrashLoopBackOff"
    assert cs["state"]["waiting"]["message"] == "back-off 10s restarting failed container=c pod=p_ns(u1)"
    assert cs["lastState"]["terminated"]["exitCode"] == 1
    assert ("Warning", "BackOff", "Back-off restarting failed container c in pod p_ns(u1)") in recorder.events
    clock.step(5)
    await worker.sync()
    assert last_state(client)[1]["restartCount"] == 1
    clock.step(5)
    await worker.sync()
    assert last_state(client)[1]["restartCount"] == 2
    clock.step(1)
    await worker.sync()
    assert "back-off 20s" in last_state(client)[1]["state"]["waiting"]["message"]


async def test_init_container_runs_first(env) -> None:  # type: ignore[no-untyped-def]
    ctx, client, _, clock = env
    pod = make_pod(init=True, annotations={"pykube.io/simulate-run-seconds.i": "2"})
    worker = PodWorker(ctx, pod)
    await worker.sync()
    status = client.statuses[-1]
    assert status["phase"] == "Pending"
    assert status["containerStatuses"][0]["state"] == {"waiting": {"reason": "PodInitializing"}}
    assert status["conditions"][1]["reason"] == "ContainersNotInitialized"
    clock.step(2)
    await worker.sync()
    status = client.statuses[-1]
    assert status["initContainerStatuses"][0]["state"]["terminated"]["reason"] == "Completed"
    assert status["phase"] == "Running"


async def test_graceful_deletion_kills_and_deletes(env) -> None:  # type: ignore[no-untyped-def]
    ctx, client, recorder, _ = env
    pod = make_pod()
    worker = PodWorker(ctx, pod)
    await worker.sync()
    deleting = copy.deepcopy(pod)
    deleting["metadata"].update(deletionTimestamp="2025-01-01T00:00:00Z", deletionGracePeriodSeconds=30)
    worker.update(deleting)
    await worker.sync()
    assert ("Normal", "Killing", "Stopping container c") in recorder.events
    phase, cs = last_state(client)
    assert phase == "Failed" and cs["state"]["terminated"]["exitCode"] == 143
    assert client.deleted == [("p", {"namespace": "ns", "grace_period_seconds": 0, "preconditions": {"uid": "u1"}})]
    assert worker.done and await ctx.runtime.list_pod_sandboxes() == []
    assert ctx.ips.allocate() == "127.244.1.2"  # the IP was released


async def test_missing_secret_is_create_container_config_error(env) -> None:  # type: ignore[no-untyped-def]
    ctx, client, recorder, _ = env
    pod = make_pod()
    pod["spec"]["containers"][0]["env"] = [{"name": "X", "valueFrom": {"secretKeyRef": {"name": "s", "key": "k"}}}]
    await PodWorker(ctx, pod).sync()
    phase, cs = last_state(client)
    assert phase == "Pending"
    assert cs["state"]["waiting"] == {"reason": "CreateContainerConfigError", "message": 'secret "s" not found'}
    assert ("Warning", "Failed", 'Error: secret "s" not found') in recorder.events


async def test_run_loop_ends_when_pod_removed(env) -> None:  # type: ignore[no-untyped-def]
    ctx, client, _, _ = env
    worker = PodWorker(ctx, make_pod())
    task = asyncio.create_task(worker.run())
    async with asyncio.timeout(5):
        while not client.statuses:
            await asyncio.sleep(0)
        worker.update(None)
        await task
    assert await ctx.runtime.list_pod_sandboxes() == []
