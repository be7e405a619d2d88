"""kubectl create and its generators, each followed by the `get` table a real cluster prints."""

from __future__ import annotations

import base64
import json
import re
import subprocess
from pathlib import Path

import pytest

from .conftest import AGE, Kube, assert_header


def test_create_namespace(kube: Kube) -> None:
    # Source: kubernetes/kubernetes test/cmd/create.sh / core.sh ("namespace/my-namespace created") and
    # kubernetes.io/docs/tasks/administer-cluster/namespaces/; a second create is AlreadyExists, exit 1.
    name = "kc-created-ns"
    r = kube("create", "namespace", name)
    assert (r.out, r.err) == (f"namespace/{name} created\n", "")
    r = kube("create", "namespace", name, rc=1)
    assert (r.out, r.err) == ("", f'Error from server (AlreadyExists): namespaces "{name}" already exists\n')
    rows = assert_header(kube("get", "namespace", name, "--show-labels").out, "NAME", "STATUS", "AGE", "LABELS")
    # Source: kubernetes.io/docs/concepts/overview/working-with-objects/namespaces/#automatic-labelling.
    assert rows[0]["STATUS"] == "Active" and rows[0]["LABELS"] == f"kubernetes.io/metadata.name={name}"
    kube("delete", "namespace", name, "--wait=false")


def test_create_configmap(kube: Kube, ns: str) -> None:
    # Source: kubernetes.io/docs/tasks/configure-pod-container/configure-pod-configmap/
    # ("configmap/special-config created"; `get configmaps` NAME DATA AGE).
    r = kube("-n", ns, "create", "configmap", "special-config", "--from-literal=special.how=very",
             "--from-literal=special.type=charm")
    assert r.out == "configmap/special-config created\n"
    rows = assert_header(kube("-n", ns, "get", "configmap", "special-config").out, "NAME", "DATA", "AGE")
    assert rows[0]["DATA"] == "2" and re.fullmatch(AGE, rows[0]["AGE"])


def test_create_secret_generic(kube: Kube, ns: str) -> None:
    # Source: kubernetes.io/docs/tasks/configmap-secret/managing-secret-using-kubectl/
    # ("secret/db-user-pass created"; NAME TYPE DATA AGE, "db-user-pass   Opaque   2      51s").
    r = kube("-n", ns, "create", "secret", "generic", "db-user-pass", "--from-literal=username=admin",
             "--from-literal=password=S!B\\*d$zDsb=")
    assert r.out == "secret/db-user-pass created\n"
    rows = assert_header(kube("-n", ns, "get", "secret", "db-user-pass").out, "NAME", "TYPE", "DATA", "AGE")
    assert (rows[0]["TYPE"], rows[0]["DATA"]) == ("Opaque", "2")
    r = kube("-n", ns, "get", "secret", "db-user-pass", "-o", "jsonpath={.data.password}")
    assert base64.b64decode(r.out).decode() == "S!B\\*d$zDsb="


@pytest.fixture(scope="module")
def tls_pair(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    d = tmp_path_factory.mktemp("tls")
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", str(d / "tls.key"),
                    "-out", str(d / "tls.crt"), "-subj", "/CN=kc.example", "-days", "2"],
                   check=True, capture_output=True)
    return d / "tls.crt", d / "tls.key"


def test_create_secret_tls(kube: Kube, ns: str, tls_pair: tuple[Path, Path]) -> None:
    # Source: kubernetes.io/docs/concepts/configuration/secret/#tls-secrets and
    # kubernetes.io/docs/reference/kubectl/generated/kubectl_create/kubectl_create_secret_tls/:
    # type kubernetes.io/tls with tls.crt and tls.key (DATA 2).
    crt, key = tls_pair
    r = kube("-n", ns, "create", "secret", "tls", "tls-secret", f"--cert={crt}", f"--key={key}")
    assert r.out == "secret/tls-secret created\n"
    rows = assert_header(kube("-n", ns, "get", "secret", "tls-secret").out, "NAME", "TYPE", "DATA", "AGE")
    assert (rows[0]["TYPE"], rows[0]["DATA"]) == ("kubernetes.io/tls", "2")


