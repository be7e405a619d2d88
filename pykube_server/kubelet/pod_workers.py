"""Pod workers: one sequential, level-triggered worker per pod bound to this node.

Why this shape: the kubelet's `podWorkers` give each pod one goroutine so that a slow pod
never blocks another and no two syncs of one pod overlap. Here each pod gets one task in the
`PodWorkers` TaskGroup that sleeps until woken (the pod changed in the API, a container
changed in the runtime, a probe result changed, a back-off ran out, or the 10 s resync), then
compares desired (the pod) with actual (the runtime) and acts:

1. pod gone from the API: stop and remove everything, release the IP, end;
2. pod has `deletionTimestamp`: `Killing` each running container (SIGTERM, SIGKILL after the
   grace period), write the terminal status (Succeeded if every container exited 0, else
   Failed), remove the sandbox, then DELETE the pod with gracePeriodSeconds=0 (uid
   precondition) as the real status manager does;
3. pod terminal: keep things as they are (logs stay readable) until it is deleted. A terminal
   phase is final: when a client (or an earlier kubelet) set it in the API, whatever still runs
   is stopped and the phase kept, never written back to Running (the DaemonSet controller
   replaces such pods);
4. pod past `spec.activeDeadlineSeconds` since `status.startTime`: a Normal DeadlineExceeded
   event, phase Failed with reason DeadlineExceeded written, then its containers killed;
5. otherwise: a sandbox with an IP; init containers one by one, each to success; then every
   container, restarted per restartPolicy with the back-off (CrashLoopBackOff while waiting);
   probes per running container; liveness/startup failures kill the container;
6. write `pods/<name>/status` when the computed status changed.

Events are the kubelet's: Pulling, Pulled, Created, Started, Killing, BackOff, Failed,
Unhealthy, with the real messages and `spec.containers{name}` field paths.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import time
from collections.abc import Awaitable, Callable, Iterable, Sequence

from pykube_server.api import errors
from pykube_server.api.types import Obj
from pykube_server.client.clock import Timer
from pykube_server.client.events import NORMAL, WARNING
from pykube_server.client.rest import PODS, TransportError
from pykube_server.kubelet import admission
from pykube_server.kubelet import status as podstatus
from pykube_server.kubelet import termination
from pykube_server.kubelet.backoff import go_duration
from pykube_server.kubelet.context import NodeContext
from pykube_server.kubelet.env import EnvError, container_env, expand
from pykube_server.kubelet.network import PodNetwork
from pykube_server.kubelet.probes import LIVENESS, READINESS, SPEC_FIELDS, STARTUP, Prober, ProbeResults
from pykube_server.kubelet.runtime import (
    ContainerConfig, ContainerState, ContainerStatus, IsolatingRuntime, Mount, PidSharingRuntime, RuntimeServiceError,
    SandboxConfig, SandboxState,
)
from pykube_server.kubelet.runtimes.standins import standin_for
from pykube_server.kubelet.volumes import MountError, MountedVolume, SetupResult

log = logging.getLogger(__name__)

RESYNC_SECONDS = 10.0
TERMINAL_PHASES = ("Succeeded", "Failed")
DEADLINE_REASON = "DeadlineExceeded"
DEADLINE_MESSAGE = "Pod was active on the node longer than the specified deadline"
"""The kubelet's activeDeadlineHandler: event reason and the pod status reason/message."""
RETRY_SECONDS = 1.0
MOUNT_RETRY_FIRST_SECONDS = 0.5
MOUNT_RETRY_MAX_SECONDS = 122.0
"""The volume manager's retry back-off (500 ms doubling to 2m2s)."""


def _pod_ref(pod: Obj) -> str:
    meta = pod["metadata"]
    return f"{meta['name']}_{meta['namespace']}({meta['uid']})"


def should_restart(policy: str, exit_code: int | None) -> bool:
    return policy == "Always" or (policy == "OnFailure" and exit_code != 0)


