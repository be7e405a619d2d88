"""ValidatingAdmissionPolicy pieces without a server: which requests a policy's matchConstraints
and a binding's matchResources select, how one policy judges one request (kube's validator), and
the validation of the policy objects themselves."""

from __future__ import annotations

from typing import Any

import pytest

from pykube_server.api import cel
from pykube_server.api.fields import aggregate_message
from pykube_server.apiserver.admission import Attributes
from pykube_server.apiserver.admission import policyeval, policymatch
from pykube_server.apiserver.admission.policysource import compile_policy
from pykube_server.apiserver.admission.validatingpolicy import denied
from pykube_server.apiserver.authn import ANONYMOUS
from pykube_server.registry.kind_validation.admissionpolicy import (
    validate_validating_admission_policy,
    validate_validating_admission_policy_binding,
)

DEPLOYMENT = {"metadata": {"name": "web", "labels": {"app": "web"}}, "spec": {"replicas": 7}}


def attrs(operation: str = "CREATE", name: str = "web", namespace: str = "ns", obj: Any = DEPLOYMENT,
          old: Any = None) -> Attributes:
    return Attributes(operation, "apps", "v1", "deployments", "", "Deployment", namespace, name, ANONYMOUS,
                      obj=obj, old=old)


def rule(**extra: Any) -> dict:
    return {"apiGroups": ["apps"], "apiVersions": ["v1"], "operations": ["CREATE", "UPDATE"],
            "resources": ["deployments"], **extra}


def labels_of(namespace: str) -> dict[str, str]:
    return {"env": "prod"} if namespace == "ns" else {}


def matches(constraints: Any, attributes: Attributes | None = None) -> bool:
    return policymatch.matches(constraints, attributes or attrs(), labels_of, lambda g, r: ["v1"])


def test_match_constraints() -> None:
    assert matches({"resourceRules": [rule()]})
    assert not matches({"resourceRules": [rule(operations=["DELETE"])]})
    assert not matches({"resourceRules": [rule(resources=["pods"])]})
    assert matches({"resourceRules": [rule()], "namespaceSelector": {"matchLabels": {"env": "prod"}}})
    assert not matches({"resourceRules": [rule()], "namespaceSelector": {"matchLabels": {"env": "dev"}}})
    assert not matches({"resourceRules": [rule()], "objectSelector": {"matchLabels": {"app": "db"}}})
    assert matches({"resourceRules": [rule(resourceNames=["web"])]})
    assert not matches({"resourceRules": [rule(resourceNames=["db"])]})
    assert not matches({"resourceRules": [rule()], "excludeResourceRules": [rule(resourceNames=["web"])]})
    assert matches({"resourceRules": [rule()], "excludeResourceRules": [rule(resourceNames=["db"])]})
    # a binding without matchResources, or with no rules, takes what its policy matched
    assert matches(None)
    assert matches({"objectSelector": {"matchLabels": {"app": "web"}}})


def policy(validations: list[dict], **spec: Any) -> Any:
    return compile_policy({"metadata": {"name": "p.example.com"},
                           "spec": {"failurePolicy": "Fail", "validations": validations, **spec}})


def judge(compiled: Any, obj: Any = DEPLOYMENT, params: Any = None, **extra: Any) -> list[policyeval.Decision]:
    activation = {"object": cel.to_cel(obj), "oldObject": None, "request": cel.to_cel({"operation": "CREATE"}),
                  "namespaceObject": cel.to_cel({"metadata": {"name": "ns", "labels": {"env": "prod"}}}),
                  "params": cel.to_cel(params), **extra}
    return [d for d in policyeval.validate(compiled, activation, {"resource": "deployments"})
            if d.action == policyeval.DENY]


