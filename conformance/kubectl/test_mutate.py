"""edit, patch (strategic, merge, json), label, annotate, set image|env|resources, scale."""

from __future__ import annotations

import json
import os
import stat
from pathlib import Path

import pytest

from .conftest import Kube

DEPLOY = """\
apiVersion: apps/v1
kind: Deployment
metadata:
  name: web
  labels: {app: web}
spec:
  replicas: 1
  selector:
    matchLabels: {app: web}
  template:
    metadata:
      labels: {app: web}
    spec:
      containers:
      - name: nginx
        image: nginx:1.25
"""


@pytest.fixture
def web(kube: Kube, ns: str) -> str:
    kube("-n", ns, "create", "-f", "-", input=DEPLOY)
    return ns


def _editor(tmp: Path, script: str) -> dict[str, str]:
    path = tmp / "editor.sh"
    path.write_text("#!/bin/sh\n" + script + "\n")
    path.chmod(path.stat().st_mode | stat.S_IEXEC)
    return {"EDITOR": str(path), "KUBE_EDITOR": str(path)}


def test_edit(kube: Kube, ns: str, tmp_path: Path) -> None:
    # Source: kubernetes/kubectl@v0.33.1 pkg/cmd/edit/testdata (testcase "edited" output
    # "configmap/cm1 edited"; testcase-no-op prints "Edit cancelled, no changes made." on stderr).
    kube("-n", ns, "create", "configmap", "cfg", "--from-literal=color=green")
    r = kube("-n", ns, "edit", "configmap", "cfg", env=_editor(tmp_path, "sed -i 's/color: green/color: red/' \"$1\""))
    assert (r.out, r.err) == ("configmap/cfg edited\n", "")
    assert kube("-n", ns, "get", "cm", "cfg", "-o", "jsonpath={.data.color}").out == "red"
    r = kube("-n", ns, "edit", "configmap", "cfg", env=_editor(tmp_path, "true"))
    assert (r.out, r.err) == ("", "Edit cancelled, no changes made.\n")


def test_edit_invalid_is_rejected(kube: Kube, web: str, tmp_path: Path) -> None:
    # Source: kubernetes/kubectl@v0.33.1 pkg/cmd/edit/testdata/testcase-edit-error-reedit: an invalid edit
    # re-opens the editor with the server's error at the top ("# deployments.apps \"web\" was not
    # valid:"); a second invalid save gives up with 'error: Edit cancelled, no valid changes were saved.'
    # and "A copy of your changes has been stored to ...", exit 1.
    env = _editor(tmp_path, "sed -i 's/replicas: 1/replicas: -1/' \"$1\"")
    r = kube("-n", web, "edit", "deployment", "web", env=env, rc=1)
    assert r.err.startswith('error: deployments.apps "web" is invalid\n')
    assert "A copy of your changes has been stored to" in r.err
    assert "error: Edit cancelled, no valid changes were saved." in r.err


def test_patch_strategic(kube: Kube, web: str) -> None:
    # Source: kubernetes.io/docs/tasks/manage-kubernetes-objects/update-api-object-kubectl-patch/
    # ("deployment.apps/patch-demo patched"; a strategic merge patch merges containers by name) and
    # kubernetes/kubectl@v0.33.1 pkg/cmd/patch/patch.go ("patched (no change)" when nothing changed).
    patch = '{"spec":{"template":{"spec":{"containers":[{"name":"sidecar","image":"busybox"}]}}}}'
    r = kube("-n", web, "patch", "deployment", "web", "-p", patch)
    assert r.out == "deployment.apps/web patched\n"
    # The current page shows the patched list with the patch's container first ("- image: redis ...
    # name: patch-demo-ctr-2" before "- image: nginx ... name: patch-demo-ctr"): strategicpatch's
    # normalizeElementOrder puts patch items ahead of server-only ones.
    names = kube("-n", web, "get", "deploy", "web", "-o", "jsonpath={.spec.template.spec.containers[*].name}").out
    assert names == "sidecar nginx"
    r = kube("-n", web, "patch", "deployment", "web", "-p", patch)
    assert r.out == "deployment.apps/web patched (no change)\n"
    # $patch: delete on a list element by merge key
    r = kube("-n", web, "patch", "deployment", "web", "-p",
             '{"spec":{"template":{"spec":{"containers":[{"name":"sidecar","$patch":"delete"}]}}}}')
    assert r.out == "deployment.apps/web patched\n"
    assert kube("-n", web, "get", "deploy", "web",
                "-o", "jsonpath={.spec.template.spec.containers[*].name}").out == "nginx"


