"""The store of one served version of a custom resource: every object crosses a `Converter`.

All versions of a CRD share one key root and one watch cache holding objects as stored. This
`ResourceStore` serves one version over it: reads (get, list, watch events) are converted to
the version, and writes are converted to the storage version just before the
compare-and-swap, after the request's own version was defaulted, validated and admitted (kube's
storage codec does the same). Objects read in their own version still get the version's
`default`s (a default added to the schema later shows on old objects, as in kube). A list is
converted in one batch; a watch converts each batch of events; a watch whose events cannot be
converted ends with an ERROR event carrying the 500.
"""

from __future__ import annotations

import asyncio
import copy
import dataclasses
from collections import deque
from collections.abc import Awaitable, Callable
from typing import Any

import orjson

from pykube_server.api import errors
from pykube_server.registry.crd.conversion import Converter
from pykube_server.registry.crd.resource import CustomResourceStrategy, CustomStatusStrategy
from pykube_server.registry.crd.schema import apply_defaults, has_defaults
from pykube_server.registry.spec import ResourceSpec
from pykube_server.registry.store import ListResult, ResourceStore
from pykube_server.storage.cacher import CachedObject, Cacher, Watcher
from pykube_server.storage.store import Store

Obj = dict[str, Any]


class _ConvertingStorage:
    """The storage layer as one version sees it: objects go in and come out in that version."""

    def __init__(self, inner: Store, converter: Converter, version: str) -> None:
        self._inner = inner
        self._converter = converter
        self._version = version

    def __getattr__(self, name: str) -> Any:
        return getattr(self._inner, name)

    async def _out(self, obj: Obj) -> Obj:
        return (await self._converter.convert([obj], self._version))[0]

    async def create(self, key: str, obj: Obj) -> Obj:
        stored = await self._inner.create(key, await self._converter.to_storage(obj))
        return await self._out(stored)

    async def guaranteed_update(self, key: str, root: str,
                                update: Callable[[Obj | None, int], Awaitable[tuple[Obj | None, str]]]
                                ) -> tuple[Obj | None, str]:
        async def in_version(current: Obj | None, revision: int) -> tuple[Obj | None, str]:
            view = await self._out(current) if current is not None else None
            pristine = copy.deepcopy(view)
            new, action = await update(view, revision)
            if new is None:
                return None, action
            if action == "delete" or (new is view and new == pristine):
                return current, action  # unchanged (or going): keep the stored form, no conversion back
            return await self._converter.to_storage(new), action

        obj, action = await self._inner.guaranteed_update(key, root, in_version)
        return (await self._out(obj) if obj is not None else None), action


class VersionedResourceStore(ResourceStore):
    """One served version of a custom resource (also its `/status` with the CRD's rules)."""

    def __init__(self, spec: ResourceSpec, strategy: CustomResourceStrategy, store: Store, cacher: Cacher,
                 namespaces_root: str, *, root: str, converter: Converter) -> None:
        super().__init__(spec, strategy, _ConvertingStorage(store, converter, spec.version), cacher,  # type: ignore[arg-type]
                         namespaces_root, root=root, custom=True)
        self.status_strategy = CustomStatusStrategy(strategy)
        self.converter = converter
        self._defaults = has_defaults(strategy.schema)

    async def convert_cached(self, items: list[CachedObject]) -> list[CachedObject]:
        """Cache entries in this version (converted ones are pruned and defaulted by the
        version's schema; the others get its defaults when it has any, as kube defaults what it
        reads from storage)."""
        desired = self.converter.api_version(self.spec.version)
        marker = b'"apiVersion":' + orjson.dumps(desired)
        todo = [i for i, item in enumerate(items) if marker not in item.raw]
        out = [self._defaulted(item) for item in items] if self._defaults else list(items)
        if not todo:
            return out
        decoded = [items[i].decode() for i in todo]
        converted = await self.converter.convert(decoded, self.spec.version)
        for i, obj in zip(todo, converted, strict=True):
            out[i] = dataclasses.replace(items[i], raw=orjson.dumps(obj))
        return out

    def _defaulted(self, item: CachedObject) -> CachedObject:
        obj = item.decode()
        apply_defaults(obj, self.strategy.schema)  # type: ignore[attr-defined]
        return item if obj == item.decode() else dataclasses.replace(item, raw=orjson.dumps(obj))

    async def get(self, namespace: str, name: str, *, resource_version: str = "") -> CachedObject:
        cached = await super().get(namespace, name, resource_version=resource_version)
        return (await self.convert_cached([cached]))[0]

    async def list(self, namespace: str, **options: Any) -> ListResult:  # type: ignore[override]
        result = await super().list(namespace, **options)
        result.items = await self.convert_cached(result.items)
        return result

    async def watch(self, namespace: str, **options: Any) -> Watcher:  # type: ignore[override]
        inner = await super().watch(namespace, **options)
        watcher = ConvertingWatcher(inner, self)
        try:
            await watcher.start()
        except errors.StatusError:
            super().stop_watch(inner)
            raise
        return watcher  # type: ignore[return-value]

    def stop_watch(self, watcher: Watcher) -> None:
        if isinstance(watcher, ConvertingWatcher):
            watcher.stop()
            super().stop_watch(watcher.inner)
        else:
            super().stop_watch(watcher)


