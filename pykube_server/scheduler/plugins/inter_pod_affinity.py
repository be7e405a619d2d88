"""InterPodAffinity: required pod affinity / anti-affinity by topology key (filter), and
preferred terms (score), counted over the pods the cache places on nodes.

Pre-filter counts, per (topologyKey, value): pods matching the incoming pod's affinity terms,
pods matching its anti-affinity terms, and existing pods whose required anti-affinity matches
the incoming pod. The filter then only looks the node's topology values up. As in kube, the
first pod of a group that has affinity to itself may go anywhere the topology keys exist.
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
from pykube_server.scheduler.plugins.pod_affinity_terms import (
    AffinityTerm,
    NamespaceLabels,
    preferred_terms,
    required_terms,
)

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


def _bump(counts: dict[Pair, int], key: str, node: NodeInfo, by: int = 1) -> None:
    value = node.labels.get(key)
    if value is not None:
        counts[(key, value)] = counts.get((key, value), 0) + by


def _has(counts: Mapping[Pair, int], terms: list[AffinityTerm], node: NodeInfo) -> bool:
    return any(counts.get((t.topology_key, node.labels.get(t.topology_key, "")), 0) > 0
               for t in terms if t.topology_key in node.labels)


class InterPodAffinity:
    name: ClassVar[str] = "InterPodAffinity"

    def __init__(self, handle: Handle) -> None:
        self._handle = handle

    @property
    def _ns_labels(self) -> NamespaceLabels:
        return self._handle.namespace_labels

    def pre_filter(self, state: CycleState, pod: PodInfo, nodes: list[NodeInfo]) -> Status | None:
        s = _State(required_terms(pod.pod, "podAffinity"), required_terms(pod.pod, "podAntiAffinity"))
        for node in nodes:
            for other in node.pods.values():
                for t in s.affinity:
                    if t.matches(other.pod, self._ns_labels):
                        _bump(s.affinity_counts, t.topology_key, node)
                for t in s.anti_affinity:
                    if t.matches(other.pod, self._ns_labels):
                        _bump(s.anti_counts, t.topology_key, node)
                for t in required_terms(other.pod, "podAntiAffinity"):
                    if t.matches(pod.pod, self._ns_labels):
                        _bump(s.existing_anti_counts, t.topology_key, node)
        state[self.name] = s
        return None

    def filter(self, state: CycleState, pod: PodInfo, node: NodeInfo) -> Status | None:
        s: _State = state[self.name]
        if not self._satisfies_affinity(s, pod, node):
            return unschedulable(AFFINITY_REASON, unresolvable=True)
        if _has(s.anti_counts, s.anti_affinity, node):
            return unschedulable(ANTI_AFFINITY_REASON)
        if any(node.labels.get(k) == v for (k, v), n in s.existing_anti_counts.items() if n > 0):
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
        incoming = [(t, 1) for t in preferred_terms(pod.pod, "podAffinity")]
        incoming += [(t, -1) for t in preferred_terms(pod.pod, "podAntiAffinity")]
        scores: dict[Pair, int] = {}
        any_terms = bool(incoming)
        for node in self._handle.all_nodes() or nodes:
            for other in node.pods.values():
                for t, sign in incoming:
                    if t.matches(other.pod, self._ns_labels):
                        _bump(scores, t.topology_key, node, sign * t.weight)
                existing = [(t, 1) for t in preferred_terms(other.pod, "podAffinity")]
                existing += [(t, -1) for t in preferred_terms(other.pod, "podAntiAffinity")]
                any_terms = any_terms or bool(existing)
                for t, sign in existing:
                    if t.matches(pod.pod, self._ns_labels):
                        _bump(scores, t.topology_key, node, sign * t.weight)
        if not any_terms:
            return SKIP
        state[self.name + "/score"] = scores
        return None

    def score(self, state: CycleState, pod: PodInfo, node: NodeInfo) -> int:
        scores: dict[Pair, int] = state.get(self.name + "/score", {})
        return sum(v for (k, value), v in scores.items() if node.labels.get(k) == value)

    def normalize(self, state: CycleState, pod: PodInfo, scores: dict[str, int]) -> None:
        low, high = min(scores.values(), default=0), max(scores.values(), default=0)
        for name, value in scores.items():
            scores[name] = MAX_NODE_SCORE * (value - low) // (high - low) if high > low else 0


def new(args: Mapping[str, Any], handle: Handle) -> InterPodAffinity:
    return InterPodAffinity(handle)