class PodWorker:
    def __init__(self, ctx: NodeContext, pod: Obj) -> None:
        self.ctx = ctx
        self.pod = pod
        self.uid: str = pod["metadata"]["uid"]
        self.removed = False
        self.done = False
        self._wake = asyncio.Event()
        self._wake.set()
        self._timer: Timer | None = None
        self._due = 0.0
        self._last_all_succeeded = False
        self._sandbox_id = ""
        self._ip = ""
        self._written: Obj | None = None
        self._waiting: dict[str, tuple[str, str]] = {}
        self._messages: dict[str, str] = {}
        """Container id -> termination message read once it exited (the file may go with the pod)."""
        self._probes: dict[str, tuple[ProbeResults, list[asyncio.Task[None]]]] = {}
        self._start_time = (pod.get("status") or {}).get("startTime") or ""
        self._tg: asyncio.TaskGroup | None = None
        self._volumes: dict[str, MountedVolume] = {}
        self._volumes_reported: SetupResult | None = None
        self._mount_retry = 0.0
        self._warned_once: set[str] = set()

    # --- driving -----------------------------------------------------------------------------
    def update(self, pod: Obj | None) -> None:
        if pod is None:
            self.removed = True
        elif pod["metadata"].get("uid") == self.uid:
            self.pod = pod
        self.wake()

    def wake(self) -> None:
        self._wake.set()

    def wake_after(self, seconds: float) -> None:
        """Sync again after `seconds` (an earlier pending wake-up is kept)."""
        now = self.ctx.clock.now()
        due = now + seconds
        if self._timer is not None and now < self._due <= due:
            return
        if self._timer is not None:
            self._timer.cancel()
        self._timer, self._due = self.ctx.clock.call_later(seconds, self.wake), due

    async def run(self) -> None:
        async with asyncio.TaskGroup() as tg:
            self._tg = tg
            while not self.done:
                await self._wake.wait()
                self._wake.clear()
                try:
                    await self.sync()
                except (TransportError, errors.StatusError, RuntimeServiceError) as exc:
                    log.warning("pod %s: sync failed: %s; retrying", _pod_ref(self.pod), exc)
                    self.wake_after(RETRY_SECONDS)
                except Exception:  # one pod's bug must not stop the node's other pods
                    log.exception("pod %s: sync failed; retrying", _pod_ref(self.pod))
                    self.wake_after(RESYNC_SECONDS)
                if not self.done:
                    self.wake_after(RESYNC_SECONDS)
            self._stop_probes(keep=())
        if self._timer is not None:
            self._timer.cancel()

    # --- one sync ----------------------------------------------------------------------------
    async def sync(self) -> None:
        await self._find_sandbox()
        if self.removed:
            await self._teardown()
            self.done = True
            return
        if self.pod["metadata"].get("deletionTimestamp"):
            await self._terminate()
            return
        if self._written is not None and self._written.get("phase") in TERMINAL_PHASES:
            return  # we ended it: logs stay readable until deletion
        api_phase = (self.pod.get("status") or {}).get("phase")
        if api_phase in TERMINAL_PHASES:
            await self._end(api_phase)  # ended in the API (by a client, or before we restarted)
            return
        left = self._deadline_left()
        if left is not None and left <= 0:
            self._pod_event(NORMAL, DEADLINE_REASON, DEADLINE_MESSAGE)
            await self._end("Failed", reason=DEADLINE_REASON, message=DEADLINE_MESSAGE)
            return
        await self._sync_running()
        left = self._deadline_left()
        if left is not None:
            self.wake_after(max(left, 0.0) + 0.01)

    async def _sync_running(self) -> None:
        if not await self._setup_volumes():
            await self._write_status()
            return
        await self._ensure_sandbox()
        containers = list(await self.ctx.runtime.list_containers(sandbox_id=self._sandbox_id))
        init_ok, failed = await self._sync_init(containers)
        if init_ok and not failed:
            await self._sync_containers(containers)
        if not failed:
            await self._sync_ephemeral(containers)
        await self._write_status(phase="Failed" if failed else None)

    def _deadline_left(self) -> float | None:
        """Seconds until `activeDeadlineSeconds` runs out (counted from startTime, as the
        kubelet's activeDeadlineHandler does), or None without a deadline or a start."""
        seconds = (self.pod.get("spec") or {}).get("activeDeadlineSeconds")
        start = self._start_time or (self.pod.get("status") or {}).get("startTime")
        if seconds is None or not start:
            return None
        return podstatus.parse_rfc3339(start) + float(seconds) - self.ctx.wall()

    async def _end(self, phase: str, *, reason: str = "", message: str = "") -> None:
        """Stop a pod whose phase is terminal and report it with that phase, as the kubelet's
        syncPod does for a Failed pod: the status first, then the containers are killed (with
        the pod's grace period), then the final container states. Nothing runs and nothing was
        reported by us (a kubelet restarted after the pod ended): leave it as it is."""
        running = [c for c in await self.ctx.runtime.list_containers(sandbox_id=self._sandbox_id)
                   if self._sandbox_id and c.state is ContainerState.RUNNING]
        if not running and self._written is None:
            return
        self._stop_probes(keep=())
        if running:
            await self._write_status(phase=phase, terminal=True, reason=reason, message=message)
            specs = {c["name"]: c for c in self._all_specs()}
            for c in running:
                self._event(NORMAL, "Killing", f"Stopping container {c.name}", specs.get(c.name, {"name": c.name}))
            grace = self._grace()
            await asyncio.gather(*(self.ctx.runtime.stop_container(c.id, timeout=grace) for c in running))
        await self._write_status(phase=phase, terminal=True, reason=reason, message=message)

    async def _find_sandbox(self) -> None:
        if self._sandbox_id:
            return
        for sandbox in await self.ctx.runtime.list_pod_sandboxes():
            if sandbox.uid == self.uid and sandbox.state is SandboxState.READY:
                if not await self.ctx.net.check_pod_network(self._network_ref(), (sandbox.ip,)):
                    log.warning("pod %s: the network plugin refused sandbox %s's IP %s; making a new sandbox",
                                _pod_ref(self.pod), sandbox.id, sandbox.ip)
                    await self.ctx.runtime.remove_pod_sandbox(sandbox.id)
                    await self.ctx.net.teardown_pod_network(self._network_ref(), (sandbox.ip,))
                    continue
                self._sandbox_id, self._ip = sandbox.id, sandbox.ip

    def _network_ref(self) -> PodNetwork:
        meta = self.pod["metadata"]
        return PodNetwork(self.uid, meta.get("namespace", ""), meta.get("name", ""))

    async def _ensure_sandbox(self) -> None:
        if self._sandbox_id:
            return
        meta, spec = self.pod["metadata"], self.pod.get("spec") or {}
        ips = await self.ctx.net.setup_pod_network(self._network_ref())
        ip = ips[0] if ips else ""
        try:
            self._sandbox_id = await self.ctx.runtime.run_pod_sandbox(SandboxConfig(
                uid=self.uid, namespace=meta["namespace"], name=meta["name"], ip=ip,
                hostname=spec.get("hostname") or meta["name"], labels=meta.get("labels") or {},
                annotations=meta.get("annotations") or {},
                share_process_namespace=bool(spec.get("shareProcessNamespace"))))
        except BaseException:
            await self.ctx.net.teardown_pod_network(self._network_ref(), ips)
            raise
        self._ip = ip
        if not self._start_time:
            self._start_time = podstatus.rfc3339(self.ctx.clock.wall())

    # --- volumes -----------------------------------------------------------------------------
    async def _setup_volumes(self) -> bool:
        """Volumes present and current (the real kubelet waits for them before the sandbox);
        False while one that was never set up fails (the pod stays in ContainerCreating)."""
        manager = self.ctx.volumes
        spec = self.pod.get("spec") or {}
        if manager is None or not spec.get("volumes"):
            return True
        result = await manager.setup(self.pod)
        self._volumes = result.volumes
        if result is not self._volumes_reported:  # a cached result was reported already
            self._volumes_reported = result
            for name, message in result.mount_failures:
                self._pod_event(WARNING, "FailedMount", f'MountVolume.SetUp failed for volume "{name}" : {message}')
            if result.process_failures:
                self._pod_event(WARNING, "FailedMount",
                                result.attach_message(v.get("name", "") for v in spec.get("volumes") or []))
            for name in result.token_unavailable:
                self._warn_once(f"token/{name}", "FailedMount",
                                f'MountVolume.SetUp skipped the token of volume "{name}": the API server does not '
                                f"serve serviceaccounts/token, so the token file is left out")
        if not result.blocking:
            self._mount_retry = 0.0
            return True
        self._mount_retry = min(max(self._mount_retry * 2, MOUNT_RETRY_FIRST_SECONDS), MOUNT_RETRY_MAX_SECONDS)
        self.wake_after(self._mount_retry)
        return False

    def _mounts(self, spec: Obj, env: dict[str, str]) -> tuple[Mount, ...]:
        # the pod's resolv.conf and hosts first, so a volume mounted over them wins
        dns = self.ctx.dns.container_mounts(self.pod, self._ip, spec) if self.ctx.dns is not None else ()
        if self.ctx.volumes is None:
            return dns
        try:
            return dns + self.ctx.volumes.container_mounts(spec, self._volumes, env)
        except MountError as exc:
            raise EnvError(str(exc)) from None

    def _check_isolation(self, cid: str, mounts: tuple[Mount, ...], spec: Obj, init: bool) -> None:
        """Say so (once per pod) when a container could not get its own mounts and hostname."""
        runtime = self.ctx.runtime
        if isinstance(runtime, PidSharingRuntime) and (self.pod.get("spec") or {}).get("shareProcessNamespace"):
            shared = runtime.pid_namespace_problem(cid)
            if shared:
                self._warn_once("pid-namespace", "PIDNamespaceUnavailable",
                                f"containers of this pod do not share a PID namespace ({shared})")
        if not isinstance(runtime, IsolatingRuntime):
            return
        problem = runtime.isolation_problem(cid)
        if not problem:
            return
        skipped = f"volumes not mounted at {', '.join(m.container_path for m in mounts)}; " if mounts else ""
        log.warning("pod %s: container %s is not isolated (%s)", _pod_ref(self.pod), spec.get("name"), problem)
        self._warn_once("isolation", "IsolationUnavailable",
                        f"container {spec.get('name', '')} runs without its own mount and UTS namespaces "
                        f"({problem}): {skipped}hostname not set to the pod's", spec=spec, init=init)

    def _warn_once(self, key: str, reason: str, message: str, *, spec: Obj | None = None,
                   init: bool | None = None) -> None:
        if key in self._warned_once:
            return
        self._warned_once.add(key)
        if spec is None:
            self._pod_event(WARNING, reason, message)
        else:
            self._event(WARNING, reason, message, spec, init=init)

    def _pod_event(self, type: str, reason: str, message: str) -> None:
        self.ctx.recorder.event(self.pod, type, reason, message)

    # --- containers --------------------------------------------------------------------------
    @staticmethod
    def _instances(containers: Sequence[ContainerStatus], name: str) -> list[ContainerStatus]:
        return sorted((c for c in containers if c.name == name), key=lambda c: c.attempt)

    async def _sync_init(self, containers: list[ContainerStatus]) -> tuple[bool, bool]:
        """(all init containers succeeded, the pod failed for good)."""
        policy = (self.pod.get("spec") or {}).get("restartPolicy", "Always")
        for spec in (self.pod.get("spec") or {}).get("initContainers") or []:
            instances = self._instances(containers, spec["name"])
            current = instances[-1] if instances else None
            if current is not None and current.state is ContainerState.EXITED and current.exit_code == 0:
                continue
            if current is None:
                await self._start(spec, 0, init=True)
            elif current.state is ContainerState.EXITED:
                if policy == "Never":
                    return False, True
                await self._restart(spec, current, init=True)
            return False, False
        return True, False

    async def _sync_containers(self, containers: list[ContainerStatus]) -> None:
        policy = (self.pod.get("spec") or {}).get("restartPolicy", "Always")
        for spec in (self.pod.get("spec") or {}).get("containers") or []:
            instances = self._instances(containers, spec["name"])
            current = instances[-1] if instances else None
            if current is None:
                await self._start(spec, 0, init=False)
                continue
            if current.state is ContainerState.RUNNING:
                self._waiting.pop(spec["name"], None)
                current = await self._check_liveness(spec, current)
            if current.state is ContainerState.EXITED and should_restart(policy, current.exit_code):
                await self._restart(spec, current, init=False)
        self._sync_probes([c for c in await self.ctx.runtime.list_containers(sandbox_id=self._sandbox_id)
                           if c.state is ContainerState.RUNNING])

    async def _sync_ephemeral(self, containers: list[ContainerStatus]) -> None:
        """Start each ephemeral container once, in the pod's sandbox, even while init containers
        run (kubelet's computePodActions); one that exited is never restarted."""
        for spec in (self.pod.get("spec") or {}).get("ephemeralContainers") or []:
            if not self._instances(containers, spec["name"]):
                await self._start(spec, 0, init=False)

    async def _check_liveness(self, spec: Obj, current: ContainerStatus) -> ContainerStatus:
        results = self._probes.get(current.id, (None, []))[0]
        if results is None or not (results.liveness_failed or results.startup_failed):
            return current
        kind = "liveness" if results.liveness_failed else "startup"
        self._event(NORMAL, "Killing", f"Container {spec['name']} failed {kind} probe, will be restarted", spec)
        await self.ctx.runtime.stop_container(current.id, timeout=self._grace())
        for c in await self.ctx.runtime.list_containers(sandbox_id=self._sandbox_id):
            if c.id == current.id:
                return c
        return current

    async def _restart(self, spec: Obj, current: ContainerStatus, *, init: bool) -> None:
        key = f"{self.uid}/{spec['name']}"
        now = self.ctx.wall()
        left = self.ctx.backoff.remaining(key, finished_at=current.finished_at or now, now=now)
        if left > 0:
            delay = self.ctx.backoff.delay(key)
            message = f"back-off {go_duration(delay)} restarting failed container={spec['name']} pod={_pod_ref(self.pod)}"
            if self._waiting.get(spec["name"], ("",))[0] != "CrashLoopBackOff":
                self._event(WARNING, "BackOff", f"Back-off restarting failed container {spec['name']} in pod "
                                                f"{_pod_ref(self.pod)}", spec, init=init)
            self._waiting[spec["name"]] = ("CrashLoopBackOff", message)
            self.wake_after(left + 0.01)
            return
        self.ctx.backoff.next(key, now=now)
        await self._start(spec, current.attempt + 1, init=init)
        await self._prune(spec["name"])

    async def _prune(self, name: str) -> None:
        """Keep the newest two instances of a container (current and lastState)."""
        instances = self._instances(await self.ctx.runtime.list_containers(sandbox_id=self._sandbox_id), name)
        for old in instances[:-2]:
            await self.ctx.runtime.remove_container(old.id)
            self._messages.pop(old.id, None)

    async def _start(self, spec: Obj, attempt: int, *, init: bool) -> None:
        name, image = spec["name"], spec.get("image", "")
        try:
            env = await container_env(self._pod_with_ips(), spec, services=self._services(), getter=self.ctx.getter,
                                      allocatable=self.ctx.allocatable)
            mounts = self._mounts(spec, env)
            if self.ctx.volumes is not None:  # the termination-log file, bound over whatever else is there
                extra = termination.mount(spec, self.ctx.volumes.pod_dir(self.uid), attempt)
                mounts += (extra,) if extra is not None else ()
        except EnvError as exc:
            if self._waiting.get(name, ("",))[0] != "CreateContainerConfigError":
                self._event(WARNING, "Failed", f"Error: {exc}", spec, init=init)
            self._waiting[name] = ("CreateContainerConfigError", str(exc))
            self.wake_after(RESYNC_SECONDS)
            return
        await self._pull(spec, init=init)
        config = ContainerConfig(name=name, image=image,  # `$(VAR)` in command and args, as kubelet expands them
                                 command=tuple(expand(c, env) for c in spec.get("command") or ()),
                                 args=tuple(expand(a, env) for a in spec.get("args") or ()), env=env,
                                 working_dir=spec.get("workingDir") or "", attempt=attempt,
                                 annotations=self.pod["metadata"].get("annotations") or {}, mounts=mounts,
                                 stdin=bool(spec.get("stdin")), stdin_once=bool(spec.get("stdinOnce")),
                                 tty=bool(spec.get("tty")))
        cid = await self.ctx.runtime.create_container(self._sandbox_id, config)
        self._waiting.pop(name, None)
        self._event(NORMAL, "Created", f"Created container: {name}", spec, init=init)
        if (not config.command and not config.args and self.ctx.runtime.name == "pykube"
                and standin_for(image) is None):  # nginx/httpd get a stand-in server instead
            self._event(WARNING, "NoCommand", f'container "{name}" has neither command nor args and image '
                        f'"{image}" is not pulled: running a placeholder that waits until stopped', spec, init=init)
        try:
            await self.ctx.runtime.start_container(cid)
        except RuntimeServiceError as exc:
            self._event(WARNING, "Failed", f"Error: {exc}", spec, init=init)
            return
        self._event(NORMAL, "Started", f"Started container {name}", spec, init=init)
        self._check_isolation(cid, mounts, spec, init)

    def _pod_with_ips(self) -> Obj:
        """The pod as the downward API sees it at container start (IPs known before status is written)."""
        host = self.ctx.host_ip
        status = {**(self.pod.get("status") or {}), "podIP": self._ip, "podIPs": [{"ip": self._ip}],
                  "hostIP": host, "hostIPs": [{"ip": host}]}
        return {**self.pod, "status": status}

    async def _pull(self, spec: Obj, *, init: bool) -> None:
        image = spec.get("image", "")
        policy = spec.get("imagePullPolicy") or "IfNotPresent"
        if policy != "Always" and await self.ctx.runtime.image_exists(image):
            self._event(NORMAL, "Pulled", f'Container image "{image}" already present on machine', spec, init=init)
            return
        self._event(NORMAL, "Pulling", f'Pulling image "{image}"', spec, init=init)
        began = time.monotonic()
        size = await self.ctx.runtime.pull_image(image)
        took = f"{(time.monotonic() - began) * 1000:.0f}ms"
        self._event(NORMAL, "Pulled", f'Successfully pulled image "{image}" in {took} ({took} including waiting). '
                                      f"Image size: {size} bytes.", spec, init=init)

    def _services(self) -> Iterable[Obj]:
        spec = self.pod.get("spec") or {}
        return self.ctx.services(self.pod["metadata"]["namespace"], spec.get("enableServiceLinks", True) is not False)

    # --- probes ------------------------------------------------------------------------------
    def _sync_probes(self, running: list[ContainerStatus]) -> None:
        specs = {c["name"]: c for c in (self.pod.get("spec") or {}).get("containers") or []}
        for c in running:
            if c.id in self._probes or c.name not in specs:
                continue
            spec = specs[c.name]
            results = ProbeResults(started=not spec.get("startupProbe"), ready=False)
            tasks = []
            for kind in (STARTUP, LIVENESS, READINESS):
                probe = spec.get(SPEC_FIELDS[kind])
                if probe and self._tg is not None:
                    results.has.add(kind)
                    prober = Prober(kind, probe, container=spec, container_id=c.id, pod_ip=self._ip,
                                    runtime=self.ctx.runtime, results=results, on_change=self.wake,
                                    on_failure=lambda k, out, s=spec: self._unhealthy(k, out, s), clock=self.ctx.clock)
                    tasks.append(self._tg.create_task(prober.run()))
            self._probes[c.id] = (results, tasks)
        self._stop_probes(keep={c.id for c in running})

    def _stop_probes(self, keep: Iterable[str]) -> None:
        keep = set(keep)
        for cid in [cid for cid in self._probes if cid not in keep]:
            for task in self._probes.pop(cid)[1]:
                task.cancel()

    def _unhealthy(self, kind: str, output: str, spec: Obj) -> None:
        self._event(WARNING, "Unhealthy", f"{kind} probe failed: {output}", spec)

    # --- termination -------------------------------------------------------------------------
    def _grace(self) -> float:
        meta, spec = self.pod["metadata"], self.pod.get("spec") or {}
        grace = meta.get("deletionGracePeriodSeconds")
        if grace is None:
            grace = spec.get("terminationGracePeriodSeconds", 30)
        return float(max(int(grace), 2 if grace else 0))

    async def _terminate(self) -> None:
        running = [c for c in await self.ctx.runtime.list_containers(sandbox_id=self._sandbox_id)
                   if self._sandbox_id and c.state is ContainerState.RUNNING]
        specs = {c["name"]: c for c in self._all_specs()}
        for c in running:
            self._event(NORMAL, "Killing", f"Stopping container {c.name}", specs.get(c.name, {"name": c.name}))
        self._stop_probes(keep=())
        grace = self._grace()
        await asyncio.gather(*(self.ctx.runtime.stop_container(c.id, timeout=grace) for c in running))
        await self._write_status(phase=self._terminal_phase(), terminal=True)
        await self._teardown()
        meta = self.pod["metadata"]
        try:
            await self.ctx.client.delete(PODS, meta["name"], namespace=meta["namespace"], grace_period_seconds=0,
                                         preconditions={"uid": self.uid})
        except (errors.NotFound, errors.Conflict):
            pass
        self.done = True

    def _terminal_phase(self) -> str:
        for status in (self._written, self.pod.get("status")):
            if status and status.get("phase") in TERMINAL_PHASES:
                return str(status["phase"])  # a terminal phase is final
        return "Succeeded" if self._last_all_succeeded else "Failed"

    async def _teardown(self) -> None:
        self._stop_probes(keep=())
        for sandbox in await self.ctx.runtime.list_pod_sandboxes():
            if sandbox.uid == self.uid:
                await self.ctx.runtime.remove_pod_sandbox(sandbox.id)
                await self.ctx.net.teardown_pod_network(self._network_ref(), (sandbox.ip,))
        if self.ctx.volumes is not None:
            await self.ctx.volumes.unpublish(self.uid)  # CSI volumes first: the driver's links and stage
            self.ctx.volumes.cleanup(self.uid)  # emptyDir data goes with the pod
        self.ctx.backoff.forget_prefix(f"{self.uid}/")
        self._sandbox_id = ""

    def _all_specs(self) -> list[Obj]:
        spec = self.pod.get("spec") or {}
        return (list(spec.get("initContainers") or []) + list(spec.get("containers") or [])
                + list(spec.get("ephemeralContainers") or []))

    # --- status ------------------------------------------------------------------------------
    def _views(self, specs: list[Obj], containers: Sequence[ContainerStatus]) -> list[podstatus.ContainerView]:
        views = []
        for spec in specs:
            instances = self._instances(containers, spec["name"])
            current = self._with_message(spec, instances[-1]) if instances else None
            previous = self._with_message(spec, instances[-2]) if len(instances) > 1 else None
            results = self._probes.get(current.id, (None, []))[0] if current else None
            running = current is not None and current.state is ContainerState.RUNNING
            started = running and (results is None or results.started)
            ready = started and (results is None or READINESS not in results.has or results.ready)
            views.append(podstatus.ContainerView(spec, current, previous, self._waiting.get(spec["name"]),
                                                 ready=bool(ready), started=bool(started)))
        return views

    def _with_message(self, spec: Obj, c: ContainerStatus) -> ContainerStatus:
        """An exited instance with its termination message (file or log tail), appended to the
        runtime's own message with ": " as the kubelet does."""
        if c.state is not ContainerState.EXITED or self.ctx.volumes is None:
            return c
        if c.id not in self._messages:
            self._messages[c.id] = termination.message(spec, c, self.ctx.volumes.pod_dir(self.uid))
        extra = self._messages[c.id]
        if not extra:
            return c
        return dataclasses.replace(c, message=f"{c.message}: {extra}" if c.message else extra)

    async def _write_status(self, *, phase: str | None = None, terminal: bool = False, reason: str = "",
                            message: str = "") -> None:
        containers = await self.ctx.runtime.list_containers(sandbox_id=self._sandbox_id) if self._sandbox_id else []
        spec = self.pod.get("spec") or {}
        init = self._views(list(spec.get("initContainers") or []), containers)
        main = self._views(list(spec.get("containers") or []), containers)
        if terminal:
            init = [podstatus.ContainerView(v.spec, v.current, v.previous) for v in init]
            main = [podstatus.ContainerView(v.spec, v.current, v.previous) for v in main]
        self._last_all_succeeded = bool(main) and all(v.succeeded for v in main)
        now = podstatus.rfc3339(self.ctx.clock.wall())
        status = podstatus.pod_status(self.pod, init=init, containers=main, sandbox_ready=bool(self._sandbox_id),
                                      pod_ip=self._ip, host_ip=self.ctx.host_ip, start_time=self._start_time or now,
                                      now=now, runtime=self.ctx.runtime.name, phase=phase, reason=reason,
                                      message=message)
        ephemeral = self._views(list(spec.get("ephemeralContainers") or []), containers)
        if ephemeral:  # never ready, no `started`: kubelet's prober sets those for regular containers only
            status["ephemeralContainerStatuses"] = [
                {k: v for k, v in podstatus.container_status(
                    dataclasses.replace(view, ready=False, started=False),
                    runtime=self.ctx.runtime.name).items() if k != "started"}
                for view in ephemeral]
        if status == self._written:
            return
        meta = self.pod["metadata"]
        try:
            updated = await self.ctx.client.patch(PODS, meta["name"], {"status": status}, namespace=meta["namespace"],
                                                  subresource="status")
        except errors.NotFound:
            return
        self._written = status
        if updated.get("metadata", {}).get("uid") == self.uid:
            self.pod = updated

    # --- events ------------------------------------------------------------------------------
    def _event(self, type: str, reason: str, message: str, spec: Obj, *, init: bool | None = None) -> None:
        if init is None:
            init = any(c.get("name") == spec.get("name") for c in (self.pod.get("spec") or {}).get("initContainers") or [])
        ephemeral = any(c.get("name") == spec.get("name")
                        for c in (self.pod.get("spec") or {}).get("ephemeralContainers") or [])
        kind = "ephemeralContainers" if ephemeral else "initContainers" if init else "containers"
        path = f"spec.{kind}{{{spec.get('name', '')}}}"
        self.ctx.recorder.event(self.pod, type, reason, message, field_path=path)


