"""Object metadata validation: the exact texts kube-apiserver returns (and kubectl prints).

Expected strings are written out in full, as real clusters print them, not rebuilt from the
module's constants, so a drifting constant fails here. Facts recorded:
- apimachinery's RegexError puts two spaces before "or" when it lists several examples.
- an empty qualified-name part gets both "must be non-empty" and the regex message.
- a generateName may end in '-': the rule masks it (upstream drops the last two characters and
  appends 'a') before checking.
- namespaces use DNS-1123 labels, services DNS-1035 labels, RBAC kinds path segments,
  CertificateSigningRequests no rule at all; everything else DNS-1123 subdomains.
- labels and annotations errors carry the map's path (`metadata.labels`), not the key; core
  finalizer errors are indexed (`metadata.finalizers[0]`), apimachinery's are not.
"""

from __future__ import annotations

import pytest

from pykube_server.api.fields import Path, aggregate_message
from pykube_server.registry.validation import (
    NAME_RULES,
    is_dns1035_label,
    is_dns1123_label,
    is_dns1123_subdomain,
    is_qualified_name,
    is_valid_label_value,
    name_is_dns_label,
    name_is_dns_subdomain,
    name_rule_for,
    validate_annotations,
    validate_object_meta,
    validate_path_segment_name,
)

SUBDOMAIN_MSG = (
    "a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or '.', "
    "and must start and end with an alphanumeric character (e.g. 'example.com', regex used for "
    "validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*')"
)
LABEL_MSG = (
    "a lowercase RFC 1123 label must consist of lower case alphanumeric characters or '-', and must "
    "start and end with an alphanumeric character (e.g. 'my-name',  or '123-abc', regex used for "
    "validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?')"
)
DNS1035_MSG = (
    "a DNS-1035 label must consist of lower case alphanumeric characters or '-', start with an "
    "alphabetic character, and end with an alphanumeric character (e.g. 'my-name',  or 'abc-123', "
    "regex used for validation is '[a-z]([-a-z0-9]*[a-z0-9])?')"
)
QNAME_MSG = (
    "name part must consist of alphanumeric characters, '-', '_' or '.', and must start and end with "
    "an alphanumeric character (e.g. 'MyName',  or 'my.name',  or '123-abc', regex used for "
    "validation is '([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]')"
)
LABEL_VALUE_MSG = (
    "a valid label must be an empty string or consist of alphanumeric characters, '-', '_' or '.', "
    "and must start and end with an alphanumeric character (e.g. 'MyValue',  or 'my_value',  or "
    "'12345', regex used for validation is '(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?')"
)


def _meta(**meta: object) -> dict[str, object]:
    return {"metadata": meta}


def _texts(obj: dict[str, object], *, namespaced: bool = True, rule=name_is_dns_subdomain) -> list[str]:
    return [str(e) for e in validate_object_meta(obj, namespaced=namespaced, name_rule=rule)]


# --- string checks --------------------------------------------------------------------------

@pytest.mark.parametrize("value", ["a", "abc", "a-b", "a.b.c", "0", "1.2.3.4", "x" * 253])
def test_subdomain_valid(value: str) -> None:
    assert is_dns1123_subdomain(value) == []


@pytest.mark.parametrize("value", ["Foo", "-a", "a-", "a..b", ".a", "a_b", ""])
def test_subdomain_invalid(value: str) -> None:
    assert is_dns1123_subdomain(value) == [SUBDOMAIN_MSG]


def test_subdomain_too_long() -> None:
    assert is_dns1123_subdomain("a" * 254) == ["must be no more than 253 characters"]


@pytest.mark.parametrize(("value", "expected"), [
    ("my-name", []),
    ("123-abc", []),
    ("a.b", [LABEL_MSG]),
    ("A", [LABEL_MSG]),
    ("a" * 64, ["must be no more than 63 characters"]),
    ("-" * 64, ["must be no more than 63 characters", LABEL_MSG]),
], ids=["ok", "digits", "dot", "upper", "long", "long-and-bad"])
def test_dns1123_label(value: str, expected: list[str]) -> None:
    assert is_dns1123_label(value) == expected


