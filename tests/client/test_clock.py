"""FakeClock: time moves only on step(), timers fire in due order, sleepers resume."""

from __future__ import annotations

import asyncio
from datetime import timedelta

from pykube_server.client.clock import FAKE_EPOCH, FakeClock, RealClock


def test_step_fires_due_timers_in_order() -> None:
    clock = FakeClock()
    fired: list[str] = []
    clock.call_later(2, lambda: fired.append("b"))
    clock.call_later(1, lambda: fired.append("a"))
    clock.call_later(5, lambda: fired.append("c"))
    clock.step(2)
    assert fired == ["a", "b"]
    assert clock.now() == 2
    assert clock.pending() == [3]
    clock.step(3)
    assert fired == ["a", "b", "c"]


def test_cancelled_timer_does_not_fire() -> None:
    clock = FakeClock()
    fired: list[int] = []
    timer = clock.call_later(1, lambda: fired.append(1))
    timer.cancel()
    clock.step(10)
    assert fired == [] and not clock.has_waiters()


def test_timer_scheduled_by_timer_fires_within_same_step() -> None:
    clock = FakeClock()
    fired: list[float] = []
    clock.call_later(1, lambda: clock.call_later(1, lambda: fired.append(clock.now())))
    clock.step(5)
    assert fired == [2]


def test_wall_follows_steps() -> None:
    clock = FakeClock()
    clock.step(90)
    assert clock.wall() == FAKE_EPOCH + timedelta(seconds=90)


async def test_sleep_completes_only_when_stepped() -> None:
    clock = FakeClock()
    task = asyncio.create_task(clock.sleep(10))
    await clock.wait_for_waiters()
    clock.step(9)
    await asyncio.sleep(0)
    assert not task.done()
    clock.step(1)
    await asyncio.wait_for(task, 1)


async def test_cancelled_sleep_leaves_no_timer() -> None:
    clock = FakeClock()
    task = asyncio.create_task(clock.sleep(10))
    await clock.wait_for_waiters()
    task.cancel()
    await asyncio.gather(task, return_exceptions=True)
    assert clock.pending() == []


async def test_real_clock_sleep_and_timer() -> None:
    clock = RealClock()
    fired = asyncio.Event()
    clock.call_later(0, fired.set)
    await clock.sleep(0)
    await asyncio.wait_for(fired.wait(), 1)
    assert clock.wall().tzinfo is not None
