"""Helpers for the Job, CronJob, StatefulSet and DaemonSet controller tests.

`running()` is `controllers_running()` with an injectable clock (a FakeClock for cron), plus a
ticker that nudges a fake clock forward in small steps so the work queue's rate-limited retries
still fire; `set_pod_status()` plays the kubelet by writing pods/status.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from typing import Any

from pykube_server.api.types import Obj
from pykube_server.client.clock import REAL_CLOCK, Clock, FakeClock
from pykube_server.client.events import EventRecorder
from pykube_server.client.informer import InformerFactory
from pykube_server.client.rest import EVENTS, PODS, Client
from pykube_server.controllers.framework import Context
from pykube_server.controllers.manager import run_controllers
from pykube_server.testing import LocalCluster

CONTAINERS = [{"name": "c", "image": "busybox"}]
TEMPLATE_SPEC = {"containers": CONTAINERS, "restartPolicy": "Never"}


@contextlib.asynccontextmanager
async def running(cluster: LocalCluster, names: list[str], clock: Clock = REAL_CLOCK) -> AsyncIterator[Client]:
    async with Client.from_kubeconfig(cluster.kubeconfig, user_agent="kube-controller-manager/v1.33.0") as manager, \
            Client.from_kubeconfig(cluster.kubeconfig, user_agent="pykube-test/v0.1.0") as client:
        ctx = Context(manager, InformerFactory(manager),
                      EventRecorder(manager, component="kube-controller-manager", clock=clock), clock=clock)
        tasks = [asyncio.create_task(run_controllers(ctx, names))]
        if isinstance(clock, FakeClock):
            tasks.append(asyncio.create_task(_tick(clock)))
        try:
            yield client
        finally:
            for task in tasks:
                task.cancel()
            for task in tasks:
                with contextlib.suppress(asyncio.CancelledError):
                    await task


async def _tick(clock: FakeClock) -> None:
    while True:
        await asyncio.sleep(0.02)
        clock.step(0.02)


async def set_pod_status(client: Client, pod: Obj, phase: str, *, ready: bool = False, exit_code: int | None = None,
                         restarts: int = 0) -> Obj:
    """Write the pod's status as a kubelet would."""
    fresh = await client.get(PODS, pod["metadata"]["name"], namespace=pod["metadata"]["namespace"])
    cstatus: dict[str, Any] = {"name": "c", "image": "busybox", "imageID": "", "ready": ready, "restartCount": restarts}
    if exit_code is not None:
        cstatus["state"] = {"terminated": {"exitCode": exit_code, "reason": "Error" if exit_code else "Completed"}}
    else:
        cstatus["state"] = {"running": {"startedAt": "2025-01-01T00:00:00Z"}}
    status = {"phase": phase, "containerStatuses": [cstatus],
              "conditions": [{"type": "Ready", "status": "True" if ready else "False",
                              "lastTransitionTime": "2020-01-01T00:00:00Z"}]}
    return await client.update(PODS, {**fresh, "status": status}, subresource="status")


async def pods_of(client: Client, namespace: str, selector: str = "") -> list[Obj]:
    listed = await client.list(PODS, namespace=namespace, label_selector=selector)
    return sorted(listed.get("items") or [], key=lambda p: p["metadata"]["name"])


async def event_reasons(client: Client, namespace: str, name: str) -> list[str]:
    listed = await client.list(EVENTS, namespace=namespace, field_selector=f"involvedObject.name={name}")
    return [e["reason"] for e in listed.get("items") or []]


async def event_messages(client: Client, namespace: str, name: str) -> list[str]:
    listed = await client.list(EVENTS, namespace=namespace, field_selector=f"involvedObject.name={name}")
    return [e["message"] for e in listed.get("items") or []]


async def eventually(check, *, timeout: float = 30.0, interval: float = 0.05):  # type: ignore[no-untyped-def]
    """`tests.controllers.eventually` with a deadline generous enough for a loaded 2-core machine."""
    from tests.controllers import eventually as poll

    return await poll(check, timeout=timeout, interval=interval)
