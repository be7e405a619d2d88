"""The watch cache: every stored object and a window of recent events, in memory.

Why one cache for all resources: the backend is watched once, from the compacted revision, so
the cache rebuilds its event window from stored history after a restart (a client resuming a
watch with a resourceVersion from before the restart loses nothing), and so one number, the
cache's revision, says how fresh every resource is. A read that must be consistent waits until
that number reaches the backend's current revision (as kube-apiserver 1.31+ serves consistent
lists from its cache).

Objects are kept as their encoded JSON (resourceVersion stamped in), with only the labels and
the selectable fields beside them: lists and watch events are written by joining bytes, never
by encoding again, and memory stays close to the JSON size.

Watchers get events through a bounded queue: a watcher that falls too far behind is closed
(its client relists or resumes), so one slow reader never slows writers or other watchers.
"""

from __future__ import annotations

import asyncio
import bisect
import heapq
import itertools
import logging
import sys
import weakref
from collections import deque
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field

import orjson

from pykube_server.storage.backend import Backend, Compacted, Event, KeyValue

log = logging.getLogger(__name__)

WATCHER_QUEUE_EVENTS = 4096
"""Events a watcher may have waiting before it is closed for being too slow."""
EVENT_WINDOW_PER_RESOURCE = 100_000
"""Recent events kept per resource for watch resumption (beyond it: 410 Expired)."""

FieldIndexer = Callable[[str, dict], Mapping[str, str]]
"""(key root, object) -> the object's selectable fields besides metadata.name/namespace."""


@dataclass(slots=True, eq=False)
class CachedObject:
    key: str
    raw: bytes
    """The object's JSON with metadata.resourceVersion set."""
    revision: int
    namespace: str
    name: str
    labels: Mapping[str, str]
    fields: Mapping[str, str]

    def decode(self) -> dict:
        return orjson.loads(self.raw)


@dataclass(slots=True, eq=False)
class CacheEvent:
    type: str
    """ADDED, MODIFIED or DELETED."""
    revision: int
    obj: CachedObject
    prev: CachedObject | None


Matcher = Callable[[CachedObject], bool]

Trigger = tuple[str, str]
"""(field, value) a watcher's field selector requires exactly (`spec.nodeName=node-1`): the cache
offers it only events whose object has, or had, that value, as kube's watch cache does with its
trigger functions (a kubelet's pod watch is not tested against every other node's pods)."""


def field_value(obj: CachedObject, field: str) -> str:
    """A selectable field of a cached object ("" when it has none, as selectors read it)."""
    if field == "metadata.name":
        return obj.name
    if field == "metadata.namespace":
        return obj.namespace
    return obj.fields.get(field, "")


@dataclass(eq=False)
class Watcher:
    """One watch request's view of a resource: initial events first, then live ones."""

    matcher: Matcher
    namespace_prefix: str
    initial: deque[tuple[str, CachedObject]] = field(default_factory=deque)
    queue: asyncio.Queue[tuple[str, CachedObject]] = field(
        default_factory=lambda: asyncio.Queue(WATCHER_QUEUE_EVENTS)
    )
    overflowed: bool = False
    closed: bool = False
    """Set when the server shuts down: the stream ends cleanly so clients resume elsewhere."""
    start_revision: int = 0
    """The cache revision when the watch began (the initial-events-end bookmark's)."""
    wakeup: asyncio.Event = field(default_factory=asyncio.Event)
    trigger: Trigger | None = None
    """The exact field value this watcher is indexed under (None: offered every event)."""

    def classify(self, event: CacheEvent) -> str:
        """The event type this watcher sees ("" = none): an object that starts or stops
        matching the selector is ADDED or DELETED for it, as in kube-apiserver."""
        if not event.obj.key.startswith(self.namespace_prefix):
            return ""
        before = event.prev is not None and self.matcher(event.prev)
        if event.type == "DELETED":
            return "DELETED" if before else ""
        now = self.matcher(event.obj)
        if now:
            return "MODIFIED" if before else "ADDED"
        return "DELETED" if before else ""

    def offer(self, event: CacheEvent) -> None:
        if self.overflowed:
            return
        kind = self.classify(event)
        if kind:
            try:
                self.queue.put_nowait((kind, event.obj))
            except asyncio.QueueFull:
                self.overflowed = True
            self.wakeup.set()

    def drain(self, max_events: int = 512) -> list[tuple[str, CachedObject]]:
        """Everything ready now, without waiting (initial events first)."""
        out: list[tuple[str, CachedObject]] = []
        while self.initial and len(out) < max_events:
            out.append(self.initial.popleft())
        while len(out) < max_events:
            try:
                out.append(self.queue.get_nowait())
            except asyncio.QueueEmpty:
                break
        if not self.initial and self.queue.empty():
            self.wakeup.clear()
        return out


