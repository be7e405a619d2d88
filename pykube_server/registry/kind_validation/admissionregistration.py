"""Validation of Mutating/ValidatingWebhookConfigurations (admissionregistration.k8s.io/v1).

The key rules of kube's `ValidateValidatingWebhookConfiguration`/`...Mutating...`, with its
texts: fully qualified, unique webhook names; sideEffects None or NoneOnDryRun; an
admissionReviewVersions list naming v1 or v1beta1; exactly one of clientConfig url (https only,
no query, fragment or user) or service; timeoutSeconds 1..30; the enums; rules with operations,
apiGroups, apiVersions and resources; matchConditions that compile.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import urlsplit

import celpy

from pykube_server.api import celoptional
from pykube_server.api.fields import FieldError, Path, duplicate, invalid, not_supported, required
from pykube_server.registry.kind_validation.common import go_string_slice, invalid_go, is_valid_port_num
from pykube_server.registry.validation import is_dns1123_subdomain

Obj = dict[str, Any]

ACCEPTED_REVIEW_VERSIONS = ["v1", "v1beta1"]
NO_SIDE_EFFECTS = ["None", "NoneOnDryRun"]
FAILURE_POLICIES = ["Fail", "Ignore"]
MATCH_POLICIES = ["Equivalent", "Exact"]
REINVOCATION_POLICIES = ["IfNeeded", "Never"]
OPERATIONS = ["*", "CONNECT", "CREATE", "DELETE", "UPDATE"]
SCOPES = ["*", "Cluster", "Namespaced"]
URL_FORM = "; desired format: https://host[/path]"
_CEL = celpy.Environment()


def _items(value: Any) -> list[Any]:
    """A list field; other JSON types were already refused by the schema check, or mean none."""
    return value if isinstance(value, list) else []


def _strings(value: Any) -> list[str]:
    return [v if isinstance(v, str) else str(v) for v in _items(value)]


def _compile_error(expression: str) -> str:
    """Why a CEL expression does not parse ("" when it does), in cel-go's shape
    (`ERROR: <input>:1:10: Syntax error`); cel-python gives the place, not cel-go's detail."""
    try:
        _CEL.compile(celoptional.rewrite(expression))  # `a.?b` is CEL syntax cel-python lacks
    except celpy.CELParseError as exc:
        lines = str(exc).split("\n")
        caret = next((i for i, line in enumerate(lines) if line.strip() == "^"), None)
        if caret is None or caret == 0:
            return "ERROR: <input>:1:1: Syntax error"
        return f"ERROR: <input>:{caret}:{lines[caret].index('^') + 1}: Syntax error"
    return ""


def _name_errors(name: Any, path: Path) -> list[FieldError]:
    """IsFullyQualifiedName: a DNS subdomain with at least three segments."""
    if not name:
        return [required(path)]
    if not isinstance(name, str):
        return [invalid(path, name, "must be a string")]
    errs = [invalid(path, name, e) for e in is_dns1123_subdomain(name)]
    if len(str(name).split(".")) < 3:
        errs.append(invalid(path, name, "should be a domain with at least three segments separated by dots"))
    return errs


def _review_versions(value: Any, path: Path) -> list[FieldError]:
    versions = _strings(value)
    if not versions:
        return [required(path, f"must specify one of {', '.join(ACCEPTED_REVIEW_VERSIONS)}")]
    errs: list[FieldError] = []
    seen: set[str] = set()
    for i, version in enumerate(versions):
        if version in seen:
            errs.append(invalid(path.index(i), version, "duplicate version"))
        seen.add(version)
    if not any(v in ACCEPTED_REVIEW_VERSIONS for v in versions):
        errs.append(invalid_go(path, go_string_slice([str(v) for v in versions]),
                               f"must include at least one of {', '.join(ACCEPTED_REVIEW_VERSIONS)}"))
    return errs


def _url(url: str, path: Path) -> list[FieldError]:
    parts = urlsplit(url)
    errs = []
    if parts.scheme != "https":
        errs.append(invalid(path, parts.scheme, "'https' is the only allowed URL scheme" + URL_FORM))
    if not parts.netloc.rpartition("@")[2]:
        errs.append(invalid(path, "", "host must be specified" + URL_FORM))
    if "@" in parts.netloc:
        errs.append(invalid(path, parts.netloc.rpartition("@")[0], "user information is not permitted in the URL"))
    if parts.fragment:
        errs.append(invalid(path, parts.fragment, "fragments are not permitted in the URL"))
    if parts.query:
        errs.append(invalid(path, parts.query, "query parameters are not permitted in the URL"))
    return errs


def _service(service: Obj, path: Path) -> list[FieldError]:
    errs = []
    if not service.get("name"):
        errs.append(required(path.child("name"), "service name is required"))
    if not service.get("namespace"):
        errs.append(required(path.child("namespace"), "service namespace is required"))
    port = service.get("port", 443)
    for e in is_valid_port_num(port):
        errs.append(invalid(path.child("port"), port, f"port is not valid: {e}"))
    url_path = service.get("path")
    if url_path not in (None, "", "/"):
        if url_path == "//":
            errs.append(invalid(path.child("path"), url_path, "segment[0] may not be empty"))
        elif not str(url_path).startswith("/"):
            errs.append(invalid(path.child("path"), url_path, "must start with a '/'"))
    return errs


def _client_config(config: Any, path: Path) -> list[FieldError]:
    config = config if isinstance(config, dict) else {}
    has_url, has_service = config.get("url") is not None, config.get("service") is not None
    if has_url == has_service:
        return [required(path, "exactly one of url or service is required")]
    if has_url:
        return _url(str(config["url"]), path.child("url"))
    if not isinstance(config["service"], dict):
        return [invalid(path.child("service"), config["service"], "must be an object")]
    return _service(config["service"], path.child("service"))


