"""Storage API objects: test/e2e/storage/{storageclass,csistoragecapacity,volume_attachment,csi_node}.go."""

from __future__ import annotations

import random
import uuid

from kubernetes import client

from conformance.harness import conformance, expect_status, raw, wait_for
from conformance.tests._common import retry_on_conflict


@conformance("[sig-storage] StorageClasses CSI Conformance should run through the lifecycle of a StorageClass "
             "[Conformance]")
def test_storageclass_lifecycle(api) -> None:  # type: ignore[no-untyped-def]
    storage = client.StorageV1Api(api)
    created = storage.create_storage_class({"kind": "StorageClass", "metadata": {"generateName": "e2e-"},
                                            "provisioner": "e2e-fake-provisioner"})
    name = created.metadata.name
    try:
        got = storage.read_storage_class(name)
        patched = storage.patch_storage_class(name, {"metadata": {"labels": {name: "patched"}}})
        assert patched.metadata.labels.get(name) == "patched"
        assert int(got.metadata.resource_version) < int(patched.metadata.resource_version)
        storage.delete_storage_class(name)
        wait_for(lambda: storage.list_storage_class(label_selector=f"{name}=patched").items == [], timeout=30,
                 what=f"StorageClass {name} to be deleted")
    finally:
        try:
            storage.delete_storage_class(name)
        except client.exceptions.ApiException as exc:
            if exc.status != 404:
                raise

    replacement = storage.create_storage_class({"kind": "StorageClass", "metadata": {"generateName": "e2e-v2-"},
                                                "provisioner": "e2e-fake-provisioner"})
    rname = replacement.metadata.name
    try:
        def update():  # type: ignore[no-untyped-def]
            sc = storage.read_storage_class(rname)
            sc.metadata.labels = {rname: "updated"}
            return storage.replace_storage_class(rname, sc)
        updated = retry_on_conflict(update)
        assert updated.metadata.labels.get(rname) == "updated"
        selector = f"{rname}=updated"
        assert len(storage.list_storage_class(label_selector=selector).items) == 1
        storage.delete_collection_storage_class(label_selector=selector)
        wait_for(lambda: storage.list_storage_class(label_selector=selector).items == [], timeout=30,
                 what=f"StorageClass {rname} to be deleted")
    finally:
        try:
            storage.delete_storage_class(rname)
        except client.exceptions.ApiException as exc:
            if exc.status != 404:
                raise


def expect_watch_result(events) -> None:  # type: ignore[no-untyped-def]
    """Upstream's expectWatchResult: its loop ends at the first ADDED or annotated MODIFIED event."""
    for event in events:
        annotations = event["object"].metadata.annotations or {}
        if event["type"] == "ADDED":
            return
        if event["type"] == "MODIFIED" and ("true" in (annotations.get("patched"), annotations.get("updated"))):
            return
    raise AssertionError("timed out waiting for watch event")


