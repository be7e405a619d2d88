"""Objects seen through their schema: field sets, comparison, apply merge and removal.

This is the part of structured-merge-diff that kube-apiserver runs over typed values, over our
plain dicts. The schema comes from the OpenAPI definitions (`registry/schemas.py`), read the way
kube's schema converter reads them:
- a list is `atomic` unless `x-kubernetes-list-type` says `set` or `map` (keys from
  `x-kubernetes-list-map-keys`), or a `merge` patch strategy makes it associative (by its merge
  key, or by value when it has none);
- a map or struct is granular unless `x-kubernetes-map-type: atomic`;
- where there is no schema (custom resources, `RawExtension`), maps are granular and lists
  atomic, as structured-merge-diff's "deduced" type does.
"""

from __future__ import annotations

import copy
import functools
from dataclasses import dataclass, field
from typing import Any

from pykube_server.registry import schemas
from pykube_server.registry.managedfields import fieldpath as fp
from pykube_server.registry.managedfields.fieldpath import FieldSet, Path, PathElement

ABSENT: Any = type("Absent", (), {"__repr__": lambda self: "ABSENT"})()
_REF_PREFIX = "#/$defs/"
# List map keys whose value is defaulted when a manifest leaves it out (kube's OpenAPI v3
# publishes these defaults; the JSON-schema copy we read does not).
KEY_DEFAULTS = {"protocol": "TCP"}


class Node:
    """One schema position: the property as written in its parent plus its resolved type."""

    __slots__ = ("_prop", "_resolved")

    def __init__(self, prop: dict[str, Any] | None) -> None:
        self._prop = prop or {}
        self._resolved = _resolve(self._prop)

    @property
    def untyped(self) -> bool:
        r = self._resolved
        return not r or r.get("x-kubernetes-preserve-unknown-fields") is True and "properties" not in r

    def _ext(self, name: str) -> Any:
        return self._prop.get(name, self._resolved.get(name))

    def shape(self, val: Any) -> str:
        """"struct", "map", "list" or "scalar" (the value decides where the schema is silent)."""
        r = self._resolved
        if "properties" in r:
            return "struct"
        if isinstance(r.get("additionalProperties"), dict):
            return "map"
        if "items" in r:
            return "list"
        if isinstance(val, dict):
            return "map"
        if isinstance(val, list):
            return "list"
        return "scalar"

    @property
    def atomic_map(self) -> bool:
        return self._ext("x-kubernetes-map-type") == "atomic"

    def list_keys(self) -> tuple[str, ...] | None:
        """None for an atomic list, () for a set, the keys for a map list."""
        if self.untyped or "items" not in self._resolved:
            return None
        list_type = self._ext("x-kubernetes-list-type")
        if list_type == "atomic":
            return None
        if list_type == "set":
            return ()
        if list_type == "map":
            return tuple(self._ext("x-kubernetes-list-map-keys") or ())
        if self._ext("x-kubernetes-patch-strategy") in ("merge", "merge,retainKeys"):
            merge_key = self._ext("x-kubernetes-patch-merge-key")
            return (merge_key,) if merge_key else ()
        return None

    def declares(self, name: str) -> bool:
        return name in (self._resolved.get("properties") or {})

    def field(self, name: str) -> Node:
        props = self._resolved.get("properties")
        if props and name in props:
            return _node(props[name])
        extra = self._resolved.get("additionalProperties")
        return _node(extra) if isinstance(extra, dict) else UNTYPED

    def items(self) -> Node:
        item = self._resolved.get("items")
        return _node(item) if isinstance(item, dict) else UNTYPED

    def element(self, item: Any, position: int) -> PathElement:
        """The path element of a list item."""
        keys = self.list_keys()
        if keys is None:
            return fp.index(position)
        if not keys:
            return fp.value(item)
        source = item if isinstance(item, dict) else {}
        return fp.key({k: source.get(k, KEY_DEFAULTS.get(k)) for k in keys if k in source or k in KEY_DEFAULTS})


