"""Unknown-field detection for `fieldValidation` (Strict, Warn, Ignore), and JSON type checks.

Walks a request body against the kind's OpenAPI definition and names every field the schema
does not know, in kube's path form (`spec.containers[0].bogusField`). Parts of the schema
that accept anything (RawExtension, JSON, IntOrString, preserve-unknown-fields) end the walk.

The same walk refuses a value of the wrong JSON type (a number where a string belongs), which
kube-apiserver's decoder refuses before anything else looks at the object, with Go's text:
`json: cannot unmarshal number into Go struct field ObjectMeta.metadata.name of type string`.
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


class TypeMismatch(ValueError):
    """A value of the wrong JSON type; the message is Go's UnmarshalTypeError text."""


def unknown_fields(obj: Any, definition: str) -> list[str]:
    """Unknown field paths; raises TypeMismatch for a value of the wrong type."""
    if not definition:
        return []
    root = _resolve({"$ref": _REF + definition})
    if _clean(obj, root, True):  # the common case, answered without building a single path
        return []
    out: list[str] = []
    _walk(obj, root, "", out, definition.rsplit(".", 1)[-1], "")
    return out


class _Plan:
    """What `_clean` needs of one schema node, worked out once: schemas never change."""

    __slots__ = ("types", "int_or_string", "open", "props", "extra", "items")

    def __init__(self, raw: dict[str, Any]) -> None:
        schema = _resolve(raw)
        expected = _schema_type(schema)
        self.types = _JSON_TYPES[expected] if expected else None
        self.int_or_string = bool(schema.get("x-kubernetes-int-or-string"))
        self.open = bool(schema.get("x-kubernetes-preserve-unknown-fields"))
        props, extra, items = schema.get("properties"), schema.get("additionalProperties"), schema.get("items")
        self.props: dict[str, Any] | None = props if isinstance(props, dict) else None
        self.extra: dict[str, Any] | None = extra if isinstance(extra, dict) else None
        self.items: dict[str, Any] | None = items if isinstance(items, dict) else None


_PLANS: dict[int, tuple[dict[str, Any], _Plan]] = {}


def _plan(raw: dict[str, Any]) -> _Plan:
    found = _PLANS.get(id(raw))
    if found is None or found[0] is not raw:  # keep `raw` alive beside its plan, so its id is never reused
        found = _PLANS[id(raw)] = (raw, _Plan(raw))
    return found[1]


def _clean(value: Any, raw: dict[str, Any], top: bool = False) -> bool:
    """True when `_walk` would find nothing: no unknown field and no value of the wrong type.
    The same rules as `_walk`, minus every path string and message."""
    plan = _plan(raw)
    if not top and value is not None and plan.types is not None:
        if plan.int_or_string and isinstance(value, (int, str)) and not isinstance(value, bool):
            pass
        elif not isinstance(value, plan.types) or (isinstance(value, bool) and bool not in plan.types):
            return False
    if plan.open:
        return True
    if isinstance(value, dict):
        props, extra = plan.props, plan.extra
        if props is not None:
            for key, child in value.items():
                sub = props.get(key)
                if sub is not None:
                    if not _clean(child, sub):
                        return False
                elif extra is not None:
                    if not _clean(child, extra):
                        return False
                elif not (top and key in _IGNORED_TOP):
                    return False
        elif extra is not None:
            return all(_clean(child, extra) for child in value.values())
    elif isinstance(value, list) and plan.items is not None:
        items = plan.items
        return all(_clean(child, items) for child in value)
    return True


_JSON_TYPES: dict[str, tuple[type, ...]] = {"string": (str,), "integer": (int,), "number": (int, float),
                                            "boolean": (bool,), "object": (dict,), "array": (list,)}


def _json_kind(value: Any) -> str:
    if isinstance(value, bool):
        return "bool"
    if isinstance(value, (int, float)):
        return "number"
    if isinstance(value, str):
        return "string"
    return "array" if isinstance(value, list) else "object"


def _go_type(schema: dict[str, Any], raw: dict[str, Any]) -> str:
    ref = raw.get("$ref", "")
    if ref:
        return "v1." + ref.rsplit(".", 1)[-1]
    kind, fmt = _schema_type(schema), schema.get("format", "")
    if kind == "integer":
        return fmt or "int64"
    if kind == "number":
        return "float64"
    if kind == "boolean":
        return "bool"
    if kind == "array":
        items = schema.get("items") or {}
        return "[]" + _go_type(_resolve(items), items)
    if kind == "object" and isinstance(schema.get("additionalProperties"), dict):
        extra = schema["additionalProperties"]
        return "map[string]" + _go_type(_resolve(extra), extra)
    return "string" if kind == "string" else "interface {}"


def _schema_type(schema: dict[str, Any]) -> str | None:
    """The one JSON type a schema asks for (`["string", "null"]` counts as string)."""
    kind = schema.get("type")
    if isinstance(kind, list):
        kinds = [k for k in kind if k != "null"]
        kind = kinds[0] if len(kinds) == 1 else None
    return kind if isinstance(kind, str) and kind in _JSON_TYPES else None


def _check_type(value: Any, schema: dict[str, Any], raw: dict[str, Any], owner: str, gopath: str) -> None:
    expected = _schema_type(schema)
    if value is None or expected is None:
        return
    if schema.get("x-kubernetes-int-or-string") and isinstance(value, (int, str)) and not isinstance(value, bool):
        return
    ok = isinstance(value, _JSON_TYPES[expected]) and not (expected in ("integer", "number") and isinstance(value, bool))
    if ok:
        return
    if expected == "integer" and isinstance(value, float) and not isinstance(value, bool):
        found = f"number {value:g}"
    else:
        found = _json_kind(value)
    raise TypeMismatch(f"json: cannot unmarshal {found} into Go struct field {owner}.{gopath} of type {_go_type(schema, raw)}")


def _walk(value: Any, raw: dict[str, Any], path: str, out: list[str], owner: str, gopath: str) -> None:
    schema = _resolve(raw)
    if gopath:
        _check_type(value, schema, raw, owner, gopath)
    if schema.get("x-kubernetes-preserve-unknown-fields"):
        return
    if "$ref" in raw:  # a named struct: its fields belong to it in Go's error texts
        owner = raw["$ref"].rsplit(".", 1)[-1]
    if isinstance(value, dict):
        props = schema.get("properties")
        extra = schema.get("additionalProperties")
        if props is not None:
            for key, child in value.items():
                sub = f"{path}.{key}" if path else key
                gosub = f"{gopath}.{key}" if gopath else key
                if key in props:
                    _walk(child, props[key], sub, out, owner, gosub)
                elif isinstance(extra, dict):
                    _walk(child, extra, sub, out, owner, gosub)
                elif not (path == "" and key in _IGNORED_TOP):
                    out.append(sub)
        elif isinstance(extra, dict):
            for key, child in value.items():
                _walk(child, extra, f"{path}.{key}" if path else key, out, owner, gopath)
    elif isinstance(value, list):
        items = schema.get("items")
        if isinstance(items, dict):
            for i, child in enumerate(value):
                _walk(child, items, f"{path}[{i}]", out, owner, gopath)
