"""ResourceQuota: test/e2e/apimachinery/resource_quota.go (the object-count, compute and scope tests,
and the /status one; "lifecycle" and "update and delete" live in test_api_objects.py).

Upstream polls for up to a minute until `status.used` shows what it expects (waitForResourceQuota);
its "count what is there by default" loops wait for the number of secrets/configmaps to hold still
for 5 s/15 s. Ours wait for the namespace's kube-root-ca.crt first, then for the count to hold
still for 1 s, which is what those loops guard against (controllers still filling the namespace)."""

from __future__ import annotations

import time

from kubernetes import client, watch
from kubernetes.utils import parse_quantity

from conformance.harness import conformance, expect_status, wait_for

PAUSE = "registry.k8s.io/pause:3.10"
GOLD = "gold"
EXTENDED = "example.com/dongle"


def test_quota_hard() -> dict[str, str]:
    """newTestResourceQuota: the default hard limits of upstream's quota tests."""
    return {"pods": "5", "services": "10", "services.nodeports": "1", "services.loadbalancers": "1",
            "replicationcontrollers": "10", "resourcequotas": "1", "cpu": "1", "memory": "500Mi",
            "configmaps": "10", "secrets": "10", "persistentvolumeclaims": "10", "requests.storage": "10Gi",
            "ephemeral-storage": "50Gi",
            f"{GOLD}.storageclass.storage.k8s.io/persistentvolumeclaims": "10",
            f"{GOLD}.storageclass.storage.k8s.io/requests.storage": "10Gi",
            "count/replicasets.apps": "5", f"requests.{EXTENDED}": "3"}


test_quota_hard.__test__ = False  # type: ignore[attr-defined]  # a helper, not a test


def create_quota(api, ns: str, name: str, hard: dict[str, str], scopes: list[str] | None = None):  # type: ignore[no-untyped-def]
    spec: dict = {"hard": hard}
    if scopes:
        spec["scopes"] = scopes
    return client.CoreV1Api(api).create_namespaced_resource_quota(ns, {"metadata": {"name": name}, "spec": spec})


def wait_for_used(api, ns: str, name: str, used: dict[str, str], timeout: float = 60) -> None:  # type: ignore[no-untyped-def]
    """waitForResourceQuota: every listed resource shows the expected amount in status.used."""
    core = client.CoreV1Api(api)

    def matches() -> bool:
        actual = core.read_namespaced_resource_quota(name, ns).status.used
        if actual is None:
            return False
        for key, want in used.items():
            assert key in actual and parse_quantity(actual[key]) == parse_quantity(want), \
                f"{key}: expected {want}, actual {actual.get(key)}"
        return True
    wait_for(matches, timeout=timeout, what=f"quota {name} to show used {used}")


def count_stable(list_fn, settle: float = 1.0, timeout: float = 30) -> int:  # type: ignore[no-untyped-def]
    """The number of listed items once it has held still for `settle` seconds."""
    deadline = time.monotonic() + timeout
    found, since = len(list_fn().items), time.monotonic()
    while time.monotonic() < deadline:
        time.sleep(0.2)
        now = len(list_fn().items)
        if now != found:
            found, since = now, time.monotonic()
        elif time.monotonic() - since >= settle:
            return found
    raise AssertionError("the count never settled")


def quota_pod(name: str, requests: dict[str, str], limits: dict[str, str]) -> dict:
    """newTestPodForQuota: an unschedulable pause pod (its node selector matches no node)."""
    return {"metadata": {"name": name},
            "spec": {"nodeSelector": {"x-test.k8s.io/unsatisfiable": "not-schedulable"},
                     "containers": [{"name": "pause", "image": PAUSE,
                                     "resources": {"requests": requests, "limits": limits}}]}}


def start_quota(api, ns: str, extra: dict[str, str] | None = None) -> int:  # type: ignore[no-untyped-def]
    """Count the quotas, create test-quota, wait until it counts itself; returns the prior count."""
    core = client.CoreV1Api(api)
    c = count_stable(lambda: core.list_namespaced_resource_quota(ns))
    create_quota(api, ns, "test-quota", {**test_quota_hard(), **(extra or {})})
    wait_for_used(api, ns, "test-quota", {"resourcequotas": str(c + 1)})
    return c


