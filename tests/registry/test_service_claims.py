"""ClusterIPs and NodePorts claimed in storage, so several API servers on one store never hand
out one value twice.

Facts from kube-apiserver 1.33 recorded here: ClusterIPs are IPAddress objects
(networking.k8s.io/v1, MultiCIDRServiceAllocator GA and locked on), named by the address,
labelled `ipaddress.kubernetes.io/ip-family` and `ipaddress.kubernetes.io/managed-by:
ipallocator.k8s.io`, `spec.parentRef` = {group "", resource services, namespace, name}, deleted
with their Service; NodePorts are the RangeAllocation bitmap at
`/registry/ranges/servicenodeports` (`range` "30000-32767", `data` the big-endian bytes of the
bitmap, bit i = port low+i, base64 in JSON), changed by compare-and-swap.
"""

from __future__ import annotations

import asyncio
import base64
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import orjson
import pytest

from pykube_server.api import errors
from pykube_server.client.rest import SERVICES, Client, Resource
from pykube_server.registry.ipallocator import IPRange
from pykube_server.registry.portallocator import PortRange
from pykube_server.registry.rangealloc import NODE_PORTS_KEY, StoredBitmap, decode_range, encode_range
from pykube_server.registry.serviceclaims import ServiceClaims
from pykube_server.registry.servicealloc import ServiceAllocator
from pykube_server.storage.backend import Backend
from pykube_server.storage.memory import MemoryBackend
from pykube_server.storage.sqlite import SQLiteBackend
from pykube_server.testing import local_cluster

IP_ROOT = "/registry/ipaddresses"


@pytest.fixture(params=["memory", "sqlite"])
async def backend(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Backend]:
    store: Backend = MemoryBackend() if request.param == "memory" else await SQLiteBackend.open(tmp_path / "db")
    try:
        yield store
    finally:
        await store.aclose()


def test_range_allocation_is_stored_as_kube_apiserver_writes_it() -> None:
    value = orjson.loads(encode_range("30000-32767", 1 << 9 | 1))  # ports 30000 and 30009
    assert value == {"kind": "RangeAllocation", "apiVersion": "v1",
                     "metadata": {"name": "", "creationTimestamp": None},
                     "range": "30000-32767", "data": base64.b64encode(b"\x02\x01").decode()}
    assert decode_range(encode_range("30000-32767", 1 << 9 | 1)) == ("30000-32767", 513)
    assert orjson.loads(encode_range("30000-32767", 0))["data"] == ""


async def test_bitmap_compare_and_swap_between_two_writers(backend: Backend) -> None:
    """Two servers' bitmaps over one key each take the lowest free bit 100 times at once: the
    compare-and-swap makes every bit go to exactly one of them."""
    one, two = (StoredBitmap(backend, NODE_PORTS_KEY, "30000-32767", 2768) for _ in range(2))
    taken: list[int] = []

    async def take_lowest(bitmap: StoredBitmap) -> None:
        got: list[int] = []

        def change(bits: int) -> int:
            free = (~bits & (bits + 1)).bit_length() - 1
            got[:] = [free]
            return bits | 1 << free

        await bitmap.modify(change)
        taken.extend(got)

    await asyncio.gather(*(take_lowest(one if i % 2 else two) for i in range(100)))
    assert sorted(taken) == list(range(100))
    assert await one.read() == await two.read() == (1 << 100) - 1
    kv = await backend.get(NODE_PORTS_KEY)
    assert decode_range(kv.value) == ("30000-32767", (1 << 100) - 1)
    await one.modify(lambda bits: bits & ~1)
    assert await two.read() == (1 << 100) - 2


def _allocator() -> ServiceAllocator:
    return ServiceAllocator(IPRange("10.0.0.0/24"), PortRange("30000-30049"))


def _service(name: str, **spec: Any) -> dict[str, Any]:
    return {"metadata": {"namespace": "ns", "name": name},
            "spec": {"type": "NodePort", "ports": [{"port": 80}], **spec}}


