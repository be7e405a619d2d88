"""kubectl: test/e2e/kubectl/kubectl.go (the conformance tests that need running pods), driven with the
real /usr/bin/kubectl. The agnhost "primary" replication controller of the guestbook manifests runs
`sleep` in place of agnhost's server (the process runtime does not emulate agnhost); what the tests
check is what kubectl prints and changes."""

from __future__ import annotations

import json
import os
import re

import pytest
from kubernetes import client

from conformance.conftest import KUBECTL
from conformance.harness import conformance, wait_for
from conformance.tests._common import AGNHOST, BUSYBOX, HTTPD, PAUSE, wait_default_service_account

POD_START = "--pod-running-timeout=2m0s"


@pytest.fixture
def kubectl(cluster, ns):  # type: ignore[no-untyped-def]
    """`kubectl --namespace=<ns> ...` through the real binary; skipped only where it is missing."""
    if not os.path.exists(KUBECTL):
        pytest.skip(f"{KUBECTL} is not installed on this machine")

    def run(*args: str, input: str | None = None) -> str:
        return cluster.kubectl(f"--namespace={ns}", *args, input=input).stdout
    return run


def agnhost_primary_rc() -> str:
    """agnhost-primary-controller.json.in, with a command the process runtime can run."""
    labels = {"app": "agnhost", "role": "primary"}
    return json.dumps({"kind": "ReplicationController", "apiVersion": "v1",
                       "metadata": {"name": "agnhost-primary", "labels": labels},
                       "spec": {"replicas": 1, "selector": labels,
                                "template": {"metadata": {"labels": labels},
                                             "spec": {"containers": [{
                                                 "name": "agnhost-primary", "image": AGNHOST,
                                                 "command": ["sleep", "3600"],
                                                 "ports": [{"name": "agnhost-server", "containerPort": 6379}]}]}}}})


def agnhost_primary_service() -> str:
    labels = {"app": "agnhost", "role": "primary"}
    return json.dumps({"kind": "Service", "apiVersion": "v1",
                       "metadata": {"name": "agnhost-primary", "labels": labels},
                       "spec": {"ports": [{"port": 6379, "targetPort": "agnhost-server"}], "selector": labels}})


def wait_primary_running(core: client.CoreV1Api, ns: str) -> list:
    def running():  # type: ignore[no-untyped-def]
        pods = core.list_namespaced_pod(ns, label_selector="app=agnhost").items
        return pods if pods and all(p.status.phase == "Running" for p in pods) else None
    return wait_for(running, timeout=60, what="the agnhost primary pod to run")


def assert_contains_all(output: str, *needles: str) -> None:
    """checkOutput: every expected piece appears."""
    missing_pieces = [n for n in needles if n not in output]
    assert not missing_pieces, f"missing {missing_pieces} in:\n{output}"


@conformance("[sig-cli] Kubectl client Kubectl describe should check if kubectl describe prints relevant "
             "information for rc and pods [Conformance]")
