"""`kubectl get` against pykube prints the tables a real 1.33 cluster prints.

The real kubectl 1.33 asks for `as=Table` and prints the server's columns verbatim, so these
tests read its output: headers, rows of objects created here, pod STATUS for statuses written
through `pods/status`, and kubectl's own additions that rely on each row's object metadata
(`-A`, `--show-labels`, `-L`, `--no-headers`, `--sort-by`).
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from datetime import datetime, timedelta, timezone
from typing import Any

import pytest

from tests.conftest import ServerProcess, requires_kubectl

pytestmark = requires_kubectl


@pytest.fixture
def cluster(api_cluster: ServerProcess) -> ServerProcess:
    """The API server alone: these tables and commands are about the API, and pods must keep
    the statuses the tests write (no scheduler or kubelet moves them along)."""
    return api_cluster


@pytest.fixture
def namespace(api_namespace: str) -> str:
    return api_namespace

AGE = re.compile(r"^\d+s$")


def split(line: str) -> list[str]:
    return re.split(r"\s{2,}", line.strip())


def blocks(output: str) -> list[list[list[str]]]:
    """Each blank-line separated table as rows of cells (header first)."""
    return [[split(line) for line in chunk.splitlines() if line.strip()]
            for chunk in output.strip().split("\n\n") if chunk.strip()]


def row_for(table: list[list[str]], name: str) -> list[str]:
    matches = [r for r in table[1:] if r[0] == name]
    assert matches, f"no row {name!r} in {table}"
    return matches[0]


def ago(seconds: int) -> str:
    return (datetime.now(timezone.utc) - timedelta(seconds=seconds)).strftime("%Y-%m-%dT%H:%M:%SZ")


OBJECTS = """
apiVersion: v1
kind: Service
metadata: {name: front}
spec:
  selector: {app: web}
  ports: [{name: http, port: 80}, {name: https, port: 443}]
---
apiVersion: v1
kind: ConfigMap
metadata: {name: settings, labels: {tier: backend}}
data: {a: "1", b: "2"}
---
apiVersion: v1
kind: Secret
metadata: {name: creds}
data: {token: YWJj}
---
apiVersion: v1
kind: ServiceAccount
metadata: {name: robot}
---
apiVersion: rbac.authorization.k8s.io/v1
kind: Role
metadata: {name: reader}
rules: [{apiGroups: [""], resources: [pods], verbs: [get]}]
---
apiVersion: coordination.k8s.io/v1
kind: Lease
metadata: {name: lock}
spec: {holderIdentity: me}
"""


PAUSED_DEPLOYMENT = """
apiVersion: apps/v1
kind: Deployment
metadata: {name: web, labels: {app: web}}
spec:
  replicas: 2
  paused: true
  selector: {matchLabels: {app: web}}
  template:
    metadata: {labels: {app: web}}
    spec:
      containers: [{name: nginx, image: "nginx:1.25"}]
