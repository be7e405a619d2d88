"""The runtime contract against the simulated and process runtimes, plus each one's own facts."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from pykube_server.client.clock import FakeClock
from pykube_server.kubelet.runtime import ContainerConfig, ContainerState, Runtime
from pykube_server.kubelet.runtimes.fake import FakeRuntime
from pykube_server.kubelet.runtimes.process import ProcessRuntime
from tests.kubelet import runtime_contract as contract


@pytest.fixture(params=["simulated", "process"])
async def runtime(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Runtime]:
    rt: Runtime = FakeRuntime() if request.param == "simulated" else ProcessRuntime(tmp_path / "rt")
    try:
        yield rt
    finally:
        if isinstance(rt, ProcessRuntime):
            await rt.aclose(stop=True)
        else:
            await rt.aclose()


@pytest.mark.parametrize("check", contract.CHECKS, ids=lambda c: c.__name__)
async def test_contract(runtime: Runtime, check) -> None:  # type: ignore[no-untyped-def]
    await check(runtime)


async def test_process_containers_outlive_the_runtime_instance(tmp_path: Path) -> None:
    """A restarted kubelet finds its running containers again, and can stop them."""
    first = ProcessRuntime(tmp_path / "rt")
    sid = await contract.sandbox(first)
    cid = await first.create_container(sid, contract.RUNS)
    await first.start_container(cid)
    await first.aclose()  # a crash-like end: containers keep running
    second = ProcessRuntime(tmp_path / "rt")
    try:
        [c] = await second.list_containers()
        assert (c.id, c.state) == (cid, ContainerState.RUNNING)
        assert [s.id for s in await second.list_pod_sandboxes()] == [sid]
    finally:
        await second.aclose(stop=True)
    [c] = await second.list_containers()
    assert c.state is ContainerState.EXITED and c.exit_code == 143


async def test_process_env_workdir_and_start_error(tmp_path: Path) -> None:
    rt = ProcessRuntime(tmp_path / "rt")
    sid = await contract.sandbox(rt)
    cfg = ContainerConfig(name="e", image="python:3.12", command=("sh", "-c", 'echo "$GREETING $(pwd)"; python --version'),
                          env={"GREETING": "hi"}, working_dir=str(tmp_path))
    cid = await rt.create_container(sid, cfg)
    await rt.start_container(cid)
    await contract.wait_for(rt, cid, lambda c: c.state is ContainerState.EXITED)
    text = b"".join([c async for c in rt.container_logs(cid, follow=False)]).decode()
    assert f"hi {tmp_path}" in text and "Python 3" in text
    bad = await rt.create_container(sid, ContainerConfig(name="b", image="x", command=("no-such-binary",)))
    with pytest.raises(Exception, match='exec: "no-such-binary": executable file not found in \\$PATH'):
        await rt.start_container(bad)
    [c] = [c for c in await rt.list_containers() if c.id == bad]
    assert (c.state, c.exit_code, c.reason) == (ContainerState.EXITED, 128, "StartError")
    await rt.aclose(stop=True)


async def test_simulated_lifecycle_follows_the_clock() -> None:
    clock = FakeClock()
    rt = FakeRuntime(clock=clock)
    sid = await contract.sandbox(rt)
    cfg = ContainerConfig(name="job", image="x", annotations={"pykube.io/simulate-run-seconds": "30",
                                                             "pykube.io/simulate-exit-code.job": "2"})
    cid = await rt.create_container(sid, cfg)
    await rt.start_container(cid)
    [c] = await rt.list_containers()
    assert c.state is ContainerState.RUNNING
    clock.step(29)
    assert (await rt.list_containers())[0].state is ContainerState.RUNNING
    clock.step(1)
    [c] = await rt.list_containers()
    assert (c.state, c.exit_code, c.reason) == (ContainerState.EXITED, 2, "Error")
    events = rt.container_events()
    assert (await asyncio.wait_for(anext(events), 1)).state is ContainerState.RUNNING
