"""A custom resource against its structural OpenAPI v3 schema: validation, pruning, defaulting.

The same steps, in the same order, as apiextensions-apiserver applies to a custom object:
unknown fields are found (for `fieldValidation`) and pruned, non-nullable nulls without a default
are dropped, `default`s are filled in top-down, and then the object is validated the way
kube-openapi's validator does. Validation messages are kube-openapi's (`spec.replicas in body
should be greater than or equal to 1`) inside apimachinery field errors, so kubectl prints what
a real cluster prints.
"""

from __future__ import annotations

import base64
import copy
import ipaddress
import re
import uuid
from collections.abc import Iterator
from datetime import datetime
from typing import Any

import orjson

from pykube_server.api.fields import FieldError, Path, not_supported, required
from pykube_server.registry.fieldcheck import unknown_fields as typed_unknown_fields

Obj = dict[str, Any]
Schema = dict[str, Any]

OBJECT_META = "io.k8s.apimachinery.pkg.apis.meta.v1.ObjectMeta"


class SchemaError(FieldError):
    """apimachinery errors our base FieldError does not model: TypeInvalid, TooMany (which
    print their value) and TooLong from a schema's maxLength (which does not)."""

    __slots__ = ()

    @property
    def reason(self) -> str:
        own = {"TypeInvalid": "FieldValueTypeInvalid", "TooMany": "FieldValueTooMany", "TooLong": "FieldValueTooLong"}
        return own[self.type] if self.type in own else FieldError.reason.fget(self)  # type: ignore[attr-defined]

    def body(self) -> str:
        if self.type == "TypeInvalid":
            return f"Invalid value: {_quote(self.bad_value)}: {self.detail}"
        if self.type == "TooMany":
            return f"Too many: {_quote(self.bad_value)}: {self.detail}"
        if self.type == "TooLong":
            return f"Too long: {self.detail}"
        return super().body()


def _quote(value: Any) -> str:
    return FieldError("Invalid", "", value).body().removeprefix("Invalid value: ")


def go_number(value: float | int) -> str:
    """Go's %v of a float64 bound (10, 1.5, 1e+21)."""
    if isinstance(value, bool):
        return str(value).lower()
    number = float(value)
    if number.is_integer() and abs(number) < 1e21:
        return str(int(number))
    text = repr(number)
    if "e" in text:
        mantissa, _, exp = text.partition("e")
        sign = "-" if exp.startswith("-") else "+"
        text = f"{mantissa}e{sign}{exp.lstrip('+-').zfill(2)}"
    return text


def type_name(value: Any) -> str:
    """The JSON type kube-openapi names a value by."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int):
        return "integer"
    if isinstance(value, float):
        return "integer" if value.is_integer() else "number"
    if isinstance(value, str):
        return "string"
    if isinstance(value, list):
        return "array"
    return "object"


# -- unknown fields and pruning ------------------------------------------------------------------
def _walk_unknown(value: Any, schema: Schema | None, path: str, root: bool, out: list[str]) -> None:
    if schema is None or schema.get("x-kubernetes-preserve-unknown-fields"):
        if schema is not None and isinstance(value, dict):
            props = schema.get("properties") or {}
            for key, child in value.items():
                if key in props and not (key == "metadata" and schema.get("x-kubernetes-embedded-resource")):
                    _walk_unknown(child, props[key], _join(path, key), False, out)
            meta = value.get("metadata")
            if schema.get("x-kubernetes-embedded-resource") and isinstance(meta, dict):
                out.extend(_join(_join(path, "metadata"), p) for p in typed_unknown_fields(meta, OBJECT_META))
        return
    if isinstance(value, dict):
        embedded = root or bool(schema.get("x-kubernetes-embedded-resource"))
        props = schema.get("properties") or {}
        extra = schema.get("additionalProperties")
        for key, child in value.items():
            sub = _join(path, key)
            if embedded and key in ("apiVersion", "kind"):
                continue
            if embedded and key == "metadata":
                if isinstance(child, dict):
                    out.extend(_join(sub, p) for p in typed_unknown_fields(child, OBJECT_META))
                continue
            if key in props:
                _walk_unknown(child, props[key], sub, False, out)
            elif isinstance(extra, dict):
                _walk_unknown(child, extra, sub, False, out)
            elif extra is True:
                continue
            else:
                out.append(sub)
    elif isinstance(value, list) and isinstance(schema.get("items"), dict):
        for i, child in enumerate(value):
            _walk_unknown(child, schema["items"], f"{path}[{i}]", False, out)


def _join(path: str, key: str) -> str:
    return f"{path}.{key}" if path else key


def unknown_fields(obj: Obj, schema: Schema) -> list[str]:
    """Paths (`spec.foo`, `spec.items[0].bar`) the schema prunes, in the object's order."""
    out: list[str] = []
    _walk_unknown(obj, schema, "", True, out)
    return out


