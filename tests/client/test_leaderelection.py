"""Leader election between candidates sharing one Lease on a real API server, on a fake clock."""

from __future__ import annotations

import asyncio
import re

import pytest

from pykube_server.api.types import Obj
from pykube_server.client.clock import FakeClock
from pykube_server.client.leaderelection import LeaderElectionConfig, LeaderElector, format_microtime
from pykube_server.client.rest import LEASES, Client

MICROTIME = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}Z$")


class Candidate:
    def __init__(self, client: Client, clock: FakeClock, identity: str, *, release: bool = True) -> None:
        self.events: list[str] = []
        self.leaders: list[str] = []
        config = LeaderElectionConfig("kube-system", "pykube-test", identity, jitter_factor=0.0,
                                      release_on_cancel=release)
        self.elector = LeaderElector(client, config, on_started_leading=self._lead,
                                     on_stopped_leading=lambda: self.events.append("stopped"),
                                     on_new_leader=self.leaders.append, clock=clock)
        self.task: asyncio.Task[None] | None = None

    async def _lead(self) -> None:
        self.events.append("started")
        await asyncio.Event().wait()

    def start(self) -> None:
        self.task = asyncio.create_task(self.elector.run())

    async def stop(self) -> None:
        assert self.task is not None
        self.task.cancel()
        await asyncio.gather(self.task, return_exceptions=True)


async def lease(client: Client) -> Obj:
    return await client.get(LEASES, "pykube-test", namespace="kube-system")


async def tick(clock: FakeClock, waiters: int, seconds: float = 2.0) -> None:
    """Wait until `waiters` candidates are parked on the clock, then move it."""
    await asyncio.wait_for(clock.wait_for_waiters(waiters), 5)
    clock.step(seconds)


async def until_done_or_parked(task: asyncio.Task[None], clock: FakeClock) -> None:
    async with asyncio.timeout(5):
        while not task.done() and not clock.has_waiters():
            await asyncio.sleep(0.005)


def test_format_microtime() -> None:
    from datetime import datetime, timezone

    assert format_microtime(datetime(2006, 1, 2, 15, 4, 5, 7, tzinfo=timezone.utc)) == "2006-01-02T15:04:05.000007Z"


@pytest.mark.parametrize("kwargs", [{"lease_duration": 10}, {"renew_deadline": 2}, {"identity": ""}],
                         ids=["lease-not-longer-than-renew", "renew-too-short", "no-identity"])
def test_config_validation(kwargs: dict) -> None:
    with pytest.raises(ValueError):
        LeaderElectionConfig(**{"namespace": "n", "name": "l", "identity": "a", **kwargs})


async def test_one_leader_then_takeover_after_lease_expires(client: Client) -> None:
    clock = FakeClock()
    a = Candidate(client, clock, "a", release=False)
    b = Candidate(client, clock, "b")
    a.start()
    await asyncio.wait_for(clock.wait_for_waiters(1), 5)
    assert a.events == ["started"] and a.elector.is_leader()
    spec = (await lease(client))["spec"]
    assert spec["holderIdentity"] == "a" and spec["leaseDurationSeconds"] == 15 and spec["leaseTransitions"] == 0
    assert MICROTIME.match(spec["acquireTime"]) and MICROTIME.match(spec["renewTime"])
    b.start()
    for _ in range(3):
        await tick(clock, 2)
    assert b.events == [] and b.leaders == ["a"]
    renewed = (await lease(client))["spec"]
    assert renewed["renewTime"] > spec["renewTime"] and renewed["acquireTime"] == spec["acquireTime"]
    await a.stop()                                   # crashed: no release
    stopped_at = clock.now()
    for _ in range(12):                              # b must wait out 15 s since the last change it saw
        await tick(clock, 1)
        await asyncio.wait_for(clock.wait_for_waiters(1), 5)
        if b.events:
            break
    assert 15 <= clock.now() - stopped_at <= 17
    assert b.events == ["started"] and b.leaders == ["a", "b"]
    taken = (await lease(client))["spec"]
    assert taken["holderIdentity"] == "b" and taken["leaseTransitions"] == 1
    await b.stop()


async def test_leader_that_cannot_renew_stops_leading(client: Client) -> None:
    clock = FakeClock()
    a = Candidate(client, clock, "a")
    a.start()
    await asyncio.wait_for(clock.wait_for_waiters(1), 5)
    current = await lease(client)
    current["spec"]["holderIdentity"] = "intruder"
    await client.update(LEASES, current)
    assert a.task is not None
    while not a.task.done():                         # run() returns once renew_deadline passed
        assert clock.now() <= 12
        await tick(clock, 1)
        await until_done_or_parked(a.task, clock)
    assert clock.now() == 12
    assert a.events == ["started", "stopped"] and not a.elector.is_leader()


async def test_release_on_cancel_lets_the_next_candidate_in_at_once(client: Client) -> None:
    clock = FakeClock()
    a, b = Candidate(client, clock, "a"), Candidate(client, clock, "b")
    a.start()
    await asyncio.wait_for(clock.wait_for_waiters(1), 5)
    b.start()
    await asyncio.wait_for(clock.wait_for_waiters(2), 5)
    await a.stop()
    released = (await lease(client))["spec"]
    assert released["holderIdentity"] == "" and released["leaseDurationSeconds"] == 1
    assert a.events == ["started", "stopped"]
    await tick(clock, 1)                             # b's next attempt, well within 15 s
    await asyncio.wait_for(clock.wait_for_waiters(1), 5)
    assert b.events == ["started"]
    assert (await lease(client))["spec"]["leaseTransitions"] == 1
    await b.stop()
