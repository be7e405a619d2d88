"""Two API servers on one etcd hand out ClusterIPs and NodePorts without ever giving one value
to two Services: 60 NodePort Services created at once, half through each server, from small
ranges so the servers' picks collide; the claims in etcd (IPAddress objects, the
`/registry/ranges/servicenodeports` bitmap) settle every collision. Deleting releases, and a
restart of both servers keeps what is allocated."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from pykube_server.registry.rangealloc import NODE_PORTS_KEY, decode_range
from pykube_server.storage.etcd import EtcdBackend
from tests.e2e.apiservers import APIServerProcess, Client, admin_session, shared_pki, start_servers, stop_servers
from tests.storage.etcd_server import EtcdCluster

ADDRESSES = ["127.0.0.2", "127.0.0.3"]
RANGES = ("--service-cluster-ip-range", "127.96.0.0/26", "--service-node-port-range", "30000-30063")
"""Nearly full with 60 Services: the two servers' random picks are bound to collide."""
SERVICES = "/api/v1/namespaces/default/services"
IPADDRESSES = "/apis/networking.k8s.io/v1/ipaddresses"
COUNT = 60


@pytest.fixture
def etcd(tmp_path: Path) -> Iterator[EtcdCluster]:
    (tmp_path / "etcd").mkdir()
    cluster = EtcdCluster(tmp_path / "etcd").start()
    try:
        yield cluster
    finally:
        cluster.stop()


def _service(i: int) -> dict[str, Any]:
    return {"metadata": {"name": f"svc-{i:02d}"},
            "spec": {"type": "NodePort", "selector": {"app": "x"}, "ports": [{"port": 80}]}}


async def test_sixty_services_through_two_servers_get_distinct_values(tmp_path: Path, etcd: EtcdCluster) -> None:
    dirs = shared_pki(tmp_path, 2)
    storage = "etcd://" + ",".join(etcd.endpoints)
    servers: list[APIServerProcess] = start_servers(dirs, ADDRESSES, storage, *RANGES)
    try:
        async with admin_session(dirs[0] / "pki") as session:
            clients = [Client(session, s.url) for s in servers]
            made = await asyncio.gather(*(clients[i % 2].ok("POST", SERVICES, _service(i)) for i in range(COUNT)))
            assert all("clusterIP" in m["spec"] for m in made), [m["spec"] for m in made[:2]]
            ips = [m["spec"]["clusterIP"] for m in made]
            ports = [m["spec"]["ports"][0]["nodePort"] for m in made]
            assert len(set(ips)) == COUNT, sorted(ips)
            assert len(set(ports)) == COUNT, sorted(ports)
            assert "127.96.0.1" not in ips  # the `kubernetes` Service's
            # Each address is an IPAddress naming its Service, seen alike through both servers.
            for client in clients:
                listed = await client.ok("GET", IPADDRESSES)
                owners = {i["metadata"]["name"]: i["spec"]["parentRef"]["name"] for i in listed["items"]}
                assert owners == {**{m["spec"]["clusterIP"]: m["metadata"]["name"] for m in made},
                                  "127.96.0.1": "kubernetes"}
            # A value the other server gave away is refused when asked for.
            status, body = await clients[1].request("POST", SERVICES, {
                "metadata": {"name": "dup"}, "spec": {"type": "NodePort", "ports": [{"port": 80, "nodePort": ports[0]}]}})
            assert status == 422 and body["message"].endswith(
                f"spec.ports[0].nodePort: Invalid value: {ports[0]}: provided port is already allocated"), body

            # Deleting half (through the server that did not create them) releases their values.
            gone = made[:COUNT // 2]
            await asyncio.gather(*(clients[(i + 1) % 2].ok("DELETE", f"{SERVICES}/{m['metadata']['name']}")
                                   for i, m in enumerate(gone)))
            listed = await clients[0].ok("GET", IPADDRESSES)
            assert {i["metadata"]["name"] for i in listed["items"]} == {"127.96.0.1", *ips[COUNT // 2:]}
            reuse = await clients[0].ok("POST", SERVICES, {
                "metadata": {"name": "reuse"},
                "spec": {"type": "NodePort", "clusterIP": ips[0], "ports": [{"port": 80, "nodePort": ports[0]}]}})
            assert reuse["spec"]["clusterIP"] == ips[0]
        # The bitmap in etcd, as kube-apiserver keeps it, holds exactly the live NodePorts.
        backend = await EtcdBackend.open(etcd.endpoints)
        try:
            stored_range, bits = decode_range((await backend.get(NODE_PORTS_KEY)).value)
        finally:
            await backend.aclose()
        assert stored_range == "30000-30063"
        assert bits == sum(1 << (p - 30000) for p in {*ports[COUNT // 2:], ports[0]})

        # Both servers restart: what is allocated stays allocated.
        stop_servers(servers)
        servers = start_servers(dirs, ADDRESSES, storage, *RANGES)
        async with admin_session(dirs[0] / "pki") as session:
            clients = [Client(session, s.url) for s in servers]
            for client in clients:
                status, body = await client.request("POST", SERVICES, {
                    "metadata": {"name": "late"}, "spec": {"clusterIP": ips[-1], "ports": [{"port": 80}]}})
                assert status == 422 and body["message"].endswith(
                    f"failed to allocate IP {ips[-1]}: provided IP is already allocated"), body
            more = await asyncio.gather(*(clients[i % 2].ok("POST", SERVICES, _service(100 + i)) for i in range(20)))
            kept = set(ips[COUNT // 2:]) | {ips[0]}
            assert not kept & {m["spec"]["clusterIP"] for m in more}
            assert not (set(ports[COUNT // 2:]) | {ports[0]}) & {m["spec"]["ports"][0]["nodePort"] for m in more}
    finally:
        stop_servers(servers)
