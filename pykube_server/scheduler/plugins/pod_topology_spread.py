"""PodTopologySpread: `topologySpreadConstraints` with DoNotSchedule filter, ScheduleAnyway score.

Matching pods are counted per topology domain over the nodes that qualify (they carry every
constraint's topology key and, with the default `nodeAffinityPolicy: Honor`, match the pod's
node selector and required node affinity). A node fails when placing the pod there would make
its domain exceed the least-populated domain by more than `maxSkew` (with `minDomains`, the
minimum is 0 while there are fewer domains). The score favours emptier domains, each
constraint weighted by log(number of domains + 2), normalised so fewer matches score higher.
Cluster-level default constraints are not applied.

A pod without DoNotSchedule constraints Skips the filter (and without ScheduleAnyway ones the
score), as in kube. The matching pods of a node are counted once per node change: the count is
kept on the NodeInfo (`memo`, cleared whenever its pods change), so a cycle costs one lookup per
node instead of a selector match per placed pod.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, replace
from typing import Any, ClassVar

from pykube_server.api.selectors import LabelSelector
from pykube_server.api.types import Obj
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
from pykube_server.scheduler.plugins import node_affinity, taint_toleration
from pykube_server.scheduler.terms import labels_of, new_term

REASON = "node(s) didn't match pod topology spread constraints"
MISSING_LABEL_REASON = "node(s) didn't match pod topology spread constraints (missing required label)"
_MISSING_LABEL = replace(unschedulable(MISSING_LABEL_REASON, unresolvable=True), plugin="PodTopologySpread")
_SKEWED = replace(unschedulable(REASON), plugin="PodTopologySpread")


@dataclass(frozen=True)
class Constraint:
    max_skew: int
    topology_key: str
    selector: LabelSelector
    min_domains: int
    honor_affinity: bool
    honor_taints: bool


def constraints(pod: Obj, mode: str) -> list[Constraint]:
    out = []
    for c in (pod.get("spec") or {}).get("topologySpreadConstraints") or []:
        if c.get("whenUnsatisfiable", "DoNotSchedule") != mode:
            continue
        term = new_term({"labelSelector": c.get("labelSelector"), "matchLabelKeys": c.get("matchLabelKeys")}, pod)
        out.append(Constraint(int(c.get("maxSkew") or 1), c.get("topologyKey", ""), term.selector,
                              int(c.get("minDomains") or 1), c.get("nodeAffinityPolicy", "Honor") == "Honor",
                              c.get("nodeTaintsPolicy", "Ignore") == "Honor"))
    return out


def _count(node: NodeInfo, c: Constraint, namespace: str, memo_key: str) -> int:
    count = node.memo.get(memo_key)
    if count is None:
        count = node.memo[memo_key] = sum(
            1 for p in node.pods.values()
            if (p.pod.get("metadata") or {}).get("namespace") == namespace
            and not (p.pod.get("metadata") or {}).get("deletionTimestamp")
            and c.selector.matches(labels_of(p.pod)))
    return count


def _qualifies(pod: PodInfo, node: NodeInfo, cs: list[Constraint], c: Constraint, affinity: bool) -> bool:
    labels = node.labels
    for x in cs:
        if x.topology_key not in labels:
            return False
    if affinity and c.honor_affinity and not node_affinity.fits(pod.pod, node):
        return False
    if not c.honor_taints or not node.taints:
        return True
    tolerations = (pod.pod.get("spec") or {}).get("tolerations") or []
    return not taint_toleration.untolerated(node.taints, tolerations, ("NoSchedule", "NoExecute"))


def domain_counts(pod: PodInfo, nodes: list[NodeInfo], cs: list[Constraint]) -> list[dict[str, int]]:
    namespace = (pod.pod.get("metadata") or {}).get("namespace", "")
    affinity = node_affinity.has_required(pod.pod)
    out: list[dict[str, int]] = []
    for c in cs:
        counts: dict[str, int] = {}
        key = c.topology_key
        # a string key (hashed once) rather than the selector itself, hashed per node
        memo_key = f"PodTopologySpread\x00{namespace}\x00{c.selector.to_string()}\x00{c.selector.nothing}"
        simple = not affinity and not c.honor_taints and len(cs) == 1
        for node in nodes:
            if simple:
                value = node.labels.get(key)
                if value is None:
                    continue
            elif _qualifies(pod, node, cs, c, affinity):
                value = node.labels[key]
            else:
                continue
            count = node.memo.get(memo_key)
            if count is None:
                count = _count(node, c, namespace, memo_key)
            counts[value] = counts.get(value, 0) + count
        out.append(counts)
    return out


class PodTopologySpread:
    name: ClassVar[str] = "PodTopologySpread"

    def pre_filter(self, state: CycleState, pod: PodInfo, nodes: list[NodeInfo]) -> Status | None:
        cs = constraints(pod.pod, "DoNotSchedule")
        if not cs:
            state.pop(self.name, None)
            return SKIP
        labels = labels_of(pod.pod)
        checks = []
        for c, domains in zip(cs, domain_counts(pod, nodes, cs)):
            minimum = min(domains.values(), default=0) if len(domains) >= c.min_domains else 0
            self_match = 1 if c.selector.matches(labels) else 0
            checks.append((c.topology_key, domains, self_match - minimum, c.max_skew))
        state[self.name] = checks
        return None

    def filter(self, state: CycleState, pod: PodInfo, node: NodeInfo) -> Status | None:
        for key, domains, offset, max_skew in state.get(self.name, ()):
            value = node.labels.get(key)
            if value is None:
                return _MISSING_LABEL
            if domains.get(value, 0) + offset > max_skew:
                return _SKEWED
        return None

    def pre_score(self, state: CycleState, pod: PodInfo, nodes: list[NodeInfo]) -> Status | None:
        cs = constraints(pod.pod, "ScheduleAnyway")
        if not cs:
            return SKIP
        counts = domain_counts(pod, nodes, cs)
        weights = [math.log(len(d) + 2) for d in counts]
        state[self.name + "/score"] = (cs, counts, weights)
        return None

    def score(self, state: CycleState, pod: PodInfo, node: NodeInfo) -> int:
        cs, counts, weights = state[self.name + "/score"]
        total = 0.0
        for c, domains, weight in zip(cs, counts, weights):
            value = node.labels.get(c.topology_key)
            if value is not None:
                total += domains.get(value, 0) * weight + (c.max_skew - 1)
        return round(total)

    def normalize(self, state: CycleState, pod: PodInfo, scores: dict[str, int]) -> None:
        low, high = min(scores.values(), default=0), max(scores.values(), default=0)
        for name, value in scores.items():
            scores[name] = MAX_NODE_SCORE if high == 0 else MAX_NODE_SCORE * (high + low - value) // high


def new(args: Mapping[str, Any], handle: Handle) -> PodTopologySpread:
    return PodTopologySpread()
