"""statefulset-controller against an in-process API server.

Facts from kube-controller-manager 1.33 recorded here: pods are `<set>-<ordinal>` with hostname
= pod name and subdomain = serviceName, labels `statefulset.kubernetes.io/pod-name`,
`apps.kubernetes.io/pod-index` and `controller-revision-hash` = the ControllerRevision's name
`<set>-<hash>`; claims are `<template>-<set>-<ordinal>` carrying the selector's labels;
OrderedReady waits for each pod to be Running and Ready; RollingUpdate replaces from the highest
ordinal down to the partition; events read "create Pod web-0 in StatefulSet web successful".
"""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from pykube_server.client.rest import CONTROLLERREVISIONS, PERSISTENTVOLUMECLAIMS, STATEFULSETS, Client
from pykube_server.testing import LocalCluster

from tests.controllers.workloads import CONTAINERS, event_messages, eventually, pods_of, running, set_pod_status

NS = "default"


def sts(name: str, replicas: int = 3, **spec: object) -> dict:
    return {"apiVersion": "apps/v1", "kind": "StatefulSet", "metadata": {"name": name},
            "spec": {"replicas": replicas, "serviceName": name, "selector": {"matchLabels": {"app": name}},
                     "template": {"metadata": {"labels": {"app": name}}, "spec": {"containers": CONTAINERS}},
                     **spec}}


@pytest.fixture
async def client(cluster: LocalCluster) -> AsyncIterator[Client]:
    async with running(cluster, ["statefulset-controller"]) as c:
        yield c


async def live(client: Client, app: str) -> dict[str, dict]:
    return {p["metadata"]["name"]: p for p in await pods_of(client, NS, f"app={app}") if not p["metadata"].get("deletionTimestamp")}


async def names_are(client: Client, app: str, names: set[str]) -> dict[str, dict] | None:
    pods = await live(client, app)
    return pods if set(pods) == names else None


async def make_ready(client: Client, pod: dict) -> None:
    await set_pod_status(client, pod, "Running", ready=True)


async def test_ordered_ready_with_claims(client: Client) -> None:
    claim = {"metadata": {"name": "www"}, "spec": {"accessModes": ["ReadWriteOnce"],
                                                   "resources": {"requests": {"storage": "1Gi"}}}}
    await client.create(STATEFULSETS, sts("web", volumeClaimTemplates=[claim]), namespace=NS)
    pods = await eventually(lambda: names_are(client, "web", {"web-0"}))
    pod = pods["web-0"]
    labels = pod["metadata"]["labels"]
    assert labels["statefulset.kubernetes.io/pod-name"] == "web-0" and labels["apps.kubernetes.io/pod-index"] == "0"
    assert labels["controller-revision-hash"].startswith("web-")
    assert pod["spec"]["hostname"] == "web-0" and pod["spec"]["subdomain"] == "web"
    assert {"name": "www", "persistentVolumeClaim": {"claimName": "www-web-0"}} in pod["spec"]["volumes"]
    pvc = await client.get(PERSISTENTVOLUMECLAIMS, "www-web-0", namespace=NS)
    assert pvc["metadata"]["labels"] == {"app": "web"}
    assert len(await live(client, "web")) == 1  # web-1 waits for web-0 to be Running and Ready
    await make_ready(client, pod)
    pods = await eventually(lambda: names_are(client, "web", {"web-0", "web-1"}))
    await make_ready(client, pods["web-1"])
    pods = await eventually(lambda: names_are(client, "web", {"web-0", "web-1", "web-2"}))
    await make_ready(client, pods["web-2"])
    s = await eventually(lambda: _sts_with(client, "web", lambda st: st.get("readyReplicas") == 3))
    st = s["status"]
    assert st["replicas"] == st["availableReplicas"] == st["currentReplicas"] == st["updatedReplicas"] == 3
    assert st["currentRevision"] == st["updateRevision"] == labels["controller-revision-hash"]
    assert st["observedGeneration"] == s["metadata"]["generation"]
    revs = (await client.list(CONTROLLERREVISIONS, namespace=NS))["items"]
    assert [r["metadata"]["name"] for r in revs] == [st["updateRevision"]] and revs[0]["revision"] == 1
    assert "create Pod web-0 in StatefulSet web successful" in await event_messages(client, NS, "web")
    assert "create Claim www-web-0 Pod web-0 in StatefulSet web success" in await event_messages(client, NS, "web")
    # scale down removes the highest ordinal first
    await client.patch(STATEFULSETS, "web", {"spec": {"replicas": 1}}, namespace=NS)
    await eventually(lambda: names_are(client, "web", {"web-0"}))
    messages = await event_messages(client, NS, "web")
    deleted = [m for m in messages if m.startswith("delete Pod")]
    assert deleted == ["delete Pod web-2 in StatefulSet web successful", "delete Pod web-1 in StatefulSet web successful"]


