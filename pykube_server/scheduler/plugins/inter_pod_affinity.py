"""InterPodAffinity: required pod affinity / anti-affinity by topology key (filter), and
preferred terms (score), counted over the pods the cache places on nodes.

Pre-filter counts, per (topologyKey, value): pods matching the incoming pod's affinity terms,
pods matching its anti-affinity terms, and existing pods whose required anti-affinity matches
the incoming pod (kube's affinityCounts, antiAffinityCounts, existingAntiAffinityCounts). It
reads the cache's `PodIndex`, so it touches only pods and terms that can match, not every pod
on every node. The filter then only looks the node's topology values up: O(terms + node labels)
per node. As in kube, the first pod of a group that has affinity to itself may go anywhere the
topology keys exist, and a pod with no required terms, while no placed pod has required
anti-affinity, Skips the filter.

Scoring adds, per topology value, the weights of the incoming pod's preferred terms matching
placed pods, of placed pods' preferred terms matching the incoming pod, and
`hardPodAffinityWeight` (default 1) for placed pods' required affinity terms matching it.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, ClassVar

from pykube_server.scheduler.framework import (
    MAX_NODE_SCORE,
    SKIP,
    CycleState,
    Handle,
    NodeInfo,
    PodInfo,
    Status,
    unschedulable,
)
from pykube_server.scheduler.podindex import PodIndex
from pykube_server.scheduler.terms import AffinityTerm, NamespaceLabels

DEFAULT_HARD_POD_AFFINITY_WEIGHT = 1
AFFINITY_REASON = "node(s) didn't match pod affinity rules"
ANTI_AFFINITY_REASON = "node(s) didn't match pod anti-affinity rules"
EXISTING_ANTI_AFFINITY_REASON = "node(s) didn't satisfy existing pods anti-affinity rules"
Pair = tuple[str, str]


@dataclass
class _State:
    affinity: list[AffinityTerm]
    anti_affinity: list[AffinityTerm]
    affinity_counts: dict[Pair, int] = field(default_factory=dict)
    anti_counts: dict[Pair, int] = field(default_factory=dict)
    existing_anti_counts: dict[Pair, int] = field(default_factory=dict)
    existing_keys: list[str] = field(default_factory=list)


def _bump(counts: dict[Pair, int], key: str, node: NodeInfo | None, by: int = 1) -> None:
    if node is None:
        return
    value = node.labels.get(key)
    if value is not None:
        counts[(key, value)] = counts.get((key, value), 0) + by


def _count_matching(index: PodIndex, terms: list[AffinityTerm], counts: dict[Pair, int],
                    ns_labels: NamespaceLabels) -> None:
    """counts[(topologyKey, value)] += placed pods matching each term, by their node's value."""
    for term in terms:
        for other, node_name in index.candidates(term):
            if term.matches(other.pod, ns_labels):
                _bump(counts, term.topology_key, index.node_of(node_name))


