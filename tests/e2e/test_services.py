"""Services end to end with the real kubectl against `pykube-server up`.

The API server allocates the ClusterIP, the controller manager's endpoint controllers publish
the pod the test marked ready, and the proxy (a child process of `up`) forwards a TCP
connection to ClusterIP:80 and to 127.0.0.1:<nodePort> to the test's own server on the pod IP.
The pods are bound to a node no kubelet serves, so nothing but the test writes their status.
"""

from __future__ import annotations

import json
import random
import socket
import socketserver
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any, TypeVar

import pytest

from tests.conftest import ServerProcess, requires_kubectl

pytestmark = [requires_kubectl, pytest.mark.kubectl]
T = TypeVar("T")
FAKE_NODE = "e2e-services-no-kubelet"


def eventually(check: Callable[[], T | None], timeout: float = 30.0) -> T:
    deadline = time.monotonic() + timeout
    last: Exception | None = None
    while time.monotonic() < deadline:
        try:
            result = check()
            if result:
                return result
        except (AssertionError, OSError, KeyError, IndexError) as exc:
            last = exc
        time.sleep(0.2)
    raise AssertionError(f"condition not met within {timeout}s: {last!r}")


@pytest.fixture
def pod_server() -> Iterator[str]:
    """A container stand-in: answers `hello from <ip>` on <pod ip>:8080."""
    ip = f"127.244.{random.randrange(100, 250)}.{random.randrange(2, 250)}"

    class Handler(socketserver.BaseRequestHandler):
        def handle(self) -> None:
            self.request.sendall(f"hello from {ip}\n".encode())

    class Server(socketserver.ThreadingTCPServer):
        allow_reuse_address = True
        daemon_threads = True

    server = Server((ip, 8080), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield ip
    finally:
        server.shutdown()
        server.server_close()


def ready_pod(cluster: ServerProcess, namespace: str, name: str, app: str, ip: str) -> None:
    from kubernetes import client

    api = client.CoreV1Api(cluster.api_client())
    api.create_namespaced_pod(namespace, {
        "metadata": {"name": name, "labels": {"app": app}},
        "spec": {"nodeName": FAKE_NODE, "containers": [{"name": "web", "image": "python",
                                                        "ports": [{"containerPort": 8080}]}]}})
    api.patch_namespaced_pod_status(name, namespace, {"status": {
        "phase": "Running", "podIP": ip, "podIPs": [{"ip": ip}],
        "conditions": [{"type": "Ready", "status": "True"}]}})


def get_json(cluster: ServerProcess, *args: str) -> Any:
    return json.loads(cluster.kubectl("get", *args, "-o", "json").stdout)


def read_line(host: str, port: int) -> str:
    with socket.create_connection((host, port), timeout=5) as conn:
        conn.settimeout(5)
        return conn.makefile().readline().strip()


def test_cluster_ip_endpoints_and_proxy(cluster: ServerProcess, namespace: str, pod_server: str) -> None:
    out = cluster.kubectl("create", "service", "clusterip", "s", "--tcp=80:8080", "-n", namespace).stdout
    assert out.strip() == "service/s created"
    svc = get_json(cluster, "service", "s", "-n", namespace)
    cluster_ip = svc["spec"]["clusterIP"]
    assert cluster_ip.startswith("127.96.") and svc["spec"]["clusterIPs"] == [cluster_ip]
    table = cluster.kubectl("get", "service", "s", "-n", namespace).stdout
    assert cluster_ip in table and "80/TCP" in table

    ready_pod(cluster, namespace, "s-pod", "s", pod_server)

    def endpoints() -> Any:
        ep = get_json(cluster, "endpoints", "s", "-n", namespace)
        addresses = [a["ip"] for s in ep.get("subsets") or [] for a in s.get("addresses") or []]
        return ep if addresses == [pod_server] else None

    ep = eventually(endpoints)
    assert ep["subsets"][0]["ports"] == [{"name": "80-8080", "port": 8080, "protocol": "TCP"}]
    assert f"{pod_server}:8080" in cluster.kubectl("get", "endpoints", "s", "-n", namespace).stdout
    slices = get_json(cluster, "endpointslices", "-n", namespace, "-l", "kubernetes.io/service-name=s")["items"]
    assert len(slices) == 1 and slices[0]["metadata"]["name"].startswith("s-")
    assert slices[0]["endpoints"][0]["addresses"] == [pod_server]
    assert slices[0]["metadata"]["labels"]["endpointslice.kubernetes.io/managed-by"] == "endpointslice-controller.k8s.io"
    table = cluster.kubectl("get", "endpointslices", "-n", namespace).stdout
    assert pod_server in table and "8080" in table

    assert eventually(lambda: read_line(cluster_ip, 80)) == f"hello from {pod_server}"


def test_node_port_answers_on_localhost(cluster: ServerProcess, namespace: str, pod_server: str) -> None:
    cluster.kubectl("create", "service", "nodeport", "np", "--tcp=80:8080", "-n", namespace)
    svc = get_json(cluster, "service", "np", "-n", namespace)
    node_port = svc["spec"]["ports"][0]["nodePort"]
    assert 30000 <= node_port <= 32767
    ready_pod(cluster, namespace, "np-pod", "np", pod_server)
    assert eventually(lambda: read_line("127.0.0.1", node_port)) == f"hello from {pod_server}"
    clash = cluster.kubectl("create", "service", "nodeport", "np2", "--tcp=80:8080", f"--node-port={node_port}",
                            "-n", namespace, check=False)
    assert clash.returncode != 0
    assert (f'Service "np2" is invalid: spec.ports[0].nodePort: Invalid value: {node_port}: '
            "provided port is already allocated") in clash.stderr