"""


@pytest.fixture
def objects(cluster: ServerProcess, namespace: str) -> Iterator[str]:
    # Paused from the start, the deployment controller creates no ReplicaSet, so READY stays
    # 0/2 however fast the rest of the cluster is.
    cluster.kubectl("apply", "-n", namespace, "-f", "-", input=PAUSED_DEPLOYMENT)
    cluster.kubectl("apply", "-n", namespace, "-f", "-", input=OBJECTS)
    yield namespace
    # The fixed ClusterIP can belong to one Service at a time: free it for the next test.
    cluster.kubectl("delete", "service", "front", "-n", namespace, "--wait=false")


def test_get_many_kinds_wide(cluster: ServerProcess, objects: str) -> None:
    out = cluster.kubectl("get", "deploy,svc,cm,secret,sa,ns,role,lease", "-o", "wide", "-n", objects).stdout
    tables = {t[1][0].split("/")[0]: t for t in blocks(out)}
    expected_headers = {
        "deployment.apps": ["NAME", "READY", "UP-TO-DATE", "AVAILABLE", "AGE", "CONTAINERS", "IMAGES", "SELECTOR"],
        "service": ["NAME", "TYPE", "CLUSTER-IP", "EXTERNAL-IP", "PORT(S)", "AGE", "SELECTOR"],
        "configmap": ["NAME", "DATA", "AGE"],
        "secret": ["NAME", "TYPE", "DATA", "AGE"],
        "serviceaccount": ["NAME", "SECRETS", "AGE"],
        "namespace": ["NAME", "STATUS", "AGE"],
        "role.rbac.authorization.k8s.io": ["NAME", "CREATED AT"],
        "lease.coordination.k8s.io": ["NAME", "HOLDER", "AGE"],
    }
    assert {kind: t[0] for kind, t in tables.items()} == expected_headers

    def check(kind: str, name: str, cells: list[str | re.Pattern[str]]) -> None:
        row = row_for(tables[kind], f"{kind}/{name}")
        assert len(row) == len(cells) + 1, row
        for got, want in zip(row[1:], cells):
            assert want.match(got) if isinstance(want, re.Pattern) else got == want, row

    check("deployment.apps", "web", ["0/2", "0", "0", AGE, "nginx", "nginx:1.25", "app=web"])
    check("service", "front", ["ClusterIP", re.compile(r"^127\.96\.\d+\.\d+$"), "<none>", "80/TCP,443/TCP", AGE, "app=web"])
    check("configmap", "settings", ["2", AGE])
    check("secret", "creds", ["Opaque", "1", AGE])
    check("serviceaccount", "robot", ["0", AGE])
    check("namespace", objects, ["Active", AGE])
    check("role.rbac.authorization.k8s.io", "reader", [re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$")])
    check("lease.coordination.k8s.io", "lock", ["me", AGE])


def test_default_columns_hide_wide_ones(cluster: ServerProcess, objects: str) -> None:
    out = cluster.kubectl("get", "deploy", "-n", objects).stdout
    assert blocks(out)[0][0] == ["NAME", "READY", "UP-TO-DATE", "AVAILABLE", "AGE"]


def test_all_namespaces_labels_and_label_columns(cluster: ServerProcess, objects: str) -> None:
    table = blocks(cluster.kubectl("get", "cm", "-A").stdout)[0]
    assert table[0] == ["NAMESPACE", "NAME", "DATA", "AGE"]
    assert [r for r in table[1:] if r[:2] == [objects, "settings"]][0][2] == "2"

    table = blocks(cluster.kubectl("get", "cm", "settings", "--show-labels", "-n", objects).stdout)[0]
    assert table[0] == ["NAME", "DATA", "AGE", "LABELS"]
    assert table[1][0] == "settings" and table[1][3] == "tier=backend"

    table = blocks(cluster.kubectl("get", "deploy", "web", "-L", "app", "-n", objects).stdout)[0]
    assert table[0] == ["NAME", "READY", "UP-TO-DATE", "AVAILABLE", "AGE", "APP"]
    assert table[1][-1] == "web"

    out = cluster.kubectl("get", "cm", "settings", "--no-headers", "-n", objects).stdout
    assert len(out.strip().splitlines()) == 1 and split(out)[:2] == ["settings", "2"]


def test_sort_by(cluster: ServerProcess, namespace: str) -> None:
    for name, key in (("b-cm", "3"), ("c-cm", "1"), ("a-cm", "2")):
        cluster.kubectl("create", "configmap", name, f"--from-literal=k={key}", "-n", namespace)
    by_name = blocks(cluster.kubectl("get", "cm", "--sort-by=.metadata.name", "-n", namespace).stdout)[0]
    assert [r[0] for r in by_name[1:] if r[0].endswith("-cm")] == ["a-cm", "b-cm", "c-cm"]
    by_data = blocks(cluster.kubectl("get", "cm", "--sort-by={.data.k}", "-n", namespace).stdout)[0]
    assert [r[0] for r in by_data[1:] if r[0].endswith("-cm")] == ["c-cm", "a-cm", "b-cm"]


# -- pod STATUS ------------------------------------------------------------------------------

RUNNING = {"running": {"startedAt": "2024-01-01T00:00:00Z"}}


def container_status(name: str = "c", **fields: Any) -> dict[str, Any]:
    return {"name": name, "image": "busybox", "imageID": "", "ready": False, "restartCount": 0, **fields}


POD_STATUSES: dict[str, tuple[dict[str, Any], bool, tuple[str, str, str | re.Pattern[str]]]] = {
    # name: (status, has init container, expected READY, STATUS, RESTARTS)
    "pending": ({}, False, ("0/1", "Pending", "0")),
    "creating": ({"containerStatuses": [container_status(state={"waiting": {"reason": "ContainerCreating"}})]},
                 False, ("0/1", "ContainerCreating", "0")),
    "running": ({"phase": "Running", "conditions": [{"type": "Ready", "status": "True"}],
                 "containerStatuses": [container_status(ready=True, started=True, state=RUNNING)]},
                False, ("1/1", "Running", "0")),
    "completed": ({"phase": "Succeeded", "containerStatuses": [container_status(
        state={"terminated": {"exitCode": 0, "reason": "Completed"}})]}, False, ("0/1", "Completed", "0")),
    "error": ({"phase": "Failed", "containerStatuses": [container_status(
        state={"terminated": {"exitCode": 1, "reason": "Error"}})]}, False, ("0/1", "Error", "0")),
    "crashloop": ({"phase": "Running", "containerStatuses": [container_status(
        restartCount=3, state={"waiting": {"reason": "CrashLoopBackOff"}},
        lastState={"terminated": {"exitCode": 1, "finishedAt": "__5m__"}})]},
        False, ("0/1", "CrashLoopBackOff", re.compile(r"^3 \(5m\d*s? ago\)$"))),
    "notready": ({"phase": "Running", "containerStatuses": [container_status(started=True, state=RUNNING)]},
                 False, ("0/1", "Running", "0")),
    "init-waiting": ({"initContainerStatuses": [container_status("init", state={"waiting": {}})]},
                     True, ("0/1", "Init:0/1", "0")),
    "init-error": ({"initContainerStatuses": [container_status("init", state={"terminated": {"exitCode": 1, "reason": "Error"}})]},
                   True, ("0/1", "Init:Error", "0")),
    "init-crashloop": ({"initContainerStatuses": [container_status(
        "init", restartCount=2, state={"waiting": {"reason": "CrashLoopBackOff"}})]}, True, ("0/1", "Init:CrashLoopBackOff", "2")),
    "initializing": ({"initContainerStatuses": [container_status("init", state={"terminated": {"exitCode": 0, "reason": "Completed"}})],
                      "containerStatuses": [container_status(state={"waiting": {"reason": "PodInitializing"}})]},
                     True, ("0/1", "PodInitializing", "0")),
    "gated": ({"conditions": [{"type": "PodScheduled", "status": "False", "reason": "SchedulingGated"}]},
              False, ("0/1", "SchedulingGated", "0")),
    "evicted": ({"phase": "Failed", "reason": "Evicted", "message": "The node was low on resource: memory."},
                False, ("0/1", "Evicted", "0")),
}


def eval_times(value: Any) -> Any:
    """Replace the `__5m__` placeholder with a time five minutes ago."""
    if value == "__5m__":
        return ago(300)
    if isinstance(value, dict):
        return {k: eval_times(v) for k, v in value.items()}
    if isinstance(value, list):
        return [eval_times(v) for v in value]
    return value


def pod_manifest(name: str, with_init: bool, finalizer: bool = False) -> dict[str, Any]:
    spec: dict[str, Any] = {"containers": [{"name": "c", "image": "busybox"}]}
    if with_init:
        spec["initContainers"] = [{"name": "init", "image": "busybox"}]
    meta: dict[str, Any] = {"name": name}
    if finalizer:
        meta["finalizers"] = ["example.com/hold"]
    return {"apiVersion": "v1", "kind": "Pod", "metadata": meta, "spec": spec}


def test_pod_status_column(cluster: ServerProcess, namespace: str) -> None:
    from kubernetes import client

    api = client.CoreV1Api(cluster.api_client())
    for name, (status, with_init, _) in POD_STATUSES.items():
        api.create_namespaced_pod(namespace, pod_manifest(name, with_init))
        if status:
            body = eval_times(status)
            api.patch_namespaced_pod_status(name, namespace, {"status": body})
    held = {"terminating": {"phase": "Running"}, "unknown": {"phase": "Running", "reason": "NodeLost"}}
    for name, status in held.items():
        api.create_namespaced_pod(namespace, pod_manifest(name, False, finalizer=True))
        api.patch_namespaced_pod_status(name, namespace, {"status": status})
        api.delete_namespaced_pod(name, namespace)
    try:
        table = blocks(cluster.kubectl("get", "pods", "-n", namespace).stdout)[0]
    finally:
        for name in held:
            api.patch_namespaced_pod(name, namespace, {"metadata": {"finalizers": None}})
    assert table[0] == ["NAME", "READY", "STATUS", "RESTARTS", "AGE"]
    expected = {name: want for name, (_, _, want) in POD_STATUSES.items()}
    expected |= {"terminating": ("0/1", "Terminating", "0"), "unknown": ("0/1", "Unknown", "0")}
    for name, (ready, status, restarts) in expected.items():
        row = row_for(table, name)
        assert row[1:3] == [ready, status], row
        assert restarts.match(row[3]) if isinstance(restarts, re.Pattern) else row[3] == restarts, row
        assert AGE.match(row[4]), row


def test_pod_wide_columns(cluster: ServerProcess, namespace: str) -> None:
    from kubernetes import client

    api = client.CoreV1Api(cluster.api_client())
    api.create_namespaced_pod(namespace, pod_manifest("placed", False))
    api.patch_namespaced_pod_status("placed", namespace, {"status": {
        "phase": "Running", "podIP": "127.244.0.9", "podIPs": [{"ip": "127.244.0.9"}], "nominatedNodeName": "node-b"}})
    table = blocks(cluster.kubectl("get", "pod", "placed", "-o", "wide", "-n", namespace).stdout)[0]
    assert table[0] == ["NAME", "READY", "STATUS", "RESTARTS", "AGE", "IP", "NODE", "NOMINATED NODE", "READINESS GATES"]
    assert table[1][:3] == ["placed", "0/1", "Running"]
    assert table[1][5:] == ["127.244.0.9", "<none>", "node-b", "<none>"]

