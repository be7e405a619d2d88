"""Workload controllers, the conformance tests left out of the per-kind files: test/e2e/apps/cronjob.go
(the scheduling ones, on minute schedules), daemon_set.go (rollback), deployment.go (proportional
scaling, rollover) and statefulset.go (recreate evicted).

Upstream expresses "a pod that never becomes available" with an image that does not exist; the process
runtime records image names without pulling, so here such a template keeps upstream's image name and
gets a command that does not exist either: the container never starts (CrashLoopBackOff), the pod never
becomes ready, as with ErrImagePull. CronJob waits of 5 minutes become one minute boundary."""

from __future__ import annotations

import time

from kubernetes import client

from conformance.harness import conformance, wait_for
from conformance.tests._common import AGNHOST, HTTPD, retry_on_conflict, wait_default_service_account
from conformance.tests.test_cronjob import new_test_cronjob
from conformance.tests.test_daemonset import (
    DS_NAME, SELECTOR, daemon_pods, new_daemon_set, schedulable_nodes, wait_running_on_all_nodes,
)
from conformance.tests.test_deployment import new_and_old, new_deployment, wait_complete, wait_revision_and_image
from conformance.tests.test_replicaset import new_rs

NEVER_STARTS = ["/nonexistent/never-starts"]
SLEEP = ["sleep", "300"]
ONE_MINUTE = "*/1 * * * ?"


# -- CronJob ------------------------------------------------------------------------------------------

def active_jobs(batch: client.BatchV1Api, ns: str) -> list:
    """Jobs that have not finished (no Complete/Failed condition)."""
    return [j for j in batch.list_namespaced_job(ns).items
            if not any(c.type in ("Complete", "Failed") and c.status == "True" for c in j.status.conditions or [])]


def create_cronjob(batch: client.BatchV1Api, ns: str, name: str, policy: str, suspend: bool = False):  # type: ignore[no-untyped-def]
    body = new_test_cronjob(name, ONE_MINUTE, policy, SLEEP, None, None)
    if suspend:
        body["spec"]["suspend"] = True
    return batch.create_namespaced_cron_job(ns, body)


@conformance("[sig-apps] CronJob should schedule multiple jobs concurrently [Conformance]")
def test_cronjob_concurrent(api, ns) -> None:  # type: ignore[no-untyped-def]
    batch = client.BatchV1Api(api)
    wait_default_service_account(api, ns)
    create_cronjob(batch, ns, "concurrent", "Allow")
    wait_for(lambda: len(active_jobs(batch, ns)) >= 2, timeout=150, interval=1, what="two active jobs")
    assert len(active_jobs(batch, ns)) >= 2
    wait_for(lambda: len(batch.read_namespaced_cron_job("concurrent", ns).status.active or []) >= 2, timeout=30,
             what="the cronjob to list two active jobs")
    batch.delete_namespaced_cron_job("concurrent", ns)


@conformance("[sig-apps] CronJob should not schedule jobs when suspended [Conformance] [Slow]")
def test_cronjob_suspended(api, ns) -> None:  # type: ignore[no-untyped-def]
    batch = client.BatchV1Api(api)
    wait_default_service_account(api, ns)
    create_cronjob(batch, ns, "suspended", "Allow", suspend=True)
    time.sleep(65)  # at least one scheduled time passes (upstream watches for 5 minutes)
    assert not batch.list_namespaced_job(ns).items
    cj = batch.read_namespaced_cron_job("suspended", ns)
    assert not cj.status.active
    batch.delete_namespaced_cron_job("suspended", ns)


@conformance("[sig-apps] CronJob should not schedule new jobs when ForbidConcurrent [Conformance] [Slow]")
def test_cronjob_forbid(api, ns) -> None:  # type: ignore[no-untyped-def]
    batch = client.BatchV1Api(api)
    wait_default_service_account(api, ns)
    create_cronjob(batch, ns, "forbid", "Forbid")
    wait_for(lambda: len(active_jobs(batch, ns)) >= 1, timeout=90, interval=1, what="an active job")
    first = active_jobs(batch, ns)
    assert len(first) == 1, [j.metadata.name for j in first]
    time.sleep(65)  # another scheduled time passes while the job runs (upstream: 5 minutes)
    jobs = batch.list_namespaced_job(ns).items
    assert [j.metadata.name for j in jobs] == [first[0].metadata.name], [j.metadata.name for j in jobs]
    cj = batch.read_namespaced_cron_job("forbid", ns)
    assert len(cj.status.active or []) == 1
    batch.delete_namespaced_cron_job("forbid", ns)


