"""API-only reproductions from several upstream files: test/e2e/apimachinery/chunking.go (continuing
a list after compaction), test/e2e/node/node_lifecycle.go, test/e2e/node/pods.go (QOS class) and
test/e2e/common/node/sysctl.go (invalid sysctls rejected)."""

from __future__ import annotations

import json
import time
import uuid

from kubernetes import client

from conformance.harness import conformance, expect_status, wait_for
from conformance.tests._common import AGNHOST, BUSYBOX, retry_on_conflict, wait_default_service_account

TOTAL_TEMPLATES = 400


# --- chunking ----------------------------------------------------------------------------------

def _create_templates(core: client.CoreV1Api, ns: str) -> None:
    """chunking.go's BeforeEach: 400 PodTemplates named template-0000 ... template-0399."""
    for i in range(TOTAL_TEMPLATES):
        core.create_namespaced_pod_template(ns, {"metadata": {"name": f"template-{i:04d}"},
                                                 "template": {"metadata": {"labels": {"name": f"test-{i}"}},
                                                              "spec": {"containers": [{"name": "test", "image": BUSYBOX}]}}})


def _check_remaining(page, seen_before: int) -> None:  # type: ignore[no-untyped-def]
    if not page.metadata._continue:
        assert page.metadata.remaining_item_count is None
    else:
        assert page.metadata.remaining_item_count is not None
        assert page.metadata.remaining_item_count + len(page.items) + seen_before == TOTAL_TEMPLATES


@conformance("[sig-api-machinery] Servers with support for API chunking should support continue listing from the last key if the original version has been compacted away, though the list is inconsistent [Conformance] [Slow]")
def test_chunking_continue_after_compaction(api, ns) -> None:  # type: ignore[no-untyped-def]
    """The first page's token outlives its revision only until compaction (5 minutes of watch history
    by default, as etcd's default compaction interval): then the server answers 410 Expired with a
    token that continues, inconsistently, at the newest revision. (The suite's own cluster keeps a
    minute of history, so this takes about that long there.)"""
    core = client.CoreV1Api(api)
    _create_templates(core, ns)
    one_tenth = TOTAL_TEMPLATES // 10
    first = core.list_namespaced_pod_template(ns, limit=one_tenth)
    _check_remaining(first, 0)
    first_rv = first.metadata.resource_version
    # a write elsewhere moves the store's revision on, so compaction has something newer to keep
    core.create_namespaced_config_map(ns, {"metadata": {"name": "moves-the-revision"}})

    inconsistent = ""
    deadline = time.monotonic() + 600  # upstream: twice etcd's default compaction interval
    while not inconsistent:
        try:
            core.list_namespaced_pod_template(ns, limit=one_tenth, _continue=first.metadata._continue)
        except client.exceptions.ApiException as exc:
            assert exc.status == 410, exc.body
            status = json.loads(exc.body)
            assert status["reason"] == "Expired"
            inconsistent = status["metadata"].get("continue", "")
            assert inconsistent, "the 410 Status carries no continue token"
            break
        assert time.monotonic() < deadline, "the continue token never expired"
        time.sleep(5)

    page = core.list_namespaced_pod_template(ns, limit=one_tenth, _continue=inconsistent)
    assert page.metadata.resource_version != first_rv
    assert len(page.items) == one_tenth
    found = one_tenth
    _check_remaining(page, found)
    for item in page.items:
        assert item.metadata.name == f"template-{found:04d}"
        found += 1
    last_rv = page.metadata.resource_version
    token = page.metadata._continue
    while token:
        page = core.list_namespaced_pod_template(ns, limit=one_tenth, _continue=token)
        _check_remaining(page, found)
        assert len(page.items) <= one_tenth
        assert page.metadata.resource_version == last_rv
        for item in page.items:
            assert item.metadata.name == f"template-{found:04d}"
            found += 1
        token = page.metadata._continue
    assert found == TOTAL_TEMPLATES


# --- node lifecycle ----------------------------------------------------------------------------

@conformance("[sig-node] Node Lifecycle should run through the lifecycle of a node [Conformance]")
def test_node_lifecycle(api) -> None:  # type: ignore[no-untyped-def]
    core = client.CoreV1Api(api)
    name = "e2e-fake-node-" + uuid.uuid4().hex[:5]
    fake = {"metadata": {"name": name}, "spec": {"unschedulable": True},
            "status": {"phase": "Running", "conditions": [{"status": "True", "message": "Set from e2e test",
                                                           "reason": "E2E", "type": "Ready"}]}}
    try:
        created = core.create_node(fake)
        assert created.metadata.name == name
        assert core.read_node(name).metadata.name == name

        patched = core.patch_node(name, {"metadata": {"labels": {name: "patched"}}})
        assert patched.metadata.labels[name] == "patched"
        assert len(core.list_node(label_selector=f"{name}=patched").items) == 1

        def update():  # type: ignore[no-untyped-def]
            node = core.read_node(name)
            node.metadata.labels[name] = "updated"
            return core.replace_node(name, node)
        assert retry_on_conflict(update).metadata.labels[name] == "updated"

        core.delete_node(name)

        def gone() -> bool:
            try:
                core.read_node(name)
            except client.exceptions.ApiException as exc:
                if exc.status == 404:
                    return True
                raise
            return False
        wait_for(gone, timeout=180, interval=1, what=f"node {name} deleted")
    finally:
        try:
            core.delete_node(name)
        except client.exceptions.ApiException as exc:
            if exc.status != 404:
                raise


# --- QOS class ---------------------------------------------------------------------------------

@conformance("[sig-node] Pods Extended Pods Set QOS Class should be set on Pods with matching resource requests and limits for memory and cpu [Conformance]")
def test_pod_qos_class_guaranteed(api, ns) -> None:  # type: ignore[no-untyped-def]
    wait_default_service_account(api, ns)
    core = client.CoreV1Api(api)
    name = "pod-qos-class-" + str(uuid.uuid4())
    resources = {"cpu": "100m", "memory": "100Mi"}
    pod = {"metadata": {"name": name, "labels": {"name": name}},
           "spec": {"containers": [{"name": "agnhost", "image": AGNHOST, "args": ["pause"],
                                    "resources": {"limits": dict(resources), "requests": dict(resources)}}]}}
    core.create_namespaced_pod(ns, pod)
    assert core.read_namespaced_pod(name, ns).status.qos_class == "Guaranteed"


# --- sysctls -----------------------------------------------------------------------------------

@conformance("[sig-node] Sysctls [LinuxOnly] should reject invalid sysctls [Conformance] [NodeConformance]")
def test_sysctls_reject_invalid(api, ns) -> None:  # type: ignore[no-untyped-def]
    wait_default_service_account(api, ns)
    core = client.CoreV1Api(api)
    pod = {"metadata": {"name": "sysctl-" + uuid.uuid4().hex[:8]},
           "spec": {"restartPolicy": "Never",
                    "securityContext": {"sysctls": [{"name": "foo-", "value": "bar"},
                                                    {"name": "kernel.shmmax", "value": "100000000"},
                                                    {"name": "safe-and-unsafe", "value": "100000000"},
                                                    {"name": "bar..", "value": "42"}]},
                    "containers": [{"name": "test-container", "image": BUSYBOX}]}}
    message = json.loads(expect_status(422, core.create_namespaced_pod, ns, pod).body)["message"]
    assert 'Invalid value: "foo-"' in message
    assert 'Invalid value: "bar.."' in message
    assert "safe-and-unsafe" not in message
    assert "kernel.shmmax" not in message
