"""The `enum` values kube 1.33 publishes in OpenAPI for enum-typed string fields.

kube's OpenAPI generator gives every field whose Go type is marked `+enum` an `enum` array (the
sorted values of that type's constants) and appends "Possible enum values:" to its description,
one line per value with the remark it takes from that constant's Go doc comment; `kubectl explain`
prints the array as `ENUM:` and the description as it is. The definitions from
kubernetes-validate lack both, so `openapi_enums.json` (derived from k8s.io/api v0.33 by
`tools/gen_openapi_enums.py`) lists them per definition and property: `enums` holds the values,
`remarks` each value's remark ("" where its constant has no comment).
"""

from __future__ import annotations

import functools
from pathlib import Path
from typing import Any

import orjson

Obj = dict[str, Any]
_TABLE = Path(__file__).with_name("openapi_enums.json")
_HEADER = "Possible enum values:"


@functools.cache
def _document() -> Obj:
    document: Obj = orjson.loads(_TABLE.read_bytes())
    return document


def table() -> dict[str, dict[str, list[str]]]:
    """definition name -> property -> values (read once; treat as read-only)."""
    enums: dict[str, dict[str, list[str]]] = _document()["enums"]
    return enums


def remarks() -> dict[str, dict[str, dict[str, str]]]:
    """definition name -> property -> value -> remark (read once; treat as read-only)."""
    said: dict[str, dict[str, dict[str, str]]] = _document().get("remarks", {})
    return said


def annotate(name: str, schema: Obj) -> Obj:
    """An OpenAPI schema of definition `name` with its enum-typed properties marked (a new dict
    where anything changes; `schema` itself is left alone)."""
    fields = table().get(name)
    props = schema.get("properties")
    if not fields or not isinstance(props, dict):
        return schema
    said = remarks().get(name, {})
    new_props = dict(props)
    for prop, values in fields.items():
        if isinstance(props.get(prop), dict):
            new_props[prop] = _marked(props[prop], values, said.get(prop, {}))
    return {**schema, "properties": new_props}


def value_line(value: str, remark: str) -> str:
    """One line of the list as kube-openapi writes it: the value as a quoted Go literal in
    backticks, then its remark; a value without one keeps no trailing blank (kube trims the
    right end of every description line)."""
    quoted = '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'
    return f" - `{quoted}` {remark}".rstrip(" ")


def describe(description: str, values: list[str], said: dict[str, str]) -> str:
    """`description` with kube's enum paragraph appended: a blank line, the header, then the
    value lines sorted as strings (kube sorts the finished lines). With no description of its
    own the paragraph stands alone, as kube trims leading newlines."""
    lines = sorted(value_line(v, said.get(v, "")) for v in values)
    paragraph = _HEADER + "".join("\n" + line for line in lines)
    return f"{description}\n\n{paragraph}" if description else paragraph


def _marked(prop: Obj, values: list[str], said: dict[str, str]) -> Obj:
    return {**prop, "description": describe(prop.get("description", ""), values, said), "enum": list(values)}
