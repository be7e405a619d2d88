"""The DNS server on an ephemeral loopback port, queried with raw DNS packets over UDP and TCP."""

from __future__ import annotations

import asyncio
import socket
import struct
from collections.abc import AsyncIterator

import pytest

from pykube_server.cmd.dns import split_hostport
from pykube_server.dns import wire
from pykube_server.dns.records import Zone
from pykube_server.dns.server import DNSServer, Resolver, upstreams_from_resolv_conf
from tests.dns.fixtures import endpoint, endpoint_slice, service

DOMAIN = "cluster.local"


def query(name: str, qtype: int = wire.A, *, ident: int = 0x1234, edns: int | None = None) -> bytes:
    return wire.Message(id=ident, rd=True, questions=[wire.Question(name, qtype)], edns_size=edns).encode()


async def udp(port: int, data: bytes, host: str = "127.0.0.1") -> wire.Message:
    loop = asyncio.get_running_loop()
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.setblocking(False)
    sock.connect((host, port))
    try:
        await loop.sock_sendall(sock, data)
        async with asyncio.timeout(5):
            return wire.decode(await loop.sock_recv(sock, 65535))
    finally:
        sock.close()


async def tcp(port: int, *messages: bytes) -> list[wire.Message]:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    out = []
    try:
        for data in messages:  # several queries on one connection
            writer.write(struct.pack("!H", len(data)) + data)
            await writer.drain()
            size = struct.unpack("!H", await reader.readexactly(2))[0]
            out.append(wire.decode(await reader.readexactly(size)))
    finally:
        writer.close()
    return out


def big_zone() -> Zone:
    many = [endpoint(f"127.244.{i // 250}.{i % 250 + 2}") for i in range(60)]
    return Zone(DOMAIN, [service("web", "shop"), service("many", "shop", cluster_ip="None")],
                [endpoint_slice("many", "shop", endpoints=many)], ["shop"], serial=1)


@pytest.fixture
async def server() -> AsyncIterator[DNSServer]:
    zone = big_zone()
    srv = DNSServer(Resolver(lambda: zone, []), "127.0.0.1", 0)
    await srv.start()
    yield srv
    await srv.aclose()


async def test_udp_answer_is_authoritative_without_recursion(server: DNSServer) -> None:
    reply = await udp(server.port, query("web.shop.svc.cluster.local"))
    assert (reply.id, reply.qr, reply.aa, reply.rd, reply.ra, reply.rcode) == (0x1234, True, True, True, False, 0)
    assert [q.name for q in reply.questions] == ["web.shop.svc.cluster.local"]
    assert [(r.name, r.ttl, wire.parse_rdata(r)) for r in reply.answers] == [
        ("web.shop.svc.cluster.local", 30, "127.96.0.20")]


async def test_tcp_serves_several_queries_on_one_connection(server: DNSServer) -> None:
    first, second = await tcp(server.port, query("web.shop.svc.cluster.local", ident=1),
                              query("nope.shop.svc.cluster.local", ident=2))
    assert (first.id, first.rcode, len(first.answers)) == (1, wire.NOERROR, 1)
    assert (second.id, second.rcode, [r.type for r in second.authority]) == (2, wire.NXDOMAIN, [wire.SOA])


async def test_udp_answers_over_512_bytes_are_truncated_and_whole_over_tcp(server: DNSServer) -> None:
    truncated = await udp(server.port, query("many.shop.svc.cluster.local"))
    assert truncated.tc and truncated.answers == []
    with_edns = await udp(server.port, query("many.shop.svc.cluster.local", edns=4096))
    assert not with_edns.tc and len(with_edns.answers) == 60 and with_edns.edns_size == wire.EDNS_SIZE
    [whole] = await tcp(server.port, query("many.shop.svc.cluster.local"))
    assert not whole.tc and len(whole.answers) == 60


