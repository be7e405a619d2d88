"""Health check node ports: how a load balancer learns which nodes have local endpoints.

For every LoadBalancer Service with `externalTrafficPolicy: Local`, kube-proxy serves HTTP on
the node address at `spec.healthCheckNodePort`. Any path answers (load balancers probe
`/healthz`) with JSON naming the Service and its count of local ready endpoints: 200 when
there is at least one (and the proxy is healthy), 503 otherwise, so a cloud load balancer sends
traffic only to nodes that can serve it without leaving the node.

The body keeps kube-proxy's layout (tab-indented) and headers (`application/json`, `nosniff`).
Counts are updated in place by the proxier's sync, so a probe never waits on the API.
"""

from __future__ import annotations

import asyncio
import json
import logging
from dataclasses import dataclass

from aiohttp import web

log = logging.getLogger(__name__)

ServiceName = tuple[str, str]
"""(namespace, name)"""


@dataclass
class _Instance:
    port: int
    local_endpoints: int
    server: asyncio.Server | None = None


def health_body(namespace: str, name: str, local_endpoints: int, healthy: bool) -> bytes:
    document = {"service": {"namespace": namespace, "name": name}, "localEndpoints": local_endpoints,
                "serviceProxyHealthy": healthy}
    return json.dumps(document, indent="\t").encode()


class HealthCheckServers:
    """One HTTP listener per (Service, healthCheckNodePort) on the node address."""

    def __init__(self, address: str) -> None:
        self.address = address
        self.services: dict[ServiceName, _Instance] = {}
        self.failed: set[ServiceName] = set()
        self.healthy = True
        """kube-proxy's own health; the proxier is healthy while it is running its syncs."""

    async def sync(self, wanted: dict[ServiceName, tuple[int, int]]) -> None:
        """`wanted`: Service -> (healthCheckNodePort, local ready endpoints). Listeners of
        Services no longer wanted (or whose port changed) close; new ones open."""
        for name, instance in list(self.services.items()):
            if name not in wanted or wanted[name][0] != instance.port:
                del self.services[name]
                if instance.server is not None:
                    instance.server.close()
        self.failed = set()
        for name, (port, count) in wanted.items():
            instance = self.services.get(name)
            if instance is not None:
                instance.local_endpoints = count
                continue
            instance = _Instance(port, count)
            try:
                instance.server = await asyncio.get_running_loop().create_server(
                    web.Server(self._handler(name)), self.address, port, reuse_address=True)
            except OSError as exc:
                log.warning("cannot serve the health check of %s/%s on %s:%d: %s", *name, self.address, port, exc)
                self.failed.add(name)
                continue
            self.services[name] = instance
            log.info("serving the health check of %s/%s on %s:%d", *name, self.address, port)

    def _handler(self, name: ServiceName):  # type: ignore[no-untyped-def]
        async def handle(request: web.BaseRequest) -> web.StreamResponse:
            instance = self.services.get(name)
            count = instance.local_endpoints if instance is not None else 0
            ok = count > 0 and self.healthy
            return web.Response(status=200 if ok else 503, body=health_body(name[0], name[1], count, self.healthy),
                                headers={"Content-Type": "application/json", "X-Content-Type-Options": "nosniff"})

        return handle

    async def aclose(self) -> None:
        services, self.services = self.services, {}
        for instance in services.values():
            if instance.server is not None:
                instance.server.close()
