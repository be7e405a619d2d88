"""PodDisruptionBudgets and the Eviction API: test/e2e/apps/disruption.go.

Upstream's helpers wait for the disruption controller to observe each PDB change
(status.observedGeneration >= metadata.generation) and for pods to be Ready; we do the same.
The pods run the pause image, which pykube's process runtime runs as a placeholder that waits."""

from __future__ import annotations

import datetime
import uuid

from kubernetes import client
from kubernetes.client.exceptions import ApiException

from conformance.harness import conformance, expect_status, wait_for
from conformance.tests._common import PAUSE, is_ready, wait_default_service_account

LABELS = {"foo": "bar"}


def policy(api) -> client.PolicyV1Api:  # type: ignore[no-untyped-def]
    return client.PolicyV1Api(api)


def wait_processed(api, ns: str, name: str) -> None:  # type: ignore[no-untyped-def]
    """Upstream's waitForPdbToBeProcessed: the controller has seen the current generation."""
    def seen() -> bool:
        pdb = policy(api).read_namespaced_pod_disruption_budget(name, ns)
        return (pdb.status.observed_generation or 0) >= pdb.metadata.generation
    wait_for(seen, timeout=30, what=f"pdb {name} observed by the disruption controller")


def create_pdb(api, ns: str, name: str = "foo", *, min_available=None, max_unavailable=None,  # type: ignore[no-untyped-def]
               labels: dict[str, str] | None = None) -> None:
    spec: dict = {"selector": {"matchLabels": dict(LABELS)}}
    if min_available is not None:
        spec["minAvailable"] = min_available
    if max_unavailable is not None:
        spec["maxUnavailable"] = max_unavailable
    meta: dict = {"name": name}
    if labels:
        meta["labels"] = labels
    policy(api).create_namespaced_pod_disruption_budget(ns, {"metadata": meta, "spec": spec})
    wait_processed(api, ns, name)


def create_pods(api, ns: str, n: int) -> None:  # type: ignore[no-untyped-def]
    core = client.CoreV1Api(api)
    wait_default_service_account(api, ns)
    for i in range(n):
        core.create_namespaced_pod(ns, {"metadata": {"name": f"pod-{i}", "labels": dict(LABELS)},
                                        "spec": {"containers": [{"name": "donothing", "image": PAUSE}],
                                                 "restartPolicy": "Always"}})


def create_replica_set(api, ns: str, size: int) -> None:  # type: ignore[no-untyped-def]
    wait_default_service_account(api, ns)
    client.AppsV1Api(api).create_namespaced_replica_set(ns, {
        "metadata": {"name": "rs"},
        "spec": {"replicas": size, "selector": {"matchLabels": dict(LABELS)},
                 "template": {"metadata": {"labels": dict(LABELS)},
                              "spec": {"containers": [{"name": "donothing", "image": PAUSE}]}}}})


def wait_pods_ready(api, ns: str, n: int) -> None:  # type: ignore[no-untyped-def]
    core = client.CoreV1Api(api)
    wait_for(lambda: sum(is_ready(p) for p in core.list_namespaced_pod(ns, label_selector="foo=bar").items) >= n,
             timeout=60, what=f"{n} ready pods")


def locate_running_pod(api, ns: str):  # type: ignore[no-untyped-def]
    core = client.CoreV1Api(api)
    return wait_for(lambda: next((p for p in core.list_namespaced_pod(ns).items if is_ready(p)), None),
                    timeout=60, what="a ready pod")


def evict(api, ns: str, name: str) -> None:  # type: ignore[no-untyped-def]
    client.CoreV1Api(api).create_namespaced_pod_eviction(
        name, ns, {"apiVersion": "policy/v1", "kind": "Eviction", "metadata": {"name": name, "namespace": ns}})


def expect_disruption_budget_denial(api, ns: str, name: str) -> None:  # type: ignore[no-untyped-def]
    """apierrors.HasStatusCause(err, DisruptionBudget): a Status whose details carry that cause (429 here)."""
    import json

    exc = expect_status(429, evict, api, ns, name)
    causes = (json.loads(exc.body).get("details") or {}).get("causes") or []
    assert any(c.get("reason") == "DisruptionBudget" for c in causes), exc.body   # StatusCause.Type is "reason" in JSON


@conformance("[sig-apps] DisruptionController Listing PodDisruptionBudgets for all namespaces "
             "should list and delete a collection of PodDisruptionBudgets [Conformance]")
def test_pdb_list_and_delete_collection(api, ns) -> None:  # type: ignore[no-untyped-def]
    core = client.CoreV1Api(api)
    other = f"cf-{uuid.uuid4().hex[:8]}"
    core.create_namespace({"metadata": {"name": other}})
    try:
        special = {"foo_pdb": "bar_pdb"}
        create_pdb(api, ns, "foo", min_available=2, labels=special)
        create_pdb(api, ns, "foo2", min_available="1%", labels=special)
        create_pdb(api, other, "foo3", min_available=2, labels=special)
        everywhere = policy(api).list_pod_disruption_budget_for_all_namespaces(label_selector="foo_pdb=bar_pdb")
        assert sorted(p.metadata.name for p in everywhere.items) == ["foo", "foo2", "foo3"]
        here = policy(api).list_namespaced_pod_disruption_budget(ns, label_selector="foo_pdb=bar_pdb")
        assert sorted(p.metadata.name for p in here.items) == ["foo", "foo2"]
        policy(api).delete_collection_namespaced_pod_disruption_budget(ns)
        wait_for(lambda: policy(api).list_namespaced_pod_disruption_budget(ns).items == [], timeout=30,
                 what="the PDB collection to be deleted")
    finally:
        core.delete_namespace(other)


