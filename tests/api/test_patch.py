"""JSON patch, JSON merge patch and strategic merge patch as kube-apiserver applies them.

Strategic-merge ordering cases are modelled on apimachinery v0.33.0
`pkg/util/strategicpatch/patch_test.go` (raw cases there are compared byte-exactly, so their
list order is upstream's real order). The schema below mirrors that file's `MergeItem`.
JSON patch messages are evanphx/json-patch v4's, which kube-apiserver uses.
"""

from __future__ import annotations

import copy
from typing import Any

import pytest

from pykube_server.api.patch import (
    PatchError,
    StaticPatchSchema,
    apply_json_patch,
    apply_merge_patch,
    apply_strategic_merge_patch,
)

S = StaticPatchSchema


def _merge_item() -> StaticPatchSchema:
    fields: dict[str, StaticPatchSchema] = {}
    item = S(fields=fields)
    fields.update(
        mergingList=S(strategy="merge", merge_key="name", item=item),
        nonMergingList=S(item=item),
        mergingIntList=S(strategy="merge", item=S()),
        nonMergingIntList=S(item=S()),
        simpleMap=S(values=S()),
        replacingItem=S(strategy="replace"),
        retainKeysMap=S(strategy="retainKeys", fields=fields),
        retainKeysMergingList=S(strategy="merge,retainKeys", merge_key="name", item=item),
    )
    return item


SCHEMA = _merge_item()

# --------------------------------------------------------------------------- JSON patch

DOC = {"metadata": {"name": "p", "labels": {"a": "1"}}, "spec": {"items": [1, 2]}}

JSON_PATCH_CASES = [
    (
        "kubectl-patch-type-json",
        [{"op": "add", "path": "/metadata/labels/j", "value": "1"}],
        {"metadata": {"name": "p", "labels": {"a": "1", "j": "1"}}, "spec": {"items": [1, 2]}},
    ),
    (
        "rollout-undo-replace",
        [
            {"op": "replace", "path": "/spec", "value": {"items": [3]}},
            {"op": "replace", "path": "/metadata/labels", "value": {"b": "2"}},
        ],
        {"metadata": {"name": "p", "labels": {"b": "2"}}, "spec": {"items": [3]}},
    ),
    ("test-then-remove", [{"op": "test", "path": "/metadata/labels/a", "value": "1"}, {"op": "remove", "path": "/metadata/labels/a"}],
     {"metadata": {"name": "p", "labels": {}}, "spec": {"items": [1, 2]}}),
    ("append", [{"op": "add", "path": "/spec/items/-", "value": 3}], {"metadata": DOC["metadata"], "spec": {"items": [1, 2, 3]}}),
    ("insert", [{"op": "add", "path": "/spec/items/0", "value": 0}], {"metadata": DOC["metadata"], "spec": {"items": [0, 1, 2]}}),
    ("move", [{"op": "move", "from": "/metadata/labels", "path": "/spec/labels"}],
     {"metadata": {"name": "p"}, "spec": {"items": [1, 2], "labels": {"a": "1"}}}),
    ("copy-escaped", [{"op": "copy", "from": "/metadata/name", "path": "/metadata/labels/x~1y"}],
     {"metadata": {"name": "p", "labels": {"a": "1", "x/y": "p"}}, "spec": {"items": [1, 2]}}),
]


@pytest.mark.parametrize(("ops", "expected"), [c[1:] for c in JSON_PATCH_CASES], ids=[c[0] for c in JSON_PATCH_CASES])
def test_json_patch(ops: list[dict[str, Any]], expected: dict[str, Any]) -> None:
    before = copy.deepcopy(DOC)
    assert apply_json_patch(DOC, ops) == expected
    assert DOC == before


JSON_PATCH_ERRORS = [
    ("test-failed", [{"op": "test", "path": "/metadata/name", "value": "q"}], 422, "testing value /metadata/name failed: test failed"),
    ("test-missing-parent", [{"op": "test", "path": "/x/y", "value": 1}], 422, "test operation does not apply: is missing path: /x/y: missing value"),
    ("add-missing-parent", [{"op": "add", "path": "/x/y", "value": 1}], 422, 'add operation does not apply: doc is missing path: "/x/y": missing value'),
    ("remove-missing-key", [{"op": "remove", "path": "/metadata/labels/zz"}], 422,
     "error in remove for path: '/metadata/labels/zz': Unable to remove nonexistent key: zz: missing value"),
    ("replace-missing-key", [{"op": "replace", "path": "/metadata/zz", "value": 1}], 422,
     "replace operation does not apply: doc is missing key: /metadata/zz: missing value"),
    ("add-bad-index", [{"op": "add", "path": "/spec/items/5", "value": 1}], 422,
     "error in add for path: '/spec/items/5': Unable to access invalid index: 5: invalid index referenced"),
    ("unknown-op", [{"op": "frob", "path": "/a"}], 422, "Unexpected kind: frob"),
    ("not-a-list", {"op": "add"}, 400, "json: cannot unmarshal object into Go value of type jsonpatch.Patch"),
]