@conformance("[sig-api-machinery] ResourceQuota should create a ResourceQuota and ensure its status is promptly "
             "calculated. [Conformance]")
def test_quota_status_promptly_calculated(api, ns) -> None:  # type: ignore[no-untyped-def]
    start_quota(api, ns)


@conformance("[sig-api-machinery] ResourceQuota should create a ResourceQuota and capture the life of a service. "
             "[Conformance]")
def test_quota_service(api, ns) -> None:  # type: ignore[no-untyped-def]
    core = client.CoreV1Api(api)
    c = start_quota(api, ns)

    def service(name: str, kind: str) -> dict:
        spec: dict = {"type": kind, "ports": [{"port": 80, "targetPort": 80}]}
        if kind == "LoadBalancer":
            spec["allocateLoadBalancerNodePorts"] = True
        return {"metadata": {"name": name}, "spec": spec}
    core.create_namespaced_service(ns, service("test-service", "ClusterIP"))
    core.create_namespaced_service(ns, service("test-service-np", "NodePort"))
    # a LoadBalancer with node ports exceeds services.nodeports=1
    try:
        core.create_namespaced_service(ns, service("test-service-lb", "LoadBalancer"))
    except client.exceptions.ApiException:
        pass
    else:
        raise AssertionError("a LoadBalancer service exceeding the node port quota was created")
    used = {"resourcequotas": str(c + 1), "services": "2", "services.nodeports": "1"}
    wait_for_used(api, ns, "test-quota", used)
    core.delete_namespaced_service("test-service", ns)
    core.delete_namespaced_service("test-service-np", ns)
    wait_for_used(api, ns, "test-quota", {**used, "services": "0", "services.nodeports": "0"})


@conformance("[sig-api-machinery] ResourceQuota should create a ResourceQuota and capture the life of a secret. "
             "[Conformance]")
def test_quota_secret(api, ns) -> None:  # type: ignore[no-untyped-def]
    core = client.CoreV1Api(api)
    found = count_stable(lambda: core.list_namespaced_secret(ns))
    default_secrets, hard_secrets = str(found), str(found + 1)
    c = count_stable(lambda: core.list_namespaced_resource_quota(ns))
    create_quota(api, ns, "test-quota", {**test_quota_hard(), "secrets": hard_secrets})
    wait_for_used(api, ns, "test-quota", {"resourcequotas": str(c + 1), "secrets": default_secrets})
    core.create_namespaced_secret(ns, {"metadata": {"name": "test-secret"},
                                       "data": {"data-1": "dmFsdWUtMQo=", "data-2": "dmFsdWUtMgo=",
                                                "data-3": "dmFsdWUtMwo="}})
    wait_for_used(api, ns, "test-quota", {"secrets": hard_secrets})
    core.delete_namespaced_secret("test-secret", ns)
    wait_for_used(api, ns, "test-quota", {"secrets": default_secrets})


@conformance("[sig-api-machinery] ResourceQuota should create a ResourceQuota and capture the life of a configMap. "
             "[Conformance]")
def test_quota_configmap(api, ns) -> None:  # type: ignore[no-untyped-def]
    core = client.CoreV1Api(api)
    wait_for(lambda: core.read_namespaced_config_map("kube-root-ca.crt", ns), timeout=30,
             what="the namespace's kube-root-ca.crt")
    found = count_stable(lambda: core.list_namespaced_config_map(ns))
    default_cms, hard_cms = str(found), str(found + 1)
    c = count_stable(lambda: core.list_namespaced_resource_quota(ns))
    create_quota(api, ns, "test-quota", {**test_quota_hard(), "configmaps": hard_cms})
    wait_for_used(api, ns, "test-quota", {"resourcequotas": str(c + 1), "configmaps": default_cms})
    core.create_namespaced_config_map(ns, {"metadata": {"name": "test-configmap"}, "data": {"a": "b"}})
    wait_for_used(api, ns, "test-quota", {"resourcequotas": str(c + 1), "configmaps": hard_cms})
    core.delete_namespaced_config_map("test-configmap", ns)
    wait_for_used(api, ns, "test-quota", {"resourcequotas": str(c + 1), "configmaps": default_cms})


@conformance("[sig-api-machinery] ResourceQuota should create a ResourceQuota and capture the life of a pod. "
             "[Conformance]")
