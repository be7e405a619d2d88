"""service-lb-controller: Services of type LoadBalancer get an ingress IP from a loopback pool.

kube's cloud-provider service controller with a "cloud" that is this machine: the load balancer
of a Service is one address of `--load-balancer-ip-range` (loopback, so kube-proxy can listen on
it), written to `status.loadBalancer.ingress` as `{ip, ipMode: VIP}`. Its rules, as kube's:

* a Service wants a load balancer when it is `type: LoadBalancer` without `spec.loadBalancerClass`
  (a class names another implementation; such Services are never touched);
* before a load balancer is ensured the Service gets the `service.kubernetes.io/load-balancer-cleanup`
  finalizer, so it cannot vanish before its load balancer is released; when it is deleted or no
  longer wants one, the address is released, the status cleared and the finalizer removed;
* events (source `service-controller`): EnsuringLoadBalancer/EnsuredLoadBalancer,
  DeletingLoadBalancer/DeletedLoadBalancer, `Type` ("LoadBalancer -> ClusterIP") and
  SyncLoadBalancerFailed (Warning) on errors, which are retried with back-off;
* changes are looked at when kube's `needsUpdate` would (type, ports, loadBalancerIP, traffic
  policy, ...), not on every status write, so an ensured Service is not ensured again and again.

The allocator keeps no state of its own in the store: the Services' statuses are the record,
and the first reconcile after a (re)start rebuilds the allocation from them, so an address is
stable across controller-manager restarts. `spec.loadBalancerIP` (deprecated, still honoured by
clouds) is used when it is in the pool and free; otherwise the Service stays pending with a
SyncLoadBalancerFailed event, as a cloud refusing the address would leave it.
"""

from __future__ import annotations

import asyncio
import ipaddress
import logging
from collections.abc import Iterator

from pykube_server.api import errors
from pykube_server.api.types import Obj
from pykube_server.client.events import NORMAL, WARNING, EventRecorder
from pykube_server.client.informer import FuncHandler
from pykube_server.client.rest import SERVICES, PatchType
from pykube_server.controllers.framework import Context, Controller, Request, Result

log = logging.getLogger(__name__)

CONTROLLER_NAME = "service-lb-controller"
EVENT_SOURCE = "service-controller"
"""kube's service controller records its events with its own source component."""
FINALIZER = "service.kubernetes.io/load-balancer-cleanup"
DEFAULT_RANGE = "127.240.0.0/16"
"""Clear of the Service (127.96/16) and pod (127.244/16) defaults and the test clusters' ranges."""
IP_MODE_VIP = "VIP"
WORKERS = 1
"""kube's --concurrent-service-syncs default."""


class PoolExhausted(Exception):
    pass


class IPPool:
    """Addresses of one network handed to Services (by "namespace/name"), lowest free first;
    the network and broadcast addresses are never handed out."""

    def __init__(self, cidr: str) -> None:
        self.network = ipaddress.ip_network(cidr, strict=False)
        self.owner_of: dict[str, str] = {}
        """ip -> service key"""
        self.ip_of: dict[str, str] = {}
        """service key -> ip"""

    def contains(self, ip: str) -> bool:
        try:
            address = ipaddress.ip_address(ip)
        except ValueError:
            return False
        return address in self.network and address not in (self.network.network_address,
                                                               self.network.broadcast_address)

    def claim(self, key: str, ip: str) -> bool:
        """Give `ip` to `key` if it is in the pool and not someone else's (releasing what `key` held)."""
        if not self.contains(ip) or self.owner_of.get(ip, key) != key:
            return False
        self.release(key)
        self.owner_of[ip], self.ip_of[key] = key, ip
        return True

    def allocate(self, key: str) -> str:
        """`key`'s address, a new one if it holds none."""
        if key in self.ip_of:
            return self.ip_of[key]
        for ip in self._scan():
            if ip not in self.owner_of:
                self.claim(key, ip)
                return ip
        raise PoolExhausted(f"no free address left in the load balancer range {self.network}")

    def _scan(self) -> Iterator[str]:
        """Host addresses, lowest first (a small pool stays readable: .1, .2, ...)."""
        hosts = self.network.hosts() if self.network.num_addresses > 2 else iter(self.network)
        for address in hosts:
            yield str(address)

    def release(self, key: str) -> str | None:
        ip = self.ip_of.pop(key, None)
        if ip is not None:
            self.owner_of.pop(ip, None)
        return ip