@pytest.mark.parametrize(("ops", "code", "message"), [c[1:] for c in JSON_PATCH_ERRORS], ids=[c[0] for c in JSON_PATCH_ERRORS])
def test_json_patch_errors(ops: Any, code: int, message: str) -> None:
    before = copy.deepcopy(DOC)
    with pytest.raises(PatchError) as info:
        apply_json_patch(DOC, ops)
    assert (info.value.code, info.value.message) == (code, message)
    assert DOC == before


# --------------------------------------------------------------------------- merge patch

MERGE_CASES = [
    ("kubectl-label", {"metadata": {"labels": {"tier": "web"}}}, {"metadata": {"name": "p", "labels": {"a": "1", "tier": "web"}}}),
    ("kubectl-label-remove", {"metadata": {"labels": {"a": None}}}, {"metadata": {"name": "p", "labels": {}}}),
    ("kubectl-scale", {"spec": {"replicas": 3}}, {"metadata": {"name": "p", "labels": {"a": "1"}}, "spec": {"replicas": 3}}),
    ("null-absent-key", {"spec": None}, {"metadata": {"name": "p", "labels": {"a": "1"}}}),
    ("new-subtree-pruned", {"spec": {"x": None, "y": {"z": None, "w": 1}}}, {"metadata": {"name": "p", "labels": {"a": "1"}}, "spec": {"y": {"w": 1}}}),
    ("list-replaces", {"metadata": {"labels": ["x"]}}, {"metadata": {"name": "p", "labels": ["x"]}}),
]


@pytest.mark.parametrize(("patch", "expected"), [c[1:] for c in MERGE_CASES], ids=[c[0] for c in MERGE_CASES])
def test_merge_patch(patch: dict[str, Any], expected: dict[str, Any]) -> None:
    doc = {"metadata": {"name": "p", "labels": {"a": "1"}}}
    assert apply_merge_patch(doc, patch) == expected
    assert doc == {"metadata": {"name": "p", "labels": {"a": "1"}}}


def test_merge_patch_non_object() -> None:
    assert apply_merge_patch({"a": 1}, ["x"]) == ["x"]
    with pytest.raises(PatchError) as info:
        apply_merge_patch({"a": 1}, None)
    assert info.value.code == 400


# --------------------------------------------------------------------------- strategic merge patch

SMP_CASES = [
    (
        "merge-list-by-key-keeps-fields",
        {"mergingList": [{"name": "1", "value": "a"}, {"name": "2", "value": "b"}]},
        {"mergingList": [{"name": "1", "other": "x"}]},
        {"mergingList": [{"name": "1", "value": "a", "other": "x"}, {"name": "2", "value": "b"}]},
    ),
    (
        "non-merging-list-replaced",
        {"nonMergingList": [{"name": "1"}, {"name": "2"}]},
        {"nonMergingList": [{"name": "3"}]},
        {"nonMergingList": [{"name": "3"}]},
    ),
    (
        "scalar-merge-list-new-items-first",
        {"mergingIntList": [1, 2]},
        {"mergingIntList": [3, 1]},
        {"mergingIntList": [3, 1, 2]},
    ),
    (
        "scalar-merge-list-with-order",  # upstream "merge lists of scalars" (three-way)
        {"mergingIntList": [1, 2, 4]},
        {"$setElementOrder/mergingIntList": [1, 2, 3], "mergingIntList": [3]},
        {"mergingIntList": [1, 2, 3, 4]},
    ),
    (
        "add-and-delete-with-order",  # upstream "add map and delete map from merging list"
        {"mergingList": [{"name": 1}, {"name": 2, "other": "b"}, {"name": 4, "other": "c"}]},
        {"$setElementOrder/mergingList": [{"name": 2}, {"name": 3}], "mergingList": [{"name": 3}, {"name": 1, "$patch": "delete"}]},
        {"mergingList": [{"name": 2, "other": "b"}, {"name": 4, "other": "c"}, {"name": 3}]},
    ),
    (
        "add-and-delete-with-order-conflict",  # upstream "... with conflict"
        {"mergingList": [{"name": 1, "other": "a"}, {"name": 4, "other": "c"}]},
        {"$setElementOrder/mergingList": [{"name": 2}, {"name": 3}], "mergingList": [{"name": 3}, {"name": 1, "$patch": "delete"}]},
        {"mergingList": [{"name": 4, "other": "c"}, {"name": 3}]},
    ),
    (
        # Server-only "b" sits before "c" in the live list, so upstream interleaves it first.
        "reorder-only",
        {"mergingList": [{"name": "a"}, {"name": "b"}, {"name": "c"}]},
        {"$setElementOrder/mergingList": [{"name": "c"}, {"name": "a"}]},
        {"mergingList": [{"name": "b"}, {"name": "c"}, {"name": "a"}]},
    ),
    (
        "delete-from-primitive-list",
        {"mergingIntList": [1, 2, 3]},
        {"$deleteFromPrimitiveList/mergingIntList": [2]},
        {"mergingIntList": [1, 3]},
    ),
    (
        "list-patch-replace",
        {"mergingList": [{"name": "1", "value": "a"}, {"name": "2"}]},
        {"mergingList": [{"name": "3"}, {"$patch": "replace"}]},
        {"mergingList": [{"name": "3"}]},
    ),
    (
        "map-patch-replace",
        {"simpleMap": {"a": "1", "b": "2"}},
        {"simpleMap": {"$patch": "replace", "c": "3"}},
        {"simpleMap": {"c": "3"}},
    ),
    ("map-patch-delete", {"simpleMap": {"a": "1"}, "name": "x"}, {"simpleMap": {"$patch": "delete"}}, {"simpleMap": {}, "name": "x"}),
    ("null-deletes", {"name": "x", "value": "y"}, {"value": None, "absent": None}, {"name": "x"}),
    (
        "retain-keys",
        {"retainKeysMap": {"name": "a", "value": "b", "other": "c"}},
        {"retainKeysMap": {"$retainKeys": ["name", "other"], "other": "d"}},
        {"retainKeysMap": {"name": "a", "other": "d"}},
    ),
    (
        "replace-strategy-map",
        {"replacingItem": {"a": 1, "b": 2}},
        {"replacingItem": {"c": 3}},
        {"replacingItem": {"c": 3}},
    ),
    (
        "new-field-drops-directives-and-nulls",
        {},
        {"mergingList": [{"name": "1", "value": None}, {"name": "2", "$patch": "delete"}]},
        {"mergingList": [{"name": "1"}]},
    ),
    (
        "unknown-schema-acts-as-merge-patch",
        {"unknown": {"list": [1, 2], "keep": 1}},
        {"unknown": {"list": [3], "add": 2}},
        {"unknown": {"list": [3], "keep": 1, "add": 2}},
    ),
    ("type-change-replaces", {"simpleMap": {"a": "1"}}, {"simpleMap": "x"}, {"simpleMap": "x"}),
]


