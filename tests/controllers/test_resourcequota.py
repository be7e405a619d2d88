"""ResourceQuota: the resourcequota-controller's status and the ResourceQuota admission plugin.

Facts of kube 1.33 recorded here: status.hard mirrors spec.hard and status.used names every hard
resource (`0` when unused); a Succeeded/Failed pod stops counting for `pods` and compute but
still counts for `count/pods`; admission refuses with 403 `exceeded quota: q, requested: pods=1,
used: pods=2, limited: pods=2` (only the exceeded resources, sorted), with `failed quota: q: must
specify limits.memory for: c; requests.cpu for: c` when a tracked compute resource is left out,
and `status unknown for quota: q, resources: pods` before usage was computed; it charges
status.used at once, so concurrent creates cannot overrun the quota; BestEffort/NotBestEffort
and PriorityClass scopes pick which pods count.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest

from pykube_server.api import errors
from pykube_server.api.quota import pod_constraints, pod_usage, service_usage, to_wire
from pykube_server.client.rest import CONFIGMAPS, DEPLOYMENTS, PODS, SERVICES, Client, Resource
from pykube_server.testing import LocalCluster
from tests.controllers import controllers_running, eventually

QUOTAS = Resource("", "v1", "resourcequotas")
NS = "default"


@pytest.fixture
async def client(cluster: LocalCluster) -> AsyncIterator[Client]:
    async with controllers_running(cluster, ["resourcequota-controller"]) as c:
        yield c


def pod(name: str, requests: dict | None = None, limits: dict | None = None, **spec: object) -> dict:
    resources = {k: v for k, v in (("requests", requests), ("limits", limits)) if v}
    return {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": name},
            "spec": {"containers": [{"name": "c", "image": "busybox", "resources": resources}], **spec}}


def quota(name: str, hard: dict, **spec: object) -> dict:
    return {"apiVersion": "v1", "kind": "ResourceQuota", "metadata": {"name": name}, "spec": {"hard": hard, **spec}}


async def wait_used(client: Client, name: str, used: dict) -> dict:
    async def check() -> dict | None:
        q = await client.get(QUOTAS, name, namespace=NS)
        return q if (q.get("status") or {}).get("used") == used else None
    try:
        return await eventually(check, timeout=15)
    except AssertionError:
        q = await client.get(QUOTAS, name, namespace=NS)
        raise AssertionError(f"used is {q.get('status')}, wanted {used}") from None


async def finish(client: Client, name: str) -> None:
    fresh = await client.get(PODS, name, namespace=NS)
    await client.update(PODS, {**fresh, "status": {"phase": "Succeeded"}}, subresource="status")


def test_usage_arithmetic() -> None:
    p = pod("p", requests={"cpu": "250m", "memory": "64Mi"}, limits={"cpu": "500m", "memory": "128Mi"})
    p["spec"]["initContainers"] = [{"name": "i", "image": "x", "resources": {"requests": {"cpu": "1"}}}]
    assert to_wire(pod_usage(p)) == {"count/pods": "1", "cpu": "1", "limits.cpu": "500m", "limits.memory": "128Mi",
                                     "memory": "64Mi", "pods": "1", "requests.cpu": "1", "requests.memory": "64Mi"}
    p["status"] = {"phase": "Failed"}
    assert to_wire(pod_usage(p)) == {"count/pods": "1"}
    assert pod_constraints(pod("x"), ["requests.cpu", "limits.memory", "pods"]) == \
        "must specify limits.memory for: c; requests.cpu for: c"
    svc = {"spec": {"type": "NodePort", "ports": [{"port": 1}, {"port": 2}]}}
    assert to_wire(service_usage(svc)) == {"count/services": "1", "services": "1", "services.nodeports": "2"}


async def test_pod_count_status_and_exceeded_text(client: Client) -> None:
    await client.create(QUOTAS, quota("q", {"pods": "2", "count/pods": "5"}), namespace=NS)
    q = await wait_used(client, "q", {"count/pods": "0", "pods": "0"})
    assert q["status"]["hard"] == {"count/pods": "5", "pods": "2"}
    await client.create(PODS, pod("p1"), namespace=NS)
    await client.create(PODS, pod("p2"), namespace=NS)
    # charged by admission, before the controller looks
    q = await client.get(QUOTAS, "q", namespace=NS)
    assert q["status"]["used"] == {"count/pods": "2", "pods": "2"}
    with pytest.raises(errors.Forbidden) as refused:
        await client.create(PODS, pod("p3"), namespace=NS)
    assert refused.value.message == 'pods "p3" is forbidden: exceeded quota: q, requested: pods=1, used: pods=2, limited: pods=2'
    assert refused.value.details == {"name": "p3", "kind": "pods"}
    # a finished pod gives its `pods` back, but still counts as an object
    await finish(client, "p1")
    await wait_used(client, "q", {"count/pods": "2", "pods": "1"})
    await client.create(PODS, pod("p3"), namespace=NS)
    await client.delete(PODS, "p1", namespace=NS)
    await wait_used(client, "q", {"count/pods": "2", "pods": "2"})


async def test_compute_resources_must_be_stated_and_fit(client: Client) -> None:
    await client.create(QUOTAS, quota("compute", {"requests.cpu": "1", "limits.memory": "1Gi"}), namespace=NS)
    await wait_used(client, "compute", {"limits.memory": "0", "requests.cpu": "0"})
    with pytest.raises(errors.Forbidden) as refused:
        await client.create(PODS, pod("bare"), namespace=NS)
    assert refused.value.message == ('pods "bare" is forbidden: failed quota: compute: must specify '
                                     'limits.memory for: c; requests.cpu for: c')
    await client.create(PODS, pod("a", requests={"cpu": "600m"}, limits={"memory": "512Mi"}), namespace=NS)
    q = await client.get(QUOTAS, "compute", namespace=NS)
    assert q["status"]["used"] == {"limits.memory": "512Mi", "requests.cpu": "600m"}
    with pytest.raises(errors.Forbidden) as refused:
        await client.create(PODS, pod("b", requests={"cpu": "600m"}, limits={"memory": "256Mi"}), namespace=NS)
    assert refused.value.message == ('pods "b" is forbidden: exceeded quota: compute, requested: requests.cpu=600m, '
                                     'used: requests.cpu=600m, limited: requests.cpu=1')
    await client.create(PODS, pod("c", requests={"cpu": "400m"}, limits={"memory": "512Mi"}), namespace=NS)
    await wait_used(client, "compute", {"limits.memory": "1Gi", "requests.cpu": "1"})


async def test_scopes_pick_the_pods(client: Client) -> None:
    await client.create(QUOTAS, quota("be", {"pods": "1"}, scopes=["BestEffort"]), namespace=NS)
    await client.create(QUOTAS, quota("pc", {"pods": "1"}, scopeSelector={"matchExpressions": [
        {"scopeName": "PriorityClass", "operator": "In", "values": ["system-cluster-critical"]}]}), namespace=NS)
    await wait_used(client, "be", {"pods": "0"})
    await wait_used(client, "pc", {"pods": "0"})
    await client.create(PODS, pod("free"), namespace=NS)
    with pytest.raises(errors.Forbidden, match="exceeded quota: be"):
        await client.create(PODS, pod("free2"), namespace=NS)
    # not BestEffort: the BestEffort quota does not see it
    await client.create(PODS, pod("paid", requests={"cpu": "100m"}), namespace=NS)
    await client.create(PODS, pod("crit", requests={"cpu": "100m"}, priorityClassName="system-cluster-critical"), namespace=NS)
    with pytest.raises(errors.Forbidden, match="exceeded quota: pc"):
        await client.create(PODS, pod("crit2", requests={"cpu": "100m"}, priorityClassName="system-cluster-critical"),
                            namespace=NS)
    await wait_used(client, "be", {"pods": "1"})


async def test_object_counts(client: Client) -> None:
    await client.create(QUOTAS, quota("objects", {"configmaps": "2", "count/services": "5", "services.nodeports": "1",
                                                   "count/deployments.apps": "3"}), namespace=NS)
    q = await eventually(lambda: _with_used(client, "objects"), timeout=15)
    # the `kubernetes` Service lives in default: it counts
    assert q["status"]["used"] == {"configmaps": "0", "count/deployments.apps": "0", "count/services": "1",
                                   "services.nodeports": "0"}
    await client.create(CONFIGMAPS, {"metadata": {"name": "a"}}, namespace=NS)
    await client.create(CONFIGMAPS, {"metadata": {"name": "b"}}, namespace=NS)
    with pytest.raises(errors.Forbidden) as refused:
        await client.create(CONFIGMAPS, {"metadata": {"name": "c"}}, namespace=NS)
    assert refused.value.message == ('configmaps "c" is forbidden: exceeded quota: objects, requested: configmaps=1, '
                                     'used: configmaps=2, limited: configmaps=2')
    svc = {"metadata": {"name": "np"}, "spec": {"type": "NodePort", "ports": [{"name": "a", "port": 80}, {"name": "b", "port": 81}]}}
    with pytest.raises(errors.Forbidden) as refused:
        await client.create(SERVICES, svc, namespace=NS)
    assert refused.value.message == ('services "np" is forbidden: exceeded quota: objects, requested: services.nodeports=2, '
                                     'used: services.nodeports=0, limited: services.nodeports=1')
    await client.delete(CONFIGMAPS, "a", namespace=NS)
    await wait_used(client, "objects", {"configmaps": "1", "count/deployments.apps": "0", "count/services": "1",
                                        "services.nodeports": "0"})
    # any kind counts as `count/<resource>.<group>`, charged on create
    await client.create(DEPLOYMENTS, {"metadata": {"name": "d"}, "spec": {
        "selector": {"matchLabels": {"a": "b"}},
        "template": {"metadata": {"labels": {"a": "b"}}, "spec": {"containers": [{"name": "c", "image": "x"}]}}}},
        namespace=NS)
    assert (await client.get(QUOTAS, "objects", namespace=NS))["status"]["used"]["count/deployments.apps"] == "1"


async def _with_used(client: Client, name: str) -> dict | None:
    q = await client.get(QUOTAS, name, namespace=NS)
    return q if (q.get("status") or {}).get("used") else None


async def test_concurrent_creates_cannot_overrun(client: Client) -> None:
    await client.create(QUOTAS, quota("three", {"pods": "3"}), namespace=NS)
    await wait_used(client, "three", {"pods": "0"})
    results = await asyncio.gather(*(client.create(PODS, pod(f"c{i}"), namespace=NS) for i in range(20)),
                                   return_exceptions=True)
    assert sum(1 for r in results if isinstance(r, dict)) == 3
    assert all(isinstance(r, errors.Forbidden) for r in results if not isinstance(r, dict))


async def test_quota_without_usage_yet_refuses(cluster: LocalCluster) -> None:
    """Without the controller, a quota whose status names hard but not used refuses."""
    async with Client.from_kubeconfig(cluster.kubeconfig) as client:
        created = await client.create(QUOTAS, quota("q", {"pods": "1"}), namespace=NS)
        # no status.hard yet: the quota does not apply
        await client.create(PODS, pod("early"), namespace=NS)
        await client.update(QUOTAS, {**created, "status": {"hard": {"pods": "1"}}}, subresource="status")
        with pytest.raises(errors.Forbidden) as refused:
            await client.create(PODS, pod("late"), namespace=NS)
        assert refused.value.message == 'pods "late" is forbidden: status unknown for quota: q, resources: pods'
        # a dry run is judged but never charged
        fresh = await client.get(QUOTAS, "q", namespace=NS)
        await client.update(QUOTAS, {**fresh, "status": {"hard": {"pods": "1"}, "used": {"pods": "0"}}}, subresource="status")
        await client.create(PODS, pod("dry"), namespace=NS, dry_run=True)
        assert (await client.get(QUOTAS, "q", namespace=NS))["status"]["used"] == {"pods": "0"}


async def test_count_group_resource_is_given_back_on_delete(client: Client) -> None:
    """kube's quota monitor watches every quotable kind: deleting a ReplicaSet gives back
    `count/replicasets.apps` at once, not at the next full resync (the sync period here is 5 min)."""
    replicasets = Resource("apps", "v1", "replicasets")
    await client.create(QUOTAS, quota("rs", {"count/replicasets.apps": "2"}), namespace=NS)
    await wait_used(client, "rs", {"count/replicasets.apps": "0"})
    template = {"metadata": {"labels": {"a": "b"}}, "spec": {"containers": [{"name": "c", "image": "x"}]}}
    for name in ("one", "two"):
        await client.create(replicasets, {"metadata": {"name": name}, "spec": {
            "replicas": 0, "selector": {"matchLabels": {"a": "b"}}, "template": template}}, namespace=NS)
    await wait_used(client, "rs", {"count/replicasets.apps": "2"})
    with pytest.raises(errors.Forbidden) as refused:
        await client.create(replicasets, {"metadata": {"name": "three"}, "spec": {
            "replicas": 0, "selector": {"matchLabels": {"a": "b"}}, "template": template}}, namespace=NS)
    assert refused.value.message == ('replicasets.apps "three" is forbidden: exceeded quota: rs, requested: '
                                     'count/replicasets.apps=1, used: count/replicasets.apps=2, '
                                     'limited: count/replicasets.apps=2')
    await client.delete(replicasets, "one", namespace=NS)
    await wait_used(client, "rs", {"count/replicasets.apps": "1"})
