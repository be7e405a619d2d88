"""The kubelet through kubectl: a Ready node, a pod that runs, logs, is deleted, and one that fails."""

from __future__ import annotations

import time

import pytest

from tests.conftest import ServerProcess, requires_kubectl

pytestmark = [requires_kubectl, pytest.mark.kubectl]


def eventually(cluster: ServerProcess, args: list[str], want: str, timeout: float = 30.0) -> str:
    deadline = time.monotonic() + timeout
    out = ""
    while time.monotonic() < deadline:
        result = cluster.kubectl(*args, check=False)
        out = result.stdout + result.stderr
        if want in out:
            return out
        time.sleep(0.2)
    raise AssertionError(f"kubectl {' '.join(args)}: {want!r} not seen; last output:\n{out}")


def pod_manifest(name: str, command: str, *, restart: str = "Always") -> str:
    return f"""
apiVersion: v1
kind: Pod
metadata: {{name: {name}}}
spec:
  nodeName: pykube-node-1
  restartPolicy: {restart}
  terminationGracePeriodSeconds: 5
  containers:
  - name: main
    image: busybox
    command: ["sh", "-c", "{command}"]
"""


def test_node_is_ready(cluster: ServerProcess) -> None:
    out = eventually(cluster, ["get", "nodes"], "pykube-node-1   Ready")
    assert "v1.33.0" in out
    wide = cluster.kubectl("get", "node", "pykube-node-1", "-o", "wide").stdout
    assert "127.0.0.1" in wide and "pykube://0.1.0" in wide


def test_pod_runs_logs_and_is_deleted(cluster: ServerProcess, namespace: str) -> None:
    eventually(cluster, ["get", "nodes"], "pykube-node-1   Ready")
    cluster.kubectl("apply", "-n", namespace, "-f", "-", input=pod_manifest("hello", "echo hello; sleep 30"))
    eventually(cluster, ["get", "pod", "hello", "-n", namespace], "1/1     Running")
    ip = cluster.kubectl("get", "pod", "hello", "-n", namespace, "-o", "jsonpath={.status.podIP}").stdout
    assert ip.startswith("127.244.1.")
    assert eventually(cluster, ["logs", "hello", "-n", namespace], "hello").strip() == "hello"
    events = eventually(cluster, ["get", "events", "-n", namespace], "Started container main")
    assert "Created container: main" in events
    started = time.monotonic()
    cluster.kubectl("delete", "pod", "hello", "-n", namespace, timeout=30)
    assert time.monotonic() - started < 10  # SIGTERM ends `sleep` at once; no need for the grace period
    result = cluster.kubectl("get", "pod", "hello", "-n", namespace, check=False)
    assert "NotFound" in result.stderr


def test_failing_pod_with_restart_never_is_failed_error(cluster: ServerProcess, namespace: str) -> None:
    eventually(cluster, ["get", "nodes"], "pykube-node-1   Ready")
    cluster.kubectl("apply", "-n", namespace, "-f", "-", input=pod_manifest("fails", "echo oops; exit 1", restart="Never"))
    eventually(cluster, ["get", "pod", "fails", "-n", namespace], "0/1     Error")
    phase = cluster.kubectl("get", "pod", "fails", "-n", namespace, "-o", "jsonpath={.status.phase}").stdout
    assert phase == "Failed"
    code = cluster.kubectl("get", "pod", "fails", "-n", namespace, "-o",
                           "jsonpath={.status.containerStatuses[0].state.terminated.exitCode}").stdout
    assert code == "1"
    assert "oops" in cluster.kubectl("logs", "fails", "-n", namespace).stdout


def test_logs_of_waiting_container_is_a_bad_request(cluster: ServerProcess, namespace: str) -> None:
    manifest = pod_manifest("waits", "sleep 30").replace("image: busybox", "image: busybox\n    env:\n"
                                                          "    - {name: X, valueFrom: {secretKeyRef: {name: nope, key: k}}}")
    cluster.kubectl("apply", "-n", namespace, "-f", "-", input=manifest)
    eventually(cluster, ["get", "pod", "waits", "-n", namespace], "CreateContainerConfigError")
    result = cluster.kubectl("logs", "waits", "-n", namespace, check=False)
    assert 'container "main" in pod "waits" is waiting to start: CreateContainerConfigError' in result.stderr
    cluster.kubectl("delete", "pod", "waits", "-n", namespace, "--wait=false")
