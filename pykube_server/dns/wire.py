"""The DNS wire format (RFC 1035, EDNS0 from RFC 6891): just what a cluster DNS server needs.

Why our own: the server answers a handful of record types and forwards everything else as
opaque bytes, so a small codec of plain dataclasses is clearer than a dependency. Parsing
follows compression pointers (with a loop guard); encoding does not compress, which every
resolver accepts. `Message.encode(limit=...)` truncates to the UDP size the client offered
and sets TC, so the client retries over TCP, as RFC 1035 section 4.2.1 asks.
"""

from __future__ import annotations

import ipaddress
import struct
from dataclasses import dataclass, field

# record types
A, NS, CNAME, SOA, PTR, TXT, AAAA, SRV, OPT, ANY = 1, 2, 5, 6, 12, 16, 28, 33, 41, 255
TYPE_NAMES = {A: "A", NS: "NS", CNAME: "CNAME", SOA: "SOA", PTR: "PTR", TXT: "TXT", AAAA: "AAAA", SRV: "SRV",
              OPT: "OPT", ANY: "ANY"}
CLASS_IN = 1
# response codes
NOERROR, FORMERR, SERVFAIL, NXDOMAIN, NOTIMP, REFUSED = 0, 1, 2, 3, 4, 5
OPCODE_QUERY = 0

UDP_DEFAULT_SIZE = 512
"""What a client without EDNS can receive over UDP."""
EDNS_SIZE = 1232
"""The UDP size we advertise (the 2020 DNS flag day value CoreDNS uses too)."""
MAX_POINTERS = 64


class FormatError(ValueError):
    """The bytes are not a DNS message we can read (answered FORMERR when the id is known)."""


@dataclass(frozen=True)
class Question:
    name: str
    """As asked (case kept, no trailing dot); compare with `key`."""
    type: int
    cls: int = CLASS_IN

    @property
    def key(self) -> str:
        return self.name.lower()


@dataclass(frozen=True)
class Record:
    name: str
    type: int
    ttl: int
    rdata: bytes
    cls: int = CLASS_IN

    def encode(self) -> bytes:
        return encode_name(self.name) + struct.pack("!HHIH", self.type, self.cls, self.ttl, len(self.rdata)) + self.rdata


@dataclass
class Message:
    id: int = 0
    qr: bool = False
    opcode: int = OPCODE_QUERY
    aa: bool = False
    tc: bool = False
    rd: bool = False
    ra: bool = False
    rcode: int = NOERROR
    questions: list[Question] = field(default_factory=list)
    answers: list[Record] = field(default_factory=list)
    authority: list[Record] = field(default_factory=list)
    additional: list[Record] = field(default_factory=list)
    edns_size: int | None = None
    """The OPT record's UDP payload size, or None without EDNS."""

    def flags(self) -> int:
        return ((self.qr << 15) | (self.opcode << 11) | (self.aa << 10) | (self.tc << 9) | (self.rd << 8)
                | (self.ra << 7) | (self.rcode & 0xF))

    def encode(self, *, limit: int | None = None) -> bytes:
        """The message; when it exceeds `limit` bytes, answers and the rest are dropped and TC set."""
        opt = [Record("", OPT, 0, b"", cls=self.edns_size)] if self.edns_size is not None else []
        out = self._encode(self.answers, self.authority, self.additional + opt, tc=self.tc)
        if limit is not None and len(out) > limit:
            out = self._encode([], [], opt, tc=True)
        return out

    def _encode(self, answers: list[Record], authority: list[Record], additional: list[Record], *, tc: bool) -> bytes:
        flags = self.flags() | (tc << 9)
        head = struct.pack("!HHHHHH", self.id, flags, len(self.questions), len(answers), len(authority),
                           len(additional))
        body = b"".join(encode_name(q.name) + struct.pack("!HH", q.type, q.cls) for q in self.questions)
        return head + body + b"".join(r.encode() for r in (*answers, *authority, *additional))

    def reply(self) -> Message:
        """An empty response to this query (id, opcode, RD and question copied; EDNS if asked)."""
        return Message(id=self.id, qr=True, opcode=self.opcode, rd=self.rd, questions=list(self.questions),
                       edns_size=EDNS_SIZE if self.edns_size is not None else None)


def encode_name(name: str) -> bytes:
    name = name.rstrip(".")
    if not name:
        return b"\x00"
    out = bytearray()
    for label in name.split("."):
        raw = label.encode("ascii", "replace")
        if not 0 < len(raw) < 64:
            raise ValueError(f"bad DNS label in {name!r}")
        out += bytes([len(raw)]) + raw
    if len(out) + 1 > 255:
        raise ValueError(f"DNS name too long: {name!r}")
    return bytes(out) + b"\x00"


