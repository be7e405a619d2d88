"""namespace-controller and the namespaces/finalize subresource against a real server.

Facts from Kubernetes recorded here: deleting a namespace marks it Terminating without a grace
period and keeps it while `spec.finalizers` holds `kubernetes`; a second DELETE meanwhile is a
409; the controller deletes every namespaced kind (Background propagation) and then removes
`kubernetes` through PUT .../finalize, which may change spec.finalizers but never status, and
after which the server deletes the namespace. Content held by finalizers is reported in the
five status conditions with kube's reasons and messages.
"""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from pykube_server.api import errors
from pykube_server.client.rest import CONFIGMAPS, DEPLOYMENTS, NAMESPACES, PODS, SECRETS, Client
from pykube_server.testing import LocalCluster
from tests.controllers import controllers_running, eventually

POD = {"metadata": {"name": "p"}, "spec": {"containers": [{"name": "c", "image": "busybox"}]}}
DEPLOYMENT = {"metadata": {"name": "d"}, "spec": {
    "selector": {"matchLabels": {"app": "d"}},
    "template": {"metadata": {"labels": {"app": "d"}}, "spec": {"containers": [{"name": "c", "image": "busybox"}]}}}}


@pytest.fixture
async def plain(cluster: LocalCluster) -> AsyncIterator[Client]:
    """A client with no controllers running."""
    async with Client.from_kubeconfig(cluster.kubeconfig) as c:
        yield c


async def _gone(client: Client, name: str) -> bool:
    try:
        await client.get(NAMESPACES, name)
    except errors.NotFound:
        return True
    return False


# -- the server side ----------------------------------------------------------------------------
async def test_delete_marks_terminating_and_second_delete_conflicts(plain: Client) -> None:
    await plain.create(NAMESPACES, {"metadata": {"name": "x"}})
    answer = await plain.delete(NAMESPACES, "x", propagation_policy="Background")
    assert answer["kind"] == "Namespace" and answer["status"]["phase"] == "Terminating"
    assert answer["spec"]["finalizers"] == ["kubernetes"]
    assert answer["metadata"]["deletionTimestamp"] and "deletionGracePeriodSeconds" not in answer["metadata"]
    with pytest.raises(errors.Conflict) as caught:
        await plain.delete(NAMESPACES, "x")
    assert caught.value.message == (
        'Operation cannot be fulfilled on namespaces "x": The system is ensuring all content is removed from this '
        "namespace.  Upon completion, this namespace will automatically be purged by the system.")


async def test_finalize_changes_only_spec_finalizers(plain: Client) -> None:
    ns = await plain.create(NAMESPACES, {"metadata": {"name": "y"}})
    ns["spec"]["finalizers"] = ["example.com/mine"]
    ns["status"] = {"phase": "Terminating"}
    done = await plain.update(NAMESPACES, ns, subresource="finalize")
    assert done["spec"]["finalizers"] == ["example.com/mine"]
    assert done["status"] == {"phase": "Active"}
    plain_put = dict(done, spec={"finalizers": []})
    kept = await plain.update(NAMESPACES, plain_put)  # a PUT of the namespace itself
    assert kept["status"] == {"phase": "Active"}
    with pytest.raises(errors.MethodNotAllowed):
        await plain.patch(NAMESPACES, "y", {"spec": {"finalizers": []}}, subresource="finalize")


async def test_finalize_of_terminating_namespace_deletes_it(plain: Client) -> None:
    await plain.create(NAMESPACES, {"metadata": {"name": "z"}})
    ns = await plain.delete(NAMESPACES, "z")
    ns["spec"] = {"finalizers": []}
    answer = await plain.update(NAMESPACES, ns, subresource="finalize")
    assert answer["metadata"]["name"] == "z"
    assert await _gone(plain, "z")


# -- the controller ----------------------------------------------------------------------------
async def test_namespace_emptied_then_deleted(cluster: LocalCluster, plain: Client) -> None:
    await plain.create(NAMESPACES, {"metadata": {"name": "busy"}})
    await plain.create(CONFIGMAPS, {"metadata": {"name": "c"}, "data": {"k": "v"}}, namespace="busy")
    await plain.create(SECRETS, {"metadata": {"name": "s"}}, namespace="busy")
    await plain.create(PODS, POD, namespace="busy")
    await plain.create(DEPLOYMENTS, DEPLOYMENT, namespace="busy")
    await plain.create(CONFIGMAPS, {"metadata": {"name": "other"}}, namespace="default")
    async with controllers_running(cluster, ["namespace-controller"], namespace_deletion_grace_seconds=0) as client:
        await client.delete(NAMESPACES, "busy", propagation_policy="Background")
        await eventually(lambda: _gone(client, "busy"))
        for resource in (CONFIGMAPS, SECRETS, PODS, DEPLOYMENTS):
            assert (await client.list(resource, namespace="busy"))["items"] == []
        assert await client.get(CONFIGMAPS, "other", namespace="default")


async def test_conditions_report_content_held_by_finalizers(cluster: LocalCluster, plain: Client) -> None:
    await plain.create(NAMESPACES, {"metadata": {"name": "held"}})
    await plain.create(CONFIGMAPS, {"metadata": {"name": "c", "finalizers": ["example.com/hold"]}}, namespace="held")
    await plain.create(SECRETS, {"metadata": {"name": "s"}}, namespace="held")
    async with controllers_running(cluster, ["namespace-controller"], namespace_deletion_grace_seconds=0) as client:
        await client.delete(NAMESPACES, "held")

        async def reported():  # type: ignore[no-untyped-def]
            ns = await client.get(NAMESPACES, "held")
            return ns if len((ns.get("status") or {}).get("conditions") or []) == 5 else None

        ns = await eventually(reported)
        conditions = {c["type"]: (c["status"], c["reason"], c["message"]) for c in ns["status"]["conditions"]}
        assert [c["type"] for c in ns["status"]["conditions"]] == [
            "NamespaceDeletionDiscoveryFailure", "NamespaceDeletionGroupVersionParsingFailure",
            "NamespaceDeletionContentFailure", "NamespaceContentRemaining", "NamespaceFinalizersRemaining"]
        assert conditions == {
            "NamespaceDeletionDiscoveryFailure": ("False", "ResourcesDiscovered", "All resources successfully discovered"),
            "NamespaceDeletionGroupVersionParsingFailure": ("False", "ParsedGroupVersions", "All legacy kube types successfully parsed"),
            "NamespaceDeletionContentFailure": ("False", "ContentDeleted", "All content successfully deleted, may be waiting on finalization"),
            "NamespaceContentRemaining": ("True", "SomeResourcesRemain", "Some resources are remaining: configmaps. has 1 resource instances"),
            "NamespaceFinalizersRemaining": ("True", "SomeFinalizersRemain", "Some content in the namespace has finalizers remaining: example.com/hold in 1 resource instances"),
        }
        assert ns["spec"]["finalizers"] == ["kubernetes"]
        assert (await client.list(SECRETS, namespace="held"))["items"] == []
        held = await client.get(CONFIGMAPS, "c", namespace="held")
        assert held["metadata"]["deletionTimestamp"]
        await client.patch(CONFIGMAPS, "c", {"metadata": {"finalizers": None}}, namespace="held")
        # kube looks again after ~8 s (half the 15 s finalizer estimate); any namespace event is sooner
        await client.patch(NAMESPACES, "held", {"metadata": {"labels": {"poke": "1"}}})
        await eventually(lambda: _gone(client, "held"))
