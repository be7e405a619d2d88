"""ValidatingAdmissionPolicy: test/e2e/apimachinery/validatingadmissionpolicy.go.

As upstream, the test namespace is labelled `<namespace>: "true"` and policies and bindings select
it by that label, so they never disturb tests in other namespaces."""

from __future__ import annotations

import datetime
import threading
import time
from typing import Any

from kubernetes import client, watch
from kubernetes.client.exceptions import ApiException

from conformance.harness import conformance, expect_status, unique
from conformance.tests._common import retry_on_conflict

GROUP = "admissionregistration.k8s.io"


def _label_namespace(api, ns: str) -> None:  # type: ignore[no-untyped-def]
    client.CoreV1Api(api).patch_namespace(ns, {"metadata": {"labels": {ns: "true"}}})


def _policy(ns: str, name: str, validations: list[dict], variables: list[dict] | None = None) -> dict:
    spec: dict[str, Any] = {
        "matchConstraints": {"namespaceSelector": {"matchLabels": {ns: "true"}},
                             "resourceRules": [{"operations": ["CREATE", "UPDATE"], "apiGroups": ["apps"],
                                                "apiVersions": ["v1"], "resources": ["deployments"]}]},
        "validations": validations}
    if variables:
        spec["variables"] = variables
    return {"metadata": {"name": name}, "spec": spec}


def _binding(ns: str, name: str, policy: str) -> dict:
    return {"metadata": {"name": name},
            "spec": {"policyName": policy, "validationActions": ["Deny"],
                     "matchResources": {"namespaceSelector": {"matchLabels": {ns: "true"}}}}}


def _workload(kind: str, name: str, replicas: int) -> dict:
    labels = {"app": "nginx"}
    return {"metadata": {"name": name, "labels": labels},
            "spec": {"replicas": replicas, "selector": {"matchLabels": labels},
                     "template": {"metadata": {"labels": labels},
                                  "spec": {"containers": [{"name": "nginx", "image": "nginx:latest"}]}}}}


def _install(api, ns: str, policy: dict) -> tuple[str, str]:  # type: ignore[no-untyped-def]
    admission = client.AdmissionregistrationV1Api(api)
    created = admission.create_validating_admission_policy(policy)
    binding = admission.create_validating_admission_policy_binding(
        _binding(ns, f"{ns}.binding.example.com", created.metadata.name))
    return created.metadata.name, binding.metadata.name


def _uninstall(api, names: tuple[str, str]) -> None:  # type: ignore[no-untyped-def]
    admission = client.AdmissionregistrationV1Api(api)
    admission.delete_validating_admission_policy_binding(names[1])
    admission.delete_validating_admission_policy(names[0])


def _wait_for_marker_denied(api, ns: str) -> None:  # type: ignore[no-untyped-def]
    """Create a 1-replica marker until the policy refuses it as Invalid (deleting it when admitted)."""
    apps = client.AppsV1Api(api)
    deadline = time.monotonic() + 60
    while True:
        try:
            apps.create_namespaced_deployment(ns, _workload("Deployment", "marker-deployment", 1))
        except ApiException as exc:
            if exc.status == 422:
                return
            raise
        apps.delete_namespaced_deployment("marker-deployment", ns)
        assert time.monotonic() < deadline, "the marker was never denied"
        time.sleep(0.1)


def _allowed_and_untouched(api, ns: str, replicas: int) -> None:  # type: ignore[no-untyped-def]
    apps = client.AppsV1Api(api)
    apps.create_namespaced_deployment(ns, _workload("Deployment", "replicated", replicas))
    apps.delete_namespaced_deployment("replicated", ns)
    apps.create_namespaced_replica_set(ns, _workload("ReplicaSet", "non-replicated", 1))
    apps.delete_namespaced_replica_set("non-replicated", ns)


@conformance("[sig-api-machinery] ValidatingAdmissionPolicy [Privileged:ClusterAdmin] should validate against a "
             "Deployment [Conformance]")
