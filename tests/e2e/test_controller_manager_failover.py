"""Two kube-controller-manager replicas on one cluster: one leads (holds the
`kube-system/kube-controller-manager` Lease), the other waits; `kill -9` of the leader hands
the Lease over once it expires (15 s, kube's default lease duration) and the survivor's
controllers finish the work the dead one never saw (issue #11's fault test)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from kubernetes import client

from tests.conftest import ServerProcess, start_server


def _lease_holder(coordination: client.CoordinationV1Api) -> str:
    try:
        lease = coordination.read_namespaced_lease("kube-controller-manager", "kube-system")
    except client.exceptions.ApiException:
        return ""
    return lease.spec.holder_identity or ""


def _wait(what: str, check, timeout: float = 60.0):  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = check()
        if value:
            return value
        time.sleep(0.5)
    raise AssertionError(f"timed out waiting for {what}")


def _replica(server: ServerProcess) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [sys.executable, "-m", "pykube_server", "controller-manager", "--kubeconfig", str(server.kubeconfig),
         "--controllers", "deployment-controller,replicaset-controller", "--log-level", "WARNING"],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def test_killing_the_leading_controller_manager_hands_over(tmp_path: Path) -> None:
    server: ServerProcess = start_server(tmp_path / "cluster", "--components=",
                                         "--disable-admission-plugins=ServiceAccount")
    replicas: list[subprocess.Popen[bytes]] = []
    try:
        api = server.api_client()
        coordination, apps, core = client.CoordinationV1Api(api), client.AppsV1Api(api), client.CoreV1Api(api)
        replicas.append(_replica(server))  # the first replica alone: it becomes the leader
        leader = _wait("a leader", lambda: _lease_holder(coordination))
        replicas.append(_replica(server))  # the standby
        time.sleep(4)  # two retry periods: the standby tried and found the lease held
        assert _lease_holder(coordination) == leader

        replicas[0].send_signal(signal.SIGKILL)
        replicas[0].wait(10)
        # work created while nobody leads is done by the replica that takes over
        core.create_namespace({"metadata": {"name": "failover"}})
        apps.create_namespaced_deployment("failover", {
            "metadata": {"name": "web"},
            "spec": {"replicas": 2, "selector": {"matchLabels": {"app": "web"}},
                     "template": {"metadata": {"labels": {"app": "web"}},
                                  "spec": {"containers": [{"name": "c", "image": "registry.k8s.io/pause:3.10"}]}}}})
        started = time.monotonic()
        new_leader = _wait("the standby to lead", lambda: (h := _lease_holder(coordination)) != leader and h)
        assert time.monotonic() - started >= 5, "the lease changed hands before it could have expired"
        _wait("the Deployment's pods", lambda: len(core.list_namespaced_pod("failover").items) == 2)
        (rs,) = apps.list_namespaced_replica_set("failover").items
        assert rs.spec.replicas == 2 and new_leader != leader
        assert replicas[1].poll() is None  # the new leader is the standby, still running
    finally:
        for proc in replicas:
            if proc.poll() is None:
                os.kill(proc.pid, signal.SIGTERM)
                try:
                    proc.wait(10)
                except subprocess.TimeoutExpired:
                    proc.kill()
        server.stop()
