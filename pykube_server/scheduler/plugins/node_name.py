"""NodeName: a pod that names its node (`spec.nodeName`) fits only that node."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, ClassVar

from pykube_server.scheduler.framework import SKIP, CycleState, Handle, NodeInfo, PodInfo, Status, unschedulable

REASON = "node(s) didn't match the requested node name"


def fits(pod: PodInfo, node: NodeInfo) -> bool:
    wanted = (pod.pod.get("spec") or {}).get("nodeName")
    return not wanted or wanted == node.name


class NodeName:
    name: ClassVar[str] = "NodeName"

    def pre_filter(self, state: CycleState, pod: PodInfo, nodes: list[NodeInfo]) -> Status | None:
        """Nothing to check for a pod that names no node: Skip the filter."""
        return None if (pod.pod.get("spec") or {}).get("nodeName") else SKIP

    def filter(self, state: CycleState, pod: PodInfo, node: NodeInfo) -> Status | None:
        return None if fits(pod, node) else unschedulable(REASON, unresolvable=True)


def new(args: Mapping[str, Any], handle: Handle) -> NodeName:
    return NodeName()