def _resolve(node: dict[str, Any]) -> dict[str, Any]:
    seen = 0
    while "$ref" in node and seen < 32:
        ref = node["$ref"]
        node = schemas.all_definitions().get(ref[len(_REF_PREFIX):] if ref.startswith(_REF_PREFIX) else ref, {})
        seen += 1
    return node


_NODES: dict[int, Node] = {}


def _node(prop: dict[str, Any]) -> Node:
    """Nodes over the shared, read-only definitions are cached by identity."""
    found = _NODES.get(id(prop))
    if found is None:
        found = _NODES[id(prop)] = Node(prop)
    return found


UNTYPED = Node(None)


@functools.cache
def root(definition: str) -> Node:
    """The schema of a top-level definition such as `io.k8s.api.apps.v1.Deployment`; untyped
    when the name is empty or unknown."""
    if not definition or definition not in schemas.all_definitions():
        return UNTYPED
    return Node({"$ref": _REF_PREFIX + definition})


def _atomic(node: Node, val: Any) -> bool:
    shape = node.shape(val)
    if shape in ("struct", "map"):
        return node.atomic_map
    if shape == "list":
        return node.list_keys() is None
    return True


# -- field sets ----------------------------------------------------------------------------------
def field_set(obj: Any, node: Node) -> FieldSet:
    """What an applied configuration owns (structured-merge-diff's ToFieldSet)."""
    out: FieldSet = set()
    _fields_of((), obj, node, out)
    return out


def _fields_of(path: Path, val: Any, node: Node, out: FieldSet) -> None:
    if _atomic(node, val):
        out.add(path)
        return
    if isinstance(val, dict):
        for name, child in val.items():
            child_path = path + (fp.field(name),)
            _fields_of(child_path, child, node.field(name), out)
            if child is None or child == {} or not node.declares(name):
                out.add(child_path)
    elif isinstance(val, list):
        items = node.items()
        for i, item in enumerate(val):
            child_path = path + (node.element(item, i),)
            _fields_of(child_path, item, items, out)
            out.add(child_path)


def named_ancestors(paths: FieldSet, node: Node) -> FieldSet:
    """`paths` plus every ancestor that is a declared struct field (kube's
    EnsureNamedFieldsAreMembers): owning `a.b.c` also owns struct field `a`, not map key `a.b`."""
    out = set(paths)
    for path in paths:
        current = node
        for depth, pe in enumerate(path[:-1]):
            if pe[0] == "f":
                if current.declares(pe[1]):
                    out.add(path[: depth + 1])
                current = current.field(pe[1])
            else:
                current = current.items()
    return out


# -- comparison ----------------------------------------------------------------------------------
@dataclass(slots=True)
class Comparison:
    added: FieldSet = field(default_factory=set)
    modified: FieldSet = field(default_factory=set)
    removed: FieldSet = field(default_factory=set)

    @property
    def changed(self) -> FieldSet:
        return self.added | self.modified


def compare(old: Any, new: Any, node: Node) -> Comparison:
    """What changed from `old` to `new`: every added, modified and removed field, including the
    maps and list items that appear or vanish as a whole (their own paths)."""
    result = Comparison()
    _compare((), old, new, node, result)
    return result


def _leaf(path: Path, old: Any, new: Any, result: Comparison) -> None:
    if old is ABSENT:
        result.added.add(path)
    elif new is ABSENT:
        result.removed.add(path)
    elif old != new:
        result.modified.add(path)


