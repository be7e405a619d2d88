"""Label and field selectors against the behaviour of apimachinery 1.33 (`labels`, `fields`).

Expected error texts are the ones kube-apiserver returns as 400 BadRequest messages; they come
from reading apimachinery v0.33.0 `pkg/labels/selector.go`, `pkg/fields/selector.go`,
`pkg/util/validation` and `pkg/runtime/conversion.go`, plus kubernetes' pod field label
conversion ("field label not supported: status.hostIP" as seen in user reports).
"""

from __future__ import annotations

import pytest

from pykube_server.api.selectors import (
    EVERYTHING,
    NOTHING,
    FieldSelector,
    LabelSelector,
    SelectorError,
    format_label_selector,
    parse_field_selector,
    parse_label_selector,
    requires_exact,
    selector_from_object,
    selector_from_set,
)

LABELS = {"app": "web", "tier": "front", "n": "5", "example.com/team": "a"}

MATCH_CASES = [
    ("", True),
    ("app=web", True),
    ("app==web", True),
    ("app=db", False),
    ("app!=db", True),
    ("missing!=x", True),
    ("app in (web,db)", True),
    ("app in (db)", False),
    ("missing in (x)", False),
    ("app notin (db)", True),
    ("app notin (web)", False),
    ("missing notin (x)", True),
    ("app", True),
    ("missing", False),
    ("!missing", True),
    ("!app", False),
    ("app=web,tier=front", True),
    ("app=web,tier=back", False),
    ("example.com/team=a", True),
    ("n>4", True),
    ("n>5", False),
    ("n<6", True),
    ("app>1", False),
    ("  app = web ,  tier in ( front )  ", True),
    ("missing=", True),
    ("app=", False),
    ("in in (in)", False),
]


@pytest.mark.parametrize(("text", "expected"), MATCH_CASES, ids=[c[0] or "<empty>" for c in MATCH_CASES])
def test_label_selector_matches(text: str, expected: bool) -> None:
    labels = dict(LABELS)
    if text == "missing=":
        labels["missing"] = ""
    assert parse_label_selector(text).matches(labels) is expected


CANONICAL_CASES = [
    ("tier=front,app=web", "app=web,tier=front"),
    ("app==web", "app==web"),
    ("x in (b,a,a)", "x in (a,b)"),
    ("x notin ()", "x notin ()"),
    ("!b,a", "a,!b"),
    ("n>3", "n>3"),
    ("k in (x,,y)", "k in (,x,y)"),
    ("", ""),
]


@pytest.mark.parametrize(("text", "canonical"), CANONICAL_CASES, ids=[c[0] or "<empty>" for c in CANONICAL_CASES])
def test_label_selector_to_string(text: str, canonical: str) -> None:
    assert parse_label_selector(text).to_string() == canonical


_VALUE_RULE = (
    "a valid label must be an empty string or consist of alphanumeric characters, '-', '_' or '.', "
    "and must start and end with an alphanumeric character (e.g. 'MyValue',  or 'my_value',  or "
    "'12345', regex used for validation is '(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?')"
)
_NAME_RULE = (
    "must consist of alphanumeric characters, '-', '_' or '.', and must start and end with an "
    "alphanumeric character (e.g. 'MyName',  or 'my.name',  or '123-abc', regex used for "
    "validation is '([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]')"
)

