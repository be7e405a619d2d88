"""Validation of ValidatingAdmissionPolicy and ValidatingAdmissionPolicyBinding (v1).

kube's `validateValidatingAdmissionPolicySpec` and `...BindingSpec`, with its texts: a
failurePolicy, a paramKind with apiVersion and kind, matchConstraints with at least one resource
rule, matchConditions/variables/validations/auditAnnotations whose CEL compiles against the
variables a policy offers (`compilation failed: ERROR: <input>:1:1: undeclared reference to
'foo' (in container '')` and the source line), messages without line breaks, the reasons kube
knows; a binding's policyName, paramRef (name xor selector, parameterNotFoundAction) and
validationActions (Deny, Warn, Audit; not Deny with Warn). Label selectors are not checked here.
"""

from __future__ import annotations

import re
from typing import Any

from pykube_server.api import cel
from pykube_server.api.fields import FieldError, Path, duplicate, forbidden, invalid, not_supported, required
from pykube_server.registry.kind_validation.admissionregistration import FAILURE_POLICIES, MATCH_POLICIES, _rule
from pykube_server.registry.kind_validation.common import go_string, invalid_go
from pykube_server.registry.validation import (
    is_dns1035_label,
    is_dns1123_subdomain,
    is_qualified_name,
    validate_path_segment_name,
)

Obj = dict[str, Any]
REASONS = ["Forbidden", "Invalid", "RequestEntityTooLarge", "Unauthorized"]
ACTIONS = ["Audit", "Deny", "Warn"]
CONDITION_VARIABLES = ("object", "oldObject", "request", "authorizer")
MAX_AUDIT_ANNOTATIONS = 20
BASE_VARIABLES = ("object", "oldObject", "request", "namespaceObject", "authorizer", "variables")
"""What a validation may name; `params` too when the policy has a paramKind."""
_CEL_IDENT = re.compile(r"^[_a-zA-Z][_a-zA-Z0-9]*$")
_CEL_RESERVED = frozenset({"true", "false", "null", "in", "as", "break", "const", "continue", "else", "for",
                           "function", "if", "import", "let", "loop", "package", "namespace", "return", "var",
                           "void", "while"})


def variables_for(spec: Obj, *, authorizer: bool = True) -> tuple[str, ...]:
    """The variables a policy's expressions may name (messageExpressions: not `authorizer`)."""
    names = tuple(v for v in BASE_VARIABLES if authorizer or v != "authorizer")
    return (*names, "params") if spec.get("paramKind") else names


def _items(value: Any) -> list[Any]:
    return value if isinstance(value, list) else []


def _compiles(expression: str, variables: tuple[str, ...], path: Path) -> list[FieldError]:
    try:
        cel.compile(expression, variables)
    except cel.CompileError as exc:
        return [invalid(path, expression, f"compilation failed: {exc.detail}")]
    return []


def _param_kind(kind: Any, path: Path) -> list[FieldError]:
    kind = kind if isinstance(kind, dict) else {}
    errs: list[FieldError] = []
    api_version = str(kind.get("apiVersion") or "")
    if not api_version:
        errs.append(required(path.child("apiVersion")))
    elif api_version.count("/") > 1:
        errs.append(invalid(path.child("apiVersion"), api_version, f"unexpected GroupVersion string: {api_version}"))
    else:
        group, _, version = api_version.rpartition("/")
        if group:
            problems = is_dns1123_subdomain(group)
            if problems:
                errs.append(invalid(path.child("apiVersion"), group, ",".join(problems)))
        if not version:
            errs.append(invalid(path.child("apiVersion"), api_version, "version must be specified"))
        elif is_dns1035_label(version):
            errs.append(invalid(path.child("apiVersion"), version, ",".join(is_dns1035_label(version))))
    name = str(kind.get("kind") or "")
    if not name:
        errs.append(required(path.child("kind")))
    elif is_dns1035_label(name.lower()):
        errs.append(invalid(path.child("kind"), name, "may have mixed case, but should otherwise match: "
                            + ",".join(is_dns1035_label(name.lower()))))
    return errs


def _named_rule(rule: Any, path: Path) -> list[FieldError]:
    rule = rule if isinstance(rule, dict) else {}
    errs: list[FieldError] = []
    seen: set[str] = set()
    for i, name in enumerate(_items(rule.get("resourceNames"))):
        errs += [invalid(path.child("resourceNames").index(i), name, msg)
                 for msg in validate_path_segment_name(str(name), False)]
        if name in seen:
            errs.append(duplicate(path.child("resourceNames").index(i), name))
        seen.add(str(name))
    return errs + _rule(rule, path)


