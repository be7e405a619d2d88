"""The exec/attach channel protocols (`api/remotecommand.py`): framing, negotiation, Status bytes.

The byte strings are the ones captured from kubectl 1.32/1.33 and the Python client
(docs wire-contract §8.4) and the Status bodies the kubelet and kube-apiserver's stream
translator write (Go's json.Marshal of metav1.Status: no kind, `metadata` always there).
"""

from __future__ import annotations

import json

import pytest

from pykube_server.api import remotecommand as rc


def test_negotiation_takes_the_clients_first_served_offer() -> None:
    assert rc.offered(["v5.channel.k8s.io,v4.channel.k8s.io"]) == [rc.V5, rc.V4]
    assert rc.offered(["v4.channel.k8s.io", "channel.k8s.io"]) == [rc.V4, rc.V1]
    assert rc.negotiate([rc.V5, rc.V4]) == rc.V5
    assert rc.negotiate(["SPDY/3.1+portforward.k8s.io", rc.V4]) == rc.V4
    assert rc.negotiate([]) == ""  # no offer: the unversioned binary protocol
    assert rc.negotiate(["v9.channel.k8s.io"]) is None


def test_binary_frames_carry_the_channel_in_the_first_byte() -> None:
    captured = bytes.fromhex("00696e7075742d646174610a")  # kubectl's stdin "input-data\n"
    assert rc.decode(rc.V5, captured) == (rc.STDIN, b"input-data\n")
    assert rc.encode(rc.V5, rc.STDOUT, b"hi\n") == b"\x01hi\n"
    assert rc.encode(rc.V4, rc.STDERR) == b"\x02"
    assert rc.decode(rc.V5, b"\xff\x00") == (rc.CLOSE, b"\x00")  # kubectl's stdin half-close
    assert rc.decode(rc.V5, "\x00hi\n") == (rc.STDIN, b"hi\n")  # the Python client's write_stdin(str)


def test_base64_frames_are_text_with_a_digit_channel() -> None:
    assert rc.encode(rc.V1_BASE64, rc.STDOUT, b"hello") == "1aGVsbG8="
    assert rc.decode(rc.V4_BASE64, "0aGVsbG8=") == (rc.STDIN, b"hello")
    assert rc.decode(rc.V1_BASE64, b"1aGk=") == (rc.STDOUT, b"hi")
    with pytest.raises(rc.ProtocolError):
        rc.decode(rc.V4_BASE64, "xabc")
    with pytest.raises(rc.ProtocolError):
        rc.decode(rc.V4_BASE64, "0%%%")
    with pytest.raises(rc.ProtocolError):
        rc.decode(rc.V5, b"")


def test_close_signal_exists_only_in_v5() -> None:
    assert rc.close_signal(rc.V5, rc.STDIN) == b"\xff\x00"
    assert rc.close_signal(rc.V4, rc.STDIN) is None


def test_resize_messages_as_kubectl_sends_them() -> None:
    captured = bytes.fromhex("7b225769647468223a3130302c22486569676874223a33307d0a")
    assert rc.parse_resize(captured) == [(100, 30)]
    assert rc.parse_resize(b'{"Width":80,"Height":24}\n{"Width":120,"Height":40}\n') == [(80, 24), (120, 40)]
    with pytest.raises(rc.ProtocolError):
        rc.parse_resize(b"{nope")


def test_status_bodies_are_gos_json_marshal_of_metav1_status() -> None:
    assert rc.status_payload(rc.V5, rc.success()) == b'{"metadata":{},"status":"Success"}'
    failure = rc.status_payload(rc.V4, rc.exit_code_status(3, "command terminated with exit code 3"))
    assert failure == (b'{"metadata":{},"status":"Failure","message":"command terminated with non-zero exit code: '
                       b'command terminated with exit code 3","reason":"NonZeroExitCode",'
                       b'"details":{"causes":[{"reason":"ExitCode","message":"3"}]}}')
    internal = json.loads(rc.status_payload(rc.V5, rc.internal_error("boom")) or b"")
    assert internal == {"metadata": {}, "status": "Failure", "message": "Internal error occurred: boom",
                        "reason": "InternalError", "details": {"causes": [{"message": "boom"}]}, "code": 500}


def test_pre_v4_protocols_write_bare_failure_text_and_nothing_on_success() -> None:
    assert rc.status_payload(rc.V1, rc.success()) is None
    assert rc.status_payload(rc.V1, rc.internal_error("x")) == b"Internal error occurred: x"


def test_exit_code_is_read_as_client_go_and_the_python_client_read_it() -> None:
    kubelet = rc.exit_code_status(42, "error executing command [sh -c exit 42], exit code 42")
    assert rc.exit_code_of(kubelet) == 42
    assert rc.exit_code_of(rc.success()) is None
    assert rc.exit_code_of(rc.internal_error("x")) is None


def test_the_api_servers_translator_rewords_the_kubelets_status() -> None:
    kubelet = rc.exit_code_status(3, "error executing command [sh -c exit 3], exit code 3")
    assert rc.translated(kubelet)["message"] == ("command terminated with non-zero exit code: "
                                                 "command terminated with exit code 3")
    assert rc.translated(kubelet)["details"] == {"causes": [{"reason": "ExitCode", "message": "3"}]}
    assert rc.translated(rc.success()) == {"metadata": {}, "status": "Success"}
    inner = rc.internal_error("error executing command in container: nope")
    assert rc.translated(inner)["message"] == (
        "Internal error occurred: Internal error occurred: error executing command in container: nope")
