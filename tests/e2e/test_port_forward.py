"""Port-forward end to end: the real kubectl and the official client reach a pod's HTTP server
through the API server and the kubelet.

The pod runs `python3 -m http.server 8080 --bind $POD_IP` (its IP from the downward API).
kubectl 1.33 first tunnels SPDY/3.1 through a WebSocket; with
`KUBECTL_PORT_FORWARD_WEBSOCKETS=false` it uses the plain `Upgrade: SPDY/3.1` fallback. The
Python client speaks `v4.channel.k8s.io` (`?ports=8080`).
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import urllib.request
import uuid
from collections.abc import Iterator

import pytest

from tests.conftest import KUBECTL, ServerProcess, read_until_closed, requires_kubectl, wait_until

pytestmark = requires_kubectl


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _wait(predicate, timeout: float = 60.0, interval: float = 0.2):  # type: ignore[no-untyped-def]
    return wait_until(predicate, what="the port-forward test's condition", timeout=timeout, interval=interval)


@pytest.fixture(scope="module")
def web_pod(cluster: ServerProcess) -> Iterator[tuple[str, str]]:
    """(namespace, pod name) of a running pod serving HTTP on its pod IP, port 8080, with a
    Service and a Deployment-less selector for the `svc/` form."""
    from kubernetes import client

    api = client.CoreV1Api(cluster.api_client())
    ns = f"pf-{uuid.uuid4().hex[:6]}"
    api.create_namespace({"metadata": {"name": ns}})

    def has_default_service_account() -> bool:  # ServiceAccount admission wants it before pods
        return any(sa.metadata.name == "default" for sa in api.list_namespaced_service_account(ns).items)

    _wait(has_default_service_account, timeout=30)
    pod = {
        "metadata": {"name": "web", "labels": {"app": "web"}},
        "spec": {"containers": [{
            "name": "web", "image": "python:3",
            "command": ["python3", "-m", "http.server", "8080", "--bind", "$(POD_IP)"],
            "env": [{"name": "POD_IP", "valueFrom": {"fieldRef": {"fieldPath": "status.podIP"}}}],
            "ports": [{"containerPort": 8080, "name": "http"}],
        }]},
    }
    api.create_namespaced_pod(ns, pod)
    api.create_namespaced_service(ns, {"metadata": {"name": "web"}, "spec": {
        "selector": {"app": "web"}, "ports": [{"port": 80, "targetPort": "http"}]}})

    def serving() -> bool:
        obj = api.read_namespaced_pod("web", ns)
        if obj.status.phase != "Running" or not obj.status.pod_ip:
            return False
        try:
            with socket.create_connection((obj.status.pod_ip, 8080), timeout=1):
                return True
        except OSError:
            return False

    _wait(serving)
    yield ns, "web"
    api.delete_namespace(ns)


class PortForward:
    """A `kubectl port-forward` subprocess, ended by its PID."""

    def __init__(self, cluster: ServerProcess, *args: str, env: dict[str, str] | None = None) -> None:
        self.local = _free_port()
        environ = {**os.environ, "KUBECONFIG": str(cluster.kubeconfig), "HOME": str(cluster.home), **(env or {})}
        self.proc = subprocess.Popen([KUBECTL, "port-forward", *args[:-1], f"{self.local}:{args[-1]}"],
                                     stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=environ)
        assert self.proc.stdout is not None
        line = self.proc.stdout.readline()
        if not line.startswith("Forwarding from"):
            self.stop()
            raise AssertionError(f"kubectl port-forward did not start: {line}{self.stderr}")
        self.stderr = ""

    def get(self, path: str = "/") -> tuple[int, bytes]:
        with urllib.request.urlopen(f"http://127.0.0.1:{self.local}{path}", timeout=20) as resp:
            return resp.status, resp.read()

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
        try:
            _, self.stderr = self.proc.communicate(timeout=10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            _, self.stderr = self.proc.communicate()


def test_kubectl_port_forward_pod_over_websocket_tunnel(cluster: ServerProcess, web_pod: tuple[str, str]) -> None:
    ns, name = web_pod
    pf = PortForward(cluster, "-n", ns, f"pod/{name}", "8080")
    try:
        for _ in range(3):  # one SPDY connection, several stream pairs (request ids 0, 1, 2)
            status, body = pf.get("/")
            assert status == 200 and b"Directory listing" in body
    finally:
        pf.stop()
    assert "error" not in pf.stderr.lower(), pf.stderr


def test_kubectl_port_forward_plain_spdy_fallback(cluster: ServerProcess, web_pod: tuple[str, str]) -> None:
    ns, name = web_pod
    pf = PortForward(cluster, "-n", ns, f"pod/{name}", "8080", env={"KUBECTL_PORT_FORWARD_WEBSOCKETS": "false"})
    try:
        status, body = pf.get("/")
        assert status == 200 and b"Directory listing" in body
    finally:
        pf.stop()
    assert "error" not in pf.stderr.lower(), pf.stderr


def test_kubectl_port_forward_service_resolves_to_pod(cluster: ServerProcess, web_pod: tuple[str, str]) -> None:
    ns, _ = web_pod
    pf = PortForward(cluster, "-n", ns, "svc/web", "80")  # service port 80 -> targetPort http -> 8080
    try:
        status, body = pf.get("/")
        assert status == 200 and b"Directory listing" in body
    finally:
        pf.stop()


def test_kubectl_port_forward_deployment_resolves_to_pod(cluster: ServerProcess, web_pod: tuple[str, str]) -> None:
    from kubernetes import client

    ns, _ = web_pod
    core, apps = client.CoreV1Api(cluster.api_client()), client.AppsV1Api(cluster.api_client())
    template = core.read_namespaced_pod("web", ns).to_dict()["spec"]
    container = {"name": "web", "image": "python:3", "command": template["containers"][0]["command"],
                 "env": [{"name": "POD_IP", "valueFrom": {"fieldRef": {"fieldPath": "status.podIP"}}}]}
    apps.create_namespaced_deployment(ns, {"metadata": {"name": "webd"}, "spec": {
        "selector": {"matchLabels": {"app": "webd"}},
        "template": {"metadata": {"labels": {"app": "webd"}}, "spec": {"containers": [container]}}}})

    def serving() -> bool:
        for pod in core.list_namespaced_pod(ns, label_selector="app=webd").items:
            if pod.status.phase == "Running" and pod.status.pod_ip:
                try:
                    with socket.create_connection((pod.status.pod_ip, 8080), timeout=1):
                        return True
                except OSError:
                    pass
        return False

    _wait(serving)
    pf = PortForward(cluster, "-n", ns, "deploy/webd", "8080")
    try:
        status, body = pf.get("/")
        assert status == 200 and b"Directory listing" in body
    finally:
        pf.stop()


def test_kubectl_port_forward_to_closed_port_reports_the_kubelet_error(
        cluster: ServerProcess, web_pod: tuple[str, str]) -> None:
    ns, name = web_pod
    pf = PortForward(cluster, "-n", ns, f"pod/{name}", "9")
    try:
        with pytest.raises(OSError):
            pf.get("/")
        _wait(lambda: pf.proc.poll() is not None, timeout=20)  # kubectl 1.33 gives up on the connection
    finally:
        pf.stop()
    assert f"an error occurred forwarding {pf.local} -> 9: " in pf.stderr
    assert "error forwarding port 9 to pod" in pf.stderr
    assert "connect: connection refused" in pf.stderr
    assert "lost connection to pod" in pf.stderr


def test_python_client_portforward(cluster: ServerProcess, web_pod: tuple[str, str]) -> None:
    from kubernetes import client
    from kubernetes.stream import portforward

    ns, name = web_pod
    api = client.CoreV1Api(cluster.api_client())
    pf = portforward(api.connect_get_namespaced_pod_portforward, name, ns, ports="8080")
    sock = pf.socket(8080)
    sock.setblocking(True)
    sock.sendall(b"GET / HTTP/1.0\r\n\r\n")
    data = read_until_closed(sock)
    assert data.startswith(b"HTTP/1.0 200"), data[:200]
    assert b"Directory listing" in data
    assert pf.error(8080) is None


def test_python_client_portforward_closed_port_error(cluster: ServerProcess, web_pod: tuple[str, str]) -> None:
    from kubernetes import client
    from kubernetes.stream import portforward

    ns, name = web_pod
    api = client.CoreV1Api(cluster.api_client())
    pf = portforward(api.connect_get_namespaced_pod_portforward, name, ns, ports="9")
    sock = pf.socket(9)
    sock.setblocking(True)
    sock.settimeout(20)
    assert sock.recv(1024) == b""
    message = _wait(lambda: pf.error(9), timeout=20)
    assert message.startswith("error forwarding port 9 to pod ")
    assert "connect: connection refused" in message


def test_plain_request_is_upgrade_request_required(cluster: ServerProcess, web_pod: tuple[str, str]) -> None:
    from kubernetes import client
    from kubernetes.client.rest import ApiException

    ns, name = web_pod
    api = client.CoreV1Api(cluster.api_client())
    with pytest.raises(ApiException) as caught:
        api.connect_get_namespaced_pod_portforward(name, ns, ports="8080")
    assert caught.value.status == 400
    body = json.loads(caught.value.body)
    assert (body["reason"], body["message"]) == ("BadRequest", "Upgrade request required")
    with pytest.raises(ApiException) as caught:
        api.connect_get_namespaced_pod_portforward("nope", ns, ports="8080")
    assert caught.value.status == 404
    assert json.loads(caught.value.body)["message"] == 'pods "nope" not found'


def test_unscheduled_pod_has_no_host(cluster: ServerProcess, web_pod: tuple[str, str]) -> None:
    from kubernetes import client
    from kubernetes.client.rest import ApiException

    ns, _ = web_pod
    api = client.CoreV1Api(cluster.api_client())
    api.create_namespaced_pod(ns, {"metadata": {"name": "nowhere"}, "spec": {
        "nodeSelector": {"no-such-label": "x"}, "containers": [{"name": "c", "image": "busybox"}]}})
    with pytest.raises(ApiException) as caught:
        api.connect_get_namespaced_pod_portforward("nowhere", ns, ports="8080")
    assert caught.value.status == 400
    assert json.loads(caught.value.body)["message"] == "pod nowhere does not have a host assigned"
    result = cluster.kubectl("port-forward", "-n", ns, "pod/nowhere", "18099:80", check=False, timeout=20)
    assert result.returncode == 1
    assert "unable to forward port because pod is not running. Current status=Pending" in result.stderr
