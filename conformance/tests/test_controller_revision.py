"""ControllerRevisions: test/e2e/apps/controller_revision.go.

Upstream names its hand-made revision `<ds>-<controller.ComputeHash(template, collisionCount)>`;
that hash is Go's deep-hash of the template struct, which a Python client cannot reproduce, so the
name here carries an FNV-32a of the template's JSON instead. The name only has to be unique: the
DaemonSet controller matches revisions by their data, and the test checks counts and revisions."""

from __future__ import annotations

import json
import uuid

from kubernetes import client

from conformance.harness import conformance, wait_for
from conformance.tests._common import AGNHOST, retry_on_conflict, wait_default_service_account
from conformance.tests.test_daemonset import available, schedulable_nodes


def fnv32a(data: bytes) -> int:
    h = 0x811C9DC5
    for byte in data:
        h = ((h ^ byte) * 0x01000193) & 0xFFFFFFFF
    return h


def count_revisions(apps: client.AppsV1Api, ns: str, selector: str, n: int) -> None:
    wait_for(lambda: len(apps.list_namespaced_controller_revision(ns, label_selector=selector).items) == n,
             timeout=60, what=f"{n} ControllerRevisions")


@conformance("[sig-apps] ControllerRevision should manage the lifecycle of a ControllerRevision "
             "[Conformance] [Serial]")
def test_controller_revision_lifecycle(api, ns) -> None:  # type: ignore[no-untyped-def]
    core, apps = client.CoreV1Api(api), client.AppsV1Api(api)
    wait_default_service_account(api, ns)
    ds_name = f"e2e-{uuid.uuid4().hex[:5]}-daemon-set"
    label = {"daemonset-name": ds_name}
    selector = f"daemonset-name={ds_name}"
    created = apps.create_namespaced_daemon_set(ns, {
        "metadata": {"name": ds_name, "labels": dict(label)},
        "spec": {"selector": {"matchLabels": dict(label)},
                 "template": {"metadata": {"labels": dict(label)},
                              "spec": {"containers": [{"name": "app", "image": AGNHOST,
                                                       "ports": [{"containerPort": 9376}]}]}}}})

    def on_all_nodes() -> bool:
        names = {n.metadata.name for n in schedulable_nodes(core)}
        pods = [p for p in core.list_namespaced_pod(ns, label_selector=selector).items
                if p.metadata.deletion_timestamp is None and available(p)]
        return bool(names) and {p.spec.node_name for p in pods} == names and len(pods) == len(names)
    wait_for(on_all_nodes, timeout=60, what="daemon pods on every node")
    wait_for(lambda: (s := apps.read_namespaced_daemon_set(ds_name, ns).status).desired_number_scheduled > 0
             and s.desired_number_scheduled == s.current_number_scheduled == s.number_ready
             and s.number_misscheduled == 0, timeout=30, what="the daemon set status")
    assert len(apps.list_daemon_set_for_all_namespaces(label_selector=selector).items) == 1
    ds = apps.read_namespaced_daemon_set(ds_name, ns)

    revs = apps.list_controller_revision_for_all_namespaces(label_selector=selector)
    assert len(revs.items) == 1
    owner = revs.items[0].metadata.owner_references[0]
    assert owner.kind == "DaemonSet" and owner.uid == ds.metadata.uid
    initial = apps.read_namespaced_controller_revision(revs.items[0].metadata.name, ns)

    patched = apps.patch_namespaced_controller_revision(initial.metadata.name, ns,
                                                        {"metadata": {"labels": {initial.metadata.name: "patched"}}})
    assert patched.metadata.labels.get(initial.metadata.name) == "patched"

    template = apps.api_client.sanitize_for_serialization(ds.spec.template)
    template["spec"]["terminationGracePeriodSeconds"] = 1
    new_hash = str(fnv32a(json.dumps(template, sort_keys=True).encode()
                          + str(ds.status.collision_count or 0).encode()))
    new_labels = {**(template["metadata"].get("labels") or {}), "controller-revision-hash": new_hash}
    apps.create_namespaced_controller_revision(ns, {
        "metadata": {"name": f"{ds_name}-{new_hash}", "labels": new_labels,
                     "annotations": ds.metadata.annotations or None,
                     "ownerReferences": [{"apiVersion": "apps/v1", "kind": "DaemonSet", "name": ds_name,
                                          "uid": created.metadata.uid, "controller": True,
                                          "blockOwnerDeletion": True}]},
        "data": initial.data, "revision": initial.revision + 1})
    count_revisions(apps, ns, selector, 2)

    apps.delete_namespaced_controller_revision(initial.metadata.name, ns)
    count_revisions(apps, ns, selector, 1)
    current = apps.list_namespaced_controller_revision(ns).items[0]

    def update():  # type: ignore[no-untyped-def]
        rev = apps.read_namespaced_controller_revision(current.metadata.name, ns)
        rev.metadata.labels[current.metadata.name] = "updated"
        return apps.replace_namespaced_controller_revision(current.metadata.name, ns, rev)
    updated = retry_on_conflict(update)
    assert updated.metadata.labels.get(current.metadata.name) == "updated"

    # upstream's patch puts updateStrategy at the top level, where it is an unknown field
    apps.patch_namespaced_daemon_set(ds_name, ns, {"spec": {"template": {"spec": {"terminationGracePeriodSeconds": 1}}},
                                                   "updateStrategy": {"type": "RollingUpdate"}})
    count_revisions(apps, ns, selector, 2)

    apps.delete_collection_namespaced_controller_revision(ns, label_selector=f"{updated.metadata.name}=updated")
    count_revisions(apps, ns, selector, 1)
    remaining = apps.list_namespaced_controller_revision(ns).items
    assert remaining[0].revision == 3, [(r.metadata.name, r.revision) for r in remaining]
