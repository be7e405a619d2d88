"""The ReplicaSet and ReplicationController controllers against an in-process API server.

Facts recorded here (kube-controller-manager 1.33, pkg/controller/replicaset):
- pods are named by generateName `<owner>-` and carry one ownerReference with
  controller=true and blockOwnerDeletion=true;
- events: SuccessfulCreate "Created pod: <pod>", SuccessfulDelete "Deleted pod: <pod>", from
  `replicaset-controller` (or `replication-controller`);
- status omits zero counts except `replicas`; availableReplicas needs Ready for longer than
  minReadySeconds; ReplicaFailure (FailedCreate/FailedDelete) carries the error's message;
- deletion order is upstream's ActivePodsWithRanks; creates go in slow-start batches 1, 2, 4...
There is no kubelet: tests mark pods ready through `pods/status`, as a kubelet would.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest

from pykube_server.api import errors
from pykube_server.client.clock import FakeClock
from pykube_server.client.events import EventRecorder, format_time
from pykube_server.client.informer import InformerFactory
from pykube_server.client.rest import EVENTS, PODS, REPLICASETS, Client
from pykube_server.controllers.framework import Context
from pykube_server.controllers.replicaset import REPLICATIONCONTROLLERS, replicaset_controller, replicationcontroller_controller
from pykube_server.controllers.replicaset.controller import calculate_status
from pykube_server.controllers.replicaset.expectations import Expectations
from pykube_server.controllers.replicaset.ranking import pods_to_delete, slow_start_batch
from pykube_server.testing import local_cluster

NS = "default"
NOW = datetime(2025, 6, 1, 12, 0, 0, tzinfo=timezone.utc)


@dataclass
class Env:
    client: Client


@pytest.fixture
async def env(tmp_path: Path) -> AsyncIterator[Env]:
    async with local_cluster(tmp_path, storage_url="memory://") as lc:
        async with Client.from_kubeconfig(lc.kubeconfig, user_agent="kube-controller-manager/v1.33.0") as client:
            ctx = Context(client, InformerFactory(client), EventRecorder(client, component="kube-controller-manager"))
            controllers = [replicaset_controller(ctx), replicationcontroller_controller(ctx)]
            tasks = [asyncio.create_task(ctx.informers.run())] + [asyncio.create_task(c.run()) for c in controllers]
            try:
                yield Env(client)
            finally:
                for task in tasks:
                    task.cancel()
                await asyncio.gather(*tasks, return_exceptions=True)


async def eventually(check: Callable[[], Awaitable[Any]], timeout: float = 10.0) -> Any:
    """Poll `check` until it returns a truthy value (and return it), or fail at the deadline."""
    deadline = time.monotonic() + timeout
    while True:
        result = await check()
        if result:
            return result
        if time.monotonic() > deadline:
            raise AssertionError(f"condition not met within {timeout}s (last: {result!r})")
        await asyncio.sleep(0.05)


def replicaset(name: str, replicas: int, *, labels: dict[str, str] | None = None, min_ready: int = 0) -> dict[str, Any]:
    labels = labels or {"app": name}
    return {"apiVersion": "apps/v1", "kind": "ReplicaSet", "metadata": {"name": name},
            "spec": {"replicas": replicas, "minReadySeconds": min_ready, "selector": {"matchLabels": labels},
                     "template": {"metadata": {"labels": labels},
                                  "spec": {"containers": [{"name": "c", "image": "nginx"}]}}}}


async def pods_of(client: Client, app: str) -> list[dict[str, Any]]:
    items = (await client.list(PODS, namespace=NS, label_selector=f"app={app}"))["items"]
    return [p for p in items if not p["metadata"].get("deletionTimestamp")]


async def mark_ready(client: Client, pod: dict[str, Any], *, since: datetime | None = None, node: str = "") -> None:
    """What a kubelet reports once the pod's containers are up."""
    stamp = format_time(since or datetime.now(timezone.utc))
    fresh = await client.get(PODS, pod["metadata"]["name"], namespace=NS)
    fresh["status"] = {"phase": "Running", "conditions": [
        {"type": "Ready", "status": "True", "lastTransitionTime": stamp}]}
    if node:
        fresh["spec"]["nodeName"] = node
    await client.update(PODS, fresh, subresource="status")


