"""`$(VAR)` expansion: test/e2e/common/node/expansion.go. The containers' shell commands run as real
local processes; the subPathExpr tests bind the expanded subpath of an emptyDir in the container's
mount namespace and look at it through `kubectl exec`."""

from __future__ import annotations

import time
import uuid

from kubernetes import client

from conformance.harness import conformance, wait_for
from conformance.tests._common import BUSYBOX, retry_on_conflict, wait_default_service_account
from conformance.tests._pod_output import expect_output, wait_running


def new_pod(command: list[str] | None, env: list[dict], mounts: list[dict] | None = None,
            volumes: list[dict] | None = None) -> dict:
    name = f"var-expansion-{uuid.uuid4()}"
    container: dict = {"name": "dapi-container", "image": BUSYBOX, "env": env}
    if command:
        container["command"] = command
    if mounts:
        container["volumeMounts"] = mounts
    spec: dict = {"containers": [container], "restartPolicy": "Never"}
    if volumes:
        spec["volumes"] = volumes
    return {"metadata": {"name": name, "labels": {"name": name}}, "spec": spec}


WORKDIR = [{"name": "workdir1", "emptyDir": {}}]
ANNOTATED_ENV = [{"name": "POD_NAME", "value": "foo"},
                 {"name": "ANNOTATION", "valueFrom": {"fieldRef": {
                     "apiVersion": "v1", "fieldPath": "metadata.annotations['mysubpath']"}}}]
ANNOTATED_MOUNTS = [{"name": "workdir1", "mountPath": "/subpath_mount", "subPathExpr": "$(ANNOTATION)/$(POD_NAME)"},
                    {"name": "workdir1", "mountPath": "/volume_mount"}]


@conformance("[sig-node] Variable Expansion should allow composing env vars into new env vars [Conformance] "
             "[NodeConformance]")
def test_compose_env_vars(api, ns) -> None:  # type: ignore[no-untyped-def]
    pod = new_pod(["sh", "-c", "env"], [{"name": "FOO", "value": "foo-value"}, {"name": "BAR", "value": "bar-value"},
                                        {"name": "FOOBAR", "value": "$(FOO);;$(BAR)"}])
    expect_output(api, ns, pod, ["FOO=foo-value", "BAR=bar-value", "FOOBAR=foo-value;;bar-value"])


@conformance("[sig-node] Variable Expansion should allow substituting values in a container's command "
             "[Conformance] [NodeConformance]")
def test_substitute_in_command(api, ns) -> None:  # type: ignore[no-untyped-def]
    pod = new_pod(["sh", "-c", 'TEST_VAR=wrong echo "$(TEST_VAR)"'], [{"name": "TEST_VAR", "value": "test-value"}])
    expect_output(api, ns, pod, ["test-value"])


@conformance("[sig-node] Variable Expansion should allow substituting values in a container's args "
             "[Conformance] [NodeConformance]")
def test_substitute_in_args(api, ns) -> None:  # type: ignore[no-untyped-def]
    pod = new_pod(["sh", "-c"], [{"name": "TEST_VAR", "value": "test-value"}])
    pod["spec"]["containers"][0]["args"] = ['TEST_VAR=wrong echo "$(TEST_VAR)"']
    expect_output(api, ns, pod, ["test-value"])


@conformance("[sig-node] Variable Expansion should allow substituting values in a volume subpath [Conformance]")
def test_substitute_in_subpath(api, ns) -> None:  # type: ignore[no-untyped-def]
    pod = new_pod(None, [{"name": "POD_NAME", "value": "foo"}],
                  [{"name": "workdir1", "mountPath": "/logscontainer", "subPathExpr": "$(POD_NAME)"},
                   {"name": "workdir1", "mountPath": "/testcontainer"}], WORKDIR)
    name = pod["metadata"]["name"]
    pod["spec"]["containers"][0]["env"][0]["value"] = name
    pod["spec"]["containers"][0]["command"] = ["sh", "-c", f"test -d /testcontainer/{name};echo $?"]
    log = expect_output(api, ns, pod, ["0"])
    assert log.strip() == "0", log


def exec_sh(cluster, ns: str, pod: str, command: str) -> None:  # type: ignore[no-untyped-def]
    """ExecShellInPodWithFullOutput: `sh -c` in the pod's first container, failing on a non-zero exit."""
    cluster.kubectl("exec", pod, "-n", ns, "--", "sh", "-c", command)


def set_annotation(core: client.CoreV1Api, ns: str, name: str, value: str) -> None:
    def update() -> None:
        pod = core.read_namespaced_pod(name, ns)
        pod.metadata.annotations = {**(pod.metadata.annotations or {}), "mysubpath": value}
        core.replace_namespaced_pod(name, ns, pod)
    retry_on_conflict(update)


def delete_and_wait(core: client.CoreV1Api, ns: str, name: str) -> None:
    """e2epod.DeletePodWithWait."""
    core.delete_namespaced_pod(name, ns)

    def gone() -> bool:
        try:
            core.read_namespaced_pod(name, ns)
        except client.exceptions.ApiException as exc:
            return exc.status == 404
        return False
    wait_for(gone, timeout=60, what=f"pod {name} to be deleted")


@conformance("[sig-node] Variable Expansion should succeed in writing subpaths in container [Conformance]")
def test_write_subpaths(api, ns, cluster) -> None:  # type: ignore[no-untyped-def]
    core = client.CoreV1Api(api)
    wait_default_service_account(api, ns)
    pod = new_pod(["sh", "-c", "tail -f /dev/null"], ANNOTATED_ENV, ANNOTATED_MOUNTS, WORKDIR)
    pod["metadata"]["annotations"] = {"mysubpath": "mypath"}
    name = pod["metadata"]["name"]
    core.create_namespaced_pod(ns, pod)
    wait_running(core, ns, name)
    exec_sh(cluster, ns, name, "touch /volume_mount/mypath/foo/test.log")
    exec_sh(cluster, ns, name, "test -f /subpath_mount/test.log")
    set_annotation(core, ns, name, "mynewpath")
    wait_running(core, ns, name)
    delete_and_wait(core, ns, name)


@conformance("[sig-node] Variable Expansion should verify that a failing subpath expansion can be modified "
             "during the lifecycle of a container [Conformance] [Slow]")
def test_failing_subpath_modified(api, ns) -> None:  # type: ignore[no-untyped-def]
    core = client.CoreV1Api(api)
    wait_default_service_account(api, ns)
    pod = new_pod(["sh", "-c", "tail -f /dev/null"], ANNOTATED_ENV, ANNOTATED_MOUNTS, WORKDIR)
    pod["metadata"]["annotations"] = {"notmysubpath": "mypath"}
    name = pod["metadata"]["name"]
    core.create_namespaced_pod(ns, pod)
    # without the annotation the subPathExpr expands to "/foo", an absolute path: the container
    # cannot be created (upstream waits PodStartShortTimeout for the pod *not* to run)
    def config_error() -> bool:
        p = core.read_namespaced_pod(name, ns)
        assert p.status.phase != "Running", p.status
        waiting = [s.state.waiting for s in p.status.container_statuses or [] if s.state.waiting]
        return any(w.reason == "CreateContainerConfigError" for w in waiting)
    wait_for(config_error, timeout=60, what="CreateContainerConfigError")
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline:
        assert core.read_namespaced_pod(name, ns).status.phase != "Running"
        time.sleep(0.5)
    set_annotation(core, ns, name, "mypath")
    wait_running(core, ns, name, timeout=120)
    delete_and_wait(core, ns, name)
