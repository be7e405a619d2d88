"""Bootstrap token Secret fields, as the authenticator and the signer/cleaner read them."""

from __future__ import annotations

import base64
import datetime as dt

from pykube_server.api.bootstraptoken import expired, expires_at, token_fields

NOW = dt.datetime(2026, 11, 27, 12, 0, tzinfo=dt.timezone.utc)


def b64(text: str) -> str:
    return base64.b64encode(text.encode()).decode()


def test_fields_are_decoded_and_garbage_left_out() -> None:
    secret = {"data": {"token-id": b64("abcdef"), "token-secret": b64("0123456789abcdef"), "bad": base64.b64encode(b"\xff\xfe").decode()}}
    assert token_fields(secret) == {"token-id": "abcdef", "token-secret": "0123456789abcdef"}
    assert token_fields({}) == {}


def test_expiration() -> None:
    assert expires_at({}) is None and not expired({}, NOW)
    assert expired({"expiration": "2026-11-27T11:59:59Z"}, NOW)
    assert not expired({"expiration": "2026-11-27T12:00:01Z"}, NOW)
    assert expired({"expiration": "tomorrow"}, NOW)  # unreadable counts as expired, as in kube
