"""The RBAC policy as the watch cache holds it, indexed by subject.

kube's RBAC authorizer reads Roles and bindings from informer listers; ours reads the API
server's own watch cache (no storage round trip per request). The index maps each user and
group name to the bindings naming it, so a request only looks at the bindings that can apply.
It is rebuilt lazily: a cheap token (the last event revision and object count of the four RBAC
roots) tells when anything changed since the last build.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any, Protocol

from pykube_server.apiserver.rbac.rules import Rule, parse_rules

GROUP = "rbac.authorization.k8s.io"
SERVICE_ACCOUNT_PREFIX = "system:serviceaccount:"


class CacheView(Protocol):
    """What the index needs from the Cacher: `resource(root).objects` / `.events`."""

    def resource(self, root: str) -> Any: ...


@dataclass(frozen=True, slots=True)
class BindingRef:
    """One (binding, subject) pair: enough to find the role and to say why access was allowed."""

    kind: str  # ClusterRoleBinding or RoleBinding
    namespace: str
    name: str
    role_kind: str  # ClusterRole or Role
    role_name: str
    subject: str  # `User "alice"`, `Group "g"`, `ServiceAccount "sa/ns"`

    def describe(self) -> str:
        if self.kind == "ClusterRoleBinding":
            return f'ClusterRoleBinding "{self.name}" of {self.role_kind} "{self.role_name}" to {self.subject}'
        return f'RoleBinding "{self.name}/{self.namespace}" of {self.role_kind} "{self.role_name}" to {self.subject}'


@dataclass(slots=True)
class _Bindings:
    users: dict[str, list[BindingRef]] = field(default_factory=lambda: defaultdict(list))
    groups: dict[str, list[BindingRef]] = field(default_factory=lambda: defaultdict(list))

    def add(self, kind: str, name: str, ref: BindingRef) -> None:
        (self.users if kind == "User" else self.groups)[name].append(ref)

    def for_user(self, username: str, groups: tuple[str, ...]) -> Iterator[BindingRef]:
        yield from self.users.get(username, ())
        for group in groups:
            yield from self.groups.get(group, ())


@dataclass(slots=True)
class Policy:
    """One consistent snapshot: roles by name and bindings by subject."""

    cluster_roles: dict[str, tuple[Rule, ...]] = field(default_factory=dict)
    roles: dict[tuple[str, str], tuple[Rule, ...]] = field(default_factory=dict)
    cluster_bindings: _Bindings = field(default_factory=_Bindings)
    namespace_bindings: dict[str, _Bindings] = field(default_factory=dict)

    def bindings_for(self, username: str, groups: tuple[str, ...], namespace: str) -> Iterator[BindingRef]:
        """ClusterRoleBindings first, then the namespace's RoleBindings (kube's visiting order)."""
        yield from self.cluster_bindings.for_user(username, groups)
        if namespace:
            bindings = self.namespace_bindings.get(namespace)
            if bindings is not None:
                yield from bindings.for_user(username, groups)

    def rules_of(self, ref: BindingRef) -> tuple[Rule, ...] | None:
        """The bound role's rules, or None when the role does not exist."""
        if ref.role_kind == "ClusterRole":
            return self.cluster_roles.get(ref.role_name)
        return self.roles.get((ref.namespace, ref.role_name))


def subject_key(subject: dict[str, Any], binding_namespace: str) -> tuple[str, str, str] | None:
    """(index kind, index name, description) of a binding subject, or None if it can never match.

    A ServiceAccount subject is indexed as the user name it authenticates as; one without a
    namespace takes the RoleBinding's (and matches nothing in a ClusterRoleBinding).
    """
    kind, name = subject.get("kind", ""), subject.get("name", "")
    if kind == "User":
        return "User", name, f'User "{name}"'
    if kind == "Group":
        return "Group", name, f'Group "{name}"'
    if kind == "ServiceAccount":
        namespace = subject.get("namespace") or binding_namespace
        if not namespace:
            return None
        return "User", f"{SERVICE_ACCOUNT_PREFIX}{namespace}:{name}", f'ServiceAccount "{name}/{namespace}"'
    return None


def build_policy(roles: list[dict[str, Any]], cluster_roles: list[dict[str, Any]],
                 bindings: list[dict[str, Any]], cluster_bindings: list[dict[str, Any]]) -> Policy:
    policy = Policy()
    for obj in cluster_roles:
        policy.cluster_roles[obj["metadata"]["name"]] = parse_rules(obj.get("rules"))
    for obj in roles:
        meta = obj["metadata"]
        policy.roles[(meta.get("namespace", ""), meta["name"])] = parse_rules(obj.get("rules"))
    for obj in cluster_bindings:
        _index_binding(policy.cluster_bindings, "ClusterRoleBinding", obj)
    for obj in bindings:
        namespace = obj["metadata"].get("namespace", "")
        _index_binding(policy.namespace_bindings.setdefault(namespace, _Bindings()), "RoleBinding", obj)
    return policy


def _index_binding(into: _Bindings, kind: str, obj: dict[str, Any]) -> None:
    meta = obj["metadata"]
    namespace = meta.get("namespace", "") if kind == "RoleBinding" else ""
    role = obj.get("roleRef") or {}
    for subject in obj.get("subjects") or ():
        key = subject_key(subject, namespace)
        if key is None:
            continue
        ref = BindingRef(kind, namespace, meta["name"], role.get("kind", ""), role.get("name", ""), key[2])
        into.add(key[0], key[1], ref)


class PolicyIndex:
    """The current `Policy`, rebuilt from the cache only when an RBAC object changed."""

    def __init__(self, cache: CacheView, roots: dict[str, str]) -> None:
        """`roots`: kind plural (roles, clusterroles, rolebindings, clusterrolebindings) -> key root."""
        self._cache = cache
        self._roots = roots
        self._token: tuple[tuple[int, int], ...] | None = None
        self._caches: tuple[Any, ...] | None = None
        self._policy = Policy()

    def _current_token(self) -> tuple[tuple[int, int], ...]:
        # The four RBAC roots are fixed for the server's life, so their caches are looked up once.
        if self._caches is None:
            self._caches = tuple(self._cache.resource(self._roots[plural])
                                 for plural in ("roles", "clusterroles", "rolebindings", "clusterrolebindings"))
        return tuple((res.events[-1].revision if res.events else 0, len(res.objects)) for res in self._caches)

    def objects(self, plural: str) -> list[dict[str, Any]]:
        return [cached.decode() for cached in self._cache.resource(self._roots[plural]).objects.values()]

    def policy(self) -> Policy:
        token = self._current_token()
        if token != self._token:
            self._policy = build_policy(self.objects("roles"), self.objects("clusterroles"),
                                        self.objects("rolebindings"), self.objects("clusterrolebindings"))
            self._token = token
        return self._policy