def _wildcard_list(values: list[Any], path: Path, what: str) -> list[FieldError]:
    if len(values) > 1 and "*" in values:
        return [invalid_go(path, go_string_slice([str(v) for v in values]), f"if '*' is present, must not specify other {what}")]
    return []


def _resources(resources: list[Any], path: Path) -> list[FieldError]:
    if not resources:
        return [required(path)]
    errs = [required(path.index(i)) for i, r in enumerate(resources) if r == ""]
    if "*/*" in resources and len(resources) > 1:
        errs.append(invalid_go(path, go_string_slice([str(r) for r in resources]),
                               "if '*/*' is present, must not specify other resources"))
    if "*" in resources and any(r and "/" not in r and r != "*" for r in resources):
        errs.append(invalid_go(path, go_string_slice([str(r) for r in resources]),
                               "if '*' is present, must not specify other resources without subresources"))
    return errs


def _rule(rule: Obj, path: Path) -> list[FieldError]:
    errs: list[FieldError] = []
    operations = _strings(rule.get("operations"))
    if not operations:
        errs.append(required(path.child("operations")))
    elif len(operations) > 1 and "*" in operations:
        errs.append(invalid_go(path.child("operations"), go_string_slice([str(o) for o in operations]),
                               "if '*' is present, must not specify other operations"))
    errs += [not_supported(path.child("operations").index(i), op, OPERATIONS)
             for i, op in enumerate(operations) if op not in OPERATIONS]
    groups = _strings(rule.get("apiGroups"))
    if not groups:
        errs.append(required(path.child("apiGroups")))
    errs += _wildcard_list(groups, path.child("apiGroups"), "API groups")
    versions = _strings(rule.get("apiVersions"))
    if not versions:
        errs.append(required(path.child("apiVersions")))
    errs += _wildcard_list(versions, path.child("apiVersions"), "API versions")
    errs += [required(path.child("apiVersions").index(i)) for i, v in enumerate(versions) if v == ""]
    errs += _resources(_strings(rule.get("resources")), path.child("resources"))
    scope = rule.get("scope")
    if scope is not None and scope not in SCOPES:
        errs.append(not_supported(path.child("scope"), scope, SCOPES))
    return errs


def _match_conditions(conditions: list[Any], path: Path) -> list[FieldError]:
    errs: list[FieldError] = []
    seen: set[str] = set()
    for i, condition in enumerate(conditions):
        condition = condition if isinstance(condition, dict) else {}
        name, expression = str(condition.get("name") or ""), str(condition.get("expression") or "")
        if not name:
            errs.append(required(path.index(i).child("name")))
        elif name in seen:
            errs.append(duplicate(path.index(i).child("name"), name))
        seen.add(name)
        if not expression:
            errs.append(required(path.index(i).child("expression")))
        else:
            problem = _compile_error(expression)
            if problem:
                errs.append(invalid(path.index(i).child("expression"), expression, f"compilation failed: {problem}"))
    return errs


def _enum(hook: Obj, field: str, allowed: list[str], path: Path) -> list[FieldError]:
    value = hook.get(field)
    if value is None or (isinstance(value, str) and value in allowed):
        return []
    return [not_supported(path.child(field), value, allowed)]


def _webhook(hook: Obj, path: Path, mutating: bool) -> list[FieldError]:
    errs = _name_errors(hook.get("name"), path.child("name"))
    errs += _review_versions(hook.get("admissionReviewVersions"), path.child("admissionReviewVersions"))
    for i, rule in enumerate(_items(hook.get("rules"))):
        errs += _rule(rule if isinstance(rule, dict) else {}, path.child("rules").index(i))
    errs += _enum(hook, "failurePolicy", FAILURE_POLICIES, path)
    errs += _enum(hook, "matchPolicy", MATCH_POLICIES, path)
    if hook.get("sideEffects") is None:
        errs.append(required(path.child("sideEffects"), f"must specify one of {', '.join(NO_SIDE_EFFECTS)}"))
    else:
        errs += _enum(hook, "sideEffects", NO_SIDE_EFFECTS, path)
    timeout = hook.get("timeoutSeconds")
    if timeout is not None and not (isinstance(timeout, int) and not isinstance(timeout, bool) and 1 <= timeout <= 30):
        errs.append(invalid(path.child("timeoutSeconds"), timeout, "the timeout value must be between 1 and 30 seconds"))
    errs += _client_config(hook.get("clientConfig"), path.child("clientConfig"))
    if mutating:
        errs += _enum(hook, "reinvocationPolicy", REINVOCATION_POLICIES, path)
    errs += _match_conditions(_items(hook.get("matchConditions")), path.child("matchConditions"))
    return errs


def _configuration(obj: Obj, mutating: bool) -> list[FieldError]:
    errs: list[FieldError] = []
    seen: set[str] = set()
    for i, hook in enumerate(_items(obj.get("webhooks"))):
        path = Path("webhooks").index(i)
        hook = hook if isinstance(hook, dict) else {}
        errs += _webhook(hook, path, mutating)
        name = hook.get("name")
        if isinstance(name, str) and name in seen:
            errs.append(duplicate(path.child("name"), name))
        if isinstance(name, str):
            seen.add(name)
    return errs


def validate_validating_webhook_configuration(obj: Obj) -> list[FieldError]:
    return _configuration(obj, mutating=False)


def validate_mutating_webhook_configuration(obj: Obj) -> list[FieldError]:
    return _configuration(obj, mutating=True)
