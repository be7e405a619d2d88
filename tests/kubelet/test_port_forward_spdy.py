"""The kubelet's SPDY port-forward, in process: a client session (what client-go does) against
`SpdyPortForward` over an in-memory connection, forwarding to a local TCP server."""

from __future__ import annotations

import asyncio
import socket
from collections.abc import AsyncIterator

import pytest

from pykube_server.api import spdy
from pykube_server.kubelet.portforward import SpdyPortForward, Target, parse_ports
from pykube_server.kubelet.spdysession import SpdySession


class Pipe:
    """One direction each way, like the two halves of a socket."""

    def __init__(self, inbox: asyncio.Queue[bytes], outbox: asyncio.Queue[bytes]) -> None:
        self.inbox, self.outbox = inbox, outbox

    async def recv(self) -> bytes:
        return await self.inbox.get()

    async def send(self, data: bytes) -> None:
        self.outbox.put_nowait(data)


def pipes() -> tuple[Pipe, Pipe]:
    a: asyncio.Queue[bytes] = asyncio.Queue()
    b: asyncio.Queue[bytes] = asyncio.Queue()
    return Pipe(a, b), Pipe(b, a)


@pytest.fixture
async def echo_port() -> AsyncIterator[int]:
    """A server that echoes upper-cased until the client half-closes, then closes."""

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        while data := await reader.read(65536):
            writer.write(data.upper())
            await writer.drain()
        writer.close()

    server = await asyncio.start_server(handle, "127.0.0.1", 0)
    yield server.sockets[0].getsockname()[1]
    server.close()
    await server.wait_closed()


def closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture
async def session() -> AsyncIterator[SpdySession]:
    client_end, kubelet_end = pipes()
    forward = SpdyPortForward(Target("sandbox-1", "127.0.0.1"), kubelet_end)
    kubelet = asyncio.create_task(forward.run())
    client = SpdySession(client_end, client=True)
    reader = asyncio.create_task(client.run())
    yield client
    client_end.outbox.put_nowait(b"")  # the connection ends: the kubelet's session stops
    await asyncio.wait_for(kubelet, 5)
    reader.cancel()


def pair_headers(kind: str, port: int, request_id: int) -> spdy.Headers:
    return {"streamtype": [kind], "port": [str(port)], "requestid": [str(request_id)]}


async def test_stream_pair_forwards_bytes_both_ways(session: SpdySession, echo_port: int) -> None:
    client = session
    error = await client.open_stream(pair_headers("error", echo_port, 0))
    await error.close()  # client-go never writes to the error stream
    data = await client.open_stream(pair_headers("data", echo_port, 0))
    await data.write(b"hello ")
    await data.write(b"pod")
    await data.close()  # half-close: the pod sees EOF, answers, and closes
    assert await asyncio.wait_for(data.read_all(), 5) == b"HELLO POD"
    assert await asyncio.wait_for(error.read_all(), 5) == b""


async def test_several_pairs_on_one_connection(session: SpdySession, echo_port: int) -> None:
    client = session

    async def one(request_id: int) -> bytes:
        error = await client.open_stream(pair_headers("error", echo_port, request_id))
        data = await client.open_stream(pair_headers("data", echo_port, request_id))
        await data.write(f"n{request_id}".encode())
        await data.close()
        out = await data.read_all()
        assert await error.read_all() == b""
        return out

    results = await asyncio.wait_for(asyncio.gather(*(one(i) for i in range(4))), 10)
    assert results == [b"N0", b"N1", b"N2", b"N3"]


async def test_refused_port_is_reported_on_the_error_stream(session: SpdySession) -> None:
    client = session
    port = closed_port()
    error = await client.open_stream(pair_headers("error", port, 0))
    data = await client.open_stream(pair_headers("data", port, 0))
    message = (await asyncio.wait_for(error.read_all(), 5)).decode()
    assert message.startswith(f"error forwarding port {port} to pod sandbox-1, uid : failed to execute portforward")
    assert f"IPv4: dial tcp4 127.0.0.1:{port}: connect: connection refused" in message
    assert await asyncio.wait_for(data.read_all(), 5) == b""


async def test_reset_data_stream_closes_the_pod_connection(session: SpdySession) -> None:
    closed = asyncio.Event()

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.read()  # a server that never answers: only the kubelet closing ends this
        closed.set()
        writer.close()

    server = await asyncio.start_server(handle, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    client = session
    await client.open_stream(pair_headers("error", port, 0))
    data = await client.open_stream(pair_headers("data", port, 0))
    await data.write(b"x")
    await data.send_reset()  # what client-go does once the local connection is done
    await asyncio.wait_for(closed.wait(), 5)
    server.close()


async def test_ping_is_echoed_and_goaway_ends_the_session() -> None:
    client_end, kubelet_end = pipes()
    kubelet = asyncio.create_task(SpdyPortForward(Target("s", "127.0.0.1"), kubelet_end).run())
    codec = spdy.Codec()
    await client_end.send(codec.encode(spdy.Ping(1)))
    assert codec.feed(await asyncio.wait_for(client_end.recv(), 5)) == [spdy.Ping(1)]
    await client_end.send(codec.encode(spdy.GoAway(0)))
    await asyncio.wait_for(kubelet, 5)


def test_ports_parse_like_the_kubelet() -> None:
    assert parse_ports(["80", "81,82"]) == [80, 81, 82]
    with pytest.raises(ValueError, match='query parameter "port" is required'):
        parse_ports([])
    with pytest.raises(ValueError, match='port "0" must be > 0'):
        parse_ports(["0"])
    with pytest.raises(ValueError, match='unable to parse "x" as a port'):
        parse_ports(["x"])
