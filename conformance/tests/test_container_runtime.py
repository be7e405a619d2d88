"""Containers that exit: test/e2e/common/node/runtime.go (restart policies, termination messages),
kubelet.go (busybox logs, a command that always fails) and the writable root filesystem of
security_context.go. The busybox commands run as real local processes."""

from __future__ import annotations

import datetime
import uuid

from kubernetes import client

from conformance.harness import conformance, raw, wait_for
from conformance.tests._common import BUSYBOX, wait_default_service_account
from conformance.tests._pod_output import container_status, wait_phase

# Fails on the first run, succeeds on the second, then runs until stopped: the restart count and
# phase tell the restart policies apart.
RESTART_SCRIPT = """
f=/restart-count/restartCount
count=$(echo 'hello' >> $f ; wc -l $f | awk {'print $1'})
if [ $count -eq 1 ]; then
	exit 1
fi
if [ $count -eq 2 ]; then
	exit 0
fi
while true; do sleep 1; done
"""


def pod_ready(pod) -> bool:  # type: ignore[no-untyped-def]
    return any(c.type == "Ready" and c.status == "True" for c in pod.status.conditions or [])


def gone(core: client.CoreV1Api, ns: str, name: str) -> bool:
    try:
        core.read_namespaced_pod(name, ns)
    except client.exceptions.ApiException as exc:
        return exc.status == 404
    return False


@conformance("[sig-node] Container Runtime blackbox test when starting a container that exits should run with "
             "the expected status [Conformance] [NodeConformance]")
def test_container_exits_expected_status(api, ns) -> None:  # type: ignore[no-untyped-def]
    core = client.CoreV1Api(api)
    wait_default_service_account(api, ns)
    cases = [("terminate-cmd-rpa", "Always", "Running", "running", 2, True),
             ("terminate-cmd-rpof", "OnFailure", "Succeeded", "terminated", 1, False),
             ("terminate-cmd-rpn", "Never", "Failed", "terminated", 0, False)]
    for cname, policy, phase, state, restarts, ready in cases:
        name = f"{cname}-{uuid.uuid4()}"
        core.create_namespaced_pod(ns, {"metadata": {"name": name}, "spec": {
            "restartPolicy": policy,
            "volumes": [{"name": "restart-count", "emptyDir": {"medium": "Memory"}}],
            "containers": [{"name": cname, "image": BUSYBOX, "command": ["sh", "-c", RESTART_SCRIPT],
                            "volumeMounts": [{"name": "restart-count", "mountPath": "/restart-count"}]}]}})

        def status():  # type: ignore[no-untyped-def]
            return container_status(core.read_namespaced_pod(name, ns), cname)
        wait_for(lambda: (s := status()) is not None and s.restart_count == restarts, timeout=120,
                 what=f"{cname}: restartCount {restarts}")
        pod = wait_phase(core, ns, name, (phase,), timeout=60)
        assert pod_ready(pod) == ready, (cname, pod.status.conditions)
        s = container_status(pod, cname)
        current = "running" if s.state.running else "terminated" if s.state.terminated else "waiting"
        assert current == state, (cname, s.state)
        core.delete_namespaced_pod(name, ns)
        wait_for(lambda: gone(core, ns, name), timeout=60, what=f"pod {name} deleted")


def terminated_message(api, ns: str, container: dict, phase: str) -> str:  # type: ignore[no-untyped-def]
    """runtime.go's matchTerminationMessage: run the container once, check the phase and the
    terminated state, return its message (Go's empty string for an absent one), delete the pod."""
    core = client.CoreV1Api(api)
    wait_default_service_account(api, ns)
    name = f"termination-message-{uuid.uuid4()}"
    container = {"name": "termination-message-container", "image": BUSYBOX, **container}
    core.create_namespaced_pod(ns, {"metadata": {"name": name},
                                    "spec": {"restartPolicy": "Never", "containers": [container]}})
    pod = wait_phase(core, ns, name, (phase,), timeout=90)
    s = container_status(pod, container["name"])
    assert s is not None and s.state.terminated is not None, pod.status
    core.delete_namespaced_pod(name, ns)
    return s.state.terminated.message or ""


@conformance("[sig-node] Container Runtime blackbox test on terminated container should report termination "
             "message from log output if TerminationMessagePolicy FallbackToLogsOnError is set [Conformance] "
             "[NodeConformance]")
def test_termination_message_from_log(api, ns) -> None:  # type: ignore[no-untyped-def]
    assert terminated_message(api, ns, {
        "command": ["/bin/sh", "-c"], "args": ["/bin/echo -n DONE; /bin/false"],
        "terminationMessagePath": "/dev/termination-log",
        "terminationMessagePolicy": "FallbackToLogsOnError"}, "Failed") == "DONE"


@conformance("[sig-node] Container Runtime blackbox test on terminated container should report termination "
             "message as empty when pod succeeds and TerminationMessagePolicy FallbackToLogsOnError is set "
             "[Conformance] [NodeConformance]")
