"""Serving CustomResourceDefinitions: the API server's own CRD controllers.

What apiextensions-apiserver's naming, establishing, discovery, OpenAPI and finalizer
controllers do, in one loop over the watch cache's CRD events (no HTTP round trip: this runs
inside the API server, as those controllers do in kube-apiserver):

- a created or changed CRD gets its names accepted (or refused on a conflict), its resources
  registered (specs, stores, a watch-cache root), discovery and OpenAPI rebuilt, and then the
  `NamesAccepted` and `Established` conditions and `status.acceptedNames` written;
- a CRD being deleted has every custom object deleted first, then the cleanup finalizer
  removed; when it is gone its resources stop being served;
- on start every stored CRD is served before the server reports ready.
"""

from __future__ import annotations

import asyncio
import copy
import logging
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import orjson

from pykube_server.api import errors
from pykube_server.apiserver import crdhandlers, metrics
from pykube_server.apiserver.admission.webhook.caller import Caller
from pykube_server.apiserver.discovery import Discovery
from pykube_server.apiserver.openapi import OpenAPI
from pykube_server.apiserver.requestinfo import RequestInfo
from pykube_server.registry.crd import resource as crresource
from pykube_server.registry.crd.conversion import Converter
from pykube_server.registry.crd.definition import CLEANUP_FINALIZER, accept_names, condition, set_condition
from pykube_server.registry.crd.versioned import VersionedResourceStore
from pykube_server.registry.resources import RESOURCES, preferred_versions
from pykube_server.registry.spec import ResourceSpec
from pykube_server.registry.store import ResourceStore

if TYPE_CHECKING:
    from pykube_server.apiserver.app import APIServer

log = logging.getLogger(__name__)

Obj = dict[str, Any]
CRD_KEY = ("apiextensions.k8s.io", "v1", "customresourcedefinitions")
RETRY_SECONDS = 1.0


@dataclass
class Served:
    uid: str
    fingerprint: bytes
    root: str
    keys: list[tuple[str, str, str]]
    definitions: dict[str, Obj]
    terminating: bool = False


