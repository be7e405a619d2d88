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

from pykube_server.apiserver import certs, encryption
from pykube_server.api.duration import parse_go_duration as parse_duration
from pykube_server.apiserver.app import SERVER, Settings, make_app
from pykube_server.apiserver.kubeconfig import write_kubeconfig
from pykube_server.apiserver.serviceaccount import DEFAULT_ISSUER
from pykube_server.apiserver.serviceaccount import keys as sa_keys
from pykube_server.cmd import process
from pykube_server.registry.ipallocator import IPRange

log = logging.getLogger("pykube")
DEFAULT_AUTHORIZATION_MODE = "Node,RBAC"


def add_server_flags(p: argparse.ArgumentParser) -> None:
    p.add_argument("--data-dir", default=".pykube", help="where storage, certificates and keys live (default .pykube/)")
    p.add_argument("--port", type=int, default=6443, help="HTTPS port on 127.0.0.1 (default 6443; 0 picks a free one)")
    p.add_argument("--bind-address", default="127.0.0.1", help="address to listen on (default 127.0.0.1)")
    p.add_argument("--kubernetes-version", default="1.33", help="emulated Kubernetes release (default 1.33)")
    p.add_argument("--storage", default="", help="storage URL: sqlite:///path/file.db (default: state.db in the data dir)")
    p.add_argument("--token-auth-file", default="", help="static bearer tokens, kube-apiserver CSV format")
    p.add_argument("--max-requests-inflight", type=int, default=400,
                   help="non-mutating requests served at once before 429s (0: no limit; default 400)")
    p.add_argument("--max-mutating-requests-inflight", type=int, default=200,
                   help="mutating requests served at once before 429s (0: no limit; default 200)")
    p.add_argument("--request-timeout", default="1m0s",
                   help="how long a non-streaming request may take before a 504 (default 1m0s)")
    p.add_argument("--audit-policy-file", default="", help="an audit.k8s.io/v1 Policy: which requests are audited, at which level")
    p.add_argument("--audit-log-path", default="", help="where audit events go, one JSON object per line ('-': standard output)")
    p.add_argument("--audit-log-maxsize", type=int, default=0, help="megabytes before the audit log is rotated (0: never)")
    p.add_argument("--audit-log-maxbackup", type=int, default=0, help="rotated audit logs to keep (0: all)")
    p.add_argument("--audit-log-maxage", type=int, default=0, help="days to keep rotated audit logs (0: forever)")
    p.add_argument("--enable-bootstrap-token-auth", action="store_true",
                   help="accept bootstrap tokens (kube-system/bootstrap-token-* Secrets) for joining nodes "
                        "(`up` turns it on)")
    p.add_argument("--encryption-provider-config", default="",
                   help="an EncryptionConfiguration file: which resources are encrypted at rest and how "
                        "(`up` defaults to encryption-config.yaml in the data dir, Secrets with AES-GCM)")
    p.add_argument("--watch-history-seconds", type=float, default=300.0,
                   help="how long watch history is kept before compaction (default 300)")
    # Hidden: tests shorten the compactor's period to see 410 Expired without waiting a minute.
    p.add_argument("--compaction-interval-seconds", type=float, default=60.0, help=argparse.SUPPRESS)
    # Hidden: tests shorten how long a stopped API server stays in the kubernetes endpoints.
    p.add_argument("--endpoint-reconciler-ttl", type=float, default=15.0, help=argparse.SUPPRESS)
    p.add_argument("--endpoint-reconciler-interval", type=float, default=10.0, help=argparse.SUPPRESS)
    p.add_argument("--service-cluster-ip-range", default="127.96.0.0/16",
                   help="CIDR ClusterIPs are allocated from; its first address is the kubernetes Service's (default 127.96.0.0/16)")
    p.add_argument("--service-node-port-range", default="30000-32767",
                   help="port range NodePorts are allocated from (default 30000-32767)")
    p.add_argument("--enable-admission-plugins", default="",
                   help="admission plugins to turn on besides the default ones (comma-separated)")
    p.add_argument("--disable-admission-plugins", default="",
                   help="admission plugins to turn off, even default ones (comma-separated)")
    p.add_argument("--authorization-mode", default=DEFAULT_AUTHORIZATION_MODE,
                   help="ordered authorizers: AlwaysAllow, AlwaysDeny, Node, RBAC (comma-separated; "
                        f"default {DEFAULT_AUTHORIZATION_MODE}); system:masters is always allowed")
    add_service_account_flags(p)
    p.add_argument("--log-level", default="INFO")


def add_service_account_flags(p: argparse.ArgumentParser) -> None:
    """kube-apiserver's service account token flags (see docs/operations.md, Security)."""
    p.add_argument("--service-account-issuer", action="append", default=[],
                   help=f"issuer of service account tokens; repeat to accept more (the first issues; "
                        f"default {DEFAULT_ISSUER})")
    p.add_argument("--service-account-key-file", action="append", default=[],
                   help="PEM file of keys that verify service account tokens; repeatable "
                        "(default: the signing key's public half, <data-dir>/pki/sa.pub)")
    p.add_argument("--service-account-signing-key-file", default="",
                   help="PEM private key service account tokens are signed with (default <data-dir>/pki/sa.key, "
                        "an RSA 2048 key made on first start)")
    p.add_argument("--api-audiences", default="",
                   help="audiences of the API (comma-separated; default: the service account issuers)")
    p.add_argument("--service-account-max-token-expiration", default="",
                   help="longest lifetime a TokenRequest may ask for, a Go duration such as 48h (default: none)")
    p.add_argument("--service-account-extend-token-expiration", default="true", choices=("true", "false"),
                   help="let projected volume tokens live a year, warning after their requested 3607 s (default true)")
    p.add_argument("--service-account-jwks-uri", default="",
                   help="jwks_uri to publish in /.well-known/openid-configuration (default: <issuer>/openid/v1/jwks)")


