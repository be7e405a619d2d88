"""What `up` tells the proxy and the controller manager: the proxy serves every virtual node
of this machine (their endpoints are its local ones), and the load-balancer range passes
through to the service-lb-controller."""

from __future__ import annotations

from pykube_server.cmd.main import parse_args
from pykube_server.cmd.up import components_for


def _extra(argv: list[str], component: str) -> list[str]:
    return next(extra for c, extra in components_for(parse_args(argv)) if c.name == component)


def test_up_names_every_node_to_the_proxy_and_passes_the_pool() -> None:
    proxy = _extra(["up", "--nodes", "3", "--load-balancer-ip-range", "127.239.0.0/24"], "proxy")
    assert proxy[proxy.index("--hostname-override") + 1] == "pykube-node-1,pykube-node-2,pykube-node-3"
    manager = _extra(["up", "--load-balancer-ip-range", "127.239.0.0/24"], "controller-manager")
    assert manager[manager.index("--load-balancer-ip-range") + 1] == "127.239.0.0/24"
    assert "127.240.0.0/16" in _extra(["up"], "controller-manager")


def test_proxy_flag_parses_a_node_list() -> None:
    args = parse_args(["proxy", "--kubeconfig", "k", "--hostname-override", "a, b"])
    assert args.hostname_override == "a, b"
    manager = parse_args(["controller-manager", "--kubeconfig", "k", "--load-balancer-ip-range", "127.239.0.0/24"])
    assert manager.load_balancer_ip_range == "127.239.0.0/24"
