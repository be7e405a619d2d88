"""disruption-controller status and the pods/eviction subresource, in-process.

Kube 1.33 facts recorded here: a budget's status carries currentHealthy, desiredHealthy,
expectedPods, disruptionsAllowed and observedGeneration, plus the DisruptionAllowed condition
(True/SufficientPods or False/InsufficientPods, empty message); minAvailable as an integer counts
the selected pods, maxUnavailable and percentages count the controllers' replicas (percentages
round up). An eviction that fits is 201 with a Success Status and takes one disruption; one that
does not is 429 TooManyRequests `Cannot evict pod as it would violate the pod's disruption
budget.` with a DisruptionBudget cause; a Pending pod is evicted regardless; a pod no budget
selects is simply deleted; the evicted pod first gets the DisruptionTarget condition.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest

from pykube_server.api import errors
from pykube_server.client.rest import DEPLOYMENTS, PODS, Client, Resource
from pykube_server.controllers.disruption import scaled
from pykube_server.testing import LocalCluster
from tests.controllers import controllers_running, eventually
from tests.controllers.workloads import CONTAINERS, set_pod_status

PDBS = Resource("policy", "v1", "poddisruptionbudgets")
NS = "default"


@pytest.fixture
async def client(cluster: LocalCluster) -> AsyncIterator[Client]:
    async with controllers_running(cluster, ["disruption-controller", "replicaset-controller",
                                             "deployment-controller"]) as c:
        yield c


def pod(name: str, app: str = "web") -> dict:
    return {"metadata": {"name": name, "labels": {"app": app}}, "spec": {"containers": CONTAINERS}}


def pdb(name: str, **spec: object) -> dict:
    return {"metadata": {"name": name}, "spec": {"selector": {"matchLabels": {"app": "web"}}, **spec}}


def eviction(name: str) -> dict:
    return {"apiVersion": "policy/v1", "kind": "Eviction", "metadata": {"name": name, "namespace": NS}}


async def running_pods(client: Client, *names: str) -> None:
    for name in names:
        created = await client.create(PODS, pod(name), namespace=NS)
        await set_pod_status(client, created, "Running", ready=True)


async def status_where(client: Client, name: str, **want: object) -> dict:
    async def check() -> dict | None:
        status = (await client.get(PDBS, name, namespace=NS)).get("status") or {}
        return status if all(status.get(k) == v for k, v in want.items()) else None
    try:
        return await eventually(check, timeout=15)
    except AssertionError:
        raise AssertionError(f"status is {(await client.get(PDBS, name, namespace=NS)).get('status')}, wanted {want}") from None


def test_scaled_rounds_up() -> None:
    assert scaled("50%", 3) == 2
    assert scaled("34%", 3) == 2
    assert scaled(2, 10) == 2


async def test_min_available_status_and_eviction(client: Client) -> None:
    await running_pods(client, "p1", "p2", "p3")
    created = await client.create(PDBS, pdb("budget", minAvailable=2), namespace=NS)
    assert created["status"] == {"currentHealthy": 0, "desiredHealthy": 0, "disruptionsAllowed": 0, "expectedPods": 0}
    status = await status_where(client, "budget", disruptionsAllowed=1, currentHealthy=3)
    assert (status["desiredHealthy"], status["expectedPods"], status["observedGeneration"]) == (2, 3, 1)
    [cond] = status["conditions"]
    assert (cond["type"], cond["status"], cond["reason"], cond["message"]) == ("DisruptionAllowed", "True", "SufficientPods", "")

    answer = await client.create(PODS, eviction("p1"), namespace=NS, name="p1", subresource="eviction")
    assert answer == {"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Success", "code": 201}
    with pytest.raises(errors.NotFound):
        await client.get(PODS, "p1", namespace=NS)
    status = await status_where(client, "budget", disruptionsAllowed=0, currentHealthy=2)
    assert status["conditions"][0]["reason"] == "InsufficientPods" and status["conditions"][0]["status"] == "False"

    with pytest.raises(errors.TooManyRequests) as refused:
        await client.create(PODS, eviction("p2"), namespace=NS, name="p2", subresource="eviction")
    assert refused.value.message == "Cannot evict pod as it would violate the pod's disruption budget."
    assert refused.value.details == {"causes": [{"reason": "DisruptionBudget",
                                                 "message": "The disruption budget budget needs 2 healthy pods and has 2 currently"}]}
    assert (await client.get(PODS, "p2", namespace=NS))["metadata"]["name"] == "p2"

    # a Pending pod does not count against the budget
    await client.create(PODS, pod("pending"), namespace=NS)
    await client.create(PODS, eviction("pending"), namespace=NS, name="pending", subresource="eviction")
    with pytest.raises(errors.NotFound):
        await client.get(PODS, "pending", namespace=NS)


async def test_unmanaged_pods_under_max_unavailable(client: Client) -> None:
    await running_pods(client, "a1", "a2")
    await client.create(PDBS, pdb("one", maxUnavailable=1), namespace=NS)
    # bare pods under maxUnavailable are unmanaged: the expected count is 0 (and a warning event)
    status = await status_where(client, "one", expectedPods=0, currentHealthy=2)
    assert status["desiredHealthy"] == 0 and status["disruptionsAllowed"] == 2


async def test_concurrent_evictions_take_one_disruption_each(client: Client) -> None:
    await running_pods(client, "c1", "c2", "c3")
    await client.create(PDBS, pdb("tight", minAvailable=2), namespace=NS)
    await status_where(client, "tight", disruptionsAllowed=1)
    results = await asyncio.gather(*(client.create(PODS, eviction(n), namespace=NS, name=n, subresource="eviction")
                                     for n in ("c1", "c2", "c3")), return_exceptions=True)
    assert sum(1 for r in results if isinstance(r, dict)) == 1
    assert sum(1 for r in results if isinstance(r, errors.TooManyRequests)) == 2


async def test_percentages_count_the_deployments_replicas(client: Client) -> None:
    template = {"metadata": {"labels": {"app": "web"}}, "spec": {"containers": CONTAINERS}}
    await client.create(DEPLOYMENTS, {"metadata": {"name": "web"}, "spec": {
        "replicas": 4, "selector": {"matchLabels": {"app": "web"}}, "template": template}}, namespace=NS)

    async def four_pods() -> list[dict] | None:
        pods = (await client.list(PODS, namespace=NS, label_selector="app=web"))["items"]
        return pods if len(pods) == 4 else None

    for p in await eventually(four_pods, timeout=20):
        await set_pod_status(client, p, "Running", ready=True)
    await client.create(PDBS, pdb("half", maxUnavailable="50%"), namespace=NS)
    status = await status_where(client, "half", expectedPods=4, currentHealthy=4)
    assert (status["desiredHealthy"], status["disruptionsAllowed"]) == (2, 2)
    await client.create(PDBS, {"metadata": {"name": "most"}, "spec": {"selector": {"matchLabels": {"app": "other"}},
                                                                      "minAvailable": "80%"}}, namespace=NS)
    status = await status_where(client, "most", expectedPods=0, observedGeneration=1)
    assert status["disruptionsAllowed"] == 0 and status["conditions"][0]["reason"] == "InsufficientPods"


async def test_eviction_without_budget_and_bad_requests(client: Client) -> None:
    await running_pods(client, "free")
    evicted = await client.create(PODS, eviction("free"), namespace=NS, name="free", subresource="eviction")
    assert evicted["status"] == "Success"
    with pytest.raises(errors.NotFound) as missing:
        await client.create(PODS, eviction("free"), namespace=NS, name="free", subresource="eviction")
    assert missing.value.message == 'pods "free" not found'
    await running_pods(client, "x")
    with pytest.raises(errors.BadRequest) as mismatch:
        await client.create(PODS, eviction("y"), namespace=NS, name="x", subresource="eviction")
    assert mismatch.value.message == "name in URL does not match name in Eviction object"
    await client.create(PDBS, pdb("b1", minAvailable=0), namespace=NS)
    await client.create(PDBS, pdb("b2", minAvailable=0), namespace=NS)
    with pytest.raises(errors.InternalError) as two:
        await client.create(PODS, eviction("x"), namespace=NS, name="x", subresource="eviction")
    assert two.value.message == ("Internal error occurred: This pod has more than one PodDisruptionBudget, which the "
                                 "eviction subresource does not support.")


async def test_evicted_pod_gets_disruption_target_before_deletion(cluster: LocalCluster) -> None:
    """A pod bound to a node waits for its kubelet: the condition is visible while it terminates."""
    async with Client.from_kubeconfig(cluster.kubeconfig) as client:
        created = await client.create(PODS, {**pod("bound"), "spec": {"containers": CONTAINERS, "nodeName": "n1"}},
                                      namespace=NS)
        await set_pod_status(client, created, "Running", ready=True)
        await client.create(PODS, eviction("bound"), namespace=NS, name="bound", subresource="eviction")
        terminating = await client.get(PODS, "bound", namespace=NS)
        assert terminating["metadata"]["deletionTimestamp"]
        cond = next(c for c in terminating["status"]["conditions"] if c["type"] == "DisruptionTarget")
        assert (cond["status"], cond["reason"], cond["message"]) == ("True", "EvictionByEvictionAPI", "Eviction API: evicting")