class InterPodAffinity:
    name: ClassVar[str] = "InterPodAffinity"

    def __init__(self, handle: Handle, hard_weight: int = DEFAULT_HARD_POD_AFFINITY_WEIGHT) -> None:
        self._handle = handle
        self.hard_weight = hard_weight

    @property
    def _ns_labels(self) -> NamespaceLabels:
        return self._handle.namespace_labels

    def pre_filter(self, state: CycleState, pod: PodInfo, nodes: list[NodeInfo]) -> Status | None:
        handle = self._handle
        if not pod.required_affinity and not pod.required_anti_affinity:
            if handle.pod_index is not None and nodes is handle.all_nodes():
                anti_placed = handle.pod_index.has_anti_affinity_pods
            else:  # a what-if node list: look, without indexing every pod first
                anti_placed = any(n.pods_with_required_anti_affinity for n in nodes)
            if not anti_placed:
                state.pop(self.name, None)
                return SKIP
        index = handle.index_for(nodes)
        s = _State(pod.required_affinity, pod.required_anti_affinity)
        ns_labels = self._ns_labels
        _count_matching(index, s.affinity, s.affinity_counts, ns_labels)
        _count_matching(index, s.anti_affinity, s.anti_counts, ns_labels)
        for term, per_node in index.anti_affinity_terms_for(pod):
            if term.matches(pod.pod, ns_labels):
                for node_name, n in per_node.items():
                    _bump(s.existing_anti_counts, term.topology_key, index.node_of(node_name), n)
        s.existing_keys = sorted({k for (k, _), n in s.existing_anti_counts.items() if n > 0})
        state[self.name] = s
        return None

    def filter(self, state: CycleState, pod: PodInfo, node: NodeInfo) -> Status | None:
        s: _State | None = state.get(self.name)
        if s is None:
            return None
        labels = node.labels
        if s.affinity and not self._satisfies_affinity(s, pod, node):
            return unschedulable(AFFINITY_REASON, unresolvable=True)
        if s.anti_counts:
            for t in s.anti_affinity:
                value = labels.get(t.topology_key)
                if value is not None and s.anti_counts.get((t.topology_key, value), 0) > 0:
                    return unschedulable(ANTI_AFFINITY_REASON)
        if s.existing_anti_counts:
            counts = s.existing_anti_counts
            for key in s.existing_keys:   # kube walks the node's labels; only these keys can hit
                value = labels.get(key)
                if value is not None and counts.get((key, value), 0) > 0:
                    return unschedulable(EXISTING_ANTI_AFFINITY_REASON)
        return None

    def _satisfies_affinity(self, s: _State, pod: PodInfo, node: NodeInfo) -> bool:
        if any(t.topology_key not in node.labels for t in s.affinity):
            return False
        if all(s.affinity_counts.get((t.topology_key, node.labels[t.topology_key]), 0) > 0 for t in s.affinity):
            return True
        return not s.affinity_counts and all(t.matches(pod.pod, self._ns_labels) for t in s.affinity)

    # -- preferred terms ------------------------------------------------------------------
    def pre_score(self, state: CycleState, pod: PodInfo, nodes: list[NodeInfo]) -> Status | None:
        all_nodes = self._handle.all_nodes()
        index = self._handle.index_for(all_nodes if all_nodes else nodes)
        ns_labels = self._ns_labels
        scores: dict[Pair, int] = {}
        for terms, sign in ((pod.preferred_affinity, 1), (pod.preferred_anti_affinity, -1)):
            for t in terms:
                for other, node_name in index.candidates(t):
                    if t.matches(other.pod, ns_labels):
                        _bump(scores, t.topology_key, index.node_of(node_name), sign * t.weight)
        for other, node_name in index.scoring_pods():
            node = index.node_of(node_name)
            if node is None:
                continue
            for t in other.required_affinity:
                if self.hard_weight and t.matches(pod.pod, ns_labels):
                    _bump(scores, t.topology_key, node, self.hard_weight)
            for terms, sign in ((other.preferred_affinity, 1), (other.preferred_anti_affinity, -1)):
                for t in terms:
                    if t.matches(pod.pod, ns_labels):
                        _bump(scores, t.topology_key, node, sign * t.weight)
        if not scores:
            return SKIP
        state[self.name + "/score"] = scores
        return None

    def score(self, state: CycleState, pod: PodInfo, node: NodeInfo) -> int:
        scores: dict[Pair, int] = state.get(self.name + "/score", {})
        if len(scores) < len(node.labels):
            return sum(v for (k, value), v in scores.items() if node.labels.get(k) == value)
        return sum(scores.get(pair, 0) for pair in node.labels.items())

    def normalize(self, state: CycleState, pod: PodInfo, scores: dict[str, int]) -> None:
        low, high = min(scores.values(), default=0), max(scores.values(), default=0)
        for name, value in scores.items():
            scores[name] = MAX_NODE_SCORE * (value - low) // (high - low) if high > low else 0


def new(args: Mapping[str, Any], handle: Handle) -> InterPodAffinity:
    weight = args.get("hardPodAffinityWeight")
    return InterPodAffinity(handle, DEFAULT_HARD_POD_AFFINITY_WEIGHT if weight is None else int(weight))
