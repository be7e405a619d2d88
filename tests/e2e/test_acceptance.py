"""The API core issue's acceptance, tried the way a new user tries it: `pykube-server up`,
then the real kubectl and the official Python client against the kubeconfig it wrote."""

from __future__ import annotations

import subprocess
import threading
import time
from pathlib import Path

import pytest
from kubernetes import client, watch

from tests.conftest import KUBECTL, ServerProcess, requires_kubectl, start_server

pytestmark = requires_kubectl


def test_get_namespaces_lists_the_four_first_start_namespaces(cluster: ServerProcess) -> None:
    out = cluster.kubectl("get", "ns", "-o", "name").stdout.split()
    for ns in ("default", "kube-system", "kube-public", "kube-node-lease"):
        assert f"namespace/{ns}" in out


def test_kubernetes_service_exists(cluster: ServerProcess) -> None:
    svc = client.CoreV1Api(cluster.api_client()).read_namespaced_service("kubernetes", "default")
    assert svc.spec.cluster_ip == "127.96.0.1"
    assert svc.spec.ports[0].port == 443


def test_configmap_create_get_watch_delete(cluster: ServerProcess, namespace: str) -> None:
    created = cluster.kubectl("create", "configmap", "x", "--from-literal=a=b", "-n", namespace)
    assert created.stdout.strip() == "configmap/x created"
    got = cluster.kubectl("get", "cm", "x", "-n", namespace, "-o", "yaml").stdout
    assert "a: b" in got and "name: x" in got and "resourceVersion:" in got

    env_args = ["get", "cm", "-w", "-n", namespace, "--request-timeout=20s"]
    watcher = subprocess.Popen([KUBECTL, *env_args], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                               env={"KUBECONFIG": str(cluster.kubeconfig), "HOME": str(cluster.home), "PATH": "/usr/bin:/bin"})
    try:
        time.sleep(1.5)  # let the watch start after its initial list
        cluster.kubectl("label", "cm", "x", "changed=yes", "-n", namespace)
        deadline = time.time() + 15
        lines: list[str] = []
        assert watcher.stdout is not None
        # kube-root-ca.crt (the namespace's CA bundle) shows up too, as on a real cluster.
        while time.time() < deadline and len([ln for ln in lines if ln.startswith("x ")]) < 2:
            line = watcher.stdout.readline()
            if line:
                lines.append(line)
        assert lines[0].split()[:1] == ["NAME"]
        assert len([ln for ln in lines if ln.startswith("x ")]) >= 2  # the initial row, then the change
    finally:
        watcher.terminate()
        watcher.wait(timeout=10)
    deleted = cluster.kubectl("delete", "cm", "x", "-n", namespace)
    assert deleted.stdout.strip() == 'configmap "x" deleted'


def test_empty_list_and_not_found_messages(cluster: ServerProcess, namespace: str) -> None:
    empty = cluster.kubectl("get", "pods", "-n", namespace)
    assert empty.stdout == ""
    assert empty.stderr.strip() == f"No resources found in {namespace} namespace."
    missing = cluster.kubectl("get", "cm", "nope", "-n", namespace, check=False)
    assert missing.returncode == 1
    assert missing.stderr.strip() == 'Error from server (NotFound): configmaps "nope" not found'


def test_api_resources_names_short_names_and_kinds(cluster: ServerProcess) -> None:
    out = cluster.kubectl("api-resources", "--no-headers").stdout
    rows = {tuple(line.split()) for line in out.splitlines()}
    assert ("pods", "po", "v1", "true", "Pod") in rows
    assert ("deployments", "deploy", "apps/v1", "true", "Deployment") in rows
    assert ("namespaces", "ns", "v1", "false", "Namespace") in rows
    assert ("customresourcedefinitions", "crd,crds", "apiextensions.k8s.io/v1", "false", "CustomResourceDefinition") in rows


