"""NodeResourcesFit: the pod's requests must fit what the node has left (cpu, memory,
ephemeral-storage, extended resources, and the pod count); the score follows the configured
strategy (LeastAllocated by default, MostAllocated, RequestedToCapacityRatio).

Every shortage is reported ("Insufficient cpu", "Too many pods"), as kube does; when the
request exceeds the node's whole allocatable, evicting pods cannot help, so the status is
UnschedulableAndUnresolvable and preemption skips the node.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, ClassVar

from pykube_server.scheduler.framework import CycleState, Handle, NodeInfo, PodInfo, Status, unschedulable
from pykube_server.scheduler.plugins.resource_allocation import (
    LEAST_ALLOCATED,
    MOST_ALLOCATED,
    ResourceAllocationScorer,
    parse_resources,
    requested_to_capacity_ratio,
)
from pykube_server.scheduler.resource import CPU, EPHEMERAL_STORAGE, MEMORY, PODS

TOO_MANY_PODS = "Too many pods"


@dataclass(frozen=True, slots=True)
class Shortage:
    resource: str
    reason: str
    unresolvable: bool


def _ignored(name: str, ignored: frozenset[str], groups: frozenset[str]) -> bool:
    return name in ignored or ("/" in name and name.split("/", 1)[0] in groups)


def shortages(pod: PodInfo, node: NodeInfo, *, ignored: frozenset[str] = frozenset(),
              ignored_groups: frozenset[str] = frozenset()) -> list[Shortage]:
    """fitsRequest: what the node lacks for `pod`, in kube's order (pods, cpu, memory,
    ephemeral-storage, then extended resources by name)."""
    out = []
    allowed = node.allocatable.get(PODS)
    if len(node.pods) + 1 > allowed:
        out.append(Shortage(PODS, TOO_MANY_PODS, False))
    names = [CPU, MEMORY, EPHEMERAL_STORAGE]
    names += sorted(n for n in pod.requests.values if n not in (CPU, MEMORY, EPHEMERAL_STORAGE, PODS)
                    and not _ignored(n, ignored, ignored_groups))
    for name in names:
        want = pod.requests.get(name)
        if want <= 0:
            continue
        alloc = node.allocatable.get(name)
        if want > alloc - node.requested.get(name):
            out.append(Shortage(name, f"Insufficient {name}", want > alloc))
    return out


def _scorer(args: Mapping[str, Any]) -> ResourceAllocationScorer:
    strategy = args.get("scoringStrategy") or {}
    kind = strategy.get("type") or "LeastAllocated"
    resources = parse_resources(strategy.get("resources"))
    if kind == "MostAllocated":
        return ResourceAllocationScorer(MOST_ALLOCATED, resources)
    if kind == "RequestedToCapacityRatio":
        shape = (strategy.get("requestedToCapacityRatio") or {}).get("shape") or []
        return ResourceAllocationScorer(requested_to_capacity_ratio(shape), resources)
    if kind != "LeastAllocated":
        raise ValueError(f"scoringStrategy.type: Unsupported value: {kind!r}")
    return ResourceAllocationScorer(LEAST_ALLOCATED, resources)


class NodeResourcesFit:
    name: ClassVar[str] = "NodeResourcesFit"

    def __init__(self, args: Mapping[str, Any]) -> None:
        self.ignored = frozenset(args.get("ignoredResources") or ())
        self.ignored_groups = frozenset(args.get("ignoredResourceGroups") or ())
        self.scorer = _scorer(args)

    def pre_filter(self, state: CycleState, pod: PodInfo, nodes: list[NodeInfo]) -> Status | None:
        """The pod's cpu, memory and ephemeral-storage requests as plain ints, read once per
        cycle, and whether it asks for any other resource (those take the general path)."""
        req = pod.requests
        state[self.name] = (req.get(CPU), req.get(MEMORY), req.get(EPHEMERAL_STORAGE),
                            any(n not in (CPU, MEMORY, EPHEMERAL_STORAGE, PODS) for n in req.values))
        return None

    def filter(self, state: CycleState, pod: PodInfo, node: NodeInfo) -> Status | None:
        wants = state.get(self.name)
        if wants is not None:
            cpu, memory, storage, others = wants
            if not others and len(node.pods) < node.alloc_pods \
                    and (cpu <= 0 or cpu <= node.alloc_cpu - node.req_cpu) \
                    and (memory <= 0 or memory <= node.alloc_memory - node.req_memory) \
                    and (storage <= 0 or storage <= node.alloc_storage - node.req_storage):
                return None
        found = shortages(pod, node, ignored=self.ignored, ignored_groups=self.ignored_groups)
        if not found:
            return None
        return unschedulable(*(s.reason for s in found), unresolvable=any(s.unresolvable for s in found))

    def score(self, state: CycleState, pod: PodInfo, node: NodeInfo) -> int:
        return self.scorer.score(pod, node)

    def score_all(self, state: CycleState, pod: PodInfo, nodes: list[NodeInfo]) -> list[int]:
        return self.scorer.score_all(pod, nodes)


def new(args: Mapping[str, Any], handle: Handle) -> NodeResourcesFit:
    return NodeResourcesFit(args)
