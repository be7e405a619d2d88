"""Ephemeral containers: test/e2e/common/node/ephemeral_containers.go. An ephemeral container is
added through `pods/<name>/ephemeralcontainers`, runs its shell loop as a local process, answers
`exec` and has a log."""

from __future__ import annotations

import uuid

from kubernetes import client

from conformance.harness import conformance, wait_for
from conformance.tests._common import AGNHOST, BUSYBOX, retry_on_conflict, wait_default_service_account
from conformance.tests._pod_output import container_status, wait_running

POLO = ["/bin/sh", "-c", "while true; do echo polo; sleep 2; done"]


def target_pod(api, ns: str) -> str:  # type: ignore[no-untyped-def]
    core = client.CoreV1Api(api)
    wait_default_service_account(api, ns)
    name = f"ephemeral-containers-target-pod-{uuid.uuid4().hex[:8]}"
    core.create_namespaced_pod(ns, {"metadata": {"name": name}, "spec": {"containers": [{
        "name": "test-container-1", "image": BUSYBOX,
        "command": ["/bin/sh", "-c", "trap exit TERM; while true; do sleep 1; done"]}]}})
    wait_running(core, ns, name)
    return name


def add_ephemeral_sync(api, ns: str, pod: str, name: str, image: str) -> None:  # type: ignore[no-untyped-def]
    """PodClient.AddEphemeralContainerSync: a strategic merge patch of the subresource, then wait
    for the container to run."""
    core = client.CoreV1Api(api)
    core.patch_namespaced_pod_ephemeralcontainers(pod, ns, {"spec": {"ephemeralContainers": [{
        "name": name, "image": image, "imagePullPolicy": "IfNotPresent", "command": POLO, "stdin": True,
        "tty": True}]}})
    wait_for(lambda: (s := container_status(core.read_namespaced_pod(pod, ns), name, ephemeral=True))
             and s.state.running, timeout=60, what=f"ephemeral container {name} running")


def check_marco_polo(api, cluster, ns: str, pod: str, name: str) -> None:  # type: ignore[no-untyped-def]
    out = cluster.kubectl("exec", pod, "-n", ns, "-c", name, "--", "/bin/echo", "marco").stdout
    assert "marco" in out, out
    core = client.CoreV1Api(api)
    wait_for(lambda: "polo" in core.read_namespaced_pod_log(pod, ns, container=name), timeout=30,
             what=f"polo in the log of {name}")


@conformance("[sig-node] Ephemeral Containers will start an ephemeral container in an existing pod "
             "[Conformance] [NodeConformance]")
def test_start_ephemeral_container(api, ns, cluster) -> None:  # type: ignore[no-untyped-def]
    pod = target_pod(api, ns)
    add_ephemeral_sync(api, ns, pod, "debugger", BUSYBOX)
    check_marco_polo(api, cluster, ns, pod, "debugger")


@conformance("[sig-node] Ephemeral Containers should update the ephemeral containers in an existing pod "
             "[Conformance] [NodeConformance]")
def test_update_ephemeral_containers(api, ns, cluster) -> None:  # type: ignore[no-untyped-def]
    core = client.CoreV1Api(api)
    pod = target_pod(api, ns)
    add_ephemeral_sync(api, ns, pod, "debugger", BUSYBOX)
    check_marco_polo(api, cluster, ns, pod, "debugger")
    got = core.read_namespaced_pod_ephemeralcontainers(pod, ns)
    assert len(got.spec.ephemeral_containers or []) == 1, got.spec.ephemeral_containers

    def add_second() -> None:
        current = core.read_namespaced_pod(pod, ns)
        body = core.api_client.sanitize_for_serialization(current)
        body["spec"]["ephemeralContainers"].append({
            "name": "debugger2", "image": AGNHOST, "imagePullPolicy": "IfNotPresent", "command": POLO,
            "stdin": True, "tty": True})
        core.replace_namespaced_pod_ephemeralcontainers(pod, ns, body)
    retry_on_conflict(add_second)
    got = core.read_namespaced_pod_ephemeralcontainers(pod, ns)
    assert [c.name for c in got.spec.ephemeral_containers or []] == ["debugger", "debugger2"]
