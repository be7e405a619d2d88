"""How pods end on the kubelet's side: a terminal phase set in the API is final, and
`activeDeadlineSeconds` fails a pod that ran too long (DeadlineExceeded).

Real behaviour (kubelet's pod workers, status manager and activeDeadlineHandler): a pod whose
phase is Failed/Succeeded in the API is terminated by the kubelet (its containers are killed)
and never reported as Running again; a pod active longer than `spec.activeDeadlineSeconds`
since `status.startTime` gets a Normal `DeadlineExceeded` event, phase Failed with reason
`DeadlineExceeded` and message "Pod was active on the node longer than the specified
deadline", and its containers are killed; ContainersReady/Ready of a Failed pod say `PodFailed`.
"""

from __future__ import annotations

import asyncio
import copy
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from pykube_server.client.events import EventRecorder
from pykube_server.client.rest import PODS, Client
from pykube_server.kubelet import node as nodeinfo
from pykube_server.kubelet.kubelet import Kubelet, NodeConfig
from pykube_server.kubelet.pod_workers import PodWorker
from pykube_server.kubelet.runtime import ContainerState
from pykube_server.kubelet.runtimes.process import ProcessRuntime
from pykube_server.testing import local_cluster
from tests.kubelet.test_kubelet import eventually
from tests.kubelet.test_pod_workers import env, last_state, make_pod  # noqa: F401  (env is a fixture)

DEADLINE_MESSAGE = "Pod was active on the node longer than the specified deadline"


async def test_failed_in_the_api_is_stopped_and_stays_failed(env) -> None:  # type: ignore[no-untyped-def]  # noqa: F811
    ctx, client, recorder, clock = env
    pod = make_pod()
    worker = PodWorker(ctx, pod)
    await worker.sync()
    assert last_state(client)[0] == "Running"
    failed = copy.deepcopy(pod)
    failed["status"] = {**client.statuses[-1], "phase": "Failed"}
    worker.update(failed)
    await worker.sync()
    phase, cs = last_state(client)
    assert phase == "Failed" and cs["state"]["terminated"]["exitCode"] == 143 and cs["ready"] is False
    conds = {c["type"]: c for c in client.statuses[-1]["conditions"]}
    assert conds["Ready"]["reason"] == "PodFailed" and conds["ContainersReady"]["status"] == "False"
    assert ("Normal", "Killing", "Stopping container c") in recorder.events
    writes = len(client.statuses)
    for _ in range(3):  # resyncs neither restart the container nor write Running back
        clock.step(15)
        await worker.sync()
    assert len(client.statuses) == writes
    containers = await ctx.runtime.list_containers()
    assert [c.state for c in containers] == [ContainerState.EXITED]


async def test_deleting_a_failed_pod_keeps_failed(env) -> None:  # type: ignore[no-untyped-def]  # noqa: F811
    ctx, client, _, _ = env
    pod = make_pod()
    worker = PodWorker(ctx, pod)
    await worker.sync()
    failed = copy.deepcopy(pod)
    failed["status"] = {**client.statuses[-1], "phase": "Failed"}
    worker.update(failed)
    await worker.sync()
    deleting = copy.deepcopy(failed)
    deleting["metadata"].update(deletionTimestamp="2025-01-01T00:00:00Z", deletionGracePeriodSeconds=30)
    worker.update(deleting)
    await worker.sync()
    assert all(s["phase"] == "Failed" for s in client.statuses[1:])
    assert worker.done and client.deleted


async def test_active_deadline_fails_the_pod(env) -> None:  # type: ignore[no-untyped-def]  # noqa: F811
    ctx, client, recorder, clock = env
    pod = make_pod()
    pod["spec"]["activeDeadlineSeconds"] = 2
    worker = PodWorker(ctx, pod)
    task = asyncio.create_task(worker.run())
    try:
        async with asyncio.timeout(5):
            while not client.statuses:
                await asyncio.sleep(0)
            assert last_state(client)[0] == "Running"
            clock.step(1.5)
            for _ in range(20):
                await asyncio.sleep(0)
            assert last_state(client)[0] == "Running"
            clock.step(0.6)  # the worker woke itself at the deadline: no resync needed
            while last_state(client)[1]["state"].get("terminated") is None:
                await asyncio.sleep(0)
    finally:
        task.cancel()
    status = client.statuses[-1]
    assert (status["phase"], status["reason"], status["message"]) == ("Failed", "DeadlineExceeded", DEADLINE_MESSAGE)
    assert status["containerStatuses"][0]["state"]["terminated"]["exitCode"] == 143
    assert ("Normal", "DeadlineExceeded", DEADLINE_MESSAGE) in recorder.events
    assert ("Normal", "Killing", "Stopping container c") in recorder.events


