"""The aggregator's loop: APIServices registered, checked, routed and merged into discovery.

Runs inside the API server (as kube-aggregator's controllers run inside kube-apiserver), over
the watch cache rather than HTTP:

- on start, a local APIService for every served built-in group-version of the priority table
  (label `automanaged: onstart`) and for `metrics.k8s.io/v1beta1`, which this server serves
  itself where a real cluster runs metrics-server (created once, never overwritten, so a real
  metrics-server's APIService may replace it); while running, one per served CRD version
  (label `automanaged: true`, deleted with the CRD);
- the `extension-apiserver-authentication` ConfigMap;
- the Available condition of every APIService, rechecked when it, its Service or the Service's
  EndpointSlices change, and every `RESYNC_SECONDS` (kube's 30 s);
- the routing table of remote group-versions the dispatcher asks (`remote_for`), and their
  discovery documents, fetched from the extension server after each passing check, merged into
  `/apis` and aggregated discovery (`discovery`), `Stale` while the server fails.
"""

from __future__ import annotations

import asyncio
import logging
import tempfile
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

import aiohttp
import orjson
from aiohttp import web

from pykube_server.api import errors
from pykube_server.apiserver import certs, metrics
from pykube_server.apiserver.aggregation import authconfig, priorities, proxy
from pykube_server.apiserver.aggregation.available import PROBE_USER, AvailabilityCheck, Verdict, with_condition
from pykube_server.apiserver.aggregation.backend import SLICE_SERVICE_LABEL, Backends, identity_headers
from pykube_server.apiserver.discovery import Discovery, RemoteVersion
from pykube_server.registry.crd import resource as crresource
from pykube_server.registry.resources import preferred_versions

if TYPE_CHECKING:
    from collections.abc import Callable, Iterable

    from pykube_server.apiserver.app import APIServer
    from pykube_server.storage.cacher import Watcher

log = logging.getLogger(__name__)
Obj = dict[str, Any]
RESYNC_SECONDS = 30.0
APISERVICES = ("apiregistration.k8s.io", "v1", "apiservices")
CRDS = ("apiextensions.k8s.io", "v1", "customresourcedefinitions")
SERVICES = ("", "v1", "services")
SLICES = ("discovery.k8s.io", "v1", "endpointslices")
CONFIGMAPS = ("", "v1", "configmaps")


