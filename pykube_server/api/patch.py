"""The three patch types kube-apiserver accepts on PATCH, as pure functions over dicts.

- `apply_json_patch`: RFC 6902 (`application/json-patch+json`), on top of the `jsonpatch`
  library, with failures reworded to the texts kube-apiserver's JSON-patch library prints.
- `apply_merge_patch`: RFC 7386 (`application/merge-patch+json`).
- `apply_strategic_merge_patch`: Kubernetes strategic merge patch
  (`application/strategic-merge-patch+json`), a port of apimachinery's
  `strategicpatch.StrategicMergeMapPatch` (apply side only) for release 1.33, including its
  list ordering rules, because kubectl apply/edit/set/rollout send these and compare results.

Strategic merge needs to know, per field, the patch strategy and merge key. That knowledge is
a small `PatchSchema` protocol defined here so `api/` stays free of I/O; the registry builds
implementations from the OpenAPI definitions. Where the schema has no information the patch
behaves like a JSON merge patch (maps merge, lists replace).

Every function copies its inputs first and never mutates them. Errors are `PatchError`,
whose `code` says how kube-apiserver answers: 400 BadRequest, 422 (JSON patch failures:
reason Invalid with the text as a cause) or 500 (strategic merge errors upstream passes
through unclassified).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol

import jsonpatch
import jsonpointer

__all__ = [
    "PatchError",
    "PatchSchema",
    "StaticPatchSchema",
    "apply_json_patch",
    "apply_merge_patch",
    "apply_strategic_merge_patch",
]

DIRECTIVE = "$patch"
RETAIN_KEYS = "$retainKeys"
SET_ELEMENT_ORDER = "$setElementOrder"
DELETE_FROM_PRIMITIVE_LIST = "$deleteFromPrimitiveList"

ERR_BAD_JSON_DOC = "invalid JSON document"
ERR_NO_LIST_OF_LISTS = "lists of lists are not supported"
ERR_PRIMITIVE_LIST = "invalid patch format of primitive list"
ERR_RETAIN_KEYS = "invalid patch format of retainKeys"
ERR_SET_ELEMENT_ORDER = "invalid patch format of setElementOrder list"


class PatchError(Exception):
    """A patch that cannot be applied. `code` is the HTTP status kube-apiserver answers."""

    def __init__(self, message: str, *, code: int = 422) -> None:
        super().__init__(message)
        self.message = message
        self.code = code


class PatchSchema(Protocol):
    """What strategic merge needs to know about one field. `None` anywhere means "unknown".

    `strategy` is the field's `x-kubernetes-patch-strategy` (`""`, `merge`, `replace`,
    `retainKeys`, `merge,retainKeys`) and `merge_key` its `x-kubernetes-patch-merge-key`;
    both describe the field itself (for a list: the list, not its items). Implementations
    must be cheap to call repeatedly and must not do I/O.
    """

    @property
    def strategy(self) -> str: ...

    @property
    def merge_key(self) -> str: ...

    def field(self, name: str) -> PatchSchema | None:
        """Schema of property `name` of this object (or of any value, for a map)."""

    def items(self) -> PatchSchema | None:
        """Schema of this list's elements."""


@dataclass(frozen=True)
class StaticPatchSchema:
    """A hand-built `PatchSchema` (tests, and facts the OpenAPI definitions lack)."""

    strategy: str = ""
    merge_key: str = ""
    fields: Mapping[str, StaticPatchSchema] = field(default_factory=dict)
    item: StaticPatchSchema | None = None
    values: StaticPatchSchema | None = None
    """Schema of every value of a map (OpenAPI `additionalProperties`)."""

    def field(self, name: str) -> PatchSchema | None:
        return self.fields.get(name, self.values)

    def items(self) -> PatchSchema | None:
        return self.item


# --------------------------------------------------------------------------- helpers


