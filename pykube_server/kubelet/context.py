"""What the pod workers of one node share: the API client, recorder, runtime, pod IPs, clock.

Kept apart from the workers so tests can build one with stubs, and so the IP allocator (the
stand-in for a CNI plugin's IPAM) has a home of its own.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

from pykube_server.api.types import Obj
from pykube_server.client.clock import REAL_CLOCK, Clock
from pykube_server.client.events import EventRecorder
from pykube_server.client.rest import Client
from pykube_server.kubelet.backoff import Backoff
from pykube_server.kubelet.dns import PodDNS
from pykube_server.kubelet.env import Getter
from pykube_server.kubelet.runtime import Runtime, RuntimeServiceError
from pykube_server.kubelet.volumes import VolumeManager


class IPAllocator:
    """Pod IPs from the node's /24 (`.2` to `.254`; `.1` is the node's gateway address)."""

    def __init__(self, cidr: str) -> None:
        self._prefix = cidr.split("/")[0].rsplit(".", 1)[0]
        self._used: set[str] = set()

    def reserve(self, ip: str) -> None:
        self._used.add(ip)

    def allocate(self) -> str:
        for host in range(2, 255):
            ip = f"{self._prefix}.{host}"
            if ip not in self._used:
                self._used.add(ip)
                return ip
        raise RuntimeServiceError("no pod IPs left in the node's podCIDR")

    def release(self, ip: str) -> None:
        self._used.discard(ip)


@dataclass
class NodeContext:
    """What every pod worker of one node shares."""

    node_name: str
    host_ip: str
    client: Client
    recorder: EventRecorder
    runtime: Runtime
    ips: IPAllocator
    getter: Getter
    services: Callable[[str, bool], Iterable[Obj]]
    """(namespace, enableServiceLinks) -> the Services whose variables a container gets."""
    allocatable: Obj = field(default_factory=dict)
    clock: Clock = REAL_CLOCK
    backoff: Backoff = field(default_factory=Backoff)
    volumes: VolumeManager | None = None
    """Pod volumes as host directories (None: volumes are ignored, as the simulated runtime does)."""
    dns: PodDNS | None = None
    """Each pod's resolv.conf and hosts file (None: containers see the node's)."""

    def wall(self) -> float:
        return self.clock.wall().timestamp()
