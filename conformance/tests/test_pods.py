"""Pods through the API and the kubelet: test/e2e/common/node/pods.go (the tests that need no exec,
no logs and no particular image behaviour: pause/agnhost containers run as placeholders here)."""

from __future__ import annotations

import time
import uuid

from kubernetes import client, watch

from conformance.harness import conformance, expect_status, wait_for
from conformance.tests._common import AGNHOST, HTTPD, PAUSE, restricted, wait_default_service_account


def wait_running(core: client.CoreV1Api, ns: str, name: str, timeout: float = 60):  # type: ignore[no-untyped-def]
    return wait_for(lambda: (p := core.read_namespaced_pod(name, ns)).status.phase == "Running" and p,
                    timeout=timeout, what=f"pod {name} running")


def watch_events(core: client.CoreV1Api, ns: str, selector: str, resource_version: str, until,  # type: ignore[no-untyped-def]
                 timeout: int = 60) -> list[dict]:
    """Watch the namespace's pods from `resource_version` until `until(event)` holds; returns the events."""
    seen = []
    w = watch.Watch()
    for event in w.stream(core.list_namespaced_pod, ns, label_selector=selector, resource_version=resource_version,
                          timeout_seconds=timeout):
        seen.append(event)
        if until(event):
            w.stop()
            return seen
    raise AssertionError(f"the watch ended first; saw {[e['type'] for e in seen]}")


@conformance("[sig-node] Pods should get a host IP [Conformance] [NodeConformance]")
def test_pod_host_ip(api, ns) -> None:  # type: ignore[no-untyped-def]
    core = client.CoreV1Api(api)
    wait_default_service_account(api, ns)
    name = f"pod-hostip-{uuid.uuid4()}"
    core.create_namespaced_pod(ns, restricted({"metadata": {"name": name},
                                               "spec": {"containers": [{"name": "test", "image": PAUSE}]}}))
    wait_running(core, ns, name)
    pod = wait_for(lambda: (p := core.read_namespaced_pod(name, ns)).status.host_ip and p, timeout=120,
                   what="a host IP")
    assert pod.status.host_ip


@conformance("[sig-node] Pods should be submitted and removed [Conformance] [NodeConformance]")
def test_pod_submitted_and_removed(api, ns) -> None:  # type: ignore[no-untyped-def]
    core = client.CoreV1Api(api)
    wait_default_service_account(api, ns)
    name = f"pod-submit-remove-{uuid.uuid4()}"
    value = str(time.time_ns() % 1_000_000_000)
    selector = f"time={value}"
    before = core.list_namespaced_pod(ns, label_selector=selector)
    assert before.items == []
    core.create_namespaced_pod(ns, restricted({"metadata": {"name": name, "labels": {"name": "foo", "time": value}},
                                               "spec": {"containers": [{"name": "pause", "image": PAUSE}]}}))
    assert len(core.list_namespaced_pod(ns, label_selector=selector).items) == 1
    first = watch_events(core, ns, selector, before.metadata.resource_version, lambda e: True)
    assert first[0]["type"] == "ADDED", first[0]["type"]

    wait_running(core, ns, name)
    core.read_namespaced_pod(name, ns)
    core.delete_namespaced_pod(name, ns, grace_period_seconds=30)
    events = watch_events(core, ns, selector, before.metadata.resource_version,
                          lambda e: e["type"] == "DELETED", timeout=60)
    last = events[-1]["object"]
    assert last.metadata.deletion_timestamp is not None
    assert last.spec.termination_grace_period_seconds
    assert core.list_namespaced_pod(ns, label_selector=selector).items == []


@conformance("[sig-node] Pods should be updated [Conformance] [NodeConformance]")
def test_pod_updated(api, ns) -> None:  # type: ignore[no-untyped-def]
    core = client.CoreV1Api(api)
    wait_default_service_account(api, ns)
    name = f"pod-update-{uuid.uuid4()}"
    value = str(time.time_ns() % 1_000_000_000)
    core.create_namespaced_pod(ns, restricted({"metadata": {"name": name, "labels": {"name": "foo", "time": value}},
                                               "spec": {"containers": [{"name": "pause", "image": PAUSE}]}}))
    wait_running(core, ns, name)
    assert len(core.list_namespaced_pod(ns, label_selector=f"time={value}").items) == 1
    for attempt in range(5):   # podClient.Update retries on conflict
        pod = core.read_namespaced_pod(name, ns)
        value = str(time.time_ns() % 1_000_000_000)
        pod.metadata.labels["time"] = value
        try:
            core.replace_namespaced_pod(name, ns, pod)
            break
        except client.exceptions.ApiException as exc:
            if exc.status != 409 or attempt == 4:
                raise
    wait_running(core, ns, name)
    assert len(core.list_namespaced_pod(ns, label_selector=f"time={value}").items) == 1


@conformance("[sig-node] Pods should allow activeDeadlineSeconds to be updated [Conformance] [NodeConformance]")
def test_pod_active_deadline_updated(api, ns) -> None:  # type: ignore[no-untyped-def]
    core = client.CoreV1Api(api)
    wait_default_service_account(api, ns)
    name = f"pod-update-activedeadlineseconds-{uuid.uuid4()}"
    value = str(time.time_ns() % 1_000_000_000)
    core.create_namespaced_pod(ns, restricted({"metadata": {"name": name, "labels": {"name": "foo", "time": value}},
                                               "spec": {"containers": [{"name": "pause", "image": PAUSE}]}}))
    wait_running(core, ns, name)
    assert len(core.list_namespaced_pod(ns, label_selector=f"time={value}").items) == 1
    for attempt in range(5):
        pod = core.read_namespaced_pod(name, ns)
        pod.spec.active_deadline_seconds = 5
        try:
            core.replace_namespaced_pod(name, ns, pod)
            break
        except client.exceptions.ApiException as exc:
            if exc.status != 409 or attempt == 4:
                raise
    # e2epod.WaitForPodTerminatedInNamespace: phase Failed with status.reason DeadlineExceeded
    wait_for(lambda: (p := core.read_namespaced_pod(name, ns)).status.phase == "Failed"
             and p.status.reason == "DeadlineExceeded", timeout=30, what="the pod to fail with DeadlineExceeded")


