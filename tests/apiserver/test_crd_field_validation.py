"""Custom resources: repeated keys and undeclared fields answered as apiextensions-apiserver 1.33.

Facts (kube's test/integration/apiserver/field_validation_test.go, the CRD cases):
- create/update (JSON): `strict decoding error: duplicate field "metadata.name", duplicate field
  "spec.unknownDupe", ..., unknown field "metadata.unknownMeta", unknown field
  "spec.ports[0].unknownNested", unknown field "spec.unknown1", unknown field "spec.unknownDupe",
  unknown field "spec.embeddedObj.metadata.unknownEmbeddedMeta"`: what the JSON decoder found
  first (document order), then the schema's unknown fields (object metadata, the rest in key
  order, embedded metadata last); a key both repeated and unknown is named twice. Warn: one
  warning each, same order; Ignore: silent, last value wins, unknown fields pruned.
- YAML: the yaml.v2 error (one line per repeated key) first, then the unknown fields.
- server-side apply: repeated YAML keys -> 400 `error strict decoding YAML: ...` under Strict;
  an undeclared field -> 500 `failed to create typed patch object (...): .unknownField: field
  not declared in schema`.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator

import orjson
import pytest

from tests.apiserver.test_rest_support import Raw
from tests.conftest import ServerProcess

GROUP = f"fv{uuid.uuid4().hex[:6]}.example.com"
PORTS = {"type": "array", "items": {"type": "object", "properties": {
    "name": {"type": "string"}, "containerPort": {"type": "integer"}, "protocol": {"type": "string"},
    "hostPort": {"type": "integer"}}}}
EMBEDDED = {"type": "object", "x-kubernetes-embedded-resource": True, "x-kubernetes-preserve-unknown-fields": True}
CRD = {
    "apiVersion": "apiextensions.k8s.io/v1", "kind": "CustomResourceDefinition",
    "metadata": {"name": f"widgets.{GROUP}"},
    "spec": {"group": GROUP, "scope": "Namespaced",
             "names": {"plural": "widgets", "singular": "widget", "kind": "Widget", "listKind": "WidgetList"},
             "versions": [{"name": "v1", "served": True, "storage": True, "schema": {"openAPIV3Schema": {
                 "type": "object", "properties": {"spec": {"type": "object", "properties": {
                     "knownField1": {"type": "string"}, "ports": PORTS, "embeddedObj": EMBEDDED}}}}}}]},
}

INVALID_JSON = """{
  "apiVersion": "%s/v1",
  "kind": "Widget",
  "metadata": {
    "name": "dupename",
    "name": "%s",
    "unknownMeta": "metaVal"
  },
  "spec": {
    "unknown1": "val1",
    "unknownDupe": "valDupe",
    "unknownDupe": "valDupe2",
    "knownField1": "val1",
    "knownField1": "val2",
    "ports": [{
      "name": "portName",
      "containerPort": 8080,
      "protocol": "TCP",
      "hostPort": 8081,
      "hostPort": 8082,
      "unknownNested": "val"
    }],
    "embeddedObj": {
      "apiVersion": "v1",
      "kind": "ConfigMap",
      "metadata": {"name": "my-cm", "namespace": "my-ns", "unknownEmbeddedMeta": "foo"}
    }
  }
}"""
TEXTS = [
    'duplicate field "metadata.name"',
    'duplicate field "spec.unknownDupe"',
    'duplicate field "spec.knownField1"',
    'duplicate field "spec.ports[0].hostPort"',
    'unknown field "metadata.unknownMeta"',
    'unknown field "spec.ports[0].unknownNested"',
    'unknown field "spec.unknown1"',
    'unknown field "spec.unknownDupe"',
    'unknown field "spec.embeddedObj.metadata.unknownEmbeddedMeta"',
]
INVALID_YAML = """apiVersion: %s/v1
kind: Widget
metadata:
  name: dupename
  name: %s
  unknownMeta: metaVal
spec:
  unknown1: val1
  unknownDupe: valDupe
  unknownDupe: valDupe2
  knownField1: val1
  knownField1: val2
