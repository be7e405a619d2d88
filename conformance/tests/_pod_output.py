"""What the pod-running reproductions share (not tests themselves): the e2e framework's
`e2epodoutput.TestContainerOutput` / `TestContainerOutputRegexp` (run a pod to completion, then
match its container's log), and waits on a pod's phase and container states."""

from __future__ import annotations

import re
from typing import Any

from kubernetes import client

from conformance.harness import wait_for
from conformance.tests._common import wait_default_service_account


def wait_phase(core: client.CoreV1Api, ns: str, name: str, phases: tuple[str, ...], timeout: float = 90):  # type: ignore[no-untyped-def]
    """The pod once its phase is one of `phases`."""
    return wait_for(lambda: (p := core.read_namespaced_pod(name, ns)).status.phase in phases and p,
                    timeout=timeout, what=f"pod {name} in phase {'/'.join(phases)}")


def wait_running(core: client.CoreV1Api, ns: str, name: str, timeout: float = 90):  # type: ignore[no-untyped-def]
    return wait_phase(core, ns, name, ("Running",), timeout)


def container_status(pod: Any, name: str, init: bool = False, ephemeral: bool = False):  # type: ignore[no-untyped-def]
    statuses = (pod.status.init_container_statuses if init else
                pod.status.ephemeral_container_statuses if ephemeral else pod.status.container_statuses)
    return next((s for s in statuses or [] if s.name == name), None)


def run_to_completion(api: Any, ns: str, pod: dict, timeout: float = 90) -> str:
    """Create `pod` (restartPolicy Never), wait for it to succeed (e2epod.WaitForPodSuccessInNamespace
    fails early on a Failed pod) and return the log of its first container."""
    core = client.CoreV1Api(api)
    wait_default_service_account(api, ns)
    name = pod["metadata"]["name"]
    core.create_namespaced_pod(ns, pod)
    done = wait_phase(core, ns, name, ("Succeeded", "Failed"), timeout)
    container = pod["spec"]["containers"][0]["name"]
    log = core.read_namespaced_pod_log(name, ns, container=container)
    assert done.status.phase == "Succeeded", f"pod {name} failed: {done.status}\nlog:\n{log}"
    return log


def expect_output(api: Any, ns: str, pod: dict, expected: list[str], regexp: bool = False) -> str:
    """TestContainerOutput (substrings) or TestContainerOutputRegexp (regular expressions)."""
    log = run_to_completion(api, ns, pod)
    for want in expected:
        found = re.search(want, log) if regexp else want in log
        assert found, f"{want!r} not in the output of pod {pod['metadata']['name']}:\n{log}"
    return log