def test_validate_against_deployment(api, ns) -> None:  # type: ignore[no-untyped-def]
    _label_namespace(api, ns)
    names = _install(api, ns, _policy(ns, f"{ns}.policy.example.com", [
        {"expression": "object.spec.replicas > 1", "messageExpression": "'wants replicas > 1, got ' + object.spec.replicas"},
        {"expression": f"namespaceObject.metadata.name == '{ns}'",
         "message": "Internal error! Other namespace should not be allowed."}]))
    try:
        _wait_for_marker_denied(api, ns)
        _allowed_and_untouched(api, ns, 2)
    finally:
        _uninstall(api, names)


@conformance("[sig-api-machinery] ValidatingAdmissionPolicy [Privileged:ClusterAdmin] should allow expressions to "
             "refer variables. [Conformance]")
def test_expressions_refer_variables(api, ns) -> None:  # type: ignore[no-untyped-def]
    _label_namespace(api, ns)
    names = _install(api, ns, _policy(ns, f"{ns}.policy.example.com",
                                      [{"expression": "variables.replicas > 1"}, {"expression": "variables.oddReplicas"}],
                                      [{"name": "replicas", "expression": "object.spec.replicas"},
                                       {"name": "oddReplicas", "expression": "variables.replicas % 2 == 1"}]))
    try:
        _wait_for_marker_denied(api, ns)
        _allowed_and_untouched(api, ns, 3)
    finally:
        _uninstall(api, names)


def _discovery_lists(api, plural: str) -> None:  # type: ignore[no-untyped-def]
    groups = client.ApisApi(api).get_api_versions().groups
    assert any(g.name == GROUP and any(v.version == "v1" for v in g.versions) for g in groups)
    assert any(v.version == "v1" for v in client.AdmissionregistrationApi(api).get_api_group().versions)
    names = {r.name for r in client.AdmissionregistrationV1Api(api).get_api_resources().resources}
    assert plural in names


class _Events:
    """A watch from a resourceVersion, collecting event types in the background."""

    def __init__(self, list_fn, selector: str, resource_version: str) -> None:  # type: ignore[no-untyped-def]
        self.types: list[str] = []
        self._watch = watch.Watch()
        stream = self._watch.stream(list_fn, label_selector=selector, resource_version=resource_version,
                                    timeout_seconds=30)

        def pump() -> None:
            try:
                for event in stream:
                    self.types.append(event["type"])
            except Exception:  # noqa: BLE001 - the connection closing after stop(); wait_for reports what was seen
                return

        self._thread = threading.Thread(target=pump, daemon=True)
        self._thread.start()

    def wait_for(self, *types: str) -> None:
        deadline = time.monotonic() + 30
        while not all(t in self.types for t in types):
            assert time.monotonic() < deadline, f"watch saw {self.types}, wanted {types}"
            time.sleep(0.05)
        self._watch.stop()


def _condition(kind: str) -> dict:
    now = datetime.datetime.now(datetime.timezone.utc).replace(microsecond=0).isoformat().replace("+00:00", "Z")
    return {"type": kind, "status": "True", "reason": "E2E", "message": "Set from an e2e test",
            "lastTransitionTime": now}


@conformance("[sig-api-machinery] ValidatingAdmissionPolicy [Privileged:ClusterAdmin] should support "
             "ValidatingAdmissionPolicy API operations [Conformance]")
