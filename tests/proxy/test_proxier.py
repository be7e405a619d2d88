"""The proxy against a real in-process API server: Services and EndpointSlices written by the
test, small TCP/UDP servers on loopback pod IPs as the endpoints, and the Proxier in the same loop.

Facts from kube-proxy recorded here: connections to ClusterIP:port and 127.0.0.1:NodePort reach
ready endpoints, round robin by default; `sessionAffinity: ClientIP` pins a client; a dead
endpoint costs a retry, not a failed connection; a service port without endpoints refuses
connections; endpoint changes apply within a second.
"""

from __future__ import annotations

import asyncio
import contextlib
import random
from collections.abc import AsyncIterator
from typing import Any

import pytest

from pykube_server.client.informer import InformerFactory
from pykube_server.client.rest import ENDPOINTSLICES, SERVICES, Client
from pykube_server.proxy.balancer import RANDOM, ROUND_ROBIN, Balancer
from pykube_server.proxy.proxier import Proxier
from pykube_server.testing import LocalCluster

NS = "default"
Obj = dict[str, Any]


@contextlib.asynccontextmanager
async def proxier_running(cluster: LocalCluster, balance: str = ROUND_ROBIN) -> AsyncIterator[tuple[Client, Proxier]]:
    async with Client.from_kubeconfig(cluster.kubeconfig, user_agent="kube-proxy/v1.33.0") as proxy_client, \
            Client.from_kubeconfig(cluster.kubeconfig, user_agent="pykube-test/v0.1.0") as client:
        informers = InformerFactory(proxy_client)
        proxier = Proxier(informers, balance=balance)
        tasks = [asyncio.create_task(informers.run()), asyncio.create_task(proxier.run())]
        try:
            await asyncio.wait_for(proxier.wait_synced(), 10)
            yield client, proxier
        finally:
            for task in tasks:
                task.cancel()
            for task in tasks:
                with contextlib.suppress(asyncio.CancelledError):
                    await task


class Backend:
    """A pod's container: answers each line with `<name>:<line>`."""

    def __init__(self, name: str, ip: str) -> None:
        self.name, self.ip = name, ip
        self.server: asyncio.Server | None = None

    async def start(self, port: int) -> int:
        async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            line = await reader.readline()
            writer.write(f"{self.name}:{line.decode().strip()}\n".encode())
            await writer.drain()
            writer.close()

        self.server = await asyncio.start_server(handle, self.ip, port)
        return int(self.server.sockets[0].getsockname()[1])

    def close(self) -> None:
        if self.server is not None:
            self.server.close()


@contextlib.asynccontextmanager
async def backends(count: int) -> AsyncIterator[tuple[list[Backend], int]]:
    subnet = random.randrange(1, 250)
    started = [Backend(f"pod-{i}", f"127.244.{subnet}.{10 + i}") for i in range(count)]
    port = await started[0].start(0)
    for backend in started[1:]:
        await backend.start(port)
    try:
        yield started, port
    finally:
        for backend in started:
            backend.close()


async def ask(ip: str, port: int, text: str = "hi") -> str:
    async with asyncio.timeout(5):
        reader, writer = await asyncio.open_connection(ip, port)
        writer.write(f"{text}\n".encode())
        await writer.drain()
        answer = await reader.readline()
        writer.close()
        return answer.decode().strip()


def slice_for(service: str, endpoints: list[tuple[str, bool]], port: int, *, name: str = "") -> Obj:
    return {"metadata": {"name": f"{service}-{name or 'manual'}", "labels": {"kubernetes.io/service-name": service}},
            "addressType": "IPv4",
            "endpoints": [{"addresses": [ip], "conditions": {"ready": ready}} for ip, ready in endpoints],
            "ports": [{"name": "http", "port": port, "protocol": "TCP"}]}


async def make_service(client: Client, name: str, **spec: Any) -> Obj:
    body = {"metadata": {"name": name}, "spec": {"ports": [{"name": "http", "port": 80, "protocol": "TCP"}], **spec}}
    return await client.create(SERVICES, body, namespace=NS)


async def until_listening(proxier: Proxier, key: tuple[str, str, int], *, present: bool = True) -> None:
    async with asyncio.timeout(5):
        while (key in proxier.listeners) != present:
            await asyncio.sleep(0.02)


async def test_round_robin_through_cluster_ip_and_node_port(cluster: LocalCluster) -> None:
    async with proxier_running(cluster) as (client, proxier), backends(3) as (pods, port):
        svc = await make_service(client, "web", type="NodePort")
        ip, node_port = svc["spec"]["clusterIP"], svc["spec"]["ports"][0]["nodePort"]
        await client.create(ENDPOINTSLICES, slice_for("web", [(p.ip, True) for p in pods], port), namespace=NS)
        await until_listening(proxier, ("TCP", ip, 80))
        answers = [await ask(ip, 80, str(i)) for i in range(6)]
        assert sorted(a.split(":")[0] for a in answers) == sorted([p.name for p in pods] * 2)
        assert all(a.endswith(f":{i}") for i, a in enumerate(answers))
        await until_listening(proxier, ("TCP", "127.0.0.1", node_port))
        assert (await ask("127.0.0.1", node_port)).split(":")[0] in {p.name for p in pods}


