"""The TCP relay on its own: half-closes pass through, bulk data survives flow control, and a
connection with no endpoint left is closed at once (kube-proxy userspace's behaviour)."""

from __future__ import annotations

import asyncio
import random

from pykube_server.proxy.balancer import Balancer
from pykube_server.proxy.userspace import TCPForwarder


async def _listener(ip: str) -> tuple[asyncio.Server, int]:
    async def echo_after_eof(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        data = await reader.read()  # everything until the client's half-close
        writer.write(b"got %d bytes" % len(data))
        await writer.drain()
        writer.close()

    server = await asyncio.start_server(echo_after_eof, ip, 0)
    return server, int(server.sockets[0].getsockname()[1])


async def test_half_close_and_bulk_data_are_relayed() -> None:
    subnet = random.randrange(1, 250)
    server, port = await _listener(f"127.244.{subnet}.20")
    balancer = Balancer()
    balancer.update([(f"127.244.{subnet}.20", port)])
    forwarder = TCPForwarder(f"127.95.{subnet}.1", 8000, balancer)
    await forwarder.start()
    try:
        async with asyncio.timeout(10):
            reader, writer = await asyncio.open_connection(f"127.95.{subnet}.1", 8000)
            payload = b"x" * (8 * 1024 * 1024)
            writer.write(payload)
            await writer.drain()
            writer.write_eof()
            assert await reader.read() == b"got %d bytes" % len(payload)
            writer.close()
    finally:
        await forwarder.aclose(close_connections=True)
        server.close()


async def test_no_endpoint_closes_the_client_connection() -> None:
    subnet = random.randrange(1, 250)
    balancer = Balancer()
    balancer.update([(f"127.244.{subnet}.21", 9)])  # nothing listens there: connect refused
    forwarder = TCPForwarder(f"127.95.{subnet}.2", 8000, balancer)
    await forwarder.start()
    try:
        async with asyncio.timeout(10):
            reader, writer = await asyncio.open_connection(f"127.95.{subnet}.2", 8000)
            assert await reader.read() == b""
            writer.close()
        assert not forwarder.relays
    finally:
        await forwarder.aclose(close_connections=True)
