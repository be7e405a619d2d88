"""End to end on a real `pykube-server up`: termination messages, host-port admission at the
kubelet, and extended resources copied from node capacity to allocatable.

Real behaviour: the kubelet bind-mounts a file at `terminationMessagePath` and reports what the
container wrote there (or, with FallbackToLogsOnError after a failure, its log's tail) in
`state.terminated.message`; a pod bound by nodeName whose hostPort is taken is rejected (phase
Failed, reason NodePorts, "Pod was rejected: Predicate NodePorts failed: ..."); an extended
resource patched into `status.capacity` shows up in `status.allocatable`.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from kubernetes import client

from tests.conftest import ServerProcess

REJECTED = ("Pod was rejected: Predicate NodePorts failed: node(s) didn't have free ports for the "
            "requested pod ports")


def eventually(check: Callable[[], Any], timeout: float = 30.0) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        value = check()
        if value or time.monotonic() > deadline:
            assert value, "condition not met in time"
            return value
        time.sleep(0.2)


def terminated(core: client.CoreV1Api, ns: str, name: str) -> Any:
    pod = core.read_namespaced_pod(name, ns)
    if pod.status.phase not in ("Succeeded", "Failed") or not pod.status.container_statuses:
        return None
    return pod.status.container_statuses[0].state.terminated


def run_once(core: client.CoreV1Api, ns: str, name: str, script: str, policy: str) -> Any:
    core.create_namespaced_pod(ns, {"metadata": {"name": name}, "spec": {"restartPolicy": "Never", "containers": [
        {"name": "c", "image": "busybox", "command": ["/bin/sh", "-c", script],
         "terminationMessagePolicy": policy}]}})
    return eventually(lambda: terminated(core, ns, name), timeout=60)


def test_termination_messages(cluster: ServerProcess, namespace: str) -> None:
    core = client.CoreV1Api(cluster.api_client())
    state = run_once(core, namespace, "file", "echo -n OK > /dev/termination-log; echo DONE", "File")
    assert state.exit_code == 0 and state.message == "OK"
    state = run_once(core, namespace, "logs", "echo line1; echo -n DONE; exit 3", "FallbackToLogsOnError")
    assert state.exit_code == 3 and state.message == "line1\nDONE"
    state = run_once(core, namespace, "nologs", "echo -n DONE; exit 3", "File")
    assert state.exit_code == 3 and state.message is None


def test_host_port_taken_is_rejected_by_the_kubelet(cluster: ServerProcess, namespace: str) -> None:
    core = client.CoreV1Api(cluster.api_client())
    node = core.list_node().items[0].metadata.name

    def pod(name: str) -> dict[str, Any]:
        return {"metadata": {"name": name}, "spec": {"nodeName": node, "containers": [
            {"name": "c", "image": "busybox", "command": ["sleep", "3600"],
             "ports": [{"containerPort": 80, "hostPort": 21019}]}]}}
    core.create_namespaced_pod(namespace, pod("first"))
    eventually(lambda: core.read_namespaced_pod("first", namespace).status.phase == "Running", timeout=60)
    core.create_namespaced_pod(namespace, pod("second"))
    status = eventually(lambda: (s := core.read_namespaced_pod("second", namespace).status).phase == "Failed" and s)
    assert (status.reason, status.message) == ("NodePorts", REJECTED)
    events = core.list_namespaced_event(namespace, field_selector="involvedObject.name=second").items
    assert [(e.type, e.reason) for e in events if e.reason == "NodePorts"] == [("Warning", "NodePorts")]
    core.delete_namespaced_pod("first", namespace, grace_period_seconds=0)


def test_extended_capacity_reaches_allocatable(cluster: ServerProcess) -> None:
    core = client.CoreV1Api(cluster.api_client())
    node = core.list_node().items[0].metadata.name
    key = "example.com/pykube-dongle"
    core.patch_node_status(node, {"status": {"capacity": {key: "4"}}})
    try:
        eventually(lambda: (core.read_node(node).status.allocatable or {}).get(key) == "4", timeout=25)
    finally:
        core.patch_node_status(node, {"status": {"capacity": {key: None}}})
    eventually(lambda: key not in (core.read_node(node).status.allocatable or {}), timeout=25)
