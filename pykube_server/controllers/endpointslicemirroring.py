"""endpointslice-mirroring-controller: EndpointSlices for hand-written Endpoints.

kube mirrors an Endpoints into slices when its Service exists and has no selector, unless the
Endpoints is labelled `endpointslice.kubernetes.io/skip-mirror: "true"` (as the API server's
own `kubernetes` Endpoints is) or carries the leader-election annotation. Each subset becomes
slices with its ports (up to 1000 addresses a subset, 100 endpoints a slice), `addresses` as
ready endpoints and `notReadyAddresses` as not ready ones; the slices are named
`<endpoints>-<random>`, owned by the Endpoints, labelled with the service name and
`endpointslice.kubernetes.io/managed-by: endpointslicemirroring-controller.k8s.io`, and the
Endpoints' own labels and annotations are copied (minus kube's bookkeeping ones).
"""

from __future__ import annotations

from pykube_server.api.types import Obj
from pykube_server.client.cache import Lister
from pykube_server.client.rest import ENDPOINTS, ENDPOINTSLICES, SERVICES
from pykube_server.controllers.endpointslice import SERVICE_INDEX, service_index
from pykube_server.controllers.framework import Context, Controller, Request, Result
from pykube_server.controllers.slicesync import (
    MANAGED_BY_LABEL, MAX_ENDPOINTS_PER_SLICE, SERVICE_NAME_LABEL, SliceSyncer, plan, port_key,
)

CONTROLLER_NAME = "endpointslicemirroring-controller.k8s.io"
SKIP_MIRROR_LABEL = "endpointslice.kubernetes.io/skip-mirror"
LEADER_ANNOTATION = "control-plane.alpha.kubernetes.io/leader"
MAX_ENDPOINTS_PER_SUBSET = 1000
WORKERS = 5
SETTLE_RETRY_SECONDS = 0.1
DROPPED_ANNOTATIONS = ("endpoints.kubernetes.io/last-change-trigger-time",
                       "kubectl.kubernetes.io/last-applied-configuration")


def should_mirror(endpoints: Obj | None, service: Obj | None) -> bool:
    if endpoints is None or service is None:
        return False
    meta = endpoints.get("metadata") or {}
    if (meta.get("labels") or {}).get(SKIP_MIRROR_LABEL) == "true":
        return False
    if LEADER_ANNOTATION in (meta.get("annotations") or {}):
        return False
    return (service.get("spec") or {}).get("selector") is None


def _endpoint(address: Obj, ready: bool) -> Obj:
    endpoint: Obj = {"addresses": [address.get("ip", "")], "conditions": {"ready": ready}}
    if address.get("hostname"):
        endpoint["hostname"] = address["hostname"]
    if address.get("targetRef"):
        endpoint["targetRef"] = address["targetRef"]
    if address.get("nodeName"):
        endpoint["nodeName"] = address["nodeName"]
    return endpoint


def mirrored_groups(endpoints: Obj) -> dict[bytes, tuple[list[Obj], list[Obj]]]:
    groups: dict[bytes, tuple[list[Obj], list[Obj]]] = {}
    for subset in endpoints.get("subsets") or []:
        ports = [{"name": p.get("name", ""), "port": p.get("port"), "protocol": p.get("protocol") or "TCP",
                  **({"appProtocol": p["appProtocol"]} if p.get("appProtocol") else {})}
                 for p in subset.get("ports") or []]
        members = [(a, True) for a in subset.get("addresses") or []] + \
                  [(a, False) for a in subset.get("notReadyAddresses") or []]
        members = [(a, r) for a, r in members if ":" not in str(a.get("ip", ""))][:MAX_ENDPOINTS_PER_SUBSET]
        if not members:
            continue
        group = groups.setdefault(port_key(ports), (ports, []))[1]
        seen = {e["addresses"][0] for e in group}
        group.extend(_endpoint(a, r) for a, r in members if a.get("ip") not in seen)
    return groups


def mirror_template(endpoints: Obj) -> Obj:
    meta = endpoints["metadata"]
    labels = {k: v for k, v in (meta.get("labels") or {}).items() if k not in (SERVICE_NAME_LABEL, MANAGED_BY_LABEL)}
    labels[SERVICE_NAME_LABEL] = meta["name"]
    labels[MANAGED_BY_LABEL] = CONTROLLER_NAME
    annotations = {k: v for k, v in (meta.get("annotations") or {}).items() if k not in DROPPED_ANNOTATIONS}
    owner = {"apiVersion": "v1", "kind": "Endpoints", "name": meta["name"], "uid": meta.get("uid", ""),
             "controller": True, "blockOwnerDeletion": True}
    out_meta: Obj = {"generateName": f"{meta['name'][:57]}-", "namespace": meta.get("namespace", ""),
                     "labels": labels, "ownerReferences": [owner]}
    if annotations:
        out_meta["annotations"] = annotations
    return {"apiVersion": "discovery.k8s.io/v1", "kind": "EndpointSlice", "metadata": out_meta, "addressType": "IPv4"}


class MirroringReconciler:
    def __init__(self, syncer: SliceSyncer, services: Lister, endpoints: Lister, slices: Lister) -> None:
        self.syncer = syncer
        self.services = services
        self.endpoints = endpoints
        self.slices = slices

    async def reconcile(self, request: Request) -> Result:
        if not self.syncer.settled(request.namespace, request.name):
            return Result(requeue_after=SETTLE_RETRY_SECONDS)
        endpoints = self.endpoints.get(request.name, namespace=request.namespace)
        service = self.services.get(request.name, namespace=request.namespace)
        existing = self.slices.by_index(SERVICE_INDEX, f"{request.namespace}/{request.name}")
        if endpoints is None or not should_mirror(endpoints, service):
            the_plan, template = plan(existing, {}, placeholder=False), {"metadata": {}}
        else:
            the_plan = plan(existing, mirrored_groups(endpoints), max_per_slice=MAX_ENDPOINTS_PER_SLICE,
                            placeholder=False)
            template = mirror_template(endpoints)
        await self.syncer.apply(request.namespace, request.name, the_plan, template=template)
        return Result()


def create(ctx: Context) -> Controller:
    """The `endpointslice-mirroring-controller` factory."""
    services = ctx.informer(SERVICES)
    endpoints = ctx.informer(ENDPOINTS)
    slices = ctx.informer(ENDPOINTSLICES, label_selector=f"{MANAGED_BY_LABEL}={CONTROLLER_NAME}",
                          indexers={SERVICE_INDEX: service_index})
    reconciler = MirroringReconciler(SliceSyncer(ctx.client, slices.lister, ctx.clock), services.lister,
                                     endpoints.lister, slices.lister)
    controller = Controller("endpointslice-mirroring-controller", reconciler, workers=WORKERS, clock=ctx.clock)
    controller.watches(services)
    controller.watches(endpoints)
    controller.watches(slices, lambda obj: [Request(*key.split("/", 1)) for key in service_index(obj)])
    return controller
