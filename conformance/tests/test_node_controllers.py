"""Node-side behaviour driven by controllers and the kubelet: test/e2e/node/taints.go (NoExecute taint
eviction), test/e2e/common/node/container_probe.go (a readiness probe that always fails),
test/e2e/common/node/expansion.go (subPathExpr failures) and test/e2e/storage/empty_dir_wrapper.go.
Upstream's waits of minutes are scaled down (toleration seconds of 5-25 s), keeping their order."""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator

import pytest
from kubernetes import client, watch

from conformance.harness import conformance, wait_for
from conformance.tests._common import AGNHOST, BUSYBOX, PAUSE, wait_default_service_account

TAINT = {"key": "kubernetes.io/e2e-evict-taint-key", "value": "evictTaintVal", "effect": "NoExecute"}


def running(core: client.CoreV1Api, ns: str, name: str, timeout: float = 60):  # type: ignore[no-untyped-def]
    return wait_for(lambda: (p := core.read_namespaced_pod(name, ns)).status.phase == "Running" and p,
                    timeout=timeout, what=f"pod {name} to run")


def taint_pod(name: str, toleration_seconds: int | None, node: str | None = None) -> dict:
    """createPodForTaintsTest: a pause pod tolerating the eviction taint for a while."""
    spec: dict = {"containers": [{"name": "pause", "image": PAUSE}], "terminationGracePeriodSeconds": 0,
                  "tolerations": [{**TAINT, "operator": "Equal", "tolerationSeconds": toleration_seconds}]}
    if node:
        spec["nodeName"] = node
    return {"metadata": {"name": name, "labels": {"group": "taint-eviction"}}, "spec": spec}


@pytest.fixture
def tainter(api) -> Iterator:  # type: ignore[no-untyped-def]
    """Add the eviction taint to a node; always taken off again at the end."""
    core = client.CoreV1Api(api)
    tainted: list[str] = []

    def set_taint(node: str, present: bool) -> None:
        taints = [t for t in core.read_node(node).spec.taints or [] if t.key != TAINT["key"]]
        body = [{"key": t.key, "value": t.value, "effect": t.effect} for t in taints]
        if present:
            body.append(dict(TAINT))
            tainted.append(node)
        core.patch_node(node, {"spec": {"taints": body or None}})
    yield set_taint
    for node in tainted:
        set_taint(node, False)


def deleting_or_gone(core: client.CoreV1Api, ns: str, name: str) -> bool:
    try:
        return core.read_namespaced_pod(name, ns).metadata.deletion_timestamp is not None
    except client.exceptions.ApiException as exc:
        if exc.status == 404:
            return True
        raise


@conformance("[sig-node] NoExecuteTaintManager Single Pod removing taint cancels eviction [Conformance] "
             "[Disruptive] [Serial]")
def test_removing_taint_cancels_eviction(api, ns, tainter) -> None:  # type: ignore[no-untyped-def]
    core = client.CoreV1Api(api)
    wait_default_service_account(api, ns)
    core.create_namespaced_pod(ns, taint_pod("taint-eviction-4", 15))
    node = running(core, ns, "taint-eviction-4").spec.node_name
    tainter(node, True)
    time.sleep(5)  # the pod is queued for eviction, not yet evicted
    assert not deleting_or_gone(core, ns, "taint-eviction-4"), "evicted before its toleration ran out"
    tainter(node, False)
    time.sleep(15)  # past the toleration: the eviction must have been cancelled
    assert not deleting_or_gone(core, ns, "taint-eviction-4"), "evicted although the taint was removed"


@conformance("[sig-node] NoExecuteTaintManager Multiple Pods evicts pods with minTolerationSeconds [Conformance] "
             "[Disruptive] [Serial]")
