"""Deployments: test/e2e/apps/deployment.go (the conformance tests that need neither a served image
nor an image that fails to pull; rollover and proportional scaling, which rely on a non-existent image
never becoming available, are in test_ctl_apps.py, with a command that never starts)."""

from __future__ import annotations

import uuid

from kubernetes import client

from conformance.harness import conformance, wait_for
from conformance.tests._common import (
    AGNHOST, HTTPD, PAUSE, pods_running, retry_on_conflict, wait_default_service_account, watch_until,
)
from conformance.tests.test_replicaset import new_rs

REVISION = "deployment.kubernetes.io/revision"


def new_deployment(name: str, replicas: int, labels: dict[str, str], container: str, image: str,
                   strategy: str = "RollingUpdate") -> dict:
    """e2edeployment.NewDeployment: the object, selector and template labels are `labels`, grace period 0."""
    return {"metadata": {"name": name, "labels": dict(labels)},
            "spec": {"replicas": replicas, "selector": {"matchLabels": dict(labels)},
                     "strategy": {"type": strategy},
                     "template": {"metadata": {"labels": dict(labels)},
                                  "spec": {"terminationGracePeriodSeconds": 0,
                                           "containers": [{"name": container, "image": image,
                                                           "securityContext": {}}]}}}}


def owned_replica_sets(apps: client.AppsV1Api, ns: str, deployment) -> list:  # type: ignore[no-untyped-def]
    return [rs for rs in apps.list_namespaced_replica_set(ns).items
            if any(o.controller and o.uid == deployment.metadata.uid for o in rs.metadata.owner_references or [])]


def new_and_old(apps: client.AppsV1Api, ns: str, deployment):  # type: ignore[no-untyped-def]
    """The deployment's new ReplicaSet (its template equals the deployment's, pod-template-hash aside)
    and the old ones."""
    def template(t) -> dict:  # type: ignore[no-untyped-def]
        body = apps.api_client.sanitize_for_serialization(t)
        (body.get("metadata") or {}).get("labels", {}).pop("pod-template-hash", None)
        return body
    want = template(deployment.spec.template)
    new, old = None, []
    for rs in owned_replica_sets(apps, ns, deployment):
        if template(rs.spec.template) == want:
            new = rs
        else:
            old.append(rs)
    return new, old


def wait_revision_and_image(apps: client.AppsV1Api, ns: str, name: str, revision: str, image: str) -> None:
    """e2edeployment.WaitForDeploymentRevisionAndImage."""
    def check() -> bool:
        d = apps.read_namespaced_deployment(name, ns)
        if (d.metadata.annotations or {}).get(REVISION) != revision:
            return False
        if d.spec.template.spec.containers[0].image != image:
            return False
        rs, _ = new_and_old(apps, ns, d)
        return bool(rs and (rs.metadata.annotations or {}).get(REVISION) == revision
                    and rs.spec.template.spec.containers[0].image == image)
    wait_for(check, timeout=120, what=f"deployment {name} at revision {revision} with {image}")


def wait_complete(apps: client.AppsV1Api, ns: str, name: str) -> None:
    """e2edeployment.WaitForDeploymentComplete: every replica updated and available, generation observed."""
    def check() -> bool:
        d = apps.read_namespaced_deployment(name, ns)
        s, want = d.status, d.spec.replicas
        return (s.updated_replicas == want and s.replicas == want and s.available_replicas == want
                and (s.observed_generation or 0) >= d.metadata.generation)
    wait_for(check, timeout=120, what=f"deployment {name} to complete")