def test_termination_message_empty_on_success(api, ns) -> None:  # type: ignore[no-untyped-def]
    assert terminated_message(api, ns, {
        "command": ["/bin/sh", "-c"], "args": ["/bin/echo -n DONE; /bin/true"],
        "terminationMessagePath": "/dev/termination-log",
        "terminationMessagePolicy": "FallbackToLogsOnError"}, "Succeeded") == ""


@conformance("[sig-node] Container Runtime blackbox test on terminated container should report termination "
             "message from file when pod succeeds and TerminationMessagePolicy FallbackToLogsOnError is set "
             "[Conformance] [NodeConformance]")
def test_termination_message_from_file(api, ns) -> None:  # type: ignore[no-untyped-def]
    assert terminated_message(api, ns, {
        "command": ["/bin/sh", "-c"],
        "args": ["/bin/echo -n OK > /dev/termination-log; /bin/echo DONE; /bin/true"],
        "terminationMessagePath": "/dev/termination-log",
        "terminationMessagePolicy": "FallbackToLogsOnError"}, "Succeeded") == "OK"


# --- kubelet.go --------------------------------------------------------------------------------------

@conformance("[sig-node] Kubelet when scheduling a busybox command in a pod should print the output to logs "
             "[Conformance] [NodeConformance]")
def test_kubelet_busybox_logs(api, ns) -> None:  # type: ignore[no-untyped-def]
    core = client.CoreV1Api(api)
    wait_default_service_account(api, ns)
    name = f"busybox-scheduling-{uuid.uuid4()}"
    core.create_namespaced_pod(ns, {"metadata": {"name": name}, "spec": {
        "restartPolicy": "Never",
        "containers": [{"name": name, "image": BUSYBOX, "command": ["sh", "-c", "echo 'Hello World' ; sleep 240"]}]}})
    wait_phase(core, ns, name, ("Running",))
    since = (datetime.datetime.now(datetime.timezone.utc) - datetime.timedelta(hours=1)).strftime("%Y-%m-%dT%H:%M:%SZ")

    def logs() -> bool:
        # the official client has no since_time parameter: the query goes as the Go client sends it
        response = raw(api, "GET", f"/api/v1/namespaces/{ns}/pods/{name}/log", query={"sinceTime": since},
                       headers={"Accept": "*/*"})
        assert response.status == 200, response.text
        text = response.text
        assert text == "Hello World\n", repr(text)
        return True
    wait_for(logs, timeout=60, interval=1, what="the pod's log to be 'Hello World'")


def create_bin_false(api, ns: str) -> str:  # type: ignore[no-untyped-def]
    wait_default_service_account(api, ns)
    name = f"bin-false{uuid.uuid4()}"
    client.CoreV1Api(api).create_namespaced_pod(ns, {"metadata": {"name": name}, "spec": {
        "restartPolicy": "Never", "containers": [{"name": name, "image": BUSYBOX, "command": ["/bin/false"]}]}})
    return name


@conformance("[sig-node] Kubelet when scheduling a busybox command that always fails in a pod should have an "
             "terminated reason [Conformance] [NodeConformance]")
def test_kubelet_always_fails_terminated_reason(api, ns) -> None:  # type: ignore[no-untyped-def]
    core = client.CoreV1Api(api)
    name = create_bin_false(api, ns)

    def terminated() -> bool:
        statuses = core.read_namespaced_pod(name, ns).status.container_statuses or []
        assert len(statuses) == 1, f"expected only one container in the pod {name}"
        state = statuses[0].state.terminated
        assert state is not None, "expected state to be terminated"
        assert state.exit_code != 0 and state.reason, (state.exit_code, state.reason)
        return True
    wait_for(terminated, timeout=120, interval=1, what="a terminated state with a reason")


@conformance("[sig-node] Kubelet when scheduling a busybox command that always fails in a pod should be "
             "possible to delete [Conformance] [NodeConformance]")
def test_kubelet_always_fails_delete(api, ns) -> None:  # type: ignore[no-untyped-def]
    core = client.CoreV1Api(api)
    name = create_bin_false(api, ns)
    core.delete_namespaced_pod(name, ns)
    wait_for(lambda: gone(core, ns, name), timeout=60, what=f"pod {name} deleted")


# --- security_context.go -----------------------------------------------------------------------------

@conformance("[sig-node] Security Context When creating a pod with readOnlyRootFilesystem should run the "
             "container with writable rootfs when readOnlyRootFilesystem=false [Conformance] [NodeConformance]")
def test_writable_rootfs(api, ns) -> None:  # type: ignore[no-untyped-def]
    core = client.CoreV1Api(api)
    wait_default_service_account(api, ns)
    name = f"busybox-readonly-false-{uuid.uuid4()}"
    core.create_namespaced_pod(ns, {"metadata": {"name": name}, "spec": {
        "restartPolicy": "Never",
        "containers": [{"name": name, "image": BUSYBOX, "command": ["sh", "-c", "touch checkfile"],
                        "securityContext": {"readOnlyRootFilesystem": False}}]}})
    pod = wait_phase(core, ns, name, ("Succeeded", "Failed"))
    assert pod.status.phase == "Succeeded", pod.status
