"""`pykube-server controller-manager`: flags to ManagerSettings to the manager's run()."""

from __future__ import annotations

import argparse

from pykube_server.controllers.manager import ManagerSettings, run


def add_flags(p: argparse.ArgumentParser) -> None:
    p.add_argument("--kubeconfig", required=True, help="credentials and server to talk to")
    p.add_argument("--controllers", default="*",
                   help="controllers to run: '*' for all on by default, 'foo' to enable, '-foo' to disable")
    p.add_argument("--leader-elect", default="true", choices=("true", "false"),
                   help="hold the kube-system/kube-controller-manager Lease while running (default true)")
    p.add_argument("--kube-api-qps", type=float, default=50.0)
    p.add_argument("--kube-api-burst", type=int, default=100)
    p.add_argument("--log-level", default="INFO")


async def main(args: argparse.Namespace) -> None:
    await run(ManagerSettings(kubeconfig=args.kubeconfig, controllers=args.controllers,
                              leader_elect=args.leader_elect == "true", qps=args.kube_api_qps,
                              burst=args.kube_api_burst))
