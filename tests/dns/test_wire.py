"""The DNS message codec: header flags, compression pointers (and loops), EDNS, truncation."""

from __future__ import annotations

import struct

import pytest

from pykube_server.dns import wire


def test_round_trip_keeps_header_flags_and_questions() -> None:
    msg = wire.Message(id=0xBEEF, qr=True, aa=True, rd=True, rcode=wire.NXDOMAIN,
                       questions=[wire.Question("Web.Shop.svc.cluster.local", wire.AAAA)])
    back = wire.decode(msg.encode())
    assert (back.id, back.qr, back.aa, back.rd, back.ra, back.tc, back.rcode) == (0xBEEF, True, True, True, False,
                                                                                   False, wire.NXDOMAIN)
    assert back.questions == [wire.Question("Web.Shop.svc.cluster.local", wire.AAAA)]
    assert back.edns_size is None


def test_compressed_names_are_followed() -> None:
    header = struct.pack("!HHHHHH", 1, 0x8180, 1, 1, 0, 0)
    question = b"\x03web\x04shop\x00" + struct.pack("!HH", wire.A, 1)
    answer = b"\xc0\x0c" + struct.pack("!HHIH", wire.A, 1, 30, 4) + bytes([10, 0, 0, 1])  # name = pointer to 12
    msg = wire.decode(header + question + answer)
    assert [(r.name, wire.parse_rdata(r)) for r in msg.answers] == [("web.shop", "10.0.0.1")]


def test_pointer_loops_and_truncation_are_format_errors() -> None:
    header = struct.pack("!HHHHHH", 1, 0, 1, 0, 0, 0)
    with pytest.raises(wire.FormatError):
        wire.decode(header + b"\xc0\x0c" + struct.pack("!HH", 1, 1))  # points at itself
    with pytest.raises(wire.FormatError):
        wire.decode(header + b"\x05ab")
    with pytest.raises(wire.FormatError):
        wire.decode(b"\x00\x01")


def test_edns_size_is_read_and_answered_with_ours() -> None:
    query = wire.decode(wire.Message(id=3, questions=[wire.Question("a.b", wire.A)], edns_size=4096).encode())
    assert query.edns_size == 4096
    reply = wire.decode(query.reply().encode())
    assert reply.edns_size == wire.EDNS_SIZE and reply.qr


def test_encode_truncates_over_the_limit_and_sets_tc() -> None:
    msg = wire.Message(id=1, qr=True, questions=[wire.Question("x.example", wire.A)],
                       answers=[wire.a("x.example", 30, f"10.0.0.{i}") for i in range(1, 60)])
    assert len(msg.encode()) > 512
    cut = wire.decode(msg.encode(limit=512))
    assert cut.tc and cut.answers == [] and cut.questions == msg.questions


def test_bad_names_are_refused_on_encode() -> None:
    with pytest.raises(ValueError):
        wire.encode_name("a" * 64 + ".example")
    with pytest.raises(ValueError):
        wire.encode_name(".".join(["abcdefgh"] * 40))
    assert wire.encode_name("") == b"\x00" and wire.encode_name("a.") == b"\x01a\x00"