def test_kubectl_describe(api, ns, kubectl) -> None:  # type: ignore[no-untyped-def]
    core = client.CoreV1Api(api)
    wait_default_service_account(api, ns)
    kubectl("create", "-f", "-", input=agnhost_primary_rc())
    kubectl("create", "-f", "-", input=agnhost_primary_service())
    pod = wait_primary_running(core, ns)[0]

    out = kubectl("describe", "pod", pod.metadata.name)
    assert_contains_all(out, "Name:", pod.metadata.name, "Namespace:", ns, "Node:", "Labels:", "app=agnhost",
                        "role=primary", "Annotations:", "Status:", "Running", "IP:", "Controlled By:",
                        "ReplicationController/agnhost-primary", "Image:", AGNHOST, "State:", "Ready:", "true",
                        "Restart Count:", "0", "Environment:", "Mounts:", "Conditions:", "Volumes:",
                        "QoS Class:", "Node-Selectors:", "Tolerations:", "Events:")

    out = kubectl("describe", "rc", "agnhost-primary")
    assert_contains_all(out, "Name:", "agnhost-primary", "Namespace:", ns, "Selector:", "app=agnhost,role=primary",
                        "Labels:", "app=agnhost", "role=primary", "Annotations:", "Replicas:", "1 current",
                        "1 desired", "Pods Status:", "1 Running", "0 Waiting", "0 Succeeded", "0 Failed",
                        "Pod Template:", "Image:", AGNHOST, "Events:")

    out = kubectl("describe", "service", "agnhost-primary")
    assert_contains_all(out, "Name:", "agnhost-primary", "Namespace:", ns, "Labels:", "app=agnhost",
                        "role=primary", "Annotations:", "Selector:", "app=agnhost", "role=primary", "Type:",
                        "ClusterIP", "IP:", "Port:", "<unset>", "6379/TCP", "TargetPort:", "agnhost-server/TCP",
                        "Endpoints:", "Session Affinity:", "None")

    node = core.list_node().items[0].metadata.name
    out = kubectl("describe", "node", node)
    assert_contains_all(out, "Name:", node, "Labels:", "CreationTimestamp:", "Conditions:", "Type", "Status",
                        "LastHeartbeatTime", "LastTransitionTime", "Reason", "Message", "Addresses:", "Capacity:",
                        "Version:", "Kernel Version:", "OS Image:", "Container Runtime Version:",
                        "Kubelet Version:", "Kube-Proxy Version:", "Pods:")

    out = kubectl("describe", "namespace", ns)
    assert_contains_all(out, "Name:", ns, "Labels:", "Annotations:", "Status:", "Active", "No resource quota",
                        "No LimitRange resource")


@conformance("[sig-cli] Kubectl client Kubectl expose should create services for rc [Conformance]")
def test_kubectl_expose(api, ns, kubectl) -> None:  # type: ignore[no-untyped-def]
    core = client.CoreV1Api(api)
    wait_default_service_account(api, ns)
    kubectl("create", "-f", "-", input=agnhost_primary_rc())
    wait_primary_running(core, ns)

    def validate(name: str, port: int) -> None:
        def endpoint_port():  # type: ignore[no-untyped-def]
            ep = core.read_namespaced_endpoints(name, ns)
            ports = [p.port for s in ep.subsets or [] if s.addresses for p in s.ports or []]
            return ports == [6379]
        wait_for(endpoint_port, timeout=60, what=f"endpoints of {name} on port 6379")
        svc = core.read_namespaced_service(name, ns)
        assert len(svc.spec.ports) == 1 and svc.spec.ports[0].port == port, svc.spec.ports

    kubectl("expose", "rc", "agnhost-primary", "--name=rm2", "--port=1234", "--target-port=6379")
    validate("rm2", 1234)
    kubectl("expose", "service", "rm2", "--name=rm3", "--port=2345", "--target-port=6379")
    validate("rm3", 2345)


@conformance("[sig-cli] Kubectl client Kubectl label should update the label on a resource [Conformance]")
def test_kubectl_label(api, ns, kubectl) -> None:  # type: ignore[no-untyped-def]
    core = client.CoreV1Api(api)
    wait_default_service_account(api, ns)
    kubectl("create", "-f", "-", input=json.dumps({
        "apiVersion": "v1", "kind": "Pod", "metadata": {"name": "pause", "labels": {"name": "pause"}},
        "spec": {"containers": [{"name": "pause", "image": PAUSE}]}}))
    wait_for(lambda: core.read_namespaced_pod("pause", ns).status.phase == "Running", timeout=60,
             what="the pause pod to run")
    kubectl("label", "pods", "pause", "testing-label=testing-label-value")
    out = kubectl("get", "pod", "pause", "-L", "testing-label")
    assert "testing-label-value" in out, out
    assert re.search(r"TESTING-LABEL", out.splitlines()[0]), out
    kubectl("label", "pods", "pause", "testing-label-")
    out = kubectl("get", "pod", "pause", "-L", "testing-label")
    assert "testing-label-value" not in out, out


