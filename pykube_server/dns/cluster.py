"""Informer glue: the API's Services, EndpointSlices and Namespaces as the current `Zone`.

Why a snapshot rebuilt on demand: informer events only mark the zone stale; the next query
rebuilds it from the listers once (O(objects)), so a burst of endpoint changes costs one
rebuild and a query never sees half an update. Each rebuild moves the SOA serial to the time
of the change, as CoreDNS's serial follows the last modification. Pods are watched only in
`verified` pod mode, where `<ip>.<ns>.pod.<zone>` must name an existing pod.
"""

from __future__ import annotations

import time

from pykube_server.client.informer import FuncHandler, Informer, InformerFactory
from pykube_server.client.rest import ENDPOINTSLICES, NAMESPACES, PODS, SERVICES
from pykube_server.dns.records import DEFAULT_TTL, Zone

POD_MODES = ("insecure", "verified", "disabled")


class ClusterZone:
    """The zone kept current from informers; `zone()` is what the server asks per query."""

    def __init__(self, informers: InformerFactory, domain: str, *, ttl: int = DEFAULT_TTL,
                 pod_mode: str = "insecure") -> None:
        self._informers = informers
        self.domain = domain
        self.ttl = ttl
        self.pod_mode = pod_mode
        self.services = informers.informer(SERVICES)
        self.slices = informers.informer(ENDPOINTSLICES)
        self.namespaces = informers.informer(NAMESPACES)
        self.pods: Informer | None = None
        self._zone: Zone | None = None
        self._changed_at = int(time.time())
        self._mark = FuncHandler(add=lambda o: self._stale(), update=lambda o, n: self._stale(),
                                 delete=lambda o: self._stale())
        for informer in (self.services, self.slices, self.namespaces):
            informer.add_handler(self._mark)
        self._watch_pods()

    def _watch_pods(self) -> None:
        if self.pod_mode == "verified" and self.pods is None:
            self.pods = self._informers.informer(PODS)
            self.pods.add_handler(self._mark)

    def reconfigure(self, domain: str, ttl: int, pod_mode: str) -> None:
        """Apply an edited Corefile's zone settings (the next query sees them)."""
        self.domain, self.ttl, self.pod_mode = domain, ttl, pod_mode
        self._watch_pods()
        self._stale()

    def _stale(self) -> None:
        self._zone = None
        self._changed_at = int(time.time())

    def synced(self) -> bool:
        return all(i.has_synced() for i in (self.services, self.slices, self.namespaces, self.pods) if i is not None)

    async def wait_synced(self) -> None:
        for informer in (self.services, self.slices, self.namespaces, self.pods):
            if informer is not None:
                await informer.wait_synced()

    def zone(self) -> Zone:
        if self._zone is None:
            pod_ips = None
            if self.pods is not None and self.pod_mode == "verified":
                pod_ips = [(p["metadata"].get("namespace", ""), ip["ip"]) for p in self.pods.lister.list()
                           for ip in (p.get("status") or {}).get("podIPs") or [] if ip.get("ip")]
            self._zone = Zone(self.domain, self.services.lister.list(), self.slices.lister.list(),
                              [n["metadata"]["name"] for n in self.namespaces.lister.list()], ttl=self.ttl,
                              serial=self._changed_at, pod_ips=pod_ips,
                              pods=self.pod_mode != "disabled")
        return self._zone
