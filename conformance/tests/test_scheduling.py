"""Scheduling: test/e2e/scheduling/predicates.go and preemption.go (the conformance tests). Pods are
pause pods (a placeholder process); nodes advertise the fake extended resource upstream patches into
their status. Tests label or patch nodes and undo it afterwards (they are [Serial] upstream)."""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Iterator

import pytest
from kubernetes import client

from conformance.harness import conformance, wait_for
from conformance.tests._common import PAUSE, wait_default_service_account

EXTENDED = "scheduling.k8s.io/foo"


def pause_pod(name: str, *, labels: dict | None = None, node_selector: dict | None = None,
              node_name_affinity: str | None = None, requests: dict | None = None,
              priority_class: str | None = None, ports: list | None = None) -> dict:
    """pausePodConfig -> a pod."""
    spec: dict = {"containers": [{"name": name, "image": PAUSE}], "terminationGracePeriodSeconds": 0}
    if node_selector:
        spec["nodeSelector"] = node_selector
    if node_name_affinity:
        spec["affinity"] = {"nodeAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": {"nodeSelectorTerms": [
            {"matchFields": [{"key": "metadata.name", "operator": "In", "values": [node_name_affinity]}]}]}}}
    if requests:
        spec["containers"][0]["resources"] = {"requests": requests, "limits": requests}
    if priority_class:
        spec["priorityClassName"] = priority_class
    if ports:
        spec["containers"][0]["ports"] = ports
    return {"metadata": {"name": name, "labels": labels or {}}, "spec": spec}


def ready_nodes(core: client.CoreV1Api) -> list:
    """e2enode.GetReadySchedulableNodes."""
    return [n for n in core.list_node().items if not n.spec.unschedulable and any(
        c.type == "Ready" and c.status == "True" for c in n.status.conditions or [])]


def wait_running(core: client.CoreV1Api, ns: str, name: str, timeout: float = 60):  # type: ignore[no-untyped-def]
    return wait_for(lambda: (p := core.read_namespaced_pod(name, ns)).status.phase == "Running" and p,
                    timeout=timeout, what=f"pod {name} to run")


def wait_unschedulable(core: client.CoreV1Api, ns: str, name: str, timeout: float = 30) -> None:
    """WaitForSchedulerAfterAction(..., false): the scheduler reports the pod unschedulable."""
    def unschedulable() -> bool:
        pod = core.read_namespaced_pod(name, ns)
        assert not pod.spec.node_name, f"pod {name} was scheduled to {pod.spec.node_name}"
        return any(c.type == "PodScheduled" and c.status == "False" and c.reason == "Unschedulable"
                   for c in pod.status.conditions or [])
    wait_for(unschedulable, timeout=timeout, what=f"pod {name} to be reported unschedulable")
    assert not core.read_namespaced_pod(name, ns).spec.node_name


@pytest.fixture
def node_label(api) -> Iterator:  # type: ignore[no-untyped-def]
    """Put a label on a node for one test and take it off afterwards."""
    core = client.CoreV1Api(api)
    done: list[tuple[str, str]] = []

    def put(node: str, key: str, value: str) -> None:
        core.patch_node(node, {"metadata": {"labels": {key: value}}})
        done.append((node, key))
    yield put
    for node, key in done:
        core.patch_node(node, {"metadata": {"labels": {key: None}}})


def node_that_can_run_pod(core: client.CoreV1Api, ns: str) -> str:
    """GetNodeThatCanRunPod: run a pod without a label and see where it lands, then delete it."""
    core.create_namespaced_pod(ns, pause_pod("without-label"))
    pod = wait_running(core, ns, "without-label")
    core.delete_namespaced_pod("without-label", ns, grace_period_seconds=0)
    return pod.spec.node_name


@conformance("[sig-scheduling] SchedulerPredicates validates that NodeSelector is respected if not matching "
             "[Conformance] [Serial]")
def test_node_selector_not_matching(api, ns) -> None:  # type: ignore[no-untyped-def]
    core = client.CoreV1Api(api)
    wait_default_service_account(api, ns)
    core.create_namespaced_pod(ns, pause_pod("restricted-pod", labels={"name": "restricted"},
                                             node_selector={"label": "nonempty"}))
    wait_unschedulable(core, ns, "restricted-pod")


@conformance("[sig-scheduling] SchedulerPredicates validates that NodeSelector is respected if matching "
             "[Conformance] [Serial]")
