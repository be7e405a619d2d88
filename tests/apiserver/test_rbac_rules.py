"""RBAC rule matching, covering, escalation messages and the bootstrap policy data (pure)."""

from __future__ import annotations

import pytest

from pykube_server.apiserver.authn import UserInfo
from pykube_server.apiserver.authz import RequestAttributes
from pykube_server.apiserver.rbac import bootstrap
from pykube_server.apiserver.rbac.escalation import compact_string, covers, not_held_message, only_gc_fields
from pykube_server.apiserver.rbac.rules import Rule, rule_allows
from pykube_server.controllers.clusterroleaggregation import aggregated_rules

ALICE = UserInfo("alice", groups=("devs", "system:authenticated"))


def res(verb: str, resource: str, *, group: str = "", sub: str = "", name: str = "", ns: str = "default") -> RequestAttributes:
    return RequestAttributes(user=ALICE, verb=verb, namespace=ns, api_group=group, resource=resource,
                             subresource=sub, name=name, resource_request=True)


def url(verb: str, path: str) -> RequestAttributes:
    return RequestAttributes(user=ALICE, verb=verb, path=path)


@pytest.mark.parametrize("rule, attrs, allowed", [
    ({"verbs": ["get"], "apiGroups": [""], "resources": ["pods"]}, res("get", "pods", name="p"), True),
    ({"verbs": ["get"], "apiGroups": [""], "resources": ["pods"]}, res("list", "pods"), False),
    ({"verbs": ["*"], "apiGroups": [""], "resources": ["pods"]}, res("delete", "pods", name="p"), True),
    ({"verbs": ["get"], "apiGroups": ["apps"], "resources": ["pods"]}, res("get", "pods"), False),
    ({"verbs": ["get"], "apiGroups": ["*"], "resources": ["deployments"]}, res("get", "deployments", group="apps"), True),
    # a subresource needs its own grant ...
    ({"verbs": ["get"], "apiGroups": [""], "resources": ["pods"]}, res("get", "pods", sub="log", name="p"), False),
    ({"verbs": ["get"], "apiGroups": [""], "resources": ["pods/log"]}, res("get", "pods", sub="log", name="p"), True),
    ({"verbs": ["get"], "apiGroups": [""], "resources": ["pods/log"]}, res("get", "pods", name="p"), False),
    # ... or `*/<sub>`, which covers that subresource of every resource but no resource itself
    ({"verbs": ["update"], "apiGroups": ["*"], "resources": ["*/scale"]}, res("update", "deployments", group="apps", sub="scale"), True),
    ({"verbs": ["update"], "apiGroups": ["*"], "resources": ["*/scale"]}, res("update", "deployments", group="apps"), False),
    ({"verbs": ["get"], "apiGroups": [""], "resources": ["*"]}, res("get", "pods", sub="status"), True),
    # resourceNames restrict to named objects; a request without a name does not match
    ({"verbs": ["get", "list"], "apiGroups": [""], "resources": ["configmaps"], "resourceNames": ["a"]},
     res("get", "configmaps", name="a"), True),
    ({"verbs": ["get", "list"], "apiGroups": [""], "resources": ["configmaps"], "resourceNames": ["a"]},
     res("get", "configmaps", name="b"), False),
    ({"verbs": ["get", "list"], "apiGroups": [""], "resources": ["configmaps"], "resourceNames": ["a"]},
     res("list", "configmaps"), False),
    # non-resource URLs: exact, `*`, and a `*` suffix as a prefix match
    ({"verbs": ["get"], "nonResourceURLs": ["/healthz"]}, url("get", "/healthz"), True),
    ({"verbs": ["get"], "nonResourceURLs": ["/healthz"]}, url("get", "/healthz/etcd"), False),
    ({"verbs": ["get"], "nonResourceURLs": ["/apis/*"]}, url("get", "/apis/apps/v1"), True),
    ({"verbs": ["get"], "nonResourceURLs": ["/apis/*"]}, url("get", "/apis"), False),
    ({"verbs": ["get"], "nonResourceURLs": ["*"]}, url("get", "/anything"), True),
    ({"verbs": ["get"], "nonResourceURLs": ["/healthz"]}, url("post", "/healthz"), False),
    # resource rules never match a path, URL rules never match a resource
    ({"verbs": ["*"], "apiGroups": ["*"], "resources": ["*"]}, url("get", "/healthz"), False),
    ({"verbs": ["*"], "nonResourceURLs": ["*"]}, res("get", "pods"), False),
])
def test_rule_matching(rule: dict, attrs: RequestAttributes, allowed: bool) -> None:
    assert rule_allows(Rule.parse(rule), attrs) is allowed