@pytest.mark.parametrize(("value", "expected"), [
    ("my-svc", []),
    ("1abc", [DNS1035_MSG]),
    ("abc-", [DNS1035_MSG]),
], ids=["ok", "digit-first", "dash-last"])
def test_dns1035_label(value: str, expected: list[str]) -> None:
    assert is_dns1035_label(value) == expected


@pytest.mark.parametrize(("value", "expected"), [
    ("app", []),
    ("app.kubernetes.io/name", []),
    ("MyKey_1.x", []),
    ("a/b/c", [
        "a qualified name must consist of alphanumeric characters, '-', '_' or '.', and must start "
        "and end with an alphanumeric character (e.g. 'MyName',  or 'my.name',  or '123-abc', regex "
        "used for validation is '([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]') with an optional DNS "
        "subdomain prefix and '/' (e.g. 'example.com/MyName')"]),
    ("/name", ["prefix part must be non-empty"]),
    ("Example.com/name", ["prefix part " + SUBDOMAIN_MSG]),
    ("example.com/", ["name part must be non-empty", QNAME_MSG]),
    ("foo bar", [QNAME_MSG]),
    ("a" * 64, ["name part must be no more than 63 characters"]),
], ids=["plain", "prefixed", "mixed", "two-slashes", "empty-prefix", "bad-prefix", "empty-name", "space", "long"])
def test_qualified_name(value: str, expected: list[str]) -> None:
    assert is_qualified_name(value) == expected


@pytest.mark.parametrize(("value", "expected"), [
    ("", []),
    ("v1.2_3-x", []),
    ("-x", [LABEL_VALUE_MSG]),
    ("a" * 64, ["must be no more than 63 characters"]),
], ids=["empty", "ok", "dash-first", "long"])
def test_label_value(value: str, expected: list[str]) -> None:
    assert is_valid_label_value(value) == expected


@pytest.mark.parametrize(("name", "prefix", "expected"), [
    ("admin", False, []),
    ("system:controller:foo", False, []),
    (".", False, ["may not be '.'"]),
    ("..", False, ["may not be '..'"]),
    ("a/b%c", False, ["may not contain '/'", "may not contain '%'"]),
    ("..", True, []),
    ("x/", True, ["may not contain '/'"]),
], ids=["plain", "colons", "dot", "dotdot", "slash-percent", "prefix-dotdot", "prefix-slash"])
def test_path_segment_rule(name: str, prefix: bool, expected: list[str]) -> None:
    assert validate_path_segment_name(name, prefix) == expected


@pytest.mark.parametrize(("name", "expected"), [
    ("web-", []),
    ("web.", [SUBDOMAIN_MSG]),
    ("-", [SUBDOMAIN_MSG]),
], ids=["trailing-dash", "trailing-dot", "just-dash"])
def test_generate_name_prefix_masks_trailing_dash(name: str, expected: list[str]) -> None:
    assert name_is_dns_subdomain(name, True) == expected


def test_label_rule_masks_trailing_dash() -> None:
    assert name_is_dns_label("ns-", True) == []
    assert name_is_dns_label("ns-", False) == [LABEL_MSG]


# --- name rules by kind ---------------------------------------------------------------------

@pytest.mark.parametrize(("group", "plural", "name", "ok"), [
    ("", "namespaces", "a.b", False),
    ("", "namespaces", "kube-system", True),
    ("", "services", "1svc", False),
    ("", "services", "a.b", False),
    ("", "pods", "a.b", True),
    ("", "configmaps", "kube-root-ca.crt", True),
    ("apps", "deployments", "Web", False),
    ("rbac.authorization.k8s.io", "clusterroles", "system:aggregate-to-admin", True),
    ("rbac.authorization.k8s.io", "rolebindings", "a/b", False),
    ("certificates.k8s.io", "certificatesigningrequests", "Any Name!", True),
], ids=lambda v: str(v))
def test_name_rule_for(group: str, plural: str, name: str, ok: bool) -> None:
    assert (name_rule_for(group, plural)(name, False) == []) is ok


