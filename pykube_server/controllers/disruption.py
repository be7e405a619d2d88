"""The disruption controller: PodDisruptionBudget status, which evictions are then judged by.

kube's `disruption-controller`, per budget: the pods its selector picks (a nil selector picks
none, an empty one all in the namespace); `expectedPods` and `desiredHealthy` from
`minAvailable` (an integer: the pod count and that number) or from `maxUnavailable` / a
percentage against the summed scale of the pods' controllers (a Deployment through its
ReplicaSet, a ReplicaSet, StatefulSet or ReplicationController; percentages round up);
`currentHealthy`, the Ready pods that are neither terminating nor recently evicted;
`disruptionsAllowed = max(currentHealthy - desiredHealthy, 0)`, the DisruptionAllowed condition
(SufficientPods / InsufficientPods), observedGeneration, and `disruptedPods`: the eviction
handler's record of pods it is deleting, kept for two minutes (DeletionTimeout) until the pod is
seen going. Pods without a controller under a percentage or maxUnavailable budget give an
UnmanagedPods warning; a pod whose controller cannot be found fails the budget safe
(disruptionsAllowed 0, reason SyncFailed).
"""

from __future__ import annotations

import math
from datetime import timedelta
from typing import Any

from pykube_server.api import errors
from pykube_server.api.selectors import SelectorError, format_label_selector, selector_from_object
from pykube_server.api.types import Obj
from pykube_server.client.rest import DEPLOYMENTS, PODS, REPLICASETS, STATEFULSETS, Resource
from pykube_server.controllers.framework import Context, Controller, Request, Result
from pykube_server.controllers.workload_common import controller_ref, is_ready, parse_time, rfc3339

PDBS = Resource("policy", "v1", "poddisruptionbudgets")
REPLICATIONCONTROLLERS = Resource("", "v1", "replicationcontrollers")
DELETION_TIMEOUT = timedelta(minutes=2)
UNMANAGED = ("Pods selected by this PodDisruptionBudget (selector: {selector}) were found to be unmanaged. As a result, "
             "the status of the PDB cannot be calculated correctly, which may result in undefined behavior. To account for "
             "these pods please set \".spec.minAvailable\" field of the PDB to an integer value.")
NO_SCALE = {("apps", "DaemonSet"): "daemonsets.apps", ("batch", "Job"): "jobs.batch"}


class ExpectedCountError(Exception):
    """The budget's denominator cannot be known (kube fails such a budget safe)."""


def scaled(value: Any, total: int) -> int:
    """`GetScaledValueFromIntOrPercent` rounding up."""
    if isinstance(value, str) and value.endswith("%"):
        return math.ceil(int(value[:-1]) * total / 100)
    return int(value)


def set_allowed_condition(status: Obj, now: str) -> None:
    allowed = int(status.get("disruptionsAllowed") or 0) > 0
    new = {"type": "DisruptionAllowed", "status": "True" if allowed else "False",
           "reason": "SufficientPods" if allowed else "InsufficientPods", "message": "",
           "observedGeneration": status.get("observedGeneration", 0), "lastTransitionTime": now}
    _put_condition(status, new)


def _put_condition(status: Obj, new: Obj) -> None:
    """`meta.SetStatusCondition`: lastTransitionTime moves only when the status does."""
    conditions = status.setdefault("conditions", [])
    old = next((c for c in conditions if c.get("type") == new["type"]), None)
    if old is None:
        conditions.append(new)
        return
    if old.get("status") == new["status"]:
        new["lastTransitionTime"] = old.get("lastTransitionTime") or new["lastTransitionTime"]
    conditions[conditions.index(old)] = new