@conformance("[sig-apps] Deployment Deployment should have a working scale subresource [Conformance]")
def test_deployment_scale_subresource(api, ns) -> None:  # type: ignore[no-untyped-def]
    apps = client.AppsV1Api(api)
    wait_default_service_account(api, ns)
    name = "test-new-deployment"
    apps.create_namespaced_deployment(ns, new_deployment(name, 1, {"name": "httpd"}, "httpd", HTTPD))
    wait_revision_and_image(apps, ns, name, "1", HTTPD)
    wait_complete(apps, ns, name)
    apps.read_namespaced_deployment(name, ns)
    scale = apps.read_namespaced_deployment_scale(name, ns)
    assert scale.spec.replicas == 1 and scale.status.replicas == 1
    scale.metadata.resource_version = ""
    scale.spec.replicas = 2
    assert apps.replace_namespaced_deployment_scale(name, ns, scale).spec.replicas == 2
    assert apps.read_namespaced_deployment(name, ns).spec.replicas == 2
    apps.patch_namespaced_deployment_scale(name, ns, {"spec": {"replicas": 4}})
    assert apps.read_namespaced_deployment(name, ns).spec.replicas == 4


@conformance("[sig-apps] Deployment RollingUpdateDeployment should delete old pods and create new ones "
             "[Conformance]")
def test_deployment_rolling_update(api, ns) -> None:  # type: ignore[no-untyped-def]
    apps = client.AppsV1Api(api)
    wait_default_service_account(api, ns)
    rs = new_rs("test-rolling-update-controller", 1, {"name": "sample-pod", "pod": "httpd"}, "httpd", HTTPD)
    rs["metadata"]["annotations"] = {REVISION: "3546343826724305832"}
    apps.create_namespaced_replica_set(ns, rs)
    pods_running(api, ns, "name=sample-pod", 1)
    name = "test-rolling-update-deployment"
    apps.create_namespaced_deployment(ns, new_deployment(name, 1, {"name": "sample-pod"}, "agnhost", AGNHOST))
    # the adopted ReplicaSet's revision is the highest, so the new one gets the next
    wait_revision_and_image(apps, ns, name, "3546343826724305833", AGNHOST)
    wait_complete(apps, ns, name)
    _, old = new_and_old(apps, ns, apps.read_namespaced_deployment(name, ns))
    assert len(old) == 1, [r.metadata.name for r in old]


@conformance("[sig-apps] Deployment RecreateDeployment should delete old pods and create new ones [Conformance]")
def test_deployment_recreate(api, ns) -> None:  # type: ignore[no-untyped-def]
    apps = client.AppsV1Api(api)
    wait_default_service_account(api, ns)
    name = "test-recreate-deployment"
    apps.create_namespaced_deployment(ns, new_deployment(name, 1, {"name": "sample-pod-3"}, "agnhost", AGNHOST,
                                                         strategy="Recreate"))
    wait_revision_and_image(apps, ns, name, "1", AGNHOST)
    wait_complete(apps, ns, name)

    def switch():  # type: ignore[no-untyped-def]
        d = apps.read_namespaced_deployment(name, ns)
        d.spec.template.spec.containers[0].name = "httpd"
        d.spec.template.spec.containers[0].image = HTTPD
        return apps.replace_namespaced_deployment(name, ns, d)
    d = retry_on_conflict(switch)

    # watchRecreateDeployment: new pods never run alongside old ones
    def done(_type: str, dep) -> bool:  # type: ignore[no-untyped-def]
        s = dep.status
        assert not ((s.updated_replicas or 0) > 0 and (s.replicas or 0) != (s.updated_replicas or 0)), \
            f"deployment {name} is running new pods alongside old pods: {s}"
        return (dep.spec.replicas == (s.replicas or 0) == (s.updated_replicas or 0)
                and dep.metadata.generation <= (s.observed_generation or 0))
    from kubernetes import watch as kwatch

    w = kwatch.Watch()
    for event in w.stream(apps.list_namespaced_deployment, ns, field_selector=f"metadata.name={name}",
                          resource_version=d.metadata.resource_version, timeout_seconds=120):
        if done(event["type"], event["object"]):
            w.stop()
            break
    else:
        raise AssertionError(f"deployment {name} never completed")


