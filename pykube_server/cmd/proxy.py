"""`pykube-server proxy`: flags to ProxySettings to the Proxier's run() (kube-proxy)."""

from __future__ import annotations

import argparse
import asyncio
from dataclasses import dataclass

from pykube_server.client.informer import InformerFactory
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
    qps: float = 20.0
    burst: int = 40


def add_flags(p: argparse.ArgumentParser) -> None:
    p.add_argument("--kubeconfig", required=True, help="credentials and server to talk to")
    p.add_argument("--balance", choices=MODES, default=ROUND_ROBIN,
                   help="endpoint choice per connection: round-robin (default) or random")
    p.add_argument("--nodeport-address", default="127.0.0.1", help="address NodePorts listen on (default 127.0.0.1)")
    p.add_argument("--kube-api-qps", type=float, default=20.0)
    p.add_argument("--kube-api-burst", type=int, default=40)
    p.add_argument("--log-level", default="INFO")


async def run(settings: ProxySettings) -> None:
    async with Client.from_kubeconfig(settings.kubeconfig, qps=settings.qps, burst=settings.burst,
                                      user_agent="kube-proxy/v1.33.0 (linux/amd64) pykube") as client:
        informers = InformerFactory(client)
        proxier = Proxier(informers, balance=settings.balance, node_address=settings.nodeport_address)
        async with asyncio.TaskGroup() as tg:
            tg.create_task(informers.run())
            tg.create_task(proxier.run())


async def main(args: argparse.Namespace) -> None:
    await run(ProxySettings(kubeconfig=args.kubeconfig, balance=args.balance, nodeport_address=args.nodeport_address,
                            qps=args.kube_api_qps, burst=args.kube_api_burst))
