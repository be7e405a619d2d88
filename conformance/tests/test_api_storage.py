"""test/e2e/storage/csi_inline.go (CSIDriver lifecycle, CSI inline volumes in the Pod API) and
test/e2e/storage/persistent_volumes.go ("CSI Conformance": PV/PVC lifecycle and status)."""

from __future__ import annotations

import uuid

from kubernetes import client

from conformance.harness import conformance, expect_status, wait_for
from conformance.tests._common import BUSYBOX, retry_on_conflict, wait_default_service_account

FS_GROUP_POLICY = "ReadWriteOnceWithFSType"


def _not_found_or_deleting(read, *args) -> bool:  # type: ignore[no-untyped-def]
    """Deleted, or being deleted (a finalizer still holds it)."""
    try:
        obj = read(*args)
    except client.exceptions.ApiException as exc:
        if exc.status == 404:
            return True
        raise
    return obj.metadata.deletion_timestamp is not None


@conformance("[sig-storage] CSIInlineVolumes should support CSIVolumeSource in Pod API [Conformance]")
def test_csi_volume_source_in_pod_api(api, ns) -> None:  # type: ignore[no-untyped-def]
    wait_default_service_account(api, ns)
    core = client.CoreV1Api(api)
    driver, name = "e2e.example.com", "pod-csi-inline-volumes"
    pod = {"metadata": {"name": name},
           "spec": {"volumes": [{"name": "csi-inline-vol1", "csi": {"driver": driver}},
                                {"name": "csi-inline-vol2", "csi": {"driver": driver, "fsType": "ext4",
                                                                    "readOnly": True}}],
                    "containers": [{"name": name, "image": BUSYBOX, "command": ["sh", "-c", "ls /mnt/*"],
                                    "volumeMounts": [{"name": "csi-inline-vol1", "mountPath": "/mnt/vol1"},
                                                     {"name": "csi-inline-vol2", "mountPath": "/mnt/vol2"}]}]}}
    created = core.create_namespaced_pod(ns, pod)
    expect_status(409, core.create_namespaced_pod, ns, pod)
    assert core.read_namespaced_pod(name, ns).metadata.uid == created.metadata.uid
    assert len(core.list_namespaced_pod(ns).items) == 1
    patched = core.patch_namespaced_pod(name, ns, {"metadata": {"annotations": {"patched": "true"}}})
    assert patched.metadata.annotations["patched"] == "true"
    core.delete_namespaced_pod(name, ns)
    assert _not_found_or_deleting(core.read_namespaced_pod, name, ns)


@conformance("[sig-storage] CSIInlineVolumes should run through the lifecycle of a CSIDriver [Conformance]")
def test_csidriver_lifecycle(api, ns) -> None:  # type: ignore[no-untyped-def]
    storage = client.StorageV1Api(api)
    label = {"e2e-test": ns}
    selector = f"e2e-test={ns}"

    def driver(*modes: str) -> dict:
        return {"metadata": {"name": "inline-driver-" + str(uuid.uuid4()), "labels": dict(label)},
                "spec": {"volumeLifecycleModes": list(modes), "fsGroupPolicy": FS_GROUP_POLICY}}
    d1, d2 = driver("Ephemeral"), driver("Persistent", "Ephemeral")
    try:
        created1 = storage.create_csi_driver(d1)
        created2 = storage.create_csi_driver(d2)
        expect_status(409, storage.create_csi_driver, d1)
        name1, name2 = created1.metadata.name, created2.metadata.name
        assert storage.read_csi_driver(name1).metadata.uid == created1.metadata.uid
        assert storage.read_csi_driver(name2).metadata.uid == created2.metadata.uid

        patched = storage.patch_csi_driver(name2, {"metadata": {"labels": {name2: "patched"}}})
        assert "patched" in patched.metadata.labels[name2]

        def update():  # type: ignore[no-untyped-def]
            current = storage.read_csi_driver(name2)
            current.metadata.labels[name2] = "updated"
            return storage.replace_csi_driver(name2, current)
        assert "updated" in retry_on_conflict(update).metadata.labels[name2]

        assert len(storage.list_csi_driver(label_selector=selector).items) == 2

        storage.delete_csi_driver(name1)
        assert _not_found_or_deleting(storage.read_csi_driver, name1)
        storage.delete_collection_csi_driver(label_selector=f"{name2}=updated")
        assert _not_found_or_deleting(storage.read_csi_driver, name2)
    finally:
        storage.delete_collection_csi_driver(label_selector=selector)