@conformance("[sig-apps] Deployment deployment should delete old replica sets [Conformance]")
def test_deployment_cleanup_policy(api, ns) -> None:  # type: ignore[no-untyped-def]
    import threading

    from kubernetes import watch as kwatch

    apps, core = client.AppsV1Api(api), client.CoreV1Api(api)
    wait_default_service_account(api, ns)
    apps.create_namespaced_replica_set(ns, new_rs("test-cleanup-controller", 1,
                                                  {"name": "cleanup-pod", "pod": "httpd"}, "httpd", HTTPD))
    pods_running(api, ns, "name=cleanup-pod", 1)
    listed = core.list_namespaced_pod(ns)

    # Only one pod may be created from here on, the agnhost one: the old ReplicaSet must not make a
    # new pod when the deployment controller adds the pod-template-hash label to its selector.
    problems: list[str] = []
    w = kwatch.Watch()

    stopped = threading.Event()

    def watch_pods() -> None:
        created = 0
        try:
            for event in w.stream(core.list_namespaced_pod, ns, resource_version=listed.metadata.resource_version,
                                  timeout_seconds=120):
                if event["type"] != "ADDED":
                    continue
                created += 1
                if created > 1:
                    problems.append(f"a second pod was created: {event['object'].metadata.name}")
                if event["object"].spec.containers[0].name != "agnhost":
                    problems.append(f"a pod with container {event['object'].spec.containers[0].name} was created")
        except Exception as exc:  # noqa: BLE001 - closing the watch from the test thread ends the stream
            if not stopped.is_set():
                problems.append(f"the pod watch failed: {exc!r}")
    watcher = threading.Thread(target=watch_pods, daemon=True)
    watcher.start()
    try:
        name = "test-cleanup-deployment"
        body = new_deployment(name, 1, {"name": "cleanup-pod"}, "agnhost", AGNHOST)
        body["spec"]["revisionHistoryLimit"] = 0
        apps.create_namespaced_deployment(ns, body)
        wait_for(lambda: len(new_and_old(apps, ns, apps.read_namespaced_deployment(name, ns))[1]) == 0
                 and new_and_old(apps, ns, apps.read_namespaced_deployment(name, ns))[0] is not None,
                 timeout=120, what="the old replica sets to be cleaned up")
    finally:
        stopped.set()
        w.stop()
    assert not problems, problems


@conformance("[sig-apps] Deployment should run the lifecycle of a Deployment [Conformance]")
def test_deployment_lifecycle(api, ns) -> None:  # type: ignore[no-untyped-def]
    apps = client.AppsV1Api(api)
    wait_default_service_account(api, ns)
    name, selector = "test-deployment", "test-deployment-static=true"
    listed = apps.list_deployment_for_all_namespaces(label_selector=selector)
    rv = listed.metadata.resource_version
    body = new_deployment(name, 2, {"test-deployment-static": "true"}, name, AGNHOST)
    body["metadata"]["labels"] = {"test-deployment-static": "true"}
    body["spec"]["template"]["spec"]["terminationGracePeriodSeconds"] = 1
    apps.create_namespaced_deployment(ns, body)

    def ours(d) -> bool:  # type: ignore[no-untyped-def]
        return d.metadata.name == name and (d.metadata.labels or {}).get("test-deployment-static") == "true"
    lw = apps.list_namespaced_deployment
    watch_until(lw, ns, selector, rv, lambda t, d: t == "ADDED" and ours(d), timeout=30)
    watch_until(lw, ns, selector, rv, lambda _t, d: ours(d) and d.status.ready_replicas == 2, timeout=120)

    apps.patch_namespaced_deployment(name, ns, {
        "metadata": {"labels": {"test-deployment": "patched"}},
        "spec": {"replicas": 1, "template": {"spec": {"terminationGracePeriodSeconds": 2,
                                                      "containers": [{"name": name, "image": PAUSE}]}}}})
    watch_until(lw, ns, selector, rv, lambda t, d: t == "MODIFIED" and ours(d), timeout=30)
    watch_until(lw, ns, selector, rv, lambda _t, d: ours(d) and d.status.ready_replicas == 1
                and d.status.updated_replicas == 1 and not d.status.unavailable_replicas
                and d.spec.template.spec.containers[0].image == PAUSE
                and d.spec.template.spec.termination_grace_period_seconds == 2, timeout=120)

    found = apps.list_deployment_for_all_namespaces(label_selector=selector)
    assert any(d.metadata.name == name and d.metadata.namespace == ns for d in found.items)

    # an unconditional update from the object as first built (no resourceVersion)
    body["metadata"]["labels"]["test-deployment"] = "updated"
    body["spec"]["template"]["spec"]["containers"][0]["image"] = HTTPD
    body["spec"]["replicas"] = 2
    apps.replace_namespaced_deployment(name, ns, body)
    watch_until(lw, ns, selector, rv, lambda t, d: t == "MODIFIED" and ours(d), timeout=30)
    got = apps.read_namespaced_deployment_status(name, ns)
    assert got.spec.template.spec.containers[0].image == HTTPD
    assert got.metadata.labels.get("test-deployment") == "updated"
    watch_until(lw, ns, selector, rv, lambda _t, d: ours(d) and d.status.ready_replicas == 2
                and d.status.updated_replicas == 2 and not d.status.unavailable_replicas, timeout=120)

    apps.patch_namespaced_deployment_status(name, ns, {"status": {"readyReplicas": 0, "availableReplicas": 0}})
    watch_until(lw, ns, selector, rv, lambda t, d: t == "MODIFIED" and d.metadata.name == name
                and not d.status.ready_replicas and not d.status.available_replicas, timeout=30)
    got = apps.read_namespaced_deployment_status(name, ns)
    assert got.spec.template.spec.containers[0].image == HTTPD
    assert got.metadata.labels.get("test-deployment") == "updated"
    watch_until(lw, ns, selector, rv, lambda _t, d: ours(d) and d.status.ready_replicas == 2
                and d.status.updated_replicas == 2 and not d.status.unavailable_replicas
                and d.spec.template.spec.containers[0].image == HTTPD, timeout=120)

    apps.delete_collection_namespaced_deployment(ns, grace_period_seconds=1, label_selector=selector)
    watch_until(lw, ns, selector, rv, lambda t, d: t == "DELETED" and ours(d), timeout=60)


