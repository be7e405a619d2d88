"""`pods/log` to a client that upgrades to a WebSocket (handlers/proxy.py)."""

from __future__ import annotations

import base64
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer

from pykube_server.apiserver.handlers import proxy


class _Content:
    def __init__(self, chunks: list[bytes]) -> None:
        self._chunks = chunks

    async def iter_any(self) -> AsyncIterator[bytes]:
        for chunk in self._chunks:
            yield chunk


class _Upstream:
    """What `_log_websocket` reads of the kubelet's answer."""

    def __init__(self, chunks: list[bytes]) -> None:
        self.content = _Content(chunks)


async def _messages(protocols: tuple[str, ...]) -> tuple[str | None, list[Any]]:
    async def handler(request: web.Request) -> web.StreamResponse:
        assert proxy._is_websocket(request)
        return await proxy._log_websocket(request, _Upstream([b"container ", b"is alive\n"]))  # type: ignore[arg-type]

    app = web.Application()
    app.router.add_get("/log", handler)
    async with TestClient(TestServer(app)) as client:
        ws = await client.ws_connect("/log", protocols=protocols)
        out = [msg async for msg in ws if msg.type in (aiohttp.WSMsgType.BINARY, aiohttp.WSMsgType.TEXT)]
        return ws.protocol, [m.data for m in out]


async def test_binary_protocol_sends_the_log_bytes_then_closes() -> None:
    """The e2e test "Pods should support retrieving logs from the container over websockets"
    offers binary.k8s.io and reads messages until the server closes."""
    protocol, data = await _messages(("binary.k8s.io",))
    assert protocol == "binary.k8s.io"
    assert b"".join(data) == b"container is alive\n"


async def test_base64_protocol_sends_text_messages() -> None:
    protocol, data = await _messages(("base64.binary.k8s.io",))
    assert protocol == "base64.binary.k8s.io"
    assert b"".join(base64.b64decode(d) for d in data) == b"container is alive\n"


async def test_no_protocol_is_binary() -> None:
    protocol, data = await _messages(())
    assert protocol is None
    assert b"".join(data) == b"container is alive\n"
