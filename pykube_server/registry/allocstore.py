"""The Services' Store: every write claims its ClusterIPs and NodePorts in storage first.

kube-apiserver's Service REST storage allocates around the generic store's write and rolls the
allocation back when the write fails. Here the same sits one level lower, in the `Store` the
Services' ResourceStore writes through, because that is where the final object meets storage:
create, compare-and-swap update (also the retries of a read-modify-write) and delete all pass
here, and nothing else writes Services.
"""

from __future__ import annotations

from pykube_server.registry.serviceclaims import ServiceClaims
from pykube_server.storage.backend import Backend, KeyNotFound
from pykube_server.storage.cacher import Cacher
from pykube_server.storage.store import Obj, Store, decode_stored


class AllocatingStore(Store):
    def __init__(self, backend: Backend, cacher: Cacher, claims: ServiceClaims, root: str) -> None:
        super().__init__(backend, cacher)
        self.claims = claims
        self.root = root

    async def create(self, key: str, obj: Obj) -> Obj:
        claim = await self.claims.claim(obj, None)
        try:
            return await super().create(key, obj)
        except Exception:
            await self.claims.undo(claim)
            raise

    async def update(self, key: str, obj: Obj, *, revision: int) -> Obj:
        old = await self._stored(key, revision)
        if old is None:  # changed or gone since `revision`: the swap fails, the caller retries
            return await super().update(key, obj, revision=revision)
        claim = await self.claims.claim(obj, old)
        try:
            written = await super().update(key, obj, revision=revision)
        except Exception:
            await self.claims.undo(claim)
            raise
        await self.claims.release(old, written)
        return written

    async def delete(self, key: str, *, revision: int = 0) -> Obj:
        gone = await super().delete(key, revision=revision)
        await self.claims.release(gone, None)
        return gone

    async def _stored(self, key: str, revision: int) -> Obj | None:
        """The object at `revision` (what a compare-and-swap against it replaces); None when
        the key is no longer at that revision."""
        cached = self.cacher.resource(self.root).objects.get(key)
        if cached is not None and cached.revision == revision:
            return cached.decode()
        try:
            kv = await self.backend.get(key)
        except KeyNotFound:
            return None
        return decode_stored(kv.value, kv.mod_revision) if kv.mod_revision == revision else None
