"""The RBAC authorizer (`--authorization-mode=RBAC`) and its rule resolver.

kube's RBAC authorizer allows a request when any rule of any role bound to the user (through a
ClusterRoleBinding, or a RoleBinding in the request's namespace) matches it; otherwise it has
no opinion, so a later authorizer may still allow and the chain's default is to forbid. It
never denies. The allow reason names the binding (`RBAC: allowed by ClusterRoleBinding "x" of
ClusterRole "y" to User "z"`); a binding whose role is missing adds `RBAC: ... not found` to the
reason of a refusal, as kube reports its rule-resolution errors.

`rules_for` is the same walk collecting every rule: the SelfSubjectRulesReview answer and the
"rules the user holds" of the escalation check.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from pykube_server.apiserver.authn import UserInfo
from pykube_server.apiserver.authz import Decision, RequestAttributes
from pykube_server.apiserver.rbac.index import GROUP, BindingRef, Policy, PolicyIndex
from pykube_server.apiserver.rbac.rules import Rule, rule_allows


def role_not_found(ref: BindingRef) -> str:
    plural = "clusterroles" if ref.role_kind == "ClusterRole" else "roles"
    return f'{plural[:-1]}.{GROUP} "{ref.role_name}" not found'


def aggregate(errors: list[str]) -> str:
    """Go's `utilerrors.NewAggregate(errs).Error()`: one error as is, several in brackets."""
    unique = list(dict.fromkeys(errors))
    if len(unique) == 1:
        return unique[0]
    return "[" + ", ".join(unique) + "]"


@dataclass(slots=True)
class ResolvedRules:
    rules: list[Rule] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)


MEMO_SIZE = 4096
"""Distinct (user, groups, namespace) whose compiled rules are remembered until the policy changes."""


@dataclass(slots=True)
class Compiled:
    """One user's rules in one namespace, bucketed by (apiGroup, resource) so a request looks
    only at rules that can match it. Each entry keeps its position, so the first matching rule
    in kube's visiting order is the one the allow reason names."""

    pairs: tuple[tuple[BindingRef, tuple[Rule, ...]], ...]
    errors: tuple[str, ...]
    buckets: dict[tuple[str, str], list[tuple[int, BindingRef, Rule]]] = field(default_factory=dict)
    url_rules: list[tuple[BindingRef, Rule]] = field(default_factory=list)

    @classmethod
    def build(cls, pairs: list[tuple[BindingRef, tuple[Rule, ...]]], errors: list[str]) -> Compiled:
        out = cls(tuple(pairs), tuple(errors))
        position = 0
        for ref, rules in pairs:
            for rule in rules:
                position += 1
                if rule.non_resource_urls:
                    out.url_rules.append((ref, rule))
                for group in rule.api_groups:
                    for resource in rule.resources:
                        out.buckets.setdefault((group, resource), []).append((position, ref, rule))
        return out

    def first_match(self, attributes: RequestAttributes) -> BindingRef | None:
        if not attributes.resource_request:
            for ref, rule in self.url_rules:
                if rule_allows(rule, attributes):
                    return ref
            return None
        group, resource, sub = attributes.api_group, attributes.resource, attributes.subresource
        names = [f"{resource}/{sub}", f"*/{sub}", "*"] if sub else [resource, "*"]
        best: tuple[int, BindingRef] | None = None
        for g in (group, "*") if group != "*" else ("*",):
            for r in names:
                for position, ref, rule in self.buckets.get((g, r), ()):
                    if best is not None and position >= best[0]:
                        break
                    if rule_allows(rule, attributes):
                        best = (position, ref)
                        break
        return best[1] if best is not None else None


class RBACAuthorizer:
    def __init__(self, index: PolicyIndex) -> None:
        self.index = index
        self._memo_policy: Policy | None = None
        self._memo: dict[tuple[str, tuple[str, ...], str], Compiled] = {}

    def policy(self) -> Policy:
        return self.index.policy()

    def _resolve(self, user: UserInfo, namespace: str) -> Compiled:
        """The user's bound rules in `namespace`, compiled and memoised: the same few component
        identities ask thousands of times between two policy changes."""
        policy = self.index.policy()
        if policy is not self._memo_policy:
            self._memo_policy, self._memo = policy, {}
        key = (user.username, user.groups, namespace)
        found = self._memo.get(key)
        if found is None:
            pairs, errors = [], []
            for ref in policy.bindings_for(user.username, user.groups, namespace):
                rules = policy.rules_of(ref)
                if rules is None:
                    errors.append(role_not_found(ref))
                else:
                    pairs.append((ref, rules))
            found = Compiled.build(pairs, errors)
            if len(self._memo) >= MEMO_SIZE:
                self._memo.clear()
            self._memo[key] = found
        return found

    async def authorize(self, attributes: RequestAttributes) -> tuple[str, str]:
        namespace = attributes.namespace if attributes.resource_request else ""
        compiled = self._resolve(attributes.user, namespace)
        ref = compiled.first_match(attributes)
        if ref is not None:
            return Decision.ALLOW, f"RBAC: allowed by {ref.describe()}"
        return Decision.NO_OPINION, f"RBAC: {aggregate(list(compiled.errors))}" if compiled.errors else ""

    def rules_for(self, user: UserInfo, namespace: str) -> ResolvedRules:
        """Every rule the user holds in `namespace` ("" = cluster-wide bindings only)."""
        compiled = self._resolve(user, namespace)
        return ResolvedRules([rule for _, rules in compiled.pairs for rule in rules], list(compiled.errors))
