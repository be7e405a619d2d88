"""The DaemonSet controller: one pod on every eligible node, as kube's daemon controller runs it.

A node is eligible when the pod template's nodeSelector and required node affinity match it and
every NoSchedule/NoExecute taint on it is tolerated, counting the tolerations the controller
adds to every daemon pod (not-ready and unreachable for NoExecute; disk-, memory- and
pid-pressure and unschedulable for NoSchedule; network-unavailable for host-network pods). A
pod already running stays while only NoSchedule taints are untolerated (kube's
`shouldContinueRunning`).

Pods are not placed by the controller: each carries a required node affinity on the node's
`metadata.name` (`matchFields`), as upstream does since 1.12, and the scheduler binds it.
Failed pods are deleted (and re-created), extra pods on a node are deleted keeping the oldest,
pods on ineligible nodes are deleted. RollingUpdate replaces out-of-date pods node by node within
`maxUnavailable`, or, with `maxSurge`, starts the new pod beside the old one and deletes the old
one once the new one is available; OnDelete leaves them. Templates are kept in
ControllerRevisions; pods carry `controller-revision-hash` and `pod-template-generation`.
"""

from __future__ import annotations

import copy
import math
from datetime import datetime

from pykube_server.api import errors
from pykube_server.api.types import Obj
from pykube_server.client.events import NORMAL, WARNING
from pykube_server.client.rest import CONTROLLERREVISIONS, DAEMONSETS, NODES, PODS
from pykube_server.controllers.framework import Context, Controller, Request, Result, owner_requests
from pykube_server.controllers.workload_common import (
    REVISION_HASH_LABEL, delete_ignoring_missing, ensure_revision, is_available, is_controlled_by, is_deleting,
    is_ready, meta, owner_reference, pod_from_template, pod_phase, revision_hash, selector_of, spec, status,
    truncate_history,
)

TEMPLATE_GENERATION_LABEL = "pod-template-generation"
_NO_EXECUTE_TOLERATED = ("node.kubernetes.io/not-ready", "node.kubernetes.io/unreachable")
_NO_SCHEDULE_TOLERATED = ("node.kubernetes.io/disk-pressure", "node.kubernetes.io/memory-pressure",
                          "node.kubernetes.io/pid-pressure", "node.kubernetes.io/unschedulable")
NETWORK_UNAVAILABLE = "node.kubernetes.io/network-unavailable"


# --- eligibility ------------------------------------------------------------------------------------

def add_daemon_tolerations(pod_spec: Obj) -> None:
    """The tolerations every daemon pod gets (kube's AddOrUpdateDaemonPodTolerations)."""
    wanted = [(key, "NoExecute") for key in _NO_EXECUTE_TOLERATED]
    wanted += [(key, "NoSchedule") for key in _NO_SCHEDULE_TOLERATED]
    if pod_spec.get("hostNetwork"):
        wanted.append((NETWORK_UNAVAILABLE, "NoSchedule"))
    tolerations = list(pod_spec.get("tolerations") or [])
    for key, effect in wanted:
        tolerations = [t for t in tolerations if not (t.get("key") == key and t.get("effect") == effect)]
        tolerations.append({"key": key, "operator": "Exists", "effect": effect})
    pod_spec["tolerations"] = tolerations


def tolerates(toleration: Obj, taint: Obj) -> bool:
    if toleration.get("effect") and toleration["effect"] != taint.get("effect"):
        return False
    if toleration.get("key") and toleration["key"] != taint.get("key"):
        return False
    if toleration.get("operator", "Equal") == "Exists":
        return True
    return (toleration.get("value") or "") == (taint.get("value") or "")


def _requirement_matches(req: Obj, values_of: dict[str, str]) -> bool:
    key, op, values = req.get("key", ""), req.get("operator", ""), req.get("values") or []
    present = key in values_of
    value = values_of.get(key, "")
    if op == "In":
        return present and value in values
    if op == "NotIn":
        return not present or value not in values
    if op == "Exists":
        return present
    if op == "DoesNotExist":
        return not present
    if op in ("Gt", "Lt") and present and values:
        try:
            left, right = int(value), int(values[0])
        except ValueError:
            return False
        return left > right if op == "Gt" else left < right
    return False


