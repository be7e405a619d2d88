"""kubectl get: tables, -o wide/json/yaml/name/jsonpath/custom-columns/go-template, --show-labels,
-L, --sort-by, get all, and its errors."""

from __future__ import annotations

import json
import re

import pytest
import yaml

from .conftest import AGE, Kube, assert_header, row

WEB = """\
apiVersion: apps/v1
kind: Deployment
metadata:
  name: web
  labels: {app: web, tier: front}
spec:
  replicas: 2
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


@pytest.fixture(scope="module")
def web(kube: Kube, mod_ns: str) -> str:
    kube("-n", mod_ns, "apply", "-f", "-", input=WEB)
    for name, color in (("cm-b", "blue"), ("cm-a", "red"), ("cm-c", "green")):
        kube("-n", mod_ns, "create", "configmap", name, f"--from-literal=color={color}")
        kube("-n", mod_ns, "label", "configmap", name, f"color={color}")
    kube("-n", mod_ns, "rollout", "status", "deployment/web", "--timeout=60s")
    return mod_ns


def test_get_deployments_table(kube: Kube, web: str) -> None:
    # Source: kubernetes.io/docs/concepts/workloads/controllers/deployment/ ("NAME READY UP-TO-DATE
    # AVAILABLE AGE", "nginx-deployment   3/3     3            3           18s").
    r = kube("-n", web, "get", "deployments")
    rows = assert_header(r.out, "NAME", "READY", "UP-TO-DATE", "AVAILABLE", "AGE")
    w = row(rows, "web")
    assert (w["READY"], w["UP-TO-DATE"], w["AVAILABLE"]) == ("2/2", "2", "2")
    assert re.fullmatch(AGE, w["AGE"])


def test_get_deployments_wide(kube: Kube, web: str) -> None:
    # Source: same page, `kubectl get deployments -o wide` adds CONTAINERS IMAGES SELECTOR
    # (pkg/printers/internalversion/printers.go deploymentColumnDefinitions).
    r = kube("-n", web, "get", "deploy", "web", "-o", "wide")
    rows = assert_header(r.out, "NAME", "READY", "UP-TO-DATE", "AVAILABLE", "AGE", "CONTAINERS", "IMAGES",
                         "SELECTOR")
    assert (rows[0]["CONTAINERS"], rows[0]["IMAGES"], rows[0]["SELECTOR"]) == ("nginx", "nginx:1.25", "app=web")


def test_get_pods_table(kube: Kube, web: str) -> None:
    # Source: kubernetes.io/docs/concepts/workloads/controllers/deployment/ `kubectl get pods
    # --show-labels` rows: NAME READY STATUS RESTARTS AGE; pods named <rs-name>-<5 chars>.
    r = kube("-n", web, "get", "pods", "-l", "app=web")
    rows = assert_header(r.out, "NAME", "READY", "STATUS", "RESTARTS", "AGE")
    assert len(rows) == 2
    for p in rows:
        assert re.fullmatch(r"web-[0-9a-f]{8,10}-[a-z0-9]{5}", p["NAME"]), p
        assert (p["READY"], p["STATUS"], p["RESTARTS"]) == ("1/1", "Running", "0")


def test_get_pods_wide(kube: Kube, web: str) -> None:
    # Source: kubernetes.io/docs/reference/kubectl/generated/kubectl_get/ and printers.go
    # podColumnDefinitions: wide adds IP NODE NOMINATED NODE READINESS GATES.
    r = kube("-n", web, "get", "pods", "-o", "wide")
    rows = assert_header(r.out, "NAME", "READY", "STATUS", "RESTARTS", "AGE", "IP", "NODE", "NOMINATED NODE",
                         "READINESS GATES")
    for p in rows:
        assert re.fullmatch(r"\d+\.\d+\.\d+\.\d+", p["IP"]), p
        assert p["NOMINATED NODE"] == "<none>" and p["READINESS GATES"] == "<none>"


def test_get_all_namespaces(kube: Kube, web: str) -> None:
    # Source: kubernetes.io/docs/reference/kubectl/quick-reference/ `kubectl get pods -A`: NAMESPACE first.
    r = kube("get", "deployments", "-A")
    rows = assert_header(r.out, "NAMESPACE", "NAME", "READY", "UP-TO-DATE", "AVAILABLE", "AGE")
    assert any(x["NAMESPACE"] == web and x["NAME"] == "web" and x["READY"] == "2/2" for x in rows), r.out


def test_get_json_single(kube: Kube, web: str) -> None:
    # Source: kubectl -o json prints the object as the server returns it (4-space indent).
    r = kube("-n", web, "get", "deployment", "web", "-o", "json")
    assert r.out.startswith('{\n    "apiVersion": "apps/v1",\n    "kind": "Deployment",\n')
    obj = json.loads(r.out)
    assert obj["metadata"]["name"] == "web" and obj["spec"]["replicas"] == 2
    assert obj["spec"]["strategy"] == {"rollingUpdate": {"maxSurge": "25%", "maxUnavailable": "25%"},
                                       "type": "RollingUpdate"}
    assert obj["status"]["readyReplicas"] == 2


def test_get_json_list(kube: Kube, web: str) -> None:
    # Source: kubectl wraps a list in {"apiVersion": "v1", "items": [...], "kind": "List",
    # "metadata": {"resourceVersion": ""}} (kubernetes/kubectl pkg/cmd/get/get.go).
    r = kube("-n", web, "get", "configmaps", "-l", "color", "-o", "json")
    obj = json.loads(r.out)
    assert obj["kind"] == "List" and obj["apiVersion"] == "v1"
    assert obj["metadata"] == {"resourceVersion": ""}
    assert sorted(i["metadata"]["name"] for i in obj["items"]) == ["cm-a", "cm-b", "cm-c"]
    assert all(i["kind"] == "ConfigMap" and i["apiVersion"] == "v1" for i in obj["items"])


def test_get_yaml(kube: Kube, web: str) -> None:
    # Source: kubernetes.io/docs/concepts/workloads/controllers/deployment/ (`-o yaml` keys in sorted
    # order, starting with apiVersion then kind then metadata).
    r = kube("-n", web, "get", "configmap", "cm-a", "-o", "yaml")
    assert r.out.startswith("apiVersion: v1\ndata:\n  color: red\nkind: ConfigMap\nmetadata:\n")
    obj = yaml.safe_load(r.out)
    assert obj["metadata"]["labels"] == {"color": "red"}
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ", obj["metadata"]["creationTimestamp"])


def test_get_name(kube: Kube, web: str) -> None:
    # Source: kubernetes/kubernetes test/cmd/get.sh and apps.sh (`-o name` prints kind.group/name,
    # e.g. "deployment.apps/test-deployment").
    r = kube("-n", web, "get", "deployment,configmap", "-l", "app=web,tier=front", "-o", "name")
    assert r.out == "deployment.apps/web\n"
    r = kube("-n", web, "get", "configmaps", "-l", "color", "-o", "name")
    assert r.out == "configmap/cm-a\nconfigmap/cm-b\nconfigmap/cm-c\n"


def test_get_jsonpath(kube: Kube, web: str) -> None:
    # Source: kubernetes.io/docs/reference/kubectl/jsonpath/ (range/end and [*] forms).
    r = kube("-n", web, "get", "configmaps", "-l", "color",
             "-o", 'jsonpath={range .items[*]}{.metadata.name}={.data.color}{"\\n"}{end}')
    assert r.out == "cm-a=red\ncm-b=blue\ncm-c=green\n"
    r = kube("-n", web, "get", "deploy", "web", "-o", "jsonpath={.spec.template.spec.containers[*].image}")
    assert r.out == "nginx:1.25"


def test_get_jsonpath_missing_key(kube: Kube, web: str) -> None:
    # Source: kubernetes/kubectl@v0.33.1 pkg/cmd/get/get_flags.go (--allow-missing-template-keys defaults
    # to true: a missing key prints nothing, exit 0); with it false, k8s.io/client-go util/jsonpath
    # reports "<name> is not found" inside 'error executing jsonpath ...', exit code 1.
    r = kube("-n", web, "get", "configmap", "cm-a", "-o", "jsonpath={.spec.nope}")
    assert (r.out, r.err) == ("", "")
    r = kube("-n", web, "get", "configmap", "cm-a", "-o", "jsonpath={.spec.nope}",
             "--allow-missing-template-keys=false", rc=1)
    assert r.err.startswith('error: error executing jsonpath "{.spec.nope}": Error executing template: '
                            "spec is not found. Printing more information for debugging the template:")


def test_get_custom_columns(kube: Kube, web: str) -> None:
    # Source: kubernetes.io/docs/reference/kubectl/#custom-columns (header from the column names).
    r = kube("-n", web, "get", "configmaps", "-l", "color",
             "-o", "custom-columns=NAME:.metadata.name,COLOR:.data.color,MISSING:.spec.x")
    assert r.out == ("NAME   COLOR   MISSING\n"
                     "cm-a   red     <none>\n"
                     "cm-b   blue    <none>\n"
                     "cm-c   green   <none>\n")


def test_get_go_template(kube: Kube, web: str) -> None:
    # Source: kubernetes/kubernetes test/cmd/template-output.sh (go-template over a list).
    r = kube("-n", web, "get", "configmaps", "-l", "color",
             "-o", 'go-template={{range .items}}{{.metadata.name}}:{{.data.color}};{{end}}')
    assert r.out == "cm-a:red;cm-b:blue;cm-c:green;"


def test_get_show_labels(kube: Kube, web: str) -> None:
    # Source: kubernetes.io/docs/concepts/workloads/controllers/deployment/ (`--show-labels` appends
    # LABELS, sorted key=value joined by commas).
    r = kube("-n", web, "get", "deployment", "web", "--show-labels")
    rows = assert_header(r.out, "NAME", "READY", "UP-TO-DATE", "AVAILABLE", "AGE", "LABELS")
    assert rows[0]["LABELS"] == "app=web,tier=front"


def test_get_label_columns(kube: Kube, web: str) -> None:
    # Source: kubernetes.io/docs/reference/kubectl/generated/kubectl_get/ (-L adds one upper-cased
    # column per key, empty when the label is absent).
    r = kube("-n", web, "get", "configmaps", "-l", "color", "-L", "color,missing")
    rows = assert_header(r.out, "NAME", "DATA", "AGE", "COLOR", "MISSING")
    assert [(x["NAME"], x["DATA"], x["COLOR"], x["MISSING"]) for x in rows] == [
        ("cm-a", "1", "red", ""), ("cm-b", "1", "blue", ""), ("cm-c", "1", "green", "")]


def test_get_sort_by(kube: Kube, web: str) -> None:
    # Source: kubernetes.io/docs/reference/kubectl/quick-reference/ (`--sort-by=.metadata.name` etc.).
    r = kube("-n", web, "get", "configmaps", "-l", "color", "--sort-by=.data.color", "-o", "name")
    assert r.out == "configmap/cm-b\nconfigmap/cm-c\nconfigmap/cm-a\n"
    r = kube("-n", web, "get", "configmaps", "-l", "color", "--sort-by=.data.color", "-L", "color")
    rows = assert_header(r.out, "NAME", "DATA", "AGE", "COLOR")
    assert [x["COLOR"] for x in rows] == ["blue", "green", "red"]


def test_get_all(kube: Kube, web: str) -> None:
    # Source: kubernetes.io/docs/reference/kubectl/quick-reference/ and real `kubectl get all`: pods,
    # services, daemonsets, deployments, replicasets, statefulsets, HPAs, cronjobs, jobs; one table per
    # kind with kind-prefixed names, separated by blank lines.
    kube("-n", web, "create", "service", "clusterip", "web", "--tcp=80:80")
    r = kube("-n", web, "get", "all")
    blocks = r.out.strip().split("\n\n")
    firsts = [b.splitlines()[1].split()[0].split("/")[0] for b in blocks]
    assert firsts == ["pod", "service", "deployment.apps", "replicaset.apps"], r.out
    assert blocks[1].splitlines()[0].split() == ["NAME", "TYPE", "CLUSTER-IP", "EXTERNAL-IP", "PORT(S)", "AGE"]
    assert blocks[3].splitlines()[0].split() == ["NAME", "DESIRED", "CURRENT", "READY", "AGE"]


def test_get_not_found(kube: Kube, web: str) -> None:
    # Source: kubernetes/kubernetes test/cmd/core.sh ('pods "abc" not found' as
    # "Error from server (NotFound): pods \"abc\" not found"), exit code 1.
    r = kube("-n", web, "get", "pod", "nope", rc=1)
    assert (r.out, r.err) == ("", 'Error from server (NotFound): pods "nope" not found\n')


def test_get_unknown_type(kube: Kube) -> None:
    # Source: kubernetes/kubectl@v0.33.1 pkg/cmd/explain/explain_test.go and test/cmd/get.sh:
    # 'error: the server doesn't have a resource type "foo"', exit code 1.
    r = kube("get", "foo", rc=1)
    assert (r.out, r.err) == ("", 'error: the server doesn\'t have a resource type "foo"\n')


def test_get_empty(kube: Kube, ns: str) -> None:
    # Source: kubernetes/kubectl@v0.33.1 pkg/cmd/get/get.go: "No resources found in %s namespace." on
    # stderr, nothing on stdout, exit code 0.
    r = kube("-n", ns, "get", "pods")
    assert (r.out, r.err) == ("", f"No resources found in {ns} namespace.\n")


def test_get_field_selector(kube: Kube, web: str) -> None:
    # Source: kubernetes.io/docs/concepts/overview/working-with-objects/field-selectors/.
    r = kube("-n", web, "get", "pods", "--field-selector=status.phase=Running", "-o", "name")
    assert len(r.out.split()) == 2
    r = kube("-n", web, "get", "pods", "--field-selector=status.phase=Failed")
    assert r.err == f"No resources found in {web} namespace.\n"
    r = kube("-n", web, "get", "pods", "--field-selector=spec.bogus=x", rc=1)
    assert r.err == ('Error from server (BadRequest): Unable to find "/v1, Resource=pods" that match label '
                     'selector "", field selector "spec.bogus=x": field label not supported: spec.bogus\n')


def test_get_namespaces_and_nodes(kube: Kube) -> None:
    # Source: kubernetes.io/docs/concepts/overview/working-with-objects/namespaces/ ("NAME STATUS AGE",
    # default/kube-node-lease/kube-public/kube-system Active) and printers.go nodeColumnDefinitions.
    rows = assert_header(kube("get", "namespaces").out, "NAME", "STATUS", "AGE")
    for n in ("default", "kube-node-lease", "kube-public", "kube-system"):
        assert row(rows, n)["STATUS"] == "Active"
    rows = assert_header(kube("get", "nodes").out, "NAME", "STATUS", "ROLES", "AGE", "VERSION")
    assert rows[0]["STATUS"] == "Ready" and re.fullmatch(r"v1\.33\.\d+", rows[0]["VERSION"])
    rows = assert_header(kube("get", "nodes", "-o", "wide").out, "NAME", "STATUS", "ROLES", "AGE", "VERSION",
                         "INTERNAL-IP", "EXTERNAL-IP", "OS-IMAGE", "KERNEL-VERSION", "CONTAINER-RUNTIME")


def test_get_events(kube: Kube, web: str) -> None:
    # Source: kubernetes.io/docs/reference/kubectl/generated/kubectl_events/ and printers.go
    # eventColumnDefinitions: LAST SEEN TYPE REASON OBJECT MESSAGE.
    r = kube("-n", web, "get", "events", "--field-selector", "reason=ScalingReplicaSet")
    rows = assert_header(r.out, "LAST SEEN", "TYPE", "REASON", "OBJECT", "MESSAGE")
    assert rows[0]["OBJECT"] == "deployment/web" and rows[0]["TYPE"] == "Normal"
    assert re.fullmatch(r"Scaled up replica set web-[0-9a-f]+ from 0 to 2", rows[0]["MESSAGE"])


def test_get_pod_service_account(kube: Kube, web: str) -> None:
    # Source: kubernetes.io/docs/tasks/configure-pod-container/configure-service-account/ ("If you
    # don't specify a ServiceAccount ... automatically assigns the default ServiceAccount") and
    # kubernetes.io/docs/reference/access-authn-authz/service-accounts-admin/ (kube-api-access-<random>
    # projected volume mounted at /var/run/secrets/kubernetes.io/serviceaccount).
    r = kube("-n", web, "get", "pods", "-l", "app=web",
             "-o", "jsonpath={.items[0].spec.serviceAccountName} {.items[0].spec.volumes[0].name}")
    assert re.fullmatch(r"default kube-api-access-[a-z0-9]{5}", r.out), r.out
