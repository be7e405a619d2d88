"""Which requests a webhook's rules, scope and selectors match (k8s.io/apiserver webhook predicates)."""

from __future__ import annotations

import pytest

from pykube_server.apiserver.admission import Attributes
from pykube_server.apiserver.admission.webhook import matching
from pykube_server.apiserver.authn import ANONYMOUS


def attrs(resource: str = "pods", subresource: str = "", namespace: str = "ns", operation: str = "CREATE",
          group: str = "", version: str = "v1", obj: dict | None = None, old: dict | None = None) -> Attributes:
    return Attributes(operation, group, version, resource, subresource, "Kind", namespace, "n", ANONYMOUS,
                      obj=obj, old=old)


def rule(resources: list[str], **extra: object) -> dict:
    return {"operations": ["*"], "apiGroups": ["*"], "apiVersions": ["*"], "resources": resources, **extra}


@pytest.mark.parametrize(("resources", "resource", "subresource", "expected"), [
    (["pods"], "pods", "", True),
    (["pods"], "pods", "status", False),
    (["pods/status"], "pods", "status", True),
    (["pods/status"], "pods", "", False),
    (["pods/*"], "pods", "log", True),
    (["pods/*"], "pods", "", False),
    (["*"], "services", "", True),
    (["*"], "pods", "status", False),
    (["*/status"], "deployments", "status", True),
    (["*/status"], "deployments", "scale", False),
    (["*/*"], "pods", "", True),
    (["*/*"], "pods", "exec", True),
])
def test_resources(resources: list[str], resource: str, subresource: str, expected: bool) -> None:
    assert matching.rule_matches(rule(resources), attrs(resource, subresource), "", "v1", resource) is expected


@pytest.mark.parametrize(("scope", "resource", "namespace", "expected"), [
    ("Namespaced", "pods", "ns", True),
    ("Namespaced", "nodes", "", False),
    ("Cluster", "nodes", "", True),
    ("Cluster", "pods", "ns", False),
    ("Cluster", "namespaces", "ns", True),  # a Namespace is cluster-scoped though its request names itself
    ("Namespaced", "namespaces", "ns", False),
    ("*", "pods", "ns", True),
])
def test_scope(scope: str, resource: str, namespace: str, expected: bool) -> None:
    a = attrs(resource, namespace=namespace)
    assert matching.rule_matches(rule(["*"], scope=scope), a, "", "v1", resource) is expected


def test_operations_groups_versions() -> None:
    r = {"operations": ["UPDATE"], "apiGroups": ["apps"], "apiVersions": ["v1"], "resources": ["deployments"]}
    assert matching.rule_matches(r, attrs("deployments", operation="UPDATE", group="apps"), "apps", "v1", "deployments")
    assert not matching.rule_matches(r, attrs("deployments", operation="CREATE", group="apps"), "apps", "v1", "deployments")
    assert not matching.rule_matches(r, attrs("deployments", operation="UPDATE", group="apps"), "apps", "v2", "deployments")


def test_equivalent_match_policy_tries_other_versions() -> None:
    hook = {"rules": [{"operations": ["*"], "apiGroups": ["autoscaling"], "apiVersions": ["v1"],
                       "resources": ["horizontalpodautoscalers"]}]}
    a = attrs("horizontalpodautoscalers", group="autoscaling", version="v2")
    versions = lambda g, r: ["v1", "v2"]  # noqa: E731
    assert matching.matching_version(hook, a, versions) == "v1"
    assert matching.matching_version({**hook, "matchPolicy": "Exact"}, a, versions) is None


def test_object_selector_matches_new_or_old_labels() -> None:
    hook = {"objectSelector": {"matchLabels": {"a": "1"}}}
    assert matching.object_matches(hook, attrs(obj={"metadata": {"labels": {"a": "1"}}}))
    assert matching.object_matches(hook, attrs(obj={"metadata": {}}, old={"metadata": {"labels": {"a": "1"}}}))
    assert not matching.object_matches(hook, attrs(obj={"metadata": {"labels": {"a": "2"}}}))
    assert matching.object_matches({"objectSelector": {}}, attrs(obj={"metadata": {}}))


def test_namespace_selector() -> None:
    hook = {"namespaceSelector": {"matchExpressions": [{"key": "env", "operator": "NotIn", "values": ["prod"]}]}}
    labels = {"ns": {"env": "prod"}, "dev": {"env": "dev"}}
    assert not matching.namespace_matches(hook, attrs(namespace="ns"), labels.get)
    assert matching.namespace_matches(hook, attrs(namespace="dev"), labels.get)
    assert matching.namespace_matches(hook, attrs("nodes", namespace=""), labels.get)  # cluster-scoped: always
    namespace = attrs("namespaces", namespace="", obj={"metadata": {"labels": {"env": "prod"}}})
    assert not matching.namespace_matches(hook, namespace, labels.get)  # a Namespace by its own labels


def test_admissionregistration_objects_are_exempt() -> None:
    assert matching.exempt(attrs("validatingwebhookconfigurations", group="admissionregistration.k8s.io"))
    assert matching.exempt(attrs("validatingadmissionpolicies", group="admissionregistration.k8s.io"))
    assert not matching.exempt(attrs("pods"))
