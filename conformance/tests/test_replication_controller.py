"""ReplicationControllers: test/e2e/apps/rc.go (the tests that need no served image)."""

from __future__ import annotations

import uuid

from kubernetes import client
from kubernetes.utils import parse_quantity

from conformance.harness import conformance, wait_for
from conformance.tests._common import (
    HTTPD, NGINX, EventStream, pods_running, retry_on_conflict, wait_default_service_account,
)


def new_rc(name: str, replicas: int, labels: dict[str, str], container: str, image: str) -> dict:
    """Upstream's newRC: no selector (it defaults to the template labels), grace period 0."""
    return {"metadata": {"name": name},
            "spec": {"replicas": replicas,
                     "template": {"metadata": {"labels": dict(labels)},
                                  "spec": {"terminationGracePeriodSeconds": 0,
                                           "containers": [{"name": container, "image": image}]}}}}


def controlled_by(pod, uid: str) -> bool:  # type: ignore[no-untyped-def]
    return any(o.controller and o.uid == uid for o in pod.metadata.owner_references or [])


@conformance("[sig-apps] ReplicationController should adopt matching pods on creation [Conformance]")
def test_rc_adopt_matching_pods(api, ns) -> None:  # type: ignore[no-untyped-def]
    core = client.CoreV1Api(api)
    wait_default_service_account(api, ns)
    name = "pod-adoption"
    core.create_namespaced_pod(ns, {"metadata": {"name": name, "labels": {"name": name}},
                                    "spec": {"containers": [{"name": name, "image": HTTPD}]}})
    wait_for(lambda: core.read_namespaced_pod(name, ns).status.phase == "Running", timeout=60, what="pod running")
    body = new_rc(name, 1, {"name": name}, name, HTTPD)
    body["spec"]["selector"] = {"name": name}
    rc = core.create_namespaced_replication_controller(ns, body)

    def adopted_or_gone() -> bool:
        try:
            return controlled_by(core.read_namespaced_pod(name, ns), rc.metadata.uid)
        except client.exceptions.ApiException as exc:
            if exc.status == 404:
                return True
            raise
    wait_for(adopted_or_gone, timeout=60, what="the orphan pod to be adopted")


@conformance("[sig-apps] ReplicationController should release no longer matching pods [Conformance]")
def test_rc_release_pods(api, ns) -> None:  # type: ignore[no-untyped-def]
    core = client.CoreV1Api(api)
    wait_default_service_account(api, ns)
    name = "pod-release"
    body = new_rc(name, 1, {"name": name}, name, HTTPD)
    body["spec"]["selector"] = {"name": name}
    rc = core.create_namespaced_replication_controller(ns, body)
    target = pods_running(api, ns, f"name={name}", 1)[0].metadata.name

    def relabel() -> None:
        pod = core.read_namespaced_pod(target, ns)
        pod.metadata.labels = {"name": "not-matching-name"}
        core.replace_namespaced_pod(target, ns, pod)
    retry_on_conflict(relabel)
    wait_for(lambda: not controlled_by(core.read_namespaced_pod(target, ns), rc.metadata.uid), timeout=60,
             what="the pod to be released")


@conformance("[sig-apps] ReplicationController should surface a failure condition on a common issue like "
             "exceeded quota [Conformance]")
def test_rc_failure_condition_on_quota(api, ns) -> None:  # type: ignore[no-untyped-def]
    core = client.CoreV1Api(api)
    wait_default_service_account(api, ns)
    name = "condition-test"
    core.create_namespaced_resource_quota(ns, {"metadata": {"name": name}, "spec": {"hard": {"pods": "2"}}})
    wait_for(lambda: parse_quantity(((core.read_namespaced_resource_quota(name, ns).status.hard) or {})
                                    .get("pods", "0")) == 2, timeout=60, what="the quota to sync")
    rc = core.create_namespaced_replication_controller(ns, new_rc(name, 3, {"name": name}, "httpd", HTTPD))

    def failure_condition(present: bool, generation: int):  # type: ignore[no-untyped-def]
        def check() -> bool:
            got = core.read_namespaced_replication_controller(name, ns)
            if generation > (got.status.observed_generation or 0):
                return False
            has = any(c.type == "ReplicaFailure" for c in got.status.conditions or [])
            return has == present
        return check
    wait_for(failure_condition(True, rc.metadata.generation), timeout=60,
             what="the ReplicaFailure condition")

    def scale_down():  # type: ignore[no-untyped-def]
        got = core.read_namespaced_replication_controller(name, ns)
        got.spec.replicas = 2
        return core.replace_namespaced_replication_controller(name, ns, got)
    rc = retry_on_conflict(scale_down)
    wait_for(failure_condition(False, rc.metadata.generation), timeout=60,
             what="the ReplicaFailure condition to go")


