"""Relaying a streaming session between a client and a kubelet, frame by frame.

exec, attach and port-forward all end the same way once both connections are upgraded: copy
messages in both directions until either side closes, then close the other, as
kube-apiserver's upgrade-aware proxy does. A `rewrite` hook lets exec translate the kubelet's
error-channel Status on the way out.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable

import aiohttp
from aiohttp import WSMsgType, web


async def both_ways(*tasks: asyncio.Task[None]) -> None:
    """Run until one direction ends, then stop the other."""
    try:
        await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError, ConnectionError, RuntimeError):
                await task


async def relay_websockets(client: web.WebSocketResponse, kubelet: aiohttp.ClientWebSocketResponse, *,
                           rewrite: Callable[[bytes], bytes] | None = None) -> None:
    """Binary and text messages both ways; `rewrite` sees each binary message from the kubelet."""

    async def client_to_kubelet() -> None:
        async for msg in client:
            if msg.type == WSMsgType.BINARY:
                await kubelet.send_bytes(msg.data)
            elif msg.type == WSMsgType.TEXT:
                await kubelet.send_str(msg.data)

    async def kubelet_to_client() -> None:
        async for msg in kubelet:
            if msg.type == WSMsgType.BINARY:
                await client.send_bytes(rewrite(msg.data) if rewrite is not None else msg.data)
            elif msg.type == WSMsgType.TEXT:
                await client.send_str(msg.data)

    try:
        await both_ways(asyncio.create_task(client_to_kubelet()), asyncio.create_task(kubelet_to_client()))
    finally:
        await kubelet.close()
        await client.close()
