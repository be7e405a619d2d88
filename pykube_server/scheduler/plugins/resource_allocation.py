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
        if self.resources == DEFAULT_RESOURCES and node.alloc_cpu and node.alloc_memory:
            # cpu and memory only (the default): the node's ints, no per-resource lookups
            if self.use_requested:
                used_cpu = node.req_cpu + pod.requests.get(CPU)
                used_memory = node.req_memory + pod.requests.get(MEMORY)
            else:
                used_cpu = node.nz_cpu + pod.non_zero.get(CPU)
                used_memory = node.nz_memory + pod.non_zero.get(MEMORY)
            return self.scorer((used_cpu, used_memory), (node.alloc_cpu, node.alloc_memory), (1, 1))
        return self._score_general(pod, node)

    def score_all(self, pod: PodInfo, nodes: list[NodeInfo]) -> list[int]:
        """`score` over `nodes` at once: for the default cpu and memory with weight 1, one
        loop of integer arithmetic per node instead of a call chain (scoring hundreds of nodes
        per pod is most of a scheduling cycle)."""
        pair = _PAIR_SCORERS.get(self.scorer) if self.resources == DEFAULT_RESOURCES else None
        if pair is None:
            return [self.score(pod, n) for n in nodes]
        wants = pod.requests if self.use_requested else pod.non_zero
        want_cpu, want_memory = wants.get(CPU), wants.get(MEMORY)
        out = []
        for n in nodes:
            cpu, memory = n.alloc_cpu, n.alloc_memory
            if not cpu or not memory:
                out.append(self._score_general(pod, n))
            elif self.use_requested:
                out.append(pair(n.req_cpu + want_cpu, cpu, n.req_memory + want_memory, memory))
            else:
                out.append(pair(n.nz_cpu + want_cpu, cpu, n.nz_memory + want_memory, memory))
        return out

    def _score_general(self, pod: PodInfo, node: NodeInfo) -> int:
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


def _least_pair(used_cpu: int, cpu: int, used_memory: int, memory: int) -> int:
    return (((cpu - used_cpu) * MAX_NODE_SCORE // cpu if used_cpu <= cpu else 0)
            + ((memory - used_memory) * MAX_NODE_SCORE // memory if used_memory <= memory else 0)) // 2


def _most_pair(used_cpu: int, cpu: int, used_memory: int, memory: int) -> int:
    return (min(used_cpu, cpu) * MAX_NODE_SCORE // cpu + min(used_memory, memory) * MAX_NODE_SCORE // memory) // 2


def _balanced_pair(used_cpu: int, cpu: int, used_memory: int, memory: int) -> int:
    return int((1 - abs(min(used_cpu / cpu, 1.0) - min(used_memory / memory, 1.0)) / 2) * MAX_NODE_SCORE)


def _weighted(per_resource: Callable[[int, int], int]) -> Scorer:
    def score(requested: Sequence[int], allocatable: Sequence[int], weights: Sequence[int]) -> int:
        total = weight_sum = 0
        for r, a, w in zip(requested, allocatable, weights):
            total += per_resource(r, a) * w
            weight_sum += w
        return total // weight_sum if weight_sum else 0
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


_PAIR_SCORERS: dict[Scorer, Callable[[int, int, int, int], int]] = {
    LEAST_ALLOCATED: _least_pair, MOST_ALLOCATED: _most_pair, balanced: _balanced_pair}
"""The cpu-and-memory (weights 1, 1) form of each built-in scorer, for `score_all`."""
