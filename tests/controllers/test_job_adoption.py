"""job-controller claiming pods the way kube-controller-manager 1.33 does (ControllerRefManager):
an orphan whose labels match a Job's selector is adopted (controllerRef with
blockOwnerDeletion, plus the batch.kubernetes.io/job-tracking finalizer), a pod the Job owns
whose labels stop matching is released (its ownerReference and the finalizer removed), and a
pod controlled by someone else is never taken over.
"""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from pykube_server.api import errors
from pykube_server.client.rest import JOBS, PODS, Client, PatchType
from pykube_server.controllers.controllerref import controller_ref
from pykube_server.controllers.job import TRACKING_FINALIZER, pod_requests
from pykube_server.controllers.framework import Request
from pykube_server.testing import LocalCluster

from tests.controllers.workloads import TEMPLATE_SPEC, eventually, pods_of, running

NS = "default"


@pytest.fixture
async def client(cluster: LocalCluster) -> AsyncIterator[Client]:
    async with running(cluster, ["job-controller"]) as c:
        yield c


def _job(name: str) -> dict:
    return {"apiVersion": "batch/v1", "kind": "Job", "metadata": {"name": name},
            "spec": {"completions": 4, "parallelism": 2, "template": {"spec": TEMPLATE_SPEC}}}


async def _pod(client: Client, name: str) -> dict:
    return await client.get(PODS, name, namespace=NS)


async def test_orphan_is_adopted_and_unlabelled_pod_released(client: Client) -> None:
    job = await client.create(JOBS, _job("adopt"), namespace=NS)
    uid = job["metadata"]["uid"]

    async def two() -> tuple[list[dict]] | None:
        pods = await pods_of(client, NS, "job-name=adopt")
        return (pods,) if len(pods) == 2 else None
    target = (await eventually(two))[0][0]["metadata"]["name"]

    async def orphan() -> bool:
        pod = await _pod(client, target)
        pod["metadata"]["ownerReferences"] = None
        pod["metadata"]["finalizers"] = None
        try:
            await client.update(PODS, pod)
        except errors.Conflict:
            return False
        return True
    await eventually(orphan)

    async def adopted() -> dict | None:
        pod = await _pod(client, target)
        return pod if controller_ref(pod) else None
    pod = await eventually(adopted)
    ref = controller_ref(pod)
    assert ref == {"apiVersion": "batch/v1", "kind": "Job", "name": "adopt", "uid": uid,
                   "controller": True, "blockOwnerDeletion": True}
    assert TRACKING_FINALIZER in pod["metadata"]["finalizers"]
    assert len(await pods_of(client, NS, "job-name=adopt")) == 2  # adopted, not replaced

    await client.patch(PODS, target, {"metadata": {"labels": None}}, namespace=NS, patch_type=PatchType.MERGE)

    async def released() -> dict | None:
        pod = await _pod(client, target)
        return pod if not pod["metadata"].get("ownerReferences") else None
    pod = await eventually(released)
    assert TRACKING_FINALIZER not in (pod["metadata"].get("finalizers") or [])


async def test_pod_controlled_by_another_owner_is_not_adopted(client: Client) -> None:
    job = await client.create(JOBS, _job("other"), namespace=NS)
    labels = job["spec"]["template"]["metadata"]["labels"]
    foreign_ref = {"apiVersion": "v1", "kind": "ReplicationController", "name": "rc", "uid": "1234",
                   "controller": True}
    await client.create(PODS, {"metadata": {"name": "foreign", "labels": labels, "ownerReferences": [foreign_ref]},
                               "spec": TEMPLATE_SPEC}, namespace=NS)

    async def created() -> bool:
        return len(await pods_of(client, NS, "job-name=other")) == 3
    await eventually(created)
    pod = await _pod(client, "foreign")
    assert pod["metadata"]["ownerReferences"] == [foreign_ref]


def test_orphan_pod_events_map_to_matching_jobs() -> None:
    class Jobs:
        def list(self, selector: object = None, *, namespace: str = "") -> list[dict]:
            return [{"metadata": {"name": "a", "namespace": namespace},
                     "spec": {"selector": {"matchLabels": {"app": "x"}}}},
                    {"metadata": {"name": "b", "namespace": namespace},
                     "spec": {"selector": {"matchLabels": {"app": "y"}}}}]

    mapper = pod_requests(Jobs())  # type: ignore[arg-type]
    orphan = {"metadata": {"name": "p", "namespace": "ns", "labels": {"app": "x"}}}
    assert list(mapper(orphan)) == [Request("ns", "a")]
    owned = {"metadata": {"name": "p", "namespace": "ns", "labels": {"app": "x"},
                          "ownerReferences": [{"kind": "Job", "name": "b", "controller": True}]}}
    assert list(mapper(owned)) == [Request("ns", "b")]
    deleting = {"metadata": {**orphan["metadata"], "deletionTimestamp": "2026-01-01T00:00:00Z"}}
    assert list(mapper(deleting)) == []
