"""LoadBalancer Services end to end: `kubectl expose --type LoadBalancer` against `pykube-server up`.

A Deployment's pod (a real process on the cluster's node running `python3 -m http.server` on
its pod IP) is exposed as a LoadBalancer; the controller manager's service-lb-controller gives
it an ingress IP from the loopback pool, `kubectl get svc` shows it under EXTERNAL-IP, and the
proxy answers HTTP on it. With `externalTrafficPolicy: Local` the health check node port says
the node has one local endpoint (the pod runs on the node the proxy serves). Deleting the
Service takes the finalizer off and frees the address.
"""

from __future__ import annotations

import json
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from typing import Any, TypeVar

import pytest

from tests.conftest import ServerProcess, requires_kubectl

pytestmark = [requires_kubectl, pytest.mark.kubectl]
T = TypeVar("T")

DEPLOYMENT = """
apiVersion: apps/v1
kind: Deployment
metadata: {name: web}
spec:
  replicas: 1
  selector: {matchLabels: {app: web}}
  template:
    metadata: {labels: {app: web}}
    spec:
      containers:
      - name: web
        image: python:3
        command: ["python3", "-m", "http.server", "8080", "--bind", "$(POD_IP)"]
        env:
        - name: POD_IP
          valueFrom: {fieldRef: {fieldPath: status.podIP}}
        ports: [{containerPort: 8080}]
"""


def eventually(check: Callable[[], T | None], timeout: float = 60.0) -> T:
    deadline = time.monotonic() + timeout
    last: Exception | None = None
    while time.monotonic() < deadline:
        try:
            result = check()
            if result:
                return result
        except (AssertionError, OSError, KeyError, IndexError, urllib.error.URLError) as exc:
            last = exc
        time.sleep(0.2)
    raise AssertionError(f"condition not met within {timeout}s: {last!r}")


def get_json(cluster: ServerProcess, *args: str) -> Any:
    return json.loads(cluster.kubectl("get", *args, "-o", "json").stdout)


def http_get(url: str) -> tuple[int, bytes]:
    try:
        with urllib.request.urlopen(url, timeout=5) as resp:
            return resp.status, resp.read()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read()


def test_expose_load_balancer_serves_on_ingress_ip(cluster: ServerProcess, namespace: str) -> None:
    ns = ["-n", namespace]
    cluster.kubectl("apply", *ns, "-f", "-", input=DEPLOYMENT)
    out = cluster.kubectl("expose", "deployment", "web", "--type", "LoadBalancer", "--port", "80",
                          "--target-port", "8080", *ns).stdout
    assert out.strip() == "service/web exposed"

    def ingress_ip() -> str:
        svc = get_json(cluster, "service", "web", *ns)
        return ((svc["status"].get("loadBalancer") or {}).get("ingress") or [{}])[0].get("ip", "")

    ip = eventually(ingress_ip)
    assert ip.startswith("127.240.")
    svc = get_json(cluster, "service", "web", *ns)
    assert svc["status"]["loadBalancer"]["ingress"] == [{"ip": ip, "ipMode": "VIP"}]
    assert svc["metadata"]["finalizers"] == ["service.kubernetes.io/load-balancer-cleanup"]
    header, row = cluster.kubectl("get", "svc", "web", *ns).stdout.splitlines()
    assert header.split() == ["NAME", "TYPE", "CLUSTER-IP", "EXTERNAL-IP", "PORT(S)", "AGE"]
    node_port = svc["spec"]["ports"][0]["nodePort"]
    assert row.split()[:5] == ["web", "LoadBalancer", svc["spec"]["clusterIP"], ip, f"80:{node_port}/TCP"]

    status, body = eventually(lambda: http_get(f"http://{ip}/"), timeout=90)
    assert status == 200 and b"Directory listing" in body

    cluster.kubectl("patch", "service", "web", *ns, "-p", '{"spec":{"externalTrafficPolicy":"Local"}}')
    health_port = get_json(cluster, "service", "web", *ns)["spec"]["healthCheckNodePort"]

    def healthy() -> Any:
        code, text = http_get(f"http://127.0.0.1:{health_port}/healthz")
        return json.loads(text) if code == 200 else None

    assert eventually(healthy) == {"service": {"namespace": namespace, "name": "web"}, "localEndpoints": 1,
                                   "serviceProxyHealthy": True}
    assert eventually(lambda: http_get(f"http://{ip}/"))[0] == 200  # the pod is on the proxy's node

    events = get_json(cluster, "events", *ns, "--field-selector", "involvedObject.name=web")["items"]
    assert {"EnsuringLoadBalancer", "EnsuredLoadBalancer"} <= {e["reason"] for e in events}
    assert {e["source"]["component"] for e in events if "LoadBalancer" in e["reason"]} == {"service-controller"}

    cluster.kubectl("delete", "service", "web", *ns, timeout=60)
    gone = cluster.kubectl("get", "service", "web", *ns, check=False)
    assert gone.returncode == 1 and 'services "web" not found' in gone.stderr

    def refused() -> bool:
        try:
            http_get(f"http://{ip}/")
        except (urllib.error.URLError, ConnectionError):
            return True
        return False

    assert eventually(refused)
