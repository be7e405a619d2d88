"""`pykube-server dns`: flags (or a Corefile) to DNSSettings to the cluster DNS server's run().

Without `--kubeconfig` it uses the in-cluster config (the pod's service account token, CA and
KUBERNETES_SERVICE_HOST/PORT), as CoreDNS's kubernetes plugin does when no endpoint is given;
that is how the coredns Deployment `up` creates runs it, with `-conf /etc/coredns/Corefile`
from the `coredns` ConfigMap. With the Corefile's `reload`, edits to the file are applied while
running (zone, TTL, pod mode, forwarders); a broken edit is logged and the old one kept, as
CoreDNS does. SIGTERM is turned into cancellation.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import signal
import sys
from dataclasses import dataclass, replace
from pathlib import Path

from pykube_server.client.config import ClientConfig, in_cluster_config, load_kubeconfig
from pykube_server.client.informer import InformerFactory
from pykube_server.client.rest import Client
from pykube_server.dns import corefile, health
from pykube_server.dns.cluster import POD_MODES, ClusterZone
from pykube_server.dns.records import DEFAULT_TTL
from pykube_server.dns.server import DNSServer, Resolver, Stats, upstream_address, upstreams_from_resolv_conf

log = logging.getLogger("pykube.dns")


@dataclass(frozen=True)
class DNSSettings:
    kubeconfig: str = ""
    """Empty: in-cluster config."""
    endpoint: str = ""
    """With the in-cluster config: the API server's URL instead of KUBERNETES_SERVICE_HOST/PORT
    (CoreDNS's `endpoint` option)."""
    listen: str = "127.0.0.1:53"
    cluster_domain: str = "cluster.local"
    ttl: int = DEFAULT_TTL
    pods: str = "insecure"
    upstreams: tuple[str, ...] | None = None
    """None: the nameservers of /etc/resolv.conf."""
    health_listen: str = ""
    ready_listen: str = ""
    metrics_listen: str = ""
    qps: float = 20.0
    burst: int = 40
    conf: str = ""
    """A Corefile; its settings fill what the flags leave unset."""
    routes: tuple[tuple[str, tuple[str, ...]], ...] | None = None
    """Forwarders by zone from the Corefile (None: `upstreams` for every name)."""
    reload_seconds: float = 0.0


def split_hostport(value: str, default_port: int) -> tuple[str, int]:
    """`127.0.0.1:53`, `[::1]:53`, `127.0.0.1` -> (host, port)."""
    host, port = upstream_address(value)
    explicit = "]:" in value if value.startswith("[") else value.count(":") == 1
    return host, port if explicit else default_port


def add_flags(p: argparse.ArgumentParser) -> None:
    p.add_argument("-conf", "--conf", default="", help="a Corefile (kubeadm's `coredns` ConfigMap); flags given win")
    p.add_argument("--kubeconfig", default="", help="credentials and server to talk to (default: in-cluster config)")
    p.add_argument("--endpoint", default="",
                   help="API server URL to use with the in-cluster credentials (default: KUBERNETES_SERVICE_HOST/PORT)")
    p.add_argument("--listen", default="127.0.0.1:53", help="address:port for DNS over UDP and TCP (default 127.0.0.1:53)")
    p.add_argument("--cluster-domain", default="cluster.local", help="the cluster zone (default cluster.local)")
    p.add_argument("--ttl", type=int, default=DEFAULT_TTL, help=f"TTL of cluster records, 0-3600 (default {DEFAULT_TTL})")
    p.add_argument("--pods", choices=POD_MODES, default="insecure",
                   help="<ip>.<ns>.pod.<zone> records: insecure (any IP, default), verified (existing pods), disabled")
    p.add_argument("--upstream", action="append", default=None,
                   help="nameserver for names outside the cluster (repeatable; default: those of /etc/resolv.conf)")
    p.add_argument("--health-listen", default="", help="address:port for GET /health (CoreDNS's :8080)")
    p.add_argument("--ready-listen", default="", help="address:port for GET /ready (CoreDNS's :8181)")
    p.add_argument("--metrics-listen", default="", help="address:port for GET /metrics (CoreDNS's :9153)")
    p.add_argument("--kube-api-qps", type=float, default=20.0)
    p.add_argument("--kube-api-burst", type=int, default=40)
    p.add_argument("--log-level", default="INFO")


def client_config(settings: DNSSettings) -> ClientConfig:
    agent = "coredns/v1.12.0 (linux/amd64) pykube"
    if settings.kubeconfig:
        return load_kubeconfig(settings.kubeconfig, qps=settings.qps, burst=settings.burst, user_agent=agent)
    extra = {"server": settings.endpoint.rstrip("/")} if settings.endpoint else {}
    return in_cluster_config(qps=settings.qps, burst=settings.burst, user_agent=agent, **extra)


def with_corefile(settings: DNSSettings, core: corefile.Settings, *, explicit: set[str]) -> DNSSettings:
    """The Corefile's settings under the flags the user gave (`explicit`: their field names).
    The Corefile's listener addresses (`:8080`) take the host of `--listen`."""
    host = split_hostport(settings.listen, core.port)[0]
    changes: dict[str, object] = {"routes": tuple((z, tuple(u)) for z, u in core.routes),
                                  "reload_seconds": core.reload_seconds}
    if "listen" not in explicit or not _has_port(settings.listen):  # the Corefile's `.:PORT`
        changes["listen"] = f"[{host}]:{core.port}" if ":" in host else f"{host}:{core.port}"
    for name, value in (("cluster_domain", core.cluster_domain), ("ttl", core.ttl), ("pods", core.pods),
                        ("endpoint", core.endpoint)):
        if name not in explicit and value != "":  # `ttl 0` is a setting (no caching), an empty endpoint is not
            changes[name] = value
    for name, addr, default in (("health_listen", core.health, 8080), ("ready_listen", core.ready, 8181),
                                ("metrics_listen", core.metrics, 9153)):
        if name not in explicit and addr is not None:
            h, p = ("", int(addr[1:] or default)) if addr.startswith(":") else split_hostport(addr, default)
            changes[name] = f"{h or host}:{p}"
    return replace(settings, **changes)  # type: ignore[arg-type]


def _has_port(listen: str) -> bool:
    return "]:" in listen if listen.startswith("[") else listen.count(":") == 1


async def _reload(settings: DNSSettings, explicit: set[str], zone: ClusterZone, resolver: Resolver) -> None:
    """CoreDNS's `reload`: check the Corefile every interval; apply a changed, valid one."""
    path = Path(settings.conf)
    last = path.read_bytes() if path.exists() else b""
    while True:
        await asyncio.sleep(settings.reload_seconds)
        try:
            text = path.read_bytes()
        except OSError:
            continue
        if text == last:
            continue
        last = text
        try:
            new = with_corefile(settings, corefile.settings(corefile.parse(text.decode())), explicit=explicit)
        except (corefile.CorefileError, UnicodeDecodeError) as exc:
            log.error("Restart failed: %s", exc)
            continue
        zone.reconfigure(new.cluster_domain, new.ttl, new.pods)
        resolver.routes = _routes(new, split_hostport(new.listen, 53)[0])
        log.info("Reloading complete: zone %s, ttl %d, pods %s", new.cluster_domain, new.ttl, new.pods)


def _routes(settings: DNSSettings, host: str) -> list[tuple[str, list[str]]]:
    if settings.routes is not None and settings.upstreams is None:
        return [(zone, [u for u in ups if u != host]) for zone, ups in settings.routes]
    upstreams = list(settings.upstreams) if settings.upstreams is not None else upstreams_from_resolv_conf(exclude=(host,))
    return [(".", upstreams)]


async def run(settings: DNSSettings, explicit: set[str] | None = None) -> None:
    if not 0 <= settings.ttl <= 3600:
        raise SystemExit("error: --ttl must be between 0 and 3600")
    host, port = split_hostport(settings.listen, 53)
    routes = _routes(settings, host)
    upstreams = [u for _, ups in routes for u in ups]
    async with Client(client_config(settings)) as client:
        informers = InformerFactory(client)
        zone = ClusterZone(informers, settings.cluster_domain, ttl=settings.ttl, pod_mode=settings.pods)
        stats = Stats()
        resolver = Resolver(lambda: zone.zone() if zone.synced() else None, [], stats=stats, routes=routes)
        server = DNSServer(resolver, host, port)
        await server.start()
        runners = []
        try:
            for listen, app, default in ((settings.health_listen, health.health_app(), 8080),
                                         (settings.ready_listen, health.ready_app(zone.synced), 8181),
                                         (settings.metrics_listen, health.metrics_app(stats, settings.cluster_domain), 9153)):
                if listen:
                    runners.append(await health.serve(app, *split_hostport(listen, default)))
            # CoreDNS's start banner, which is what `kubectl logs` of a coredns pod begins with
            print(f".:{server.port}\nCoreDNS-{health.VERSION}\nlinux/amd64, python{sys.version.split()[0]}, pykube",
                  flush=True)
            log.info("dns: serving %s on %s:%d (udp, tcp); upstreams %s", settings.cluster_domain, host, server.port,
                     ", ".join(dict.fromkeys(upstreams)) or "none")
            async with asyncio.TaskGroup() as tg:
                if settings.conf and settings.reload_seconds > 0:
                    tg.create_task(_reload(settings, explicit or set(), zone, resolver))
                await informers.run()
        finally:
            await server.aclose()
            for runner in runners:
                await runner.cleanup()


def settings_from(args: argparse.Namespace, argv: list[str]) -> tuple[DNSSettings, set[str]]:
    """Flags to settings, the Corefile (if any) filling what the command line did not say."""
    settings = DNSSettings(kubeconfig=args.kubeconfig, endpoint=args.endpoint, listen=args.listen,
                           cluster_domain=args.cluster_domain.strip("."), ttl=args.ttl, pods=args.pods,
                           upstreams=tuple(args.upstream) if args.upstream is not None else None,
                           health_listen=args.health_listen, ready_listen=args.ready_listen,
                           metrics_listen=args.metrics_listen, qps=args.kube_api_qps, burst=args.kube_api_burst,
                           conf=args.conf)
    given = {a.split("=", 1)[0].lstrip("-").replace("-", "_") for a in argv if a.startswith("-")}
    explicit = {f for f in ("listen", "cluster_domain", "ttl", "pods", "endpoint", "health_listen", "ready_listen",
                            "metrics_listen") if f in given}
    if not settings.conf:
        return settings, explicit
    try:
        return with_corefile(settings, corefile.load(settings.conf), explicit=explicit), explicit
    except corefile.CorefileError as exc:
        raise SystemExit(f"error: {exc}") from None


async def main(args: argparse.Namespace) -> None:
    settings, explicit = settings_from(args, sys.argv[1:])
    for handler in logging.getLogger().handlers:  # CoreDNS logs to stdout: one stream keeps the banner first
        if isinstance(handler, logging.StreamHandler) and handler.stream is sys.stderr:
            handler.setStream(sys.stdout)
    task = asyncio.current_task()
    assert task is not None
    asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, task.cancel)
    try:
        await run(settings, explicit)
    except asyncio.CancelledError:
        pass
