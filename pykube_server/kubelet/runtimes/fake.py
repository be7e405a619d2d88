"""The simulated runtime: no processes, lifecycles taken from data (kwok's stages, in small).

A container "runs" `start_delay_seconds` after it is started, then runs until stopped, unless
the pod says otherwise with annotations (a `.<container>` suffix narrows one to a container):

* `pykube.io/simulate-run-seconds`: exit after running this long;
* `pykube.io/simulate-exit-code`: the exit code then (default 0; reason Completed or Error).

Everything lives in dicts and timers on the injected clock, so a thousand nodes fit in one
process and tests move time with a FakeClock. Exits are pushed through `container_events()`.
Logs are one line saying the container is simulated; exec_sync (probes) always succeeds, while
streaming exec and attach (kubectl) fail with a message saying there is no process.
"""

from __future__ import annotations

import asyncio
import itertools
import uuid
from collections.abc import AsyncIterator, Mapping, Sequence
from dataclasses import replace

from pykube_server.client.clock import REAL_CLOCK, Clock, Timer
from pykube_server.kubelet.runtime import (
    ContainerConfig, ContainerState, ContainerStatus, ExecResult, NotFound, RuntimeServiceError, SandboxConfig,
    SandboxState, SandboxStatus, StreamSession,
)

RUN_SECONDS_ANNOTATION = "pykube.io/simulate-run-seconds"
EXIT_CODE_ANNOTATION = "pykube.io/simulate-exit-code"
SIGTERM_EXIT_CODE = 143
SIGKILL_EXIT_CODE = 137


def _setting(annotations: Mapping[str, str], key: str, container: str) -> str | None:
    return annotations.get(f"{key}.{container}", annotations.get(key))