def test_create_secret_docker_registry(kube: Kube, ns: str) -> None:
    # Source: kubernetes.io/docs/tasks/configure-pod-container/pull-image-private-registry/
    # (type kubernetes.io/dockerconfigjson with one key .dockerconfigjson).
    r = kube("-n", ns, "create", "secret", "docker-registry", "regcred", "--docker-server=registry.example",
             "--docker-username=u", "--docker-password=p", "--docker-email=u@example.com")
    assert r.out == "secret/regcred created\n"
    rows = assert_header(kube("-n", ns, "get", "secret", "regcred").out, "NAME", "TYPE", "DATA", "AGE")
    assert (rows[0]["TYPE"], rows[0]["DATA"]) == ("kubernetes.io/dockerconfigjson", "1")
    raw = kube("-n", ns, "get", "secret", "regcred", "-o", "jsonpath={.data.\\.dockerconfigjson}").out
    assert json.loads(base64.b64decode(raw))["auths"]["registry.example"]["username"] == "u"


def test_create_deployment(kube: Kube, ns: str) -> None:
    # Source: kubernetes/kubernetes test/cmd/apps.sh ("deployment.apps/test-nginx-apps created") and
    # kubernetes.io/docs/tutorials/hello-minikube/ (`kubectl get deployments` NAME READY UP-TO-DATE ...).
    r = kube("-n", ns, "create", "deployment", "hello", "--image=nginx:1.25", "--replicas=2", "--port=80")
    assert r.out == "deployment.apps/hello created\n"
    obj = json.loads(kube("-n", ns, "get", "deployment", "hello", "-o", "json").out)
    assert obj["metadata"]["labels"] == {"app": "hello"}
    assert obj["spec"]["selector"] == {"matchLabels": {"app": "hello"}}
    assert obj["spec"]["template"]["spec"]["containers"][0]["ports"] == [{"containerPort": 80, "protocol": "TCP"}]


def test_create_deployment_invalid_name(kube: Kube, ns: str) -> None:
    # Source: k8s.io/apimachinery pkg/util/validation/validation.go (RFC 1123 subdomain message) and
    # kubernetes/kubectl@v0.33.1 pkg/cmd/create/create_deployment.go ("failed to create deployment").
    r = kube("-n", ns, "create", "deployment", "Bad_Name", "--image=nginx", rc=1)
    assert r.err == ('error: failed to create deployment: Deployment.apps "Bad_Name" is invalid: metadata.name: '
                     'Invalid value: "Bad_Name": a lowercase RFC 1123 subdomain must consist of lower case '
                     "alphanumeric characters, '-' or '.', and must start and end with an alphanumeric "
                     "character (e.g. 'example.com', regex used for validation is "
                     "'[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*')\n")


def test_create_job(kube: Kube, ns: str) -> None:
    # Source: kubernetes/kubernetes test/cmd/create.sh ("job.batch/test-job created") and
    # kubernetes.io/docs/concepts/workloads/controllers/job/ (NAME STATUS COMPLETIONS DURATION AGE;
    # STATUS column is new in 1.31+, printers.go jobColumnDefinitions).
    r = kube("-n", ns, "create", "job", "pi", "--image=busybox", "--", "echo", "hi")
    assert r.out == "job.batch/pi created\n"
    kube("-n", ns, "wait", "--for=condition=Complete", "job/pi", "--timeout=60s")
    rows = assert_header(kube("-n", ns, "get", "job", "pi").out, "NAME", "STATUS", "COMPLETIONS", "DURATION", "AGE")
    assert (rows[0]["STATUS"], rows[0]["COMPLETIONS"]) == ("Complete", "1/1")
    rows = assert_header(kube("-n", ns, "get", "job", "pi", "-o", "wide").out, "NAME", "STATUS", "COMPLETIONS",
                         "DURATION", "AGE", "CONTAINERS", "IMAGES", "SELECTOR")
    assert rows[0]["IMAGES"] == "busybox" and re.fullmatch(r"batch\.kubernetes\.io/controller-uid=[0-9a-f-]{36}",
                                                           rows[0]["SELECTOR"])


