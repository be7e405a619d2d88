"""The `enum` values kube 1.33 publishes in OpenAPI for enum-typed string fields.

kube's OpenAPI generator gives every field whose Go type is marked `+enum` an `enum` array (the
sorted values of that type's constants) and appends "Possible enum values:" to its description;
`kubectl explain` prints the array as `ENUM:`. The definitions from kubernetes-validate lack
both, so `openapi_enums.json` (derived from k8s.io/api v0.33 by `tools/gen_openapi_enums.py`)
lists them per definition and property. The value list in the description carries the values
only, not the per-value remarks of kube's Go comments.
"""

from __future__ import annotations

import functools
from pathlib import Path
from typing import Any

import orjson

Obj = dict[str, Any]
_TABLE = Path(__file__).with_name("openapi_enums.json")


@functools.cache
def table() -> dict[str, dict[str, list[str]]]:
    """definition name -> property -> values (read once; treat as read-only)."""
    enums: dict[str, dict[str, list[str]]] = orjson.loads(_TABLE.read_bytes())["enums"]
    return enums


def annotate(name: str, schema: Obj) -> Obj:
    """An OpenAPI schema of definition `name` with its enum-typed properties marked (a new dict
    where anything changes; `schema` itself is left alone)."""
    fields = table().get(name)
    props = schema.get("properties")
    if not fields or not isinstance(props, dict):
        return schema
    new_props = dict(props)
    for prop, values in fields.items():
        if isinstance(props.get(prop), dict):
            new_props[prop] = _marked(props[prop], values)
    return {**schema, "properties": new_props}


def _marked(prop: Obj, values: list[str]) -> Obj:
    listing = "".join(f'\n - `"{v}"`' for v in values)
    description = prop.get("description", "")
    return {**prop, "description": f"{description}\n\nPossible enum values:{listing}" if description
            else f"Possible enum values:{listing}", "enum": list(values)}
