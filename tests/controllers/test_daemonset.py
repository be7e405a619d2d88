"""daemonset-controller against an in-process API server, with Node objects made by the test.

Facts from kube-controller-manager 1.33 recorded here: daemon pods are `<ds>-<random>`, unbound,
pinned by a required node affinity term `matchFields metadata.name In [node]` for the scheduler
to bind; they get the tolerations not-ready/unreachable (NoExecute) and disk-pressure,
memory-pressure, pid-pressure, unschedulable (NoSchedule), operator Exists; they carry
`controller-revision-hash` (the hash alone) and `pod-template-generation`; nodeSelector and
untolerated NoSchedule taints make a node ineligible.
"""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from pykube_server.client.rest import CONTROLLERREVISIONS, DAEMONSETS, NODES, Client
from pykube_server.controllers.daemonset import pod_node
from pykube_server.testing import LocalCluster

from tests.controllers.workloads import CONTAINERS, eventually, pods_of, running, set_pod_status

NS = "default"


def ds(name: str, **spec: object) -> dict:
    template_spec = {"containers": CONTAINERS, **spec.pop("pod", {})}  # type: ignore[dict-item]
    return {"apiVersion": "apps/v1", "kind": "DaemonSet", "metadata": {"name": name},
            "spec": {"selector": {"matchLabels": {"app": name}},
                     "template": {"metadata": {"labels": {"app": name}}, "spec": template_spec}, **spec}}


def node(name: str, labels: dict | None = None, taints: list | None = None) -> dict:
    return {"apiVersion": "v1", "kind": "Node", "metadata": {"name": name, "labels": labels or {}},
            "spec": {"taints": taints} if taints else {}}


@pytest.fixture
async def client(cluster: LocalCluster) -> AsyncIterator[Client]:
    async with running(cluster, ["daemonset-controller"]) as c:
        for n in (node("n1", {"disk": "ssd"}), node("n2", {"disk": "ssd"}),
                  node("n3", taints=[{"key": "dedicated", "value": "x", "effect": "NoSchedule"}])):
            await c.create(NODES, n)
        yield c


async def by_node(client: Client, app: str) -> dict[str, dict]:
    return {pod_node(p): p for p in await pods_of(client, NS, f"app={app}") if not p["metadata"].get("deletionTimestamp")}


async def nodes_are(client: Client, app: str, nodes: set[str]) -> dict[str, dict] | None:
    pods = await by_node(client, app)
    return pods if set(pods) == nodes else None


async def test_one_pod_per_eligible_node(client: Client) -> None:
    await client.create(DAEMONSETS, ds("agent"), namespace=NS)
    pods = await eventually(lambda: nodes_are(client, "agent", {"n1", "n2"}))  # n3's taint is not tolerated
    pod = pods["n1"]
    assert pod["metadata"]["name"].startswith("agent-") and "nodeName" not in pod["spec"]
    terms = pod["spec"]["affinity"]["nodeAffinity"]["requiredDuringSchedulingIgnoredDuringExecution"]["nodeSelectorTerms"]
    assert terms == [{"matchFields": [{"key": "metadata.name", "operator": "In", "values": ["n1"]}]}]
    tolerations = {(t["key"], t["effect"]) for t in pod["spec"]["tolerations"]}
    assert tolerations == {("node.kubernetes.io/not-ready", "NoExecute"), ("node.kubernetes.io/unreachable", "NoExecute"),
                           ("node.kubernetes.io/disk-pressure", "NoSchedule"), ("node.kubernetes.io/memory-pressure", "NoSchedule"),
                           ("node.kubernetes.io/pid-pressure", "NoSchedule"), ("node.kubernetes.io/unschedulable", "NoSchedule")}
    [rev] = (await client.list(CONTROLLERREVISIONS, namespace=NS))["items"]
    assert rev["metadata"]["name"] == f"agent-{pod['metadata']['labels']['controller-revision-hash']}"
    assert pod["metadata"]["labels"]["pod-template-generation"] == "1"
    for p in pods.values():
        await set_pod_status(client, p, "Running", ready=True)
    d = await eventually(lambda: _ds_with(client, "agent", lambda s: s.get("numberReady") == 2))
    st = d["status"]
    assert (st["desiredNumberScheduled"], st["currentNumberScheduled"], st["numberAvailable"],
            st["updatedNumberScheduled"], st["numberMisscheduled"]) == (2, 2, 2, 2, 0)
    assert "numberUnavailable" not in st and st["observedGeneration"] == 1
    # a new node gets a pod
    await client.create(NODES, node("n4"))
    await eventually(lambda: nodes_are(client, "agent", {"n1", "n2", "n4"}))


async def test_node_selector_and_tolerations(client: Client) -> None:
    await client.create(DAEMONSETS, ds("ssd", pod={"nodeSelector": {"disk": "ssd"}}), namespace=NS)
    await eventually(lambda: nodes_are(client, "ssd", {"n1", "n2"}))
    toleration = {"key": "dedicated", "operator": "Equal", "value": "x", "effect": "NoSchedule"}
    await client.create(DAEMONSETS, ds("all", pod={"tolerations": [toleration]}), namespace=NS)
    await eventually(lambda: nodes_are(client, "all", {"n1", "n2", "n3"}))
    # relabeling a node makes its pod misscheduled, then deleted
    await client.patch(NODES, "n2", {"metadata": {"labels": {"disk": "hdd"}}})
    await eventually(lambda: nodes_are(client, "ssd", {"n1"}))


async def test_rolling_update_max_unavailable(client: Client) -> None:
    await client.create(DAEMONSETS, ds("roll"), namespace=NS)
    pods = await eventually(lambda: nodes_are(client, "roll", {"n1", "n2"}))
    for p in pods.values():
        await set_pod_status(client, p, "Running", ready=True)
    await eventually(lambda: _ds_with(client, "roll", lambda s: s.get("numberAvailable") == 2))
    old_hash = pods["n1"]["metadata"]["labels"]["controller-revision-hash"]
    await client.patch(DAEMONSETS, "roll", {"spec": {"template": {"metadata": {"annotations": {"v": "2"}}}}}, namespace=NS)

    async def updated_count() -> tuple[int, int]:
        pods = await by_node(client, "roll")
        new = [p for p in pods.values() if p["metadata"]["labels"]["controller-revision-hash"] != old_hash]
        for p in new:
            if (p.get("status") or {}).get("phase") != "Running":
                await set_pod_status(client, p, "Running", ready=True)
        return len(new), len(pods)

    seen_both_old_gone = False
    for _ in range(400):
        new, total = await updated_count()
        assert total - new <= 2 and not (new == 0 and total == 0)
        seen_both_old_gone |= new == 2
        if seen_both_old_gone:
            break
        import asyncio
        await asyncio.sleep(0.05)
    assert seen_both_old_gone
    d = await eventually(lambda: _ds_with(client, "roll", lambda s: s.get("updatedNumberScheduled") == 2 and s.get("numberAvailable") == 2))
    assert d["status"]["observedGeneration"] == 2


async def _ds_with(client: Client, name: str, pred) -> dict | None:  # type: ignore[no-untyped-def]
    d = await client.get(DAEMONSETS, name, namespace=NS)
    return d if pred(d.get("status") or {}) else None
