"""Which endpoints serve which traffic: kube-proxy's CategorizeEndpoints, pure.

A service port's endpoints come from its EndpointSlices; each knows whether it is ready,
serving and terminating, and on which node it runs (`nodeName`). Two lists are derived:

* cluster endpoints: the ready ones; when none is ready, the serving-and-terminating ones
  (kube's terminating-endpoint fallback, so a rolling update does not drop traffic);
* local endpoints: the same rule over the endpoints on a node this proxy serves.

ClusterIP traffic uses the local list when `internalTrafficPolicy: Local`, the cluster list
otherwise; NodePort, LoadBalancer ingress and externalIPs traffic ("external") uses the local
list when `externalTrafficPolicy: Local`. An empty list means the traffic is not served: kube
drops it (no local endpoints) or rejects it (no endpoints at all); here nothing listens, so it is
refused either way.

Topology-aware hints are not used (the EndpointSlice controller does not write them).
"""

from __future__ import annotations

from collections.abc import Collection, Iterable
from dataclasses import dataclass

from pykube_server.api.types import Obj

Endpoint = tuple[str, int]
"""(ip, port)"""
LOCAL = "Local"


@dataclass(frozen=True, slots=True)
class EndpointInfo:
    ip: str
    port: int
    ready: bool
    serving: bool
    terminating: bool
    node_name: str

    @property
    def target(self) -> Endpoint:
        return (self.ip, self.port)


def endpoints_of(slices: Iterable[Obj], port_name: str, protocol: str) -> list[EndpointInfo]:
    """The endpoints of one service port (by port name and protocol) across its slices, in
    slice-name order; an unset `ready` counts as ready, an unset `serving` as `ready`."""
    out: list[EndpointInfo] = []
    for slice_ in sorted(slices, key=lambda s: (s.get("metadata") or {}).get("name", "")):
        if slice_.get("addressType") not in ("IPv4", "IPv6"):
            continue
        port = next((p for p in slice_.get("ports") or []
                     if (p.get("name") or "") == port_name and (p.get("protocol") or "TCP") == protocol), None)
        if port is None or not port.get("port"):
            continue
        for endpoint in slice_.get("endpoints") or []:
            addresses = endpoint.get("addresses") or []
            if not addresses:
                continue
            conditions = endpoint.get("conditions") or {}
            ready = conditions.get("ready") is not False
            serving = conditions.get("serving") if conditions.get("serving") is not None else ready
            out.append(EndpointInfo(str(addresses[0]), int(port["port"]), ready, bool(serving),
                                    bool(conditions.get("terminating")), str(endpoint.get("nodeName") or "")))
    return out


def _usable(endpoints: list[EndpointInfo]) -> list[Endpoint]:
    ready = [e.target for e in endpoints if e.ready]
    if not ready:
        ready = [e.target for e in endpoints if e.serving and e.terminating]
    return sorted(set(ready))


def cluster_endpoints(endpoints: list[EndpointInfo]) -> list[Endpoint]:
    return _usable(endpoints)


def local_endpoints(endpoints: list[EndpointInfo], node_names: Collection[str]) -> list[Endpoint]:
    return _usable([e for e in endpoints if e.node_name and e.node_name in node_names])


def local_ready_count(endpoints: list[EndpointInfo], node_names: Collection[str]) -> int:
    """What the health check node port reports: distinct ready endpoint IPs on our nodes."""
    return len({e.ip for e in endpoints if e.ready and e.node_name and e.node_name in node_names})


def internal_policy_local(service: Obj) -> bool:
    return (service.get("spec") or {}).get("internalTrafficPolicy") == LOCAL


def external_policy_local(service: Obj) -> bool:
    """eTP Local matters only for Services with external traffic (NodePort, LoadBalancer, externalIPs)."""
    spec = service.get("spec") or {}
    external = spec.get("type") in ("NodePort", "LoadBalancer") or bool(spec.get("externalIPs"))
    return external and spec.get("externalTrafficPolicy") == LOCAL
