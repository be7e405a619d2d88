"""The scheduler against a real in-process API server: nodes and pods in, bindings out."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from pykube_server.api import errors
from pykube_server.api.types import Obj
from pykube_server.client.events import EventRecorder
from pykube_server.client.informer import InformerFactory
from pykube_server.client.rest import Resource, EVENTS, NODES, PODS, Client
from pykube_server.scheduler.scheduler import Scheduler
from pykube_server.testing import local_cluster
from tests.scheduler.builders import node, pod

CONTROL_PLANE_TAINT = {"key": "node-role.kubernetes.io/control-plane", "effect": "NoSchedule"}


@pytest.fixture
async def client(tmp_path: Path) -> AsyncIterator[Client]:
    async with local_cluster(tmp_path, storage_url="memory://") as lc:
        async with Client.from_kubeconfig(lc.kubeconfig, user_agent="kube-scheduler/v1.33.0") as c:
            yield c


@pytest.fixture
async def running(client: Client) -> AsyncIterator[Scheduler]:
    informers = InformerFactory(client)
    recorder = EventRecorder(client, component="default-scheduler")
    scheduler = Scheduler(client, informers, recorder)
    async with asyncio.TaskGroup() as tg:
        tasks = [tg.create_task(informers.run()), tg.create_task(recorder.run()), tg.create_task(scheduler.run())]
        await informers.wait_for_cache_sync()
        yield scheduler
        for t in tasks:
            t.cancel()


async def wait_for(fn: Any, timeout: float = 10.0) -> Any:
    async with asyncio.timeout(timeout):
        while True:
            value = await fn()
            if value:
                return value
            await asyncio.sleep(0.05)


async def node_of(client: Client, name: str) -> str:
    return str((await client.get(PODS, name, namespace="default")).get("spec", {}).get("nodeName") or "")


async def condition(client: Client, name: str) -> Obj | None:
    p = await client.get(PODS, name, namespace="default")
    return next((c for c in p.get("status", {}).get("conditions") or [] if c["type"] == "PodScheduled"), None)


async def test_binding_subresource_sets_node_and_refuses_rebinding(client: Client) -> None:
    await client.create(PODS, pod("b"), namespace="default")
    binding = {"apiVersion": "v1", "kind": "Binding", "metadata": {"name": "b"}, "target": {"kind": "Node", "name": "n1"}}
    answer = await client.create(PODS, binding, namespace="default", name="b", subresource="binding")
    assert answer["status"] == "Success" and answer["code"] == 201
    bound = await client.get(PODS, "b", namespace="default")
    assert bound["spec"]["nodeName"] == "n1"
    assert [c["type"] for c in bound["status"]["conditions"]] == ["PodScheduled"]
    with pytest.raises(errors.Conflict) as exc:
        await client.create(PODS, binding, namespace="default", name="b", subresource="binding")
    assert exc.value.message == 'Operation cannot be fulfilled on pods/binding "b": pod b is already assigned to node "n1"'


async def test_legacy_bindings_resource(client: Client) -> None:
    from pykube_server.client.rest import Resource

    await client.create(PODS, pod("l"), namespace="default")
    await client.create(Resource("", "v1", "bindings"), {"metadata": {"name": "l"}, "target": {"name": "n2"}},
                        namespace="default")
    assert await node_of(client, "l") == "n2"


async def test_pods_land_where_they_fit(client: Client, running: Scheduler) -> None:
    await client.create(NODES, node("cp", labels={"node-role.kubernetes.io/control-plane": ""}, taints=[CONTROL_PLANE_TAINT]))
    await client.create(NODES, node("small", cpu="1"))
    await client.create(NODES, node("big", cpu="8", labels={"disk": "ssd"}))
    await client.create(PODS, pod("ssd", nodeSelector={"disk": "ssd"}), namespace="default")
    await client.create(PODS, pod("cpu", cpu="2"), namespace="default")
    await client.create(PODS, pod("other", schedulerName="my-scheduler"), namespace="default")
    assert await wait_for(lambda: node_of(client, "ssd")) == "big"
    assert await wait_for(lambda: node_of(client, "cpu")) == "big"
    events = await wait_for(lambda: _events(client, "ssd", "Scheduled"))
    assert events[0]["message"] == "Successfully assigned default/ssd to big"
    await asyncio.sleep(0.3)
    assert await node_of(client, "other") == ""


async def _events(client: Client, name: str, reason: str) -> list[Obj]:
    items = (await client.list(EVENTS, namespace="default", field_selector=f"involvedObject.name={name}"))["items"]
    return [e for e in items if e["reason"] == reason]


async def test_unschedulable_pod_gets_condition_and_event_then_lands_when_a_node_appears(
        client: Client, running: Scheduler) -> None:
    await client.create(NODES, node("cp", labels={"node-role.kubernetes.io/control-plane": ""}, taints=[CONTROL_PLANE_TAINT]))
    await client.create(NODES, node("n1", cpu="1"))
    await client.create(NODES, node("n2", cpu="2"))
    await client.create(PODS, pod("huge", cpu="3"), namespace="default")
    cond = await wait_for(lambda: condition(client, "huge"))
    message = ("0/3 nodes are available: 1 node(s) had untolerated taint {node-role.kubernetes.io/control-plane: }, "
               "2 Insufficient cpu. preemption: 0/3 nodes are available: 3 Preemption is not helpful for scheduling..")
    assert cond["status"] == "False" and cond["reason"] == "Unschedulable"
    assert cond["message"] == message
    failed = await wait_for(lambda: _events(client, "huge", "FailedScheduling"))
    assert failed[0]["type"] == "Warning" and failed[0]["message"] == message
    assert running.queue.where("default/huge") == "unschedulable"
    await client.create(NODES, node("n3", cpu="4"))
    assert await wait_for(lambda: node_of(client, "huge")) == "n3"
    cond = await condition(client, "huge")
    assert cond is not None and cond["status"] == "True"


async def test_deleting_a_pod_frees_room_for_a_waiting_one(client: Client, running: Scheduler) -> None:
    await client.create(NODES, node("n1", cpu="2"))
    await client.create(PODS, pod("first", cpu="1500m"), namespace="default")
    assert await wait_for(lambda: node_of(client, "first")) == "n1"
    await client.create(PODS, pod("second", cpu="1"), namespace="default")
    await wait_for(lambda: condition(client, "second"))
    await client.delete(PODS, "first", namespace="default", grace_period_seconds=0)
    assert await wait_for(lambda: node_of(client, "second")) == "n1"


async def test_high_priority_pod_preempts_a_low_priority_one(client: Client, running: Scheduler) -> None:
    # Priorities come from PriorityClasses (the Priority admission plugin refuses pods that state one).
    classes = Resource("scheduling.k8s.io", "v1", "priorityclasses", namespaced=False)
    for name, value, policy in (("low", 10, "PreemptLowerPriority"), ("high", 1000, "PreemptLowerPriority"),
                                ("high-never", 1000, "Never")):
        await client.create(classes, {"apiVersion": "scheduling.k8s.io/v1", "kind": "PriorityClass",
                                      "metadata": {"name": name}, "value": value, "preemptionPolicy": policy})
    await client.create(NODES, node("n1", cpu="2"))
    await client.create(PODS, pod("low", cpu="1500m", priorityClassName="low"), namespace="default")
    assert await wait_for(lambda: node_of(client, "low")) == "n1"
    await client.create(PODS, pod("never", cpu="1500m", priorityClassName="high-never"), namespace="default")
    await client.create(PODS, pod("high", cpu="1500m", priorityClassName="high"), namespace="default")

    async def low_terminating() -> bool:
        try:
            return bool((await client.get(PODS, "low", namespace="default"))["metadata"].get("deletionTimestamp"))
        except errors.NotFound:
            return True

    await wait_for(low_terminating)
    high = await client.get(PODS, "high", namespace="default")
    assert high["status"].get("nominatedNodeName") == "n1"
    never = await wait_for(lambda: condition(client, "never"))
    assert never["message"] == ("0/1 nodes are available: 1 Insufficient cpu. "
                                "preemption: not eligible due to preemptionPolicy=Never..")
    preempted = await wait_for(lambda: _events(client, "low", "Preempted"))
    assert preempted[0]["message"] == f"Preempted by pod {high['metadata']['uid']} on node n1"
    # what the kubelet would do once the victim's containers stopped
    try:
        await client.delete(PODS, "low", namespace="default", grace_period_seconds=0)
    except errors.NotFound:
        pass
    assert await wait_for(lambda: node_of(client, "high")) == "n1"
