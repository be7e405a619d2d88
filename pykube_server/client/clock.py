"""Injected time for everything in `client/` that waits: queues, rate limiters, leader election.

Why a seam: backoffs of 1000 s, lease durations of 15 s and resync periods of minutes cannot be
tested by sleeping. Every waiting component takes a `Clock`; production passes `RealClock`,
tests pass `FakeClock` and move time with `step()` (client-go's `clock.Clock` and
`testingclock.FakeClock` play the same roles).

Two readings of time are offered: `now()` (monotonic seconds, for durations and deadlines) and
`wall()` (an aware UTC datetime, for timestamps written into objects such as Lease renewTime or
Event lastTimestamp). Timers are plain callbacks (`call_later`), not tasks, so a work queue's
delayed adds need no background task of their own.
"""

from __future__ import annotations

import asyncio
import heapq
import itertools
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from typing import Protocol


class Timer(Protocol):
    def cancel(self) -> None:
        """Stop the timer; idempotent, and harmless after it fired."""


class Clock(Protocol):
    """Time source and timers. Implementations are used from one event loop."""

    def now(self) -> float:
        """Monotonic seconds; only differences are meaningful."""

    def wall(self) -> datetime:
        """The current UTC time (timezone-aware)."""

    async def sleep(self, seconds: float) -> None:
        """Return after `seconds` of this clock's time. Cancellation is honoured at once."""

    def call_later(self, seconds: float, callback: Callable[[], None]) -> Timer:
        """Run `callback` (synchronously, in the loop) once `seconds` have passed."""


class RealClock:
    """The event loop's time and the system's wall clock."""

    def now(self) -> float:
        return time.monotonic()

    def wall(self) -> datetime:
        return datetime.now(timezone.utc)

    async def sleep(self, seconds: float) -> None:
        await asyncio.sleep(max(seconds, 0.0))

    def call_later(self, seconds: float, callback: Callable[[], None]) -> Timer:
        return asyncio.get_running_loop().call_later(max(seconds, 0.0), callback)


REAL_CLOCK = RealClock()

FAKE_EPOCH = datetime(2025, 1, 1, tzinfo=timezone.utc)


@dataclass(order=True)
class _FakeTimer:
    when: float
    seq: int
    callback: Callable[[], None] = field(compare=False)
    cancelled: bool = field(default=False, compare=False)

    def cancel(self) -> None:
        self.cancelled = True


class FakeClock:
    """Time that moves only when a test calls `step()`.

    `sleep()` and `call_later()` register timers; `step(seconds)` advances time and fires every
    timer that came due, in order of due time. Sleepers resume at the loop's next turn, so a
    test usually does `clock.step(x)` and then awaits something observable. `wait_for_waiters()`
    lets a test wait until the code under test is parked on this clock.
    """

    def __init__(self, start: datetime = FAKE_EPOCH) -> None:
        self._start = start
        self._now = 0.0
        self._timers: list[_FakeTimer] = []
        self._seq = itertools.count()
        self._changed = asyncio.Event()

    def now(self) -> float:
        return self._now

    def wall(self) -> datetime:
        return self._start + timedelta(seconds=self._now)

    async def sleep(self, seconds: float) -> None:
        fut: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        timer = self.call_later(seconds, lambda: fut.done() or fut.set_result(None))
        try:
            await fut
        finally:
            timer.cancel()

    def call_later(self, seconds: float, callback: Callable[[], None]) -> Timer:
        timer = _FakeTimer(self._now + max(seconds, 0.0), next(self._seq), callback)
        heapq.heappush(self._timers, timer)
        self._changed.set()
        return timer

    def step(self, seconds: float) -> None:
        """Advance time by `seconds`, firing due timers (including ones they schedule)."""
        target = self._now + seconds
        while self._timers and self._timers[0].when <= target:
            timer = heapq.heappop(self._timers)
            if timer.cancelled:
                continue
            self._now = max(self._now, timer.when)
            timer.callback()
        self._now = target

    def pending(self) -> list[float]:
        """Due times (seconds from now) of the live timers, soonest first."""
        return sorted(t.when - self._now for t in self._timers if not t.cancelled)

    def has_waiters(self) -> bool:
        return bool(self.pending())

    async def wait_for_waiters(self, count: int = 1) -> None:
        """Return once at least `count` live timers or sleepers are registered."""
        while len(self.pending()) < count:
            self._changed.clear()
            await self._changed.wait()
