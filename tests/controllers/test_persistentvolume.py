"""The PV binder's matching rules (pure) and the PV controllers against an in-process server.

Kube facts recorded here (pkg/controller/volume/persistentvolume): the binder picks the
smallest Available PV of the claim's class whose access modes cover the claim's and whose labels
match its selector; a PV pre-bound by claimRef wins when large enough; the controller leaves
unbound WaitForFirstConsumer claims to the scheduler. Binding writes pv.spec.claimRef (with
`pv.kubernetes.io/bound-by-controller: "yes"` when the controller chose the PV), the claim's
volumeName with `pv.kubernetes.io/bind-completed` and `bound-by-controller`, and the claim's
status (phase Bound, accessModes and capacity of the PV). A Released PV with reclaim policy
Delete that no provisioner made fails with `VolumeFailedDelete`; Retain leaves it Released.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from pykube_server.api import errors
from pykube_server.api import persistentvolume as pvs
from pykube_server.client.rest import EVENTS, NODES, PERSISTENTVOLUMECLAIMS, PERSISTENTVOLUMES, PODS, Client, Resource
from pykube_server.testing import LocalCluster, local_cluster
from tests.controllers import controllers_running, eventually
from tests.controllers.workloads import CONTAINERS

NS = "default"
STORAGECLASSES = Resource("storage.k8s.io", "v1", "storageclasses", namespaced=False)
CONTROLLERS = ["persistentvolume-binder-controller", "persistentvolume-protection-controller",
               "persistentvolumeclaim-protection-controller", "local-path-provisioner"]


def claim(name: str = "c", size: str = "1Gi", modes: tuple[str, ...] = ("ReadWriteOnce",), cls: str | None = "",
          **spec: Any) -> dict:
    body: dict = {"accessModes": list(modes), "resources": {"requests": {"storage": size}}, **spec}
    if cls is not None:
        body["storageClassName"] = cls
    return {"apiVersion": "v1", "kind": "PersistentVolumeClaim",
            "metadata": {"name": name, "namespace": NS, "uid": f"uid-{name}"}, "spec": body}


def volume(name: str, size: str = "1Gi", modes: tuple[str, ...] = ("ReadWriteOnce",), cls: str = "",
           phase: str = "Available", labels: dict | None = None, policy: str = "Retain", **spec: Any) -> dict:
    return {"apiVersion": "v1", "kind": "PersistentVolume", "metadata": {"name": name, "labels": labels or {}},
            "spec": {"capacity": {"storage": size}, "accessModes": list(modes), "storageClassName": cls,
                     "persistentVolumeReclaimPolicy": policy, "hostPath": {"path": f"/tmp/{name}"}, **spec},
            "status": {"phase": phase}}


# -- matching ------------------------------------------------------------------------------------
def test_smallest_fitting_volume_wins() -> None:
    vols = [volume("big", "10Gi"), volume("small", "500Mi"), volume("fit", "2Gi"), volume("fit2", "3Gi")]
    assert pvs.find_best_match(claim(size="1Gi"), vols)["metadata"]["name"] == "fit"


def test_access_modes_class_phase_and_mode_must_fit() -> None:
    c = claim(modes=("ReadWriteMany",))
    assert pvs.find_best_match(c, [volume("rwo")]) is None
    assert pvs.find_best_match(c, [volume("rwx", modes=("ReadWriteOnce", "ReadWriteMany"))]) is not None
    assert pvs.find_best_match(claim(cls="fast"), [volume("slow", cls="slow")]) is None
    assert pvs.find_best_match(claim(), [volume("released", phase="Released")]) is None
    assert pvs.find_best_match(claim(), [volume("block", volumeMode="Block")]) is None
    taken = volume("taken", claimRef={"namespace": NS, "name": "other", "uid": "x"})
    assert pvs.find_best_match(claim(), [taken]) is None


def test_selector_filters_volumes() -> None:
    c = claim(selector={"matchLabels": {"disk": "ssd"}})
    vols = [volume("hdd", labels={"disk": "hdd"}), volume("ssd", "5Gi", labels={"disk": "ssd"})]
    assert pvs.find_best_match(c, vols)["metadata"]["name"] == "ssd"
    bad = claim(selector={"matchExpressions": [{"key": "disk", "operator": "Bogus"}]})
    assert pvs.find_best_match(bad, vols) is None


def test_claim_ref_pre_binding_wins_even_if_larger_or_not_available() -> None:
    pre = volume("pre", "50Gi", phase="Pending", claimRef={"namespace": NS, "name": "c"})
    assert pvs.find_best_match(claim(), [volume("fit"), pre])["metadata"]["name"] == "pre"
    too_small = volume("tiny", "1Mi", claimRef={"namespace": NS, "name": "c"})
    assert pvs.find_best_match(claim(), [too_small]) is None
    wrong_uid = volume("other", claimRef={"namespace": NS, "name": "c", "uid": "someone-else"})
    assert pvs.find_best_match(claim(), [wrong_uid]) is None


def test_delayed_binding_is_left_to_the_scheduler_which_checks_node_affinity() -> None:
    affinity = {"required": {"nodeSelectorTerms": [{"matchExpressions": [
        {"key": "kubernetes.io/hostname", "operator": "In", "values": ["n1"]}]}]}}
    local = volume("local", nodeAffinity=affinity)
    assert pvs.find_best_match(claim(), [local], delayed_binding=True) is None
    n1 = {"metadata": {"name": "n1", "labels": {"kubernetes.io/hostname": "n1"}}}
    n2 = {"metadata": {"name": "n2", "labels": {"kubernetes.io/hostname": "n2"}}}
    assert pvs.find_best_match(claim(), [local], delayed_binding=True, node=n1) is not None
    assert pvs.find_best_match(claim(), [local], delayed_binding=True, node=n2) is None


def test_default_class_is_the_newest_default() -> None:
    def sc(name: str, created: str, default: bool) -> dict:
        ann = {pvs.ANN_DEFAULT_CLASS: "true"} if default else {}
        return {"metadata": {"name": name, "creationTimestamp": created, "annotations": ann}}
    classes = [sc("a", "2024-01-01T00:00:00Z", True), sc("b", "2025-01-01T00:00:00Z", True),
               sc("c", "2026-01-01T00:00:00Z", False)]
    assert pvs.default_class(classes)["metadata"]["name"] == "b"
    assert pvs.default_class([classes[2]]) is None


def test_satisfy_mismatch_texts() -> None:
    assert pvs.satisfy_mismatch(claim(size="2Gi"), volume("v")) == "requested PV is too small"
    assert pvs.satisfy_mismatch(claim(cls="x"), volume("v")) == "storageClassName does not match"
    assert pvs.satisfy_mismatch(claim(), volume("v")) == ""


# -- controllers in-process ----------------------------------------------------------------------
@pytest.fixture
async def cluster(tmp_path: Path) -> AsyncIterator[LocalCluster]:
    async with local_cluster(tmp_path / "server", storage_url="memory://") as lc:
        yield lc


@pytest.fixture
async def client(cluster: LocalCluster, tmp_path: Path) -> AsyncIterator[Client]:
    async with controllers_running(cluster, CONTROLLERS, local_path_dir=str(tmp_path / "local-path"),
                                   pvclaimbinder_sync_period_seconds=0.5) as c:
        yield c


def api_claim(name: str, **kwargs: Any) -> dict:
    body = claim(name, **kwargs)
    del body["metadata"]["uid"]
    return body


def api_volume(name: str, **kwargs: Any) -> dict:
    body = volume(name, **kwargs)
    del body["status"]
    return body


async def phase_is(client: Client, resource: Resource, name: str, phase: str, namespace: str = "") -> dict | None:
    try:
        obj = await client.get(resource, name, namespace=namespace)
    except errors.NotFound:
        return None
    return obj if (obj.get("status") or {}).get("phase") == phase else None


async def event_reasons(client: Client, name: str, namespace: str = NS) -> dict[str, str]:
    items = (await client.list(EVENTS, namespace=namespace, field_selector=f"involvedObject.name={name}"))["items"]
    return {e["reason"]: e["message"] for e in items}


async def test_admission_defaults_class_and_adds_finalizers(cluster: LocalCluster) -> None:
    async with Client.from_kubeconfig(cluster.kubeconfig) as client:
        made = await client.create(PERSISTENTVOLUMECLAIMS, api_claim("auto", cls=None), namespace=NS)
        assert made["spec"]["storageClassName"] == "standard"
        assert made["metadata"]["finalizers"] == [pvs.PVC_PROTECTION_FINALIZER]
        none = await client.create(PERSISTENTVOLUMECLAIMS, api_claim("none", cls=""), namespace=NS)
        assert none["spec"]["storageClassName"] == ""
        pv = await client.create(PERSISTENTVOLUMES, api_volume("pv1"))
        assert pv["metadata"]["finalizers"] == [pvs.PV_PROTECTION_FINALIZER]
        sc = await client.get(STORAGECLASSES, "standard")
        assert sc["volumeBindingMode"] == "WaitForFirstConsumer"


async def test_static_volume_binds_both_ways_and_retain_releases(client: Client) -> None:
    await client.create(PERSISTENTVOLUMES, api_volume("small", size="1Gi", labels={"tier": "a"}))
    await client.create(PERSISTENTVOLUMES, api_volume("large", size="5Gi", labels={"tier": "a"}))
    made = await client.create(PERSISTENTVOLUMECLAIMS, api_claim("data", size="800Mi"), namespace=NS)
    bound = await eventually(lambda: phase_is(client, PERSISTENTVOLUMECLAIMS, "data", "Bound", NS))
    assert bound["spec"]["volumeName"] == "small"
    assert bound["status"]["capacity"] == {"storage": "1Gi"} and bound["status"]["accessModes"] == ["ReadWriteOnce"]
    assert bound["metadata"]["annotations"] == {pvs.ANN_BIND_COMPLETED: "yes", pvs.ANN_BOUND_BY_CONTROLLER: "yes"}
    pv = await eventually(lambda: phase_is(client, PERSISTENTVOLUMES, "small", "Bound"))
    assert pv["spec"]["claimRef"]["uid"] == made["metadata"]["uid"]
    assert pv["metadata"]["annotations"][pvs.ANN_BOUND_BY_CONTROLLER] == "yes"
    assert pv["status"]["lastPhaseTransitionTime"]
    assert (await client.get(PERSISTENTVOLUMES, "large"))["status"]["phase"] == "Available"

    await client.delete(PERSISTENTVOLUMECLAIMS, "data", namespace=NS)
    released = await eventually(lambda: phase_is(client, PERSISTENTVOLUMES, "small", "Released"))
    assert released["spec"]["claimRef"]["name"] == "data"


async def test_pre_bound_claim_to_too_small_volume_reports_mismatch(client: Client) -> None:
    await client.create(PERSISTENTVOLUMES, api_volume("tiny", size="10Mi"))
    await client.create(PERSISTENTVOLUMECLAIMS, api_claim("want", size="1Gi", volumeName="tiny"), namespace=NS)

    async def mismatch() -> str | None:
        return (await event_reasons(client, "want")).get("VolumeMismatch")
    assert await eventually(mismatch) == 'Cannot bind to requested volume "tiny": requested PV is too small'
    assert (await client.get(PERSISTENTVOLUMECLAIMS, "want", namespace=NS))["status"]["phase"] == "Pending"


async def test_delete_policy_without_provisioner_fails(client: Client) -> None:
    await client.create(PERSISTENTVOLUMES, api_volume("doomed", policy="Delete"))
    await client.create(PERSISTENTVOLUMECLAIMS, api_claim("short"), namespace=NS)
    await eventually(lambda: phase_is(client, PERSISTENTVOLUMECLAIMS, "short", "Bound", NS))
    await client.delete(PERSISTENTVOLUMECLAIMS, "short", namespace=NS)
    failed = await eventually(lambda: phase_is(client, PERSISTENTVOLUMES, "doomed", "Failed"))
    text = 'error getting deleter volume plugin for volume "doomed": no deletable volume plugin matched'
    assert failed["status"]["message"] == text
    # events about cluster-scoped objects live in `default`, as kube records them
    assert (await event_reasons(client, "doomed", namespace="default")).get("VolumeFailedDelete") == text


async def test_bound_claim_whose_volume_vanished_is_lost(client: Client) -> None:
    await client.create(PERSISTENTVOLUMES, api_volume("gone"))
    await client.create(PERSISTENTVOLUMECLAIMS, api_claim("orphan"), namespace=NS)
    await eventually(lambda: phase_is(client, PERSISTENTVOLUMES, "gone", "Bound"))
    await eventually(lambda: phase_is(client, PERSISTENTVOLUMECLAIMS, "orphan", "Bound", NS))
    pv = await client.get(PERSISTENTVOLUMES, "gone")
    await client.update(PERSISTENTVOLUMES, {**pv, "metadata": {**pv["metadata"], "finalizers": []}})
    await client.delete(PERSISTENTVOLUMES, "gone")
    await eventually(lambda: phase_is(client, PERSISTENTVOLUMECLAIMS, "orphan", "Lost", NS))
    assert (await event_reasons(client, "orphan"))["ClaimLost"] == \
        "Bound claim has lost its PersistentVolume. Data on the volume is lost!"


async def test_immediate_class_is_provisioned_and_deleted_with_its_directory(client: Client, tmp_path: Path) -> None:
    node = await client.create(NODES, {"metadata": {"name": "n1", "labels": {"kubernetes.io/hostname": "n1"}}})
    node["status"] = {"conditions": [{"type": "Ready", "status": "True", "reason": "KubeletReady"}]}
    await client.update(NODES, node, subresource="status")
    await client.create(STORAGECLASSES, {"metadata": {"name": "instant"}, "provisioner": "local-path.pykube.io",
                                         "volumeBindingMode": "Immediate"})
    made = await client.create(PERSISTENTVOLUMECLAIMS, api_claim("fast", size="32Mi", cls="instant"), namespace=NS)
    bound = await eventually(lambda: phase_is(client, PERSISTENTVOLUMECLAIMS, "fast", "Bound", NS))
    name = f"pvc-{made['metadata']['uid']}"
    assert bound["spec"]["volumeName"] == name
    assert bound["metadata"]["annotations"][pvs.ANN_STORAGE_PROVISIONER] == "local-path.pykube.io"
    pv = await client.get(PERSISTENTVOLUMES, name)
    path = Path(pv["spec"]["hostPath"]["path"])
    assert path == tmp_path / "local-path" / f"{name}_{NS}_fast" and path.is_dir()
    assert pv["spec"]["hostPath"]["type"] == "DirectoryOrCreate"
    assert pv["metadata"]["annotations"][pvs.ANN_PROVISIONED_BY] == "local-path.pykube.io"
    assert pv["spec"]["persistentVolumeReclaimPolicy"] == "Delete" and pv["spec"]["capacity"] == {"storage": "32Mi"}
    assert pv["spec"]["nodeAffinity"]["required"]["nodeSelectorTerms"][0]["matchExpressions"][0]["values"] == ["n1"]
    reasons = await event_reasons(client, "fast")
    assert reasons["ProvisioningSucceeded"] == f"Successfully provisioned volume {name}"
    assert reasons["Provisioning"] == f'External provisioner is provisioning volume for claim "{NS}/fast"'
    assert "external provisioner 'local-path.pykube.io'" in reasons["ExternalProvisioning"]

    await client.delete(PERSISTENTVOLUMECLAIMS, "fast", namespace=NS)

    async def volume_gone() -> bool:
        try:
            await client.get(PERSISTENTVOLUMES, name)
        except errors.NotFound:
            return True
        return False
    await eventually(volume_gone)
    assert not path.exists()


async def test_claim_in_use_keeps_its_finalizer_until_the_pod_is_gone(client: Client) -> None:
    await client.create(PERSISTENTVOLUMECLAIMS, api_claim("used"), namespace=NS)
    await client.create(PODS, {"metadata": {"name": "user"}, "spec": {
        "nodeName": "n1", "containers": CONTAINERS,
        "volumes": [{"name": "d", "persistentVolumeClaim": {"claimName": "used"}}]}}, namespace=NS)
    await client.delete(PERSISTENTVOLUMECLAIMS, "used", namespace=NS)
    for _ in range(10):  # still there while the pod uses it
        got = await client.get(PERSISTENTVOLUMECLAIMS, "used", namespace=NS)
        assert got["metadata"]["finalizers"] == [pvs.PVC_PROTECTION_FINALIZER]
    await client.delete(PODS, "user", namespace=NS, grace_period_seconds=0)

    async def gone() -> bool:
        try:
            await client.get(PERSISTENTVOLUMECLAIMS, "used", namespace=NS)
        except errors.NotFound:
            return True
        return False
    await eventually(gone)


async def test_bound_volume_is_protected_until_released(client: Client) -> None:
    await client.create(PERSISTENTVOLUMES, api_volume("kept"))
    await client.create(PERSISTENTVOLUMECLAIMS, api_claim("holder"), namespace=NS)
    await eventually(lambda: phase_is(client, PERSISTENTVOLUMES, "kept", "Bound"))
    await client.delete(PERSISTENTVOLUMES, "kept")
    pv = await client.get(PERSISTENTVOLUMES, "kept")
    assert pv["metadata"]["deletionTimestamp"] and pv["metadata"]["finalizers"] == [pvs.PV_PROTECTION_FINALIZER]
    await client.delete(PERSISTENTVOLUMECLAIMS, "holder", namespace=NS)

    async def gone() -> bool:
        try:
            await client.get(PERSISTENTVOLUMES, "kept")
        except errors.NotFound:
            return True
        return False
    await eventually(gone)
