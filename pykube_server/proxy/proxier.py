"""The Proxier: Services x EndpointSlices -> listening forwarders, level-triggered.

As kube-proxy's `Provider.Sync`, `sync()` recomputes the whole table from the informer caches
and reconciles the listeners against it. Each service port has two plans (`topology.py` says
which endpoints each may use): the internal one listens on the ClusterIP:port and follows
`internalTrafficPolicy`; the external one listens on the node address at the NodePort and on
each loopback external or load-balancer ingress IP, and follows `externalTrafficPolicy`. Every
listener of a plan shares one Balancer, whose endpoint list is replaced in place so open
listeners never blink. A plan without usable endpoints gets no listener, so connecting is
refused, as kube-proxy's REJECT rule does (for "no local endpoints" kube DROPs instead; a
refused connection is the closest a userspace proxy gets without hanging clients).

"Local" means on one of the nodes this proxy serves (`node_names`, kube-proxy's
--hostname-override); `up` runs one proxy for all the virtual nodes of this machine and names
them all, since every pod of this machine is reachable from its one node address. LoadBalancer
Services with `externalTrafficPolicy: Local` also get their health check node port served
(`healthcheck.py`).

Informer events only set a dirty flag; one loop drains it, so a burst of changes costs one sync
and changes apply as soon as that sync runs. Listeners that could not bind (another process
holds the address) are retried every RETRY_SECONDS. Services labelled
`service.kubernetes.io/service-proxy-name` belong to another proxy and are skipped, as
kube-proxy does.
"""

from __future__ import annotations

import asyncio
import ipaddress
import logging
import socket
from collections.abc import Collection, Iterable
from dataclasses import dataclass, field

from pykube_server.api.types import Obj
from pykube_server.client.informer import FuncHandler, InformerFactory
from pykube_server.client.rest import ENDPOINTSLICES, SERVICES
from pykube_server.proxy.balancer import ROUND_ROBIN, Balancer, Endpoint
from pykube_server.proxy.healthcheck import HealthCheckServers, ServiceName
from pykube_server.proxy.topology import (cluster_endpoints, endpoints_of, external_policy_local,
                                          internal_policy_local, local_endpoints, local_ready_count)
from pykube_server.proxy.userspace import Forwarder, forwarder_for

log = logging.getLogger(__name__)

RETRY_SECONDS = 2.0
SERVICE_NAME_LABEL = "kubernetes.io/service-name"
PROXY_NAME_LABEL = "service.kubernetes.io/service-proxy-name"
DEFAULT_AFFINITY_SECONDS = 10800
PROTOCOLS = ("TCP", "UDP")

ServicePortName = tuple[str, str, str, str]
"""(namespace, service, port name, protocol)"""
INTERNAL, EXTERNAL = "internal", "external"
BalancerKey = tuple[str, str, str, str, str]
"""A service port and the traffic (INTERNAL: ClusterIP; EXTERNAL: NodePort, LB and external IPs)."""
ListenKey = tuple[str, str, int]
"""(protocol, address, port)"""


@dataclass
class ServicePortPlan:
    endpoints: list[Endpoint]
    affinity_seconds: float | None
    listen: list[ListenKey] = field(default_factory=list)


def _slice_index(obj: Obj) -> list[str]:
    meta = obj.get("metadata") or {}
    name = (meta.get("labels") or {}).get(SERVICE_NAME_LABEL)
    return [f"{meta.get('namespace', '')}/{name}"] if name else []


def usable_endpoints(slices: list[Obj], port_name: str, protocol: str) -> list[Endpoint]:
    """The endpoints cluster-wide traffic to one service port goes to."""
    return cluster_endpoints(endpoints_of(slices, port_name, protocol))


def _is_loopback(ip: str) -> bool:
    try:
        return ipaddress.ip_address(ip).is_loopback
    except ValueError:
        return False


def _proxied(service: Obj) -> bool:
    meta, spec = service.get("metadata") or {}, service.get("spec") or {}
    if spec.get("type") == "ExternalName" or PROXY_NAME_LABEL in (meta.get("labels") or {}):
        return False
    return (spec.get("clusterIP") or "") not in ("", "None")


def plan_service(service: Obj, slices: list[Obj], node_address: str,
                 node_names: Collection[str] = frozenset()) -> dict[BalancerKey, ServicePortPlan]:
    """Per service port, the internal plan (ClusterIP:port) and the external one (NodePort,
    loopback externalIPs and load-balancer ingress IPs), each with the endpoints its traffic
    policy allows; a plan without endpoints is left out, so its addresses refuse connections."""
    if not _proxied(service):
        return {}
    meta, spec = service.get("metadata") or {}, service.get("spec") or {}
    cluster_ip = spec["clusterIP"]
    affinity = None
    if spec.get("sessionAffinity") == "ClientIP":
        config = (spec.get("sessionAffinityConfig") or {}).get("clientIP") or {}
        affinity = float(config.get("timeoutSeconds") or DEFAULT_AFFINITY_SECONDS)
    extra_ips = list(spec.get("externalIPs") or [])
    extra_ips += [i.get("ip") for i in ((service.get("status") or {}).get("loadBalancer") or {}).get("ingress") or []
                  if i.get("ip")]
    internal_local, external_local = internal_policy_local(service), external_policy_local(service)
    out: dict[BalancerKey, ServicePortPlan] = {}
    for port in spec.get("ports") or []:
        protocol = port.get("protocol") or "TCP"
        if protocol not in PROTOCOLS or not port.get("port"):
            continue
        name = (meta.get("namespace", ""), meta.get("name", ""), port.get("name") or "", protocol)
        infos = endpoints_of(slices, name[2], protocol)
        cluster = cluster_endpoints(infos)
        local = local_endpoints(infos, node_names) if internal_local or external_local else []
        internal = local if internal_local else cluster
        if internal:
            out[(*name, INTERNAL)] = ServicePortPlan(internal, affinity, [(protocol, cluster_ip, int(port["port"]))])
        listen: list[ListenKey] = []
        if port.get("nodePort") and spec.get("type") in ("NodePort", "LoadBalancer"):
            listen.append((protocol, node_address, int(port["nodePort"])))
        listen += [(protocol, ip, int(port["port"])) for ip in extra_ips if _is_loopback(ip)]
        external = local if external_local else cluster
        if external and listen:
            out[(*name, EXTERNAL)] = ServicePortPlan(external, affinity, listen)
    return out