@conformance("[sig-apps] ReplicationController should test the lifecycle of a ReplicationController [Conformance]")
def test_rc_lifecycle(api, ns) -> None:  # type: ignore[no-untyped-def]
    core = client.CoreV1Api(api)
    wait_default_service_account(api, ns)
    name, selector = "rc-test", "test-rc-static=true"
    stream = EventStream(core.list_namespaced_replication_controller, ns, selector)
    seen: list[str] = []

    def of_type(kind: str):  # type: ignore[no-untyped-def]
        return lambda t, _o: t == kind
    try:
        core.create_namespaced_replication_controller(ns, {
            "metadata": {"name": name, "labels": {"test-rc-static": "true"}},
            "spec": {"replicas": 1, "selector": {"test-rc-static": "true"},
                     "template": {"metadata": {"name": name, "labels": {"test-rc-static": "true"}},
                                  "spec": {"containers": [{"name": name, "image": NGINX}]}}}})
        seen.append(stream.until(of_type("ADDED"))["type"])
        stream.until(lambda _t, rc: rc.status.replicas == 1 and rc.status.ready_replicas == 1, timeout=120)

        patched = core.patch_namespaced_replication_controller(name, ns, {"metadata": {"labels": {"test-rc": "patched"}}})
        assert patched.metadata.labels.get("test-rc") == "patched"
        seen.append(stream.until(of_type("MODIFIED"))["type"])

        status = core.patch_namespaced_replication_controller_status(
            name, ns, {"status": {"readyReplicas": 0, "availableReplicas": 0}})
        assert not status.status.ready_replicas
        seen.append(stream.until(of_type("MODIFIED"))["type"])
        stream.until(lambda _t, rc: rc.status.replicas == 1, timeout=120)
        assert core.read_namespaced_replication_controller_status(name, ns).status.replicas == 1

        core.patch_namespaced_replication_controller_scale(name, ns, {"spec": {"replicas": 2}})
        seen.append(stream.until(of_type("MODIFIED"))["type"])
        stream.until(lambda _t, rc: rc.metadata.name == name and rc.metadata.namespace == ns
                     and rc.status.replicas == 2 and rc.status.ready_replicas == 2, timeout=120)

        rc = core.read_namespaced_replication_controller(name, ns)
        assert rc.metadata.labels.get("test-rc") == "patched"
        rc.status.available_replicas = 1
        rc.status.ready_replicas = 1
        core.replace_namespaced_replication_controller_status(name, ns, rc)
        seen.append(stream.until(of_type("MODIFIED"))["type"])

        listed = core.list_replication_controller_for_all_namespaces(label_selector=selector)
        assert any(i.metadata.name == name and i.metadata.namespace == ns
                   and i.metadata.labels.get("test-rc-static") == "true"
                   and i.metadata.labels.get("test-rc") == "patched" for i in listed.items)

        core.delete_collection_namespaced_replication_controller(ns, label_selector=selector)
        seen.append(stream.until(of_type("DELETED"))["type"])
    finally:
        stream.stop()
    assert seen == ["ADDED", "MODIFIED", "MODIFIED", "MODIFIED", "MODIFIED", "DELETED"]


@conformance("[sig-apps] ReplicationController should get and update a ReplicationController scale [Conformance]")
def test_rc_scale(api, ns) -> None:  # type: ignore[no-untyped-def]
    core = client.CoreV1Api(api)
    wait_default_service_account(api, ns)
    name = f"e2e-rc-{uuid.uuid4().hex[:5]}"
    core.create_namespaced_replication_controller(ns, new_rc(name, 1, {"name": name}, "httpd", HTTPD))
    wait_for(lambda: core.read_namespaced_replication_controller(name, ns).status.replicas == 1, timeout=60,
             what="1 replica")
    scale = core.read_namespaced_replication_controller_scale(name, ns)
    assert scale.status.replicas == 1
    scale.metadata.resource_version = ""
    scale.spec.replicas = 2
    core.replace_namespaced_replication_controller_scale(name, ns, scale)
    wait_for(lambda: core.read_namespaced_replication_controller(name, ns).status.replicas == 2, timeout=60,
             what="2 replicas")
