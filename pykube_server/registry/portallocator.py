"""NodePort allocation: kube-apiserver's `portallocator` over the same OwnedRange as ClusterIPs.

One range (`--service-node-port-range`, 30000-32767 by default) shared by every protocol, as
upstream: a port taken by one Service is taken for TCP and UDP alike. Dynamic ports come
from the upper part of the range first, leaving a lower band for static assignment.
"""

from __future__ import annotations

from collections.abc import Iterable

from pykube_server.registry.ipallocator import Allocated, NotInRange, OwnedRange

DEFAULT_NODE_PORT_RANGE = "30000-32767"


def parse_port_range(text: str) -> tuple[int, int]:
    """`30000-32767` (or `30000+2767`, as kube's PortRange also accepts) -> (first, last)."""
    text = text.strip()
    try:
        if "+" in text:
            first, extra = text.split("+", 1)
            low, high = int(first), int(first) + int(extra)
        elif "-" in text:
            first, last = text.split("-", 1)
            low, high = int(first), int(last)
        else:
            low = high = int(text)
    except ValueError:
        raise ValueError(f'invalid port range "{text}"') from None
    if not 0 < low <= high <= 65535:
        raise ValueError(f'invalid port range "{text}"')
    return low, high


class PortRange:
    def __init__(self, text: str = DEFAULT_NODE_PORT_RANGE, **kwargs: object) -> None:
        self.low, self.high = parse_port_range(text)
        self.text = f"{self.low}-{self.high}"
        size = self.high - self.low + 1
        band = min(max(16, size // 32), 128)
        self.offsets = OwnedRange(size, static_band=band, **kwargs)  # type: ignore[arg-type]

    def contains(self, port: int) -> bool:
        return self.low <= port <= self.high

    def allocate(self, port: int, owner: str) -> bool:
        if not self.contains(port):
            raise NotInRange(f"provided port is not in the valid range. The range of valid ports is {self.text}")
        try:
            return self.offsets.allocate(port - self.low, owner)
        except Allocated:
            raise Allocated("provided port is already allocated") from None

    def allocate_next(self, owner: str) -> int:
        return self.low + self.offsets.allocate_next(owner)

    def release(self, port: int, owner: str) -> None:
        if self.contains(port):
            self.offsets.release(port - self.low, owner)

    def commit(self, owner: str, ports: Iterable[int]) -> None:
        self.offsets.commit(owner, [p - self.low for p in ports if self.contains(p)])

    def holder(self, port: int) -> str | None:
        return self.offsets.holder(port - self.low) if self.contains(port) else None
