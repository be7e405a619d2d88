"""The container runtime seam: CRI's RuntimeService and ImageService, as small Protocols.

Why this shape: the real kubelet keeps all policy (ordering, restarts, back-off, probes, status)
and asks the runtime only for primitives over sandboxes and containers; the runtime keeps the
facts (what exists, what runs, exit codes, timestamps, logs). Keeping the same split lets one
pod worker drive a runtime of real processes and a simulated one for thousands of nodes, and
lets one contract suite (`tests/kubelet/runtime_contract.py`) hold every implementation to it.

Optional capabilities (events instead of relisting, logs, exec, streaming exec/attach) are separate
`runtime_checkable` Protocols; the kubelet falls back when a runtime lacks them.
"""

from __future__ import annotations

import enum
from collections.abc import AsyncIterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Protocol, runtime_checkable


@dataclass(frozen=True, slots=True)
class SandboxConfig:
    """What a pod sandbox is made from (CRI PodSandboxConfig, trimmed)."""

    uid: str
    namespace: str
    name: str
    hostname: str = ""
    ip: str = ""
    """The pod IP the kubelet allocated from the node's podCIDR (the network seam's answer)."""
    labels: Mapping[str, str] = field(default_factory=dict)
    annotations: Mapping[str, str] = field(default_factory=dict)
    share_process_namespace: bool = False
    """`spec.shareProcessNamespace`: the containers share one PID namespace (CRI's
    NamespaceMode POD for pid), whose init is the sandbox's pause process."""


class SandboxState(enum.Enum):
    READY = "ready"
    NOTREADY = "notready"


@dataclass(frozen=True, slots=True)
class SandboxStatus:
    id: str
    uid: str
    namespace: str
    name: str
    ip: str
    state: SandboxState
    created_at: float
    """Wall-clock seconds since the epoch."""


@dataclass(frozen=True, slots=True)
class Mount:
    """One bind mount into a container (CRI Mount, trimmed): `host_path` appears at
    `container_path`; `read_only` makes that view read-only."""

    host_path: str
    container_path: str
    read_only: bool = False


@dataclass(frozen=True, slots=True)
class ContainerConfig:
    """What one container is made from (CRI ContainerConfig, trimmed)."""

    name: str
    image: str
    command: tuple[str, ...] = ()
    args: tuple[str, ...] = ()
    env: Mapping[str, str] = field(default_factory=dict)
    working_dir: str = ""
    attempt: int = 0
    """The restart count this container instance will carry."""
    annotations: Mapping[str, str] = field(default_factory=dict)
    """The pod's annotations (the simulated runtime takes its lifecycle from them)."""
    stdin: bool = False
    """Keep the main process's stdin open for `attach` (the container's `stdin`)."""
    stdin_once: bool = False
    """Close that stdin when the first attached client detaches (`stdinOnce`)."""
    tty: bool = False
    """Run the main process on a terminal (`tty`): one output stream, resizable."""
    mounts: tuple[Mount, ...] = ()
    """The container's volume mounts, already resolved to host paths by the volume manager."""


class ContainerState(enum.Enum):
    CREATED = "created"
    RUNNING = "running"
    EXITED = "exited"
    UNKNOWN = "unknown"


@dataclass(frozen=True, slots=True)
class ContainerStatus:
    id: str
    sandbox_id: str
    name: str
    image: str
    state: ContainerState
    attempt: int = 0
    created_at: float | None = None
    started_at: float | None = None
    finished_at: float | None = None
    """Wall-clock seconds since the epoch, or None when it has not happened."""
    exit_code: int | None = None
    reason: str = ""
    """For exited containers: Completed, Error or OOMKilled (CRI's reason)."""
    message: str = ""
    log_path: str = ""


@dataclass(frozen=True, slots=True)
class ExecResult:
    exit_code: int
    stdout: bytes = b""
    stderr: bytes = b""


class RuntimeServiceError(Exception):
    """A runtime call failed; the message is what the kubelet reports (events, waiting messages)."""


class NotFound(RuntimeServiceError):
    """No sandbox or container by that id."""