class ConvertingWatcher:
    """A Watcher look-alike whose events are converted, batch by batch, by a pump task."""

    def __init__(self, inner: Watcher, store: VersionedResourceStore) -> None:
        self.inner = inner
        self.store = store
        self.initial: deque[tuple[str, CachedObject]] = deque()
        self.wakeup = asyncio.Event()
        self._ready: deque[tuple[str, CachedObject]] = deque()
        self._ended = False
        self._task: asyncio.Task[None] | None = None

    @property
    def start_revision(self) -> int:
        return self.inner.start_revision

    @property
    def overflowed(self) -> bool:
        return self.inner.overflowed and not self._ready

    @property
    def closed(self) -> bool:
        return (self._ended or self.inner.closed) and not self._ready

    async def start(self) -> None:
        """Convert the initial events (so they are all there before the initial-events-end
        bookmark), then follow the live ones."""
        initial = list(self.inner.initial)
        self.inner.initial.clear()
        self.initial.extend(await self._convert(initial))
        if self.initial:
            self.wakeup.set()
        self._task = asyncio.create_task(self._pump(), name="crd-watch-conversion")

    async def _convert(self, events: list[tuple[str, CachedObject]]) -> list[tuple[str, CachedObject]]:
        converted = await self.store.convert_cached([obj for _, obj in events])
        return [(kind, obj) for (kind, _), obj in zip(events, converted, strict=True)]

    async def _pump(self) -> None:
        inner = self.inner
        while True:
            await inner.wakeup.wait()
            batch = inner.drain()
            if batch:
                try:
                    self._ready.extend(await self._convert(batch))
                except asyncio.CancelledError:
                    raise
                except Exception as exc:  # the stream ends with the error, as a broken watch does
                    failure = exc if isinstance(exc, errors.StatusError) else errors.InternalError(
                        f"Internal error occurred: {exc}")
                    self._ready.append(("ERROR", _status_object(failure)))
                    self._ended = True
                    self.wakeup.set()
                    return
                self.wakeup.set()
            if inner.overflowed or inner.closed:
                self._ended = True
                self.wakeup.set()
                return

    def drain(self, max_events: int = 512) -> list[tuple[str, CachedObject]]:
        out: list[tuple[str, CachedObject]] = []
        while self.initial and len(out) < max_events:
            out.append(self.initial.popleft())
        while self._ready and len(out) < max_events:
            out.append(self._ready.popleft())
        if not self.initial and not self._ready and not self._ended:
            self.wakeup.clear()
        return out

    def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()


def _status_object(exc: errors.StatusError) -> CachedObject:
    return CachedObject("", orjson.dumps(exc.status()), 0, "", "", {}, {})
