"""Garbage collector: test/e2e/apimachinery/garbage_collector.go (the conformance tests). Owners are
ReplicationControllers and Deployments whose pods run the nginx image, which the process runtime keeps
as a placeholder process until stopped. Upstream waits 30 s to see whether the collector deletes what
it must not; these reproductions watch for a shorter window (the collector reacts within a second here).
"""

from __future__ import annotations

import time

from kubernetes import client

from conformance.harness import conformance, wait_for
from conformance.tests._common import NGINX, wait_default_service_account

QUIET_WINDOW = 8  # seconds to watch that the collector leaves orphans alone (upstream: 30)
REPLICAS = 10  # estimateMaximumPods(c, 10, 100) with its floor


def owner_rc(name: str, replicas: int, labels: dict[str, str]) -> dict:
    """newOwnerRC: an nginx RC selecting its unique labels."""
    return {"metadata": {"name": name},
            "spec": {"replicas": replicas, "selector": labels,
                     "template": {"metadata": {"labels": labels},
                                  "spec": {"terminationGracePeriodSeconds": 0,
                                           "containers": [{"name": "nginx", "image": NGINX}]}}}}


def owner_deployment(name: str, labels: dict[str, str]) -> dict:
    """newOwnerDeployment: two nginx replicas."""
    return {"metadata": {"name": name},
            "spec": {"replicas": 2, "selector": {"matchLabels": labels},
                     "template": {"metadata": {"labels": labels},
                                  "spec": {"terminationGracePeriodSeconds": 0,
                                           "containers": [{"name": "nginx", "image": NGINX}]}}}}


def wait_rc_replicas(core: client.CoreV1Api, ns: str, name: str) -> None:
    """Wait until rc.status.replicas reaches rc.spec.replicas."""
    def done() -> bool:
        rc = core.read_namespaced_replication_controller(name, ns)
        return (rc.status.replicas or 0) == rc.spec.replicas
    wait_for(done, timeout=60, what=f"rc {name} to create its pods")


def delete_options(policy: str, uid: str) -> client.V1DeleteOptions:
    return client.V1DeleteOptions(propagation_policy=policy, preconditions=client.V1Preconditions(uid=uid))


def gone(read, *args) -> bool:  # type: ignore[no-untyped-def]
    try:
        read(*args)
    except client.exceptions.ApiException as exc:
        if exc.status == 404:
            return True
        raise
    return False


@conformance("[sig-api-machinery] Garbage collector should delete pods created by rc when not orphaning [Conformance]")
def test_gc_delete_rc_pods(api, ns) -> None:  # type: ignore[no-untyped-def]
    core = client.CoreV1Api(api)
    wait_default_service_account(api, ns)
    labels = {"gctest": "delete_pods"}
    rc = core.create_namespaced_replication_controller(ns, owner_rc("simpletest.rc", 2, labels))
    wait_rc_replicas(core, ns, rc.metadata.name)
    core.delete_namespaced_replication_controller(rc.metadata.name, ns,
                                                  body=delete_options("Background", rc.metadata.uid))
    wait_for(lambda: not core.list_namespaced_replication_controller(ns).items
             and not core.list_namespaced_pod(ns).items, timeout=60, what="the rc and its pods to be collected")


@conformance("[sig-api-machinery] Garbage collector should orphan pods created by rc if delete options say so "
             "[Conformance] [Serial]")
def test_gc_orphan_rc_pods(api, ns) -> None:  # type: ignore[no-untyped-def]
    core = client.CoreV1Api(api)
    wait_default_service_account(api, ns)
    rc = core.create_namespaced_replication_controller(ns, owner_rc("simpletest.rc", REPLICAS,
                                                                    {"gctest": "orphan_pods"}))
    wait_rc_replicas(core, ns, rc.metadata.name)
    core.delete_namespaced_replication_controller(rc.metadata.name, ns,
                                                  body=delete_options("Orphan", rc.metadata.uid))
    wait_for(lambda: not core.list_namespaced_replication_controller(ns).items, timeout=120,
             what="the rc to be deleted")
    time.sleep(QUIET_WINDOW)
    pods = core.list_namespaced_pod(ns).items
    assert len(pods) == REPLICAS, f"expect {REPLICAS} pods, got {len(pods)}"
    for pod in pods:
        assert not pod.metadata.owner_references, pod.metadata.owner_references


