"""endpoint-controller: one v1 Endpoints per Service with a selector (kube's EndpointController).

Keys are Services. Reconcile reads the Service and the pods its selector matches from the
informer caches and writes the Endpoints of the same name when its subsets or labels differ:
ready pods under `addresses`, the rest under `notReadyAddresses` (all under `addresses` with
`publishNotReadyAddresses`), terminating and terminal pods left out, each service port's
targetPort resolved per pod (by number, or by container port name). Addresses with the same
ports share a subset, sorted, as kube's RepackSubsets leaves them. A Service that is gone
takes its Endpoints with it; Services without a selector are left to their owners.
"""

from __future__ import annotations

import logging
from typing import Any

from pykube_server.api import errors
from pykube_server.api.types import Obj
from pykube_server.client.cache import Lister
from pykube_server.client.clock import Clock
from pykube_server.client.rest import ENDPOINTS, PODS, SERVICES, Client
from pykube_server.controllers import podendpoints as pe
from pykube_server.controllers.framework import Context, Controller, Request, Result

log = logging.getLogger(__name__)

MANAGED_BY_LABEL = "endpoints.kubernetes.io/managed-by"
CONTROLLER_NAME = "endpoint-controller"
OVER_CAPACITY_ANNOTATION = "endpoints.kubernetes.io/over-capacity"
MAX_CAPACITY = 1000
WORKERS = 5
"""kube-controller-manager's --concurrent-endpoint-syncs default."""


def _port_of(service_port: Obj, number: int) -> Obj:
    port: Obj = {}
    if service_port.get("name"):
        port["name"] = service_port["name"]
    port["port"] = number
    port["protocol"] = service_port.get("protocol") or "TCP"
    if service_port.get("appProtocol"):
        port["appProtocol"] = service_port["appProtocol"]
    return port


def _address(pod: Obj, service: Obj) -> Obj:
    address: Obj = {"ip": pe.pod_ip(pod)}
    hostname = pe.pod_hostname(pod, service)
    if hostname:
        address["hostname"] = hostname
    node = (pod.get("spec") or {}).get("nodeName")
    if node:
        address["nodeName"] = node
    address["targetRef"] = pe.target_ref(pod)
    return address


def desired_subsets(service: Obj, pods: list[Obj]) -> list[Obj]:
    spec = service.get("spec") or {}
    tolerate = bool(spec.get("publishNotReadyAddresses"))
    service_ports = [p for p in spec.get("ports") or [] if isinstance(p, dict)]
    groups: dict[tuple[Any, ...], tuple[list[Obj], list[Obj], list[Obj]]] = {}
    for pod in pods:
        if not pe.should_be_in_endpoints(pod, include_terminating=tolerate):
            continue
        ports = [_port_of(sp, n) for sp in service_ports if (n := pe.find_port(pod, sp)) is not None]
        if not ports and not (not service_ports and pe.is_headless(service)):
            continue
        ports.sort(key=lambda p: (p.get("name", ""), p["port"], p["protocol"]))
        key = tuple((p.get("name", ""), p["port"], p["protocol"], p.get("appProtocol", "")) for p in ports)
        ready, not_ready, _ = groups.setdefault(key, ([], [], ports))
        (ready if tolerate or pe.is_pod_ready(pod) else not_ready).append(_address(pod, service))
    subsets = []
    for key in sorted(groups):
        ready, not_ready, ports = groups[key]
        subset: Obj = {}
        if ready:
            subset["addresses"] = sorted(ready, key=_address_order)
        if not_ready:
            subset["notReadyAddresses"] = sorted(not_ready, key=_address_order)
        if ports:
            subset["ports"] = ports
        subsets.append(subset)
    return subsets


def _address_order(address: Obj) -> tuple[str, str]:
    return (address["ip"], address.get("targetRef", {}).get("uid", ""))


