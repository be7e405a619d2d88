"""Slow watchers must not slow writers or other watchers.

kube-apiserver gives each watcher a bounded buffer and terminates a watcher that cannot keep
up; its client then resumes or relists. Here the bound is 4096 events (cacher
`WATCHER_QUEUE_EVENTS`). These tests run the server in-process (memory storage) so thousands
of writes take a second, and talk to it over real HTTPS for the wire-level check.
"""

from __future__ import annotations

import asyncio
import socket
from pathlib import Path

import orjson
import pytest
from aiohttp import ClientSession, TCPConnector

from pykube_server.storage import cacher as cacher_module
from pykube_server.testing import local_cluster
from tests.apiserver.test_rest_support import Raw


async def test_a_watcher_that_never_reads_overflows_at_4096_while_another_gets_everything(tmp_path: Path) -> None:
    assert cacher_module.WATCHER_QUEUE_EVENTS == 4096
    async with local_cluster(tmp_path, storage_url="memory://") as lc:
        server = lc.server
        store = server.store_for("", "v1", "configmaps")
        slow = server.cacher.watch(store.root, namespace="default", matcher=lambda o: True, since=server.cacher.revision)
        fast = server.cacher.watch(store.root, namespace="default", matcher=lambda o: True, since=server.cacher.revision)
        assert slow is not None and fast is not None
        received = 0
        try:
            for i in range(4200):
                await store.create("default", {"metadata": {"name": f"cm-{i}"}})
                await server.cacher.wait_fresh()  # a create does not wait for the watch cache
                received += len(fast.drain())
            await asyncio.sleep(0)
            received += len(fast.drain())
        finally:
            store.stop_watch(slow)
            store.stop_watch(fast)
        assert received == 4200
        assert fast.overflowed is False
        assert slow.overflowed is True
        assert slow.queue.qsize() == 4096  # bounded: nothing past the limit was kept


async def test_slow_http_watcher_stream_is_ended_while_a_fast_one_keeps_receiving(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # A smaller bound keeps the test quick; socket buffers absorb megabytes before it matters.
    monkeypatch.setattr(cacher_module, "WATCHER_QUEUE_EVENTS", 32)
    count = 500
    payload = "x" * 20_000
    async with local_cluster(tmp_path, storage_url="memory://") as lc:
        ctx = Raw(lc.kubeconfig).ctx
        store = lc.server.store_for("", "v1", "configmaps")
        rv = str(lc.server.cacher.revision)
        path = f"/api/v1/namespaces/default/configmaps?watch=true&resourceVersion={rv}&timeoutSeconds=60"

        sock = socket.socket()
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        sock.setblocking(False)
        await asyncio.get_running_loop().sock_connect(sock, ("127.0.0.1", lc.port))
        reader, writer = await asyncio.open_connection(sock=sock, ssl=ctx, server_hostname="127.0.0.1", limit=2**24)
        writer.write(f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nAccept: application/json\r\n\r\n".encode())
        await writer.drain()

        async with ClientSession(connector=TCPConnector(ssl=ctx)) as session:
            async with session.get(lc.url + path) as resp:
                assert resp.status == 200
                fast_events: list[str] = []

                async def read_fast() -> None:
                    async for line in resp.content:
                        fast_events.append(orjson.loads(line)["object"]["metadata"]["name"])
                        if len(fast_events) == count:
                            return

                reading = asyncio.create_task(read_fast())
                await asyncio.sleep(0.2)  # both watches registered
                for i in range(count):
                    await store.create("default", {"metadata": {"name": f"big-{i:04d}"}, "data": {"p": payload}})
                    await lc.server.cacher.wait_fresh()
                await asyncio.wait_for(reading, 30)
        assert fast_events == [f"big-{i:04d}" for i in range(count)]

        # The slow watcher now reads: it gets what was buffered, then the stream ends cleanly.
        raw = b""

        async def read_to_end() -> None:
            nonlocal raw
            while not raw.endswith(b"\r\n0\r\n\r\n"):  # keep-alive: the connection stays open
                chunk = await reader.read(1 << 20)
                if not chunk:
                    return
                raw += chunk

        await asyncio.wait_for(read_to_end(), 30)
        writer.close()
        head, _, body = raw.partition(b"\r\n\r\n")
        assert head.startswith(b"HTTP/1.1 200")
        assert body.endswith(b"0\r\n\r\n"), body[-50:]  # the terminating chunk
        delivered = body.count(b'"type":"ADDED"')
        assert 0 < delivered < count
