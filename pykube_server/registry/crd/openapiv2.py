"""A custom resource's OpenAPI definition in the form kube-apiserver publishes in /openapi/v2.

v2 is what old kubectl validated against, and kubectl rejects fields it cannot see, so
apiextensions-apiserver publishes a weaker schema there than in v3: junctors (allOf, anyOf, oneOf,
not) go, nullable and unknown-field-preserving nodes lose their properties and items (and their
type, where kubectl would otherwise insist on it), and a kind whose root preserves unknown fields
is published as a bare `type: object` (with only its group-version-kind). v3 keeps the full schema.
The upstream conformance test CustomResourcePublishOpenAPI compares v2 definitions with these rules.
"""

from __future__ import annotations

import copy
from typing import Any

Obj = dict[str, Any]
_JUNCTORS = ("allOf", "anyOf", "oneOf", "not")
_ADDED = ("apiVersion", "kind", "metadata")
_GVK = "x-kubernetes-group-version-kind"
_PRESERVE = "x-kubernetes-preserve-unknown-fields"


def v2_definitions(definitions: dict[str, Obj]) -> dict[str, Obj]:
    """The v2 forms of custom resources' definitions (as `resource.openapi_definitions` makes them;
    list kinds hold nothing these rules change)."""
    return {name: v2_definition(d) for name, d in definitions.items()}


def v2_definition(definition: Obj) -> Obj:
    """One kind's definition for v2 (ToStructuralOpenAPIV2 plus the bare root of buildKubeNative)."""
    if definition.get(_PRESERVE) is True:
        return {"type": "object", _GVK: copy.deepcopy(definition.get(_GVK, []))}
    out = copy.deepcopy(definition)
    added = {k: out["properties"].pop(k) for k in _ADDED if k in out.get("properties", {})}
    _weaken(out)
    if added:
        out.setdefault("properties", {}).update(added)
    return out


def _weaken(node: Obj) -> None:
    """The per-node rules, parent before children (the visitor's order): a parent reads its
    children's `nullable` before they drop it."""
    for junctor in _JUNCTORS:
        node.pop(junctor, None)
    if node.get("nullable") is True:
        for key in ("type", "nullable", "items", "properties"):
            node.pop(key, None)
    if node.get(_PRESERVE) is True:
        node.pop("items", None)
        node.pop("properties", None)
    if node.get("type") == "array" and "items" not in node:
        node.pop("type")
    if node.get(_PRESERVE) is True and node.get("type") == "object":
        node.pop("type")
    props = node.get("properties") or {}
    if "required" in node:
        nullable = {name for name, child in props.items() if isinstance(child, dict) and child.get("nullable") is True}
        extra = node.get("additionalProperties")
        if isinstance(extra, dict) and extra.get("nullable") is True:
            node.pop("required")
        elif nullable:
            kept = [r for r in node["required"] if r not in nullable]
            if kept:
                node["required"] = kept
            else:
                node.pop("required")
    for child in props.values():
        if isinstance(child, dict):
            _weaken(child)
    for key in ("items", "additionalProperties"):
        if isinstance(node.get(key), dict):
            _weaken(node[key])