def node_affinity_matches(pod_spec: Obj, node: Obj) -> bool:
    labels = meta(node).get("labels") or {}
    selector = pod_spec.get("nodeSelector") or {}
    if any(labels.get(k) != v for k, v in selector.items()):
        return False
    required = (((pod_spec.get("affinity") or {}).get("nodeAffinity") or {})
                .get("requiredDuringSchedulingIgnoredDuringExecution") or {})
    terms = required.get("nodeSelectorTerms")
    if not terms:
        return True
    fields = {"metadata.name": meta(node).get("name", "")}
    for term in terms:
        exprs, matched = term.get("matchExpressions") or [], term.get("matchFields") or []
        if not exprs and not matched:
            continue
        if all(_requirement_matches(r, labels) for r in exprs) and all(_requirement_matches(r, fields) for r in matched):
            return True
    return False


def node_should_run(pod_spec: Obj, node: Obj) -> tuple[bool, bool]:
    """(should run, should continue running) for a daemon pod of this spec on `node`."""
    if not node_affinity_matches(pod_spec, node):
        return False, False
    tolerations = pod_spec.get("tolerations") or []
    should_run, keep = True, True
    for taint in (spec(node).get("taints") or ()):
        effect = taint.get("effect")
        if effect not in ("NoSchedule", "NoExecute"):
            continue
        if any(tolerates(t, taint) for t in tolerations):
            continue
        should_run = False
        if effect == "NoExecute":
            keep = False
    return should_run, keep


def with_node_affinity(pod_spec: Obj, node_name: str) -> None:
    """Pin a pod to one node via required node affinity on `metadata.name`, as upstream does."""
    requirement = {"key": "metadata.name", "operator": "In", "values": [node_name]}
    affinity = pod_spec.setdefault("affinity", {})
    node_affinity = affinity.setdefault("nodeAffinity", {})
    required = node_affinity.setdefault("requiredDuringSchedulingIgnoredDuringExecution", {})
    terms = required.get("nodeSelectorTerms") or []
    if not terms:
        required["nodeSelectorTerms"] = [{"matchFields": [requirement]}]
        return
    for term in terms:
        term["matchFields"] = [copy.deepcopy(requirement)]


def pod_node(pod: Obj) -> str:
    """The node a daemon pod is for: its nodeName, else its metadata.name affinity."""
    node = spec(pod).get("nodeName")
    if node:
        return str(node)
    required = ((((spec(pod).get("affinity") or {}).get("nodeAffinity") or {})
                 .get("requiredDuringSchedulingIgnoredDuringExecution")) or {})
    for term in required.get("nodeSelectorTerms") or ():
        for req in term.get("matchFields") or ():
            if req.get("key") == "metadata.name" and req.get("operator") == "In" and len(req.get("values") or []) == 1:
                return str(req["values"][0])
    return ""


def scaled(value: object, total: int) -> int:
    """An int-or-percent scaled against `total`, rounding up (kube's GetScaledValueFromIntOrPercent)."""
    if isinstance(value, str) and value.endswith("%"):
        return math.ceil(int(value[:-1]) * total / 100)
    return int(value or 0)  # type: ignore[call-overload]


# --- the controller ----------------------------------------------------------------------------------

