"""The process runtime: each container is a real local process, kept by its own shim.

Images are not pulled. How an image becomes something runnable:

* with `command` (and `args`), they run as they are on this machine (`/bin/sh`, `echo`,
  `sleep`, `python3`, ... from the host), in a new session, stdin closed;
* with only `args`, the args run as they would in an image without an ENTRYPOINT (busybox,
  python);
* with neither, images named `nginx`, `nginx-unprivileged` or `httpd` run a built-in static
  HTTP server standing in for theirs (`standins/`: the pod IP, the image's port, document root,
  default page and access log); any other image is a placeholder that waits until it is stopped
  (the kubelet says so in a Warning event);
* `PATH` starts with a per-image directory of host tools standing in for the image's: for
  `python*` images `python` and `python3` are this interpreter; `busybox` and `alpine` get bash as
  `sh` (like their ash, and unlike dash, it passes non-identifier variable names such as envFrom's
  `p-data-1` on and knows `[[`); otherwise the host's own tools are used as they are.
* the working directory is `workingDir`, else an empty per-pod directory under the data dir
  (not `/`, so that a `python -m http.server` does not serve the host's root).
* as root, each container gets private mount and UTS namespaces (see `shim.py`): its volume
  mounts bound at their mountPaths (mount points made by `mountpoints.py`) and the pod's
  hostname; `exec_sync` joins them (`nsenter.py`). Without root, containers run unisolated and
  `isolation_problem()` says so.
* `shareProcessNamespace` (as root): the sandbox starts a pause process (`pause.py`) as PID 1 of
  a new PID namespace, every container of the pod is started in it and sees the pod's processes
  in its own `/proc` (`ps`), as with CRI's pod-wide PID namespace; `exec` joins it too. Pods
  without it keep the host's PID namespace (each container's processes see the node's, where
  kube would give each container a namespace of its own: signals then behave as they do for a
  plain process, SIGTERM stops `sleep`). Without root, or when unshare is refused, the pod runs
  without it and `pid_namespace_problem()` says so (the kubelet turns that into an event).

Restart choice: containers outlive the kubelet. Every container has a detached shim
(`shim.py`) that keeps its state in files (`containers/<id>/{config,state,exit}.json`), so a
restarted kubelet lists the same sandboxes and containers, still running or with the exit
code they ended with meanwhile, and reconciles them as it would have. `aclose(stop=True)`
(what a clean stop of the kubelet does) stops them all instead.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import shutil
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import AsyncIterator, Sequence
from pathlib import Path
from typing import Any

from pykube_server.kubelet.runtime import (
    ContainerConfig, ContainerState, ContainerStatus, ExecResult, NotFound, RuntimeServiceError, SandboxConfig,
    SandboxState, SandboxStatus, StreamSession,
)
from pykube_server.kubelet.runtimes import mountpoints, nsenter
from pykube_server.kubelet.runtimes.standins import standin_argv, standin_for
from pykube_server.kubelet.runtimes.streams import AttachSession, ExecSession, attach_address

log = logging.getLogger(__name__)

SHIM = Path(__file__).with_name("shim.py")
PAUSE = Path(__file__).with_name("pause.py")
DEFAULT_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
PLACEHOLDER = (sys.executable, "-c", "import signal; signal.pause()")
POLL_SECONDS = 0.05
START_TIMEOUT_SECONDS = 20.0
EVENT_POLL_SECONDS = 0.2


def _read_json(path: Path) -> dict[str, Any] | None:
    try:
        return json.loads(path.read_text())  # type: ignore[no-any-return]
    except (OSError, ValueError):
        return None


def _write_json(path: Path, doc: dict[str, Any]) -> None:
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(doc))
    os.replace(tmp, path)


def _alive(pid: int, proc_start: str = "") -> bool:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    fields = stat.rsplit(")", 1)[1].split()
    if fields[0] == "Z":
        return False
    return not proc_start or fields[19] == proc_start


def image_tools(image: str) -> dict[str, str]:
    """Host executables standing in for an image's own (name -> path)."""
    base = image.rsplit("/", 1)[-1].split(":", 1)[0].split("@", 1)[0]
    if base.startswith(("python", "pypy")):
        return {"python": sys.executable, "python3": sys.executable}
    bash = shutil.which("bash")
    if base in ("busybox", "alpine") and bash:
        # busybox's ash passes variables whose names are not identifiers (envFrom prefixes such as
        # `p-`, RelaxedEnvironmentVariableValidation) on to children and knows `[[`; dash does neither
        return {"sh": bash}
    return {}


