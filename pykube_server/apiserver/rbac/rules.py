"""One PolicyRule against one request, the way kube's `rbac.RuleAllows` reads it.

Rules are parsed once into `Rule` (frozensets) when the policy index is built, so a check is a
few set lookups. A resource request is matched only against `apiGroups`/`resources`/
`resourceNames`; a non-resource request only against `nonResourceURLs`.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from pykube_server.apiserver.authz import RequestAttributes

ALL = "*"


@dataclass(frozen=True, slots=True)
class Rule:
    verbs: frozenset[str]
    api_groups: frozenset[str] = frozenset()
    resources: frozenset[str] = frozenset()
    resource_names: frozenset[str] = frozenset()
    non_resource_urls: frozenset[str] = frozenset()
    source: Mapping[str, Any] = field(default_factory=dict, compare=False, hash=False)
    """The rule as written (list order kept for rules reviews and messages)."""

    @classmethod
    def parse(cls, rule: Mapping[str, Any]) -> Rule:
        return cls(frozenset(rule.get("verbs") or ()), frozenset(rule.get("apiGroups") or ()),
                   frozenset(rule.get("resources") or ()), frozenset(rule.get("resourceNames") or ()),
                   frozenset(rule.get("nonResourceURLs") or ()), rule)

    def to_dict(self) -> dict[str, list[str]]:
        """The wire form (empty fields omitted) for rules reviews and escalation checks."""
        out: dict[str, list[str]] = {"verbs": list(self.source.get("verbs") or sorted(self.verbs))}
        for key, values in (("apiGroups", self.api_groups), ("resources", self.resources),
                            ("resourceNames", self.resource_names), ("nonResourceURLs", self.non_resource_urls)):
            if values:
                out[key] = list(self.source.get(key) or sorted(values))
        return out


def parse_rules(rules: Iterable[Mapping[str, Any]] | None) -> tuple[Rule, ...]:
    return tuple(Rule.parse(r) for r in rules or () if isinstance(r, Mapping))


def verb_matches(rule: Rule, verb: str) -> bool:
    return ALL in rule.verbs or verb in rule.verbs


def api_group_matches(rule: Rule, group: str) -> bool:
    return ALL in rule.api_groups or group in rule.api_groups


def resource_matches(rule: Rule, resource: str, subresource: str) -> bool:
    """`*` matches everything, `pods/log` one subresource, `*/scale` a subresource of any kind."""
    if ALL in rule.resources:
        return True
    combined = f"{resource}/{subresource}" if subresource else resource
    if combined in rule.resources:
        return True
    return bool(subresource) and f"*/{subresource}" in rule.resources


def resource_name_matches(rule: Rule, name: str) -> bool:
    """No resourceNames means every name; with them, a request without a name (list, create)
    does not match."""
    return not rule.resource_names or name in rule.resource_names


def non_resource_url_matches(rule: Rule, path: str) -> bool:
    """Exact path, `*`, or a prefix ending in `*` (`/api/*` covers `/api/v1`, not `/api`)."""
    for url in rule.non_resource_urls:
        if url == ALL or url == path or (url.endswith(ALL) and path.startswith(url[:-1])):
            return True
    return False


def rule_allows(rule: Rule, attributes: RequestAttributes) -> bool:
    if attributes.resource_request:
        return (verb_matches(rule, attributes.verb) and api_group_matches(rule, attributes.api_group)
                and resource_matches(rule, attributes.resource, attributes.subresource)
                and resource_name_matches(rule, attributes.name))
    return verb_matches(rule, attributes.verb) and non_resource_url_matches(rule, attributes.path)


def rules_allow(rules: Iterable[Rule], attributes: RequestAttributes) -> bool:
    return any(rule_allows(rule, attributes) for rule in rules)