def prune(obj: Obj, schema: Schema) -> None:
    """Drop every field the schema does not specify (in place)."""
    for path in reversed(unknown_fields(obj, schema)):
        _drop(obj, path)


_SEGMENT = re.compile(r"([^.\[\]]+)|\[(\d+)\]")


def _drop(obj: Any, path: str) -> None:
    parts: list[str | int] = [m.group(1) if m.group(1) is not None else int(m.group(2)) for m in _SEGMENT.finditer(path)]
    cur = obj
    for part in parts[:-1]:
        if isinstance(part, int) and isinstance(cur, list) and part < len(cur):
            cur = cur[part]
        elif isinstance(part, str) and isinstance(cur, dict) and part in cur:
            cur = cur[part]
        else:
            return
    if isinstance(cur, dict) and isinstance(parts[-1], str):
        cur.pop(parts[-1], None)


# -- defaulting ------------------------------------------------------------------------------------
def apply_defaults(value: Any, schema: Schema | None) -> None:
    """Fill `default`s top-down (in place); nulls of non-nullable fields are replaced by their
    default or, without one, dropped (structural defaulting and null pruning)."""
    if schema is None:
        return
    if isinstance(value, dict):
        props = schema.get("properties") or {}
        for key, sub in props.items():
            if key in value and value[key] is None and not sub.get("nullable"):
                if "default" in sub:
                    value[key] = copy.deepcopy(sub["default"])
                else:
                    del value[key]
            elif key not in value and "default" in sub:
                value[key] = copy.deepcopy(sub["default"])
        for key, child in value.items():
            if key in props:
                apply_defaults(child, props[key])
            elif isinstance(schema.get("additionalProperties"), dict):
                apply_defaults(child, schema["additionalProperties"])
    elif isinstance(value, list) and isinstance(schema.get("items"), dict):
        for child in value:
            apply_defaults(child, schema["items"])


def has_defaults(schema: Schema | None) -> bool:
    """Whether any node of the schema declares a `default` (reads then need defaulting)."""
    if not isinstance(schema, dict):
        return False
    if "default" in schema:
        return True
    if has_defaults(schema.get("items")) or has_defaults(schema.get("additionalProperties")):
        return True
    return any(has_defaults(s) for s in (schema.get("properties") or {}).values())


# -- validation ------------------------------------------------------------------------------------
def validate(obj: Obj, schema: Schema) -> list[FieldError]:
    """Every schema violation of `obj` (metadata is validated elsewhere, as ObjectMeta)."""
    body = {k: v for k, v in obj.items() if k != "metadata"}
    root = {k: v for k, v in schema.items() if k != "required"}
    root["required"] = [r for r in schema.get("required") or [] if r != "metadata"]
    root["properties"] = {k: v for k, v in (schema.get("properties") or {}).items() if k != "metadata"}
    return list(_validate(body, root, Path(), True))


def _fail(path: Path, value: Any, message: str) -> FieldError:
    return FieldError("Invalid", str(path), value, message)


def _name(path: Path) -> str:
    return str(path) or "."


