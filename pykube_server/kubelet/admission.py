"""The kubelet's own admission of a pod bound to its node (canAdmitPod), for host ports.

Why: a pod whose `spec.nodeName` is set directly never passes the scheduler, so the kubelet
re-runs the scheduler's NodePorts predicate against the pods already active on the node. A pod
that would take a hostPort (same protocol and port, same hostIP or either on 0.0.0.0) already
held is rejected: a Warning event, and the pod status phase Failed with reason `NodePorts` and
message `Pod was rejected: Predicate NodePorts failed: <the scheduler's reason>`.
"""

from __future__ import annotations

from collections.abc import Iterable

from pykube_server.api.types import Obj
from pykube_server.scheduler.framework import _host_ports as host_ports
from pykube_server.scheduler.plugins.node_ports import REASON, conflicts

NODE_PORTS = "NodePorts"
TERMINAL = ("Succeeded", "Failed")


def is_active(pod: Obj) -> bool:
    """Counts against admission: not finished (a terminal phase frees its ports)."""
    return (pod.get("status") or {}).get("phase") not in TERMINAL


def rejection(pod: Obj, active: Iterable[Obj]) -> tuple[str, str] | None:
    """(reason, event message) when `pod` must be rejected, else None."""
    wanted = host_ports(pod)
    if not wanted:
        return None
    used: dict[tuple[str, int], set[str]] = {}
    for other in active:
        for protocol, ip, port in host_ports(other):
            used.setdefault((protocol, port), set()).add(ip)
    if any(conflicts(used, protocol, ip, port) for protocol, ip, port in wanted):
        return NODE_PORTS, f"Predicate {NODE_PORTS} failed: {REASON}"
    return None


def rejected_status(reason: str, message: str) -> Obj:
    """The status the kubelet's rejectPod writes."""
    return {"phase": "Failed", "reason": reason, "message": f"Pod was rejected: {message}"}
