"""Informers: a local, always-current copy of one resource, and change notifications.

This is client-go's reflector + DeltaFIFO + shared informer folded into one loop, because in
one event loop nothing needs the FIFO between the watch and the handlers:

1. list (consistent read, paged by `page_size`), replace the Indexer, fire `on_add` /
   `on_update` / `on_delete` for what differs from what we had (nothing on the first list but
   adds), and mark the informer synced;
2. watch from the list's resourceVersion with `allowWatchBookmarks=true` and a randomised
   `timeoutSeconds` (5-10 minutes, client-go's spread so that informers do not reconnect in
   step), apply each event to the Indexer and then call the handlers;
3. when the watch ends cleanly, or the connection drops, watch again from the last
   resourceVersion seen (bookmarks advance it without touching the cache);
4. when the server says 410 Expired (an HTTP 410, or an ERROR event in the stream), that
   resourceVersion is gone: relist and diff, as in step 1;
5. other failures back off exponentially (0.8 s doubling to 30 s) on the injected clock.

Handlers are synchronous and must not block (they enqueue keys); an exception in one is logged
and does not stop the informer. A relist fires `on_update` only for objects whose
resourceVersion changed (client-go fires it for every object; the difference is invisible to
level-triggered handlers). Cached objects are shared: never mutate them.
"""

from __future__ import annotations

import asyncio
import logging
import random
from collections.abc import AsyncIterator, Callable, Mapping
from dataclasses import dataclass
from typing import Any, Protocol

from pykube_server.api import errors
from pykube_server.api.types import Obj
from pykube_server.client.cache import Indexer, IndexFunc, Lister, key_of
from pykube_server.client.clock import REAL_CLOCK, Clock
from pykube_server.client.rest import Resource, TransportError

log = logging.getLogger(__name__)

PAGE_SIZE = 500
MIN_WATCH_TIMEOUT_SECONDS = 300
BACKOFF_INITIAL_SECONDS = 0.8
BACKOFF_MAX_SECONDS = 30.0
SHORT_WATCH_SECONDS = 1.0
"""A watch that ends this fast without a single event is treated as a failure (backoff)."""


class EventHandler(Protocol):
    """Receives cache changes after the Indexer already reflects them. Must not block."""

    def on_add(self, obj: Obj) -> None: ...

    def on_update(self, old: Obj, new: Obj) -> None: ...

    def on_delete(self, obj: Obj) -> None: ...


@dataclass(frozen=True)
class FuncHandler:
    """An EventHandler from optional plain functions."""

    add: Callable[[Obj], None] | None = None
    update: Callable[[Obj, Obj], None] | None = None
    delete: Callable[[Obj], None] | None = None

    def on_add(self, obj: Obj) -> None:
        if self.add:
            self.add(obj)

    def on_update(self, old: Obj, new: Obj) -> None:
        if self.update:
            self.update(old, new)

    def on_delete(self, obj: Obj) -> None:
        if self.delete:
            self.delete(obj)


class ListWatchClient(Protocol):
    """The part of `rest.Client` an informer uses (a fake in unit tests)."""

    async def list(self, resource: Resource, **kwargs: Any) -> Obj: ...

    def watch(self, resource: Resource, **kwargs: Any) -> AsyncIterator[Obj]: ...


class _Expired(Exception):
    """Our resourceVersion is no longer served: relist."""


class _Backoff:
    def __init__(self, clock: Clock) -> None:
        self._clock = clock
        self._next = BACKOFF_INITIAL_SECONDS

    def reset(self) -> None:
        self._next = BACKOFF_INITIAL_SECONDS

    async def wait(self) -> None:
        delay, self._next = self._next, min(self._next * 2, BACKOFF_MAX_SECONDS)
        await self._clock.sleep(delay)


def _rv(obj: Obj) -> str:
    return str((obj.get("metadata") or {}).get("resourceVersion") or "")


