"""The kubelet's exec and attach sessions over WebSocket channels (what the API server relays).

Why this module: the real kubelet hands `/exec` and `/attach` to the CRI streaming server,
which speaks the channel protocols of `api/remotecommand.py` over WebSocket (and SPDY, which
pykube does not speak). Here one session is glued to a runtime `StreamSession`: client stdin,
resize and v5 close messages go in, stdout/stderr come out, and the session ends with one
Status on the error channel, written as the kubelet writes it, then a close.

Query parameters are the kubelet's (`input`, `output`, `error`, `tty` = `1`, `command`
repeated) and, for callers that speak the API's names, `stdin`/`stdout`/`stderr` = `true`.
Errors before the upgrade are plain text, as the kubelet writes them; the text is repeated in
the `X-Stream-Error` header because a WebSocket client (the API server) sees only headers of a
refused handshake.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from aiohttp import WSMsgType, web

from pykube_server.api import remotecommand as rc
from pykube_server.kubelet.runtime import RuntimeServiceError, StreamingRuntime, StreamSession

ERROR_HEADER = "X-Stream-Error"
FIRST_RESIZE_WAIT_SECONDS = 1.0


@dataclass(frozen=True, slots=True)
class StreamOptions:
    command: tuple[str, ...]
    stdin: bool
    stdout: bool
    stderr: bool
    tty: bool


def _flag(query: Mapping[str, str], kubelet_name: str, api_name: str) -> bool:
    value = query.get(kubelet_name, query.get(api_name, ""))
    return value.lower() in ("1", "true")


def parse_options(query: Any) -> StreamOptions:
    """The session's options; raises ValueError with the kubelet's message when none of the
    three streams is asked for. A tty has no separate stderr (the kubelet drops it)."""
    tty = _flag(query, "tty", "tty")
    stdin = _flag(query, "input", "stdin")
    stdout = _flag(query, "output", "stdout")
    stderr = _flag(query, "error", "stderr") and not tty
    if not (stdin or stdout or stderr):
        raise ValueError("you must specify at least 1 of stdin, stdout, stderr")
    return StreamOptions(tuple(query.getall("command", [])), stdin, stdout, stderr, tty)


def error_response(message: str, status: int) -> web.Response:
    safe = message.encode("ascii", "backslashreplace").decode()
    return web.Response(text=message, status=status, content_type="text/plain", headers={ERROR_HEADER: safe})


def is_websocket(request: web.Request) -> bool:
    return request.headers.get("Upgrade", "").lower() == "websocket"


async def serve(request: web.Request, runtime: StreamingRuntime, container_id: str, *, kind: str,
                opts: StreamOptions) -> web.StreamResponse:
    """Upgrade to WebSocket, run the session, write its status, close."""
    if not is_websocket(request):
        return error_response("pykube's kubelet streams exec and attach over WebSocket only "
                              "(v5.channel.k8s.io, v4.channel.k8s.io); SPDY/3.1 is not supported", 400)
    offers = rc.offered(request.headers.getall("Sec-WebSocket-Protocol", []))
    protocol = rc.negotiate(offers)
    if protocol is None:
        return error_response(f"requested protocol(s) are not supported: {offers}; supports {list(rc.PROTOCOLS)}",
                              400)
    ws = web.WebSocketResponse(protocols=(protocol,) if protocol else (), max_msg_size=0, autoping=True)
    await ws.prepare(request)
    # the streams are open: an empty message on the lowest writable channel says so
    first = rc.STDOUT if opts.stdout else rc.STDERR if opts.stderr else rc.ERROR
    await _send(ws, rc.encode(protocol, first))
    early: list[bytes | str] = []
    size = await _first_resize(ws, protocol, early) if opts.tty and kind == "exec" else None
    try:
        if kind == "exec":
            session = await runtime.exec(container_id, opts.command, stdin=opts.stdin, tty=opts.tty, size=size)
        else:
            session = await runtime.attach(container_id, stdin=opts.stdin, tty=opts.tty)
    except RuntimeServiceError as exc:
        what = "error executing command in container" if kind == "exec" else "error attaching to container"
        await _status(ws, protocol, rc.internal_error(f"{what}: {exc}"))
        await ws.close()
        return ws
    inbound = asyncio.create_task(_client_to_session(ws, protocol, session, opts, early))
    try:
        async for channel, data in session.output():
            if (channel == rc.STDOUT and opts.stdout) or (channel == rc.STDERR and opts.stderr):
                await _send(ws, rc.encode(protocol, channel, data))
        code = await session.wait()
        if code == 0 or kind == "attach":
            status = rc.success()
        else:
            status = rc.exit_code_status(code, f"error executing command [{' '.join(opts.command)}], exit code {code}")
        await _status(ws, protocol, status)
        await ws.close()
    finally:
        inbound.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await inbound
        await session.aclose()
    return ws


async def _send(ws: web.WebSocketResponse, message: bytes | str) -> None:
    if ws.closed:
        return
    with contextlib.suppress(ConnectionError, RuntimeError):
        if isinstance(message, str):
            await ws.send_str(message)
        else:
            await ws.send_bytes(message)


async def _status(ws: web.WebSocketResponse, protocol: str, status: dict[str, Any]) -> None:
    payload = rc.status_payload(protocol, status)
    if payload is not None:
        await _send(ws, rc.encode(protocol, rc.ERROR, payload))


async def _first_resize(ws: web.WebSocketResponse, protocol: str, early: list[bytes | str]) -> tuple[int, int] | None:
    """The terminal size a tty client sends first (kubectl does, at once), so the command
    starts with it rather than racing it; other messages meanwhile are kept in `early`."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + FIRST_RESIZE_WAIT_SECONDS
    while (remaining := deadline - loop.time()) > 0:
        try:
            msg = await ws.receive(timeout=remaining)
        except (asyncio.TimeoutError, RuntimeError):
            return None
        if msg.type not in (WSMsgType.BINARY, WSMsgType.TEXT):
            return None
        try:
            channel, data = rc.decode(protocol, msg.data)
            if channel == rc.RESIZE:
                sizes = rc.parse_resize(data)
                if sizes:
                    return sizes[-1]
        except (rc.ProtocolError, ValueError):
            pass
        early.append(msg.data)
    return None


async def _client_to_session(ws: web.WebSocketResponse, protocol: str, session: StreamSession,
                             opts: StreamOptions, early: list[bytes | str]) -> None:
    """Client messages into the session until the client goes; then the session is ended (an
    exec's process killed, an attach detached), as a dropped connection ends a CRI stream."""
    try:
        for message in early:
            await _deliver(message, protocol, session, opts)
        if ws.closed:
            return
        async for msg in ws:
            if msg.type in (WSMsgType.BINARY, WSMsgType.TEXT):
                await _deliver(msg.data, protocol, session, opts)
    finally:
        if ws.closed:
            await session.aclose()


async def _deliver(message: bytes | str, protocol: str, session: StreamSession, opts: StreamOptions) -> None:
    try:
        channel, data = rc.decode(protocol, message)
    except rc.ProtocolError:
        return
    if channel == rc.STDIN and opts.stdin and data:
        await session.write_stdin(data)
    elif channel == rc.RESIZE and opts.tty:
        with contextlib.suppress(rc.ProtocolError, ValueError, OSError):
            for width, height in rc.parse_resize(data):
                session.resize(width, height)
    elif channel == rc.CLOSE and protocol == rc.V5 and data[:1] == bytes((rc.STDIN,)) and opts.stdin:
        await session.close_stdin()
