"""The API server's own Service objects, kept right at every start.

Upstream, kube-apiserver's endpoint reconciler (the lease reconciler with its EndpointsAdapter)
writes the `default/kubernetes` Endpoints, labelled `endpointslice.kubernetes.io/skip-mirror`,
and an EndpointSlice of the same name; the `kubernetes` ServiceCIDR holds the service range
(networking.k8s.io/v1, GA in 1.33). A bootstrap step after the first-start objects writes them,
through the registry like any write; which addresses they list is the endpoint reconciler's
business (`endpointreconciler.py`: every live API server sharing the store), and it keeps them
right afterwards. With one server the objects list just its address, as before.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from pykube_server.api import errors
from pykube_server.apiserver.endpointreconciler import EndpointReconciler
from pykube_server.registry.strategy import now_rfc3339

if TYPE_CHECKING:
    from pykube_server.apiserver.app import APIServer

Obj = dict[str, Any]
SKIP_MIRROR_LABEL = "endpointslice.kubernetes.io/skip-mirror"
SERVICE_NAME_LABEL = "kubernetes.io/service-name"
CIDR_READY_MESSAGE = "Kubernetes Service CIDR is ready"


def advertised(server: APIServer) -> tuple[str, int]:
    host = server.settings.server_address.rsplit(":", 1)[0].strip("[]")
    if host in ("", "0.0.0.0", "::"):
        host = "127.0.0.1"
    return host, server.settings.secure_port


async def _ensure(server: APIServer, gvr: tuple[str, str, str], namespace: str, obj: Obj,
                  same: Any) -> None:
    """Create `obj`, or replace the stored one's content when `same(stored)` is False."""
    store = server.store_for(*gvr)
    name = obj["metadata"]["name"]
    try:
        await store.create(namespace, obj)
        return
    except errors.AlreadyExists:
        pass

    async def replace(current: Obj | None) -> Obj:
        if current is None:
            raise store.not_found(name)
        if same(current):
            return current
        body = {**current, **{k: v for k, v in obj.items() if k != "metadata"}}
        body["metadata"] = {**current["metadata"], "labels": obj["metadata"].get("labels", {})}
        return body

    await store.update(namespace, name, replace)


async def bootstrap_kubernetes_service(server: APIServer) -> EndpointReconciler:
    """The `kubernetes` Service's port, its Endpoints and EndpointSlice, the ServiceCIDR.
    Returns the endpoint reconciler (its first round done) for the caller to `run()`."""
    host, port = advertised(server)

    async def service_port(current: Obj | None) -> Obj:
        if current is None:
            raise server.store_for("", "v1", "services").not_found("kubernetes")
        svc_ports = (current.get("spec") or {}).get("ports") or []
        if svc_ports and svc_ports[0].get("targetPort") != port:
            svc_ports[0]["targetPort"] = port
        return current

    try:
        await server.store_for("", "v1", "services").update("default", "kubernetes", service_port)
    except errors.NotFound:
        pass
    reconciler = EndpointReconciler(server, host, port,
                                    ttl=server.settings.endpoint_reconciler_ttl_seconds,
                                    interval=server.settings.endpoint_reconciler_interval_seconds)
    await reconciler.start()
    await _ensure_service_cidr(server)
    return reconciler


async def write_kubernetes_endpoints(server: APIServer, ips: list[str], port: int) -> None:
    """The `default/kubernetes` Endpoints (one subset, every address) and EndpointSlice,
    rewritten only when they differ."""
    ports = [{"name": "https", "port": port, "protocol": "TCP"}]
    endpoints = {"apiVersion": "v1", "kind": "Endpoints",
                 "metadata": {"name": "kubernetes", "labels": {SKIP_MIRROR_LABEL: "true"}},
                 "subsets": [{"addresses": [{"ip": ip} for ip in ips], "ports": ports}]}
    await _ensure(server, ("", "v1", "endpoints"), "default", endpoints,
                  lambda cur: cur.get("subsets") == endpoints["subsets"]
                  and (cur["metadata"].get("labels") or {}) == endpoints["metadata"]["labels"])
    family = "IPv6" if ips and ":" in ips[0] else "IPv4"
    slice_ = {"apiVersion": "discovery.k8s.io/v1", "kind": "EndpointSlice",
              "metadata": {"name": "kubernetes", "labels": {SERVICE_NAME_LABEL: "kubernetes"}},
              "addressType": family,
              "endpoints": [{"addresses": [ip], "conditions": {"ready": True}} for ip in ips],
              "ports": ports}
    await _ensure(server, ("discovery.k8s.io", "v1", "endpointslices"), "default", slice_,
                  lambda cur: cur.get("endpoints") == slice_["endpoints"] and cur.get("ports") == ports)


async def _ensure_service_cidr(server: APIServer) -> None:
    key = ("networking.k8s.io", "v1", "servicecidrs")
    if key not in server.stores:
        return
    cidr = str(server.service_allocator.ips.cidr)
    obj = {"apiVersion": "networking.k8s.io/v1", "kind": "ServiceCIDR",
           "metadata": {"name": "kubernetes"}, "spec": {"cidrs": [cidr]}}
    store = server.stores[key]
    try:
        await store.create("", obj)
    except errors.AlreadyExists:
        return  # spec.cidrs is immutable upstream too; a changed flag needs a new ServiceCIDR

    async def ready(current: Obj | None) -> Obj:
        if current is None:
            raise store.not_found("kubernetes")
        current["status"] = {"conditions": [{"type": "Ready", "status": "True", "reason": "",
                                             "message": CIDR_READY_MESSAGE, "lastTransitionTime": now_rfc3339()}]}
        return current

    await store.update("", "kubernetes", ready, subresource="status")
