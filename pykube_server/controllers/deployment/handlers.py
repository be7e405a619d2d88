"""Which deployment to look at when something changes, and the controller's wiring.

As upstream's handlers: a ReplicaSet event enqueues its controlling Deployment (and, when its
controllerRef moved, the previous one); an orphan ReplicaSet enqueues every deployment whose
selector matches it, so one can adopt it; a pod deletion enqueues the deployment above its
ReplicaSet (a Recreate rollout waits for old pods to be gone).
"""

from __future__ import annotations

from collections.abc import Iterable

from pykube_server.api.selectors import SelectorError, selector_from_object
from pykube_server.api.types import Obj
from pykube_server.client.events import EventRecorder
from pykube_server.client.informer import FuncHandler, Informer
from pykube_server.controllers.deployment.controller import DeploymentReconciler
from pykube_server.controllers.framework import Context, Controller, Request
from pykube_server.controllers.replicaset import RecordingController
from pykube_server.controllers.replicaset.objects import controller_ref, meta

COMPONENT = "deployment-controller"


def _owner(deployments: Informer, namespace: str, ref: Obj | None) -> Request | None:
    if ref is None or ref.get("kind") != "Deployment":
        return None
    d = deployments.lister.get(ref.get("name", ""), namespace=namespace)
    return Request(namespace, ref["name"]) if d is not None and meta(d).get("uid") == ref.get("uid") else None


def _matching(deployments: Informer, rs: Obj) -> Iterable[Request]:
    labels = meta(rs).get("labels") or {}
    for d in deployments.lister.list(namespace=meta(rs).get("namespace", "")):
        try:
            selector = selector_from_object((d.get("spec") or {}).get("selector"))
        except SelectorError:
            continue
        if not selector.empty and selector.matches(labels):
            yield Request.of(d)


class ReplicaSetEvents:
    """Maps ReplicaSet changes to deployment keys (upstream's add/update/deleteReplicaSet)."""

    def __init__(self, deployments: Informer, controller: Controller) -> None:
        self.deployments = deployments
        self.queue = controller.queue

    def _enqueue(self, request: Request | None) -> None:
        if request is not None:
            self.queue.add(request)

    def added(self, rs: Obj) -> None:
        ns, ref = meta(rs).get("namespace", ""), controller_ref(rs)
        if ref is not None or meta(rs).get("deletionTimestamp"):
            self._enqueue(_owner(self.deployments, ns, ref))
            return
        for request in _matching(self.deployments, rs):
            self._enqueue(request)

    def updated(self, old: Obj, cur: Obj) -> None:
        if meta(old).get("resourceVersion") == meta(cur).get("resourceVersion"):
            return
        ns = meta(cur).get("namespace", "")
        cur_ref, old_ref = controller_ref(cur), controller_ref(old)
        if cur_ref != old_ref and old_ref is not None:
            self._enqueue(_owner(self.deployments, ns, old_ref))
        if cur_ref is not None:
            self._enqueue(_owner(self.deployments, ns, cur_ref))
        elif meta(old).get("labels") != meta(cur).get("labels") or cur_ref != old_ref:
            for request in _matching(self.deployments, cur):
                self._enqueue(request)

    def deleted(self, rs: Obj) -> None:
        self._enqueue(_owner(self.deployments, meta(rs).get("namespace", ""), controller_ref(rs)))


def deployment_controller(ctx: Context) -> Controller:
    recorder = EventRecorder(ctx.client, component=COMPONENT, clock=ctx.clock)
    reconciler = DeploymentReconciler(ctx, recorder)
    controller = RecordingController(COMPONENT, reconciler, recorder, workers=5, clock=ctx.clock)
    reconciler.requeue_rate_limited = controller.queue.add_rate_limited
    controller.watches(reconciler.deployments)
    controller.watches(reconciler.replicasets, mapper=lambda obj: ())
    controller.watches(reconciler.pods, mapper=lambda obj: ())
    events = ReplicaSetEvents(reconciler.deployments, controller)
    reconciler.replicasets.add_handler(FuncHandler(add=events.added, update=events.updated, delete=events.deleted))

    def pod_deleted(pod: Obj) -> None:
        ns = meta(pod).get("namespace", "")
        ref = controller_ref(pod)
        rs = reconciler.replicasets.lister.get(ref.get("name", ""), namespace=ns) if ref else None
        if rs is not None and ref is not None and ref.get("kind") == "ReplicaSet":
            events._enqueue(_owner(reconciler.deployments, ns, controller_ref(rs)))

    reconciler.pods.add_handler(FuncHandler(delete=pod_deleted))
    return controller
