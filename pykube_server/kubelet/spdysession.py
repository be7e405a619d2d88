"""A SPDY/3.1 session: streams multiplexed over one connection, as moby/spdystream runs them.

The connection is anything with `recv()` (bytes, `b""` at the end) and `send(bytes)`: a
WebSocket carrying the frames in binary messages (the tunnel of `SPDY/3.1+portforward.k8s.io`)
or a raw upgraded socket. The session reads frames in one task and dispatches them: the peer's
SYN_STREAM opens a stream (answered with an empty SYN_REPLY, as apimachinery's server does
once its stream handler accepted it), DATA goes to the stream's queue, FIN and RST_STREAM end
it, PING is echoed, GOAWAY ends the session. A client session (`client=True`) opens streams
with odd ids and waits for their SYN_REPLY, which is what client-go's `CreateStream` does.

Frames are encoded and sent under one lock: the header compressor's state must advance in the
order the frames reach the wire. No send ever waits for a flow-control window (see `api/spdy`).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable
from typing import Protocol

from pykube_server.api import spdy

log = logging.getLogger(__name__)

CHUNK = 32 * 1024
"""Largest DATA payload sent (io.Copy's buffer size, what spdystream peers send too)."""


class Channel(Protocol):
    async def recv(self) -> bytes: ...

    async def send(self, data: bytes) -> None: ...


class StreamReset(Exception):
    """The stream was reset (RST_STREAM) or its session ended."""


class Stream:
    def __init__(self, session: SpdySession, stream_id: int, headers: spdy.Headers) -> None:
        self.session = session
        self.id = stream_id
        self.headers = headers
        self.replied = asyncio.Event()
        self.reply_headers: spdy.Headers = {}
        self._incoming: asyncio.Queue[bytes | None] = asyncio.Queue()
        self.remote_closed = False
        self.local_closed = False
        self.reset = False

    def header(self, name: str, default: str = "") -> str:
        values = self.headers.get(name)
        return values[0] if values else default

    async def read(self) -> bytes:
        """The next bytes from the peer; `b""` once it sent FIN or the stream was reset."""
        if self.remote_closed and self._incoming.empty():
            return b""
        chunk = await self._incoming.get()
        if chunk is None:
            self.remote_closed = True
            self.session.forget_if_done(self)
            return b""
        return chunk

    async def read_all(self) -> bytes:
        out = bytearray()
        while chunk := await self.read():
            out += chunk
        return bytes(out)

    async def write(self, data: bytes) -> None:
        if self.reset or self.local_closed:
            raise StreamReset(f"stream {self.id} is closed")
        for start in range(0, len(data), CHUNK):
            await self.session.send(spdy.DataFrame(self.id, data[start:start + CHUNK]))

    async def close(self) -> None:
        """Half-close: an empty DATA frame with FLAG_FIN (spdystream's Stream.Close)."""
        if self.local_closed or self.reset:
            return
        self.local_closed = True
        with contextlib.suppress(ConnectionError):
            await self.session.send(spdy.DataFrame(self.id, b"", spdy.FLAG_FIN))
        self.session.forget_if_done(self)

    async def send_reset(self, status: int = spdy.RstStatus.CANCEL) -> None:
        if self.reset:
            return
        self._end(reset=True)
        with contextlib.suppress(ConnectionError):
            await self.session.send(spdy.RstStream(self.id, status))

    def _deliver(self, data: bytes, fin: bool) -> None:
        if data:
            self._incoming.put_nowait(data)
        if fin:
            self._incoming.put_nowait(None)

    def _end(self, *, reset: bool) -> None:
        self.reset = self.reset or reset
        self.local_closed = True
        self._incoming.put_nowait(None)
        self.replied.set()
        self.session.streams.pop(self.id, None)


class SpdySession:
    def __init__(self, channel: Channel, *, on_stream: Callable[[Stream], Awaitable[None]] | None = None,
                 client: bool = False) -> None:
        self.channel = channel
        self.codec = spdy.Codec()
        self.on_stream = on_stream
        self.streams: dict[int, Stream] = {}
        self._next_id = 1 if client else 2
        self._send_lock = asyncio.Lock()
        self._tasks: set[asyncio.Task[None]] = set()
        self._last_remote_id = 0
        self.closed = asyncio.Event()

    async def send(self, frame: spdy.Frame) -> None:
        if self.closed.is_set():
            raise ConnectionError("SPDY session is closed")
        async with self._send_lock:
            await self.channel.send(self.codec.encode(frame))

    async def open_stream(self, headers: spdy.Headers, *, timeout: float = 30.0) -> Stream:
        """Open a stream and wait for the peer's SYN_REPLY (client-go's CreateStream)."""
        stream = Stream(self, self._next_id, headers)
        self._next_id += 2
        self.streams[stream.id] = stream
        await self.send(spdy.SynStream(stream.id, headers))
        await asyncio.wait_for(stream.replied.wait(), timeout)
        if stream.reset:
            raise StreamReset(f"stream {stream.id} was refused")
        return stream

    async def run(self) -> None:
        """Read and dispatch frames until the connection ends or the peer says GOAWAY."""
        try:
            while chunk := await self.channel.recv():
                for frame in self.codec.feed(chunk):
                    if not await self._dispatch(frame):
                        return
        except spdy.ProtocolError as exc:
            log.info("SPDY protocol error, closing the session: %s", exc)
            with contextlib.suppress(Exception):
                await self.send(spdy.GoAway(self._last_remote_id, spdy.GoAwayStatus.PROTOCOL_ERROR))
        except ConnectionError:
            pass
        finally:
            await self.shutdown()

    async def shutdown(self) -> None:
        self.closed.set()
        for stream in list(self.streams.values()):
            stream._end(reset=True)
        tasks, self._tasks = self._tasks, set()
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task

    def forget_if_done(self, stream: Stream) -> None:
        if stream.local_closed and stream.remote_closed:
            self.streams.pop(stream.id, None)

    async def _dispatch(self, frame: spdy.Frame) -> bool:
        match frame:
            case spdy.DataFrame(stream_id, data, flags):
                stream = self.streams.get(stream_id)
                if stream is not None:
                    stream._deliver(data, bool(flags & spdy.FLAG_FIN))
            case spdy.SynStream(stream_id, headers, flags):
                await self._accept(stream_id, headers, flags)
            case spdy.SynReply(stream_id, headers, flags):
                stream = self.streams.get(stream_id)
                if stream is not None:
                    stream.reply_headers = headers
                    stream.replied.set()
                    stream._deliver(b"", bool(flags & spdy.FLAG_FIN))
            case spdy.HeadersFrame(stream_id, _headers, flags):
                stream = self.streams.get(stream_id)
                if stream is not None:
                    stream._deliver(b"", bool(flags & spdy.FLAG_FIN))
            case spdy.RstStream(stream_id):
                stream = self.streams.get(stream_id)
                if stream is not None:
                    stream._end(reset=True)
            case spdy.Ping(ping_id):
                if ping_id % 2 != self._next_id % 2:  # the peer's ping: echo it back
                    await self.send(frame)
            case spdy.GoAway():
                return False
        return True

    async def _accept(self, stream_id: int, headers: spdy.Headers, flags: int) -> None:
        if stream_id in self.streams or stream_id % 2 == self._next_id % 2:
            await self.send(spdy.RstStream(stream_id, spdy.RstStatus.PROTOCOL_ERROR))
            return
        self._last_remote_id = max(self._last_remote_id, stream_id)
        stream = Stream(self, stream_id, headers)
        self.streams[stream_id] = stream
        stream._deliver(b"", bool(flags & spdy.FLAG_FIN))
        await self.send(spdy.SynReply(stream_id, {}))
        if self.on_stream is not None:
            task = asyncio.create_task(self.on_stream(stream))
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)
