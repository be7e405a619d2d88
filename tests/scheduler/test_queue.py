"""The scheduling queue on a fake clock: priority order, back-off doubling to 10 s, moves."""

from __future__ import annotations

import asyncio

from pykube_server.client.clock import FakeClock
from pykube_server.scheduler.queue import SchedulingQueue
from tests.scheduler.builders import pod


async def pop_key(q: SchedulingQueue) -> str:
    async with asyncio.timeout(1):
        return (await q.pop()).key


async def test_higher_priority_first_then_fifo() -> None:
    q = SchedulingQueue(clock=FakeClock())
    q.add(pod("low"))
    q.add(pod("high", priority=100))
    q.add(pod("low2"))
    assert [await pop_key(q) for _ in range(3)] == ["default/high", "default/low", "default/low2"]


def test_backoff_doubles_up_to_ten_seconds() -> None:
    q = SchedulingQueue(clock=FakeClock())
    assert [q.backoff_duration(n) for n in range(1, 7)] == [1, 2, 4, 8, 10, 10]


async def test_unschedulable_pod_moves_on_event_after_its_backoff() -> None:
    clock = FakeClock()
    q = SchedulingQueue(clock=clock)
    q.add(pod("p"))
    queued = await q.pop()
    q.add_unschedulable(queued, {"NodeResourcesFit"})
    assert q.where("default/p") == "unschedulable"
    assert q.move_all({"NodeAffinity"}) == 0  # an event that cannot help this pod
    assert q.move_all({"NodeResourcesFit"}) == 1
    assert q.where("default/p") == "backoff"
    clock.step(0.9)
    assert q.where("default/p") == "backoff"
    clock.step(0.1)
    assert q.where("default/p") == "active"
    assert await pop_key(q) == "default/p"


async def test_event_during_the_cycle_sends_the_pod_to_backoff() -> None:
    clock = FakeClock()
    q = SchedulingQueue(clock=clock)
    q.add(pod("p"))
    queued = await q.pop()
    q.move_all()  # e.g. a node was added while the pod was being scheduled
    q.add_unschedulable(queued, {"NodeResourcesFit"})
    assert q.where("default/p") == "backoff"
    clock.step(1)
    assert q.where("default/p") == "active"


async def test_second_failure_backs_off_two_seconds() -> None:
    clock = FakeClock()
    q = SchedulingQueue(clock=clock)
    q.add(pod("p"))
    q.add_backoff(await q.pop())
    clock.step(1)
    async with asyncio.timeout(1):
        q.add_backoff(await q.pop())
    clock.step(1.5)
    assert q.where("default/p") == "backoff"
    clock.step(0.5)
    assert q.where("default/p") == "active"


async def test_long_unschedulable_pods_are_retried_after_five_minutes() -> None:
    clock = FakeClock()
    q = SchedulingQueue(clock=clock)
    q.add(pod("p"))
    q.add_unschedulable(await q.pop(), {"X"})
    clock.step(299)
    q.flush_unschedulable_leftover()
    assert q.where("default/p") == "unschedulable"
    clock.step(1)
    q.flush_unschedulable_leftover()
    assert q.where("default/p") == "active"


async def test_deleted_pod_leaves_the_queue() -> None:
    q = SchedulingQueue(clock=FakeClock())
    q.add(pod("p"))
    q.delete(pod("p"))
    assert len(q) == 0 and q.where("default/p") == ""
