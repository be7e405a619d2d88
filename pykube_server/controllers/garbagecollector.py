"""garbage-collector-controller: deletes dependents whose owners are gone, and runs the
`foregroundDeletion` and `orphan` finalizers.

kube-controller-manager's garbage collector in three parts:

* The graph builder: one informer per deletable, listable, watchable resource found through
  discovery (re-discovered every `DISCOVERY_PERIOD_SECONDS`, so new kinds are followed), and a
  graph of nodes by uid with owner -> dependents edges from `metadata.ownerReferences`. An owner
  that is referenced but not (yet) seen becomes a *virtual* node, checked against the API.
  Informer handlers only update the graph and enqueue uids; they run in the event loop, so the
  graph needs no lock (kube funnels graph changes through one goroutine for the same reason).
* attemptToDelete (a work queue of uids): re-read the object; owners that are gone (or whose
  uid changed) are *dangling*, owners being deleted in foreground are *waiting*, the rest are
  *solid*. With a solid owner, dangling/waiting references are removed by a patch; without one
  the object is deleted (Foreground if a waiting owner needs it to delete its own dependents
  first, else as its finalizers ask, else Background). An object being deleted in foreground
  drops `foregroundDeletion` once no dependent with `blockOwnerDeletion` is left.
* attemptToOrphan: for an object deleted with the `orphan` finalizer, remove the reference to
  it from every dependent, then drop the finalizer.

The API server adds the two finalizers on DELETE from the propagation policy; whatever
removes the last finalizer lets the server delete the object. Objects are watched in full
(the client has no metadata-only informers yet), and owners are checked with live GETs, as
kube does, so a stale cache never deletes anything.
"""

from __future__ import annotations

import asyncio
import logging
from collections import OrderedDict
from dataclasses import dataclass, field
from typing import Any

from pykube_server.api import errors
from pykube_server.api.types import Obj
from pykube_server.client.informer import FuncHandler, Informer
from pykube_server.client.rest import Client, PatchType, Resource
from pykube_server.controllers.framework import Context, Controller, Request, Result
from pykube_server.controllers.namespace import APIResource, server_preferred_resources

log = logging.getLogger(__name__)

ORPHAN = "orphan"
FOREGROUND = "foregroundDeletion"
DISCOVERY_PERIOD_SECONDS = 30.0
"""kube resyncs the garbage collector's view of the API every 30 s."""
WORKERS = 20
"""kube-controller-manager's --concurrent-gc-syncs default."""
IGNORED_RESOURCES = {("", "events"), ("events.k8s.io", "events")}
ABSENT_CACHE_SIZE = 500
UNOBSERVED_RETRY_SECONDS = 1.0


class UnknownKind(Exception):
    """An ownerReference names a kind that discovery does not know (retried with back-off)."""


@dataclass(eq=False)
class Node:
    """An object in the graph (or a virtual one: an owner referenced but not observed)."""

    uid: str
    api_version: str
    kind: str
    namespace: str
    name: str
    owners: list[Obj] = field(default_factory=list)
    dependents: set[Node] = field(default_factory=set)
    virtual: bool = False
    being_deleted: bool = False
    deleting_dependents: bool = False

    def blocking_dependents(self) -> list[Node]:
        return [d for d in self.dependents
                if any(r.get("uid") == self.uid and r.get("blockOwnerDeletion") for r in d.owners)]

    def __str__(self) -> str:
        where = f"{self.namespace}/" if self.namespace else ""
        return f"{self.kind} {where}{self.name} ({self.uid})"


def _meta(obj: Obj) -> Obj:
    meta: Obj = obj.get("metadata") or {}
    return meta


def _finalizers(obj: Obj) -> list[str]:
    return list(_meta(obj).get("finalizers") or [])


def _deleting_with(obj: Obj | None, finalizer: str) -> bool:
    return obj is not None and bool(_meta(obj).get("deletionTimestamp")) and finalizer in _finalizers(obj)