def _read_name(data: bytes, offset: int) -> tuple[str, int]:
    labels: list[str] = []
    end = None
    jumps = 0
    while True:
        if offset >= len(data):
            raise FormatError("name runs past the message")
        length = data[offset]
        if length & 0xC0 == 0xC0:
            if offset + 1 >= len(data):
                raise FormatError("truncated compression pointer")
            jumps += 1
            if jumps > MAX_POINTERS:
                raise FormatError("compression loop")
            if end is None:
                end = offset + 2
            offset = ((length & 0x3F) << 8) | data[offset + 1]
            continue
        if length & 0xC0:
            raise FormatError("unsupported label type")
        offset += 1
        if length == 0:
            break
        label = data[offset:offset + length]
        if len(label) != length:
            raise FormatError("label runs past the message")
        labels.append(label.decode("ascii", "replace"))
        offset += length
    return ".".join(labels), end if end is not None else offset


def decode(data: bytes) -> Message:
    """Parse a message (questions and the OPT record; other records are skipped)."""
    if len(data) < 12:
        raise FormatError("shorter than a DNS header")
    ident, flags, qd, an, ns, ar = struct.unpack("!HHHHHH", data[:12])
    msg = Message(id=ident, qr=bool(flags >> 15), opcode=(flags >> 11) & 0xF, aa=bool(flags & 0x400),
                  tc=bool(flags & 0x200), rd=bool(flags & 0x100), ra=bool(flags & 0x80), rcode=flags & 0xF)
    offset = 12
    for _ in range(qd):
        name, offset = _read_name(data, offset)
        if offset + 4 > len(data):
            raise FormatError("truncated question")
        qtype, qcls = struct.unpack("!HH", data[offset:offset + 4])
        offset += 4
        msg.questions.append(Question(name, qtype, qcls))
    for section in (msg.answers, msg.authority, msg.additional):
        count = an if section is msg.answers else ns if section is msg.authority else ar
        for _ in range(count):
            name, offset = _read_name(data, offset)
            if offset + 10 > len(data):
                raise FormatError("truncated record")
            rtype, rcls, ttl, length = struct.unpack("!HHIH", data[offset:offset + 10])
            offset += 10
            rdata = data[offset:offset + length]
            if len(rdata) != length:
                raise FormatError("record data runs past the message")
            offset += length
            if rtype == OPT:
                msg.edns_size = max(UDP_DEFAULT_SIZE, rcls)
            else:
                section.append(Record(name, rtype, ttl, rdata, cls=rcls))
    return msg


def read_id(data: bytes) -> int | None:
    return struct.unpack("!H", data[:2])[0] if len(data) >= 2 else None


# --- record data ---------------------------------------------------------------------------
def a(name: str, ttl: int, ip: str) -> Record:
    return Record(name, A, ttl, ipaddress.IPv4Address(ip).packed)


def aaaa(name: str, ttl: int, ip: str) -> Record:
    return Record(name, AAAA, ttl, ipaddress.IPv6Address(ip).packed)


def address(name: str, ttl: int, ip: str) -> Record:
    return aaaa(name, ttl, ip) if ":" in ip else a(name, ttl, ip)


def cname(name: str, ttl: int, target: str) -> Record:
    return Record(name, CNAME, ttl, encode_name(target))


def ptr(name: str, ttl: int, target: str) -> Record:
    return Record(name, PTR, ttl, encode_name(target))


def ns(name: str, ttl: int, target: str) -> Record:
    return Record(name, NS, ttl, encode_name(target))


def srv(name: str, ttl: int, priority: int, weight: int, port: int, target: str) -> Record:
    return Record(name, SRV, ttl, struct.pack("!HHH", priority, weight, port) + encode_name(target))


def txt(name: str, ttl: int, *texts: str) -> Record:
    data = b"".join(bytes([len(t.encode())]) + t.encode() for t in texts)
    return Record(name, TXT, ttl, data)


def soa(name: str, ttl: int, mname: str, rname: str, serial: int, refresh: int, retry: int, expire: int,
        minimum: int) -> Record:
    return Record(name, SOA, ttl, encode_name(mname) + encode_name(rname)
                  + struct.pack("!IIIII", serial & 0xFFFFFFFF, refresh, retry, expire, minimum))


def parse_rdata(record: Record) -> object:
    """Record data back to a value (for tests and logs): an IP, a name, a tuple for SRV/SOA."""
    if record.type in (A, AAAA):
        return str(ipaddress.ip_address(record.rdata))
    if record.type in (CNAME, PTR, NS):
        return _read_name(record.rdata, 0)[0]
    if record.type == SRV:
        priority, weight, port = struct.unpack("!HHH", record.rdata[:6])
        return priority, weight, port, _read_name(record.rdata, 6)[0]
    if record.type == SOA:
        mname, off = _read_name(record.rdata, 0)
        rname, off = _read_name(record.rdata, off)
        return (mname, rname, *struct.unpack("!IIIII", record.rdata[off:off + 20]))
    if record.type == TXT:
        out, off = [], 0
        while off < len(record.rdata):
            n = record.rdata[off]
            out.append(record.rdata[off + 1:off + 1 + n].decode())
            off += 1 + n
        return tuple(out)
    return record.rdata
