"""test/e2e/apimachinery/flowcontrol.go: the flowcontrol.apiserver.k8s.io/v1 API operations
(FlowSchema and PriorityLevelConfiguration with their status subresources)."""

from __future__ import annotations

import uuid
from collections.abc import Callable

from kubernetes import client, watch

from conformance.harness import conformance, expect_status, raw
from conformance.tests._common import retry_on_conflict

GROUP = "flowcontrol.apiserver.k8s.io"


def check_discovery(api, resource: str) -> None:  # type: ignore[no-untyped-def]
    """/apis lists the group with v1, /apis/<group> lists v1, and the v1 document lists the
    resource and its status subresource."""
    groups = raw(api, "GET", "/apis").json()["groups"]
    assert any(g["name"] == GROUP and any(v["version"] == "v1" for v in g["versions"]) for g in groups)
    group = raw(api, "GET", f"/apis/{GROUP}").json()
    assert any(v["version"] == "v1" for v in group["versions"]), group
    names = {r["name"] for r in raw(api, "GET", f"/apis/{GROUP}/v1").json()["resources"]}
    assert {resource, resource + "/status"} <= names, names


def api_operations(api, resource: str, kind: str, template: dict, patch_spec: dict,  # type: ignore[no-untyped-def]
                   update_spec: Callable[[dict], None], spec_value: Callable[[dict], object],
                   patched_value: object, updated_value: object) -> None:
    """The shared body of both upstream tests, over plain dicts (the dynamic client)."""
    fc = client.FlowcontrolApiserverV1Api(api)
    calls = {"create": getattr(fc, f"create_{kind}"), "read": getattr(fc, f"read_{kind}"),
             "list": getattr(fc, f"list_{kind}"), "patch": getattr(fc, f"patch_{kind}"),
             "delete": getattr(fc, f"delete_{kind}"), "collection": getattr(fc, f"delete_collection_{kind}"),
             "patch_status": getattr(fc, f"patch_{kind}_status")}
    path = f"/apis/{GROUP}/v1/{resource}"
    label_key, label_value = template["metadata"]["labels"].popitem()
    label_value = uuid.uuid4().hex[:8]
    template["metadata"]["labels"] = {label_key: label_value}
    label = f"{label_key}={label_value}"
    try:
        calls["create"](template)
        calls["create"](template)
        created = calls["create"](template)
        name = created.metadata.name

        read = calls["read"](name)
        assert read.metadata.uid == created.metadata.uid
        assert read.metadata.resource_version

        listed = calls["list"](label_selector=label)
        assert len(listed.items) == 3

        w = watch.Watch()
        stream = w.stream(calls["list"], label_selector=label, resource_version=listed.metadata.resource_version,
                          timeout_seconds=30)

        patched = calls["patch"](name, {"metadata": {"annotations": {"patched": "true"}}, "spec": patch_spec})
        assert patched.metadata.annotations["patched"] == "true"
        assert spec_value(api.sanitize_for_serialization(patched)["spec"]) == patched_value
        assert int(created.metadata.resource_version) < int(patched.metadata.resource_version)

        def update():  # type: ignore[no-untyped-def]
            current = raw(api, "GET", f"{path}/{name}").json()
            current["metadata"]["annotations"]["updated"] = "true"
            update_spec(current["spec"])
            resp = raw(api, "PUT", f"{path}/{name}", body=current)
            if resp.status == 409:
                raise client.exceptions.ApiException(status=409)
            assert resp.status == 200, resp.text
            return resp.json()
        updated = retry_on_conflict(update)
        assert updated["metadata"]["annotations"]["updated"] == "true"
        assert spec_value(updated["spec"]) == updated_value

        for event in stream:
            assert event["type"] == "MODIFIED", event["type"]
            if (event["object"].metadata.annotations or {}).get("patched") == "true":
                w.stop()
                break
        else:
            raise AssertionError("no MODIFIED event with the patched annotation")

        status_read = raw(api, "GET", f"{path}/{name}/status").json()
        assert (status_read["apiVersion"], status_read["kind"]) == (f"{GROUP}/v1", template["kind"])
        assert status_read["metadata"]["uid"] == created.metadata.uid

        status_patched = calls["patch_status"](name, {"status": {"conditions": [
            {"type": "PatchStatusFailed", "status": "False", "reason": "e2e"}]}})
        assert any(c.type == "PatchStatusFailed" for c in status_patched.status.conditions)

        def update_status():  # type: ignore[no-untyped-def]
            current = raw(api, "GET", f"{path}/{name}").json()
            current.setdefault("status", {}).setdefault("conditions", []).append(
                {"type": "StatusUpdateFailed", "status": "False", "reason": "E2E", "message": "Set from an e2e test"})
            resp = raw(api, "PUT", f"{path}/{name}/status", body=current)
            if resp.status == 409:
                raise client.exceptions.ApiException(status=409)
            assert resp.status == 200, resp.text
            return resp.json()
        status_updated = retry_on_conflict(update_status)
        assert any(c["type"] == "StatusUpdateFailed" for c in status_updated["status"]["conditions"])

        calls["delete"](name)
        expect_status(404, calls["read"], name)
        assert len(calls["list"](label_selector=label).items) == 2

        calls["collection"](label_selector=label)
        assert calls["list"](label_selector=label).items == []
    finally:
        calls["collection"](label_selector=label)


