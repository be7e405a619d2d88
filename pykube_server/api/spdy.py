"""SPDY/3.1 framing: the wire format `kubectl port-forward` (and SPDY exec/attach) speaks.

Pure and without I/O, so both ends of a connection (the kubelet's server, a test's client) use
the same codec. A `Codec` holds the two zlib contexts SPDY/3 requires for one connection: a
compressor for the header blocks this side sends and a decompressor for the ones it receives,
each living for the whole connection (a header block is compressed against everything sent
before it, so a fresh context per frame would not decode). Both start from the SPDY/3 header
dictionary, and every block ends with a sync flush, which is what Go's framer (moby/spdystream,
used by client-go and the kubelet) writes and expects.

Frames are plain frozen dataclasses; headers are `dict[str, list[str]]` with lower-case names
(SPDY forbids upper case; several values travel NUL-separated in one entry).

Flow control: SPDY/3.1 defines WINDOW_UPDATE and the SETTINGS_INITIAL_WINDOW_SIZE setting, and
they are encoded and decoded here, but spdystream neither sends WINDOW_UPDATE nor waits for one,
so a peer that enforced its send window against spdystream would stall after 64 KiB. Sessions
built on this codec therefore, like spdystream, never block on a window.
"""

from __future__ import annotations

import enum
import struct
import zlib
from dataclasses import dataclass, field

VERSION = 3
FLAG_FIN = 0x01
FLAG_UNIDIRECTIONAL = 0x02
SETTINGS_INITIAL_WINDOW_SIZE = 7
DEFAULT_WINDOW = 64 * 1024
MAX_DATA_LENGTH = 0xFFFFFF

Headers = dict[str, list[str]]


class FrameType(enum.IntEnum):
    SYN_STREAM = 1
    SYN_REPLY = 2
    RST_STREAM = 3
    SETTINGS = 4
    PING = 6
    GOAWAY = 7
    HEADERS = 8
    WINDOW_UPDATE = 9


class RstStatus(enum.IntEnum):
    PROTOCOL_ERROR = 1
    INVALID_STREAM = 2
    REFUSED_STREAM = 3
    UNSUPPORTED_VERSION = 4
    CANCEL = 5
    INTERNAL_ERROR = 6
    FLOW_CONTROL_ERROR = 7
    STREAM_IN_USE = 8
    STREAM_ALREADY_CLOSED = 9
    INVALID_CREDENTIALS = 10
    FRAME_TOO_LARGE = 11


class GoAwayStatus(enum.IntEnum):
    OK = 0
    PROTOCOL_ERROR = 1
    INTERNAL_ERROR = 2


# The SPDY/3 header compression dictionary (draft 3, section 2.6.10.1): each of these words
# with a 4-byte big-endian length in front, then the tail below as it is.
_DICTIONARY_WORDS = (
    "options head post put delete trace accept accept-charset accept-encoding accept-language "
    "accept-ranges age allow authorization cache-control connection content-base content-encoding "
    "content-language content-length content-location content-md5 content-range content-type date "
    "etag expect expires from host if-match if-modified-since if-none-match if-range "
    "if-unmodified-since last-modified location max-forwards pragma proxy-authenticate "
    "proxy-authorization range referer retry-after server te trailer transfer-encoding upgrade "
    "user-agent vary via warning www-authenticate method get status"
).split() + ["200 OK"] + "version HTTP/1.1 url public set-cookie keep-alive origin".split()
_DICTIONARY_TAIL = (
    "100101201202205206300302303304305306307402405406407408409410411412413414415416417502504505"
    "203 Non-Authoritative Information" "204 No Content" "301 Moved Permanently" "400 Bad Request"
    "401 Unauthorized" "403 Forbidden" "404 Not Found" "500 Internal Server Error"
    "501 Not Implemented" "503 Service Unavailable"
    "Jan Feb Mar Apr May Jun Jul Aug Sept Oct Nov Dec 00:00:00 Mon, Tue, Wed, Thu, Fri, Sat, Sun, GMT"
    "chunked,text/html,image/png,image/jpg,image/gif,application/xml,application/xhtml+xml,"
    "text/plain,text/javascript,publicprivatemax-age=gzip,deflate,sdch"
    "charset=utf-8charset=iso-8859-1,utf-,*,enq=0."
)
DICTIONARY = b"".join(struct.pack(">I", len(w)) + w.encode() for w in _DICTIONARY_WORDS) + _DICTIONARY_TAIL.encode()