def test_quota_pod(api, ns) -> None:  # type: ignore[no-untyped-def]
    core = client.CoreV1Api(api)
    c = start_quota(api, ns)
    requests = {"cpu": "500m", "memory": "252Mi", "ephemeral-storage": "30Gi", EXTENDED: "2"}
    limits = {EXTENDED: "2"}
    pod = core.create_namespaced_pod(ns, quota_pod("test-pod", requests, limits))
    used = {"resourcequotas": str(c + 1), "pods": "1", "cpu": "500m", "memory": "252Mi",
            "ephemeral-storage": "30Gi", f"requests.{EXTENDED}": "2"}
    wait_for_used(api, ns, "test-quota", used)

    expect_status(403, core.create_namespaced_pod, ns,
                  quota_pod("fail-pod", {"cpu": "600m", "memory": "100Mi"}, {}))
    expect_status(403, core.create_namespaced_pod, ns, quota_pod(
        "fail-pod-for-extended-resource",
        {"cpu": "500m", "memory": "100Mi", "ephemeral-storage": "30Gi", EXTENDED: "2"}, {EXTENDED: "2"}))

    # a pod cannot change its resource requests through an ordinary update
    body = core.api_client.sanitize_for_serialization(pod)
    body["spec"]["containers"][0]["resources"]["requests"] = {"cpu": "100m", "memory": "100Mi",
                                                              "ephemeral-storage": "10Gi"}
    try:
        core.replace_namespaced_pod("test-pod", ns, body)
    except client.exceptions.ApiException:
        pass
    else:
        raise AssertionError("updating a pod's resource requests succeeded")
    wait_for_used(api, ns, "test-quota", used)

    core.delete_namespaced_pod("test-pod", ns, grace_period_seconds=0)
    wait_for_used(api, ns, "test-quota", {"resourcequotas": str(c + 1), "pods": "0", "cpu": "0", "memory": "0",
                                          "ephemeral-storage": "0", f"requests.{EXTENDED}": "0"})


@conformance("[sig-api-machinery] ResourceQuota should create a ResourceQuota and capture the life of a "
             "replication controller. [Conformance]")
def test_quota_replication_controller(api, ns) -> None:  # type: ignore[no-untyped-def]
    core = client.CoreV1Api(api)
    c = count_stable(lambda: core.list_namespaced_resource_quota(ns))
    create_quota(api, ns, "test-quota", test_quota_hard())
    wait_for_used(api, ns, "test-quota", {"resourcequotas": str(c + 1), "replicationcontrollers": "0"})
    core.create_namespaced_replication_controller(ns, {
        "metadata": {"name": "test-rc"},
        "spec": {"replicas": 0, "selector": {"name": "test-rc"},
                 "template": {"metadata": {"labels": {"name": "test-rc"}},
                              "spec": {"containers": [{"name": "test-rc", "image": "nginx"}]}}}})
    wait_for_used(api, ns, "test-quota", {"replicationcontrollers": "1"})
    core.delete_namespaced_replication_controller("test-rc", ns, propagation_policy="Background")
    wait_for_used(api, ns, "test-quota", {"replicationcontrollers": "0"})


@conformance("[sig-api-machinery] ResourceQuota should create a ResourceQuota and capture the life of a replica set. "
             "[Conformance]")
def test_quota_replica_set(api, ns) -> None:  # type: ignore[no-untyped-def]
    core, apps = client.CoreV1Api(api), client.AppsV1Api(api)
    c = count_stable(lambda: core.list_namespaced_resource_quota(ns))
    create_quota(api, ns, "test-quota", test_quota_hard())
    wait_for_used(api, ns, "test-quota", {"resourcequotas": str(c + 1), "count/replicasets.apps": "0"})
    apps.create_namespaced_replica_set(ns, {
        "metadata": {"name": "test-rs"},
        "spec": {"replicas": 0, "selector": {"matchLabels": {"name": "test-rs"}},
                 "template": {"metadata": {"labels": {"name": "test-rs"}},
                              "spec": {"terminationGracePeriodSeconds": 0,
                                       "containers": [{"name": "test-rs", "image": "nginx"}]}}}})
    wait_for_used(api, ns, "test-quota", {"count/replicasets.apps": "1"})
    apps.delete_namespaced_replica_set("test-rs", ns)
    wait_for_used(api, ns, "test-quota", {"count/replicasets.apps": "0"}, timeout=30)