class DaemonSetReconciler:
    def __init__(self, ctx: Context) -> None:
        self.client = ctx.client
        self.clock = ctx.clock
        self.recorder = ctx.recorder
        self.nodes = ctx.informer(NODES)
        self._ds_lister = ctx.informer(DAEMONSETS).lister
        self._controller: Controller | None = None

    @classmethod
    def create(cls, ctx: Context) -> Controller:
        reconciler = cls(ctx)
        controller = (Controller("daemonset-controller", reconciler, workers=2, clock=ctx.clock)
                      .watches(ctx.informer(DAEMONSETS))
                      .watches(ctx.informer(PODS), owner_requests("DaemonSet"))
                      .watches(reconciler.nodes, reconciler._all_daemonsets))
        reconciler._controller = controller
        return controller

    def _all_daemonsets(self, _node: Obj) -> list[Request]:
        return [Request.of(ds) for ds in self._ds_lister.list()]

    async def reconcile(self, request: Request) -> Result:
        try:
            ds = await self.client.get(DAEMONSETS, request.name, namespace=request.namespace)
        except errors.NotFound:
            return Result()
        ns = request.namespace
        revs = await self.client.list(CONTROLLERREVISIONS, namespace=ns)
        revision, revisions = await ensure_revision(self.client, ds, revs.get("items") or [], kind="DaemonSet")
        digest = revision_hash(revision)
        by_node = await self._pods_by_node(ds)
        nodes = self.nodes.lister.list()
        if not is_deleting(ds):
            changed = await self._manage(ds, nodes, by_node, digest)
            if changed:
                by_node = await self._pods_by_node(ds)
        requeue = await self._write_status(ds, nodes, by_node, digest)
        live = {meta(revision)["name"]} | {
            f"{meta(ds)['name']}-{(meta(p).get('labels') or {}).get(REVISION_HASH_LABEL)}"
            for pods in by_node.values() for p in pods}
        await truncate_history(self.client, ds, revisions, live)
        return Result(requeue_after=requeue)

    async def _pods_by_node(self, ds: Obj) -> dict[str, list[Obj]]:
        listed = await self.client.list(PODS, namespace=meta(ds)["namespace"], label_selector=selector_of(ds).to_string())
        out: dict[str, list[Obj]] = {}
        for pod in listed.get("items") or ():
            if is_controlled_by(pod, ds) and pod_node(pod):
                out.setdefault(pod_node(pod), []).append(pod)
        for pods in out.values():
            pods.sort(key=lambda p: (meta(p).get("creationTimestamp", ""), meta(p).get("name", "")))
        return out

    def _template_spec(self, ds: Obj) -> Obj:
        pod_spec = copy.deepcopy((spec(ds).get("template") or {}).get("spec") or {})
        add_daemon_tolerations(pod_spec)
        return pod_spec

    # --- managing pods -------------------------------------------------------------------------------

    async def _manage(self, ds: Obj, nodes: list[Obj], by_node: dict[str, list[Obj]], digest: str) -> bool:
        pod_spec = self._template_spec(ds)
        create: list[str] = []
        delete: list[Obj] = []
        for node in nodes:
            name = meta(node)["name"]
            should_run, keep = node_should_run(pod_spec, node)
            pods = [p for p in by_node.get(name, []) if not is_deleting(p)]
            if should_run and not pods and not by_node.get(name):
                create.append(name)
            elif not keep:
                delete += pods
            elif pods:
                delete += self._cleanup_node(ds, name, pods, digest)
        known = {meta(n)["name"] for n in nodes}
        delete += [p for node, pods in by_node.items() if node not in known for p in pods if not is_deleting(p)]
        if not create and not delete:
            create, delete = await self._rolling_update(ds, nodes, by_node, digest, pod_spec)
        for node_name in create:
            await self._create_pod(ds, node_name, digest)
        for pod in delete:
            if await delete_ignoring_missing(self.client, PODS, pod):
                self.recorder.event(ds, NORMAL, "SuccessfulDelete", f"Deleted pod: {meta(pod)['name']}")
        return bool(create or delete)

    def _cleanup_node(self, ds: Obj, node: str, pods: list[Obj], digest: str) -> list[Obj]:
        """Failed pods go (to be re-created); of several running ones, the oldest stays (with
        surge, one old and one new may coexist while the new one becomes available)."""
        doomed = []
        for pod in pods:
            if pod_phase(pod) == "Failed":
                self.recorder.event(ds, WARNING, "FailedDaemonPod",
                                    f"Found failed daemon pod {meta(pod)['namespace']}/{meta(pod)['name']} on node {node}, will try to kill it")
                doomed.append(pod)
        alive = [p for p in pods if p not in doomed]
        if len(alive) > 1:
            new = [p for p in alive if (meta(p).get("labels") or {}).get(REVISION_HASH_LABEL) == digest]
            old = [p for p in alive if p not in new]
            if len(new) == 1 and len(old) == 1 and self._max_surge(ds, 1) > 0:
                return doomed
            doomed += alive[1:]
        return doomed

    def _max_surge(self, ds: Obj, desired: int) -> int:
        rolling = (spec(ds).get("updateStrategy") or {}).get("rollingUpdate") or {}
        return scaled(rolling.get("maxSurge", 0), desired)

    def _max_unavailable(self, ds: Obj, desired: int) -> int:
        rolling = (spec(ds).get("updateStrategy") or {}).get("rollingUpdate") or {}
        surge = self._max_surge(ds, desired)
        unavailable = scaled(rolling.get("maxUnavailable", 1), desired)
        return 1 if unavailable == 0 and surge == 0 else unavailable

    async def _rolling_update(self, ds: Obj, nodes: list[Obj], by_node: dict[str, list[Obj]], digest: str,
                              pod_spec: Obj) -> tuple[list[str], list[Obj]]:
        if (spec(ds).get("updateStrategy") or {}).get("type", "RollingUpdate") != "RollingUpdate":
            return [], []
        min_ready = int(spec(ds).get("minReadySeconds") or 0)
        now = self.clock.wall()
        eligible = [meta(n)["name"] for n in nodes if node_should_run(pod_spec, n)[0]]
        desired = len(eligible)
        max_surge, max_unavailable = self._max_surge(ds, desired), self._max_unavailable(ds, desired)
        unavailable = 0
        outdated: list[tuple[str, Obj]] = []
        new_on: dict[str, Obj] = {}
        for node in eligible:
            pods = [p for p in by_node.get(node, []) if not is_deleting(p)]
            new = [p for p in pods if self._is_updated(p, ds, digest)]
            old = [p for p in pods if p not in new]
            if new:
                new_on[node] = new[0]
            if not pods or not any(is_available(p, min_ready, now) for p in pods):
                unavailable += 1
            for pod in old:
                outdated.append((node, pod))
        if max_surge > 0:
            return self._surge_step(outdated, new_on, max_surge, min_ready, now)
        delete: list[Obj] = []
        for node, pod in outdated:
            if not is_available(pod, min_ready, now):
                delete.append(pod)
        budget = max_unavailable - unavailable
        for node, pod in outdated:
            if pod in delete:
                continue
            if budget <= 0:
                break
            delete.append(pod)
            budget -= 1
        return [], delete

    def _surge_step(self, outdated: list[tuple[str, Obj]], new_on: dict[str, Obj], max_surge: int,
                    min_ready: int, now: datetime) -> tuple[list[str], list[Obj]]:
        create: list[str] = []
        delete: list[Obj] = []
        surging = sum(1 for node, _ in outdated if node in new_on)
        for node, pod in outdated:
            new = new_on.get(node)
            if new is not None:
                if is_available(new, min_ready, now):
                    delete.append(pod)
            elif not is_available(pod, min_ready, now):
                delete.append(pod)
            elif surging < max_surge:
                create.append(node)
                surging += 1
        return create, delete

    def _is_updated(self, pod: Obj, ds: Obj, digest: str) -> bool:
        labels = meta(pod).get("labels") or {}
        return labels.get(REVISION_HASH_LABEL) == digest

    async def _create_pod(self, ds: Obj, node_name: str, digest: str) -> None:
        template = copy.deepcopy(spec(ds).get("template") or {})
        pod = pod_from_template(template, owner_reference(ds, api_version="apps/v1", kind="DaemonSet"))
        pod["metadata"]["generateName"] = f"{meta(ds)['name']}-"
        labels = pod["metadata"].setdefault("labels", {})
        labels[REVISION_HASH_LABEL] = digest
        labels[TEMPLATE_GENERATION_LABEL] = str(meta(ds).get("generation", 1))
        add_daemon_tolerations(pod["spec"])
        with_node_affinity(pod["spec"], node_name)
        try:
            created = await self.client.create(PODS, pod, namespace=meta(ds)["namespace"])
        except errors.StatusError as exc:
            self.recorder.event(ds, WARNING, "FailedCreate", f"Error creating: {exc.message}")
            raise
        self.recorder.event(ds, NORMAL, "SuccessfulCreate", f"Created pod: {meta(created)['name']}")

    # --- status ----------------------------------------------------------------------------------------

    async def _write_status(self, ds: Obj, nodes: list[Obj], by_node: dict[str, list[Obj]], digest: str) -> float | None:
        pod_spec = self._template_spec(ds)
        min_ready = int(spec(ds).get("minReadySeconds") or 0)
        now = self.clock.wall()
        counts = dict.fromkeys(("desired", "current", "ready", "available", "updated", "misscheduled"), 0)
        pending_availability = False
        for node in nodes:
            pods = [p for p in by_node.get(meta(node)["name"], [])]
            should_run, _ = node_should_run(pod_spec, node)
            if not should_run:
                counts["misscheduled"] += 1 if pods else 0
                continue
            counts["desired"] += 1
            if not pods:
                continue
            counts["current"] += 1
            pod = pods[0]
            counts["ready"] += is_ready(pod)
            available = is_available(pod, min_ready, now)
            counts["available"] += available
            pending_availability |= is_ready(pod) and not available
            counts["updated"] += self._is_updated(pod, ds, digest)
        new_status = copy.deepcopy(status(ds))
        new_status.update({
            "desiredNumberScheduled": counts["desired"], "currentNumberScheduled": counts["current"],
            "numberReady": counts["ready"], "numberAvailable": counts["available"],
            "updatedNumberScheduled": counts["updated"], "numberMisscheduled": counts["misscheduled"],
            "numberUnavailable": counts["desired"] - counts["available"],
            "observedGeneration": meta(ds).get("generation", 1),
        })
        for key in ("numberAvailable", "updatedNumberScheduled", "numberUnavailable"):
            if not new_status[key]:
                new_status.pop(key)
        if new_status != status(ds):
            await self.client.update(DAEMONSETS, {**ds, "status": new_status}, subresource="status")
        return float(min_ready) if pending_availability else None