class Aggregator:
    def __init__(self, server: APIServer) -> None:
        self.server = server
        pki_dir = server.settings.pki_dir
        if not pki_dir:  # in-process servers without a PKI: a throwaway front-proxy pair
            self._tmp = tempfile.TemporaryDirectory(prefix="pykube-front-proxy-")
            pki_dir = self._tmp.name
        self.pki_dir = Path(pki_dir)
        self.front_proxy = certs.ensure_front_proxy(self.pki_dir)
        self.backends = Backends(self._service, self._slices_of, self.front_proxy)
        self.checker = AvailabilityCheck(self.backends, self._service, self._slices_of)
        self.remote: dict[tuple[str, str], Obj] = {}
        """(group, version) -> the APIService object of every group-version served remotely."""
        self.fetched: dict[tuple[str, str], RemoteVersion] = {}
        self.openapi_urls: dict[tuple[str, str], str] = {}
        """(group, version) -> the serverRelativeURL of its OpenAPI v3 document on the extension server."""
        self._merged: tuple[tuple[int, int], Discovery] | None = None
        self._generation = 0
        self._last_check: dict[str, float] = {}
        self._session: aiohttp.ClientSession | None = None

    # -- the cache ----------------------------------------------------------------------------
    def _store(self, key: tuple[str, str, str]) -> Any:
        return self.server.stores[key]

    def _cached(self, key: tuple[str, str, str], namespace: str, name: str) -> Obj | None:
        store = self._store(key)
        cached = store.cacher.resource(store.root).objects.get(store.key(namespace, name))
        return cached.decode() if cached is not None else None

    def _all(self, key: tuple[str, str, str]) -> list[Obj]:
        store = self._store(key)
        return [c.decode() for c in list(store.cacher.resource(store.root).objects.values())]

    def _service(self, namespace: str, name: str) -> Obj | None:
        return self._cached(SERVICES, namespace, name)

    def _slices_of(self, namespace: str, service: str) -> Iterable[Obj]:
        store = self._store(SLICES)
        for cached in list(store.cacher.resource(store.root).objects.values()):
            if cached.namespace == namespace and cached.labels.get(SLICE_SERVICE_LABEL) == service:
                yield cached.decode()

    # -- serving ------------------------------------------------------------------------------
    def remote_for(self, path: str) -> Obj | None:
        """The APIService a request path is proxied by (`/apis/<group>/<version>[/...]`)."""
        if not self.remote or not path.startswith("/apis/"):
            return None
        parts = path.split("/", 5)
        if len(parts) < 4 or not parts[3]:
            return None
        return self.remote.get((parts[2], parts[3]))

    async def handle(self, request: web.Request, apiservice: Obj) -> web.StreamResponse:
        return await proxy.forward(self.backends, self._client(), request, apiservice)

    async def openapi(self, request: web.Request, path: str, local_index: Callable[[], bytes]) -> web.StreamResponse | None:
        """/openapi/v3 with the extension servers' group-versions added (kube-aggregator merges
        their indexes), and their documents proxied; None for everything served locally."""
        if not self.openapi_urls:
            return None
        if path == "/openapi/v3":
            index = orjson.loads(local_index())
            for (group, version), url in self.openapi_urls.items():
                index["paths"][f"apis/{group}/{version}"] = {"serverRelativeURL": url}
            index["paths"] = dict(sorted(index["paths"].items()))
            return web.Response(body=orjson.dumps(index), content_type="application/json")
        parts = path.split("/")
        if len(parts) == 6 and parts[3] == "apis" and (parts[4], parts[5]) in self.openapi_urls:
            apiservice = self.remote.get((parts[4], parts[5]))
            if apiservice is not None:
                return await self.handle(request, apiservice)
        return None

    def _client(self) -> aiohttp.ClientSession:
        if self._session is None or self._session.closed:
            self._session = aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=None, sock_connect=10))
        return self._session

    @property
    def discovery(self) -> Discovery:
        """The server's discovery documents with the remote group-versions merged in."""
        local = self.server.discovery
        if not self.remote:
            return local
        key = (id(local), self._generation)
        if self._merged is None or self._merged[0] != key:
            self._merged = (key, self._merge(local))
        return self._merged[1]

    def _merge(self, local: Discovery) -> Discovery:
        by_group: dict[str, list[Obj]] = {}
        for (group, _), apiservice in self.remote.items():
            by_group.setdefault(group, []).append(apiservice)
        remote_priority = {g: max(int(a["spec"].get("groupPriorityMinimum") or 0) for a in items)
                           for g, items in by_group.items()}
        crd_groups = {k[0] for s in self.server.crds.served.values() for k in s.keys}
        order = [g for g in local.preferred if g not in by_group]
        for group in sorted(by_group, key=lambda g: (-remote_priority[g], g)):
            p = remote_priority[group]
            at = next((i for i, g in enumerate(order)
                       if g and priorities.group_priority(g, crd_groups, remote_priority) < p), len(order))
            order.insert(at, group)
        preferred: dict[str, tuple[str, ...]] = {}
        for group in order:
            if group in by_group:
                items = sorted(by_group[group], key=lambda a: (-int(a["spec"].get("versionPriority") or 0),
                                                             crresource.version_priority(a["spec"]["version"])))
                preferred[group] = tuple(a["spec"]["version"] for a in items)
            else:
                preferred[group] = local.preferred[group]
        remote = {gv: self.fetched.get(gv, RemoteVersion((), False)) for gv in self.remote}
        return Discovery(local.resources, preferred, local.server_address, remote=remote)

    # -- the loop -----------------------------------------------------------------------------
    async def start(self) -> None:
        """Before the server reports ready: the ConfigMap and the built-in APIServices."""
        await self._publish_auth_config()
        await self._register_builtin()

    async def run(self) -> None:
        try:
            await self._loop()
        finally:
            if self._session is not None:
                await self._session.close()

    async def _publish_auth_config(self) -> None:
        ca = self.pki_dir / certs.CA_CERT_FILE
        data = authconfig.config_map_data(ca.read_text() if ca.exists() else "", self.front_proxy.ca_pem.decode())
        await authconfig.publish(self._store(CONFIGMAPS), data)

    async def _register_builtin(self) -> None:
        store = self._store(APISERVICES)
        wanted = [priorities.local_apiservice(g, v, priorities.BUILTIN[(g, v)], priorities.ON_START)
                  for g, versions in preferred_versions().items() for v in versions if (g, v) in priorities.BUILTIN]
        for obj in wanted:
            await self._ensure(store, obj, overwrite=True)
        await self._ensure(store, priorities.local_apiservice(metrics.GROUP, metrics.VERSION, priorities.METRICS_PRIORITY,
                                                              priorities.ON_START), overwrite=False)

    async def _ensure(self, store: Any, obj: Obj, *, overwrite: bool) -> None:
        name = obj["metadata"]["name"]
        current = self._cached(APISERVICES, "", name)
        if current is None:
            try:
                await store.create("", obj)
            except errors.AlreadyExists:
                pass
            return
        labels = current["metadata"].get("labels") or {}
        if not overwrite or labels.get(priorities.AUTOMANAGED_LABEL) is None or current.get("spec") == obj["spec"]:
            return

        async def transform(existing: Obj | None) -> Obj:
            if existing is None:
                raise store.not_found(name)
            existing["spec"] = obj["spec"]
            return existing

        await store.update("", name, transform)

    async def _loop(self) -> None:
        roots = [APISERVICES, CRDS, SERVICES, SLICES]
        watchers: list[tuple[Any, Watcher]] = []
        for key in roots:
            store = self._store(key)
            watcher = store.cacher.watch(store.root, namespace="", matcher=lambda o: True, since=None)
            watchers.append((store, watcher))
        try:
            first = True
            while True:
                changed: dict[tuple[str, str, str], list[Any]] = {}
                for key, (_, watcher) in zip(roots, watchers, strict=True):
                    if watcher.closed:
                        return
                    changed[key] = [obj for _, obj in watcher.drain()]
                await self._reconcile(changed, first)
                first = False
                waits = [asyncio.ensure_future(w.wakeup.wait()) for _, w in watchers]
                try:
                    await asyncio.wait(waits, timeout=self._next_resync(), return_when=asyncio.FIRST_COMPLETED)
                finally:
                    for w in waits:
                        w.cancel()
        finally:
            for store, watcher in watchers:
                store.cacher.stop_watch(store.root, watcher)

    def _next_resync(self) -> float:
        if not self._last_check:
            return RESYNC_SECONDS
        oldest = min(self._last_check.values())
        return max(0.5, oldest + RESYNC_SECONDS - time.monotonic())

    async def _reconcile(self, changed: dict[tuple[str, str, str], list[Any]], first: bool) -> None:
        try:
            if first or changed[CRDS] or changed[APISERVICES]:
                await self._sync_crd_apiservices()
            touched_services = {(o.namespace, o.name) for o in changed[SERVICES]}
            touched_services |= {(o.namespace, o.labels.get(SLICE_SERVICE_LABEL, "")) for o in changed[SLICES]}
            touched_apiservices = {o.name for o in changed[APISERVICES]}
            referenced = {(ref.get("namespace"), ref.get("name")) for a in self.remote.values()
                          if isinstance(ref := a["spec"].get("service"), dict)}
            if not (first or touched_apiservices or touched_services & referenced or changed[CRDS]
                    or self._next_resync() <= 0.5):
                return  # endpoint churn of Services no APIService uses: nothing to do
            apiservices = self._all(APISERVICES)
            self._route(apiservices)
            now = time.monotonic()
            for apiservice in apiservices:
                name = apiservice["metadata"]["name"]
                ref = (apiservice.get("spec") or {}).get("service")
                due = (first or name in touched_apiservices or name not in self._last_check
                       or now - self._last_check[name] >= RESYNC_SECONDS
                       or (isinstance(ref, dict) and (ref.get("namespace"), ref.get("name")) in touched_services))
                if due:
                    await self._check(apiservice)
        except asyncio.CancelledError:
            raise
        except Exception:
            log.exception("aggregator reconcile")

    def _route(self, apiservices: list[Obj]) -> None:
        remote = {}
        for a in apiservices:
            spec = a.get("spec") or {}
            if isinstance(spec.get("service"), dict) and a["metadata"].get("deletionTimestamp") is None:
                remote[(str(spec.get("group") or ""), str(spec.get("version") or ""))] = a
        if remote != self.remote:
            self.remote = remote
            self.fetched = {gv: v for gv, v in self.fetched.items() if gv in remote}
            self.openapi_urls = {gv: u for gv, u in self.openapi_urls.items() if gv in remote}
            self._generation += 1

    async def _sync_crd_apiservices(self) -> None:
        store = self._store(APISERVICES)
        wanted = {(k[0], k[1]) for s in self.server.crds.served.values() for k in s.keys}
        for group, version in sorted(wanted):
            if (group, version) in priorities.BUILTIN:
                continue
            await self._ensure(store, priorities.local_apiservice(group, version, priorities.CRD_PRIORITY,
                                                                  priorities.CONTINUOUS), overwrite=True)
        for apiservice in self._all(APISERVICES):
            labels = apiservice["metadata"].get("labels") or {}
            spec = apiservice.get("spec") or {}
            if labels.get(priorities.AUTOMANAGED_LABEL) == priorities.CONTINUOUS and \
                    (spec.get("group", ""), spec.get("version", "")) not in wanted:
                try:
                    await store.delete("", apiservice["metadata"]["name"], {})
                except errors.NotFound:
                    pass

    async def _fetch_openapi_url(self, gv: tuple[str, str], apiservice: Obj, verdict: Verdict) -> None:
        """Where the extension server's /openapi/v3 index puts this group-version, if it has one."""
        assert verdict.endpoint is not None
        url = None
        try:
            async with asyncio.timeout(5), self._client().get(
                    f"{verdict.endpoint.base_url}/openapi/v3",
                    headers=list(identity_headers(PROBE_USER)) + [("Accept", "application/json")],
                    ssl=self.backends.ssl_context(apiservice.get("spec") or {}),
                    server_hostname=verdict.endpoint.server_name) as resp:
                if resp.status == 200:
                    entry = (orjson.loads(await resp.read()).get("paths") or {}).get(f"apis/{gv[0]}/{gv[1]}") or {}
                    url = entry.get("serverRelativeURL") if isinstance(entry.get("serverRelativeURL"), str) else None
        except (aiohttp.ClientError, OSError, TimeoutError, orjson.JSONDecodeError, AttributeError) as exc:
            log.info("OpenAPI index of %s/%s failed: %s", gv[0], gv[1], exc)
        if url is None:
            self.openapi_urls.pop(gv, None)
        else:
            self.openapi_urls[gv] = url

    async def _check(self, apiservice: Obj) -> None:
        name = apiservice["metadata"]["name"]
        self._last_check[name] = time.monotonic()
        verdict = await self.checker.check(apiservice, self._client())
        spec = apiservice.get("spec") or {}
        gv = (str(spec.get("group") or ""), str(spec.get("version") or ""))
        if gv in self.remote:
            await self._fetch_discovery(gv, apiservice, verdict)
        status = with_condition(apiservice.get("status") or {}, verdict)
        if status == apiservice.get("status"):
            return
        store = self._store(APISERVICES)

        async def transform(current: Obj | None) -> Obj:
            if current is None:
                raise store.not_found(name)
            current["status"] = with_condition(current.get("status") or {}, verdict)
            return current

        try:
            updated, _ = await store.update("", name, transform, subresource="status")
        except (errors.NotFound, errors.Conflict):
            return
        if gv in self.remote:  # the proxy decides by the condition it routes with: no wait for the cache
            self.remote[gv] = updated
            self._generation += 1

    async def _fetch_discovery(self, gv: tuple[str, str], apiservice: Obj, verdict: Verdict) -> None:
        """The extension server's APIResourceList, kept for merged discovery (stale on failure)."""
        previous = self.fetched.get(gv)
        resources = None
        if verdict.status == "True" and verdict.endpoint is not None:
            url = f"{verdict.endpoint.base_url}/apis/{gv[0]}/{gv[1]}"
            try:
                async with asyncio.timeout(5), self._client().get(
                        url, headers=list(identity_headers(PROBE_USER)) + [("Accept", "application/json")],
                        ssl=self.backends.ssl_context(apiservice.get("spec") or {}),
                        server_hostname=verdict.endpoint.server_name) as resp:
                    if resp.status == 200:
                        doc = orjson.loads(await resp.read())
                        resources = tuple(r for r in doc.get("resources") or () if isinstance(r, dict))
                await self._fetch_openapi_url(gv, apiservice, verdict)
            except (aiohttp.ClientError, OSError, TimeoutError, orjson.JSONDecodeError, AttributeError) as exc:
                log.info("discovery of %s/%s failed: %s", gv[0], gv[1], exc)
        fetched = RemoteVersion(resources, True) if resources is not None else \
            RemoteVersion(previous.resources if previous else (), False)
        if fetched != previous:
            self.fetched[gv] = fetched
            self._generation += 1