@conformance("[sig-cli] Kubectl client Kubectl patch should add annotations for pods in rc [Conformance]")
def test_kubectl_patch(api, ns, kubectl) -> None:  # type: ignore[no-untyped-def]
    core = client.CoreV1Api(api)
    wait_default_service_account(api, ns)
    kubectl("create", "-f", "-", input=agnhost_primary_rc())
    pods = wait_primary_running(core, ns)
    for pod in pods:
        kubectl("patch", "pod", pod.metadata.name, "-p", '{"metadata":{"annotations":{"x":"y"}}}')
    for pod in core.list_namespaced_pod(ns, label_selector="app=agnhost").items:
        assert (pod.metadata.annotations or {}).get("x") == "y", pod.metadata.annotations


def run_httpd(api, ns: str, kubectl, *extra: str) -> None:  # type: ignore[no-untyped-def]
    core = client.CoreV1Api(api)
    kubectl("run", "e2e-test-httpd-pod", f"--image={HTTPD}", POD_START, *extra)
    wait_for(lambda: core.read_namespaced_pod("e2e-test-httpd-pod", ns).status.phase == "Running", timeout=120,
             what="e2e-test-httpd-pod to run")


@conformance("[sig-cli] Kubectl client Kubectl replace should update a single-container pod's image [Conformance]")
def test_kubectl_replace(api, ns, kubectl) -> None:  # type: ignore[no-untyped-def]
    core = client.CoreV1Api(api)
    wait_default_service_account(api, ns)
    run_httpd(api, ns, kubectl, "--labels=run=e2e-test-httpd-pod")
    pod = json.loads(kubectl("get", "pod", "e2e-test-httpd-pod", "-o", "json"))
    assert pod["metadata"]["labels"]["run"] == "e2e-test-httpd-pod"
    pod["spec"]["containers"][0]["image"] = BUSYBOX
    kubectl("replace", "-f", "-", input=json.dumps(pod))
    got = core.read_namespaced_pod("e2e-test-httpd-pod", ns)
    assert got.spec.containers[0].image == BUSYBOX, got.spec.containers[0].image


@conformance("[sig-cli] Kubectl client Kubectl run pod should create a pod from an image when restart is Never "
             "[Conformance]")
def test_kubectl_run_restart_never(api, ns, kubectl) -> None:  # type: ignore[no-untyped-def]
    core = client.CoreV1Api(api)
    wait_default_service_account(api, ns)
    kubectl("run", "e2e-test-httpd-pod", "--restart=Never", POD_START, f"--image={HTTPD}")
    pod = core.read_namespaced_pod("e2e-test-httpd-pod", ns)
    assert pod.spec.restart_policy == "Never"
    assert pod.spec.containers[0].image == HTTPD


@conformance("[sig-cli] Kubectl client Kubectl server-side dry-run should check if kubectl can dry-run update "
             "Pods [Conformance]")
def test_kubectl_server_side_dry_run(api, ns, kubectl) -> None:  # type: ignore[no-untyped-def]
    core = client.CoreV1Api(api)
    wait_default_service_account(api, ns)
    run_httpd(api, ns, kubectl, "--labels=run=e2e-test-httpd-pod")
    before = core.read_namespaced_pod("e2e-test-httpd-pod", ns)
    patch = json.dumps({"spec": {"containers": [{"name": "e2e-test-httpd-pod", "image": BUSYBOX}]}})
    kubectl("patch", "pod", "e2e-test-httpd-pod", "-p", patch, "--dry-run=server")
    after = core.read_namespaced_pod("e2e-test-httpd-pod", ns)
    assert after.spec.containers[0].image == HTTPD
    assert after.metadata.resource_version == before.metadata.resource_version
    kubectl("delete", "pods", "e2e-test-httpd-pod")
