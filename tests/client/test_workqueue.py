"""WorkQueue: client-go's fair, stingy, delaying, rate-limited semantics."""

from __future__ import annotations

import asyncio

import pytest

from pykube_server.client.clock import FakeClock
from pykube_server.client.ratelimit import ItemExponentialFailureRateLimiter
from pykube_server.client.workqueue import QueueShutDown, WorkQueue


def make_queue() -> tuple[WorkQueue[str], FakeClock]:
    clock = FakeClock()
    return WorkQueue(clock=clock), clock


async def test_fifo_and_deduplicated_while_queued() -> None:
    q, _ = make_queue()
    for item in ("a", "b", "a", "c", "b"):
        q.add(item)
    assert len(q) == 3
    assert [await q.get() for _ in range(3)] == ["a", "b", "c"]


async def test_item_added_while_processing_is_requeued_on_done() -> None:
    q, _ = make_queue()
    q.add("a")
    item = await q.get()
    q.add("a")
    q.add("a")
    assert len(q) == 0                      # not handed out while being processed
    q.done(item)
    assert len(q) == 1
    assert await q.get() == "a"
    q.done("a")
    assert len(q) == 0


async def test_no_item_handed_to_two_workers() -> None:
    q, _ = make_queue()
    active: set[str] = set()
    overlaps: list[str] = []
    handled: list[str] = []

    async def worker() -> None:
        while True:
            try:
                item = await q.get()
            except QueueShutDown:
                return
            if item in active:
                overlaps.append(item)
            active.add(item)
            await asyncio.sleep(0)
            if len(handled) < 20:
                q.add(item)  # re-added while processing: must wait for done()
            handled.append(item)
            await asyncio.sleep(0)
            active.discard(item)
            q.done(item)

    workers = [asyncio.create_task(worker()) for _ in range(4)]
    for item in "abc":
        q.add(item)
    while len(handled) < 20 or len(q) or q.processing():
        await asyncio.sleep(0)
    q.shutdown()
    await asyncio.wait_for(asyncio.gather(*workers), 2)
    assert overlaps == []
    assert len(handled) >= 20


async def test_get_waits_for_add() -> None:
    q, _ = make_queue()
    task = asyncio.create_task(q.get())
    await asyncio.sleep(0)
    assert not task.done()
    q.add("x")
    assert await asyncio.wait_for(task, 1) == "x"


async def test_cancelled_getter_passes_wakeup_on() -> None:
    q, _ = make_queue()
    first = asyncio.create_task(q.get())
    second = asyncio.create_task(q.get())
    await asyncio.sleep(0)
    q.add("x")                      # wakes `first`...
    first.cancel()                  # ...which is cancelled before it runs
    await asyncio.gather(first, return_exceptions=True)
    assert await asyncio.wait_for(second, 1) == "x"


async def test_shutdown_drains_then_raises() -> None:
    q, _ = make_queue()
    q.add("a")
    q.shutdown()
    q.add("b")                      # ignored after shutdown
    assert await q.get() == "a"
    with pytest.raises(QueueShutDown):
        await q.get()


async def test_shutdown_wakes_blocked_getters() -> None:
    q, _ = make_queue()
    getters = [asyncio.create_task(q.get()) for _ in range(3)]
    await asyncio.sleep(0)
    q.shutdown()
    results = await asyncio.wait_for(asyncio.gather(*getters, return_exceptions=True), 1)
    assert all(isinstance(r, QueueShutDown) for r in results)


async def test_add_after_waits_on_clock_and_earliest_wins() -> None:
    q, clock = make_queue()
    q.add_after("a", 10)
    q.add_after("a", 5)
    q.add_after("a", 20)            # later than pending: ignored
    q.add_after("now", 0)
    assert len(q) == 1 and q.parked() == 1
    assert clock.pending() == [5]
    clock.step(4.9)
    assert len(q) == 1
    clock.step(0.1)
    assert len(q) == 2
    assert [await q.get(), await q.get()] == ["now", "a"]


async def test_shutdown_cancels_parked_items() -> None:
    q, clock = make_queue()
    q.add_after("a", 1)
    q.shutdown()
    clock.step(2)
    assert len(q) == 0 and clock.pending() == []


async def test_add_rate_limited_backs_off_per_item_and_forget_resets() -> None:
    clock = FakeClock()
    q: WorkQueue[str] = WorkQueue(clock=clock, rate_limiter=ItemExponentialFailureRateLimiter(1.0, 8.0))
    delays = []
    for _ in range(5):
        q.add_rate_limited("a")
        delays.append(clock.pending()[0])
        clock.step(delays[-1])
        assert await q.get() == "a"
        q.done("a")
    assert delays == [1, 2, 4, 8, 8]
    assert q.num_requeues("a") == 5
    q.forget("a")
    assert q.num_requeues("a") == 0


async def test_default_rate_limiter_starts_at_five_ms() -> None:
    q, clock = make_queue()
    q.add_rate_limited("a")
    assert clock.pending() == [pytest.approx(0.005)]
