"""kubectl top and a HorizontalPodAutoscaler on a whole cluster (`pykube-server up`)."""

from __future__ import annotations

import json
import re
import time
from collections.abc import Callable
from typing import TypeVar

from tests.conftest import ServerProcess

T = TypeVar("T")


def eventually(probe: Callable[[], T | None], timeout: float, what: str) -> T:
    deadline = time.monotonic() + timeout
    last: object = None
    while time.monotonic() < deadline:
        try:
            found = probe()
        except AssertionError as exc:
            found, last = None, exc
        if found:
            return found
        time.sleep(1.0)
    raise AssertionError(f"timed out waiting for {what}; last: {last}")


def _millicores(text: str) -> int:
    return int(text[:-1]) if text.endswith("m") else int(text) * 1000


def test_top_nodes(cluster: ServerProcess) -> None:
    def listed() -> list[str] | None:
        result = cluster.kubectl("top", "nodes", check=False)
        if result.returncode:  # a fresh cluster: "error: metrics not available yet", as with metrics-server
            assert "metrics not available yet" in result.stderr, result.stderr
            return None
        return result.stdout.splitlines()

    out = eventually(listed, 30, "node metrics")
    assert re.split(r"\s{2,}", out[0].strip()) == ["NAME", "CPU(cores)", "CPU(%)", "MEMORY(bytes)", "MEMORY(%)"]
    name, cpu, cpu_pct, memory, mem_pct = out[1].split()
    assert name == "pykube-node-1"
    assert re.fullmatch(r"\d+m", cpu) and cpu_pct.endswith("%")
    assert re.fullmatch(r"[1-9]\d*Mi", memory) and mem_pct.endswith("%")


def test_top_pods_measure_a_busy_process(cluster: ServerProcess, namespace: str) -> None:
    cluster.kubectl("-n", namespace, "run", "burn", "--image=busybox", "--restart=Never", "--",
                    "sh", "-c", "while true; do :; done")
    try:
        def busy() -> list[str] | None:
            result = cluster.kubectl("-n", namespace, "top", "pods", check=False)
            rows = result.stdout.splitlines()
            return rows if len(rows) == 2 and _millicores(rows[1].split()[1]) >= 200 else None

        rows = eventually(busy, 60, "the busy pod's CPU in kubectl top")
        assert re.split(r"\s{2,}", rows[0].strip()) == ["NAME", "CPU(cores)", "MEMORY(bytes)"]
        name, _cpu, memory = rows[1].split()
        assert name == "burn" and re.fullmatch(r"\d+Mi", memory)
        containers = cluster.kubectl("-n", namespace, "top", "pod", "burn", "--containers").stdout.splitlines()
        assert re.split(r"\s{2,}", containers[0].strip()) == ["POD", "NAME", "CPU(cores)", "MEMORY(bytes)"]
        assert containers[1].split()[:2] == ["burn", "burn"]
        table = cluster.kubectl("-n", namespace, "get", "podmetrics").stdout.splitlines()
        assert table[0].split() == ["NAME", "CPU", "MEMORY", "WINDOW"]
        assert table[1].split()[0] == "burn" and table[1].split()[3] == "10s"
        everywhere = cluster.kubectl("top", "pods", "-A").stdout.splitlines()
        assert re.split(r"\s{2,}", everywhere[0].strip()) == ["NAMESPACE", "NAME", "CPU(cores)", "MEMORY(bytes)"]
        assert any(line.split()[:2] == [namespace, "burn"] for line in everywhere[1:])
    finally:
        cluster.kubectl("-n", namespace, "delete", "pod", "burn", "--grace-period=0", "--wait=false", check=False)
    missing = cluster.kubectl("-n", namespace, "top", "pod", "nope", check=False)
    assert 'pods "nope" not found' in missing.stderr


