"""Object metadata validation with kube-apiserver's exact messages.

kubectl prints a 422's causes verbatim (`The Pod "Foo" is invalid: metadata.name: Invalid value:
...`), so every text here is apimachinery's, character for character, quirks included (the double
space in `'my-name',  or '123-abc'`, the trailing-dash masking of generateName prefixes).

Two layers, as in apimachinery:
- string checks (`is_dns1123_label`, `is_qualified_name`, ...) return `list[str]` messages;
- name rules `(name, prefix) -> list[str]` (apimachinery's `ValidateNameFunc`) pick one check per
  kind (`NAME_RULES`), and `validate_object_meta` turns messages into `FieldError`s on paths.

Everything is pure and sync; nothing raises mid-way, errors accumulate.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from typing import Any

from pykube_server.api.fields import FieldError, Path, forbidden, invalid, required, too_long
from pykube_server.api.memo import BoundedMemo

NameRule = Callable[[str, bool], list[str]]
"""`(name, prefix) -> messages`; prefix is True when validating a generateName."""

DNS1123_LABEL_MAX_LENGTH = 63
DNS1123_SUBDOMAIN_MAX_LENGTH = 253
DNS1035_LABEL_MAX_LENGTH = 63
QUALIFIED_NAME_MAX_LENGTH = 63
LABEL_VALUE_MAX_LENGTH = 63
TOTAL_ANNOTATION_SIZE_LIMIT_BYTES = 256 * (1 << 10)

DNS1123_LABEL_FMT = "[a-z0-9]([-a-z0-9]*[a-z0-9])?"
DNS1123_LABEL_ERR = ("a lowercase RFC 1123 label must consist of lower case alphanumeric characters "
                     "or '-', and must start and end with an alphanumeric character")
DNS1123_SUBDOMAIN_FMT = DNS1123_LABEL_FMT + "(\\." + DNS1123_LABEL_FMT + ")*"
DNS1123_SUBDOMAIN_ERR = ("a lowercase RFC 1123 subdomain must consist of lower case alphanumeric "
                         "characters, '-' or '.', and must start and end with an alphanumeric character")
DNS1035_LABEL_FMT = "[a-z]([-a-z0-9]*[a-z0-9])?"
DNS1035_LABEL_ERR = ("a DNS-1035 label must consist of lower case alphanumeric characters or '-', "
                     "start with an alphabetic character, and end with an alphanumeric character")
QUALIFIED_NAME_FMT = "([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]"
QUALIFIED_NAME_ERR = ("must consist of alphanumeric characters, '-', '_' or '.', and must start and "
                      "end with an alphanumeric character")
LABEL_VALUE_FMT = "(" + QUALIFIED_NAME_FMT + ")?"
LABEL_VALUE_ERR = ("a valid label must be an empty string or consist of alphanumeric characters, "
                   "'-', '_' or '.', and must start and end with an alphanumeric character")
IS_NEGATIVE_ERR = "must be greater than or equal to 0"

_DNS1123_LABEL = re.compile(DNS1123_LABEL_FMT)
_DNS1123_SUBDOMAIN = re.compile(DNS1123_SUBDOMAIN_FMT)
_DNS1035_LABEL = re.compile(DNS1035_LABEL_FMT)
_QUALIFIED_NAME = re.compile(QUALIFIED_NAME_FMT)
_LABEL_VALUE = re.compile(LABEL_VALUE_FMT)

FINALIZER_ORPHAN_DEPENDENTS = "orphan"
FINALIZER_DELETE_DEPENDENTS = "foregroundDeletion"
STANDARD_FINALIZERS = frozenset({"kubernetes", FINALIZER_ORPHAN_DEPENDENTS, FINALIZER_DELETE_DEPENDENTS})
"""Finalizers built-in kinds accept without a `domain/` prefix."""

BANNED_OWNERS = frozenset({("", "v1", "Event")})
"""Kinds that may never be an owner (apimachinery's BannedOwners)."""


# --- message builders -----------------------------------------------------------------------

def max_len_error(length: int) -> str:
    return f"must be no more than {length} characters"


def empty_error() -> str:
    return "must be non-empty"


def regex_error(msg: str, fmt: str, *examples: str) -> str:
    """apimachinery's RegexError, including its `'a',  or 'b'` double space."""
    if not examples:
        return f"{msg} (regex used for validation is '{fmt}')"
    shown = " or ".join(f"'{e}', " for e in examples)
    return f"{msg} (e.g. {shown}regex used for validation is '{fmt}')"


# --- string checks --------------------------------------------------------------------------

def _check(value: str, *, max_length: int, pattern: re.Pattern[str], err: str, fmt: str,
           examples: tuple[str, ...]) -> list[str]:
    errs = [max_len_error(max_length)] if len(value) > max_length else []
    if not pattern.fullmatch(value):
        errs.append(regex_error(err, fmt, *examples))
    return errs


def is_dns1123_label(value: str) -> list[str]:
    return _check(value, max_length=DNS1123_LABEL_MAX_LENGTH, pattern=_DNS1123_LABEL,
                  err=DNS1123_LABEL_ERR, fmt=DNS1123_LABEL_FMT, examples=("my-name", "123-abc"))


def is_dns1123_subdomain(value: str) -> list[str]:
    return _check(value, max_length=DNS1123_SUBDOMAIN_MAX_LENGTH, pattern=_DNS1123_SUBDOMAIN,
                  err=DNS1123_SUBDOMAIN_ERR, fmt=DNS1123_SUBDOMAIN_FMT, examples=("example.com",))


def is_dns1035_label(value: str) -> list[str]:
    return _check(value, max_length=DNS1035_LABEL_MAX_LENGTH, pattern=_DNS1035_LABEL,
                  err=DNS1035_LABEL_ERR, fmt=DNS1035_LABEL_FMT, examples=("my-name", "abc-123"))


def is_qualified_name(value: str) -> list[str]:
    """`[prefix/]name` as label keys, annotation keys and finalizers use."""
    parts = value.split("/")
    if len(parts) > 2:
        return ["a qualified name " + regex_error(QUALIFIED_NAME_ERR, QUALIFIED_NAME_FMT,
                                                  "MyName", "my.name", "123-abc")
                + " with an optional DNS subdomain prefix and '/' (e.g. 'example.com/MyName')"]
    errs: list[str] = []
    name = parts[-1]
    if len(parts) == 2:
        prefix = parts[0]
        if not prefix:
            errs.append("prefix part " + empty_error())
        else:
            errs.extend("prefix part " + m for m in is_dns1123_subdomain(prefix))
    if not name:
        errs.append("name part " + empty_error())
    elif len(name) > QUALIFIED_NAME_MAX_LENGTH:
        errs.append("name part " + max_len_error(QUALIFIED_NAME_MAX_LENGTH))
    if not _QUALIFIED_NAME.fullmatch(name):
        errs.append("name part " + regex_error(QUALIFIED_NAME_ERR, QUALIFIED_NAME_FMT,
                                               "MyName", "my.name", "123-abc"))
    return errs


def is_valid_label_value(value: str) -> list[str]:
    errs = [max_len_error(LABEL_VALUE_MAX_LENGTH)] if len(value) > LABEL_VALUE_MAX_LENGTH else []
    if not _LABEL_VALUE.fullmatch(value):
        errs.append(regex_error(LABEL_VALUE_ERR, LABEL_VALUE_FMT, "MyValue", "my_value", "12345"))
    return errs


_PATH_SEGMENT_MAY_NOT_BE = (".", "..")
_PATH_SEGMENT_MAY_NOT_CONTAIN = ("/", "%")


def is_valid_path_segment_name(name: str) -> list[str]:
    if name in _PATH_SEGMENT_MAY_NOT_BE:
        return [f"may not be '{name}'"]
    return is_valid_path_segment_prefix(name)


def is_valid_path_segment_prefix(name: str) -> list[str]:
    return [f"may not contain '{c}'" for c in _PATH_SEGMENT_MAY_NOT_CONTAIN if c in name]


# --- name rules (apimachinery ValidateNameFunc) ---------------------------------------------

def _mask_trailing_dash(name: str) -> str:
    """A generateName may end in '-'; upstream swaps the last *two* characters for 'a' (sic)."""
    if len(name) > 1 and name.endswith("-"):
        return name[:-2] + "a"
    return name


def name_is_dns_subdomain(name: str, prefix: bool) -> list[str]:
    return is_dns1123_subdomain(_mask_trailing_dash(name) if prefix else name)


def name_is_dns_label(name: str, prefix: bool) -> list[str]:
    return is_dns1123_label(_mask_trailing_dash(name) if prefix else name)


def name_is_dns1035_label(name: str, prefix: bool) -> list[str]:
    return is_dns1035_label(_mask_trailing_dash(name) if prefix else name)


def validate_path_segment_name(name: str, prefix: bool) -> list[str]:
    return is_valid_path_segment_prefix(name) if prefix else is_valid_path_segment_name(name)


def name_is_anything(name: str, prefix: bool) -> list[str]:
    """CertificateSigningRequests: upstream does not care what they are called."""
    return []


NAME_RULES: dict[tuple[str, str], NameRule] = {
    ("", "namespaces"): name_is_dns_label,
    ("", "services"): name_is_dns1035_label,
    ("rbac.authorization.k8s.io", "roles"): validate_path_segment_name,
    ("rbac.authorization.k8s.io", "rolebindings"): validate_path_segment_name,
    ("rbac.authorization.k8s.io", "clusterroles"): validate_path_segment_name,
    ("rbac.authorization.k8s.io", "clusterrolebindings"): validate_path_segment_name,
    ("certificates.k8s.io", "certificatesigningrequests"): name_is_anything,
}
"""(group, plural) -> name rule, where kube's rule is not DNS-1123 subdomain (the default).
Kinds whose names need more than a name rule (CRDs: `<plural>.<group>`; APIServices:
`<version>.<group>`; IPAddresses: a canonical IP) check that in their own strategy."""


def name_rule_for(group: str, plural: str) -> NameRule:
    return NAME_RULES.get((group, plural), name_is_dns_subdomain)


# --- metadata sections ----------------------------------------------------------------------

_VALID_LABELS: BoundedMemo[tuple[str, str], bool] = BoundedMemo(8192)
"""Label pairs already found valid: the same few labels come back on every object a controller
creates from one template."""


def validate_labels(labels: Mapping[str, Any], path: Path) -> list[FieldError]:
    errs: list[FieldError] = []
    for key, value in labels.items():
        if isinstance(value, str) and (key, value) in _VALID_LABELS:
            continue
        found = [invalid(path, key, m) for m in is_qualified_name(key)]
        if isinstance(value, str):  # (type errors are the decoder's business)
            found.extend(invalid(path, value, m) for m in is_valid_label_value(value))
            if not found:
                _VALID_LABELS.put((key, value), True)
        errs.extend(found)
    return errs


def validate_annotations(annotations: Mapping[str, Any], path: Path) -> list[FieldError]:
    """Keys are qualified names compared case-insensitively; keys plus values at most 256 KiB."""
    errs: list[FieldError] = []
    total = 0
    for key, value in annotations.items():
        errs.extend(invalid(path, key, m) for m in is_qualified_name(key.lower()))
        total += len(key.encode()) + len(str(value).encode())
    if total > TOTAL_ANNOTATION_SIZE_LIMIT_BYTES:
        errs.append(too_long(path, TOTAL_ANNOTATION_SIZE_LIMIT_BYTES))
    return errs


def validate_finalizers(finalizers: list[str], path: Path, *, kube_rules: bool = True) -> list[FieldError]:
    """Qualified names; `orphan` and `foregroundDeletion` are exclusive. With `kube_rules` (all
    built-in kinds), an unprefixed finalizer must also be a standard one."""
    errs: list[FieldError] = []
    for f in finalizers:
        errs.extend(invalid(path, f, m) for m in is_qualified_name(f))
    if FINALIZER_ORPHAN_DEPENDENTS in finalizers and FINALIZER_DELETE_DEPENDENTS in finalizers:
        errs.append(invalid(path, finalizers, f"finalizer {FINALIZER_ORPHAN_DEPENDENTS} and "
                                              f"{FINALIZER_DELETE_DEPENDENTS} cannot be both set"))
    if kube_rules:
        for i, f in enumerate(finalizers):
            if "/" not in f and f not in STANDARD_FINALIZERS:
                errs.append(invalid(path.index(i), f, "name is neither a standard finalizer name "
                                                      "nor is it fully qualified"))
    return errs


def _split_api_version(api_version: str) -> tuple[str, str]:
    """(group, version) the way schema.ParseGroupVersion sees it; ("", "") if unparsable."""
    parts = api_version.split("/")
    if len(parts) == 1:
        return "", api_version
    if len(parts) == 2:
        return parts[0], parts[1]
    return "", ""


def _validate_owner_reference(ref: Mapping[str, Any], path: Path) -> list[FieldError]:
    group, version = _split_api_version(str(ref.get("apiVersion", "")))
    kind = str(ref.get("kind", ""))
    errs: list[FieldError] = []
    checks = (("apiVersion", version, "version must not be empty"), ("kind", kind, "kind must not be empty"),
              ("name", ref.get("name", ""), "name must not be empty"),
              ("uid", ref.get("uid", ""), "uid must not be empty"))
    for field_name, value, message in checks:
        if not value:
            errs.append(invalid(path.child(field_name), ref.get(field_name, ""), message))
    if (group, version, kind) in BANNED_OWNERS:
        errs.append(invalid(path, dict(ref), f"{group}/{version}, Kind={kind} is disallowed from being an owner"))
    return errs


def validate_owner_references(refs: list[Mapping[str, Any]], path: Path) -> list[FieldError]:
    errs: list[FieldError] = []
    controller = ""
    for ref in refs:
        errs.extend(_validate_owner_reference(ref, path))
        if ref.get("controller") is not True:
            continue
        current = f"{ref.get('kind', '')}/{ref.get('name', '')}"
        if controller:
            errs.append(invalid(path, [dict(r) for r in refs],
                                "Only one reference can have Controller set to true. "
                                f'Found "true" in references for {controller} and {current}'))
        else:
            controller = current
    return errs


# --- the whole ObjectMeta -------------------------------------------------------------------

def _validate_names(meta: Mapping[str, Any], path: Path, name_rule: NameRule) -> list[FieldError]:
    errs: list[FieldError] = []
    generate_name = meta.get("generateName") or ""
    if generate_name:
        errs.extend(invalid(path.child("generateName"), generate_name, m) for m in name_rule(generate_name, True))
    name = meta.get("name") or ""
    if not name:
        errs.append(required(path.child("name"), "name or generateName is required"))
    else:
        errs.extend(invalid(path.child("name"), name, m) for m in name_rule(name, False))
    return errs


def _validate_namespace(meta: Mapping[str, Any], path: Path, namespaced: bool) -> list[FieldError]:
    namespace = meta.get("namespace") or ""
    if not namespaced:
        return [forbidden(path.child("namespace"), "not allowed on this type")] if namespace else []
    if not namespace:
        return [required(path.child("namespace"))]
    return [invalid(path.child("namespace"), namespace, m) for m in name_is_dns_label(namespace, False)]


def validate_object_meta(obj: Mapping[str, Any], *, namespaced: bool, name_rule: NameRule = name_is_dns_subdomain,
                         kube_finalizers: bool = True, path: Path | None = None) -> list[FieldError]:
    """ValidateObjectMeta for a create: the object's `metadata` against its kind's name rule.

    `name` must already be filled in from `generateName` (the store does that before validating,
    as kube-apiserver's BeforeCreate does), so an empty name means neither was given."""
    path = path or Path("metadata")
    meta: Mapping[str, Any] = obj.get("metadata") or {}
    errs = _validate_names(meta, path, name_rule)
    errs += _validate_namespace(meta, path, namespaced)
    generation = meta.get("generation")
    if isinstance(generation, int) and generation < 0:
        errs.append(invalid(path.child("generation"), generation, IS_NEGATIVE_ERR))
    errs += validate_labels(meta.get("labels") or {}, path.child("labels"))
    errs += validate_annotations(meta.get("annotations") or {}, path.child("annotations"))
    errs += validate_owner_references(meta.get("ownerReferences") or [], path.child("ownerReferences"))
    errs += validate_finalizers(meta.get("finalizers") or [], path.child("finalizers"), kube_rules=kube_finalizers)
    return errs
