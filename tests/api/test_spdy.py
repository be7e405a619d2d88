"""The SPDY/3.1 codec: frame round trips, incremental decoding, and header compression checked
against bytes kubectl 1.33 really sent (its first two SYN_STREAMs of a port-forward)."""

from __future__ import annotations

import struct
import zlib

import pytest

from pykube_server.api import spdy

# `kubectl port-forward pod/web 18484:8080`, first local connection: the error stream, then
# the data stream, as they reached the kubelet (captured from the WebSocket tunnel).
KUBECTL_ERROR_SYN = bytes.fromhex(
    "80030001" "0000003e" "00000001" "00000000" "00" "00"
    "78f9e3c6a7c202253a703a2b294a4dcc851625aca9a0808614cb45e01c60616061c0c0c0c0590489c64c50f2663400000000ffff")
KUBECTL_DATA_SYN = bytes.fromhex(
    "80030001" "0000001c" "00000003" "00000000" "00" "00" "826ac61445350e543225a29b06000000ffff")


def test_dictionary_is_the_spdy3_one() -> None:
    # 1423 bytes, and the zlib stream kubectl wrote names its Adler-32 as the preset dictionary
    assert len(spdy.DICTIONARY) == 1423
    assert spdy.DICTIONARY.startswith(b"\x00\x00\x00\x07options\x00\x00\x00\x04head")
    assert spdy.DICTIONARY.endswith(b"charset=utf-8charset=iso-8859-1,utf-,*,enq=0.")
    block = KUBECTL_ERROR_SYN[18:]
    assert block[:2] == b"\x78\xf9"  # FDICT set
    assert struct.unpack(">I", block[2:6])[0] == zlib.adler32(spdy.DICTIONARY)


def test_decodes_kubectls_stream_pair_with_one_decompression_context() -> None:
    codec = spdy.Codec()
    error, data = codec.feed(KUBECTL_ERROR_SYN + KUBECTL_DATA_SYN)
    assert error == spdy.SynStream(1, {"streamtype": ["error"], "port": ["8080"], "requestid": ["0"]})
    assert data == spdy.SynStream(3, {"streamtype": ["data"], "port": ["8080"], "requestid": ["0"]})


def test_second_header_block_needs_the_first_ones_context() -> None:
    with pytest.raises(spdy.ProtocolError):
        spdy.Codec().feed(KUBECTL_DATA_SYN)


def test_frames_split_anywhere_decode_the_same() -> None:
    wire = KUBECTL_ERROR_SYN + KUBECTL_DATA_SYN + spdy.Codec().encode(spdy.DataFrame(3, b"GET / HTTP/1.1\r\n"))
    codec, frames = spdy.Codec(), []
    for i in range(len(wire)):  # one byte at a time, as small WebSocket messages may split them
        frames += codec.feed(wire[i:i + 1])
    assert [type(f) for f in frames] == [spdy.SynStream, spdy.SynStream, spdy.DataFrame]
    assert frames[2] == spdy.DataFrame(3, b"GET / HTTP/1.1\r\n")


@pytest.mark.parametrize("frame", [
    spdy.DataFrame(5, b"payload"),
    spdy.DataFrame(5, b"", spdy.FLAG_FIN),
    spdy.SynStream(7, {"streamtype": ["data"], "port": ["80"], "x": ["a", "b"]}, spdy.FLAG_FIN, 0, 3, 0),
    spdy.SynReply(7, {}),
    spdy.SynReply(9, {"status": ["ok"]}, spdy.FLAG_FIN),
    spdy.HeadersFrame(7, {"k": ["v"]}),
    spdy.RstStream(7, spdy.RstStatus.CANCEL),
    spdy.Settings((spdy.Setting(spdy.SETTINGS_INITIAL_WINDOW_SIZE, 65536, 1), spdy.Setting(4, 100))),
    spdy.Ping(2),
    spdy.GoAway(7, spdy.GoAwayStatus.PROTOCOL_ERROR),
    spdy.WindowUpdate(7, 1024),
])
def test_round_trip(frame: spdy.Frame) -> None:
    sender, receiver = spdy.Codec(), spdy.Codec()
    assert receiver.feed(sender.encode(frame)) == [frame]


def test_control_frame_layout() -> None:
    codec = spdy.Codec()
    assert codec.encode(spdy.Ping(1)) == bytes.fromhex("80030006" "00000004" "00000001")
    assert codec.encode(spdy.RstStream(3, spdy.RstStatus.CANCEL)) == bytes.fromhex("80030003" "00000008" "00000003" "00000005")
    assert codec.encode(spdy.DataFrame(3, b"ab", spdy.FLAG_FIN)) == bytes.fromhex("00000003" "01000002") + b"ab"
    assert codec.encode(spdy.WindowUpdate(1, 10)) == bytes.fromhex("80030009" "00000008" "00000001" "0000000a")


def test_header_compression_context_spans_the_connection() -> None:
    sender, receiver = spdy.Codec(), spdy.Codec()
    headers = {"streamtype": ["error"], "port": ["8080"], "requestid": ["0"]}
    first, second = sender.encode(spdy.SynStream(1, headers)), sender.encode(spdy.SynStream(3, headers))
    assert len(second) < len(first)  # the second block refers back into the first
    assert receiver.feed(first + second) == [spdy.SynStream(1, headers), spdy.SynStream(3, headers)]


def test_header_names_are_lower_cased_and_values_nul_joined() -> None:
    block = spdy.pack_header_block({"Port": ["80", "81"]})
    assert block == struct.pack(">I", 1) + struct.pack(">I", 4) + b"port" + struct.pack(">I", 5) + b"80\x0081"
    assert spdy.unpack_header_block(block) == {"port": ["80", "81"]}


def test_other_versions_are_refused() -> None:
    with pytest.raises(spdy.ProtocolError):
        spdy.Codec().feed(bytes.fromhex("80020006" "00000004" "00000001"))


def test_unknown_control_frames_are_skipped() -> None:
    codec = spdy.Codec()
    assert codec.feed(bytes.fromhex("80030005" "00000000") + codec.encode(spdy.Ping(4))) == [spdy.Ping(4)]
