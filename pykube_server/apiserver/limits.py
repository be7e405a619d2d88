"""Protection from too much or too hostile input: in-flight limits, timeouts, body size.

kube-apiserver's filters, with its numbers and texts:
* `--max-requests-inflight` (400) and `--max-mutating-requests-inflight` (200): a request over
  the limit waits for a free seat, as API Priority and Fairness queues it, for at most
  `queue_wait` seconds (15), and is then refused with 429 `Too many requests, please try again
  later.` and `Retry-After: 1`, so a flood degrades into waiting and then retries instead of a
  queue that never drains. Long-running requests (watch, exec, attach, port-forward, logs,
  proxy) take no seat.
* `--request-timeout` (60 s), shortened per request by `?timeout=`: a request that runs longer
  is answered 504 `Timeout: request did not complete within requested timeout - context
  deadline exceeded`. Long-running requests are exempt.
* A request body over 3 MiB is refused with 413 `Request entity too large: limit is 3145728`
  before it is read (by Content-Length) or while it is read (a chunked body).
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Awaitable, Callable

from aiohttp import web

from pykube_server.api import errors
from pykube_server.api.duration import parse_go_duration

MAX_REQUEST_BODY_BYTES = 3 * 1024 * 1024
TOO_MANY = "Too many requests, please try again later."
TIMEOUT = "Timeout: request did not complete within requested timeout - context deadline exceeded"
LONG_RUNNING_SUBRESOURCES = frozenset({"exec", "attach", "portforward", "log", "proxy"})
MUTATING = frozenset({"POST", "PUT", "PATCH", "DELETE"})


def is_long_running(request: web.Request) -> bool:
    """kube's LongRunningFunc: watches, and the streaming subresources."""
    query = request.query
    if query.get("watch") in ("1", "true", "True"):
        return True
    parts = [p for p in request.path.split("/") if p]
    if "watch" in parts[:4]:  # the legacy /api/v1/watch/... paths
        return True
    return bool(parts) and parts[-1] in LONG_RUNNING_SUBRESOURCES and parts[0] in ("api", "apis")


class Limits:
    def __init__(self, *, max_inflight: int = 400, max_mutating_inflight: int = 200,
                 request_timeout: float = 60.0, max_body_bytes: int = MAX_REQUEST_BODY_BYTES,
                 queue_wait: float = 15.0) -> None:
        self.max_inflight, self.max_mutating = max_inflight, max_mutating_inflight
        self.request_timeout, self.max_body_bytes = request_timeout, max_body_bytes
        self.queue_wait = queue_wait
        self._seats = asyncio.Semaphore(max_inflight) if max_inflight else None
        self._mutating_seats = asyncio.Semaphore(max_mutating_inflight) if max_mutating_inflight else None
        self._deadlines = Deadlines()

    def _timeout(self, request: web.Request) -> float:
        text = request.query.get("timeout")
        if not text:
            return self.request_timeout
        asked = parse_go_duration(text)
        if asked is not None and 0 < asked < self.request_timeout:
            return asked
        return self.request_timeout

    def middleware(self) -> Callable[..., Awaitable[web.StreamResponse]]:
        @web.middleware
        async def limits(request: web.Request, handler: Callable[[web.Request], Awaitable[web.StreamResponse]]) -> web.StreamResponse:
            length = request.content_length
            if length is not None and length > self.max_body_bytes:
                raise errors.RequestEntityTooLarge(f"Request entity too large: limit is {self.max_body_bytes}")
            if is_long_running(request):
                return await self._run(request, handler)
            seats = self._mutating_seats if request.method in MUTATING else self._seats
            if seats is not None:
                try:
                    await asyncio.wait_for(seats.acquire(), self.queue_wait) if seats.locked() else await seats.acquire()
                except TimeoutError:
                    raise errors.TooManyRequests(TOO_MANY, details={"retryAfterSeconds": 1}) from None
            try:
                async with self._deadlines.limit(self._timeout(request)):
                    return await self._run(request, handler)
            except TimeoutError:
                raise errors.Timeout(TIMEOUT, details={}) from None
            finally:
                if seats is not None:
                    seats.release()

        return limits

    async def _run(self, request: web.Request, handler: Callable[[web.Request], Awaitable[web.StreamResponse]]) -> web.StreamResponse:
        try:
            return await handler(request)
        except web.HTTPRequestEntityTooLarge:  # a chunked body grew past client_max_size
            raise errors.RequestEntityTooLarge(f"Request entity too large: limit is {self.max_body_bytes}") from None


class Deadlines:
    """Request timeouts without a timer per request.

    `asyncio.timeout` schedules and cancels one timer per request, a tenth of the CPU of a
    cached GET. Here a request only notes its deadline; one sweeper task, running while any
    request is in flight, cancels the ones past theirs every SWEEP_SECONDS, so a timeout fires
    up to that much late (kube's default is a minute). The cancelled request sees TimeoutError,
    as under `asyncio.timeout`; a cancellation from elsewhere (the client went away) passes through.
    """

    SWEEP_SECONDS = 0.25

    def __init__(self) -> None:
        self._inflight: dict[asyncio.Task[object], float] = {}
        self._expired: set[asyncio.Task[object]] = set()
        self._sweeper: asyncio.Task[None] | None = None

    @contextlib.asynccontextmanager
    async def limit(self, seconds: float) -> AsyncIterator[None]:
        task = asyncio.current_task()
        if task is None or task in self._inflight:  # nested: the outer deadline holds
            yield
            return
        loop = asyncio.get_running_loop()
        self._inflight[task] = loop.time() + seconds
        if self._sweeper is None or self._sweeper.done():
            self._sweeper = loop.create_task(self._sweep(), name="request-deadlines")
        try:
            yield
        except asyncio.CancelledError:
            if task not in self._expired:
                raise
            task.uncancel()
            raise TimeoutError from None
        finally:
            del self._inflight[task]
            self._expired.discard(task)

    async def _sweep(self) -> None:
        loop = asyncio.get_running_loop()
        while self._inflight:
            await asyncio.sleep(self.SWEEP_SECONDS)
            now = loop.time()
            for task, deadline in list(self._inflight.items()):
                if deadline <= now and task not in self._expired:
                    self._expired.add(task)
                    task.cancel()
