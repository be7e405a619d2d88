"""apply (client- and server-side), diff, strict validation, and the official client's
create_from_yaml / DynamicClient on the same multi-document manifest."""

from __future__ import annotations

import re
import uuid
from pathlib import Path

import pytest
import yaml

from .conftest import Kube, drop_namespace


def manifest(ns: str, color: str = "blue", replicas: int = 1) -> str:
    return f"""\
apiVersion: v1
kind: Namespace
metadata:
  name: {ns}
---
apiVersion: v1
kind: ConfigMap
metadata:
  name: app-config
  namespace: {ns}
data:
  color: {color}
---
apiVersion: apps/v1
kind: Deployment
metadata:
  name: app
  namespace: {ns}
  labels:
    app: app
spec:
  replicas: {replicas}
  selector:
    matchLabels:
      app: app
  template:
    metadata:
      labels:
        app: app
    spec:
      containers:
      - name: app
        image: nginx:1.25
        ports:
        - containerPort: 80
---
apiVersion: v1
kind: Service
metadata:
  name: app
  namespace: {ns}
spec:
  selector:
    app: app
  ports:
  - port: 80
    targetPort: 80
"""


@pytest.fixture
def fresh_ns(kube: Kube):  # type: ignore[no-untyped-def]
    name = f"kc-apply-{uuid.uuid4().hex[:8]}"
    yield name
    drop_namespace(kube, name)


def test_apply_created_unchanged_configured_and_diff(kube: Kube, fresh_ns: str, tmp_path: Path) -> None:
    # Source: kubernetes/kubernetes test/cmd/apply.sh and kubernetes.io/docs/tasks/manage-kubernetes-objects/
    # declarative-config/ ("deployment.apps/nginx-deployment created", "... unchanged", "... configured");
    # kubernetes/kubectl@v0.33.1 pkg/cmd/apply/apply.go prints "unchanged" when the patch is a no-op.
    f = tmp_path / "app.yaml"
    f.write_text(manifest(fresh_ns))
    r = kube("apply", "-f", str(f))
    assert (r.out, r.err) == ("namespace/%s created\nconfigmap/app-config created\ndeployment.apps/app created\n"
                              "service/app created\n" % fresh_ns, "")
    r = kube("apply", "-f", str(f))
    assert r.out == ("namespace/%s unchanged\nconfigmap/app-config unchanged\ndeployment.apps/app unchanged\n"
                     "service/app unchanged\n" % fresh_ns)

    # Source: kubernetes/kubernetes test/cmd/diff.sh and kubernetes.io/docs/reference/kubectl/generated/
    # kubectl_diff/: exit 0 when nothing differs, 1 with a unified diff "diff -u -N LIVE MERGED" when it does.
    r = kube("diff", "-f", str(f))
    assert (r.out, r.err) == ("", "")
    f.write_text(manifest(fresh_ns, color="green", replicas=2))
    r = kube("diff", "-f", str(f), rc=1)
    assert re.search(r"^diff -u -N \S+/LIVE-\d+/v1\.ConfigMap\." + fresh_ns + r"\.app-config \S+/MERGED-\d+/"
                     r"v1\.ConfigMap\." + fresh_ns + r"\.app-config$", r.out, re.M), r.out
    assert "\n-  color: blue\n+  color: green\n" in r.out
    assert re.search(r"^diff -u -N \S+/LIVE-\d+/apps\.v1\.Deployment\." + fresh_ns + r"\.app ", r.out, re.M)
    assert "\n-  replicas: 1\n+  replicas: 2\n" in r.out
    assert "v1.Service" not in r.out and "v1.Namespace" not in r.out
    # a diff must not have changed anything
    assert kube("-n", fresh_ns, "get", "cm", "app-config", "-o", "jsonpath={.data.color}").out == "blue"

    r = kube("apply", "-f", str(f))
    assert r.out == ("namespace/%s unchanged\nconfigmap/app-config configured\ndeployment.apps/app configured\n"
                     "service/app unchanged\n" % fresh_ns)
    r = kube("diff", "-f", str(f))
    assert r.rc == 0 and r.out == ""


def test_apply_server_side(kube: Kube, ns: str) -> None:
    # Source: kubernetes.io/docs/reference/using-api/server-side-apply/ and kubernetes/kubectl@v0.33.1
    # pkg/cmd/apply/apply.go ("serverside-applied"); a second manager touching the same field gets a 409
    # conflict naming the manager and field, resolved by --force-conflicts.
    doc = f"apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: ssa\n  namespace: {ns}\ndata:\n  k: v1\n"
    r = kube("apply", "--server-side", "-f", "-", input=doc)
    assert r.out == "configmap/ssa serverside-applied\n"
    r = kube("apply", "--server-side", "--field-manager=other", "-f", "-", input=doc.replace("k: v1", "k: v2"),
             rc=1)
    assert r.err.startswith('error: Apply failed with 1 conflict: conflict with "kubectl": .data.k\n'
                            "Please review the fields above--they currently have other managers.")
    r = kube("apply", "--server-side", "--field-manager=other", "--force-conflicts", "-f", "-",
             input=doc.replace("k: v1", "k: v2"))
    assert r.out == "configmap/ssa serverside-applied\n"
    managers = kube("-n", ns, "get", "cm", "ssa", "--show-managed-fields",
                    "-o", "jsonpath={.metadata.managedFields[*].manager}").out.split()
    assert managers == ["other"]


