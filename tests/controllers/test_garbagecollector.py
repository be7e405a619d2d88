"""garbage-collector-controller and DELETE propagation against a real server.

Facts from Kubernetes recorded here: DELETE with propagationPolicy Foreground adds the
`foregroundDeletion` finalizer and keeps the object (deletionTimestamp set); Orphan, or
orphanDependents=true, adds `orphan`; without a policy ReplicationControllers (core v1) and
Jobs (batch/v1) orphan for backwards compatibility while everything else (apps/v1 included)
goes Background; a later DELETE with another policy swaps the finalizer, and Background drops
it and deletes. The collector deletes dependents whose owners are all gone, only trims dangling
references when a live owner remains, holds a foreground owner until the dependents with
blockOwnerDeletion are gone, and for `orphan` removes the owner's references before letting the
owner go.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest

from pykube_server.api import errors
from pykube_server.client.rest import CONFIGMAPS, DEPLOYMENTS, JOBS, SECRETS, Client, Resource
from pykube_server.testing import LocalCluster
from tests.controllers import controllers_running, eventually

RCS = Resource("", "v1", "replicationcontrollers")
TEMPLATE = {"metadata": {"labels": {"app": "x"}}, "spec": {"containers": [{"name": "c", "image": "busybox"}]}}
JOB_TEMPLATE = {"spec": {"containers": [{"name": "c", "image": "busybox"}], "restartPolicy": "Never"}}


@pytest.fixture
async def plain(cluster: LocalCluster) -> AsyncIterator[Client]:
    async with Client.from_kubeconfig(cluster.kubeconfig) as c:
        yield c


@pytest.fixture
async def client(cluster: LocalCluster) -> AsyncIterator[Client]:
    async with controllers_running(cluster, ["garbage-collector-controller"]) as c:
        yield c


def owned_by(owner: dict[str, Any], *, block: bool | None = None) -> dict[str, Any]:
    ref = {"apiVersion": owner["apiVersion"], "kind": owner["kind"], "name": owner["metadata"]["name"],
           "uid": owner["metadata"]["uid"]}
    if block is not None:
        ref["blockOwnerDeletion"] = block
    return ref


async def absent(client: Client, resource: Resource, name: str) -> bool:
    try:
        await client.get(resource, name, namespace="default")
    except errors.NotFound:
        return True
    return False


async def cm(client: Client, name: str, *refs: dict[str, Any], finalizers: list[str] | None = None) -> dict[str, Any]:
    meta: dict[str, Any] = {"name": name}
    if refs:
        meta["ownerReferences"] = list(refs)
    if finalizers:
        meta["finalizers"] = finalizers
    return await client.create(CONFIGMAPS, {"apiVersion": "v1", "kind": "ConfigMap", "metadata": meta},
                               namespace="default")


# -- the server side ----------------------------------------------------------------------------
@pytest.mark.parametrize(("options", "finalizer"), [
    ({"propagation_policy": "Foreground"}, "foregroundDeletion"),
    ({"propagation_policy": "Orphan"}, "orphan"),
], ids=["foreground", "orphan"])
async def test_delete_policy_adds_finalizer(plain: Client, options: dict[str, str], finalizer: str) -> None:
    await cm(plain, "owner")
    answer = await plain.delete(CONFIGMAPS, "owner", namespace="default", **options)
    kept = await plain.get(CONFIGMAPS, "owner", namespace="default")
    assert kept["metadata"]["finalizers"] == [finalizer]
    assert kept["metadata"]["deletionTimestamp"] and kept["metadata"]["deletionGracePeriodSeconds"] == 0
    assert answer["kind"] == "ConfigMap"


async def test_orphan_dependents_option_and_policy_swap(plain: Client) -> None:
    await cm(plain, "owner", finalizers=["example.com/keep"])
    await plain.request("DELETE", CONFIGMAPS.path(namespace="default", name="owner"),
                        body={"kind": "DeleteOptions", "apiVersion": "v1", "orphanDependents": True})
    assert (await plain.get(CONFIGMAPS, "owner", namespace="default"))["metadata"]["finalizers"] == [
        "example.com/keep", "orphan"]
    await plain.delete(CONFIGMAPS, "owner", namespace="default", propagation_policy="Foreground")
    assert (await plain.get(CONFIGMAPS, "owner", namespace="default"))["metadata"]["finalizers"] == [
        "example.com/keep", "foregroundDeletion"]
    await plain.delete(CONFIGMAPS, "owner", namespace="default", propagation_policy="Background")
    assert (await plain.get(CONFIGMAPS, "owner", namespace="default"))["metadata"]["finalizers"] == [
        "example.com/keep"]


@pytest.mark.parametrize(("resource", "body", "default_finalizers"), [
    (RCS, {"metadata": {"name": "o"}, "spec": {"replicas": 0, "selector": {"app": "x"}, "template": TEMPLATE}},
     ["orphan"]),
    (JOBS, {"metadata": {"name": "o"}, "spec": {"template": JOB_TEMPLATE}}, ["orphan"]),
    (DEPLOYMENTS, {"metadata": {"name": "o"}, "spec": {"replicas": 0, "selector": {"matchLabels": {"app": "x"}},
                                                       "template": TEMPLATE}}, None),
], ids=["replicationcontroller-v1", "job-batch-v1", "deployment-apps-v1"])
async def test_default_policy_per_kind(plain: Client, resource: Resource, body: dict[str, Any],
                                       default_finalizers: list[str] | None) -> None:
    await plain.create(resource, body, namespace="default")
    await plain.delete(resource, "o", namespace="default")
    if default_finalizers is None:
        assert await absent(plain, resource, "o")
    else:
        assert (await plain.get(resource, "o", namespace="default"))["metadata"]["finalizers"] == default_finalizers


# -- the collector -----------------------------------------------------------------------------
async def test_background_deletes_dependents_of_gone_owner(client: Client) -> None:
    owner = await cm(client, "owner")
    await client.create(SECRETS, {"metadata": {"name": "dep", "ownerReferences": [owned_by(owner)]}}, namespace="default")
    await cm(client, "grandchild", owned_by(await client.get(SECRETS, "dep", namespace="default")))
    await client.delete(CONFIGMAPS, "owner", namespace="default")
    await eventually(lambda: absent(client, SECRETS, "dep"))
    await eventually(lambda: absent(client, CONFIGMAPS, "grandchild"))


async def test_dependent_of_never_existing_owner_is_deleted(client: Client) -> None:
    ghost = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "ghost", "uid": "0d6d2b8e-0000-0000-0000-000000000000"}}
    await cm(client, "orphaned", owned_by(ghost))
    await eventually(lambda: absent(client, CONFIGMAPS, "orphaned"))


async def test_live_owner_keeps_dependent_and_dangling_ref_is_removed(client: Client) -> None:
    first, second = await cm(client, "first"), await cm(client, "second")
    await cm(client, "shared", owned_by(first), owned_by(second))
    await client.delete(CONFIGMAPS, "first", namespace="default")

    async def trimmed():  # type: ignore[no-untyped-def]
        refs = (await client.get(CONFIGMAPS, "shared", namespace="default"))["metadata"].get("ownerReferences")
        return refs == [owned_by(second)]

    await eventually(trimmed)


async def test_foreground_waits_for_blocking_dependents(client: Client) -> None:
    owner = await cm(client, "owner")
    await cm(client, "blocker", owned_by(owner, block=True), finalizers=["example.com/hold"])
    await cm(client, "free", owned_by(owner))
    await client.delete(CONFIGMAPS, "owner", namespace="default", propagation_policy="Foreground")

    async def blocker_deleting():  # type: ignore[no-untyped-def]
        return (await client.get(CONFIGMAPS, "blocker", namespace="default"))["metadata"].get("deletionTimestamp")

    await eventually(blocker_deleting)
    await eventually(lambda: absent(client, CONFIGMAPS, "free"))
    held = await client.get(CONFIGMAPS, "owner", namespace="default")
    assert held["metadata"]["finalizers"] == ["foregroundDeletion"]
    await client.patch(CONFIGMAPS, "blocker", {"metadata": {"finalizers": None}}, namespace="default")
    await eventually(lambda: absent(client, CONFIGMAPS, "owner"))


async def test_orphan_keeps_dependents_without_the_reference(client: Client) -> None:
    owner, other = await cm(client, "owner"), await cm(client, "other")
    await cm(client, "child", owned_by(owner, block=True), owned_by(other))
    await cm(client, "only-child", owned_by(owner))
    await client.delete(CONFIGMAPS, "owner", namespace="default", propagation_policy="Orphan")
    await eventually(lambda: absent(client, CONFIGMAPS, "owner"))
    child = await client.get(CONFIGMAPS, "child", namespace="default")
    assert child["metadata"]["ownerReferences"] == [owned_by(other)]
    only = await client.get(CONFIGMAPS, "only-child", namespace="default")
    assert "ownerReferences" not in only["metadata"]