class PodWorkers:
    """Owns one PodWorker task per pod uid, all inside one TaskGroup."""

    def __init__(self, ctx: NodeContext) -> None:
        self.ctx = ctx
        self.workers: dict[str, PodWorker] = {}
        self._tg: asyncio.TaskGroup | None = None
        self._pending: list[Obj] = []
        self._terminated: set[str] = set()
        """Pods we stopped and asked the API to delete (a finalizer may keep them a while)."""

    def update(self, pod: Obj) -> None:
        uid = pod["metadata"].get("uid", "")
        worker = self.workers.get(uid)
        if worker is not None:
            worker.update(pod)
            return
        if uid in self._terminated:
            return
        if self._tg is None:
            self._pending.append(pod)
            return
        if self._reject(pod):
            return
        worker = self.workers[uid] = PodWorker(self.ctx, pod)
        self._tg.create_task(self._run(worker), name=f"pod-{pod['metadata'].get('name')}")

    def _reject(self, pod: Obj) -> bool:
        """canAdmitPod for a new pod: True (and the pod set Failed) when its host ports are taken."""
        meta = pod["metadata"]
        if not admission.is_active(pod) or meta.get("deletionTimestamp"):
            return False
        found = admission.rejection(pod, (w.pod for w in self.workers.values() if admission.is_active(w.pod)))
        if found is None:
            return False
        reason, message = found
        self._terminated.add(meta.get("uid", ""))
        self.ctx.recorder.event(pod, WARNING, reason, message)
        assert self._tg is not None
        self._tg.create_task(self._write_rejection(pod, admission.rejected_status(reason, message)))
        return True

    async def _write_rejection(self, pod: Obj, status: Obj) -> None:
        meta = pod["metadata"]
        try:
            await self.ctx.client.patch(PODS, meta["name"], {"status": status}, namespace=meta["namespace"],
                                        subresource="status")
        except (errors.StatusError, TransportError) as exc:
            log.warning("pod %s: writing its rejection failed: %s", _pod_ref(pod), exc)

    def remove(self, pod: Obj) -> None:
        self._terminated.discard(pod["metadata"].get("uid", ""))
        worker = self.workers.get(pod["metadata"].get("uid", ""))
        if worker is not None:
            worker.update(None)

    def wake_sandbox(self, sandbox_id: str) -> None:
        for worker in self.workers.values():
            if worker._sandbox_id == sandbox_id:
                worker.wake()

    async def _run(self, worker: PodWorker) -> None:
        try:
            await worker.run()
        finally:
            if self.workers.get(worker.uid) is worker:
                del self.workers[worker.uid]
            if not worker.removed:
                self._terminated.add(worker.uid)

    async def remove_orphans(self, known_uids: set[str]) -> None:
        """Sandboxes of pods the API no longer has (deleted while we were down): remove them."""
        for sandbox in await self.ctx.runtime.list_pod_sandboxes():
            if sandbox.uid not in known_uids and sandbox.uid not in self.workers:
                log.info("removing orphaned sandbox of pod %s/%s", sandbox.namespace, sandbox.name)
                await self.ctx.runtime.remove_pod_sandbox(sandbox.id)
        if self.ctx.volumes is not None:
            self.ctx.volumes.cleanup_orphans(known_uids | set(self.workers))

    async def run(self, ready: Callable[[], Awaitable[None]] | None = None) -> None:
        async with asyncio.TaskGroup() as tg:
            self._tg = tg
            # admitted oldest first, as HandlePodAdditions does, so a restart keeps the running ones
            for pod in sorted(self._pending, key=lambda p: p["metadata"].get("creationTimestamp") or ""):
                self.update(pod)
            self._pending.clear()
            await asyncio.Event().wait()
