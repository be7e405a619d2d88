"""The `NodeRestriction` admission plugin: a kubelet may write only what is its own.

The Node authorizer decides which objects a node may touch at all; this plugin looks at what
it writes, as kube's does, for users `system:node:<name>` in `system:nodes`:
* pods: create only mirror pods bound to itself, delete only pods bound to itself; no other
  write to a pod but through `pods/status` (of its own pods, without changing labels) and
  `pods/eviction` (of its own pods);
* its own Node only: not another's, not its taints, not `node-restriction.kubernetes.io/` or
  other `kubernetes.io`/`k8s.io` labels outside the kubelet's own set, no configSource;
* `serviceaccounts/token` only bound to a pod scheduled on itself;
* Leases only its own in `kube-node-lease`; CSINode only its own; node CSRs only for its CN.
Refusals are kube's 403 texts.
"""

from __future__ import annotations

import base64
from typing import TYPE_CHECKING, Any

from cryptography import x509
from cryptography.x509.oid import NameOID

from pykube_server.api import errors
from pykube_server.apiserver.admission import CREATE, DELETE, UPDATE, Attributes
from pykube_server.apiserver.admission.priority import forbidden

if TYPE_CHECKING:
    from pykube_server.apiserver.app import APIServer

Obj = dict[str, Any]
NODES_GROUP = "system:nodes"
NODE_PREFIX = "system:node:"
MIRROR = "kubernetes.io/config.mirror"
NODE_LEASE_NAMESPACE = "kube-node-lease"
KUBELET_LABELS = {"kubernetes.io/hostname", "kubernetes.io/arch", "kubernetes.io/os", "beta.kubernetes.io/arch",
                  "beta.kubernetes.io/os", "beta.kubernetes.io/instance-type", "node.kubernetes.io/instance-type",
                  "topology.kubernetes.io/region", "topology.kubernetes.io/zone", "failure-domain.beta.kubernetes.io/region",
                  "failure-domain.beta.kubernetes.io/zone", "node.kubernetes.io/windows-build"}
KUBELET_LABEL_NAMESPACES = ("kubelet.kubernetes.io", "node.kubernetes.io")


def node_of(attributes: Attributes) -> str | None:
    user = attributes.user
    if NODES_GROUP not in user.groups or not user.username.startswith(NODE_PREFIX):
        return None
    return user.username[len(NODE_PREFIX):] or None


def _label_namespace(key: str) -> str:
    return key.split("/", 1)[0] if "/" in key else ""


def _kubelet_label(key: str) -> bool:
    ns = _label_namespace(key)
    return key in KUBELET_LABELS or any(ns == n or ns.endswith("." + n) for n in KUBELET_LABEL_NAMESPACES)


def forbidden_labels(new: dict[str, str], old: dict[str, str]) -> list[str]:
    """Labels a node may not add, change or remove on itself (kube's getForbiddenLabels)."""
    changed = {k for k in new.keys() | old.keys() if new.get(k) != old.get(k)}
    out = []
    for key in sorted(changed):
        ns = _label_namespace(key)
        restricted = ns == "node-restriction.kubernetes.io" or ns.endswith(".node-restriction.kubernetes.io")
        kubernetes = ns in ("kubernetes.io", "k8s.io") or ns.endswith(".kubernetes.io") or ns.endswith(".k8s.io")
        if restricted or (kubernetes and not _kubelet_label(key)):
            out.append(key)
    return out


