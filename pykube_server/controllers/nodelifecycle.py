"""Node health: the node lifecycle controller and the taint eviction controller.

`node-lifecycle-controller` (kube's, with taint-based evictions): every node is looked at each
`node_monitor_period_seconds` (5 s). A node whose kubelet neither renews its Lease in
`kube-node-lease` nor posts a new Ready heartbeat for `node_monitor_grace_period_seconds`
(kube 1.32+'s --node-monitor-grace-period default is 50 s) gets its Ready, MemoryPressure,
DiskPressure and PIDPressure conditions set to Unknown (reason NodeStatusUnknown, "Kubelet
stopped posting node status."); a node that never posted status is given NodeStatusNeverUpdated
after `node_startup_grace_period_seconds` (60 s). When Ready stops being True, a NodeNotReady
event is recorded and the node's pods get Ready=False. Taints follow the Ready condition:
`node.kubernetes.io/not-ready` (False) or `node.kubernetes.io/unreachable` (Unknown), each both
NoExecute and NoSchedule; pressure conditions give their NoSchedule taints, and a cordoned node
gets `node.kubernetes.io/unschedulable:NoSchedule` (the TaintNodesByCondition work kube does
here). Every taint the controller adds carries timeAdded.

`taint-eviction-controller`: a pod on a node with a NoExecute taint it does not tolerate is
deleted at once; one it tolerates with tolerationSeconds is deleted that long after this
controller first saw it under the taint (the DefaultTolerationSeconds admission plugin gives
every pod 300 s for not-ready and unreachable); a toleration without seconds keeps it forever.
An evicted pod gets the DisruptionTarget condition (DeletionByTaintManager) and a
TaintManagerEviction event before it is deleted.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

from pykube_server.api import errors
from pykube_server.api.types import Obj
from pykube_server.client.cache import NODE_NAME_INDEX, node_name_index
from pykube_server.client.rest import LEASES, NODES, PODS, PatchType
from pykube_server.controllers.framework import Context, Controller, Request, Result
from pykube_server.controllers.workload_common import find_condition, now_text

log = logging.getLogger(__name__)

MONITOR_PERIOD_SECONDS = 5.0
MONITOR_GRACE_SECONDS = 50.0
STARTUP_GRACE_SECONDS = 60.0
LEASE_NAMESPACE = "kube-node-lease"
NOT_READY = "node.kubernetes.io/not-ready"
UNREACHABLE = "node.kubernetes.io/unreachable"
UNSCHEDULABLE = "node.kubernetes.io/unschedulable"
# Condition (status that taints) -> NoSchedule taint key (nodeConditionToTaintKeyStatusMap).
CONDITION_TAINTS = {
    ("Ready", "False"): NOT_READY, ("Ready", "Unknown"): UNREACHABLE,
    ("MemoryPressure", "True"): "node.kubernetes.io/memory-pressure",
    ("DiskPressure", "True"): "node.kubernetes.io/disk-pressure",
    ("PIDPressure", "True"): "node.kubernetes.io/pid-pressure",
    ("NetworkUnavailable", "True"): "node.kubernetes.io/network-unavailable",
}
CONTROLLER_NO_SCHEDULE = set(CONDITION_TAINTS.values()) | {UNSCHEDULABLE}
UNKNOWN_CONDITIONS = ("Ready", "MemoryPressure", "DiskPressure", "PIDPressure")


@dataclass
class Health:
    """What the controller last saw of a node's heartbeats, and when (its own clock)."""

    heartbeat: str
    renew: str
    probe: float
    first_seen: float


def tolerates(toleration: Obj, taint: Obj) -> bool:
    """`Toleration.ToleratesTaint`."""
    if toleration.get("effect") and toleration["effect"] != taint.get("effect"):
        return False
    key = toleration.get("key") or ""
    if key and key != taint.get("key"):
        return False
    operator = toleration.get("operator") or "Equal"
    if operator == "Exists":
        return True
    if not key:
        return False
    return (toleration.get("value") or "") == (taint.get("value") or "")