def _match_resources(match: Any, path: Path) -> list[FieldError]:
    if match is None:
        return []
    match = match if isinstance(match, dict) else {}
    errs: list[FieldError] = []
    policy = match.get("matchPolicy")
    if policy is None:
        errs.append(required(path.child("matchPolicy")))
    elif policy not in MATCH_POLICIES:
        errs.append(not_supported(path.child("matchPolicy"), policy, MATCH_POLICIES))
    for selector in ("namespaceSelector", "objectSelector"):
        if match.get(selector) is None:
            errs.append(required(path.child(selector)))
    for field in ("resourceRules", "excludeResourceRules"):
        for i, rule in enumerate(_items(match.get(field))):
            errs += _named_rule(rule, path.child(field).index(i))
    return errs


def _match_conditions(conditions: list[Any], variables: tuple[str, ...], path: Path) -> list[FieldError]:
    errs: list[FieldError] = []
    seen: set[str] = set()
    if len(conditions) > 64:
        errs.append(FieldError("TooMany", str(path), detail="must have at most 64 items"))
    for i, condition in enumerate(conditions):
        condition = condition if isinstance(condition, dict) else {}
        here = path.index(i)
        expression = str(condition.get("expression") or "").strip()
        if not expression:
            errs.append(required(here.child("expression")))
        else:
            errs += _compiles(expression, variables, here.child("expression"))
        name = str(condition.get("name") or "")
        if not name:
            errs.append(required(here.child("name")))
        else:
            errs += [invalid(here.child("name"), name, msg) for msg in is_qualified_name(name)]
            if name in seen:
                errs.append(duplicate(here.child("name"), name))
            seen.add(name)
    return errs


def _variables(variables: list[Any], names: tuple[str, ...], path: Path) -> list[FieldError]:
    errs: list[FieldError] = []
    for i, variable in enumerate(variables):
        variable = variable if isinstance(variable, dict) else {}
        here = path.index(i)
        name = str(variable.get("name") or "")
        if not name.strip():
            errs.append(required(here.child("name"), "name is not specified"))
        elif not _CEL_IDENT.match(name) or name in _CEL_RESERVED:
            errs.append(invalid(here.child("name"), name, "name is not a valid CEL identifier"))
        expression = str(variable.get("expression") or "")
        if not expression.strip():
            errs.append(required(here.child("expression"), "expression is not specified"))
        else:
            errs += _compiles(expression, names, here.child("expression"))
    return errs


def _validation(validation: Any, names: tuple[str, ...], message_names: tuple[str, ...],
                path: Path) -> list[FieldError]:
    validation = validation if isinstance(validation, dict) else {}
    errs: list[FieldError] = []
    expression = str(validation.get("expression") or "")
    if not expression.strip():
        errs.append(required(path.child("expression"), "expression is not specified"))
    else:
        errs += _compiles(expression, names, path.child("expression"))
    message_expression = str(validation.get("messageExpression") or "")
    if message_expression and not message_expression.strip():
        errs.append(invalid(path.child("messageExpression"), message_expression, "must be non-empty if specified"))
    elif message_expression.strip():
        errs += _compiles(message_expression, message_names, path.child("messageExpression"))
    message = str(validation.get("message") or "")
    if message and not message.strip():
        errs.append(invalid(path.child("message"), message, "message must be non-empty if specified"))
    elif re.search(r"[\n\r]", message.strip()):
        errs.append(invalid(path.child("message"), message, "message must not contain line breaks"))
    reason = validation.get("reason")
    if reason is not None and reason not in REASONS:
        errs.append(not_supported(path.child("reason"), reason, REASONS))
    return errs


def _audit_annotation(annotation: Any, policy_name: str, names: tuple[str, ...], path: Path) -> list[FieldError]:
    annotation = annotation if isinstance(annotation, dict) else {}
    errs: list[FieldError] = []
    key = str(annotation.get("key") or "")
    if policy_name:
        errs += [invalid(path.child("key"), f"{policy_name}/{key}", msg) for msg in is_qualified_name(f"{policy_name}/{key}")]
    else:
        errs.append(invalid(path.child("key"), key, "requires metadata.name be non-empty"))
    expression = str(annotation.get("valueExpression") or "").strip()
    if not expression:
        errs.append(required(path.child("valueExpression"), "valueExpression is not specified"))
    elif len(expression) > 5 * 1024:
        errs.append(required(path.child("valueExpression"), f"must not exceed {5 * 1024} bytes in length"))
    else:
        errs += _compiles(expression, names, path.child("valueExpression"))
    return errs