class Informer:
    """Keeps `indexer` equal to the server's objects of one resource (+namespace, selectors)."""

    def __init__(self, client: ListWatchClient, resource: Resource, *, namespace: str = "",
                 label_selector: str = "", field_selector: str = "", resync_period: float = 0.0,
                 indexers: Mapping[str, IndexFunc] | None = None, clock: Clock = REAL_CLOCK,
                 page_size: int = PAGE_SIZE) -> None:
        self.resource = resource
        self.namespace = namespace
        self.label_selector = label_selector
        self.field_selector = field_selector
        self.resync_period = resync_period
        self.indexer = Indexer(indexers)
        self.lister = Lister(self.indexer)
        self.last_sync_resource_version = ""
        self.relists = 0
        """Lists done so far (1 after the first sync): for tests and metrics."""
        self.watches = 0
        self._client = client
        self._clock = clock
        self._page_size = page_size
        self._handlers: list[EventHandler] = []
        self._synced = asyncio.Event()
        self._backoff = _Backoff(clock)

    # --- public ------------------------------------------------------------------------------

    def add_handler(self, handler: EventHandler) -> None:
        """Register `handler`; if already synced, it first gets `on_add` for every cached object."""
        self._handlers.append(handler)
        if self.has_synced():
            for obj in self.indexer.list():
                self._call(handler.on_add, obj)

    def add_indexers(self, indexers: Mapping[str, IndexFunc]) -> None:
        self.indexer.add_indexers(indexers)

    def has_synced(self) -> bool:
        return self._synced.is_set()

    async def wait_synced(self) -> None:
        """Return once the first list has been applied (handlers have seen its adds)."""
        await self._synced.wait()

    async def run(self) -> None:
        """List and watch until cancelled."""
        async with asyncio.TaskGroup() as tg:
            if self.resync_period > 0:
                tg.create_task(self._resync_loop())
            await self._reflect()

    # --- the reflector loop ------------------------------------------------------------------

    async def _reflect(self) -> None:
        need_list = True
        while True:
            try:
                if need_list:
                    await self._relist()
                    need_list = False
                await self._watch_once()
            except _Expired as exc:
                log.info("%s: %s; relisting", self.resource.plural, exc)
                need_list = True
            except TransportError as exc:
                log.warning("%s: %s; retrying", self.resource.plural, exc)
                await self._backoff.wait()
            except errors.StatusError as exc:
                log.warning("%s: %s (%s); relisting", self.resource.plural, exc.message, exc.code)
                need_list = True
                await self._backoff.wait()

    async def _relist(self) -> None:
        items, rv = await self._list_all()
        self.relists += 1
        self._replace(items)
        self.last_sync_resource_version = rv
        self._backoff.reset()
        self._synced.set()

    async def _list_all(self) -> tuple[list[Obj], str]:
        """Every object, page by page; a continue token that expired restarts as one full list."""
        items: list[Obj] = []
        token = ""
        limit = self._page_size
        while True:
            try:
                page = await self._client.list(
                    self.resource, namespace=self.namespace, label_selector=self.label_selector,
                    field_selector=self.field_selector, limit=limit, continue_=token)
            except errors.StatusError as exc:
                if exc.code != 410 or not token:
                    raise
                items, token, limit = [], "", 0  # like client-go's pager: fall back to a full list
                continue
            items.extend(self._typed(page, item) for item in page.get("items") or [])
            meta = page.get("metadata") or {}
            token = meta.get("continue") or ""
            if not token:
                return items, str(meta.get("resourceVersion") or "")

    @staticmethod
    def _typed(page: Obj, item: Obj) -> Obj:
        """List items may lack kind/apiVersion; give them the list's (minus `List`)."""
        kind = str(page.get("kind") or "")
        if "kind" not in item and kind.endswith("List"):
            item["kind"] = kind[:-4]
        if "apiVersion" not in item and page.get("apiVersion"):
            item["apiVersion"] = page["apiVersion"]
        return item

    async def _watch_once(self) -> None:
        """One watch from the last resourceVersion; returns when it ends cleanly."""
        self.watches += 1
        started, events = self._clock.now(), 0
        timeout = random.randint(MIN_WATCH_TIMEOUT_SECONDS, 2 * MIN_WATCH_TIMEOUT_SECONDS)
        stream = self._client.watch(
            self.resource, namespace=self.namespace, label_selector=self.label_selector,
            field_selector=self.field_selector, resource_version=self.last_sync_resource_version,
            allow_bookmarks=True, timeout_seconds=timeout)
        try:
            async for event in stream:
                self._apply(event)
                events += 1
        except errors.StatusError as exc:
            if exc.code == 410:
                raise _Expired(exc.message) from exc
            raise
        finally:
            await _aclose(stream)
        if events:
            self._backoff.reset()
        elif self._clock.now() - started < SHORT_WATCH_SECONDS:
            log.debug("%s: very short watch", self.resource.plural)
            await self._backoff.wait()

    def _apply(self, event: Obj) -> None:
        kind, obj = event.get("type"), event.get("object") or {}
        if kind == "ERROR":
            err = errors.StatusError.from_status(obj)
            if err.code == 410:
                raise _Expired(err.message)
            raise err
        if kind in ("ADDED", "MODIFIED"):
            old = self.indexer.add(obj)
            if old is None:
                self._notify("on_add", obj)
            else:
                self._notify("on_update", old, obj)
        elif kind == "DELETED":
            self.indexer.delete(obj)
            self._notify("on_delete", obj)
        elif kind != "BOOKMARK":
            log.warning("%s: unknown watch event type %r", self.resource.plural, kind)
            return
        rv = _rv(obj)
        if rv:
            self.last_sync_resource_version = rv

    def _replace(self, items: list[Obj]) -> None:
        """Make the cache equal to `items`, notifying handlers of the differences."""
        fresh = {key_of(obj): obj for obj in items}
        for key in self.indexer.keys():
            if key not in fresh:
                gone = self.indexer.delete(key)
                if gone is not None:
                    self._notify("on_delete", gone)
        for obj in items:
            old = self.indexer.add(obj)
            if old is None:
                self._notify("on_add", obj)
            elif _rv(old) != _rv(obj):
                self._notify("on_update", old, obj)

    async def _resync_loop(self) -> None:
        """Every `resync_period`, `on_update(obj, obj)` for each cached object (level triggers)."""
        await self.wait_synced()
        while True:
            await self._clock.sleep(self.resync_period)
            for obj in self.indexer.list():
                self._notify("on_update", obj, obj)

    def _notify(self, method: str, *objs: Obj) -> None:
        for handler in list(self._handlers):
            self._call(getattr(handler, method), *objs)

    def _call(self, fn: Callable[..., None], *objs: Obj) -> None:
        try:
            fn(*objs)
        except Exception:
            log.exception("%s: event handler %r failed", self.resource.plural, fn)