async def test_two_servers_claims_never_collide(backend: Backend) -> None:
    """Two allocators that cannot see each other's Services (each its own memory) pick from the
    same small ranges; the storage claims swap every collision for a free value."""
    servers = [ServiceClaims(backend, _allocator(), IP_ROOT) for _ in range(2)]

    async def make(i: int) -> dict[str, Any]:
        claims = servers[i % 2]
        obj = _service(f"s{i}")
        claims.allocator.allocate(obj)
        await claims.claim(obj, None)
        return obj

    made = await asyncio.gather(*(make(i) for i in range(40)))
    ips = [m["spec"]["clusterIP"] for m in made]
    ports = [m["spec"]["ports"][0]["nodePort"] for m in made]
    assert len(set(ips)) == 40 and len(set(ports)) == 40
    assert sorted(ips) == sorted(m["spec"]["clusterIPs"][0] for m in made)
    for m in made:
        kv = await backend.get(f"{IP_ROOT}/{m['spec']['clusterIP']}")
        stored = orjson.loads(kv.value)
        assert stored["kind"] == "IPAddress" and stored["metadata"]["name"] == m["spec"]["clusterIP"]
        assert stored["metadata"]["labels"] == {"ipaddress.kubernetes.io/ip-family": "IPv4",
                                                "ipaddress.kubernetes.io/managed-by": "ipallocator.k8s.io"}
        assert stored["spec"]["parentRef"] == {"group": "", "resource": "services", "namespace": "ns",
                                               "name": m["metadata"]["name"]}
    _, bits = decode_range((await backend.get(NODE_PORTS_KEY)).value)
    assert bits == sum(1 << (p - 30000) for p in ports)

    # A value asked for that the other server already gave away is refused, not swapped.
    # (Server 1 may already know from a swap of its own; either way the answer is the same.)
    other = _service("late", clusterIP=ips[0], clusterIPs=[ips[0]])
    with pytest.raises(errors.Invalid) as info:
        servers[1].allocator.allocate(other)
        await servers[1].claim(other, None)
    assert info.value.message.endswith(f"failed to allocate IP {ips[0]}: provided IP is already allocated")
    late = _service("late2", ports=[{"port": 80, "nodePort": ports[0]}])
    with pytest.raises(errors.Invalid) as info:
        servers[1].allocator.allocate(late)
        await servers[1].claim(late, None)
    assert info.value.message == (f'Service "late2" is invalid: spec.ports[0].nodePort: Invalid value: {ports[0]}: '
                                  "provided port is already allocated")
    # Nothing of the refused claims stays taken.
    _, after = decode_range((await backend.get(NODE_PORTS_KEY)).value)
    assert after == bits

    # Releasing a deleted Service's values frees them for anyone.
    await servers[0].release(made[0], None)
    assert (await backend.scan(f"{IP_ROOT}/{ips[0]}")).items == []
    _, after = decode_range((await backend.get(NODE_PORTS_KEY)).value)
    assert after == bits & ~(1 << (ports[0] - 30000))