@conformance("[sig-storage] CSIStorageCapacity should support CSIStorageCapacities API operations [Conformance]")
def test_csistoragecapacity_api_operations(api, ns) -> None:  # type: ignore[no-untyped-def]
    from kubernetes import watch

    storage = client.StorageV1Api(api)
    unique = ns
    selector = f"test={unique}"

    def new(suffix: str) -> dict:
        return {"metadata": {"name": f"{unique}{suffix}", "labels": {"test": unique}},
                "storageClassName": "e2e.example.com"}

    groups = raw(api, "GET", "/apis").json()["groups"]
    assert any(g["name"] == "storage.k8s.io" and any(v["version"] == "v1" for v in g["versions"]) for g in groups)
    assert any(v["version"] == "v1" for v in raw(api, "GET", "/apis/storage.k8s.io").json()["versions"])
    resources = raw(api, "GET", "/apis/storage.k8s.io/v1").json()["resources"]
    assert any(r["name"] == "csistoragecapacities" for r in resources)

    created = storage.create_namespaced_csi_storage_capacity(ns, new("-csc1"))
    expect_status(409, storage.create_namespaced_csi_storage_capacity, ns, new("-csc1"))
    storage.create_namespaced_csi_storage_capacity(ns, new("-csc2"))

    rv = storage.list_namespaced_csi_storage_capacity(ns, label_selector=selector).metadata.resource_version
    w_ns, w_all = watch.Watch(), watch.Watch()
    in_ns = w_ns.stream(storage.list_namespaced_csi_storage_capacity, ns, label_selector=selector,
                        resource_version=rv, timeout_seconds=30)
    across = w_all.stream(storage.list_csi_storage_capacity_for_all_namespaces, label_selector=selector,
                          resource_version=rv, timeout_seconds=30)
    storage.create_namespaced_csi_storage_capacity(ns, new("-csc3"))

    assert storage.read_namespaced_csi_storage_capacity(created.metadata.name, ns).metadata.uid == created.metadata.uid
    assert len(storage.list_namespaced_csi_storage_capacity(ns, label_selector=selector).items) == 3
    assert len(storage.list_csi_storage_capacity_for_all_namespaces(label_selector=selector).items) == 3

    patched = storage.patch_namespaced_csi_storage_capacity(
        created.metadata.name, ns, {"metadata": {"annotations": {"patched": "true"}}},
        _content_type="application/merge-patch+json")
    assert patched.metadata.annotations.get("patched") == "true"
    patched.metadata.annotations["updated"] = "true"
    updated = storage.replace_namespaced_csi_storage_capacity(created.metadata.name, ns, patched)
    assert updated.metadata.annotations.get("updated") == "true"

    expect_watch_result(in_ns)
    w_ns.stop()
    expect_watch_result(across)
    w_all.stop()

    storage.delete_namespaced_csi_storage_capacity(created.metadata.name, ns)
    low = high = 2
    try:
        left = storage.read_namespaced_csi_storage_capacity(created.metadata.name, ns)
    except client.exceptions.ApiException as exc:
        assert exc.status == 404, exc.body
    else:
        assert left.metadata.deletion_timestamp is not None and left.metadata.finalizers, left
        high += 1
    remaining = len(storage.list_namespaced_csi_storage_capacity(ns, label_selector=selector).items)
    assert low <= remaining <= high, remaining

    storage.delete_collection_namespaced_csi_storage_capacity(ns, label_selector=selector)
    for item in storage.list_namespaced_csi_storage_capacity(ns, label_selector=selector).items:
        assert item.metadata.deletion_timestamp is not None and item.metadata.finalizers, item


def new_volume_attachment(name: str, pv_name: str, node_name: str, attached: bool) -> dict:
    """Upstream's NewVolumeAttachment (its metadata.uid, which the server replaces, is left out)."""
    return {"metadata": {"name": name},
            "spec": {"attacher": "e2e-test.storage.k8s.io", "nodeName": node_name,
                     "source": {"persistentVolumeName": pv_name}},
            "status": {"attached": attached}}


def create_volume_attachment(api) -> str:  # type: ignore[no-untyped-def]
    """Upstream's createVolumeAttachment: a detached attachment of a made-up PV on a random node."""
    rand = f"e2e-{uuid.uuid4().hex[:5]}"
    # the e2e suite starts once the cluster's nodes have registered
    nodes = wait_for(lambda: client.CoreV1Api(api).list_node().items, timeout=60, what="registered nodes")
    node = random.choice(nodes).metadata.name
    created = client.StorageV1Api(api).create_volume_attachment(
        new_volume_attachment(f"va-{rand}", f"pv-{rand}", node, False))
    assert created.metadata.name == f"va-{rand}"
    return created.metadata.name


@conformance("[sig-storage] VolumeAttachment Conformance should run through the lifecycle of a VolumeAttachment "
             "[Conformance]")
