"""The RBAC and Node authorizers and impersonation over a fake watch cache."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import orjson
import pytest
from multidict import CIMultiDict, CIMultiDictProxy

from pykube_server.api import errors
from pykube_server.apiserver import authz
from pykube_server.apiserver.authn import UserInfo
from pykube_server.apiserver.authz import Decision, RequestAttributes
from pykube_server.apiserver.impersonation import impersonate
from pykube_server.apiserver.rbac.authorizer import RBACAuthorizer
from pykube_server.apiserver.rbac.index import PolicyIndex
from pykube_server.apiserver.rbac.node import NodeAuthorizer, NodeGraph, pod_references

G = "rbac.authorization.k8s.io"


@dataclass
class _Cached:
    key: str
    raw: bytes

    def decode(self) -> dict:
        return orjson.loads(self.raw)


@dataclass
class _Event:
    revision: int


@dataclass
class _Resource:
    objects: dict[str, _Cached] = field(default_factory=dict)
    events: list[_Event] = field(default_factory=list)

    def events_after(self, revision: int) -> None:
        return None  # always rebuild: the fake keeps no history


class FakeCache:
    def __init__(self) -> None:
        self.resources: dict[str, _Resource] = {}
        self.revision = 0

    def resource(self, root: str) -> _Resource:
        return self.resources.setdefault(root, _Resource())

    def put(self, root: str, obj: dict[str, Any]) -> None:
        meta = obj["metadata"]
        key = f"{root}/{meta.get('namespace', '')}/{meta['name']}"
        self.revision += 1
        res = self.resource(root)
        res.objects[key] = _Cached(key, orjson.dumps(obj))
        res.events.append(_Event(self.revision))

    def remove(self, root: str, namespace: str, name: str) -> None:
        self.revision += 1
        res = self.resource(root)
        del res.objects[f"{root}/{namespace}/{name}"]
        res.events.append(_Event(self.revision))


ROOTS = {p: f"/registry/{p}" for p in ("roles", "clusterroles", "rolebindings", "clusterrolebindings")}


def _rbac() -> tuple[FakeCache, RBACAuthorizer]:
    cache = FakeCache()
    return cache, RBACAuthorizer(PolicyIndex(cache, ROOTS))


def _role(kind: str, name: str, rules: list[dict], namespace: str = "") -> dict:
    meta = {"name": name, **({"namespace": namespace} if namespace else {})}
    return {"kind": kind, "metadata": meta, "rules": rules}


def _binding(kind: str, name: str, role_kind: str, role: str, subjects: list[dict], namespace: str = "") -> dict:
    meta = {"name": name, **({"namespace": namespace} if namespace else {})}
    return {"kind": kind, "metadata": meta, "roleRef": {"apiGroup": G, "kind": role_kind, "name": role}, "subjects": subjects}


def attrs(user: UserInfo, verb: str, resource: str, *, ns: str = "", name: str = "", group: str = "", sub: str = "") -> RequestAttributes:
    return RequestAttributes(user=user, verb=verb, namespace=ns, api_group=group, resource=resource, subresource=sub,
                             name=name, resource_request=True)


PODS_READ = [{"verbs": ["get", "list", "watch"], "apiGroups": [""], "resources": ["pods"]}]
SA = UserInfo("system:serviceaccount:ns1:robot", groups=("system:serviceaccounts", "system:serviceaccounts:ns1",
                                                        "system:authenticated"))


async def test_role_binding_grants_only_in_its_namespace_and_names_the_binding() -> None:
    cache, rbac = _rbac()
    cache.put(ROOTS["clusterroles"], _role("ClusterRole", "reader", PODS_READ))
    cache.put(ROOTS["rolebindings"], _binding("RoleBinding", "rb", "ClusterRole", "reader",
                                              [{"kind": "ServiceAccount", "name": "robot"}], namespace="ns1"))
    assert await rbac.authorize(attrs(SA, "list", "pods", ns="ns1")) == (
        Decision.ALLOW, 'RBAC: allowed by RoleBinding "rb/ns1" of ClusterRole "reader" to ServiceAccount "robot/ns1"')
    assert (await rbac.authorize(attrs(SA, "list", "pods", ns="ns2")))[0] == Decision.NO_OPINION
    assert (await rbac.authorize(attrs(SA, "list", "pods")))[0] == Decision.NO_OPINION  # cluster scope
    assert (await rbac.authorize(attrs(SA, "delete", "pods", ns="ns1", name="x"))) == (Decision.NO_OPINION, "")


async def test_cluster_binding_to_group_and_index_follows_changes() -> None:
    cache, rbac = _rbac()
    alice = UserInfo("alice", groups=("devs", "system:authenticated"))
    cache.put(ROOTS["clusterroles"], _role("ClusterRole", "reader", PODS_READ))
    assert (await rbac.authorize(attrs(alice, "get", "pods", ns="a", name="p")))[0] == Decision.NO_OPINION
    cache.put(ROOTS["clusterrolebindings"], _binding("ClusterRoleBinding", "devs-read", "ClusterRole", "reader",
                                                     [{"kind": "Group", "name": "devs", "apiGroup": G}]))
    assert await rbac.authorize(attrs(alice, "get", "pods", ns="a", name="p")) == (
        Decision.ALLOW, 'RBAC: allowed by ClusterRoleBinding "devs-read" of ClusterRole "reader" to Group "devs"')
    cache.remove(ROOTS["clusterrolebindings"], "", "devs-read")
    assert (await rbac.authorize(attrs(alice, "get", "pods", ns="a", name="p")))[0] == Decision.NO_OPINION


async def test_missing_role_is_reported_as_rbac_reason() -> None:
    cache, rbac = _rbac()
    bob = UserInfo("bob", groups=("system:authenticated",))
    cache.put(ROOTS["rolebindings"], _binding("RoleBinding", "rb", "Role", "gone", [{"kind": "User", "name": "bob"}],
                                              namespace="n"))
    assert await rbac.authorize(attrs(bob, "get", "pods", ns="n", name="p")) == (
        Decision.NO_OPINION, 'RBAC: role.rbac.authorization.k8s.io "gone" not found')
    resolved = rbac.rules_for(bob, "n")
    assert resolved.rules == [] and resolved.errors == ['role.rbac.authorization.k8s.io "gone" not found']


async def test_service_account_subject_without_namespace_never_matches_in_cluster_binding() -> None:
    cache, rbac = _rbac()
    cache.put(ROOTS["clusterroles"], _role("ClusterRole", "reader", PODS_READ))
    cache.put(ROOTS["clusterrolebindings"], _binding("ClusterRoleBinding", "b", "ClusterRole", "reader",
                                                     [{"kind": "ServiceAccount", "name": "robot"}]))
    assert (await rbac.authorize(attrs(SA, "list", "pods", ns="ns1")))[0] == Decision.NO_OPINION


def _pod(name: str, node: str, **spec: Any) -> dict:
    return {"metadata": {"name": name, "namespace": "ns"}, "spec": {"nodeName": node, "containers": [], **spec}}


async def test_node_authorizer_allows_only_what_its_pods_reference() -> None:
    cache = FakeCache()
    cache.put("/registry/pods", _pod("p1", "n1", volumes=[{"name": "v", "secret": {"secretName": "s1"}}],
                                     serviceAccountName="robot",
                                     containers=[{"name": "c", "envFrom": [{"configMapRef": {"name": "cm1"}}]}]))
    cache.put("/registry/pods", _pod("p2", "n2", volumes=[{"name": "v", "secret": {"secretName": "s2"}}]))
    node = NodeAuthorizer(NodeGraph(cache, "/registry/pods"))
    n1 = UserInfo("system:node:n1", groups=("system:nodes", "system:authenticated"))
    assert (await node.authorize(attrs(n1, "get", "secrets", ns="ns", name="s1")))[0] == Decision.ALLOW
    assert await node.authorize(attrs(n1, "get", "secrets", ns="ns", name="s2")) == (
        Decision.NO_OPINION, "no relationship found between node 'n1' and this object")
    assert (await node.authorize(attrs(n1, "list", "secrets", ns="ns")))[0] == Decision.NO_OPINION
    assert (await node.authorize(attrs(n1, "get", "configmaps", ns="ns", name="cm1")))[0] == Decision.ALLOW
    assert (await node.authorize(attrs(n1, "get", "pods", ns="ns", name="p1")))[0] == Decision.ALLOW
    assert (await node.authorize(attrs(n1, "get", "pods", ns="ns", name="p2")))[0] == Decision.NO_OPINION
    assert (await node.authorize(attrs(n1, "create", "serviceaccounts", ns="ns", name="robot", sub="token")))[0] == Decision.ALLOW
    assert (await node.authorize(attrs(n1, "update", "leases", ns="kube-node-lease", name="n1",
                                       group="coordination.k8s.io")))[0] == Decision.ALLOW
    assert (await node.authorize(attrs(n1, "update", "leases", ns="kube-node-lease", name="n2",
                                       group="coordination.k8s.io")))[0] == Decision.NO_OPINION
    assert (await node.authorize(attrs(n1, "patch", "nodes", name="n1", sub="status")))[0] == Decision.ALLOW
    assert (await node.authorize(attrs(n1, "delete", "namespaces", name="ns")))[0] == Decision.NO_OPINION
    # once the pod is gone, so is the relationship
    cache.remove("/registry/pods", "ns", "p1")
    assert (await node.authorize(attrs(n1, "get", "secrets", ns="ns", name="s1")))[0] == Decision.NO_OPINION
    # not a node: no opinion at all
    assert await node.authorize(attrs(UserInfo("system:node:n1"), "get", "secrets", ns="ns", name="s2")) == (
        Decision.NO_OPINION, "")


def test_pod_references_cover_volumes_env_and_pull_secrets() -> None:
    pod = _pod("p", "n", imagePullSecrets=[{"name": "pull"}],
               volumes=[{"name": "a", "persistentVolumeClaim": {"claimName": "claim"}},
                        {"name": "b", "projected": {"sources": [{"configMap": {"name": "pcm"}}, {"secret": {"name": "ps"}}]}},
                        {"name": "eph", "ephemeral": {}}],
               initContainers=[{"name": "i", "env": [{"name": "E", "valueFrom": {"secretKeyRef": {"name": "es", "key": "k"}}}]}])
    refs = pod_references(pod)
    assert {("secret", "ns", "pull"), ("pvc", "ns", "claim"), ("configmap", "ns", "pcm"), ("secret", "ns", "ps"),
            ("secret", "ns", "es"), ("pvc", "ns", "p-eph"), ("serviceaccount", "ns", "default"), ("pod", "ns", "p")} == refs


def _headers(**values: Any) -> CIMultiDictProxy[str]:
    d: CIMultiDict[str] = CIMultiDict()
    for key, value in values.items():
        for v in value if isinstance(value, list) else [value]:
            d.add(key.replace("_", "-"), v)
    return CIMultiDictProxy(d)


async def test_impersonation_checks_each_header_and_builds_the_user() -> None:
    cache, rbac = _rbac()
    chain = authz.AuthorizerChain(authz.PrivilegedGroups(), rbac)
    alice = UserInfo("alice", groups=("system:authenticated",))
    with pytest.raises(errors.Forbidden) as info:
        await impersonate(chain, alice, _headers(Impersonate_User="bob"))
    assert str(info.value) == ('users "bob" is forbidden: User "alice" cannot impersonate resource "users" '
                               'in API group "" at the cluster scope')
    cache.put(ROOTS["clusterroles"], _role("ClusterRole", "imp", [
        {"verbs": ["impersonate"], "apiGroups": [""], "resources": ["users"], "resourceNames": ["bob"]},
        {"verbs": ["impersonate"], "apiGroups": [""], "resources": ["serviceaccounts"]}]))
    cache.put(ROOTS["clusterrolebindings"], _binding("ClusterRoleBinding", "imp", "ClusterRole", "imp",
                                                     [{"kind": "User", "name": "alice"}]))
    assert await impersonate(chain, alice, _headers(Impersonate_User="bob")) == UserInfo(
        "bob", groups=("system:authenticated",))
    with pytest.raises(errors.Forbidden) as info:
        await impersonate(chain, alice, _headers(Impersonate_User="bob", Impersonate_Group=["g1"]))
    assert str(info.value) == ('groups "g1" is forbidden: User "alice" cannot impersonate resource "groups" '
                               'in API group "" at the cluster scope')
    sa = await impersonate(chain, alice, _headers(Impersonate_User="system:serviceaccount:ns1:robot"))
    assert sa.groups == ("system:serviceaccounts", "system:serviceaccounts:ns1", "system:authenticated")
    masters = UserInfo("admin", groups=("system:masters", "system:authenticated"))
    user = await impersonate(chain, masters, _headers(Impersonate_User="carol", Impersonate_Group=["a", "b"],
                                                      Impersonate_Uid="u1", **{"Impersonate-Extra-Scopes": ["x", "y"]}))
    assert user == UserInfo("carol", "u1", ("a", "b", "system:authenticated"), {"scopes": ("x", "y")})