"""
YAML_TEXTS = ['line 5: key "name" already set in map', 'line 10: key "unknownDupe" already set in map',
              'line 12: key "knownField1" already set in map',
              'unknown field "metadata.unknownMeta"', 'unknown field "spec.unknown1"', 'unknown field "spec.unknownDupe"']


@pytest.fixture(scope="module")
def raw(api_cluster: ServerProcess) -> Iterator[Raw]:
    client = Raw(api_cluster.kubeconfig)
    crds = "/apis/apiextensions.k8s.io/v1/customresourcedefinitions"
    assert client.post(crds, CRD).status == 201
    deadline = time.monotonic() + 20
    while client.get(f"/apis/{GROUP}/v1/widgets").status != 200:
        assert time.monotonic() < deadline, "the CRD was never served"
        time.sleep(0.1)
    yield client
    client.delete(f"{crds}/widgets.{GROUP}")


def widgets(ns: str) -> str:
    return f"/apis/{GROUP}/v1/namespaces/{ns}/widgets"


def warnings_of(resp) -> list[str]:  # type: ignore[no-untyped-def]
    return [orjson.loads(h.split(" - ", 1)[1]) for h in resp.headers.get_all("Warning") or []]


def test_json_create_strict_names_repeats_then_unknown_fields(raw: Raw, api_namespace: str) -> None:
    resp = raw.post(widgets(api_namespace), INVALID_JSON % (GROUP, "strict"), query={"fieldValidation": "Strict"})
    assert resp.status == 400, resp
    assert resp.json()["reason"] == "BadRequest"
    assert resp.json()["message"].endswith("strict decoding error: " + ", ".join(TEXTS)), resp.json()["message"]
    assert raw.get(widgets(api_namespace) + "/strict").status == 404


def test_json_create_and_update_warn_then_ignore(raw: Raw, api_namespace: str) -> None:
    resp = raw.post(widgets(api_namespace), INVALID_JSON % (GROUP, "warned"))
    assert resp.status == 201, resp
    assert warnings_of(resp) == TEXTS
    spec = resp.json()["spec"]
    assert spec["knownField1"] == "val2" and "unknown1" not in spec and spec["ports"][0]["hostPort"] == 8082
    put = raw.put(widgets(api_namespace) + "/warned", INVALID_JSON % (GROUP, "warned"), query={"fieldValidation": "Warn"})
    assert put.status == 200 and warnings_of(put) == TEXTS, put
    resp = raw.post(widgets(api_namespace), INVALID_JSON % (GROUP, "ignored"), query={"fieldValidation": "Ignore"})
    assert resp.status == 201 and warnings_of(resp) == [], resp
    assert resp.json()["metadata"]["name"] == "ignored"


def test_yaml_create_strict_and_warn(raw: Raw, api_namespace: str) -> None:
    resp = raw.post(widgets(api_namespace), INVALID_YAML % (GROUP, "ystrict"), content_type="application/yaml",
                    query={"fieldValidation": "Strict"})
    assert resp.status == 400, resp
    assert resp.json()["message"].endswith("strict decoding error: yaml: unmarshal errors:\n  "
                                           + "\n  ".join(YAML_TEXTS[:3]) + ", " + ", ".join(YAML_TEXTS[3:]))
    resp = raw.post(widgets(api_namespace), INVALID_YAML % (GROUP, "ywarn"), content_type="application/yaml")
    assert resp.status == 201 and warnings_of(resp) == YAML_TEXTS, resp


def test_merge_patch_names_its_repeats_then_the_unknown_fields(raw: Raw, api_namespace: str) -> None:
    body = {"apiVersion": f"{GROUP}/v1", "kind": "Widget", "metadata": {"name": "mp"}, "spec": {"knownField1": "a"}}
    assert raw.post(widgets(api_namespace), body).status == 201
    patch = '{"spec": {"knownField1": "b", "knownField1": "c", "unknown1": "x"}}'
    resp = raw.patch(widgets(api_namespace) + "/mp", patch, query={"fieldValidation": "Strict"})
    assert resp.status == 400, resp
    assert resp.json()["message"].endswith(
        'strict decoding error: duplicate field "spec.knownField1", unknown field "spec.unknown1"')
    resp = raw.patch(widgets(api_namespace) + "/mp", patch)
    assert resp.status == 200 and resp.json()["spec"] == {"knownField1": "c"}, resp
    assert warnings_of(resp) == ['duplicate field "spec.knownField1"', 'unknown field "spec.unknown1"']


def _apply(raw: Raw, ns: str, name: str, manifest: str, mode: str):  # type: ignore[no-untyped-def]
    return raw.patch(f"{widgets(ns)}/{name}", manifest, content_type="application/apply-patch+yaml",
                     query={"fieldManager": "mgr", "fieldValidation": mode})


def test_apply_with_repeated_yaml_keys_under_strict(raw: Raw, api_namespace: str) -> None:
    manifest = (f"apiVersion: {GROUP}/v1\nkind: Widget\nmetadata:\n  name: ap\nspec:\n"
                "  knownField1: a\n  knownField1: b\n")
    resp = _apply(raw, api_namespace, "ap", manifest, "Strict")
    assert resp.status == 400, resp
    assert resp.json()["message"] == ('error strict decoding YAML: error converting YAML to JSON: yaml: unmarshal '
                                      'errors:\n  line 7: key "knownField1" already set in map')
    resp = _apply(raw, api_namespace, "ap", manifest, "Warn")
    assert resp.status == 201 and warnings_of(resp) == ['line 7: key "knownField1" already set in map'], resp


@pytest.mark.parametrize("mode", ["Strict", "Ignore"])
def test_apply_with_an_undeclared_field_fails_the_typed_conversion(raw: Raw, api_namespace: str, mode: str) -> None:
    manifest = (f"apiVersion: {GROUP}/v1\nkind: Widget\nmetadata:\n  name: undeclared\n  namespace: {api_namespace}\n"
                "unknownField: x\nspec:\n  knownField1: a\n")
    resp = _apply(raw, api_namespace, "undeclared", manifest, mode)
    assert resp.status == 500, resp
    body = resp.json()
    assert "reason" not in body
    assert body["message"] == (f"failed to create typed patch object ({api_namespace}/undeclared; {GROUP}/v1, "
                               "Kind=Widget): .unknownField: field not declared in schema")
    assert raw.get(f"{widgets(api_namespace)}/undeclared").status == 404