def _copy(value: Any) -> Any:
    """Deep copy of decoded JSON (scalars are immutable, so only containers are copied)."""
    if isinstance(value, dict):
        return {k: _copy(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_copy(v) for v in value]
    return value


def _same(a: Any, b: Any) -> bool:
    """Go's `==` on decoded JSON scalars: no bool/number mixing."""
    if isinstance(a, bool) or isinstance(b, bool):
        return type(a) is type(b) and a == b
    return bool(a == b)


def _go_type(value: Any) -> str:
    if isinstance(value, dict):
        return "map[string]interface {}"
    if isinstance(value, list):
        return "[]interface {}"
    if isinstance(value, bool):
        return "bool"
    if isinstance(value, int):
        return "int64"
    if isinstance(value, float):
        return "float64"
    if isinstance(value, str):
        return "string"
    return "<nil>"


def _go_fmt(value: Any) -> str:
    """Go's `%v` of decoded JSON (maps print with sorted keys)."""
    if isinstance(value, dict):
        return "map[" + " ".join(f"{k}:{_go_fmt(value[k])}" for k in sorted(value)) + "]"
    if isinstance(value, list):
        return "[" + " ".join(_go_fmt(v) for v in value) + "]"
    if isinstance(value, bool):
        return "true" if value else "false"
    if value is None:
        return "<nil>"
    return str(value)


def _bad_arg_type(expected: str, actual: Any) -> PatchError:
    return PatchError(f"expected a {expected}, but received a {_go_type(actual)}", code=500)


def _no_merge_key(item: Any, merge_key: str) -> PatchError:
    return PatchError(f"map: {_go_fmt(item)} does not contain declared merge key: {merge_key}", code=500)


# --------------------------------------------------------------------------- JSON patch (RFC 6902)


def apply_json_patch(doc: Any, ops: Any) -> Any:
    """Apply RFC 6902 operations to a copy of `doc`; returns the patched copy."""
    if not isinstance(ops, list) or not all(isinstance(op, dict) for op in ops):
        raise PatchError(
            f"json: cannot unmarshal {_json_kind(ops)} into Go value of type jsonpatch.Patch", code=400
        )
    result = _copy(doc)
    for op in ops:
        result = _apply_operation(result, op)
    return result


def _json_kind(value: Any) -> str:
    if isinstance(value, dict):
        return "object"
    if isinstance(value, list):
        return "array"
    if isinstance(value, str):
        return "string"
    if isinstance(value, bool):
        return "bool"
    if isinstance(value, (int, float)):
        return "number"
    return "null"


def _apply_operation(doc: Any, op: dict[str, Any]) -> Any:
    kind = op.get("op")
    if kind not in ("add", "remove", "replace", "move", "copy", "test"):
        raise PatchError(f"Unexpected kind: {kind if isinstance(kind, str) else 'unknown'}")
    path = op.get("path")
    if not isinstance(path, str):
        raise PatchError("operation missing path field: missing value")
    message = _precheck(doc, kind, path, op)
    if message:
        raise PatchError(message)
    try:
        return jsonpatch.JsonPatch([op]).apply(doc, in_place=True)
    except jsonpatch.JsonPatchTestFailed:
        raise PatchError(f"testing value {path} failed: test failed") from None
    except (jsonpatch.JsonPatchException, jsonpointer.JsonPointerException) as e:
        raise PatchError(f"error in {kind} for path: '{path}': {e}") from None


def _container(doc: Any, path: str) -> tuple[Any, str] | None:
    """The object holding the last token of `path`, and that token (None if absent)."""
    tokens = path.split("/")
    if len(tokens) < 2:
        return None
    node = doc
    for raw in tokens[1:-1]:
        token = raw.replace("~1", "/").replace("~0", "~")
        if isinstance(node, dict) and token in node:
            node = node[token]
        elif isinstance(node, list) and token.isdigit() and int(token) < len(node):
            node = node[int(token)]
        else:
            return None
        if not isinstance(node, (dict, list)):
            return None
    return node, tokens[-1].replace("~1", "/").replace("~0", "~")


def _has(container: Any, key: str) -> bool:
    if isinstance(container, dict):
        return key in container
    return key.isdigit() and int(key) < len(container)


def _precheck(doc: Any, kind: str, path: str, op: dict[str, Any]) -> str:
    """The evanphx/json-patch (v4) message for a missing path, or "" to let jsonpatch run."""
    if kind in ("move", "copy"):
        source = op.get("from")
        if not isinstance(source, str) or _container(doc, source) is None:
            return f"{kind} operation does not apply: doc is missing from path: {source}: missing value"
        return ""
    if path == "" and kind in ("replace", "test"):
        return ""
    found = _container(doc, path)
    if kind == "add":
        if found is None:
            return f'add operation does not apply: doc is missing path: "{path}": missing value'
        container, key = found
        if isinstance(container, list) and key != "-" and not (key.isdigit() and int(key) <= len(container)):
            return f"error in add for path: '{path}': Unable to access invalid index: {key}: invalid index referenced"
        return ""
    if kind == "remove":
        if found is None:
            return f'remove operation does not apply: doc is missing path: "{path}": missing value'
        container, key = found
        if isinstance(container, dict) and key not in container:
            return f"error in remove for path: '{path}': Unable to remove nonexistent key: {key}: missing value"
        if isinstance(container, list) and not _has(container, key):
            return f"error in remove for path: '{path}': Unable to access invalid index: {key}: invalid index referenced"
        return ""
    if kind == "replace":
        if found is None:
            return f"replace operation does not apply: doc is missing path: {path}: missing value"
        return "" if _has(*found) else f"replace operation does not apply: doc is missing key: {path}: missing value"
    if found is None:
        return f"test operation does not apply: is missing path: {path}: missing value"
    if not _has(*found) and op.get("value") is not None:
        return f"testing value {path} failed: test failed"
    return ""


# --------------------------------------------------------------------------- JSON merge patch (RFC 7386)


def apply_merge_patch(doc: Any, patch: Any) -> Any:
    """RFC 7386: null deletes a key, objects merge recursively, anything else replaces.

    Follows evanphx/json-patch (what kube-apiserver runs) where it refines the RFC: nulls are
    pruned from values that land on an absent key, but kept when a value replaces another.
    """
    if patch is None:
        raise PatchError("Invalid JSON Patch", code=400)
    if not isinstance(patch, dict) or not isinstance(doc, dict):
        return _prune_nulls(_copy(patch))
    return _merge_patch(_copy(doc), patch)


def _merge_patch(target: dict[str, Any], patch: dict[str, Any]) -> dict[str, Any]:
    for key, value in patch.items():
        current = target.get(key)
        if value is None:
            target.pop(key, None)
        elif current is None:
            target[key] = _prune_nulls(_copy(value))
        elif isinstance(current, dict) and isinstance(value, dict):
            target[key] = _merge_patch(current, value)
        else:
            target[key] = _copy(value)
    return target


def _prune_nulls(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _prune_nulls(v) for k, v in value.items() if v is not None}
    if isinstance(value, list):
        return [_prune_nulls(v) for v in value]
    return value


# --------------------------------------------------------------------------- strategic merge patch


def apply_strategic_merge_patch(doc: Mapping[str, Any], patch: Any, schema: PatchSchema | None) -> dict[str, Any]:
    """Apply a strategic merge patch to a copy of `doc`, guided by `schema` (None: unknown)."""
    if not isinstance(patch, dict):
        raise PatchError(
            f"json: cannot unmarshal {_json_kind(patch)} into Go value of type map[string]interface {{}}",
            code=400,
        )
    if not isinstance(doc, Mapping):
        raise PatchError(ERR_BAD_JSON_DOC, code=400)
    return _merge_map(_copy(dict(doc)), _copy(patch), schema)


def _strategy(schema: PatchSchema | None) -> str:
    """The field's strategy without `retainKeys` (which only acts through `$retainKeys`)."""
    if schema is None or not schema.strategy:
        return ""
    parts = [p for p in schema.strategy.split(",") if p]
    others = [p for p in parts if p != "retainKeys"]
    if len(parts) > 2 or (len(parts) == 2 and len(others) != 1):
        raise PatchError(f"unexpected patch strategy: [{' '.join(parts)}]", code=500)
    return others[0] if others else ""


def _merge_key(schema: PatchSchema | None) -> str:
    return schema.merge_key if schema is not None else ""


def _child(schema: PatchSchema | None, name: str) -> PatchSchema | None:
    return schema.field(name) if schema is not None else None


def _items(schema: PatchSchema | None) -> PatchSchema | None:
    return schema.items() if schema is not None else None


def _merge_map(original: dict[str, Any], patch: dict[str, Any], schema: PatchSchema | None) -> dict[str, Any]:
    if DIRECTIVE in patch:
        return _map_directive(patch)
    _apply_retain_keys(original, patch)
    _apply_set_element_orders(original, patch, schema)
    for key, value in list(patch.items()):
        is_delete_list = key.startswith(DELETE_FROM_PRIMITIVE_LIST)
        if is_delete_list:
            key = _list_key(key, DELETE_FROM_PRIMITIVE_LIST, ERR_PRIMITIVE_LIST)
        if value is None:
            original.pop(key, None)
            continue
        if key not in original or not _same_container(original[key], value):
            if not is_delete_list:
                _set_fresh(original, key, value)
            continue
        original[key] = _merge_value(original[key], value, _child(schema, key), is_delete_list)
    return original


def _same_container(a: Any, b: Any) -> bool:
    """Upstream recurses only when both sides have the same Go type; else the patch wins."""
    if isinstance(a, dict) or isinstance(b, dict):
        return isinstance(a, dict) and isinstance(b, dict)
    if isinstance(a, list) or isinstance(b, list):
        return isinstance(a, list) and isinstance(b, list)
    return True


def _merge_value(current: Any, value: Any, schema: PatchSchema | None, is_delete_list: bool) -> Any:
    if isinstance(current, dict):
        return value if _strategy(schema) == "replace" else _merge_map(current, value, schema)
    if isinstance(current, list) and (_strategy(schema) == "merge" or is_delete_list):
        return _merge_list(current, value, _items(schema), _merge_key(schema), is_delete_list)
    return value  # scalars, and lists without a merge strategy, are replaced


def _set_fresh(original: dict[str, Any], key: str, value: Any) -> None:
    """A value with nothing to merge into: nulls and directives dropped, as upstream does."""
    keep, cleaned = _remove_directives(_discard_nulls(value))
    if keep:
        original[key] = cleaned
    else:
        original.pop(key, None)


_discard_nulls = _prune_nulls


def _is_directive_key(key: str) -> bool:
    return key == RETAIN_KEYS or key.startswith((SET_ELEMENT_ORDER + "/", DELETE_FROM_PRIMITIVE_LIST + "/"))


def _remove_directives(value: Any) -> tuple[bool, Any]:
    """Drop `$patch` items; also the other directive keys, which typed decoding drops upstream."""
    if isinstance(value, dict):
        if DIRECTIVE in value:
            return False, None
        out = {}
        for k, v in value.items():
            if _is_directive_key(k):
                continue
            keep, cleaned = _remove_directives(v)
            if keep:
                out[k] = cleaned
        return True, out
    if isinstance(value, list):
        kept = [_remove_directives(v) for v in value]
        return True, [v for keep, v in kept if keep]
    return True, value


def _map_directive(patch: dict[str, Any]) -> dict[str, Any]:
    directive = patch[DIRECTIVE]
    if directive == "replace":
        return {k: _remove_directives(v)[1] for k, v in patch.items() if k != DIRECTIVE and not _is_directive_key(k)}
    if directive == "delete":
        return {}
    raise PatchError(f"unknown patch type: {_go_fmt(directive)} in map: {_go_fmt(patch)}", code=500)


def _list_key(key: str, prefix: str, error: str) -> str:
    head, sep, rest = key.partition("/")
    if not sep or head != prefix:
        raise PatchError(error, code=400)
    return rest


def _apply_retain_keys(original: dict[str, Any], patch: dict[str, Any]) -> None:
    if RETAIN_KEYS not in patch:
        return
    retain = patch.pop(RETAIN_KEYS)
    if not isinstance(retain, list):
        raise PatchError(ERR_RETAIN_KEYS, code=400)
    for key, value in patch.items():
        if value is None or key.startswith((DELETE_FROM_PRIMITIVE_LIST, SET_ELEMENT_ORDER)):
            continue
        if key not in retain:
            raise PatchError(ERR_RETAIN_KEYS, code=400)
    for key in list(original):
        if key not in retain:
            del original[key]


# --------------------------------------------------------------------------- lists


def _element_kind(*lists: list[Any]) -> type:
    """The one Go type shared by every element (maps, strings, numbers...), as upstream checks."""
    seen: str | None = None
    found: Any = None
    for items in lists:
        for item in items:
            go_type = _go_type(item)
            if seen is None:
                if isinstance(item, list):
                    raise PatchError(ERR_NO_LIST_OF_LISTS, code=422)
                seen, found = go_type, item
            elif go_type != seen:
                shown = "[" + " ".join(_go_fmt(x) for x in lists) + "]"
                raise PatchError(f"list element types are not identical: {shown}", code=500)
    if seen is None:
        raise PatchError("no elements in any of the given slices", code=500)
    return dict if isinstance(found, dict) else object


def _merge_list(
    original: list[Any], patch: list[Any], item_schema: PatchSchema | None, merge_key: str, is_delete_list: bool
) -> list[Any]:
    return _merge_list_aliased(original, patch, item_schema, merge_key, is_delete_list)[0]


def _merge_list_aliased(
    original: list[Any], patch: list[Any], item_schema: PatchSchema | None, merge_key: str, is_delete_list: bool
) -> tuple[list[Any], list[Any]]:
    """Merge two lists; returns (merged, what upstream's caller then sees as its live list).

    Upstream deletes and appends in place on the live list's Go array, so a caller holding
    that slice (the `$setElementOrder` path) sees the survivors followed by the appended items,
    cut to the old length. That view decides where server-only items land, so we reproduce it.
    """
    if not original and not patch:
        return original, original
    kind = _element_kind(original, patch)
    if kind is not dict:
        if is_delete_list:
            return [v for v in original if not _contains(patch, v)], original
        merged = _dedupe(original + patch)
        view = original
    else:
        if not merge_key:
            raise PatchError("cannot merge lists without merge key", code=500)
        kept, plain, replace = _special_elements(original, patch, merge_key)
        if replace:
            merged, view, patch = plain, kept, []
            original = plain
        else:
            merged, appended = _merge_by_key(kept, plain, merge_key, item_schema)
            view = (kept + appended)[: len(original)]
            original, patch = kept, plain
    key = merge_key if kind is dict else ""
    patch_items, server_only = _partition(merged, patch, key)
    return _normalize_order(patch_items, server_only, patch, original, key), view


def _contains(items: list[Any], value: Any) -> bool:
    return any(_same(value, item) for item in items)


def _dedupe(items: list[Any]) -> list[Any]:
    out: list[Any] = []
    for item in items:
        if not _contains(out, item):
            out.append(item)
    return out


def _special_elements(original: list[Any], patch: list[Any], merge_key: str) -> tuple[list[Any], list[Any], bool]:
    """Handle `$patch: delete|replace|merge` items: (original after deletes, other items, replace?)."""
    plain: list[Any] = []
    replace = False
    for item in patch:
        if DIRECTIVE not in item:
            plain.append(item)
            continue
        directive = item[DIRECTIVE]
        if directive == "delete":
            if merge_key not in item:
                raise _no_merge_key(item, merge_key)
            original = [o for o in original if not (merge_key in o and _same(o[merge_key], item[merge_key]))]
        elif directive == "replace":
            replace = True
        elif directive == "merge":
            raise PatchError("merging lists cannot yet be specified in the patch", code=500)
        else:
            raise PatchError(f"unknown patch type: {_go_fmt(directive)} in map: {_go_fmt(item)}", code=500)
    return original, plain, replace


def _find(items: list[Any], merge_key: str, value: Any) -> int:
    for i, item in enumerate(items):
        if not isinstance(item, dict):
            raise PatchError(f"value for key {i} is not a map", code=500)
        if merge_key in item and _same(item[merge_key], value):
            return i
    return -1


def _merge_by_key(
    original: list[Any], patch: list[Any], merge_key: str, item_schema: PatchSchema | None
) -> tuple[list[Any], list[Any]]:
    """Merge patch items into live items with the same key; returns (merged, appended)."""
    merged = list(original)
    appended: list[Any] = []
    for item in patch:
        if merge_key not in item:
            raise _no_merge_key(item, merge_key)
        at = _find(merged, merge_key, item[merge_key])
        if at >= 0:
            merged[at] = _merge_map(merged[at], item, item_schema)
            continue
        keep, cleaned = _remove_directives(_discard_nulls(item))
        if keep:
            merged.append(cleaned)
            appended.append(cleaned)
    return merged, appended


def _identity(item: Any, merge_key: str) -> Any:
    return item.get(merge_key) if merge_key and isinstance(item, dict) else item


def _index(order: list[Any], item: Any, merge_key: str) -> int:
    wanted = _identity(item, merge_key)
    for i, candidate in enumerate(order):
        if _same(_identity(candidate, merge_key), wanted):
            return i
    return -1


def _partition(merged: list[Any], by: list[Any], merge_key: str) -> tuple[list[Any], list[Any]]:
    """Split into (items present in `by`, server-only items), keeping merged order."""
    present: list[Any] = []
    server_only: list[Any] = []
    for item in merged:
        if merge_key:
            if not isinstance(item, dict):
                raise _bad_arg_type("map[string]interface {}", item)
            if merge_key not in item:
                raise _no_merge_key(item, merge_key)
            found = _find(by, merge_key, item[merge_key]) >= 0
        else:
            found = _contains(by, item)
        (present if found else server_only).append(item)
    return present, server_only


def _normalize_order(
    patch_items: list[Any], server_only: list[Any], patch_order: list[Any], server_order: list[Any], merge_key: str
) -> list[Any]:
    """Patch items in patch order, server-only items in live order, then interleaved.

    Upstream's `mergeSortedSlice`: walk both lists, taking the server-only item first only
    when both items exist in the live list and it comes earlier there; so items new in the
    patch go before the remaining server-only items.
    """
    patch_items = _sort_by(patch_items, patch_order, merge_key)
    server_only = _sort_by(server_only, server_order, merge_key)
    out: list[Any] = []
    i = j = 0
    while i < len(server_only) or j < len(patch_items):
        if j >= len(patch_items):
            out.append(server_only[i])
            i += 1
        elif i >= len(server_only) or not _before(server_only[i], patch_items[j], server_order, merge_key):
            out.append(patch_items[j])
            j += 1
        else:
            out.append(server_only[i])
            i += 1
    return out


def _before(left: Any, right: Any, order: list[Any], merge_key: str) -> bool:
    li, ri = _index(order, left, merge_key), _index(order, right, merge_key)
    return li >= 0 and ri >= 0 and li < ri


def _sort_by(items: list[Any], order: list[Any], merge_key: str) -> list[Any]:
    if merge_key:
        for item in [*items, *order]:
            if not isinstance(item, dict) or merge_key not in item:
                raise _no_merge_key(item if isinstance(item, dict) else {}, merge_key)
    keep = [x for x in items if not (merge_key and x.get(DIRECTIVE) == "delete")]
    deleted = [x for x in items if merge_key and x.get(DIRECTIVE) == "delete"]

    def position(item: Any) -> int:
        at = _index(order, item, merge_key)
        return at if at >= 0 else len(order)

    return sorted(keep, key=position) + deleted


# --------------------------------------------------------------------------- $setElementOrder


def _apply_set_element_orders(original: dict[str, Any], patch: dict[str, Any], schema: PatchSchema | None) -> None:
    """Merge each list named by a `$setElementOrder/<list>` directive and order it.

    Precedence as upstream: the directive's order, then the patch's, then the live list's.
    The list is removed from `patch` afterwards so the main loop does not merge it again.
    """
    for key in [k for k in patch if k.startswith(SET_ELEMENT_ORDER)]:
        order = patch.pop(key)
        if not isinstance(order, list):
            raise _bad_arg_type("[]interface {}", order)
        list_key = _list_key(key, SET_ELEMENT_ORDER, ERR_SET_ELEMENT_ORDER)
        merged = _ordered_list(original, patch, list_key, order, _child(schema, list_key))
        if merged is not None:
            original[list_key] = merged
        patch.pop(list_key, None)


def _ordered_list(
    original: dict[str, Any], patch: dict[str, Any], list_key: str, order: list[Any], schema: PatchSchema | None
) -> list[Any] | None:
    current = original.get(list_key) if list_key in original else None
    incoming = patch.get(list_key) if list_key in patch else None
    for value in (current, incoming):
        if value is not None and not isinstance(value, list):
            raise _bad_arg_type("[]interface {}", value)
    merge_key = _merge_key(schema)
    _check_order(incoming or [], order, merge_key)
    if current is None and incoming is None:
        return None
    if incoming is None:
        merged = current
    elif current is None:
        merged = _remove_directives(incoming)[1]
    elif _strategy(schema) == "merge":
        merged, current = _merge_list_aliased(current, incoming, _items(schema), merge_key, False)
    else:
        merged = incoming
    assert merged is not None
    kind = _element_kind(current or [], incoming or [])
    key = merge_key if kind is dict else ""
    patch_items, server_only = _partition(merged, order, key)
    return _normalize_order(patch_items, server_only, order, current or [], key)


def _check_order(patch_list: list[Any], order: list[Any], merge_key: str) -> None:
    """Every patch item must appear in the directive, in the same relative order."""
    if not order or not patch_list:
        return
    items = [x for x in patch_list if not (merge_key and isinstance(x, dict) and x.get(DIRECTIVE) == "delete")]
    p = s = 0
    while p < len(items) and s < len(order):
        if isinstance(items[p], dict) and DIRECTIVE in items[p]:
            p += 1
            continue
        if _order_key_equal(items[p], order[s], merge_key):
            p += 1
        s += 1
    if p < len(items) and s >= len(order):
        raise PatchError(
            f"The order in patch list:\n{_go_fmt(patch_list)}\n doesn't match {SET_ELEMENT_ORDER} list:\n"
            f"{_go_fmt(order)}\n",
            code=500,
        )


def _order_key_equal(left: Any, right: Any, merge_key: str) -> bool:
    if not merge_key:
        return _same(left, right)
    for item in (left, right):
        if not isinstance(item, dict):
            raise _bad_arg_type("map[string]interface {}", item)
        if merge_key not in item:
            raise _no_merge_key(item, merge_key)
    return _same(left[merge_key], right[merge_key])
