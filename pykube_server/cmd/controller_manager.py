"""`pykube-server controller-manager`: flags to ManagerSettings to the manager's run()."""

from __future__ import annotations

import argparse

from pykube_server.api.duration import parse_go_duration
from pykube_server.controllers.manager import ManagerSettings, run


def go_duration(text: str) -> float:
    """Seconds in a Go duration flag value (`40s`, `5m0s`, `1h`, `500ms`; a bare number is seconds)."""
    seconds = parse_go_duration(text)
    if seconds is None:
        try:
            return float(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"invalid duration {text!r}") from None
    return seconds


def add_flags(p: argparse.ArgumentParser) -> None:
    p.add_argument("--kubeconfig", required=True, help="credentials and server to talk to")
    p.add_argument("--controllers", default="*",
                   help="controllers to run: '*' for all on by default, 'foo' to enable, '-foo' to disable")
    p.add_argument("--leader-elect", default="true", choices=("true", "false"),
                   help="hold the kube-system/kube-controller-manager Lease while running (default true)")
    p.add_argument("--service-account-private-key-file", default="",
                   help="PEM private key that signs legacy service account token Secrets (their controller "
                        "runs only with it)")
    p.add_argument("--node-monitor-period", type=go_duration, default=5.0,
                   help="how often the node lifecycle controller looks at nodes (default 5s)")
    p.add_argument("--node-monitor-grace-period", type=go_duration, default=50.0,
                   help="how long a node may go without a heartbeat before it is Unknown (default 50s)")
    p.add_argument("--node-startup-grace-period", type=go_duration, default=60.0,
                   help="how long a new node may go without posting status (default 1m0s)")
    p.add_argument("--terminated-pod-gc-threshold", type=int, default=12500,
                   help="terminated pods kept before the pod GC deletes the oldest (0 disables; default 12500)")
    p.add_argument("--resource-quota-sync-period", type=go_duration, default=300.0,
                   help="how often every quota's usage is recomputed (default 5m0s)")
    p.add_argument("--local-path-dir", default="",
                   help="directory under which the local-path provisioner makes dynamically provisioned "
                        "volumes (default .pykube/local-path)")
    p.add_argument("--cluster-signing-cert-file", default="",
                   help="PEM CA certificate the CSR signing controller issues certificates with")
    p.add_argument("--cluster-signing-key-file", default="", help="the PEM private key of that CA")
    p.add_argument("--cluster-signing-duration", type=go_duration, default=365 * 24 * 3600.0,
                   help="lifetime of signed certificates when a CSR does not ask (default 8760h0m0s)")
    p.add_argument("--horizontal-pod-autoscaler-sync-period", type=go_duration, default=15.0,
                   help="how often every HorizontalPodAutoscaler is reconciled (default 15s)")
    p.add_argument("--horizontal-pod-autoscaler-tolerance", type=float, default=0.1,
                   help="the usage ratio's distance from 1.0 within which the HPA does not scale (default 0.1)")
    p.add_argument("--horizontal-pod-autoscaler-downscale-stabilization", type=go_duration, default=300.0,
                   help="how far back the HPA looks for a higher recommendation before scaling down (default 5m0s)")
    p.add_argument("--load-balancer-ip-range", default="127.240.0.0/16",
                   help="loopback CIDR the service-lb-controller gives LoadBalancer Services their ingress IPs "
                        "from (pykube's stand-in for a cloud; default 127.240.0.0/16)")
    p.add_argument("--kube-api-qps", type=float, default=50.0)
    p.add_argument("--kube-api-burst", type=int, default=100)
    p.add_argument("--log-level", default="INFO")


async def main(args: argparse.Namespace) -> None:
    await run(ManagerSettings(kubeconfig=args.kubeconfig, controllers=args.controllers,
                              leader_elect=args.leader_elect == "true", qps=args.kube_api_qps,
                              burst=args.kube_api_burst,
                              options={"service_account_private_key_file": args.service_account_private_key_file,
                                       "node_monitor_period_seconds": args.node_monitor_period,
                                       "node_monitor_grace_period_seconds": args.node_monitor_grace_period,
                                       "node_startup_grace_period_seconds": args.node_startup_grace_period,
                                       "terminated_pod_gc_threshold": args.terminated_pod_gc_threshold,
                                       "resource_quota_sync_period_seconds": args.resource_quota_sync_period,
                                       "local_path_dir": args.local_path_dir,
                                       "load_balancer_ip_range": args.load_balancer_ip_range,
                                       "cluster_signing_cert_file": args.cluster_signing_cert_file,
                                       "cluster_signing_key_file": args.cluster_signing_key_file,
                                       "cluster_signing_duration_seconds": args.cluster_signing_duration,
                                       "horizontal_pod_autoscaler_sync_period_seconds":
                                           args.horizontal_pod_autoscaler_sync_period,
                                       "horizontal_pod_autoscaler_tolerance": args.horizontal_pod_autoscaler_tolerance,
                                       "horizontal_pod_autoscaler_downscale_stabilization_seconds":
                                           args.horizontal_pod_autoscaler_downscale_stabilization}))