def health_check(service: Obj, slices: list[Obj], node_names: Collection[str]) -> tuple[int, int] | None:
    """(healthCheckNodePort, local ready endpoints) for a LoadBalancer Service with
    `externalTrafficPolicy: Local`, None for any other."""
    spec = service.get("spec") or {}
    if not _proxied(service) or spec.get("type") != "LoadBalancer" or not external_policy_local(service) \
            or not spec.get("healthCheckNodePort"):
        return None
    infos = [info for port in spec.get("ports") or []
             for info in endpoints_of(slices, port.get("name") or "", port.get("protocol") or "TCP")]
    return int(spec["healthCheckNodePort"]), local_ready_count(infos, node_names)


class Proxier:
    def __init__(self, informers: InformerFactory, *, balance: str = ROUND_ROBIN,
                 node_address: str = "127.0.0.1", node_names: Iterable[str] = ()) -> None:
        self.balance = balance
        self.node_address = node_address
        self.node_names = frozenset(node_names) or frozenset({socket.gethostname().lower()})
        """The nodes whose endpoints are "local" for the traffic policies (kube-proxy's
        --hostname-override; kube-proxy's default is the machine's hostname)."""
        self.services = informers.informer(SERVICES)
        self.slices = informers.informer(ENDPOINTSLICES, indexers={"service": _slice_index})
        self.balancers: dict[BalancerKey, Balancer] = {}
        self.listeners: dict[ListenKey, tuple[BalancerKey, Forwarder]] = {}
        self.health = HealthCheckServers(node_address)
        self.failed: set[ListenKey] = set()
        self.syncs = 0
        self._dirty = asyncio.Event()
        self._synced = asyncio.Event()
        mark = FuncHandler(add=lambda o: self._dirty.set(), update=lambda o, n: self._dirty.set(),
                           delete=lambda o: self._dirty.set())
        self.services.add_handler(mark)
        self.slices.add_handler(mark)

    async def run(self) -> None:
        """Sync whenever something changed (and retry failed binds) until cancelled."""
        await self.services.wait_synced()
        await self.slices.wait_synced()
        try:
            while True:
                self._dirty.clear()
                await self.sync()
                try:
                    async with asyncio.timeout(RETRY_SECONDS if self.failed or self.health.failed else None):
                        await self._dirty.wait()
                except TimeoutError:
                    pass
        finally:
            await self.aclose()

    async def wait_synced(self) -> None:
        """Return once the first sync with full informer caches is done."""
        await self._synced.wait()

    def desired(self) -> tuple[dict[BalancerKey, ServicePortPlan], dict[ServiceName, tuple[int, int]]]:
        """The forwarding table and the health check node ports, from the informer caches."""
        table: dict[BalancerKey, ServicePortPlan] = {}
        health: dict[ServiceName, tuple[int, int]] = {}
        for service in self.services.lister.list():
            meta = service["metadata"]
            slices = self.slices.lister.by_index("service", f"{meta.get('namespace', '')}/{meta['name']}")
            table.update(plan_service(service, slices, self.node_address, self.node_names))
            check = health_check(service, slices, self.node_names)
            if check is not None:
                health[(meta.get("namespace", ""), meta["name"])] = check
        return table, health

    async def sync(self) -> None:
        """Make the listeners match the informers' Services and EndpointSlices."""
        table, health = self.desired()
        wanted: dict[ListenKey, BalancerKey] = {}
        for name, plan in table.items():
            balancer = self.balancers.get(name)
            if balancer is None:
                balancer = self.balancers[name] = Balancer(mode=self.balance)
            balancer.update(plan.endpoints, affinity_seconds=plan.affinity_seconds)
            for key in plan.listen:
                wanted.setdefault(key, name)
        for name in [n for n in self.balancers if n not in table]:
            del self.balancers[name]
        for key, (owner, forwarder) in list(self.listeners.items()):
            if wanted.get(key) != owner:
                del self.listeners[key]
                await forwarder.aclose()
        previously_failed, self.failed = self.failed, set()
        for key, name in wanted.items():
            if key not in self.listeners:
                await self._listen(key, name, quiet=key in previously_failed)
        await self.health.sync(health)
        self.syncs += 1
        self._synced.set()

    async def _listen(self, key: ListenKey, name: BalancerKey, *, quiet: bool = False) -> None:
        protocol, host, port = key
        forwarder = forwarder_for(protocol, host, port, self.balancers[name])
        try:
            await forwarder.start()
        except OSError as exc:
            (log.debug if quiet else log.warning)("cannot listen on %s %s:%d for %s/%s:%s: %s", protocol, host, port, name[0], name[1],
                        name[2], exc)
            self.failed.add(key)
            return
        self.listeners[key] = (name, forwarder)
        log.info("serving %s %s:%d for %s/%s:%s", protocol, host, port, name[0], name[1], name[2])

    async def aclose(self) -> None:
        listeners, self.listeners = self.listeners, {}
        for _, forwarder in listeners.values():
            await forwarder.aclose(close_connections=True)
        await self.health.aclose()
