"""The WebSocket channel protocols of exec and attach (apimachinery `remotecommand`/`wsstream`).

Pure codec, no I/O, shared by the kubelet (which speaks them to the API server) and the API
server (which relays them to kubectl and the Python client). Why it lives in `api/`: both
sides must frame, negotiate and word Status bodies identically, byte for byte.

Every WebSocket message carries one channel: binary protocols put the channel in the first
byte; the base64 ones send a text message whose first character is the channel's digit and
whose rest is base64. Channels: 0 stdin, 1 stdout, 2 stderr, 3 error (the session's end
status), 4 resize (JSON `{"Width":..,"Height":..}`). `v5.channel.k8s.io` adds channel 255, a
close signal whose one data byte names the stream being closed (kubectl sends `ff 00` when its
stdin ends). Before `v4` the error channel carried the bare message of a failure and nothing
on success; from `v4` on it carries a JSON `metav1.Status` as Go's `json.Marshal` writes it
(no kind/apiVersion, `metadata` always present).
"""

from __future__ import annotations

import base64
import json
from collections.abc import Iterable, Sequence
from typing import Any

STDIN, STDOUT, STDERR, ERROR, RESIZE = 0, 1, 2, 3, 4
CLOSE = 255

V5 = "v5.channel.k8s.io"
V4 = "v4.channel.k8s.io"
V4_BASE64 = "v4.base64.channel.k8s.io"
V1 = "channel.k8s.io"
V1_BASE64 = "base64.channel.k8s.io"

PROTOCOLS: tuple[str, ...] = (V5, V4, V4_BASE64, V1, V1_BASE64)
"""Every channel protocol served, newest first."""

NON_ZERO_EXIT_CODE = "NonZeroExitCode"
EXIT_CODE_CAUSE = "ExitCode"


class ProtocolError(ValueError):
    """A message that does not fit the negotiated protocol."""


def offered(headers: Iterable[str]) -> list[str]:
    """The subprotocols a client offers, in its order (one header or several, comma-separated)."""
    return [p.strip() for value in headers for p in value.split(",") if p.strip()]


def negotiate(client_offers: Sequence[str]) -> str | None:
    """The protocol to answer with: the client's first offer we serve.

    No offer at all means the unversioned binary protocol (`""`, wsstream's default); offers
    of which none is served give None (the handshake must be refused)."""
    if not client_offers:
        return ""
    for proto in client_offers:
        if proto in PROTOCOLS:
            return proto
    return None


def is_base64(protocol: str) -> bool:
    return protocol in (V4_BASE64, V1_BASE64)


def json_status(protocol: str) -> bool:
    """Whether the error channel carries a JSON Status (v4 and later) or bare text."""
    return protocol in (V5, V4, V4_BASE64)


def encode(protocol: str, channel: int, data: bytes = b"") -> bytes | str:
    """One message for `channel` (bytes for binary protocols, str for base64 ones)."""
    if is_base64(protocol):
        return str(channel) + base64.b64encode(data).decode()
    return bytes((channel,)) + data


def decode(protocol: str, message: bytes | str) -> tuple[int, bytes]:
    """(channel, data) of one received message.

    The frame type does not matter, the protocol does (wsstream reads every message as bytes):
    the Python client sends `write_stdin("text")` as a *text* message on binary protocols."""
    raw = message.encode() if isinstance(message, str) else bytes(message)
    if not raw:
        raise ProtocolError("empty message")
    if is_base64(protocol):
        if not raw[:1].isdigit():
            raise ProtocolError(f"invalid channel {raw[:1]!r}")
        try:
            return int(raw[:1]), base64.b64decode(raw[1:], validate=True)
        except ValueError as exc:
            raise ProtocolError(str(exc)) from exc
    return raw[0], raw[1:]


def close_signal(protocol: str, channel: int) -> bytes | str | None:
    """The v5 message that closes `channel`, or None when the protocol has no such signal."""
    return encode(protocol, CLOSE, bytes((channel,))) if protocol == V5 else None


def parse_resize(data: bytes) -> list[tuple[int, int]]:
    """Terminal sizes in a resize message: one or more JSON objects, newline-separated as
    client-go's encoder writes them. Returns (width, height) pairs."""
    decoder = json.JSONDecoder()
    text, pos, sizes = data.decode("utf-8", "replace"), 0, []
    while True:
        while pos < len(text) and text[pos].isspace():
            pos += 1
        if pos >= len(text):
            return sizes
        try:
            obj, pos = decoder.raw_decode(text, pos)
        except ValueError as exc:
            raise ProtocolError(f"invalid resize message: {exc}") from exc
        if isinstance(obj, dict):
            sizes.append((int(obj.get("Width") or 0), int(obj.get("Height") or 0)))


# --- statuses on the error channel ----------------------------------------------------------
def success() -> dict[str, Any]:
    return {"metadata": {}, "status": "Success"}


def exit_code_status(code: int, message: str) -> dict[str, Any]:
    """A command that ended with a non-zero exit code (what kubectl turns into its own exit code)."""
    return {"metadata": {}, "status": "Failure", "message": f"command terminated with non-zero exit code: {message}",
            "reason": NON_ZERO_EXIT_CODE, "details": {"causes": [{"reason": EXIT_CODE_CAUSE, "message": str(code)}]}}


def internal_error(message: str) -> dict[str, Any]:
    """`apierrors.NewInternalError(err)` as json.Marshal writes it."""
    return {"metadata": {}, "status": "Failure", "message": f"Internal error occurred: {message}",
            "reason": "InternalError", "details": {"causes": [{"message": message}]}, "code": 500}


def status_payload(protocol: str, status: dict[str, Any]) -> bytes | None:
    """The error-channel data for `status`; None when nothing is to be sent (pre-v4 success)."""
    if json_status(protocol):
        return json.dumps(status, separators=(",", ":")).encode()
    if status.get("status") == "Success":
        return None
    return str(status.get("message", "")).encode()


def exit_code_of(status: dict[str, Any]) -> int | None:
    """The exit code a NonZeroExitCode status reports (client-go's reading of it)."""
    if status.get("status") != "Failure" or status.get("reason") != NON_ZERO_EXIT_CODE:
        return None
    for cause in (status.get("details") or {}).get("causes") or []:
        if cause.get("reason") == EXIT_CODE_CAUSE:
            try:
                return int(cause.get("message", ""))
            except ValueError:
                return None
    return None


def translated(status: dict[str, Any]) -> dict[str, Any]:
    """What kube-apiserver's stream translator (v5 WebSocket in, kubelet stream out) writes
    for the status the kubelet sent: client-go reads it back into an error, and the translator
    words that error again. So an exit code becomes `command terminated with non-zero exit
    code: command terminated with exit code N`, and any other failure an InternalError whose
    message is the kubelet's (`Internal error occurred: Internal error occurred: ...`)."""
    if status.get("status") == "Success":
        return success()
    code = exit_code_of(status)
    if code is not None:
        return exit_code_status(code, f"command terminated with exit code {code}")
    if status.get("status") == "Failure":
        return internal_error(str(status.get("message", "")))
    return internal_error("error stream protocol error: unknown error")
