"""The scheduler's cache: NodeInfos with the pods counted on them, bound or assumed.

Informer handlers feed it nodes and assigned pods. `assume()` counts a pod on its chosen node
before the binding is even sent, so the next cycle (which does not wait for the bind) never
double-books the node; the informer's later update for the bound pod confirms the assumption,
and `forget()` undoes it when binding fails. A pod may arrive before its node (informers are
independent); it is kept on a placeholder NodeInfo that is not offered for scheduling until the
node itself appears.

Snapshots are not copied: one scheduling cycle runs synchronously from reading the node list to
`assume()`, so nothing can change under it (kube needs its snapshot because it filters in
goroutines while informers write). For the same reason the node list is rebuilt only when a
node is added or removed, and `pod_index` (placed pods by label, placed pods' anti-affinity
terms) is kept current pod by pod instead of being recomputed per cycle.
"""

from __future__ import annotations

import copy
import logging

from pykube_server.api.types import Obj
from pykube_server.scheduler.framework import NodeInfo, PodInfo, key_of
from pykube_server.scheduler.podindex import PodIndex

log = logging.getLogger(__name__)


def node_name_of(pod: Obj) -> str:
    return str((pod.get("spec") or {}).get("nodeName") or "")


class Cache:
    def __init__(self) -> None:
        self._nodes: dict[str, NodeInfo] = {}
        self._pod_nodes: dict[str, str] = {}
        self._assumed: set[str] = set()
        self._list: list[NodeInfo] | None = None
        self.pod_index = PodIndex(self.node)

    # -- nodes ----------------------------------------------------------------------------
    def add_node(self, node: Obj) -> NodeInfo:
        name = str((node.get("metadata") or {}).get("name", ""))
        info = self._nodes.get(name)
        if info is None:
            info = self._nodes[name] = NodeInfo.of(node)
        else:
            info.set_node(node)
        self._list = None
        return info

    update_node = add_node

    def remove_node(self, node: Obj) -> None:
        name = str((node.get("metadata") or {}).get("name", ""))
        info = self._nodes.get(name)
        if info is None:
            return
        if info.pods:
            info.node = {}  # keep the pods until their deletes arrive
        else:
            del self._nodes[name]
        self._list = None

    def node_list(self) -> list[NodeInfo]:
        """Nodes that exist, in a stable order (the order they were added)."""
        if self._list is None:
            self._list = [info for info in self._nodes.values() if info.node]
        return self._list

    def node(self, name: str) -> NodeInfo | None:
        info = self._nodes.get(name)
        return info if info is not None and info.node else None

    # -- pods -----------------------------------------------------------------------------
    def _place(self, info: PodInfo, node_name: str) -> None:
        node = self._nodes.get(node_name)
        if node is None:
            node = self._nodes[node_name] = NodeInfo({})
        node.add_pod(info)
        self._pod_nodes[info.key] = node_name
        self.pod_index.add(info, node_name)

    def _unplace(self, key: str) -> None:
        node_name = self._pod_nodes.pop(key, None)
        self.pod_index.remove(key)
        node = self._nodes.get(node_name or "")
        if node is None:
            return
        node.remove_pod(key)
        if not node.node and not node.pods:
            del self._nodes[node.name or node_name or ""]

    def add_pod(self, pod: Obj) -> None:
        """An assigned pod seen by the informer (confirms an assumption)."""
        key = key_of(pod)
        self._assumed.discard(key)
        if key in self._pod_nodes:
            self._unplace(key)
        self._place(PodInfo.of(pod), node_name_of(pod))

    update_pod = add_pod

    def remove_pod(self, pod: Obj) -> None:
        key = key_of(pod)
        self._assumed.discard(key)
        self._unplace(key)

    def assume(self, info: PodInfo, node_name: str) -> PodInfo:
        pod = copy.copy(info.pod)
        pod["spec"] = {**(pod.get("spec") or {}), "nodeName": node_name}
        assumed = info.with_pod(pod)
        self._place(assumed, node_name)
        self._assumed.add(info.key)
        return assumed

    def forget(self, key: str) -> None:
        if key in self._assumed:
            self._assumed.discard(key)
            self._unplace(key)

    def is_assumed(self, key: str) -> bool:
        return key in self._assumed

    def has_pod(self, key: str) -> bool:
        return key in self._pod_nodes
