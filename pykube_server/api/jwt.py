"""Compact JSON Web Tokens (JWS, RS256 and ES256): the format of Kubernetes service account tokens.

Shared by the API server (which issues and verifies bound tokens) and the controller manager's
token controller (which signs legacy Secret tokens), so it lives in the pure wire vocabulary.

The byte layout follows what kube-apiserver's go-jose produces: the header and the claims are
JSON objects with their keys sorted (go-jose merges claim structs into a Go map before
marshalling, and Go sorts map keys), the header is just `{"alg":...,"kid":...}` with no `typ`,
and every part is base64url without padding. An ES256 signature is the raw `r || s` pair, not
DER, as RFC 7518 requires.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
from typing import Any

import orjson
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa
from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature, encode_dss_signature

PrivateKey = rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey
PublicKey = rsa.RSAPublicKey | ec.EllipticCurvePublicKey

ES256_PART = 32


class TokenError(ValueError):
    """The token is not a well-formed JWS, or its signature does not verify."""


def b64encode(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def b64decode(text: str) -> bytes:
    try:
        return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
    except (binascii.Error, ValueError) as e:
        raise TokenError("illegal base64 data") from e


def key_id(public: PublicKey) -> str:
    """kube's key id: base64url(SHA-256(PKIX DER of the public key)), so every API server that
    shares a key names it the same way and verifiers can pick the key from the header."""
    der = public.public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
    return b64encode(hashlib.sha256(der).digest())


def algorithm_for(key: PrivateKey | PublicKey) -> str:
    if isinstance(key, (rsa.RSAPrivateKey, rsa.RSAPublicKey)):
        return "RS256"
    if isinstance(key, (ec.EllipticCurvePrivateKey, ec.EllipticCurvePublicKey)) and key.curve.name == "secp256r1":
        return "ES256"
    raise ValueError(f"unsupported service account key type {type(key).__name__}")


def _json(value: Any) -> bytes:
    return orjson.dumps(value, option=orjson.OPT_SORT_KEYS)


def encode(claims: dict[str, Any], key: PrivateKey, kid: str | None = None) -> str:
    """Sign `claims` with `key`; `kid` defaults to the key's kube key id."""
    alg = algorithm_for(key)
    header = {"alg": alg, "kid": kid if kid is not None else key_id(key.public_key())}
    signing_input = f"{b64encode(_json(header))}.{b64encode(_json(claims))}"
    return f"{signing_input}.{b64encode(_sign(key, signing_input.encode('ascii')))}"


def _sign(key: PrivateKey, data: bytes) -> bytes:
    if isinstance(key, rsa.RSAPrivateKey):
        return key.sign(data, padding.PKCS1v15(), hashes.SHA256())
    r, s = decode_dss_signature(key.sign(data, ec.ECDSA(hashes.SHA256())))
    return r.to_bytes(ES256_PART, "big") + s.to_bytes(ES256_PART, "big")


def split(token: str) -> tuple[dict[str, Any], dict[str, Any], bytes, bytes]:
    """(header, claims, signing input, signature) without verifying anything."""
    parts = token.split(".")
    if len(parts) != 3:
        raise TokenError("compact JWS format must have three parts")
    try:
        header = orjson.loads(b64decode(parts[0]))
        claims = orjson.loads(b64decode(parts[1]))
    except orjson.JSONDecodeError as e:
        raise TokenError("invalid JSON in token") from e
    if not isinstance(header, dict) or not isinstance(claims, dict):
        raise TokenError("invalid JSON in token")
    return header, claims, f"{parts[0]}.{parts[1]}".encode("ascii"), b64decode(parts[2])


def unverified_claims(token: str) -> dict[str, Any] | None:
    """The payload of something shaped like a JWT, or None (e.g. a static token)."""
    try:
        return split(token)[1]
    except (TokenError, UnicodeEncodeError):
        return None


def verify(token: str, keys: list[PublicKey]) -> dict[str, Any]:
    """The claims, once the signature verifies with one of `keys`.

    Like go-jose's verification in kube: a `kid` in the header narrows the candidates to the key
    with that id; the algorithm named in the header must be the key's.
    """
    header, claims, signing_input, signature = split(token)
    kid = header.get("kid")
    candidates = [k for k in keys if not kid or key_id(k) == kid]
    for public in candidates:
        if header.get("alg") != algorithm_for(public):
            continue
        if _verifies(public, signing_input, signature):
            return claims
    raise TokenError("invalid signature")


def _verifies(public: PublicKey, data: bytes, signature: bytes) -> bool:
    try:
        if isinstance(public, rsa.RSAPublicKey):
            public.verify(signature, data, padding.PKCS1v15(), hashes.SHA256())
        else:
            if len(signature) != 2 * ES256_PART:
                return False
            der = encode_dss_signature(int.from_bytes(signature[:ES256_PART], "big"),
                                       int.from_bytes(signature[ES256_PART:], "big"))
            public.verify(der, data, ec.ECDSA(hashes.SHA256()))
    except InvalidSignature:
        return False
    return True


def public_jwk(public: PublicKey) -> dict[str, str]:
    """The key as a JWK with `use: sig`, `kty`, `kid`, `alg` and its numbers (kube's /openid/v1/jwks)."""
    kid = key_id(public)
    if isinstance(public, rsa.RSAPublicKey):
        numbers = public.public_numbers()
        return {"use": "sig", "kty": "RSA", "kid": kid, "alg": "RS256",
                "n": b64encode(numbers.n.to_bytes((numbers.n.bit_length() + 7) // 8, "big")),
                "e": b64encode(numbers.e.to_bytes((numbers.e.bit_length() + 7) // 8, "big"))}
    point = public.public_numbers()
    return {"use": "sig", "kty": "EC", "kid": kid, "crv": "P-256", "alg": "ES256",
            "x": b64encode(point.x.to_bytes(ES256_PART, "big")), "y": b64encode(point.y.to_bytes(ES256_PART, "big"))}
