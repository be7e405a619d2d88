"""The CEL that kube 1.33 accepts in objects is accepted here too: type identifiers
(`type(x) == string`), optional types and `.?`, ip/cidr, format and semver, in CRD rules,
ValidatingAdmissionPolicies and webhook matchConditions; a misspelt name is still refused."""

from __future__ import annotations

from typing import Any

import pytest

from pykube_server.registry.crd.validation import validate_crd
from pykube_server.registry.defaults import default_object
from pykube_server.registry.kind_validation import validate_object

GROUP = "admissionregistration.k8s.io"
EXPRESSIONS = [
    "type(object.metadata.name) == string && type(object.spec) == map",
    "object.?spec.?replicas.orValue(1) <= 5",
    "object.metadata.labels[?'tier'].orValue('web') != 'db'",
    "!has(object.spec.clusterIP) || object.spec.clusterIP == 'None' || isIP(object.spec.clusterIP)",
    "cidr('10.0.0.0/8').containsIP('10.0.0.1') && '%s'.format([object.metadata.name]).size() > 0",
    "isSemver('1.2.3') && semver('1.2.3').isLessThan(semver('1.10.0'))",
]


def crd(rule: str) -> dict[str, Any]:
    schema = {"type": "object", "properties": {"spec": {"type": "object", "x-kubernetes-validations": [{"rule": rule}],
                                                        "properties": {"name": {"type": "string"}}}}}
    return {"apiVersion": "apiextensions.k8s.io/v1", "kind": "CustomResourceDefinition",
            "metadata": {"name": "widgets.example.com"},
            "spec": {"group": "example.com", "scope": "Namespaced",
                     "names": {"plural": "widgets", "singular": "widget", "kind": "Widget", "listKind": "WidgetList"},
                     "versions": [{"name": "v1", "served": True, "storage": True, "schema": {"openAPIV3Schema": schema}}]},
            "status": {"storedVersions": ["v1"]}}


def policy(expression: str) -> dict[str, Any]:
    obj = {"apiVersion": f"{GROUP}/v1", "kind": "ValidatingAdmissionPolicy", "metadata": {"name": "p"},
           "spec": {"matchConstraints": {"resourceRules": [
               {"apiGroups": [""], "apiVersions": ["v1"], "operations": ["CREATE"], "resources": ["services"]}]},
               "validations": [{"expression": expression}]}}
    default_object(GROUP, "v1", "ValidatingAdmissionPolicy", obj)
    return obj


def webhook(expression: str) -> dict[str, Any]:
    obj = {"apiVersion": f"{GROUP}/v1", "kind": "ValidatingWebhookConfiguration", "metadata": {"name": "w"},
           "webhooks": [{"name": "w.example.com", "clientConfig": {"url": "https://127.0.0.1:9443/v"},
                         "admissionReviewVersions": ["v1"], "sideEffects": "None",
                         "matchConditions": [{"name": "c", "expression": expression}]}]}
    default_object(GROUP, "v1", "ValidatingWebhookConfiguration", obj)
    return obj


@pytest.mark.parametrize("rule", [
    "type(self.name) == string",
    "self.?name.orValue('x') != ''",
    "!has(self.name) || isCIDR(self.name) || isIP(self.name) || '%s!'.format([self.name]) != ''",
])
def test_crd_rules(rule: str) -> None:
    assert validate_crd(crd(rule)) == []


@pytest.mark.parametrize("expression", EXPRESSIONS)
def test_policies_and_match_conditions(expression: str) -> None:
    assert validate_object(GROUP, "v1", "ValidatingAdmissionPolicy", policy(expression)) == []
    assert validate_object(GROUP, "v1", "ValidatingWebhookConfiguration", webhook(expression)) == []


def test_misspelt_names_are_still_undeclared() -> None:
    errs = validate_crd(crd("type(self.name) == strng"))
    assert len(errs) == 1 and "undeclared reference to 'strng'" in errs[0].detail
    errs = validate_object(GROUP, "v1", "ValidatingAdmissionPolicy", policy("object.?spec.hasValu()"))
    assert len(errs) == 1 and "undeclared reference to 'hasValu'" in str(errs[0])