class ResourceCache:
    """Objects and recent events of one resource (one key root)."""

    def __init__(self, root: str) -> None:
        self.root = root
        self.objects: dict[str, CachedObject] = {}
        self.events: deque[CacheEvent] = deque(maxlen=EVENT_WINDOW_PER_RESOURCE)
        self.window_start = 0
        """Events after this revision are all in `events`."""
        self.watchers: set[Watcher] = set()
        """Every watcher of this resource."""
        self._unindexed: set[Watcher] = set()
        self._indexed: dict[str, dict[str, set[Watcher]]] = {}
        """field -> value -> the watchers whose trigger is that (field, value)."""
        self._sorted: list[str] | None = None
        self.revision = 0
        """The revision of the last event applied: anything computed from `objects` at this
        revision is still true while it stays the same."""
        self._under: dict[str, list[CachedObject]] = {}

    def sorted_keys(self) -> list[str]:
        if self._sorted is None:
            self._sorted = sorted(self.objects)
        return self._sorted

    def under(self, prefix: str) -> list[CachedObject]:
        """The objects whose keys start with `prefix` (a namespace's), in key order; remembered
        until the next change, since admission asks for the same namespace on every create."""
        found = self._under.get(prefix)
        if found is None:
            found = self._under[prefix] = [self.objects[k] for k in self.sorted_keys() if k.startswith(prefix)]
        return found

    def apply(self, event: CacheEvent) -> None:
        key = event.obj.key
        self.revision = event.revision
        self._under.clear()
        if event.type == "DELETED":
            if self.objects.pop(key, None) is not None:
                self._sorted = None
        else:
            if key not in self.objects:
                self._sorted = None
            self.objects[key] = event.obj
        if len(self.events) == self.events.maxlen:
            self.window_start = self.events[0].revision
        self.events.append(event)
        for watcher in self._unindexed:
            watcher.offer(event)
        if self._indexed:
            self._offer_indexed(event)

    def _offer_indexed(self, event: CacheEvent) -> None:
        prev = event.prev
        for fname, by_value in self._indexed.items():
            value = field_value(event.obj, fname)
            for watcher in by_value.get(value, ()):
                watcher.offer(event)
            if prev is not None:
                old = field_value(prev, fname)
                if old != value:
                    for watcher in by_value.get(old, ()):
                        watcher.offer(event)

    def add_watcher(self, watcher: Watcher) -> None:
        self.watchers.add(watcher)
        if watcher.trigger is None:
            self._unindexed.add(watcher)
        else:
            fname, value = watcher.trigger
            self._indexed.setdefault(fname, {}).setdefault(value, set()).add(watcher)

    def remove_watcher(self, watcher: Watcher) -> None:
        self.watchers.discard(watcher)
        if watcher.trigger is None:
            self._unindexed.discard(watcher)
            return
        fname, value = watcher.trigger
        by_value = self._indexed.get(fname)
        if by_value is None or value not in by_value:
            return
        by_value[value].discard(watcher)
        if not by_value[value]:
            del by_value[value]
            if not by_value:
                del self._indexed[fname]

    def events_after(self, revision: int) -> list[CacheEvent] | None:
        """Events with revision > `revision`, or None if the window no longer reaches back."""
        if revision < self.window_start:
            return None
        revisions = _RevisionView(self.events)
        start = bisect.bisect_right(revisions, revision)
        return list(itertools.islice(self.events, start, None))


class _RevisionView:
    """A sequence view of event revisions, for bisect over a deque without copying it."""

    def __init__(self, events: deque[CacheEvent]) -> None:
        self._events = events

    def __len__(self) -> int:
        return len(self._events)

    def __getitem__(self, i: int) -> int:
        return self._events[i].revision


def split_key(root: str, key: str) -> tuple[str, str]:
    """`/registry/pods/ns/name` -> ("ns", "name"); cluster-scoped -> ("", "name")."""
    rest = key[len(root) + 1:]
    namespace, _, name = rest.rpartition("/")
    return namespace, name


class _SharedMap(dict):  # type: ignore[type-arg]
    """A labels or selectable-fields mapping shared by every cached object with equal contents
    (a weak reference target, so the pool forgets it with the last object). Never mutated."""

    __slots__ = ("__weakref__",)


_EMPTY: Mapping[str, str] = _SharedMap()


