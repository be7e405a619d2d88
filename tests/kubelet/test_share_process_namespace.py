"""`shareProcessNamespace: true` under the process runtime: one PID namespace per pod, whose
PID 1 is the sandbox's pause process, so each container sees the others' processes (`ps`,
`/proc`) and exec lands there too; pods without it are left as they were.

Kubernetes' documented behaviour (Share Process Namespace between Containers in a Pod): with
the field set, processes are visible to all containers of the pod, the pause process is PID 1,
and a container's processes no longer are.
"""

from __future__ import annotations

import asyncio
import json
import os
import time
from pathlib import Path

import pytest

from pykube_server.kubelet.pod_workers import PodWorker
from pykube_server.kubelet.runtime import ContainerConfig, ContainerState, SandboxConfig
from pykube_server.kubelet.runtimes.process import ProcessRuntime
from tests.conftest import ServerProcess, requires_kubectl
from tests.kubelet.test_pod_workers import env, make_pod  # noqa: F401  (env is a fixture)

needs_root = pytest.mark.skipif(os.geteuid() != 0, reason="a PID namespace needs root (the runtime falls back)")


async def _exited(rt: ProcessRuntime, cid: str, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if any(c.id == cid and c.state is ContainerState.EXITED for c in await rt.list_containers()):
            return
        await asyncio.sleep(0.05)
    raise AssertionError(f"container {cid} did not exit")


def _log(rt_status_log_path: str) -> list[str]:
    return [line.split(" ", 3)[3] for line in Path(rt_status_log_path).read_text().splitlines()]


async def _shared_sandbox(rt: ProcessRuntime) -> str:
    sid = await rt.run_pod_sandbox(SandboxConfig(uid="u", namespace="ns", name="p", share_process_namespace=True))
    problem = json.loads((rt.root / "sandboxes" / sid / "sandbox.json").read_text())["pid_ns"].get("problem")
    if problem:
        pytest.skip(f"this machine refuses a new PID namespace: {problem}")
    return sid


@needs_root
async def test_containers_of_a_pod_see_each_other_and_pause_is_pid_1(runtime: ProcessRuntime) -> None:
    sid = await _shared_sandbox(runtime)
    a = await runtime.create_container(sid, ContainerConfig(name="a", image="busybox", command=("sleep", "1000")))
    await runtime.start_container(a)
    b = await runtime.create_container(sid, ContainerConfig(
        name="b", image="busybox", command=("sh", "-c", "cat /proc/1/comm; cat /proc/[0-9]*/comm; echo pid=$$")))
    await runtime.start_container(b)
    assert runtime.pid_namespace_problem(a) == "" and runtime.pid_namespace_problem(b) == ""
    await _exited(runtime, b)
    status = next(c for c in await runtime.list_containers() if c.id == b)
    lines = _log(status.log_path)
    assert lines[0] == "pause"  # PID 1 of the pod is its pause process
    assert "sleep" in lines  # container a's process, seen from container b
    assert int(lines[-1].removeprefix("pid=")) < 100  # b's shell has a pid of the pod's namespace

    result = await runtime.exec_sync(a, ["ps", "-e", "-o", "pid=,comm="], timeout=10)
    procs = [line.split() for line in result.stdout.decode().splitlines()]
    assert result.exit_code == 0 and ["1", "pause"] in procs
    assert any(comm == "sleep" for _, comm in procs) and all(int(pid) < 100 for pid, _ in procs)

    await runtime.stop_container(a, timeout=5)  # an ordinary process: SIGTERM ends it
    stopped = next(c for c in await runtime.list_containers() if c.id == a)
    assert stopped.exit_code == 143


@needs_root
async def test_removing_the_sandbox_ends_its_pause_process(runtime: ProcessRuntime) -> None:
    sid = await _shared_sandbox(runtime)

    pause = json.loads((runtime.root / "sandboxes" / sid / "sandbox.json").read_text())["pid_ns"]["pid"]
    assert Path(f"/proc/{pause}/comm").read_text().strip() == "pause"
    await runtime.remove_pod_sandbox(sid)
    deadline = time.monotonic() + 5
    while Path(f"/proc/{pause}").exists() and time.monotonic() < deadline:
        await asyncio.sleep(0.05)
    assert not Path(f"/proc/{pause}").exists() or "Z" in Path(f"/proc/{pause}/stat").read_text().split(")")[1][:3]


@needs_root
async def test_pods_without_it_keep_the_nodes_pid_namespace(runtime: ProcessRuntime) -> None:
    sid = await runtime.run_pod_sandbox(SandboxConfig(uid="u", namespace="ns", name="p"))
    c = await runtime.create_container(sid, ContainerConfig(name="c", image="busybox",
                                                            command=("sh", "-c", "echo pid=$$")))
    await runtime.start_container(c)
    await _exited(runtime, c)
    status = next(s for s in await runtime.list_containers() if s.id == c)
    assert _log(status.log_path) == [f"pid={runtime.container_pid(c)}"]  # the host's pid
    assert runtime.pid_namespace_problem(c) == ""


async def test_without_root_the_pod_says_it_shares_no_pid_namespace(runtime: ProcessRuntime,
                                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(os, "geteuid", lambda: 1000)
    sid = await runtime.run_pod_sandbox(SandboxConfig(uid="u", namespace="ns", name="p", share_process_namespace=True))
    c = await runtime.create_container(sid, ContainerConfig(name="c", image="busybox", command=("true",)))
    assert runtime.pid_namespace_problem(c) == "a shared PID namespace needs root"


async def test_the_pod_worker_asks_for_a_shared_sandbox(env) -> None:  # type: ignore[no-untyped-def]  # noqa: F811
    ctx, _, _, _ = env
    seen: list[SandboxConfig] = []
    original = ctx.runtime.run_pod_sandbox

    async def record(config: SandboxConfig) -> str:
        seen.append(config)
        return await original(config)

    ctx.runtime.run_pod_sandbox = record
    pod = make_pod()
    pod["spec"]["shareProcessNamespace"] = True
    await PodWorker(ctx, pod).sync()
    assert [c.share_process_namespace for c in seen] == [True]


@needs_root
@requires_kubectl
def test_kubectl_exec_sees_the_other_containers_processes(cluster: ServerProcess, namespace: str) -> None:
    manifest = json.dumps({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "shared"}, "spec": {
        "shareProcessNamespace": True, "terminationGracePeriodSeconds": 1,
        "containers": [{"name": "a", "image": "busybox", "command": ["sleep", "3601"]},
                       {"name": "b", "image": "busybox", "command": ["sleep", "3602"]}]}})
    cluster.kubectl("apply", "-n", namespace, "-f", "-", input=manifest)
    cluster.kubectl("wait", "-n", namespace, "--for=condition=Ready", "pod/shared", "--timeout=60s", timeout=70)
    out = cluster.kubectl("exec", "-n", namespace, "shared", "-c", "b", "--",
                          "ps", "-e", "-o", "pid=,comm=,args=").stdout
    procs = [line.split(None, 2) for line in out.splitlines()]
    assert ["1", "pause"] == procs[0][:2]  # the pod's init, PID 1 of its namespace
    args = {p[2] for p in procs if len(p) == 3}
    assert {"sleep 3601", "sleep 3602"} <= args  # both containers' processes, seen from b
    assert all(int(p[0]) < 1000 for p in procs)


@needs_root
async def test_a_clean_stop_ends_the_pause_and_the_next_container_gets_a_new_one(tmp_path: Path) -> None:
    rt = ProcessRuntime(tmp_path / "rt")
    sid = await _shared_sandbox(rt)
    first = json.loads((rt.root / "sandboxes" / sid / "sandbox.json").read_text())["pid_ns"]["pid"]
    await rt.aclose(stop=True)  # what a clean kubelet stop does: nothing of the pod keeps running
    deadline = time.monotonic() + 5
    while Path(f"/proc/{first}/comm").exists() and time.monotonic() < deadline:
        if "Z" in Path(f"/proc/{first}/stat").read_text().split(")")[1][:3]:
            break
        await asyncio.sleep(0.05)
    again = ProcessRuntime(tmp_path / "rt")  # the restarted kubelet's runtime
    try:
        c = await again.create_container(sid, ContainerConfig(name="c", image="busybox",
                                                              command=("cat", "/proc/1/comm")))
        await again.start_container(c)
        await _exited(again, c)
        status = next(s for s in await again.list_containers() if s.id == c)
        assert _log(status.log_path) == ["pause"] and again.pid_namespace_problem(c) == ""
        second = json.loads((again.root / "sandboxes" / sid / "sandbox.json").read_text())["pid_ns"]["pid"]
        assert second != first
    finally:
        await again.remove_pod_sandbox(sid)
