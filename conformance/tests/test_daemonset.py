"""DaemonSets: test/e2e/apps/daemon_set.go (the conformance tests except the rollback one, which
relies on an image that can never start: it is in test_ctl_apps.py, with a command that never starts)."""

from __future__ import annotations

from kubernetes import client

from conformance.harness import conformance, wait_for
from conformance.tests._common import (
    AGNHOST, HTTPD, retry_on_conflict, wait_default_service_account, watch_until,
)

DS_NAME = "daemon-set"
NAME_LABEL = "daemonset-name"
LABEL_PREFIX = "daemonset-"
COLOR_LABEL = LABEL_PREFIX + "color"
HASH_LABEL = "controller-revision-hash"
LABEL = {NAME_LABEL: DS_NAME}
SELECTOR = f"{NAME_LABEL}={DS_NAME}"


def new_daemon_set(with_label: bool = False) -> dict:
    """e2edaemonset.NewDaemonSet: container `app` serving on 9376; newDaemonSet drops the object labels."""
    body = {"metadata": {"name": DS_NAME},
            "spec": {"selector": {"matchLabels": dict(LABEL)},
                     "template": {"metadata": {"labels": dict(LABEL)},
                                  "spec": {"containers": [{"name": "app", "image": HTTPD,
                                                           "ports": [{"containerPort": 9376}]}]}}}}
    if with_label:
        body["metadata"]["labels"] = dict(LABEL)
    return body


def schedulable_nodes(core: client.CoreV1Api, ds=None) -> list:  # type: ignore[no-untyped-def]
    """The ready nodes a daemon pod can go to: no NoSchedule/NoExecute taint, and the template's node
    selector matched."""
    selector = (ds.spec.template.spec.node_selector or {}) if ds is not None else {}
    nodes = []
    for node in core.list_node().items:
        if node.spec.unschedulable:
            continue
        if any(t.effect in ("NoSchedule", "NoExecute") for t in node.spec.taints or []):
            continue
        if any((node.metadata.labels or {}).get(k) != v for k, v in selector.items()):
            continue
        nodes.append(node)
    return nodes


def daemon_pods(core: client.CoreV1Api, ns: str, ds) -> list:  # type: ignore[no-untyped-def]
    return [p for p in core.list_namespaced_pod(ns, label_selector=SELECTOR).items
            if p.metadata.deletion_timestamp is None
            and any(o.controller and o.uid == ds.metadata.uid for o in p.metadata.owner_references or [])]


def available(pod) -> bool:  # type: ignore[no-untyped-def]
    return any(c.type == "Ready" and c.status == "True" for c in pod.status.conditions or [])


def running_on_nodes(core: client.CoreV1Api, ns: str, ds, names: list[str]) -> bool:  # type: ignore[no-untyped-def]
    """e2edaemonset.CheckDaemonPodOnNodes: exactly the named nodes run an available daemon pod."""
    per_node: dict[str, int] = {}
    for pod in daemon_pods(core, ns, ds):
        if available(pod) and pod.spec.node_name:
            per_node[pod.spec.node_name] = per_node.get(pod.spec.node_name, 0) + 1
    return sorted(per_node) == sorted(names) and all(n == 1 for n in per_node.values())


def wait_running_on_all_nodes(core: client.CoreV1Api, ns: str, apps: client.AppsV1Api) -> None:
    def check() -> bool:
        ds = apps.read_namespaced_daemon_set(DS_NAME, ns)
        names = [n.metadata.name for n in schedulable_nodes(core, ds)]
        return bool(names) and running_on_nodes(core, ns, ds, names)
    wait_for(check, timeout=60, what="daemon pods on every node")


def wait_running_on(core: client.CoreV1Api, ns: str, apps: client.AppsV1Api, names: list[str]) -> None:
    wait_for(lambda: running_on_nodes(core, ns, apps.read_namespaced_daemon_set(DS_NAME, ns), names), timeout=60,
             what=f"daemon pods on exactly {names}")


def check_daemon_status(apps: client.AppsV1Api, ns: str) -> None:
    """e2edaemonset.CheckDaemonStatus: desired == current == ready, nothing misscheduled."""
    def check() -> bool:
        s = apps.read_namespaced_daemon_set(DS_NAME, ns).status
        return (s.desired_number_scheduled > 0 and s.desired_number_scheduled == s.current_number_scheduled
                == s.number_ready and s.number_misscheduled == 0)
    wait_for(check, timeout=30, what="the daemon set status to settle")