def test_apply_strict_unknown_field(kube: Kube, ns: str) -> None:
    # Source: kubernetes.io/docs/reference/using-api/api-concepts/#field-validation and
    # kubernetes/kubernetes test/cmd/apply.sh (--validate=strict: 'strict decoding error: unknown field
    # "spec.foo"' in "Error from server (BadRequest): error when creating ...").
    doc = f"apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: strict\n  namespace: {ns}\ndata:\n  a: b\nfoo: bar\n"
    r = kube("apply", "-f", "-", input=doc, rc=1)
    assert r.err == ('Error from server (BadRequest): error when creating "STDIN": ConfigMap in version "v1" cannot '
                     'be handled as a ConfigMap: strict decoding error: unknown field "foo"\n')
    # --validate=warn creates it and prints the server's warning
    r = kube("apply", "--validate=warn", "-f", "-", input=doc)
    assert r.out == "configmap/strict created\n"
    assert r.err == 'Warning: unknown field "foo"\n'


def test_apply_warns_on_missing_annotation(kube: Kube, ns: str) -> None:
    # Source: kubernetes/kubectl@v0.33.1 pkg/cmd/apply/apply.go warningNoLastAppliedConfigAnnotation.
    kube("-n", ns, "create", "configmap", "legacy", "--from-literal=a=b")
    doc = f"apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: legacy\n  namespace: {ns}\ndata:\n  a: c\n"
    r = kube("apply", "-f", "-", input=doc)
    assert r.out == "configmap/legacy configured\n"
    assert r.err == ("Warning: resource configmaps/legacy is missing the kubectl.kubernetes.io/last-applied-"
                     "configuration annotation which is required by kubectl apply. kubectl apply should only be "
                     "used on resources created declaratively by either kubectl create --save-config or kubectl "
                     "apply. The missing annotation will be patched automatically.\n")


def test_python_create_from_yaml(kube: Kube, fresh_ns: str, tmp_path: Path) -> None:
    # Source: kubernetes-client/python kubernetes/utils/create_from_yaml.py (creates each document of a
    # multi-document file in order and returns the created objects); then kubectl sees them.
    from kubernetes import utils

    f = tmp_path / "app.yaml"
    f.write_text(manifest(fresh_ns))
    created = utils.create_from_yaml(kube.client, str(f))
    kinds = [obj.kind for group in created for obj in group]
    assert kinds == ["Namespace", "ConfigMap", "Deployment", "Service"]
    r = kube("-n", fresh_ns, "get", "configmap/app-config", "deployment/app", "service/app", "-o", "name")
    assert r.out == "configmap/app-config\ndeployment.apps/app\nservice/app\n"
    # and a second run reports AlreadyExists through FailToCreateError
    with pytest.raises(utils.FailToCreateError) as err:
        utils.create_from_yaml(kube.client, str(f))
    assert all(e.status == 409 for e in err.value.api_exceptions)


def test_python_dynamic_client(kube: Kube, fresh_ns: str) -> None:
    # Source: kubernetes-client/python kubernetes/dynamic (DynamicClient.resources.get by apiVersion/kind,
    # create/get/patch/server_side_apply/delete on ResourceInstance).
    from kubernetes.dynamic import DynamicClient

    dyn = DynamicClient(kube.client)
    docs = list(yaml.safe_load_all(manifest(fresh_ns)))
    for doc in docs:
        api = dyn.resources.get(api_version=doc["apiVersion"], kind=doc["kind"])
        ns = doc["metadata"].get("namespace")
        created = api.create(body=doc, namespace=ns) if ns else api.create(body=doc)
        assert created.metadata.name == doc["metadata"]["name"]
    deploys = dyn.resources.get(api_version="apps/v1", kind="Deployment")
    got = deploys.get(name="app", namespace=fresh_ns)
    assert got.spec.replicas == 1 and got.spec.strategy.type == "RollingUpdate"
    patched = deploys.patch(name="app", namespace=fresh_ns, body={"spec": {"replicas": 2}},
                            content_type="application/merge-patch+json")
    assert patched.spec.replicas == 2
    cms = dyn.resources.get(api_version="v1", kind="ConfigMap")
    applied = cms.server_side_apply(body={"apiVersion": "v1", "kind": "ConfigMap",
                                          "metadata": {"name": "app-config", "namespace": fresh_ns},
                                          "data": {"color": "red"}},
                                    namespace=fresh_ns, field_manager="dyn", force_conflicts=True)
    assert applied.data.color == "red"
    listed = cms.get(namespace=fresh_ns)
    assert "app-config" in [i.metadata.name for i in listed.items]
    # kubectl apply of the same manifest afterwards: the objects exist without the annotation, so
    # kubectl configures them (and warns), exactly as it would on a real cluster.
    r = kube("apply", "-f", "-", input=manifest(fresh_ns))
    assert r.out == ("namespace/%s configured\nconfigmap/app-config configured\ndeployment.apps/app configured\n"
                     "service/app configured\n" % fresh_ns)
    assert r.err.count("Warning: resource ") == 4
