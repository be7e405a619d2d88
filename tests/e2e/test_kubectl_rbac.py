"""RBAC end to end: the real kubectl against `pykube-server up` (Node,RBAC, the default).

What a real 1.33 cluster answers: the bootstrap policy exists, a ServiceAccount bound to `view`
reads but may not delete, `kubectl auth can-i` (and `--list`) answer from the bindings,
escalation through Roles and bindings is refused with kube's message, and aggregated
ClusterRoles pick up new rules (the clusterrole-aggregation controller).
"""

from __future__ import annotations

import json
import time
import uuid

import pytest

from tests.conftest import ServerProcess, requires_kubectl

pytestmark = requires_kubectl


def _wait(predicate, timeout: float = 20.0) -> None:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError("condition not met in time")
        time.sleep(0.2)


def test_bootstrap_policy_exists(cluster: ServerProcess) -> None:
    out = cluster.kubectl("get", "clusterroles", "-o", "name").stdout.split()
    for name in ("cluster-admin", "admin", "edit", "view", "system:basic-user", "system:discovery",
                 "system:public-info-viewer", "system:kube-scheduler", "system:kube-controller-manager",
                 "system:node", "system:node-proxier", "system:controller:namespace-controller"):
        assert f"clusterrole.rbac.authorization.k8s.io/{name}" in out
    binding = json.loads(cluster.kubectl("get", "clusterrolebinding", "cluster-admin", "-o", "json").stdout)
    assert binding["roleRef"] == {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": "cluster-admin"}
    assert binding["subjects"] == [{"apiGroup": "rbac.authorization.k8s.io", "kind": "Group", "name": "system:masters"}]
    assert binding["metadata"]["annotations"] == {"rbac.authorization.kubernetes.io/autoupdate": "true"}
    # view is filled by aggregation from system:aggregate-to-view
    _wait(lambda: "pods/log" in cluster.kubectl("get", "clusterrole", "view", "-o", "json").stdout)


def test_service_account_bound_to_view_reads_but_cannot_delete(cluster: ServerProcess, namespace: str) -> None:
    sa = f"system:serviceaccount:{namespace}:reader"
    cluster.kubectl("-n", namespace, "create", "serviceaccount", "reader")
    cluster.kubectl("-n", namespace, "create", "rolebinding", "reader-view", "--clusterrole=view",
                    f"--serviceaccount={namespace}:reader")
    _wait(lambda: cluster.kubectl("-n", namespace, "get", "pods", f"--as={sa}", check=False).returncode == 0)
    denied = cluster.kubectl("-n", namespace, "delete", "pod", "x", f"--as={sa}", check=False)
    assert denied.returncode == 1
    assert denied.stderr.strip() == (
        f'Error from server (Forbidden): pods "x" is forbidden: User "{sa}" cannot delete resource "pods" '
        f'in API group "" in the namespace "{namespace}"')
    assert cluster.kubectl("-n", namespace, "auth", "can-i", "list", "pods", f"--as={sa}").stdout == "yes\n"
    no = cluster.kubectl("-n", namespace, "auth", "can-i", "create", "pods", f"--as={sa}", check=False)
    assert (no.returncode, no.stdout) == (1, "no\n")
    other = cluster.kubectl("-n", "default", "auth", "can-i", "list", "pods", f"--as={sa}", check=False)
    assert other.stdout == "no\n"
    cluster.kubectl("-n", namespace, "create", "rolebinding", "reader-edit", "--clusterrole=edit",
                    f"--serviceaccount={namespace}:reader")
    _wait(lambda: cluster.kubectl("-n", namespace, "auth", "can-i", "create", "pods", f"--as={sa}",
                                  check=False).stdout == "yes\n")


def test_auth_can_i_list_for_a_user_without_bindings(cluster: ServerProcess) -> None:
    out = cluster.kubectl("auth", "can-i", "--list", "--as=nobody-in-particular").stdout.splitlines()
    assert out[0].split() == ["Resources", "Non-Resource", "URLs", "Resource", "Names", "Verbs"]
    rows = [line.split() for line in out[1:]]
    assert ["selfsubjectaccessreviews.authorization.k8s.io", "[]", "[]", "[create]"] in rows
    assert ["selfsubjectreviews.authentication.k8s.io", "[]", "[]", "[create]"] in rows
    assert ["[/api/*]", "[]", "[get]"] in rows
    assert ["[/version]", "[]", "[get]"] in rows
    assert not any(row[0] == "*.*" for row in rows)
    admin = cluster.kubectl("auth", "can-i", "--list").stdout.splitlines()
    assert admin[1].split() == ["*.*", "[]", "[]", "[*]"]


def test_impersonation_needs_the_impersonate_verb(cluster: ServerProcess) -> None:
    result = cluster.kubectl("get", "pods", "--as=alice-imp", "--as-group=devs", "-n", "default", check=False)
    assert "pods is forbidden" in result.stderr  # the admin may impersonate; alice may not list
    whoami = json.loads(cluster.kubectl("auth", "whoami", "--as=alice-imp", "--as-group=devs", "-o", "json").stdout)
    assert whoami["status"]["userInfo"] == {"username": "alice-imp", "groups": ["devs", "system:authenticated"]}


def test_escalation_is_refused_with_kubes_message(cluster: ServerProcess, namespace: str) -> None:
    user = f"esc-{uuid.uuid4().hex[:6]}"
    cluster.kubectl("-n", namespace, "create", "role", "role-writer", "--verb=create,get,update",
                    "--resource=roles.rbac.authorization.k8s.io,rolebindings.rbac.authorization.k8s.io,pods")
    cluster.kubectl("-n", namespace, "create", "rolebinding", "role-writer", "--role=role-writer", f"--user={user}")
    _wait(lambda: cluster.kubectl("-n", namespace, "auth", "can-i", "create", "roles", f"--as={user}",
                                  check=False).stdout == "yes\n")
    # permissions the user holds may be granted
    cluster.kubectl("-n", namespace, "create", "role", "ok", "--verb=get", "--resource=pods", f"--as={user}")
    refused = cluster.kubectl("-n", namespace, "create", "role", "too-much", "--verb=get,delete,list",
                              "--resource=pods,secrets", f"--as={user}", check=False)
    assert refused.returncode == 1
    assert refused.stderr.strip() == (
        f'Error from server (Forbidden): roles.rbac.authorization.k8s.io "too-much" is forbidden: user "{user}" '
        f'(groups=["system:authenticated"]) is attempting to grant RBAC permissions not currently held:\n'
        '{APIGroups:[""], Resources:["pods"], Verbs:["delete" "list"]}\n'
        '{APIGroups:[""], Resources:["secrets"], Verbs:["get" "delete" "list"]}')
    # binding a role whose permissions the user lacks is refused; one it holds is fine
    bind = cluster.kubectl("-n", namespace, "create", "rolebinding", "b", "--clusterrole=edit", f"--user={user}",
                           f"--as={user}", check=False)
    assert bind.returncode == 1
    assert 'rolebindings.rbac.authorization.k8s.io "b" is forbidden: user' in bind.stderr
    assert "is attempting to grant RBAC permissions not currently held" in bind.stderr
    cluster.kubectl("-n", namespace, "create", "rolebinding", "b2", "--role=ok", "--user=someone", f"--as={user}")


def test_aggregation_collects_labelled_cluster_roles(cluster: ServerProcess) -> None:
    name = f"widgets-{uuid.uuid4().hex[:6]}"
    cluster.kubectl("apply", "-f", "-", input=json.dumps({
        "apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRole",
        "metadata": {"name": name, "labels": {"rbac.authorization.k8s.io/aggregate-to-view": "true"}},
        "rules": [{"apiGroups": ["example.com"], "resources": ["widgets"], "verbs": ["get", "list"]}]}))

    def has_widgets(role: str) -> bool:
        rules = json.loads(cluster.kubectl("get", "clusterrole", role, "-o", "json").stdout).get("rules") or []
        return {"apiGroups": ["example.com"], "resources": ["widgets"], "verbs": ["get", "list"]} in rules

    _wait(lambda: has_widgets("view") and has_widgets("edit") and has_widgets("admin"))
    cluster.kubectl("delete", "clusterrole", name)
    _wait(lambda: not has_widgets("view") and not has_widgets("admin"))


SAR = ("create", "--raw", "/apis/authorization.k8s.io/v1/subjectaccessreviews", "-f", "-")


def test_subject_access_review(cluster: ServerProcess) -> None:
    review = {"apiVersion": "authorization.k8s.io/v1", "kind": "SubjectAccessReview",
              "spec": {"user": "system:kube-scheduler", "resourceAttributes": {"verb": "create", "resource": "pods",
                                                                               "subresource": "binding", "namespace": "x"}}}
    out = json.loads(cluster.kubectl(*SAR, input=json.dumps(review)).stdout)
    assert out["status"] == {"allowed": True, "reason": 'RBAC: allowed by ClusterRoleBinding "system:kube-scheduler" '
                                                        'of ClusterRole "system:kube-scheduler" to User "system:kube-scheduler"'}
    review["spec"]["resourceAttributes"]["verb"] = "delete"
    review["spec"]["resourceAttributes"]["subresource"] = ""
    review["spec"]["user"] = "nobody"
    out = json.loads(cluster.kubectl(*SAR, input=json.dumps(review)).stdout)
    assert out["status"] == {"allowed": False}
    del review["spec"]["user"]
    bad = cluster.kubectl(*SAR, input=json.dumps(review), check=False)
    assert bad.stderr == ('The SubjectAccessReview "" is invalid: spec.user: Invalid value: "": '
                          'at least one of user or group must be specified\n')


def test_local_subject_access_review(cluster: ServerProcess, namespace: str) -> None:
    cluster.kubectl("-n", namespace, "create", "rolebinding", "lsar", "--clusterrole=system:aggregate-to-view",
                    "--user=lsar-user")
    path = f"/apis/authorization.k8s.io/v1/namespaces/{namespace}/localsubjectaccessreviews"
    review = {"apiVersion": "authorization.k8s.io/v1", "kind": "LocalSubjectAccessReview",
              "spec": {"user": "lsar-user", "resourceAttributes": {"verb": "list", "resource": "pods",
                                                                   "namespace": namespace}}}

    def status() -> dict:
        return json.loads(cluster.kubectl("create", "--raw", path, "-f", "-", input=json.dumps(review)).stdout)["status"]

    _wait(lambda: status().get("allowed"))
    assert status()["reason"] == (f'RBAC: allowed by RoleBinding "lsar/{namespace}" of ClusterRole '
                                  f'"system:aggregate-to-view" to User "lsar-user"')
    review["spec"]["resourceAttributes"]["namespace"] = "elsewhere"
    bad = cluster.kubectl("create", "--raw", path, "-f", "-", input=json.dumps(review), check=False)
    assert bad.stderr == ('The LocalSubjectAccessReview "" is invalid: spec.resourceAttributes.namespace: '
                          'Invalid value: "elsewhere": must match metadata.namespace\n')


@pytest.mark.parametrize("path", ["/healthz", "/version"])
def test_public_info_is_readable_by_anyone_authenticated(cluster: ServerProcess, path: str) -> None:
    assert cluster.kubectl("get", "--raw", path, "--as=nobody").returncode == 0