def test_create_cronjob(kube: Kube, ns: str) -> None:
    # Source: kubernetes.io/docs/tasks/job/automated-tasks-with-cron-jobs/ (NAME SCHEDULE TIMEZONE SUSPEND
    # ACTIVE LAST SCHEDULE AGE; "hello   * * * * *   <none>     False     0        <none>          10s").
    r = kube("-n", ns, "create", "cronjob", "hello", "--image=busybox", "--schedule=*/5 * * * *", "--", "date")
    assert r.out == "cronjob.batch/hello created\n"
    rows = assert_header(kube("-n", ns, "get", "cronjob", "hello").out, "NAME", "SCHEDULE", "TIMEZONE", "SUSPEND",
                         "ACTIVE", "LAST SCHEDULE", "AGE")
    assert [rows[0][k] for k in ("SCHEDULE", "TIMEZONE", "SUSPEND", "ACTIVE", "LAST SCHEDULE")] == [
        "*/5 * * * *", "<none>", "False", "0", "<none>"]


def test_create_service_clusterip(kube: Kube, ns: str) -> None:
    # Source: kubernetes/kubernetes test/cmd/create.sh ("service/my-service created") and
    # kubernetes.io/docs/concepts/services-networking/service/ (NAME TYPE CLUSTER-IP EXTERNAL-IP PORT(S) AGE).
    r = kube("-n", ns, "create", "service", "clusterip", "my-svc", "--tcp=5678:8080")
    assert r.out == "service/my-svc created\n"
    rows = assert_header(kube("-n", ns, "get", "service", "my-svc").out, "NAME", "TYPE", "CLUSTER-IP",
                         "EXTERNAL-IP", "PORT(S)", "AGE")
    assert (rows[0]["TYPE"], rows[0]["EXTERNAL-IP"], rows[0]["PORT(S)"]) == ("ClusterIP", "<none>", "5678/TCP")
    assert re.fullmatch(r"\d+\.\d+\.\d+\.\d+", rows[0]["CLUSTER-IP"])
    rows = assert_header(kube("-n", ns, "get", "service", "my-svc", "-o", "wide").out, "NAME", "TYPE",
                         "CLUSTER-IP", "EXTERNAL-IP", "PORT(S)", "AGE", "SELECTOR")
    assert rows[0]["SELECTOR"] == "app=my-svc"
    r = kube("-n", ns, "create", "service", "clusterip", "headless", "--clusterip=None")
    rows = assert_header(kube("-n", ns, "get", "service", "headless").out, "NAME", "TYPE", "CLUSTER-IP",
                         "EXTERNAL-IP", "PORT(S)", "AGE")
    assert (rows[0]["CLUSTER-IP"], rows[0]["PORT(S)"]) == ("None", "<none>")


def test_create_service_nodeport(kube: Kube, ns: str) -> None:
    # Source: kubernetes.io/docs/concepts/services-networking/service/#type-nodeport (PORT(S) as
    # "80:3xxxx/TCP", node ports from 30000-32767).
    r = kube("-n", ns, "create", "service", "nodeport", "my-np", "--tcp=80:8080")
    assert r.out == "service/my-np created\n"
    rows = assert_header(kube("-n", ns, "get", "service", "my-np").out, "NAME", "TYPE", "CLUSTER-IP",
                         "EXTERNAL-IP", "PORT(S)", "AGE")
    m = re.fullmatch(r"80:(\d+)/TCP", rows[0]["PORT(S)"])
    assert rows[0]["TYPE"] == "NodePort" and m and 30000 <= int(m.group(1)) <= 32767


def test_create_serviceaccount(kube: Kube, ns: str) -> None:
    # Source: kubernetes.io/docs/tasks/configure-pod-container/configure-service-account/
    # ("serviceaccount/build-robot created"; NAME SECRETS AGE with SECRETS 0 since 1.24).
    r = kube("-n", ns, "create", "serviceaccount", "build-robot")
    assert r.out == "serviceaccount/build-robot created\n"
    rows = assert_header(kube("-n", ns, "get", "serviceaccount", "build-robot").out, "NAME", "SECRETS", "AGE")
    assert rows[0]["SECRETS"] == "0"


