"""ClusterIP allocation: which addresses of the service range are taken, and by whom.

Shaped after kube-apiserver's `ipallocator`: a range of offsets inside one CIDR (network and
broadcast addresses excluded), `allocate` for a requested address, `allocate_next` for any free
one (random, preferring the upper part of the range so the lower band stays free for
static assignment, as upstream's offset strategy does), with the same error texts.

This is the server's fast, in-memory view: `OwnedRange` keeps what each stored Service holds
(`commit`, fed from the watch cache) plus short-lived reservations for writes that are not in
the cache yet. A reservation ends when the cache shows the owner's Service holding the value,
or after `RESERVATION_SECONDS` (a create that failed, a dry run). Deleting or changing a
Service frees its values once the cache sees it, and a restart rebuilds the view from the
stored Services. What settles a race between API servers sharing the store is the claim in
storage (IPAddress objects, the NodePort bitmap: `serviceclaims.py`), which marks a value it
finds taken here as held by someone else until the cache shows by whom.
"""

from __future__ import annotations

import ipaddress
import random
import time
from collections.abc import Callable, Iterable

RESERVATION_SECONDS = 30.0
"""How long a value reserved by an in-flight write stays taken without the cache seeing it."""
RANDOM_TRIES = 64


class AllocationError(Exception):
    """A value cannot be allocated; str() is kube's error text."""


class NotInRange(AllocationError):
    pass


class Allocated(AllocationError):
    pass


class RangeFull(AllocationError):
    def __init__(self) -> None:
        super().__init__("range is full")


class OwnedRange:
    """Offsets 0..size-1, each free, committed to an owner, or reserved by one until a deadline.

    Owners are opaque strings (`namespace/name` of the Service). Values already held by an
    owner may be allocated again by that owner (an update keeps its ClusterIP and NodePorts).
    """

    def __init__(self, size: int, *, static_band: int = 0, clock: Callable[[], float] = time.monotonic,
                 reservation_seconds: float = RESERVATION_SECONDS) -> None:
        self.size = size
        self.static_band = min(static_band, size)
        """Offsets below this are handed out by `allocate_next` only when the rest is full."""
        self._clock = clock
        self._ttl = reservation_seconds
        self._committed: dict[int, str] = {}
        self._by_owner: dict[str, set[int]] = {}
        self._reserved: dict[int, tuple[str, float]] = {}

    # -- what stored objects hold -------------------------------------------------------------
    def commit(self, owner: str, offsets: Iterable[int]) -> None:
        """Make `offsets` exactly what `owner` holds in storage (empty: it holds nothing)."""
        new = set(offsets)
        old = self._by_owner.pop(owner, set())
        for offset in old - new:
            if self._committed.get(offset) == owner:
                del self._committed[offset]
        for offset in new:
            self._committed[offset] = owner
            reserved = self._reserved.get(offset)
            if reserved is not None and reserved[0] == owner:
                del self._reserved[offset]
        if new:
            self._by_owner[owner] = new

    def clear(self) -> None:
        self._committed.clear()
        self._by_owner.clear()

    # -- allocation ---------------------------------------------------------------------------
    def holder(self, offset: int) -> str | None:
        owner = self._committed.get(offset)
        if owner is not None:
            return owner
        reserved = self._reserved.get(offset)
        if reserved is None:
            return None
        if reserved[1] <= self._clock():
            del self._reserved[offset]
            return None
        return reserved[0]

    def allocate(self, offset: int, owner: str) -> bool:
        """Take `offset` for `owner`; True when it was newly reserved (False: already its own).
        Raises Allocated when someone else holds it."""
        held_by = self.holder(offset)
        if held_by is not None and held_by != owner:
            raise Allocated()
        if self._committed.get(offset) == owner:
            return False
        fresh = held_by is None
        self._reserved[offset] = (owner, self._clock() + self._ttl)
        return fresh

    def allocate_next(self, owner: str) -> int:
        """A free offset, reserved for `owner`; random, upper band first. Raises RangeFull."""
        for low, high in ((self.static_band, self.size), (0, self.static_band)):
            offset = self._free_in(low, high)
            if offset is not None:
                self._reserved[offset] = (owner, self._clock() + self._ttl)
                return offset
        raise RangeFull()

    def _free_in(self, low: int, high: int) -> int | None:
        if high <= low:
            return None
        for _ in range(RANDOM_TRIES):
            offset = random.randrange(low, high)
            if self.holder(offset) is None:
                return offset
        start = random.randrange(low, high)
        for i in range(high - low):
            offset = low + (start - low + i) % (high - low)
            if self.holder(offset) is None:
                return offset
        return None

    def release(self, offset: int, owner: str) -> None:
        """Drop `owner`'s reservation of `offset` (a failed write rolling back)."""
        reserved = self._reserved.get(offset)
        if reserved is not None and reserved[0] == owner:
            del self._reserved[offset]

    def used(self) -> int:
        return len(set(self._committed) | {o for o in self._reserved if self.holder(o) is not None})


class IPRange:
    """The service CIDR's usable addresses (IPv4 or IPv6) over an OwnedRange."""

    def __init__(self, cidr: str, **kwargs: object) -> None:
        self.network = ipaddress.ip_network(cidr, strict=False)
        self.cidr = str(self.network)
        self.family = "IPv4" if self.network.version == 4 else "IPv6"
        size = self.network.num_addresses - (2 if self.network.version == 4 else 1)
        size = max(min(size, 1 << 20), 0)  # an IPv6 /64 is bounded, as upstream bounds its bitmap
        band = min(max(16, size // 16), 256)
        self.offsets = OwnedRange(size, static_band=band, **kwargs)  # type: ignore[arg-type]

    @property
    def base(self) -> int:
        return int(self.network.network_address) + 1

    def first(self) -> str:
        """The first usable address: the `kubernetes` Service's ClusterIP."""
        return str(ipaddress.ip_address(self.base))

    def offset_of(self, ip: str) -> int | None:
        """The address's offset, or None if it is not an allocatable address of the range."""
        try:
            addr = ipaddress.ip_address(ip)
        except ValueError:
            return None
        offset = int(addr) - self.base
        if addr.version != self.network.version or not 0 <= offset < self.offsets.size:
            return None
        return offset

    def ip_at(self, offset: int) -> str:
        return str(ipaddress.ip_address(self.base + offset))

    def allocate(self, ip: str, owner: str) -> bool:
        offset = self.offset_of(ip)
        if offset is None:
            raise NotInRange(f"the provided IP ({ip}) is not in the valid range. The range of valid IPs is {self.cidr}")
        try:
            return self.offsets.allocate(offset, owner)
        except Allocated:
            raise Allocated("provided IP is already allocated") from None

    def allocate_next(self, owner: str) -> str:
        return self.ip_at(self.offsets.allocate_next(owner))

    def release(self, ip: str, owner: str) -> None:
        offset = self.offset_of(ip)
        if offset is not None:
            self.offsets.release(offset, owner)

    def commit(self, owner: str, ips: Iterable[str]) -> None:
        self.offsets.commit(owner, [o for o in (self.offset_of(ip) for ip in ips) if o is not None])

    def holder(self, ip: str) -> str | None:
        offset = self.offset_of(ip)
        return None if offset is None else self.offsets.holder(offset)