def test_patch_merge(kube: Kube, web: str) -> None:
    # Source: same page, --type merge replaces lists wholesale (RFC 7386).
    r = kube("-n", web, "patch", "deployment", "web", "--type", "merge", "-p",
             '{"spec":{"template":{"spec":{"containers":[{"name":"only","image":"redis"}]}}}}')
    assert r.out == "deployment.apps/web patched\n"
    assert kube("-n", web, "get", "deploy", "web",
                "-o", "jsonpath={.spec.template.spec.containers[*].name}").out == "only"


def test_patch_json(kube: Kube, web: str) -> None:
    # Source: kubernetes.io/docs/reference/kubectl/generated/kubectl_patch/ (--type='json' with an
    # RFC 6902 list of operations).
    r = kube("-n", web, "patch", "deployment", "web", "--type=json",
             "-p", '[{"op":"replace","path":"/spec/replicas","value":2},'
                   '{"op":"add","path":"/metadata/labels/extra","value":"yes"}]')
    assert r.out == "deployment.apps/web patched\n"
    assert kube("-n", web, "get", "deploy", "web",
                "-o", "jsonpath={.spec.replicas} {.metadata.labels.extra}").out == "2 yes"


def test_patch_json_test_fails(kube: Kube, web: str) -> None:
    # Source: RFC 6902 "test" semantics as implemented by github.com/evanphx/json-patch (the apiserver
    # answers 422 "the server rejected our request due to an error in our request" with the cause
    # "testing value /spec/replicas failed: test failed"); kubectl's StandardErrorMessage prints
    # "The request is invalid: : <cause>", exit 1.
    r = kube("-n", web, "patch", "deployment", "web", "--type=json",
             "-p", '[{"op":"test","path":"/spec/replicas","value":9}]', rc=1)
    assert r.err == "The request is invalid: : testing value /spec/replicas failed: test failed\n"


def test_patch_not_found_and_invalid(kube: Kube, web: str) -> None:
    # Source: kubernetes/kubernetes test/cmd/core.sh (patching a missing object gives
    # 'Error from server (NotFound): deployments.apps "nope" not found') and apps/v1 validation
    # ('spec.replicas: Invalid value: -1: must be greater than or equal to 0').
    r = kube("-n", web, "patch", "deployment", "nope", "-p", '{"spec":{"replicas":2}}', rc=1)
    assert r.err == 'Error from server (NotFound): deployments.apps "nope" not found\n'
    r = kube("-n", web, "patch", "deployment", "web", "-p", '{"spec":{"replicas":-1}}', rc=1)
    assert r.err == ('The Deployment "web" is invalid: spec.replicas: Invalid value: -1: must be greater than or '
                     "equal to 0\n")


def test_label(kube: Kube, web: str) -> None:
    # Source: kubernetes/kubectl@v0.33.1 pkg/cmd/label/label.go ("labeled", "unlabeled", and
    # "'%s' already has a value (%s), and --overwrite is false"); kubernetes/kubernetes test/cmd/core.sh.
    assert kube("-n", web, "label", "deployment", "web", "tier=front").out == "deployment.apps/web labeled\n"
    r = kube("-n", web, "label", "deployment", "web", "tier=back", rc=1)
    assert (r.out, r.err) == ("", "error: 'tier' already has a value (front), and --overwrite is false\n")
    assert kube("-n", web, "label", "deployment", "web", "tier=back", "--overwrite").out == \
        "deployment.apps/web labeled\n"
    assert kube("-n", web, "get", "deploy", "-l", "tier=back", "-o", "name").out == "deployment.apps/web\n"
    assert kube("-n", web, "label", "deployment", "web", "tier-").out == "deployment.apps/web unlabeled\n"
    assert kube("-n", web, "label", "deployment", "web", "tier=back", "--dry-run=server").out == \
        "deployment.apps/web labeled (server dry run)\n"
    assert kube("-n", web, "get", "deploy", "web", "-o", "jsonpath={.metadata.labels}").out == '{"app":"web"}'