def _validate(value: Any, schema: Schema, path: Path, root: bool = False) -> Iterator[FieldError]:
    name = _name(path)
    if value is None:
        if schema.get("nullable") or not (schema.get("type") or schema.get("x-kubernetes-int-or-string")):
            return
        yield SchemaError("TypeInvalid", str(path), "null", f'{name} in body must be of type {_types(schema)}: "null"')
        return
    if not _type_ok(value, schema):
        kind = type_name(value)
        yield SchemaError("TypeInvalid", str(path), kind, f'{name} in body must be of type {_types(schema)}: "{kind}"')
        return
    if schema.get("x-kubernetes-embedded-resource") and isinstance(value, dict):
        for key in ("apiVersion", "kind"):
            if not value.get(key):
                yield required(path.child(key), "must not be empty")
    yield from _value_checks(value, schema, path)
    if isinstance(value, dict):
        for key in schema.get("required") or []:
            if key not in value:
                yield required(path.child(key))
        props = schema.get("properties") or {}
        extra = schema.get("additionalProperties")
        if schema.get("maxProperties") is not None and len(value) > schema["maxProperties"]:
            yield SchemaError("TooMany", str(path), len(value), f"must have at most {schema['maxProperties']} items")
        if schema.get("minProperties") is not None and len(value) < schema["minProperties"]:
            yield _fail(path, value, f"{name} in body should have at least {schema['minProperties']} properties")
        for key, child in sorted(value.items()):
            if key in props:
                yield from _validate(child, props[key], path.child(key))
            elif isinstance(extra, dict):
                yield from _validate(child, extra, path.child(key))
    elif isinstance(value, list):
        items = schema.get("items")
        if isinstance(items, dict):
            for i, child in enumerate(value):
                yield from _validate(child, items, path.index(i))
    for i, sub in enumerate(schema.get("allOf") or []):
        yield from _validate_nested(value, sub, path)
    any_of = schema.get("anyOf") or []
    if any_of and not any(not list(_validate_nested(value, sub, path)) for sub in any_of):
        yield _fail(path, value, f"{name} in body must validate at least one schema (anyOf)")
    one_of = schema.get("oneOf") or []
    if one_of and sum(1 for sub in one_of if not list(_validate_nested(value, sub, path))) != 1:
        yield _fail(path, value, f"{name} in body must validate one and only one schema (oneOf)")
    if isinstance(schema.get("not"), dict) and not list(_validate_nested(value, schema["not"], path)):
        yield _fail(path, value, f"{name} in body must not validate the schema (not)")


def _validate_nested(value: Any, schema: Schema, path: Path) -> Iterator[FieldError]:
    """Value validation under allOf/anyOf/oneOf/not: no types of its own in a structural schema."""
    yield from _value_checks(value, schema, path)
    if isinstance(value, dict):
        for key in schema.get("required") or []:
            if key not in value:
                yield required(path.child(key))
        for key, sub in (schema.get("properties") or {}).items():
            if key in value:
                yield from _validate_nested(value[key], sub, path.child(key))
    if isinstance(value, list) and isinstance(schema.get("items"), dict):
        for i, child in enumerate(value):
            yield from _validate_nested(child, schema["items"], path.index(i))


def _types(schema: Schema) -> str:
    if schema.get("x-kubernetes-int-or-string"):
        return "integer,string"
    return str(schema.get("type", ""))


def _type_ok(value: Any, schema: Schema) -> bool:
    if schema.get("x-kubernetes-int-or-string"):
        return isinstance(value, str) or (isinstance(value, int) and not isinstance(value, bool))
    expected = schema.get("type")
    if not expected:
        return True
    actual = type_name(value)
    return actual == expected or (expected == "number" and actual == "integer")


def _value_checks(value: Any, schema: Schema, path: Path) -> Iterator[FieldError]:
    name = _name(path)
    if isinstance(value, str):
        if schema.get("maxLength") is not None and len(value) > schema["maxLength"]:
            yield SchemaError("TooLong", str(path), value, f"may not be longer than {schema['maxLength']}")
        if schema.get("minLength") is not None and len(value) < schema["minLength"]:
            yield _fail(path, value, f"{name} in body should be at least {schema['minLength']} chars long")
        pattern = schema.get("pattern")
        if pattern and not _search(pattern, value):
            yield _fail(path, value, f"{name} in body should match '{pattern}'")
        fmt = schema.get("format")
        if fmt and not check_format(fmt, value):
            yield _fail(path, value, f'{name} in body must be of type {fmt}: {orjson.dumps(value).decode()}')
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        yield from _number_checks(value, schema, path, name)
    if isinstance(value, list):
        if schema.get("maxItems") is not None and len(value) > schema["maxItems"]:
            yield SchemaError("TooMany", str(path), len(value), f"must have at most {schema['maxItems']} items")
        if schema.get("minItems") is not None and len(value) < schema["minItems"]:
            yield _fail(path, value, f"{name} in body should have at least {schema['minItems']} items")
        if schema.get("uniqueItems") and len({orjson.dumps(v, option=orjson.OPT_SORT_KEYS) for v in value}) != len(value):
            yield FieldError("Duplicate", str(path), value)
    enum = schema.get("enum")
    if enum is not None and value not in enum:
        values = [e if isinstance(e, str) else orjson.dumps(e).decode() for e in enum]
        yield not_supported(path, value, values)


