"""The API server process: flags to Settings, TLS, the aiohttp site, a clean shutdown."""

from __future__ import annotations

import argparse
import asyncio
import logging
import signal
import socket
from collections.abc import Awaitable, Callable
from pathlib import Path

from aiohttp import web

from pykube_server.apiserver import certs
from pykube_server.apiserver.app import SERVER, Settings, make_app
from pykube_server.apiserver.kubeconfig import write_kubeconfig
from pykube_server.registry.ipallocator import IPRange

log = logging.getLogger("pykube")


def add_server_flags(p: argparse.ArgumentParser) -> None:
    p.add_argument("--data-dir", default=".pykube", help="where storage, certificates and keys live (default .pykube/)")
    p.add_argument("--port", type=int, default=6443, help="HTTPS port on 127.0.0.1 (default 6443; 0 picks a free one)")
    p.add_argument("--bind-address", default="127.0.0.1", help="address to listen on (default 127.0.0.1)")
    p.add_argument("--kubernetes-version", default="1.33", help="emulated Kubernetes release (default 1.33)")
    p.add_argument("--storage", default="", help="storage URL: sqlite:///path/file.db (default: state.db in the data dir)")
    p.add_argument("--token-auth-file", default="", help="static bearer tokens, kube-apiserver CSV format")
    p.add_argument("--watch-history-seconds", type=float, default=300.0,
                   help="how long watch history is kept before compaction (default 300)")
    # Hidden: tests shorten the compactor's period to see 410 Expired without waiting a minute.
    p.add_argument("--compaction-interval-seconds", type=float, default=60.0, help=argparse.SUPPRESS)
    p.add_argument("--service-cluster-ip-range", default="127.96.0.0/16",
                   help="CIDR ClusterIPs are allocated from; its first address is the kubernetes Service's (default 127.96.0.0/16)")
    p.add_argument("--service-node-port-range", default="30000-32767",
                   help="port range NodePorts are allocated from (default 30000-32767)")
    p.add_argument("--enable-admission-plugins", default="",
                   help="admission plugins to turn on besides the default ones (comma-separated)")
    p.add_argument("--disable-admission-plugins", default="",
                   help="admission plugins to turn off, even default ones (comma-separated)")
    p.add_argument("--log-level", default="INFO")


def settings_from(args: argparse.Namespace, port: int) -> Settings:
    data_dir = Path(args.data_dir).resolve()
    storage = args.storage or f"sqlite:///{data_dir / 'state.db'}"
    return Settings(
        storage_url=storage,
        kubernetes_version=args.kubernetes_version,
        server_address=f"{args.bind_address}:{port}",
        token_auth_file=args.token_auth_file,
        compaction_retention_seconds=args.watch_history_seconds,
        compaction_interval_seconds=args.compaction_interval_seconds,
        service_cluster_ip_range=args.service_cluster_ip_range,
        service_node_port_range=args.service_node_port_range,
        kubernetes_service_ip=kubernetes_service_ip(args),
        secure_port=port,
        enable_admission_plugins=_names(args.enable_admission_plugins),
        disable_admission_plugins=_names(args.disable_admission_plugins),
    )


def _names(flag: str) -> tuple[str, ...]:
    return tuple(n.strip() for n in flag.split(",") if n.strip())


def kubernetes_service_ip(args: argparse.Namespace) -> str:
    """The first address of the service range (kube-apiserver's rule for the `kubernetes` Service)."""
    return IPRange(args.service_cluster_ip_range).first()


def free_port(host: str) -> int:
    with socket.socket() as sock:
        sock.bind((host, 0))
        return int(sock.getsockname()[1])


Components = Callable[[str, certs.Pki, Path], Awaitable[None]]
"""(server URL, PKI, data dir) -> runs the other components until cancelled (see cmd/up.py)."""


async def serve(args: argparse.Namespace, *, components: Components | None = None) -> None:
    data_dir = Path(args.data_dir).resolve()
    data_dir.mkdir(parents=True, exist_ok=True)
    pki = certs.ensure_pki(data_dir / "pki", extra_sans=[kubernetes_service_ip(args), args.bind_address])
    ssl_context = certs.server_ssl_context(pki)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    main = asyncio.current_task()
    started = False

    def on_signal() -> None:
        # Before the server is up there is nothing to shut down cleanly: abandon the start
        # (a start that hangs, e.g. on unreachable storage, must still obey Ctrl-C).
        stop.set()
        if not started and main is not None:
            main.cancel()

    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, on_signal)

    if args.port == 0:  # pick the port now: discovery and the endpoints advertise it
        args.port = free_port(args.bind_address)
    app = await make_app(settings_from(args, args.port))
    runner = web.AppRunner(app, access_log=None, handle_signals=False, shutdown_timeout=2.0)
    await runner.setup()
    site = web.TCPSite(runner, args.bind_address, args.port, ssl_context=ssl_context, backlog=1024)
    await site.start()
    port = runner.addresses[0][1]
    server_url = f"https://{args.bind_address}:{port}"
    kubeconfig = getattr(args, "kubeconfig", "")
    if kubeconfig:
        cert_pem, key_pem = certs.issue_client_cert(pki.ca, certs.ADMIN_COMMON_NAME, [certs.ADMIN_ORGANIZATION])
        write_kubeconfig(Path(kubeconfig).resolve(), server=server_url, ca_pem=pki.ca.cert_pem,
                         client_cert_pem=cert_pem, client_key_pem=key_pem)
    started = True
    print(f"pykube ready: {server_url} (kubeconfig: {kubeconfig or '-'})", flush=True)
    try:
        if components is None:
            await stop.wait()
        else:
            running = asyncio.create_task(components(server_url, pki, data_dir), name="components")
            await asyncio.wait({running, asyncio.create_task(stop.wait())}, return_when=asyncio.FIRST_COMPLETED)
            running.cancel()
            try:
                await running
            except asyncio.CancelledError:
                pass
    finally:
        log.info("shutting down")
        await shutdown(app, runner)


async def shutdown(app: web.Application, runner: web.AppRunner) -> None:
    """End open watches with their terminating chunk first, so clients resume cleanly."""
    server = app.get(SERVER)
    if server is not None:
        server.cacher.close_all_watchers()
        await asyncio.sleep(0.1)
    await runner.cleanup()