class RESTMapper:
    """apiVersion + kind -> Resource, from discovery (preferred versions)."""

    def __init__(self) -> None:
        self._by_kind: dict[tuple[str, str], Resource] = {}

    def reset(self, resources: list[APIResource]) -> None:
        self._by_kind = {(r.resource.group, r.kind): r.resource for r in resources}

    def resource_for(self, api_version: str, kind: str) -> Resource:
        group = api_version.rpartition("/")[0]
        resource = self._by_kind.get((group, kind))
        if resource is None:
            raise UnknownKind(f"unable to map {api_version}, Kind={kind} to a resource")
        return resource


class Graph:
    """The owner/dependent graph, kept by informer events (kube's GraphBuilder)."""

    def __init__(self, gc: GarbageCollector) -> None:
        self.nodes: dict[str, Node] = {}
        self.absent: OrderedDict[str, None] = OrderedDict()
        self._gc = gc

    def mark_absent(self, uid: str) -> None:
        self.absent[uid] = None
        self.absent.move_to_end(uid)
        while len(self.absent) > ABSENT_CACHE_SIZE:
            self.absent.popitem(last=False)

    # -- events --------------------------------------------------------------------------------
    def observe(self, old: Obj | None, obj: Obj) -> None:
        meta = _meta(obj)
        uid = meta.get("uid")
        if not uid:
            return
        refs = list(meta.get("ownerReferences") or [])
        node = self.nodes.get(uid)
        if node is None:
            node = Node(uid, obj.get("apiVersion", ""), obj.get("kind", ""), meta.get("namespace", ""),
                        meta.get("name", ""), owners=refs)
            self.nodes[uid] = node
            self._add_to_owners(node, refs)
        else:
            node.api_version, node.kind = obj.get("apiVersion", node.api_version), obj.get("kind", node.kind)
            node.namespace, node.name, node.virtual = meta.get("namespace", ""), meta.get("name", ""), False
            self._owners_changed(node, refs)
        node.being_deleted = bool(meta.get("deletionTimestamp"))
        self._transitions(old, obj, node)

    def forget(self, obj: Obj) -> None:
        node = self.nodes.get(_meta(obj).get("uid", ""))
        if node is not None:
            self.remove(node)

    def remove(self, node: Node) -> None:
        """The object is gone: its dependents may now be garbage, and a waiting owner may be done."""
        if self.nodes.get(node.uid) is not node:
            return
        del self.nodes[node.uid]
        self._remove_from_owners(node, node.owners)
        if node.dependents:
            self.mark_absent(node.uid)
        for dependent in node.dependents:
            self._gc.attempt_to_delete(dependent)
        for ref in node.owners:
            owner = self.nodes.get(ref.get("uid", ""))
            if owner is not None and owner.deleting_dependents:
                self._gc.attempt_to_delete(owner)

    # -- edges ---------------------------------------------------------------------------------
    def _add_to_owners(self, node: Node, refs: list[Obj]) -> None:
        for ref in refs:
            owner = self.nodes.get(ref.get("uid", ""))
            if owner is None:
                owner = Node(ref.get("uid", ""), ref.get("apiVersion", ""), ref.get("kind", ""), node.namespace,
                             ref.get("name", ""), virtual=True)
                self.nodes[owner.uid] = owner
                self._gc.attempt_to_delete(owner)  # does it exist? a virtual delete if not
            owner.dependents.add(node)

    def _remove_from_owners(self, node: Node, refs: list[Obj]) -> None:
        for ref in refs:
            owner = self.nodes.get(ref.get("uid", ""))
            if owner is not None:
                owner.dependents.discard(node)

    def _owners_changed(self, node: Node, refs: list[Obj]) -> None:
        old = {r.get("uid"): r for r in node.owners}
        new = {r.get("uid"): r for r in refs}
        if old == new:
            return
        removed = [r for uid, r in old.items() if uid not in new]
        added = [r for uid, r in new.items() if uid not in old]
        unblocked = [r for uid, r in old.items()
                     if uid in new and r.get("blockOwnerDeletion") and not new[uid].get("blockOwnerDeletion")]
        node.owners = refs
        self._remove_from_owners(node, removed)
        self._add_to_owners(node, added)
        for ref in removed + unblocked:  # an owner waiting on this dependent may be done now
            owner = self.nodes.get(ref.get("uid", ""))
            if owner is not None and owner.deleting_dependents:
                self._gc.attempt_to_delete(owner)

    def _transitions(self, old: Obj | None, obj: Obj, node: Node) -> None:
        if _deleting_with(obj, ORPHAN) and not _deleting_with(old, ORPHAN):
            self._gc.attempt_to_orphan(node)
        if _deleting_with(obj, FOREGROUND):
            starts = not node.deleting_dependents
            node.deleting_dependents = True
            if starts or not _deleting_with(old, FOREGROUND):
                for dependent in node.dependents:
                    self._gc.attempt_to_delete(dependent)
                self._gc.attempt_to_delete(node)
        else:
            node.deleting_dependents = False