@conformance("[sig-api-machinery] Garbage collector should delete RS created by deployment when not orphaning "
             "[Conformance]")
def test_gc_delete_deployment_rs(api, ns) -> None:  # type: ignore[no-untyped-def]
    apps, core = client.AppsV1Api(api), client.CoreV1Api(api)
    wait_default_service_account(api, ns)
    d = apps.create_namespaced_deployment(ns, owner_deployment("simpletest.deployment", {"gctest": "delete_rs"}))
    wait_for(lambda: apps.list_namespaced_replica_set(ns).items, timeout=60,
             what="the deployment to create a replica set")
    apps.delete_namespaced_deployment(d.metadata.name, ns, body=delete_options("Background", d.metadata.uid))
    # verifyRemainingDeploymentsReplicaSetsPods(0, 0, 0)
    wait_for(lambda: not apps.list_namespaced_deployment(ns).items and not apps.list_namespaced_replica_set(ns).items
             and not core.list_namespaced_pod(ns).items, timeout=60, what="all replica sets to be collected")


@conformance("[sig-api-machinery] Garbage collector should orphan RS created by deployment when "
             "deleteOptions.PropagationPolicy is Orphan [Conformance]")
def test_gc_orphan_deployment_rs(api, ns) -> None:  # type: ignore[no-untyped-def]
    apps, core = client.AppsV1Api(api), client.CoreV1Api(api)
    wait_default_service_account(api, ns)
    d = apps.create_namespaced_deployment(ns, owner_deployment("simpletest.deployment", {"gctest": "orphan_rs"}))
    wait_for(lambda: apps.list_namespaced_replica_set(ns).items, timeout=60,
             what="the deployment to create a replica set")
    # the two pods exist before the deletion, as they do upstream after its 30 s wait
    wait_for(lambda: len(core.list_namespaced_pod(ns).items) == 2, timeout=60, what="the deployment's two pods")
    apps.delete_namespaced_deployment(d.metadata.name, ns, body=delete_options("Orphan", d.metadata.uid))
    wait_for(lambda: not apps.list_namespaced_deployment(ns).items, timeout=60, what="the deployment to go")
    time.sleep(QUIET_WINDOW)
    assert len(apps.list_namespaced_replica_set(ns).items) == 1
    assert len(core.list_namespaced_pod(ns).items) == 2
    for rs in apps.list_namespaced_replica_set(ns).items:
        assert not any(o.controller for o in rs.metadata.owner_references or []), rs.metadata.owner_references


@conformance("[sig-api-machinery] Garbage collector should keep the rc around until all its pods are deleted if "
             "the deleteOptions says so [Conformance] [Serial]")
def test_gc_foreground_rc(api, ns) -> None:  # type: ignore[no-untyped-def]
    core = client.CoreV1Api(api)
    wait_default_service_account(api, ns)
    rc = core.create_namespaced_replication_controller(ns, owner_rc("simpletest.rc", REPLICAS,
                                                                    {"gctest": "delete_pods_foreground"}))
    wait_rc_replicas(core, ns, rc.metadata.name)
    core.delete_namespaced_replication_controller(rc.metadata.name, ns,
                                                  body=delete_options("Foreground", rc.metadata.uid))
    # while the rc is still there it carries the foregroundDeletion finalizer
    try:
        current = core.read_namespaced_replication_controller(rc.metadata.name, ns)
    except client.exceptions.ApiException as exc:
        assert exc.status == 404
    else:
        assert current.metadata.deletion_timestamp is not None
        assert "foregroundDeletion" in (current.metadata.finalizers or [])
    wait_for(lambda: gone(core.read_namespaced_replication_controller, rc.metadata.name, ns), timeout=60,
             what="the rc to be deleted")
    pods = core.list_namespaced_pod(ns).items
    assert not pods, f"expected no pods, got {[p.metadata.name for p in pods]}"


