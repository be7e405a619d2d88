"""Exec liveness probes: test/e2e/common/node/container_probe.go. The probe runs `cat /tmp/health`
in the container (the process runtime's exec joins its mount namespace); the container itself is
a busybox shell script run as a local process. The process runtime's containers share the host's
/tmp (a real container has its own), so each pod here uses its own file under it, named after the
namespace: otherwise the "restarted" pod's `rm`, still running while the next test starts, takes
the other pod's file away."""

from __future__ import annotations

import time
import uuid

from kubernetes import client

from conformance.harness import conformance, wait_for
from conformance.tests._common import BUSYBOX, wait_default_service_account


def liveness_pod(script: str, health: str) -> dict:
    return {"metadata": {"name": f"busybox-{uuid.uuid4()}", "labels": {"test": "liveness"}},
            "spec": {"containers": [{
                "name": "busybox", "image": BUSYBOX, "command": ["/bin/sh", "-c", script.replace("HEALTH", health)],
                "livenessProbe": {"exec": {"command": ["cat", health]}, "initialDelaySeconds": 15,
                                  "timeoutSeconds": 5, "failureThreshold": 1}}]}}


def run_liveness_test(api, ns: str, pod: dict, expect_restarts: int, observe: float) -> None:  # type: ignore[no-untyped-def]
    """RunLivenessTest: wait until the pod is not Pending, then count restarts (which must only
    grow) until `expect_restarts` are seen or `observe` seconds pass."""
    core = client.CoreV1Api(api)
    wait_default_service_account(api, ns)
    name = pod["metadata"]["name"]
    core.create_namespaced_pod(ns, pod)
    wait_for(lambda: core.read_namespaced_pod(name, ns).status.phase != "Pending", timeout=90,
             what=f"pod {name} not pending")

    def restarts() -> int:
        statuses = core.read_namespaced_pod(name, ns).status.container_statuses or []
        return next(s.restart_count for s in statuses if s.name == "busybox")
    last = initial = restarts()
    observed = 0
    deadline = time.monotonic() + observe + initial * 10
    while time.monotonic() < deadline:
        count = restarts()
        assert count >= last, f"restart count should increment monotonically: {last} -> {count}"
        observed += count - last
        last = count
        if expect_restarts > 0 and observed >= expect_restarts:
            break
        time.sleep(2)
    if expect_restarts == 0:
        assert observed == 0, f"pod {name} restarted {observed} times, expected none"
    else:
        assert observed >= expect_restarts, f"pod {name} restarted {observed} times, expected {expect_restarts}"


@conformance("[sig-node] Probing container should be restarted with a exec \"cat /tmp/health\" liveness probe "
             "[Conformance] [NodeConformance]")
def test_exec_liveness_restarts(api, ns) -> None:  # type: ignore[no-untyped-def]
    pod = liveness_pod("echo ok >HEALTH; sleep 10; rm -rf HEALTH; sleep 600", f"/tmp/health-{ns}")
    run_liveness_test(api, ns, pod, 1, observe=240)


@conformance("[sig-node] Probing container should *not* be restarted with a exec \"cat /tmp/health\" liveness "
             "probe [Conformance] [NodeConformance]")
def test_exec_liveness_no_restart(api, ns) -> None:  # type: ignore[no-untyped-def]
    pod = liveness_pod("echo ok >HEALTH; sleep 600", f"/tmp/health-{ns}")
    # upstream observes for 4 minutes; 30 s covers the 15 s initial delay and several 10 s periods
    run_liveness_test(api, ns, pod, 0, observe=30)
