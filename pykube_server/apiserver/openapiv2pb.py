"""`/openapi/v2` as protobuf: the gnostic `openapi.v2.Document` kubectl asks for.

kubectl validates `create -f`/`apply -f` on the server when the v3 document shows the kind's
PATCH operation taking `fieldValidation`; for kinds without one (TokenReview,
SubjectAccessReview and the other create-only reviews) it falls back to validating on the
client with the v2 document, which it requests only as protobuf
(`application/com.github.proto-openapi.spec.v2@v1.0+protobuf`). So the definitions are served in
that encoding (gnostic's OpenAPIv2.proto field numbers, written here by a small encoder): every
schema with its type, properties, items, additionalProperties, required, enum, formats, limits
and vendor extensions (`x-kubernetes-group-version-kind`, which maps a kind to its model, list
and map types, int-or-string). Extension and default values travel as YAML, as gnostic does.
Paths are left out: the client-side validator reads definitions only.
"""

from __future__ import annotations

import struct
from typing import Any

import yaml

CONTENT_TYPE = "application/com.github.proto-openapi.spec.v2.v1.0+protobuf"
"""What kube-openapi answers with (requests may still name the older `...spec.v2@v1.0+protobuf`,
which Go's media-type parser would refuse in a response)."""
_REF_PREFIX = "#/definitions/"


def _varint(value: int) -> bytes:
    value &= (1 << 64) - 1
    out = bytearray()
    while True:
        bits = value & 0x7F
        value >>= 7
        if value:
            out.append(bits | 0x80)
        else:
            out.append(bits)
            return bytes(out)


def _key(field: int, wire: int) -> bytes:
    return _varint(field << 3 | wire)


def _bytes(field: int, data: bytes) -> bytes:
    return _key(field, 2) + _varint(len(data)) + data


def _str(field: int, text: str) -> bytes:
    return _bytes(field, text.encode())


def _int(field: int, value: int) -> bytes:
    return _key(field, 0) + _varint(int(value))


def _bool(field: int, value: bool) -> bytes:
    return _key(field, 0) + _varint(1 if value else 0)


def _double(field: int, value: float) -> bytes:
    return _key(field, 1) + struct.pack("<d", float(value))


def _any(field: int, value: Any) -> bytes:
    """gnostic's Any: the value as YAML (field 2)."""
    return _bytes(field, _str(2, yaml.safe_dump(value, default_flow_style=False, sort_keys=False)))


def _named(field: int, name: str, value: bytes) -> bytes:
    return _bytes(field, _str(1, name) + _bytes(2, value))


def schema(s: dict[str, Any]) -> bytes:
    """One gnostic `Schema` message from a JSON Schema / OpenAPI v2 schema."""
    out = bytearray()
    ref = s.get("$ref")
    if isinstance(ref, str):
        out += _str(1, _REF_PREFIX + ref.split("/")[-1])
    if isinstance(s.get("format"), str):
        out += _str(2, s["format"])
    if isinstance(s.get("description"), str):
        out += _str(4, s["description"])
    if "default" in s:
        out += _any(5, s["default"])
    for name, number in (("maximum", 7), ("minimum", 9)):
        if isinstance(s.get(name), (int, float)) and not isinstance(s.get(name), bool):
            out += _double(number, s[name])
    for name, number in (("exclusiveMaximum", 8), ("exclusiveMinimum", 10), ("uniqueItems", 16), ("readOnly", 27)):
        if isinstance(s.get(name), bool) and s[name]:
            out += _bool(number, s[name])
    for name, number in (("maxLength", 11), ("minLength", 12), ("maxItems", 14), ("minItems", 15),
                         ("maxProperties", 17), ("minProperties", 18)):
        if isinstance(s.get(name), int) and not isinstance(s.get(name), bool):
            out += _int(number, s[name])
    if isinstance(s.get("pattern"), str):
        out += _str(13, s["pattern"])
    for name in s.get("required") or ():
        out += _str(19, str(name))
    for value in s.get("enum") or ():
        if value is not None:
            out += _any(20, value)
    extra = s.get("additionalProperties")
    if isinstance(extra, dict):
        out += _bytes(21, _bytes(1, schema(extra)))
    elif isinstance(extra, bool):
        out += _bytes(21, _bool(2, extra))
    kinds = s.get("type")
    kinds = [kinds] if isinstance(kinds, str) else [k for k in kinds or () if k != "null"]
    if kinds:
        out += _bytes(22, b"".join(_str(1, k) for k in kinds))
    items = s.get("items")
    if isinstance(items, dict):
        out += _bytes(23, _bytes(1, schema(items)))
    elif isinstance(items, list):
        out += _bytes(23, b"".join(_bytes(1, schema(i)) for i in items if isinstance(i, dict)))
    for part in s.get("allOf") or ():
        if isinstance(part, dict):
            out += _bytes(24, schema(part))
    props = s.get("properties")
    if isinstance(props, dict):
        out += _bytes(25, b"".join(_named(1, name, schema(p)) for name, p in props.items() if isinstance(p, dict)))
    for name, value in s.items():
        if name.startswith("x-"):
            out += _bytes(31, _str(1, name) + _any(2, value))
    if isinstance(s.get("type"), list) and "string" in s["type"] and "integer" in s["type"]:
        out += _bytes(31, _str(1, "x-kubernetes-int-or-string") + _any(2, True))
    return bytes(out)


def document(definitions: dict[str, dict[str, Any]], version: str) -> bytes:
    """The `openapi.v2.Document`: swagger 2.0, info, no paths, every definition."""
    info = _str(1, "Kubernetes") + _str(2, f"v{version}.0")
    defs = b"".join(_named(1, name, schema(d)) for name, d in sorted(definitions.items()))
    return _str(1, "2.0") + _bytes(2, info) + _bytes(8, b"") + _bytes(9, defs)
