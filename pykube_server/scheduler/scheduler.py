"""The scheduler: informers feed the cache and the queue; `schedule_one` places one pod.

schedule_one: pop -> (skip pods deleted, terminating or bound meanwhile) -> filter and score
with the pod's profile -> assume on the chosen node -> bind in the background through
`POST pods/<name>/binding`. A pod that fits nowhere gets the PodScheduled=False condition with
reason Unschedulable and a FailedScheduling event carrying kube's message, and waits in the
unschedulable pool; a failed bind is forgotten and retried after back-off. Pods whose
`schedulerName` no profile owns are left alone.

Only the API is used, so a real kube-scheduler could run against pykube and this one against
a real cluster.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from pykube_server.api import errors
from pykube_server.api.types import Obj
from pykube_server.client.clock import REAL_CLOCK, Clock
from pykube_server.client.events import NORMAL, WARNING, EventRecorder, format_time
from pykube_server.client.informer import FuncHandler, InformerFactory
from pykube_server.client.rest import NAMESPACES, NODES, PODS, Client, PatchType, Resource, TransportError
from pykube_server.scheduler.cache import Cache, node_name_of
from pykube_server.scheduler.framework import (
    NO_NODES,
    CycleState,
    Handle,
    PodInfo,
    fit_error_message,
    key_of,
)
from pykube_server.scheduler.plugins import PLUGINS
from pykube_server.scheduler.preemption import Preemptor
from pykube_server.scheduler.profile import DEFAULT_PROFILE, Profile
from pykube_server.scheduler.queue import QueueClosed, QueuedPodInfo, SchedulingQueue
from pykube_server.scheduler.runtime import Framework
from pykube_server.scheduler.volumes import InformerVolumeStore

log = logging.getLogger(__name__)

UNSCHEDULABLE = "Unschedulable"
SCHEDULER_ERROR = "SchedulerError"
UNFINISHED_POD_SELECTOR = "status.phase!=Succeeded,status.phase!=Failed"
# Which rejections an event can undo (a coarse form of kube's queueing hints).
ON_ASSIGNED_POD_DELETE = ("NodeResourcesFit", "NodePorts", "InterPodAffinity", "PodTopologySpread")
ON_ASSIGNED_POD_ADD = ("InterPodAffinity", "PodTopologySpread")
ON_STORAGE_CHANGE = ("VolumeBinding",)
BIND_CONCURRENCY = 16
"""`pods/binding` requests in flight at once. Binding runs beside the scheduling loop (kube's
bind goroutine), but unbounded it opened a new TLS connection per bind under load."""
NOTE_LENGTH_LIMIT = 1024
"""events.k8s.io refuses longer notes; kube-scheduler cuts FailedScheduling notes to fit."""


def truncate_note(message: str) -> str:
    """kube-scheduler's truncateMessage: at most 1024 bytes, ending in " ..." when cut (the
    PodScheduled condition keeps the whole message)."""
    raw = message.encode()
    if len(raw) <= NOTE_LENGTH_LIMIT:
        return message
    return raw[:NOTE_LENGTH_LIMIT - 4].decode(errors="ignore") + " ..."


@dataclass(frozen=True)
class SchedulerSettings:
    percentage_of_nodes_to_score: int = 0
    """0: kube's adaptive percentage."""
    initial_backoff_seconds: float = 1.0
    max_backoff_seconds: float = 10.0


def _node_changed(old: Obj, new: Obj) -> bool:
    def view(n: Obj) -> tuple[object, ...]:
        status = n.get("status") or {}
        return ((n.get("metadata") or {}).get("labels"), n.get("spec"), status.get("allocatable"),
                [(c.get("type"), c.get("status")) for c in status.get("conditions") or []])
    return view(old) != view(new)