@conformance("[sig-apps] CronJob should replace jobs when ReplaceConcurrent [Conformance]")
def test_cronjob_replace(api, ns) -> None:  # type: ignore[no-untyped-def]
    batch = client.BatchV1Api(api)
    wait_default_service_account(api, ns)
    create_cronjob(batch, ns, "replace", "Replace")
    wait_for(lambda: len(active_jobs(batch, ns)) >= 1, timeout=90, interval=1, what="an active job")
    first = active_jobs(batch, ns)
    assert len(first) == 1
    old = first[0].metadata.name

    def replaced() -> bool:
        """waitForJobReplaced: one active job, not the first one."""
        jobs = active_jobs(batch, ns)
        assert len(jobs) <= 1, f"more than one active job: {[j.metadata.name for j in jobs]}"
        return len(jobs) == 1 and jobs[0].metadata.name != old
    wait_for(replaced, timeout=90, interval=1, what=f"job {old} to be replaced")
    batch.delete_namespaced_cron_job("replace", ns)


# -- DaemonSet rollback -------------------------------------------------------------------------------

@conformance("[sig-apps] Daemon set should rollback without unnecessary restarts [Conformance] [Serial]")
def test_daemonset_rollback(api, ns) -> None:  # type: ignore[no-untyped-def]
    apps, core = client.AppsV1Api(api), client.CoreV1Api(api)
    wait_default_service_account(api, ns)
    nodes = schedulable_nodes(core)
    assert len(nodes) >= 2, "the rollback test needs at least two schedulable nodes"
    body = new_daemon_set()
    body["spec"]["updateStrategy"] = {"type": "RollingUpdate"}
    apps.create_namespaced_daemon_set(ns, body)
    wait_running_on_all_nodes(core, ns, apps)

    def set_template(image: str, command: list[str] | None) -> None:
        def update() -> None:
            ds = apps.read_namespaced_daemon_set(DS_NAME, ns)
            ds.spec.template.spec.containers[0].image = image
            ds.spec.template.spec.containers[0].command = command
            apps.replace_namespaced_daemon_set(DS_NAME, ns, ds)
        retry_on_conflict(update)

    set_template("foo:non-existent", NEVER_STARTS)
    ds = apps.read_namespaced_daemon_set(DS_NAME, ns)

    def mid_rollout():  # type: ignore[no-untyped-def]
        pods = daemon_pods(core, ns, ds)
        new = [p for p in pods if p.spec.containers[0].image == "foo:non-existent"]
        return pods if new else None
    pods = wait_for(mid_rollout, timeout=60, what="a daemon pod with the new image")
    existing = {p.metadata.name for p in pods if p.spec.containers[0].image == HTTPD}
    new = {p.metadata.name for p in pods if p.spec.containers[0].image != HTTPD}
    assert existing and new, "the rollout should be stuck halfway"

    set_template(HTTPD, None)
    wait_running_on_all_nodes(core, ns, apps)

    def rolled_back() -> bool:
        pods = daemon_pods(core, ns, ds)
        return bool(pods) and all(p.spec.containers[0].image == HTTPD for p in pods)
    wait_for(rolled_back, timeout=60, what="every daemon pod back on the old image")
    after = {p.metadata.name for p in core.list_namespaced_pod(ns, label_selector=SELECTOR).items
             if p.metadata.deletion_timestamp is None}
    restarted = existing - after
    assert not restarted, f"pods restarted unnecessarily: {restarted}"


# -- Deployments --------------------------------------------------------------------------------------

def rs_spec_replicas(apps: client.AppsV1Api, ns: str, name: str, want: int) -> None:
    wait_for(lambda: apps.read_namespaced_replica_set(name, ns).spec.replicas == want, timeout=60,
             what=f"replica set {name} to have .spec.replicas = {want}")


