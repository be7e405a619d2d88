"""Heartbeats under load: Leases and node status go through the heartbeat client, and a slow
API answer does not push the next renewal out (renewals start every 10 s, +4 % jitter)."""

from __future__ import annotations

import asyncio
from typing import Any

from pykube_server.api import errors
from pykube_server.client.clock import FakeClock
from pykube_server.kubelet import node as nodeinfo
from pykube_server.kubelet.kubelet import LEASE_JITTER, LEASE_RENEW_SECONDS, Kubelet, NodeConfig
from pykube_server.kubelet.runtimes.fake import FakeRuntime
from tests.kubelet.test_pod_workers import StubRecorder

SIM = nodeinfo.Resources("32", 256 * 2**30, 1024 * 2**30)
ANSWER_SECONDS = 3.0


class SlowHeartbeats:
    """A heartbeat client whose every answer takes 3 s; records when each request started."""

    def __init__(self, clock: FakeClock) -> None:
        self.clock = clock
        self.started: list[tuple[str, float]] = []

    async def _answer(self, verb: str, body: dict[str, Any]) -> dict[str, Any]:
        self.started.append((verb, self.clock.now()))
        await self.clock.sleep(ANSWER_SECONDS)
        return body

    async def get(self, resource: Any, name: str, **kw: Any) -> dict[str, Any]:
        raise errors.NotFound(f'leases.coordination.k8s.io "{name}" not found')

    async def create(self, resource: Any, body: dict[str, Any], **kw: Any) -> dict[str, Any]:
        return await self._answer("create", body)

    async def update(self, resource: Any, body: dict[str, Any], **kw: Any) -> dict[str, Any]:
        return await self._answer("update", body)

    async def patch(self, resource: Any, name: str, patch: dict[str, Any], **kw: Any) -> dict[str, Any]:
        return await self._answer("patch", {"metadata": {"name": name, "uid": "u"}, **patch})


class NoPodTraffic:
    """The shared client: the heartbeats must not use it."""

    def __getattr__(self, name: str) -> Any:
        raise AssertionError(f"heartbeat went through the shared client ({name})")


async def test_renewals_start_on_time_despite_slow_answers() -> None:
    clock = FakeClock()
    slow = SlowHeartbeats(clock)
    kl = Kubelet(NodeConfig("n1", "127.244.1.0/24", SIM, simulated=True), client=NoPodTraffic(),  # type: ignore[arg-type]
                 runtime=FakeRuntime(clock=clock), recorder=StubRecorder(), clock=clock,  # type: ignore[arg-type]
                 heartbeat_client=slow)  # type: ignore[arg-type]
    kl.node = {"metadata": {"name": "n1", "uid": "u"}}
    task = asyncio.create_task(kl._lease_loop())
    try:
        for _ in range(200):  # 50 s of fake time
            await asyncio.sleep(0)
            clock.step(0.25)
            await asyncio.sleep(0)
    finally:
        task.cancel()
    starts = [t for verb, t in slow.started]
    assert [verb for verb, _ in slow.started][:2] == ["create", "update"] and len(starts) >= 4
    gaps = [b - a for a, b in zip(starts, starts[1:])]
    limit = LEASE_RENEW_SECONDS * (1 + LEASE_JITTER) + 0.25
    assert all(LEASE_RENEW_SECONDS - 0.25 <= g <= limit for g in gaps), gaps


async def test_node_status_goes_through_the_heartbeat_client() -> None:
    clock = FakeClock()
    slow = SlowHeartbeats(clock)
    kl = Kubelet(NodeConfig("n1", "127.244.1.0/24", SIM, simulated=True), client=NoPodTraffic(),  # type: ignore[arg-type]
                 runtime=FakeRuntime(clock=clock), recorder=StubRecorder(), clock=clock,  # type: ignore[arg-type]
                 heartbeat_client=slow)  # type: ignore[arg-type]
    kl.node = {"metadata": {"name": "n1", "uid": "u"}}
    task = asyncio.create_task(kl.update_node_status(force=True))
    while not task.done():
        await asyncio.sleep(0)
        clock.step(0.5)
    assert task.result() is True and [v for v, _ in slow.started] == ["patch"]