async def test_garbage_gets_formerr_and_other_opcodes_notimp(server: DNSServer) -> None:
    reply = await udp(server.port, b"\x43\x21" + b"\x01\x00\x00\x05" + b"\xff" * 8)
    assert (reply.id, reply.rcode) == (0x4321, wire.FORMERR)
    notify = wire.Message(id=7, opcode=4, questions=[wire.Question("cluster.local", wire.SOA)]).encode()
    assert (await udp(server.port, notify)).rcode == wire.NOTIMP


class FakeUpstream(asyncio.DatagramProtocol):
    """Answers every query with one A record 192.0.2.7, as a recursive resolver would."""

    def __init__(self) -> None:
        self.transport: asyncio.DatagramTransport | None = None
        self.seen: list[str] = []

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]

    def datagram_received(self, data: bytes, addr: tuple[str, int]) -> None:  # type: ignore[override]
        q = wire.decode(data)
        self.seen.append(q.questions[0].name)
        reply = q.reply()
        reply.ra = True
        reply.answers = [wire.a(q.questions[0].name, 300, "192.0.2.7")]
        assert self.transport is not None
        self.transport.sendto(reply.encode(), addr)


async def test_names_outside_the_zone_are_forwarded_upstream_byte_for_byte() -> None:
    loop = asyncio.get_running_loop()
    transport, upstream = await loop.create_datagram_endpoint(FakeUpstream, local_addr=("127.0.0.1", 0))
    port = transport.get_extra_info("sockname")[1]
    zone = big_zone()
    srv = DNSServer(Resolver(lambda: zone, [f"127.0.0.1:{port}"]), "127.0.0.1", 0)
    await srv.start()
    try:
        reply = await udp(srv.port, query("example.com", ident=99))
        assert (reply.id, reply.aa, reply.ra, reply.rcode) == (99, False, True, wire.NOERROR)
        assert [(r.ttl, wire.parse_rdata(r)) for r in reply.answers] == [(300, "192.0.2.7")]
        [over_tcp] = await tcp(srv.port, query("example.org", ident=5))  # upstream has no TCP: SERVFAIL
        assert (over_tcp.id, over_tcp.rcode) == (5, wire.SERVFAIL)
        assert upstream.seen == ["example.com"]
        local = await udp(srv.port, query("web.shop.svc.cluster.local"))  # the zone never goes upstream
        assert local.aa and upstream.seen == ["example.com"]
    finally:
        await srv.aclose()
        transport.close()


async def test_without_upstreams_outside_names_are_refused(server: DNSServer) -> None:
    assert (await udp(server.port, query("example.com"))).rcode == wire.REFUSED


async def test_before_the_informers_synced_everything_is_servfail() -> None:
    srv = DNSServer(Resolver(lambda: None, []), "127.0.0.1", 0)
    await srv.start()
    try:
        assert (await udp(srv.port, query("web.shop.svc.cluster.local"))).rcode == wire.SERVFAIL
    finally:
        await srv.aclose()


def test_upstreams_come_from_resolv_conf_without_ourselves(tmp_path) -> None:  # type: ignore[no-untyped-def]
    conf = tmp_path / "resolv.conf"
    conf.write_text("# comment\nsearch example.com\nnameserver 10.0.0.2\nnameserver 127.96.0.10 # us\n"
                    "options ndots:1\nnameserver fd00::53\n")
    assert upstreams_from_resolv_conf(str(conf), exclude=("127.96.0.10",)) == ["10.0.0.2", "fd00::53"]
    assert upstreams_from_resolv_conf(str(tmp_path / "missing")) == []


def test_listen_addresses() -> None:
    assert split_hostport("127.244.1.2:53", 8080) == ("127.244.1.2", 53)
    assert split_hostport("127.244.1.2", 8080) == ("127.244.1.2", 8080)
    assert split_hostport("[::1]:5353", 53) == ("::1", 5353)
    assert split_hostport("[::1]", 53) == ("::1", 53)