class RuntimeService(Protocol):
    """Container primitives. Policy (restarts, probes, ordering) stays in the kubelet.

    Every method may be called concurrently for different pods. `stop_*` and `remove_*` are
    idempotent: acting on something already stopped or gone succeeds. Cancelling a call leaves
    the runtime consistent (a half-created container is either listed or absent).
    """

    name: str
    """Shown in the node's containerRuntimeVersion as `<name>://<version>` and in containerIDs."""
    version: str

    async def run_pod_sandbox(self, config: SandboxConfig) -> str:
        """Create a READY sandbox; returns its id. Raises RuntimeServiceError."""

    async def stop_pod_sandbox(self, sandbox_id: str) -> None:
        """Force-terminates any containers still running in the sandbox; marks it NOTREADY."""

    async def remove_pod_sandbox(self, sandbox_id: str) -> None:
        """Stops and removes the sandbox and all its containers (and their logs)."""

    async def list_pod_sandboxes(self) -> Sequence[SandboxStatus]:
        """Every sandbox, including ones created before a restart of the kubelet."""

    async def create_container(self, sandbox_id: str, config: ContainerConfig) -> str:
        """A CREATED container; returns its id. Raises NotFound for an unknown sandbox and
        RuntimeServiceError when the container cannot be made (the message says why)."""

    async def start_container(self, container_id: str) -> None:
        """CREATED -> RUNNING. Raises NotFound, or RuntimeServiceError (e.g. executable not
        found; the container is then EXITED with exit code 128, reason StartError)."""

    async def stop_container(self, container_id: str, *, timeout: float) -> None:
        """SIGTERM (or the simulated equivalent), then SIGKILL after `timeout` seconds; returns
        once the container has EXITED."""

    async def remove_container(self, container_id: str) -> None: ...

    async def list_containers(self, *, sandbox_id: str | None = None) -> Sequence[ContainerStatus]:
        """Every container (of one sandbox), in creation order."""

    async def aclose(self) -> None:
        """Release the runtime (idempotent). Whether containers outlive it is the runtime's
        documented choice."""


class ImageService(Protocol):
    async def pull_image(self, image: str) -> int:
        """Make `image` present; returns its size in bytes. Raises RuntimeServiceError."""

    async def image_exists(self, image: str) -> bool: ...


@runtime_checkable
class EventedRuntime(Protocol):
    """Pushes container state changes (else the kubelet relists on a timer)."""

    def container_events(self) -> AsyncIterator[ContainerStatus]: ...


@runtime_checkable
class LogsRuntime(Protocol):
    def container_logs(self, container_id: str, *, follow: bool) -> AsyncIterator[bytes]:
        """The container's log in the CRI format (`<RFC3339Nano> <stream> <P|F> <text>\\n`
        per line). With `follow`, keeps yielding until the container exits."""


@runtime_checkable
class ExecRuntime(Protocol):
    async def exec_sync(self, container_id: str, cmd: Sequence[str], *, timeout: float) -> ExecResult:
        """Run `cmd` in the container's environment; raises TimeoutError after `timeout`."""


@runtime_checkable
class IsolatingRuntime(Protocol):
    def isolation_problem(self, container_id: str) -> str:
        """Why this started container did not get its own mount and UTS namespaces (so its
        mounts and hostname were skipped), or "" when it did."""


@runtime_checkable
class PidSharingRuntime(Protocol):
    def pid_namespace_problem(self, container_id: str) -> str:
        """Why a started container of a `shareProcessNamespace` pod does not share the pod's PID
        namespace, or "" when it does (or the pod does not ask for it)."""


class StreamSession(Protocol):
    """One exec or attach session: the runtime's end of the streams kubectl sees.

    Output comes as (1, bytes) for stdout and (2, bytes) for stderr (with a tty everything is
    stdout) until every stream ended; then `wait()` gives the exit code (an attach ends with 0
    when the container ends or the session detaches)."""

    def output(self) -> AsyncIterator[tuple[int, bytes]]: ...

    async def write_stdin(self, data: bytes) -> None: ...

    async def close_stdin(self) -> None:
        """End of input (v5's close of channel 0); output keeps flowing."""

    def resize(self, width: int, height: int) -> None:
        """A terminal size change; ignored without a tty."""

    async def wait(self) -> int: ...

    async def aclose(self) -> None:
        """The client went away: an exec's process is killed, an attach detaches. Idempotent."""


@runtime_checkable
class StreamingRuntime(Protocol):
    """CRI's Exec and Attach, streaming (the kubelet relays them over WebSocket channels).

    Both raise NotFound for an unknown container and RuntimeServiceError (with the message the
    user should see) when the session cannot be started."""

    async def exec(self, container_id: str, cmd: Sequence[str], *, stdin: bool, tty: bool,
                   size: tuple[int, int] | None = None) -> StreamSession:
        """`size` (width, height) is the terminal's before the command starts (with `tty`)."""

    async def attach(self, container_id: str, *, stdin: bool, tty: bool) -> StreamSession: ...


class Runtime(RuntimeService, ImageService, Protocol):
    """What a kubelet needs: both services (CRI runtimes implement both on one socket)."""