def _compare(path: Path, old: Any, new: Any, node: Node, result: Comparison) -> None:
    sample = new if new is not ABSENT else old
    shape = node.shape(sample)
    if _atomic(node, sample) or (_empty(old) and _empty(new)):
        _leaf(path, old, new, result)
        return
    if shape in ("struct", "map"):
        a = old if isinstance(old, dict) else {}
        b = new if isinstance(new, dict) else {}
        for name in {**a, **b}:
            _compare(path + (fp.field(name),), a.get(name, ABSENT), b.get(name, ABSENT), node.field(name), result)
    else:
        a_items = _index(old, node)
        b_items = _index(new, node)
        items = node.items()
        for pe in {**a_items, **b_items}:
            _compare(path + (pe,), a_items.get(pe, ABSENT), b_items.get(pe, ABSENT), items, result)
    if path and old is ABSENT:
        result.added.add(path)
    elif path and new is ABSENT:
        result.removed.add(path)


def _empty(val: Any) -> bool:
    return val is ABSENT or val is None or (isinstance(val, (dict, list)) and not val)


def _index(val: Any, node: Node) -> dict[PathElement, Any]:
    if not isinstance(val, list):
        return {}
    return {node.element(item, i): item for i, item in enumerate(val)}


# -- apply merge ---------------------------------------------------------------------------------
def merge(live: Any, config: Any, node: Node) -> Any:
    """`config` merged into `live`: maps merge field by field, associative lists item by item
    (kept in structured-merge-diff's order), everything atomic is replaced."""
    if config is ABSENT:
        return live
    if live is ABSENT or live is None or _atomic(node, config):
        return copy.deepcopy(config)
    if isinstance(config, dict) and isinstance(live, dict):
        out = dict(live)
        for name, val in config.items():
            out[name] = merge(live.get(name, ABSENT), val, node.field(name))
        return out
    if isinstance(config, list) and isinstance(live, list):
        return _merge_list(live, config, node)
    return copy.deepcopy(config)


def _merge_list(live: list[Any], config: list[Any], node: Node) -> list[Any]:
    items = node.items()
    lhs = [node.element(item, i) for i, item in enumerate(live)]
    rhs = [node.element(item, i) for i, item in enumerate(config)]
    lhs_items = dict(zip(lhs, live))
    rhs_items = dict(zip(rhs, config))
    shared = [pe for pe in rhs if pe in lhs_items]
    out: list[Any] = []
    done: set[PathElement] = set()
    li = ri = 0
    while li < len(lhs) or ri < len(rhs):
        if li < len(lhs) and ri < len(rhs):
            pe = lhs[li]
            if pe == rhs[ri]:
                out.append(merge(lhs_items[pe], rhs_items[pe], items))
                done.add(pe)
                li, ri = li + 1, ri + 1
                if shared and shared[0] == pe:
                    shared.pop(0)
                continue
            if pe in rhs_items and shared and shared[0] != pe:
                li += 1
                continue
        if li < len(lhs):
            pe = lhs[li]
            if pe not in rhs_items:
                out.append(lhs_items[pe])
                li += 1
                continue
            if pe in done:
                li += 1
                continue
        if ri < len(rhs):
            pe = rhs[ri]
            done.add(pe)
            out.append(merge(lhs_items.get(pe, ABSENT), rhs_items[pe], items))
            ri += 1
            if shared and shared[0] == pe:
                shared.pop(0)
    return out


# -- removal -------------------------------------------------------------------------------------
def remove_items(val: Any, paths: FieldSet, node: Node) -> Any:
    """`val` without the values at `paths` (a listed path drops its whole subtree)."""
    if not paths or _atomic(node, val):
        return val
    if isinstance(val, dict):
        out = {}
        for name, child in val.items():
            pe = fp.field(name)
            if (pe,) in paths:
                continue
            sub = fp.with_prefix(paths, pe)
            out[name] = remove_items(child, sub, node.field(name)) if sub else child
        return out
    if isinstance(val, list):
        kept = []
        items = node.items()
        for i, item in enumerate(val):
            pe = node.element(item, i)
            if (pe,) in paths:
                continue
            sub = fp.with_prefix(paths, pe)
            kept.append(remove_items(item, sub, items) if sub else item)
        return kept
    return val