def test_messages_in_kube_order() -> None:
    """messageExpression, else message, else `failed expression: <expr>`; reason defaults to Invalid."""
    [d] = judge(policy([{"expression": " object.spec.replicas <= 5 "}]))
    assert (d.message, d.reason) == ("failed expression: object.spec.replicas <= 5", "Invalid")
    [d] = judge(policy([{"expression": "false", "message": "static", "reason": "Forbidden"}]))
    assert (d.message, d.reason) == ("static", "Forbidden")
    [d] = judge(policy([{"expression": "false", "message": "static",
                         "messageExpression": "'replicas: ' + string(object.spec.replicas)"}]))
    assert d.message == "replicas: 7"
    # a messageExpression that fails, is blank or spans lines falls back
    for bad in ("object.nosuch", "'  '", "'a\\nb'", "1"):
        [d] = judge(policy([{"expression": "false", "message": "static", "messageExpression": bad}]))
        assert d.message == "static", bad


def test_variables_namespace_object_and_params() -> None:
    compiled = policy([{"expression": "variables.replicas <= params.max && namespaceObject.metadata.labels.env == 'prod'"}],
                      paramKind={"apiVersion": "v1", "kind": "ConfigMap"},
                      variables=[{"name": "replicas", "expression": "object.spec.replicas"},
                                 {"name": "broken", "expression": "object.nosuch"}])
    assert judge(compiled, params={"max": 10}) == []
    assert len(judge(compiled, params={"max": 3})) == 1
    # a failing variable matters only where it is read
    compiled = policy([{"expression": "variables.broken == 1"}], variables=[{"name": "broken", "expression": "object.nosuch"}])
    [d] = judge(compiled)
    assert d.error and d.message == "expression 'variables.broken == 1' resulted in error: " \
                                    "expression 'object.nosuch' resulted in error: no such key: nosuch"


def test_failure_policy_decides_what_errors_do() -> None:
    [d] = judge(policy([{"expression": "object.spec.nosuch > 1"}]))
    assert d.message == "expression 'object.spec.nosuch > 1' resulted in error: no such key: nosuch"
    assert judge(policy([{"expression": "object.spec.nosuch > 1"}], failurePolicy="Ignore")) == []


def test_match_conditions_skip_or_fail() -> None:
    compiled = policy([{"expression": "false"}], matchConditions=[
        {"name": "only-big", "expression": "object.spec.replicas > 10"}])
    assert judge(compiled) == []
    assert len(judge(compiled, obj={"metadata": {"name": "x"}, "spec": {"replicas": 11}})) == 1
    compiled = policy([{"expression": "false"}], matchConditions=[{"name": "err", "expression": "object.nosuch"}])
    [d] = judge(compiled)
    assert d.message == "expression 'object.nosuch' resulted in error: no such key: nosuch"


def test_audit_annotation_errors_deny_under_fail() -> None:
    compiled = policy([], auditAnnotations=[{"key": "k", "valueExpression": "1"}])
    [d] = judge(compiled)
    assert "resulted in unsupported return type" in d.message
    assert judge(policy([], auditAnnotations=[{"key": "k", "valueExpression": "'fine'"}])) == []


def test_denial_text_and_code() -> None:
    error = denied(attrs(name=""), "p", "b", policyeval.Decision(policyeval.DENY, "too many", "RequestEntityTooLarge"))
    assert error.code == 413 and error.reason == "RequestEntityTooLarge"
    assert error.message == ('deployments.apps "web" is forbidden: ValidatingAdmissionPolicy \'p\' with binding '
                             "'b' denied request: too many")
    error = denied(attrs(), "p", None, policyeval.Decision(policyeval.DENY, "failed to configure policy: x"))
    assert (error.code, error.reason) == (422, "Invalid")
    assert error.details["causes"] == [{"message": "ValidatingAdmissionPolicy 'p' denied request: "
                                                   "failed to configure policy: x"}]


def _valid_policy(**spec: Any) -> dict:
    base = {"failurePolicy": "Fail", "matchConstraints": {"matchPolicy": "Equivalent", "namespaceSelector": {},
                                                          "objectSelector": {}, "resourceRules": [rule(scope="*")]},
            "validations": [{"expression": "true"}]}
    return {"metadata": {"name": "p.example.com"}, "spec": {**base, **spec}}