def test_pod_without_metrics_is_podmetrics_not_found(cluster: ServerProcess, namespace: str) -> None:
    # a pod that is not running has no metrics: metrics-server's NotFound names it namespace/name
    cluster.kubectl("-n", namespace, "run", "waiting", "--image=busybox", "--restart=Never",
                    "--overrides", '{"spec": {"nodeSelector": {"no-such": "node"}}}', "--", "sleep", "60")
    result = cluster.kubectl("-n", namespace, "get", "--raw",
                             f"/apis/metrics.k8s.io/v1beta1/namespaces/{namespace}/pods/waiting", check=False)
    assert f'podmetrics.metrics.k8s.io "{namespace}/waiting" not found' in result.stderr, result.stderr
    cluster.kubectl("-n", namespace, "delete", "pod", "waiting", "--wait=false")


DEPLOYMENT = """
apiVersion: apps/v1
kind: Deployment
metadata: {name: web}
spec:
  replicas: 1
  selector: {matchLabels: {app: web}}
  template:
    metadata:
      labels: {app: web}
      annotations: {pykube.io/simulate-cpu: 200m, pykube.io/simulate-memory: 16Mi}
    spec:
      containers:
      - name: web
        image: busybox
        command: [sleep, "3600"]
        resources: {requests: {cpu: 100m}}
"""


def test_hpa_scales_a_deployment_on_cpu(cluster: ServerProcess, namespace: str) -> None:
    cluster.kubectl("-n", namespace, "apply", "-f", "-", input=DEPLOYMENT)
    cluster.kubectl("-n", namespace, "autoscale", "deployment", "web", "--cpu-percent=50", "--min=1", "--max=3")

    def scaled() -> dict | None:
        hpa = json.loads(cluster.kubectl("-n", namespace, "get", "hpa", "web", "-o", "json").stdout)
        return hpa if (hpa.get("status") or {}).get("desiredReplicas") == 3 else None

    hpa = eventually(scaled, 120, "the HPA to want 3 replicas")
    status = hpa["status"]
    assert status["currentMetrics"] == [{"type": "Resource", "resource": {
        "name": "cpu", "current": {"averageValue": "200m", "averageUtilization": 200}}}]
    assert "lastScaleTime" in status
    conditions = {c["type"]: (c["status"], c["reason"]) for c in status["conditions"]}
    assert conditions["ScalingActive"] == ("True", "ValidMetricFound")
    assert conditions["ScalingLimited"] == ("True", "TooManyReplicas")
    replicas = json.loads(cluster.kubectl("-n", namespace, "get", "deployment", "web", "-o", "json").stdout)
    assert replicas["spec"]["replicas"] == 3
    row = cluster.kubectl("-n", namespace, "get", "hpa", "web", "--no-headers").stdout.split()
    assert row[:3] == ["web", "Deployment/web", "cpu:"] and row[3] == "200%/50%"

    from kubernetes import client

    custom = client.CustomObjectsApi(cluster.api_client())
    listed = custom.list_namespaced_custom_object("metrics.k8s.io", "v1beta1", namespace, "pods",
                                                  label_selector="app=web")
    assert listed["kind"] == "PodMetricsList" and listed["items"]
    assert all(i["metadata"]["labels"]["app"] == "web" and i["window"] == "10s" for i in listed["items"])
    assert {c["usage"]["cpu"] for i in listed["items"] for c in i["containers"]} == {"200m"}
    assert not custom.list_namespaced_custom_object("metrics.k8s.io", "v1beta1", namespace, "pods",
                                                    label_selector="app=other")["items"]

    def rescaled() -> list[str] | None:
        events = json.loads(cluster.kubectl("-n", namespace, "get", "events", "-o", "json").stdout)["items"]
        found = [e["message"] for e in events if e["reason"] == "SuccessfulRescale"]
        return found or None

    messages = eventually(rescaled, 30, "the SuccessfulRescale event")
    assert "New size: 3; reason: cpu resource utilization (percentage of request) above target" in messages
    cluster.kubectl("-n", namespace, "delete", "deployment", "web", "--wait=false")
