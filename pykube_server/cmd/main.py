"""`pykube-server`: flags -> settings -> a component's run(); nothing else lives here.

`up` runs the whole cluster on this machine and writes the admin kubeconfig; one subcommand per
component lets each run as its own process (or on its own machine).
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import sys

from pykube_server.cmd import apiserver, controller_manager, kubelet, scheduler, up
from pykube_server.cmd import dns, proxy
from pykube_server.cmd import migrate
from pykube_server.cmd import token
from pykube_server.cmd import process


def parse_args(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="pykube-server", description="A Kubernetes control plane in Python.")
    sub = parser.add_subparsers(dest="command", required=True)
    cluster = sub.add_parser("up", help="run the whole cluster on this machine and write the admin kubeconfig")
    apiserver.add_server_flags(cluster)
    cluster.add_argument("--kubeconfig", default="kubeconfig/admin.yaml", help="where to write the admin kubeconfig")
    cluster.add_argument("--nodes", type=int, default=1, help="virtual nodes (default 1)")
    cluster.add_argument("--runtime", choices=("process", "simulated"), default="process",
                         help="how pods run: real local processes, or simulated (default process)")
    cluster.add_argument("--components", default="*",
                         help="components to run besides the API server: '*' or a comma list, '-name' to leave one out "
                              "('dns' is the CoreDNS addon)")
    cluster.add_argument("--cluster-domain", default="cluster.local", help="the cluster's DNS domain (default cluster.local)")
    cluster.add_argument("--pod-cidr", default="127.244.0.0/16",
                         help="pod IPs: node i gets the i-th /24 of this range (default 127.244.0.0/16)")
    cluster.add_argument("--load-balancer-ip-range", default="127.240.0.0/16",
                         help="LoadBalancer Services' ingress IPs (loopback; default 127.240.0.0/16)")
    api = sub.add_parser("apiserver", help="run the API server alone")
    apiserver.add_server_flags(api)
    api.add_argument("--kubeconfig", default="", help="also write an admin kubeconfig here")
    controller_manager.add_flags(sub.add_parser("controller-manager", help="run the controller manager"))
    scheduler.add_flags(sub.add_parser("scheduler", help="run the scheduler"))
    kubelet.add_flags(sub.add_parser("kubelet", help="run the kubelet of one or more virtual nodes"))
    proxy.add_flags(sub.add_parser("proxy", help="run kube-proxy: serve ClusterIPs and NodePorts on this machine"))
    dns.add_flags(sub.add_parser("dns", help="run the cluster DNS server (CoreDNS's kubernetes and forward plugins)"))
    migrate.add_flags(sub.add_parser("migrate", help="copy a stopped cluster's data to another store (e.g. SQLite to etcd)"))
    token.add_flags(sub.add_parser("token", help="bootstrap tokens for joining nodes (kubeadm token)"))
    return parser.parse_args(argv)


async def run(args: argparse.Namespace) -> None:
    if args.command == "up":
        await apiserver.serve(args, components=up.run_components(args))
    elif args.command == "apiserver":
        await apiserver.serve(args)
    elif args.command == "controller-manager":
        await controller_manager.main(args)
    elif args.command == "scheduler":
        await scheduler.main(args)
    elif args.command == "kubelet":
        await kubelet.main(args)
    elif args.command == "proxy":
        await proxy.main(args)
    elif args.command == "dns":
        await dns.main(args)
    elif args.command == "migrate":
        await migrate.main(args)
    elif args.command == "token":
        await token.main(args)


def main(argv: list[str] | None = None) -> None:
    args = parse_args(sys.argv[1:] if argv is None else argv)
    logging.basicConfig(level=getattr(logging, args.log_level.upper(), logging.INFO),
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    logging.getLogger("aiohttp.access").setLevel(logging.WARNING)
    serves_api = args.command in ("up", "apiserver")
    if serves_api:
        process.tune_server_gc()
    try:
        process.run(run(args), fast_loop=serves_api or args.command == "proxy")  # the proxy relays bytes all day
    except (KeyboardInterrupt, asyncio.CancelledError):
        pass


if __name__ == "__main__":
    main()