@conformance("[sig-api-machinery] API priority and fairness should support FlowSchema API operations [Conformance]")
def test_flowschema_api_operations(api) -> None:  # type: ignore[no-untyped-def]
    check_discovery(api, "flowschemas")
    template = {"apiVersion": f"{GROUP}/v1", "kind": "FlowSchema",
                "metadata": {"generateName": "e2e-example-fs-", "labels": {"example-e2e-fs-label": ""}},
                "spec": {"matchingPrecedence": 10000, "priorityLevelConfiguration": {"name": "global-default"},
                         "distinguisherMethod": {"type": "ByUser"},
                         "rules": [{"subjects": [{"kind": "User", "user": {"name": "example-e2e-non-existent-user"}}],
                                    "nonResourceRules": [{"verbs": ["*"], "nonResourceURLs": ["*"]}]}]}}
    api_operations(api, "flowschemas", "flow_schema", template, {"matchingPrecedence": 9999},
                   lambda spec: spec.update(matchingPrecedence=9000), lambda spec: spec["matchingPrecedence"],
                   9999, 9000)


@conformance("[sig-api-machinery] API priority and fairness should support PriorityLevelConfiguration API operations [Conformance]")
def test_priority_level_configuration_api_operations(api) -> None:  # type: ignore[no-untyped-def]
    check_discovery(api, "prioritylevelconfigurations")
    template = {"apiVersion": f"{GROUP}/v1", "kind": "PriorityLevelConfiguration",
                "metadata": {"generateName": "e2e-example-pl-", "labels": {"example-e2e-pl-label": ""}},
                "spec": {"type": "Limited", "limited": {"nominalConcurrencyShares": 2,
                                                        "limitResponse": {"type": "Reject"}}}}
    api_operations(api, "prioritylevelconfigurations", "priority_level_configuration", template,
                   {"limited": {"nominalConcurrencyShares": 4}},
                   lambda spec: spec["limited"].update(nominalConcurrencyShares=6),
                   lambda spec: spec["limited"]["nominalConcurrencyShares"], 4, 6)


def test_bootstrap_configuration_objects(api) -> None:  # type: ignore[no-untyped-def]
    """Not an upstream test: the mandatory objects kube-apiserver keeps (exempt and catch-all) exist,
    as the FlowSchema test relies on `global-default`'s neighbours being there."""
    fc = client.FlowcontrolApiserverV1Api(api)
    levels = {p.metadata.name: p for p in fc.list_priority_level_configuration().items}
    schemas = {f.metadata.name: f for f in fc.list_flow_schema().items}
    assert levels["exempt"].spec.type == "Exempt"
    assert levels["catch-all"].spec.type == "Limited"
    assert schemas["exempt"].spec.matching_precedence == 1
    assert schemas["catch-all"].spec.matching_precedence == 10000
    assert schemas["catch-all"].spec.priority_level_configuration.name == "catch-all"