class GarbageCollector(Controller):
    """Runs discovery and the graph, and the attemptToDelete workers (this Controller's queue,
    keyed by `Request("", uid)`) beside the attemptToOrphan workers (`self.orphaner`)."""

    def __init__(self, ctx: Context, *, workers: int = WORKERS,
                 discovery_period: float = DISCOVERY_PERIOD_SECONDS) -> None:
        super().__init__("garbage-collector-controller", _AttemptToDelete(self), workers=workers, clock=ctx.clock)
        self.orphaner = Controller("garbage-collector-orphaner", _AttemptToOrphan(self), workers=workers,
                                   clock=ctx.clock)
        self.ctx = ctx
        self.client: Client = ctx.client
        self.graph = Graph(self)
        self.mapper = RESTMapper()
        self.monitors: dict[Resource, Informer] = {}
        self.discovery_period = discovery_period

    def attempt_to_delete(self, node: Node) -> None:
        self.queue.add(Request("", node.uid))

    def attempt_to_orphan(self, node: Node) -> None:
        self.orphaner.queue.add(Request("", node.uid))

    # -- running -------------------------------------------------------------------------------
    async def run(self) -> None:
        while not await self._sync_monitors():
            await self.ctx.clock.sleep(1.0)
        for informer in list(self.monitors.values()):
            await informer.wait_synced()
        log.info("garbage collector: all %d resource monitors have synced", len(self.monitors))
        try:
            async with asyncio.TaskGroup() as tg:
                tg.create_task(super().run())
                tg.create_task(self.orphaner.run())
                tg.create_task(self._rediscover())
        finally:
            self.orphaner.queue.shutdown()

    async def _rediscover(self) -> None:
        while True:
            await self.ctx.clock.sleep(self.discovery_period)
            await self._sync_monitors()

    async def _sync_monitors(self) -> bool:
        """Follow every deletable resource discovery reports; False if discovery failed."""
        try:
            found = await server_preferred_resources(self.client)
        except Exception as exc:  # the API may be briefly unavailable; try again
            log.warning("garbage collector: discovery failed: %s", exc)
            return False
        self.mapper.reset(found.resources)
        for api_resource in found.resources:
            resource = api_resource.resource
            if (resource.group, resource.plural) in IGNORED_RESOURCES or resource in self.monitors:
                continue
            if not {"delete", "list", "watch"} <= api_resource.verbs:
                continue
            self.monitors[resource] = self._monitor(resource)
        return True

    def _monitor(self, resource: Resource) -> Informer:
        informer = self.ctx.informer(resource, namespace="")
        graph = self.graph
        informer.add_handler(FuncHandler(add=lambda obj: graph.observe(None, obj),
                                         update=graph.observe, delete=graph.forget))
        return informer

    # -- API helpers ---------------------------------------------------------------------------
    def _resource(self, node: Node) -> Resource:
        return self.mapper.resource_for(node.api_version, node.kind)

    async def get(self, node: Node) -> Obj | None:
        """The live object, or None when it is gone or was replaced (another uid)."""
        resource = self._resource(node)
        try:
            obj = await self.client.get(resource, node.name, namespace=node.namespace if resource.namespaced else "")
        except errors.NotFound:
            return None
        return obj if _meta(obj).get("uid") == node.uid else None

    async def delete(self, node: Node, policy: str) -> None:
        resource = self._resource(node)
        log.info("garbage collector: deleting %s with propagation %s", node, policy)
        try:
            await self.client.delete(resource, node.name, namespace=node.namespace, propagation_policy=policy,
                                     preconditions={"uid": node.uid})
        except (errors.NotFound, errors.Conflict):
            pass  # gone, or replaced by a new object of the same name

    async def patch_owner_refs(self, node: Node, change: Any) -> None:
        """Rewrite the ownerReferences with `change(refs) -> refs`, retrying on conflicts."""
        resource = self._resource(node)
        for _ in range(5):
            obj = await self.get(node)
            if obj is None:
                return
            refs = list(_meta(obj).get("ownerReferences") or [])
            new = change(refs)
            if new == refs:
                return
            patch = {"metadata": {"ownerReferences": new or None, "uid": node.uid,
                                  "resourceVersion": _meta(obj).get("resourceVersion")}}
            try:
                await self.client.patch(resource, node.name, patch, namespace=node.namespace,
                                        patch_type=PatchType.MERGE)
                return
            except errors.NotFound:
                return
            except errors.Conflict:
                continue
        raise errors.Conflict(f"could not update the ownerReferences of {node}: too many conflicts")

    async def remove_finalizer(self, node: Node, finalizer: str) -> None:
        resource = self._resource(node)
        for _ in range(5):
            obj = await self.get(node)
            if obj is None or finalizer not in _finalizers(obj):
                return
            left = [f for f in _finalizers(obj) if f != finalizer]
            patch = {"metadata": {"finalizers": left or None, "resourceVersion": _meta(obj).get("resourceVersion")}}
            log.info("garbage collector: removing the %s finalizer from %s", finalizer, node)
            try:
                await self.client.patch(resource, node.name, patch, namespace=node.namespace,
                                        patch_type=PatchType.MERGE)
                return
            except errors.NotFound:
                return
            except errors.Conflict:
                continue
        raise errors.Conflict(f"could not remove the {finalizer} finalizer from {node}: too many conflicts")