async def test_no_deadline_no_start_time_no_failure(env) -> None:  # type: ignore[no-untyped-def]  # noqa: F811
    ctx, client, _, clock = env
    worker = PodWorker(ctx, make_pod())
    await worker.sync()
    clock.step(3600)
    await worker.sync()
    assert last_state(client)[0] == "Running" and "reason" not in client.statuses[-1]


# --- against an API server, with real processes -----------------------------------------------

@pytest.fixture
async def process_kubelet(tmp_path: Path) -> AsyncIterator[tuple[Kubelet, Client]]:
    res = nodeinfo.Resources("4", 8 * 2**30, 100 * 2**30)
    async with local_cluster(tmp_path) as cluster:
        async with Client.from_kubeconfig(cluster.kubeconfig) as client:
            recorder = EventRecorder(client, component="kubelet", host="pykube-node-1")
            runtime = ProcessRuntime(tmp_path / "rt")
            kl = Kubelet(NodeConfig("pykube-node-1", "127.244.1.0/24", res, kubelet_port=10250),
                         client=client, runtime=runtime, recorder=recorder)
            try:
                async with asyncio.TaskGroup() as tg:
                    tasks = [tg.create_task(kl.run()), tg.create_task(recorder.run())]
                    await asyncio.wait_for(kl.registered.wait(), 10)
                    yield kl, client
                    for t in tasks:
                        t.cancel()
            finally:
                await runtime.aclose(stop=True)


def _pod(name: str, **spec: Any) -> dict[str, Any]:
    return {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": name, "namespace": "default"},
            "spec": {"nodeName": "pykube-node-1", "terminationGracePeriodSeconds": 2, **spec,
                     "containers": [{"name": "c", "image": "busybox", "command": ["sleep", "1000"]}]}}


async def _main_pid(kl: Kubelet) -> int:
    runtime = kl.runtime
    assert isinstance(runtime, ProcessRuntime)
    (c,) = [c for c in await runtime.list_containers() if c.state is ContainerState.RUNNING]
    pid = runtime.container_pid(c.id)
    assert pid
    return pid


def _gone(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] == "Z"
    except OSError:
        return True


async def test_process_pod_past_its_deadline_is_failed_and_killed(process_kubelet) -> None:  # type: ignore[no-untyped-def]
    kl, client = process_kubelet
    await client.create(PODS, _pod("deadline", activeDeadlineSeconds=2), namespace="default")

    async def phase(want: str) -> Any:
        p = await client.get(PODS, "deadline", namespace="default")
        return p if p["status"].get("phase") == want else None

    await eventually(lambda: phase("Running"))
    pid = await _main_pid(kl)
    p = await eventually(lambda: phase("Failed"), timeout=15)
    assert (p["status"]["reason"], p["status"]["message"]) == ("DeadlineExceeded", DEADLINE_MESSAGE)

    async def terminated() -> Any:
        p = await client.get(PODS, "deadline", namespace="default")
        return p["status"]["containerStatuses"][0]["state"].get("terminated")

    assert (await eventually(terminated))["exitCode"] == 143
    assert _gone(pid)


async def test_process_pod_failed_through_status_is_killed_and_stays_failed(process_kubelet) -> None:  # type: ignore[no-untyped-def]
    kl, client = process_kubelet
    await client.create(PODS, _pod("victim"), namespace="default")

    async def running() -> Any:
        p = await client.get(PODS, "victim", namespace="default")
        return p if p["status"].get("phase") == "Running" else None

    p = await eventually(running)
    pid = await _main_pid(kl)
    p["status"]["phase"] = "Failed"  # as the DaemonSet conformance test does, through /status
    await client.update(PODS, p, subresource="status")

    async def killed() -> Any:
        got = await client.get(PODS, "victim", namespace="default")
        return got if got["status"]["containerStatuses"][0]["state"].get("terminated") else None

    got = await eventually(killed)
    assert got["status"]["phase"] == "Failed"
    assert _gone(pid)
    await asyncio.sleep(1.0)  # the kubelet keeps it Failed
    assert (await client.get(PODS, "victim", namespace="default"))["status"]["phase"] == "Failed"
