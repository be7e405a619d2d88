"""Whether a ValidatingAdmissionPolicy (its `matchConstraints`) or a binding (its
`matchResources`) selects a request, as kube's generic policy matcher decides.

The same parts as a webhook's (namespaceSelector, objectSelector, rules with matchPolicy), so
they come from `webhook.matching`; policies add `excludeResourceRules` (a match there wins),
`resourceNames` on each rule, and an empty `resourceRules` that means every resource (which only
a binding may have: a policy must name at least one rule).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from typing import Any

from pykube_server.apiserver.admission import Attributes
from pykube_server.apiserver.admission.webhook import matching

Obj = dict[str, Any]
NamespaceLabels = Callable[[str], dict[str, str] | None]
Equivalents = Callable[[str, str], Iterable[str]]


def _named(rules: Any, name: str) -> list[Obj]:
    """The rules that apply to an object of this name (`resourceNames` empty means any)."""
    out = []
    for rule in rules or ():
        if not isinstance(rule, dict):
            continue
        names = rule.get("resourceNames") or []
        if not names or name in names:
            out.append(rule)
    return out


def _rules_match(rules: list[Obj], match_policy: str, attributes: Attributes, equivalents: Equivalents) -> bool:
    hook = {"rules": rules, "matchPolicy": match_policy}
    return matching.matching_version(hook, attributes, equivalents) is not None


def matches(constraints: Mapping[str, Any] | None, attributes: Attributes, namespace_labels: NamespaceLabels,
            equivalents: Equivalents) -> bool:
    """True when `constraints` (a MatchResources; None matches everything) selects the request."""
    if constraints is None:
        return True
    if not matching.namespace_matches(constraints, attributes, namespace_labels):
        return False
    if not matching.object_matches(constraints, attributes):
        return False
    match_policy = str(constraints.get("matchPolicy") or "Equivalent")
    excluded = _named(constraints.get("excludeResourceRules"), attributes.name)
    if excluded and _rules_match(excluded, match_policy, attributes, equivalents):
        return False
    if not constraints.get("resourceRules"):
        return True
    return _rules_match(_named(constraints.get("resourceRules"), attributes.name), match_policy, attributes,
                        equivalents)
