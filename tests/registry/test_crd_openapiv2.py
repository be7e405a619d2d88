"""Custom resources' /openapi/v2 definitions: the weaker schema apiextensions-apiserver publishes
for kubectl (what the upstream CustomResourcePublishOpenAPI conformance tests compare)."""

from __future__ import annotations

from pykube_server.apiserver.openapi import OpenAPI
from pykube_server.registry.crd.openapiv2 import v2_definition
from pykube_server.registry.crd.resource import openapi_definitions

GVK = [{"group": "example.com", "kind": "Foo", "version": "v1"}]


def _crd(schema: dict) -> dict:
    return {"spec": {"group": "example.com", "scope": "Namespaced",
                     "names": {"plural": "foos", "singular": "foo", "kind": "Foo", "listKind": "FooList"},
                     "versions": [{"name": "v1", "served": True, "storage": True,
                                   "schema": {"openAPIV3Schema": schema}}]}}


def test_root_preserving_unknown_fields_is_a_bare_object() -> None:
    d = v2_definition({"type": "object", "description": "root", "x-kubernetes-preserve-unknown-fields": True,
                       "properties": {"spec": {"type": "object"}}, "x-kubernetes-group-version-kind": GVK})
    assert d == {"type": "object", "x-kubernetes-group-version-kind": GVK}


def test_nested_preserve_nullable_junctors_and_typed_arrays() -> None:
    d = v2_definition({
        "type": "object", "x-kubernetes-group-version-kind": GVK, "required": ["a", "n"],
        "properties": {
            "a": {"type": "object", "x-kubernetes-preserve-unknown-fields": True, "description": "kept",
                  "properties": {"x": {"type": "string"}}},
            "n": {"type": "string", "nullable": True},
            "l": {"type": "array", "items": {"type": "object", "x-kubernetes-preserve-unknown-fields": True,
                                             "properties": {"y": {"type": "string"}}}},
            "j": {"type": "string", "anyOf": [{"pattern": "a"}], "maxLength": 3},
            "metadata": {"allOf": [{"$ref": "#/$defs/io.k8s.apimachinery.pkg.apis.meta.v1.ObjectMeta"}]},
        }})
    props = d["properties"]
    assert props["a"] == {"description": "kept", "x-kubernetes-preserve-unknown-fields": True}
    assert props["n"] == {}
    assert d["required"] == ["a"]  # a nullable field is not required in v2
    assert props["l"] == {"type": "array", "items": {"x-kubernetes-preserve-unknown-fields": True}}
    assert props["j"] == {"type": "string", "maxLength": 3}
    # what the server adds is not weakened
    assert props["metadata"]["allOf"]


def test_v2_document_weakens_only_custom_definitions_and_v3_keeps_them() -> None:
    import orjson

    schema = {"type": "object", "x-kubernetes-preserve-unknown-fields": True}
    defs = openapi_definitions(_crd(schema))
    doc = OpenAPI([], "1.33", extra_definitions=defs)
    v2 = orjson.loads(doc.v2())["definitions"]
    assert v2["com.example.v1.Foo"] == {"type": "object", "x-kubernetes-group-version-kind": GVK}
    assert "properties" in v2["com.example.v1.FooList"]
    assert "x-kubernetes-preserve-unknown-fields" in defs["com.example.v1.Foo"]  # the input is untouched
    assert "properties" in v2["io.k8s.api.core.v1.Pod"]
