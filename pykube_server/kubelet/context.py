"""What the pod workers of one node share: the API client, recorder, runtime, pod IPs, clock.

Kept apart from the workers so tests can build one with stubs. Pod IPs come from the network
plugin (`network.py`, the CNI seam); `ips` is the default loopback plugin's allocator, kept
here for callers that build a context from a podCIDR alone.
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
from pykube_server.kubelet.network import IPAllocator, LoopbackNetwork, NetworkPlugin
from pykube_server.kubelet.runtime import Runtime
from pykube_server.kubelet.volumes import VolumeManager

__all__ = ["IPAllocator", "NodeContext"]


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
    network: NetworkPlugin | None = None
    """The CNI-shaped network plugin (None: the loopback plugin over `ips`)."""

    def __post_init__(self) -> None:
        if self.network is None:
            self.network = LoopbackNetwork(self.ips)

    @property
    def net(self) -> NetworkPlugin:
        assert self.network is not None
        return self.network

    def wall(self) -> float:
        return self.clock.wall().timestamp()