class Scheduler:
    def __init__(self, client: Client, informers: InformerFactory, recorder: EventRecorder, *,
                 profiles: Sequence[Profile] = (DEFAULT_PROFILE,), settings: SchedulerSettings = SchedulerSettings(),
                 clock: Clock = REAL_CLOCK) -> None:
        self._client = client
        self._recorder = recorder
        self._clock = clock
        self.cache = Cache()
        self.queue = SchedulingQueue(clock=clock, initial_backoff=settings.initial_backoff_seconds,
                                     max_backoff=settings.max_backoff_seconds)
        self._namespaces = informers.lister(NAMESPACES)
        self._volumes = InformerVolumeStore(client, informers)
        for informer in (self._volumes.claims, self._volumes.pvs, self._volumes.classes):
            informer.add_handler(FuncHandler(self._storage_changed, lambda old, new: self._storage_changed(new),
                                             self._storage_changed))
        handle = Handle(all_nodes=self.cache.node_list, namespace_labels=self._namespace_labels, volumes=self._volumes,
                        pod_index=self.cache.pod_index)
        self.frameworks: dict[str, Framework] = {
            p.scheduler_name: Framework(p, PLUGINS, handle, percentage_of_nodes_to_score=settings.percentage_of_nodes_to_score)
            for p in profiles}
        budgets = informers.lister(Resource("policy", "v1", "poddisruptionbudgets"))
        self._preemptor = Preemptor(client, recorder, self.cache, budgets=lambda: budgets.list())
        self._informers = informers
        self._pods = informers.informer(PODS, namespace="", field_selector=UNFINISHED_POD_SELECTOR)
        self._nodes = informers.informer(NODES)
        self._pods.add_handler(FuncHandler(self._pod_added, self._pod_updated, self._pod_deleted))
        self._nodes.add_handler(FuncHandler(self._node_added, self._node_updated, self._node_deleted))
        self._binds: asyncio.TaskGroup | None = None
        self._bind_slots = asyncio.Semaphore(BIND_CONCURRENCY)
        self._nominations: dict[str, str] = {}
        """pod key -> nominated node, for pending pods that preempted."""

    def _namespace_labels(self, namespace: str) -> Mapping[str, str]:
        ns = self._namespaces.get(namespace)
        return ((ns or {}).get("metadata") or {}).get("labels") or {}

    # -- informer handlers ----------------------------------------------------------------
    def _responsible(self, pod: Obj) -> bool:
        return (pod.get("spec") or {}).get("schedulerName", "default-scheduler") in self.frameworks

    def _track_nomination(self, pod: Obj) -> None:
        nominated = (pod.get("status") or {}).get("nominatedNodeName")
        if nominated and not node_name_of(pod):
            self._nominations[key_of(pod)] = nominated
        else:
            self._nominations.pop(key_of(pod), None)

    def _pod_added(self, pod: Obj) -> None:
        self._track_nomination(pod)
        if node_name_of(pod):
            self.cache.add_pod(pod)
            self.queue.move_all(ON_ASSIGNED_POD_ADD)
        elif self._responsible(pod) and not (pod.get("metadata") or {}).get("deletionTimestamp"):
            self.queue.add(pod)

    def _pod_updated(self, old: Obj, new: Obj) -> None:
        self._track_nomination(new)
        if node_name_of(new):
            if not node_name_of(old):
                self.queue.delete(new)
            self.cache.update_pod(new)
            if not node_name_of(old):
                self.queue.move_all(ON_ASSIGNED_POD_ADD)
        elif self._responsible(new):
            if (new.get("metadata") or {}).get("deletionTimestamp"):
                self.queue.delete(new)
            else:
                self.queue.update(new)

    def _pod_deleted(self, pod: Obj) -> None:
        self._nominations.pop(key_of(pod), None)
        if node_name_of(pod) or self.cache.has_pod(key_of(pod)):
            self.cache.remove_pod(pod)
            self.queue.move_all(ON_ASSIGNED_POD_DELETE)
        self.queue.delete(pod)

    def _node_added(self, node: Obj) -> None:
        self.cache.add_node(node)
        self.queue.move_all()

    def _node_updated(self, old: Obj, new: Obj) -> None:
        self.cache.update_node(new)
        if _node_changed(old, new):
            self.queue.move_all()

    def _node_deleted(self, node: Obj) -> None:
        self.cache.remove_node(node)

    def _storage_changed(self, obj: Obj) -> None:
        """A claim, volume or class changed: pods VolumeBinding refused may fit now."""
        self.queue.move_all(ON_STORAGE_CHANGE)

    # -- running --------------------------------------------------------------------------
    async def run(self) -> None:
        """Schedule until cancelled (informers must be running: `InformerFactory.run()`)."""
        await self._informers.wait_for_cache_sync()
        async with asyncio.TaskGroup() as tg:
            self._binds = tg
            tg.create_task(self.queue.run())
            try:
                while True:
                    await self.schedule_one()
                    # A cycle that found a pod waiting never suspends: let the bindings,
                    # events and informers started meanwhile run before the next one.
                    await asyncio.sleep(0)
            except QueueClosed:
                pass
            finally:
                self._binds = None

    async def schedule_one(self) -> None:
        queued = await self.queue.pop()
        pod = queued.pod
        fwk = self.frameworks.get((pod.get("spec") or {}).get("schedulerName", "default-scheduler"))
        if fwk is None or self._skip(pod):
            self.queue.done(queued.key)
            return
        nodes = self.cache.node_list()
        if not nodes:
            await self._failed(queued, NO_NODES, set(), UNSCHEDULABLE)
            return
        state = CycleState()
        host, result = fwk.schedule(state, queued.info, nodes, self._nominated())
        if not host:
            diagnosis = result.diagnosis
            nominated = ""
            if fwk.profile.post_filter:
                nominated, diagnosis.post_filter_msg = await self._preemptor.preempt(fwk, queued.info, nodes, diagnosis)
            if nominated:
                self._nominations[queued.key] = nominated
            message = fit_error_message(len(nodes), diagnosis)
            await self._failed(queued, message, diagnosis.rejecting_plugins, UNSCHEDULABLE, nominated=nominated)
            return
        assumed = self.cache.assume(queued.info, host)
        status = fwk.run_reserve(state, queued.info, host)
        if status is not None:
            self.cache.forget(queued.key)
            await self._failed(queued, status.message, {status.plugin}, SCHEDULER_ERROR)
            return
        self.queue.done(queued.key)
        if self._binds is not None:
            self._binds.create_task(self._bind(queued, assumed, host, fwk, state))
        else:
            await self._bind(queued, assumed, host, fwk, state)

    def _nominated(self) -> dict[str, list[PodInfo]]:
        """Pending pods by the node preemption nominated them to."""
        out: dict[str, list[PodInfo]] = {}
        for key, node in self._nominations.items():
            pod = self._pods.lister.get_by_key(key)
            if pod is not None and not node_name_of(pod):
                out.setdefault(node, []).append(PodInfo.of(pod))
        return out

    def _skip(self, pod: Obj) -> bool:
        key = key_of(pod)
        current = self._pods.lister.get_by_key(key)
        if current is None or (current.get("metadata") or {}).get("uid") != (pod.get("metadata") or {}).get("uid"):
            return True
        return bool((current.get("metadata") or {}).get("deletionTimestamp")) or bool(node_name_of(current)) \
            or self.cache.has_pod(key)

    async def _bind(self, queued: QueuedPodInfo, assumed: PodInfo, host: str, fwk: Framework,
                    state: CycleState) -> None:
        """PreBind plugins (binding the pod's volumes), then `pods/binding`."""
        status = await fwk.run_pre_bind(state, queued.info, host)
        if status is not None:
            fwk.run_unreserve(state, queued.info, host)
            self.cache.forget(queued.key)
            message = f'running PreBind plugin "{status.plugin}": {status.message}'
            log.info("pre-binding %s to %s failed: %s", queued.key, host, message)
            self._recorder.event(queued.pod, WARNING, "FailedScheduling", truncate_note(message), action="Scheduling")
            self.queue.add_backoff(queued)
            await self._update_condition(queued.pod, SCHEDULER_ERROR, message, "")
            return
        meta = queued.pod["metadata"]
        binding = {"apiVersion": "v1", "kind": "Binding",
                   "metadata": {"name": meta["name"], "namespace": meta.get("namespace", ""), "uid": meta.get("uid", "")},
                   "target": {"apiVersion": "v1", "kind": "Node", "name": host}}
        try:
            async with self._bind_slots:
                await self._client.create(PODS, binding, namespace=meta.get("namespace", ""), name=meta["name"],
                                          subresource="binding")
        except (errors.StatusError, TransportError) as exc:
            text = exc.message if isinstance(exc, errors.StatusError) else str(exc)
            log.info("binding %s to %s failed: %s", queued.key, host, text)
            fwk.run_unreserve(state, queued.info, host)
            self.cache.forget(queued.key)
            if isinstance(exc, errors.NotFound):
                return
            self._recorder.event(queued.pod, WARNING, "FailedScheduling", truncate_note(f"Binding rejected: {text}"),
                                 action="Scheduling")
            self.queue.add_backoff(queued)
            self.queue.move_all(ON_ASSIGNED_POD_DELETE)
            return
        log.debug("bound %s to %s", queued.key, host)
        self._recorder.event(queued.pod, NORMAL, "Scheduled", f"Successfully assigned {queued.key} to {host}",
                             action="Binding")

    async def _failed(self, queued: QueuedPodInfo, message: str, plugins: set[str], reason: str, *,
                      nominated: str = "") -> None:
        """handleSchedulingFailure: event, back to the queue, PodScheduled=False condition."""
        pod = queued.pod
        log.info("unable to schedule %s: %s", queued.key, message)
        self._recorder.event(pod, WARNING, "FailedScheduling", truncate_note(message), action="Scheduling")
        self.queue.add_unschedulable(queued, plugins)
        await self._update_condition(pod, reason, message, nominated)

    async def _update_condition(self, pod: Obj, reason: str, message: str, nominated: str) -> None:
        current = self._pods.lister.get_by_key(key_of(pod)) or pod
        status = current.get("status") or {}
        old = next((c for c in status.get("conditions") or [] if c.get("type") == "PodScheduled"), {})
        same = (old.get("status"), old.get("reason"), old.get("message")) == ("False", reason, message)
        if same and (not nominated or status.get("nominatedNodeName") == nominated):
            return
        condition = {"type": "PodScheduled", "status": "False", "lastProbeTime": None, "reason": reason,
                     "message": message,
                     "lastTransitionTime": old.get("lastTransitionTime") if old.get("status") == "False"
                     else format_time(self._clock.wall())}
        patch: Obj = {"status": {"conditions": [condition]}}
        if nominated:
            patch["status"]["nominatedNodeName"] = nominated
        meta = pod["metadata"]
        try:
            await self._client.patch(PODS, meta["name"], patch, namespace=meta.get("namespace", ""),
                                     patch_type=PatchType.STRATEGIC, subresource="status")
        except (errors.StatusError, TransportError) as exc:
            log.info("updating the PodScheduled condition of %s failed: %s", key_of(pod), exc)