ERROR_CASES = [
    ("a b", "unable to parse requirement: found 'b', expected: in, notin, =, ==, !=, gt, lt"),
    ("a=b c", "found 'c', expected: ',' or 'end of string'"),
    ("a=b,", "found '', expected: identifier after ','"),
    ("=a", "found '=', expected: !, identifier, or 'end of string'"),
    ("a in b", "unable to parse requirement: found 'b' expected: '('"),
    ("a in (b", "unable to parse requirement: found '', expected: ',' or ')'"),
    ("a=(b", "unable to parse requirement: found '(', expected: identifier"),
    ("!a=b", "found '=', expected: ',' or 'end of string'"),
    ("app=foo$", f'unable to parse requirement: values[0][app]: Invalid value: "foo$": {_VALUE_RULE}'),
    ("a_=b", f'unable to parse requirement: <nil>: Invalid value: "a_": name part {_NAME_RULE}'),
    (
        "a/b/c=1",
        'unable to parse requirement: <nil>: Invalid value: "a/b/c": a qualified name '
        f"{_NAME_RULE} with an optional DNS subdomain prefix and '/' (e.g. 'example.com/MyName')",
    ),
    ("/a=1", 'unable to parse requirement: <nil>: Invalid value: "/a": prefix part must be non-empty'),
    (
        "n<x",
        'unable to parse requirement: values[0]: Invalid value: "x": '
        "for 'Gt', 'Lt' operators, the value must be an integer",
    ),
    ("x=" + "v" * 64, f'unable to parse requirement: values[0][x]: Invalid value: "{"v" * 64}": must be no more than 63 characters'),
]


@pytest.mark.parametrize(("text", "message"), ERROR_CASES, ids=[c[0][:20] for c in ERROR_CASES])
def test_label_selector_errors(text: str, message: str) -> None:
    with pytest.raises(SelectorError) as info:
        parse_label_selector(text)
    assert info.value.message == message


def test_label_selector_is_immutable_value() -> None:
    selector = parse_label_selector("app=web")
    assert isinstance(selector, LabelSelector)
    assert selector == parse_label_selector("app = web")
    with pytest.raises(AttributeError):
        selector.requirements = ()  # type: ignore[misc]
    assert parse_label_selector("").empty and not selector.empty
    assert hash(selector) == hash(parse_label_selector("app=web"))


OBJECT_CASES = [
    ({"matchLabels": {"b": "2", "a": "1"}}, "a=1,b=2"),
    (
        {
            "matchLabels": {"app": "web"},
            "matchExpressions": [
                {"key": "tier", "operator": "In", "values": ["front", "back"]},
                {"key": "env", "operator": "NotIn", "values": ["prod"]},
                {"key": "canary", "operator": "DoesNotExist"},
                {"key": "zone", "operator": "Exists"},
            ],
        },
        "app=web,!canary,env notin (prod),tier in (back,front),zone",
    ),
    ({}, "<none>"),
    (None, "<none>"),
    ({"matchExpressions": [{"key": "a", "operator": "Bogus"}]}, "<error>"),
]


@pytest.mark.parametrize(("obj", "text"), OBJECT_CASES, ids=["labels", "expressions", "empty", "nil", "bad-op"])
def test_format_label_selector(obj: dict | None, text: str) -> None:
    assert format_label_selector(obj) == text


def test_selector_from_object_semantics() -> None:
    assert selector_from_object(None) is NOTHING
    assert not NOTHING.matches({}) and not NOTHING.empty
    assert selector_from_object({}) == EVERYTHING
    sel = selector_from_object({"matchExpressions": [{"key": "tier", "operator": "In", "values": ["a", "b"]}]})
    assert sel.matches({"tier": "b"}) and not sel.matches({"tier": "c"}) and not sel.matches({})
    assert selector_from_set({"app": "x"}).matches({"app": "x", "other": "y"})


OBJECT_ERROR_CASES = [
    ({"matchExpressions": [{"key": "a", "operator": "Gt", "values": ["1"]}]}, '"Gt" is not a valid label selector operator'),
    (
        {"matchExpressions": [{"key": "a", "operator": "In"}]},
        "values: Invalid value: []string(nil): for 'in', 'notin' operators, values set can't be empty",
    ),
    (
        {"matchExpressions": [{"key": "a", "operator": "Exists", "values": ["x"]}]},
        'values: Invalid value: []string{"x"}: values set must be empty for exists and does not exist',
    ),
    ({"matchLabels": {"bad key": "v"}}, f'key: Invalid value: "bad key": name part {_NAME_RULE}'),
]


@pytest.mark.parametrize(("obj", "message"), OBJECT_ERROR_CASES, ids=["gt", "in-empty", "exists-values", "bad-key"])
def test_selector_from_object_errors(obj: dict, message: str) -> None:
    with pytest.raises(SelectorError) as info:
        selector_from_object(obj)
    assert info.value.message == message


