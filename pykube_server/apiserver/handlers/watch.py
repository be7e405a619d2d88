"""watch: the chunked stream of `{"type","object"}` lines.

Every event is one JSON object followed by a newline (the Python client splits on it), never
compressed, and the stream ends with the terminating chunk when the timeout passes. A
resourceVersion older than the cache's event window gets an in-stream ERROR event with a 410
Expired Status, as kube-apiserver's watch cache answers. Several waiting events are written in
one chunk, so a burst costs one write per watcher, not one per event.
"""

from __future__ import annotations

import asyncio
import random
from typing import Any

import orjson
from aiohttp import web

from pykube_server.api import errors
from pykube_server.apiserver.handlers.common import Call
from pykube_server.registry.table import table
from pykube_server.storage.cacher import CachedObject, Watcher

BOOKMARK_INTERVAL_SECONDS = 60.0
MIN_REQUEST_TIMEOUT_SECONDS = 1800
INITIAL_EVENTS_END = "k8s.io/initial-events-end"


class WatchStream:
    def __init__(self, call: Call) -> None:
        self.call = call
        self.table = call.output.format == "table"
        self.columns_sent = False
        self.include_object = call.query("includeObject", "Metadata")
        self.bookmarks = bool(call.bool_query("allowWatchBookmarks"))

    def event(self, kind: str, obj: CachedObject) -> bytes:
        if not self.table:
            return b'{"type":"%s","object":%s}\n' % (kind.encode(), obj.raw)
        rendered = table(self.call.store.strategy, [obj.decode()], include_object=self.include_object,
                         version=self.call.output.version, with_columns=not self.columns_sent)
        self.columns_sent = True
        return orjson.dumps({"type": kind, "object": rendered}) + b"\n"

    def bookmark(self, revision: int, annotations: dict[str, str] | None = None) -> bytes:
        meta: dict[str, Any] = {"resourceVersion": str(revision)}
        if annotations:
            meta["annotations"] = annotations
        obj = {"kind": self.call.spec.kind, "apiVersion": self.call.spec.api_version, "metadata": meta}
        return orjson.dumps({"type": "BOOKMARK", "object": obj}) + b"\n"


def error_event(err: errors.StatusError) -> bytes:
    return orjson.dumps({"type": "ERROR", "object": err.status()}) + b"\n"


def _timeout(call: Call) -> float:
    seconds = call.int_query("timeoutSeconds", 0)
    if seconds > 0:
        return float(seconds)
    return MIN_REQUEST_TIMEOUT_SECONDS * (1 + random.random())


async def watch(call: Call) -> web.StreamResponse:
    send_initial = call.bool_query("sendInitialEvents")
    if send_initial is not None and call.query("resourceVersionMatch") != "NotOlderThan":
        raise errors.Invalid(
            "ListOptions.meta.k8s.io \"\" is invalid: sendInitialEvents: Forbidden: sendInitialEvents is forbidden for watch unless the WatchList feature gate is enabled"
            if False else
            'ListOptions.meta.k8s.io "" is invalid: resourceVersionMatch: Forbidden: sendInitialEvents requires setting resourceVersionMatch to NotOlderThan',
            details={"kind": "ListOptions", "group": "meta.k8s.io", "causes": [
                {"reason": "FieldValueForbidden", "message": "Forbidden: sendInitialEvents requires setting resourceVersionMatch to NotOlderThan",
                 "field": "resourceVersionMatch"}]},
        )
    stream = WatchStream(call)
    resp = web.StreamResponse(status=200)
    resp.content_type = "application/json"
    if stream.table:
        resp.content_type = "application/json"
    resp.enable_chunked_encoding()
    try:
        watcher = await call.store.watch(
            call.namespace,
            label_selector=call.query("labelSelector"),
            field_selector=call.query("fieldSelector"),
            resource_version=call.query("resourceVersion"),
            send_initial_events=send_initial,
        )
    except errors.Gone as exc:
        await resp.prepare(call.request)
        await resp.write(error_event(exc))
        await resp.write_eof()
        return resp
    try:
        await resp.prepare(call.request)
        await _pump(call, stream, watcher, resp, bool(send_initial))
        await resp.write_eof()
    except ConnectionResetError:
        pass  # the client went away (e.g. a component stopping with the server): nothing to end
    finally:
        call.store.stop_watch(watcher)
    return resp


async def _pump(call: Call, stream: WatchStream, watcher: Watcher, resp: web.StreamResponse, initial_end: bool) -> None:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + _timeout(call)
    next_bookmark = loop.time() + BOOKMARK_INTERVAL_SECONDS
    if initial_end:
        while watcher.initial:
            await resp.write(b"".join(stream.event(k, o) for k, o in _take_initial(watcher)))
        await resp.write(stream.bookmark(watcher.start_revision, {INITIAL_EVENTS_END: "true"}))
    cacher = call.store.cacher
    while True:
        batch = watcher.drain()
        if batch:
            await resp.write(b"".join(stream.event(k, o) for k, o in batch))
            continue
        if watcher.overflowed or watcher.closed:
            return
        now = loop.time()
        if now >= deadline:
            if stream.bookmarks:
                await resp.write(stream.bookmark(cacher.revision))
            return
        if stream.bookmarks and now >= next_bookmark:
            await resp.write(stream.bookmark(cacher.revision))
            next_bookmark = now + BOOKMARK_INTERVAL_SECONDS
        wait = min(deadline, next_bookmark if stream.bookmarks else deadline) - now
        try:
            async with asyncio.timeout(max(wait, 0.001)):
                await watcher.wakeup.wait()
        except TimeoutError:
            pass


def _take_initial(watcher: Watcher, max_events: int = 512) -> list[tuple[str, CachedObject]]:
    out = []
    while watcher.initial and len(out) < max_events:
        out.append(watcher.initial.popleft())
    return out
