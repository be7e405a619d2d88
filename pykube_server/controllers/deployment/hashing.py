"""The `pod-template-hash`: which ReplicaSet belongs to which version of a deployment's template.

Upstream hashes the template with FNV-32a, appends the collision count (4 bytes little-endian,
then 4 zero bytes) when the deployment has one, and renders the 32-bit sum's decimal digits
through `rand.SafeEncodeString` (each byte picks a letter from an alphabet without vowels or
look-alike characters), so names such as `web-7d4b9c5f8` never spell words.

The byte stream upstream hashes is a Go-specific dump of the typed PodTemplateSpec; here it is
the template's canonical JSON (sorted keys, empty values dropped). The hash is therefore stable
and collision-handled the same way, but not byte-identical to a real cluster's for the same
template (nothing reads it back but the controller itself).

`equal_ignore_hash` is upstream's `EqualIgnoreHash`: templates compared semantically, with the
hash label removed from both and, as apimachinery's semantic equality does, empty and missing
collections treated alike.
"""

from __future__ import annotations

from typing import Any

import orjson

from pykube_server.api.types import Obj

HASH_LABEL = "pod-template-hash"
SAFE_ALPHABET = "bcdfghjklmnpqrstvwxz2456789"
FNV32_OFFSET = 0x811C9DC5
FNV32_PRIME = 0x01000193


def fnv32a(data: bytes, state: int = FNV32_OFFSET) -> int:
    for byte in data:
        state = ((state ^ byte) * FNV32_PRIME) & 0xFFFFFFFF
    return state


def safe_encode(text: str) -> str:
    return "".join(SAFE_ALPHABET[ord(ch) % len(SAFE_ALPHABET)] for ch in text)


def _pruned(value: Any) -> Any:
    """Drop None, {} and [] (recursively): Go's semantic equality treats nil and empty alike."""
    if isinstance(value, dict):
        out = {k: _pruned(v) for k, v in value.items()}
        return {k: v for k, v in out.items() if v is not None and v != {} and v != []}
    if isinstance(value, list):
        return [_pruned(v) for v in value]
    return value


def compute_hash(template: Obj, collision_count: int | None) -> str:
    state = fnv32a(orjson.dumps(_pruned(template), option=orjson.OPT_SORT_KEYS))
    if collision_count is not None:
        state = fnv32a((collision_count & 0xFFFFFFFF).to_bytes(4, "little") + bytes(4), state)
    return safe_encode(str(state))


def without_hash(template: Obj) -> Obj:
    labels = dict((template.get("metadata") or {}).get("labels") or {})
    labels.pop(HASH_LABEL, None)
    return {**template, "metadata": {**(template.get("metadata") or {}), "labels": labels}}


def equal_ignore_hash(a: Obj, b: Obj) -> bool:
    return bool(_pruned(without_hash(a)) == _pruned(without_hash(b)))
