"""A raw HTTP upgrade on aiohttp's server: answer 101, then own the socket's bytes.

aiohttp serves WebSockets itself but has no public API for other upgrades (kubectl's
`Upgrade: SPDY/3.1`). Its request protocol already stops parsing HTTP after a request that
asks to upgrade and buffers what follows; `set_parser` hands that buffer and every later read
to a parser object, the way `WebSocketResponse` takes over its connection. `RawUpgrade` is
such a parser feeding a queue, plus writes straight to the transport with aiohttp's drain.
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping

from aiohttp import web


class _Feed:
    """What aiohttp's protocol calls with the bytes after the upgrade."""

    def __init__(self, queue: asyncio.Queue[bytes]) -> None:
        self.queue = queue

    def feed_data(self, data: bytes) -> tuple[bool, bytes]:
        if data:
            self.queue.put_nowait(bytes(data))
        return False, b""

    def feed_eof(self) -> None:
        self.queue.put_nowait(b"")


class RawUpgrade:
    def __init__(self, request: web.Request) -> None:
        self.request = request
        self._incoming: asyncio.Queue[bytes] = asyncio.Queue()
        self._eof = False

    async def accept(self, headers: Mapping[str, str]) -> web.StreamResponse:
        """Send `101 Switching Protocols` with `headers` and take the connection over; the
        handler returns the response this gives once it is done with the connection."""
        response = web.StreamResponse(status=101, headers=headers)
        await response.prepare(self.request)
        protocol = self.request.protocol
        protocol.keep_alive(False)
        protocol.set_parser(_Feed(self._incoming))  # type: ignore[arg-type]
        return response

    async def recv(self) -> bytes:
        """The next bytes from the client, `b""` once it closed."""
        if self._eof:
            return b""
        data = await self._incoming.get()
        self._eof = not data
        return data

    async def send(self, data: bytes) -> None:
        transport = self.request.transport
        if transport is None or transport.is_closing():
            raise ConnectionError("the client connection is closed")
        transport.write(data)
        await self.request.protocol._drain_helper()

    def close(self) -> None:
        transport = self.request.transport
        if transport is not None:
            transport.close()
