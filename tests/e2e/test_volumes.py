"""Pod volumes through kubectl on a real `pykube-server up`: ConfigMap and Secret files at their
mountPath, an emptyDir shared by two containers, the pod's hostname, and the FailedMount event
of a missing ConfigMap (the pod stays in ContainerCreating, as on a real node)."""

from __future__ import annotations

import os
import time
import uuid
from collections.abc import Iterator

import pytest

from tests.conftest import ServerProcess, requires_kubectl

pytestmark = [requires_kubectl, pytest.mark.kubectl,
              pytest.mark.skipif(os.geteuid() != 0, reason="volume mounts need root (mount namespaces)")]


def eventually(cluster: ServerProcess, args: list[str], want: str, timeout: float = 30.0) -> str:
    deadline = time.monotonic() + timeout
    out = ""
    while time.monotonic() < deadline:
        result = cluster.kubectl(*args, check=False)
        out = result.stdout + result.stderr
        if want in out:
            return out
        time.sleep(0.2)
    raise AssertionError(f"kubectl {' '.join(args)}: {want!r} not seen; last output:\n{out}")


@pytest.fixture
def apply(cluster: ServerProcess, namespace: str) -> Iterator[object]:
    """kubectl apply into the test namespace; the pods are deleted afterwards (their mount
    points on the host go with them)."""
    def run(manifest: str) -> None:
        cluster.kubectl("apply", "-n", namespace, "-f", "-", input=manifest)
    yield run
    cluster.kubectl("delete", "pods", "--all", "-n", namespace, "--grace-period=1", "--wait=true", check=False,
                    timeout=60)


def pod(name: str, command: str, volumes: str, mounts: str, *, mount_path: str = "") -> str:
    return f"""
apiVersion: v1
kind: Pod
metadata: {{name: {name}}}
spec:
  nodeName: pykube-node-1
  terminationGracePeriodSeconds: 1
  containers:
  - name: main
    image: busybox
    command: ["sh", "-c", "{command}"]
    volumeMounts: {mounts}
  volumes: {volumes}
"""


def test_configmap_volume_shows_keys_at_mount_path(cluster: ServerProcess, namespace: str, apply) -> None:  # type: ignore[no-untyped-def]
    cluster.kubectl("create", "configmap", "app-config", "-n", namespace, "--from-literal=key=value-from-configmap",
                    "--from-literal=other=2")
    apply(pod("cm", "cat /etc/config/key; echo; ls /etc/config; sleep 3600",
              "[{name: config, configMap: {name: app-config}}]", "[{name: config, mountPath: /etc/config}]"))
    eventually(cluster, ["get", "pod", "cm", "-n", namespace], "1/1     Running")
    logs = eventually(cluster, ["logs", "cm", "-n", namespace], "other")
    assert logs.split() == ["value-from-configmap", "key", "other"]


def test_secret_volume_with_items_and_read_only(cluster: ServerProcess, namespace: str, apply) -> None:  # type: ignore[no-untyped-def]
    cluster.kubectl("create", "secret", "generic", "creds", "-n", namespace, "--from-literal=password=s3cr3t")
    apply(pod("sec", "cat /etc/creds/pw.txt; echo; stat -L -c %a /etc/creds/pw.txt; "
                     "touch /etc/creds/x 2>/dev/null || echo read-only; sleep 3600",
              "[{name: creds, secret: {secretName: creds, items: [{key: password, path: pw.txt, mode: 0400}]}}]",
              "[{name: creds, mountPath: /etc/creds}]"))
    logs = eventually(cluster, ["logs", "sec", "-n", namespace], "read-only")
    assert logs.split() == ["s3cr3t", "400", "read-only"]