def test_evicts_pods_with_min_toleration_seconds(api, ns, tainter) -> None:  # type: ignore[no-untyped-def]
    core = client.CoreV1Api(api)
    wait_default_service_account(api, ns)
    core.create_namespaced_pod(ns, taint_pod("taint-eviction-b1", 5))
    node = running(core, ns, "taint-eviction-b1").spec.node_name
    core.create_namespaced_pod(ns, taint_pod("taint-eviction-b2", 25, node=node))
    running(core, ns, "taint-eviction-b2")
    rv = core.list_namespaced_pod(ns).metadata.resource_version
    started = time.monotonic()
    tainter(node, True)
    order: list[tuple[str, float]] = []
    w = watch.Watch()
    for event in w.stream(core.list_namespaced_pod, ns, resource_version=rv, timeout_seconds=60):
        pod = event["object"]
        if (event["type"] == "DELETED" or pod.metadata.deletion_timestamp) and \
                pod.metadata.name not in (n for n, _ in order):
            order.append((pod.metadata.name, time.monotonic() - started))
            if len(order) == 2:
                w.stop()
    assert [n for n, _ in order] == ["taint-eviction-b1", "taint-eviction-b2"], order
    assert order[0][1] < 20, f"the pod tolerating 5 s went after {order[0][1]:.1f}s"
    assert order[1][1] >= 20, f"the pod tolerating 25 s went after {order[1][1]:.1f}s"


@conformance("[sig-node] Probing container with readiness probe that fails should never be ready and never restart "
             "[Conformance] [NodeConformance]")
def test_readiness_probe_never_ready(api, ns) -> None:  # type: ignore[no-untyped-def]
    core = client.CoreV1Api(api)
    wait_default_service_account(api, ns)
    name = f"test-webserver-{uuid.uuid4().hex[:8]}"
    core.create_namespaced_pod(ns, {"metadata": {"name": name}, "spec": {"containers": [{
        "name": "test-webserver", "image": AGNHOST, "command": ["sleep", "3600"],
        "readinessProbe": {"exec": {"command": ["/bin/false"]}, "initialDelaySeconds": 1, "periodSeconds": 2,
                           "failureThreshold": 1}}]}})
    running(core, ns, name)
    deadline = time.monotonic() + 20  # upstream watches for a minute
    while time.monotonic() < deadline:
        pod = core.read_namespaced_pod(name, ns)
        assert not any(c.type == "Ready" and c.status == "True" for c in pod.status.conditions or []), \
            "the pod became ready"
        time.sleep(1)
    status = core.read_namespaced_pod(name, ns).status.container_statuses[0]
    assert status.ready is False
    assert status.restart_count == 0


def subpath_pod(value: str) -> dict:
    """A pod whose subPathExpr expands to `value` (from an env var)."""
    return {"metadata": {"name": f"var-expansion-{uuid.uuid4().hex[:8]}"},
            "spec": {"restartPolicy": "Never",
                     "volumes": [{"name": "workdir1", "emptyDir": {}}],
                     "containers": [{"name": "dapi-container", "image": BUSYBOX, "command": ["sh", "-c", "sleep 600"],
                                     "env": [{"name": "POD_NAME", "value": value}],
                                     "volumeMounts": [{"name": "workdir1", "mountPath": "/logscontainer",
                                                       "subPathExpr": "$(POD_NAME)"}]}]}}


def wait_config_error(core: client.CoreV1Api, ns: str, name: str) -> None:
    """WaitForPodContainerToFail(..., "CreateContainerConfigError")."""
    def failed() -> bool:
        for status in core.read_namespaced_pod(name, ns).status.container_statuses or []:
            if status.state.waiting and status.state.waiting.reason == "CreateContainerConfigError":
                return True
        return False
    wait_for(failed, timeout=60, what=f"{name} to fail with CreateContainerConfigError")


@conformance("[sig-node] Variable Expansion should fail substituting values in a volume subpath with absolute path "
             "[Conformance]")
def test_subpath_absolute_path_fails(api, ns) -> None:  # type: ignore[no-untyped-def]
    core = client.CoreV1Api(api)
    wait_default_service_account(api, ns)
    pod = core.create_namespaced_pod(ns, subpath_pod("/tmp"))
    wait_config_error(core, ns, pod.metadata.name)


@conformance("[sig-node] Variable Expansion should fail substituting values in a volume subpath with backticks "
             "[Conformance]")
def test_subpath_backticks_fails(api, ns) -> None:  # type: ignore[no-untyped-def]
    core = client.CoreV1Api(api)
    wait_default_service_account(api, ns)
    pod = core.create_namespaced_pod(ns, subpath_pod(".."))
    wait_config_error(core, ns, pod.metadata.name)