def rs_desired(apps: client.AppsV1Api, ns: str, name: str) -> None:
    """waitForReplicaSetDesiredReplicas: status.replicas == spec.replicas, generation observed."""
    def check() -> bool:
        rs = apps.read_namespaced_replica_set(name, ns)
        return (rs.status.replicas == rs.spec.replicas
                and (rs.status.observed_generation or 0) >= rs.metadata.generation)
    wait_for(check, timeout=60, what=f"replica set {name} to have its desired replicas")


@conformance("[sig-apps] Deployment deployment should support proportional scaling [Conformance]")
def test_deployment_proportional_scaling(api, ns) -> None:  # type: ignore[no-untyped-def]
    apps = client.AppsV1Api(api)
    wait_default_service_account(api, ns)
    name = "webserver-deployment"
    body = new_deployment(name, 10, {"name": "httpd"}, "httpd", HTTPD)
    body["spec"]["strategy"]["rollingUpdate"] = {"maxSurge": 3, "maxUnavailable": 2}
    apps.create_namespaced_deployment(ns, body)
    wait_complete(apps, ns, name)
    first, _ = new_and_old(apps, ns, apps.read_namespaced_deployment(name, ns))

    def broken_image() -> object:
        d = apps.read_namespaced_deployment(name, ns)
        d.spec.template.spec.containers[0].image = "webserver:404"
        d.spec.template.spec.containers[0].command = NEVER_STARTS
        return apps.replace_namespaced_deployment(name, ns, d)
    d = retry_on_conflict(broken_image)
    wait_for(lambda: (apps.read_namespaced_deployment(name, ns).status.observed_generation or 0)
             >= d.metadata.generation, timeout=30, what="the new generation to be observed")
    # the first rollout's replica set keeps replicas - maxUnavailable = 8 available
    wait_for(lambda: (apps.read_namespaced_replica_set(first.metadata.name, ns).status.available_replicas or 0)
             == 8, timeout=60, what="the first replica set to have 8 available")
    rs_spec_replicas(apps, ns, first.metadata.name, 8)
    rs_desired(apps, ns, first.metadata.name)
    second = wait_for(lambda: new_and_old(apps, ns, apps.read_namespaced_deployment(name, ns))[0], timeout=30,
                      what="the second replica set")
    assert not second.status.available_replicas
    # replicas + maxSurge - 8 = 5
    rs_spec_replicas(apps, ns, second.metadata.name, 5)
    rs_desired(apps, ns, second.metadata.name)
    assert (apps.read_namespaced_deployment(name, ns).status.available_replicas or 0) >= 8

    def scale() -> object:
        d = apps.read_namespaced_deployment(name, ns)
        d.spec.replicas = 30
        return apps.replace_namespaced_deployment(name, ns, d)
    retry_on_conflict(scale)
    # 8 + round(20 * 8/13) = 20 and 5 + round(20 * 5/13) = 13
    rs_spec_replicas(apps, ns, first.metadata.name, 20)
    rs_spec_replicas(apps, ns, second.metadata.name, 13)


