"""Ephemeral containers in the pod worker (kubelet 1.33 behaviour): one added to a running pod's
spec is started once in the pod's sandbox, reported in `ephemeralContainerStatuses` (never ready,
no `started`), its events point at `spec.ephemeralContainers{name}`, it is never restarted after
it exits, and it does not count for the pod's phase or readiness."""

from __future__ import annotations

import copy

from pykube_server.kubelet.pod_workers import PodWorker

from tests.kubelet.test_pod_workers import env, make_pod  # noqa: F401  (env is the shared fixture)


async def test_ephemeral_container_starts_once_and_is_reported(env) -> None:  # type: ignore[no-untyped-def]  # noqa: F811
    ctx, client, recorder, clock = env
    worker = PodWorker(ctx, make_pod(annotations={"pykube.io/simulate-run-seconds.debugger": "1"}))
    await worker.sync()
    assert "ephemeralContainerStatuses" not in client.statuses[-1]
    pod = copy.deepcopy(worker.pod)
    pod["spec"]["ephemeralContainers"] = [{"name": "debugger", "image": "busybox", "imagePullPolicy": "IfNotPresent",
                                           "targetContainerName": "c"}]
    worker.update(pod)
    await worker.sync()
    status = client.statuses[-1]
    [ec] = status["ephemeralContainerStatuses"]
    assert ec["name"] == "debugger" and "running" in ec["state"] and ec["ready"] is False and "started" not in ec
    assert ec["restartCount"] == 0 and ec["containerID"]
    assert status["phase"] == "Running" and [c["name"] for c in status["containerStatuses"]] == ["c"]
    paths = [(reason, message) for _, reason, message in recorder.events if "debugger" in message]
    assert ("Started", "Started container debugger") in paths

    clock.step(1)
    await worker.sync()
    await worker.sync()
    status = client.statuses[-1]
    [ec] = status["ephemeralContainerStatuses"]
    assert ec["state"]["terminated"]["reason"] == "Completed" and ec["restartCount"] == 0
    assert status["phase"] == "Running"
    assert all(c["status"] == "True" for c in status["conditions"])  # the pod stays ready
    started = [m for _, reason, m in recorder.events if reason == "Started" and "debugger" in m]
    assert len(started) == 1  # never restarted