class NodeRestriction:
    name = "NodeRestriction"

    def __init__(self, server: APIServer) -> None:
        self.pods = server.store_for("", "v1", "pods")

    def _pod(self, namespace: str, name: str) -> Obj | None:
        cached = self.pods.cacher.resource(self.pods.root).objects.get(self.pods.key(namespace, name))
        return cached.decode() if cached is not None else None

    async def validate(self, attributes: Attributes) -> None:
        """Deletes: the store admits them in its validating phase only."""
        if attributes.operation == DELETE:
            await self.admit(attributes)

    async def admit(self, attributes: Attributes) -> None:
        """kube's plugin is a mutating one (it only refuses), so it runs in the mutating phase,
        after ServiceAccount."""
        node = node_of(attributes)
        if node is None:
            return
        group, resource, sub, op = attributes.group, attributes.resource, attributes.subresource, attributes.operation
        deny = lambda reason: forbidden(attributes, reason)  # noqa: E731
        if (group, resource) == ("", "pods"):
            await self._pods(node, attributes, deny)
        elif (group, resource) == ("", "nodes"):
            self._node(node, attributes, deny)
        elif (group, resource, sub) == ("", "serviceaccounts", "token") and op == CREATE:
            self._token(node, attributes, deny)
        elif (group, resource) == ("coordination.k8s.io", "leases"):
            if attributes.namespace != NODE_LEASE_NAMESPACE:
                raise deny(f'can only access leases in the "{NODE_LEASE_NAMESPACE}" system namespace')
            if attributes.name != node:
                raise deny("can only access node lease with the same name as the requesting node")
        elif (group, resource) == ("storage.k8s.io", "csinodes") and attributes.name != node:
            raise deny("can only access CSINode with the same name as the requesting node")
        elif (group, resource) == ("certificates.k8s.io", "certificatesigningrequests") and op == CREATE and not sub:
            self._csr(node, attributes, deny)

    async def _pods(self, node: str, attributes: Attributes, deny: Any) -> None:
        op, sub = attributes.operation, attributes.subresource
        if sub == "status":
            old = attributes.old or {}
            if (old.get("spec") or {}).get("nodeName") != node:
                raise deny(f'node "{node}" can only update pod status for pods with spec.nodeName set to itself')
            if ((attributes.obj or {}).get("metadata") or {}).get("labels") != (old.get("metadata") or {}).get("labels"):
                raise deny(f'node "{node}" cannot update labels through pod status')
            return
        if sub == "eviction":
            pod = self._pod(attributes.namespace, attributes.name)
            if pod is None:
                raise errors.NotFound.resource("pods", "", attributes.name)
            if (pod.get("spec") or {}).get("nodeName") != node:
                raise deny(f"node {node} can only evict pods with spec.nodeName set to itself")
            return
        if sub:
            raise deny(f"unexpected operation {op!r}")
        if op == CREATE:
            pod = attributes.obj or {}
            meta, spec = pod.get("metadata") or {}, pod.get("spec") or {}
            if MIRROR not in (meta.get("annotations") or {}):
                raise deny(f'pod does not have "{MIRROR}" annotation, node "{node}" can only create mirror pods')
            if spec.get("nodeName") != node:
                raise deny(f'node "{node}" can only create pods with spec.nodeName set to itself')
            return
        if op == DELETE:
            if ((attributes.old or {}).get("spec") or {}).get("nodeName") != node:
                raise deny(f'node "{node}" can only delete pods with spec.nodeName set to itself')
            return
        raise deny(f'unexpected operation "{op}", node "{node}" can only create and delete mirror pods')

    def _node(self, node: str, attributes: Attributes, deny: Any) -> None:
        name = attributes.name or ((attributes.obj or {}).get("metadata") or {}).get("name", "")
        if name != node:
            raise deny(f'node "{node}" is not allowed to modify node "{name}"')
        new, old = attributes.obj or {}, attributes.old
        if attributes.operation == CREATE:
            if (new.get("spec") or {}).get("configSource") is not None:
                raise deny(f'node "{node}" is not allowed to create pods with a non-nil configSource')
            bad = forbidden_labels((new.get("metadata") or {}).get("labels") or {}, {})
            if bad:
                raise deny(f'node "{node}" is not allowed to set the following labels: {", ".join(bad)}')
        elif attributes.operation == UPDATE and old is not None:
            new_spec, old_spec = new.get("spec") or {}, old.get("spec") or {}
            if new_spec.get("configSource") is not None and new_spec.get("configSource") != old_spec.get("configSource"):
                raise deny(f'node "{node}" is not allowed to update configSource to a new non-nil configSource')
            if (new_spec.get("taints") or None) != (old_spec.get("taints") or None):
                raise deny(f'node "{node}" is not allowed to modify taints')
            bad = forbidden_labels((new.get("metadata") or {}).get("labels") or {},
                                   (old.get("metadata") or {}).get("labels") or {})
            if bad:
                raise deny(f"is not allowed to modify labels: {', '.join(bad)}")

    def _token(self, node: str, attributes: Attributes, deny: Any) -> None:
        ref = ((attributes.obj or {}).get("spec") or {}).get("boundObjectRef") or {}
        if ref.get("apiVersion") != "v1" or ref.get("kind") != "Pod" or not ref.get("name"):
            raise deny("node requested token not bound to a pod")
        if not ref.get("uid"):
            raise deny("node requested token with a pod binding without a uid")
        pod = self._pod(attributes.namespace, ref["name"])
        if pod is None:
            raise errors.NotFound.resource("pods", "", ref["name"])
        if pod["metadata"].get("uid") != ref["uid"]:
            raise deny(f"the UID in the bound object reference ({ref['uid']}) does not match the UID in record. "
                       "The object might have been deleted and then recreated")
        if (pod.get("spec") or {}).get("nodeName") != node:
            raise deny("node requested token bound to a pod scheduled on a different node")

    def _csr(self, node: str, attributes: Attributes, deny: Any) -> None:
        spec = (attributes.obj or {}).get("spec") or {}
        if spec.get("signerName") not in ("kubernetes.io/kubelet-serving", "kubernetes.io/kube-apiserver-client-kubelet"):
            return
        try:
            request = x509.load_pem_x509_csr(base64.b64decode(spec.get("request", "")))
        except ValueError as exc:
            raise deny(f"unable to parse csr: {exc}") from None
        cns = [a.value for a in request.subject.get_attributes_for_oid(NameOID.COMMON_NAME)]
        if cns != [f"system:node:{node}"]:
            raise deny(f"can only create a node CSR with CN=system:node:{node}")
