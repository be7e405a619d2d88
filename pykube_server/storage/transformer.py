"""Encryption at rest: value transformers between the API server and its backend.

kube-apiserver encrypts chosen resources before they reach etcd and decrypts them on the way
back (`storage/value`). Each stored value carries a prefix naming how it was written,
`k8s:enc:<provider>:v1:<key name>:`, so a reader can pick the right key among several and the
first provider of a resource is the one that writes. The formats are kube's, so a data file
could be read by either:

* aescbc: prefix, 16-byte IV, AES-CBC ciphertext with PKCS#7 padding;
* aesgcm: prefix, 12-byte nonce, AES-GCM ciphertext+tag, the storage key as associated data;
* secretbox: prefix, 24-byte nonce, XSalsa20-Poly1305 box (NaCl's secretbox);
* identity: the value as is (no prefix).

`TransformingBackend` wraps any `Backend`: values under a configured key prefix are encrypted
on write and decrypted on every read path (get, scan, watch). A value read through a provider
other than the writing one is *stale*; the store rewrites a stale object even when an update
changes nothing, which is how `kubectl get secrets -A -o json | kubectl replace -f -` moves every
Secret to a new key (kube's documented rotation).
"""

from __future__ import annotations

import os
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass, replace
from typing import Protocol

from cryptography.hazmat.primitives import padding
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM as _AESGCM

from pykube_server.storage.backend import Backend, Event, KeyValue, Page


class TransformError(Exception):
    """A stored value no configured provider can read (wrong key, corrupt data)."""


class Transformer(Protocol):
    prefix: bytes
    """What values it wrote start with (empty for identity)."""

    def encrypt(self, data: bytes, key: str) -> bytes: ...

    def decrypt(self, data: bytes, key: str) -> bytes:
        """`data` without the prefix; raises TransformError."""
        ...


def _prefix(provider: str, name: str) -> bytes:
    return f"k8s:enc:{provider}:v1:{name}:".encode()


class Identity:
    prefix = b""

    def encrypt(self, data: bytes, key: str) -> bytes:
        return data

    def decrypt(self, data: bytes, key: str) -> bytes:
        return data


class AESCBC:
    def __init__(self, name: str, secret: bytes) -> None:
        if len(secret) not in (16, 24, 32):
            raise ValueError(f"aescbc key {name!r} must be 16, 24 or 32 bytes, not {len(secret)}")
        self.prefix = _prefix("aescbc", name)
        self._key = secret

    def encrypt(self, data: bytes, key: str) -> bytes:
        iv = os.urandom(16)
        padder = padding.PKCS7(128).padder()
        padded = padder.update(data) + padder.finalize()
        enc = Cipher(algorithms.AES(self._key), modes.CBC(iv)).encryptor()
        return self.prefix + iv + enc.update(padded) + enc.finalize()

    def decrypt(self, data: bytes, key: str) -> bytes:
        if len(data) < 32 or len(data) % 16:
            raise TransformError("the stored data is not a multiple of the block size")
        dec = Cipher(algorithms.AES(self._key), modes.CBC(data[:16])).decryptor()
        padded = dec.update(data[16:]) + dec.finalize()
        unpadder = padding.PKCS7(128).unpadder()
        try:
            return unpadder.update(padded) + unpadder.finalize()
        except ValueError as exc:
            raise TransformError("invalid PKCS7 data (empty or not padded)") from exc


class AESGCM:
    def __init__(self, name: str, secret: bytes) -> None:
        if len(secret) not in (16, 24, 32):
            raise ValueError(f"aesgcm key {name!r} must be 16, 24 or 32 bytes, not {len(secret)}")
        self.prefix = _prefix("aesgcm", name)
        self._aead = _AESGCM(secret)

    def encrypt(self, data: bytes, key: str) -> bytes:
        nonce = os.urandom(12)
        return self.prefix + nonce + self._aead.encrypt(nonce, data, key.encode())

    def decrypt(self, data: bytes, key: str) -> bytes:
        try:
            return self._aead.decrypt(data[:12], data[12:], key.encode())
        except Exception as exc:
            raise TransformError("cipher: message authentication failed") from exc


class Secretbox:
    def __init__(self, name: str, secret: bytes) -> None:
        import nacl.secret  # only needed when configured

        if len(secret) != 32:
            raise ValueError(f"secretbox key {name!r} must be 32 bytes, not {len(secret)}")
        self.prefix = _prefix("secretbox", name)
        self._box = nacl.secret.SecretBox(secret)

    def encrypt(self, data: bytes, key: str) -> bytes:
        return self.prefix + bytes(self._box.encrypt(data))

    def decrypt(self, data: bytes, key: str) -> bytes:
        import nacl.exceptions

        try:
            return bytes(self._box.decrypt(data))
        except nacl.exceptions.CryptoError as exc:
            raise TransformError("output array was not large enough for encryption") from exc