async def events_for(client: Client, name: str) -> list[dict[str, Any]]:
    items = (await client.list(EVENTS, namespace=NS, field_selector=f"involvedObject.name={name}"))["items"]
    return items


async def rs_status(client: Client, name: str) -> dict[str, Any]:
    status: dict[str, Any] = (await client.get(REPLICASETS, name, namespace=NS)).get("status") or {}
    return status


# --- against the API server --------------------------------------------------------------------

async def test_creates_pods_with_owner_and_status(env: Env) -> None:
    rs = await env.client.create(REPLICASETS, replicaset("web", 3), namespace=NS)
    pods = await eventually(lambda: _count(env.client, "web", 3))
    for pod in pods:
        assert pod["metadata"]["generateName"] == "web-"
        assert pod["metadata"]["name"].startswith("web-") and len(pod["metadata"]["name"]) == len("web-") + 5
        assert pod["metadata"]["ownerReferences"] == [{
            "apiVersion": "apps/v1", "kind": "ReplicaSet", "name": "web", "uid": rs["metadata"]["uid"],
            "controller": True, "blockOwnerDeletion": True}]
        assert pod["metadata"]["labels"] == {"app": "web"}
    status = await eventually(lambda: _status_when(env.client, "web", replicas=3))
    assert status == {"replicas": 3, "fullyLabeledReplicas": 3, "observedGeneration": 1}
    events = await eventually(lambda: _events_with(env.client, "web", "SuccessfulCreate", 3))
    assert sorted(e["message"] for e in events) == sorted(f"Created pod: {p['metadata']['name']}" for p in pods)
    assert {e["source"]["component"] for e in events} == {"replicaset-controller"}


async def test_ready_and_available_respect_min_ready_seconds(env: Env) -> None:
    await env.client.create(REPLICASETS, replicaset("mr", 2, min_ready=3600), namespace=NS)
    pods = await eventually(lambda: _count(env.client, "mr", 2))
    await mark_ready(env.client, pods[0], since=datetime.now(timezone.utc) - timedelta(hours=2))
    await mark_ready(env.client, pods[1])
    status = await eventually(lambda: _status_when(env.client, "mr", readyReplicas=2))
    assert status["availableReplicas"] == 1


async def test_scale_down_deletes_not_ready_before_ready(env: Env) -> None:
    await env.client.create(REPLICASETS, replicaset("sd", 3), namespace=NS)
    pods = await eventually(lambda: _count(env.client, "sd", 3))
    for pod in pods[:2]:
        await mark_ready(env.client, pod)
    await eventually(lambda: _status_when(env.client, "sd", readyReplicas=2))
    await env.client.patch(REPLICASETS, "sd", {"spec": {"replicas": 2}}, namespace=NS)
    left = await eventually(lambda: _count(env.client, "sd", 2))
    assert {p["metadata"]["name"] for p in left} == {p["metadata"]["name"] for p in pods[:2]}
    events = await eventually(lambda: _events_with(env.client, "sd", "SuccessfulDelete", 1))
    assert events[0]["message"] == f"Deleted pod: {pods[2]['metadata']['name']}"


async def test_adopts_orphans_and_releases_pods_that_stop_matching(env: Env) -> None:
    orphan = {"metadata": {"name": "orphan", "labels": {"app": "ad"}},
              "spec": {"containers": [{"name": "c", "image": "nginx"}]}}
    await env.client.create(PODS, orphan, namespace=NS)
    rs = await env.client.create(REPLICASETS, replicaset("ad", 1), namespace=NS)
    adopted = await eventually(lambda: _owned_pod(env.client, "orphan"))
    assert adopted["uid"] == rs["metadata"]["uid"] and adopted["controller"] is True
    assert [p["metadata"]["name"] for p in await pods_of(env.client, "ad")] == ["orphan"]
    # relabel it: the ReplicaSet lets go of it and makes a replacement
    await env.client.patch(PODS, "orphan", {"metadata": {"labels": {"app": "gone"}}}, namespace=NS)
    await eventually(lambda: _released(env.client, "orphan"))
    await eventually(lambda: _count(env.client, "ad", 1))


