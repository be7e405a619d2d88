"""Object uids: random (version 4) UUIDs in their text form, as kube-apiserver sets them.

`str(uuid.uuid4())` builds a UUID object to format it and makes a `getrandom` system call for
every uid; every create needs one. Here the random bytes come from the OS 4 KiB at a time (still
`os.urandom`, refilled in a forked child) and the text is formatted straight from them."""

from __future__ import annotations

import os

_CHUNK = 4096


class _RandomBytes:
    def __init__(self) -> None:
        self._buf = b""
        self._pos = 0

    def forget(self) -> None:
        self._buf, self._pos = b"", 0

    def take(self, n: int) -> bytes:
        if self._pos + n > len(self._buf):
            self._buf, self._pos = os.urandom(_CHUNK), 0
        start = self._pos
        self._pos = start + n
        return self._buf[start:start + n]


_random = _RandomBytes()
os.register_at_fork(after_in_child=_random.forget)  # a child never reuses the parent's bytes


def new_uid() -> str:
    h = _random.take(16).hex()
    # version nibble 4; variant bits 10xx (RFC 4122), as uuid.uuid4() sets them
    return f"{h[:8]}-{h[8:12]}-4{h[13:16]}-{'89ab'[int(h[16], 16) & 3]}{h[17:20]}-{h[20:]}"
