"""Request bodies the way real clients send them, and bad ones: what is accepted, what is
refused with which Status, and that a refused request changes nothing in the store.

kube-apiserver facts: a body without Content-Type is JSON (the Python client), apiVersion/kind
default from the URL, `creationTimestamp: null` is fine; bodies over 3 MiB are 413; a
mismatched kind, apiVersion or name is 400; an unknown resource is 404 "the server could not
find the requested resource"; `fieldValidation` Strict rejects unknown fields with a "strict
decoding error", Warn answers with `Warning: 299` headers, Ignore drops them silently.
"""

from __future__ import annotations

import pytest

from tests.apiserver.test_rest_support import Raw, cm_path, status_of
from tests.conftest import ServerProcess


@pytest.fixture
def raw(cluster: ServerProcess) -> Raw:
    return Raw(cluster.kubeconfig)


def snapshot(raw: Raw, namespace: str) -> set[tuple[str, str]]:
    """The namespace's ConfigMaps as (name, resourceVersion): what a failed request must not
    change. (The list's own resourceVersion is cluster-wide and moves with other components.)"""
    return {(i["metadata"]["name"], i["metadata"]["resourceVersion"])
            for i in raw.get(cm_path(namespace)).json()["items"]}


def test_body_without_content_type_or_type_meta_and_with_null_timestamp(raw: Raw, namespace: str) -> None:
    resp = raw.post(cm_path(namespace), {"metadata": {"name": "plain", "creationTimestamp": None}, "data": {"a": "b"}},
                    content_type=None)
    assert resp.status == 201, resp
    obj = resp.json()
    assert obj["apiVersion"] == "v1" and obj["kind"] == "ConfigMap" and obj["metadata"]["creationTimestamp"]


def test_yaml_body_is_accepted(raw: Raw, namespace: str) -> None:
    resp = raw.post(cm_path(namespace), "metadata:\n  name: fromyaml\ndata:\n  a: b\n", content_type="application/yaml")
    assert resp.status == 201, resp
    assert resp.json()["data"] == {"a": "b"}


def test_no_op_update_keeps_the_resource_version(raw: Raw, namespace: str) -> None:
    created = raw.post(cm_path(namespace), {"metadata": {"name": "same", "labels": {"a": "1"}}, "data": {"k": "v"}}).json()
    rv = created["metadata"]["resourceVersion"]
    assert raw.patch(cm_path(namespace, "same"), {"data": {"k": "v"}}).json()["metadata"]["resourceVersion"] == rv
    assert raw.put(cm_path(namespace, "same"), created).json()["metadata"]["resourceVersion"] == rv
    assert raw.patch(cm_path(namespace, "same"), [{"op": "replace", "path": "/data/k", "value": "v"}],
                     content_type="application/json-patch+json").json()["metadata"]["resourceVersion"] == rv


@pytest.mark.parametrize(("body", "content_type"), [
    (b'{"metadata": {"name": ', "application/json"),
    (b"metadata: [unclosed", "application/yaml"),
    (b"not json at all", None),
])
def test_malformed_bodies_are_400_with_a_status(raw: Raw, namespace: str, body: bytes, content_type: str | None) -> None:
    before = snapshot(raw, namespace)
    resp = raw.post(cm_path(namespace), body, content_type=content_type)
    assert resp.status == 400, resp
    assert status_of(resp)["reason"] == "BadRequest"
    assert snapshot(raw, namespace) == before


def test_body_over_3_mib_is_413(raw: Raw, namespace: str) -> None:
    big = {"metadata": {"name": "big"}, "data": {"x": "y" * (3 * 1024 * 1024 + 10)}}
    resp = raw.post(cm_path(namespace), big)
    assert resp.status == 413
    assert status_of(resp)["reason"] == "RequestEntityTooLarge"
    assert raw.get(cm_path(namespace, "big")).status == 404


