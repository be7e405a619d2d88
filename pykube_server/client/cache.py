"""The informer's local store: client-go's `cache.Indexer` and the listers over it.

Objects are keyed `namespace/name` (just `name` for cluster-scoped ones), client-go's
`MetaNamespaceKeyFunc`. Named index functions map an object to zero or more index values (the
namespace, each owner's uid, the pod's node) and the indexer keeps value -> keys sets up to date
on every add, update and delete, so "pods on node X" or "objects owned by uid U" is a dict
lookup rather than a scan.

Objects in the cache are shared with every handler and lister user: treat them as read-only
(copy before changing, as client-go's `DeepCopy` rule says). Only the informer writes.
"""

from __future__ import annotations

import builtins
from collections.abc import Callable, Iterable, Mapping

from pykube_server.api.selectors import LabelSelector, parse_label_selector
from pykube_server.api.types import Obj

IndexFunc = Callable[[Obj], builtins.list[str]]

NAMESPACE_INDEX = "namespace"
OWNER_UID_INDEX = "owner-uid"
NODE_NAME_INDEX = "node-name"


def key_of(obj: Obj) -> str:
    """`namespace/name`, or `name` for cluster-scoped objects."""
    meta = obj.get("metadata") or {}
    namespace = meta.get("namespace") or ""
    return f"{namespace}/{meta.get('name', '')}" if namespace else str(meta.get("name", ""))


def split_key(key: str) -> tuple[str, str]:
    """`ns/name` -> ("ns", "name"); `name` -> ("", "name")."""
    namespace, _, name = key.rpartition("/")
    return namespace, name


def namespace_index(obj: Obj) -> builtins.list[str]:
    namespace = (obj.get("metadata") or {}).get("namespace")
    return [namespace] if namespace else []


def owner_uid_index(obj: Obj) -> builtins.list[str]:
    refs = (obj.get("metadata") or {}).get("ownerReferences") or []
    return [ref["uid"] for ref in refs if ref.get("uid")]


def node_name_index(obj: Obj) -> builtins.list[str]:
    node = (obj.get("spec") or {}).get("nodeName")
    return [node] if node else []


DEFAULT_INDEXERS: Mapping[str, IndexFunc] = {NAMESPACE_INDEX: namespace_index}


class Indexer:
    """Objects by key plus named secondary indices. Written only by the informer."""

    def __init__(self, indexers: Mapping[str, IndexFunc] | None = None) -> None:
        self._items: dict[str, Obj] = {}
        self._funcs: dict[str, IndexFunc] = dict(DEFAULT_INDEXERS if indexers is None else indexers)
        self._indices: dict[str, dict[str, set[str]]] = {name: {} for name in self._funcs}

    def add_indexers(self, indexers: Mapping[str, IndexFunc]) -> None:
        """Add index functions (existing objects are indexed at once). Duplicate names raise."""
        for name, func in indexers.items():
            if name in self._funcs:
                if self._funcs[name] is func:
                    continue
                raise ValueError(f"indexer {name!r} already exists")
            self._funcs[name] = func
            self._indices[name] = {}
            for key, obj in self._items.items():
                self._index_one(name, key, obj)

    def add(self, obj: Obj) -> Obj | None:
        """Insert or replace; returns the previous object under the same key."""
        key = key_of(obj)
        old = self._items.get(key)
        if old is not None:
            self._unindex(key, old)
        self._items[key] = obj
        for name in self._funcs:
            self._index_one(name, key, obj)
        return old

    update = add

    def delete(self, obj_or_key: Obj | str) -> Obj | None:
        """Remove by object or key; returns what was stored (None if nothing was)."""
        key = obj_or_key if isinstance(obj_or_key, str) else key_of(obj_or_key)
        old = self._items.pop(key, None)
        if old is not None:
            self._unindex(key, old)
        return old

    def replace(self, objs: Iterable[Obj]) -> None:
        """Make the contents exactly `objs`."""
        self._items = {}
        self._indices = {name: {} for name in self._funcs}
        for obj in objs:
            self.add(obj)

    def get(self, key: str) -> Obj | None:
        return self._items.get(key)

    def keys(self) -> builtins.list[str]:
        return builtins.list(self._items)

    def list(self) -> builtins.list[Obj]:
        return builtins.list(self._items.values())

    def __len__(self) -> int:
        return len(self._items)

    def __contains__(self, key: object) -> bool:
        return key in self._items

    def index_keys(self, index: str, value: str) -> builtins.list[str]:
        """Keys of the objects whose index function `index` yields `value`. Unknown index raises."""
        if index not in self._indices:
            raise KeyError(f"index {index!r} does not exist")
        return sorted(self._indices[index].get(value, ()))

    def by_index(self, index: str, value: str) -> builtins.list[Obj]:
        return [self._items[key] for key in self.index_keys(index, value)]

    def _index_one(self, name: str, key: str, obj: Obj) -> None:
        index = self._indices[name]
        for value in self._funcs[name](obj):
            index.setdefault(value, set()).add(key)

    def _unindex(self, key: str, obj: Obj) -> None:
        for name, func in self._funcs.items():
            index = self._indices[name]
            for value in func(obj):
                keys = index.get(value)
                if keys is not None:
                    keys.discard(key)
                    if not keys:
                        del index[value]


def _labels(obj: Obj) -> dict[str, str]:
    return (obj.get("metadata") or {}).get("labels") or {}


class Lister:
    """Read-only view of an informer's Indexer (what reconcilers read instead of the server)."""

    def __init__(self, indexer: Indexer) -> None:
        self._indexer = indexer

    def get(self, name: str, *, namespace: str = "") -> Obj | None:
        return self._indexer.get(f"{namespace}/{name}" if namespace else name)

    def get_by_key(self, key: str) -> Obj | None:
        return self._indexer.get(key)

    def list(self, selector: LabelSelector | str | None = None, *, namespace: str = "") -> builtins.list[Obj]:
        """Objects matching `selector` (a LabelSelector or its text), in one namespace or all."""
        if isinstance(selector, str):
            selector = parse_label_selector(selector) if selector else None
        objs = self._indexer.by_index(NAMESPACE_INDEX, namespace) if namespace else self._indexer.list()
        if selector is None:
            return builtins.list(objs)
        return [obj for obj in objs if selector.matches(_labels(obj))]

    def by_index(self, index: str, value: str) -> builtins.list[Obj]:
        return self._indexer.by_index(index, value)

    def keys(self) -> builtins.list[str]:
        return self._indexer.keys()

    def __len__(self) -> int:
        return len(self._indexer)
