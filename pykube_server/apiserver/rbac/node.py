"""The Node authorizer (`--authorization-mode=Node`): what a kubelet may touch.

A kubelet authenticates as `system:node:<name>` in group `system:nodes`. kube's Node
authorizer keeps a graph of pods and what they reference, and lets a node read a Secret,
ConfigMap, PersistentVolumeClaim (and its PersistentVolume) or request a ServiceAccount token
only when a pod bound to that node references it; a pod itself only when it is bound to the
node; its Lease only in `kube-node-lease` under its own name. Everything else a kubelet needs
is granted by kube's fixed NodeRules (the rules of the `system:node` ClusterRole). It never
denies: a refusal is "no opinion" with a reason, so RBAC may still allow.

Ours is a graph-lite: `NodeGraph` maps each node to the (kind, namespace, name) its pods
reference, following the pods in the watch cache incrementally (only events since the last
look are applied; a full rebuild only when the event window was outrun).
"""

from __future__ import annotations

from collections import Counter
from typing import Any

from pykube_server.apiserver.authz import Decision, RequestAttributes
from pykube_server.apiserver.rbac.bootstrap import NODE
from pykube_server.apiserver.rbac.index import CacheView
from pykube_server.apiserver.rbac.rules import parse_rules, rules_allow

NODES_GROUP = "system:nodes"
NODE_USER_PREFIX = "system:node:"
NODE_LEASE_NAMESPACE = "kube-node-lease"
NODE_RULES = parse_rules(NODE)

Ref = tuple[str, str, str]  # (kind, namespace, name)


def node_name(username: str, groups: tuple[str, ...]) -> str | None:
    """The node a user is, or None when it is not a node identity (kube's NodeIdentifier)."""
    if NODES_GROUP not in groups or not username.startswith(NODE_USER_PREFIX):
        return None
    return username[len(NODE_USER_PREFIX):]


def pod_references(pod: dict[str, Any]) -> set[Ref]:
    """What a pod makes its node allowed to read: itself, its ServiceAccount, and the Secrets,
    ConfigMaps and PVCs named by volumes, env, envFrom and imagePullSecrets."""
    meta, spec = pod.get("metadata") or {}, pod.get("spec") or {}
    ns = meta.get("namespace", "")
    refs: set[Ref] = {("pod", ns, meta.get("name", "")), ("serviceaccount", ns, spec.get("serviceAccountName") or "default")}
    for secret in spec.get("imagePullSecrets") or []:
        refs.add(("secret", ns, secret.get("name", "")))
    containers = [*(spec.get("initContainers") or []), *(spec.get("containers") or []),
                  *(spec.get("ephemeralContainers") or [])]
    for container in containers:
        for source in container.get("envFrom") or []:
            if source.get("configMapRef"):
                refs.add(("configmap", ns, source["configMapRef"].get("name", "")))
            if source.get("secretRef"):
                refs.add(("secret", ns, source["secretRef"].get("name", "")))
        for env in container.get("env") or []:
            value_from = env.get("valueFrom") or {}
            if value_from.get("configMapKeyRef"):
                refs.add(("configmap", ns, value_from["configMapKeyRef"].get("name", "")))
            if value_from.get("secretKeyRef"):
                refs.add(("secret", ns, value_from["secretKeyRef"].get("name", "")))
    for volume in spec.get("volumes") or []:
        if volume.get("secret"):
            refs.add(("secret", ns, volume["secret"].get("secretName", "")))
        if volume.get("configMap"):
            refs.add(("configmap", ns, volume["configMap"].get("name", "")))
        if volume.get("persistentVolumeClaim"):
            refs.add(("pvc", ns, volume["persistentVolumeClaim"].get("claimName", "")))
        if volume.get("ephemeral") is not None:
            refs.add(("pvc", ns, f"{meta.get('name', '')}-{volume.get('name', '')}"))
        for source in (volume.get("projected") or {}).get("sources") or []:
            if source.get("secret"):
                refs.add(("secret", ns, source["secret"].get("name", "")))
            if source.get("configMap"):
                refs.add(("configmap", ns, source["configMap"].get("name", "")))
        for key in ("cephfs", "cinder", "flexVolume", "iscsi", "rbd", "scaleIO", "storageos", "azureFile"):
            ref = (volume.get(key) or {}).get("secretRef") or {}
            if ref.get("name"):
                refs.add(("secret", ns, ref["name"]))
    return refs


