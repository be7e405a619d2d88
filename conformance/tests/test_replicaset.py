"""ReplicaSets: test/e2e/apps/replica_set.go (the tests that need no served image)."""

from __future__ import annotations

import uuid

from kubernetes import client

from conformance.harness import conformance, wait_for
from conformance.tests._common import (
    AGNHOST, PAUSE, pods_running, retry_on_conflict, wait_default_service_account, watch_until,
)


def new_rs(name: str, replicas: int, labels: dict[str, str], container: str, image: str) -> dict:
    """Upstream's newRS: selector and template labels are the given labels, grace period 0."""
    return {"metadata": {"name": name, "labels": dict(labels)},
            "spec": {"selector": {"matchLabels": dict(labels)}, "replicas": replicas,
                     "template": {"metadata": {"labels": dict(labels)},
                                  "spec": {"terminationGracePeriodSeconds": 0,
                                           "containers": [{"name": container, "image": image}]}}}}


SAMPLE = {"name": "sample-pod", "pod": "agnhost"}


@conformance("[sig-apps] ReplicaSet should adopt matching pods on creation and release no longer matching pods "
             "[Conformance]")
def test_rs_adopt_and_release(api, ns) -> None:  # type: ignore[no-untyped-def]
    core, apps = client.CoreV1Api(api), client.AppsV1Api(api)
    wait_default_service_account(api, ns)
    name = "pod-adoption-release"
    labels = {"name": name}
    core.create_namespaced_pod(ns, {"metadata": {"name": name, "labels": labels},
                                    "spec": {"containers": [{"name": name, "image": AGNHOST}]}})
    wait_for(lambda: core.read_namespaced_pod(name, ns).status.phase == "Running", timeout=60, what="pod running")
    rs = apps.create_namespaced_replica_set(ns, new_rs(name, 1, labels, name, AGNHOST))

    def adopted_or_gone() -> bool:
        try:
            pod = core.read_namespaced_pod(name, ns)
        except client.exceptions.ApiException as exc:
            if exc.status == 404:
                return True
            raise
        return any(o.controller and o.uid == rs.metadata.uid for o in pod.metadata.owner_references or [])
    wait_for(adopted_or_gone, timeout=60, what="the orphan pod to be adopted")

    pods = pods_running(api, ns, f"name={name}", 1)
    target = pods[0].metadata.name

    def relabel() -> None:
        pod = core.read_namespaced_pod(target, ns)
        pod.metadata.labels = {"name": "not-matching-name"}
        core.replace_namespaced_pod(target, ns, pod)
    retry_on_conflict(relabel)

    def released() -> bool:
        pod = core.read_namespaced_pod(target, ns)
        return not any(o.controller and o.uid == rs.metadata.uid for o in pod.metadata.owner_references or [])
    wait_for(released, timeout=60, what="the pod to be released")


@conformance("[sig-apps] ReplicaSet Replicaset should have a working scale subresource [Conformance]")
def test_rs_scale_subresource(api, ns) -> None:  # type: ignore[no-untyped-def]
    apps = client.AppsV1Api(api)
    wait_default_service_account(api, ns)
    apps.create_namespaced_replica_set(ns, new_rs("test-rs", 1, SAMPLE, "agnhost", AGNHOST))
    pods_running(api, ns, "name=sample-pod", 1)
    # the ReplicaSet's status write may trail its pod's start on a loaded machine
    scale = wait_for(lambda: (s := apps.read_namespaced_replica_set_scale("test-rs", ns)).status.replicas == 1 and s,
                     timeout=30, what="the scale's status.replicas to be 1")
    assert scale.spec.replicas == 1 and scale.status.replicas == 1
    scale.metadata.resource_version = ""   # an unconditional update
    scale.spec.replicas = 2
    result = apps.replace_namespaced_replica_set_scale("test-rs", ns, scale)
    assert result.spec.replicas == 2
    assert apps.read_namespaced_replica_set("test-rs", ns).spec.replicas == 2
    apps.patch_namespaced_replica_set_scale("test-rs", ns, {"spec": {"replicas": 4}})
    assert apps.read_namespaced_replica_set("test-rs", ns).spec.replicas == 4