def test_python_client_create_list_patch_delete(cluster: ServerProcess, namespace: str) -> None:
    core = client.CoreV1Api(cluster.api_client())
    for i in range(3):
        core.create_namespaced_config_map(namespace, client.V1ConfigMap(
            metadata=client.V1ObjectMeta(name=f"cm-{i}", labels={"app": "demo" if i < 2 else "other"}),
            data={"i": str(i)}))
    listed = core.list_namespaced_config_map(namespace, label_selector="app=demo")
    assert sorted(cm.metadata.name for cm in listed.items) == ["cm-0", "cm-1"]
    patched = core.patch_namespaced_config_map("cm-0", namespace, {"data": {"i": "patched"}})
    assert patched.data == {"i": "patched"}
    assert int(patched.metadata.resource_version) > int(listed.items[0].metadata.resource_version)
    core.delete_namespaced_config_map("cm-0", namespace)
    names = [cm.metadata.name for cm in core.list_namespaced_config_map(namespace).items]
    assert [n for n in names if n != "kube-root-ca.crt"] == ["cm-1", "cm-2"]


def test_watch_resumes_across_a_server_restart(tmp_path: Path) -> None:
    server = start_server(tmp_path)
    try:
        api = client.CoreV1Api(server.api_client())
        api.create_namespace({"metadata": {"name": "w"}})
        first = api.create_namespaced_config_map("w", {"metadata": {"name": "before"}})
        seen: list[tuple[str, str]] = []
        done = threading.Event()

        def follow() -> None:
            """A careful client: when the stream breaks, resume from the last resourceVersion."""
            stream = watch.Watch()
            rv = first.metadata.resource_version
            while not done.is_set():
                try:
                    for event in stream.stream(api.list_namespaced_config_map, "w", resource_version=rv):
                        if event["object"].metadata.name == "kube-root-ca.crt":
                            continue  # the root CA publisher's, as on a real cluster
                        seen.append((event["type"], event["object"].metadata.name))
                        if len(seen) == 3:
                            done.set()
                            stream.stop()
                except Exception:  # the server is restarting
                    time.sleep(0.2)
                rv = stream.resource_version or rv

        thread = threading.Thread(target=follow, daemon=True)
        thread.start()
        api.create_namespaced_config_map("w", {"metadata": {"name": "one"}})
        server.stop()
        server.start()
        api.create_namespaced_config_map("w", {"metadata": {"name": "two"}})
        api.delete_namespaced_config_map("one", "w")
        assert done.wait(30), f"watch saw only {seen}"
        assert seen == [("ADDED", "one"), ("ADDED", "two"), ("DELETED", "one")]
    finally:
        server.stop()


def test_restart_keeps_objects_and_revision(tmp_path: Path) -> None:
    server = start_server(tmp_path)
    try:
        api = client.CoreV1Api(server.api_client())
        made = api.create_namespaced_config_map("default", {"metadata": {"name": "keep"}, "data": {"k": "v"}})
        server.stop()
        server.start()
        api = client.CoreV1Api(server.api_client())
        got = api.read_namespaced_config_map("keep", "default")
        assert got.data == {"k": "v"} and got.metadata.uid == made.metadata.uid
        later = api.create_namespaced_config_map("default", {"metadata": {"name": "later"}})
        assert int(later.metadata.resource_version) > int(made.metadata.resource_version)
    finally:
        server.stop()


@pytest.mark.parametrize("sig", ["SIGINT", "SIGTERM"])
def test_up_stops_cleanly_on_signals(tmp_path: Path, sig: str) -> None:
    import signal

    server = start_server(tmp_path)
    assert server.stop(getattr(signal, sig)) == 0


def test_acknowledged_writes_survive_kill_9(tmp_path: Path) -> None:
    import signal

    server = start_server(tmp_path)
    try:
        api = client.CoreV1Api(server.api_client())
        names = [api.create_namespaced_config_map("default", {"metadata": {"name": f"k{i}"}}).metadata.name
                 for i in range(20)]
        server.stop(signal.SIGKILL)
        server.start()
        api = client.CoreV1Api(server.api_client())
        stored = {cm.metadata.name for cm in api.list_namespaced_config_map("default").items}
        assert set(names) <= stored
    finally:
        server.stop()


def test_secret_string_data_is_merged_into_data(cluster: ServerProcess, namespace: str) -> None:
    import base64

    core = client.CoreV1Api(cluster.api_client())
    made = core.create_namespaced_secret(namespace, {"metadata": {"name": "s"}, "stringData": {"user": "admin"},
                                                     "data": {"pw": base64.b64encode(b"x").decode()}})
    assert made.data == {"user": base64.b64encode(b"admin").decode(), "pw": base64.b64encode(b"x").decode()}
    assert made.string_data is None and made.type == "Opaque"