# --- PersistentVolumes CSI Conformance ----------------------------------------------------------

def _create_pv_and_pvc(core: client.CoreV1Api, ns: str, driver: str, handle: str) -> tuple[str, str]:
    """e2epv.CreatePVsPVCs with one of each: a CSI PV of the namespace-named class (pool label
    e2e-pv-pool=<ns>) and a claim of that class."""
    pv = core.create_persistent_volume({
        "metadata": {"generateName": ns + "-", "labels": {"e2e-pv-pool": ns},
                     "annotations": {"volume.beta.kubernetes.io/gid": "777"}},
        "spec": {"capacity": {"storage": "2Gi"}, "accessModes": ["ReadWriteOnce"],
                 "persistentVolumeReclaimPolicy": "Retain", "storageClassName": ns,
                 "csi": {"driver": driver, "volumeHandle": handle}}})
    pvc = core.create_namespaced_persistent_volume_claim(ns, {
        "metadata": {"generateName": "pvc-"},
        "spec": {"accessModes": ["ReadWriteOnce"], "resources": {"requests": {"storage": "2Gi"}},
                 "storageClassName": ns}})
    return pv.metadata.name, pvc.metadata.name


def _wait_empty(list_fn, *args, **kwargs) -> None:  # type: ignore[no-untyped-def]
    wait_for(lambda: not list_fn(*args, **kwargs).items, timeout=30, what="deletion confirmed")


@conformance("[sig-storage] PersistentVolumes CSI Conformance should run through the lifecycle of a PV and a PVC [Conformance]")
def test_pv_pvc_lifecycle(api, ns) -> None:  # type: ignore[no-untyped-def]
    core = client.CoreV1Api(api)
    pool = f"e2e-pv-pool={ns}"
    driver = "inline-driver-" + str(uuid.uuid4())
    try:
        _create_pv_and_pvc(core, ns, driver, "e2e-conformance")
        pvs = core.list_persistent_volume(label_selector=pool).items
        assert len(pvs) == 1 and pvs[0].metadata.resource_version
        pvcs = core.list_namespaced_persistent_volume_claim(ns).items
        assert len(pvcs) == 1 and pvcs[0].metadata.resource_version
        pv, pvc = pvs[0], pvcs[0]

        patched_pv = core.patch_persistent_volume(pv.metadata.name, {"metadata": {"labels": {pv.metadata.name: "patched"}}})
        assert patched_pv.metadata.labels[pv.metadata.name] == "patched"
        assert int(pv.metadata.resource_version) < int(patched_pv.metadata.resource_version)
        patched_pvc = core.patch_namespaced_persistent_volume_claim(
            pvc.metadata.name, ns, {"metadata": {"labels": {pvc.metadata.name: "patched"}}})
        assert patched_pvc.metadata.labels[pvc.metadata.name] == "patched"
        assert int(pvc.metadata.resource_version) < int(patched_pvc.metadata.resource_version)

        assert core.read_persistent_volume(pv.metadata.name).metadata.uid == patched_pv.metadata.uid
        assert core.read_namespaced_persistent_volume_claim(pvc.metadata.name, ns).metadata.uid == patched_pvc.metadata.uid

        core.delete_namespaced_persistent_volume_claim(pvc.metadata.name, ns)
        _wait_empty(core.list_namespaced_persistent_volume_claim, ns)
        core.delete_persistent_volume(pv.metadata.name)
        _wait_empty(core.list_persistent_volume, label_selector=pool)

        pv_name, pvc_name = _create_pv_and_pvc(core, ns, driver, "e2e-conformance")

        def update_pv():  # type: ignore[no-untyped-def]
            current = core.read_persistent_volume(pv_name)
            current.metadata.labels[pv_name] = "updated"
            return core.replace_persistent_volume(pv_name, current)
        assert retry_on_conflict(update_pv).metadata.labels[pv_name] == "updated"

        def update_pvc():  # type: ignore[no-untyped-def]
            current = core.read_namespaced_persistent_volume_claim(pvc_name, ns)
            current.metadata.labels = {pvc_name: "updated"}
            return core.replace_namespaced_persistent_volume_claim(pvc_name, ns, current)
        assert retry_on_conflict(update_pvc).metadata.labels[pvc_name] == "updated"

        pvc_selector, pv_selector = f"{pvc_name}=updated", f"{pv_name}=updated"
        assert len(core.list_persistent_volume_claim_for_all_namespaces(label_selector=pvc_selector).items) == 1
        core.delete_collection_namespaced_persistent_volume_claim(ns, label_selector=pvc_selector)
        _wait_empty(core.list_namespaced_persistent_volume_claim, ns, label_selector=pvc_selector)
        core.delete_collection_persistent_volume(label_selector=pv_selector)
        _wait_empty(core.list_persistent_volume, label_selector=pv_selector)
    finally:
        core.delete_collection_persistent_volume(label_selector=pool)


