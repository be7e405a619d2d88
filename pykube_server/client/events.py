"""Recording core/v1 Events, as client-go's `tools/record` recorder and correlator do.

`EventRecorder.event(obj, type, reason, message)` is synchronous and never blocks (controllers
call it from reconcile code and handlers); it enqueues, and `run()` writes in the background
with a few concurrent writers (client-go's events library writes each event from its own
goroutine; one writer at a time held a busy scheduler to one round trip per pod). Like client-go:

* an Event is named `<involved object name>.<hex unix nanoseconds>` and lives in the involved
  object's namespace (`default` for cluster-scoped objects); it carries `involvedObject`,
  `reason`, `message`, `type` (Normal or Warning), `source` and `reportingComponent` /
  `reportingInstance`, `firstTimestamp`, `lastTimestamp` and `count`;
* a repeat of the same event (same source, object, type, reason and message) seen within
  10 minutes is not a new object: the existing one is PATCHed (strategic merge) with
  `count + 1` and a new `lastTimestamp`; if that Event is gone, it is created again;
* a per-object token bucket (burst 25, one more every 5 minutes) drops event storms;
* an event identical to one still waiting to be written is folded into it (its count grows and
  its `lastTimestamp` moves) instead of taking a queue slot; events of one key are written one
  after another, never concurrently, so the second becomes the PATCH of the first;
* at most 1,000 distinct events wait; beyond that new ones are dropped and counted
  (`dropped`), with one warning per 10 seconds saying how many, not one log line per event
  (client-go's broadcaster drops when its 1,000-event channel is full, too);
* writes that fail below HTTP are retried up to 12 times, 10 s apart (first one jittered);
  an API error drops the event, since retrying the same body cannot help.

The 10-minute window is client-go's aggregation interval; the message-insensitive
"(combined from similar events)" aggregation of client-go is not implemented.

The events.k8s.io/v1 recorder (kube-scheduler's) is `client/eventsv1.py`, on this machinery.
"""

from __future__ import annotations

import asyncio
import logging
import random
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timezone

from pykube_server.api import errors
from pykube_server.api.types import Obj
from pykube_server.client.clock import REAL_CLOCK, Clock
from pykube_server.client.ratelimit import TokenBucket
from pykube_server.client.rest import EVENTS, Client, PatchType, TransportError

log = logging.getLogger(__name__)

NORMAL = "Normal"
WARNING = "Warning"
AGGREGATION_WINDOW_SECONDS = 600.0
MAX_CACHE_ENTRIES = 4096
SPAM_BURST = 25
SPAM_QPS = 1.0 / 300.0
QUEUE_SIZE = 1000
WRITERS = 16
DROP_LOG_SECONDS = 10.0
MAX_WRITE_TRIES = 12
RETRY_SECONDS = 10.0
_EPOCH = datetime(1970, 1, 1, tzinfo=timezone.utc)


def format_time(moment: datetime) -> str:
    """metav1.Time: RFC 3339 in UTC with second precision."""
    return moment.astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def unix_nanos(moment: datetime) -> int:
    delta = moment - _EPOCH
    return (delta.days * 86_400 + delta.seconds) * 1_000_000_000 + delta.microseconds * 1000


def object_reference(obj: Obj, *, field_path: str = "") -> Obj:
    """The `involvedObject` for `obj` (empty fields left out)."""
    meta = obj.get("metadata") or {}
    ref = {"kind": obj.get("kind", ""), "namespace": meta.get("namespace", ""), "name": meta.get("name", ""),
           "uid": meta.get("uid", ""), "apiVersion": obj.get("apiVersion", ""),
           "resourceVersion": meta.get("resourceVersion", ""), "fieldPath": field_path}
    return {k: v for k, v in ref.items() if v}


@dataclass
class _Seen:
    name: str
    namespace: str
    first_timestamp: str
    count: int
    last_seen: float


@dataclass
class _Pending:
    event: Obj
    occurrences: int


