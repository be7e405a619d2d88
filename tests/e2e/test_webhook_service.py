"""An admission webhook running as a pod behind a Service, referenced by `clientConfig.service`.

The API server finds a ready endpoint of the Service's EndpointSlices (as kube-apiserver does
with --enable-aggregator-routing) and verifies the webhook's certificate for
`webhook.<namespace>.svc` against the configuration's caBundle.
"""

from __future__ import annotations

import json
import time
import uuid
from pathlib import Path
from typing import Any

from tests.apiserver.webhook_support import WebhookCA
from tests.conftest import ServerProcess, requires_kubectl

pytestmark = requires_kubectl

SCRIPT = (Path(__file__).parent / "webhook_pod_server.py").read_text()


def _wait(predicate: Any, timeout: float = 60.0) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.3)
    raise AssertionError("timed out")


def test_service_webhook_denies_through_the_pod(cluster: ServerProcess, namespace: str) -> None:
    from kubernetes import client

    api = client.CoreV1Api(cluster.api_client())
    _wait(lambda: any(sa.metadata.name == "default" for sa in api.list_namespaced_service_account(namespace).items))
    ca = WebhookCA()
    cert, key = ca.issue(f"webhook.{namespace}.svc")
    api.create_namespaced_pod(namespace, {
        "metadata": {"name": "webhook", "labels": {"app": "webhook"}},
        "spec": {"containers": [{
            "name": "webhook", "image": "python:3", "command": ["python3", "-c", SCRIPT],
            "env": [{"name": "POD_IP", "valueFrom": {"fieldRef": {"fieldPath": "status.podIP"}}},
                    {"name": "TLS_CRT", "value": cert.decode()}, {"name": "TLS_KEY", "value": key.decode()}],
            "ports": [{"containerPort": 8443, "name": "https"}],
            "readinessProbe": {"tcpSocket": {"port": 8443}, "periodSeconds": 1},
        }]}})
    api.create_namespaced_service(namespace, {"metadata": {"name": "webhook"}, "spec": {
        "selector": {"app": "webhook"}, "ports": [{"name": "https", "port": 443, "targetPort": "https"}]}})

    def ready_endpoint() -> bool:
        slices = json.loads(cluster.kubectl("get", "endpointslices", "-n", namespace, "-l",
                                            "kubernetes.io/service-name=webhook", "-o", "json").stdout)["items"]
        return any((e.get("conditions") or {}).get("ready") for s in slices for e in s.get("endpoints") or ())

    _wait(ready_endpoint, timeout=90)
    name = f"cfg-{uuid.uuid4().hex[:8]}"
    config = {"apiVersion": "admissionregistration.k8s.io/v1", "kind": "ValidatingWebhookConfiguration",
              "metadata": {"name": name},
              "webhooks": [{"name": "pod.example.com",
                            "clientConfig": {"service": {"namespace": namespace, "name": "webhook", "path": "/validate"},
                                             "caBundle": ca.bundle},
                            "rules": [{"operations": ["CREATE"], "apiGroups": [""], "apiVersions": ["v1"],
                                       "resources": ["configmaps"]}],
                            "namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": namespace}},
                            "sideEffects": "None", "admissionReviewVersions": ["v1"], "timeoutSeconds": 5}]}
    cluster.kubectl("create", "-f", "-", input=json.dumps(config))
    try:
        cluster.kubectl("get", "validatingwebhookconfigurations", name)  # consistent read: the cache has it
        allowed = cluster.kubectl("create", "configmap", "plain", "-n", namespace, "--from-literal=a=b", "--dry-run=none",
                                 "-o", "name", check=False)
        assert allowed.returncode == 0, allowed.stderr  # no label: allowed
        labelled = {"apiVersion": "v1", "kind": "ConfigMap",
                    "metadata": {"name": "labelled", "namespace": namespace, "labels": {"deny": "true"}}}
        result = cluster.kubectl("create", "-f", "-", input=json.dumps(labelled), check=False)
        assert result.stderr == ('Error from server: error when creating "STDIN": admission webhook "pod.example.com" '
                                 'denied the request: denied by the in-cluster webhook at /validate?timeout=5s\n')
    finally:
        cluster.kubectl("delete", "validatingwebhookconfigurations", name, check=False)