def test_annotate(kube: Kube, web: str) -> None:
    # Source: kubernetes/kubectl@v0.33.1 pkg/cmd/annotate/annotate.go ("annotated", and "--overwrite is
    # false but found the following declared annotation(s): 'a' already has a value (b)").
    assert kube("-n", web, "annotate", "deployment", "web", "owner=alice").out == "deployment.apps/web annotated\n"
    r = kube("-n", web, "annotate", "deployment", "web", "owner=bob", rc=1)
    assert r.err == ("error: --overwrite is false but found the following declared annotation(s): 'owner' already "
                     "has a value (alice)\n")
    kube("-n", web, "annotate", "deployment", "web", "owner=bob", "--overwrite")
    assert kube("-n", web, "get", "deploy", "web",
                "-o", "jsonpath={.metadata.annotations.owner}").out == "bob"
    assert kube("-n", web, "annotate", "deployment", "web", "owner-").out == "deployment.apps/web annotated\n"


def test_set_image(kube: Kube, web: str) -> None:
    # Source: kubernetes.io/docs/concepts/workloads/controllers/deployment/#updating-a-deployment
    # ("deployment.apps/nginx-deployment image updated") and kubernetes/kubectl@v0.33.1 pkg/cmd/set/
    # set_image.go ('unable to find container named "%s"').
    r = kube("-n", web, "set", "image", "deployment/web", "nginx=nginx:1.26")
    assert r.out == "deployment.apps/web image updated\n"
    assert kube("-n", web, "get", "deploy", "web",
                "-o", "jsonpath={.spec.template.spec.containers[0].image}").out == "nginx:1.26"
    r = kube("-n", web, "set", "image", "deployment/web", "nope=nginx", rc=1)
    assert r.err == 'error: unable to find container named "nope"\n'


def test_set_env(kube: Kube, web: str) -> None:
    # Source: kubernetes/kubectl@v0.33.1 pkg/cmd/set/set_env.go ("env updated") and
    # kubernetes.io/docs/reference/kubectl/generated/kubectl_set/kubectl_set_env/ (--list prints
    # "# Deployment web, container nginx" then KEY=value lines).
    r = kube("-n", web, "set", "env", "deployment/web", "GREETING=hello", "MODE=prod")
    assert r.out == "deployment.apps/web env updated\n"
    r = kube("-n", web, "set", "env", "deployment/web", "--list")
    assert r.out == "# Deployment web, container nginx\nGREETING=hello\nMODE=prod\n"
    r = kube("-n", web, "set", "env", "deployment/web", "MODE-")
    assert r.out == "deployment.apps/web env updated\n"
    assert kube("-n", web, "set", "env", "deployment/web", "--list").out == \
        "# Deployment web, container nginx\nGREETING=hello\n"


def test_set_resources(kube: Kube, web: str) -> None:
    # Source: kubernetes/kubectl@v0.33.1 pkg/cmd/set/set_resources.go ("resource requirements updated");
    # quantities as the apiserver canonicalises them.
    r = kube("-n", web, "set", "resources", "deployment/web", "--limits=cpu=200m,memory=512Mi",
             "--requests=cpu=0.1,memory=256Mi")
    assert r.out == "deployment.apps/web resource requirements updated\n"
    res = json.loads(kube("-n", web, "get", "deploy", "web",
                          "-o", "jsonpath={.spec.template.spec.containers[0].resources}").out)
    assert res == {"limits": {"cpu": "200m", "memory": "512Mi"}, "requests": {"cpu": "100m", "memory": "256Mi"}}


def test_scale(kube: Kube, web: str) -> None:
    # Source: kubernetes.io/docs/concepts/workloads/controllers/deployment/#scaling-a-deployment
    # ("deployment.apps/nginx-deployment scaled") and kubernetes/kubectl@v0.33.1 pkg/scale/scale.go
    # precondition error "Expected replicas to be %d, was %d".
    r = kube("-n", web, "scale", "deployment", "web", "--replicas=3")
    assert r.out == "deployment.apps/web scaled\n"
    r = kube("-n", web, "scale", "deployment", "web", "--replicas=2", "--current-replicas=5", rc=1)
    assert r.err == "error: Expected replicas to be 5, was 3\n"
    kube("-n", web, "wait", "--for=jsonpath={.status.readyReplicas}=3", "deployment/web", "--timeout=60s")
    # the scale subresource as kubectl get --raw sees it (autoscaling/v1 Scale)
    scale = json.loads(kube("get", "--raw", f"/apis/apps/v1/namespaces/{web}/deployments/web/scale").out)
    assert (scale["kind"], scale["apiVersion"]) == ("Scale", "autoscaling/v1")
    assert scale["spec"] == {"replicas": 3} and scale["status"]["replicas"] == 3
    assert scale["status"]["selector"] == "app=web"
