"""Field paths and field sets, and their `FieldsV1` wire form (structured-merge-diff's fieldpath).

A path is a tuple of path elements; an element is a small tuple:
  ("f", name)            a struct field or map key          -> `f:name`
  ("k", ((key, json),))  a list item found by its map keys  -> `k:{"name":"web"}`
  ("v", json)            a set item found by its value      -> `v:"finalizer"`
  ("i", index)           an atomic position (rare)          -> `i:0`
A field set is a plain Python `set` of such paths: only its *members* are listed, ancestors are
implicit (as in the wire form, where `.` marks a node that is itself a member). Plain sets make
the set algebra kube needs (union, difference, intersection) the built-in operators.
"""

from __future__ import annotations

from typing import Any

import orjson

PathElement = tuple[Any, ...]
Path = tuple[PathElement, ...]
FieldSet = set[Path]

_RANK = {"f": 0, "k": 1, "v": 2, "i": 3}


def json_text(value: Any) -> str:
    """A value as compact JSON with sorted keys (how kube writes key and set values)."""
    return orjson.dumps(value, option=orjson.OPT_SORT_KEYS).decode()


def field(name: str) -> PathElement:
    return ("f", name)


def key(fields: dict[str, Any]) -> PathElement:
    return ("k", tuple((name, json_text(fields[name])) for name in sorted(fields)))


def value(item: Any) -> PathElement:
    return ("v", json_text(item))


def index(i: int) -> PathElement:
    return ("i", i)


def _value_order(text: str) -> tuple[int, Any]:
    """Order JSON scalars as structured-merge-diff compares values: numbers numerically."""
    try:
        parsed = orjson.loads(text)
    except orjson.JSONDecodeError:
        return (3, text)
    if isinstance(parsed, bool) or parsed is None:
        return (0, text)
    if isinstance(parsed, (int, float)):
        return (1, parsed)
    if isinstance(parsed, str):
        return (2, parsed)
    return (3, text)


def element_order(pe: PathElement) -> tuple[Any, ...]:
    """Fields sort before keys, keys before values, values before indexes."""
    kind, arg = pe
    if kind == "k":
        return (_RANK[kind], len(arg), tuple((name, _value_order(text)) for name, text in arg))
    if kind == "v":
        return (_RANK[kind], _value_order(arg))
    return (_RANK[kind], arg)


def element_to_fields_v1(pe: PathElement) -> str:
    kind, arg = pe
    if kind == "f":
        return f"f:{arg}"
    if kind == "k":
        return "k:{" + ",".join(f"{json_text(name)}:{text}" for name, text in arg) + "}"
    if kind == "v":
        return f"v:{arg}"
    return f"i:{arg}"


def element_from_fields_v1(text: str) -> PathElement:
    kind, _, rest = text.partition(":")
    if kind == "f":
        return ("f", rest)
    if kind == "k":
        fields = orjson.loads(rest)
        if not isinstance(fields, dict):
            raise ValueError(f"invalid key {rest!r}")
        return key(fields)
    if kind == "v":
        return ("v", json_text(orjson.loads(rest)))
    if kind == "i":
        return ("i", int(rest))
    raise ValueError(f"unknown path element {text!r}")


def element_string(pe: PathElement) -> str:
    """How kube prints one element in a conflict path: `.spec`, `[name="web"]`, `[="x"]`, `[0]`."""
    kind, arg = pe
    if kind == "f":
        return "." + arg
    if kind == "k":
        return "[" + ",".join(f"{name}={text}" for name, text in arg) + "]"
    if kind == "v":
        return f"[={arg}]"
    return f"[{arg}]"


def path_string(path: Path) -> str:
    return "".join(element_string(pe) for pe in path)


# -- FieldsV1 ------------------------------------------------------------------------------------
MEMBER: Any = ("member",)
"""Marks, inside the tree `to_fields_v1` builds, a node that is itself in the set."""


def to_fields_v1(paths: FieldSet) -> dict[str, Any]:
    """The FieldsV1 object of a set: nested by element, `.` first where a node is a member."""
    tree: dict[Any, Any] = {}
    for path in paths:
        node = tree
        for pe in path:
            child = node.get(pe)
            if child is None:
                child = node[pe] = {}
            node = child
        node[MEMBER] = True
    tree.pop(MEMBER, None)
    return emit_tree(tree)


def emit_tree(tree: dict[Any, Any]) -> dict[str, Any]:
    """FieldsV1 from a tree of path elements whose member nodes carry `MEMBER` (consumed)."""
    out: dict[str, Any] = {}
    if tree.pop(MEMBER, None) and tree:
        out["."] = {}
    if all(pe[0] == "f" for pe in tree):  # the common case: struct fields, in name order
        for pe in sorted(tree, key=_second):
            out["f:" + pe[1]] = emit_tree(tree[pe])
        return out
    for pe in sorted(tree, key=element_order):
        out[element_to_fields_v1(pe)] = emit_tree(tree[pe])
    return out


def _second(pe: PathElement) -> Any:
    return pe[1]


def from_fields_v1(fields: Any) -> FieldSet:
    """Parse a FieldsV1 object; ValueError when it is not one."""
    if not isinstance(fields, dict):
        raise ValueError("fieldsV1 must be an object")
    out: FieldSet = set()
    _parse(fields, (), out)
    return out


def _parse(node: dict[str, Any], prefix: Path, out: FieldSet) -> None:
    for text, child in node.items():
        if text == ".":
            out.add(prefix)
            continue
        if not isinstance(child, dict):
            raise ValueError(f"invalid fieldsV1 entry {text!r}")
        path = prefix + (element_from_fields_v1(text),)
        if child:
            _parse(child, path, out)
        else:
            out.add(path)


# -- set helpers ---------------------------------------------------------------------------------
def under(paths: FieldSet, roots: FieldSet) -> FieldSet:
    """The paths in `paths` equal to or below one of `roots` (kube's RecursiveDifference operand)."""
    return {p for p in paths if any(p[: len(r)] == r for r in roots)}


def with_prefix(paths: FieldSet, pe: PathElement) -> FieldSet:
    """The paths starting with `pe`, with it removed."""
    return {p[1:] for p in paths if p and p[0] == pe}
