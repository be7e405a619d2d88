"""The pod garbage collector: removes pods nothing else will ever clean up.

kube's `pod-garbage-collector-controller`, every `pod_gc_period_seconds` (20 s):
- terminated pods (Succeeded/Failed) beyond `terminated_pod_gc_threshold` (12500, kube's
  --terminated-pod-gc-threshold; 0 disables) are deleted, evicted ones first, then oldest first;
- pods bound to a node that no longer exists are failed and force-deleted, once the node has
  been missing for the quarantine (`pod_gc_quarantine_seconds`, 40 s) and a fresh GET confirms
  it is gone (they get the DisruptionTarget condition DeletionByPodGC, "PodGC: node no longer
  exists");
- terminating pods that were never scheduled, and terminating pods on a NotReady node with the
  `node.kubernetes.io/out-of-service` taint, are force-deleted.
A forced delete first marks a pod that had not finished as Failed, then deletes it with grace 0.
"""

from __future__ import annotations

import logging

from pykube_server.api import errors
from pykube_server.api.types import Obj
from pykube_server.client.rest import NODES, PODS, PatchType
from pykube_server.controllers.framework import Context, Controller, Request, Result
from pykube_server.controllers.workload_common import condition_true, now_text

log = logging.getLogger(__name__)

GC_PERIOD_SECONDS = 20.0
QUARANTINE_SECONDS = 40.0
TERMINATED_THRESHOLD = 12500
OUT_OF_SERVICE_TAINT = "node.kubernetes.io/out-of-service"
TICK = Request("", "podgc")


def _terminal(pod: Obj) -> bool:
    return (pod.get("status") or {}).get("phase") in ("Succeeded", "Failed")


def _eviction_then_age(pod: Obj) -> tuple[int, str]:
    """kube's byEvictionAndCreationTimestamp: evicted pods go first, then the oldest."""
    evicted = (pod.get("status") or {}).get("phase") == "Failed" and (pod.get("status") or {}).get("reason") == "Evicted"
    return (0 if evicted else 1, (pod.get("metadata") or {}).get("creationTimestamp") or "")


class PodGCReconciler:
    def __init__(self, ctx: Context) -> None:
        self.client, self.clock = ctx.client, ctx.clock
        self.period = float(ctx.options.get("pod_gc_period_seconds", GC_PERIOD_SECONDS))
        self.quarantine = float(ctx.options.get("pod_gc_quarantine_seconds", QUARANTINE_SECONDS))
        self.threshold = int(ctx.options.get("terminated_pod_gc_threshold", TERMINATED_THRESHOLD))
        self.pod_informer, self.node_informer = ctx.informer(PODS), ctx.informer(NODES)
        self.missing_since: dict[str, float] = {}
        """Node name -> when its pods were first seen bound to it while it did not exist."""

    @classmethod
    def create(cls, ctx: Context) -> Controller:
        reconciler = cls(ctx)
        controller = Controller("pod-garbage-collector-controller", reconciler, workers=1, clock=ctx.clock)
        controller.watches(reconciler.pod_informer, lambda obj: ())
        controller.watches(reconciler.node_informer, lambda obj: ())
        controller.queue.add(TICK)
        return controller

    async def reconcile(self, request: Request) -> Result:
        pods = self.pod_informer.lister.list()
        nodes = {n["metadata"]["name"]: n for n in self.node_informer.lister.list()}
        await self.gc_terminated(pods)
        await self.gc_terminating_out_of_service(pods, nodes)
        await self.gc_orphaned(pods, nodes)
        await self.gc_unscheduled_terminating(pods)
        return Result(requeue_after=self.period)

    async def gc_terminated(self, pods: list[Obj]) -> None:
        if self.threshold <= 0:
            return
        terminated = [p for p in pods if _terminal(p) and not p["metadata"].get("deletionTimestamp")]
        excess = len(terminated) - self.threshold
        if excess <= 0:
            return
        for pod in sorted(terminated, key=_eviction_then_age)[:excess]:
            await self.force_delete(pod)

    async def gc_terminating_out_of_service(self, pods: list[Obj], nodes: dict[str, Obj]) -> None:
        for pod in pods:
            node = nodes.get((pod.get("spec") or {}).get("nodeName") or "")
            if node is None or not pod["metadata"].get("deletionTimestamp") or condition_true(node, "Ready"):
                continue
            if any(t.get("key") == OUT_OF_SERVICE_TAINT for t in (node.get("spec") or {}).get("taints") or []):
                await self.force_delete(pod)

    async def gc_orphaned(self, pods: list[Obj], nodes: dict[str, Obj]) -> None:
        now = self.clock.now()
        wanted = {(p.get("spec") or {}).get("nodeName") for p in pods} - {None, ""} - set(nodes)
        for name in list(self.missing_since):
            if name not in wanted:
                del self.missing_since[name]
        gone: set[str] = set()
        for name in wanted:
            since = self.missing_since.setdefault(name, now)
            if now - since < self.quarantine:
                continue
            try:
                await self.client.get(NODES, name)
            except errors.NotFound:
                gone.add(name)
        for pod in pods:
            if (pod.get("spec") or {}).get("nodeName") in gone:
                log.info("podgc: deleting orphaned pod %s/%s", pod["metadata"].get("namespace"), pod["metadata"]["name"])
                await self.force_delete(pod, reason="DeletionByPodGC", message="PodGC: node no longer exists")

    async def gc_unscheduled_terminating(self, pods: list[Obj]) -> None:
        for pod in pods:
            if pod["metadata"].get("deletionTimestamp") and not (pod.get("spec") or {}).get("nodeName"):
                await self.force_delete(pod)

    async def force_delete(self, pod: Obj, *, reason: str = "", message: str = "") -> None:
        """markFailedAndDeletePodWithCondition: fail a pod that had not finished, then delete it
        with grace 0."""
        meta = pod["metadata"]
        namespace, name = meta.get("namespace", ""), meta["name"]
        try:
            if not _terminal(pod):
                status: Obj = {"phase": "Failed"}
                if reason:
                    status["conditions"] = [{"type": "DisruptionTarget", "status": "True", "reason": reason,
                                             "message": message, "lastTransitionTime": now_text(self.clock)}]
                await self.client.patch(PODS, name, {"status": status}, namespace=namespace,
                                        patch_type=PatchType.STRATEGIC, subresource="status")
            await self.client.delete(PODS, name, namespace=namespace, grace_period_seconds=0,
                                     preconditions={"uid": meta["uid"]} if meta.get("uid") else None)
        except (errors.NotFound, errors.Conflict):
            pass


def create(ctx: Context) -> Controller:
    return PodGCReconciler.create(ctx)