@pytest.mark.parametrize(("doc", "patch", "expected"), [c[1:] for c in SMP_CASES], ids=[c[0] for c in SMP_CASES])
def test_strategic_merge_patch(doc: dict[str, Any], patch: dict[str, Any], expected: dict[str, Any]) -> None:
    doc_before, patch_before = copy.deepcopy(doc), copy.deepcopy(patch)
    assert apply_strategic_merge_patch(doc, patch, SCHEMA) == expected
    assert (doc, patch) == (doc_before, patch_before)


def test_strategic_merge_without_schema_is_a_merge_patch() -> None:
    doc = {"spec": {"containers": [{"name": "a", "image": "x"}], "n": 1}}
    patch = {"spec": {"containers": [{"name": "a", "image": "y"}]}}
    assert apply_strategic_merge_patch(doc, patch, None) == apply_merge_patch(doc, patch)


SMP_ERRORS = [
    ("not-an-object", ["x"], 400, "json: cannot unmarshal array into Go value of type map[string]interface {}"),
    ("bad-retain-keys", {"retainKeysMap": {"$retainKeys": "name"}}, 400, "invalid patch format of retainKeys"),
    ("retain-keys-mismatch", {"retainKeysMap": {"$retainKeys": ["name"], "value": "v"}}, 400, "invalid patch format of retainKeys"),
    ("bad-delete-prefix", {"$deleteFromPrimitiveListmergingIntList": [1]}, 400, "invalid patch format of primitive list"),
    ("missing-merge-key", {"mergingList": [{"value": "x"}]}, 500, "map: map[value:x] does not contain declared merge key: name"),
    ("merge-directive-in-list", {"mergingList": [{"$patch": "merge"}]}, 500, "merging lists cannot yet be specified in the patch"),
    ("unknown-map-directive", {"simpleMap": {"$patch": "merge"}}, 500, "unknown patch type: merge in map: map[$patch:merge]"),
    ("mixed-element-types", {"mergingIntList": [[1]]}, 500, "list element types are not identical: [[1] [[1]]]"),
    (
        "order-mismatch",
        {"$setElementOrder/mergingList": [{"name": "1"}], "mergingList": [{"name": "2"}]},
        500,
        "The order in patch list:\n[map[name:2]]\n doesn't match $setElementOrder list:\n[map[name:1]]\n",
    ),
]


@pytest.mark.parametrize(("patch", "code", "message"), [c[1:] for c in SMP_ERRORS], ids=[c[0] for c in SMP_ERRORS])
def test_strategic_merge_patch_errors(patch: Any, code: int, message: str) -> None:
    doc = {"mergingList": [{"name": "1"}], "mergingIntList": [1], "simpleMap": {"a": "1"}, "retainKeysMap": {"name": "n"}}
    with pytest.raises(PatchError) as info:
        apply_strategic_merge_patch(doc, patch, SCHEMA)
    assert (info.value.code, info.value.message) == (code, message)


def test_strategic_merge_rejects_lists_of_lists() -> None:
    with pytest.raises(PatchError) as info:
        apply_strategic_merge_patch({"mergingIntList": []}, {"mergingIntList": [[1]]}, SCHEMA)
    assert (info.value.code, info.value.message) == (422, "lists of lists are not supported")