@dataclass
class _Classified:
    solid: list[Obj] = field(default_factory=list)
    dangling: list[Obj] = field(default_factory=list)
    waiting: list[Obj] = field(default_factory=list)


class _NamespacedOwnerOfClusterScoped(Exception):
    """A cluster-scoped object names a namespaced owner: an error no retry fixes."""


class _AttemptToDelete:
    """kube's attemptToDeleteItem for one uid."""

    def __init__(self, gc: GarbageCollector) -> None:
        self.gc = gc

    async def reconcile(self, request: Request) -> Result:
        node = self.gc.graph.nodes.get(request.name)
        if node is None or (node.being_deleted and not node.deleting_dependents):
            return Result()
        latest = await self.gc.get(node)
        if latest is None:
            self.gc.graph.remove(node)  # kube's virtual delete event
            return Result()
        if node.deleting_dependents:
            await self._process_deleting_dependents(node)
        elif _meta(latest).get("ownerReferences"):
            try:
                await self._collect(node, latest)
            except _NamespacedOwnerOfClusterScoped as exc:
                log.warning("garbage collector: %s", exc)
                return Result()
        if node.virtual:  # exists, but no informer has shown it to us yet
            return Result(requeue_after=UNOBSERVED_RETRY_SECONDS)
        return Result()

    async def _process_deleting_dependents(self, node: Node) -> None:
        blocking = node.blocking_dependents()
        if not blocking:
            await self.gc.remove_finalizer(node, FOREGROUND)
            return
        for dependent in blocking:
            if not dependent.deleting_dependents:
                self.gc.attempt_to_delete(dependent)

    async def _collect(self, node: Node, latest: Obj) -> None:
        refs = list(_meta(latest).get("ownerReferences") or [])
        found = await self._classify(node, refs)
        if found.solid:
            stale = {r.get("uid") for r in found.dangling + found.waiting}
            if stale:
                await self.gc.patch_owner_refs(node, lambda rs: [r for r in rs if r.get("uid") not in stale])
            return
        if found.waiting and node.dependents:
            if any(d.deleting_dependents for d in node.dependents):
                # a possible cycle: stop blocking our owners, then go in foreground
                await self.gc.patch_owner_refs(node, _unblock)
            await self.gc.delete(node, "Foreground")
            return
        finalizers = _finalizers(latest)
        policy = "Orphan" if ORPHAN in finalizers else "Foreground" if FOREGROUND in finalizers else "Background"
        await self.gc.delete(node, policy)

    async def _classify(self, node: Node, refs: list[Obj]) -> _Classified:
        found = _Classified()
        for ref in refs:
            owner = await self._owner(node, ref)
            if owner is None:
                found.dangling.append(ref)
            elif _deleting_with(owner, FOREGROUND):
                found.waiting.append(ref)
            else:
                found.solid.append(ref)
        return found

    async def _owner(self, node: Node, ref: Obj) -> Obj | None:
        """The owner the reference names, or None if it is gone (kube's isDangling)."""
        uid = ref.get("uid", "")
        if uid in self.gc.graph.absent:
            return None
        resource = self.gc.mapper.resource_for(ref.get("apiVersion", ""), ref.get("kind", ""))
        if resource.namespaced and not node.namespace:
            raise _NamespacedOwnerOfClusterScoped(
                f"{node} is cluster-scoped but refers to a namespaced owner of kind {ref.get('kind')}")
        try:
            owner = await self.gc.client.get(resource, ref.get("name", ""),
                                             namespace=node.namespace if resource.namespaced else "")
        except errors.NotFound:
            self.gc.graph.mark_absent(uid)
            return None
        if _meta(owner).get("uid") != uid:
            self.gc.graph.mark_absent(uid)
            return None
        return owner


