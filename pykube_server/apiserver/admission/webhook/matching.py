"""Whether a webhook wants a request (k8s.io/apiserver admission/plugin/webhook: rules, namespace, object).

A webhook is called only when one of its rules matches the request's operation, group, version,
resource/subresource and scope, its namespaceSelector matches the namespace's labels (for a
Namespace itself, the object's own labels; cluster-scoped objects always match), and its
objectSelector matches the labels of the new or the old object.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from typing import Any

from pykube_server.api.selectors import SelectorError, selector_from_object
from pykube_server.apiserver.admission import Attributes

Obj = dict[str, Any]

# admissionregistration objects never go to webhooks, so a broken webhook cannot lock itself in
# (kube's IsExemptAdmissionConfigurationResource).
EXEMPT = frozenset({
    "validatingwebhookconfigurations", "mutatingwebhookconfigurations",
    "validatingadmissionpolicies", "validatingadmissionpolicybindings",
    "mutatingadmissionpolicies", "mutatingadmissionpolicybindings",
})


def exempt(attributes: Attributes) -> bool:
    return attributes.group == "admissionregistration.k8s.io" and attributes.resource in EXEMPT


def _any(values: Iterable[str] | None, wanted: str) -> bool:
    return any(v == "*" or v == wanted for v in values or ())


def _resource(values: Iterable[str] | None, resource: str, subresource: str) -> bool:
    """`pods` is the main resource only, `pods/status` one subresource, `pods/*` every
    subresource, `*` every main resource, `*/status` that subresource of anything, `*/*` all."""
    for value in values or ():
        if value == "*/*":
            return True
        if value == "*":
            if not subresource:
                return True
            continue
        res, _, sub = value.partition("/")
        if res not in ("*", resource):
            continue
        if sub == "":
            if not subresource:
                return True
        elif sub in ("*", subresource) and subresource:
            return True
    return False


def _scope(scope: str | None, attributes: Attributes) -> bool:
    """Namespace objects are cluster-scoped, although their requests name a namespace."""
    is_namespace = attributes.group == "" and attributes.resource == "namespaces"
    if scope in (None, "", "*"):
        return True
    if scope == "Namespaced":
        return not is_namespace and attributes.namespace != ""
    if scope == "Cluster":
        return is_namespace or attributes.namespace == ""
    return False


def rule_matches(rule: Mapping[str, Any], attributes: Attributes, group: str, version: str, resource: str) -> bool:
    """One RuleWithOperations against the request, seen as group/version/resource."""
    return (_any(rule.get("operations"), attributes.operation)
            and _any(rule.get("apiGroups"), group)
            and _any(rule.get("apiVersions"), version)
            and _resource(rule.get("resources"), resource, attributes.subresource)
            and _scope(rule.get("scope"), attributes))


def matching_version(hook: Mapping[str, Any], attributes: Attributes,
                     equivalents: Callable[[str, str], Iterable[str]]) -> str | None:
    """The version under which the hook's rules match the request, or None.

    `Exact` matches only the requested version; `Equivalent` (the default) also matches another
    served version of the same group/resource, as kube does when it would convert the object.
    """
    rules = [r for r in hook.get("rules") or () if isinstance(r, dict)]
    if any(rule_matches(r, attributes, attributes.group, attributes.version, attributes.resource) for r in rules):
        return attributes.version
    if hook.get("matchPolicy", "Equivalent") != "Equivalent":
        return None
    for version in equivalents(attributes.group, attributes.resource):
        if version != attributes.version and any(
                rule_matches(r, attributes, attributes.group, version, attributes.resource) for r in rules):
            return version
    return None


def _labels(obj: Obj | None) -> dict[str, str] | None:
    if obj is None:
        return None
    return ((obj.get("metadata") or {}).get("labels")) or {}


def selector_matches(selector: Mapping[str, Any] | None, labels: Mapping[str, str] | None) -> bool:
    """A nil selector is defaulted to `{}` by the API, which matches everything."""
    if selector is None:
        return True
    try:
        return selector_from_object(selector).matches(labels)
    except SelectorError:
        return False  # validation refuses such selectors; an old stored one matches nothing


def object_matches(hook: Mapping[str, Any], attributes: Attributes) -> bool:
    selector = hook.get("objectSelector")
    if not selector or not (selector.get("matchLabels") or selector.get("matchExpressions")):
        return True
    return any(labels is not None and selector_matches(selector, labels)
               for labels in (_labels(attributes.obj), _labels(attributes.old)))


def namespace_matches(hook: Mapping[str, Any], attributes: Attributes,
                      namespace_labels: Callable[[str], dict[str, str] | None]) -> bool:
    selector = hook.get("namespaceSelector")
    if not selector or not (selector.get("matchLabels") or selector.get("matchExpressions")):
        return True
    if attributes.group == "" and attributes.resource == "namespaces":
        labels = _labels(attributes.obj if attributes.obj is not None else attributes.old)
        return selector_matches(selector, labels or {})
    if not attributes.namespace:
        return True  # cluster-scoped objects are not in a namespace to select on
    return selector_matches(selector, namespace_labels(attributes.namespace) or {})