def scoped_hard(scope: str) -> dict[str, str]:
    """newTestResourceQuotaWithScope's hard limits."""
    hard = {"pods": "5"}
    if scope in ("Terminating", "NotTerminating"):
        hard.update({"requests.cpu": "1", "requests.memory": "500Mi", "limits.cpu": "2", "limits.memory": "1Gi"})
    return hard


@conformance("[sig-api-machinery] ResourceQuota should verify ResourceQuota with terminating scopes. [Conformance]")
def test_quota_terminating_scopes(api, ns) -> None:  # type: ignore[no-untyped-def]
    core = client.CoreV1Api(api)
    create_quota(api, ns, "quota-terminating", scoped_hard("Terminating"), ["Terminating"])
    wait_for_used(api, ns, "quota-terminating", {"pods": "0"})
    create_quota(api, ns, "quota-not-terminating", scoped_hard("NotTerminating"), ["NotTerminating"])
    wait_for_used(api, ns, "quota-not-terminating", {"pods": "0"})

    requests, limits = {"cpu": "500m", "memory": "200Mi"}, {"cpu": "1", "memory": "400Mi"}
    charged = {"pods": "1", "requests.cpu": "500m", "requests.memory": "200Mi", "limits.cpu": "1",
               "limits.memory": "400Mi"}
    nothing = {"pods": "0", "requests.cpu": "0", "requests.memory": "0", "limits.cpu": "0", "limits.memory": "0"}

    core.create_namespaced_pod(ns, quota_pod("test-pod", requests, limits))
    wait_for_used(api, ns, "quota-not-terminating", charged)
    wait_for_used(api, ns, "quota-terminating", nothing)
    core.delete_namespaced_pod("test-pod", ns, grace_period_seconds=0)
    wait_for_used(api, ns, "quota-not-terminating", nothing)

    pod = quota_pod("terminating-pod", requests, limits)
    pod["spec"]["activeDeadlineSeconds"] = 3600
    core.create_namespaced_pod(ns, pod)
    wait_for_used(api, ns, "quota-terminating", charged)
    wait_for_used(api, ns, "quota-not-terminating", nothing)
    core.delete_namespaced_pod("terminating-pod", ns, grace_period_seconds=0)
    wait_for_used(api, ns, "quota-terminating", nothing)


@conformance("[sig-api-machinery] ResourceQuota should verify ResourceQuota with best effort scope. [Conformance]")
def test_quota_best_effort_scope(api, ns) -> None:  # type: ignore[no-untyped-def]
    core = client.CoreV1Api(api)
    create_quota(api, ns, "quota-besteffort", scoped_hard("BestEffort"), ["BestEffort"])
    wait_for_used(api, ns, "quota-besteffort", {"pods": "0"})
    create_quota(api, ns, "quota-not-besteffort", scoped_hard("NotBestEffort"), ["NotBestEffort"])
    wait_for_used(api, ns, "quota-not-besteffort", {"pods": "0"})

    core.create_namespaced_pod(ns, quota_pod("pfpod", {}, {}))
    wait_for_used(api, ns, "quota-besteffort", {"pods": "1"})
    wait_for_used(api, ns, "quota-not-besteffort", {"pods": "0"})
    core.delete_namespaced_pod("pfpod", ns, grace_period_seconds=0)
    wait_for_used(api, ns, "quota-besteffort", {"pods": "0"})

    core.create_namespaced_pod(ns, quota_pod("burstable-pod", {"cpu": "500m", "memory": "200Mi"},
                                             {"cpu": "1", "memory": "400Mi"}))
    wait_for_used(api, ns, "quota-not-besteffort", {"pods": "1"})
    wait_for_used(api, ns, "quota-besteffort", {"pods": "0"})
    core.delete_namespaced_pod("burstable-pod", ns, grace_period_seconds=0)
    wait_for_used(api, ns, "quota-not-besteffort", {"pods": "0"})


def same_quantities(a: dict[str, str] | None, b: dict[str, str] | None) -> bool:
    """apiequality.Semantic.DeepEqual on two ResourceLists: quantities compare by value."""
    a, b = a or {}, b or {}
    return set(a) == set(b) and all(parse_quantity(a[k]) == parse_quantity(b[k]) for k in a)