async def test_never_overshoots_with_many_replicas(env: Env) -> None:
    await env.client.create(REPLICASETS, replicaset("big", 40), namespace=NS)
    await eventually(lambda: _status_when(env.client, "big", replicas=40), timeout=20)
    await asyncio.sleep(0.3)  # give a wrongly eager controller time to overshoot
    assert len(await pods_of(env.client, "big")) == 40
    status = await rs_status(env.client, "big")
    assert status["replicas"] == 40


async def test_replacement_after_pod_deletion(env: Env) -> None:
    await env.client.create(REPLICASETS, replicaset("heal", 2), namespace=NS)
    pods = await eventually(lambda: _count(env.client, "heal", 2))
    await env.client.delete(PODS, pods[0]["metadata"]["name"], namespace=NS)
    after = await eventually(lambda: _count(env.client, "heal", 2))
    assert pods[0]["metadata"]["name"] not in {p["metadata"]["name"] for p in after}


async def test_replication_controller(env: Env) -> None:
    rc = {"apiVersion": "v1", "kind": "ReplicationController", "metadata": {"name": "rc"},
          "spec": {"replicas": 2, "selector": {"app": "rc"},
                   "template": {"metadata": {"labels": {"app": "rc"}},
                                "spec": {"containers": [{"name": "c", "image": "nginx"}]}}}}
    created = await env.client.create(REPLICATIONCONTROLLERS, rc, namespace=NS)
    pods = await eventually(lambda: _count(env.client, "rc", 2))
    assert pods[0]["metadata"]["ownerReferences"][0] == {
        "apiVersion": "v1", "kind": "ReplicationController", "name": "rc", "uid": created["metadata"]["uid"],
        "controller": True, "blockOwnerDeletion": True}
    events = await eventually(lambda: _events_with(env.client, "rc", "SuccessfulCreate", 2))
    assert {e["source"]["component"] for e in events} == {"replication-controller"}

    async def rc_status() -> dict[str, Any] | None:
        status = (await env.client.get(REPLICATIONCONTROLLERS, "rc", namespace=NS)).get("status") or {}
        return status if status.get("replicas") == 2 else None

    assert (await eventually(rc_status))["observedGeneration"] == 1


# --- pure parts ---------------------------------------------------------------------------------

def _pod(name: str, *, node: str = "", phase: str = "Pending", ready_since: datetime | None = None,
         created: datetime = NOW - timedelta(hours=1), restarts: int = 0, cost: str | None = None) -> dict[str, Any]:
    status: dict[str, Any] = {"phase": phase, "containerStatuses": [{"restartCount": restarts}]}
    if ready_since is not None:
        status["conditions"] = [{"type": "Ready", "status": "True", "lastTransitionTime": format_time(ready_since)}]
    meta: dict[str, Any] = {"name": name, "uid": name, "creationTimestamp": format_time(created)}
    if cost is not None:
        meta["annotations"] = {"controller.kubernetes.io/pod-deletion-cost": cost}
    return {"metadata": meta, "spec": {"nodeName": node}, "status": status}


HOUR_AGO = NOW - timedelta(hours=1)


@pytest.mark.parametrize(("first", "second"), [
    (_pod("unscheduled"), _pod("scheduled", node="n1")),
    (_pod("pending", node="n1"), _pod("running", node="n1", phase="Running")),
    (_pod("unknown", node="n1", phase="Unknown"), _pod("running", node="n1", phase="Running")),
    (_pod("notready", node="n1", phase="Running"), _pod("ready", node="n1", phase="Running", ready_since=HOUR_AGO)),
    (_pod("cheap", node="n1", cost="-5"), _pod("dear", node="n1", cost="10")),
    (_pod("newready", node="n1", phase="Running", ready_since=NOW - timedelta(seconds=5)),
     _pod("oldready", node="n1", phase="Running", ready_since=NOW - timedelta(days=3))),
    (_pod("restarts", node="n1", restarts=4), _pod("calm", node="n1")),
    (_pod("newer", node="n1", created=NOW - timedelta(seconds=3)), _pod("older", node="n1", created=NOW - timedelta(days=2))),
], ids=["unassigned-first", "pending-before-running", "unknown-before-running", "not-ready-first",
        "lower-deletion-cost-first", "recently-ready-first", "more-restarts-first", "newer-first"])