@conformance("[sig-apps] ReplicaSet Replace and Patch tests [Conformance]")
def test_rs_replace_and_patch(api, ns) -> None:  # type: ignore[no-untyped-def]
    apps = client.AppsV1Api(api)
    wait_default_service_account(api, ns)
    listed = apps.list_replica_set_for_all_namespaces(label_selector="test-rs=patched")
    created = apps.create_namespaced_replica_set(ns, new_rs("test-rs", 1, SAMPLE, "agnhost", AGNHOST))
    assert created.metadata.resource_version.isdigit()
    pods_running(api, ns, "name=sample-pod", 1)

    def scale_up() -> None:
        rs = apps.read_namespaced_replica_set("test-rs", ns)
        rs.spec.replicas = 2
        apps.replace_namespaced_replica_set("test-rs", ns, rs)
    retry_on_conflict(scale_up)

    patched = apps.patch_namespaced_replica_set("test-rs", ns, {
        "metadata": {"labels": {"test-rs": "patched"}},
        "spec": {"replicas": 3, "template": {"spec": {"terminationGracePeriodSeconds": 0,
                                                      "containers": [{"name": "test-rs", "image": PAUSE}]}}}})
    assert int(created.metadata.resource_version) < int(patched.metadata.resource_version)

    def scaled(_type: str, rs) -> bool:  # type: ignore[no-untyped-def]
        return (rs.metadata.name == "test-rs" and (rs.metadata.labels or {}).get("test-rs") == "patched"
                and rs.status.ready_replicas == 3 and rs.status.available_replicas == 3
                and rs.spec.template.spec.containers[0].image == PAUSE
                and rs.spec.template.spec.termination_grace_period_seconds == 0)
    watch_until(apps.list_namespaced_replica_set, ns, "test-rs=patched", listed.metadata.resource_version, scaled,
                timeout=120)


@conformance("[sig-apps] ReplicaSet should list and delete a collection of ReplicaSets [Conformance]")
def test_rs_list_and_delete_collection(api, ns) -> None:  # type: ignore[no-untyped-def]
    apps = client.AppsV1Api(api)
    wait_default_service_account(api, ns)
    e2e = uuid.uuid4().hex[:5]
    apps.create_namespaced_replica_set(ns, new_rs("test-rs", 3, {**SAMPLE, "e2e": e2e}, "agnhost", AGNHOST))
    pods_running(api, ns, "name=sample-pod", 3)
    apps.read_namespaced_replica_set("test-rs", ns)
    assert len(apps.list_replica_set_for_all_namespaces(label_selector=f"e2e={e2e}").items) == 1
    apps.delete_collection_namespaced_replica_set(ns, grace_period_seconds=1, label_selector=f"e2e={e2e}")
    assert apps.list_replica_set_for_all_namespaces(label_selector=f"e2e={e2e}").items == []


@conformance("[sig-apps] ReplicaSet should validate Replicaset Status endpoints [Conformance]")
def test_rs_status_endpoints(api, ns) -> None:  # type: ignore[no-untyped-def]
    apps = client.AppsV1Api(api)
    wait_default_service_account(api, ns)
    selector = "name=sample-pod,pod=agnhost"
    listed = apps.list_replica_set_for_all_namespaces(label_selector=selector)
    created = apps.create_namespaced_replica_set(ns, new_rs("test-rs", 1, SAMPLE, "agnhost", AGNHOST))
    pods_running(api, ns, "name=sample-pod", 1)
    apps.read_namespaced_replica_set_status("test-rs", ns)

    def update_status():  # type: ignore[no-untyped-def]
        rs = apps.api_client.sanitize_for_serialization(apps.read_namespaced_replica_set("test-rs", ns))
        rs["status"].setdefault("conditions", []).append(
            {"type": "StatusUpdate", "status": "True", "reason": "E2E", "message": "Set from e2e test"})
        return apps.replace_namespaced_replica_set_status("test-rs", ns, rs)
    retry_on_conflict(update_status)

    def mine(rs) -> bool:  # type: ignore[no-untyped-def]
        return (rs.metadata.name == created.metadata.name and rs.metadata.namespace == ns
                and rs.metadata.labels.get("name") == "sample-pod" and rs.metadata.labels.get("pod") == "agnhost")
    watch_until(apps.list_namespaced_replica_set, ns, selector, listed.metadata.resource_version,
                lambda _t, rs: mine(rs) and any(c.type == "StatusUpdate" and c.reason == "E2E"
                                                and c.message == "Set from e2e test"
                                                for c in rs.status.conditions or []), timeout=120)

    apps.patch_namespaced_replica_set_status(
        "test-rs", ns, {"status": {"conditions": [{"type": "StatusPatched", "status": "True"}]}},
        _content_type="application/merge-patch+json")
    watch_until(apps.list_namespaced_replica_set, ns, selector, listed.metadata.resource_version,
                lambda _t, rs: mine(rs) and any(c.type == "StatusPatched" for c in rs.status.conditions or []),
                timeout=120)
