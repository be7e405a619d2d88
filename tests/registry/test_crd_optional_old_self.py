"""CRD transition rules with `optionalOldSelf: true` (kube 1.33, CRDValidationRatcheting): the
rule runs on create too, with `oldSelf` a CEL optional that is empty when there is no old value.
Unit checks on the strategy, then the same CRD through the real kubectl."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from typing import Any

import orjson
import pytest

from pykube_server.registry.crd.resource import CustomResourceStrategy
from pykube_server.registry.crd.validation import validate_crd
from tests.conftest import ServerProcess, requires_kubectl

Obj = dict[str, Any]

RULES = {
    "replicas": {"type": "integer", "x-kubernetes-validations": [
        {"rule": "!oldSelf.hasValue() || self >= oldSelf.value()", "optionalOldSelf": True,
         "message": "replicas may not decrease"}]},
    "phase": {"type": "string", "x-kubernetes-validations": [
        {"rule": "oldSelf.hasValue() || self == 'Pending'", "optionalOldSelf": True,
         "message": "a new gizmo starts Pending"},
        {"rule": "oldSelf.orValue('') != 'Done' || self == 'Done'", "optionalOldSelf": True,
         "message": "a Done gizmo stays Done"}]},
}
SCHEMA: Obj = {"type": "object", "properties": {"spec": {"type": "object", "properties": RULES}}}


def crd(group: str = "example.com") -> Obj:
    return {"apiVersion": "apiextensions.k8s.io/v1", "kind": "CustomResourceDefinition",
            "metadata": {"name": f"gizmos.{group}"},
            "spec": {"group": group, "scope": "Namespaced",
                     "names": {"plural": "gizmos", "singular": "gizmo", "kind": "Gizmo", "listKind": "GizmoList"},
                     "versions": [{"name": "v1", "served": True, "storage": True,
                                   "schema": {"openAPIV3Schema": SCHEMA}}]}}


def gizmo(group: str = "example.com", **spec: Any) -> Obj:
    return {"apiVersion": f"{group}/v1", "kind": "Gizmo", "metadata": {"name": "g", "namespace": "default"},
            "spec": spec}


def texts(errs: list[Any]) -> list[str]:
    return [str(e) for e in errs]


def strategy() -> CustomResourceStrategy:
    return CustomResourceStrategy(crd(), crd()["spec"]["versions"][0])


def test_the_crd_is_accepted() -> None:
    assert validate_crd({**crd(), "status": {"storedVersions": ["v1"]}}) == []


def test_optional_old_self_is_still_refused_where_old_self_is_unused() -> None:
    schema = {"type": "object", "properties": {"spec": {"type": "object", "x-kubernetes-validations": [
        {"rule": "self.x > 0", "optionalOldSelf": True}], "properties": {"x": {"type": "integer"}}}}}
    bad = {**crd(), "status": {"storedVersions": ["v1"]}}
    bad["spec"]["versions"][0]["schema"]["openAPIV3Schema"] = schema
    assert texts(validate_crd(bad)) == [
        "spec.validation.openAPIV3Schema.properties[spec].x-kubernetes-validations[0].optionalOldSelf: "
        "Invalid value: true: may not be set if oldSelf is not used in rule"]


def test_rules_run_on_create_with_an_empty_old_self() -> None:
    s = strategy()
    assert s.validate(gizmo(replicas=3, phase="Pending")) == []
    assert texts(s.validate(gizmo(replicas=3, phase="Running"))) == [
        'spec.phase: Invalid value: "string": a new gizmo starts Pending']


def test_rules_run_on_update_with_the_old_value() -> None:
    s = strategy()
    assert s.validate_update(gizmo(replicas=4, phase="Running"), gizmo(replicas=3, phase="Pending")) == []
    assert texts(s.validate_update(gizmo(replicas=2, phase="Running"), gizmo(replicas=3, phase="Running"))) == [
        'spec.replicas: Invalid value: "integer": replicas may not decrease']
    assert texts(s.validate_update(gizmo(replicas=3, phase="Running"), gizmo(replicas=3, phase="Done"))) == [
        'spec.phase: Invalid value: "string": a Done gizmo stays Done']
    # a field the old object did not have: oldSelf is empty, as on create
    assert texts(s.validate_update(gizmo(replicas=3, phase="Running"), gizmo(replicas=3))) == [
        'spec.phase: Invalid value: "string": a new gizmo starts Pending']


@pytest.fixture
def group(api_cluster: ServerProcess) -> Iterator[str]:
    name = f"o{uuid.uuid4().hex[:8]}.example.com"
    yield name
    api_cluster.kubectl("delete", "crd", f"gizmos.{name}", "--ignore-not-found", "--wait=false", check=False)


@requires_kubectl
def test_transition_rule_with_kubectl(api_cluster: ServerProcess, api_namespace: str, group: str) -> None:
    api_cluster.kubectl("apply", "-f", "-", input=orjson.dumps(crd(group)).decode())
    api_cluster.kubectl("wait", "--for=condition=Established", f"crd/gizmos.{group}", "--timeout=30s")

    def apply(**spec: Any) -> Any:
        obj = gizmo(group, **spec)
        obj["metadata"]["namespace"] = api_namespace
        return api_cluster.kubectl("apply", "-f", "-", input=orjson.dumps(obj).decode(), check=False)

    refused = apply(replicas=3, phase="Running")
    assert refused.returncode == 1
    assert refused.stderr.strip() == 'The Gizmo "g" is invalid: spec.phase: Invalid value: "string": a new gizmo starts Pending'
    assert apply(replicas=3, phase="Pending").returncode == 0
    assert apply(replicas=5, phase="Running").returncode == 0
    shrunk = apply(replicas=4, phase="Running")
    assert shrunk.returncode == 1
    assert shrunk.stderr.strip() == 'The Gizmo "g" is invalid: spec.replicas: Invalid value: "integer": replicas may not decrease'