class DisruptionReconciler:
    def __init__(self, ctx: Context) -> None:
        self.client, self.clock, self.recorder = ctx.client, ctx.clock, ctx.recorder
        self.pdb_informer = ctx.informer(PDBS)
        self.pod_informer = ctx.informer(PODS)
        self.owner_informers = [ctx.informer(r) for r in (REPLICASETS, DEPLOYMENTS, STATEFULSETS, REPLICATIONCONTROLLERS)]
        self.pdbs = self.pdb_informer.lister
        self.pods = self.pod_informer.lister
        self.replicasets, self.deployments, self.statefulsets, self.rcs = (i.lister for i in self.owner_informers)

    @classmethod
    def create(cls, ctx: Context) -> Controller:
        reconciler = cls(ctx)
        controller = Controller("disruption-controller", reconciler, workers=2, clock=ctx.clock)
        controller.watches(reconciler.pdb_informer)
        controller.watches(reconciler.pod_informer, reconciler._budgets_of_pod)
        for informer in reconciler.owner_informers:
            controller.watches(informer, reconciler._budgets_in_namespace)
        return controller

    # --- mapping events to budgets ----------------------------------------------------------------

    def _budgets_in_namespace(self, obj: Obj) -> list[Request]:
        namespace = (obj.get("metadata") or {}).get("namespace", "")
        return [Request.of(pdb) for pdb in self.pdbs.list(namespace=namespace)]

    def _budgets_of_pod(self, pod: Obj) -> list[Request]:
        labels = (pod.get("metadata") or {}).get("labels") or {}
        return [Request.of(pdb) for pdb in self.pdbs.list(namespace=(pod.get("metadata") or {}).get("namespace", ""))
                if self._selector(pdb).matches(labels)]

    @staticmethod
    def _selector(pdb: Obj) -> Any:
        try:
            return selector_from_object((pdb.get("spec") or {}).get("selector"))
        except SelectorError:
            return selector_from_object(None)

    # --- reconcile ---------------------------------------------------------------------------------

    async def reconcile(self, request: Request) -> Result:
        for informer in (self.pdb_informer, self.pod_informer, *self.owner_informers):
            await informer.wait_synced()
        pdb = self.pdbs.get(request.name, namespace=request.namespace)
        if pdb is None or (pdb.get("metadata") or {}).get("deletionTimestamp"):
            return Result()
        selector = self._selector(pdb)
        pods = [p for p in self.pods.list(namespace=request.namespace) if selector.matches(p["metadata"].get("labels"))]
        if not pods:
            self.recorder.event(pdb, "Normal", "NoPods", "No matching pods found")
        try:
            expected, desired, unmanaged = self.expected_count(pdb, pods)
        except ExpectedCountError as exc:
            self.recorder.event(pdb, "Warning", "CalculateExpectedPodCountFailed",
                                f"Failed to calculate the number of expected pods: {exc}")
            await self._fail_safe(pdb, str(exc))
            return Result()
        if unmanaged:
            self.recorder.event(pdb, "Warning", "UnmanagedPods",
                                UNMANAGED.format(selector=format_label_selector((pdb.get("spec") or {}).get("selector"))))
        disrupted, recheck = self._disrupted(pdb, pods)
        healthy = sum(1 for p in pods if self._healthy(p, disrupted))
        status: Obj = {
            "disruptionsAllowed": max(healthy - desired, 0), "currentHealthy": healthy, "desiredHealthy": desired,
            "expectedPods": expected, "observedGeneration": int(pdb["metadata"].get("generation") or 0),
        }
        if disrupted:
            status["disruptedPods"] = disrupted
        status["conditions"] = [dict(c) for c in (pdb.get("status") or {}).get("conditions") or []]
        set_allowed_condition(status, rfc3339(self.clock.wall()))
        await self._write(pdb, status)
        return Result(requeue_after=recheck)

    def _healthy(self, pod: Obj, disrupted: dict[str, str]) -> bool:
        return not pod["metadata"].get("deletionTimestamp") and pod["metadata"]["name"] not in disrupted and is_ready(pod)

    def _disrupted(self, pdb: Obj, pods: list[Obj]) -> tuple[dict[str, str], float | None]:
        """`buildDisruptedPodMap`: evictions still expected to happen, and when to look again."""
        by_name = {p["metadata"]["name"]: p for p in pods}
        now = self.clock.wall()
        kept: dict[str, str] = {}
        recheck: float | None = None
        for name, when in ((pdb.get("status") or {}).get("disruptedPods") or {}).items():
            pod = by_name.get(name)
            started = parse_time(when)
            if pod is None or pod["metadata"].get("deletionTimestamp") or started is None:
                continue
            expires = started + DELETION_TIMEOUT
            if expires <= now:
                continue  # the eviction did not happen after all
            kept[name] = when
            left = (expires - now).total_seconds()
            recheck = left if recheck is None else min(recheck, left)
        return kept, recheck

    def expected_count(self, pdb: Obj, pods: list[Obj]) -> tuple[int, int, list[str]]:
        """(expectedPods, desiredHealthy, unmanaged pod names) as `getExpectedPodCount`."""
        spec = pdb.get("spec") or {}
        if spec.get("maxUnavailable") is not None:
            expected, unmanaged = self._expected_scale(pods)
            desired = max(expected - scaled(spec["maxUnavailable"], expected), 0)
            return expected, desired, unmanaged
        minimum = spec.get("minAvailable")
        if minimum is None:
            return len(pods), 0, []
        if isinstance(minimum, int) or (isinstance(minimum, str) and not minimum.endswith("%")):
            return len(pods), int(minimum), []
        expected, unmanaged = self._expected_scale(pods)
        return expected, scaled(minimum, expected), unmanaged

    def _expected_scale(self, pods: list[Obj]) -> tuple[int, list[str]]:
        scales: dict[str, int] = {}
        unmanaged: list[str] = []
        for pod in pods:
            ref = controller_ref(pod)
            if ref is None:
                unmanaged.append(pod["metadata"]["name"])
                continue
            found = self._controller_scale(ref, pod["metadata"].get("namespace", ""))
            if found is None:
                raise ExpectedCountError(f'found no controllers for pod "{pod["metadata"]["name"]}"')
            scales[found[0]] = found[1]
        return sum(scales.values()), unmanaged

    def _controller_scale(self, ref: Obj, namespace: str) -> tuple[str, int] | None:
        """(uid, replicas) of the controller owning the pod (a Deployment for its ReplicaSets)."""
        group = ref.get("apiVersion", "").rpartition("/")[0]
        kind, name, uid = ref.get("kind"), ref.get("name", ""), ref.get("uid")
        if (group, kind) in NO_SCALE:
            raise ExpectedCountError(f"{NO_SCALE[(group, kind)]} does not implement the scale subresource")
        lister = {("", "ReplicationController"): self.rcs, ("apps", "ReplicaSet"): self.replicasets,
                  ("apps", "StatefulSet"): self.statefulsets}.get((group, kind))
        if lister is None:
            return None
        owner = lister.get(name, namespace=namespace)
        if owner is None or owner["metadata"].get("uid") != uid:
            return None
        if kind == "ReplicaSet":
            parent = controller_ref(owner)
            if parent is not None and parent.get("kind") == "Deployment":
                deployment = self.deployments.get(parent.get("name", ""), namespace=namespace)
                if deployment is None or deployment["metadata"].get("uid") != parent.get("uid"):
                    return None
                return deployment["metadata"]["uid"], int((deployment.get("spec") or {}).get("replicas", 1))
        return owner["metadata"]["uid"], int((owner.get("spec") or {}).get("replicas", 1))

    async def _fail_safe(self, pdb: Obj, message: str) -> None:
        status = dict(pdb.get("status") or {})
        status["disruptionsAllowed"] = 0
        status["observedGeneration"] = int(pdb["metadata"].get("generation") or 0)
        status.setdefault("currentHealthy", 0)
        status.setdefault("desiredHealthy", 0)
        status.setdefault("expectedPods", 0)
        status["conditions"] = [dict(c) for c in status.get("conditions") or []]
        _put_condition(status, {"type": "DisruptionAllowed", "status": "False", "reason": "SyncFailed", "message": message,
                                "observedGeneration": status["observedGeneration"], "lastTransitionTime": rfc3339(self.clock.wall())})
        await self._write(pdb, status)

    async def _write(self, pdb: Obj, status: Obj) -> None:
        if status == (pdb.get("status") or {}):
            return
        try:
            await self.client.update(PDBS, {**pdb, "status": status}, subresource="status")
        except errors.NotFound:
            pass


def create(ctx: Context) -> Controller:
    return DisruptionReconciler.create(ctx)