def test_node_selector_matching(api, ns, node_label) -> None:  # type: ignore[no-untyped-def]
    core = client.CoreV1Api(api)
    wait_default_service_account(api, ns)
    node = node_that_can_run_pod(core, ns)
    key = f"kubernetes.io/e2e-{uuid.uuid4().hex[:8]}"
    node_label(node, key, "42")
    core.create_namespaced_pod(ns, pause_pod("with-labels", node_selector={key: "42"}))
    assert wait_running(core, ns, "with-labels").spec.node_name == node


@conformance("[sig-scheduling] SchedulerPredicates validates resource limits of pods that are allowed to run "
             "[Conformance] [Serial]")
def test_resource_limits(api, ns) -> None:  # type: ignore[no-untyped-def]
    from kubernetes.utils import parse_quantity

    core = client.CoreV1Api(api)
    wait_default_service_account(api, ns)
    nodes = ready_nodes(core)
    pods = core.list_pod_for_all_namespaces().items
    free: dict[str, int] = {}
    for node in nodes:
        allocatable = int(parse_quantity(node.status.allocatable["cpu"]) * 1000)
        used = sum(int(parse_quantity(c.resources.requests["cpu"]) * 1000)
                   for p in pods if p.spec.node_name == node.metadata.name
                   and p.status.phase not in ("Succeeded", "Failed")
                   for c in p.spec.containers if c.resources and c.resources.requests
                   and "cpu" in c.resources.requests)
        free[node.metadata.name] = allocatable - used
    # one filler pod per node takes 70% of what is left there
    for i, (node, cpu) in enumerate(free.items()):
        core.create_namespaced_pod(ns, pause_pod(f"filler-pod-{i}", labels={"name": "filler"},
                                                 node_name_affinity=node, requests={"cpu": f"{cpu * 7 // 10}m"}))
    for i in range(len(free)):
        wait_running(core, ns, f"filler-pod-{i}")
    # another pod asking for half of the largest node's free CPU fits nowhere
    core.create_namespaced_pod(ns, pause_pod("additional-pod", labels={"name": "additional"},
                                             requests={"cpu": f"{max(free.values()) * 5 // 10}m"}))
    wait_unschedulable(core, ns, "additional-pod")
    scheduled = [p for p in core.list_namespaced_pod(ns).items if p.spec.node_name]
    assert len(scheduled) == len(free)


@conformance("[sig-scheduling] SchedulerPredicates validates that there exists conflict between pods with same "
             "hostPort and protocol but one using 0.0.0.0 hostIP [Conformance] [Serial]")
def test_host_port_conflict(api, ns, node_label) -> None:  # type: ignore[no-untyped-def]
    core = client.CoreV1Api(api)
    wait_default_service_account(api, ns)
    node = node_that_can_run_pod(core, ns)
    key = f"kubernetes.io/e2e-{uuid.uuid4().hex[:8]}"
    node_label(node, key, "95")
    node_ip = next(a.address for a in core.read_node(node).status.addresses if a.type == "InternalIP")
    core.create_namespaced_pod(ns, pause_pod("pod4", node_selector={key: "95"}, ports=[
        {"containerPort": 8080, "hostPort": 54322, "hostIP": "0.0.0.0", "protocol": "TCP"}]))
    wait_running(core, ns, "pod4")
    core.create_namespaced_pod(ns, pause_pod("pod5", node_selector={key: "95"}, ports=[
        {"containerPort": 8080, "hostPort": 54322, "hostIP": node_ip, "protocol": "TCP"}]))
    wait_unschedulable(core, ns, "pod5")


# -- preemption ---------------------------------------------------------------------------------------

@pytest.fixture
def priorities(api) -> Iterator[dict[str, str]]:  # type: ignore[no-untyped-def]
    """The low (1), medium (100) and high (1000) PriorityClasses of preemption.go's BeforeEach."""
    sched = client.SchedulingV1Api(api)
    base = f"sched-preemption-{uuid.uuid4().hex[:5]}"
    names = {}
    for level, value in (("low", 1), ("medium", 100), ("high", 1000)):
        names[level] = f"{base}-{level}-priority"
        sched.create_priority_class({"metadata": {"name": names[level]}, "value": value})
    yield names
    for name in names.values():
        sched.delete_priority_class(name)


