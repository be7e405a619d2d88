"""validatingadmissionpolicy-status-controller: ValidatingAdmissionPolicies are type-checked
against the schemas of the kinds they match, and the outcome lands in status.typeChecking (as
upstream's e2e test "should type check validation expressions" expects), with observedGeneration."""

from __future__ import annotations

import time
import uuid
from typing import Any

from kubernetes import client

from pykube_server.api import celcheck
from pykube_server.registry import schemas
from tests.conftest import ServerProcess

DEFINITIONS = schemas.all_definitions()


def _resolve(schema: Any) -> Any:
    while isinstance(schema, dict) and "$ref" in schema:
        schema = DEFINITIONS[schema["$ref"].rsplit("/", 1)[-1]]
    return schema


DEPLOYMENT = celcheck.from_schema(DEFINITIONS["io.k8s.api.apps.v1.Deployment"], _resolve)
VARIABLES = {"object": DEPLOYMENT, "oldObject": DEPLOYMENT}


def test_type_errors_in_cel_go_words() -> None:
    assert celcheck.check("object.spec.replicas > '1'", VARIABLES) == [
        "ERROR: <input>:1:22: found no matching overload for '_>_' applied to '(int, string)'\n"
        " | object.spec.replicas > '1'\n"
        " | .....................^"]
    [issue] = celcheck.check("'got ' + object.spec.replicas", VARIABLES)
    assert "found no matching overload for '_+_' applied to '(string, int)'" in issue
    [issue] = celcheck.check("object.spec.template.spec.containers.all(c, c.imag == 'x')", VARIABLES)
    assert issue.startswith("ERROR: <input>:1:46: undefined field 'imag'")


def test_what_types_check_or_cannot_be_known_is_quiet() -> None:
    for expression in ("object.spec.replicas > 1", "object.spec.replicas > 1.5",
                       "object.metadata.labels.exists(k, k.startsWith('a'))",
                       "object.spec.strategy.rollingUpdate.maxSurge == '25%'",  # int-or-string: dyn
                       "has(object.spec.paused) && object.spec.paused",
                       "object.spec.template.spec.containers.map(c, c.name).size() > 0",
                       "params.anything > 'x'", "object.spec.replicas <= 5 ? 'a' : 'b'"):
        assert celcheck.check(expression, VARIABLES) == [], expression


def _policy(name: str, validation: dict) -> dict:
    return {"metadata": {"name": name},
            "spec": {"matchConstraints": {
                "namespaceSelector": {"matchLabels": {"nowhere": "true"}},
                "resourceRules": [{"apiGroups": ["apps"], "apiVersions": ["v1"], "operations": ["CREATE"],
                                   "resources": ["deployments"]}]},
                "validations": [validation]}}


def _status_when_checked(api: Any, name: str) -> Any:
    deadline = time.monotonic() + 30
    while True:
        policy = api.read_validating_admission_policy(name)
        if policy.status is not None and policy.status.type_checking is not None:
            return policy.status
        assert time.monotonic() < deadline, "the policy was never type-checked"
        time.sleep(0.1)


def test_status_type_checking(cluster: ServerProcess) -> None:
    api = client.AdmissionregistrationV1Api(cluster.api_client())
    suffix = uuid.uuid4().hex[:6]
    correct, confused = f"correct-{suffix}.example.com", f"confused-{suffix}.example.com"
    api.create_validating_admission_policy(_policy(correct, {"expression": "object.spec.replicas > 1"}))
    api.create_validating_admission_policy(_policy(confused, {
        "expression": "object.spec.replicas > '1'",
        "messageExpression": "'wants replicas > 1, got ' + object.spec.replicas"}))
    try:
        status = _status_when_checked(api, correct)
        assert status.observed_generation == 1 and not status.type_checking.expression_warnings
        warnings = _status_when_checked(api, confused).type_checking.expression_warnings
        assert [w.field_ref for w in warnings] == ["spec.validations[0].expression",
                                                   "spec.validations[0].messageExpression"]
        assert warnings[0].warning.startswith("apps/v1, Kind=Deployment: ERROR: <input>:1:22: found no matching "
                                              "overload for '_>_' applied to '(int, string)'")
        assert "found no matching overload for '_+_' applied to '(string, int)'" in warnings[1].warning
        # a new generation is checked again
        api.patch_validating_admission_policy(correct, {"spec": {"validations": [{"expression": "object.spec.x > 1"}]}})
        deadline = time.monotonic() + 30
        while (status := api.read_validating_admission_policy(correct).status).observed_generation != 2:
            assert time.monotonic() < deadline
            time.sleep(0.1)
        assert "undefined field 'x'" in status.type_checking.expression_warnings[0].warning
    finally:
        api.delete_validating_admission_policy(correct)
        api.delete_validating_admission_policy(confused)