class _MapPool:
    """Deduplicates small str -> str mappings: most objects of a kind have the same selectable
    field values (and pods of one workload the same labels), so sharing them keeps the cache
    close to the objects' JSON size."""

    def __init__(self) -> None:
        self._pool: weakref.WeakValueDictionary[tuple[tuple[str, str], ...], _SharedMap] = weakref.WeakValueDictionary()

    def share(self, mapping: Mapping[str, str]) -> Mapping[str, str]:
        if not isinstance(mapping, dict):
            return mapping
        if not mapping:
            return _EMPTY
        try:
            items = tuple(mapping.items())
            shared = self._pool.get(items)
        except TypeError:  # an unhashable value: keep a private copy
            return dict(mapping)
        if shared is None:
            shared = _SharedMap(mapping)
            self._pool[items] = shared
        return shared


def stamp(value: bytes, revision: int) -> tuple[bytes, dict]:
    obj = orjson.loads(value)
    obj.setdefault("metadata", {})["resourceVersion"] = str(revision)
    # Copied to a block of its own size: orjson's output buffer is several KiB larger than
    # the JSON, and this copy lives as long as the object is cached.
    return bytes(memoryview(orjson.dumps(obj))), obj


class Cacher:
    """Keeps every resource under `prefix` in memory, fed by one backend watch."""

    def __init__(self, backend: Backend, *, roots: Iterable[str], field_indexer: FieldIndexer) -> None:
        self._backend = backend
        self._field_indexer = field_indexer
        self.resources: dict[str, ResourceCache] = {root: ResourceCache(root) for root in roots}
        self.revision = 0
        self._waiters: list[tuple[int, int, asyncio.Future[None]]] = []
        self._seq = itertools.count()
        self._ready = asyncio.Event()
        self.failed: BaseException | None = None
        self._maps = _MapPool()
        self._loading: dict[str, list[Event]] = {}
        """Roots being added (`add_root`): their events wait here until the state is read."""
        self._written: dict[str, int] = {}
        """Per key root, the newest revision this server wrote there (`note_write`)."""

    def resource(self, root: str) -> ResourceCache:
        return self.resources[root]

    def _root_of(self, key: str) -> str | None:
        head, _, _ = key.rpartition("/")
        if head in self.resources:
            return head
        head2, _, _ = head.rpartition("/")
        return head2 if head2 in self.resources else None

    def cached_from(self, root: str, kv: KeyValue) -> CachedObject:
        """A cache entry for a value read from the backend directly (older revisions)."""
        return self._cached(root, kv, kv.mod_revision)

    def _cached(self, root: str, kv: KeyValue, revision: int) -> CachedObject:
        raw, obj = stamp(kv.value, revision)
        namespace, name = split_key(root, kv.key)
        labels = (obj.get("metadata") or {}).get("labels") or {}
        maps = self._maps
        return CachedObject(kv.key, raw, revision, sys.intern(namespace), name, maps.share(labels),
                            maps.share(self._field_indexer(root, obj)))

    async def run(self) -> None:
        """Load the state at the compacted revision, then follow the backend forever."""
        try:
            start = await self._load_compacted_state()
            for res in self.resources.values():
                res.window_start = start
            self.revision = start
            current = await self._backend.current_revision()
            if current <= start:
                self._ready.set()
            async for event in self._backend.watch("/registry/", revision=start):
                self._ingest(event)
                if not self._ready.is_set() and self.revision >= current:
                    self._ready.set()
        except asyncio.CancelledError:
            raise
        except BaseException as exc:  # the server cannot serve without its cache
            self.failed = exc
            log.exception("watch cache stopped")
            for _, _, fut in self._waiters:
                if not fut.done():
                    fut.set_exception(exc)
            raise

    async def _load_compacted_state(self) -> int:
        """The state at the compacted revision (retried if a compaction lands meanwhile)."""
        while True:
            start = int(getattr(self._backend, "compacted_revision", 0) or 0)
            if not start:
                return 0
            try:
                page = await self._backend.scan("/registry/", revision=start)
            except Compacted:
                continue
            for kv in page.items:
                root = self._root_of(kv.key)
                if root is not None:
                    self.resources[root].objects[kv.key] = self._cached(root, kv, kv.mod_revision)
            return start

    def _ingest(self, event: Event) -> None:
        revision = event.kv.mod_revision
        root = self._root_of(event.kv.key)
        if root is not None:
            self._apply(root, event)
        elif self._loading:
            loading = _loading_root(self._loading, event.kv.key)
            if loading is not None:
                self._loading[loading].append(event)
        self.revision = revision
        while self._waiters and self._waiters[0][0] <= revision:
            _, _, fut = heapq.heappop(self._waiters)
            if not fut.done():
                fut.set_result(None)

    def _apply(self, root: str, event: Event) -> None:
        revision = event.kv.mod_revision
        res = self.resources[root]
        prev = res.objects.get(event.kv.key)
        if event.kind == "delete":
            if prev is not None:
                obj = self._cached(root, event.kv, revision)
                res.apply(CacheEvent("DELETED", revision, obj, prev))
        else:
            obj = self._cached(root, event.kv, revision)
            res.apply(CacheEvent("MODIFIED" if prev is not None else "ADDED", revision, obj, prev))

    async def add_root(self, root: str) -> ResourceCache:
        """Start caching a key root that appeared after start (a custom resource's
        `/registry/<group>/<plural>`): its objects as of the cache's revision are read from the
        backend, and its events after that revision, held back meanwhile, are applied on top.
        Its event window starts there (older resourceVersions get 410 Expired)."""
        if root in self.resources:
            return self.resources[root]
        pending: list[Event] = []
        self._loading[root] = pending
        try:
            while True:
                at = self.revision
                pending.clear()
                try:
                    page = await self._backend.scan(root + "/", revision=at)
                    break
                except Compacted:
                    continue
        finally:
            self._loading.pop(root, None)
        if root in self.resources:  # added concurrently
            return self.resources[root]
        res = ResourceCache(root)
        res.window_start = at
        for kv in page.items:
            res.objects[kv.key] = self._cached(root, kv, kv.mod_revision)
        self.resources[root] = res
        for event in pending:
            self._apply(root, event)
        return res

    def remove_root(self, root: str) -> None:
        """Stop caching a key root (its custom resource is no longer served); its watchers end."""
        res = self.resources.pop(root, None)
        if res is None:
            return
        for watcher in res.watchers:
            watcher.closed = True
            watcher.wakeup.set()

    async def wait_ready(self) -> None:
        await self._ready.wait()

    @property
    def ready(self) -> bool:
        return self._ready.is_set()

    async def wait_for_revision(self, revision: int) -> None:
        """Return once every event up to `revision` is in the cache."""
        if self.failed is not None:
            raise self.failed
        if self.revision >= revision:
            return
        fut: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        heapq.heappush(self._waiters, (revision, next(self._seq), fut))
        await fut

    def note_write(self, key: str, revision: int) -> None:
        """This server wrote `key` at `revision` (see `wait_written`)."""
        root = self._root_of(key)
        if root is not None and revision > self._written.get(root, 0):
            self._written[root] = revision

    async def wait_written(self, root: str) -> None:
        """Read-your-writes for one resource: wait until the cache holds every write this server
        made to `root`. Cheaper than `wait_fresh` (no backend round trip, and no wait at all while
        that resource is not being written), for readers that, like kube's admission plugins
        reading informer listers, need this server's own recent writes but not other servers'."""
        await self.wait_for_revision(self._written.get(root, 0))

    async def wait_fresh(self) -> int:
        """Consistent read: wait until the cache has the backend's latest write."""
        current = await self._backend.current_revision()
        await self.wait_for_revision(current)
        return self.revision

    def watch(
        self,
        root: str,
        *,
        namespace: str,
        matcher: Matcher,
        since: int | None,
        trigger: Trigger | None = None,
    ) -> Watcher | None:
        """Register a watcher. `since=None`: synthetic ADDED events for the current state
        first. Otherwise events after `since`; None is returned if they are no longer kept."""
        res = self.resources[root]
        prefix = f"{root}/{namespace}/" if namespace else f"{root}/"
        watcher = Watcher(matcher, prefix, start_revision=self.revision, trigger=trigger)
        if since is None:
            for key in res.sorted_keys():
                obj = res.objects[key]
                if key.startswith(prefix) and matcher(obj):
                    watcher.initial.append(("ADDED", obj))
        else:
            missed = res.events_after(since)
            if missed is None:
                return None
            for event in missed:
                kind = watcher.classify(event)
                if kind:
                    watcher.initial.append((kind, event.obj))
        res.add_watcher(watcher)
        if watcher.initial:
            watcher.wakeup.set()
        return watcher

    def close_all_watchers(self) -> None:
        for res in self.resources.values():
            for watcher in res.watchers:
                watcher.closed = True
                watcher.wakeup.set()

    def stop_watch(self, root: str, watcher: Watcher) -> None:
        res = self.resources.get(root)
        if res is not None:
            res.remove_watcher(watcher)


def _loading_root(loading: Mapping[str, object], key: str) -> str | None:
    """The root being added that `key` lies under (namespaced or cluster-scoped key)."""
    head = key.rpartition("/")[0]
    if head in loading:
        return head
    head = head.rpartition("/")[0]
    return head if head in loading else None
