"""The kubelet's `/portForward/{namespace}/{pod}`: connections into a pod's ports.

Port-forward to pod port P is a TCP connection from the kubelet to (pod IP, P): pods here are
local processes on loopback pod IPs, so the pod's network namespace is the host's and the
sandbox's IP is where its servers listen.

Two WebSocket protocols are served (the API server relays its clients' WebSockets here, and
turns kubectl's plain `Upgrade: SPDY/3.1` into the first of them):

- `SPDY/3.1+portforward.k8s.io`: SPDY/3.1 frames carried in binary messages (KEP-4006's
  tunnel). Per forwarded connection the client opens an error stream and a data stream with the
  same `port` and `requestid` headers; once both exist the kubelet dials the pod, copies bytes
  between the data stream and the socket, and writes a failure's text to the error stream. The
  real kubelet speaks this protocol over a raw SPDY upgrade; the frames are the same, and a
  WebSocket is what aiohttp serves through its public API.
- `v4.channel.k8s.io` (and no protocol at all): one connection per requested `port` query
  parameter, on channels 2i (data) and 2i+1 (error); each channel first carries its port as two
  little-endian bytes.

A dial failure reads like containerd's (the text kubectl prints after "an error occurred
forwarding"): `error forwarding port P to pod <sandbox id>, uid : failed to execute portforward
in network namespace ...: failed to connect to localhost:P inside namespace ..., IPv4: dial tcp4
IP:P: connect: connection refused IPv6 dial tcp6: address localhost: no suitable address found `.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import logging
import os
import struct
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field

from aiohttp import WSMsgType, web

from pykube_server.kubelet.kubelet import Kubelet
from pykube_server.kubelet.runtime import SandboxState
from pykube_server.kubelet.spdysession import Channel, SpdySession, Stream, StreamReset

log = logging.getLogger(__name__)

SPDY_TUNNEL = "SPDY/3.1+portforward.k8s.io"
V4_CHANNEL = "v4.channel.k8s.io"
READ_SIZE = 32 * 1024
STREAM_PAIR_TIMEOUT = 30.0
"""How long the first stream of a pair waits for its partner (kubelet's streamCreationTimeout)."""


@dataclass(frozen=True, slots=True)
class Target:
    """Where the pod's ports are, and how errors name the pod."""

    sandbox_id: str
    ip: str


async def find_target(kubelets: Sequence[Kubelet], namespace: str, name: str) -> Target | web.Response:
    """The pod's ready sandbox, or the kubelet's plain-text error answer."""
    for kubelet in kubelets:
        pod = kubelet.find_pod(namespace, name)
        if pod is None:
            continue
        uid = pod["metadata"]["uid"]
        for sandbox in await kubelet.runtime.list_pod_sandboxes():
            if sandbox.uid == uid and sandbox.state is SandboxState.READY and sandbox.ip:
                return Target(sandbox.id, sandbox.ip)
        return _text(f'pod not found ("{name}_{namespace}")', 500)
    return _text("pod does not exist", 404)


def dial_error(target: Target, port: int, exc: OSError) -> str:
    code = exc.errno or errno.ECONNREFUSED
    reason = "connection refused" if code == errno.ECONNREFUSED else os.strerror(code).lower()
    return (f'error forwarding port {port} to pod {target.sandbox_id}, uid : failed to execute portforward in '
            f'network namespace "{target.sandbox_id}": failed to connect to localhost:{port} inside namespace '
            f'"{target.sandbox_id}", IPv4: dial tcp4 {target.ip}:{port}: connect: {reason} '
            f'IPv6 dial tcp6: address localhost: no suitable address found ')


async def serve(request: web.Request, kubelets: Sequence[Kubelet]) -> web.StreamResponse:
    namespace, name = request.match_info["namespace"], request.match_info["pod"]
    found = await find_target(kubelets, namespace, name)
    if isinstance(found, web.Response):
        return found
    ws = web.WebSocketResponse(protocols=(SPDY_TUNNEL, V4_CHANNEL))
    ready = ws.can_prepare(request)
    if not ready.ok:
        return _text("Upgrade request required", 400)
    if ready.protocol == SPDY_TUNNEL:
        await ws.prepare(request)
        await SpdyPortForward(found, _WebSocketChannel(ws)).run()
        await ws.close()
        return ws
    try:
        ports = parse_ports(request.query.getall("port", []))
    except ValueError as exc:
        return _text(str(exc), 400)
    await ws.prepare(request)
    await ChannelPortForward(found, ws, ports).run()
    return ws


def parse_ports(values: Sequence[str]) -> list[int]:
    """The `port` query parameters (repeated or comma-separated), with the kubelet's messages."""
    if not values:
        raise ValueError('query parameter "port" is required')
    ports = []
    for value in values:
        if not value:
            raise ValueError('query parameter "port" cannot be empty')
        for part in value.split(","):
            if not part.isdigit() or int(part) > 65535:
                raise ValueError(f'unable to parse "{value}" as a port: strconv.ParseUint: parsing "{part}": '
                                 f'{"value out of range" if part.isdigit() else "invalid syntax"}')
            if int(part) < 1:
                raise ValueError(f'port "{value}" must be > 0')
            ports.append(int(part))
    return ports


class _WebSocketChannel:
    """SPDY frames in binary WebSocket messages."""

    def __init__(self, ws: web.WebSocketResponse) -> None:
        self.ws = ws

    async def recv(self) -> bytes:
        while True:
            msg = await self.ws.receive()
            if msg.type != WSMsgType.BINARY:
                return b""
            if msg.data:  # an empty message is not the end of the connection
                return bytes(msg.data)

    async def send(self, data: bytes) -> None:
        if self.ws.closed:
            raise ConnectionError("WebSocket closed")
        await self.ws.send_bytes(data)


@dataclass
class _Pair:
    error: Stream | None = None
    data: Stream | None = None
    complete: asyncio.Event = field(default_factory=asyncio.Event)


class SpdyPortForward:
    """One SPDY connection: pairs the client's streams by request id and forwards each pair."""

    def __init__(self, target: Target, channel: Channel) -> None:
        self.target = target
        self.pairs: dict[str, _Pair] = {}
        self.session = SpdySession(channel, on_stream=self.on_stream)

    async def run(self) -> None:
        await self.session.run()

    async def on_stream(self, stream: Stream) -> None:
        kind = stream.header("streamtype")
        request_id = stream.header("requestid")
        if not request_id:  # clients before requestid: the error stream's id is the data stream's + 2
            request_id = str(stream.id - 2 if kind == "data" else stream.id)
        if kind not in ("error", "data"):
            await stream.send_reset()
            return
        pair = self.pairs.setdefault(request_id, _Pair())
        setattr(pair, kind, stream)
        if pair.error is None or pair.data is None:
            try:
                await asyncio.wait_for(pair.complete.wait(), STREAM_PAIR_TIMEOUT)
            except TimeoutError:
                self.pairs.pop(request_id, None)
                await stream.send_reset()
            return
        pair.complete.set()
        self.pairs.pop(request_id, None)
        await self.forward(pair.error, pair.data)

    async def forward(self, error: Stream, data: Stream) -> None:
        port_text = data.header("port")
        if not port_text.isdigit() or not 0 < int(port_text) < 65536:
            await _fail(error, data, f'invalid port header: "{port_text}"'
                        if port_text else 'port header "port" is required')
            return
        port = int(port_text)
        try:
            reader, writer = await asyncio.open_connection(self.target.ip, port)
        except OSError as exc:
            await _fail(error, data, dial_error(self.target, port, exc))
            return
        try:
            await _copy_both(reader, writer, data.read, data.write, lambda: data.reset)
        finally:
            writer.close()
            with contextlib.suppress(Exception):
                await writer.wait_closed()
            await data.close()
            await error.close()


async def _fail(error: Stream, data: Stream, message: str) -> None:
    log.info("port-forward: %s", message)
    with contextlib.suppress(StreamReset, ConnectionError):
        await error.write(message.encode())
    await error.close()
    await data.close()


async def _copy_both(reader: asyncio.StreamReader, writer: asyncio.StreamWriter,
                     recv: Callable[[], Awaitable[bytes]], send: Callable[[bytes], Awaitable[None]],
                     gone: Callable[[], bool]) -> None:
    """Client bytes to the pod (half-closing the socket at their end), pod bytes to the client,
    until the pod closes its side or the client goes away (`gone()` true at the client's end:
    a reset stream, a closed WebSocket)."""

    async def upstream() -> None:
        while chunk := await recv():
            writer.write(chunk)
            await writer.drain()
        if gone():
            raise StreamReset("the client went away")
        if writer.can_write_eof():
            writer.write_eof()

    up = asyncio.create_task(upstream())
    try:
        while True:
            read = asyncio.create_task(reader.read(READ_SIZE))
            done, _ = await asyncio.wait({read, up}, return_when=asyncio.FIRST_COMPLETED)
            if read not in done:  # the client ended: stop if it went away, keep reading if it half-closed
                if up.cancelled() or up.exception() is not None:
                    read.cancel()
                    return
                chunk = await read
            else:
                chunk = read.result()
            if not chunk:
                return
            await send(chunk)
    except (ConnectionError, StreamReset):
        return
    finally:
        up.cancel()
        with contextlib.suppress(asyncio.CancelledError, Exception):
            await up


class ChannelPortForward:
    """The channel protocol: every requested port dialled at once, each on its channel pair."""

    def __init__(self, target: Target, ws: web.WebSocketResponse, ports: list[int]) -> None:
        self.target, self.ws, self.ports = target, ws, ports
        self.inboxes: list[asyncio.Queue[bytes]] = [asyncio.Queue() for _ in ports]
        self._send_lock = asyncio.Lock()

    async def send(self, channel: int, data: bytes) -> None:
        async with self._send_lock:
            if not self.ws.closed:
                await self.ws.send_bytes(bytes([channel]) + data)

    async def run(self) -> None:
        for index, port in enumerate(self.ports):
            prefix = struct.pack("<H", port)
            await self.send(2 * index, prefix)
            await self.send(2 * index + 1, prefix)
        forwards = [asyncio.create_task(self.forward(i, port)) for i, port in enumerate(self.ports)]
        reading = asyncio.create_task(self.read_client())
        try:
            await asyncio.gather(*forwards)
        finally:
            reading.cancel()
            for task in forwards:
                task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await reading
            await self.ws.close()

    async def read_client(self) -> None:
        async for msg in self.ws:
            if msg.type != WSMsgType.BINARY or not msg.data:
                continue
            channel, payload = msg.data[0], bytes(msg.data[1:])
            if channel % 2 == 0 and channel // 2 < len(self.inboxes) and payload:
                self.inboxes[channel // 2].put_nowait(payload)
        for inbox in self.inboxes:
            inbox.put_nowait(b"")

    async def forward(self, index: int, port: int) -> None:
        try:
            reader, writer = await asyncio.open_connection(self.target.ip, port)
        except OSError as exc:
            message = dial_error(self.target, port, exc)
            log.info("port-forward: %s", message)
            await self.send(2 * index + 1, message.encode())
            return
        try:
            await _copy_both(reader, writer, self.inboxes[index].get,
                             lambda chunk: self.send(2 * index, chunk), lambda: True)
        finally:
            writer.close()
            with contextlib.suppress(Exception):
                await writer.wait_closed()


def _text(message: str, status: int) -> web.Response:
    """The kubelet's plain-text refusal, repeated in `X-Stream-Error` for the API server, whose
    WebSocket client is not shown the body."""
    return web.Response(text=message, status=status, content_type="text/plain",
                        headers={"X-Stream-Error": message})
