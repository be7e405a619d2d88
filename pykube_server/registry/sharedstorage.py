"""Resources served in one shape and stored in another's, as kube-apiserver's storage codec does.

kube-apiserver keeps some objects once and serves them through several group-versions: an
events.k8s.io/v1 Event is stored at `/registry/events/<ns>/<name>` like a core/v1 Event, and
each API converts on the way in (to the stored shape) and on the way out (every get, list,
watch event and write response). A `StorageConversion` names the stored shape, the two pure
converters and the API's field label conversion (its field selectors are checked against the
API's own labels, then renamed to the stored kind's, which the watch cache indexes).

`ConvertedResourceStore` is that, for any such resource: the `ResourceStore` semantics run on
objects in the served shape (defaulting, validation, admission, managedFields), and only the
storage layer and what is read from the watch cache cross the converters. Conversions are
synchronous and total (no webhook), unlike custom resources' (`registry/crd/versioned.py`).
"""

from __future__ import annotations

import copy
import dataclasses
from collections import deque
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import Any

import orjson

from pykube_server.api import errors
from pykube_server.api.fields import FieldError
from pykube_server.registry import eventconv
from pykube_server.registry.spec import ResourceSpec
from pykube_server.registry.store import ListResult, ResourceStore
from pykube_server.registry.strategy import Strategy
from pykube_server.storage.cacher import CachedObject, Cacher, Watcher
from pykube_server.storage.store import Store

Obj = dict[str, Any]
Convert = Callable[[Obj], Obj]


@dataclass(frozen=True, slots=True)
class StorageConversion:
    stored_as: tuple[str, str, str]
    """(group, version, plural) of the resource whose shape and keys are stored."""
    to_storage: Convert
    from_storage: Convert
    field_labels: Mapping[str, str]
    """This API's field selector labels -> the stored kind's (kube's AddFieldLabelConversionFunc);
    a label not here is "field label not supported"."""


_REGARDING = ("kind", "namespace", "name", "uid", "apiVersion", "resourceVersion", "fieldPath")

CONVERSIONS: dict[tuple[str, str, str], StorageConversion] = {
    ("events.k8s.io", "v1", "events"): StorageConversion(
        stored_as=("", "v1", "events"),
        to_storage=eventconv.to_core,
        from_storage=eventconv.to_events_v1,
        # pkg/apis/events/v1 AddFieldLabelConversionsForEvent: no `source` here, unlike core.
        field_labels={"metadata.name": "metadata.name", "metadata.namespace": "metadata.namespace",
                      "reason": "reason", "type": "type", "reportingController": "reportingComponent",
                      **{f"regarding.{f}": f"involvedObject.{f}" for f in _REGARDING}},
    ),
}
"""Served (group, version, plural) -> how it is stored."""


def conversion_for(spec: ResourceSpec) -> StorageConversion | None:
    return CONVERSIONS.get((spec.group, spec.version, spec.plural))


class _ConvertingStorage:
    """The `Store` as the served shape sees it: objects go in converted to the stored shape and
    come out converted back."""

    def __init__(self, inner: Store, conversion: StorageConversion) -> None:
        self._inner = inner
        self._conversion = conversion

    def __getattr__(self, name: str) -> Any:
        return getattr(self._inner, name)

    async def create(self, key: str, obj: Obj) -> Obj:
        stored = await self._inner.create(key, self._conversion.to_storage(obj))
        return self._conversion.from_storage(stored)

    async def guaranteed_update(self, key: str, root: str,
                                update: Callable[[Obj | None, int], Awaitable[tuple[Obj | None, str]]]
                                ) -> tuple[Obj | None, str]:
        conv = self._conversion

        async def served(current: Obj | None, revision: int) -> tuple[Obj | None, str]:
            view = conv.from_storage(copy.deepcopy(current)) if current is not None else None
            pristine = copy.deepcopy(view)
            new, action = await update(view, revision)
            if new is None:
                return None, action
            if action == "delete" or (new is view and new == pristine):
                return current, action  # unchanged or going: the stored form stays as it is
            return conv.to_storage(new), action

        obj, action = await self._inner.guaranteed_update(key, root, served)
        return (conv.from_storage(obj) if obj is not None else None), action


class ConvertedResourceStore(ResourceStore):
    """A resource served over another's storage root, converting every object both ways."""

    def __init__(self, spec: ResourceSpec, strategy: Strategy, store: Store, cacher: Cacher, namespaces_root: str,
                 *, root: str, conversion: StorageConversion) -> None:
        super().__init__(spec, strategy, _ConvertingStorage(store, conversion), cacher,  # type: ignore[arg-type]
                         namespaces_root, root=root)
        self.conversion = conversion

    def invalid(self, name: str, errs: list[FieldError]) -> errors.Invalid:
        """A 422 names the stored kind (`Event "x" is invalid`, no group): kube's strategy types
        the internal object, registered first in the stored kind's group."""
        return errors.Invalid.from_errors(self.spec.kind, self.conversion.stored_as[0], name, errs)

    def field_labels(self) -> tuple[set[str] | None, Mapping[str, str]]:
        """Every label this API accepts is renamed to the stored kind's, which the cache indexes."""
        return set(self.conversion.field_labels), self.conversion.field_labels

    def served(self, item: CachedObject) -> CachedObject:
        """A cache entry (stored shape) as this API serves it."""
        obj = self.conversion.from_storage(item.decode())
        return dataclasses.replace(item, raw=orjson.dumps(obj))

    async def get(self, namespace: str, name: str, *, resource_version: str = "") -> CachedObject:
        return self.served(await super().get(namespace, name, resource_version=resource_version))

    async def list(self, namespace: str, **options: Any) -> ListResult:  # type: ignore[override]
        result = await super().list(namespace, **options)
        result.items = [self.served(item) for item in result.items]
        return result

    async def watch(self, namespace: str, **options: Any) -> Watcher:  # type: ignore[override]
        return ConvertedWatcher(await super().watch(namespace, **options), self.served)  # type: ignore[return-value]

    def stop_watch(self, watcher: Watcher) -> None:
        super().stop_watch(watcher.inner if isinstance(watcher, ConvertedWatcher) else watcher)


class ConvertedWatcher:
    """A Watcher look-alike whose events are converted as they are drained."""

    def __init__(self, inner: Watcher, convert: Callable[[CachedObject], CachedObject]) -> None:
        self.inner = inner
        self._convert = convert
        self.initial: deque[tuple[str, CachedObject]] = deque((k, convert(o)) for k, o in inner.initial)
        inner.initial.clear()
        if self.initial:
            inner.wakeup.set()

    @property
    def wakeup(self) -> Any:
        return self.inner.wakeup

    @property
    def start_revision(self) -> int:
        return self.inner.start_revision

    @property
    def overflowed(self) -> bool:
        return self.inner.overflowed

    @property
    def closed(self) -> bool:
        return self.inner.closed

    def drain(self, max_events: int = 512) -> list[tuple[str, CachedObject]]:
        out: list[tuple[str, CachedObject]] = []
        while self.initial and len(out) < max_events:
            out.append(self.initial.popleft())
        if len(out) < max_events:
            out.extend((k, self._convert(o)) for k, o in self.inner.drain(max_events - len(out)))
        return out
