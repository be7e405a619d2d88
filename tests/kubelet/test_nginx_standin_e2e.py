"""The tutorial flow on a full cluster: pods of image `nginx` with neither command nor args run
the process runtime's stand-in server, which a client reaches at podIP:80 and through
port-forward, as the official Python client's e2e `test_portforward_http` does (it waits for
the pod to leave Pending, forwards port 80 and expects 200 with `<h1>Welcome to nginx!</h1>`).
"""

from __future__ import annotations

import os
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from typing import Any

import pytest

from tests.conftest import T, ServerProcess, read_until_closed, requires_kubectl, wait_until

WELCOME = b"<h1>Welcome to nginx!</h1>"


def _wait(predicate: Callable[[], T], timeout: float = 60.0, what: str = "condition") -> T:
    return wait_until(predicate, what=what, timeout=timeout)


def _core(cluster: ServerProcess) -> Any:
    from kubernetes import client

    return client.CoreV1Api(cluster.api_client())


def _pod(name: str, image: str = "nginx", **spec: Any) -> dict[str, Any]:
    container = {"name": "web", "image": image, "ports": [{"containerPort": 80}], **spec.pop("container", {})}
    return {"metadata": {"name": name, "labels": {"app": name}}, "spec": {"containers": [container], **spec}}


def _ready_ip(core: Any, ns: str, name: str) -> str:
    def ready() -> str:
        pod = core.read_namespaced_pod(name, ns)
        conds = {c.type: c.status for c in pod.status.conditions or []}
        return pod.status.pod_ip if pod.status.phase == "Running" and conds.get("Ready") == "True" else ""
    return _wait(ready, what=f"pod {name} to be Running and Ready")


def _get_once(ip: str, port: int = 80, path: str = "/") -> tuple[int, bytes]:
    with urllib.request.urlopen(f"http://{ip}:{port}{path}", timeout=10) as resp:
        return resp.status, resp.read()


def _get(ip: str, port: int = 80, path: str = "/") -> tuple[int, bytes]:
    """A GET that allows the server a moment to bind: as with the real image, a pod without a
    readiness probe is Ready once its container started, a little before nginx listens."""
    deadline = time.monotonic() + 10
    while True:
        try:
            return _get_once(ip, port, path)
        except urllib.error.URLError as exc:
            if not isinstance(exc.reason, ConnectionRefusedError) or time.monotonic() > deadline:
                raise
            time.sleep(0.05)


def test_nginx_pod_serves_welcome_page_and_logs_access(cluster: ServerProcess, namespace: str) -> None:
    core = _core(cluster)
    core.create_namespaced_pod(namespace, _pod("web"))
    ip = _ready_ip(core, namespace, "web")
    status, body = _get(ip)
    assert status == 200 and WELCOME in body and b"<title>Welcome to nginx!</title>" in body

    logs = _wait(lambda: cluster.kubectl("logs", "-n", namespace, "web").stdout, what="an access log line")
    line = next(line for line in logs.splitlines() if '"GET / HTTP/1.1"' in line)
    assert line.startswith("127.0.0.1 - - [") and '"GET / HTTP/1.1" 200 ' in line and '"Python-urllib/' in line

    events = core.list_namespaced_event(namespace, field_selector="involvedObject.name=web").items
    reasons = {e.reason for e in events}
    assert {"Pulled", "Created", "Started"} <= reasons and "NoCommand" not in reasons


def test_other_images_still_warn_no_command(cluster: ServerProcess, namespace: str) -> None:
    core = _core(cluster)
    core.create_namespaced_pod(namespace, _pod("idle", image="registry.k8s.io/nginx-slim:0.8"))

    def warned() -> bool:
        events = core.list_namespaced_event(namespace, field_selector="involvedObject.name=idle").items
        return any(e.reason == "NoCommand" and e.type == "Warning" for e in events)
    _wait(warned, what="the NoCommand warning")


def test_two_nginx_pods_on_one_node_both_serve(cluster: ServerProcess, namespace: str) -> None:
    core = _core(cluster)
    for name in ("a", "b"):
        core.create_namespaced_pod(namespace, _pod(name))
    ips = [_ready_ip(core, namespace, name) for name in ("a", "b")]
    assert ips[0] != ips[1]
    for ip in ips:
        status, body = _get(ip)
        assert status == 200 and WELCOME in body


