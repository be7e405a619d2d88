"""CoreDNS's HTTP side: `health` (:8080/health), `ready` (:8181/ready) and `prometheus` (:9153/metrics).

Why: the coredns Deployment's probes are kubeadm's (liveness GET /health on 8080, readiness
GET /ready on 8181), and the kube-dns Service publishes 9153 `metrics`. /health is 200 "OK"
while the process serves; /ready is 200 "OK" once the informers have synced (503 before, as
CoreDNS's ready plugin waits for the kubernetes plugin); /metrics is Prometheus text with a
few of CoreDNS's counters.
"""

from __future__ import annotations

from collections.abc import Callable

from aiohttp import web

from pykube_server.dns.server import Stats

VERSION = "1.12.0"
"""The CoreDNS release kubeadm deploys with Kubernetes 1.33."""


def _metrics(stats: Stats, zone: str) -> str:
    lines = ["# HELP coredns_build_info A metric with a constant '1' value labeled by version, revision, and goversion "
             "from which CoreDNS was built.",
             "# TYPE coredns_build_info gauge",
             f'coredns_build_info{{goversion="python",revision="pykube",version="{VERSION}"}} 1',
             "# HELP coredns_dns_requests_total Counter of DNS requests made per zone, protocol and family.",
             "# TYPE coredns_dns_requests_total counter"]
    for (proto, qtype), n in sorted(stats.requests.items()):
        lines.append(f'coredns_dns_requests_total{{family="1",proto="{proto}",server="dns://:53",type="{qtype}",'
                     f'view="",zone="."}} {n}')
    lines += ["# HELP coredns_dns_responses_total Counter of response status codes.",
              "# TYPE coredns_dns_responses_total counter"]
    for rcode, n in sorted(stats.responses.items()):
        lines.append(f'coredns_dns_responses_total{{plugin="",rcode="{rcode}",server="dns://:53",view="",zone="."}} {n}')
    lines += ["# HELP coredns_forward_requests_total Counter of requests made per upstream.",
              "# TYPE coredns_forward_requests_total counter"]
    for upstream, n in sorted(stats.forwards.items()):
        lines.append(f'coredns_forward_requests_total{{to="{upstream}:53"}} {n}')
    return "\n".join(lines) + "\n"


def health_app() -> web.Application:
    async def health(_: web.Request) -> web.Response:
        return web.Response(text="OK")

    app = web.Application()
    app.router.add_get("/health", health)
    return app


def ready_app(ready: Callable[[], bool]) -> web.Application:
    async def handler(_: web.Request) -> web.Response:
        return web.Response(text="OK") if ready() else web.Response(status=503, text="kubernetes")

    app = web.Application()
    app.router.add_get("/ready", handler)
    return app


def metrics_app(stats: Stats, zone: str) -> web.Application:
    async def handler(_: web.Request) -> web.Response:
        return web.Response(text=_metrics(stats, zone), content_type="text/plain", charset="utf-8")

    app = web.Application()
    app.router.add_get("/metrics", handler)
    return app


async def serve(app: web.Application, host: str, port: int) -> web.AppRunner:
    """Start `app` on host:port; the caller cleans the runner up."""
    runner = web.AppRunner(app, access_log=None, handle_signals=False)
    await runner.setup()
    await web.TCPSite(runner, host, port, reuse_address=True).start()
    return runner