def test_name_rules_cover_rbac() -> None:
    rbac = {p for g, p in NAME_RULES if g == "rbac.authorization.k8s.io"}
    assert rbac == {"roles", "rolebindings", "clusterroles", "clusterrolebindings"}


# --- validate_object_meta -------------------------------------------------------------------

def test_real_invalid_name_message() -> None:
    assert _texts(_meta(name="Foo", namespace="default")) == [f'metadata.name: Invalid value: "Foo": {SUBDOMAIN_MSG}']


def test_name_required() -> None:
    assert _texts(_meta(namespace="default")) == ["metadata.name: Required value: name or generateName is required"]


def test_bad_generate_name_reports_both_fields() -> None:
    assert _texts(_meta(generateName="Web-", name="Web-x1z2", namespace="default")) == [
        f'metadata.generateName: Invalid value: "Web-": {SUBDOMAIN_MSG}',
        f'metadata.name: Invalid value: "Web-x1z2": {SUBDOMAIN_MSG}',
    ]


def test_namespace_required_for_namespaced_kinds() -> None:
    assert _texts(_meta(name="p")) == ["metadata.namespace: Required value"]


def test_namespace_must_be_a_label() -> None:
    assert _texts(_meta(name="p", namespace="a.b")) == [f'metadata.namespace: Invalid value: "a.b": {LABEL_MSG}']


def test_namespace_forbidden_on_cluster_kinds() -> None:
    assert _texts(_meta(name="n1", namespace="default"), namespaced=False) == [
        "metadata.namespace: Forbidden: not allowed on this type"]


def test_namespace_name_rule() -> None:
    errs = _texts(_meta(name="my.ns"), namespaced=False, rule=name_rule_for("", "namespaces"))
    assert errs == [f'metadata.name: Invalid value: "my.ns": {LABEL_MSG}']


def test_service_name_rule() -> None:
    errs = _texts(_meta(name="1web", namespace="default"), rule=name_rule_for("", "services"))
    assert errs == [f'metadata.name: Invalid value: "1web": {DNS1035_MSG}']


def test_negative_generation() -> None:
    assert _texts(_meta(name="p", namespace="d", generation=-1)) == [
        "metadata.generation: Invalid value: -1: must be greater than or equal to 0"]


def test_labels() -> None:
    errs = _texts(_meta(name="p", namespace="d", labels={"foo bar": "ok", "app": "-bad"}))
    assert errs == [
        f'metadata.labels: Invalid value: "foo bar": {QNAME_MSG}',
        f'metadata.labels: Invalid value: "-bad": {LABEL_VALUE_MSG}',
    ]


def test_annotation_keys_are_case_insensitive_qualified_names() -> None:
    assert _texts(_meta(name="p", namespace="d", annotations={"Example.com/Key": "v"})) == []
    assert _texts(_meta(name="p", namespace="d", annotations={"a b": "v"})) == [
        f'metadata.annotations: Invalid value: "a b": {QNAME_MSG}']


def test_annotations_total_size_limit() -> None:
    at_limit = {"k": "x" * (256 * 1024 - 1)}
    assert validate_annotations(at_limit, Path("metadata.annotations")) == []
    over = {"k": "x" * (256 * 1024)}
    assert [str(e) for e in validate_annotations(over, Path("metadata.annotations"))] == [
        "metadata.annotations: Too long: may not be more than 262144 bytes"]


@pytest.mark.parametrize(("finalizers", "expected"), [
    (["kubernetes.io/pvc-protection", "orphan", "kubernetes"], []),
    (["foregroundDeletion"], []),
    (["custom"], ['metadata.finalizers[0]: Invalid value: "custom": name is neither a standard '
                  'finalizer name nor is it fully qualified']),
    (["a/b/c"], ['metadata.finalizers: Invalid value: "a/b/c": a qualified name must consist of alphanumeric '
                 "characters, '-', '_' or '.', and must start and end with an alphanumeric character (e.g. "
                 "'MyName',  or 'my.name',  or '123-abc', regex used for validation is "
                 "'([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]') with an optional DNS subdomain prefix and '/' "
                 "(e.g. 'example.com/MyName')"]),
], ids=["standard-and-qualified", "foreground", "unqualified", "two-slashes"])
def test_finalizers(finalizers: list[str], expected: list[str]) -> None:
    assert _texts(_meta(name="p", namespace="d", finalizers=finalizers)) == expected