@pytest.mark.skipif(os.geteuid() != 0, reason="volumes are mounted into containers only when the kubelet "
                    "runs as root (private mount namespaces)")
def test_configmap_over_the_document_root_is_served(cluster: ServerProcess, namespace: str) -> None:
    core = _core(cluster)
    core.create_namespaced_config_map(namespace, {"metadata": {"name": "site"}, "data": {
        "index.html": "<h1>Hello from a ConfigMap</h1>\n", "about.txt": "about\n"}})
    core.create_namespaced_pod(namespace, _pod(
        "site", container={"volumeMounts": [{"name": "html", "mountPath": "/usr/share/nginx/html"}]},
        volumes=[{"name": "html", "configMap": {"name": "site"}}]))
    ip = _ready_ip(core, namespace, "site")
    assert _get(ip) == (200, b"<h1>Hello from a ConfigMap</h1>\n")
    assert _get(ip, path="/about.txt") == (200, b"about\n")
    with pytest.raises(urllib.error.HTTPError) as info:
        _get(ip, path="/50x.html")
    assert info.value.code == 404


def test_http_get_readiness_probe_on_port_80(cluster: ServerProcess, namespace: str) -> None:
    core = _core(cluster)
    core.create_namespaced_pod(namespace, _pod("probed", container={"readinessProbe": {
        "httpGet": {"path": "/", "port": 80}, "periodSeconds": 1}}))
    ip = _ready_ip(core, namespace, "probed")
    assert _get(ip)[0] == 200
    logs = _wait(lambda: "kube-probe/" in cluster.kubectl("logs", "-n", namespace, "probed").stdout,
                 what="the probe's request in the access log")
    assert logs


def test_deleting_the_pod_stops_the_server_promptly(cluster: ServerProcess, namespace: str) -> None:
    from kubernetes.client.exceptions import ApiException

    core = _core(cluster)
    core.create_namespaced_pod(namespace, _pod("gone"))
    ip = _ready_ip(core, namespace, "gone")
    assert _get(ip)[0] == 200
    began = time.monotonic()
    core.delete_namespaced_pod("gone", namespace)  # the default 30 s grace: SIGTERM ends it at once

    def deleted() -> bool:
        try:
            core.read_namespaced_pod("gone", namespace)
            return False
        except ApiException as exc:
            return exc.status == 404
    _wait(deleted, timeout=15, what="the pod to be gone")
    assert time.monotonic() - began < 8
    with pytest.raises(OSError):
        _get_once(ip)


def test_python_client_portforward_to_nginx(cluster: ServerProcess, namespace: str) -> None:
    """As kubernetes-client/python's e2e test_portforward_http: wait until not Pending, forward
    port 80, GET /."""
    from kubernetes.stream import portforward

    core = _core(cluster)
    core.create_namespaced_pod(namespace, _pod("pf"))
    _wait(lambda: core.read_namespaced_pod("pf", namespace).status.phase != "Pending", what="pod to leave Pending")
    pf = portforward(core.connect_get_namespaced_pod_portforward, "pf", namespace, ports="80")
    sock = pf.socket(80)
    sock.setblocking(True)
    sock.sendall(b"GET / HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n")
    data = read_until_closed(sock)
    assert data.startswith(b"HTTP/1.1 200 OK"), data[:200]
    assert b"\r\nServer: nginx\r\n" in data and WELCOME in data
    assert pf.error(80) is None


@requires_kubectl
def test_tutorial_create_deployment_expose_port_forward(cluster: ServerProcess, namespace: str) -> None:
    """`kubectl create deployment web --image=nginx`, `kubectl expose`, `kubectl port-forward
    svc/web`, then an HTTP GET through the tunnel."""
    from tests.e2e.test_port_forward import PortForward

    cluster.kubectl("create", "deployment", "web", "--image=nginx", "-n", namespace)
    cluster.kubectl("expose", "deployment", "web", "--port=80", "-n", namespace)
    cluster.kubectl("rollout", "status", "deployment/web", "-n", namespace, "--timeout=60s", timeout=90)
    core = _core(cluster)
    pod = core.list_namespaced_pod(namespace, label_selector="app=web").items[0]
    _get(pod.status.pod_ip)  # listening
    pf = PortForward(cluster, "-n", namespace, "svc/web", "80")
    try:
        status, body = pf.get("/")
    finally:
        pf.stop()
    assert status == 200 and WELCOME in body
