"""A bitmap allocation kept in storage: kube-apiserver's RangeAllocation object.

kube-apiserver keeps the NodePorts in use as one `v1` RangeAllocation at
`/registry/ranges/servicenodeports`: `range` is the port range ("30000-32767") and `data` the
bitmap (bit `i` set = offset `i` taken), the bytes of a big-endian integer, base64 in JSON.
Every API server sharing the store changes it only by compare-and-swap on its revision, so two
servers can never both hand out one port: the loser's swap fails, it re-reads and tries again.

`StoredBitmap.modify` is that loop. Within one server the writers queue on a lock, so the
swaps of one process never race each other and a conflict only ever comes from another
server. The last value written or read is kept, so an uncontended change costs one write.
"""

from __future__ import annotations

import asyncio
import base64
from collections.abc import Callable

import orjson

from pykube_server.storage.backend import Backend, Conflict, KeyExists, KeyNotFound

NODE_PORTS_KEY = "/registry/ranges/servicenodeports"
CAS_ATTEMPTS = 64


def encode_range(range_text: str, bits: int) -> bytes:
    """The stored RangeAllocation, as kube-apiserver writes it."""
    data = bits.to_bytes((bits.bit_length() + 7) // 8, "big") if bits else b""
    return orjson.dumps({"kind": "RangeAllocation", "apiVersion": "v1",
                         "metadata": {"name": "", "creationTimestamp": None},
                         "range": range_text, "data": base64.b64encode(data).decode()})


def decode_range(value: bytes) -> tuple[str, int]:
    """(range, bitmap) of a stored RangeAllocation."""
    obj = orjson.loads(value)
    data = base64.b64decode(obj.get("data") or "")
    return str(obj.get("range") or ""), int.from_bytes(data, "big")


def _range_low(text: str) -> int | None:
    try:
        return int(text.split("-", 1)[0])
    except ValueError:
        return None


class StoredBitmap:
    """One RangeAllocation in storage over offsets 0..size-1 of `range_text` (first-last)."""

    def __init__(self, backend: Backend, key: str, range_text: str, size: int) -> None:
        self.backend, self.key = backend, key
        self.range_text, self.size = range_text, size
        self._mask = (1 << size) - 1
        self._lock = asyncio.Lock()
        self._known: tuple[int, int] | None = None
        """(bitmap, revision) last read or written; revision 0: the key does not exist."""

    async def read(self) -> int:
        """The bitmap as stored now."""
        bits, _ = await self._load()
        return bits

    async def _load(self) -> tuple[int, int]:
        try:
            kv = await self.backend.get(self.key)
        except KeyNotFound:
            self._known = (0, 0)
            return self._known
        stored_range, bits = decode_range(kv.value)
        if stored_range != self.range_text:
            # The range flag changed: carry the ports over, drop those now outside the range.
            old_low, new_low = _range_low(stored_range), _range_low(self.range_text)
            if old_low is None or new_low is None:
                bits = 0
            elif old_low > new_low:
                bits <<= old_low - new_low
            else:
                bits >>= new_low - old_low
        self._known = (bits & self._mask, kv.mod_revision)
        return self._known

    async def modify(self, change: Callable[[int], int]) -> int:
        """Apply `change(bitmap) -> new bitmap` by compare-and-swap, re-reading and calling it
        again after a conflict; `change` may raise to give up. Returns the bitmap written."""
        async with self._lock:
            for _ in range(CAS_ATTEMPTS):
                bits, revision = self._known if self._known is not None else await self._load()
                new = change(bits) & self._mask
                if new == bits and revision:
                    return bits
                value = encode_range(self.range_text, new)
                try:
                    if revision:
                        written = await self.backend.update(self.key, value, revision=revision)
                    else:
                        written = await self.backend.create(self.key, value)
                except (Conflict, KeyNotFound, KeyExists):
                    self._known = None
                    continue
                self._known = (new, written)
                return new
            raise Conflict(self.key)


def bit(bits: int, offset: int) -> bool:
    return bool(bits >> offset & 1)