class NodeGraph:
    """node name -> references (with counts, as several pods may reference one object)."""

    def __init__(self, cache: CacheView, pods_root: str) -> None:
        self._cache = cache
        self._root = pods_root
        self._revision = -1
        self._by_node: dict[str, Counter[Ref]] = {}
        self._pod_node: dict[str, tuple[str, set[Ref]]] = {}

    def _remove(self, key: str) -> None:
        entry = self._pod_node.pop(key, None)
        if entry is not None:
            counter = self._by_node.get(entry[0])
            if counter is not None:
                counter.subtract(entry[1])
                for ref in entry[1]:
                    if counter[ref] <= 0:
                        del counter[ref]

    def _add(self, key: str, pod: dict[str, Any]) -> None:
        node = (pod.get("spec") or {}).get("nodeName")
        if not node:
            return
        refs = pod_references(pod)
        self._pod_node[key] = (node, refs)
        self._by_node.setdefault(node, Counter()).update(refs)

    def _rebuild(self) -> None:
        res = self._cache.resource(self._root)
        self._by_node.clear()
        self._pod_node.clear()
        for key, cached in res.objects.items():
            self._add(key, cached.decode())
        self._revision = res.events[-1].revision if res.events else 0

    def _catch_up(self) -> None:
        res = self._cache.resource(self._root)
        latest = res.events[-1].revision if res.events else 0
        if latest == self._revision:
            return
        events = res.events_after(self._revision) if self._revision >= 0 else None
        if events is None:
            self._rebuild()
            return
        for event in events:
            self._remove(event.obj.key)
            if event.type != "DELETED":
                self._add(event.obj.key, event.obj.decode())
        self._revision = latest

    def has(self, node: str, ref: Ref) -> bool:
        self._catch_up()
        counter = self._by_node.get(node)
        return counter is not None and counter.get(ref, 0) > 0


class NodeAuthorizer:
    def __init__(self, graph: NodeGraph, pvc_volume: Any = None) -> None:
        self.graph = graph
        self._pvc_volume = pvc_volume
        """(namespace, pvc name) -> bound PV name, or None: lets a node read its pods' PVs."""

    async def authorize(self, attributes: RequestAttributes) -> tuple[str, str]:
        node = node_name(attributes.user.username, attributes.user.groups)
        if node is None:
            return Decision.NO_OPINION, ""
        if not node:
            return Decision.NO_OPINION, "unknown node"
        if not attributes.resource_request:
            return self._rules(attributes)
        group, resource, sub = attributes.api_group, attributes.resource, attributes.subresource
        if group == "":
            if resource in ("secrets", "configmaps") and not sub:
                return self._read_referenced(node, attributes, resource[:-1])  # secret, configmap
            if resource == "persistentvolumeclaims":
                if sub == "status" and attributes.verb in ("update", "patch"):
                    return self._related(node, ("pvc", attributes.namespace, attributes.name))
                if not sub:
                    return self._read_referenced(node, attributes, "pvc")
            if resource == "persistentvolumes" and not sub:
                return self._persistent_volume(node, attributes)
            if resource == "serviceaccounts" and sub == "token":
                if attributes.verb != "create":
                    return Decision.NO_OPINION, "can only create tokens for individual service accounts"
                return self._related(node, ("serviceaccount", attributes.namespace, attributes.name))
            if resource == "pods" and not sub and attributes.verb == "get":
                return self._related(node, ("pod", attributes.namespace, attributes.name))
        if group == "coordination.k8s.io" and resource == "leases":
            return self._lease(node, attributes)
        return self._rules(attributes)

    def _rules(self, attributes: RequestAttributes) -> tuple[str, str]:
        if rules_allow(NODE_RULES, attributes):
            return Decision.ALLOW, ""
        return Decision.NO_OPINION, ""

    def _read_referenced(self, node: str, attributes: RequestAttributes, kind: str) -> tuple[str, str]:
        if attributes.verb != "get":
            return Decision.NO_OPINION, "can only read resources of this type"
        if not attributes.name:
            return Decision.NO_OPINION, "No Object name found"
        return self._related(node, (kind, attributes.namespace, attributes.name))

    def _related(self, node: str, ref: Ref) -> tuple[str, str]:
        if self.graph.has(node, ref):
            return Decision.ALLOW, ""
        return Decision.NO_OPINION, f"no relationship found between node '{node}' and this object"

    def _persistent_volume(self, node: str, attributes: RequestAttributes) -> tuple[str, str]:
        if attributes.verb != "get":
            return Decision.NO_OPINION, "can only read resources of this type"
        if self._pvc_volume is not None:
            for claim in self._pvc_volume(attributes.name):
                if self.graph.has(node, ("pvc", *claim)):
                    return Decision.ALLOW, ""
        return Decision.NO_OPINION, f"no relationship found between node '{node}' and this object"

    def _lease(self, node: str, attributes: RequestAttributes) -> tuple[str, str]:
        if attributes.verb not in ("get", "create", "update", "patch", "delete"):
            return Decision.NO_OPINION, "can only get, create, update, patch, or delete a node lease"
        if attributes.namespace != NODE_LEASE_NAMESPACE:
            return Decision.NO_OPINION, f"can only access leases in the {NODE_LEASE_NAMESPACE} system namespace"
        if attributes.verb != "create" and attributes.name != node:
            return Decision.NO_OPINION, "can only access node lease with the same name as the requesting node"
        return Decision.ALLOW, ""