class CRDServing:
    def __init__(self, server: APIServer) -> None:
        self.server = server
        self.served: dict[str, Served] = {}
        self.handlers = crdhandlers.make_handlers(self.terminating)
        self._builtin = {(s.group, s.plural) for s in RESOURCES}
        self._cleanups: dict[str, asyncio.Task[None]] = {}
        self._retry: set[str] = set()
        self._caller = Caller(self._service, self._endpoint_slices)

    # -- conversion webhooks ----------------------------------------------------------------
    async def _webhook_post(self, hook: Obj, review: Obj) -> Any:
        """POST a ConversionReview the way admission webhooks are called (URL, or a Service's
        ready endpoint with its caBundle)."""
        return await self._caller.post(hook, review)

    def _service(self, namespace: str, name: str) -> Obj | None:
        store = self.server.stores[("", "v1", "services")]
        cached = store.cacher.resource(store.root).objects.get(store.key(namespace, name))
        return cached.decode() if cached is not None else None

    def _endpoint_slices(self, namespace: str, service: str) -> list[Obj]:
        store = self.server.stores[("discovery.k8s.io", "v1", "endpointslices")]
        return [c.decode() for c in list(store.cacher.resource(store.root).objects.values())
                if c.namespace == namespace and c.labels.get("kubernetes.io/service-name") == service]

    # -- request routing ------------------------------------------------------------------
    def handler_for(self, spec: ResourceSpec, info: RequestInfo) -> crdhandlers.Handler | None:
        """The handler of a request that CRDs change (None: the generic one)."""
        if (spec.group, spec.version, spec.plural) == CRD_KEY and info.verb == "delete" and not info.subresource:
            return crdhandlers.delete_crd
        if not self.is_custom(spec):
            return None
        handler = self.handlers.get((info.verb, info.subresource if info.subresource == "scale" else ""))
        if handler is None or (info.subresource and info.subresource not in ("status", "scale")):
            raise errors.NotFound("the server could not find the requested resource", details={})
        return handler

    def is_custom(self, spec: ResourceSpec) -> bool:
        return (spec.group, spec.plural) not in self._builtin and "." in spec.group

    def terminating(self, group: str, plural: str) -> bool:
        return any(s.terminating and s.root == crresource.key_root(group, plural) for s in self.served.values())

    # -- the loop ---------------------------------------------------------------------------
    @property
    def _crd_store(self) -> ResourceStore:
        return self.server.stores[CRD_KEY]

    def _current(self, name: str) -> Obj | None:
        store = self._crd_store
        cached = store.cacher.resource(store.root).objects.get(store.key("", name))
        return cached.decode() if cached is not None else None

    def _all(self) -> list[Obj]:
        store = self._crd_store
        return [c.decode() for c in store.cacher.resource(store.root).objects.values()]

    async def sync(self) -> None:
        """Serve every stored CRD (at start, before the server reports ready)."""
        await self._crd_store.cacher.wait_fresh()
        for crd in self._all():
            await self._reconcile_logged(crd["metadata"]["name"])

    async def run(self) -> None:
        store = self._crd_store
        while True:
            watcher = store.cacher.watch(store.root, namespace="", matcher=lambda o: True, since=None)
            try:
                while not (watcher.overflowed or watcher.closed):
                    try:
                        await asyncio.wait_for(watcher.wakeup.wait(), RETRY_SECONDS if self._retry else None)
                    except TimeoutError:
                        pass
                    names = dict.fromkeys(obj.name for _, obj in watcher.drain())
                    names.update(dict.fromkeys(self._retry))
                    self._retry.clear()
                    for name in names:
                        await self._reconcile_logged(name)
            finally:
                store.cacher.stop_watch(store.root, watcher)

    async def _reconcile_logged(self, name: str) -> None:
        try:
            await self.reconcile(name)
        except asyncio.CancelledError:
            raise
        except Exception:
            log.exception("serving CustomResourceDefinition %s", name)
            self._retry.add(name)

    async def reconcile(self, name: str) -> None:
        crd = self._current(name)
        served = self.served.get(name)
        if crd is None or (served is not None and served.uid != crd["metadata"].get("uid")):
            if served is not None:
                self._unserve(name)
            if crd is None:
                return
        if crd["metadata"].get("deletionTimestamp"):
            if name in self.served:
                self.served[name].terminating = True
            if CLEANUP_FINALIZER in (crd["metadata"].get("finalizers") or []) and name not in self._cleanups:
                task = asyncio.create_task(self._cleanup(name), name=f"crd-cleanup-{name}")
                self._cleanups[name] = task
                task.add_done_callback(lambda _t, n=name: self._cleanups.pop(n, None))
            return
        accepted, reason, message = accept_names(crd, self._all(), self._builtin)
        if reason == "NoConflicts":
            await self._serve(name, crd)
        await self._write_status(name, accepted, reason, message)

    async def _serve(self, name: str, crd: Obj) -> None:
        fingerprint = orjson.dumps([crd["metadata"].get("uid"), crd.get("spec")], option=orjson.OPT_SORT_KEYS)
        served = self.served.get(name)
        if served is not None and served.fingerprint == fingerprint:
            return
        spec = crd["spec"]
        root = crresource.key_root(spec["group"], spec["names"]["plural"])
        pairs = crresource.specs_for(crd)
        server = self.server
        storage = next((v for v in spec["versions"] if v.get("storage")), spec["versions"][0])
        server.root_strategies[root] = crresource.CustomResourceStrategy(crd, storage)  # selectable fields
        await server.cacher.add_root(root)
        if served is not None:
            self._drop_specs(served)
        namespaces = server.stores[("", "v1", "namespaces")]
        converter = Converter(crd, self._webhook_post)
        keys = []
        for rs, strategy in pairs:
            key = (rs.group, rs.version, rs.plural)
            server.specs[key] = rs
            server.stores[key] = VersionedResourceStore(rs, strategy, namespaces.store, server.cacher, namespaces.root,
                                                        root=root, converter=converter)
            keys.append(key)
        self.served[name] = Served(crd["metadata"].get("uid", ""), fingerprint, root, keys,
                                   crresource.openapi_definitions(crd))
        self._rebuild()

    def _drop_specs(self, served: Served) -> None:
        for key in served.keys:
            self.server.specs.pop(key, None)
            self.server.stores.pop(key, None)

    def _unserve(self, name: str) -> None:
        served = self.served.pop(name)
        self._drop_specs(served)
        if not any(s.root == served.root for s in self.served.values()):
            self.server.cacher.remove_root(served.root)
            self.server.root_strategies.pop(served.root, None)
        self._rebuild()

    def _rebuild(self) -> None:
        """Discovery and OpenAPI documents with every served custom resource."""
        custom = sorted((self.server.specs[k] for s in self.served.values() for k in s.keys),
                        key=lambda rs: (rs.group, crresource.version_priority(rs.version), rs.plural))
        preferred = dict(preferred_versions())
        for rs in custom:
            versions = set(preferred.get(rs.group, ())) | {rs.version}
            preferred[rs.group] = tuple(sorted(versions, key=crresource.version_priority))
        specs = (*RESOURCES, *custom)
        settings = self.server.settings
        self.server.discovery = Discovery((*specs, *metrics.SPECS), preferred | metrics.PREFERRED,
                                          settings.server_address)
        definitions = {k: v for s in self.served.values() for k, v in s.definitions.items()}
        self.server.openapi = OpenAPI(specs, settings.kubernetes_version, extra_definitions=definitions)

    async def _write_status(self, name: str, accepted: Obj, reason: str, message: str) -> None:
        crd = self._current(name)
        if crd is None or crd["metadata"].get("deletionTimestamp"):
            return
        status = copy.deepcopy(crd.get("status") or {})
        ok = reason == "NoConflicts"
        status["acceptedNames"] = accepted
        set_condition(status, "NamesAccepted", "True" if ok else "False", reason, message)
        established = condition(crd, "Established")
        if ok and not (established and established.get("status") == "True"):
            set_condition(status, "Established", "True", "InitialNamesAccepted", "the initial names have been accepted")
        elif not ok and not (established and established.get("status") == "True"):
            set_condition(status, "Established", "False", "NotAccepted", "not all names are accepted")
        if status == crd.get("status"):
            return

        async def transform(current: Obj | None) -> Obj:
            if current is None:
                raise self._crd_store.not_found(name)
            current["status"] = status
            return current

        await self._crd_store.update("", name, transform, subresource="status")

    # -- deletion -------------------------------------------------------------------------------
    async def _cleanup(self, name: str) -> None:
        """Delete every object of a terminating CRD, then drop its finalizer (kube's
        finalizer controller)."""
        try:
            await self._set_terminating(name, "InstanceDeletionInProgress", "CustomResource deletion is in progress")
            served = self.served.get(name)
            if served is not None:
                await self._delete_objects(served)
            await self._set_terminating(name, "InstanceDeletionCompleted", "removed all instances", state="False")

            async def drop_finalizer(current: Obj | None) -> Obj:
                if current is None:
                    raise self._crd_store.not_found(name)
                meta = current["metadata"]
                meta["finalizers"] = [f for f in meta.get("finalizers") or [] if f != CLEANUP_FINALIZER]
                if not meta["finalizers"]:
                    del meta["finalizers"]
                return current

            await self._crd_store.update("", name, drop_finalizer)
        except errors.NotFound:
            pass
        except asyncio.CancelledError:
            raise
        except Exception:
            log.exception("removing the objects of CustomResourceDefinition %s", name)
            self._retry.add(name)

    async def _delete_objects(self, served: Served) -> None:
        if not served.keys:
            return
        store = self._storage_store(served)
        if store is None:
            return
        for _ in range(60):
            objects = list(store.cacher.resource(served.root).objects.values())
            if not objects:
                return
            for obj in objects:
                if obj.decode()["metadata"].get("deletionTimestamp"):
                    continue
                try:
                    await store.delete(obj.namespace, obj.name, {})
                except errors.NotFound:
                    pass
            await store.cacher.wait_fresh()
            if store.cacher.resource(served.root).objects:
                await self._set_terminating(served_name(self.served, served), "InstanceDeletionCheck",
                                            "could not confirm zero CustomResources remaining: timed out waiting for the condition")
                await asyncio.sleep(RETRY_SECONDS)
        raise RuntimeError("custom resources remain")

    def _storage_store(self, served: Served) -> ResourceStore | None:
        """The store of the storage version when it is served (deleting needs no conversion)."""
        stores = [s for s in (self.server.stores.get(k) for k in served.keys) if s is not None]
        for store in stores:
            if isinstance(store, VersionedResourceStore) and store.spec.version == store.converter.storage:
                return store
        return stores[0] if stores else None

    async def _set_terminating(self, name: str, reason: str, message: str, state: str = "True") -> None:
        async def transform(current: Obj | None) -> Obj:
            if current is None:
                raise self._crd_store.not_found(name)
            set_condition(current.setdefault("status", {}), "Terminating", state, reason, message)
            return current

        await self._crd_store.update("", name, transform, subresource="status")


def served_name(served: dict[str, Served], entry: Served) -> str:
    return next(n for n, s in served.items() if s is entry)