async def test_dead_endpoint_is_retried_and_changes_apply_fast(cluster: LocalCluster) -> None:
    async with proxier_running(cluster) as (client, proxier), backends(2) as (pods, port):
        svc = await make_service(client, "web")
        ip = svc["spec"]["clusterIP"]
        dead = pods[1]
        dead.close()
        await client.create(ENDPOINTSLICES, slice_for("web", [(pods[0].ip, True), (dead.ip, True)], port),
                            namespace=NS)
        await until_listening(proxier, ("TCP", ip, 80))
        answers = {(await ask(ip, 80)).split(":")[0] for _ in range(6)}
        assert answers == {pods[0].name}
        # Only not-ready endpoints left: the service port stops listening (connection refused).
        slice_ = await client.get(ENDPOINTSLICES, "web-manual", namespace=NS)
        slice_["endpoints"] = [{"addresses": [pods[0].ip], "conditions": {"ready": False}}]
        loop = asyncio.get_running_loop()
        started = loop.time()
        await client.update(ENDPOINTSLICES, slice_)
        await until_listening(proxier, ("TCP", ip, 80), present=False)
        assert loop.time() - started < 1.0
        with pytest.raises(OSError):
            await ask(ip, 80)
        slice_ = await client.get(ENDPOINTSLICES, "web-manual", namespace=NS)
        slice_["endpoints"][0]["conditions"]["ready"] = True
        await client.update(ENDPOINTSLICES, slice_)
        await until_listening(proxier, ("TCP", ip, 80))
        assert (await ask(ip, 80)).startswith(pods[0].name)


async def test_client_ip_affinity_and_random_balance(cluster: LocalCluster) -> None:
    async with proxier_running(cluster, balance=RANDOM) as (client, proxier), backends(3) as (pods, port):
        sticky = await make_service(client, "sticky", sessionAffinity="ClientIP")
        spread = await make_service(client, "spread")
        for name in ("sticky", "spread"):
            await client.create(ENDPOINTSLICES, slice_for(name, [(p.ip, True) for p in pods], port), namespace=NS)
        sticky_ip, spread_ip = sticky["spec"]["clusterIP"], spread["spec"]["clusterIP"]
        await until_listening(proxier, ("TCP", sticky_ip, 80))
        await until_listening(proxier, ("TCP", spread_ip, 80))
        assert len({(await ask(sticky_ip, 80)).split(":")[0] for _ in range(10)}) == 1
        assert len({(await ask(spread_ip, 80)).split(":")[0] for _ in range(30)}) > 1


async def test_udp_service(cluster: LocalCluster) -> None:
    class Echo(asyncio.DatagramProtocol):
        def connection_made(self, transport: asyncio.BaseTransport) -> None:
            self.transport = transport

        def datagram_received(self, data: bytes, addr: tuple[str, int]) -> None:
            self.transport.sendto(b"pong:" + data, addr)  # type: ignore[attr-defined]

    loop = asyncio.get_running_loop()
    pod_ip = f"127.244.{random.randrange(1, 250)}.77"
    echo, _ = await loop.create_datagram_endpoint(Echo, local_addr=(pod_ip, 0))
    port = echo.get_extra_info("sockname")[1]
    try:
        async with proxier_running(cluster) as (client, proxier):
            svc = await client.create(SERVICES, {"metadata": {"name": "dns"}, "spec": {
                "ports": [{"name": "dns", "port": 53, "protocol": "UDP"}]}}, namespace=NS)
            ip = svc["spec"]["clusterIP"]
            await client.create(ENDPOINTSLICES, {
                "metadata": {"name": "dns-manual", "labels": {"kubernetes.io/service-name": "dns"}},
                "addressType": "IPv4", "endpoints": [{"addresses": [pod_ip]}],
                "ports": [{"name": "dns", "port": port, "protocol": "UDP"}]}, namespace=NS)
            await until_listening(proxier, ("UDP", ip, 53))
            answer: asyncio.Future[bytes] = loop.create_future()

            class Client_(asyncio.DatagramProtocol):
                def datagram_received(self, data: bytes, addr: tuple[str, int]) -> None:
                    if not answer.done():
                        answer.set_result(data)

            sender, _ = await loop.create_datagram_endpoint(Client_, remote_addr=(ip, 53))
            try:
                sender.sendto(b"ping")
                assert await asyncio.wait_for(answer, 5) == b"pong:ping"
            finally:
                sender.close()
    finally:
        echo.close()


def test_balancer_round_robin_affinity_timeout_and_failures() -> None:
    now = [0.0]
    balancer = Balancer(clock=lambda: now[0])
    balancer.update([("a", 1), ("b", 1), ("c", 1)])
    assert [balancer.pick("x") for _ in range(4)] == [("a", 1), ("b", 1), ("c", 1), ("a", 1)]
    assert balancer.pick("x", {("b", 1), ("c", 1)}) == ("a", 1)
    assert balancer.pick("x", {("a", 1), ("b", 1), ("c", 1)}) is None
    balancer.update([("a", 1), ("b", 1)], affinity_seconds=10)
    first = balancer.pick("client-1")
    now[0] = 9
    assert balancer.pick("client-1") == first
    now[0] = 30  # idle longer than the timeout: a fresh choice
    balancer.pick("other")
    second = balancer.pick("client-1")
    balancer.failed("client-1", second)  # type: ignore[arg-type]
    assert balancer.pick("client-1", {second}) != second  # type: ignore[arg-type]
    with pytest.raises(ValueError):
        Balancer(mode="least-conn")