@conformance("[sig-api-machinery] Garbage collector should not delete dependents that have both valid owner and "
             "owner that's waiting for dependents to be deleted [Conformance] [Serial]")
def test_gc_multiple_owners(api, ns) -> None:  # type: ignore[no-untyped-def]
    core = client.CoreV1Api(api)
    wait_default_service_account(api, ns)
    rc1 = core.create_namespaced_replication_controller(
        ns, owner_rc("simpletest-rc-to-be-deleted", REPLICAS, {"gctest_d": "valid_and_pending_owners_d"}))
    rc2 = core.create_namespaced_replication_controller(
        ns, owner_rc("simpletest-rc-to-stay", 0, {"gctest_s": "valid_and_pending_owners_s"}))
    wait_rc_replicas(core, ns, rc1.metadata.name)
    half = REPLICAS // 2
    pods = core.list_namespaced_pod(ns).items
    patch = {"metadata": {"ownerReferences": [{"apiVersion": "v1", "kind": "ReplicationController",
                                               "name": rc2.metadata.name, "uid": rc2.metadata.uid}]}}
    for pod in pods[:half]:
        # a strategic merge on ownerReferences (merge key uid) adds rc2 beside rc1
        core.patch_namespaced_pod(pod.metadata.name, ns, patch)
    core.delete_namespaced_replication_controller(rc1.metadata.name, ns,
                                                  body=delete_options("Foreground", rc1.metadata.uid))
    wait_for(lambda: gone(core.read_namespaced_replication_controller, rc1.metadata.name, ns), timeout=90,
             what="rc1 to be deleted")
    remaining = core.list_namespaced_pod(ns).items
    assert len(remaining) == half, f"expected {half} pods, got {len(remaining)}"
    for pod in remaining:
        assert pod.metadata.deletion_timestamp is None
        assert len(pod.metadata.owner_references or []) == 1, pod.metadata.owner_references
        assert pod.metadata.owner_references[0].uid == rc2.metadata.uid


@conformance("[sig-api-machinery] Garbage collector should not be blocked by dependency circle [Conformance]")
def test_gc_dependency_circle(api, ns) -> None:  # type: ignore[no-untyped-def]
    core = client.CoreV1Api(api)
    wait_default_service_account(api, ns)

    def gc_pod(name: str) -> dict:
        return {"metadata": {"name": name},
                "spec": {"terminationGracePeriodSeconds": 30,
                         "containers": [{"name": "nginx", "image": NGINX}]}}
    pod1 = core.create_namespaced_pod(ns, gc_pod("pod1"))
    pod2 = core.create_namespaced_pod(ns, gc_pod("pod2"))
    pod3 = core.create_namespaced_pod(ns, gc_pod("pod3"))

    def add_ref(name: str, owner) -> object:  # type: ignore[no-untyped-def]
        return core.patch_namespaced_pod(name, ns, {"metadata": {"ownerReferences": [
            {"apiVersion": "v1", "kind": "Pod", "name": owner.metadata.name, "uid": owner.metadata.uid,
             "controller": True, "blockOwnerDeletion": True}]}})
    pod1 = add_ref("pod1", pod3)
    pod2 = add_ref("pod2", pod1)
    add_ref("pod3", pod2)
    core.delete_namespaced_pod("pod1", ns, body=delete_options("Foreground", pod1.metadata.uid))
    wait_for(lambda: not core.list_namespaced_pod(ns).items, timeout=90, what="all three pods to be deleted")
