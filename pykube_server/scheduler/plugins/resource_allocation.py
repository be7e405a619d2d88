"""Shared scoring over resources (kube's `resourceAllocationScorer`), used by
NodeResourcesFit (LeastAllocated, MostAllocated, RequestedToCapacityRatio) and
NodeResourcesBalancedAllocation.

For each configured resource the node's allocatable and its requested-after-placement amount
are collected; resources the node lacks, and extended resources the pod does not ask for, are
left out. With `use_requested=False` cpu and memory count the "non-zero" requests (100m/200Mi
for containers that ask for nothing), so best-effort pods still spread.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from pykube_server.scheduler.framework import MAX_NODE_SCORE, NodeInfo, PodInfo
from pykube_server.scheduler.resource import CPU, EPHEMERAL_STORAGE, MEMORY

MAX_UTILIZATION = 100
MAX_CUSTOM_PRIORITY_SCORE = 10
DEFAULT_RESOURCES: tuple[tuple[str, int], ...] = ((CPU, 1), (MEMORY, 1))
Scorer = Callable[[Sequence[int], Sequence[int], Sequence[int]], int]
"""(requested, allocatable, weights) -> score, over the resources that count."""


def parse_resources(specs: Sequence[Mapping[str, Any]] | None) -> tuple[tuple[str, int], ...]:
    if not specs:
        return DEFAULT_RESOURCES
    return tuple((str(s["name"]), int(s.get("weight") or 1)) for s in specs)


def _is_scalar(name: str) -> bool:
    return name not in (CPU, MEMORY, EPHEMERAL_STORAGE)


@dataclass(frozen=True)
class ResourceAllocationScorer:
    scorer: Scorer
    resources: tuple[tuple[str, int], ...] = DEFAULT_RESOURCES
    use_requested: bool = False

    def pod_request(self, pod: PodInfo, name: str) -> int:
        if not self.use_requested and name in (CPU, MEMORY):
            return pod.non_zero.get(name)
        return pod.requests.get(name)

    def score(self, pod: PodInfo, node: NodeInfo) -> int:
        requested, allocatable, weights = [], [], []
        for name, weight in self.resources:
            want = self.pod_request(pod, name)
            if want == 0 and _is_scalar(name):
                continue
            alloc = node.allocatable.get(name)
            if alloc == 0:
                continue
            used = node.non_zero_requested if not self.use_requested and name in (CPU, MEMORY) else node.requested
            requested.append(used.get(name) + want)
            allocatable.append(alloc)
            weights.append(weight)
        return self.scorer(requested, allocatable, weights)


def _weighted(per_resource: Callable[[int, int], int]) -> Scorer:
    def score(requested: Sequence[int], allocatable: Sequence[int], weights: Sequence[int]) -> int:
        total = sum(per_resource(r, a) * w for r, a, w in zip(requested, allocatable, weights))
        return total // sum(weights) if weights else 0
    return score


def least_requested(requested: int, capacity: int) -> int:
    if capacity == 0 or requested > capacity:
        return 0
    return (capacity - requested) * MAX_NODE_SCORE // capacity


def most_requested(requested: int, capacity: int) -> int:
    if capacity == 0:
        return 0
    return min(requested, capacity) * MAX_NODE_SCORE // capacity


LEAST_ALLOCATED = _weighted(least_requested)
MOST_ALLOCATED = _weighted(most_requested)


def broken_linear(shape: Sequence[tuple[int, int]]) -> Callable[[int], int]:
    """helper.BuildBrokenLinearFunction over (utilization, score) points."""
    def f(p: int) -> int:
        for i, (u, s) in enumerate(shape):
            if p <= u:
                if i == 0:
                    return shape[0][1]
                u0, s0 = shape[i - 1]
                return s0 + (s - s0) * (p - u0) // (u - u0)
        return shape[-1][1]
    return f


def requested_to_capacity_ratio(points: Sequence[Mapping[str, Any]]) -> Scorer:
    scale = MAX_NODE_SCORE // MAX_CUSTOM_PRIORITY_SCORE
    raw = broken_linear([(int(p["utilization"]), int(p["score"]) * scale) for p in points])

    def per_resource(requested: int, capacity: int) -> int:
        if capacity == 0 or requested > capacity:
            return raw(MAX_UTILIZATION)
        return raw(requested * MAX_UTILIZATION // capacity)

    def score(requested: Sequence[int], allocatable: Sequence[int], weights: Sequence[int]) -> int:
        total = weight_sum = 0
        for r, a, w in zip(requested, allocatable, weights):
            s = per_resource(r, a)
            if s > 0:
                total, weight_sum = total + s * w, weight_sum + w
        return round(total / weight_sum) if weight_sum else 0
    return score


def balanced(requested: Sequence[int], allocatable: Sequence[int], weights: Sequence[int]) -> int:
    """1 - the standard deviation of the requested fractions, times 100."""
    fractions = [min(r / a, 1.0) for r, a in zip(requested, allocatable)]
    std = 0.0
    if len(fractions) == 2:
        std = abs((fractions[0] - fractions[1]) / 2)
    elif len(fractions) > 2:
        mean = sum(fractions) / len(fractions)
        std = (sum((f - mean) ** 2 for f in fractions) / len(fractions)) ** 0.5
    return int((1 - std) * MAX_NODE_SCORE)