def test_policy_api_operations(api) -> None:  # type: ignore[no-untyped-def]
    admission = client.AdmissionregistrationV1Api(api)
    _discovery_lists(api, "validatingadmissionpolicies")
    names = {r.name for r in admission.get_api_resources().resources}
    assert "validatingadmissionpolicies/status" in names
    label = unique("e2e-vap")
    selector = f"e2e-vap-label={label}"
    template = {"metadata": {"generateName": "e2e-example-vap-", "labels": {"e2e-vap-label": label}},
                "spec": {"validations": [{"expression": "object.spec.replicas <= 100"}],
                         "matchConstraints": {"resourceRules": [{"operations": ["CREATE"], "apiGroups": ["apps"],
                                                                 "apiVersions": ["v1"], "resources": ["deployments"]}]}}}
    made = [admission.create_validating_admission_policy(template) for _ in range(3)]
    name = made[0].metadata.name
    try:
        got = admission.read_validating_admission_policy(name)
        assert got.metadata.uid == made[0].metadata.uid and got.spec.failure_policy == "Fail"
        listed = admission.list_validating_admission_policy(label_selector=selector)
        assert len(listed.items) == 3
        events = _Events(admission.list_validating_admission_policy, selector, listed.metadata.resource_version)
        patched = admission.patch_validating_admission_policy(name, {"metadata": {"annotations": {"patched": "true"}}})
        assert patched.metadata.annotations["patched"] == "true"

        def update() -> Any:
            current = admission.read_validating_admission_policy(name)
            current.metadata.annotations["updated"] = "true"
            return admission.replace_validating_admission_policy(name, current)

        assert retry_on_conflict(update).metadata.annotations["updated"] == "true"
        events.wait_for("MODIFIED")
        status = admission.read_validating_admission_policy_status(name)
        assert status.metadata.uid == made[0].metadata.uid
        patched = admission.patch_validating_admission_policy_status(
            name, {"status": {"conditions": [_condition("StatusPatched")]}})
        assert [c.type for c in patched.status.conditions] == ["StatusPatched"]

        def update_status() -> Any:
            current = admission.read_validating_admission_policy_status(name)
            current.status.conditions = [*current.status.conditions, _condition("StatusUpdated")]
            return admission.replace_validating_admission_policy_status(name, current)

        updated = retry_on_conflict(update_status)
        assert [c.type for c in updated.status.conditions] == ["StatusPatched", "StatusUpdated"]
        admission.delete_validating_admission_policy(name)
        expect_status(404, admission.read_validating_admission_policy, name)
        assert len(admission.list_validating_admission_policy(label_selector=selector).items) == 2
    finally:
        admission.delete_collection_validating_admission_policy(label_selector=selector)
    assert admission.list_validating_admission_policy(label_selector=selector).items == []


@conformance("[sig-api-machinery] ValidatingAdmissionPolicy [Privileged:ClusterAdmin] should support "
             "ValidatingAdmissionPolicyBinding API operations [Conformance]")
def test_binding_api_operations(api) -> None:  # type: ignore[no-untyped-def]
    admission = client.AdmissionregistrationV1Api(api)
    _discovery_lists(api, "validatingadmissionpolicybindings")
    label = unique("e2e-vapb")
    selector = f"e2e-vapb-label={label}"
    template = {"metadata": {"generateName": "e2e-example-vapb-", "labels": {"e2e-vapb-label": label}},
                "spec": {"policyName": "replicalimit-policy.example.com", "validationActions": ["Deny"]}}
    made = [admission.create_validating_admission_policy_binding(template) for _ in range(3)]
    name = made[0].metadata.name
    try:
        got = admission.read_validating_admission_policy_binding(name)
        assert got.metadata.uid == made[0].metadata.uid and got.spec.validation_actions == ["Deny"]
        listed = admission.list_validating_admission_policy_binding(label_selector=selector)
        assert len(listed.items) == 3
        events = _Events(admission.list_validating_admission_policy_binding, selector,
                         listed.metadata.resource_version)
        patched = admission.patch_validating_admission_policy_binding(
            name, {"metadata": {"annotations": {"patched": "true"}}})
        assert patched.metadata.annotations["patched"] == "true"

        def update() -> Any:
            current = admission.read_validating_admission_policy_binding(name)
            current.metadata.annotations["updated"] = "true"
            return admission.replace_validating_admission_policy_binding(name, current)

        assert retry_on_conflict(update).metadata.annotations["updated"] == "true"
        events.wait_for("MODIFIED")
        admission.delete_validating_admission_policy_binding(name)
        expect_status(404, admission.read_validating_admission_policy_binding, name)
        assert len(admission.list_validating_admission_policy_binding(label_selector=selector).items) == 2
    finally:
        admission.delete_collection_validating_admission_policy_binding(label_selector=selector)
    assert admission.list_validating_admission_policy_binding(label_selector=selector).items == []