@conformance("[sig-apps] Deployment should validate Deployment Status endpoints [Conformance]")
def test_deployment_status_endpoints(api, ns) -> None:  # type: ignore[no-untyped-def]
    apps = client.AppsV1Api(api)
    wait_default_service_account(api, ns)
    name, selector = f"test-deployment-{uuid.uuid4().hex[:5]}", "e2e=testing"
    listed = apps.list_deployment_for_all_namespaces(label_selector=selector)
    apps.create_namespaced_deployment(ns, new_deployment(name, 1, {"name": "httpd", "e2e": "testing"}, "httpd",
                                                         HTTPD))
    wait_revision_and_image(apps, ns, name, "1", HTTPD)
    wait_complete(apps, ns, name)
    created = apps.read_namespaced_deployment(name, ns)
    apps.read_namespaced_deployment_status(name, ns)

    def update_status():  # type: ignore[no-untyped-def]
        d = apps.api_client.sanitize_for_serialization(apps.read_namespaced_deployment(name, ns))
        d["status"].setdefault("conditions", []).append(
            {"type": "StatusUpdate", "status": "True", "reason": "E2E", "message": "Set from e2e test"})
        return apps.replace_namespaced_deployment_status(name, ns, d)
    retry_on_conflict(update_status)

    def mine(d) -> bool:  # type: ignore[no-untyped-def]
        return (d.metadata.name == created.metadata.name and d.metadata.namespace == ns
                and (d.metadata.labels or {}).get("e2e") == (created.metadata.labels or {}).get("e2e"))
    rv = listed.metadata.resource_version
    watch_until(apps.list_namespaced_deployment, ns, selector, rv,
                lambda _t, d: mine(d) and any(c.type == "StatusUpdate" and c.reason == "E2E"
                                              and c.message == "Set from e2e test"
                                              for c in d.status.conditions or []), timeout=120)
    apps.patch_namespaced_deployment_status(
        name, ns, {"status": {"conditions": [{"type": "StatusPatched", "status": "True"}]}},
        _content_type="application/merge-patch+json")
    watch_until(apps.list_namespaced_deployment, ns, selector, rv,
                lambda _t, d: mine(d) and any(c.type == "StatusPatched" for c in d.status.conditions or []),
                timeout=120)
