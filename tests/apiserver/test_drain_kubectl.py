"""`kubectl drain` and `kubectl get pdb` against a whole two-node cluster (`up --nodes 2`).

Drain cordons the node, lists its pods and POSTs an Eviction for each; the PodDisruptionBudget
(kept by the disruption controller) lets the Deployment lose one pod at a time, so drain gets
429s, retries, and finishes once the replacements are Ready on the other node. The cluster is
this module's own: draining the shared `cluster` fixture's only node would starve other tests.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator

import pytest

from tests.conftest import ServerProcess, requires_kubectl, start_server

pytestmark = requires_kubectl


@pytest.fixture(scope="module")
def two_nodes(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    server = start_server(tmp_path_factory.mktemp("drain"), "--nodes", "2", "--runtime", "simulated")
    yield server
    server.stop()


def wait_for(check, timeout: float = 60.0, interval: float = 0.5):  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while True:
        result = check()
        if result:
            return result
        if time.monotonic() > deadline:
            raise AssertionError(f"condition not met within {timeout}s (last: {result!r})")
        time.sleep(interval)


def pods_by_node(server: ServerProcess, ns: str) -> dict[str, list[str]]:
    out = json.loads(server.kubectl("get", "pods", "-n", ns, "-l", "app=web", "-o", "json").stdout)
    nodes: dict[str, list[str]] = {}
    for pod in out["items"]:
        if not pod["metadata"].get("deletionTimestamp"):
            nodes.setdefault(pod["spec"].get("nodeName", ""), []).append(pod["metadata"]["name"])
    return nodes


def test_drain_respects_the_disruption_budget(two_nodes: ServerProcess) -> None:
    k = two_nodes.kubectl
    ns = "drain-test"
    k("create", "namespace", ns)
    k("create", "deployment", "web", "--image=busybox", "--replicas=4", "-n", ns)
    k("rollout", "status", "deployment/web", "-n", ns, "--timeout=60s")
    k("create", "poddisruptionbudget", "web", "--selector=app=web", "--min-available=3", "-n", ns)

    def allowed() -> str | None:
        out = k("get", "pdb", "web", "-n", ns).stdout
        return out if out.split("\n")[1].split()[:4] == ["web", "3", "N/A", "1"] else None

    table = wait_for(allowed, timeout=30)
    assert table.split("\n")[0].split() == ["NAME", "MIN", "AVAILABLE", "MAX", "UNAVAILABLE", "ALLOWED", "DISRUPTIONS", "AGE"]

    placed = wait_for(lambda: (p := pods_by_node(two_nodes, ns)) and sum(map(len, p.values())) == 4 and p, timeout=30)
    node = max(placed, key=lambda n: len(placed[n]))
    other = next(n for n in json.loads(k("get", "nodes", "-o", "json").stdout)["items"]
                 if n["metadata"]["name"] != node)["metadata"]["name"]
    drained = k("drain", node, "--ignore-daemonsets", "--delete-emptydir-data", "--timeout=90s", timeout=120)
    output = drained.stdout + drained.stderr
    for pod in placed[node]:
        assert f"evicting pod {ns}/{pod}" in output
        assert f"pod/{pod} evicted" in output
    assert f"node/{node} drained" in output
    if len(placed[node]) > 1:  # the budget allowed one at a time: drain was told to wait
        assert "Cannot evict pod as it would violate the pod's disruption budget." in output

    final = wait_for(lambda: (p := pods_by_node(two_nodes, ns)) and sum(map(len, p.values())) == 4 and p, timeout=60)
    assert set(final) == {other}
    cordoned = json.loads(k("get", "node", node, "-o", "json").stdout)
    assert cordoned["spec"]["unschedulable"] is True
    wait_for(lambda: any(t["key"] == "node.kubernetes.io/unschedulable" and t["effect"] == "NoSchedule"
                         for t in json.loads(k("get", "node", node, "-o", "json").stdout)["spec"].get("taints") or []),
             timeout=20)
    k("uncordon", node)


def test_python_client_eviction_and_quota_table(two_nodes: ServerProcess) -> None:
    from kubernetes import client

    k = two_nodes.kubectl
    ns = "evict-py"
    k("create", "namespace", ns)
    k("create", "quota", "q", "--hard=pods=3,requests.cpu=1", "-n", ns)
    k("create", "-n", ns, "-f", "-", input=json.dumps({
            "apiVersion": "v1", "kind": "Pod", "metadata": {"name": "solo"},
            "spec": {"containers": [{"name": "c", "image": "busybox", "resources": {"requests": {"cpu": "100m"}}}]}}))

    def table() -> str | None:
        out = k("get", "quota", "q", "-n", ns).stdout
        return out if "pods: 1/3" in out and "requests.cpu: 100m/1" in out else None

    out = wait_for(table, timeout=30)
    assert out.split("\n")[0].split() == ["NAME", "REQUEST", "LIMIT", "AGE"]
    core = client.CoreV1Api(two_nodes.api_client())
    wait_for(lambda: core.read_namespaced_pod("solo", ns).status.phase == "Running", timeout=30)
    core.create_namespaced_pod_eviction("solo", ns, client.V1Eviction(metadata=client.V1ObjectMeta(name="solo", namespace=ns)))
    wait_for(lambda: "solo" not in k("get", "pods", "-n", ns, "-o", "name").stdout, timeout=30)
    wait_for(lambda: "pods: 0/3" in k("get", "quota", "q", "-n", ns).stdout, timeout=30)
