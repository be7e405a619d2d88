"""The lease endpoint reconciler in process: one server's `kubernetes` endpoints are exactly its
own address (as before several servers existed), other servers' master leases add addresses
until they stop being renewed for the TTL, a lease left long ago is dead on first sight, and
expired identity Leases are garbage-collected."""

from __future__ import annotations

import asyncio
import re
import socket
import time
from pathlib import Path

from pykube_server.apiserver.endpointreconciler import (
    IDENTITY_LABEL,
    MASTER_LEASES_PREFIX,
    EndpointReconciler,
    apiserver_id,
    master_lease_value,
    microtime,
    server_identity,
)
from pykube_server.testing import local_cluster


async def _ips(server) -> tuple[list[str], list[str]]:  # type: ignore[no-untyped-def]
    ep = (await server.store_for("", "v1", "endpoints").get("default", "kubernetes")).decode()
    sl = (await server.store_for("discovery.k8s.io", "v1", "endpointslices").get("default", "kubernetes")).decode()
    return ([a["ip"] for s in ep["subsets"] for a in s["addresses"]],
            [addr for e in sl["endpoints"] for addr in e["addresses"]])


def test_apiserver_id_is_kubes_shape() -> None:
    name = apiserver_id("master-1")
    assert re.fullmatch(r"apiserver-[a-z2-7]{26}", name)
    assert name == apiserver_id("master-1") != apiserver_id("master-2")
    assert server_identity("h", "10.0.0.5") == "h" and server_identity("h", "127.0.0.1") == "h"
    assert server_identity("h", "127.0.0.3") == "h-127.0.0.3"


async def test_single_server_lists_itself_and_keeps_an_identity_lease(tmp_path: Path) -> None:
    async with local_cluster(tmp_path) as lc:
        server = lc.server
        ep = (await server.store_for("", "v1", "endpoints").get("default", "kubernetes")).decode()
        assert ep["subsets"] == [{"addresses": [{"ip": "127.0.0.1"}],
                                  "ports": [{"name": "https", "port": 6443, "protocol": "TCP"}]}]
        assert ep["metadata"]["labels"] == {"endpointslice.kubernetes.io/skip-mirror": "true"}
        sl = (await server.store_for("discovery.k8s.io", "v1", "endpointslices").get("default", "kubernetes")).decode()
        assert sl["endpoints"] == [{"addresses": ["127.0.0.1"], "conditions": {"ready": True}}]
        assert sl["addressType"] == "IPv4"
        lease = (await server.store_for("coordination.k8s.io", "v1", "leases").get(
            "kube-system", apiserver_id(socket.gethostname()))).decode()
        assert lease["metadata"]["labels"] == {IDENTITY_LABEL: "kube-apiserver",
                                               "kubernetes.io/hostname": socket.gethostname()}
        assert lease["spec"]["leaseDurationSeconds"] == 3600
        assert lease["spec"]["holderIdentity"].startswith(lease["metadata"]["name"] + "_")
        assert (await server.backend.get(MASTER_LEASES_PREFIX + "127.0.0.1")).value


async def test_other_servers_come_and_go_with_their_leases(tmp_path: Path) -> None:
    async with local_cluster(tmp_path) as lc:
        server = lc.server
        me = EndpointReconciler(server, "127.0.0.1", 6443, ttl=0.6)
        other = EndpointReconciler(server, "127.0.0.9", 6443, ttl=0.6)
        await other.reconcile()
        await me.reconcile()
        assert await _ips(server) == (["127.0.0.1", "127.0.0.9"], ["127.0.0.1", "127.0.0.9"])
        await asyncio.sleep(0.3)
        await me.reconcile()  # the other is still within its TTL
        assert (await _ips(server))[0] == ["127.0.0.1", "127.0.0.9"]
        await asyncio.sleep(0.5)
        await me.reconcile()  # 0.8 s since the other renewed: dead, and its lease key deleted
        assert await _ips(server) == (["127.0.0.1"], ["127.0.0.1"])
        assert not (await server.backend.scan(MASTER_LEASES_PREFIX + "127.0.0.9")).items


async def test_a_lease_left_long_ago_is_dead_on_first_sight(tmp_path: Path) -> None:
    async with local_cluster(tmp_path) as lc:
        server = lc.server
        await server.backend.create(MASTER_LEASES_PREFIX + "127.0.0.8",
                                    master_lease_value("127.0.0.8", time.time() - 3600))
        fresh = EndpointReconciler(server, "127.0.0.1", 6443)
        await fresh.reconcile()
        assert await _ips(server) == (["127.0.0.1"], ["127.0.0.1"])


async def test_expired_identity_leases_are_collected(tmp_path: Path) -> None:
    async with local_cluster(tmp_path) as lc:
        leases = lc.server.store_for("coordination.k8s.io", "v1", "leases")
        for name, renewed in (("apiserver-old", time.time() - 7200), ("apiserver-live", time.time() - 60)):
            await leases.create("kube-system", {
                "apiVersion": "coordination.k8s.io/v1", "kind": "Lease",
                "metadata": {"name": name, "labels": {IDENTITY_LABEL: "kube-apiserver"}},
                "spec": {"holderIdentity": name + "_x", "leaseDurationSeconds": 3600,
                         "renewTime": microtime(renewed)}})
        await EndpointReconciler(lc.server, "127.0.0.1", 6443).collect_identity_leases()
        names = {o.name for o in (await leases.list("kube-system")).items}
        assert "apiserver-live" in names and "apiserver-old" not in names
        assert apiserver_id(socket.gethostname()) in names