@conformance("[sig-node] Pods should delete a collection of pods [Conformance]")
def test_pod_delete_collection(api, ns) -> None:  # type: ignore[no-untyped-def]
    core = client.CoreV1Api(api)
    wait_default_service_account(api, ns)
    names = ["test-pod-1", "test-pod-2", "test-pod-3"]
    for name in names:
        core.create_namespaced_pod(ns, restricted({
            "metadata": {"name": name, "labels": {"type": "Testing"}},
            "spec": {"terminationGracePeriodSeconds": 1, "restartPolicy": "Never",
                     "containers": [{"name": "token-test", "image": AGNHOST}]}}))

    def all_ready() -> bool:
        pods = core.list_namespaced_pod(ns).items
        return len(pods) >= 3 and all(p.status.phase == "Running" and any(
            c.type == "Ready" and c.status == "True" for c in p.status.conditions or []) for p in pods)
    wait_for(all_ready, timeout=60, what="3 pods running and ready")
    core.delete_collection_namespaced_pod(ns, grace_period_seconds=1, label_selector="type=Testing")
    wait_for(lambda: core.list_namespaced_pod(ns, label_selector="type=Testing").items == [], timeout=60,
             what="the pods to be deleted")


@conformance("[sig-node] Pods should run through the lifecycle of Pods and PodStatus [Conformance]")
def test_pod_lifecycle_and_status(api, ns) -> None:  # type: ignore[no-untyped-def]
    core = client.CoreV1Api(api)
    wait_default_service_account(api, ns)
    name, selector = "pod-test", "test-pod-static=true"
    listed = core.list_pod_for_all_namespaces(label_selector=selector)
    core.create_namespaced_pod(ns, restricted({
        "metadata": {"name": name, "labels": {"test-pod-static": "true"}},
        "spec": {"terminationGracePeriodSeconds": 1, "containers": [{"name": name, "image": AGNHOST}]}}))
    watch_events(core, ns, selector, listed.metadata.resource_version,
                 lambda e: e["object"].metadata.name == name and e["object"].status.phase == "Running")
    p = core.read_namespaced_pod(name, ns)
    assert p.status.phase == "Running"

    pre_patch = p.metadata.resource_version
    core.patch_namespaced_pod(name, ns, {"metadata": {"labels": {"test-pod": "patched"}},
                                         "spec": {"terminationGracePeriodSeconds": 1,
                                                  "containers": [{"name": name, "image": HTTPD}]}})
    watch_events(core, ns, selector, pre_patch,
                 lambda e: e["type"] == "MODIFIED" and e["object"].metadata.labels.get("test-pod-static") == "true",
                 timeout=30)
    pod = core.read_namespaced_pod(name, ns)
    assert pod.metadata.labels.get("test-pod") == "patched"
    assert pod.spec.containers[0].image == HTTPD

    for attempt in range(5):   # retry.RetryOnConflict
        current = core.api_client.sanitize_for_serialization(core.read_namespaced_pod_status(name, ns))
        flipped = 0
        for cond in current["status"].get("conditions") or []:
            if cond["type"] in ("Ready", "ContainersReady") and cond["status"] == "True":
                cond["status"] = "False"
                flipped += 1
        assert flipped == 2, f"failed to patch all relevant Pod conditions: {current['status'].get('conditions')}"
        try:
            updated = core.replace_namespaced_pod_status(name, ns, current)
            break
        except client.exceptions.ApiException as exc:
            if exc.status != 409 or attempt == 4:
                raise
    falses = [c for c in updated.status.conditions or []
              if c.type in ("Ready", "ContainersReady") and c.status == "False"]
    assert len(falses) == 2

    pre_delete = updated.metadata.resource_version
    core.delete_collection_namespaced_pod(ns, grace_period_seconds=1, label_selector=selector)
    watch_events(core, ns, selector, pre_delete, lambda e: e["type"] == "DELETED", timeout=60)
    expect_status(404, core.read_namespaced_pod, name, ns)


@conformance("[sig-node] Pods should patch a pod status [Conformance]")
def test_pod_patch_status(api, ns) -> None:  # type: ignore[no-untyped-def]
    core = client.CoreV1Api(api)
    wait_default_service_account(api, ns)
    name = f"pod-{uuid.uuid4().hex[:5]}"
    core.create_namespaced_pod(ns, restricted({
        "metadata": {"name": name, "labels": {"e2e": name}},
        "spec": {"terminationGracePeriodSeconds": 1, "containers": [{"name": "agnhost", "image": AGNHOST}]}}))
    wait_running(core, ns, name)
    result = core.patch_namespaced_pod_status(
        name, ns, {"metadata": {"annotations": {"patchedstatus": "true"}},
                   "status": {"message": "Patched by e2e test", "reason": "E2E"}},
        _content_type="application/merge-patch+json")
    assert result.status.message == "Patched by e2e test"
    assert result.status.reason == "E2E"