class EventRecorder:
    """Writes Events for one component (`source.component`) on one host."""

    def __init__(self, client: Client, *, component: str, host: str = "", clock: Clock = REAL_CLOCK,
                 rand: Callable[[], float] = random.random, writers: int = WRITERS,
                 queue_size: int = QUEUE_SIZE) -> None:
        self.component = component
        self.host = host
        self._client = client
        self._clock = clock
        self._rand = rand
        self._writers = writers
        self._queue_size = queue_size
        self._pending: OrderedDict[tuple[str, ...], _Pending] = OrderedDict()
        """Events waiting for a writer, by correlation key, oldest first."""
        self._deferred: dict[tuple[str, ...], _Pending] = {}
        """Events whose key is being written right now: they wait for that write."""
        self._inflight: set[tuple[str, ...]] = set()
        self._wake = asyncio.Event()
        self._idle = asyncio.Event()
        self._idle.set()
        self._seen: OrderedDict[tuple[str, ...], _Seen] = OrderedDict()
        self._spam: OrderedDict[tuple[str, ...], TokenBucket] = OrderedDict()
        self.dropped = 0
        """Events dropped because too many were waiting (a metric, like client-go's)."""
        self.aggregated = 0
        """Events folded into an identical one still waiting to be written."""
        self._dropped_logged = 0
        self._drop_logged_at = float("-inf")

    def event(self, obj: Obj, type: str, reason: str, message: str, *, field_path: str = "", action: str = "",
              related: Obj | None = None) -> None:
        """Queue an event about `obj`; dropped when `type` is neither Normal nor Warning, when
        the spam filter refuses it, or when the queue is full (counted in `dropped`). Never
        blocks. `action` and `related` are events.k8s.io's (the core recorder has neither)."""
        if type not in (NORMAL, WARNING):
            log.error("unsupported event type %r (reason %s)", type, reason)
            return
        event = self.make_event(obj, type, reason, message, field_path=field_path, action=action, related=related)
        if not self._allowed(event):
            log.debug("event %s on %s dropped by the spam filter", reason, obj.get("metadata", {}).get("name"))
            return
        key = self.key_of(event)
        waiting = self._deferred.get(key) if key in self._inflight else self._pending.get(key)
        if waiting is not None:
            waiting.occurrences += 1
            waiting.event = self.folded(waiting.event, event)
            self.aggregated += 1
            return
        if len(self._pending) + len(self._deferred) >= self._queue_size:
            self._drop(reason)
            return
        if key in self._inflight:
            self._deferred[key] = _Pending(event, 1)
        else:
            self._pending[key] = _Pending(event, 1)
            self._wake.set()
        self._idle.clear()

    def _drop(self, reason: str) -> None:
        self.dropped += 1
        now = self._clock.now()
        if now - self._drop_logged_at >= DROP_LOG_SECONDS:
            log.warning("event queue full (%d waiting): dropped %d events since the last warning (%d in all),"
                        " the latest %s", self._queue_size, self.dropped - self._dropped_logged, self.dropped, reason)
            self._drop_logged_at, self._dropped_logged = now, self.dropped

    def key_of(self, event: Obj) -> tuple[str, ...]:
        """What makes two events the same one (written once, then counted)."""
        return _event_key(event)

    def folded(self, waiting: Obj, later: Obj) -> Obj:
        """`waiting` (not yet written) standing also for the identical `later` one."""
        return {**waiting, "lastTimestamp": later["lastTimestamp"]}

    def make_event(self, obj: Obj, type: str, reason: str, message: str, *, field_path: str = "", action: str = "",
                   related: Obj | None = None) -> Obj:
        """A fresh Event body, as first written (core/v1 has no action or related)."""
        ref = object_reference(obj, field_path=field_path)
        now = self._clock.wall()
        stamp = format_time(now)
        source = {"component": self.component, **({"host": self.host} if self.host else {})}
        return {
            "apiVersion": "v1", "kind": "Event",
            "metadata": {"name": f"{ref.get('name', '')}.{unix_nanos(now):x}",
                         "namespace": ref.get("namespace") or "default"},
            "involvedObject": ref, "reason": reason, "message": message, "type": type,
            "source": source, "firstTimestamp": stamp, "lastTimestamp": stamp, "count": 1,
            "reportingComponent": self.component, "reportingInstance": self.host,
        }

    async def run(self) -> None:
        """Write queued events with `writers` concurrent writers, until cancelled."""
        async with asyncio.TaskGroup() as tg:
            for _ in range(self._writers):
                tg.create_task(self._writer())

    async def _writer(self) -> None:
        while True:
            if not self._pending:
                self._wake.clear()
                await self._wake.wait()
                continue
            key, pending = self._pending.popitem(last=False)
            self._inflight.add(key)
            try:
                await self.record(pending.event, occurrences=pending.occurrences)
            except Exception:
                log.exception("event %s dropped", pending.event.get("reason"))
            finally:
                self._inflight.discard(key)
                later = self._deferred.pop(key, None)
                if later is not None:
                    self._pending[key] = later
                    self._wake.set()
                if not self._pending and not self._inflight and not self._deferred:
                    self._idle.set()

    async def flush(self) -> None:
        """Return once every event queued so far has been written (needs `run()` running)."""
        await self._idle.wait()

    async def record(self, event: Obj, *, occurrences: int = 1) -> Obj | None:
        """Correlate and write one Event (standing for `occurrences` identical ones) now;
        returns what the server stored (None if dropped)."""
        key = self.key_of(event)
        seen = self._recent(key)
        if seen is None:
            count = occurrences
            if count > 1:
                event = {**event, "count": count}
            written = await self._write_with_retries(event, patch=None)
        else:
            count = seen.count + occurrences
            event = _repeat_of(event, seen, count)
            patch = {"count": count, "lastTimestamp": event["lastTimestamp"], "message": event["message"]}
            written = await self._write_with_retries(event, patch=patch)
        if written is not None:
            meta = written.get("metadata") or {}
            self._remember(key, _Seen(meta.get("name", ""), meta.get("namespace", ""),
                                      written.get("firstTimestamp") or event["firstTimestamp"],
                                      int(written.get("count") or count), self._clock.now()))
        return written

    def _allowed(self, event: Obj) -> bool:
        ref = event["involvedObject"]
        key = (event["source"].get("component", ""), event["source"].get("host", ""), ref.get("kind", ""),
               ref.get("namespace", ""), ref.get("name", ""), ref.get("uid", ""), ref.get("apiVersion", ""))
        bucket = self._spam.get(key)
        if bucket is None:
            bucket = self._spam[key] = TokenBucket(SPAM_QPS, SPAM_BURST, clock=self._clock)
            if len(self._spam) > MAX_CACHE_ENTRIES:
                self._spam.popitem(last=False)
        self._spam.move_to_end(key)
        return bucket.allow()

    def _recent(self, key: tuple[str, ...]) -> _Seen | None:
        seen = self._seen.get(key)
        if seen is None or self._clock.now() - seen.last_seen > AGGREGATION_WINDOW_SECONDS:
            return None
        return seen

    def _remember(self, key: tuple[str, ...], seen: _Seen) -> None:
        self._seen[key] = seen
        self._seen.move_to_end(key)
        if len(self._seen) > MAX_CACHE_ENTRIES:
            self._seen.popitem(last=False)

    async def _write_with_retries(self, event: Obj, *, patch: Obj | None) -> Obj | None:
        for attempt in range(1, MAX_WRITE_TRIES + 1):
            try:
                return await self._write(event, patch=patch)
            except TransportError as exc:
                if attempt == MAX_WRITE_TRIES:
                    log.error("unable to write event %s after %d tries: %s", event["reason"], attempt, exc)
                    return None
                delay = RETRY_SECONDS * (self._rand() if attempt == 1 else 1.0)
                await self._clock.sleep(delay)
            except errors.StatusError as exc:
                log.error("server rejected event %s (will not retry): %s", event["reason"], exc.message)
                return None
        return None

    resource = EVENTS
    """Where the Events are written (core/v1 here)."""
    patch_type = PatchType.STRATEGIC

    async def _write(self, event: Obj, *, patch: Obj | None) -> Obj:
        meta = event["metadata"]
        if patch is not None:
            try:
                return await self._client.patch(self.resource, meta["name"], patch, namespace=meta["namespace"],
                                                patch_type=self.patch_type)
            except errors.NotFound:
                pass  # the Event expired or was deleted: write it afresh, with its count
        body = {**event, "metadata": {k: v for k, v in meta.items() if k != "resourceVersion"}}
        return await self._client.create(self.resource, body, namespace=meta["namespace"])


def _event_key(event: Obj) -> tuple[str, ...]:
    ref, source = event["involvedObject"], event["source"]
    return (source.get("component", ""), source.get("host", ""), ref.get("kind", ""), ref.get("namespace", ""),
            ref.get("name", ""), ref.get("fieldPath", ""), ref.get("uid", ""), ref.get("apiVersion", ""),
            event["type"], event["reason"], event["message"])


def _repeat_of(event: Obj, seen: _Seen, count: int) -> Obj:
    """`event` as the next occurrence of the Event we wrote before."""
    return {**event, "metadata": {**event["metadata"], "name": seen.name, "namespace": seen.namespace},
            "firstTimestamp": seen.first_timestamp, "count": count}
