"""NodeUnschedulable: a cordoned node (`spec.unschedulable`) takes only pods that tolerate
the `node.kubernetes.io/unschedulable:NoSchedule` taint (as DaemonSet pods do)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, ClassVar

from pykube_server.scheduler.framework import CycleState, Handle, NodeInfo, PodInfo, Status, unschedulable
from pykube_server.scheduler.plugins.taint_toleration import tolerates

REASON = "node(s) were unschedulable"
TAINT = {"key": "node.kubernetes.io/unschedulable", "effect": "NoSchedule"}


def fits(pod: PodInfo, node: NodeInfo) -> bool:
    if not node.unschedulable:
        return True
    return any(tolerates(t, TAINT) for t in (pod.pod.get("spec") or {}).get("tolerations") or [])


class NodeUnschedulable:
    name: ClassVar[str] = "NodeUnschedulable"

    def filter(self, state: CycleState, pod: PodInfo, node: NodeInfo) -> Status | None:
        return None if fits(pod, node) else unschedulable(REASON, unresolvable=True)


def new(args: Mapping[str, Any], handle: Handle) -> NodeUnschedulable:
    return NodeUnschedulable()
