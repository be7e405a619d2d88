"""RuntimeClass: test/e2e/common/node/runtimeclass.go (the conformance tests: API operations, the
RuntimeClass admission plugin's rejections and Overhead, scheduling of pods that name a class)."""

from __future__ import annotations

from kubernetes import client

from conformance.harness import api_status, conformance, expect_status, raw, wait_for
from conformance.tests._common import BUSYBOX, wait_default_service_account

PRECONFIGURED_HANDLER = "test-handler"


def runtime_class_pod(rc_name: str) -> dict:
    """e2eruntimeclass.NewRuntimeClassPod: a busybox pod running `true` once, no token mounted."""
    return {"metadata": {"generateName": "test-runtimeclass-"},
            "spec": {"runtimeClassName": rc_name, "restartPolicy": "Never", "automountServiceAccountToken": False,
                     "containers": [{"name": "test", "image": BUSYBOX, "command": ["true"]}]}}


def create_runtime_class(api, ns: str, name: str, handler: str, overhead: dict | None = None) -> str:  # type: ignore[no-untyped-def]
    """Upstream's createRuntimeClass: the class is named after the namespace."""
    unique = f"{ns}-{name}"
    body: dict = {"metadata": {"name": unique}, "handler": handler}
    if overhead:
        body["overhead"] = {"podFixed": overhead}
    client.NodeV1Api(api).create_runtime_class(body)
    return unique


def delete_runtime_class(api, name: str) -> None:  # type: ignore[no-untyped-def]
    try:
        client.NodeV1Api(api).delete_runtime_class(name)
    except client.exceptions.ApiException as exc:
        if exc.status != 404:
            raise


def expect_pod_rejection(api, ns: str, pod: dict) -> None:  # type: ignore[no-untyped-def]
    expect_status(403, client.CoreV1Api(api).create_namespaced_pod, ns, pod)


def scheduled_pod(api, ns: str):  # type: ignore[no-untyped-def]
    """e2epod.WaitForPodsWithLabelScheduled with an empty selector: every pod of the namespace has a node."""
    core = client.CoreV1Api(api)
    return wait_for(lambda: (pods := core.list_namespaced_pod(ns).items)
                    and all(p.spec.node_name for p in pods) and pods, timeout=60, what="the pod to be scheduled")


@conformance("[sig-node] RuntimeClass should reject a Pod requesting a non-existent RuntimeClass [Conformance] "
             "[NodeConformance]")
def test_runtimeclass_reject_nonexistent(api, ns) -> None:  # type: ignore[no-untyped-def]
    wait_default_service_account(api, ns)
    expect_pod_rejection(api, ns, runtime_class_pod(f"{ns}-nonexistent"))


@conformance("[sig-node] RuntimeClass should reject a Pod requesting a deleted RuntimeClass [Conformance] "
             "[NodeConformance]")
def test_runtimeclass_reject_deleted(api, ns) -> None:  # type: ignore[no-untyped-def]
    wait_default_service_account(api, ns)
    node = client.NodeV1Api(api)
    name = create_runtime_class(api, ns, "delete-me", "runc")
    node.delete_runtime_class(name)

    def gone() -> bool:
        try:
            node.read_runtime_class(name)
        except client.exceptions.ApiException as exc:
            if api_status(exc) == 404:
                return True
            raise
        return False
    wait_for(gone, timeout=60, what="the RuntimeClass to disappear")
    expect_pod_rejection(api, ns, runtime_class_pod(name))


@conformance("[sig-node] RuntimeClass should schedule a Pod requesting a RuntimeClass without PodOverhead "
             "[Conformance] [NodeConformance]")
def test_runtimeclass_schedule_without_overhead(api, ns) -> None:  # type: ignore[no-untyped-def]
    wait_default_service_account(api, ns)
    name = create_runtime_class(api, ns, "preconfigured-handler", PRECONFIGURED_HANDLER)
    try:
        pod = client.CoreV1Api(api).create_namespaced_pod(ns, runtime_class_pod(name))
        pods = scheduled_pod(api, ns)
        assert len(pods) == 1 and pods[0].metadata.name == pod.metadata.name
        assert not pods[0].spec.overhead
    finally:
        delete_runtime_class(api, name)


