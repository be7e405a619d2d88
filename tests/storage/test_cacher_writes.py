"""Read-your-writes per resource (`Cacher.wait_written`): admission reads a namespace's
LimitRanges and ResourceQuotas from the cache, and must see this server's own last write of
them, without a backend round trip on every create."""

from __future__ import annotations

import asyncio

from pykube_server.storage.cacher import Cacher
from pykube_server.storage.memory import MemoryBackend
from pykube_server.storage.store import Store


async def test_wait_written_sees_own_writes_and_costs_nothing_otherwise() -> None:
    backend = MemoryBackend()
    cacher = Cacher(backend, roots=["/registry/limitranges", "/registry/pods"], field_indexer=lambda root, obj: {})
    runner = asyncio.create_task(cacher.run())
    try:
        await cacher.wait_ready()
        store = Store(backend, cacher)
        ranges = cacher.resource("/registry/limitranges")
        # nothing written to limitranges yet: no wait even while pods are written
        await asyncio.gather(*(store.create(f"/registry/pods/ns/p{i}", {"metadata": {"name": f"p{i}"}}) for i in range(20)))
        await asyncio.wait_for(cacher.wait_written("/registry/limitranges"), 0.01)
        await store.create("/registry/limitranges/ns/lr", {"metadata": {"name": "lr"}})
        await cacher.wait_written("/registry/limitranges")
        assert [c.key for c in ranges.under("/registry/limitranges/ns/")] == ["/registry/limitranges/ns/lr"]
        await store.delete("/registry/limitranges/ns/lr")
        await cacher.wait_written("/registry/limitranges")
        assert ranges.under("/registry/limitranges/ns/") == []
    finally:
        runner.cancel()
        await asyncio.gather(runner, return_exceptions=True)
