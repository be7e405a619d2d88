"""The forwarders: one listening socket per (protocol, address, port), relaying to endpoints.

TCP: each accepted connection asks the port's Balancer for an endpoint and connects to it; a
connect that fails or times out is retried on another endpoint (kube-proxy userspace's retry),
and when none is left the client's connection is closed. Bytes are then copied both ways,
with half-closes passed on, until both sides are done.

UDP: datagrams from each client address go out through a socket of their own connected to
the endpoint chosen for that client, and replies come back from the listening address; a
client's socket is closed after UDP_IDLE_SECONDS without traffic. Sockets are read with
`loop.add_reader`, so no task is started per datagram.

Closing a forwarder stops accepting; `close_connections=True` also cuts relayed connections
(at proxy shutdown). A listener removed because its Service changed lets open connections
finish, as kube-proxy does.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import socket

from pykube_server.proxy.balancer import Balancer, Endpoint

log = logging.getLogger(__name__)

CONNECT_TIMEOUT_SECONDS = 2.0
BUFFER_BYTES = 64 * 1024
UDP_IDLE_SECONDS = 30.0
UDP_MAX_DATAGRAM = 65535


class TCPForwarder:
    def __init__(self, host: str, port: int, balancer: Balancer) -> None:
        self.host, self.port, self.balancer = host, port, balancer
        self._server: asyncio.Server | None = None
        self._connections: set[asyncio.Task[None]] = set()

    async def start(self) -> None:
        """Bind and listen; raises OSError (e.g. address in use)."""
        self._server = await asyncio.start_server(self._handle, self.host, self.port, reuse_address=True,
                                                  backlog=512)

    async def aclose(self, *, close_connections: bool = False) -> None:
        server, self._server = self._server, None
        if server is not None:
            server.close()
        if close_connections:
            for task in list(self._connections):
                task.cancel()
            for task in list(self._connections):
                with contextlib.suppress(asyncio.CancelledError, Exception):
                    await task

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._connections.add(task)
        try:
            await self._relay(reader, writer)
        finally:
            self._connections.discard(task)
            writer.close()

    async def _relay(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        peer = writer.get_extra_info("peername") or ("", 0)
        upstream = await self._connect(str(peer[0]))
        if upstream is None:
            return
        up_reader, up_writer = upstream
        try:
            async with asyncio.TaskGroup() as tg:
                tg.create_task(_copy(reader, up_writer))
                tg.create_task(_copy(up_reader, writer))
        except* (ConnectionError, OSError):
            pass
        finally:
            up_writer.close()

    async def _connect(self, client_ip: str) -> tuple[asyncio.StreamReader, asyncio.StreamWriter] | None:
        tried: set[Endpoint] = set()
        while True:
            endpoint = self.balancer.pick(client_ip, tried)
            if endpoint is None:
                log.debug("%s:%d: no endpoint reachable for %s", self.host, self.port, client_ip)
                return None
            try:
                async with asyncio.timeout(CONNECT_TIMEOUT_SECONDS):
                    return await asyncio.open_connection(*endpoint)
            except (OSError, TimeoutError) as exc:
                log.debug("%s:%d: endpoint %s:%d failed: %s", self.host, self.port, *endpoint, exc)
                tried.add(endpoint)
                self.balancer.failed(client_ip, endpoint)


async def _copy(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    try:
        while data := await reader.read(BUFFER_BYTES):
            writer.write(data)
            await writer.drain()
    finally:
        if not writer.is_closing() and writer.can_write_eof():
            with contextlib.suppress(OSError, RuntimeError):
                writer.write_eof()


class _UDPSession:
    def __init__(self, sock: socket.socket, endpoint: Endpoint, last: float) -> None:
        self.sock, self.endpoint, self.last = sock, endpoint, last


class UDPForwarder(asyncio.DatagramProtocol):
    def __init__(self, host: str, port: int, balancer: Balancer) -> None:
        self.host, self.port, self.balancer = host, port, balancer
        self._transport: asyncio.DatagramTransport | None = None
        self._sessions: dict[tuple[str, int], _UDPSession] = {}
        self._loop = asyncio.get_running_loop()
        self._sweeper: asyncio.TimerHandle | None = None

    async def start(self) -> None:
        transport, _ = await self._loop.create_datagram_endpoint(lambda: self, local_addr=(self.host, self.port))
        self._transport = transport  # type: ignore[assignment]
        self._sweeper = self._loop.call_later(UDP_IDLE_SECONDS, self._sweep)

    async def aclose(self, *, close_connections: bool = False) -> None:
        if self._sweeper is not None:
            self._sweeper.cancel()
        for addr in list(self._sessions):
            self._drop(addr)
        if self._transport is not None:
            self._transport.close()
            self._transport = None

    def datagram_received(self, data: bytes, addr: tuple[str, int]) -> None:  # type: ignore[override]
        session = self._sessions.get(addr) or self._open(addr)
        if session is None:
            return
        session.last = self._loop.time()
        try:
            session.sock.send(data)
        except OSError as exc:
            log.debug("udp %s:%d -> %s: %s", self.host, self.port, session.endpoint, exc)
            self.balancer.failed(addr[0], session.endpoint)
            self._drop(addr)

    def _open(self, addr: tuple[str, int]) -> _UDPSession | None:
        tried: set[Endpoint] = set()
        while (endpoint := self.balancer.pick(addr[0], tried)) is not None:
            sock = socket.socket(socket.AF_INET6 if ":" in endpoint[0] else socket.AF_INET, socket.SOCK_DGRAM)
            sock.setblocking(False)
            try:
                sock.connect(endpoint)
            except OSError:
                sock.close()
                tried.add(endpoint)
                continue
            session = _UDPSession(sock, endpoint, self._loop.time())
            self._sessions[addr] = session
            self._loop.add_reader(sock.fileno(), self._reply, addr, session)
            return session
        return None

    def _reply(self, addr: tuple[str, int], session: _UDPSession) -> None:
        try:
            data = session.sock.recv(UDP_MAX_DATAGRAM)
        except BlockingIOError:
            return
        except OSError:  # e.g. ICMP port unreachable: the endpoint is gone
            self.balancer.failed(addr[0], session.endpoint)
            self._drop(addr)
            return
        session.last = self._loop.time()
        if self._transport is not None:
            self._transport.sendto(data, addr)

    def _drop(self, addr: tuple[str, int]) -> None:
        session = self._sessions.pop(addr, None)
        if session is not None:
            self._loop.remove_reader(session.sock.fileno())
            session.sock.close()

    def _sweep(self) -> None:
        cutoff = self._loop.time() - UDP_IDLE_SECONDS
        for addr in [a for a, s in self._sessions.items() if s.last < cutoff]:
            self._drop(addr)
        self._sweeper = self._loop.call_later(UDP_IDLE_SECONDS, self._sweep)


Forwarder = TCPForwarder | UDPForwarder


def forwarder_for(protocol: str, host: str, port: int, balancer: Balancer) -> Forwarder:
    if protocol == "UDP":
        return UDPForwarder(host, port, balancer)
    return TCPForwarder(host, port, balancer)
