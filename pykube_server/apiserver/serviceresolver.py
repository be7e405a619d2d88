"""A Service port to one ready endpoint, the way kube-apiserver dials webhooks and extension
API servers: straight to a pod address from the Service's EndpointSlices (the aggregator's
endpoint routing), so neither depends on kube-proxy; an ExternalName Service is dialled by name.
The texts of ResolveError are kube's; callers add their own prefix (`Post "<url>": ...`).
"""

from __future__ import annotations

import random
from collections.abc import Callable, Iterable
from typing import Any

Obj = dict[str, Any]
ServiceLookup = Callable[[str, str], Obj | None]
SlicesLookup = Callable[[str, str], Iterable[Obj]]


class ResolveError(Exception):
    """The Service has no endpoint to send the request to."""


def resolve(service_lookup: ServiceLookup, slices_lookup: SlicesLookup, namespace: str, name: str,
            port: int) -> tuple[str, int]:
    """(host, port) of a ready endpoint behind `namespace/name`'s service port `port`, picked at random."""
    service = service_lookup(namespace, name)
    if service is None:
        raise ResolveError(f'service "{name}" not found')
    spec = service.get("spec") or {}
    if spec.get("type") == "ExternalName":
        return str(spec.get("externalName", "")), port
    svc_port = next((p for p in spec.get("ports") or () if p.get("port") == port), None)
    if svc_port is None:
        raise ResolveError(f'no service port {port} found for service "{name}"')
    port_name = svc_port.get("name") or ""
    candidates: list[tuple[str, int]] = []
    for endpoint_slice in slices_lookup(namespace, name):
        slice_port = next((p for p in endpoint_slice.get("ports") or () if (p.get("name") or "") == port_name), None)
        if slice_port is None or slice_port.get("port") is None:
            continue
        for endpoint in endpoint_slice.get("endpoints") or ():
            if (endpoint.get("conditions") or {}).get("ready") is False:
                continue
            candidates.extend((a, int(slice_port["port"])) for a in (endpoint.get("addresses") or [])[:1])
    if not candidates:
        raise ResolveError(f'no endpoints available for service "{name}"')
    return random.choice(candidates)