def _number_checks(value: float, schema: Schema, path: Path, name: str) -> Iterator[FieldError]:
    maximum, minimum = schema.get("maximum"), schema.get("minimum")
    if maximum is not None:
        if schema.get("exclusiveMaximum") and value >= maximum:
            yield _fail(path, value, f"{name} in body should be less than {go_number(maximum)}")
        elif value > maximum:
            yield _fail(path, value, f"{name} in body should be less than or equal to {go_number(maximum)}")
    if minimum is not None:
        if schema.get("exclusiveMinimum") and value <= minimum:
            yield _fail(path, value, f"{name} in body should be greater than {go_number(minimum)}")
        elif value < minimum:
            yield _fail(path, value, f"{name} in body should be greater than or equal to {go_number(minimum)}")
    factor = schema.get("multipleOf")
    if factor and (value / factor) != int(value / factor):
        yield _fail(path, value, f"{name} in body should be a multiple of {go_number(factor)}")


_PATTERNS: dict[str, re.Pattern[str] | None] = {}


def _search(pattern: str, value: str) -> bool:
    if pattern not in _PATTERNS:
        try:
            _PATTERNS[pattern] = re.compile(pattern)
        except re.error:
            _PATTERNS[pattern] = None
    compiled = _PATTERNS[pattern]
    return compiled is None or compiled.search(value) is not None


# -- formats (kube-openapi's strfmt registry as CRDs use it) ----------------------------------------
_HOSTNAME = re.compile(r"^[a-zA-Z0-9]([-a-zA-Z0-9]{0,62})?(\.[a-zA-Z0-9]([-a-zA-Z0-9]{0,62})?)*\.?$")
_EMAIL = re.compile(r"^[^@\s]+@[^@\s]+$")
_MAC = re.compile(r"^([0-9A-Fa-f]{2}[:-]){5}[0-9A-Fa-f]{2}$")
_DURATION = re.compile(r"^(\d+(\.\d+)?(ns|us|µs|ms|s|m|h|d|w))+$")
_DATE_TIME = re.compile(r"^\d{4}-\d{2}-\d{2}[Tt ]\d{2}:\d{2}:\d{2}(\.\d+)?([Zz]|[+-]\d{2}:\d{2})$")
_UUID = re.compile(r"^[0-9a-fA-F]{8}-?[0-9a-fA-F]{4}-?[0-9a-fA-F]{4}-?[0-9a-fA-F]{4}-?[0-9a-fA-F]{12}$")


def check_format(fmt: str, value: str) -> bool:
    """True when `value` is valid for the format (unknown formats accept anything)."""
    try:
        if fmt in ("date-time", "datetime"):
            return bool(_DATE_TIME.match(value))
        if fmt == "date":
            datetime.strptime(value, "%Y-%m-%d")
            return True
        if fmt in ("uuid", "uuid3", "uuid4", "uuid5"):
            if not _UUID.match(value):
                return False
            return fmt == "uuid" or uuid.UUID(value).version == int(fmt[-1])
        if fmt == "ipv4":
            return isinstance(ipaddress.ip_address(value), ipaddress.IPv4Address)
        if fmt == "ipv6":
            return isinstance(ipaddress.ip_address(value), ipaddress.IPv6Address)
        if fmt == "cidr":
            ipaddress.ip_network(value, strict=False)
            return "/" in value
        if fmt == "hostname":
            return len(value) <= 255 and bool(_HOSTNAME.match(value))
        if fmt == "email":
            return bool(_EMAIL.match(value))
        if fmt == "mac":
            return bool(_MAC.match(value))
        if fmt == "byte":
            base64.b64decode(value, validate=True)
            return True
        if fmt == "duration":
            return bool(_DURATION.match(value))
    except ValueError:
        return False
    return True