@conformance("[sig-apps] Deployment deployment should support rollover [Conformance]")
def test_deployment_rollover(api, ns) -> None:  # type: ignore[no-untyped-def]
    apps, core = client.AppsV1Api(api), client.CoreV1Api(api)
    wait_default_service_account(api, ns)
    labels = {"name": "rollover-pod"}
    apps.create_namespaced_replica_set(ns, new_rs("test-rollover-controller", 1, labels, "httpd", HTTPD))

    def available() -> bool:
        pods = core.list_namespaced_pod(ns, label_selector="name=rollover-pod").items
        return len(pods) == 1 and all(any(c.type == "Ready" and c.status == "True"
                                          for c in p.status.conditions or []) for p in pods)
    wait_for(available, timeout=60, what="the rollover controller's pod to be available")

    name = "test-rollover-deployment"
    body = new_deployment(name, 1, labels, "redis-slave", "gcr.io/google_samples/gb-redisslave:nonexistent")
    body["spec"]["template"]["spec"]["containers"][0]["command"] = NEVER_STARTS
    body["spec"]["minReadySeconds"] = 10
    body["spec"]["strategy"]["rollingUpdate"] = {"maxUnavailable": 0, "maxSurge": 1}
    apps.create_namespaced_deployment(ns, body)
    # revision 1 with the broken image; its replica set's pod never becomes available
    wait_for(lambda: (apps.read_namespaced_deployment(name, ns).metadata.annotations or {})
             .get("deployment.kubernetes.io/revision") == "1", timeout=60, what="revision 1")
    d = apps.read_namespaced_deployment(name, ns)
    broken = wait_for(lambda: new_and_old(apps, ns, apps.read_namespaced_deployment(name, ns))[0], timeout=30,
                      what="the first new replica set")

    def update() -> object:
        d = apps.read_namespaced_deployment(name, ns)
        d.spec.template.spec.containers[0].name = "agnhost"
        d.spec.template.spec.containers[0].image = AGNHOST
        d.spec.template.spec.containers[0].command = ["sleep", "3600"]
        return apps.replace_namespaced_deployment(name, ns, d)
    d = retry_on_conflict(update)
    wait_for(lambda: (apps.read_namespaced_deployment(name, ns).status.observed_generation or 0)
             >= d.metadata.generation, timeout=30, what="the update to be observed")
    wait_revision_and_image(apps, ns, name, "2", AGNHOST)
    wait_complete(apps, ns, name)
    # both old replica sets end at zero replicas
    for old in ("test-rollover-controller", broken.metadata.name):
        wait_for(lambda old=old: apps.read_namespaced_replica_set(old, ns).spec.replicas == 0
                 and (apps.read_namespaced_replica_set(old, ns).status.available_replicas or 0) == 0,
                 timeout=60, what=f"{old} to be scaled down to 0")


# -- StatefulSet --------------------------------------------------------------------------------------

@conformance("[sig-apps] StatefulSet Basic StatefulSet functionality [StatefulSetBasic] Should recreate evicted "
             "statefulset [Conformance]")
def test_statefulset_recreate_evicted(api, ns) -> None:  # type: ignore[no-untyped-def]
    """A pod holding host port 21017 on a node; the StatefulSet's ss-0, bound to that node with the
    same host port, is rejected by the kubelet (Failed), deleted and recreated by the controller,
    until the conflicting pod goes and ss-0 runs."""
    from kubernetes import watch

    apps, core = client.AppsV1Api(api), client.CoreV1Api(api)
    wait_default_service_account(api, ns)
    node = schedulable_nodes(core)[0].metadata.name
    port = {"containerPort": 21017, "hostPort": 21017}
    core.create_namespaced_pod(ns, {"metadata": {"name": "test-pod"}, "spec": {
        "nodeName": node, "containers": [{"name": "webserver", "image": HTTPD, "ports": [port]}]}})
    wait_for(lambda: core.read_namespaced_pod("test-pod", ns).status.phase == "Running", timeout=60,
             what="the conflicting pod to run")
    core.create_namespaced_service(ns, {"metadata": {"name": "test"},
                                        "spec": {"clusterIP": "None", "selector": {"baz": "blah"},
                                                 "ports": [{"port": 80}]}})
    rv = core.list_namespaced_pod(ns).metadata.resource_version
    apps.create_namespaced_stateful_set(ns, {"metadata": {"name": "ss"}, "spec": {
        "replicas": 1, "serviceName": "test", "selector": {"matchLabels": {"baz": "blah"}},
        "template": {"metadata": {"labels": {"baz": "blah"}}, "spec": {
            "nodeName": node, "containers": [{"name": "webserver", "image": HTTPD, "ports": [port]}]}}}})

    # the stateful pod is seen Failed and then deleted, at least once
    failed_then_deleted = False
    w = watch.Watch()
    for event in w.stream(core.list_namespaced_pod, ns, resource_version=rv, field_selector="metadata.name=ss-0",
                          timeout_seconds=30):
        pod = event["object"]
        if event["type"] == "DELETED" and pod.status.phase == "Failed":
            failed_then_deleted = True
            w.stop()
    assert failed_then_deleted, "ss-0 was never rejected (Failed) and deleted"

    core.delete_namespaced_pod("test-pod", ns, grace_period_seconds=0)

    def ss0_running() -> bool:
        return core.read_namespaced_pod("ss-0", ns).status.phase == "Running"
    wait_for(ss0_running, timeout=90, what="ss-0 to be recreated and run")