def _key(obj: Obj) -> str:
    meta = obj.get("metadata") or {}
    return f"{meta.get('namespace', '')}/{meta.get('name', '')}"


def wants_load_balancer(service: Obj) -> bool:
    spec = service.get("spec") or {}
    return spec.get("type") == "LoadBalancer" and not spec.get("loadBalancerClass")


def has_finalizer(service: Obj) -> bool:
    return FINALIZER in ((service.get("metadata") or {}).get("finalizers") or [])


def needs_cleanup(service: Obj) -> bool:
    """kube's needsCleanup: our finalizer is on a Service that is going away or no longer a LoadBalancer."""
    if not has_finalizer(service):
        return False
    return bool((service.get("metadata") or {}).get("deletionTimestamp")) or \
        (service.get("spec") or {}).get("type") != "LoadBalancer"


_UPDATE_FIELDS = ("loadBalancerSourceRanges", "ports", "sessionAffinity", "sessionAffinityConfig", "loadBalancerIP",
                  "externalIPs", "externalTrafficPolicy", "healthCheckNodePort")


def needs_update(old: Obj, new: Obj) -> bool:
    """kube's needsUpdate: a change a load balancer would care about (not status writes)."""
    if not wants_load_balancer(old) and not wants_load_balancer(new):
        return False
    if wants_load_balancer(old) != wants_load_balancer(new):
        return True
    old_spec, new_spec = old.get("spec") or {}, new.get("spec") or {}
    if any(old_spec.get(f) != new_spec.get(f) for f in _UPDATE_FIELDS):
        return True
    old_meta, new_meta = old.get("metadata") or {}, new.get("metadata") or {}
    return old_meta.get("annotations") != new_meta.get("annotations") or old_meta.get("uid") != new_meta.get("uid")


def ingress_ips(service: Obj) -> list[str]:
    ingress = (((service.get("status") or {}).get("loadBalancer") or {}).get("ingress")) or []
    return [i["ip"] for i in ingress if isinstance(i, dict) and i.get("ip")]


class _ServiceLBController(Controller):
    """The Controller plus the event recorder of its own source component."""

    def __init__(self, reconciler: ServiceLBReconciler, ctx: Context) -> None:
        super().__init__(CONTROLLER_NAME, reconciler, workers=WORKERS, clock=ctx.clock)
        self.recorder = reconciler.recorder

    async def run(self) -> None:
        async with asyncio.TaskGroup() as tg:
            tg.create_task(self.recorder.run())
            await super().run()