@pytest.mark.parametrize(("spec", "message"), [
    ({}, ""),
    ({"validations": []}, "[spec.validations: Required value: validations or auditAnnotations must contain at least "
                          "one item, spec.auditAnnotations: Required value: validations or auditAnnotations must "
                          "contain at least one item]"),
    ({"matchConstraints": None}, "spec.matchConstraints: Required value"),
    ({"failurePolicy": "Maybe"}, 'spec.failurePolicy: Unsupported value: "Maybe": supported values: "Fail", "Ignore"'),
    ({"paramKind": {"apiVersion": "v1"}}, "spec.paramKind.kind: Required value"),
    ({"validations": [{"expression": "params.x"}]},
     "spec.validations[0].expression: Invalid value: \"params.x\": compilation failed: ERROR: <input>:1:1: "
     "undeclared reference to 'params' (in container '')\n | params.x\n | ^"),
    ({"validations": [{"expression": "true", "reason": "Teapot"}]},
     'spec.validations[0].reason: Unsupported value: "Teapot": supported values: "Forbidden", "Invalid", '
     '"RequestEntityTooLarge", "Unauthorized"'),
    ({"validations": [{"expression": "true", "message": "a\nb"}]},
     'spec.validations[0].message: Invalid value: "a\\nb": message must not contain line breaks'),
    ({"variables": [{"name": "in", "expression": "1"}]},
     'spec.variables[0].name: Invalid value: "in": name is not a valid CEL identifier'),
])
def test_policy_validation(spec: dict, message: str) -> None:
    errs = validate_validating_admission_policy(_valid_policy(**spec))
    assert (aggregate_message(errs) if errs else "") == message


@pytest.mark.parametrize(("spec", "message"), [
    ({"policyName": "p", "validationActions": ["Deny"]}, ""),
    ({"validationActions": ["Deny"]}, "spec.policyName: Required value"),
    ({"policyName": "p", "validationActions": []},
     "spec.validationActions: Required value: at least one validation action is required"),
    ({"policyName": "p", "validationActions": ["Deny", "Deny"]}, 'spec.validationActions[1]: Duplicate value: "Deny"'),
    ({"policyName": "p", "validationActions": ["Block"]},
     'spec.validationActions[0]: Unsupported value: "Block": supported values: "Audit", "Deny", "Warn"'),
    ({"policyName": "p", "validationActions": ["Deny"], "paramRef": {"name": "x"}},
     "spec.paramRef.parameterNotFoundAction: Required value"),
    ({"policyName": "p", "validationActions": ["Deny"], "paramRef": {"parameterNotFoundAction": "Deny"}},
     "spec.paramRef: Required value: one of name or selector must be specified"),
])
def test_binding_validation(spec: dict, message: str) -> None:
    errs = validate_validating_admission_policy_binding({"spec": spec})
    assert (aggregate_message(errs) if errs else "") == message


def test_authorizer_in_validations() -> None:
    """`authorizer` asks the requesting user's permissions (kube's CEL authorizer library)."""
    asked: list[dict[str, str]] = []

    def authorize(what: dict[str, str]) -> tuple[bool, str, str]:
        asked.append(what)
        return what.get("namespace") == "ns", "", ""

    compiled = policy([{"expression": "authorizer.group('apps').resource('deployments').namespace('ns')"
                                      ".check('delete').allowed()", "message": "may not delete"}])
    assert compiled.uses_authorizer
    activation = {"object": cel.to_cel(DEPLOYMENT), "oldObject": None, "request": None, "namespaceObject": None,
                  "params": None}
    assert [d for d in policyeval.validate(compiled, dict(activation), {}, authorize) if d.action == "deny"] == []
    assert asked == [{"api_group": "apps", "resource": "deployments", "namespace": "ns", "verb": "delete"}]
    compiled = policy([{"expression": "authorizer.requestResource.check('delete').allowed()", "message": "no"}])
    [d] = [d for d in policyeval.validate(compiled, dict(activation), {"resource": "deployments", "namespace": "x"},
                                          authorize) if d.action == "deny"]
    assert d.message == "no"