class NodeLifecycleReconciler:
    def __init__(self, ctx: Context) -> None:
        self.client, self.clock, self.recorder = ctx.client, ctx.clock, ctx.recorder
        self.period = float(ctx.options.get("node_monitor_period_seconds", MONITOR_PERIOD_SECONDS))
        self.grace = float(ctx.options.get("node_monitor_grace_period_seconds", MONITOR_GRACE_SECONDS))
        self.startup_grace = float(ctx.options.get("node_startup_grace_period_seconds", STARTUP_GRACE_SECONDS))
        self.node_informer = ctx.informer(NODES)
        self.lease_informer = ctx.informer(LEASES, namespace=LEASE_NAMESPACE)
        self.pod_informer = ctx.informer(PODS, indexers={NODE_NAME_INDEX: node_name_index})
        self.health: dict[str, Health] = {}

    @classmethod
    def create(cls, ctx: Context) -> Controller:
        reconciler = cls(ctx)
        controller = Controller("node-lifecycle-controller", reconciler, workers=2, clock=ctx.clock)
        controller.watches(reconciler.node_informer)
        controller.watches(reconciler.lease_informer, lambda lease: (Request("", lease["metadata"]["name"]),))
        controller.watches(reconciler.pod_informer, lambda pod: ())
        return controller

    def _observe(self, node: Obj) -> Health:
        """kube's tryUpdateNodeHealth bookkeeping: the probe time moves when the kubelet's Ready
        heartbeat or its Lease renewTime changes."""
        name = node["metadata"]["name"]
        ready = find_condition((node.get("status") or {}).get("conditions") or [], "Ready") or {}
        lease = self.lease_informer.lister.get(name, namespace=LEASE_NAMESPACE)
        renew = str(((lease or {}).get("spec") or {}).get("renewTime") or "")
        heartbeat = str(ready.get("lastHeartbeatTime") or "")
        now = self.clock.now()
        seen = self.health.get(name)
        if seen is None:
            seen = self.health[name] = Health(heartbeat, renew, now, now)
        elif seen.heartbeat != heartbeat or seen.renew != renew:
            seen.heartbeat, seen.renew, seen.probe = heartbeat, renew, now
        return seen

    async def reconcile(self, request: Request) -> Result:
        node = self.node_informer.lister.get(request.name)
        if node is None:
            self.health.pop(request.name, None)
            return Result()
        seen = self._observe(node)
        now = self.clock.now()
        conditions = (node.get("status") or {}).get("conditions") or []
        observed = find_condition(conditions, "Ready")
        was_ready = observed is not None and observed.get("status") == "True"
        if observed is None:
            if now - seen.first_seen > self.startup_grace:
                node = await self._set_unknown(node, "NodeStatusNeverUpdated", "Kubelet never posted node status.")
        elif now - seen.probe > self.grace:
            node = await self._set_unknown(node, "NodeStatusUnknown", "Kubelet stopped posting node status.")
        ready = find_condition((node.get("status") or {}).get("conditions") or [], "Ready")
        if was_ready and ready is not None and ready.get("status") != "True":
            self.recorder.event(node, "Normal", "NodeNotReady", f"Node {request.name} status is now: NodeNotReady")
        if ready is not None and ready.get("status") != "True":
            await self._mark_pods_not_ready(request.name)
        await self._taint(node)
        return Result(requeue_after=self.period)

    async def _set_unknown(self, node: Obj, reason: str, message: str) -> Obj:
        """Conditions the kubelet can no longer vouch for become Unknown (nodes/status)."""
        status = dict(node.get("status") or {})
        conditions = [dict(c) for c in status.get("conditions") or []]
        stamp = now_text(self.clock)
        changed = False
        for kind in UNKNOWN_CONDITIONS:
            cond = find_condition(conditions, kind)
            if cond is None:
                conditions.append({"type": kind, "status": "Unknown", "reason": reason, "message": message,
                                   "lastHeartbeatTime": (node["metadata"].get("creationTimestamp")),
                                   "lastTransitionTime": stamp})
                changed = True
            elif cond.get("status") != "Unknown":
                cond.update(status="Unknown", reason=reason, message=message, lastTransitionTime=stamp)
                changed = True
        if not changed:
            return node
        status["conditions"] = conditions
        try:
            return await self.client.update(NODES, {**node, "status": status}, subresource="status")
        except errors.NotFound:
            return node

    async def _mark_pods_not_ready(self, node_name: str) -> None:
        for pod in self.pod_informer.lister.by_index(NODE_NAME_INDEX, node_name):
            ready = find_condition((pod.get("status") or {}).get("conditions") or [], "Ready")
            if ready is None or ready.get("status") == "False":
                continue
            conditions = [dict(c) for c in (pod.get("status") or {}).get("conditions") or []]
            cond = find_condition(conditions, "Ready")
            assert cond is not None
            cond.update(status="False", lastTransitionTime=now_text(self.clock))
            try:
                await self.client.update(PODS, {**pod, "status": {**pod["status"], "conditions": conditions}},
                                         subresource="status")
            except (errors.NotFound, errors.Conflict):
                continue
            self.recorder.event(pod, "Warning", "NodeNotReady", "Node is not ready")

    def _wanted_taints(self, node: Obj) -> list[Obj]:
        conditions = (node.get("status") or {}).get("conditions") or []
        wanted: list[Obj] = []
        ready = find_condition(conditions, "Ready")
        if ready is not None and ready.get("status") in ("False", "Unknown"):
            key = NOT_READY if ready["status"] == "False" else UNREACHABLE
            wanted.append({"key": key, "effect": "NoExecute"})
        for cond in conditions:
            key = CONDITION_TAINTS.get((cond.get("type"), cond.get("status")))
            if key:
                wanted.append({"key": key, "effect": "NoSchedule"})
        if (node.get("spec") or {}).get("unschedulable"):
            wanted.append({"key": UNSCHEDULABLE, "effect": "NoSchedule"})
        return wanted

    async def _taint(self, node: Obj) -> None:
        """Make the controller-owned taints match the conditions; leave everyone else's alone."""
        if self._taints_for(node) is None:
            return
        try:
            fresh = await self.client.get(NODES, node["metadata"]["name"])
        except errors.NotFound:
            return
        taints = self._taints_for(fresh)
        if taints is None:
            return
        spec = fresh.setdefault("spec", {})
        if taints:
            spec["taints"] = taints
        else:
            spec.pop("taints", None)
        try:
            await self.client.update(NODES, fresh)  # a Conflict re-queues the node
        except errors.NotFound:
            return

    def _taints_for(self, node: Obj) -> list[Obj] | None:
        """The node's new taint list, or None when the controller's taints are already right."""
        current = list((node.get("spec") or {}).get("taints") or [])
        wanted = self._wanted_taints(node)
        have = {(t.get("key"), t.get("effect")) for t in current if self._owned(t)}
        want = {(t["key"], t["effect"]) for t in wanted}
        if have == want:
            return None
        kept = [t for t in current if not self._owned(t) or (t.get("key"), t.get("effect")) in want]
        for taint in wanted:
            if (taint["key"], taint["effect"]) not in have:
                kept.append({**taint, "timeAdded": now_text(self.clock)})  # SwapNodeControllerTaint stamps every add
        return kept

    @staticmethod
    def _owned(taint: Obj) -> bool:
        if taint.get("effect") == "NoExecute":
            return taint.get("key") in (NOT_READY, UNREACHABLE)
        return taint.get("effect") == "NoSchedule" and taint.get("key") in CONTROLLER_NO_SCHEDULE