def test_volumeattachment_lifecycle(api) -> None:  # type: ignore[no-untyped-def]
    storage = client.StorageV1Api(api)
    first = create_volume_attachment(api)
    try:
        assert storage.read_volume_attachment(first).metadata.name == first
        patched = storage.patch_volume_attachment(first, {"metadata": {"labels": {first: "patched"}}},
                                                  _content_type="application/merge-patch+json")
        assert patched.metadata.labels.get(first) == "patched"
        assert len(storage.list_volume_attachment(label_selector=f"{first}=patched").items) == 1
        storage.delete_volume_attachment(first)
        wait_for(lambda: storage.list_volume_attachment(label_selector=f"{first}=patched").items == [],
                 timeout=30, what=f"VolumeAttachment {first} to be deleted")

        for _ in range(2):
            name = create_volume_attachment(api)

            def update():  # type: ignore[no-untyped-def]
                va = storage.read_volume_attachment(name)
                va.metadata.labels = {"va-e2e": "updated"}
                return storage.replace_volume_attachment(name, va)
            assert retry_on_conflict(update).metadata.labels.get("va-e2e") == "updated"
        storage.delete_collection_volume_attachment(label_selector="va-e2e=updated")
        wait_for(lambda: storage.list_volume_attachment(label_selector="va-e2e=updated").items == [],
                 timeout=30, what="the VolumeAttachments to be deleted")
    finally:
        storage.delete_collection_volume_attachment(label_selector="va-e2e=updated")


@conformance("[sig-storage] VolumeAttachment Conformance should apply changes to a volumeattachment status "
             "[Conformance]")
def test_volumeattachment_status(api) -> None:  # type: ignore[no-untyped-def]
    storage = client.StorageV1Api(api)
    name = create_volume_attachment(api)
    try:
        patched = storage.patch_volume_attachment(name, {"metadata": {"labels": {name: "patched"}}},
                                                  _content_type="application/merge-patch+json")
        assert patched.metadata.labels.get(name) == "patched"
        assert storage.read_volume_attachment_status(name).status.attached is False
        va = storage.patch_volume_attachment_status(name, {"status": {"attached": True}},
                                                    _content_type="application/merge-patch+json")
        assert va.status.attached is True

        def update():  # type: ignore[no-untyped-def]
            current = storage.read_volume_attachment(name)
            current.status.attached = False
            return storage.replace_volume_attachment_status(name, current)
        assert retry_on_conflict(update).status.attached is False
        storage.delete_volume_attachment(name)
        wait_for(lambda: storage.list_volume_attachment(label_selector=f"{name}=patched").items == [],
                 timeout=30, what=f"VolumeAttachment {name} to be deleted")
    finally:
        try:
            storage.delete_volume_attachment(name)
        except client.exceptions.ApiException as exc:
            if exc.status != 404:
                raise


@conformance("[sig-storage] CSINodes CSI Conformance should run through the lifecycle of a csinode [Conformance]")
def test_csinode_lifecycle(api) -> None:  # type: ignore[no-untyped-def]
    storage = client.StorageV1Api(api)
    # upstream sends an empty spec (drivers: null); the typed Python client insists on a list
    name = f"e2e-csinode-{uuid.uuid4().hex[:5]}"
    created = storage.create_csi_node({"metadata": {"name": name}, "spec": {"drivers": []}})
    try:
        assert storage.read_csi_node(name).metadata.name == created.metadata.name
        patched = storage.patch_csi_node(name, {"metadata": {"labels": {name: "patched"}}})
        assert patched.metadata.labels.get(name) == "patched"
        assert len(storage.list_csi_node(label_selector=f"{name}=patched").items) == 1
        storage.delete_csi_node(name)
        wait_for(lambda: storage.list_csi_node(label_selector=f"{name}=patched").items == [], timeout=30,
                 what=f"CSINode {name} to be deleted")
    finally:
        try:
            storage.delete_csi_node(name)
        except client.exceptions.ApiException as exc:
            if exc.status != 404:
                raise

    second = f"e2e-csinode-{uuid.uuid4().hex[:5]}"
    storage.create_csi_node({"metadata": {"name": second}, "spec": {"drivers": []}})
    try:
        assert storage.read_csi_node(second).metadata.name == second

        def update():  # type: ignore[no-untyped-def]
            node = storage.read_csi_node(second)
            node.metadata.labels = {second: "updated"}
            return storage.replace_csi_node(second, node)
        assert retry_on_conflict(update).metadata.labels.get(second) == "updated"
        storage.delete_collection_csi_node(label_selector=f"{second}=updated")
        wait_for(lambda: storage.list_csi_node(label_selector=f"{second}=updated").items == [], timeout=30,
                 what=f"CSINode {second} to be deleted")
    finally:
        try:
            storage.delete_csi_node(second)
        except client.exceptions.ApiException as exc:
            if exc.status != 404:
                raise
