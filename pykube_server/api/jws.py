"""Detached JWS (HS256) over a bootstrap token, as kubeadm's cluster-info uses it.

The bootstrap signer signs the `kubeconfig` of `kube-public/cluster-info` with every signing
bootstrap token (`jws-kubeconfig-<token id>`); a joining node that knows a token checks the
signature before it trusts the CA inside (RFC 7515 compact serialization, payload detached:
`header..signature`, the HMAC key being the token's secret half).
"""

from __future__ import annotations

import base64
import hashlib
import hmac

import orjson


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def sign_detached(payload: bytes, token_id: str, token_secret: str) -> str:
    header = _b64(orjson.dumps({"alg": "HS256", "kid": token_id}))
    signing_input = f"{header}.{_b64(payload)}".encode()
    signature = hmac.new(token_secret.encode(), signing_input, hashlib.sha256).digest()
    return f"{header}..{_b64(signature)}"


def verify_detached(detached: str, payload: bytes, token_id: str, token_secret: str) -> bool:
    """True when `detached` is an HS256 signature of `payload` by this token."""
    parts = detached.split(".")
    if len(parts) != 3 or parts[1]:
        return False
    try:
        header = orjson.loads(_unb64(parts[0]))
        signature = _unb64(parts[2])
    except (ValueError, orjson.JSONDecodeError):
        return False
    if not isinstance(header, dict) or header.get("alg") != "HS256" or header.get("kid") not in (None, token_id):
        return False
    expected = hmac.new(token_secret.encode(), f"{parts[0]}.{_b64(payload)}".encode(), hashlib.sha256).digest()
    return hmac.compare_digest(expected, signature)
