"""Service account tokens end to end: the real kubectl and the official client against `pykube-server up`.

What a kubeadm 1.33 cluster does: a pod in a brand-new namespace is admitted once the
controller manager has made its `default` ServiceAccount and gets the `kube-api-access-*`
volume, which the kubelet fills through TokenRequest so the pod can call the API server as its
account; `kubectl create token` prints a token that `kubectl auth whoami` (with only that token)
reports as the account; a user-made `kubernetes.io/service-account-token` Secret is filled by
the token controller with `token`, `ca.crt` and `namespace`, and its token works too.
"""

from __future__ import annotations

import base64
import json
import time
import uuid
from pathlib import Path

import yaml

from tests.conftest import ServerProcess, requires_kubectl

pytestmark = requires_kubectl


def token_kubeconfig(cluster: ServerProcess, token: str, path: Path) -> Path:
    """The admin kubeconfig's server and CA, with the token as the only credential."""
    admin = yaml.safe_load(cluster.kubeconfig.read_text())
    admin["users"] = [{"name": "sa", "user": {"token": token}}]
    admin["contexts"][0]["context"]["user"] = "sa"
    path.write_text(yaml.safe_dump(admin))
    return path


def whoami(cluster: ServerProcess, token: str, tmp_path: Path) -> dict:
    config = token_kubeconfig(cluster, token, tmp_path / f"sa-{uuid.uuid4().hex[:6]}.yaml")
    out = cluster.kubectl("auth", "whoami", "-o", "json", "--kubeconfig", str(config)).stdout
    return json.loads(out)["status"]["userInfo"]


def test_pod_in_new_namespace_gets_token_volume(cluster: ServerProcess, namespace: str) -> None:
    cluster.kubectl("run", "p", "-n", namespace, "--image=busybox", "--restart=Never", "--", "sleep", "1")
    spec = json.loads(cluster.kubectl("get", "pod", "p", "-n", namespace, "-o", "json").stdout)["spec"]
    assert spec["serviceAccountName"] == "default"
    volume = spec["volumes"][0]
    assert volume["name"].startswith("kube-api-access-")
    assert spec["containers"][0]["volumeMounts"] == [
        {"name": volume["name"], "readOnly": True, "mountPath": "/var/run/secrets/kubernetes.io/serviceaccount"}]


IN_POD = """
import json, ssl, sys, urllib.request
d = "/var/run/secrets/kubernetes.io/serviceaccount/"
ctx = ssl.create_default_context(cafile=d + "ca.crt")
body = json.dumps({"apiVersion": "authentication.k8s.io/v1", "kind": "SelfSubjectReview"}).encode()
req = urllib.request.Request(sys.argv[1] + "/apis/authentication.k8s.io/v1/selfsubjectreviews", data=body,
                             headers={"Authorization": "Bearer " + open(d + "token").read(),
                                      "Content-Type": "application/json"})
info = json.load(urllib.request.urlopen(req, context=ctx))["status"]["userInfo"]
print(info["username"], info["extra"]["authentication.kubernetes.io/pod-name"][0], open(d + "namespace").read())
"""


def test_pod_uses_its_mounted_token(cluster: ServerProcess, namespace: str) -> None:
    """Admission mounts kube-api-access, the kubelet fills it through TokenRequest, and the pod
    authenticates to the API server with it (trusting the mounted ca.crt)."""
    pod = {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "caller"},
           "spec": {"restartPolicy": "Never", "terminationGracePeriodSeconds": 1,
                    "containers": [{"name": "main", "image": "python:3.12",
                                    "command": ["python3", "-c", IN_POD, cluster.url]}]}}
    cluster.kubectl("apply", "-n", namespace, "-f", "-", input=json.dumps(pod))
    deadline = time.monotonic() + 45
    while True:
        logs = cluster.kubectl("logs", "caller", "-n", namespace, check=False).stdout.split()
        if len(logs) == 3:
            break
        assert time.monotonic() < deadline, cluster.kubectl("describe", "pod", "caller", "-n", namespace).stdout
        time.sleep(0.3)
    assert logs == [f"system:serviceaccount:{namespace}:default", "caller", namespace]


def test_kubectl_create_token_and_whoami(cluster: ServerProcess, namespace: str, tmp_path: Path) -> None:
    cluster.kubectl("create", "serviceaccount", "robot", "-n", namespace)
    token = cluster.kubectl("create", "token", "robot", "-n", namespace, "--duration", "10m").stdout
    info = whoami(cluster, token, tmp_path)
    assert info["username"] == f"system:serviceaccount:{namespace}:robot"
    assert info["groups"] == ["system:serviceaccounts", f"system:serviceaccounts:{namespace}", "system:authenticated"]
    assert info["extra"]["authentication.kubernetes.io/credential-id"][0].startswith("JTI=")
    # with RBAC the account may not list pods: a 403 naming it, not a 401
    config = token_kubeconfig(cluster, token, tmp_path / "robot.yaml")
    denied = cluster.kubectl("get", "pods", "-n", namespace, "--kubeconfig", str(config), check=False)
    assert denied.returncode != 0
    assert (f'pods is forbidden: User "system:serviceaccount:{namespace}:robot" cannot list resource "pods"'
            in denied.stderr)


def test_python_client_token_request(cluster: ServerProcess, namespace: str) -> None:
    from kubernetes import client

    api = client.CoreV1Api(cluster.api_client())
    api.create_namespaced_service_account(namespace, {"metadata": {"name": "robot"}})
    answer = api.create_namespaced_service_account_token(
        "robot", namespace, {"spec": {"audiences": ["x"], "expirationSeconds": 600}})
    assert answer.spec.audiences == ["x"] and answer.spec.expiration_seconds == 600
    assert answer.status.token.count(".") == 2 and answer.status.expiration_timestamp is not None


def test_legacy_token_secret(cluster: ServerProcess, namespace: str, tmp_path: Path) -> None:
    cluster.kubectl("create", "serviceaccount", "build", "-n", namespace)
    manifest = {"apiVersion": "v1", "kind": "Secret", "type": "kubernetes.io/service-account-token",
                "metadata": {"name": "build-token", "annotations": {"kubernetes.io/service-account.name": "build"}}}
    cluster.kubectl("apply", "-n", namespace, "-f", "-", input=json.dumps(manifest))
    deadline = time.monotonic() + 20
    while True:
        secret = json.loads(cluster.kubectl("get", "secret", "build-token", "-n", namespace, "-o", "json").stdout)
        if sorted(secret.get("data") or {}) == ["ca.crt", "namespace", "token"]:
            break
        assert time.monotonic() < deadline, secret
        time.sleep(0.2)
    assert base64.b64decode(secret["data"]["namespace"]).decode() == namespace
    token = base64.b64decode(secret["data"]["token"]).decode()
    assert whoami(cluster, token, tmp_path)["username"] == f"system:serviceaccount:{namespace}:build"
