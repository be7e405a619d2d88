"""Making a Service's ClusterIPs and NodePorts its own in storage, before the Service is written.

`ServiceAllocator` picks values from what this API server's watch cache knows. With several
API servers on one store that is not enough: two of them can pick the same free value in the
same instant. So, as kube-apiserver 1.33 does, each value is also claimed in storage, where the
store decides atomically:

- a ClusterIP is claimed by *creating* its networking.k8s.io/v1 IPAddress object (named by the
  address, `spec.parentRef` naming the Service, labelled managed-by `ipallocator.k8s.io`; the
  MultiCIDRServiceAllocator allocator, GA and always on in 1.33). A create that finds the object
  there means another Service has the address: an address the client asked for is refused with
  the usual 422, one the allocator picked is swapped for another free one;
- NodePorts (and healthCheckNodePort) are bits of the RangeAllocation bitmap at
  `/registry/ranges/servicenodeports`, set by compare-and-swap (`rangealloc.py`), with the same
  refuse-or-swap rule.

`claim` runs before the Service write and `undo` gives back what it took when that write fails;
`release` frees what a stored Service no longer holds once it is deleted or changed. A process
killed in between leaves a leak or a gap, which the repair loop (`allocrepair.py`) mends.
"""

from __future__ import annotations

import ipaddress
import uuid
from dataclasses import dataclass, field
from typing import Any

from pykube_server.api import errors
from pykube_server.api.fields import invalid
from pykube_server.registry.ipallocator import AllocationError
from pykube_server.registry.kind_validation.common import go_string_slice, invalid_go
from pykube_server.registry.rangealloc import NODE_PORTS_KEY, StoredBitmap, bit
from pykube_server.registry.servicealloc import ServiceAllocator, held_ips, held_ports, owner_of
from pykube_server.registry.strategy import now_rfc3339
from pykube_server.storage.backend import Backend, Conflict, KeyExists, KeyNotFound
from pykube_server.storage.store import decode_stored, encode_for_storage

Obj = dict[str, Any]
IP_FAMILY_LABEL = "ipaddress.kubernetes.io/ip-family"
MANAGED_BY_LABEL = "ipaddress.kubernetes.io/managed-by"
IP_ALLOCATOR = "ipallocator.k8s.io"
SWAP_ATTEMPTS = 32
"""How many picked values may turn out taken in storage before a create gives up (500)."""
FOREIGN = "<storage>"
"""The owner the in-memory allocator is told holds a value found taken in storage."""


def ip_address_object(ip: str, namespace: str, name: str) -> Obj:
    """The IPAddress kube-apiserver's allocator writes for a Service's ClusterIP."""
    family = "IPv4" if ipaddress.ip_address(ip).version == 4 else "IPv6"
    return {"apiVersion": "networking.k8s.io/v1", "kind": "IPAddress",
            "metadata": {"name": ip, "uid": str(uuid.uuid4()), "creationTimestamp": now_rfc3339(),
                         "labels": {IP_FAMILY_LABEL: family, MANAGED_BY_LABEL: IP_ALLOCATOR}},
            "spec": {"parentRef": {"group": "", "resource": "services", "namespace": namespace, "name": name}}}


def parent_of(obj: Obj) -> str | None:
    """`namespace/name` of the Service an IPAddress belongs to (None: not a Service's)."""
    ref = (obj.get("spec") or {}).get("parentRef") or {}
    if ref.get("resource") != "services" or ref.get("group"):
        return None
    return f"{ref.get('namespace', '')}/{ref.get('name', '')}"


@dataclass
class Claim:
    """What one write took in storage, to give back if the write fails."""

    owner: str
    ips: list[str] = field(default_factory=list)
    ports: set[int] = field(default_factory=set)