def test_kind_api_version_and_name_must_match_the_url(raw: Raw, namespace: str) -> None:
    before = snapshot(raw, namespace)
    wrong_kind = raw.post(cm_path(namespace), {"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "k"}})
    assert wrong_kind.status == 400
    assert status_of(wrong_kind)["message"] == "the kind in the data (Secret) does not match the expected kind (ConfigMap)"
    wrong_version = raw.post(cm_path(namespace), {"apiVersion": "apps/v1", "kind": "ConfigMap", "metadata": {"name": "k"}})
    assert wrong_version.status == 400
    raw.post(cm_path(namespace), {"metadata": {"name": "named"}})
    wrong_name = raw.put(cm_path(namespace, "named"), {"metadata": {"name": "other"}})
    assert wrong_name.status == 400
    assert status_of(wrong_name)["message"] == "the name of the object (other) does not match the name on the URL (named)"
    wrong_ns = raw.post(cm_path(namespace), {"metadata": {"name": "k", "namespace": "default"}})
    assert wrong_ns.status == 400
    assert wrong_ns.json()["message"] == "the namespace of the provided object does not match the namespace sent on the request"
    assert raw.get(cm_path(namespace, "k")).status == 404
    assert {name for name, _ in snapshot(raw, namespace) - before} == {"named"}  # only the "named" create


@pytest.mark.parametrize("path", ["/api/v1/namespaces/default/widgets", "/apis/nope.example.com/v1/things",
                                  "/api/v1/namespaces/default/configmaps/x/bogus"])
def test_unknown_resource_is_404_with_kube_text(raw: Raw, path: str) -> None:
    resp = raw.get(path)
    assert resp.status == 404
    body = status_of(resp)
    assert body["message"] == "the server could not find the requested resource"
    assert body["reason"] == "NotFound"


def test_field_validation_strict_warn_ignore(raw: Raw, namespace: str) -> None:
    body = {"metadata": {"name": "fv"}, "data": {"a": "b"}, "bogus": 1, "spec": {"x": 1}}
    strict = raw.post(cm_path(namespace), body, query={"fieldValidation": "Strict"})
    assert strict.status == 400
    message = status_of(strict)["message"]
    assert message.startswith('ConfigMap in version "v1" cannot be handled as a ConfigMap: strict decoding error: ')
    assert 'unknown field "bogus"' in message and 'unknown field "spec"' in message
    assert raw.get(cm_path(namespace, "fv")).status == 404

    warn = raw.post(cm_path(namespace), body, query={"fieldValidation": "Warn"})
    assert warn.status == 201
    assert sorted(warn.warnings) == ['299 - "unknown field \\"bogus\\""', '299 - "unknown field \\"spec\\""']
    assert "bogus" not in warn.json()

    raw.delete(cm_path(namespace, "fv"))
    ignore = raw.post(cm_path(namespace), body, query={"fieldValidation": "Ignore"})
    assert ignore.status == 201 and ignore.warnings == []
    assert "bogus" not in ignore.json()

    bad = raw.post(cm_path(namespace), body, query={"fieldValidation": "Loud"})
    assert bad.status == 400


def test_unsupported_patch_type_is_415(raw: Raw, namespace: str) -> None:
    raw.post(cm_path(namespace), {"metadata": {"name": "pt"}})
    resp = raw.patch(cm_path(namespace, "pt"), {"data": {"a": "b"}}, content_type="text/plain")
    assert resp.status == 415
    assert status_of(resp)["reason"] == "UnsupportedMediaType"


def test_failing_patch_changes_nothing(raw: Raw, namespace: str) -> None:
    created = raw.post(cm_path(namespace), {"metadata": {"name": "fp"}, "data": {"a": "1"}}).json()
    resp = raw.patch(cm_path(namespace, "fp"), [{"op": "test", "path": "/data/a", "value": "2"},
                                                {"op": "replace", "path": "/data/a", "value": "3"}],
                     content_type="application/json-patch+json")
    assert resp.status in (409, 422), resp
    renamed = raw.patch(cm_path(namespace, "fp"), {"metadata": {"name": "other"}})
    assert renamed.status == 422, renamed
    assert status_of(renamed)["message"] == 'ConfigMap "other" is invalid: metadata.name: Invalid value: "other": field is immutable'
    got = raw.get(cm_path(namespace, "fp")).json()
    assert got["data"] == {"a": "1"} and got["metadata"]["resourceVersion"] == created["metadata"]["resourceVersion"]


def test_dry_run_stores_nothing(raw: Raw, namespace: str) -> None:
    # Compare the objects themselves: the list's resourceVersion is the cluster-wide revision,
    # which other components' writes (leases, events) move on at any time.
    created = raw.post(cm_path(namespace), {"metadata": {"name": "dry"}}, query={"dryRun": "All"})
    assert created.status == 201 and created.json()["metadata"]["uid"]
    assert "resourceVersion" not in created.json()["metadata"] or not created.json()["metadata"]["resourceVersion"]
    assert raw.get(cm_path(namespace, "dry")).status == 404
    wet = raw.post(cm_path(namespace), {"metadata": {"name": "wet"}, "data": {"a": "1"}}).json()
    patched = raw.patch(cm_path(namespace, "wet"), {"data": {"a": "2"}}, query={"dryRun": "All"})
    assert patched.status == 200 and patched.json()["data"] == {"a": "2"}
    assert raw.delete(cm_path(namespace, "wet"), query={"dryRun": "All"}).status == 200
    got = raw.get(cm_path(namespace, "wet"))
    assert got.status == 200 and got.json()["data"] == {"a": "1"}
    assert got.json()["metadata"]["resourceVersion"] == wet["metadata"]["resourceVersion"]
    names = [item["metadata"]["name"] for item in raw.get(cm_path(namespace)).json()["items"]]
    assert "dry" not in names
