"""`pykube-server kubelet`: flags to KubeletSettings to the kubelet's run().

SIGTERM is turned into cancellation so that a clean stop stops the containers it runs.
"""

from __future__ import annotations

import argparse
import asyncio
import signal

from pathlib import Path

from pykube_server.client.tlsbootstrap import bootstrap_kubeconfig
from pykube_server.kubelet.agent import KubeletSettings, run


def add_flags(p: argparse.ArgumentParser) -> None:
    p.add_argument("--kubeconfig", required=True,
                   help="credentials and server to talk to; with --token, where the bootstrapped ones are written")
    p.add_argument("--server", default="", help="API server URL to join (TLS bootstrap, with --token)")
    p.add_argument("--token", default="", help="a bootstrap token (`pykube-server token create`) to join with")
    p.add_argument("--discovery-token-ca-cert-hash", action="append", default=[],
                   help="sha256:<hex> pin of the cluster CA's public key (repeatable)")
    p.add_argument("--discovery-token-unsafe-skip-ca-verification", action="store_true",
                   help="join without pinning the CA (trusts whoever answers)")
    p.add_argument("--nodes", type=int, default=1, help="virtual nodes to run (default 1)")
    p.add_argument("--node-kubeconfig-dir", default="",
                   help="directory of <node name>.yaml kubeconfigs: each virtual node's own identity")
    p.add_argument("--node-name-prefix", default="pykube-node-", help="node i is named <prefix><i>")
    p.add_argument("--runtime", choices=("process", "simulated"), default="process",
                   help="how pods run: real local processes, or simulated (default process)")
    p.add_argument("--network-plugin", choices=("loopback",), default="loopback",
                   help="the pod network plugin (CNI seam): loopback hands out 127.244.<node>.x pod IPs")
    p.add_argument("--data-dir", default="data", help="runtime state, container logs, serving certificate")
    p.add_argument("--pod-cidr", default="127.244.0.0/16", help="node i gets the i-th /24 of this range")
    p.add_argument("--simulated-cpu", default="32")
    p.add_argument("--simulated-memory", default="256Gi")
    p.add_argument("--simulated-pods", type=int, default=110)
    p.add_argument("--simulated-start-delay", type=float, default=0.0, help="seconds before a simulated container runs")
    p.add_argument("--port", type=int, default=0, help="kubelet HTTPS port on 127.0.0.1 (default: any free port)")
    p.add_argument("--cluster-dns", default="127.96.0.10",
                   help="comma-separated DNS server IPs for ClusterFirst pods (default 127.96.0.10; empty: none)")
    p.add_argument("--cluster-domain", default="cluster.local", help="the cluster's DNS domain (default cluster.local)")
    p.add_argument("--kube-api-qps", type=float, default=50.0)
    p.add_argument("--kube-api-burst", type=int, default=100)
    p.add_argument("--log-level", default="INFO")


async def main(args: argparse.Namespace) -> None:
    if args.token and not Path(args.kubeconfig).exists():  # join: TLS bootstrap first, as `kubeadm join` does
        if not args.server or not (args.discovery_token_ca_cert_hash or args.discovery_token_unsafe_skip_ca_verification):
            raise SystemExit("error: joining needs --server and --discovery-token-ca-cert-hash "
                             "(or --discovery-token-unsafe-skip-ca-verification)")
        await bootstrap_kubeconfig(Path(args.kubeconfig), args.server, args.token, args.discovery_token_ca_cert_hash,
                                   f"{args.node_name_prefix}1",
                                   unsafe_skip_ca_verification=args.discovery_token_unsafe_skip_ca_verification)
    settings = KubeletSettings(
        kubeconfig=args.kubeconfig, data_dir=args.data_dir, nodes=args.nodes, node_name_prefix=args.node_name_prefix,
        runtime=args.runtime, pod_cidr_base=args.pod_cidr, simulated_cpu=args.simulated_cpu,
        simulated_memory=args.simulated_memory, simulated_pods=args.simulated_pods,
        simulated_start_delay_seconds=args.simulated_start_delay, port=args.port, qps=args.kube_api_qps,
        burst=args.kube_api_burst, node_kubeconfig_dir=args.node_kubeconfig_dir, cluster_dns=tuple(ip.strip() for ip in args.cluster_dns.split(",") if ip.strip()),
        cluster_domain=args.cluster_domain.strip("."), network_plugin=args.network_plugin)
    task = asyncio.current_task()
    assert task is not None
    loop = asyncio.get_running_loop()
    loop.add_signal_handler(signal.SIGTERM, task.cancel)
    try:
        await run(settings)
    except asyncio.CancelledError:
        pass
