"""TaintToleration: NoSchedule/NoExecute taints a pod does not tolerate exclude the node;
untolerated PreferNoSchedule taints lower its score (fewer is better, normalised reversed)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, ClassVar

from pykube_server.api.types import Obj
from pykube_server.scheduler.framework import (
    CycleState,
    Handle,
    NodeInfo,
    PodInfo,
    Status,
    default_normalize,
    unschedulable,
)

REASON = "node(s) had untolerated taint {{{}: {}}}"
DO_NOT_SCHEDULE = ("NoSchedule", "NoExecute")


def tolerates(toleration: Obj, taint: Obj) -> bool:
    """v1.Toleration.ToleratesTaint."""
    if toleration.get("effect") and toleration["effect"] != taint.get("effect"):
        return False
    if toleration.get("key") and toleration["key"] != taint.get("key"):
        return False
    operator = toleration.get("operator") or "Equal"
    if operator == "Exists":
        return True
    return operator == "Equal" and (toleration.get("value") or "") == (taint.get("value") or "")


def untolerated(taints: list[Obj], tolerations: list[Obj], effects: tuple[str, ...]) -> Obj | None:
    """The first taint with one of `effects` that no toleration tolerates."""
    for taint in taints:
        if taint.get("effect") in effects and not any(tolerates(t, taint) for t in tolerations):
            return taint
    return None


def _tolerations(pod: PodInfo) -> list[Obj]:
    return (pod.pod.get("spec") or {}).get("tolerations") or []


class TaintToleration:
    name: ClassVar[str] = "TaintToleration"

    def filter(self, state: CycleState, pod: PodInfo, node: NodeInfo) -> Status | None:
        if not node.taints:
            return None
        taint = untolerated(node.taints, _tolerations(pod), DO_NOT_SCHEDULE)
        if taint is None:
            return None
        return unschedulable(REASON.format(taint.get("key", ""), taint.get("value", "")), unresolvable=True)

    def pre_score(self, state: CycleState, pod: PodInfo, nodes: list[NodeInfo]) -> Status | None:
        state[self.name] = [t for t in _tolerations(pod) if t.get("effect") in (None, "", "PreferNoSchedule")]
        return None

    def score(self, state: CycleState, pod: PodInfo, node: NodeInfo) -> int:
        if not node.taints:
            return 0
        tolerations = state.get(self.name, [])
        return sum(1 for taint in node.taints if taint.get("effect") == "PreferNoSchedule"
                   and not any(tolerates(t, taint) for t in tolerations))

    def score_all(self, state: CycleState, pod: PodInfo, nodes: list[NodeInfo]) -> list[int]:
        return [self.score(state, pod, n) if n.taints else 0 for n in nodes]

    def normalize(self, state: CycleState, pod: PodInfo, scores: dict[str, int]) -> None:
        default_normalize(scores, reverse=True)


def new(args: Mapping[str, Any], handle: Handle) -> TaintToleration:
    return TaintToleration()
