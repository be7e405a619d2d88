"""NodeResourcesBalancedAllocation: prefer nodes whose cpu and memory would be used in equal
fractions after placing the pod (actual requests, not the non-zero defaults). Best-effort pods
(no requests for the scored resources) skip it."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, ClassVar

from pykube_server.scheduler.framework import SKIP, CycleState, Handle, NodeInfo, PodInfo, Status
from pykube_server.scheduler.plugins.resource_allocation import ResourceAllocationScorer, balanced, parse_resources


class BalancedAllocation:
    name: ClassVar[str] = "NodeResourcesBalancedAllocation"

    def __init__(self, args: Mapping[str, Any]) -> None:
        self.scorer = ResourceAllocationScorer(balanced, parse_resources(args.get("resources")), use_requested=True)

    def pre_score(self, state: CycleState, pod: PodInfo, nodes: list[NodeInfo]) -> Status | None:
        if all(pod.requests.get(name) == 0 for name, _ in self.scorer.resources):
            return SKIP
        return None

    def score(self, state: CycleState, pod: PodInfo, node: NodeInfo) -> int:
        return self.scorer.score(pod, node)

    def score_all(self, state: CycleState, pod: PodInfo, nodes: list[NodeInfo]) -> list[int]:
        return self.scorer.score_all(pod, nodes)


def new(args: Mapping[str, Any], handle: Handle) -> BalancedAllocation:
    return BalancedAllocation(args)
