"""The repair loop: stored allocations made to agree with the stored Services again.

A Service write claims its values before it is written and frees them after it is deleted
(`serviceclaims.py`); an API server killed in between leaves an IPAddress or a NodePort bit
that no Service holds (a leak), or, for data written before allocations were kept in storage,
a Service whose values were never claimed (a gap). kube-apiserver runs repair controllers for
both (the ClusterIP repair over IPAddresses, the NodePort repair over the bitmap) on start and
then every few minutes, on every API server; so does this.

Gaps are filled at once. A leak is only removed once it has been seen in `LEAK_ROUNDS`
consecutive passes (kube's `numRepairsBeforeLeakCleanup`), because a write in flight looks
exactly like a leak for a moment: its claim is stored, its Service not yet.
"""

from __future__ import annotations

import asyncio
import logging

import orjson

from pykube_server.registry.rangealloc import bit
from pykube_server.registry.serviceclaims import IP_ALLOCATOR, MANAGED_BY_LABEL, ServiceClaims, ip_address_object, parent_of
from pykube_server.registry.servicealloc import held_ips, held_ports
from pykube_server.storage.backend import KeyExists
from pykube_server.storage.cacher import Cacher
from pykube_server.storage.store import encode_for_storage

log = logging.getLogger(__name__)
LEAK_ROUNDS = 3
REPAIR_INTERVAL_SECONDS = 180.0


class AllocationRepair:
    def __init__(self, claims: ServiceClaims, cacher: Cacher, services_root: str, ip_root: str, *,
                 interval: float = REPAIR_INTERVAL_SECONDS, leak_rounds: int = LEAK_ROUNDS) -> None:
        self.claims, self.cacher = claims, cacher
        self.services_root, self.ip_root = services_root, ip_root
        self.interval, self.leak_rounds = interval, leak_rounds
        self._ip_leaks: dict[str, int] = {}
        self._port_leaks: dict[int, int] = {}

    async def run(self) -> None:
        """Repair every `interval` seconds until cancelled (the first pass is `run_once`'s)."""
        while True:
            await asyncio.sleep(self.interval)
            try:
                await self.run_once()
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("service allocation repair failed; next pass in %.0fs", self.interval)

    async def run_once(self) -> None:
        await self.cacher.wait_fresh()
        holders: dict[str, str] = {}
        ports: set[int] = set()
        for cached in list(self.cacher.resource(self.services_root).objects.values()):
            obj = orjson.loads(cached.raw)
            for ip in held_ips(obj):
                holders[ip] = f"{cached.namespace}/{cached.name}"
            ports |= held_ports(obj)
        await self._repair_ips(holders)
        await self._repair_ports(ports)

    async def _repair_ips(self, holders: dict[str, str]) -> None:
        stored: dict[str, str | None] = {}
        for cached in list(self.cacher.resource(self.ip_root).objects.values()):
            obj = orjson.loads(cached.raw)
            if ((obj.get("metadata") or {}).get("labels") or {}).get(MANAGED_BY_LABEL) == IP_ALLOCATOR:
                stored[cached.name] = parent_of(obj)
        in_range = self.claims.allocator.ips.offset_of
        for ip, owner in holders.items():
            if ip not in stored and in_range(ip) is not None:
                namespace, name = owner.split("/", 1)
                try:
                    await self.claims.backend.create(self.claims.ip_key(ip),
                                                     encode_for_storage(ip_address_object(ip, namespace, name)))
                    log.info("repair: ClusterIP %s of Service %s had no IPAddress; created it", ip, owner)
                except KeyExists:
                    pass
        leaks = {ip: parent for ip, parent in stored.items() if parent is None or holders.get(ip) != parent}
        self._ip_leaks = {ip: self._ip_leaks.get(ip, 0) + 1 for ip in leaks}
        for ip, rounds in list(self._ip_leaks.items()):
            if rounds >= self.leak_rounds:
                parent = leaks[ip]
                if parent is not None and await self.claims.delete_ip(ip, parent):
                    log.info("repair: released leaked ClusterIP %s (Service %s is gone)", ip, parent)
                del self._ip_leaks[ip]

    async def _repair_ports(self, held: set[int]) -> None:
        allocator = self.claims.allocator.ports
        want = 0
        for port in held:
            if allocator.contains(port):
                want |= 1 << (port - allocator.low)
        stored = await self.claims.node_ports.read()
        leaked = [o for o in range(allocator.offsets.size) if bit(stored, o) and not bit(want, o)] \
            if stored & ~want else []
        self._port_leaks = {o: self._port_leaks.get(o, 0) + 1 for o in leaked}
        expired = {o for o, rounds in self._port_leaks.items() if rounds >= self.leak_rounds}
        for o in expired:
            del self._port_leaks[o]
        drop = sum(1 << o for o in expired)

        def fix(bits: int) -> int:
            return (bits | want) & ~drop

        if stored | want != stored or drop:
            await self.claims.node_ports.modify(fix)
            if drop:
                log.info("repair: released %d leaked NodePort(s)", len(expired))