async def test_parallel_and_rolling_update_with_partition(client: Client) -> None:
    await client.create(STATEFULSETS, sts("par", podManagementPolicy="Parallel",
                                          updateStrategy={"type": "RollingUpdate", "rollingUpdate": {"partition": 1}}),
                        namespace=NS)
    pods = await eventually(lambda: names_are(client, "par", {"par-0", "par-1", "par-2"}))
    for pod in pods.values():
        await make_ready(client, pod)
    s = await eventually(lambda: _sts_with(client, "par", lambda st: st.get("readyReplicas") == 3))
    old_rev = s["status"]["currentRevision"]
    await client.patch(STATEFULSETS, "par", {"spec": {"template": {"metadata": {"annotations": {"v": "2"}}}}}, namespace=NS)
    s = await eventually(lambda: _sts_with(client, "par", lambda st: st.get("updateRevision") not in (None, old_rev)))
    new_rev = s["status"]["updateRevision"]

    async def pod_at(name: str, rev: str) -> dict | None:
        pod = (await live(client, "par")).get(name)
        return pod if pod and pod["metadata"]["labels"]["controller-revision-hash"] == rev else None
    new2 = await eventually(lambda: pod_at("par-2", new_rev))  # highest ordinal first
    assert (await live(client, "par"))["par-1"]["metadata"]["labels"]["controller-revision-hash"] == old_rev
    await make_ready(client, new2)
    new1 = await eventually(lambda: pod_at("par-1", new_rev))
    await make_ready(client, new1)
    s = await eventually(lambda: _sts_with(client, "par", lambda st: st.get("updatedReplicas") == 2 and st.get("readyReplicas") == 3))
    assert (await live(client, "par"))["par-0"]["metadata"]["labels"]["controller-revision-hash"] == old_rev  # below the partition
    assert s["status"]["currentRevision"] == old_rev


async def test_claim_retention_policy_owner_refs(client: Client) -> None:
    claim = {"metadata": {"name": "data"}, "spec": {"accessModes": ["ReadWriteOnce"], "resources": {"requests": {"storage": "1Gi"}}}}
    policy = {"whenDeleted": "Delete", "whenScaled": "Retain"}
    created = await client.create(STATEFULSETS, sts("ret", 1, volumeClaimTemplates=[claim],
                                                     persistentVolumeClaimRetentionPolicy=policy), namespace=NS)
    pvc = await eventually(lambda: _pvc(client, "data-ret-0"))
    [ref] = pvc["metadata"]["ownerReferences"]
    assert ref["kind"] == "StatefulSet" and ref["uid"] == created["metadata"]["uid"]


async def _pvc(client: Client, name: str) -> dict | None:
    try:
        return await client.get(PERSISTENTVOLUMECLAIMS, name, namespace=NS)
    except Exception:
        return None


async def _sts_with(client: Client, name: str, pred) -> dict | None:  # type: ignore[no-untyped-def]
    s = await client.get(STATEFULSETS, name, namespace=NS)
    return s if pred(s.get("status") or {}) else None
