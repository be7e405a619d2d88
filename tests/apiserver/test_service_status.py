"""Service status as kube-apiserver 1.33 shows it: `status.loadBalancer` is a value struct, so
every Service has `status: {loadBalancer: {}}` (a ClusterIP one too), and an ingress entry with
an `ip` gets `ipMode: VIP` by default (LoadBalancerIPMode, GA in 1.32)."""

from __future__ import annotations

import orjson

from pykube_server.registry.defaults import default_object
from tests.conftest import ServerProcess, requires_kubectl


def test_defaults() -> None:
    service: dict = {"spec": {"ports": [{"port": 80}]}}
    default_object("", "v1", "Service", service)
    assert service["status"] == {"loadBalancer": {}}
    service = {"spec": {}, "status": {"loadBalancer": {"ingress": [
        {"ip": "127.0.0.5"}, {"hostname": "lb.example.com"}, {"ip": "127.0.0.6", "ipMode": "Proxy"}]}}}
    default_object("", "v1", "Service", service)
    assert service["status"]["loadBalancer"]["ingress"] == [
        {"ip": "127.0.0.5", "ipMode": "VIP"}, {"hostname": "lb.example.com"}, {"ip": "127.0.0.6", "ipMode": "Proxy"}]


@requires_kubectl
def test_kubectl_sees_the_load_balancer_status(api_cluster: ServerProcess, api_namespace: str) -> None:
    api_cluster.kubectl("create", "service", "clusterip", "web", "--tcp=80:8080", "-n", api_namespace)
    service = orjson.loads(api_cluster.kubectl("get", "svc", "web", "-n", api_namespace, "-o", "json").stdout)
    assert service["status"] == {"loadBalancer": {}}
    listed = orjson.loads(api_cluster.kubectl("get", "svc", "-n", api_namespace, "-o", "json").stdout)
    assert [s["status"] for s in listed["items"]] == [{"loadBalancer": {}}]

    api_cluster.kubectl("create", "service", "loadbalancer", "lb", "--tcp=80:8080", "-n", api_namespace)
    api_cluster.kubectl("patch", "svc", "lb", "-n", api_namespace, "--subresource=status", "--type=merge",
                        "-p", '{"status": {"loadBalancer": {"ingress": [{"ip": "127.0.0.9"}]}}}')
    service = orjson.loads(api_cluster.kubectl("get", "svc", "lb", "-n", api_namespace, "-o", "json").stdout)
    assert service["status"] == {"loadBalancer": {"ingress": [{"ip": "127.0.0.9", "ipMode": "VIP"}]}}
