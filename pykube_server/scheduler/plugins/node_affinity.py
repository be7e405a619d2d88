"""NodeAffinity: `nodeSelector` and required node affinity filter; preferred terms score.

Required terms are ORed, the expressions and fields inside one term ANDed, and a term with
neither matches nothing (as kube's nodeSelectorTerm does). Operators: In, NotIn, Exists,
DoesNotExist, Gt, Lt (integers); matchFields supports `metadata.name`. A preferred term adds
its weight when it matches; sums are normalised so the best node scores 100.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, ClassVar

from pykube_server.api.types import Obj
from pykube_server.scheduler.framework import (
    SKIP,
    CycleState,
    Handle,
    NodeInfo,
    PodInfo,
    Status,
    default_normalize,
    unschedulable,
)

REASON = "node(s) didn't match Pod's node affinity/selector"


def _int(text: str) -> int | None:
    try:
        return int(text)
    except (TypeError, ValueError):
        return None


def requirement_matches(expr: Obj, values: Mapping[str, str]) -> bool:
    key, op, wanted = expr.get("key", ""), expr.get("operator", ""), expr.get("values") or []
    present = key in values
    if op == "In":
        return present and values[key] in wanted
    if op == "NotIn":
        return not present or values[key] not in wanted
    if op == "Exists":
        return present
    if op == "DoesNotExist":
        return not present
    if op in ("Gt", "Lt") and present and len(wanted) == 1:
        have, bound = _int(values[key]), _int(wanted[0])
        if have is None or bound is None:
            return False
        return have > bound if op == "Gt" else have < bound
    return False


def term_matches(term: Obj, node: NodeInfo) -> bool:
    exprs, fields = term.get("matchExpressions") or [], term.get("matchFields") or []
    if not exprs and not fields:
        return False
    node_fields = {"metadata.name": node.name}
    return (all(requirement_matches(e, node.labels) for e in exprs)
            and all(requirement_matches(f, node_fields) for f in fields))


def _affinity(pod: Obj) -> Obj:
    return ((pod.get("spec") or {}).get("affinity") or {}).get("nodeAffinity") or {}


def fits(pod: Obj, node: NodeInfo) -> bool:
    selector = (pod.get("spec") or {}).get("nodeSelector") or {}
    if any(node.labels.get(k) != v for k, v in selector.items()):
        return False
    required = _affinity(pod).get("requiredDuringSchedulingIgnoredDuringExecution")
    if required is None:
        return True
    return any(term_matches(t, node) for t in required.get("nodeSelectorTerms") or [])


def preferred_score(pod: Obj, node: NodeInfo) -> int:
    terms = _affinity(pod).get("preferredDuringSchedulingIgnoredDuringExecution") or []
    return sum(int(t.get("weight") or 0) for t in terms if term_matches(t.get("preference") or {}, node))


def has_required(pod: Obj) -> bool:
    """A nodeSelector or required node affinity: something for the filter to check."""
    return bool((pod.get("spec") or {}).get("nodeSelector")) \
        or _affinity(pod).get("requiredDuringSchedulingIgnoredDuringExecution") is not None


class NodeAffinity:
    name: ClassVar[str] = "NodeAffinity"

    def pre_filter(self, state: CycleState, pod: PodInfo, nodes: list[NodeInfo]) -> Status | None:
        """kube's NodeAffinity PreFilter: Skip when the pod has no selector and no required terms."""
        return None if has_required(pod.pod) else SKIP

    def pre_score(self, state: CycleState, pod: PodInfo, nodes: list[NodeInfo]) -> Status | None:
        """Skip when there are no preferred terms (every node would score 0)."""
        return None if _affinity(pod.pod).get("preferredDuringSchedulingIgnoredDuringExecution") else SKIP

    def filter(self, state: CycleState, pod: PodInfo, node: NodeInfo) -> Status | None:
        return None if fits(pod.pod, node) else unschedulable(REASON, unresolvable=True)

    def score(self, state: CycleState, pod: PodInfo, node: NodeInfo) -> int:
        return preferred_score(pod.pod, node)

    def normalize(self, state: CycleState, pod: PodInfo, scores: dict[str, int]) -> None:
        default_normalize(scores)


def new(args: Mapping[str, Any], handle: Handle) -> NodeAffinity:
    return NodeAffinity()