def validate_validating_admission_policy(obj: Obj) -> list[FieldError]:
    spec = obj.get("spec") if isinstance(obj.get("spec"), dict) else {}
    path = Path("spec")
    errs: list[FieldError] = []
    failure = spec.get("failurePolicy")
    if failure is None:
        errs.append(required(path.child("failurePolicy")))
    elif failure not in FAILURE_POLICIES:
        errs.append(not_supported(path.child("failurePolicy"), failure, sorted(FAILURE_POLICIES)))
    if spec.get("paramKind") is not None:
        errs += _param_kind(spec["paramKind"], path.child("paramKind"))
    constraints = spec.get("matchConstraints")
    if constraints is None:
        errs.append(required(path.child("matchConstraints")))
    else:
        errs += _match_resources(constraints, path.child("matchConstraints"))
        if not _items((constraints if isinstance(constraints, dict) else {}).get("resourceRules")):
            errs.append(required(path.child("matchConstraints").child("resourceRules")))
    names = variables_for(spec)
    message_names = variables_for(spec, authorizer=False)
    condition_names = (*CONDITION_VARIABLES, "params") if spec.get("paramKind") is not None else CONDITION_VARIABLES
    errs += _match_conditions(_items(spec.get("matchConditions")), condition_names, path.child("matchConditions"))
    errs += _variables(_items(spec.get("variables")), names, path.child("variables"))
    validations, audits = _items(spec.get("validations")), _items(spec.get("auditAnnotations"))
    if not validations and not audits:
        detail = "validations or auditAnnotations must contain at least one item"
        errs += [required(path.child("validations"), detail), required(path.child("auditAnnotations"), detail)]
        return errs
    for i, validation in enumerate(validations):
        errs += _validation(validation, names, message_names, path.child("validations").index(i))
    if len(audits) > MAX_AUDIT_ANNOTATIONS:
        errs.append(invalid(path.child("auditAnnotations"), audits,
                            f"must not have more than {MAX_AUDIT_ANNOTATIONS} auditAnnotations"))
    policy_name = str((obj.get("metadata") or {}).get("name") or "")
    keys: set[str] = set()
    for i, annotation in enumerate(audits):
        errs += _audit_annotation(annotation, policy_name, names, path.child("auditAnnotations").index(i))
        key = str((annotation if isinstance(annotation, dict) else {}).get("key") or "")
        if key in keys:
            errs.append(duplicate(path.child("auditAnnotations").index(i).child("key"), key))
        keys.add(key)
    return errs


def _param_ref(ref: Any, path: Path) -> list[FieldError]:
    if ref is None:
        return []
    ref = ref if isinstance(ref, dict) else {}
    errs: list[FieldError] = []
    name, selector = str(ref.get("name") or ""), ref.get("selector")
    if name:
        errs += [invalid(path.child("name"), name, msg) for msg in validate_path_segment_name(name, False)]
        if selector is not None:
            errs.append(forbidden(path.child("name"), "name and selector are mutually exclusive"))
    if selector is not None and name:
        errs.append(forbidden(path.child("selector"), "name and selector are mutually exclusive"))
    if not name and selector is None:
        errs.append(required(path, "one of name or selector must be specified"))
    action = ref.get("parameterNotFoundAction")
    if not action:
        errs.append(required(path.child("parameterNotFoundAction")))
    elif action not in ("Deny", "Allow"):
        errs.append(not_supported(path.child("parameterNotFoundAction"), action, ["Deny", "Allow"]))
    return errs


def _validation_actions(actions: list[Any], path: Path) -> list[FieldError]:
    errs: list[FieldError] = []
    seen: set[str] = set()
    for i, action in enumerate(actions):
        if action not in ACTIONS:
            errs.append(not_supported(path.index(i), action, ACTIONS))
        if action in seen:
            errs.append(duplicate(path.index(i), action))
        seen.add(str(action))
    if "Deny" in seen and "Warn" in seen:
        rendered = "[]admissionregistration.ValidationAction{" + ", ".join(go_string(str(a)) for a in actions) + "}"
        errs.append(invalid_go(path, rendered,
                               "must not contain both Deny and Warn (repeating the same validation failure "
                               "information in the API response and headers serves no purpose)"))
    if not seen:
        errs.append(required(path, "at least one validation action is required"))
    return errs


def validate_validating_admission_policy_binding(obj: Obj) -> list[FieldError]:
    spec = obj.get("spec") if isinstance(obj.get("spec"), dict) else {}
    path = Path("spec")
    errs: list[FieldError] = []
    policy_name = spec.get("policyName")
    if not policy_name:
        errs.append(required(path.child("policyName")))
    else:
        errs += [invalid(path.child("policyName"), policy_name, msg) for msg in is_dns1123_subdomain(str(policy_name))]
    errs += _param_ref(spec.get("paramRef"), path.child("paramRef"))
    errs += _match_resources(spec.get("matchResources"), path.child("matchResouces"))  # sic: kube's path
    errs += _validation_actions(_items(spec.get("validationActions")), path.child("validationActions"))
    return errs