def set_color(core: client.CoreV1Api, node_name: str, color: str | None) -> None:
    """setDaemonSetNodeLabels: the node carries exactly the test's daemonset- labels given."""
    def update() -> None:
        node = core.read_node(node_name)
        labels = {k: v for k, v in (node.metadata.labels or {}).items() if not k.startswith(LABEL_PREFIX)}
        if color is not None:
            labels[COLOR_LABEL] = color
        body = core.api_client.sanitize_for_serialization(node)
        body["metadata"]["labels"] = labels
        core.replace_node(node_name, body)
    retry_on_conflict(update)


@conformance("[sig-apps] Daemon set should run and stop simple daemon [Conformance] [Serial]")
def test_daemonset_simple(api, ns) -> None:  # type: ignore[no-untyped-def]
    core, apps = client.CoreV1Api(api), client.AppsV1Api(api)
    wait_default_service_account(api, ns)
    ds = apps.create_namespaced_daemon_set(ns, new_daemon_set())
    wait_running_on_all_nodes(core, ns, apps)
    check_daemon_status(apps, ns)
    victim = daemon_pods(core, ns, ds)[0]
    core.delete_namespaced_pod(victim.metadata.name, ns)
    wait_running_on_all_nodes(core, ns, apps)


@conformance("[sig-apps] Daemon set should run and stop complex daemon [Conformance] [Serial]")
def test_daemonset_complex(api, ns) -> None:  # type: ignore[no-untyped-def]
    core, apps = client.CoreV1Api(api), client.AppsV1Api(api)
    wait_default_service_account(api, ns)
    body = new_daemon_set()
    body["spec"]["template"]["spec"]["nodeSelector"] = {COLOR_LABEL: "blue"}
    apps.create_namespaced_daemon_set(ns, body)
    wait_running_on(core, ns, apps, [])
    node = schedulable_nodes(core)[0].metadata.name
    try:
        set_color(core, node, "blue")
        wait_running_on(core, ns, apps, [node])
        check_daemon_status(apps, ns)

        set_color(core, node, "green")
        wait_running_on(core, ns, apps, [])

        apps.patch_namespaced_daemon_set(DS_NAME, ns, {"spec": {
            "template": {"spec": {"nodeSelector": {COLOR_LABEL: "green"}}},
            "updateStrategy": {"type": "RollingUpdate"}}})
        wait_running_on(core, ns, apps, [node])
        check_daemon_status(apps, ns)
    finally:
        set_color(core, node, None)


@conformance("[sig-apps] Daemon set should retry creating failed daemon pods [Conformance] [Serial]")
def test_daemonset_retry_failed_pods(api, ns) -> None:  # type: ignore[no-untyped-def]
    core, apps = client.CoreV1Api(api), client.AppsV1Api(api)
    wait_default_service_account(api, ns)
    ds = apps.create_namespaced_daemon_set(ns, new_daemon_set())
    wait_running_on_all_nodes(core, ns, apps)
    check_daemon_status(apps, ns)
    pod = daemon_pods(core, ns, ds)[0]
    body = core.api_client.sanitize_for_serialization(pod)
    body["metadata"]["resourceVersion"] = ""
    body["status"]["phase"] = "Failed"
    core.replace_namespaced_pod_status(pod.metadata.name, ns, body)
    wait_running_on_all_nodes(core, ns, apps)

    def gone() -> bool:
        try:
            core.read_namespaced_pod(pod.metadata.name, ns)
        except client.exceptions.ApiException as exc:
            if exc.status == 404:
                return True
            raise
        return False
    wait_for(gone, timeout=30, what="the failed daemon pod to be deleted")


def histories(apps: client.AppsV1Api, ns: str) -> list:
    return apps.list_namespaced_controller_revision(ns, label_selector=SELECTOR).items


@conformance("[sig-apps] Daemon set should update pod when spec was updated and update strategy is "
             "RollingUpdate [Conformance] [Serial]")