@conformance("[sig-apps] DisruptionController should create a PodDisruptionBudget [Conformance]")
def test_pdb_create_update_patch_delete(api, ns) -> None:  # type: ignore[no-untyped-def]
    create_pdb(api, ns, min_available="1%")
    pdb = policy(api).read_namespaced_pod_disruption_budget("foo", ns)
    pdb.spec.min_available = "2%"
    updated = policy(api).replace_namespaced_pod_disruption_budget("foo", ns, pdb)
    assert updated.spec.min_available == "2%"
    wait_processed(api, ns, "foo")
    patched = policy(api).patch_namespaced_pod_disruption_budget("foo", ns, {"spec": {"minAvailable": "3%"}})
    assert patched.spec.min_available == "3%"
    wait_processed(api, ns, "foo")
    policy(api).delete_namespaced_pod_disruption_budget("foo", ns)
    expect_status(404, policy(api).read_namespaced_pod_disruption_budget, "foo", ns)


@conformance("[sig-apps] DisruptionController should observe PodDisruptionBudget status updated [Conformance]")
def test_pdb_status_updated(api, ns) -> None:  # type: ignore[no-untyped-def]
    create_pdb(api, ns, min_available=1)
    create_pods(api, ns, 3)
    wait_pods_ready(api, ns, 3)
    wait_for(lambda: policy(api).read_namespaced_pod_disruption_budget("foo", ns).status.disruptions_allowed > 0,
             timeout=60, what="disruptionsAllowed > 0")


@conformance("[sig-apps] DisruptionController should update/patch PodDisruptionBudget status [Conformance]")
def test_pdb_update_patch_status(api, ns) -> None:  # type: ignore[no-untyped-def]
    create_pdb(api, ns, min_available=1)
    create_pods(api, ns, 1)
    wait_pods_ready(api, ns, 1)
    pod = locate_running_pod(api, ns)

    def update_status() -> None:
        old = policy(api).read_namespaced_pod_disruption_budget("foo", ns)
        old.status.disrupted_pods = {pod.metadata.name: datetime.datetime.now(datetime.timezone.utc)}
        policy(api).replace_namespaced_pod_disruption_budget_status("foo", ns, old)
    for attempt in range(5):   # retry.RetryOnConflict: the controller writes status too
        try:
            update_status()
            break
        except ApiException as exc:
            if exc.status != 409 or attempt == 4:
                raise
    wait_processed(api, ns, "foo")
    got = policy(api).read_namespaced_pod_disruption_budget_status("foo", ns)
    assert pod.metadata.name in (got.status.disrupted_pods or {})

    patched = policy(api).patch_namespaced_pod_disruption_budget_status("foo", ns,
                                                                         {"status": {"disruptedPods": None}})
    assert not patched.status.disrupted_pods
    wait_processed(api, ns, "foo")


@conformance("[sig-apps] DisruptionController should block an eviction until the PDB is updated to allow it "
             "[Conformance]")
def test_pdb_blocks_eviction(api, ns) -> None:  # type: ignore[no-untyped-def]
    create_pdb(api, ns, min_available=3)
    create_replica_set(api, ns, 3)
    wait_pods_ready(api, ns, 3)
    pod = locate_running_pod(api, ns)
    expect_disruption_budget_denial(api, ns, pod.metadata.name)

    pdb = policy(api).read_namespaced_pod_disruption_budget("foo", ns)
    pdb.spec.min_available = 2
    policy(api).replace_namespaced_pod_disruption_budget("foo", ns, pdb)
    wait_processed(api, ns, "foo")
    wait_pods_ready(api, ns, 3)

    def observed() -> bool:
        status = policy(api).read_namespaced_pod_disruption_budget("foo", ns).status
        return status.current_healthy == 3 and status.desired_healthy == 2
    wait_for(observed, timeout=30, what="the pdb to observe 3 healthy pods, 2 desired")
    evict(api, ns, pod.metadata.name)

    policy(api).patch_namespaced_pod_disruption_budget("foo", ns, {"spec": {"minAvailable": None,
                                                                            "maxUnavailable": 0}})
    wait_processed(api, ns, "foo")
    wait_pods_ready(api, ns, 3)
    pod = locate_running_pod(api, ns)
    expect_disruption_budget_denial(api, ns, pod.metadata.name)

    policy(api).delete_namespaced_pod_disruption_budget("foo", ns)
    wait_for(lambda: not any(p.metadata.name == "foo"
                             for p in policy(api).list_namespaced_pod_disruption_budget(ns).items),
             timeout=30, what="the pdb to be deleted")
    wait_pods_ready(api, ns, 3)
    evict(api, ns, pod.metadata.name)
