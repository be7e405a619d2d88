"""service-lb-controller: LoadBalancer Services get ingress IPs from a loopback pool.

Facts from kube's cloud-provider service controller recorded here: only `type: LoadBalancer`
Services without `spec.loadBalancerClass` are handled; the finalizer
`service.kubernetes.io/load-balancer-cleanup` is added before the load balancer is ensured and
removed once it is deleted (Service deleted, or its type changed); the status is
`loadBalancer.ingress: [{ip, ipMode: VIP}]` and `loadBalancer: {}` after cleanup; events
EnsuringLoadBalancer "Ensuring load balancer", EnsuredLoadBalancer "Ensured load balancer",
DeletingLoadBalancer "Deleting load balancer", DeletedLoadBalancer "Deleted load balancer",
`Type` "LoadBalancer -> ClusterIP", and Warning SyncLoadBalancerFailed "Error syncing load
balancer: ..." on a failure, all with the source component `service-controller`.
"""

from __future__ import annotations

from typing import Any

import pytest

from pykube_server.api import errors
from pykube_server.client.rest import EVENTS, SERVICES, Client
from pykube_server.controllers.servicelb import FINALIZER, IPPool, PoolExhausted, needs_update
from pykube_server.testing import LocalCluster
from tests.controllers import controllers_running, eventually

NS = "default"
POOL = "127.243.0.0/29"
Obj = dict[str, Any]


def running(cluster: LocalCluster):  # type: ignore[no-untyped-def]
    return controllers_running(cluster, ["service-lb-controller"], load_balancer_ip_range=POOL)


async def make_service(client: Client, name: str, **spec: Any) -> Obj:
    body = {"metadata": {"name": name},
            "spec": {"type": "LoadBalancer", "ports": [{"port": 80, "targetPort": 8080}], **spec}}
    return await client.create(SERVICES, body, namespace=NS)


async def ingress_of(client: Client, name: str) -> list[Obj]:
    svc = await client.get(SERVICES, name, namespace=NS)
    return ((svc.get("status") or {}).get("loadBalancer") or {}).get("ingress") or []


async def wait_ip(client: Client, name: str) -> str:
    async def check() -> str:
        ingress = await ingress_of(client, name)
        return ingress[0]["ip"] if ingress else ""
    return await eventually(check)


async def reasons(client: Client, name: str) -> list[tuple[str, str, str]]:
    items = (await client.list(EVENTS, namespace=NS, field_selector=f"involvedObject.name={name}"))["items"]
    items.sort(key=lambda e: (e.get("firstTimestamp") or "", e["metadata"]["name"]))
    assert all(e["source"]["component"] == "service-controller" for e in items)
    return [(e["type"], e["reason"], e["message"]) for e in items]


def test_pool_hands_out_lowest_free_host_addresses() -> None:
    pool = IPPool("127.243.0.0/30")  # two host addresses
    assert pool.allocate("ns/a") == "127.243.0.1"
    assert pool.allocate("ns/a") == "127.243.0.1"  # idempotent
    assert pool.allocate("ns/b") == "127.243.0.2"
    with pytest.raises(PoolExhausted):
        pool.allocate("ns/c")
    assert not pool.contains("127.243.0.0") and not pool.contains("127.243.0.3") and not pool.contains("10.0.0.1")
    assert not pool.claim("ns/c", "127.243.0.2")  # someone else's
    assert pool.release("ns/a") == "127.243.0.1"
    assert pool.allocate("ns/c") == "127.243.0.1"


def test_needs_update_ignores_status_writes() -> None:
    svc = {"metadata": {"uid": "u"}, "spec": {"type": "LoadBalancer", "ports": [{"port": 80}]}}
    assert not needs_update(svc, {**svc, "status": {"loadBalancer": {"ingress": [{"ip": "127.243.0.1"}]}}})
    assert needs_update(svc, {**svc, "spec": {**svc["spec"], "externalTrafficPolicy": "Local"}})
    assert needs_update(svc, {**svc, "spec": {**svc["spec"], "type": "ClusterIP"}})
    plain = {"metadata": {}, "spec": {"type": "ClusterIP"}}
    assert not needs_update(plain, {**plain, "spec": {"type": "NodePort"}})