@dataclass(frozen=True, slots=True)
class Rule:
    """The providers for keys under `key_prefix`, in order: the first one writes."""

    key_prefix: str
    providers: tuple[Transformer, ...]


class Transformers:
    """Which providers apply to a key: the first rule whose prefix matches (the order of the
    configuration's resources, as kube applies the first entry that names a resource)."""

    def __init__(self, rules: Sequence[Rule]) -> None:
        self.rules = list(rules)

    def providers_for(self, key: str) -> tuple[Transformer, ...] | None:
        for rule in self.rules:
            if key.startswith(rule.key_prefix):
                return rule.providers
        return None

    def encrypt(self, key: str, value: bytes) -> bytes:
        providers = self.providers_for(key)
        return value if not providers else providers[0].encrypt(value, key)

    def decrypt(self, key: str, value: bytes) -> tuple[bytes, bool]:
        """(plain value, stale): stale when the value was not written by the first provider."""
        providers = self.providers_for(key)
        if not providers:
            return value, False
        for i, provider in enumerate(providers):
            if provider.prefix:
                if value.startswith(provider.prefix):
                    return provider.decrypt(value[len(provider.prefix):], key), i != 0
            elif not value.startswith(b"k8s:enc:"):
                return value, i != 0
        if value.startswith(b"k8s:enc:"):
            raise TransformError(f"no matching prefix found for the data stored at {key}")
        raise TransformError(f"identity transformer tried to read encrypted data at {key}")


class TransformingBackend:
    """A `Backend` whose values under the configured prefixes are encrypted at rest."""

    def __init__(self, inner: Backend, transformers: Transformers) -> None:
        self.inner = inner
        self.transformers = transformers
        self._stale: set[str] = set()

    def is_stale(self, key: str) -> bool:
        """True when the last value read at `key` was not written by the writing provider."""
        return key in self._stale

    def _plain(self, kv: KeyValue) -> KeyValue:
        value, stale = self.transformers.decrypt(kv.key, kv.value)
        if stale:
            self._stale.add(kv.key)
        else:
            self._stale.discard(kv.key)
        return replace(kv, value=value)

    async def get(self, key: str, *, revision: int = 0) -> KeyValue:
        return self._plain(await self.inner.get(key, revision=revision))

    async def scan(self, prefix: str, *, revision: int = 0, after: str = "", limit: int = 0) -> Page:
        page = await self.inner.scan(prefix, revision=revision, after=after, limit=limit)
        if self.transformers.providers_for(prefix) is None and not any(
                r.key_prefix.startswith(prefix) for r in self.transformers.rules):
            return page
        return replace(page, items=[self._plain(kv) for kv in page.items])

    async def create(self, key: str, value: bytes) -> int:
        revision = await self.inner.create(key, self.transformers.encrypt(key, value))
        self._stale.discard(key)
        return revision

    async def update(self, key: str, value: bytes, *, revision: int) -> int:
        new = await self.inner.update(key, self.transformers.encrypt(key, value), revision=revision)
        self._stale.discard(key)
        return new

    async def delete(self, key: str, *, revision: int = 0) -> KeyValue:
        kv = await self.inner.delete(key, revision=revision)
        self._stale.discard(key)
        value, _ = self.transformers.decrypt(kv.key, kv.value)
        return replace(kv, value=value)

    async def watch(self, prefix: str, *, revision: int) -> AsyncIterator[Event]:
        events = self.inner.watch(prefix, revision=revision)
        try:
            async for event in events:
                if self.transformers.providers_for(event.kv.key) is None:
                    yield event
                    continue
                yield self._plain_event(event)
        finally:
            close = getattr(events, "aclose", None)
            if close is not None:
                await close()

    def _plain_event(self, event: Event) -> Event:
        if event.kind == "delete":
            self._stale.discard(event.kv.key)
            kv = replace(event.kv, value=self.transformers.decrypt(event.kv.key, event.kv.value)[0])
        else:
            kv = self._plain(event.kv)
        prev = event.prev
        if prev is not None:
            prev = replace(prev, value=self.transformers.decrypt(prev.key, prev.value)[0])
        return replace(event, kv=kv, prev=prev)

    async def current_revision(self) -> int:
        return await self.inner.current_revision()

    async def compact(self, revision: int) -> None:
        await self.inner.compact(revision)

    async def aclose(self) -> None:
        await self.inner.aclose()

    def __getattr__(self, name: str) -> object:
        """Backend-specific extras (e.g. SQLite's path) pass through."""
        return getattr(self.inner, name)
