"""Pods' streaming subresources over WebSocket: the two websocket tests of
test/e2e/common/node/pods.go (`exec` with the `channel.k8s.io` protocol, `log` with
`binary.k8s.io`), and the emptyDir shared between two containers of
test/e2e/common/storage/empty_dir.go, read back through exec."""

from __future__ import annotations

import ssl
import uuid
from urllib.parse import urlencode

import websocket
from kubernetes import client

from conformance.harness import conformance
from conformance.tests._common import BUSYBOX, wait_default_service_account
from conformance.tests._pod_output import wait_running


def open_websocket(api, path: str, query: list[tuple[str, str]], protocol: str) -> websocket.WebSocket:  # type: ignore[no-untyped-def]
    """e2ewebsocket.OpenWebSocketForURL: the client's credentials, one subprotocol."""
    cfg = api.configuration
    url = cfg.host.replace("https://", "wss://", 1).replace("http://", "ws://", 1) + path + "?" + urlencode(query)
    sslopt: dict = {"cert_reqs": ssl.CERT_REQUIRED if cfg.verify_ssl else ssl.CERT_NONE}
    if cfg.ssl_ca_cert:
        sslopt["ca_certs"] = cfg.ssl_ca_cert
    if cfg.cert_file:
        sslopt["certfile"], sslopt["keyfile"] = cfg.cert_file, cfg.key_file
    header = []
    token = cfg.api_key.get("authorization") if cfg.api_key else None
    if token:
        header.append(f"Authorization: {token}")
    return websocket.create_connection(url, subprotocols=[protocol], sslopt=sslopt, header=header, timeout=30)


def receive_all(ws: websocket.WebSocket) -> list[bytes]:
    """Every message until the server closes the connection."""
    messages = []
    while True:
        try:
            opcode, data = ws.recv_data()
        except websocket.WebSocketConnectionClosedException:
            break
        if opcode == websocket.ABNF.OPCODE_CLOSE:
            break
        messages.append(data)
    ws.close()
    return messages


def running_pod(api, ns: str, prefix: str, script: str) -> str:  # type: ignore[no-untyped-def]
    core = client.CoreV1Api(api)
    wait_default_service_account(api, ns)
    name = f"{prefix}-{uuid.uuid4()}"
    core.create_namespaced_pod(ns, {"metadata": {"name": name}, "spec": {
        "containers": [{"name": "main", "image": BUSYBOX, "command": ["/bin/sh", "-c", script]}]}})
    wait_running(core, ns, name)
    return name


@conformance("[sig-node] Pods should support remote command execution over websockets [Conformance] "
             "[NodeConformance]")
def test_exec_over_websockets(api, ns) -> None:  # type: ignore[no-untyped-def]
    name = running_pod(api, ns, "pod-exec-websocket", "echo container is alive; sleep 600")
    ws = open_websocket(api, f"/api/v1/namespaces/{ns}/pods/{name}/exec",
                        [("stderr", "1"), ("stdout", "1"), ("container", "main"), ("command", "echo"),
                         ("command", "remote execution test")], "channel.k8s.io")
    out = b""
    for msg in receive_all(ws):
        if not msg:
            continue
        if msg[0] != 1:
            # an empty frame of another channel is allowed; data is not
            assert len(msg) == 1, f"got message from server that didn't start with channel 1 (STDOUT): {msg!r}"
            continue
        out += msg[1:]
    assert out, "unexpected output from server"
    assert b"remote execution test" in out, out


@conformance("[sig-node] Pods should support retrieving logs from the container over websockets [Conformance] "
             "[NodeConformance]")
def test_logs_over_websockets(api, ns) -> None:  # type: ignore[no-untyped-def]
    name = running_pod(api, ns, "pod-logs-websocket", "echo container is alive; sleep 10000")
    ws = open_websocket(api, f"/api/v1/namespaces/{ns}/pods/{name}/log", [("container", "main")], "binary.k8s.io")
    text = b"".join(receive_all(ws)).decode()
    assert text == "container is alive\n", repr(text)


@conformance("[sig-storage] EmptyDir volumes pod should support shared volumes between containers [Conformance]")
def test_emptydir_shared_between_containers(api, ns, cluster) -> None:  # type: ignore[no-untyped-def]
    core = client.CoreV1Api(api)
    wait_default_service_account(api, ns)
    name = f"pod-sharedvolume-{uuid.uuid4()}"
    path = "/usr/share/volumeshare"
    mounts = [{"name": "shared-data", "mountPath": path}]
    core.create_namespaced_pod(ns, {"metadata": {"name": name}, "spec": {
        "volumes": [{"name": "shared-data", "emptyDir": {}}],
        "containers": [
            {"name": "busybox-main-container", "image": BUSYBOX, "command": ["/bin/sh", "-c", "sleep 100000"],
             "volumeMounts": mounts},
            {"name": "busybox-sub-container", "image": BUSYBOX, "command": [
                "/bin/sh", "-c", f"echo Hello from the busy-box sub-container > {path}/shareddata.txt; sleep 100000"],
             "volumeMounts": mounts}]}})
    wait_running(core, ns, name)
    out = cluster.kubectl("exec", name, "-n", ns, "-c", "busybox-main-container", "--",
                          "/bin/sh", "-c", f"cat {path}/shareddata.txt").stdout
    assert out == "Hello from the busy-box sub-container\n", repr(out)