def service_account_signing_key(args: argparse.Namespace) -> Path:
    """The signing key file: the flag's, or the pair kept in the data dir (made on first use)."""
    if getattr(args, "service_account_signing_key_file", ""):
        return Path(args.service_account_signing_key_file).resolve()
    key_path, _ = sa_keys.ensure_key_pair(Path(getattr(args, "data_dir", ".pykube")).resolve() / "pki")
    return key_path


def max_token_expiration_seconds(flag: str) -> int:
    """kube's rule: unset, or between one hour and 2^32 seconds."""
    if not flag:
        return 0
    seconds = int(parse_go_duration(flag))
    if not 3600 <= seconds <= 1 << 32:
        raise SystemExit("the service-account-max-token-expiration must be between 1 hour and 2^32 seconds")
    return seconds


def parse_go_duration(text: str) -> float:
    """A duration flag in seconds; a start-up error, worded as Go's, when it is not one."""
    seconds = parse_duration(text)
    if seconds is None:
        raise SystemExit(f'time: invalid duration "{text}"')
    return seconds


def settings_from(args: argparse.Namespace, port: int) -> Settings:
    data_dir = Path(args.data_dir).resolve()
    storage = args.storage or f"sqlite:///{data_dir / 'state.db'}"
    return Settings(
        storage_url=storage,
        kubernetes_version=args.kubernetes_version,
        server_address=f"{args.bind_address}:{port}",
        token_auth_file=args.token_auth_file,
        encryption_provider_config=args.encryption_provider_config,
        enable_bootstrap_token_auth=args.enable_bootstrap_token_auth,
        audit_policy_file=args.audit_policy_file,
        audit_log_path=args.audit_log_path,
        audit_log_maxsize=args.audit_log_maxsize,
        audit_log_maxbackup=args.audit_log_maxbackup,
        audit_log_maxage=args.audit_log_maxage,
        max_requests_inflight=args.max_requests_inflight,
        max_mutating_requests_inflight=args.max_mutating_requests_inflight,
        request_timeout_seconds=_request_timeout(args.request_timeout),
        compaction_retention_seconds=args.watch_history_seconds,
        compaction_interval_seconds=args.compaction_interval_seconds,
        service_cluster_ip_range=args.service_cluster_ip_range,
        service_node_port_range=args.service_node_port_range,
        kubernetes_service_ip=kubernetes_service_ip(args),
        secure_port=port,
        enable_admission_plugins=_names(args.enable_admission_plugins),
        disable_admission_plugins=_names(args.disable_admission_plugins),
        authorization_mode=_authorization_mode(args.authorization_mode),
        service_account_issuers=tuple(args.service_account_issuer),
        service_account_key_files=tuple(args.service_account_key_file),
        service_account_signing_key_file=args.service_account_signing_key_file,
        api_audiences=_names(args.api_audiences),
        service_account_max_token_expiration_seconds=max_token_expiration_seconds(args.service_account_max_token_expiration),
        service_account_extend_token_expiration=args.service_account_extend_token_expiration == "true",
        service_account_jwks_uri=args.service_account_jwks_uri,
        endpoint_reconciler_ttl_seconds=args.endpoint_reconciler_ttl,
        endpoint_reconciler_interval_seconds=args.endpoint_reconciler_interval,
        pki_dir=str(data_dir / "pki"),
    )


def _request_timeout(text: str) -> float:
    seconds = parse_duration(text)
    if seconds is None or seconds <= 0:
        raise SystemExit(f'error: --request-timeout: time: invalid duration "{text}"')
    return seconds


def _names(flag: str) -> tuple[str, ...]:
    return tuple(n.strip() for n in flag.split(",") if n.strip())


def _authorization_mode(value: str) -> str:
    """Refuse an unknown mode at start-up, as kube-apiserver does, instead of on first use."""
    from pykube_server.apiserver.rbac.modes import parse_modes

    try:
        return ",".join(parse_modes(value))
    except ValueError as exc:
        raise SystemExit(f"error: --authorization-mode: {exc}") from None


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

    if components is not None:  # `up` configures the API server as kubeadm does:
        args.enable_bootstrap_token_auth = True  # nodes join with bootstrap tokens
        if "NodeRestriction" not in args.enable_admission_plugins:  # kubelets write only what is theirs
            args.enable_admission_plugins = ",".join(p for p in (args.enable_admission_plugins, "NodeRestriction") if p)
    if components is not None and not args.encryption_provider_config:  # `up`: Secrets encrypted by default
        args.encryption_provider_config = str(encryption.default_config(data_dir / "encryption-config.yaml"))
    args.service_account_signing_key_file = str(service_account_signing_key(args))
    if not args.service_account_key_file:
        args.service_account_key_file = [args.service_account_signing_key_file]
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
    process.freeze_startup_objects()
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