def test_label_requires_exact() -> None:
    assert requires_exact(parse_label_selector("a=1,b in (2)"), "b") == "2"
    assert requires_exact(parse_label_selector("a in (1,2)"), "a") is None
    assert requires_exact(parse_label_selector("a!=1"), "a") is None
    assert requires_exact(None, "a") is None


FIELDS = {"metadata.name": "p", "metadata.namespace": "default", "spec.nodeName": "n1", "status.phase": "Running"}

FIELD_CASES = [
    ("", True, ""),
    ("metadata.name=p", True, "metadata.name=p"),
    ("metadata.name==p", True, "metadata.name=p"),
    ("metadata.name!=p", False, "metadata.name!=p"),
    ("status.phase=Running,spec.nodeName=n1", True, "spec.nodeName=n1,status.phase=Running"),
    ("status.phase=Running,spec.nodeName=n2", False, "spec.nodeName=n2,status.phase=Running"),
    ("spec.serviceAccountName=", True, "spec.serviceAccountName="),
    ("spec.serviceAccountName!=", False, "spec.serviceAccountName!="),
    (r"metadata.name=a\,b\=c\\d", False, r"metadata.name=a\,b\=c\\d"),
    ("metadata.name=p,", True, "metadata.name=p"),
]


@pytest.mark.parametrize(("text", "expected", "canonical"), FIELD_CASES, ids=[c[0] or "<empty>" for c in FIELD_CASES])
def test_field_selector(text: str, expected: bool, canonical: str) -> None:
    selector = parse_field_selector(text)
    assert selector.matches(FIELDS) is expected
    assert selector.to_string() == canonical


def test_field_selector_unescapes_values() -> None:
    selector = parse_field_selector(r"metadata.name=a\,b\=c\\d")
    assert [(r.field, r.operator, r.value) for r in selector.requirements] == [("metadata.name", "=", "a,b=c\\d")]
    assert selector.matches({"metadata.name": "a,b=c\\d"})


FIELD_ERROR_CASES = [
    ("foo", "invalid selector: 'foo'; can't understand 'foo'"),
    ("a=b,c", "invalid selector: 'a=b,c'; can't understand 'c'"),
    ("a=b=c", "invalid field selector: unescaped character in value: 61"),
    (r"a=\x", "invalid field selector: invalid escape sequence: \\x"),
    ("a=x\\", "invalid field selector: invalid escape sequence: \\"),
]


@pytest.mark.parametrize(("text", "message"), FIELD_ERROR_CASES, ids=[c[0] for c in FIELD_ERROR_CASES])
def test_field_selector_errors(text: str, message: str) -> None:
    with pytest.raises(SelectorError) as info:
        parse_field_selector(text)
    assert info.value.message == message


POD_FIELDS = ("metadata.name", "metadata.namespace", "spec.nodeName", "status.phase")


def test_field_validation_for_a_kind_with_selectable_fields() -> None:
    ok = parse_field_selector("spec.host=n1").validate_fields(POD_FIELDS, aliases={"spec.host": "spec.nodeName"})
    assert ok.to_string() == "spec.nodeName=n1"
    with pytest.raises(SelectorError) as info:
        parse_field_selector("status.hostIP=1.2.3.4").validate_fields(POD_FIELDS)
    assert info.value.message == "field label not supported: status.hostIP"


def test_field_validation_for_a_generic_kind() -> None:
    assert parse_field_selector("metadata.namespace=x").validate_fields().to_string() == "metadata.namespace=x"
    with pytest.raises(SelectorError) as info:
        parse_field_selector("data.key=x").validate_fields()
    assert info.value.message == '"data.key" is not a known field selector: only "metadata.name", "metadata.namespace"'


def test_field_requires_exact() -> None:
    selector = parse_field_selector("metadata.name=d,status.phase!=Failed")
    assert isinstance(selector, FieldSelector)
    assert requires_exact(selector, "metadata.name") == "d"
    assert requires_exact(selector, "status.phase") is None
    assert requires_exact(parse_field_selector("metadata.name==d"), "metadata.name") == "d"
