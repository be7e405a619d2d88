"""`pykube-server`: flags -> settings -> a component's run(); nothing else lives here.

`up` runs the whole cluster on this machine (for now the API server; each component joins as
it is built) and writes the admin kubeconfig; `apiserver` runs the API server alone.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import signal
import sys
from pathlib import Path

from aiohttp import web

from pykube_server.apiserver import certs
from pykube_server.apiserver.app import SERVER, Settings, make_app
from pykube_server.apiserver.kubeconfig import write_kubeconfig

log = logging.getLogger("pykube")


def _add_server_flags(p: argparse.ArgumentParser) -> None:
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
    p.add_argument("--service-cluster-ip", default="127.96.0.1", help="ClusterIP of the kubernetes Service")
    p.add_argument("--log-level", default="INFO")


def parse_args(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="pykube-server", description="A Kubernetes control plane in Python.")
    sub = parser.add_subparsers(dest="command", required=True)
    up = sub.add_parser("up", help="run the whole cluster on this machine and write the admin kubeconfig")
    _add_server_flags(up)
    up.add_argument("--kubeconfig", default="kubeconfig/admin.yaml", help="where to write the admin kubeconfig")
    up.add_argument("--nodes", type=int, default=1, help="virtual nodes (used once the kubelet exists)")
    up.add_argument("--runtime", choices=("process", "simulated"), default="process",
                    help="pod runtime (used once the kubelet exists)")
    api = sub.add_parser("apiserver", help="run the API server alone")
    _add_server_flags(api)
    api.add_argument("--kubeconfig", default="", help="also write an admin kubeconfig here")
    return parser.parse_args(argv)


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
        kubernetes_service_ip=args.service_cluster_ip,
        secure_port=port,
    )


async def serve(args: argparse.Namespace) -> None:
    data_dir = Path(args.data_dir).resolve()
    data_dir.mkdir(parents=True, exist_ok=True)
    pki = certs.ensure_pki(data_dir / "pki", extra_sans=[args.service_cluster_ip, args.bind_address])
    ssl_context = certs.server_ssl_context(pki)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)

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
    print(f"pykube ready: {server_url} (kubeconfig: {kubeconfig or '-'})", flush=True)
    try:
        await stop.wait()
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


def main(argv: list[str] | None = None) -> None:
    args = parse_args(sys.argv[1:] if argv is None else argv)
    logging.basicConfig(level=getattr(logging, args.log_level.upper(), logging.INFO),
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    logging.getLogger("aiohttp.access").setLevel(logging.WARNING)
    try:
        asyncio.run(serve(args))
    except KeyboardInterrupt:
        pass


if __name__ == "__main__":
    main()
