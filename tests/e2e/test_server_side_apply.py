"""Server-side apply and managedFields through the real kubectl and the official client.

Expected texts and entries are those of a kube-apiserver 1.33 for the same commands: kubectl
sends its own field manager per command (`kubectl-create`, `kubectl-label`, `kubectl` for
`apply --server-side`) except `scale`, which sends none, so kube names it after the User-Agent
(`kubectl`, on the scale subresource); the conflict message names the manager, its subresource
and the apiVersion it wrote with.
"""

from __future__ import annotations

import json

import pytest

from tests.conftest import ServerProcess, requires_kubectl

pytestmark = requires_kubectl

DEPLOYMENT = """\
apiVersion: apps/v1
kind: Deployment
metadata:
  name: web
  labels: {app: web}
spec:
  replicas: 1
  selector: {matchLabels: {app: web}}
  template:
    metadata: {labels: {app: web}}
    spec:
      containers:
      - name: nginx
        image: nginx:1.27
"""


def managed(cluster: ServerProcess, namespace: str, what: str) -> list[dict]:
    out = cluster.kubectl("-n", namespace, "get", what, "-o", "json", "--show-managed-fields").stdout
    return json.loads(out)["metadata"].get("managedFields", [])


def entry(entries: list[dict], manager: str) -> dict:
    found = [e for e in entries if e["manager"] == manager]
    assert len(found) == 1, entries
    return found[0]


def test_apply_twice_then_conflict_with_scale_then_force(cluster: ServerProcess, namespace: str) -> None:
    for _ in range(2):
        out = cluster.kubectl("-n", namespace, "apply", "--server-side", "-f", "-", input=DEPLOYMENT).stdout
        assert out.strip() == "deployment.apps/web serverside-applied"
    applied = entry(managed(cluster, namespace, "deploy/web"), "kubectl")
    assert applied["operation"] == "Apply" and applied["apiVersion"] == "apps/v1"
    assert applied["fieldsV1"]["f:spec"]["f:replicas"] == {}
    assert "k:{\"name\":\"nginx\"}" in applied["fieldsV1"]["f:spec"]["f:template"]["f:spec"]["f:containers"]

    cluster.kubectl("-n", namespace, "scale", "deploy/web", "--replicas=3")
    # The deployment controller's own Update entries (status, annotations) come and go as it
    # works, as on a real cluster; look only at what kubectl did.
    [scaled] = [e for e in managed(cluster, namespace, "deploy/web") if e["manager"] == "kubectl" and e["operation"] == "Update"]
    assert scaled["manager"] == "kubectl"
    assert (scaled["operation"], scaled["apiVersion"], scaled["subresource"]) == ("Update", "apps/v1", "scale")
    assert scaled["fieldsV1"] == {"f:spec": {"f:replicas": {}}}

    result = cluster.kubectl("-n", namespace, "apply", "--server-side", "-f", "-", input=DEPLOYMENT, check=False)
    assert result.returncode == 1
    assert ('error: Apply failed with 1 conflict: conflict with "kubectl" with subresource "scale" '
            'using apps/v1: .spec.replicas') in result.stderr
    assert "--force-conflicts" in result.stderr

    out = cluster.kubectl("-n", namespace, "apply", "--server-side", "--force-conflicts", "-f", "-", input=DEPLOYMENT)
    assert out.stdout.strip() == "deployment.apps/web serverside-applied"
    assert cluster.kubectl("-n", namespace, "get", "deploy/web", "-o", "jsonpath={.spec.replicas}").stdout == "1"
    users = [(e["manager"], e["operation"]) for e in managed(cluster, namespace, "deploy/web")
             if e["manager"] != "kube-controller-manager"]
    assert users == [("kubectl", "Apply")]


def test_conflict_status_body(cluster: ServerProcess, namespace: str) -> None:
    from kubernetes import client
    from kubernetes.client.rest import ApiException

    cluster.kubectl("-n", namespace, "create", "configmap", "c", "--from-literal=a=1")
    api = client.CoreV1Api(cluster.api_client())
    body = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "c"}, "data": {"a": "2"}}
    with pytest.raises(ApiException) as caught:
        api.patch_namespaced_config_map("c", namespace, body, _content_type="application/apply-patch+yaml",
                                        field_manager="m")
    assert caught.value.status == 409
    status = json.loads(caught.value.body)
    assert status["reason"] == "Conflict"
    assert status["message"] == 'Apply failed with 1 conflict: conflict with "kubectl-create" using v1: .data.a'
    assert status["details"] == {"causes": [{"reason": "FieldManagerConflict",
                                             "message": 'conflict with "kubectl-create" using v1', "field": ".data.a"}]}