@conformance("[sig-storage] EmptyDir wrapper volumes should not conflict [Conformance]")
def test_wrapper_volumes_do_not_conflict(api, ns) -> None:  # type: ignore[no-untyped-def]
    core = client.CoreV1Api(api)
    wait_default_service_account(api, ns)
    suffix = uuid.uuid4().hex[:8]
    core.create_namespaced_secret(ns, {"metadata": {"name": f"wrapped-volume-race-{suffix}"},
                                       "data": {"data-1": "dmFsdWUtMQo="}})
    core.create_namespaced_config_map(ns, {"metadata": {"name": f"wrapped-volume-race-{suffix}"},
                                           "data": {"data-1": "value-1"}})
    name = f"pod-secrets-{suffix}"
    core.create_namespaced_pod(ns, {"metadata": {"name": name}, "spec": {
        "volumes": [{"name": "secret-volume", "secret": {"secretName": f"wrapped-volume-race-{suffix}"}},
                    {"name": "configmap-volume", "configMap": {"name": f"wrapped-volume-race-{suffix}"}}],
        "containers": [{"name": "secret-test", "image": AGNHOST, "command": ["sleep", "3600"],
                        "volumeMounts": [{"name": "secret-volume", "mountPath": "/etc/secret-volume"},
                                         {"name": "configmap-volume", "mountPath": "/etc/configmap-volume"}]}]}})
    running(core, ns, name)
    core.delete_namespaced_secret(f"wrapped-volume-race-{suffix}", ns)
    core.delete_namespaced_config_map(f"wrapped-volume-race-{suffix}", ns)
    core.delete_namespaced_pod(name, ns, grace_period_seconds=0)


@conformance("[sig-storage] EmptyDir wrapper volumes should not cause race condition when used for configmaps "
             "[Conformance] [Serial]")
def test_wrapper_volumes_no_race(api, ns) -> None:  # type: ignore[no-untyped-def]
    """50 ConfigMaps mounted by the 5 pods of an RC pinned to one node, three times over."""
    core = client.CoreV1Api(api)
    wait_default_service_account(api, ns)
    names = [f"racey-configmap-{i}" for i in range(50)]
    for name in names:
        core.create_namespaced_config_map(ns, {"metadata": {"name": name}, "data": {"data-1": "value-1"}})
    node = next(n.metadata.name for n in core.list_node().items if not n.spec.unschedulable)
    volumes = [{"name": f"racey-configmap-{i}", "configMap": {"name": name, "items": [
        {"key": "data-1", "path": "data-1"}]}} for i, name in enumerate(names)]
    mounts = [{"name": f"racey-configmap-{i}", "mountPath": f"/etc/config-{i}"} for i in range(len(names))]
    for iteration in range(3):
        rc_name = f"wrapped-volume-race-{uuid.uuid4().hex[:8]}"
        labels = {"name": rc_name}
        core.create_namespaced_replication_controller(ns, {"metadata": {"name": rc_name}, "spec": {
            "replicas": 5, "selector": labels, "template": {"metadata": {"labels": labels}, "spec": {
                "affinity": {"nodeAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": {
                    "nodeSelectorTerms": [{"matchExpressions": [
                        {"key": "kubernetes.io/hostname", "operator": "In", "values": [node]}]}]}}},
                "terminationGracePeriodSeconds": 0,
                "containers": [{"name": "test-container", "image": BUSYBOX, "command": ["sleep", "10000"],
                                "volumeMounts": mounts}],
                "volumes": volumes}}}})

        def all_running() -> bool:
            pods = core.list_namespaced_pod(ns, label_selector=f"name={rc_name}").items
            return len(pods) == 5 and all(p.status.phase == "Running" for p in pods)
        wait_for(all_running, timeout=120, what=f"iteration {iteration}: 5 running pods")
        core.delete_namespaced_replication_controller(rc_name, ns, propagation_policy="Foreground")
        wait_for(lambda: not core.list_namespaced_pod(ns, label_selector=f"name={rc_name}").items, timeout=60,
                 what=f"iteration {iteration}: the pods to go")
