"""`pykube-server proxy`: flags to ProxySettings to the Proxier's run() (kube-proxy)."""

from __future__ import annotations

import argparse
from pathlib import Path
import asyncio
from dataclasses import dataclass

from pykube_server.client.informer import InformerFactory
from pykube_server.client.tlsbootstrap import bootstrap_proxy_kubeconfig
from pykube_server.client.rest import Client
from pykube_server.proxy.balancer import MODES, ROUND_ROBIN
from pykube_server.proxy.proxier import Proxier


@dataclass(frozen=True)
class ProxySettings:
    kubeconfig: str
    balance: str = ROUND_ROBIN
    """How each service port spreads connections: round-robin (default) or random."""
    nodeport_address: str = "127.0.0.1"
    """Where NodePorts listen (kube-proxy's --nodeport-addresses, one loopback address here)."""
    node_names: tuple[str, ...] = ()
    """The nodes this proxy serves, whose endpoints are "local" to the traffic policies."""
    qps: float = 20.0
    burst: int = 40


def add_flags(p: argparse.ArgumentParser) -> None:
    p.add_argument("--kubeconfig", required=True,
                   help="credentials and server to talk to; with --token, where the bootstrapped ones are written")
    p.add_argument("--server", default="", help="API server URL to join (with --token)")
    p.add_argument("--token", default="", help="a bootstrap token to request a system:kube-proxy certificate with "
                                               "(an administrator approves the CSR)")
    p.add_argument("--discovery-token-ca-cert-hash", action="append", default=[],
                   help="sha256:<hex> pin of the cluster CA's public key (repeatable)")
    p.add_argument("--balance", choices=MODES, default=ROUND_ROBIN,
                   help="endpoint choice per connection: round-robin (default) or random")
    p.add_argument("--nodeport-address", default="127.0.0.1", help="address NodePorts listen on (default 127.0.0.1)")
    p.add_argument("--hostname-override", default="",
                   help="the node name(s) this proxy serves, comma-separated when one proxy serves several "
                        "virtual nodes; their endpoints are the local ones for internalTrafficPolicy and "
                        "externalTrafficPolicy Local (default: this machine's hostname)")
    p.add_argument("--kube-api-qps", type=float, default=20.0)
    p.add_argument("--kube-api-burst", type=int, default=40)
    p.add_argument("--log-level", default="INFO")


async def run(settings: ProxySettings) -> None:
    async with Client.from_kubeconfig(settings.kubeconfig, qps=settings.qps, burst=settings.burst,
                                      user_agent="kube-proxy/v1.33.0 (linux/amd64) pykube") as client:
        informers = InformerFactory(client)
        proxier = Proxier(informers, balance=settings.balance, node_address=settings.nodeport_address,
                          node_names=settings.node_names)
        async with asyncio.TaskGroup() as tg:
            tg.create_task(informers.run())
            tg.create_task(proxier.run())


async def main(args: argparse.Namespace) -> None:
    if args.token and not Path(args.kubeconfig).exists():
        if not args.server or not args.discovery_token_ca_cert_hash:
            raise SystemExit("error: joining needs --server and --discovery-token-ca-cert-hash")
        print("waiting for an administrator to approve the system:kube-proxy certificate request "
              "(kubectl get csr; kubectl certificate approve <name>)", flush=True)
        await bootstrap_proxy_kubeconfig(Path(args.kubeconfig), args.server, args.token, args.discovery_token_ca_cert_hash)
    await run(ProxySettings(kubeconfig=args.kubeconfig, balance=args.balance, nodeport_address=args.nodeport_address,
                            node_names=tuple(n.strip() for n in args.hostname_override.split(",") if n.strip()),
                            qps=args.kube_api_qps, burst=args.kube_api_burst))
