"""endpointslice-controller: EndpointSlices for every Service with a selector.

Keys are Services. Reconcile derives one endpoint per pod the selector matches (terminating
pods included, with kube's conditions: `serving` is the pod's readiness, `terminating` its
deletionTimestamp, `ready` is serving and not terminating, or always true with
`publishNotReadyAddresses`), groups them by their resolved port list, and lets `slicesync`
spread them over slices named `<service>-<random>` (generateName), labelled with
`kubernetes.io/service-name` and `endpointslice.kubernetes.io/managed-by:
endpointslice-controller.k8s.io`, owned by the Service, at most 100 endpoints each. A Service
without endpoints keeps one empty placeholder slice, as in kube. Topology hints and zones are
not set. When the Service is gone its slices are deleted here (kube leaves that to the garbage
collector, through the owner reference, which still applies).
"""

from __future__ import annotations

import logging

from pykube_server.api.types import Obj
from pykube_server.client.cache import Lister
from pykube_server.client.rest import ENDPOINTSLICES, PODS, SERVICES
from pykube_server.controllers import podendpoints as pe
from pykube_server.controllers.framework import Context, Controller, Request, Result
from pykube_server.controllers.slicesync import (
    MANAGED_BY_LABEL, MAX_ENDPOINTS_PER_SLICE, SERVICE_NAME_LABEL, SliceSyncer, plan, port_key,
)

log = logging.getLogger(__name__)

CONTROLLER_NAME = "endpointslice-controller.k8s.io"
WORKERS = 5
"""kube-controller-manager's --concurrent-service-endpoint-syncs default."""
SETTLE_RETRY_SECONDS = 0.1
RESERVED_LABELS = (SERVICE_NAME_LABEL, MANAGED_BY_LABEL, pe.HEADLESS_LABEL)


def slice_ports(service: Obj, pod: Obj) -> list[Obj] | None:
    """The slice ports for this pod (None when a service port's targetPort is not found)."""
    ports = []
    for service_port in (service.get("spec") or {}).get("ports") or []:
        number = pe.find_port(pod, service_port)
        if number is None:
            return None
        port: Obj = {"name": service_port.get("name", ""), "port": number,
                     "protocol": service_port.get("protocol") or "TCP"}
        if service_port.get("appProtocol"):
            port["appProtocol"] = service_port["appProtocol"]
        ports.append(port)
    return ports


def pod_endpoint(service: Obj, pod: Obj) -> Obj:
    serving = pe.is_pod_ready(pod)
    terminating = pe.is_terminating(pod)
    publish = bool((service.get("spec") or {}).get("publishNotReadyAddresses"))
    endpoint: Obj = {"addresses": [pe.pod_ip(pod)],
                     "conditions": {"ready": publish or (serving and not terminating), "serving": serving,
                                    "terminating": terminating}}
    hostname = pe.pod_hostname(pod, service)
    if hostname:
        endpoint["hostname"] = hostname
    endpoint["targetRef"] = pe.target_ref(pod)
    node = (pod.get("spec") or {}).get("nodeName")
    if node:
        endpoint["nodeName"] = node
    return endpoint


def desired_groups(service: Obj, pods: list[Obj]) -> dict[bytes, tuple[list[Obj], list[Obj]]]:
    groups: dict[bytes, tuple[list[Obj], list[Obj]]] = {}
    for pod in sorted(pods, key=lambda p: p["metadata"]["name"]):
        if not pe.should_be_in_endpoints(pod, include_terminating=True):
            continue
        ports = slice_ports(service, pod)
        if ports is None:
            continue
        groups.setdefault(port_key(ports), (ports, []))[1].append(pod_endpoint(service, pod))
    return groups


def slice_template(service: Obj) -> Obj:
    meta = service["metadata"]
    labels = {k: v for k, v in (meta.get("labels") or {}).items() if k not in RESERVED_LABELS}
    labels[SERVICE_NAME_LABEL] = meta["name"]
    labels[MANAGED_BY_LABEL] = CONTROLLER_NAME
    if pe.is_headless(service):
        labels[pe.HEADLESS_LABEL] = ""
    owner = {"apiVersion": "v1", "kind": "Service", "name": meta["name"], "uid": meta.get("uid", ""),
             "controller": True, "blockOwnerDeletion": True}
    return {"apiVersion": "discovery.k8s.io/v1", "kind": "EndpointSlice",
            "metadata": {"generateName": f"{meta['name'][:57]}-", "namespace": meta.get("namespace", ""),
                         "labels": labels, "ownerReferences": [owner]},
            "addressType": "IPv4"}


class EndpointSliceReconciler:
    def __init__(self, syncer: SliceSyncer, services: Lister, pods: Lister, slices: Lister,
                 max_per_slice: int = MAX_ENDPOINTS_PER_SLICE) -> None:
        self.syncer = syncer
        self.services = services
        self.pods = pods
        self.slices = slices
        self.max_per_slice = max_per_slice

    async def reconcile(self, request: Request) -> Result:
        if not self.syncer.settled(request.namespace, request.name):
            return Result(requeue_after=SETTLE_RETRY_SECONDS)
        service = self.services.get(request.name, namespace=request.namespace)
        # Slices of an earlier Service of the same name are reused: `apply` rewrites their owner.
        existing = self.slices.by_index(SERVICE_INDEX, f"{request.namespace}/{request.name}")
        if service is None or not pe.has_selector(service) or (service.get("spec") or {}).get("type") == "ExternalName":
            the_plan = plan(existing, {}, placeholder=False)
            template = {"metadata": {}}
        else:
            groups = desired_groups(service, pe.selected_pods(service, self.pods))
            the_plan = plan(existing, groups, max_per_slice=self.max_per_slice)
            template = slice_template(service)
        await self.syncer.apply(request.namespace, request.name, the_plan, template=template)
        return Result()


SERVICE_INDEX = "service"


def service_index(obj: Obj) -> list[str]:
    meta = obj.get("metadata") or {}
    name = (meta.get("labels") or {}).get(SERVICE_NAME_LABEL)
    return [f"{meta.get('namespace', '')}/{name}"] if name else []


def create(ctx: Context) -> Controller:
    """The `endpointslice-controller` factory."""
    services = ctx.informer(SERVICES)
    pods = ctx.informer(PODS)
    slices = ctx.informer(ENDPOINTSLICES, label_selector=f"{MANAGED_BY_LABEL}={CONTROLLER_NAME}",
                          indexers={SERVICE_INDEX: service_index})
    max_per_slice = int(ctx.options.get("max_endpoints_per_slice", MAX_ENDPOINTS_PER_SLICE))
    reconciler = EndpointSliceReconciler(SliceSyncer(ctx.client, slices.lister, ctx.clock), services.lister,
                                         pods.lister, slices.lister, max_per_slice)
    controller = Controller("endpointslice-controller", reconciler, workers=WORKERS, clock=ctx.clock)
    controller.watches(services)
    controller.watches(pods, pe.pod_mapper(services.lister))
    controller.watches(slices, lambda obj: [Request(*key.split("/", 1)) for key in service_index(obj)])
    return controller