def test_deletion_order(first: dict[str, Any], second: dict[str, Any]) -> None:
    for pods in ([first, second], [second, first]):
        assert pods_to_delete(pods, pods, 1, NOW) == [first]


def test_doubled_up_pods_go_first() -> None:
    lonely, crowded = _pod("lonely", node="a"), _pod("crowded", node="b")
    siblings = [_pod("s1", node="b"), _pod("s2", node="b")]
    assert pods_to_delete([lonely, crowded], [lonely, crowded, *siblings], 1, NOW) == [crowded]


async def test_slow_start_doubles_and_stops_at_first_failure() -> None:
    calls = 0

    async def failing() -> None:
        nonlocal calls
        calls += 1
        if calls == 4:  # in the third batch (calls 4-7)
            raise errors.Forbidden("quota exceeded")

    done, error = await slow_start_batch(20, 1, failing)
    assert calls == 7 and done == 6 and isinstance(error, errors.Forbidden)  # batches of 1, 2, then 4

    calls = 100  # past the failing call
    assert await slow_start_batch(10, 1, failing) == (10, None) and calls == 110


def test_expectations_wait_for_observations_or_expire() -> None:
    clock = FakeClock()
    exp = Expectations(clock)
    assert exp.satisfied("ns/rs")
    exp.expect_creations("ns/rs", 2)
    exp.creation_observed("ns/rs")
    assert not exp.satisfied("ns/rs")
    exp.creation_observed("ns/rs")
    assert exp.satisfied("ns/rs")
    exp.expect_deletions("ns/rs", ["ns/a", "ns/b"])
    exp.deletion_observed("ns/rs", "ns/a")
    exp.deletion_observed("ns/rs", "ns/a")
    assert not exp.satisfied("ns/rs")
    clock.step(301)
    assert exp.satisfied("ns/rs")


def test_replica_failure_condition() -> None:
    owner = replicaset("f", 3)
    owner["metadata"]["generation"] = 1
    failed = calculate_status(owner, [], errors.Forbidden('pods "f-x" is forbidden: exceeded quota'), now=NOW)
    assert failed["conditions"] == [{"type": "ReplicaFailure", "status": "True", "lastTransitionTime": format_time(NOW),
                                     "reason": "FailedCreate", "message": 'pods "f-x" is forbidden: exceeded quota'}]
    assert failed["replicas"] == 0 and "readyReplicas" not in failed
    owner["status"] = failed
    assert "conditions" not in calculate_status(owner, [], None, now=NOW)


# --- polling helpers ----------------------------------------------------------------------------

async def _count(client: Client, app: str, n: int) -> list[dict[str, Any]] | None:
    pods = await pods_of(client, app)
    return pods if len(pods) == n else None


async def _status_when(client: Client, name: str, **want: int) -> dict[str, Any] | None:
    status = await rs_status(client, name)
    return status if all(status.get(k) == v for k, v in want.items()) else None


async def _events_with(client: Client, name: str, reason: str, n: int) -> list[dict[str, Any]] | None:
    events = [e for e in await events_for(client, name) if e["reason"] == reason]
    return events if len(events) >= n else None


async def _owned_pod(client: Client, name: str) -> dict[str, Any] | None:
    refs = (await client.get(PODS, name, namespace=NS))["metadata"].get("ownerReferences") or []
    return refs[0] if refs else None


async def _released(client: Client, name: str) -> bool:
    return not (await client.get(PODS, name, namespace=NS))["metadata"].get("ownerReferences")
