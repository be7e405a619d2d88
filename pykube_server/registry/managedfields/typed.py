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
    """One schema position: the property as written in its parent plus its resolved type.

    Everything the schema alone decides (its shape, atomicity, list keys, child nodes) is worked
    out once per node, because every write walks these nodes for its managedFields."""

    __slots__ = ("_prop", "_resolved", "kind", "atomic_map", "keys", "_children", "_items")

    def __init__(self, prop: dict[str, Any] | None) -> None:
        self._prop = prop or {}
        r = self._resolved = _resolve(self._prop)
        self.kind: str | None = ("struct" if "properties" in r else "map" if isinstance(r.get("additionalProperties"), dict)
                                 else "list" if "items" in r else None)
        """The shape the schema fixes, or None where the value decides."""
        self.atomic_map: bool = self._ext("x-kubernetes-map-type") == "atomic"
        self.keys: tuple[str, ...] | None = self._list_keys()
        """None for an atomic list, () for a set, the keys for a map list."""
        self._children: dict[str, Node] = {}
        self._items: Node | None = None

    @property
    def untyped(self) -> bool:
        r = self._resolved
        return not r or r.get("x-kubernetes-preserve-unknown-fields") is True and "properties" not in r

    def _ext(self, name: str) -> Any:
        return self._prop.get(name, self._resolved.get(name))

    def shape(self, val: Any) -> str:
        """"struct", "map", "list" or "scalar" (the value decides where the schema is silent)."""
        if self.kind is not None:
            return self.kind
        if isinstance(val, dict):
            return "map"
        if isinstance(val, list):
            return "list"
        return "scalar"

    def list_keys(self) -> tuple[str, ...] | None:
        return self.keys

    def _list_keys(self) -> tuple[str, ...] | None:
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
        found = self._children.get(name)
        if found is not None:
            return found
        props = self._resolved.get("properties")
        if props and name in props:
            found = _node(props[name])
        else:
            extra = self._resolved.get("additionalProperties")
            found = _node(extra) if isinstance(extra, dict) else UNTYPED
        if len(self._children) < 256:  # map keys are unbounded; schema fields are few
            self._children[name] = found
        return found

    def items(self) -> Node:
        if self._items is None:
            item = self._resolved.get("items")
            self._items = _node(item) if isinstance(item, dict) else UNTYPED
        return self._items

    def element(self, item: Any, position: int) -> PathElement:
        """The path element of a list item."""
        keys = self.keys
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
    shape = node.kind or ("map" if isinstance(val, dict) else "list" if isinstance(val, list) else "scalar")
    if shape == "list":
        return node.keys is None
    if shape == "scalar":
        return True
    return node.atomic_map


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
    shape = node.kind or ("map" if isinstance(sample, dict) else "list" if isinstance(sample, list) else "scalar")
    if (shape == "scalar" or (node.keys is None if shape == "list" else node.atomic_map)
            or (_empty(old) and _empty(new))):
        _leaf(path, old, new, result)
        return
    if shape != "list":
        a = old if isinstance(old, dict) else {}
        b = new if isinstance(new, dict) else {}
        for name in (b.keys() | a.keys() if a else b):
            _compare(path + (("f", name),), a.get(name, ABSENT), b.get(name, ABSENT), node.field(name), result)
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


def changed_fields_v1(old: Any, new: Any, node: Node) -> dict[str, Any]:
    """`compare(old, new, node).changed` written straight as FieldsV1, in one walk without
    path tuples or sets: the create path's shortcut, since a create's managedFields entry is
    exactly its changes from the kind's zero object. Children are visited in FieldsV1 order."""
    return _changed_v1(old, new, node) or {}


def _changed_v1(old: Any, new: Any, node: Node) -> dict[str, Any] | None:
    """The FieldsV1 node of this position: None when nothing here changed, {} when the
    position itself changed as a whole, else its changed children (with `.` when it is also
    new as a whole)."""
    sample = new if new is not ABSENT else old
    shape = node.kind or ("map" if isinstance(sample, dict) else "list" if isinstance(sample, list) else "scalar")
    if (shape == "scalar" or (node.keys is None if shape == "list" else node.atomic_map)
            or (_empty(old) and _empty(new))):
        return {} if new is not ABSENT and (old is ABSENT or old != new) else None
    out: dict[str, Any] = {".": {}} if old is ABSENT else {}
    if shape != "list":
        a = old if isinstance(old, dict) else {}
        b = new if isinstance(new, dict) else {}
        for name in sorted(b.keys() | a.keys() if a else b):
            child = _changed_v1(a.get(name, ABSENT), b.get(name, ABSENT), node.field(name))
            if child is not None:
                out["f:" + name] = child
    else:
        a_items = _index(old, node)
        b_items = _index(new, node)
        items = node.items()
        for pe in sorted(b_items.keys() | a_items.keys() if a_items else b_items, key=fp.element_order):
            child = _changed_v1(a_items.get(pe, ABSENT), b_items.get(pe, ABSENT), items)
            if child is not None:
                out[fp.element_to_fields_v1(pe)] = child
    if old is ABSENT:
        return {} if len(out) == 1 else out
    return out or None


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