class ProtocolError(Exception):
    """The peer sent bytes that are not SPDY/3.1 (the session answers with GOAWAY)."""


@dataclass(frozen=True, slots=True)
class DataFrame:
    stream_id: int
    data: bytes = b""
    flags: int = 0

    @property
    def fin(self) -> bool:
        return bool(self.flags & FLAG_FIN)


@dataclass(frozen=True, slots=True)
class SynStream:
    stream_id: int
    headers: Headers = field(default_factory=dict)
    flags: int = 0
    associated_id: int = 0
    priority: int = 0
    slot: int = 0


@dataclass(frozen=True, slots=True)
class SynReply:
    stream_id: int
    headers: Headers = field(default_factory=dict)
    flags: int = 0


@dataclass(frozen=True, slots=True)
class HeadersFrame:
    stream_id: int
    headers: Headers = field(default_factory=dict)
    flags: int = 0


@dataclass(frozen=True, slots=True)
class RstStream:
    stream_id: int
    status: int = RstStatus.CANCEL


@dataclass(frozen=True, slots=True)
class Setting:
    id: int
    value: int
    flags: int = 0


@dataclass(frozen=True, slots=True)
class Settings:
    settings: tuple[Setting, ...] = ()
    flags: int = 0


@dataclass(frozen=True, slots=True)
class Ping:
    id: int


@dataclass(frozen=True, slots=True)
class GoAway:
    last_good_stream_id: int
    status: int = GoAwayStatus.OK


@dataclass(frozen=True, slots=True)
class WindowUpdate:
    stream_id: int
    delta: int


Frame = DataFrame | SynStream | SynReply | HeadersFrame | RstStream | Settings | Ping | GoAway | WindowUpdate


def pack_header_block(headers: Headers) -> bytes:
    """The uncompressed name/value block: counts and lengths are 32-bit in SPDY/3."""
    out = [struct.pack(">I", len(headers))]
    for name, values in headers.items():
        key, value = name.lower().encode(), b"\0".join(v.encode() for v in values)
        out += [struct.pack(">I", len(key)), key, struct.pack(">I", len(value)), value]
    return b"".join(out)


def unpack_header_block(block: bytes) -> Headers:
    try:
        (count,), pos = struct.unpack_from(">I", block), 4
        headers: Headers = {}
        for _ in range(count):
            (n,) = struct.unpack_from(">I", block, pos)
            name = block[pos + 4:pos + 4 + n].decode()
            pos += 4 + n
            (n,) = struct.unpack_from(">I", block, pos)
            value = block[pos + 4:pos + 4 + n]
            if len(value) != n:
                raise ProtocolError("truncated header block")
            pos += 4 + n
            headers.setdefault(name.lower(), []).extend(v.decode() for v in value.split(b"\0"))
    except (struct.error, UnicodeDecodeError) as exc:
        raise ProtocolError(f"malformed header block: {exc}") from exc
    return headers


