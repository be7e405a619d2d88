"""`--authorization-mode`: a comma list of AlwaysAllow, AlwaysDeny, Node, RBAC, in order.

kube-apiserver builds a union authorizer from the modes, with the `system:masters`
short-circuit in front of them all. The default here, as for kubeadm clusters, is `Node,RBAC`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from pykube_server.apiserver import authz
from pykube_server.apiserver.authn import UserInfo
from pykube_server.apiserver.rbac.authorizer import RBACAuthorizer, aggregate
from pykube_server.apiserver.rbac.index import GROUP, PolicyIndex
from pykube_server.apiserver.rbac.node import NODE_RULES, NodeAuthorizer, NodeGraph, node_name

if TYPE_CHECKING:
    from pykube_server.apiserver.app import APIServer

MODES = ("AlwaysAllow", "AlwaysDeny", "Node", "RBAC")
DEFAULT_MODE = "Node,RBAC"


def parse_modes(value: str) -> list[str]:
    """Validate a mode list the way kube-apiserver does at start-up."""
    modes = [m.strip() for m in value.split(",") if m.strip()]
    if not modes:
        raise ValueError("at least one authorization-mode must be passed")
    for mode in modes:
        if mode not in MODES:
            raise ValueError(f'authorization-mode "{mode}" is not a valid mode')
    if len(set(modes)) != len(modes):
        raise ValueError(f'authorization-mode "{value}" has mode specified more than once')
    return modes


ALL_RESOURCES = {"verbs": ["*"], "apiGroups": ["*"], "resources": ["*"]}
ALL_URLS = {"verbs": ["*"], "nonResourceURLs": ["*"]}


@dataclass
class Authorization:
    """The chain plus the parts other code asks directly (reviews, escalation checks)."""

    authorizer: authz.Authorizer
    rbac: RBACAuthorizer | None
    modes: tuple[str, ...] = ()

    def rules_review(self, user: UserInfo, namespace: str) -> dict[str, Any]:
        """A SelfSubjectRulesReview status: every authorizer's rules for the user, in chain
        order (kube's union rule resolver): `*` for system:masters and AlwaysAllow, the node
        rules for a node, and what RBAC binds."""
        rules: list[dict[str, Any]] = []
        errors: list[str] = []
        if authz.PRIVILEGED_GROUP in user.groups:
            rules += [ALL_RESOURCES, ALL_URLS]
        for mode in self.modes:
            if mode == "AlwaysAllow":
                rules += [ALL_RESOURCES, ALL_URLS]
            elif mode == "Node" and node_name(user.username, user.groups) is not None:
                rules += [rule.to_dict() for rule in NODE_RULES]
            elif mode == "RBAC" and self.rbac is not None:
                held = self.rbac.rules_for(user, namespace)
                rules += [rule.to_dict() for rule in held.rules]
                errors += held.errors
        status: dict[str, Any] = {
            "resourceRules": [_resource_rule(r) for r in rules if r.get("resources")],
            "nonResourceRules": [{"verbs": r["verbs"], "nonResourceURLs": r["nonResourceURLs"]}
                                 for r in rules if r.get("nonResourceURLs")],
            "incomplete": bool(errors),
        }
        if errors:
            status["evaluationError"] = aggregate(errors)
        return status


def _resource_rule(rule: dict[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {"verbs": rule["verbs"]}
    for key in ("apiGroups", "resources", "resourceNames"):
        if rule.get(key):
            out[key] = rule[key]
    return out


def build(server: APIServer, value: str) -> Authorization:
    modes = parse_modes(value)
    rbac: RBACAuthorizer | None = None
    chain: list[authz.Authorizer] = [authz.PrivilegedGroups()]
    for mode in modes:
        if mode == "AlwaysAllow":
            chain.append(authz.AlwaysAllow())
        elif mode == "AlwaysDeny":
            chain.append(authz.AlwaysDeny())
        elif mode == "RBAC":
            roots = {plural: server.root_of(server.specs[(GROUP, "v1", plural)])
                     for plural in ("roles", "clusterroles", "rolebindings", "clusterrolebindings")}
            rbac = RBACAuthorizer(PolicyIndex(server.cacher, roots))
            chain.append(rbac)
        elif mode == "Node":
            pods_root = server.root_of(server.specs[("", "v1", "pods")])
            chain.append(NodeAuthorizer(NodeGraph(server.cacher, pods_root), _claims_of_volume(server)))
    return Authorization(authz.AuthorizerChain(*chain), rbac, tuple(modes))


def _claims_of_volume(server: APIServer):  # type: ignore[no-untyped-def]
    """PV name -> the (namespace, claim) bound to it, read from the watch cache."""
    root = server.root_of(server.specs[("", "v1", "persistentvolumes")])

    def claims(name: str) -> list[tuple[str, str]]:
        cached = server.cacher.resource(root).objects.get(f"{root}/{name}")
        if cached is None:
            return []
        ref = (cached.decode().get("spec") or {}).get("claimRef") or {}
        return [(ref.get("namespace", ""), ref.get("name", ""))] if ref.get("name") else []

    return claims