class ServiceClaims:
    def __init__(self, backend: Backend, allocator: ServiceAllocator, ip_root: str) -> None:
        self.backend = backend
        self.allocator = allocator
        self.ip_root = ip_root
        ports = allocator.ports
        self.node_ports = StoredBitmap(backend, NODE_PORTS_KEY, ports.text, ports.offsets.size)

    def ip_key(self, ip: str) -> str:
        return f"{self.ip_root}/{ip}"

    # -- claiming -----------------------------------------------------------------------------
    async def claim(self, obj: Obj, old: Obj | None) -> Claim:
        """Claim in storage every value `obj` holds that `old` (the stored Service, None on
        create) did not; swaps picked values found taken, refuses requested ones (422)."""
        owner = owner_of(obj)
        picked_ips, picked_ports = self.allocator.picked(owner)
        claim = Claim(owner)
        old_ips, old_ports = set(held_ips(old or {})), held_ports(old or {})
        try:
            for ip in held_ips(obj):
                if ip not in old_ips:
                    await self._claim_ip(obj, ip, ip in picked_ips, claim)
            new_ports = held_ports(obj) - old_ports
            if new_ports:
                await self._claim_ports(obj, new_ports, picked_ports & new_ports, claim)
        except Exception:
            await self.undo(claim)
            raise
        return claim

    async def _claim_ip(self, obj: Obj, ip: str, picked: bool, claim: Claim) -> None:
        meta = obj.get("metadata") or {}
        namespace, name = meta.get("namespace", ""), meta.get("name", "")
        for _ in range(SWAP_ATTEMPTS):
            try:
                await self.backend.create(self.ip_key(ip), encode_for_storage(ip_address_object(ip, namespace, name)))
                claim.ips.append(ip)
                return
            except KeyExists:
                pass
            holder = await self._ip_holder(ip)
            if holder is None:
                continue  # deleted meanwhile: try again
            if holder == claim.owner:
                return  # already this Service's (an earlier write of it, or the repair loop)
            self._mark_foreign_ip(ip, claim.owner)
            if not picked:
                raise self._ip_taken(obj, ip)
            replacement = self._next_ip(claim.owner)
            self._replace_ip(obj, ip, replacement)
            ip = replacement
        raise _internal("failed to allocate a serviceIP: range is full")

    async def _ip_holder(self, ip: str) -> str | None:
        try:
            kv = await self.backend.get(self.ip_key(ip))
        except KeyNotFound:
            return None
        return parent_of(decode_stored(kv.value, kv.mod_revision)) or FOREIGN

    def _mark_foreign_ip(self, ip: str, owner: str) -> None:
        """Tell this server's allocator that `ip` is someone else's (until its cache knows whose)."""
        self.allocator.ips.release(ip, owner)
        try:
            self.allocator.ips.allocate(ip, FOREIGN)
        except AllocationError:
            pass

    def _next_ip(self, owner: str) -> str:
        try:
            return self.allocator.ips.allocate_next(owner)
        except AllocationError as exc:
            raise _internal(f"failed to allocate a serviceIP: {exc}") from None

    @staticmethod
    def _replace_ip(obj: Obj, old: str, new: str) -> None:
        spec = obj.get("spec") or {}
        if spec.get("clusterIP") == old:
            spec["clusterIP"] = new
        spec["clusterIPs"] = [new if ip == old else ip for ip in spec.get("clusterIPs") or []]

    def _ip_taken(self, obj: Obj, ip: str) -> errors.Invalid:
        ips = [i for i in (obj.get("spec") or {}).get("clusterIPs") or [] if isinstance(i, str)] or [ip]
        return errors.Invalid.from_errors("Service", "", (obj.get("metadata") or {}).get("name", ""), [
            invalid_go("spec.clusterIPs", go_string_slice(ips), f"failed to allocate IP {ip}: provided IP is already allocated")])

    async def _claim_ports(self, obj: Obj, wanted: set[int], picked: set[int], claim: Claim) -> None:
        ports = self.allocator.ports
        final: dict[int, int] = {}
        swaps: dict[int, int] = {}
        """A picked port found taken -> its replacement, kept when a conflict makes us retry."""

        def take(bits: int) -> int:
            final.clear()
            for port in sorted(wanted):
                value = swaps.get(port, port)
                for _ in range(SWAP_ATTEMPTS):
                    if not bit(bits, value - ports.low) and value not in final.values():
                        break
                    if port not in picked:
                        raise self._port_taken(obj, port)
                    if bit(bits, value - ports.low):
                        self._mark_foreign_port(value, claim.owner)
                    value = swaps[port] = self._next_port(claim.owner)
                else:
                    raise _internal("failed to allocate a nodePort: range is full")
                final[port] = value
                bits |= 1 << (value - ports.low)
            return bits

        await self.node_ports.modify(take)
        claim.ports.update(final.values())
        for old, new in final.items():
            if old != new:
                self._replace_port(obj, old, new)

    def _mark_foreign_port(self, port: int, owner: str) -> None:
        self.allocator.ports.release(port, owner)
        try:
            self.allocator.ports.allocate(port, FOREIGN)
        except AllocationError:
            pass

    def _next_port(self, owner: str) -> int:
        try:
            return self.allocator.ports.allocate_next(owner)
        except AllocationError as exc:
            raise _internal(f"failed to allocate a nodePort: {exc}") from None

    @staticmethod
    def _replace_port(obj: Obj, old: int, new: int) -> None:
        spec = obj.get("spec") or {}
        for port in spec.get("ports") or []:
            if isinstance(port, dict) and port.get("nodePort") == old:
                port["nodePort"] = new
        if spec.get("healthCheckNodePort") == old:
            spec["healthCheckNodePort"] = new

    def _port_taken(self, obj: Obj, port: int) -> errors.Invalid:
        spec = obj.get("spec") or {}
        path = "spec.healthCheckNodePort"
        for i, p in enumerate(spec.get("ports") or []):
            if isinstance(p, dict) and p.get("nodePort") == port:
                path = f"spec.ports[{i}].nodePort"
                break
        return errors.Invalid.from_errors("Service", "", (obj.get("metadata") or {}).get("name", ""), [
            invalid(path, port, "provided port is already allocated")])

    # -- giving back --------------------------------------------------------------------------
    async def undo(self, claim: Claim) -> None:
        """Give back what `claim` took: its Service write failed."""
        await self._free(claim.owner, claim.ips, claim.ports)
        self.allocator.release(claim.owner, claim.ips, claim.ports)

    async def release(self, old: Obj | None, new: Obj | None) -> None:
        """Free what the stored Service `old` held and `new` (None: deleted) does not."""
        if not old:
            return
        ips = [ip for ip in held_ips(old) if ip not in set(held_ips(new or {}))]
        ports = held_ports(old) - held_ports(new or {})
        if ips or ports:
            await self._free(owner_of(old), ips, ports)

    async def _free(self, owner: str, ips: list[str], ports: set[int]) -> None:
        for ip in ips:
            await self.delete_ip(ip, owner)
        low = self.allocator.ports.low
        mask = sum(1 << (p - low) for p in ports if self.allocator.ports.contains(p))
        if mask:
            await self.node_ports.modify(lambda bits: bits & ~mask)

    async def delete_ip(self, ip: str, owner: str) -> bool:
        """Delete the IPAddress of `ip` if it is `owner`'s (compare-and-swap on its revision)."""
        key = self.ip_key(ip)
        for _ in range(4):
            try:
                kv = await self.backend.get(key)
            except KeyNotFound:
                return False
            if parent_of(decode_stored(kv.value, kv.mod_revision)) != owner:
                return False
            try:
                await self.backend.delete(key, revision=kv.mod_revision)
                return True
            except KeyNotFound:
                return False
            except Conflict:
                continue
        return False


def _internal(message: str) -> errors.InternalError:
    return errors.InternalError(f"Internal error occurred: {message}", details={"causes": [{"message": message}]})
