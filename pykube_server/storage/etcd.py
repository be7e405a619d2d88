"""The distributed backend: a real etcd (v3 API) reached through its JSON gateway with aiohttp.

etcd already has exactly the data model `Backend` describes (one cluster-wide revision per
write, MVCC reads at a revision, compaction, watch from a revision), so this module is a thin
translation, not a re-implementation:

* **Keys and values.** Keys are the caller's strings (`/registry/pods/ns/name`, as
  kube-apiserver writes them) encoded as UTF-8; values are the JSON bytes. UTF-8 byte order is
  code-point order, so etcd's key order is the order the other backends give. Over the gateway
  both travel base64-encoded and every int64 is a JSON string.
* **Revisions.** etcd's own create/mod revisions, shifted: an empty etcd is at revision 1 and
  its first write gets 2, while the `Backend` contract counts the empty store as 0 and its first
  write as 1. The offset (`REVISION_OFFSET` unless etcd holds another one under
  `OFFSET_KEY`, read at open) is subtracted from everything etcd reports and added to
  everything sent; order, equality and gaps are etcd's. `pykube-server migrate` stores a smaller
  (even negative) offset so a migrated cluster's revisions continue above the source's: every
  resourceVersion a client saw before the move stays lower than any after it.
* **Writes are single transactions.** `create` puts under `create_revision(key) == 0`;
  `update`/`delete` under `mod_revision(key) == expected` (or `> 0` when unconditional, so a
  missing key is KeyNotFound). The failure branch reads the key, so a failed write returns the
  current revision for the Conflict/KeyExists error in the same round trip. A delete asks for
  `prev_kv` to return the last value with the deletion's revision (from the response header).
  Writes to one key from this process are sent one at a time in submission order (a FIFO lock
  per key): concurrent compare-and-swaps on a key then resolve as they do in the embedded
  backends instead of by which TCP connection happens to win.
* **Reads** are etcd ranges (linearizable: they go through the leader's read index) over
  `[key, prefix_end)`; `after` becomes the start key `after + "\\0"`; `limit` and `more` are
  etcd's own.
* **Watch** is the gateway's streaming `/v3/watch` with `prev_kv` and `progress_notify`, one
  HTTP request per watch, read as newline-delimited JSON from raw chunks (no per-line size
  limit: a response can carry 1000 revisions of large objects). If the stream breaks (the
  member died) the watch is re-created on the next endpoint from the last delivered revision,
  so a consumer sees no gap and no duplicate. A start revision below etcd's compaction point
  makes etcd cancel the watch with `compact_revision`, which becomes `Compacted`.
* **The compacted revision** is not something etcd's KV API reports on a read, so it is
  tracked: learnt at open, updated by `compact`, and re-learnt whenever etcd refuses a read as
  compacted (another API server may have compacted). It is learnt by opening a watch at
  revision 1, which etcd cancels naming its compaction point.
* **Endpoints.** Requests go to one endpoint at a time; a connection that cannot be made moves
  to the next. Reads are retried on any transport failure; writes only when the request
  certainly never reached etcd (connection refused), because a retried compare-and-swap whose
  first attempt did apply would report a false conflict. An ambiguous write raises
  `EtcdUnavailable`, which the API turns into a 5xx and clients retry.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import logging
import ssl
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass
from types import TracebackType
from typing import Any

import aiohttp
import orjson

from pykube_server.storage.backend import (
    Compacted,
    Conflict,
    Event,
    KeyExists,
    KeyNotFound,
    KeyValue,
    Page,
)

log = logging.getLogger(__name__)

REVISION_OFFSET = 1
"""etcd revision = Backend revision + offset; this default makes an empty etcd Backend revision 0."""
OFFSET_KEY = "/pykube/revision-offset"
"""Where a non-default offset is kept (decimal ASCII); outside /registry/, so no API reads it."""
REQUEST_TIMEOUT_SECONDS = 15.0
"""A unary request that takes longer fails (etcd's own request timeout is 5-7 s)."""
CONNECT_TIMEOUT_SECONDS = 3.0
WATCH_RETRY_MAX_SECONDS = 2.0
"""Longest pause between attempts to re-create a broken watch."""
OPEN_TIMEOUT_SECONDS = 20.0
"""How long `open` waits for some endpoint to answer before giving up."""
MAX_UNARY_CONNECTIONS = 128

_COMPACTED = "required revision has been compacted"
_FUTURE = "required revision is a future revision"
_NEVER_SENT = (aiohttp.ClientConnectorError, aiohttp.ConnectionTimeoutError, ConnectionRefusedError)
"""Transport failures that prove the request never reached etcd (safe to send elsewhere)."""
_PROBE_KEY = b"\0"
"""A key no Kubernetes object uses, for reads that only want a response header."""


class EtcdError(Exception):
    """etcd answered with an error the Backend contract has no name for."""

    def __init__(self, message: str, code: int = 0) -> None:
        super().__init__(message)
        self.message, self.code = message, code


class EtcdUnavailable(EtcdError):
    """No endpoint could be reached, or a write's outcome is unknown (the connection broke
    after it was sent)."""


@dataclass(frozen=True, slots=True)
class TLSConfig:
    """Client TLS towards etcd, as kube-apiserver's --etcd-cafile/--etcd-certfile/--etcd-keyfile."""

    cafile: str | None = None
    certfile: str | None = None
    keyfile: str | None = None

    def context(self) -> ssl.SSLContext:
        ctx = ssl.create_default_context(cafile=self.cafile)
        if self.certfile:
            ctx.load_cert_chain(self.certfile, self.keyfile)
        return ctx


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def _unb64(text: str | None) -> bytes:
    return base64.b64decode(text) if text else b""


def prefix_end(prefix: bytes) -> bytes:
    """etcd's range end for "every key starting with `prefix`" (b"\\0" = to the end of the
    key space, as etcd spells it)."""
    end = bytearray(prefix)
    while end:
        if end[-1] < 0xFF:
            end[-1] += 1
            return bytes(end)
        end.pop()
    return b"\0"


def _rev(value: Any, offset: int) -> int:
    """A revision as etcd reports it (JSON string, absent = 0) in Backend numbering."""
    return int(value or 0) - offset


def _kv(raw: dict[str, Any], offset: int) -> KeyValue:
    return KeyValue(
        _unb64(raw.get("key")).decode("utf-8"),
        _unb64(raw.get("value")),
        _rev(raw.get("create_revision"), offset),
        _rev(raw.get("mod_revision"), offset),
    )


def _header_revision(body: dict[str, Any], offset: int) -> int:
    return _rev((body.get("header") or {}).get("revision"), offset)


def _event(raw: dict[str, Any], offset: int) -> Event:
    kv, prev_raw = raw["kv"], raw.get("prev_kv")
    prev = _kv(prev_raw, offset) if prev_raw else None
    if raw.get("type") == "DELETE":
        key = _unb64(kv.get("key")).decode("utf-8")
        # etcd omits prev_kv when the previous revision is already compacted; the value is then
        # unknown, and an empty object stands in for it so consumers can still decode it.
        value, created = (prev.value, prev.create_revision) if prev else (b"{}", 0)
        return Event("delete", KeyValue(key, value, created, _rev(kv.get("mod_revision"), offset)), prev)
    return Event("put", _kv(kv, offset), prev)


class _KeyLocks:
    """FIFO locks per key, forgotten when nobody holds or waits for them."""

    def __init__(self) -> None:
        self._locks: dict[str, tuple[asyncio.Lock, list[int]]] = {}

    def lock(self, key: str) -> _HeldKey:
        return _HeldKey(self, key)

    async def acquire(self, key: str) -> None:
        entry = self._locks.get(key)
        if entry is None:
            entry = self._locks[key] = (asyncio.Lock(), [0])
        entry[1][0] += 1
        try:
            await entry[0].acquire()
        except BaseException:
            self._forget(key, entry)
            raise

    def release(self, key: str) -> None:
        entry = self._locks[key]
        entry[0].release()
        self._forget(key, entry)

    def _forget(self, key: str, entry: tuple[asyncio.Lock, list[int]]) -> None:
        entry[1][0] -= 1
        if not entry[1][0]:
            del self._locks[key]


class _HeldKey:
    def __init__(self, locks: _KeyLocks, key: str) -> None:
        self._locks, self._key = locks, key

    async def __aenter__(self) -> None:
        await self._locks.acquire(self._key)

    async def __aexit__(self, *exc: object) -> None:
        self._locks.release(self._key)


class EtcdBackend:
    """A `Backend` on an etcd cluster; open with `await EtcdBackend.open(["127.0.0.1:2379"])`."""

    def __init__(self, endpoints: Sequence[str], *, tls: TLSConfig | None = None) -> None:
        """Use `open()`, which also checks that etcd answers and learns its compaction point.
        `endpoints` are `host:port` strings (or full http(s):// URLs)."""
        if not endpoints:
            raise ValueError("at least one etcd endpoint is needed")
        scheme = "https" if tls is not None else "http"
        self.endpoints = [e.rstrip("/") if "://" in e else f"{scheme}://{e}" for e in endpoints]
        self.compacted_revision = 0
        """Reads and watches from revisions below this raise `Compacted` (Backend numbering)."""
        self.offset = REVISION_OFFSET
        """etcd revision - Backend revision (see `OFFSET_KEY`)."""
        self._current = 0
        self._ssl: ssl.SSLContext | bool = tls.context() if tls is not None else False
        self._unary = self._session()
        self._streams = self._session()
        self._slots = asyncio.Semaphore(MAX_UNARY_CONNECTIONS)
        """Bounds unary requests in flight; the request timeout starts once one has a slot."""
        self._watches: set[aiohttp.ClientResponse] = set()
        self._key_locks = _KeyLocks()
        self._closed = False

    def _session(self) -> aiohttp.ClientSession:
        # No connector limit (the semaphore bounds unary requests; each watch holds one
        # connection), and a connect timeout on the TCP connect alone, not the pool wait.
        connector = aiohttp.TCPConnector(limit=0, ssl=self._ssl)
        timeout = aiohttp.ClientTimeout(total=None, sock_connect=CONNECT_TIMEOUT_SECONDS)
        return aiohttp.ClientSession(connector=connector, timeout=timeout)

    @classmethod
    async def open(
        cls,
        endpoints: Sequence[str],
        *,
        tls: TLSConfig | None = None,
        timeout: float = OPEN_TIMEOUT_SECONDS,
    ) -> EtcdBackend:
        """Connect, waiting up to `timeout` seconds for an endpoint to answer."""
        backend = cls(endpoints, tls=tls)
        try:
            async with asyncio.timeout(timeout):
                while True:
                    try:
                        await backend.current_revision()
                        break
                    except EtcdUnavailable:
                        await asyncio.sleep(0.2)
            await backend._load_offset()
            await backend._learn_compacted_revision()
        except BaseException:
            await backend.aclose()
            raise
        return backend

    async def __aenter__(self) -> EtcdBackend:
        return self

    async def __aexit__(
        self, et: type[BaseException] | None, e: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.aclose()

    # -- transport -----------------------------------------------------------------------

    async def _call(self, path: str, body: dict[str, Any], *, idempotent: bool) -> dict[str, Any]:
        """POST one gateway request, moving along the endpoints while they cannot be reached.
        Returns the decoded body; an etcd error raises EtcdError (see `_error`)."""
        if self._closed:
            raise RuntimeError("storage backend is closed")
        data = orjson.dumps(body)
        failures: list[str] = []
        for _ in range(len(self.endpoints) * 2):
            endpoint = self.endpoints[self._current]
            try:
                async with self._slots, asyncio.timeout(REQUEST_TIMEOUT_SECONDS):
                    async with self._unary.post(
                        endpoint + path, data=data, headers={"Content-Type": "application/json"}
                    ) as resp:
                        payload = await resp.read()
                        status = resp.status
            except _NEVER_SENT as exc:
                failures.append(f"{endpoint}: {exc}")
                self._next_endpoint(endpoint)
                continue
            except (aiohttp.ClientError, TimeoutError, OSError) as exc:
                if self._closed:
                    raise RuntimeError("storage backend is closed") from exc
                self._next_endpoint(endpoint)
                if idempotent:
                    failures.append(f"{endpoint}: {exc!r}")
                    continue
                raise EtcdUnavailable(f"etcd write outcome unknown ({endpoint}: {exc!r})") from exc
            try:
                decoded = orjson.loads(payload) if payload else {}
            except orjson.JSONDecodeError:
                decoded = {"error": payload.decode("utf-8", "replace")}
            if status == 200 and "error" not in decoded:
                return decoded  # type: ignore[no-any-return]
            error = EtcdError(str(decoded.get("error") or decoded.get("message") or status),
                              int(decoded.get("code") or 0))
            if error.code == 14 and idempotent:  # Unavailable (no leader, member stopping)
                failures.append(f"{endpoint}: {error}")
                self._next_endpoint(endpoint)
                await asyncio.sleep(0.05)
                continue
            raise error
        raise EtcdUnavailable("no etcd endpoint answered: " + "; ".join(failures[-3:]))

    def _next_endpoint(self, failed: str) -> None:
        if self.endpoints[self._current] == failed:
            self._current = (self._current + 1) % len(self.endpoints)

    async def _read(self, key: str, body: dict[str, Any], revision: int) -> dict[str, Any]:
        """A range request at `revision` (0 = latest) with errors translated."""
        if revision:
            if revision < self.compacted_revision:
                raise Compacted(key, self.compacted_revision)
            body["revision"] = revision + self.offset
        try:
            return await self._call("/v3/kv/range", body, idempotent=True)
        except EtcdError as exc:
            raise await self._translate(key, exc) from None

    async def _translate(self, key: str, exc: EtcdError) -> Exception:
        if _COMPACTED in exc.message:
            await self._learn_compacted_revision()
            return Compacted(key, self.compacted_revision)
        if _FUTURE in exc.message:
            return ValueError(f"revision is newer than etcd's current revision: {exc.message}")
        return exc

    async def _learn_compacted_revision(self) -> None:
        """Ask etcd where it compacted: a read at its first revision succeeds when nothing is
        compacted; otherwise a watch from there is cancelled naming the compaction point."""
        try:
            await self._call("/v3/kv/range", {"key": _b64(_PROBE_KEY), "count_only": True,
                                              "revision": 1}, idempotent=True)
            return
        except EtcdError as exc:
            if _COMPACTED not in exc.message:
                raise
        request = {"create_request": {"key": _b64(_PROBE_KEY), "start_revision": 1}}
        async with asyncio.timeout(REQUEST_TIMEOUT_SECONDS), \
                contextlib.aclosing(self._watch_stream(request)) as stream:
            async for result in stream:
                if result.get("canceled") or result.get("compact_revision"):
                    self._note_compacted(_rev(result.get("compact_revision"), self.offset))
                    return

    def _note_compacted(self, revision: int) -> None:
        self.compacted_revision = max(self.compacted_revision, revision)

    async def _load_offset(self) -> None:
        body = await self._call("/v3/kv/range", {"key": _b64(OFFSET_KEY.encode())}, idempotent=True)
        kvs = body.get("kvs")
        if kvs:
            self.offset = int(_unb64(kvs[0].get("value")).decode("ascii"))

    async def start_revisions_after(self, revision: int) -> int:
        """Renumber so that every later revision is above `revision` (a migration's source
        revision) and above every revision this store has handed out so far; history before
        the renumbering is compacted away, since its old numbers would now overlap.
        Returns the new current revision. Only for a store no API server is using."""
        raw = int((await self._call("/v3/kv/range", {"key": _b64(OFFSET_KEY.encode()), "count_only": True},
                                    idempotent=True)).get("header", {}).get("revision") or 0)
        # The offset key's own write lands at some etcd revision > raw; with this offset it maps
        # above both the floor and the current Backend revision (raw - self.offset).
        offset = min(self.offset, raw - revision)
        body = await self._call("/v3/kv/put", {"key": _b64(OFFSET_KEY.encode()),
                                               "value": _b64(str(offset).encode())}, idempotent=False)
        written = int(body.get("header", {}).get("revision") or 0)
        self.offset = offset
        await self._call("/v3/kv/compaction", {"revision": written}, idempotent=True)
        self._note_compacted(written - offset)
        return written - offset

    # -- reads ---------------------------------------------------------------------------

    async def get(self, key: str, *, revision: int = 0) -> KeyValue:
        body = await self._read(key, {"key": _b64(key.encode())}, revision)
        kvs = body.get("kvs")
        if not kvs:
            raise KeyNotFound(key)
        return _kv(kvs[0], self.offset)

    async def scan(self, prefix: str, *, revision: int = 0, after: str = "", limit: int = 0) -> Page:
        start = after.encode() + b"\0" if after >= prefix else prefix.encode()
        request: dict[str, Any] = {"key": _b64(start), "range_end": _b64(prefix_end(prefix.encode()))}
        if limit:
            request["limit"] = limit
        body = await self._read(prefix, request, revision)
        items = [_kv(raw, self.offset) for raw in body.get("kvs") or ()]
        return Page(items, revision or _header_revision(body, self.offset), bool(body.get("more")))

    async def current_revision(self) -> int:
        body = await self._call("/v3/kv/range", {"key": _b64(_PROBE_KEY), "count_only": True},
                                idempotent=True)
        return _header_revision(body, self.offset)

    # -- writes --------------------------------------------------------------------------

    async def _txn(self, key: str, compare: dict[str, Any], success: dict[str, Any]) -> dict[str, Any]:
        """One compare-and-act transaction on `key`; the failure branch reads the key."""
        k = _b64(key.encode())
        body = {
            "compare": [{"key": k, **compare}],
            "success": [success],
            "failure": [{"request_range": {"key": k}}],
        }
        async with self._key_locks.lock(key):
            return await self._call("/v3/kv/txn", body, idempotent=False)

    def _current_of(self, body: dict[str, Any]) -> KeyValue | None:
        """The key as the failure branch read it (None: it does not exist)."""
        responses = body.get("responses") or [{}]
        kvs = (responses[0].get("response_range") or {}).get("kvs")
        return _kv(kvs[0], self.offset) if kvs else None

    def _expect(self, expected: int) -> dict[str, Any]:
        if expected:
            return {"target": "MOD", "result": "EQUAL", "mod_revision": expected + self.offset}
        return {"target": "MOD", "result": "GREATER", "mod_revision": 0}

    def _failed(self, key: str, body: dict[str, Any]) -> Exception:
        current = self._current_of(body)
        if current is None:
            return KeyNotFound(key)
        return Conflict(key, current.mod_revision)

    async def create(self, key: str, value: bytes) -> int:
        body = await self._txn(
            key,
            {"target": "CREATE", "result": "EQUAL", "create_revision": 0},
            {"request_put": {"key": _b64(key.encode()), "value": _b64(value)}},
        )
        if not body.get("succeeded"):
            current = self._current_of(body)
            raise KeyExists(key, current.mod_revision if current else 0)
        return _header_revision(body, self.offset)

    async def update(self, key: str, value: bytes, *, revision: int) -> int:
        """`revision` 0 means unconditional (the key must still exist), as for `delete`."""
        body = await self._txn(
            key, self._expect(revision),
            {"request_put": {"key": _b64(key.encode()), "value": _b64(value)}},
        )
        if not body.get("succeeded"):
            raise self._failed(key, body)
        return _header_revision(body, self.offset)

    async def delete(self, key: str, *, revision: int = 0) -> KeyValue:
        body = await self._txn(
            key, self._expect(revision),
            {"request_delete_range": {"key": _b64(key.encode()), "prev_kv": True}},
        )
        if not body.get("succeeded"):
            raise self._failed(key, body)
        deleted = (body.get("responses") or [{}])[0].get("response_delete_range") or {}
        prev = _kv((deleted.get("prev_kvs") or [{}])[0], self.offset)
        return KeyValue(key, prev.value, prev.create_revision, _header_revision(body, self.offset))

    # -- watch ---------------------------------------------------------------------------

    def watch(self, prefix: str, *, revision: int) -> AsyncIterator[Event]:
        return self._watch(prefix, revision)

    async def _watch(self, prefix: str, revision: int) -> AsyncIterator[Event]:
        if revision < self.compacted_revision:
            raise Compacted(prefix, self.compacted_revision)
        cursor, pause = revision, 0.05
        key = prefix.encode()
        while not self._closed:
            request = {"create_request": {
                "key": _b64(key), "range_end": _b64(prefix_end(key)),
                "start_revision": cursor + 1 + self.offset,
                "prev_kv": True, "progress_notify": True,
            }}
            try:
                async with contextlib.aclosing(self._watch_stream(request)) as stream:
                    async for result in stream:
                        self._check_cancelled(prefix, result)
                        pause = 0.05
                        for raw in result.get("events") or ():
                            event = _event(raw, self.offset)
                            cursor = event.kv.mod_revision
                            yield event
            except (aiohttp.ClientError, OSError, TimeoutError, EtcdUnavailable) as exc:
                if self._closed:
                    return
                log.warning("etcd watch on %r broke (%r); resuming after revision %d", prefix, exc, cursor)
            if self._closed:
                return
            await asyncio.sleep(pause)
            pause = min(pause * 2, WATCH_RETRY_MAX_SECONDS)

    def _check_cancelled(self, prefix: str, result: dict[str, Any]) -> None:
        """Raise for a watch response that ends the watch (compaction or another reason)."""
        if not (result.get("canceled") or result.get("compact_revision")):
            return
        compact = _rev(result.get("compact_revision"), self.offset)
        if compact > 0 or _COMPACTED in str(result.get("cancel_reason")):
            self._note_compacted(compact)
            raise Compacted(prefix, self.compacted_revision)
        reason = result.get("cancel_reason") or "no reason given"
        raise EtcdError(f"etcd cancelled the watch on {prefix!r}: {reason}")

    async def _watch_stream(self, request: dict[str, Any]) -> AsyncIterator[dict[str, Any]]:
        """The `result` objects of one gateway watch stream on the current endpoint. Ends when
        the stream does (or the backend is closed); transport errors propagate."""
        endpoint = self.endpoints[self._current]
        try:
            resp = await self._streams.post(
                endpoint + "/v3/watch", data=orjson.dumps(request),
                headers={"Content-Type": "application/json"},
            )
        except _NEVER_SENT:
            self._next_endpoint(endpoint)
            raise
        except RuntimeError:  # the session was closed under us
            if self._closed:
                return
            raise
        self._watches.add(resp)
        try:
            if resp.status != 200:
                text = await resp.text()
                raise EtcdError(f"etcd watch failed with HTTP {resp.status}: {text[:200]}")
            buffer = b""
            while not self._closed:
                chunk = await resp.content.readany()
                if not chunk:
                    if not self._closed:
                        self._next_endpoint(endpoint)
                        raise EtcdUnavailable(f"etcd watch stream from {endpoint} ended")
                    return
                buffer += chunk
                *lines, buffer = buffer.split(b"\n")
                for line in lines:
                    if not line.strip():
                        continue
                    message = orjson.loads(line)
                    if "error" in message:
                        error = message["error"]
                        raise EtcdError(str(error.get("message") or error), int(error.get("grpc_code") or 0))
                    yield message.get("result") or {}
        finally:
            self._watches.discard(resp)
            resp.close()

    # -- maintenance ---------------------------------------------------------------------

    async def compact(self, revision: int) -> None:
        """Forget history older than `revision`. At or below the compacted revision: a no-op;
        newer than the current revision: ValueError."""
        if revision <= self.compacted_revision:
            return
        try:
            await self._call("/v3/kv/compaction", {"revision": revision + self.offset},
                             idempotent=True)
        except EtcdError as exc:
            translated = await self._translate("", exc)
            if isinstance(translated, Compacted):  # already compacted there (by someone else)
                return
            raise ValueError(f"cannot compact to {revision}: {exc.message}") if isinstance(
                translated, ValueError) else translated from None
        self._note_compacted(revision)

    async def aclose(self) -> None:
        """Idempotent; running watches end (their iterators finish) and requests are refused."""
        if self._closed:
            return
        self._closed = True
        for resp in list(self._watches):
            resp.content.feed_eof()
            resp.close()
        await self._unary.close()
        await self._streams.close()