def test_orphan_and_foreground_are_exclusive() -> None:
    # The bad value is the whole list (Go prints it with %#v; that rendering is fields.py's job).
    errs = validate_object_meta(_meta(name="p", namespace="d", finalizers=["orphan", "foregroundDeletion"]),
                                namespaced=True)
    assert [(e.field, e.bad_value, e.detail) for e in errs] == [
        ("metadata.finalizers", ["orphan", "foregroundDeletion"],
         "finalizer orphan and foregroundDeletion cannot be both set")]


def test_owner_reference_fields_required() -> None:
    ref = {"apiVersion": "", "kind": "", "name": "", "uid": ""}
    assert _texts(_meta(name="p", namespace="d", ownerReferences=[ref])) == [
        'metadata.ownerReferences.apiVersion: Invalid value: "": version must not be empty',
        'metadata.ownerReferences.kind: Invalid value: "": kind must not be empty',
        'metadata.ownerReferences.name: Invalid value: "": name must not be empty',
        'metadata.ownerReferences.uid: Invalid value: "": uid must not be empty',
    ]


def test_owner_reference_only_one_controller() -> None:
    refs = [
        {"apiVersion": "apps/v1", "kind": "ReplicaSet", "name": "a", "uid": "1", "controller": True},
        {"apiVersion": "apps/v1", "kind": "ReplicaSet", "name": "b", "uid": "2", "controller": True},
    ]
    errs = validate_object_meta(_meta(name="p", namespace="d", ownerReferences=refs), namespaced=True)
    assert len(errs) == 1
    assert errs[0].field == "metadata.ownerReferences"
    assert errs[0].detail == ('Only one reference can have Controller set to true. '
                              'Found "true" in references for ReplicaSet/a and ReplicaSet/b')


def test_event_cannot_own() -> None:
    ref = {"apiVersion": "v1", "kind": "Event", "name": "e", "uid": "1"}
    errs = validate_object_meta(_meta(name="p", namespace="d", ownerReferences=[ref]), namespaced=True)
    assert [e.detail for e in errs] == ["/v1, Kind=Event is disallowed from being an owner"]


def test_many_errors_aggregate_like_kubectl_shows_them() -> None:
    errs = validate_object_meta(_meta(name="Foo"), namespaced=True)
    assert aggregate_message(errs) == (
        f'[metadata.name: Invalid value: "Foo": {SUBDOMAIN_MSG}, metadata.namespace: Required value]')
    assert [e.cause()["reason"] for e in errs] == ["FieldValueInvalid", "FieldValueRequired"]


def test_valid_object_has_no_errors() -> None:
    obj = _meta(name="web-0", namespace="default", labels={"app.kubernetes.io/name": "web"},
                annotations={"kubectl.kubernetes.io/last-applied-configuration": "{}"},
                finalizers=["example.com/cleanup"],
                ownerReferences=[{"apiVersion": "apps/v1", "kind": "StatefulSet", "name": "web",
                                  "uid": "u1", "controller": True}])
    assert validate_object_meta(obj, namespaced=True) == []


def test_validate_labels_remembers_only_valid_pairs() -> None:
    from pykube_server.registry.validation import validate_labels

    path = Path("metadata.labels")
    for _ in range(2):  # the second round comes from the remembered valid pairs
        assert validate_labels({"app": "web", "tier": "a"}, path) == []
        errs = validate_labels({"app": "web", "bad key": "x", "ok": "-bad-"}, path)
        assert [(e.field, e.bad_value) for e in errs] == [("metadata.labels", "bad key"), ("metadata.labels", "-bad-")]
    assert validate_labels({"app": {"not": "a string"}}, path) == []  # the decoder reports types