def test_covers_breaks_rules_down_and_reports_what_is_missing() -> None:
    owner = [{"verbs": ["get", "list"], "apiGroups": [""], "resources": ["pods", "services"]},
             {"verbs": ["*"], "apiGroups": ["apps"], "resources": ["*/scale"]},
             {"verbs": ["get"], "apiGroups": [""], "resources": ["secrets"], "resourceNames": ["s1"]}]
    assert covers(owner, [{"verbs": ["get"], "apiGroups": [""], "resources": ["pods"]}]) == (True, [])
    assert covers(owner, [{"verbs": ["patch"], "apiGroups": ["apps"], "resources": ["deployments/scale"]}])[0]
    assert covers(owner, [{"verbs": ["get"], "apiGroups": [""], "resources": ["secrets"], "resourceNames": ["s1"]}])[0]
    # a named grant does not cover every name
    assert not covers(owner, [{"verbs": ["get"], "apiGroups": [""], "resources": ["secrets"]}])[0]
    ok, missing = covers(owner, [{"verbs": ["get", "create", "delete"], "apiGroups": [""], "resources": ["pods"]}])
    assert not ok
    assert missing == [{"apiGroups": [""], "resources": ["pods"], "verbs": ["create"]},
                       {"apiGroups": [""], "resources": ["pods"], "verbs": ["delete"]}]
    assert covers([{"verbs": ["get"], "nonResourceURLs": ["/apis/*"]}],
                  [{"verbs": ["get"], "nonResourceURLs": ["/apis/apps"]}])[0]


def test_not_held_message_is_kubes() -> None:
    _, missing = covers([], [{"verbs": ["get", "list", "create", "patch"], "apiGroups": [""], "resources": ["secrets"]},
                             {"verbs": ["get"], "nonResourceURLs": ["/metrics"]}])
    user = UserInfo("system:serviceaccount:dev:developer",
                    groups=("system:serviceaccounts", "system:serviceaccounts:dev", "system:authenticated"))
    assert not_held_message(user, missing, []) == (
        'user "system:serviceaccount:dev:developer" (groups=["system:serviceaccounts" "system:serviceaccounts:dev" '
        '"system:authenticated"]) is attempting to grant RBAC permissions not currently held:\n'
        '{APIGroups:[""], Resources:["secrets"], Verbs:["get" "list" "create" "patch"]}\n'
        '{NonResourceURLs:["/metrics"], Verbs:["get"]}')
    assert compact_string({"apiGroups": ["apps"], "resources": ["deployments"], "resourceNames": ["a"],
                           "verbs": ["get"]}) == '{APIGroups:["apps"], Resources:["deployments"], ResourceNames:["a"], Verbs:["get"]}'


def test_only_gc_fields_ignores_owner_references_and_finalizers_but_not_labels() -> None:
    old = {"metadata": {"name": "r", "resourceVersion": "1"}, "rules": []}
    assert only_gc_fields({"metadata": {"name": "r", "finalizers": ["x"], "ownerReferences": [{"uid": "u"}]},
                           "rules": []}, old)
    assert not only_gc_fields({"metadata": {"name": "r", "labels": {"a": "b"}}, "rules": []}, old)
    assert not only_gc_fields({"metadata": {"name": "r"}, "rules": [{"verbs": ["get"]}]}, old)