# -- through the API --------------------------------------------------------------------------
async def test_services_own_ip_addresses_and_bitmap_bits(tmp_path: Path) -> None:
    async with local_cluster(tmp_path, storage_url="memory://") as lc, Client.from_kubeconfig(lc.kubeconfig) as client:
        ipaddresses = Resource("networking.k8s.io", "v1", "ipaddresses", namespaced=False)
        svc = await client.create(SERVICES, {"metadata": {"name": "web"},
                                             "spec": {"type": "NodePort", "ports": [{"port": 80}]}}, namespace="default")
        ip, port = svc["spec"]["clusterIP"], svc["spec"]["ports"][0]["nodePort"]
        address = await client.get(ipaddresses, ip)
        assert address["spec"]["parentRef"] == {"group": "", "resource": "services", "namespace": "default", "name": "web"}
        assert address["metadata"]["labels"]["ipaddress.kubernetes.io/managed-by"] == "ipallocator.k8s.io"
        kubernetes_ip = await client.get(ipaddresses, "127.96.0.1")
        assert kubernetes_ip["spec"]["parentRef"]["name"] == "kubernetes"
        backend = lc.server.backend
        _, bits = decode_range((await backend.get(NODE_PORTS_KEY)).value)
        assert bits >> (port - 30000) & 1

        # A refused create gives back what it claimed: here the storage write itself fails
        # (the name exists) after the new address and port were claimed.
        again = {"metadata": {"name": "web"}, "spec": {"type": "NodePort", "clusterIP": "127.96.9.9",
                                                       "ports": [{"port": 80, "nodePort": 31999}]}}
        with pytest.raises(errors.AlreadyExists):
            await client.create(SERVICES, again, namespace="default")
        with pytest.raises(errors.NotFound):
            await client.get(ipaddresses, "127.96.9.9")
        _, bits = decode_range((await backend.get(NODE_PORTS_KEY)).value)
        assert not bits >> (31999 - 30000) & 1 and bits >> (port - 30000) & 1
        assert (await client.get(ipaddresses, ip))["spec"]["parentRef"]["name"] == "web"

        # NodePort -> ClusterIP frees the port at once; deleting frees the IPAddress.
        svc["spec"]["type"] = "ClusterIP"
        await client.update(SERVICES, svc)
        _, bits = decode_range((await backend.get(NODE_PORTS_KEY)).value)
        assert not bits >> (port - 30000) & 1
        await client.delete(SERVICES, "web", namespace="default")
        with pytest.raises(errors.NotFound):
            await client.get(ipaddresses, ip)


async def test_repair_fills_gaps_and_removes_leaks_after_grace(tmp_path: Path) -> None:
    async with local_cluster(tmp_path, storage_url="memory://") as lc, Client.from_kubeconfig(lc.kubeconfig) as client:
        server = lc.server
        repair = server.allocation_repair
        ipaddresses = Resource("networking.k8s.io", "v1", "ipaddresses", namespaced=False)
        svc = await client.create(SERVICES, {"metadata": {"name": "gap"},
                                             "spec": {"type": "NodePort", "ports": [{"port": 80}]}}, namespace="default")
        ip, port = svc["spec"]["clusterIP"], svc["spec"]["ports"][0]["nodePort"]
        # A gap: the Service's IPAddress and bit are gone (as if written before they were kept).
        await server.backend.delete(f"{IP_ROOT}/{ip}")
        await server.service_claims.node_ports.modify(lambda bits: bits & ~(1 << (port - 30000)))
        # A leak: an IPAddress and a bit whose Service does not exist (a server died mid-create).
        leaked = ServiceClaims(server.backend, _allocator(), IP_ROOT)
        await leaked.backend.create(f"{IP_ROOT}/127.96.200.200", orjson.dumps(
            {"apiVersion": "networking.k8s.io/v1", "kind": "IPAddress",
             "metadata": {"name": "127.96.200.200", "labels": {"ipaddress.kubernetes.io/managed-by": "ipallocator.k8s.io"}},
             "spec": {"parentRef": {"group": "", "resource": "services", "namespace": "default", "name": "ghost"}}}))
        await server.service_claims.node_ports.modify(lambda bits: bits | 1 << 5)

        await repair.run_once()
        assert (await client.get(ipaddresses, ip))["spec"]["parentRef"]["name"] == "gap"
        bits = await server.service_claims.node_ports.read()
        assert bits >> (port - 30000) & 1
        for _ in range(repair.leak_rounds - 1):  # a leak survives until seen LEAK_ROUNDS times
            assert (await client.get(ipaddresses, "127.96.200.200"))["spec"]["parentRef"]["name"] == "ghost"
            assert (await server.service_claims.node_ports.read()) >> 5 & 1
            await repair.run_once()
        with pytest.raises(errors.NotFound):
            await client.get(ipaddresses, "127.96.200.200")
        assert not (await server.service_claims.node_ports.read()) >> 5 & 1
        assert (await server.service_claims.node_ports.read()) >> (port - 30000) & 1
