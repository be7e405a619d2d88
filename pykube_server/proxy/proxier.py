"""The Proxier: Services x EndpointSlices -> listening forwarders, level-triggered.

As kube-proxy's `Provider.Sync`, `sync()` recomputes the whole table from the informer caches
and reconciles the listeners against it: for every service port with endpoints it listens on
the ClusterIP:port, on the node address at the NodePort, and on each loopback external or
load-balancer ingress IP; every listener of a service port shares one Balancer, whose endpoint
list is replaced in place so open listeners never blink. A service port without usable
endpoints gets no listener, so connecting is refused, as kube-proxy's REJECT rule does.

Usable endpoints are the ready ones (`conditions.ready` true or unset); when none is ready,
the serving-and-terminating ones (kube's terminating-endpoint fallback). Informer events only
set a dirty flag; one loop drains it, so a burst of changes costs one sync and changes apply
as soon as that sync runs. Listeners that could not bind (another process holds the address)
are retried every RETRY_SECONDS. Services labelled `service.kubernetes.io/service-proxy-name`
belong to another proxy and are skipped, as kube-proxy does.
"""

from __future__ import annotations

import asyncio
import ipaddress
import logging
from dataclasses import dataclass, field

from pykube_server.api.types import Obj
from pykube_server.client.informer import FuncHandler, InformerFactory
from pykube_server.client.rest import ENDPOINTSLICES, SERVICES
from pykube_server.proxy.balancer import ROUND_ROBIN, Balancer, Endpoint
from pykube_server.proxy.userspace import Forwarder, forwarder_for

log = logging.getLogger(__name__)

RETRY_SECONDS = 2.0
SERVICE_NAME_LABEL = "kubernetes.io/service-name"
PROXY_NAME_LABEL = "service.kubernetes.io/service-proxy-name"
DEFAULT_AFFINITY_SECONDS = 10800
PROTOCOLS = ("TCP", "UDP")

ServicePortName = tuple[str, str, str, str]
"""(namespace, service, port name, protocol)"""
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
    ready: list[Endpoint] = []
    fallback: list[Endpoint] = []
    for slice_ in sorted(slices, key=lambda s: s["metadata"]["name"]):
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
            target = (str(addresses[0]), int(port["port"]))
            if conditions.get("ready") is not False:
                ready.append(target)
            elif conditions.get("serving") and conditions.get("terminating"):
                fallback.append(target)
    return sorted(set(ready or fallback))


def _is_loopback(ip: str) -> bool:
    try:
        return ipaddress.ip_address(ip).is_loopback
    except ValueError:
        return False


def plan_service(service: Obj, slices: list[Obj], node_address: str) -> dict[ServicePortName, ServicePortPlan]:
    meta, spec = service.get("metadata") or {}, service.get("spec") or {}
    if spec.get("type") == "ExternalName" or PROXY_NAME_LABEL in (meta.get("labels") or {}):
        return {}
    cluster_ip = spec.get("clusterIP") or ""
    if cluster_ip in ("", "None"):
        return {}
    affinity = None
    if spec.get("sessionAffinity") == "ClientIP":
        config = (spec.get("sessionAffinityConfig") or {}).get("clientIP") or {}
        affinity = float(config.get("timeoutSeconds") or DEFAULT_AFFINITY_SECONDS)
    extra_ips = list(spec.get("externalIPs") or [])
    extra_ips += [i.get("ip") for i in ((service.get("status") or {}).get("loadBalancer") or {}).get("ingress") or []
                  if i.get("ip")]
    out: dict[ServicePortName, ServicePortPlan] = {}
    for port in spec.get("ports") or []:
        protocol = port.get("protocol") or "TCP"
        if protocol not in PROTOCOLS or not port.get("port"):
            continue
        name = (meta.get("namespace", ""), meta.get("name", ""), port.get("name") or "", protocol)
        endpoints = usable_endpoints(slices, name[2], protocol)
        if not endpoints:
            continue
        listen = [(protocol, cluster_ip, int(port["port"]))]
        if port.get("nodePort") and spec.get("type") in ("NodePort", "LoadBalancer"):
            listen.append((protocol, node_address, int(port["nodePort"])))
        listen += [(protocol, ip, int(port["port"])) for ip in extra_ips if _is_loopback(ip)]
        out[name] = ServicePortPlan(endpoints, affinity, listen)
    return out


class Proxier:
    def __init__(self, informers: InformerFactory, *, balance: str = ROUND_ROBIN,
                 node_address: str = "127.0.0.1") -> None:
        self.balance = balance
        self.node_address = node_address
        self.services = informers.informer(SERVICES)
        self.slices = informers.informer(ENDPOINTSLICES, indexers={"service": _slice_index})
        self.balancers: dict[ServicePortName, Balancer] = {}
        self.listeners: dict[ListenKey, tuple[ServicePortName, Forwarder]] = {}
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
                    async with asyncio.timeout(RETRY_SECONDS if self.failed else None):
                        await self._dirty.wait()
                except TimeoutError:
                    pass
        finally:
            await self.aclose()

    async def wait_synced(self) -> None:
        """Return once the first sync with full informer caches is done."""
        await self._synced.wait()

    def desired(self) -> dict[ServicePortName, ServicePortPlan]:
        table: dict[ServicePortName, ServicePortPlan] = {}
        for service in self.services.lister.list():
            meta = service["metadata"]
            slices = self.slices.lister.by_index("service", f"{meta.get('namespace', '')}/{meta['name']}")
            table.update(plan_service(service, slices, self.node_address))
        return table

    async def sync(self) -> None:
        """Make the listeners match the informers' Services and EndpointSlices."""
        table = self.desired()
        wanted: dict[ListenKey, ServicePortName] = {}
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
        self.syncs += 1
        self._synced.set()

    async def _listen(self, key: ListenKey, name: ServicePortName, *, quiet: bool = False) -> None:
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