def image_argv(bindir: Path, argv: list[str]) -> list[str]:
    """`/bin/sh -c ...` names the image's own shell: when the image has a stand-in for that tool
    (`image_tools`), its link in the image's bin directory runs instead of the host's file."""
    if argv and argv[0].startswith(("/bin/", "/usr/bin/")):
        stand_in = bindir / argv[0].rsplit("/", 1)[1]
        if stand_in.is_symlink():
            return [str(stand_in), *argv[1:]]
    return argv


class ProcessRuntime:
    name = "pykube"
    version = "0.1.0"

    def __init__(self, root: Path) -> None:
        self.root = Path(root)
        for sub in ("sandboxes", "containers", "images", "logs", "pods"):
            (self.root / sub).mkdir(parents=True, exist_ok=True)
        self._closed = False

    # --- sandboxes ---------------------------------------------------------------------------
    async def run_pod_sandbox(self, config: SandboxConfig) -> str:
        sid = uuid.uuid4().hex
        sdir = self.root / "sandboxes" / sid
        sdir.mkdir()
        (self.root / "pods" / config.uid).mkdir(exist_ok=True)
        doc = {"id": sid, "uid": config.uid, "namespace": config.namespace, "name": config.name, "ip": config.ip,
               "state": "ready", "created_at": time.time(), "hostname": config.hostname or config.name}
        if config.share_process_namespace:
            doc["pid_ns"] = await self._start_pause(sdir) if os.geteuid() == 0 else {
                "problem": "a shared PID namespace needs root"}
        _write_json(sdir / "sandbox.json", doc)
        return sid

    async def _start_pause(self, sdir: Path) -> dict[str, Any]:
        """The pod's pause process, PID 1 of its shared PID namespace: {pid, proc_start} or {problem}."""
        launcher = await asyncio.create_subprocess_exec(
            sys.executable, "-I", str(PAUSE), str(sdir), stdin=asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.DEVNULL, start_new_session=True)
        await launcher.wait()
        deadline = time.monotonic() + START_TIMEOUT_SECONDS
        while (doc := _read_json(sdir / "pause.json")) is None:
            if time.monotonic() > deadline:
                return {"problem": "timed out waiting for the pause process"}
            await asyncio.sleep(POLL_SECONDS / 5)
        if doc.get("problem"):
            log.warning("sandbox %s: no shared PID namespace: %s", sdir.name, doc["problem"])
        return doc

    async def _ensure_pause(self, sandbox: dict[str, Any]) -> dict[str, Any]:
        """A shared-PID sandbox whose pause process is gone (a clean kubelet stop ends it with
        the containers) gets a new one, so the containers started from now on share again."""
        pause = sandbox.get("pid_ns")
        if not pause or pause.get("problem") or self._pod_pid_ns(sandbox):
            return sandbox
        sdir = self.root / "sandboxes" / sandbox["id"]
        (sdir / "pause.json").unlink(missing_ok=True)
        sandbox = {**sandbox, "pid_ns": await self._start_pause(sdir)}
        _write_json(sdir / "sandbox.json", sandbox)
        return sandbox

    def _pod_pid_ns(self, sandbox: dict[str, Any]) -> str:
        """`/proc/<pause>/ns/pid` of a live pause process, or ""."""
        pause = sandbox.get("pid_ns") or {}
        pid = pause.get("pid")
        return f"/proc/{pid}/ns/pid" if pid and _alive(int(pid), pause.get("proc_start", "")) else ""

    def _sandbox(self, sandbox_id: str) -> dict[str, Any]:
        doc = _read_json(self.root / "sandboxes" / sandbox_id / "sandbox.json")
        if doc is None:
            raise NotFound(f"sandbox {sandbox_id} not found")
        return doc

    async def stop_pod_sandbox(self, sandbox_id: str) -> None:
        for c in await self.list_containers(sandbox_id=sandbox_id):
            await self.stop_container(c.id, timeout=0)
        try:
            doc = self._sandbox(sandbox_id)
        except NotFound:
            return
        _write_json(self.root / "sandboxes" / sandbox_id / "sandbox.json", {**doc, "state": "notready"})

    async def remove_pod_sandbox(self, sandbox_id: str) -> None:
        try:
            doc = self._sandbox(sandbox_id)
        except NotFound:
            return
        await self.stop_pod_sandbox(sandbox_id)
        self._stop_pause(doc)
        for c in await self.list_containers(sandbox_id=sandbox_id):
            await self.remove_container(c.id)
        sandboxes = self.root / "sandboxes"
        mountpoints.release(sandboxes / sandbox_id, sandboxes.iterdir(), self._mount_targets(but=sandbox_id))
        shutil.rmtree(sandboxes / sandbox_id, ignore_errors=True)
        shutil.rmtree(self.root / "pods" / doc["uid"], ignore_errors=True)
        shutil.rmtree(self._pod_log_dir(doc), ignore_errors=True)

    @staticmethod
    def _stop_pause(sandbox: dict[str, Any]) -> None:
        """End the pod's PID namespace (the kernel kills whatever still runs in it)."""
        pause = sandbox.get("pid_ns") or {}
        if pause.get("pid") and _alive(int(pause["pid"]), pause.get("proc_start", "")):
            with contextlib.suppress(ProcessLookupError):
                os.kill(int(pause["pid"]), signal.SIGKILL)

    def _mount_targets(self, *, but: str) -> set[str]:
        """Where the containers of other sandboxes have volumes mounted."""
        out = set()
        for cdir in (self.root / "containers").iterdir():
            config = _read_json(cdir / "config.json") or {}
            if config.get("sandbox_id") != but and config.get("isolate"):
                out.update(target for _, target, _ in config["isolate"].get("mounts") or [])
        return out

    async def list_pod_sandboxes(self) -> Sequence[SandboxStatus]:
        out = []
        for sdir in (self.root / "sandboxes").iterdir():
            doc = _read_json(sdir / "sandbox.json")
            if doc:
                out.append(SandboxStatus(doc["id"], doc["uid"], doc["namespace"], doc["name"], doc["ip"],
                                         SandboxState(doc["state"]), doc["created_at"]))
        return sorted(out, key=lambda s: s.created_at)

    def _pod_log_dir(self, sandbox: dict[str, Any]) -> Path:
        return self.root / "logs" / f"{sandbox['namespace']}_{sandbox['name']}_{sandbox['uid']}"

    # --- containers --------------------------------------------------------------------------
    async def create_container(self, sandbox_id: str, config: ContainerConfig) -> str:
        sandbox = self._sandbox(sandbox_id)
        cid = uuid.uuid4().hex + uuid.uuid4().hex
        cdir = self.root / "containers" / cid
        cdir.mkdir()
        bindir = self._image_bin(config.image)
        argv = image_argv(bindir, list(config.command) + list(config.args))
        standin = standin_for(config.image)
        if not argv and standin is not None:  # the image's own server, as nginx/httpd would run it
            argv = standin_argv(standin, sandbox.get("ip") or "127.0.0.1", (m.container_path for m in config.mounts))
        argv = argv or list(PLACEHOLDER)
        env = {"PATH": f"{bindir}:{DEFAULT_PATH}", **config.env}
        cwd = config.working_dir or str(self.root / "pods" / sandbox["uid"])
        log_path = self._pod_log_dir(sandbox) / config.name / f"{config.attempt}.log"
        isolate = None
        if os.geteuid() == 0:  # private mount and UTS namespaces need root (see shim.py)
            mountpoints.prepare(config.mounts, self.root / "sandboxes" / sandbox_id)
            sandbox = await self._ensure_pause(sandbox)
            isolate = {"hostname": sandbox.get("hostname") or sandbox["name"], "pid_ns": self._pod_pid_ns(sandbox),
                       "mounts": [[m.host_path, m.container_path, m.read_only] for m in
                                  sorted(config.mounts, key=lambda m: m.container_path.rstrip("/").count("/"))]}
        _write_json(cdir / "config.json", {"isolate": isolate,
            "id": cid, "sandbox_id": sandbox_id, "name": config.name, "image": config.image,
            "attempt": config.attempt, "created_at": time.time(), "argv": argv, "env": env, "cwd": cwd,
            "log_path": str(log_path), "stdin": config.stdin, "stdin_once": config.stdin_once, "tty": config.tty})
        return cid

    def _image_bin(self, image: str) -> Path:
        tools = image_tools(image)
        bindir = self.root / "images" / (image.replace("/", "_").replace(":", "_") or "none") / "bin"
        bindir.mkdir(parents=True, exist_ok=True)
        for name, target in tools.items():
            link = bindir / name
            if not link.exists():
                link.symlink_to(target)
        return bindir

    def _cdir(self, container_id: str) -> Path:
        cdir = self.root / "containers" / container_id
        if not (cdir / "config.json").exists():
            raise NotFound(f"container {container_id} not found")
        return cdir

    async def start_container(self, container_id: str) -> None:
        cdir = self._cdir(container_id)
        if (cdir / "state.json").exists() or (cdir / "exit.json").exists():
            return
        launcher = await asyncio.create_subprocess_exec(
            sys.executable, "-I", str(SHIM), str(cdir), stdin=asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.DEVNULL, start_new_session=True)
        await launcher.wait()
        deadline = time.monotonic() + START_TIMEOUT_SECONDS
        while not (cdir / "state.json").exists():
            exit_doc = _read_json(cdir / "exit.json")
            if exit_doc is not None:
                raise RuntimeServiceError(exit_doc.get("message") or "container exited before it started")
            if time.monotonic() > deadline:
                raise RuntimeServiceError("timed out waiting for the container shim")
            await asyncio.sleep(POLL_SECONDS)
        problem = self.isolation_problem(container_id)
        if problem:
            log.warning("container %s runs without its own mount/UTS namespaces: %s", container_id, problem)

    def container_pid(self, container_id: str) -> int | None:
        """The container's main process (its own process group leader), for resource stats."""
        state = _read_json(self.root / "containers" / container_id / "state.json") or {}
        return int(state["pid"]) if state.get("pid") else None

    def isolation_problem(self, container_id: str) -> str:
        """Why a started container is not isolated (its mounts and hostname were skipped), or ""."""
        cdir = self.root / "containers" / container_id
        state = _read_json(cdir / "state.json") or {}
        if state.get("isolated"):
            return ""
        if state.get("isolation_problem"):
            return str(state["isolation_problem"])
        if (_read_json(cdir / "config.json") or {}).get("isolate") is None:
            return "the kubelet does not run as root"
        return ""

    def pid_namespace_problem(self, container_id: str) -> str:
        """Why a container of a `shareProcessNamespace` pod does not share its pod's PID namespace, or ""."""
        config = _read_json(self.root / "containers" / container_id / "config.json") or {}
        sandbox = _read_json(self.root / "sandboxes" / str(config.get("sandbox_id")) / "sandbox.json") or {}
        if "pid_ns" not in sandbox:
            return ""
        problem = str(sandbox["pid_ns"].get("problem") or "")
        if not problem and not (config.get("isolate") or {}).get("pid_ns"):
            problem = self.isolation_problem(container_id) or "the pod's pause process is gone"
        return problem

    async def stop_container(self, container_id: str, *, timeout: float) -> None:
        cdir = self.root / "containers" / container_id
        state = _read_json(cdir / "state.json")
        if state is None or (cdir / "exit.json").exists():
            return
        pid = int(state["pid"])
        self._signal(pid, state, signal.SIGTERM)
        if await self._wait_exit(cdir, state, timeout):
            return
        self._signal(pid, state, signal.SIGKILL)
        await self._wait_exit(cdir, state, 10.0)

    @staticmethod
    def _signal(pid: int, state: dict[str, Any], sig: signal.Signals) -> None:
        if not _alive(pid, state.get("proc_start", "")):
            return
        try:
            os.killpg(pid, sig)
        except ProcessLookupError:
            pass
        except PermissionError:
            os.kill(pid, sig)

    async def _wait_exit(self, cdir: Path, state: dict[str, Any], timeout: float) -> bool:
        deadline = time.monotonic() + timeout
        while True:
            if (cdir / "exit.json").exists() or not _alive(int(state["shim_pid"])):
                return True
            if time.monotonic() >= deadline:
                return False
            await asyncio.sleep(POLL_SECONDS)

    async def remove_container(self, container_id: str) -> None:
        cdir = self.root / "containers" / container_id
        if not cdir.exists():
            return
        await self.stop_container(container_id, timeout=0)
        shutil.rmtree(cdir, ignore_errors=True)

    async def list_containers(self, *, sandbox_id: str | None = None) -> Sequence[ContainerStatus]:
        out = []
        for cdir in (self.root / "containers").iterdir():
            status = self._status(cdir)
            if status is not None and (sandbox_id is None or status.sandbox_id == sandbox_id):
                out.append(status)
        return sorted(out, key=lambda c: c.created_at or 0.0)

    def _status(self, cdir: Path) -> ContainerStatus | None:
        config = _read_json(cdir / "config.json")
        if config is None:
            return None
        state, exit_doc = _read_json(cdir / "state.json"), _read_json(cdir / "exit.json")
        base = dict(id=config["id"], sandbox_id=config["sandbox_id"], name=config["name"], image=config["image"],
                    attempt=config["attempt"], created_at=config["created_at"], log_path=config["log_path"],
                    started_at=(state or {}).get("started_at"))
        if exit_doc is not None:
            return ContainerStatus(state=ContainerState.EXITED, exit_code=exit_doc["exit_code"],
                                   finished_at=exit_doc["finished_at"], reason=exit_doc.get("reason", ""),
                                   message=exit_doc.get("message", ""), **base)
        if state is None:
            return ContainerStatus(state=ContainerState.CREATED, **base)
        if not _alive(int(state["shim_pid"])) and not (cdir / "exit.json").exists():
            # the shim died with the machine or was killed: the exit code is lost
            return ContainerStatus(state=ContainerState.EXITED, exit_code=255, finished_at=time.time(),
                                   reason="Unknown", message="the container's shim is gone", **base)
        return ContainerStatus(state=ContainerState.RUNNING, **base)

    async def container_events(self) -> AsyncIterator[ContainerStatus]:
        """Exits, noticed by polling the shims' files (cheap stat calls); a container that
        exits between two polls is reported too."""
        reported: set[str] | None = None
        while True:
            exited = {c.id: c for c in await self.list_containers() if c.state is ContainerState.EXITED}
            if reported is not None:
                for cid in exited.keys() - reported:
                    yield exited[cid]
            reported = set(exited)
            await asyncio.sleep(EVENT_POLL_SECONDS)

    async def container_logs(self, container_id: str, *, follow: bool) -> AsyncIterator[bytes]:
        cdir = self._cdir(container_id)
        config = _read_json(cdir / "config.json") or {}
        path = Path(config["log_path"])
        offset = 0
        while True:
            chunk = b""
            if path.exists():
                with path.open("rb") as f:
                    f.seek(offset)
                    chunk = f.read()
            if chunk:
                offset += len(chunk)
                yield chunk
                continue
            if not follow or (cdir / "exit.json").exists() or not cdir.exists():
                return
            await asyncio.sleep(POLL_SECONDS * 4)

    async def exec_sync(self, container_id: str, cmd: Sequence[str], *, timeout: float) -> ExecResult:
        config = _read_json(self._cdir(container_id) / "config.json") or {}
        state = _read_json(self._cdir(container_id) / "state.json") or {}
        cwd, enter = config.get("cwd") or None, None
        if state.get("isolated"):  # run where the container runs: its volumes and hostname
            cwd, enter = None, nsenter.preexec(int(state["pid"]), config.get("cwd") or "/")
        try:
            proc = await asyncio.create_subprocess_exec(
                *cmd, env=config.get("env"), cwd=cwd, stdin=asyncio.subprocess.DEVNULL, preexec_fn=enter,
                stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE, start_new_session=True)
        except OSError as exc:
            return ExecResult(126, b"", f"exec: {cmd[0] if cmd else ''}: {exc.strerror}".encode())
        except subprocess.SubprocessError:  # the container ended before we could enter it
            return ExecResult(126, b"", b"cannot exec in a stopped container")
        try:
            async with asyncio.timeout(timeout):
                out, err = await proc.communicate()
        except TimeoutError:
            proc.kill()
            await proc.wait()
            raise
        return ExecResult(proc.returncode or 0, out, err)

    async def exec(self, container_id: str, cmd: Sequence[str], *, stdin: bool, tty: bool,
                   size: tuple[int, int] | None = None) -> StreamSession:
        """`cmd` as a local process with the container's environment, working directory and (when
        isolated) namespaces, on a pseudo-terminal when `tty` (see `streams.ExecSession`)."""
        config = self._running_config(container_id)
        state = _read_json(self._cdir(container_id) / "state.json") or {}
        cwd, enter = config.get("cwd") or None, None
        if state.get("isolated"):  # run where the container runs: its volumes and hostname
            cwd, enter = None, nsenter.preexec(int(state["pid"]), config.get("cwd") or "/")
        return await ExecSession.start(cmd, env=config.get("env"), cwd=cwd, stdin=stdin, tty=tty, enter=enter,
                                       size=size)

    async def attach(self, container_id: str, *, stdin: bool, tty: bool) -> StreamSession:
        """Connects to the shim's attach socket (see `shim.py`)."""
        self._running_config(container_id)
        return await AttachSession.connect(attach_address(container_id), stdin=stdin)

    def _running_config(self, container_id: str) -> dict[str, Any]:
        cdir = self._cdir(container_id)
        status = self._status(cdir)
        if status is None or status.state is not ContainerState.RUNNING:
            raise NotFound(f"container {container_id} is not running")
        return _read_json(cdir / "config.json") or {}

    # --- images ------------------------------------------------------------------------------
    async def pull_image(self, image: str) -> int:
        self._image_bin(image)
        return 0

    async def image_exists(self, image: str) -> bool:
        return True

    async def aclose(self, *, stop: bool = False) -> None:
        if self._closed:
            return
        self._closed = True
        if stop:  # in parallel: `up` gives a stopping component 5 s before SIGKILL
            running = [c for c in await self.list_containers() if c.state is ContainerState.RUNNING]
            await asyncio.gather(*(self.stop_container(c.id, timeout=2.0) for c in running))
            for sdir in (self.root / "sandboxes").iterdir():  # and the pods' pause processes
                self._stop_pause(_read_json(sdir / "sandbox.json") or {})
