"""The RuntimeService contract, written once and run against every runtime (test_runtimes.py).

Each container config carries both a command (for the process runtime) and the simulation
annotations (for the simulated one), so the same case means the same thing to both.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable

import pytest

from pykube_server.kubelet.runtime import (
    ContainerConfig, ContainerState, ContainerStatus, LogsRuntime, NotFound, Runtime, SandboxConfig, SandboxState,
)

RUNS = ContainerConfig(name="runs", image="busybox", command=("sh", "-c", "echo hello; sleep 30"))


def exits(code: int) -> ContainerConfig:
    return ContainerConfig(name="exits", image="busybox", command=("sh", "-c", f"echo bye; exit {code}"),
                           annotations={"pykube.io/simulate-run-seconds": "0",
                                        "pykube.io/simulate-exit-code": str(code)})


async def wait_for(runtime: Runtime, cid: str, pred: Callable[[ContainerStatus], bool], timeout: float = 10.0) -> ContainerStatus:
    async with asyncio.timeout(timeout):
        while True:
            found = [c for c in await runtime.list_containers() if c.id == cid]
            if found and pred(found[0]):
                return found[0]
            await asyncio.sleep(0.02)


async def sandbox(runtime: Runtime, name: str = "p") -> str:
    return await runtime.run_pod_sandbox(SandboxConfig(uid=f"uid-{name}", namespace="ns", name=name, ip="127.244.9.2"))


async def check_sandbox_lifecycle(runtime: Runtime) -> None:
    sid = await sandbox(runtime)
    [s] = [s for s in await runtime.list_pod_sandboxes() if s.id == sid]
    assert (s.uid, s.ip, s.state) == ("uid-p", "127.244.9.2", SandboxState.READY)
    await runtime.stop_pod_sandbox(sid)
    [s] = [s for s in await runtime.list_pod_sandboxes() if s.id == sid]
    assert s.state is SandboxState.NOTREADY
    await runtime.remove_pod_sandbox(sid)
    await runtime.remove_pod_sandbox(sid)  # idempotent
    assert sid not in {s.id for s in await runtime.list_pod_sandboxes()}


async def check_run_and_stop(runtime: Runtime) -> None:
    sid = await sandbox(runtime)
    cid = await runtime.create_container(sid, RUNS)
    [c] = await runtime.list_containers(sandbox_id=sid)
    assert (c.id, c.state, c.name, c.attempt) == (cid, ContainerState.CREATED, "runs", 0)
    await runtime.start_container(cid)
    c = await wait_for(runtime, cid, lambda c: c.state is ContainerState.RUNNING)
    assert c.started_at is not None
    await runtime.stop_container(cid, timeout=5)
    c = await wait_for(runtime, cid, lambda c: c.state is ContainerState.EXITED)
    assert c.exit_code == 143 and c.finished_at is not None
    await runtime.stop_container(cid, timeout=5)  # idempotent
    await runtime.remove_container(cid)
    await runtime.remove_container(cid)
    assert await runtime.list_containers(sandbox_id=sid) == []
    await runtime.remove_pod_sandbox(sid)


async def check_exit_codes(runtime: Runtime) -> None:
    sid = await sandbox(runtime)
    for code in (0, 3):
        cid = await runtime.create_container(sid, exits(code))
        await runtime.start_container(cid)
        c = await wait_for(runtime, cid, lambda c: c.state is ContainerState.EXITED)
        assert c.exit_code == code
        assert c.reason == ("Completed" if code == 0 else "Error")
    await runtime.remove_pod_sandbox(sid)


async def check_not_found(runtime: Runtime) -> None:
    with pytest.raises(NotFound):
        await runtime.create_container("nope", RUNS)
    with pytest.raises(NotFound):
        await runtime.start_container("nope")
    await runtime.stop_container("nope", timeout=1)
    await runtime.remove_container("nope")


async def check_logs(runtime: Runtime) -> None:
    assert isinstance(runtime, LogsRuntime)
    sid = await sandbox(runtime)
    cid = await runtime.create_container(sid, exits(0))
    await runtime.start_container(cid)
    await wait_for(runtime, cid, lambda c: c.state is ContainerState.EXITED)
    data = b"".join([chunk async for chunk in runtime.container_logs(cid, follow=False)])
    line = data.splitlines()[0].split(b" ", 3)
    assert line[1] == b"stdout" and line[2] == b"F" and line[0].endswith(b"Z")
    await runtime.remove_pod_sandbox(sid)


CHECKS = [check_sandbox_lifecycle, check_run_and_stop, check_exit_codes, check_not_found, check_logs]
