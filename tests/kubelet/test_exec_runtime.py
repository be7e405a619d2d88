"""Streaming exec and attach of the process runtime; the simulated runtime's refusal."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from pykube_server.kubelet.runtime import (
    ContainerConfig, ContainerState, RuntimeServiceError, StreamingRuntime, StreamSession,
)
from pykube_server.kubelet.runtimes.fake import FakeRuntime
from pykube_server.kubelet.runtimes.process import ProcessRuntime
from tests.kubelet import runtime_contract as contract


async def running(rt: ProcessRuntime, config: ContainerConfig = contract.RUNS) -> str:
    cid = await rt.create_container(await contract.sandbox(rt), config)
    await rt.start_container(cid)
    return cid


async def collect(session: StreamSession, timeout: float = 10.0) -> tuple[bytes, bytes, int]:
    out, err = b"", b""
    async with asyncio.timeout(timeout):
        async for channel, data in session.output():
            if channel == 1:
                out += data
            else:
                err += data
        code = await session.wait()
    await session.aclose()
    return out, err, code


async def read_until(session: StreamSession, want: bytes, timeout: float = 10.0) -> bytes:
    seen = b""
    async with asyncio.timeout(timeout):
        async for _channel, data in session.output():
            seen += data
            if want in seen:
                return seen
    raise AssertionError(f"{want!r} not in {seen!r}")


async def test_exec_runs_in_the_containers_environment(runtime: ProcessRuntime, tmp_path: Path) -> None:
    assert isinstance(runtime, StreamingRuntime)
    config = ContainerConfig(name="c", image="busybox", command=("sleep", "30"), env={"GREETING": "hi"},
                             working_dir=str(tmp_path))
    cid = await running(runtime, config)
    session = await runtime.exec(cid, ["sh", "-c", "echo $GREETING; pwd; echo oops >&2; exit 3"],
                                 stdin=False, tty=False)
    out, err, code = await collect(session)
    assert (out, err, code) == (f"hi\n{tmp_path}\n".encode(), b"oops\n", 3)


async def test_exec_stdin_and_its_close(runtime: ProcessRuntime) -> None:
    session = await runtime.exec(await running(runtime), ["cat"], stdin=True, tty=False)
    await session.write_stdin(b"line one\n")
    await session.write_stdin(b"line two\n")
    await session.close_stdin()  # cat ends only when its input does
    assert await collect(session) == (b"line one\nline two\n", b"", 0)


async def test_exec_with_a_tty_is_one_resizable_stream(runtime: ProcessRuntime) -> None:
    session = await runtime.exec(await running(runtime), ["sh", "-c", "read x; stty size; tty; echo err >&2"],
                                 stdin=True, tty=True)
    session.resize(91, 33)
    await session.write_stdin(b"go\n")
    out, err, code = await collect(session)
    assert err == b"" and code == 0
    assert b"33 91\r\n" in out and b"/dev/pts/" in out and b"err\r\n" in out


async def test_exec_of_a_missing_command_fails_as_containerd_says(runtime: ProcessRuntime) -> None:
    with pytest.raises(RuntimeServiceError, match=r'exec: "no-such-cmd": executable file not found in \$PATH'):
        await runtime.exec(await running(runtime), ["no-such-cmd"], stdin=False, tty=False)


async def test_a_client_that_goes_away_kills_the_exec(runtime: ProcessRuntime) -> None:
    session = await runtime.exec(await running(runtime), ["sleep", "30"], stdin=False, tty=False)
    async with asyncio.timeout(5):
        await session.aclose()
        assert await session.wait() == 137


async def test_exec_and_attach_need_a_running_container(runtime: ProcessRuntime) -> None:
    cid = await runtime.create_container(await contract.sandbox(runtime), contract.RUNS)
    with pytest.raises(RuntimeServiceError):
        await runtime.exec(cid, ["true"], stdin=False, tty=False)
    with pytest.raises(RuntimeServiceError):
        await runtime.attach(cid, stdin=False, tty=False)


async def test_attach_fans_out_output_and_feeds_stdin(runtime: ProcessRuntime) -> None:
    config = ContainerConfig(name="c", image="busybox", stdin=True,
                             command=("sh", "-c", "echo ready; while read l; do echo got:$l; echo e:$l >&2; done"))
    cid = await running(runtime, config)
    first = await runtime.attach(cid, stdin=True, tty=False)
    second = await runtime.attach(cid, stdin=False, tty=False)
    await asyncio.sleep(0.2)  # both attached before anything is written
    await first.write_stdin(b"one\n")
    assert b"got:one\n" in await read_until(first, b"got:one\n")
    assert b"got:one\n" in await read_until(second, b"got:one\n")
    await first.close_stdin()  # without stdinOnce the container's stdin stays open
    await first.aclose()
    await second.write_stdin(b"ignored\n")  # attached without stdin
    await asyncio.sleep(0.2)
    third = await runtime.attach(cid, stdin=True, tty=False)
    await asyncio.sleep(0.1)
    await third.write_stdin(b"two\n")
    assert b"got:two\n" in await read_until(third, b"got:two\n")
    await runtime.stop_container(cid, timeout=2)
    out, _err, code = await collect(second)  # ends when the container does
    assert code == 0 and b"ignored" not in out
    log = b"".join([chunk async for chunk in runtime.container_logs(cid, follow=False)])
    assert b"stdout F ready" in log and b"stdout F got:one" in log and b"stderr F e:one" in log


async def test_stdin_once_closes_the_containers_stdin_when_the_client_leaves(runtime: ProcessRuntime) -> None:
    config = ContainerConfig(name="c", image="busybox", stdin=True, stdin_once=True,
                             command=("sh", "-c", "cat; echo done"))
    cid = await running(runtime, config)
    session = await runtime.attach(cid, stdin=True, tty=False)
    await asyncio.sleep(0.1)
    await session.write_stdin(b"abc\n")
    await session.close_stdin()
    out, _err, code = await collect(session)
    assert out == b"abc\ndone\n" and code == 0
    status = await contract.wait_for(runtime, cid, lambda s: s.state is ContainerState.EXITED)
    assert status.exit_code == 0


async def test_a_tty_container_runs_on_a_terminal_attach_can_resize(runtime: ProcessRuntime) -> None:
    config = ContainerConfig(name="c", image="busybox", stdin=True, tty=True,
                             command=("sh", "-c", "while read l; do stty size; done"))
    cid = await running(runtime, config)
    session = await runtime.attach(cid, stdin=True, tty=True)
    await asyncio.sleep(0.1)
    session.resize(100, 30)
    await asyncio.sleep(0.1)
    await session.write_stdin(b"\n")
    assert b"30 100" in await read_until(session, b"30 100")
    await session.aclose()


async def test_the_simulated_runtime_refuses_exec_and_attach() -> None:
    rt = FakeRuntime()
    sid = await contract.sandbox(rt)
    cid = await rt.create_container(sid, contract.RUNS)
    await rt.start_container(cid)
    with pytest.raises(RuntimeServiceError, match="simulated by pykube"):
        await rt.exec(cid, ["true"], stdin=False, tty=False)
    with pytest.raises(RuntimeServiceError, match="simulated by pykube"):
        await rt.attach(cid, stdin=False, tty=False)
