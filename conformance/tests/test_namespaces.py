"""test/e2e/apimachinery/namespace.go"""

from __future__ import annotations

from kubernetes import client
from kubernetes.client.exceptions import ApiException

from conformance.harness import conformance, unique, wait_for

PAUSE = "registry.k8s.io/pause:3.10"


def _gone_then_recreate(core: client.CoreV1Api, name: str) -> None:
    core.delete_namespace(name)
    wait_for(lambda: _absent(lambda: core.read_namespace(name)), timeout=60, what=f"namespace {name} to be removed")
    core.create_namespace({"metadata": {"name": name}})


def _absent(read) -> bool:  # type: ignore[no-untyped-def]
    try:
        read()
    except ApiException as exc:
        if exc.status == 404:
            return True
        raise
    return False


@conformance("[sig-api-machinery] Namespaces should ensure that all pods are removed when a namespace is deleted [Conformance] [Serial]")
def test_namespace_deletion_removes_pods(api) -> None:  # type: ignore[no-untyped-def]
    core = client.CoreV1Api(api)
    name = unique("nsdeletetest")
    core.create_namespace({"metadata": {"name": name}})
    try:
        wait_for(lambda: core.read_namespaced_service_account("default", name), timeout=30, what="default SA")
        core.create_namespaced_pod(name, {"metadata": {"name": "test-pod"},
                                          "spec": {"containers": [{"name": "nginx", "image": PAUSE}]}})
        wait_for(lambda: core.read_namespaced_pod("test-pod", name).status.phase == "Running", timeout=60,
                 what="pod Running")
        _gone_then_recreate(core, name)
        assert core.list_namespaced_pod(name).items == []
    finally:
        try:
            core.delete_namespace(name)
        except ApiException:
            pass


@conformance("[sig-api-machinery] Namespaces should ensure that all services are removed when a namespace is deleted [Conformance] [Serial]")
def test_namespace_deletion_removes_services(api) -> None:  # type: ignore[no-untyped-def]
    core = client.CoreV1Api(api)
    name = unique("nsdeletetest")
    core.create_namespace({"metadata": {"name": name}})
    try:
        core.create_namespaced_service(name, {"metadata": {"name": "test-service"},
                                              "spec": {"selector": {"foo": "bar", "baz": "blah"},
                                                       "ports": [{"port": 80, "targetPort": 80}]}})
        _gone_then_recreate(core, name)
        assert_no = core.list_namespaced_service(name).items
        assert assert_no == [], [s.metadata.name for s in assert_no]
    finally:
        try:
            core.delete_namespace(name)
        except ApiException:
            pass


@conformance("[sig-api-machinery] Namespaces should patch a Namespace [Conformance] [Serial]")
def test_namespace_patch(api) -> None:  # type: ignore[no-untyped-def]
    core = client.CoreV1Api(api)
    name = unique("nspatchtest")
    created = core.create_namespace({"metadata": {"name": name}})
    try:
        assert created.metadata.resource_version
        patched = core.patch_namespace(name, {"metadata": {"labels": {"testLabel": "testValue"}}})
        assert patched.metadata.resource_version != created.metadata.resource_version
        assert core.read_namespace(name).metadata.labels.get("testLabel") == "testValue"
    finally:
        core.delete_namespace(name)


@conformance("[sig-api-machinery] Namespaces should apply changes to a namespace status [Conformance] [Serial]")
def test_namespace_status(api, ns) -> None:  # type: ignore[no-untyped-def]
    core = client.CoreV1Api(api)
    status = core.read_namespace_status(ns)
    assert status.status.phase == "Active"
    body = {"metadata": {"annotations": {"e2e-patched-ns-status": ns}},
            "status": {"conditions": [{"type": "StatusPatch", "status": "True", "reason": "E2E",
                                       "message": "Patched by an e2e test"}]}}
    # a JSON merge patch, as upstream sends
    patched = core.patch_namespace_status(ns, body, _content_type="application/merge-patch+json")
    assert patched.metadata.annotations.get("e2e-patched-ns-status") == ns
    assert patched.status.conditions[-1].reason == "E2E"
    assert patched.status.conditions[-1].message == "Patched by an e2e test"

    current = core.read_namespace_status(ns)
    current.status.conditions = (current.status.conditions or []) + [
        client.V1NamespaceCondition(type="StatusUpdate", status="True", reason="E2E", message="Updated by an e2e test")]
    updated = core.replace_namespace_status(ns, current)
    assert updated.status.conditions[-1].type == "StatusUpdate"
    assert updated.status.conditions[-1].message == "Updated by an e2e test"


@conformance("[sig-api-machinery] Namespaces should apply an update to a Namespace [Conformance] [Serial]")
def test_namespace_update(api, ns) -> None:  # type: ignore[no-untyped-def]
    core = client.CoreV1Api(api)
    current = core.read_namespace(ns)
    current.metadata.labels = {**(current.metadata.labels or {}), ns: "updated"}
    updated = core.replace_namespace(ns, current)
    assert updated.metadata.labels.get(ns) == "updated"


@conformance("[sig-api-machinery] Namespaces should apply a finalizer to a Namespace [Conformance] [Serial]")
def test_namespace_finalizer(api) -> None:  # type: ignore[no-untyped-def]
    core = client.CoreV1Api(api)
    fake = "e2e.example.com/fakeFinalizer"
    name = unique("e2e-ns")
    core.create_namespace({"metadata": {"name": name}})
    try:
        current = core.read_namespace(name)
        current.spec.finalizers = (current.spec.finalizers or []) + [fake]
        updated = core.replace_namespace_finalize(name, current)
        assert fake in updated.spec.finalizers
        current = core.read_namespace(name)
        current.spec.finalizers = [f for f in current.spec.finalizers if f != fake]
        updated = core.replace_namespace_finalize(name, current)
        assert fake not in (updated.spec.finalizers or [])
    finally:
        core.delete_namespace(name)
