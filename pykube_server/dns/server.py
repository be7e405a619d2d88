"""The DNS server: UDP and TCP on one address, answering from the zone or forwarding upstream.

Why this shape: CoreDNS in a cluster runs `kubernetes` (authoritative for the cluster zone and
the reverse zones it knows) and then `forward . /etc/resolv.conf` for everything else. Here a
query whose name the zone owns gets the zone's answer with AA set and RA clear (dig then warns
"recursion requested but not available", as it does against CoreDNS); any other query goes
to the nameservers of the resolv.conf this process sees (the node's, since the DNS pods use
`dnsPolicy: Default`) as the same bytes, and the upstream's reply is relayed with only the id
restored. No upstream configured: REFUSED; every upstream failed: SERVFAIL.

UDP answers are cut to 512 bytes, or to the EDNS size the client offered, with TC set; TCP
messages carry the two-byte length prefix (RFC 1035 4.2.2) and a connection may send many.
Queries are answered concurrently; per-query failures never stop the server.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import struct
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from pykube_server.dns import wire
from pykube_server.dns.records import Answer, Zone

log = logging.getLogger(__name__)

UPSTREAM_TIMEOUT_SECONDS = 2.0
TCP_IDLE_SECONDS = 10.0
RESOLV_CONF = "/etc/resolv.conf"


def upstreams_from_resolv_conf(path: str = RESOLV_CONF, *, exclude: tuple[str, ...] = ()) -> list[str]:
    """The `nameserver` addresses of a resolv.conf, without our own (a forwarding loop)."""
    try:
        lines = Path(path).read_text().splitlines()
    except OSError:
        return []
    out = []
    for line in lines:
        parts = line.split("#", 1)[0].split()
        if len(parts) >= 2 and parts[0] == "nameserver" and parts[1] not in exclude:
            out.append(parts[1])
    return out


@dataclass
class Stats:
    """Counters for `/metrics`, named after CoreDNS's."""

    requests: Counter[tuple[str, str]] = field(default_factory=Counter)
    """(proto, qtype name)"""
    responses: Counter[str] = field(default_factory=Counter)
    """rcode name"""
    forwards: Counter[str] = field(default_factory=Counter)
    """upstream address"""


RCODE_NAMES = {wire.NOERROR: "NOERROR", wire.FORMERR: "FORMERR", wire.SERVFAIL: "SERVFAIL",
               wire.NXDOMAIN: "NXDOMAIN", wire.NOTIMP: "NOTIMP", wire.REFUSED: "REFUSED"}


class Resolver:
    """Query bytes -> answer bytes: the zone first, then the upstreams."""

    def __init__(self, zone: Callable[[], Zone | None], upstreams: list[str], *, stats: Stats | None = None,
                 routes: list[tuple[str, list[str]]] | None = None) -> None:
        self._zone = zone
        self.routes = routes if routes is not None else [(".", upstreams)]
        """(zone, upstreams), most specific first: stub domains, then "." for every other name."""
        self.stats = stats or Stats()

    def upstreams_for(self, name: str) -> list[str]:
        key = name.lower().rstrip(".")
        for zone, upstreams in self.routes:
            if zone == "." or key == zone or key.endswith("." + zone):
                return upstreams
        return []

    async def handle(self, data: bytes, *, tcp: bool) -> bytes | None:
        try:
            query = wire.decode(data)
        except wire.FormatError:
            ident = wire.read_id(data)
            if ident is None:
                return None
            return self._count(wire.Message(id=ident, qr=True, rcode=wire.FORMERR)).encode()
        if query.qr:
            return None  # a response sent to us: never answer it (no reflection loops)
        reply = query.reply()
        limit = None if tcp else (query.edns_size or wire.UDP_DEFAULT_SIZE)
        if query.opcode != wire.OPCODE_QUERY:
            reply.rcode = wire.NOTIMP
            return self._count(reply).encode(limit=limit)
        if len(query.questions) != 1 or query.questions[0].cls not in (wire.CLASS_IN, 255):
            reply.rcode = wire.FORMERR if len(query.questions) != 1 else wire.REFUSED
            return self._count(reply).encode(limit=limit)
        question = query.questions[0]
        self.stats.requests[("tcp" if tcp else "udp", wire.TYPE_NAMES.get(question.type, str(question.type)))] += 1
        zone = self._zone()
        if zone is None:  # the informers have not synced yet
            reply.rcode = wire.SERVFAIL
            return self._count(reply).encode(limit=limit)
        try:
            answer = zone.resolve(question)
            if answer is not None:
                return self._count(self._fill(reply, answer)).encode(limit=limit)
        except Exception:  # a record we cannot build must cost one SERVFAIL, not the server
            log.exception("answering %s failed", question)
            failed = query.reply()
            failed.rcode = wire.SERVFAIL
            return self._count(failed).encode(limit=limit)
        return await self._forward(data, query, reply, self.upstreams_for(question.name), tcp=tcp, limit=limit)

    @staticmethod
    def _fill(reply: wire.Message, answer: Answer) -> wire.Message:
        reply.aa = True
        reply.rcode = answer.rcode
        reply.answers, reply.authority, reply.additional = answer.answers, answer.authority, answer.additional
        return reply

    def _count(self, reply: wire.Message) -> wire.Message:
        self.stats.responses[RCODE_NAMES.get(reply.rcode, str(reply.rcode))] += 1
        return reply

    async def _forward(self, data: bytes, query: wire.Message, reply: wire.Message, upstreams: list[str], *,
                       tcp: bool, limit: int | None) -> bytes:
        if not upstreams:
            reply.rcode = wire.REFUSED
            return self._count(reply).encode(limit=limit)
        for upstream in upstreams:
            try:
                async with asyncio.timeout(UPSTREAM_TIMEOUT_SECONDS):
                    answer = await (_ask_tcp(upstream, data) if tcp else _ask_udp(upstream, data, query.id))
                    if not tcp and len(answer) >= 4 and answer[2] & 0x02:  # truncated: ask again over TCP
                        answer = await _ask_tcp(upstream, data)
            except (OSError, TimeoutError, asyncio.IncompleteReadError) as exc:
                log.debug("upstream %s failed: %s", upstream, exc)
                continue
            self.stats.forwards[upstream] += 1
            with contextlib.suppress(wire.FormatError):
                self.stats.responses[RCODE_NAMES.get(wire.decode(answer).rcode, "OTHER")] += 1
            return answer
        reply.rcode = wire.SERVFAIL
        return self._count(reply).encode(limit=limit)