class ServiceLBReconciler:
    def __init__(self, ctx: Context, cidr: str = DEFAULT_RANGE) -> None:
        self.client = ctx.client
        self.recorder = EventRecorder(ctx.client, component=EVENT_SOURCE, host=ctx.recorder.host, clock=ctx.clock)
        self.pool = IPPool(cidr)
        self.services = ctx.informer(SERVICES)
        self._rebuilt = False

    @classmethod
    def create(cls, ctx: Context) -> Controller:
        reconciler = cls(ctx, str(ctx.options.get("load_balancer_ip_range") or DEFAULT_RANGE))
        controller = _ServiceLBController(reconciler, ctx)
        controller.watches(reconciler.services, lambda obj: ())  # synced before workers start
        reconciler.services.add_handler(reconciler.handler(controller))
        return controller

    def handler(self, controller: Controller) -> FuncHandler:
        """kube's event filter: adds that want (or must give up) a load balancer, updates that
        needsUpdate/needsCleanup, and every delete (to release the address)."""
        def add(obj: Obj) -> None:
            if wants_load_balancer(obj) or needs_cleanup(obj):
                controller.queue.add(Request.of(obj))

        def update(old: Obj, new: Obj) -> None:
            if wants_load_balancer(old) != wants_load_balancer(new):
                self.recorder.event(new, NORMAL, "Type", f"{(old.get('spec') or {}).get('type', '')} -> "
                                                         f"{(new.get('spec') or {}).get('type', '')}")
            if needs_update(old, new) or needs_cleanup(new):
                controller.queue.add(Request.of(new))

        def delete(obj: Obj) -> None:
            controller.queue.add(Request.of(obj))

        return FuncHandler(add=add, update=update, delete=delete)

    def rebuild(self) -> None:
        """Claim the addresses Services already show (oldest Service first, should two show one)."""
        services = sorted(self.services.lister.list(),
                          key=lambda s: ((s.get("metadata") or {}).get("creationTimestamp") or "", _key(s)))
        for service in services:
            if wants_load_balancer(service) or has_finalizer(service):
                for ip in ingress_ips(service):
                    if self.pool.claim(_key(service), ip):
                        break
        self._rebuilt = True

    async def reconcile(self, request: Request) -> Result:
        if not self._rebuilt:
            self.rebuild()
        key = f"{request.namespace}/{request.name}"
        service = self.services.lister.get(request.name, namespace=request.namespace)
        if service is None:
            self.pool.release(key)
            return Result()
        if not wants_load_balancer(service) or needs_cleanup(service):
            if has_finalizer(service) or key in self.pool.ip_of:
                await self._delete_load_balancer(service, key)
            return Result()
        await self._ensure_load_balancer(service, key)
        return Result()

    async def _ensure_load_balancer(self, service: Obj, key: str) -> None:
        self.recorder.event(service, NORMAL, "EnsuringLoadBalancer", "Ensuring load balancer")
        try:
            if not has_finalizer(service):
                service = await self._set_finalizers(service, [*_finalizers(service), FINALIZER])
            ip = self._address_for(service, key)
        except Exception as exc:
            message = exc.message if isinstance(exc, errors.StatusError) else str(exc)
            self.recorder.event(service, WARNING, "SyncLoadBalancerFailed",
                                f"Error syncing load balancer: failed to ensure load balancer: {message}")
            raise
        self.recorder.event(service, NORMAL, "EnsuredLoadBalancer", "Ensured load balancer")
        await self._patch_status(service, {"ingress": [{"ip": ip, "ipMode": IP_MODE_VIP}]})

    def _address_for(self, service: Obj, key: str) -> str:
        requested = (service.get("spec") or {}).get("loadBalancerIP") or ""
        if requested:
            if self.pool.ip_of.get(key) == requested or self.pool.claim(key, requested):
                return requested
            if not self.pool.contains(requested):
                raise ValueError(f"requested load balancer IP {requested} is not in the load balancer range "
                                 f"{self.pool.network}")
            raise ValueError(f"requested load balancer IP {requested} is already in use")
        if key not in self.pool.ip_of:
            for ip in ingress_ips(service):  # e.g. an address an earlier run gave it
                if self.pool.claim(key, ip):
                    break
        return self.pool.allocate(key)

    async def _delete_load_balancer(self, service: Obj, key: str) -> None:
        self.recorder.event(service, NORMAL, "DeletingLoadBalancer", "Deleting load balancer")
        self.pool.release(key)
        if has_finalizer(service):
            try:
                service = await self._set_finalizers(service, [f for f in _finalizers(service) if f != FINALIZER])
            except errors.NotFound:
                return
        self.recorder.event(service, NORMAL, "DeletedLoadBalancer", "Deleted load balancer")
        if not (service.get("metadata") or {}).get("deletionTimestamp"):
            await self._patch_status(service, {})

    async def _set_finalizers(self, service: Obj, finalizers: list[str]) -> Obj:
        """A merge patch with the resourceVersion, so a concurrent finalizer change is a conflict
        (and a retry), never lost."""
        meta = service["metadata"]
        patch = {"metadata": {"finalizers": finalizers or None, "resourceVersion": meta.get("resourceVersion")}}
        return await self.client.patch(SERVICES, meta["name"], patch, namespace=meta.get("namespace", ""),
                                       patch_type=PatchType.MERGE)

    async def _patch_status(self, service: Obj, load_balancer: Obj) -> None:
        if ((service.get("status") or {}).get("loadBalancer") or {}) == load_balancer:
            return
        meta = service["metadata"]
        body = {"status": {"loadBalancer": load_balancer if load_balancer else {"ingress": None}}}
        try:
            await self.client.patch(SERVICES, meta["name"], body, namespace=meta.get("namespace", ""),
                                    patch_type=PatchType.MERGE, subresource="status")
        except errors.NotFound:
            pass


def _finalizers(service: Obj) -> list[str]:
    return list((service.get("metadata") or {}).get("finalizers") or [])


def create(ctx: Context) -> Controller:
    return ServiceLBReconciler.create(ctx)