@pytest.fixture
def extended_resource(api) -> Iterator:  # type: ignore[no-untyped-def]
    """Advertise the fake extended resource in nodes' status capacity; removed afterwards."""
    core = client.CoreV1Api(api)
    patched: list[str] = []

    def put(node: str, amount: str) -> None:
        # as upstream's patchNode: capacity and allocatable both
        core.patch_node_status(node, {"status": {"capacity": {EXTENDED: amount}, "allocatable": {EXTENDED: amount}}})
        patched.append(node)
        wait_for(lambda: (core.read_node(node).status.allocatable or {}).get(EXTENDED) == amount, timeout=30,
                 what=f"{node} to advertise {amount} {EXTENDED}")
    yield put
    for node in patched:
        try:
            core.patch_node_status(node, {"status": {"capacity": {EXTENDED: None}, "allocatable": {EXTENDED: None}}})
        except client.exceptions.ApiException:
            pass


def fill_nodes_with_victims(core: client.CoreV1Api, ns: str, nodes: list, priorities: dict, put) -> list[str]:  # type: ignore[no-untyped-def]
    """Each node advertises 5 foo; two pods per node take 2 each; the very first is low priority."""
    names: list[str] = []
    for i, node in enumerate(nodes):
        put(node.metadata.name, "5")
        for j in range(2):
            level = "low" if not names else "medium"
            name = f"pod{i}-{j}-{level}"
            core.create_namespaced_pod(ns, pause_pod(name, node_name_affinity=node.metadata.name,
                                                     requests={EXTENDED: "2"}, priority_class=priorities[level]))
            names.append(name)
    for name in names:
        wait_running(core, ns, name)
    return names


def gone_or_deleting(core: client.CoreV1Api, ns: str, name: str) -> bool:
    try:
        return core.read_namespaced_pod(name, ns).metadata.deletion_timestamp is not None
    except client.exceptions.ApiException as exc:
        if exc.status == 404:
            return True
        raise


@conformance("[sig-scheduling] SchedulerPreemption validates basic preemption works [Conformance] [Serial]")
def test_basic_preemption(api, ns, priorities, extended_resource) -> None:  # type: ignore[no-untyped-def]
    core = client.CoreV1Api(api)
    wait_default_service_account(api, ns)
    victims = fill_nodes_with_victims(core, ns, ready_nodes(core), priorities, extended_resource)
    core.create_namespaced_pod(ns, pause_pod("preemptor-pod", requests={EXTENDED: "2"},
                                             priority_class=priorities["high"]))
    wait_for(lambda: gone_or_deleting(core, ns, victims[0]), timeout=60, what="the low priority pod to be preempted")
    wait_running(core, ns, "preemptor-pod")
    for name in victims[1:]:
        assert core.read_namespaced_pod(name, ns).metadata.deletion_timestamp is None, f"{name} was preempted"


@conformance("[sig-scheduling] SchedulerPreemption validates lower priority pod preemption by critical pod "
             "[Conformance] [Serial]")
def test_critical_pod_preemption(api, ns, priorities, extended_resource) -> None:  # type: ignore[no-untyped-def]
    core = client.CoreV1Api(api)
    wait_default_service_account(api, ns)
    victims = fill_nodes_with_victims(core, ns, ready_nodes(core), priorities, extended_resource)
    name = f"critical-pod-{uuid.uuid4().hex[:5]}"
    core.create_namespaced_pod("kube-system", pause_pod(name, requests={EXTENDED: "2"},
                                                        priority_class="system-cluster-critical"))
    try:
        wait_for(lambda: gone_or_deleting(core, ns, victims[0]), timeout=60,
                 what="the low priority pod to be preempted")
        wait_running(core, "kube-system", name)
        for victim in victims[1:]:
            assert core.read_namespaced_pod(victim, ns).metadata.deletion_timestamp is None, f"{victim} preempted"
    finally:
        core.delete_namespaced_pod(name, "kube-system", grace_period_seconds=0)


@conformance("[sig-scheduling] SchedulerPreemption validates pod disruption condition is added to the preempted "
             "pod [Conformance] [Serial]")