@conformance("[sig-storage] PersistentVolumes CSI Conformance should apply changes to a pv/pvc status [Conformance]")
def test_pv_pvc_status(api, ns) -> None:  # type: ignore[no-untyped-def]
    core = client.CoreV1Api(api)
    pool = f"e2e-pv-pool={ns}"
    try:
        _create_pv_and_pvc(core, ns, "e2e-driver-" + str(uuid.uuid4()), "e2e-status-conformance")
        pvs = core.list_persistent_volume(label_selector=pool).items
        assert len(pvs) == 1
        pvcs = core.list_namespaced_persistent_volume_claim(ns).items
        assert len(pvcs) == 1
        pv_name, pvc_name = pvs[0].metadata.name, pvcs[0].metadata.name

        pvc_status = core.read_namespaced_persistent_volume_claim_status(pvc_name, ns)
        assert pvc_status.status.phase in ("Pending", "Bound")
        pv_status = core.read_persistent_volume_status(pv_name)
        assert pv_status.status.phase in ("Available", "Bound", "Pending")

        patched_pvc = core.patch_namespaced_persistent_volume_claim_status(pvc_name, ns, {"status": {"conditions": [
            {"type": "StatusPatched", "status": "True", "reason": "E2E patchedStatus", "message": "Set from e2e test"}]}})
        cond = {c.type: c for c in patched_pvc.status.conditions or []}["StatusPatched"]
        assert "Set from e2e test" in cond.message and "E2E patchedStatus" in cond.reason

        patched_pv = core.patch_persistent_volume_status(pv_name, {"status": {"message": "StatusPatched",
                                                                             "reason": "E2E patchStatus"}})
        assert (patched_pv.status.reason, patched_pv.status.message) == ("E2E patchStatus", "StatusPatched")

        def update_pvc_status():  # type: ignore[no-untyped-def]
            current = core.read_namespaced_persistent_volume_claim(pvc_name, ns)
            current.status.conditions = [*(current.status.conditions or []), client.V1PersistentVolumeClaimCondition(
                type="StatusUpdated", status="True", reason="E2E updateStatus", message="Set from e2e test")]
            return core.replace_namespaced_persistent_volume_claim_status(pvc_name, ns, current)
        updated_pvc = retry_on_conflict(update_pvc_status)
        cond = {c.type: c for c in updated_pvc.status.conditions or []}["StatusUpdated"]
        assert "Set from e2e test" in cond.message and "E2E updateStatus" in cond.reason

        def update_pv_status():  # type: ignore[no-untyped-def]
            current = core.read_persistent_volume(pv_name)
            current.status.reason, current.status.message = "E2E updateStatus", "StatusUpdated"
            return core.replace_persistent_volume_status(pv_name, current)
        updated_pv = retry_on_conflict(update_pv_status)
        assert (updated_pv.status.reason, updated_pv.status.message) == ("E2E updateStatus", "StatusUpdated")
    finally:
        core.delete_collection_persistent_volume(label_selector=pool)