def test_bootstrap_policy_shape() -> None:
    roles = {r["metadata"]["name"]: r for r in bootstrap.cluster_roles()}
    bindings = {b["metadata"]["name"]: b for b in bootstrap.cluster_role_bindings()}
    for name in ("cluster-admin", "admin", "edit", "view", "system:basic-user", "system:discovery",
                 "system:public-info-viewer", "system:kube-scheduler", "system:kube-controller-manager", "system:node",
                 "system:node-proxier", "system:kube-dns", "system:monitoring", "system:auth-delegator",
                 "system:volume-scheduler", "system:certificates.k8s.io:kubelet-serving-approver",
                 "system:controller:namespace-controller"):
        assert name in roles, name
        assert roles[name]["metadata"]["labels"]["kubernetes.io/bootstrapping"] == "rbac-defaults"
        assert roles[name]["metadata"]["annotations"] == {"rbac.authorization.kubernetes.io/autoupdate": "true"}
    # every binding points at a bootstrap role
    for binding in bindings.values():
        assert binding["roleRef"]["name"] in roles
    assert bindings["cluster-admin"]["subjects"] == [
        {"apiGroup": "rbac.authorization.k8s.io", "kind": "Group", "name": "system:masters"}]
    assert [s["name"] for s in bindings["system:public-info-viewer"]["subjects"]] == [
        "system:authenticated", "system:unauthenticated"]
    assert "subjects" not in bindings["system:node"]  # kubelets are authorized by the Node authorizer
    assert roles["view"]["aggregationRule"] == {"clusterRoleSelectors": [
        {"matchLabels": {"rbac.authorization.k8s.io/aggregate-to-view": "true"}}]}
    assert "rules" not in roles["admin"]
    assert roles["edit"]["metadata"]["labels"]["rbac.authorization.k8s.io/aggregate-to-admin"] == "true"


def test_aggregation_unions_selected_roles_in_name_order_without_duplicates() -> None:
    roles = [{"metadata": {"name": r["metadata"]["name"], "labels": r["metadata"].get("labels", {})},
              "rules": r.get("rules", []), "aggregationRule": r.get("aggregationRule")}
             for r in bootstrap.cluster_roles()]
    view = next(r for r in roles if r["metadata"]["name"] == "view")
    assert aggregated_rules(view, roles) == bootstrap.AGGREGATE_TO_VIEW
    extra = {"metadata": {"name": "a-first", "labels": {"rbac.authorization.k8s.io/aggregate-to-view": "true"}},
             "rules": [{"verbs": ["get"], "apiGroups": ["example.com"], "resources": ["widgets"]},
                       bootstrap.AGGREGATE_TO_VIEW[0]]}
    rules = aggregated_rules(view, [*roles, extra])
    assert rules[0] == extra["rules"][0]
    assert rules.count(bootstrap.AGGREGATE_TO_VIEW[0]) == 1
    assert len(rules) == len(bootstrap.AGGREGATE_TO_VIEW) + 1


def test_reconcile_adds_missing_rules_and_subjects_only() -> None:
    expected = next(r for r in bootstrap.cluster_roles() if r["metadata"]["name"] == "system:basic-user")
    current = {"metadata": {"name": "system:basic-user", "labels": {"mine": "x"}},
               "rules": [{"verbs": ["create"], "apiGroups": ["authorization.k8s.io"],
                          "resources": ["selfsubjectaccessreviews"]}, {"verbs": ["get"], "nonResourceURLs": ["/x"]}]}
    updated = bootstrap.reconcile_role(current, expected)
    assert updated is not None
    assert updated["rules"][:2] == current["rules"]  # nothing removed
    assert covers(updated["rules"], expected["rules"])[0]
    assert updated["metadata"]["labels"] == {"mine": "x", "kubernetes.io/bootstrapping": "rbac-defaults"}
    assert bootstrap.reconcile_role(updated, expected) is None
    binding = next(b for b in bootstrap.cluster_role_bindings() if b["metadata"]["name"] == "system:basic-user")
    mine = {"metadata": {"name": "system:basic-user"}, "roleRef": binding["roleRef"],
            "subjects": [{"kind": "User", "name": "me", "apiGroup": "rbac.authorization.k8s.io"}]}
    merged = bootstrap.reconcile_binding(mine, binding)
    assert merged is not None and [s["name"] for s in merged["subjects"]] == ["me", "system:authenticated"]
