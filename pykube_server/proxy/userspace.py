"""The forwarders: one listening socket per (protocol, address, port), relaying to endpoints.

TCP: each accepted connection asks the port's Balancer for an endpoint and connects to it; a
connect that fails or times out is retried on another endpoint (kube-proxy userspace's retry),
and when none is left the client's connection is closed. Bytes are then relayed both ways by
a pair of protocols, with half-closes passed on, until both sides are done.

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
UDP_IDLE_SECONDS = 30.0
UDP_MAX_DATAGRAM = 65535


class _Side(asyncio.Protocol):
    """One socket of a relayed connection; what it reads is written to its peer.

    Protocols rather than streams: no task per direction and no await per chunk, which is
    what a connection per request costs most (see bench/proxy.py). Flow control is the
    transports' own: when the peer's write buffer is full, this side stops reading."""

    def __init__(self, relay: _Relay) -> None:
        self.relay = relay
        self.transport: asyncio.Transport | None = None
        self.peer: _Side | None = None
        self.eof = False

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]
        if self is self.relay.client:  # nothing is read until the endpoint is reached
            self.transport.pause_reading()
            self.relay.forwarder.connecting(self.relay)

    def data_received(self, data: bytes) -> None:
        if self.peer is not None and self.peer.transport is not None:
            self.peer.transport.write(data)
        else:  # the client spoke before the endpoint was reached: keep it for later
            self.relay.early.append(data)

    def eof_received(self) -> bool:
        self.eof = True
        peer = self.peer
        if peer is None:
            return True  # passed on once the endpoint is reached
        if peer.transport is not None and not peer.transport.is_closing() and peer.transport.can_write_eof():
            with contextlib.suppress(OSError, RuntimeError):
                peer.transport.write_eof()
        if peer.eof:
            self.relay.close()
            return False
        return True  # half-closed: keep relaying the other way

    def connection_lost(self, exc: Exception | None) -> None:
        self.relay.close()

    def pause_writing(self) -> None:
        if self.peer is not None and self.peer.transport is not None:
            self.peer.transport.pause_reading()

    def resume_writing(self) -> None:
        if self.peer is not None and self.peer.transport is not None and not self.peer.transport.is_closing():
            self.peer.transport.resume_reading()


class _Relay:
    """A client connection and the endpoint connection it was given."""

    def __init__(self, forwarder: TCPForwarder) -> None:
        self.forwarder = forwarder
        self.client = _Side(self)
        self.upstream: _Side | None = None
        self.early: list[bytes] = []
        self.closed = False

    async def connect(self) -> None:
        transport = self.client.transport
        assert transport is not None
        peer = transport.get_extra_info("peername") or ("", 0)
        loop = asyncio.get_running_loop()
        tried: set[Endpoint] = set()
        balancer = self.forwarder.balancer
        while not self.closed:
            endpoint = balancer.pick(str(peer[0]), tried)
            if endpoint is None:
                log.debug("%s:%d: no endpoint reachable for %s", self.forwarder.host, self.forwarder.port, peer[0])
                break
            upstream = _Side(self)
            try:
                async with asyncio.timeout(CONNECT_TIMEOUT_SECONDS):
                    await loop.create_connection(lambda: upstream, *endpoint)
            except (OSError, TimeoutError) as exc:
                log.debug("%s:%d: endpoint %s:%d failed: %s", self.forwarder.host, self.forwarder.port, *endpoint, exc)
                tried.add(endpoint)
                balancer.failed(str(peer[0]), endpoint)
                continue
            self._joined(upstream)
            return
        self.close()

    def _joined(self, upstream: _Side) -> None:
        self.upstream = upstream
        if self.closed:
            if upstream.transport is not None:
                upstream.transport.close()
            return
        upstream.peer, self.client.peer = self.client, upstream
        assert upstream.transport is not None
        for data in self.early:
            upstream.transport.write(data)
        self.early = []
        if self.client.eof:
            self.client.eof_received()
        elif self.client.transport is not None and not self.client.transport.is_closing():
            self.client.transport.resume_reading()

    def close(self) -> None:
        if self.closed:
            return
        self.closed = True
        self.forwarder.relays.discard(self)
        for side in (self.client, self.upstream):
            if side is not None and side.transport is not None:
                side.transport.close()

    def abort(self) -> None:
        for side in (self.client, self.upstream):
            if side is not None and side.transport is not None:
                side.transport.abort()
        self.close()


class TCPForwarder:
    def __init__(self, host: str, port: int, balancer: Balancer) -> None:
        self.host, self.port, self.balancer = host, port, balancer
        self._server: asyncio.Server | None = None
        self.relays: set[_Relay] = set()
        self._tasks: set[asyncio.Task[None]] = set()

    async def start(self) -> None:
        """Bind and listen; raises OSError (e.g. address in use)."""
        loop = asyncio.get_running_loop()
        self._server = await loop.create_server(self._accepted, self.host, self.port, reuse_address=True,
                                                backlog=1024)

    def _accepted(self) -> _Side:
        relay = _Relay(self)
        self.relays.add(relay)
        return relay.client

    def connecting(self, relay: _Relay) -> None:
        """The client's socket is ready: reach an endpoint for it."""
        task = asyncio.get_running_loop().create_task(relay.connect())
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def aclose(self, *, close_connections: bool = False) -> None:
        server, self._server = self._server, None
        if server is not None:
            server.close()
        if close_connections:
            for task in list(self._tasks):
                task.cancel()
            for relay in list(self.relays):
                relay.abort()


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
