"""AdmissionWebhook: test/e2e/apimachinery/webhook.go, the conformance tests about discovery and
matchConditions. Upstream's BeforeEach deploys the sample webhook server behind a Service; these tests
only create, read and update configurations that point at that Service, never call it, so the
configurations here point at a Service name without a server behind it."""

from __future__ import annotations

import uuid

import yaml
from kubernetes import client

from conformance.harness import conformance, expect_status, raw

GROUP = "admissionregistration.k8s.io"


def ca_bundle(cluster) -> str:  # type: ignore[no-untyped-def]
    """A real CA bundle (the cluster's), as upstream passes its webhook's signing CA."""
    config = yaml.safe_load(cluster.kubeconfig.read_text())
    return config["clusters"][0]["cluster"]["certificate-authority-data"]


def webhook(kind: str, ns: str, bundle: str, match_conditions: list[dict]) -> dict:
    """newValidatingWebhookWithMatchConditions / newMutatingWebhookWithMatchConditions: pods in the
    test namespace, sent to the e2e webhook Service's path."""
    path = "/always-deny" if kind == "validating" else "/mutating-pods"
    return {"name": f"{kind}-pods.k8s.io",
            "rules": [{"operations": ["CREATE"], "apiGroups": [""], "apiVersions": ["v1"], "resources": ["pods"]}],
            "clientConfig": {"service": {"namespace": ns, "name": "e2e-test-webhook", "path": path, "port": 8443},
                             "caBundle": bundle},
            "sideEffects": "None", "admissionReviewVersions": ["v1", "v1beta1"],
            "namespaceSelector": {"matchLabels": {f"{ns}-webhook": "true"}},
            "matchConditions": match_conditions}


def conditions_of(hook) -> list[dict]:  # type: ignore[no-untyped-def]
    return [{"name": c.name, "expression": c.expression} for c in hook.match_conditions or []]


@conformance("[sig-api-machinery] AdmissionWebhook [Privileged:ClusterAdmin] should include webhook resources in "
             "discovery documents [Conformance]")
def test_webhook_discovery(api) -> None:  # type: ignore[no-untyped-def]
    groups = raw(api, "GET", "/apis").json()["groups"]
    group = next((g for g in groups if g["name"] == GROUP), None)
    assert group is not None, "admissionregistration.k8s.io is not in /apis"
    assert any(v["groupVersion"] == f"{GROUP}/v1" for v in group["versions"])
    doc = raw(api, "GET", f"/apis/{GROUP}").json()
    assert any(v["version"] == "v1" for v in doc["versions"])
    assert doc["preferredVersion"]["version"] == "v1"
    resources = {r["name"] for r in raw(api, "GET", f"/apis/{GROUP}/v1").json()["resources"]}
    assert {"mutatingwebhookconfigurations", "validatingwebhookconfigurations"} <= resources, resources


def _create_and_update(api, cluster, ns: str, kind: str) -> None:  # type: ignore[no-untyped-def]
    adm = client.AdmissionregistrationV1Api(api)
    create, read, replace, delete = (
        (adm.create_validating_webhook_configuration, adm.read_validating_webhook_configuration,
         adm.replace_validating_webhook_configuration, adm.delete_validating_webhook_configuration)
        if kind == "validating" else
        (adm.create_mutating_webhook_configuration, adm.read_mutating_webhook_configuration,
         adm.replace_mutating_webhook_configuration, adm.delete_mutating_webhook_configuration))
    name = f"e2e-{ns}-{uuid.uuid4().hex[:5]}"
    initial = [{"name": "expression-1", "expression": "object.metadata.namespace == 'production'"}]
    create({"metadata": {"name": name}, "webhooks": [webhook(kind, ns, ca_bundle(cluster), initial)]})
    try:
        config = read(name)
        assert conditions_of(config.webhooks[0]) == initial
        updated = [{"name": "expression-1", "expression": "object.metadata.namespace == 'staging'"}]
        config.webhooks[0].match_conditions = [client.V1MatchCondition(**c) for c in updated]
        replace(name, config)
        assert conditions_of(read(name).webhooks[0]) == updated
    finally:
        delete(name)


def _reject_invalid(api, cluster, ns: str, kind: str) -> None:  # type: ignore[no-untyped-def]
    adm = client.AdmissionregistrationV1Api(api)
    create = (adm.create_validating_webhook_configuration if kind == "validating"
              else adm.create_mutating_webhook_configuration)
    invalid = [{"name": "invalid-expression-1", "expression": "... [] bad expression"}]
    exc = expect_status(422, create, {"metadata": {"name": f"e2e-{ns}-invalid"},
                                      "webhooks": [webhook(kind, ns, ca_bundle(cluster), invalid)]})
    assert "compilation failed" in exc.body, exc.body


@conformance("[sig-api-machinery] AdmissionWebhook [Privileged:ClusterAdmin] should be able to create and update "
             "validating webhook configurations with match conditions [Conformance]")
def test_validating_match_conditions(api, cluster, ns) -> None:  # type: ignore[no-untyped-def]
    _create_and_update(api, cluster, ns, "validating")


@conformance("[sig-api-machinery] AdmissionWebhook [Privileged:ClusterAdmin] should be able to create and update "
             "mutating webhook configurations with match conditions [Conformance]")
def test_mutating_match_conditions(api, cluster, ns) -> None:  # type: ignore[no-untyped-def]
    _create_and_update(api, cluster, ns, "mutating")


@conformance("[sig-api-machinery] AdmissionWebhook [Privileged:ClusterAdmin] should reject validating webhook "
             "configurations with invalid match conditions [Conformance]")
def test_validating_invalid_match_conditions(api, cluster, ns) -> None:  # type: ignore[no-untyped-def]
    _reject_invalid(api, cluster, ns, "validating")


@conformance("[sig-api-machinery] AdmissionWebhook [Privileged:ClusterAdmin] should reject mutating webhook "
             "configurations with invalid match conditions [Conformance]")
def test_mutating_invalid_match_conditions(api, cluster, ns) -> None:  # type: ignore[no-untyped-def]
    _reject_invalid(api, cluster, ns, "mutating")