class TaintEvictionReconciler:
    def __init__(self, ctx: Context) -> None:
        self.client, self.clock, self.recorder = ctx.client, ctx.clock, ctx.recorder
        self.node_informer = ctx.informer(NODES)
        self.pod_informer = ctx.informer(PODS, indexers={NODE_NAME_INDEX: node_name_index})
        self.first_seen: dict[str, float] = {}
        """Pod uid -> when this controller first saw it under a tolerated NoExecute taint."""

    @classmethod
    def create(cls, ctx: Context) -> Controller:
        reconciler = cls(ctx)
        controller = Controller("taint-eviction-controller", reconciler, workers=2, clock=ctx.clock)
        controller.watches(reconciler.pod_informer)
        controller.watches(reconciler.node_informer, reconciler._pods_on)
        return controller

    def _pods_on(self, node: Obj) -> list[Request]:
        return [Request.of(p) for p in self.pod_informer.lister.by_index(NODE_NAME_INDEX, node["metadata"]["name"])]

    async def reconcile(self, request: Request) -> Result:
        pod = self.pod_informer.lister.get(request.name, namespace=request.namespace)
        if pod is None or pod["metadata"].get("deletionTimestamp") or not (pod.get("spec") or {}).get("nodeName"):
            if pod is not None:
                self.first_seen.pop(pod["metadata"].get("uid", ""), None)
            return Result()
        uid = pod["metadata"].get("uid", "")
        node = self.node_informer.lister.get(pod["spec"]["nodeName"])
        taints = [t for t in ((node or {}).get("spec") or {}).get("taints") or [] if t.get("effect") == "NoExecute"]
        if not taints:
            self.first_seen.pop(uid, None)
            return Result()
        tolerations = (pod.get("spec") or {}).get("tolerations") or []
        seconds: list[float] = []
        for taint in taints:
            used = [t for t in tolerations if tolerates(t, taint)]
            if not used:
                await self._evict(pod)
                return Result()
            seconds += [float(t["tolerationSeconds"]) for t in used if t.get("tolerationSeconds") is not None]
        if not seconds:
            self.first_seen.pop(uid, None)
            return Result()  # tolerated forever
        now = self.clock.now()
        since = self.first_seen.setdefault(uid, now)
        left = since + max(min(seconds), 0.0) - now
        if left > 0:
            return Result(requeue_after=left)
        await self._evict(pod)
        return Result()

    async def _evict(self, pod: Obj) -> None:
        meta = pod["metadata"]
        namespace, name = meta.get("namespace", ""), meta["name"]
        self.first_seen.pop(meta.get("uid", ""), None)
        self.recorder.event(pod, "Normal", "TaintManagerEviction", f"Marking for deletion Pod {namespace}/{name}")
        try:
            condition = {"type": "DisruptionTarget", "status": "True", "reason": "DeletionByTaintManager",
                         "message": "Taint manager: deleting due to NoExecute taint",
                         "lastTransitionTime": now_text(self.clock)}
            await self.client.patch(PODS, name, {"status": {"conditions": [condition]}}, namespace=namespace,
                                    patch_type=PatchType.STRATEGIC, subresource="status")
            await self.client.delete(PODS, name, namespace=namespace,
                                     preconditions={"uid": meta["uid"]} if meta.get("uid") else None)
        except (errors.NotFound, errors.Conflict):
            pass


def lifecycle_controller(ctx: Context) -> Controller:
    return NodeLifecycleReconciler.create(ctx)


def taint_eviction_controller(ctx: Context) -> Controller:
    return TaintEvictionReconciler.create(ctx)