def watch_until(api, ns: str, selector: str, resource_version: str, check, timeout: int = 30) -> None:  # type: ignore[no-untyped-def]
    """watchtools.Until over the namespace's quotas with the label selector, from a list's resourceVersion."""
    core = client.CoreV1Api(api)
    w = watch.Watch()
    for event in w.stream(core.list_namespaced_resource_quota, ns, label_selector=selector,
                          resource_version=resource_version, timeout_seconds=timeout):
        if check(event["object"]):
            w.stop()
            return
    raise AssertionError("the watch ended before the expected quota event")


@conformance("[sig-api-machinery] ResourceQuota should apply changes to a resourcequota status [Conformance]")
def test_quota_apply_status(api, ns) -> None:  # type: ignore[no-untyped-def]
    core = client.CoreV1Api(api)
    name = f"e2e-rq-status-{ns[-5:]}"
    selector = f"e2e-rq-label={name}"
    listed = core.list_resource_quota_for_all_namespaces(label_selector=selector)
    core.create_namespaced_resource_quota(ns, {"metadata": {"name": name, "labels": {"e2e-rq-label": name}},
                                               "spec": {"hard": {"cpu": "500m", "memory": "500Mi"}}})
    initial = core.read_namespaced_resource_quota(name, ns)
    assert parse_quantity(initial.spec.hard["cpu"]) == parse_quantity("500m")
    assert parse_quantity(initial.spec.hard["memory"]) == parse_quantity("500Mi")

    hard = dict(initial.spec.hard)
    for attempt in range(5):   # retry.RetryOnConflict: the quota controller writes status too
        body = core.api_client.sanitize_for_serialization(core.read_namespaced_resource_quota(name, ns))
        body["status"] = {"hard": hard}
        try:
            updated = core.replace_namespaced_resource_quota_status(name, ns, body)
            break
        except client.exceptions.ApiException as exc:
            if exc.status != 409 or attempt == 4:
                raise
    watch_until(api, ns, selector, listed.metadata.resource_version,
                lambda rq: rq.metadata.name == name and same_quantities(rq.status.hard, updated.spec.hard))

    listed = core.list_resource_quota_for_all_namespaces(label_selector=selector)
    patched_spec = core.patch_namespaced_resource_quota(name, ns, {"spec": {"hard": {"cpu": "1", "memory": "1Gi"}}})
    patched = core.patch_namespaced_resource_quota_status(name, ns, {"status": {"hard": dict(patched_spec.spec.hard)}})
    watch_until(api, ns, selector, listed.metadata.resource_version,
                lambda rq: rq.metadata.name == name and same_quantities(rq.status.hard, patched.spec.hard))

    got = core.read_namespaced_resource_quota_status(name, ns)
    assert parse_quantity(got.status.hard["cpu"]) == parse_quantity("1")
    assert parse_quantity(got.status.hard["memory"]) == parse_quantity("1Gi")

    listed = core.list_resource_quota_for_all_namespaces(label_selector=selector)
    repatched = core.patch_namespaced_resource_quota_status(name, ns, {"status": {"hard": {"cpu": "2",
                                                                                          "memory": "2Gi"}}})
    assert parse_quantity(repatched.status.hard["cpu"]) == parse_quantity("2")
    assert parse_quantity(repatched.status.hard["memory"]) == parse_quantity("2Gi")
    watch_until(api, ns, selector, listed.metadata.resource_version,
                lambda rq: rq.metadata.name == name and parse_quantity((rq.status.hard or {}).get("cpu", "0")) == 2
                and parse_quantity((rq.status.hard or {}).get("memory", "0")) == parse_quantity("2Gi"))

    # The quota controller ignores status-only changes; its full resync (every 5 minutes upstream)
    # puts status.hard back to spec.hard. Upstream polls up to 6 minutes for that.
    def reset() -> bool:
        rq = core.read_namespaced_resource_quota(name, ns)
        return (parse_quantity(rq.status.hard["cpu"]) == parse_quantity(rq.spec.hard["cpu"]) == 1
                and parse_quantity(rq.status.hard["memory"]) == parse_quantity("1Gi"))
    wait_for(reset, timeout=360, interval=1, what="the quota controller to reset status.hard to spec.hard")
