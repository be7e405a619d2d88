"""The placed pods, indexed for the inter-pod plugins (InterPodAffinity, its scoring).

kube-scheduler's InterPodAffinity PreFilter walks every pod on every node to count, per
topology value, the pods matching the incoming pod's terms and the existing pods whose required
anti-affinity matches the incoming pod; Go does that in parallel goroutines. In Python that walk
is the whole cycle once thousands of pods are placed, so the cache keeps this index up to date
as pods are assumed, bound and deleted, and a cycle touches only the pods that can match:

* pods by each of their labels, so a term whose selector pins a label (`group=g7`,
  `app in (web)`) looks only at pods carrying it (`candidates`);
* the required anti-affinity terms of placed pods, deduplicated (a ReplicaSet's pods share one
  term) with how many pods carry each on each node, and grouped by the label they pin, so the
  existing-anti-affinity check looks only at terms that can match the incoming pod
  (`anti_affinity_terms_for`);
* the pods that have scoring terms (preferred terms or required affinity), for PreScore.

Counting per topology value happens in the plugin with the node's current labels, so a node's
labels changing needs no re-indexing here.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from typing import TYPE_CHECKING

from pykube_server.scheduler.terms import AffinityTerm, labels_of

if TYPE_CHECKING:
    from pykube_server.scheduler.framework import NodeInfo, PodInfo

Anchor = tuple[str, str]
Placed = tuple["PodInfo", str]
"""A pod and the name of the node it is on (bound or assumed)."""


class PodIndex:
    def __init__(self, node_of: Callable[[str], NodeInfo | None]) -> None:
        self.node_of = node_of
        """Node name -> the NodeInfo the counts should read labels from (None: not a node)."""
        self._all: dict[str, Placed] = {}
        self._by_label: dict[Anchor, dict[str, Placed]] = {}
        self._anti_terms: dict[AffinityTerm, dict[str, int]] = {}
        self._anti_by_anchor: dict[Anchor | None, set[AffinityTerm]] = {}
        self._scoring: dict[str, Placed] = {}

    @classmethod
    def of_nodes(cls, nodes: Iterable[NodeInfo]) -> PodIndex:
        """An index over exactly `nodes` (a what-if node list, as preemption builds)."""
        by_name = {n.name: n for n in nodes}
        index = cls(by_name.get)
        for node in by_name.values():
            for info in node.pods.values():
                index.add(info, node.name)
        return index

    def __len__(self) -> int:
        return len(self._all)

    # -- keeping it current ---------------------------------------------------------------
    def add(self, info: PodInfo, node_name: str) -> None:
        key = info.key
        if key in self._all:
            self.remove(key)
        placed = (info, node_name)
        self._all[key] = placed
        for pair in labels_of(info.pod).items():
            self._by_label.setdefault(pair, {})[key] = placed
        for term in info.required_anti_affinity:
            per_node = self._anti_terms.get(term)
            if per_node is None:
                per_node = self._anti_terms[term] = {}
                self._anti_by_anchor.setdefault(term.anchor(), set()).add(term)
            per_node[node_name] = per_node.get(node_name, 0) + 1
        if info.required_affinity or info.preferred_affinity or info.preferred_anti_affinity:
            self._scoring[key] = placed

    def remove(self, key: str) -> None:
        placed = self._all.pop(key, None)
        if placed is None:
            return
        info, node_name = placed
        for pair in labels_of(info.pod).items():
            bucket = self._by_label.get(pair)
            if bucket is not None:
                bucket.pop(key, None)
                if not bucket:
                    del self._by_label[pair]
        for term in info.required_anti_affinity:
            per_node = self._anti_terms.get(term)
            if per_node is None:
                continue
            left = per_node.get(node_name, 0) - 1
            if left > 0:
                per_node[node_name] = left
            else:
                per_node.pop(node_name, None)
            if not per_node:
                del self._anti_terms[term]
                anchored = self._anti_by_anchor.get(term.anchor())
                if anchored is not None:
                    anchored.discard(term)
                    if not anchored:
                        del self._anti_by_anchor[term.anchor()]
        self._scoring.pop(key, None)

    # -- reading --------------------------------------------------------------------------
    def candidates(self, term: AffinityTerm) -> Iterable[Placed]:
        """Every placed pod `term` could match (a superset; the caller still matches)."""
        anchor = term.anchor()
        if anchor is None:
            return self._all.values()
        return self._by_label.get(anchor, {}).values()

    @property
    def has_anti_affinity_pods(self) -> bool:
        """Some placed pod has required anti-affinity (kube's
        HavePodsWithRequiredAntiAffinityNodeInfoList is not empty)."""
        return bool(self._anti_terms)

    def anti_affinity_terms_for(self, pod: PodInfo) -> Iterator[tuple[AffinityTerm, dict[str, int]]]:
        """Placed pods' required anti-affinity terms that could match `pod`, each with the
        number of pods carrying it per node name."""
        for anchor in (None, *labels_of(pod.pod).items()):
            for term in self._anti_by_anchor.get(anchor, ()):
                yield term, self._anti_terms[term]

    def scoring_pods(self) -> Iterable[Placed]:
        """Placed pods with preferred terms or required affinity (what InterPodAffinity's
        score looks at on the existing side)."""
        return self._scoring.values()
