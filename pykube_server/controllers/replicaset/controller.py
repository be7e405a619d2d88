"""The ReplicaSet / ReplicationController reconciler and its wiring (see the package docstring)."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from pykube_server.api import errors
from pykube_server.api.selectors import LabelSelector, SelectorError, selector_from_object, selector_from_set
from pykube_server.api.types import Obj
from pykube_server.client.events import NORMAL, WARNING, EventRecorder, format_time
from pykube_server.client.informer import FuncHandler
from pykube_server.client.rest import PODS, REPLICASETS, Resource
from pykube_server.controllers.framework import Context, Controller, Request, Result
from pykube_server.controllers.replicaset.expectations import Expectations
from pykube_server.controllers.replicaset.objects import (
    RefManager, controller_ref, is_pod_active, is_pod_available, is_pod_ready, key_of, meta, new_controller_ref,
    remove_condition, set_condition)
from pykube_server.controllers.replicaset.ranking import pods_to_delete, slow_start_batch

log = logging.getLogger(__name__)

REPLICATIONCONTROLLERS = Resource("", "v1", "replicationcontrollers")
BURST_REPLICAS = 500
"""Most pods created or deleted by one sync (upstream's BurstReplicas)."""
SLOW_START_INITIAL_BATCH = 1
STATUS_UPDATE_RETRIES = 1


@dataclass(frozen=True)
class Kind:
    """What differs between ReplicaSets and ReplicationControllers."""

    resource: Resource
    kind: str
    component: str

    def selector(self, obj: Obj) -> LabelSelector:
        raw = (obj.get("spec") or {}).get("selector")
        if self.kind == "ReplicationController":
            return selector_from_set(raw) if raw else selector_from_object(None)
        return selector_from_object(raw)


REPLICASET = Kind(REPLICASETS, "ReplicaSet", "replicaset-controller")
REPLICATIONCONTROLLER = Kind(REPLICATIONCONTROLLERS, "ReplicationController", "replication-controller")


def calculate_status(owner: Obj, pods: list[Obj], manage_error: errors.StatusError | None, *, now: datetime) -> Obj:
    """The status a sync writes: counts over the claimed active pods, and ReplicaFailure set when
    managing replicas failed (kept until a sync succeeds), as upstream's calculateStatus."""
    spec = owner.get("spec") or {}
    status = dict(owner.get("status") or {})
    template_labels = selector_from_set(((spec.get("template") or {}).get("metadata") or {}).get("labels"))
    ready = [p for p in pods if is_pod_ready(p)]
    status["replicas"] = len(pods)
    _set_count(status, "fullyLabeledReplicas", sum(template_labels.matches(meta(p).get("labels") or {}) for p in pods))
    _set_count(status, "readyReplicas", len(ready))
    min_ready = spec.get("minReadySeconds") or 0
    _set_count(status, "availableReplicas", sum(is_pod_available(p, min_ready, now) for p in ready))
    has_failure = any(c.get("type") == "ReplicaFailure" for c in status.get("conditions") or ())
    if manage_error is not None and not has_failure:
        diff = len(pods) - spec.get("replicas", 1)
        reason = "FailedCreate" if diff < 0 else "FailedDelete" if diff > 0 else ""
        set_condition(status, {"type": "ReplicaFailure", "status": "True", "lastTransitionTime": format_time(now),
                               "reason": reason, "message": manage_error.message})
    elif manage_error is None and has_failure:
        remove_condition(status, "ReplicaFailure")
    return status


def _set_count(status: Obj, name: str, value: int) -> None:
    if value:
        status[name] = value
    else:
        status.pop(name, None)  # omitempty, as the Go type serialises


class ReplicaSetReconciler:
    """Reconciles one ReplicaSet (or ReplicationController) key."""

    def __init__(self, ctx: Context, kind: Kind, recorder: EventRecorder) -> None:
        self.kind = kind
        self.client = ctx.client
        self.clock = ctx.clock
        self.recorder = recorder
        self.owners = ctx.informer(kind.resource)
        self.pods = ctx.informer(PODS)
        self.expectations = Expectations(ctx.clock)
        self.queue_after: Callable[[Request, float], None] = lambda request, delay: None

    async def reconcile(self, request: Request) -> Result:
        key = f"{request.namespace}/{request.name}"
        owner = self.owners.lister.get(request.name, namespace=request.namespace)
        if owner is None:
            self.expectations.delete(key)
            return Result()
        owner = self._typed(owner)
        needs_sync = self.expectations.satisfied(key)
        try:
            selector = self.kind.selector(owner)
        except SelectorError:
            log.warning("%s %s has an invalid selector", self.kind.kind, key)
            return Result()
        pods = [p for p in self.pods.lister.list(namespace=request.namespace) if is_pod_active(p)]
        pods = await RefManager(self.client, owner, self.kind.resource, PODS, selector).claim(pods)
        manage_error: errors.StatusError | None = None
        if needs_sync and not meta(owner).get("deletionTimestamp"):
            manage_error = await self._manage(owner, pods, key)
        status = calculate_status(owner, pods, manage_error, now=self.clock.wall())
        updated = await self._update_status(owner, status)
        return self._after_status(updated, manage_error)

    def _typed(self, owner: Obj) -> Obj:
        api_version = self.kind.resource.api_version
        return {**owner, "apiVersion": owner.get("apiVersion") or api_version, "kind": owner.get("kind") or self.kind.kind}

    def _after_status(self, owner: Obj, manage_error: errors.StatusError | None) -> Result:
        if manage_error is not None:
            raise manage_error
        spec, status = owner.get("spec") or {}, owner.get("status") or {}
        min_ready = spec.get("minReadySeconds") or 0
        want = spec.get("replicas", 1)
        if min_ready > 0 and status.get("readyReplicas", 0) == want and status.get("availableReplicas", 0) != want:
            return Result(requeue_after=float(min_ready))
        return Result()

    # --- manage replicas ---------------------------------------------------------------------

    async def _manage(self, owner: Obj, pods: list[Obj], key: str) -> errors.StatusError | None:
        diff = len(pods) - (owner.get("spec") or {}).get("replicas", 1)
        if diff < 0:
            return await self._create(owner, min(-diff, BURST_REPLICAS), key)
        if diff > 0:
            return await self._delete(owner, pods, min(diff, BURST_REPLICAS), key)
        return None

    async def _create(self, owner: Obj, count: int, key: str) -> errors.StatusError | None:
        self.expectations.expect_creations(key, count)
        done, error = await slow_start_batch(count, SLOW_START_INITIAL_BATCH, lambda: self._create_pod(owner))
        for _ in range(count - done):
            self.expectations.creation_observed(key)  # these were never sent: stop expecting them
        return error if isinstance(error, errors.StatusError) or error is None else errors.InternalError(str(error))

    async def _create_pod(self, owner: Obj) -> None:
        template = (owner.get("spec") or {}).get("template") or {}
        tmeta = template.get("metadata") or {}
        pod_meta: Obj = {"generateName": f"{meta(owner)['name']}-", "ownerReferences": [new_controller_ref(owner)]}
        for name in ("labels", "annotations", "finalizers"):
            if tmeta.get(name):
                pod_meta[name] = tmeta[name]
        if not tmeta.get("labels"):
            raise errors.InternalError("unable to create pods, no labels")
        body = {"apiVersion": "v1", "kind": "Pod", "metadata": pod_meta, "spec": template.get("spec") or {}}
        try:
            pod = await self.client.create(PODS, body, namespace=meta(owner)["namespace"])
        except errors.StatusError as exc:
            if _namespace_terminating(exc):
                return  # every further create would fail too; nothing to report
            self.recorder.event(owner, WARNING, "FailedCreate", f"Error creating: {exc.message}")
            raise
        self.recorder.event(owner, NORMAL, "SuccessfulCreate", f"Created pod: {meta(pod)['name']}")

    async def _delete(self, owner: Obj, pods: list[Obj], count: int, key: str) -> errors.StatusError | None:
        victims = pods_to_delete(pods, self._related_pods(owner), count, self.clock.wall())
        self.expectations.expect_deletions(key, [key_of(p) for p in victims])
        results = await asyncio.gather(*(self._delete_pod(owner, p, key) for p in victims))
        return next((r for r in results if r is not None), None)

    async def _delete_pod(self, owner: Obj, pod: Obj, key: str) -> errors.StatusError | None:
        try:
            await self.client.delete(PODS, meta(pod)["name"], namespace=meta(pod)["namespace"])
        except errors.StatusError as exc:
            self.expectations.deletion_observed(key, key_of(pod))
            if isinstance(exc, errors.NotFound):
                return None
            self.recorder.event(owner, WARNING, "FailedDelete", f"Error deleting: {exc.message}")
            return exc
        self.recorder.event(owner, NORMAL, "SuccessfulDelete", f"Deleted pod: {meta(pod)['name']}")
        return None

    def _related_pods(self, owner: Obj) -> list[Obj]:
        """Pods of every ReplicaSet sharing `owner`'s controller (the colocation rank input)."""
        ref, ns = controller_ref(owner), meta(owner)["namespace"]
        siblings = [owner] if ref is None else [
            o for o in self.owners.lister.list(namespace=ns) if (controller_ref(o) or {}).get("uid") == ref.get("uid")]
        seen: dict[str, Obj] = {}
        for sibling in siblings:
            try:
                selector = self.kind.selector(sibling)
            except SelectorError:
                continue
            for pod in self.pods.lister.list(selector, namespace=ns):
                seen.setdefault(str(meta(pod).get("uid")), pod)
        return list(seen.values())

    # --- status --------------------------------------------------------------------------------

    async def _update_status(self, owner: Obj, status: Obj) -> Obj:
        generation = meta(owner).get("generation", 0)
        if status == (owner.get("status") or {}) and status.get("observedGeneration") == generation:
            return owner
        for attempt in range(STATUS_UPDATE_RETRIES + 1):
            status = {**status, "observedGeneration": meta(owner).get("generation", 0)}
            try:
                return await self.client.update(self.kind.resource, {**owner, "status": status}, subresource="status")
            except errors.Conflict:
                if attempt == STATUS_UPDATE_RETRIES:
                    raise
                owner = self._typed(await self.client.get(self.kind.resource, meta(owner)["name"],
                                                          namespace=meta(owner)["namespace"]))
        return owner

    # --- event handlers ------------------------------------------------------------------------

    def _resolve(self, namespace: str, ref: Obj | None) -> Obj | None:
        if ref is None or ref.get("kind") != self.kind.kind:
            return None
        owner = self.owners.lister.get(ref.get("name", ""), namespace=namespace)
        return owner if owner is not None and meta(owner).get("uid") == ref.get("uid") else None

    def _matching_owners(self, pod: Obj) -> list[Obj]:
        labels = meta(pod).get("labels") or {}
        if not labels:
            return []
        out = []
        for owner in self.owners.lister.list(namespace=meta(pod).get("namespace", "")):
            try:
                if self.kind.selector(owner).matches(labels) and (owner.get("spec") or {}).get("selector"):
                    out.append(owner)
            except SelectorError:
                continue
        return out

    def pod_added(self, pod: Obj, enqueue: Callable[[Obj], None]) -> None:
        if meta(pod).get("deletionTimestamp"):
            self.pod_deleted(pod, enqueue)
            return
        ref = controller_ref(pod)
        if ref is not None:
            owner = self._resolve(meta(pod).get("namespace", ""), ref)
            if owner is not None:
                self.expectations.creation_observed(key_of(owner))
                enqueue(owner)
            return
        for owner in self._matching_owners(pod):
            enqueue(owner)

    def pod_updated(self, old: Obj, cur: Obj, enqueue: Callable[[Obj], None]) -> None:
        if meta(old).get("resourceVersion") == meta(cur).get("resourceVersion"):
            return
        labels_changed = meta(old).get("labels") != meta(cur).get("labels")
        if meta(cur).get("deletionTimestamp"):
            self.pod_deleted(cur, enqueue)
            if labels_changed:
                self.pod_deleted(old, enqueue)
            return
        ns = meta(cur).get("namespace", "")
        cur_ref, old_ref = controller_ref(cur), controller_ref(old)
        if cur_ref != old_ref and (previous := self._resolve(ns, old_ref)) is not None:
            enqueue(previous)
        if cur_ref is not None:
            owner = self._resolve(ns, cur_ref)
            if owner is None:
                return
            enqueue(owner)
            min_ready = (owner.get("spec") or {}).get("minReadySeconds") or 0
            if min_ready > 0 and not is_pod_ready(old) and is_pod_ready(cur):
                self.queue_after(Request.of(owner), float(min_ready + 1))
            return
        if labels_changed or cur_ref != old_ref:
            for owner in self._matching_owners(cur):
                enqueue(owner)

    def pod_deleted(self, pod: Obj, enqueue: Callable[[Obj], None]) -> None:
        owner = self._resolve(meta(pod).get("namespace", ""), controller_ref(pod))
        if owner is not None:
            self.expectations.deletion_observed(key_of(owner), key_of(pod))
            enqueue(owner)

    def owner_deleted(self, owner: Obj) -> None:
        self.expectations.delete(key_of(owner))


def _namespace_terminating(exc: errors.StatusError) -> bool:
    causes = (exc.details or {}).get("causes") or []
    return any(c.get("reason") == "NamespaceTerminating" for c in causes)


class RecordingController(Controller):
    """A Controller that also runs its own event recorder (each kube controller has its own
    `source.component`, which `kubectl describe` shows in the From column)."""

    def __init__(self, name: str, reconciler: Any, recorder: EventRecorder, **kwargs: Any) -> None:
        super().__init__(name, reconciler, **kwargs)
        self.recorder = recorder

    async def run(self) -> None:
        async with asyncio.TaskGroup() as tg:
            tg.create_task(self.recorder.run())
            await super().run()


def _build(ctx: Context, kind: Kind) -> Controller:
    recorder = EventRecorder(ctx.client, component=kind.component, clock=ctx.clock)
    reconciler = ReplicaSetReconciler(ctx, kind, recorder)
    controller = RecordingController(kind.component, reconciler, recorder, workers=5, clock=ctx.clock)
    reconciler.queue_after = controller.queue.add_after
    controller.watches(reconciler.owners)
    reconciler.owners.add_handler(FuncHandler(delete=reconciler.owner_deleted))
    controller.watches(reconciler.pods, mapper=lambda obj: ())  # only to wait for its sync
    _wire_pod_handlers(reconciler, controller)
    return controller


def _wire_pod_handlers(reconciler: ReplicaSetReconciler, controller: Controller) -> None:
    def enqueue(owner: Obj) -> None:
        controller.queue.add(Request.of(owner))

    reconciler.pods.add_handler(FuncHandler(
        add=lambda pod: reconciler.pod_added(pod, enqueue),
        update=lambda old, new: reconciler.pod_updated(old, new, enqueue),
        delete=lambda pod: reconciler.pod_deleted(pod, enqueue)))


def replicaset_controller(ctx: Context) -> Controller:
    return _build(ctx, REPLICASET)


def replicationcontroller_controller(ctx: Context) -> Controller:
    return _build(ctx, REPLICATIONCONTROLLER)