class FakeRuntime:
    name = "pykube-simulated"
    version = "0.1.0"

    def __init__(self, *, clock: Clock = REAL_CLOCK, start_delay_seconds: float = 0.0) -> None:
        self._clock = clock
        self._delay = start_delay_seconds
        self._sandboxes: dict[str, SandboxStatus] = {}
        self._containers: dict[str, ContainerStatus] = {}
        self._configs: dict[str, ContainerConfig] = {}
        self._timers: dict[str, Timer] = {}
        self._order = itertools.count()
        self._seq: dict[str, int] = {}
        self._events: asyncio.Queue[ContainerStatus] = asyncio.Queue()

    def _wall(self) -> float:
        return self._clock.wall().timestamp()

    # --- sandboxes ---------------------------------------------------------------------------
    async def run_pod_sandbox(self, config: SandboxConfig) -> str:
        sid = uuid.uuid4().hex
        self._sandboxes[sid] = SandboxStatus(sid, config.uid, config.namespace, config.name, config.ip,
                                             SandboxState.READY, self._wall())
        return sid

    async def stop_pod_sandbox(self, sandbox_id: str) -> None:
        for c in list(self._containers.values()):
            if c.sandbox_id == sandbox_id:
                await self.stop_container(c.id, timeout=0)
        if sandbox_id in self._sandboxes:
            self._sandboxes[sandbox_id] = replace(self._sandboxes[sandbox_id], state=SandboxState.NOTREADY)

    async def remove_pod_sandbox(self, sandbox_id: str) -> None:
        await self.stop_pod_sandbox(sandbox_id)
        for c in list(self._containers.values()):
            if c.sandbox_id == sandbox_id:
                await self.remove_container(c.id)
        self._sandboxes.pop(sandbox_id, None)

    async def list_pod_sandboxes(self) -> Sequence[SandboxStatus]:
        return list(self._sandboxes.values())

    # --- containers --------------------------------------------------------------------------
    async def create_container(self, sandbox_id: str, config: ContainerConfig) -> str:
        if sandbox_id not in self._sandboxes:
            raise NotFound(f"sandbox {sandbox_id} not found")
        cid = uuid.uuid4().hex + uuid.uuid4().hex
        self._configs[cid] = config
        self._seq[cid] = next(self._order)
        self._containers[cid] = ContainerStatus(cid, sandbox_id, config.name, config.image, ContainerState.CREATED,
                                                attempt=config.attempt, created_at=self._wall())
        return cid

    def _get(self, container_id: str) -> ContainerStatus:
        try:
            return self._containers[container_id]
        except KeyError:
            raise NotFound(f"container {container_id} not found") from None

    async def start_container(self, container_id: str) -> None:
        c = self._get(container_id)
        if c.state is not ContainerState.CREATED:
            return
        if self._delay:
            await self._clock.sleep(self._delay)
        self._set(replace(c, state=ContainerState.RUNNING, started_at=self._wall()))
        config = self._configs[container_id]
        run = _setting(config.annotations, RUN_SECONDS_ANNOTATION, config.name)
        if run is not None:
            code = int(_setting(config.annotations, EXIT_CODE_ANNOTATION, config.name) or 0)
            self._timers[container_id] = self._clock.call_later(float(run), lambda: self._exit(container_id, code))

    def _exit(self, container_id: str, code: int) -> None:
        c = self._containers.get(container_id)
        if c is None or c.state is not ContainerState.RUNNING:
            return
        timer = self._timers.pop(container_id, None)
        if timer:
            timer.cancel()
        self._set(replace(c, state=ContainerState.EXITED, finished_at=self._wall(), exit_code=code,
                          reason="Completed" if code == 0 else "Error"))

    def _set(self, status: ContainerStatus) -> None:
        self._containers[status.id] = status
        self._events.put_nowait(status)

    async def stop_container(self, container_id: str, *, timeout: float) -> None:
        c = self._containers.get(container_id)
        if c is None:
            return
        if c.state is ContainerState.CREATED:
            self._set(replace(c, state=ContainerState.EXITED, finished_at=self._wall(), exit_code=0))
        self._exit(container_id, SIGTERM_EXIT_CODE if timeout > 0 else SIGKILL_EXIT_CODE)

    async def remove_container(self, container_id: str) -> None:
        await self.stop_container(container_id, timeout=0)
        self._containers.pop(container_id, None)
        self._configs.pop(container_id, None)

    async def list_containers(self, *, sandbox_id: str | None = None) -> Sequence[ContainerStatus]:
        found = [c for c in self._containers.values() if sandbox_id is None or c.sandbox_id == sandbox_id]
        return sorted(found, key=lambda c: self._seq[c.id])

    async def container_events(self) -> AsyncIterator[ContainerStatus]:
        while True:
            yield await self._events.get()

    async def container_logs(self, container_id: str, *, follow: bool) -> AsyncIterator[bytes]:
        c = self._get(container_id)
        stamp = self._clock.wall().strftime("%Y-%m-%dT%H:%M:%S.%fZ")
        yield f"{stamp} stdout F container {c.name} is simulated by pykube: it writes no logs\n".encode()

    async def exec_sync(self, container_id: str, cmd: Sequence[str], *, timeout: float) -> ExecResult:
        self._get(container_id)
        return ExecResult(0)

    async def exec(self, container_id: str, cmd: Sequence[str], *, stdin: bool, tty: bool,
                   size: tuple[int, int] | None = None) -> StreamSession:
        c = self._get(container_id)
        raise RuntimeServiceError(f"container {c.name} is simulated by pykube: it has no processes to exec in")

    async def attach(self, container_id: str, *, stdin: bool, tty: bool) -> StreamSession:
        c = self._get(container_id)
        raise RuntimeServiceError(f"container {c.name} is simulated by pykube: it has no process to attach to")

    # --- images ------------------------------------------------------------------------------
    async def pull_image(self, image: str) -> int:
        return 0

    async def image_exists(self, image: str) -> bool:
        return True

    async def aclose(self) -> None:
        for timer in self._timers.values():
            timer.cancel()
        self._timers.clear()
