"""The pod network seam, shaped like CNI: ADD gives a pod its IPs, DEL takes them back, CHECK
confirms an existing pod's (after a kubelet restart).

Why a seam: the real kubelet never hands out pod IPs itself; the runtime calls the node's CNI
plugin when it makes a sandbox, and the plugin's IPAM answers. Keeping the same split here
lets another plugin (real interfaces, another address range, an external IPAM) be dropped in
with `--network-plugin <name>` while pod workers stay as they are.

The default, `loopback`, is host-local IPAM over the node's podCIDR on the loopback range
(`127.244.<node>.0/24` by default): addresses `.2` to `.254` (`.1` is the node's gateway
address), which Linux answers on `lo` without any interface being made, so pods on this
machine reach each other, and kube-proxy reaches them, at their pod IPs.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Protocol, runtime_checkable

from pykube_server.kubelet.runtime import RuntimeServiceError


@dataclass(frozen=True, slots=True)
class PodNetwork:
    """What CNI's runtime config says about the pod (CNI_CONTAINERID, K8S_POD_* args)."""

    uid: str
    namespace: str
    name: str


class NetworkError(RuntimeServiceError):
    """The plugin could not set up the pod's network; the message goes into the pod's events."""


@runtime_checkable
class NetworkPlugin(Protocol):
    name: str

    async def setup_pod_network(self, pod: PodNetwork) -> tuple[str, ...]:
        """CNI ADD: the pod's IPs, first the primary (podIP). Raises NetworkError."""

    async def teardown_pod_network(self, pod: PodNetwork, ips: Sequence[str]) -> None:
        """CNI DEL: release what ADD gave; idempotent."""

    async def check_pod_network(self, pod: PodNetwork, ips: Sequence[str]) -> bool:
        """CNI CHECK for a sandbox found after a restart: claim its IPs again; False if they
        cannot be the pod's (the kubelet then treats the sandbox as broken)."""


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
        raise NetworkError("no pod IPs left in the node's podCIDR")

    def release(self, ip: str) -> None:
        self._used.discard(ip)


class LoopbackNetwork:
    """The default plugin: host-local IPAM on the loopback range, nothing to configure."""

    name = "loopback"

    def __init__(self, ips: IPAllocator) -> None:
        self.ips = ips

    async def setup_pod_network(self, pod: PodNetwork) -> tuple[str, ...]:
        return (self.ips.allocate(),)

    async def teardown_pod_network(self, pod: PodNetwork, ips: Sequence[str]) -> None:
        for ip in ips:
            if ip:
                self.ips.release(ip)

    async def check_pod_network(self, pod: PodNetwork, ips: Sequence[str]) -> bool:
        for ip in ips:
            if ip:
                self.ips.reserve(ip)
        return True


NetworkFactory = Callable[[str], NetworkPlugin]
"""podCIDR -> plugin."""

NETWORK_PLUGINS: dict[str, NetworkFactory] = {
    "loopback": lambda cidr: LoopbackNetwork(IPAllocator(cidr)),
}