def test_preemption_disruption_condition(api, ns, priorities, extended_resource) -> None:  # type: ignore[no-untyped-def]
    core = client.CoreV1Api(api)
    wait_default_service_account(api, ns)
    node = ready_nodes(core)[0].metadata.name
    extended_resource(node, "1")
    finalizer = "example.com/test-finalizer"
    victim = pause_pod("victim-pod", node_name_affinity=node, requests={EXTENDED: "1"},
                       priority_class=priorities["low"])
    victim["metadata"]["finalizers"] = [finalizer]
    core.create_namespaced_pod(ns, victim)
    try:
        wait_running(core, ns, "victim-pod")
        core.create_namespaced_pod(ns, pause_pod("preemptor-pod", node_name_affinity=node,
                                                 requests={EXTENDED: "1"}, priority_class=priorities["high"]))

        def disrupted() -> bool:
            pod = core.read_namespaced_pod("victim-pod", ns)
            return pod.metadata.deletion_timestamp is not None and any(
                c.type == "DisruptionTarget" and c.status == "True" and c.reason == "PreemptionByScheduler"
                for c in pod.status.conditions or [])
        wait_for(disrupted, timeout=30, what="the victim to carry DisruptionTarget (PreemptionByScheduler)")
    finally:
        core.patch_namespaced_pod("victim-pod", ns, [{"op": "remove", "path": "/metadata/finalizers"}])


@conformance("[sig-scheduling] SchedulerPreemption PreemptionExecutionPath runs ReplicaSets to verify preemption "
             "running path [Conformance] [Serial]")
def test_preemption_execution_path(api, ns) -> None:  # type: ignore[no-untyped-def]
    """Three ReplicaSets (priorities p1..p3) take 950 of a node's 1000 fakecpu; a p4 pod asking 500 must
    preempt exactly the p1 and p2 pods once each: the ReplicaSets' pod names seen are 2, 2 and 1."""
    from kubernetes import watch

    core, apps, sched = client.CoreV1Api(api), client.AppsV1Api(api), client.SchedulingV1Api(api)
    wait_default_service_account(api, ns)
    fakecpu = "example.com/fakecpu"
    node = node_that_can_run_pod(core, ns)
    core.patch_node_status(node, {"status": {"capacity": {fakecpu: "1000"}, "allocatable": {fakecpu: "1000"}}})
    base = f"p-{uuid.uuid4().hex[:5]}"
    for level in range(1, 5):
        sched.create_priority_class({"metadata": {"name": f"{base}{level}"}, "value": level})
    seen: dict[str, set[str]] = {"rs-pod1": set(), "rs-pod2": set(), "rs-pod3": set()}
    w = watch.Watch()

    def follow() -> None:
        try:
            for event in w.stream(core.list_namespaced_pod, ns, timeout_seconds=120):
                name = event["object"].metadata.name
                for prefix, names in seen.items():
                    if name.startswith(prefix + "-"):
                        names.add(name)
        except Exception:  # noqa: BLE001 - the stream ends when the test stops it
            pass
    watcher = threading.Thread(target=follow, daemon=True)
    watcher.start()
    try:
        for i, cpu in ((1, "200"), (2, "300"), (3, "450")):
            template = pause_pod(f"pod{i}", labels={"name": f"pod{i}"}, node_name_affinity=node,
                                 requests={fakecpu: cpu}, priority_class=f"{base}{i}")
            apps.create_namespaced_replica_set(ns, {
                "metadata": {"name": f"rs-pod{i}"},
                "spec": {"replicas": 1, "selector": {"matchLabels": {"name": f"pod{i}"}}, "template": template}})
            wait_for(lambda i=i: (apps.read_namespaced_replica_set(f"rs-pod{i}", ns).status.available_replicas or 0)
                     == 1, timeout=60, what=f"rs-pod{i} to be available")
        core.create_namespaced_pod(ns, pause_pod("pod4", node_name_affinity=node, requests={fakecpu: "500"},
                                                 priority_class=f"{base}4"))
        wait_running(core, ns, "pod4")
        expected = {"rs-pod1": 2, "rs-pod2": 2, "rs-pod3": 1}

        def counts() -> bool:
            got = {k: len(v) for k, v in seen.items()}
            for key, want in expected.items():
                assert got[key] <= want, f"pods of {key} were over-preempted: {got}"
            return got == expected
        wait_for(counts, timeout=60, what=f"the ReplicaSets' pod names to reach {expected}")
        time.sleep(5)  # the state must stay put: no further preemption
        assert {k: len(v) for k, v in seen.items()} == expected
    finally:
        w.stop()
        for rs in ("rs-pod1", "rs-pod2", "rs-pod3"):
            try:
                apps.delete_namespaced_replica_set(rs, ns)
            except client.exceptions.ApiException:
                pass
        for level in range(1, 5):
            sched.delete_priority_class(f"{base}{level}")
        core.patch_node_status(node, {"status": {"capacity": {fakecpu: None}, "allocatable": {fakecpu: None}}})
