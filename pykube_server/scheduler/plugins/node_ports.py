"""NodePorts: a pod's hostPorts must be free on the node (same protocol and port, and the
same hostIP or either side on 0.0.0.0)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, ClassVar

from pykube_server.scheduler.framework import SKIP, CycleState, Handle, NodeInfo, PodInfo, Status, unschedulable

REASON = "node(s) didn't have free ports for the requested pod ports"
ANY_IP = "0.0.0.0"


def conflicts(used: Mapping[tuple[str, int], set[str]], protocol: str, ip: str, port: int) -> bool:
    ips = used.get((protocol, port))
    if not ips:
        return False
    return ip == ANY_IP or ANY_IP in ips or ip in ips


def fits(pod: PodInfo, node: NodeInfo) -> bool:
    return not any(conflicts(node.used_ports, protocol, ip, port) for protocol, ip, port in pod.host_ports)


class NodePorts:
    name: ClassVar[str] = "NodePorts"

    def pre_filter(self, state: CycleState, pod: PodInfo, nodes: list[NodeInfo]) -> Status | None:
        """kube's NodePorts PreFilter: a pod without host ports Skips the filter."""
        return None if pod.host_ports else SKIP

    def filter(self, state: CycleState, pod: PodInfo, node: NodeInfo) -> Status | None:
        return None if fits(pod, node) else unschedulable(REASON)


def new(args: Mapping[str, Any], handle: Handle) -> NodePorts:
    return NodePorts()
