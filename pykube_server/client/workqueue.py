"""The controllers' work queue: client-go's `workqueue` (plain, delaying, rate limiting) in one class.

Semantics, which controllers rely on:

* fair: items are handed out in the order they were added;
* stingy: an item already waiting is not queued twice (events collapse into one key);
* an item added while a worker processes it is not handed out again until that worker calls
  `done()`, then it is re-queued, so no key is ever processed by two workers at once and no
  change is lost;
* `add_after` parks an item on the injected clock (the earliest requested time wins) and
  `add_rate_limited` parks it for as long as the rate limiter says;
* `shutdown()` stops accepting items; `get()` keeps handing out what is queued and raises
  `QueueShutDown` once the queue is drained.

Why one class rather than client-go's three layers: Python callers always want all three, and
the delaying part is only a few timers on the clock (no background task to own).
"""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import Hashable
from typing import Generic, TypeVar

from pykube_server.client.clock import REAL_CLOCK, Clock, Timer
from pykube_server.client.ratelimit import RateLimiter, default_controller_rate_limiter

T = TypeVar("T", bound=Hashable)


class QueueShutDown(Exception):
    """The queue was shut down and holds nothing more to process."""


class WorkQueue(Generic[T]):
    """Fair, stingy, delaying, rate-limited queue of hashable keys (see the module docstring)."""

    def __init__(self, *, clock: Clock = REAL_CLOCK, rate_limiter: RateLimiter[T] | None = None,
                 name: str = "") -> None:
        self.name = name
        self._clock = clock
        self._rate_limiter: RateLimiter[T] = rate_limiter or default_controller_rate_limiter(clock=clock)
        self._queue: deque[T] = deque()
        self._dirty: set[T] = set()
        self._processing: set[T] = set()
        self._waiting: dict[T, tuple[float, Timer]] = {}
        self._getters: deque[asyncio.Future[None]] = deque()
        self._shutting_down = False

    # --- the plain queue -------------------------------------------------------------------

    def add(self, item: T) -> None:
        """Queue `item` unless it is already queued; ignored after shutdown."""
        if self._shutting_down or item in self._dirty:
            return
        self._dirty.add(item)
        if item in self._processing:
            return  # re-queued by done()
        self._queue.append(item)
        self._wake_one()

    async def get(self) -> T:
        """The next item; the caller must call `done(item)` when finished with it.

        Raises QueueShutDown once shut down and drained. Cancellation loses no item.
        """
        while not self._queue:
            if self._shutting_down:
                raise QueueShutDown(self.name)
            await self._wait_for_item()
        item = self._queue.popleft()
        self._processing.add(item)
        self._dirty.discard(item)
        return item

    def done(self, item: T) -> None:
        """Processing of `item` finished; if it was added meanwhile it is queued again."""
        self._processing.discard(item)
        if item in self._dirty:
            self._queue.append(item)
            self._wake_one()

    def shutdown(self) -> None:
        """Refuse new items, drop parked ones, and let waiting getters see QueueShutDown."""
        self._shutting_down = True
        for _, timer in self._waiting.values():
            timer.cancel()
        self._waiting.clear()
        for fut in self._getters:
            if not fut.done():
                fut.set_result(None)

    @property
    def shutting_down(self) -> bool:
        return self._shutting_down

    def __len__(self) -> int:
        """Items queued and ready (not those processing or parked)."""
        return len(self._queue)

    def processing(self) -> int:
        return len(self._processing)

    async def _wait_for_item(self) -> None:
        fut: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._getters.append(fut)
        try:
            await fut
        except asyncio.CancelledError:
            if fut.done() and not fut.cancelled():
                self._wake_one()  # we were woken for an item we will not take: pass it on
            raise
        finally:
            if fut in self._getters:
                self._getters.remove(fut)

    def _wake_one(self) -> None:
        while self._getters:
            fut = self._getters.popleft()
            if not fut.done():
                fut.set_result(None)
                return

    # --- delaying ---------------------------------------------------------------------------

    def add_after(self, item: T, delay: float) -> None:
        """Add `item` once `delay` seconds have passed; an earlier pending time wins."""
        if self._shutting_down:
            return
        if delay <= 0:
            self.add(item)
            return
        ready_at = self._clock.now() + delay
        pending = self._waiting.get(item)
        if pending is not None:
            if pending[0] <= ready_at:
                return
            pending[1].cancel()
        timer = self._clock.call_later(delay, lambda: self._ready(item))
        self._waiting[item] = (ready_at, timer)

    def _ready(self, item: T) -> None:
        self._waiting.pop(item, None)
        self.add(item)

    def parked(self) -> int:
        """Items waiting for their `add_after` time."""
        return len(self._waiting)

    # --- rate limiting ----------------------------------------------------------------------

    def add_rate_limited(self, item: T) -> None:
        """Add `item` after the delay the rate limiter gives it (one more failure recorded)."""
        self.add_after(item, self._rate_limiter.when(item))

    def forget(self, item: T) -> None:
        """Stop tracking `item`'s failures (call after it was processed successfully)."""
        self._rate_limiter.forget(item)

    def num_requeues(self, item: T) -> int:
        return self._rate_limiter.num_requeues(item)