def test_empty_dir_shared_between_containers(cluster: ServerProcess, namespace: str, apply) -> None:  # type: ignore[no-untyped-def]
    shared = f"/shared-{uuid.uuid4().hex[:6]}"
    apply(f"""
apiVersion: v1
kind: Pod
metadata: {{name: shared}}
spec:
  nodeName: pykube-node-1
  terminationGracePeriodSeconds: 1
  volumes: [{{name: scratch, emptyDir: {{}}}}]
  containers:
  - name: writer
    image: busybox
    command: ["sh", "-c", "echo written-by-writer > {shared}/msg; sleep 3600"]
    volumeMounts: [{{name: scratch, mountPath: {shared}}}]
  - name: reader
    image: busybox
    command: ["sh", "-c", "while [ ! -s {shared}/msg ]; do sleep 0.1; done; cat {shared}/msg; sleep 3600"]
    volumeMounts: [{{name: scratch, mountPath: {shared}}}]
""")
    eventually(cluster, ["get", "pod", "shared", "-n", namespace], "2/2     Running")
    assert eventually(cluster, ["logs", "shared", "-c", "reader", "-n", namespace],
                      "written-by-writer").strip() == "written-by-writer"
    assert not os.path.exists(f"{shared}/msg")  # the host sees an empty mount point only


def test_hostname_is_the_pod_name(cluster: ServerProcess, namespace: str, apply) -> None:  # type: ignore[no-untyped-def]
    apply(pod("named-pod", "hostname; sleep 3600", "[]", "[]"))
    assert eventually(cluster, ["logs", "named-pod", "-n", namespace], "named-pod").strip() == "named-pod"


def test_missing_configmap_keeps_pod_creating_with_failed_mount(cluster: ServerProcess, namespace: str,  # type: ignore[no-untyped-def]
                                                                 apply) -> None:
    apply(pod("nocm", "sleep 3600", "[{name: config, configMap: {name: missing-config}}]",
              "[{name: config, mountPath: /etc/config}]"))
    events = eventually(cluster, ["get", "events", "-n", namespace, "--field-selector", "involvedObject.name=nocm"],
                        "FailedMount")
    assert 'MountVolume.SetUp failed for volume "config" : configmap "missing-config" not found' in events
    assert "ContainerCreating" in cluster.kubectl("get", "pod", "nocm", "-n", namespace).stdout
    cluster.kubectl("create", "configmap", "missing-config", "-n", namespace, "--from-literal=k=v")
    eventually(cluster, ["get", "pod", "nocm", "-n", namespace], "1/1     Running")


def test_projected_service_account_token_is_bound_to_the_pod(cluster: ServerProcess, namespace: str,  # type: ignore[no-untyped-def]
                                                             apply) -> None:
    """The kube-api-access shape: a TokenRequest token bound to the pod, the namespace, a CA bundle."""
    eventually(cluster, ["get", "configmap", "kube-root-ca.crt", "-n", namespace], "kube-root-ca.crt")
    script = ("import base64, json; d = '/var/run/secrets/kubernetes.io/serviceaccount/'; "
              "t = open(d + 'token').read().split('.')[1]; "
              "c = json.loads(base64.urlsafe_b64decode(t + '=' * (-len(t) % 4))); "
              "print(c['kubernetes.io']['pod']['name'], open(d + 'namespace').read(), "
              "'BEGIN CERTIFICATE' in open(d + 'ca.crt').read())")
    apply(f"""
apiVersion: v1
kind: Pod
metadata: {{name: tok}}
spec:
  nodeName: pykube-node-1
  terminationGracePeriodSeconds: 1
  containers:
  - name: main
    image: python:3.12
    command: ["sh", "-c", "python3 -c \\"{script}\\"; sleep 3600"]
    volumeMounts: [{{name: api, mountPath: /var/run/secrets/kubernetes.io/serviceaccount, readOnly: true}}]
  volumes:
  - name: api
    projected:
      sources:
      - serviceAccountToken: {{expirationSeconds: 3607, path: token}}
      - configMap: {{name: kube-root-ca.crt, items: [{{key: ca.crt, path: ca.crt}}]}}
      - downwardAPI: {{items: [{{path: namespace, fieldRef: {{fieldPath: metadata.namespace}}}}]}}
""")
    logs = eventually(cluster, ["logs", "tok", "-n", namespace], "True", timeout=45)
    assert logs.split() == ["tok", namespace, "True"]