def truncate(subsets: list[Obj]) -> tuple[list[Obj], bool]:
    """Keep at most MAX_CAPACITY addresses (ready ones first), as kube does for big Services."""
    total = sum(len(s.get("addresses") or []) + len(s.get("notReadyAddresses") or []) for s in subsets)
    if total <= MAX_CAPACITY:
        return subsets, False
    budget = MAX_CAPACITY
    for field in ("addresses", "notReadyAddresses"):
        for subset in subsets:
            kept = (subset.get(field) or [])[:budget]
            budget -= len(kept)
            if kept:
                subset[field] = kept
            else:
                subset.pop(field, None)
    return [s for s in subsets if s.get("addresses") or s.get("notReadyAddresses")], True


class EndpointsReconciler:
    def __init__(self, client: Client, services: Lister, pods: Lister, endpoints: Lister, clock: Clock) -> None:
        self.client = client
        self.services = services
        self.pods = pods
        self.endpoints = endpoints
        self.clock = clock

    async def reconcile(self, request: Request) -> Result:
        service = self.services.get(request.name, namespace=request.namespace)
        current = self.endpoints.get(request.name, namespace=request.namespace)
        if service is None:
            if current is not None:
                try:
                    await self.client.delete(ENDPOINTS, request.name, namespace=request.namespace)
                except errors.NotFound:
                    pass
            return Result()
        if not pe.has_selector(service):
            return Result()
        subsets, truncated = truncate(desired_subsets(service, pe.selected_pods(service, self.pods)))
        labels = dict((service.get("metadata") or {}).get("labels") or {})
        labels[MANAGED_BY_LABEL] = CONTROLLER_NAME
        if pe.is_headless(service):
            labels[pe.HEADLESS_LABEL] = ""
        if current is not None and self._unchanged(current, subsets, labels, truncated):
            return Result()
        await self._write(request, current, subsets, labels, truncated)
        return Result()

    @staticmethod
    def _unchanged(current: Obj, subsets: list[Obj], labels: dict[str, str], truncated: bool) -> bool:
        annotations = (current.get("metadata") or {}).get("annotations") or {}
        return ((current.get("subsets") or []) == subsets
                and ((current.get("metadata") or {}).get("labels") or {}) == labels
                and (OVER_CAPACITY_ANNOTATION in annotations) == truncated)

    async def _write(self, request: Request, current: Obj | None, subsets: list[Obj], labels: dict[str, str],
                     truncated: bool) -> None:
        meta = dict((current or {}).get("metadata") or {"name": request.name, "namespace": request.namespace})
        annotations = dict(meta.get("annotations") or {})
        annotations[pe.TRIGGER_TIME_ANNOTATION] = pe.rfc3339(self.clock)
        if truncated:
            annotations[OVER_CAPACITY_ANNOTATION] = "truncated"
        else:
            annotations.pop(OVER_CAPACITY_ANNOTATION, None)
        meta["labels"], meta["annotations"] = labels, annotations
        body: Obj = {"apiVersion": "v1", "kind": "Endpoints", "metadata": meta}
        if subsets:
            body["subsets"] = subsets
        if current is None:
            try:
                await self.client.create(ENDPOINTS, body, namespace=request.namespace)
            except errors.AlreadyExists:
                raise errors.Conflict("Endpoints appeared meanwhile; retrying") from None
        else:
            await self.client.update(ENDPOINTS, body)


def create(ctx: Context) -> Controller:
    """The `endpoints-controller` factory."""
    services = ctx.informer(SERVICES)
    pods = ctx.informer(PODS)
    endpoints = ctx.informer(ENDPOINTS)
    reconciler = EndpointsReconciler(ctx.client, services.lister, pods.lister, endpoints.lister, ctx.clock)
    controller = Controller("endpoints-controller", reconciler, workers=WORKERS, clock=ctx.clock)
    controller.watches(services)
    controller.watches(pods, pe.pod_mapper(services.lister))
    controller.watches(endpoints, lambda obj: [Request.of(obj)] if _is_ours(obj) else [])
    return controller


def _is_ours(obj: Obj) -> bool:
    return ((obj.get("metadata") or {}).get("labels") or {}).get(MANAGED_BY_LABEL) == CONTROLLER_NAME