def test_daemonset_rolling_update(api, ns) -> None:  # type: ignore[no-untyped-def]
    core, apps = client.CoreV1Api(api), client.AppsV1Api(api)
    wait_default_service_account(api, ns)
    body = new_daemon_set()
    body["spec"]["updateStrategy"] = {"type": "RollingUpdate"}
    ds = apps.create_namespaced_daemon_set(ns, body)
    wait_running_on_all_nodes(core, ns, apps)

    def check_history(count: int, revision: int) -> None:
        wait_for(lambda: len(histories(apps, ns)) == count, timeout=30, what=f"{count} controller revisions")
        cur = max(histories(apps, ns), key=lambda h: h.revision)
        assert cur.revision == revision
        want = (cur.metadata.labels or {}).get(HASH_LABEL)
        for pod in daemon_pods(core, ns, ds):
            assert (pod.metadata.labels or {}).get(HASH_LABEL), pod.metadata.name
            assert pod.metadata.labels[HASH_LABEL] == want, (pod.metadata.name, pod.metadata.labels, want)
    check_history(1, 1)

    apps.patch_namespaced_daemon_set(DS_NAME, ns, {"spec": {"template": {"spec": {
        "containers": [{"name": "app", "image": AGNHOST}]}}}})

    def updated() -> bool:
        pods = daemon_pods(core, ns, ds)
        unavailable = sum(not available(p) for p in pods)
        assert unavailable <= 1, f"{unavailable} unavailable daemon pods, more than maxUnavailable 1"
        nodes = {n.metadata.name for n in schedulable_nodes(core)}
        new = [p for p in pods if p.spec.containers[0].image == AGNHOST]
        return (all(p.spec.containers[0].image == AGNHOST for p in pods)
                and {p.spec.node_name for p in new} == nodes and len(new) == len(nodes))
    wait_for(updated, timeout=120, what="the daemon pods to run the new image")
    wait_running_on_all_nodes(core, ns, apps)
    check_history(2, 2)


@conformance("[sig-apps] Daemon set should list and delete a collection of DaemonSets [Conformance] [Serial]")
def test_daemonset_list_and_delete_collection(api, ns) -> None:  # type: ignore[no-untyped-def]
    core, apps = client.CoreV1Api(api), client.AppsV1Api(api)
    wait_default_service_account(api, ns)
    apps.create_namespaced_daemon_set(ns, new_daemon_set(with_label=True))
    wait_running_on_all_nodes(core, ns, apps)
    check_daemon_status(apps, ns)
    assert len(apps.list_daemon_set_for_all_namespaces(label_selector=SELECTOR).items) == 1
    apps.delete_collection_namespaced_daemon_set(ns, grace_period_seconds=1, label_selector=SELECTOR)
    assert apps.list_daemon_set_for_all_namespaces(label_selector=SELECTOR).items == []


@conformance("[sig-apps] Daemon set should verify changes to a daemon set status [Conformance] [Serial]")
def test_daemonset_status(api, ns) -> None:  # type: ignore[no-untyped-def]
    core, apps = client.CoreV1Api(api), client.AppsV1Api(api)
    wait_default_service_account(api, ns)
    listed = apps.list_daemon_set_for_all_namespaces(label_selector=SELECTOR)
    created = apps.create_namespaced_daemon_set(ns, new_daemon_set(with_label=True))
    wait_running_on_all_nodes(core, ns, apps)
    check_daemon_status(apps, ns)
    apps.read_namespaced_daemon_set_status(DS_NAME, ns)

    def update_status():  # type: ignore[no-untyped-def]
        ds = apps.api_client.sanitize_for_serialization(apps.read_namespaced_daemon_set(DS_NAME, ns))
        ds["status"].setdefault("conditions", []).append(
            {"type": "StatusUpdate", "status": "True", "reason": "E2E", "message": "Set from e2e test"})
        return apps.replace_namespaced_daemon_set_status(DS_NAME, ns, ds)
    retry_on_conflict(update_status)

    def mine(ds) -> bool:  # type: ignore[no-untyped-def]
        return (ds.metadata.name == created.metadata.name and ds.metadata.namespace == ns
                and (ds.metadata.labels or {}).get(NAME_LABEL) == DS_NAME)
    rv = listed.metadata.resource_version
    watch_until(apps.list_namespaced_daemon_set, ns, SELECTOR, rv,
                lambda _t, ds: mine(ds) and any(c.type == "StatusUpdate" and c.reason == "E2E"
                                                and c.message == "Set from e2e test"
                                                for c in ds.status.conditions or []), timeout=60)
    apps.patch_namespaced_daemon_set_status(
        DS_NAME, ns, {"status": {"conditions": [{"type": "StatusPatched", "status": "True"}]}},
        _content_type="application/merge-patch+json")
    watch_until(apps.list_namespaced_daemon_set, ns, SELECTOR, rv,
                lambda _t, ds: mine(ds) and any(c.type == "StatusPatched" for c in ds.status.conditions or []),
                timeout=60)