async def _aclose(stream: AsyncIterator[Obj]) -> None:
    close = getattr(stream, "aclose", None)
    if close is not None:
        await close()


class InformerFactory:
    """One shared informer per (resource, namespace, label selector, field selector).

    Components ask for informers while wiring up, then run the factory; informers asked for
    after `run()` started are started at once. `wait_for_cache_sync()` waits for every
    informer handed out so far.
    """

    def __init__(self, client: ListWatchClient, *, namespace: str = "", resync_period: float = 0.0,
                 clock: Clock = REAL_CLOCK) -> None:
        self._client = client
        self._namespace = namespace
        self._resync_period = resync_period
        self._clock = clock
        self._informers: dict[tuple[Resource, str, str, str], Informer] = {}
        self._started: set[tuple[Resource, str, str, str]] = set()
        self._changed = asyncio.Event()

    def informer(self, resource: Resource, *, namespace: str | None = None, label_selector: str = "",
                 field_selector: str = "", indexers: Mapping[str, IndexFunc] | None = None) -> Informer:
        ns = self._namespace if namespace is None else namespace
        key = (resource, ns if resource.namespaced else "", label_selector, field_selector)
        informer = self._informers.get(key)
        if informer is None:
            informer = Informer(self._client, resource, namespace=key[1], label_selector=label_selector,
                                field_selector=field_selector, resync_period=self._resync_period,
                                clock=self._clock)
            self._informers[key] = informer
            self._changed.set()
        if indexers:
            informer.add_indexers(indexers)
        return informer

    def lister(self, resource: Resource, **kwargs: Any) -> Lister:
        return self.informer(resource, **kwargs).lister

    async def run(self) -> None:
        """Run every informer (including ones created later) until cancelled."""
        async with asyncio.TaskGroup() as tg:
            while True:
                self._changed.clear()
                for key, informer in list(self._informers.items()):
                    if key not in self._started:
                        self._started.add(key)
                        tg.create_task(informer.run())
                await self._changed.wait()

    async def wait_for_cache_sync(self) -> None:
        for informer in list(self._informers.values()):
            await informer.wait_synced()