def _unblock(refs: list[Obj]) -> list[Obj]:
    return [{**r, "blockOwnerDeletion": False} if r.get("blockOwnerDeletion") else r for r in refs]


class _AttemptToOrphan:
    """kube's attemptToOrphanWorker: free the dependents, then drop the `orphan` finalizer."""

    def __init__(self, gc: GarbageCollector) -> None:
        self.gc = gc

    async def reconcile(self, request: Request) -> Result:
        owner = self.gc.graph.nodes.get(request.name)
        if owner is None:
            return Result()
        dependents = list(owner.dependents)
        results = await asyncio.gather(*(self._release(d, owner.uid) for d in dependents), return_exceptions=True)
        failures = [r for r in results if isinstance(r, BaseException)]
        if failures:
            raise failures[0]
        await self.gc.remove_finalizer(owner, ORPHAN)
        return Result()

    async def _release(self, dependent: Node, owner_uid: str) -> None:
        await self.gc.patch_owner_refs(dependent, lambda rs: [r for r in rs if r.get("uid") != owner_uid])


def create(ctx: Context) -> Controller:
    """The `garbage-collector-controller` factory."""
    return GarbageCollector(ctx, discovery_period=float(ctx.options.get("gc_discovery_period_seconds",
                                                                        DISCOVERY_PERIOD_SECONDS)))