def test_apply_dropping_a_field_removes_it(cluster: ServerProcess, namespace: str) -> None:
    both = "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: d, labels: {x: 'z'}}\ndata: {a: '1', b: '2'}\n"
    one = "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: d}\ndata: {a: '1'}\n"
    cluster.kubectl("-n", namespace, "apply", "--server-side", "-f", "-", input=both)
    cluster.kubectl("-n", namespace, "label", "configmap", "d", "keep=me")
    cluster.kubectl("-n", namespace, "apply", "--server-side", "-f", "-", input=one)
    obj = json.loads(cluster.kubectl("-n", namespace, "get", "configmap", "d", "-o", "json").stdout)
    assert obj["data"] == {"a": "1"}
    assert obj["metadata"]["labels"] == {"keep": "me"}
    assert "managedFields" not in obj["metadata"]  # kubectl hides them without --show-managed-fields


def test_official_client_apply_creates_and_updates(cluster: ServerProcess, namespace: str) -> None:
    from kubernetes import client

    api = client.CoreV1Api(cluster.api_client())
    body = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "p"}, "data": {"k": "v"}}
    created = api.patch_namespaced_config_map("p", namespace, body, _content_type="application/apply-patch+yaml",
                                              field_manager="m")
    assert created.data == {"k": "v"}
    [mf] = created.metadata.managed_fields
    assert (mf.manager, mf.operation, mf.api_version, mf.fields_type) == ("m", "Apply", "v1", "FieldsV1")
    assert mf.fields_v1 == {"f:data": {"f:k": {}}}
    rv = created.metadata.resource_version
    again = api.patch_namespaced_config_map("p", namespace, body, _content_type="application/apply-patch+yaml",
                                            field_manager="m")
    assert again.metadata.resource_version == rv  # a no-op apply writes nothing


def test_entries_after_create_label_patch_and_client_writes(cluster: ServerProcess, namespace: str) -> None:
    from kubernetes import client

    cluster.kubectl("-n", namespace, "create", "configmap", "e", "--from-literal=a=1")
    [created] = managed(cluster, namespace, "configmap/e")
    assert {k: created[k] for k in ("manager", "operation", "apiVersion", "fieldsType", "fieldsV1")} == {
        "manager": "kubectl-create", "operation": "Update", "apiVersion": "v1", "fieldsType": "FieldsV1",
        "fieldsV1": {"f:data": {".": {}, "f:a": {}}}}
    assert created["time"].endswith("Z") and "subresource" not in created

    cluster.kubectl("-n", namespace, "label", "configmap", "e", "team=x")
    cluster.kubectl("-n", namespace, "patch", "configmap", "e", "-p", '{"data":{"a":"2","b":"3"}}')
    entries = managed(cluster, namespace, "configmap/e")
    assert entry(entries, "kubectl-label")["fieldsV1"] == {"f:metadata": {"f:labels": {".": {}, "f:team": {}}}}
    assert entry(entries, "kubectl-patch")["fieldsV1"] == {"f:data": {"f:a": {}, "f:b": {}}}
    assert entry(entries, "kubectl-create")["fieldsV1"] == {"f:data": {}}  # still owns the map itself

    api = client.CoreV1Api(cluster.api_client())
    api.create_namespaced_config_map(namespace, {"metadata": {"name": "f"}, "data": {"z": "1"}})
    [by_client] = api.read_namespaced_config_map("f", namespace).metadata.managed_fields
    assert (by_client.manager, by_client.operation) == ("OpenAPI-Generator", "Update")


def test_deployment_create_entry_matches_kube(cluster: ServerProcess, namespace: str) -> None:
    cluster.kubectl("-n", namespace, "create", "deployment", "d", "--image=nginx", "--port=80")
    fields = entry(managed(cluster, namespace, "deploy/d"), "kubectl-create")["fieldsV1"]
    assert fields["f:metadata"] == {"f:labels": {".": {}, "f:app": {}}}
    spec = fields["f:spec"]
    assert spec["f:selector"] == {} and "." not in spec and "." not in spec["f:template"]
    container = spec["f:template"]["f:spec"]["f:containers"]['k:{"name":"nginx"}']
    assert container["."] == {} and container["f:image"] == {} and container["f:resources"] == {}
    assert container["f:ports"] == {".": {}, 'k:{"containerPort":80,"protocol":"TCP"}': {
        ".": {}, "f:containerPort": {}, "f:protocol": {}}}
