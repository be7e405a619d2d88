"""Init containers: test/e2e/common/node/init_container.go. The init and app containers run
`/bin/true`, `/bin/false` (real local processes) or pause (a placeholder process); each test
follows the pod with one watch and checks what every observed status may and may not show."""

from __future__ import annotations

import time
import uuid

from kubernetes import client, watch

from conformance.harness import conformance
from conformance.tests._common import BUSYBOX, PAUSE, wait_default_service_account


def init_pod(policy: str, inits: list[list[str]], app: dict) -> dict:
    name = f"pod-init-{uuid.uuid4()}"
    value = str(time.time_ns())
    return {"metadata": {"name": name, "labels": {"name": "foo", "time": value}},
            "spec": {"restartPolicy": policy,
                     "initContainers": [{"name": f"init{i + 1}", "image": BUSYBOX, "command": cmd}
                                        for i, cmd in enumerate(inits)],
                     "containers": [app]}}


def follow(api, ns: str, pod: dict, *conditions, timeout: int = 180):  # type: ignore[no-untyped-def]
    """Create the pod and watch it; each condition `(pod) -> bool` (raising on a violated
    invariant) must hold in turn, as watchtools.UntilWithoutRetry does; returns the last pod."""
    core = client.CoreV1Api(api)
    wait_default_service_account(api, ns)
    start = core.list_namespaced_pod(ns, field_selector=f"metadata.name={pod['metadata']['name']}")
    core.create_namespaced_pod(ns, pod)
    pending = list(conditions)
    w = watch.Watch()
    for event in w.stream(core.list_namespaced_pod, ns, field_selector=f"metadata.name={pod['metadata']['name']}",
                          resource_version=start.metadata.resource_version, timeout_seconds=timeout):
        obj = event["object"]
        while pending and pending[0](obj):
            pending.pop(0)
        if not pending:
            w.stop()
            return obj
    raise AssertionError(f"the pod did not reach every condition within {timeout}s ({len(pending)} left)")


def completed(pod) -> bool:  # type: ignore[no-untyped-def]
    """conditions.PodCompleted."""
    return pod.status.phase in ("Succeeded", "Failed")


def condition(pod, kind: str):  # type: ignore[no-untyped-def]
    return next((c for c in pod.status.conditions or [] if c.type == kind), None)


def assert_inits_done(pod) -> None:  # type: ignore[no-untyped-def]
    init = condition(pod, "Initialized")
    assert init is not None and init.status == "True", pod.status.conditions
    assert len(pod.status.init_container_statuses or []) == 2
    for s in pod.status.init_container_statuses:
        assert s.ready, f"init container {s.name} should be ready"
        assert s.state.terminated is not None and s.state.terminated.exit_code == 0, s.state


@conformance("[sig-node] InitContainer should invoke init containers on a RestartNever pod [Conformance] "
             "[NodeConformance]")
def test_init_containers_restart_never(api, ns) -> None:  # type: ignore[no-untyped-def]
    pod = init_pod("Never", [["/bin/true"], ["/bin/true"]],
                   {"name": "run1", "image": BUSYBOX, "command": ["/bin/true"]})
    end = follow(api, ns, pod, completed)
    assert end.status.phase == "Succeeded", end.status
    assert_inits_done(end)


@conformance("[sig-node] InitContainer should invoke init containers on a RestartAlways pod [Conformance] "
             "[NodeConformance]")
def test_init_containers_restart_always(api, ns) -> None:  # type: ignore[no-untyped-def]
    pod = init_pod("Always", [["/bin/true"], ["/bin/true"]],
                   {"name": "run1", "image": PAUSE, "resources": {"limits": {"cpu": "100m"}}})
    end = follow(api, ns, pod, lambda p: p.status.phase == "Running")
    assert_inits_done(end)


def app_still_initializing(pod) -> None:  # type: ignore[no-untyped-def]
    for s in pod.status.container_statuses or []:
        assert s.state.waiting is not None, f"container {s.name} should not be out of waiting: {s.state}"
        assert s.state.waiting.reason == "PodInitializing", s.state.waiting


@conformance("[sig-node] InitContainer should not start app containers if init containers fail on a "
             "RestartAlways pod [Conformance] [NodeConformance]")
def test_init_containers_fail_restart_always(api, ns) -> None:  # type: ignore[no-untyped-def]
    pod = init_pod("Always", [["/bin/false"], ["/bin/true"]],
                   {"name": "run1", "image": PAUSE, "resources": {"limits": {"cpu": "100m"}}})

    def first_init(p):  # type: ignore[no-untyped-def]
        """The invariants of every observation; the first init container's status once both exist."""
        app_still_initializing(p)
        statuses = p.status.init_container_statuses or []
        if len(statuses) != 2:
            return None
        second = statuses[1]
        assert second.state.waiting is not None, f"second init container should not be out of waiting: {second}"
        assert second.state.waiting.reason == "PodInitializing", second.state.waiting
        first = statuses[0]
        assert not (first.state.terminated and first.state.terminated.exit_code == 0), first
        return first

    def restarted_once(p) -> bool:  # type: ignore[no-untyped-def]
        first = first_init(p)
        return first is not None and first.last_state.terminated is not None

    def restarted_thrice(p) -> bool:  # type: ignore[no-untyped-def]
        first = first_init(p)
        return first is not None and first.restart_count >= 3

    end = follow(api, ns, pod, restarted_once, restarted_thrice, timeout=240)
    assert end.status.phase == "Pending", end.status.phase
    init = condition(end, "Initialized")
    assert init is not None and init.status == "False", end.status.conditions
    assert init.reason == "ContainersNotInitialized", init
    assert init.message == "containers with incomplete status: [init1 init2]", init.message
    assert len(end.status.init_container_statuses) == 2


@conformance("[sig-node] InitContainer should not start app containers and fail the pod if init containers "
             "fail on a RestartNever pod [Conformance] [NodeConformance]")
def test_init_containers_fail_restart_never(api, ns) -> None:  # type: ignore[no-untyped-def]
    pod = init_pod("Never", [["/bin/true"], ["/bin/false"]],
                   {"name": "run1", "image": BUSYBOX, "command": ["/bin/true"]})

    def second_failed(p) -> bool:  # type: ignore[no-untyped-def]
        app_still_initializing(p)
        statuses = p.status.init_container_statuses or []
        if len(statuses) != 2:
            return False
        first, second = statuses
        if first.state.terminated is None:
            assert first.state.waiting is None or first.state.waiting.reason == "PodInitializing", first.state
            return False
        assert first.state.terminated.exit_code == 0, f"first init container should have exitCode == 0: {first}"
        if second.state.terminated is None:
            return False
        assert second.state.terminated.exit_code != 0, f"second init container should have failed: {second}"
        return True

    end = follow(api, ns, pod, second_failed, completed)
    assert end.status.phase == "Failed", end.status.phase
    init = condition(end, "Initialized")
    assert init is not None and init.status == "False", end.status.conditions
    assert init.reason == "ContainersNotInitialized", init
    assert init.message == "containers with incomplete status: [init2]", init.message
    assert len(end.status.init_container_statuses) == 2
    assert end.status.container_statuses[0].state.waiting is not None, end.status.container_statuses