@conformance("[sig-node] RuntimeClass should schedule a Pod requesting a RuntimeClass and initialize its Overhead "
             "[Conformance] [NodeConformance]")
def test_runtimeclass_schedule_with_overhead(api, ns) -> None:  # type: ignore[no-untyped-def]
    from kubernetes.utils import parse_quantity

    wait_default_service_account(api, ns)
    name = create_runtime_class(api, ns, "preconfigured-handler", PRECONFIGURED_HANDLER,
                                {"cpu": "10m", "memory": "1Mi"})
    try:
        pod = client.CoreV1Api(api).create_namespaced_pod(ns, runtime_class_pod(name))
        pods = scheduled_pod(api, ns)
        assert len(pods) == 1 and pods[0].metadata.name == pod.metadata.name
        overhead = pods[0].spec.overhead or {}
        assert parse_quantity(overhead.get("cpu", "0")) == parse_quantity("10m")
        assert parse_quantity(overhead.get("memory", "0")) == parse_quantity("1Mi")
    finally:
        delete_runtime_class(api, name)


@conformance("[sig-node] RuntimeClass should support RuntimeClasses API operations [Conformance]")
def test_runtimeclass_api_operations(api, ns) -> None:  # type: ignore[no-untyped-def]
    from kubernetes import watch

    node = client.NodeV1Api(api)
    unique = ns
    selector = f"test={unique}"

    def new(suffix: str) -> dict:
        return {"metadata": {"name": f"{unique}-handler{suffix}", "labels": {"test": unique}},
                "handler": f"{unique}-conformance-runtime-class{suffix}"}

    groups = raw(api, "GET", "/apis").json()["groups"]
    assert any(g["name"] == "node.k8s.io" and any(v["version"] == "v1" for v in g["versions"]) for g in groups)
    group = raw(api, "GET", "/apis/node.k8s.io").json()
    assert any(v["version"] == "v1" for v in group["versions"])
    resources = raw(api, "GET", "/apis/node.k8s.io/v1").json()["resources"]
    assert any(r["name"] == "runtimeclasses" for r in resources)

    created = node.create_runtime_class(new(""))
    try:
        expect_status(409, node.create_runtime_class, new(""))
        node.create_runtime_class(new("2"))
        listed = node.list_runtime_class(label_selector=selector)
        w = watch.Watch()
        events = w.stream(node.list_runtime_class, label_selector=selector,
                          resource_version=listed.metadata.resource_version, timeout_seconds=30)
        node.create_runtime_class(new("3"))
        assert node.read_runtime_class(created.metadata.name).metadata.uid == created.metadata.uid
        assert len(node.list_runtime_class(label_selector=selector).items) == 3

        patched = node.patch_runtime_class(created.metadata.name, {"metadata": {"annotations": {"patched": "true"}}},
                                           _content_type="application/merge-patch+json")
        assert patched.metadata.annotations.get("patched") == "true"
        patched.metadata.annotations["updated"] = "true"
        updated = node.replace_runtime_class(created.metadata.name, patched)
        assert updated.metadata.annotations.get("updated") == "true"

        # upstream's loop ends at the first ADDED or annotated MODIFIED event
        for event in events:
            if event["type"] == "ADDED":
                break
            if event["type"] == "MODIFIED" and ((event["object"].metadata.annotations or {}).get("patched") == "true"
                                                or (event["object"].metadata.annotations or {}).get("updated")
                                                == "true"):
                break
        else:
            raise AssertionError("timed out waiting for watch event")
        w.stop()

        node.delete_runtime_class(created.metadata.name)
        expect_status(404, node.read_runtime_class, created.metadata.name)
        assert len(node.list_runtime_class(label_selector=selector).items) == 2
        node.delete_collection_runtime_class(label_selector=selector)
        assert node.list_runtime_class(label_selector=selector).items == []
    finally:
        node.delete_collection_runtime_class(label_selector=selector)
