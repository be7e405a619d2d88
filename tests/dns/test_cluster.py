"""Against an in-process API server: the addon's objects (kubeadm's), applied idempotently, and the
DNS server following Services and EndpointSlices through informers."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from pykube_server.client.config import ConfigError, in_cluster_config
from pykube_server.client.informer import InformerFactory
from pykube_server.client.rest import DEPLOYMENTS, ENDPOINTSLICES, SERVICES, Client
from pykube_server.cmd import addons
from pykube_server.dns import wire
from pykube_server.dns.cluster import ClusterZone
from pykube_server.dns.server import DNSServer, Resolver
from pykube_server.testing import local_cluster
from tests.dns.fixtures import endpoint, endpoint_slice
from tests.dns.test_server import query, udp


@pytest.fixture
async def client(tmp_path: Path) -> AsyncIterator[Client]:
    async with local_cluster(tmp_path, storage_url="memory://") as lc:
        async with Client.from_kubeconfig(lc.kubeconfig) as c:
            yield c


def test_dns_service_ip_is_the_tenth_address_and_components_select_the_addon() -> None:
    assert addons.dns_service_ip("127.96.0.0/16") == "127.96.0.10"
    assert addons.dns_service_ip("10.96.0.0/12") == "10.96.0.10"
    assert addons.addon_enabled("*", "dns") and addons.addon_enabled("kubelet,dns", "dns")
    assert not addons.addon_enabled("*,-dns", "dns") and not addons.addon_enabled("", "dns")
    assert not addons.addon_enabled("kubelet,proxy", "dns")


async def test_addon_creates_kubeadms_objects_once_and_follows_the_api_server(client: Client) -> None:
    await addons.apply_dns(client, service_ip="127.96.0.10", cluster_domain="cluster.local",
                           api_endpoint="https://127.0.0.1:1111")
    svc = await client.get(SERVICES, "kube-dns", namespace="kube-system")
    assert svc["spec"]["clusterIP"] == "127.96.0.10"
    assert svc["metadata"]["labels"] == {"k8s-app": "kube-dns", "kubernetes.io/cluster-service": "true",
                                         "kubernetes.io/name": "CoreDNS"}
    deploy = await client.get(DEPLOYMENTS, "coredns", namespace="kube-system")
    assert deploy["spec"]["replicas"] == 2 and deploy["spec"]["selector"] == {"matchLabels": {"k8s-app": "kube-dns"}}
    pod_spec = deploy["spec"]["template"]["spec"]
    assert pod_spec["priorityClassName"] == "system-cluster-critical" and pod_spec["dnsPolicy"] == "Default"
    assert pod_spec["containers"][0]["args"][-2:] == ["--endpoint", "https://127.0.0.1:1111"]
    await client.patch(DEPLOYMENTS, "coredns", {"spec": {"replicas": 1}}, namespace="kube-system")
    await addons.apply_dns(client, service_ip="127.96.0.10", cluster_domain="cluster.local",
                           api_endpoint="https://127.0.0.1:2222")
    again = await client.get(DEPLOYMENTS, "coredns", namespace="kube-system")
    assert again["spec"]["replicas"] == 1  # the user's change stays
    assert again["spec"]["template"]["spec"]["containers"][0]["args"][-1] == "https://127.0.0.1:2222"


async def test_server_follows_services_and_endpoint_slices(client: Client) -> None:
    await client.create(SERVICES, {"metadata": {"name": "web"}, "spec": {"ports": [{"name": "http", "port": 80}]}},
                        namespace="default")
    informers = InformerFactory(client)
    zone = ClusterZone(informers, "cluster.local")
    server = DNSServer(Resolver(lambda: zone.zone() if zone.synced() else None, []), "127.0.0.1", 0)
    await server.start()
    run = asyncio.create_task(informers.run())
    try:
        await asyncio.wait_for(zone.wait_synced(), 10)
        reply = await udp(server.port, query("web.default.svc.cluster.local"))
        web = await client.get(SERVICES, "web", namespace="default")
        assert [wire.parse_rdata(r) for r in reply.answers] == [web["spec"]["clusterIP"]]
        await client.create(SERVICES, {"metadata": {"name": "db"}, "spec": {"clusterIP": "None",
                                                                            "ports": [{"name": "pg", "port": 5432}]}},
                            namespace="default")
        await client.create(ENDPOINTSLICES, {"apiVersion": "discovery.k8s.io/v1", "kind": "EndpointSlice",
                                             **endpoint_slice("db", endpoints=[endpoint("127.244.1.9", hostname="db-0")],
                                                              ports=[{"name": "pg", "port": 5432, "protocol": "TCP"}])},
                            namespace="default")
        for _ in range(100):  # the watch delivers the new objects
            reply = await udp(server.port, query("db-0.db.default.svc.cluster.local"))
            if reply.answers:
                break
            await asyncio.sleep(0.05)
        assert [wire.parse_rdata(r) for r in reply.answers] == ["127.244.1.9"]
    finally:
        run.cancel()
        await asyncio.gather(run, return_exceptions=True)
        await server.aclose()


def test_in_cluster_config_reads_the_service_account_files(tmp_path: Path) -> None:
    (tmp_path / "token").write_text("tok\n")
    (tmp_path / "ca.crt").write_bytes(b"PEM")
    (tmp_path / "namespace").write_text("kube-system")
    env = {"KUBERNETES_SERVICE_HOST": "127.96.0.1", "KUBERNETES_SERVICE_PORT": "443"}
    config = in_cluster_config(sa_dir=tmp_path, env=env)
    assert (config.server, config.token, config.ca_data, config.namespace) == (
        "https://127.96.0.1:443", "tok", b"PEM", "kube-system")
    assert in_cluster_config(sa_dir=tmp_path, env={}, server="https://127.0.0.1:6443").server == "https://127.0.0.1:6443"
    with pytest.raises(ConfigError, match="KUBERNETES_SERVICE_HOST and KUBERNETES_SERVICE_PORT must be defined"):
        in_cluster_config(sa_dir=tmp_path, env={})