async def test_ingress_ip_finalizer_and_events(cluster: LocalCluster) -> None:
    async with running(cluster) as client:
        await make_service(client, "web")
        assert await wait_ip(client, "web") == "127.243.0.1"
        svc = await client.get(SERVICES, "web", namespace=NS)
        assert svc["status"]["loadBalancer"] == {"ingress": [{"ip": "127.243.0.1", "ipMode": "VIP"}]}
        assert FINALIZER in svc["metadata"]["finalizers"]
        assert await eventually(lambda: _has(client, "web", ("Normal", "EnsuredLoadBalancer", "Ensured load balancer")))
        assert ("Normal", "EnsuringLoadBalancer", "Ensuring load balancer") in await reasons(client, "web")
        await make_service(client, "second")
        assert await wait_ip(client, "second") == "127.243.0.2"


async def _has(client: Client, name: str, event: tuple[str, str, str]) -> bool:
    return event in await reasons(client, name)


async def test_requested_ip_in_pool_is_honoured_outside_refused(cluster: LocalCluster) -> None:
    async with running(cluster) as client:
        await make_service(client, "asked", loadBalancerIP="127.243.0.5")
        assert await wait_ip(client, "asked") == "127.243.0.5"
        await make_service(client, "outside", loadBalancerIP="127.9.9.9")
        message = ("Error syncing load balancer: failed to ensure load balancer: requested load balancer IP "
                   f"127.9.9.9 is not in the load balancer range {POOL}")
        assert await eventually(lambda: _has(client, "outside", ("Warning", "SyncLoadBalancerFailed", message)))
        assert await ingress_of(client, "outside") == []
        await make_service(client, "taken", loadBalancerIP="127.243.0.5")
        await eventually(lambda: _has(client, "taken", (
            "Warning", "SyncLoadBalancerFailed",
            "Error syncing load balancer: failed to ensure load balancer: requested load balancer IP 127.243.0.5 "
            "is already in use")))


async def test_service_with_a_class_is_not_ours(cluster: LocalCluster) -> None:
    async with running(cluster) as client:
        await make_service(client, "classy", loadBalancerClass="example.com/other")
        await make_service(client, "mine")
        await wait_ip(client, "mine")  # the controller is running and has seen both
        svc = await client.get(SERVICES, "classy", namespace=NS)
        assert FINALIZER not in (svc["metadata"].get("finalizers") or [])
        assert (svc.get("status") or {}).get("loadBalancer", {}) == {}
        assert await reasons(client, "classy") == []


async def test_type_change_and_delete_release_the_address(cluster: LocalCluster) -> None:
    async with running(cluster) as client:
        await make_service(client, "web")
        assert await wait_ip(client, "web") == "127.243.0.1"
        await client.patch(SERVICES, "web", {"spec": {"type": "ClusterIP"}}, namespace=NS)

        async def cleaned() -> bool:
            svc = await client.get(SERVICES, "web", namespace=NS)
            return svc["status"]["loadBalancer"] == {} and FINALIZER not in (svc["metadata"].get("finalizers") or [])
        await eventually(cleaned)
        for event in [("Normal", "Type", "LoadBalancer -> ClusterIP"),
                      ("Normal", "DeletingLoadBalancer", "Deleting load balancer"),
                      ("Normal", "DeletedLoadBalancer", "Deleted load balancer")]:
            await eventually(lambda: _has(client, "web", event))
        await make_service(client, "next")
        assert await wait_ip(client, "next") == "127.243.0.1"  # released, so handed out again

        await client.delete(SERVICES, "next", namespace=NS)

        async def gone() -> bool:
            try:
                await client.get(SERVICES, "next", namespace=NS)
            except errors.NotFound:
                return True
            return False
        await eventually(gone)  # the finalizer was taken off
        await make_service(client, "after")
        assert await wait_ip(client, "after") == "127.243.0.1"


async def test_addresses_survive_a_controller_restart(cluster: LocalCluster) -> None:
    async with running(cluster) as client:
        await make_service(client, "a")
        await wait_ip(client, "a")
        await make_service(client, "b")
        assert await wait_ip(client, "b") == "127.243.0.2"
        await client.delete(SERVICES, "a", namespace=NS)
    async with running(cluster) as client:
        await make_service(client, "c")
        ip_c = await wait_ip(client, "c")
        assert ip_c != "127.243.0.2"
        assert (await ingress_of(client, "b"))[0]["ip"] == "127.243.0.2"
