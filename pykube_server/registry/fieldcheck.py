"""Unknown-field detection for `fieldValidation` (Strict, Warn, Ignore).

Walks a request body against the kind's OpenAPI definition and names every field the schema
does not know, in kube's path form (`spec.containers[0].bogusField`). Parts of the schema
that accept anything (RawExtension, JSON, IntOrString, preserve-unknown-fields) end the walk.
"""

from __future__ import annotations

from typing import Any

from pykube_server.registry import schemas

_REF = "#/$defs/"
_IGNORED_TOP = {"apiVersion", "kind"}


def _resolve(schema: dict[str, Any]) -> dict[str, Any]:
    seen = 0
    while "$ref" in schema and seen < 32:
        ref = schema["$ref"]
        name = ref[ref.index(_REF) + len(_REF):] if _REF in ref else ref.rsplit("/", 1)[-1]
        schema = schemas.definition(name)
        seen += 1
    return schema


def unknown_fields(obj: Any, definition: str) -> list[str]:
    if not definition:
        return []
    out: list[str] = []
    _walk(obj, _resolve({"$ref": _REF + definition}), "", out)
    return out


def _walk(value: Any, schema: dict[str, Any], path: str, out: list[str]) -> None:
    schema = _resolve(schema)
    if schema.get("x-kubernetes-preserve-unknown-fields"):
        return
    if isinstance(value, dict):
        props = schema.get("properties")
        extra = schema.get("additionalProperties")
        if props is not None:
            for key, child in value.items():
                sub = f"{path}.{key}" if path else key
                if key in props:
                    _walk(child, props[key], sub, out)
                elif isinstance(extra, dict):
                    _walk(child, extra, sub, out)
                elif not (path == "" and key in _IGNORED_TOP):
                    out.append(sub)
        elif isinstance(extra, dict):
            for key, child in value.items():
                _walk(child, extra, f"{path}.{key}" if path else key, out)
    elif isinstance(value, list):
        items = schema.get("items")
        if isinstance(items, dict):
            for i, child in enumerate(value):
                _walk(child, items, f"{path}[{i}]", out)