def test_create_role_and_rolebinding(kube: Kube, ns: str) -> None:
    # Source: kubernetes/kubernetes test/cmd/rbac.sh and kubernetes.io/docs/reference/access-authn-authz/rbac/
    # ("role.rbac.authorization.k8s.io/pod-reader created"); roles print NAME CREATED AT, rolebindings
    # NAME ROLE AGE (printers.go roleColumnDefinitions / roleBindingsColumnDefinitions).
    r = kube("-n", ns, "create", "role", "pod-reader", "--verb=get,list,watch", "--resource=pods")
    assert r.out == "role.rbac.authorization.k8s.io/pod-reader created\n"
    rows = assert_header(kube("-n", ns, "get", "role", "pod-reader").out, "NAME", "CREATED AT")
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ", rows[0]["CREATED AT"])
    rules = json.loads(kube("-n", ns, "get", "role", "pod-reader", "-o", "jsonpath={.rules}").out)
    assert rules == [{"apiGroups": [""], "resources": ["pods"], "verbs": ["get", "list", "watch"]}]
    r = kube("-n", ns, "create", "rolebinding", "read-pods", "--role=pod-reader", "--user=jane")
    assert r.out == "rolebinding.rbac.authorization.k8s.io/read-pods created\n"
    rows = assert_header(kube("-n", ns, "get", "rolebinding", "read-pods", "-o", "wide").out, "NAME", "ROLE",
                         "AGE", "USERS", "GROUPS", "SERVICEACCOUNTS")
    assert (rows[0]["ROLE"], rows[0]["USERS"]) == ("Role/pod-reader", "jane")


def test_create_clusterrole_and_binding(kube: Kube) -> None:
    # Source: kubernetes/kubernetes test/cmd/rbac.sh ("clusterrole.rbac.authorization.k8s.io/pod-admin
    # created") and kubernetes.io/docs/reference/access-authn-authz/rbac/.
    r = kube("create", "clusterrole", "kc-node-reader", "--verb=get,list", "--resource=nodes")
    assert r.out == "clusterrole.rbac.authorization.k8s.io/kc-node-reader created\n"
    assert_header(kube("get", "clusterrole", "kc-node-reader").out, "NAME", "CREATED AT")
    r = kube("create", "clusterrolebinding", "kc-read-nodes", "--clusterrole=kc-node-reader", "--group=ops")
    assert r.out == "clusterrolebinding.rbac.authorization.k8s.io/kc-read-nodes created\n"
    rows = assert_header(kube("get", "clusterrolebinding", "kc-read-nodes").out, "NAME", "ROLE", "AGE")
    assert rows[0]["ROLE"] == "ClusterRole/kc-node-reader"
    kube("delete", "clusterrolebinding", "kc-read-nodes")
    kube("delete", "clusterrole", "kc-node-reader")


def test_create_quota(kube: Kube, ns: str) -> None:
    # Source: kubernetes/kubernetes test/cmd/create.sh / core.sh ("resourcequota/test-quota created").
    r = kube("-n", ns, "create", "quota", "best-effort", "--hard=pods=10,services=5")
    assert r.out == "resourcequota/best-effort created\n"
    assert_header(kube("-n", ns, "get", "quota", "best-effort").out, "NAME", "REQUEST", "LIMIT", "AGE")


def test_quota_usage(kube: Kube, ns: str) -> None:
    # Source: kubernetes.io/docs/concepts/policy/resource-quotas/ (`kubectl describe quota` prints
    # "Resource  Used  Hard" rows, e.g. "pods  0  10") and printers.go printResourceQuota (REQUEST as
    # "pods: 0/10, services: 0/5").
    kube("-n", ns, "create", "quota", "counts", "--hard=pods=10,services=5")
    kube("-n", ns, "wait", "--for=jsonpath={.status.hard.pods}=10", "resourcequota/counts", "--timeout=10s",
         rc=None)
    rows = assert_header(kube("-n", ns, "get", "quota", "counts").out, "NAME", "REQUEST", "LIMIT", "AGE")
    assert rows[0]["REQUEST"] == "pods: 0/10, services: 0/5"
    r = kube("-n", ns, "describe", "quota", "counts")
    assert r.out == (f"Name:       counts\nNamespace:  {ns}\nResource    Used  Hard\n--------    ----  ----\n"
                     "pods        0     10\nservices    0     5\n")


def test_create_priorityclass(kube: Kube) -> None:
    # Source: kubernetes.io/docs/concepts/scheduling-eviction/pod-priority-preemption/ and
    # printers.go priorityClassColumnDefinitions: NAME VALUE GLOBAL-DEFAULT AGE PREEMPTIONPOLICY.
    r = kube("create", "priorityclass", "kc-high", "--value=1000", "--description=high priority")
    assert r.out == "priorityclass.scheduling.k8s.io/kc-high created\n"
    rows = assert_header(kube("get", "priorityclass", "kc-high").out, "NAME", "VALUE", "GLOBAL-DEFAULT", "AGE",
                         "PREEMPTIONPOLICY")
    assert [rows[0][k] for k in ("VALUE", "GLOBAL-DEFAULT", "PREEMPTIONPOLICY")] == [
        "1000", "false", "PreemptLowerPriority"]
    kube("delete", "priorityclass", "kc-high")


