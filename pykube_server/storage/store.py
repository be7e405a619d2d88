"""Store: objects in, objects out, over a Backend and its watch cache.

The backend keeps bytes without a resourceVersion; the store stamps `metadata.resourceVersion`
from the revision a write got (as kube-apiserver does with etcd's mod revision). Reads come
from the `Cacher`, which is at least as fresh as the last acknowledged write once
`Cacher.wait_fresh()` returns. Errors stay storage errors (about keys); the registry turns them
into API errors naming the resource.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable

import orjson

from pykube_server.storage.backend import Backend, Conflict, KeyExists, KeyNotFound
from pykube_server.storage.cacher import CachedObject, Cacher

Obj = dict

GUARANTEED_UPDATE_ATTEMPTS = 16


def exact_bytes(data: bytes) -> bytes:
    """A copy of `data` in a block of its own size. orjson returns its output in the (much
    larger) buffer it wrote into; bytes that stay in memory (the backend's watch ring, the watch
    cache) would otherwise cost several KiB each, whatever their length."""
    return bytes(memoryview(data))


def encode_for_storage(obj: Obj) -> bytes:
    meta = obj.get("metadata") or {}
    rv = meta.pop("resourceVersion", None)
    try:
        return exact_bytes(orjson.dumps(obj))
    finally:
        if rv is not None:
            meta["resourceVersion"] = rv


def decode_stored(value: bytes, revision: int) -> Obj:
    obj = orjson.loads(value)
    obj.setdefault("metadata", {})["resourceVersion"] = str(revision)
    return obj


class Store:
    def __init__(self, backend: Backend, cacher: Cacher) -> None:
        self.backend = backend
        self.cacher = cacher

    async def create(self, key: str, obj: Obj) -> Obj:
        """Raises KeyExists."""
        revision = await self.backend.create(key, encode_for_storage(obj))
        self.cacher.note_write(key, revision)
        obj.setdefault("metadata", {})["resourceVersion"] = str(revision)
        return obj

    async def update(self, key: str, obj: Obj, *, revision: int) -> Obj:
        """Compare-and-swap against `revision`. Raises KeyNotFound, Conflict."""
        new_revision = await self.backend.update(key, encode_for_storage(obj), revision=revision)
        self.cacher.note_write(key, new_revision)
        obj.setdefault("metadata", {})["resourceVersion"] = str(new_revision)
        return obj

    async def delete(self, key: str, *, revision: int = 0) -> Obj:
        kv = await self.backend.delete(key, revision=revision)
        self.cacher.note_write(key, kv.mod_revision)
        return decode_stored(kv.value, kv.mod_revision)

    def _stale(self, key: str) -> bool:
        is_stale = getattr(self.backend, "is_stale", None)
        return bool(is_stale is not None and is_stale(key))

    async def current(self, key: str, root: str) -> CachedObject | None:
        """The freshest cached copy (after waiting for the latest write to reach the cache)."""
        await self.cacher.wait_fresh()
        return self.cacher.resource(root).objects.get(key)

    async def read_latest(self, key: str) -> tuple[Obj, int] | None:
        """Straight from the backend: used to retry after a compare-and-swap conflict."""
        try:
            kv = await self.backend.get(key)
        except KeyNotFound:
            return None
        return decode_stored(kv.value, kv.mod_revision), kv.mod_revision

    async def guaranteed_update(
        self,
        key: str,
        root: str,
        update: Callable[[Obj | None, int], Awaitable[tuple[Obj | None, str]]],
    ) -> tuple[Obj | None, str]:
        """Read-modify-write with retries on conflict.

        `update(current, revision)` gets a private copy of the current object (None if it does
        not exist, revision 0) and returns `(new_object, action)`. The action is "create",
        "update", "delete", or "none" (nothing to write: the current object is returned
        unchanged, so a no-op never bumps the resourceVersion). "unchanged" is a no-op update:
        like "none", except that a value stored under an older encryption key is rewritten
        (kube's stale-data rewrite, how keys are rotated). It may raise to abort.
        """
        cached = await self.current(key, root)
        current = (cached.decode(), cached.revision) if cached is not None else None
        for _ in range(GUARANTEED_UPDATE_ATTEMPTS):
            obj, revision = (current if current is not None else (None, 0))
            new, action = await update(obj, revision)
            try:
                if action == "unchanged" and obj is not None and self._stale(key):
                    return await self.update(key, obj, revision=revision), "update"  # re-encrypt with the new key
                if action in ("none", "unchanged"):
                    return new, action
                if action == "create":
                    return await self.create(key, new or {}), action
                if action == "delete":
                    return await self.delete(key, revision=revision), action
                return await self.update(key, new or {}, revision=revision), action
            except (Conflict, KeyNotFound, KeyExists):
                current = await self.read_latest(key)
        raise Conflict(key)