class _OneReply(asyncio.DatagramProtocol):
    def __init__(self, ident: int) -> None:
        self.ident = ident
        self.done: asyncio.Future[bytes] = asyncio.get_running_loop().create_future()

    def datagram_received(self, data: bytes, addr: object) -> None:  # type: ignore[override]
        if not self.done.done() and wire.read_id(data) == self.ident:
            self.done.set_result(data)

    def error_received(self, exc: Exception) -> None:
        if not self.done.done():
            self.done.set_exception(exc)


def upstream_address(upstream: str) -> tuple[str, int]:
    """`10.0.0.2`, `10.0.0.2:5353`, `[fd00::1]:53`, `fd00::1` -> (host, port)."""
    if upstream.startswith("["):
        host, _, rest = upstream[1:].partition("]")
        return host, int(rest[1:]) if rest.startswith(":") else 53
    if upstream.count(":") == 1:
        host, port = upstream.split(":")
        return host, int(port)
    return upstream, 53


async def _ask_udp(upstream: str, data: bytes, ident: int) -> bytes:
    loop = asyncio.get_running_loop()
    transport, protocol = await loop.create_datagram_endpoint(lambda: _OneReply(ident),
                                                              remote_addr=upstream_address(upstream))
    try:
        transport.sendto(data)
        return await protocol.done
    finally:
        transport.close()


async def _ask_tcp(upstream: str, data: bytes) -> bytes:
    reader, writer = await asyncio.open_connection(*upstream_address(upstream))
    try:
        writer.write(struct.pack("!H", len(data)) + data)
        await writer.drain()
        size = struct.unpack("!H", await reader.readexactly(2))[0]
        return await reader.readexactly(size)
    finally:
        writer.close()


class _UDPServer(asyncio.DatagramProtocol):
    def __init__(self, resolver: Resolver) -> None:
        self.resolver = resolver
        self.transport: asyncio.DatagramTransport | None = None
        self.tasks: set[asyncio.Task[None]] = set()

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]

    def datagram_received(self, data: bytes, addr: tuple[str, int]) -> None:  # type: ignore[override]
        task = asyncio.get_running_loop().create_task(self._answer(data, addr))
        self.tasks.add(task)
        task.add_done_callback(self.tasks.discard)

    async def _answer(self, data: bytes, addr: tuple[str, int]) -> None:
        try:
            out = await self.resolver.handle(data, tcp=False)
        except Exception:  # one bad query must not stop the server
            log.exception("query from %s failed", addr)
            return
        if out is not None and self.transport is not None:
            self.transport.sendto(out, addr)


class DNSServer:
    """Serves `resolver` on host:port over UDP and TCP until `aclose()`."""

    def __init__(self, resolver: Resolver, host: str, port: int) -> None:
        self.resolver, self.host, self.port = resolver, host, port
        self._udp: asyncio.DatagramTransport | None = None
        self._udp_protocol: _UDPServer | None = None
        self._tcp: asyncio.Server | None = None

    async def start(self) -> None:
        """Bind both sockets (port 0: any free port, the same for both); raises OSError."""
        loop = asyncio.get_running_loop()
        self._tcp = await asyncio.start_server(self._serve_tcp, self.host, self.port, reuse_address=True)
        self.port = self._tcp.sockets[0].getsockname()[1]
        try:
            transport, protocol = await loop.create_datagram_endpoint(lambda: _UDPServer(self.resolver),
                                                                      local_addr=(self.host, self.port))
        except OSError:
            self._tcp.close()
            raise
        self._udp, self._udp_protocol = transport, protocol  # type: ignore[assignment]

    async def _serve_tcp(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while True:
                async with asyncio.timeout(TCP_IDLE_SECONDS):
                    size = struct.unpack("!H", await reader.readexactly(2))[0]
                    data = await reader.readexactly(size)
                out = await self.resolver.handle(data, tcp=True)
                if out is None:
                    return
                writer.write(struct.pack("!H", len(out)) + out)
                await writer.drain()
        except (asyncio.IncompleteReadError, TimeoutError, ConnectionError, OSError):
            pass
        finally:
            writer.close()

    async def aclose(self) -> None:
        if self._udp is not None:
            self._udp.close()
        if self._udp_protocol is not None:
            for task in list(self._udp_protocol.tasks):
                task.cancel()
        if self._tcp is not None:
            self._tcp.close()  # open TCP connections end on their idle timeout