def test_builtin_priorityclasses(kube: Kube) -> None:
    # Source: kubernetes.io/docs/concepts/scheduling-eviction/pod-priority-preemption/ ("Kubernetes already
    # ships with two PriorityClasses: system-cluster-critical and system-node-critical"); values
    # 2000000000 and 2000001000 (kubernetes.io/docs/tasks/administer-cluster/guaranteed-scheduling-critical-addon-pods/).
    r = kube("get", "priorityclass", "system-cluster-critical", "system-node-critical", rc=None)
    rows = assert_header(r.out, "NAME", "VALUE", "GLOBAL-DEFAULT", "AGE", "PREEMPTIONPOLICY")
    assert [(x["NAME"], x["VALUE"]) for x in rows] == [("system-cluster-critical", "2000000000"),
                                                      ("system-node-critical", "2000001000")]


def test_create_poddisruptionbudget(kube: Kube, ns: str) -> None:
    # Source: kubernetes.io/docs/tasks/run-application/configure-pdb/ (NAME MIN AVAILABLE MAX UNAVAILABLE
    # ALLOWED DISRUPTIONS AGE; "zk-pdb   2   N/A   0   7s").
    r = kube("-n", ns, "create", "poddisruptionbudget", "zk-pdb", "--selector=app=zk", "--min-available=2")
    assert r.out == "poddisruptionbudget.policy/zk-pdb created\n"
    rows = assert_header(kube("-n", ns, "get", "pdb", "zk-pdb").out, "NAME", "MIN AVAILABLE", "MAX UNAVAILABLE",
                         "ALLOWED DISRUPTIONS", "AGE")
    assert [rows[0][k] for k in ("MIN AVAILABLE", "MAX UNAVAILABLE", "ALLOWED DISRUPTIONS")] == ["2", "N/A", "0"]


def test_create_ingress(kube: Kube, ns: str) -> None:
    # Source: kubernetes.io/docs/concepts/services-networking/ingress/ (NAME CLASS HOSTS ADDRESS PORTS AGE)
    # and kubectl_create_ingress reference (rule "host/path=service:port").
    r = kube("-n", ns, "create", "ingress", "simple", "--rule=foo.com/bar=svc1:8080")
    assert r.out == "ingress.networking.k8s.io/simple created\n"
    rows = assert_header(kube("-n", ns, "get", "ingress", "simple").out, "NAME", "CLASS", "HOSTS", "ADDRESS",
                         "PORTS", "AGE")
    assert [rows[0][k] for k in ("CLASS", "HOSTS", "ADDRESS", "PORTS")] == ["<none>", "foo.com", "", "80"]
    spec = json.loads(kube("-n", ns, "get", "ingress", "simple", "-o", "jsonpath={.spec.rules[0]}").out)
    assert spec == {"host": "foo.com", "http": {"paths": [{"backend": {"service": {
        "name": "svc1", "port": {"number": 8080}}}, "path": "/bar", "pathType": "Exact"}]}}


def test_create_from_file_already_exists(kube: Kube, ns: str) -> None:
    # Source: kubernetes/kubernetes test/cmd/create.sh ('Error from server (AlreadyExists): error when
    # creating "...": ... already exists'); exit code 1.
    doc = f"apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: dup\n  namespace: {ns}\n"
    assert kube("create", "-f", "-", input=doc).out == "configmap/dup created\n"
    r = kube("create", "-f", "-", input=doc, rc=1)
    assert r.err == 'Error from server (AlreadyExists): error when creating "STDIN": configmaps "dup" already exists\n'


def test_create_dry_run_server(kube: Kube, ns: str) -> None:
    # Source: kubernetes.io/docs/reference/kubectl/generated/kubectl_create/ (--dry-run=server suffixes
    # "(server dry run)" and stores nothing).
    r = kube("-n", ns, "create", "configmap", "ghost", "--from-literal=a=b", "--dry-run=server")
    assert r.out == "configmap/ghost created (server dry run)\n"
    r = kube("-n", ns, "get", "configmap", "ghost", rc=1)
    assert r.err == 'Error from server (NotFound): configmaps "ghost" not found\n'