class Codec:
    """Encodes frames to bytes and decodes a byte stream into frames, for one connection."""

    def __init__(self) -> None:
        self._deflate = zlib.compressobj(zlib.Z_BEST_COMPRESSION, zlib.DEFLATED, 15, 9, zlib.Z_DEFAULT_STRATEGY, DICTIONARY)
        self._inflate = zlib.decompressobj(zdict=DICTIONARY)
        self._buffer = bytearray()

    # -- encoding -------------------------------------------------------------------------
    def compress(self, headers: Headers) -> bytes:
        return self._deflate.compress(pack_header_block(headers)) + self._deflate.flush(zlib.Z_SYNC_FLUSH)

    def encode(self, frame: Frame) -> bytes:
        match frame:
            case DataFrame(stream_id, data, flags):
                if len(data) > MAX_DATA_LENGTH:
                    raise ValueError("a DATA frame carries at most 16 MiB - 1")
                return struct.pack(">II", stream_id & 0x7FFFFFFF, (flags << 24) | len(data)) + data
            case SynStream(stream_id, headers, flags, associated_id, priority, slot):
                body = struct.pack(">IIBB", stream_id, associated_id, (priority & 7) << 5, slot) + self.compress(headers)
                return _control(FrameType.SYN_STREAM, flags, body)
            case SynReply(stream_id, headers, flags):
                return _control(FrameType.SYN_REPLY, flags, struct.pack(">I", stream_id) + self.compress(headers))
            case HeadersFrame(stream_id, headers, flags):
                return _control(FrameType.HEADERS, flags, struct.pack(">I", stream_id) + self.compress(headers))
            case RstStream(stream_id, status):
                return _control(FrameType.RST_STREAM, 0, struct.pack(">II", stream_id, status))
            case Settings(settings, flags):
                body = struct.pack(">I", len(settings)) + b"".join(
                    struct.pack(">II", (s.flags << 24) | s.id, s.value) for s in settings)
                return _control(FrameType.SETTINGS, flags, body)
            case Ping(ping_id):
                return _control(FrameType.PING, 0, struct.pack(">I", ping_id))
            case GoAway(last_good, status):
                return _control(FrameType.GOAWAY, 0, struct.pack(">II", last_good, status))
            case WindowUpdate(stream_id, delta):
                return _control(FrameType.WINDOW_UPDATE, 0, struct.pack(">II", stream_id, delta))
        raise TypeError(f"not a SPDY frame: {frame!r}")

    # -- decoding -------------------------------------------------------------------------
    def feed(self, data: bytes) -> list[Frame]:
        """Every frame completed by `data`; a partial frame waits for the next call."""
        self._buffer += data
        frames: list[Frame] = []
        while len(self._buffer) >= 8:
            first, second = struct.unpack_from(">II", self._buffer)
            length = second & 0xFFFFFF
            if len(self._buffer) < 8 + length:
                break
            payload = bytes(self._buffer[8:8 + length])
            del self._buffer[:8 + length]
            flags = second >> 24
            if first & 0x80000000:
                version, kind = (first >> 16) & 0x7FFF, first & 0xFFFF
                if version != VERSION:
                    raise ProtocolError(f"unsupported SPDY version {version}")
                frame = self._control_frame(kind, flags, payload)
                if frame is not None:
                    frames.append(frame)
            else:
                frames.append(DataFrame(first & 0x7FFFFFFF, payload, flags))
        return frames

    def decompress(self, block: bytes) -> Headers:
        try:
            return unpack_header_block(self._inflate.decompress(block))
        except zlib.error as exc:
            raise ProtocolError(f"header block does not decompress: {exc}") from exc

    def _control_frame(self, kind: int, flags: int, p: bytes) -> Frame | None:
        try:
            if kind == FrameType.SYN_STREAM:
                sid, assoc, prio, slot = struct.unpack_from(">IIBB", p)
                return SynStream(sid & 0x7FFFFFFF, self.decompress(p[10:]), flags, assoc & 0x7FFFFFFF, prio >> 5, slot)
            if kind in (FrameType.SYN_REPLY, FrameType.HEADERS):
                (sid,) = struct.unpack_from(">I", p)
                cls = SynReply if kind == FrameType.SYN_REPLY else HeadersFrame
                return cls(sid & 0x7FFFFFFF, self.decompress(p[4:]), flags)
            if kind == FrameType.RST_STREAM:
                sid, status = struct.unpack_from(">II", p)
                return RstStream(sid & 0x7FFFFFFF, status)
            if kind == FrameType.SETTINGS:
                (count,) = struct.unpack_from(">I", p)
                pairs = [struct.unpack_from(">II", p, 4 + 8 * i) for i in range(count)]
                return Settings(tuple(Setting(i & 0xFFFFFF, v, i >> 24) for i, v in pairs), flags)
            if kind == FrameType.PING:
                return Ping(struct.unpack_from(">I", p)[0])
            if kind == FrameType.GOAWAY:
                last, status = struct.unpack_from(">II", p) if len(p) >= 8 else (*struct.unpack_from(">I", p), 0)
                return GoAway(last & 0x7FFFFFFF, status)
            if kind == FrameType.WINDOW_UPDATE:
                sid, delta = struct.unpack_from(">II", p)
                return WindowUpdate(sid & 0x7FFFFFFF, delta & 0x7FFFFFFF)
        except struct.error as exc:
            raise ProtocolError(f"short control frame of type {kind}") from exc
        return None  # unknown control frame types are ignored, as the draft asks


def _control(kind: int, flags: int, body: bytes) -> bytes:
    return struct.pack(">HHI", 0x8000 | VERSION, kind, (flags << 24) | len(body)) + body
