"""Service account signing keys: generated once into the data dir, or read from the flags' files.

kubeadm writes `pki/sa.key` (RSA 2048, the private key kube-apiserver signs with via
`--service-account-signing-key-file` and the controller manager signs legacy Secret tokens with
via `--service-account-private-key-file`) and `pki/sa.pub` (its public half, which
`--service-account-key-file` names for verification). `up` does the same on first start and
reuses the pair afterwards, so tokens survive restarts. A key file may hold several PEM blocks:
public keys, RSA/EC/PKCS#8 private keys (their public halves verify) or certificates, as kube
accepts.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa

from pykube_server.api.jwt import PrivateKey, PublicKey, algorithm_for
from pykube_server.apiserver.certs import pki_lock, write_file_atomic

SIGNING_KEY_FILE = "sa.key"
PUBLIC_KEY_FILE = "sa.pub"
RSA_BITS = 2048
"""What kubeadm generates for service account tokens."""


class KeyFileError(ValueError):
    """A key file holds nothing usable."""


@dataclass(frozen=True)
class KeySet:
    """The key tokens are signed with, and every key a token may verify against."""

    signing: PrivateKey | None
    public: list[PublicKey] = field(default_factory=list)


def ensure_key_pair(directory: str | os.PathLike[str]) -> tuple[Path, Path]:
    """`sa.key` and `sa.pub` in `directory`, created on first call and kept afterwards."""
    pki = Path(directory)
    pki.mkdir(parents=True, exist_ok=True)
    key_path, pub_path = pki / SIGNING_KEY_FILE, pki / PUBLIC_KEY_FILE
    with pki_lock(pki):  # API servers sharing the data dir, starting at once, make one pair
        if not key_path.exists():
            key = rsa.generate_private_key(public_exponent=65537, key_size=RSA_BITS)
            write_file_atomic(key_path, key.private_bytes(serialization.Encoding.PEM,
                                                          serialization.PrivateFormat.TraditionalOpenSSL,
                                                          serialization.NoEncryption()), mode=0o600)
        if not pub_path.exists():
            write_file_atomic(pub_path, _public_pem(load_private_key(key_path).public_key()), mode=0o644)
    return key_path, pub_path


def _public_pem(public: PublicKey) -> bytes:
    return public.public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)


def _pem_blocks(data: bytes) -> list[bytes]:
    blocks, current = [], []
    for line in data.splitlines(keepends=True):
        if line.startswith(b"-----BEGIN "):
            current = [line]
        elif current:
            current.append(line)
            if line.startswith(b"-----END "):
                blocks.append(b"".join(current))
                current = []
    return blocks


def load_private_key(path: str | os.PathLike[str]) -> PrivateKey:
    """The first private key in a PEM file (RSA, or ECDSA P-256)."""
    for block in _pem_blocks(Path(path).read_bytes()):
        if b"PRIVATE KEY" in block.split(b"\n", 1)[0]:
            key = serialization.load_pem_private_key(block, password=None)
            if isinstance(key, (rsa.RSAPrivateKey, ec.EllipticCurvePrivateKey)):
                algorithm_for(key)
                return key
    raise KeyFileError(f"no private key found in {os.fspath(path)}")


def load_public_keys(path: str | os.PathLike[str]) -> list[PublicKey]:
    """Every verification key in a PEM file, in file order."""
    keys: list[PublicKey] = []
    for block in _pem_blocks(Path(path).read_bytes()):
        header = block.split(b"\n", 1)[0]
        if b"PRIVATE KEY" in header:
            public = serialization.load_pem_private_key(block, password=None).public_key()
        elif b"CERTIFICATE" in header:
            public = x509.load_pem_x509_certificate(block).public_key()
        elif b"PUBLIC KEY" in header:
            public = serialization.load_pem_public_key(block)
        else:
            continue
        if isinstance(public, (rsa.RSAPublicKey, ec.EllipticCurvePublicKey)):
            keys.append(public)
    if not keys:
        raise KeyFileError(f"data does not contain any valid RSA or ECDSA public keys: {os.fspath(path)}")
    return keys


def load_key_set(signing_key_file: str, key_files: tuple[str, ...]) -> KeySet:
    """kube-apiserver's rule: verify with `--service-account-key-file`s, defaulting to the
    signing key's public half when none is given."""
    signing = load_private_key(signing_key_file) if signing_key_file else None
    public: list[PublicKey] = []
    for path in key_files:
        public.extend(load_public_keys(path))
    if not public and signing is not None:
        public.append(signing.public_key())
    return KeySet(signing, public)


def ephemeral_key_set() -> KeySet:
    """A fresh in-memory pair, for servers started without key files (in-process tests)."""
    key = rsa.generate_private_key(public_exponent=65537, key_size=RSA_BITS)
    return KeySet(key, [key.public_key()])
