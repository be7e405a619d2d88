"""DefaultPreemption: when a pod fits nowhere, evict the fewest lower-priority pods on one node.

For every node where eviction might help (its rejection was not UnschedulableAndUnresolvable),
all lower-priority pods are removed from a copy of the node; if the pod then passes the
filters, victims are reprieved one by one, most important first, while the pod still fits.
Among the candidates the node is chosen whose most important victim has the lowest priority,
then the lowest sum of victim priorities, then the fewest victims. Victims are deleted through
the API (with a `Preempted` event) and the pod's `status.nominatedNodeName` is set; it is
scheduled once the victims are gone. Before its deletion each victim gets the pod condition
`DisruptionTarget` (reason `PreemptionByScheduler`) through pods/status, as kube-scheduler
does, so that its owners (a Job's podFailurePolicy, for one) can tell why it went away.

PodDisruptionBudgets are respected where possible, as kube's selectVictimsOnNode does: victims
whose eviction would exceed a budget's `disruptionsAllowed` (counting the victims already picked
on that node) are tried first for reprieve, and among candidate nodes the one with the fewest
such violations wins before any priority comparison.

When nothing can be done, the returned message explains why per node, in kube's words
("preemption: 0/3 nodes are available: 3 Preemption is not helpful for scheduling."), and the
scheduler appends it to the FailedScheduling message. Resources of nominated pods are not
reserved for them.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime

from pykube_server.api import errors
from pykube_server.api.selectors import selector_from_object
from pykube_server.api.types import Obj
from pykube_server.client.events import NORMAL, EventRecorder
from pykube_server.client.rest import PODS, Client, PatchType, TransportError
from pykube_server.scheduler.cache import Cache
from pykube_server.scheduler.framework import (
    Code,
    CycleState,
    Diagnosis,
    NodeInfo,
    PodInfo,
    Status,
    fit_error_message,
    unschedulable,
)
from pykube_server.scheduler.queue import priority_of
from pykube_server.scheduler.runtime import Framework

log = logging.getLogger(__name__)

NOT_HELPFUL = "Preemption is not helpful for scheduling"
NO_VICTIMS = "No preemption victims found for incoming pod"
NEVER = "not eligible due to preemptionPolicy=Never."
TERMINATING = "not eligible due to a terminating pod on the nominated node."
DISRUPTION_TARGET = "DisruptionTarget"
PREEMPTION_BY_SCHEDULER = "PreemptionByScheduler"


@dataclass
class Candidate:
    node: str
    victims: list[PodInfo]
    pdb_violations: int = 0

    def rank(self) -> tuple[int, int, int, int]:
        priorities = [priority_of(v.pod) for v in self.victims]
        return (self.pdb_violations, max(priorities, default=-(2**31)), sum(priorities), len(priorities))


def split_by_budget(pods: list[PodInfo], budgets: list[Obj]) -> tuple[list[PodInfo], list[PodInfo]]:
    """(pods whose eviction would violate a budget, the others), in the given order: each pod
    uses up one of `disruptionsAllowed` of every budget that selects it (kube's
    filterPodsWithPDBViolation; pods a budget already counts as disrupted are skipped)."""
    allowed = [int((b.get("status") or {}).get("disruptionsAllowed") or 0) for b in budgets]
    selectors = [selector_from_object((b.get("spec") or {}).get("selector")) if (b.get("spec") or {}).get("selector")
                 else None for b in budgets]
    violating, fine = [], []
    for info in pods:
        meta = info.pod.get("metadata") or {}
        labels, ns, name = meta.get("labels") or {}, meta.get("namespace", ""), meta.get("name", "")
        violates = False
        for i, budget in enumerate(budgets):
            bmeta = budget.get("metadata") or {}
            if bmeta.get("namespace") != ns or selectors[i] is None or not labels or not selectors[i].matches(labels):
                continue
            if name in ((budget.get("status") or {}).get("disruptedPods") or {}):
                continue
            allowed[i] -= 1
            if allowed[i] < 0:
                violates = True
        (violating if violates else fine).append(info)
    return violating, fine


def _start_time(info: PodInfo) -> str:
    return str((info.pod.get("status") or {}).get("startTime") or (info.pod.get("metadata") or {}).get("creationTimestamp") or "")


def _copy_without(node: NodeInfo, removed: set[str]) -> NodeInfo:
    copy = NodeInfo.of(node.node)
    for key, info in node.pods.items():
        if key not in removed:
            copy.add_pod(info)
    return copy


class Preemptor:
    def __init__(self, client: Client, recorder: EventRecorder, cache: Cache,
                 budgets: Callable[[], list[Obj]] = lambda: []) -> None:
        self._client = client
        self._recorder = recorder
        self._cache = cache
        self._budgets = budgets
        """The PodDisruptionBudgets (from the scheduler's informer)."""

    def eligible(self, pod: PodInfo) -> str:
        """"" when the pod may preempt, else kube's reason."""
        spec, status = pod.pod.get("spec") or {}, pod.pod.get("status") or {}
        if spec.get("preemptionPolicy") == "Never":
            return NEVER
        nominated = self._cache.node(status.get("nominatedNodeName") or "")
        if nominated is not None and any(
                (p.pod.get("metadata") or {}).get("deletionTimestamp") and priority_of(p.pod) < priority_of(pod.pod)
                for p in nominated.pods.values()):
            return TERMINATING
        return ""

    def select_victims(self, fwk: Framework, pod: PodInfo, node: NodeInfo,
                       nodes: list[NodeInfo]) -> tuple[list[PodInfo], Status | None, int]:
        """The fewest victims on `node` that make room (with how many of them violate a
        budget), or the status saying why none do."""
        priority = priority_of(pod.pod)
        lower = [p for p in node.pods.values() if priority_of(p.pod) < priority]
        if not lower:
            return [], unschedulable(NO_VICTIMS, unresolvable=True), 0
        trial = _copy_without(node, {p.key for p in lower})
        state = CycleState()
        fwk.run_pre_filters(state, pod, [trial if n.name == node.name else n for n in nodes])
        status = fwk.run_filters(state, pod, trial)
        if status is not None:
            return [], status, 0
        ordered = sorted(lower, key=lambda p: (-priority_of(p.pod), _start_time(p)))
        violating, fine = split_by_budget(ordered, self._budgets())
        victims, violations = [], 0
        for group, counts in ((violating, True), (fine, False)):  # reprieve budget-protected pods first
            for candidate in group:
                trial.add_pod(candidate)
                if fwk.run_filters(state, pod, trial) is not None:
                    trial.remove_pod(candidate.key)
                    victims.append(candidate)
                    violations += counts
        return victims, None, violations

    async def preempt(self, fwk: Framework, pod: PodInfo, nodes: list[NodeInfo],
                      diagnosis: Diagnosis) -> tuple[str, str]:
        """(nominated node, post-filter message); the message is "" when preemption started."""
        reason = self.eligible(pod)
        if reason:
            return "", f"preemption: {reason}"
        statuses: dict[str, Status] = {}
        candidates = []
        for node in nodes:
            status = diagnosis.node_statuses.get(node.name)
            if status is None or status.code is Code.UNSCHEDULABLE_AND_UNRESOLVABLE:
                statuses[node.name] = unschedulable(NOT_HELPFUL, unresolvable=True)
                continue
            victims, status, violations = self.select_victims(fwk, pod, node, nodes)
            if status is not None:
                statuses[node.name] = status
            else:
                candidates.append(Candidate(node.name, victims, violations))
        if not candidates:
            return "", "preemption: " + fit_error_message(len(nodes), Diagnosis(node_statuses=statuses))
        best = min(candidates, key=Candidate.rank)
        for victim in best.victims:
            await self._evict(victim, pod, best.node)
        return best.node, ""

    async def _mark_disrupted(self, victim: PodInfo, preemptor: PodInfo) -> None:
        """Patch `DisruptionTarget` into the victim's status (kube's prepareCandidate does this
        before deleting it); a victim that is already gone needs no mark."""
        meta = victim.pod.get("metadata") or {}
        scheduler = (preemptor.pod.get("spec") or {}).get("schedulerName") or "default-scheduler"
        now = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
        condition = {"type": DISRUPTION_TARGET, "status": "True", "lastProbeTime": None, "lastTransitionTime": now,
                     "reason": PREEMPTION_BY_SCHEDULER,
                     "message": f"{scheduler}: preempting to accommodate a higher priority pod"}
        patch = {"metadata": {"uid": meta.get("uid", "")}, "status": {"conditions": [condition]}}
        await self._client.patch(PODS, meta.get("name", ""), patch, namespace=meta.get("namespace", ""),
                                 patch_type=PatchType.STRATEGIC, subresource="status")

    async def _evict(self, victim: PodInfo, preemptor: PodInfo, node: str) -> None:
        meta = victim.pod.get("metadata") or {}
        try:
            await self._mark_disrupted(victim, preemptor)
            await self._client.delete(PODS, meta.get("name", ""), namespace=meta.get("namespace", ""),
                                      preconditions={"uid": meta.get("uid", "")})
        except errors.NotFound:
            return
        except (errors.StatusError, TransportError) as exc:
            log.warning("preempting %s failed: %s", victim.key, exc)
            return
        uid = (preemptor.pod.get("metadata") or {}).get("uid", "")
        self._recorder.event(victim.pod, NORMAL, "Preempted", f"Preempted by pod {uid} on node {node}",
                             action="Preempting", related=preemptor.pod)
        log.info("preempted %s on %s for %s", victim.key, node, preemptor.key)
