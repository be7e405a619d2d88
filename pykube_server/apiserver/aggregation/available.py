"""The availability check of one APIService: what kube-aggregator's two status controllers decide.

A local APIService (no `spec.service`) is always `Available=True`, reason `Local`. A remote one
is checked in kube's order, with kube's reasons and messages: the Service exists
(`ServiceNotFound`), for a ClusterIP Service it has the APIService's port (`ServicePortError`),
EndpointSlices (`EndpointsNotFound`) and a ready endpoint with that port's name
(`MissingEndpoints`); then the extension server must answer `GET /apis/<group>/<version>` with a
2xx or 3xx within five seconds (`FailedDiscoveryCheck`, `failing or missing response from
<url>: ...`), asked as `system:kube-aggregator` in `system:masters` with the front-proxy
certificate and without verifying the serving certificate (kube's probe does not either).
"""

from __future__ import annotations

import asyncio
import ssl
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any

import aiohttp

from pykube_server.apiserver.aggregation.backend import Backends, Endpoint, go_error, identity_headers
from pykube_server.apiserver.serviceresolver import ResolveError
from pykube_server.apiserver.authn import UserInfo

Obj = dict[str, Any]
PROBE_TIMEOUT_SECONDS = 5.0
PROBE_USER = UserInfo(username="system:kube-aggregator", groups=("system:masters",))
LOCAL = ("True", "Local", "Local APIServices are always available")


@dataclass(frozen=True, slots=True)
class Verdict:
    status: str
    reason: str
    message: str
    endpoint: Endpoint | None = None
    """Where the probe reached the server (for the discovery fetch that follows a pass)."""


def now_rfc3339() -> str:
    return datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def with_condition(status: Obj, verdict: Verdict) -> Obj:
    """status with its Available condition set (kube's SetAPIServiceCondition: the transition
    time moves only when the status does)."""
    conditions = [dict(c) for c in status.get("conditions") or []]
    existing = next((c for c in conditions if c.get("type") == "Available"), None)
    if existing is None:
        existing = {"type": "Available"}
        conditions.append(existing)
    if existing.get("status") != verdict.status or "lastTransitionTime" not in existing:
        existing["lastTransitionTime"] = now_rfc3339()
    existing.update(status=verdict.status, reason=verdict.reason, message=verdict.message)
    ordered = {"type": "Available", "status": existing["status"], "lastTransitionTime": existing["lastTransitionTime"],
               "reason": existing["reason"], "message": existing["message"]}
    conditions[conditions.index(existing)] = ordered
    return {**status, "conditions": conditions}


class AvailabilityCheck:
    def __init__(self, backends: Backends, service_lookup: Callable[[str, str], Obj | None],
                 slices_lookup: Callable[[str, str], Iterable[Obj]]) -> None:
        self._backends = backends
        self._service = service_lookup
        self._slices = slices_lookup
        self._insecure = ssl.create_default_context()
        self._insecure.check_hostname = False
        self._insecure.verify_mode = ssl.CERT_NONE
        self._insecure_ready = False

    def _probe_context(self) -> ssl.SSLContext:
        if not self._insecure_ready:  # the front-proxy identity, without verifying the server
            front = self._backends.front_proxy
            self._insecure.load_cert_chain(front.client_cert_path, front.client_key_path)
            self._insecure_ready = True
        return self._insecure

    async def check(self, apiservice: Obj, session: aiohttp.ClientSession) -> Verdict:
        spec = apiservice.get("spec") or {}
        ref = spec.get("service")
        if not isinstance(ref, dict):
            return Verdict(*LOCAL)
        namespace, name, port = ref.get("namespace", ""), ref.get("name", ""), int(ref.get("port") or 443)
        service = self._service(namespace, name)
        if service is None:
            return Verdict("False", "ServiceNotFound", f'service/{name} in "{namespace}" is not present')
        svc_spec = service.get("spec") or {}
        if svc_spec.get("type", "ClusterIP") == "ClusterIP":
            svc_port = next((p for p in svc_spec.get("ports") or () if p.get("port") == port), None)
            if svc_port is None:
                return Verdict("False", "ServicePortError", f'service/{name} in "{namespace}" is not listening on port {port}')
            port_name = svc_port.get("name") or ""
            slices = list(self._slices(namespace, name))
            if not slices:
                return Verdict("False", "EndpointsNotFound", f'cannot find endpointslices for service/{name} in "{namespace}"')
            if not any(_has_endpoint(s, port_name) for s in slices):
                return Verdict("False", "MissingEndpoints",
                               f'endpointslices for service/{name} in "{namespace}" have no addresses with port name "{port_name}"')
        try:
            endpoint = self._backends.resolve(ref)
        except ResolveError as exc:
            return Verdict("False", "FailedDiscoveryCheck", str(exc))
        path = f"/api/{spec.get('version')}" if apiservice["metadata"]["name"] == "v1." else \
            f"/apis/{spec.get('group')}/{spec.get('version')}"
        url = endpoint.base_url + path
        try:
            async with asyncio.timeout(PROBE_TIMEOUT_SECONDS):
                async with session.get(url, headers=list(identity_headers(PROBE_USER)), ssl=self._probe_context(),
                                       allow_redirects=False) as resp:
                    code = resp.status
        except (aiohttp.ClientError, OSError, TimeoutError) as exc:
            detail = go_error(exc, endpoint.host, endpoint.port)
            return Verdict("False", "FailedDiscoveryCheck", f'failing or missing response from {url}: Get "{url}": {detail}')
        if not 200 <= code < 300:
            return Verdict("False", "FailedDiscoveryCheck",
                           f"failing or missing response from {url}: bad status from {url}: {code}")
        return Verdict("True", "Passed", "all checks passed", endpoint)


def _has_endpoint(endpoint_slice: Obj, port_name: str) -> bool:
    ready = any((e.get("conditions") or {}).get("ready") is not False for e in endpoint_slice.get("endpoints") or ())
    return ready and any((p.get("name") or "") == port_name and p.get("port") is not None
                         for p in endpoint_slice.get("ports") or ())
