"""Pod status from what the runtime reports and what the pod worker knows: pure functions.

This mirrors the kubelet's `generateAPIPodStatus`: container statuses (state waiting /
running / terminated with the real reasons, lastState, restartCount, ready, started, image
and imageID, containerID as `<runtime>://<id>`), the phase from the containers (`getPhase`:
a crash-looping container counts as stopped, so such a pod stays Running), and the
kubelet-owned conditions in the real order: PodReadyToStartContainers, Initialized, Ready,
ContainersReady, PodScheduled (readiness gates join Ready). A condition keeps its
lastTransitionTime while its status does not change.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass, replace
from datetime import datetime, timezone

from pykube_server.api.types import Obj
from pykube_server.kubelet.runtime import ContainerState, ContainerStatus

RUNNING, PENDING, SUCCEEDED, FAILED = "Running", "Pending", "Succeeded", "Failed"


def rfc3339(seconds: float | datetime) -> str:
    moment = seconds if isinstance(seconds, datetime) else datetime.fromtimestamp(seconds, timezone.utc)
    return moment.astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def normalize_image(image: str) -> str:
    """`busybox` -> `docker.io/library/busybox:latest`, as containerd reports it."""
    name, digest = (image.split("@", 1) + [""])[:2]
    first = name.split("/", 1)[0]
    if "/" not in name:
        name = f"docker.io/library/{name}"
    elif "." not in first and ":" not in first and first != "localhost":
        name = f"docker.io/{name}"
    if digest:
        return f"{name}@{digest}"
    return name if ":" in name.rsplit("/", 1)[-1] else f"{name}:latest"


def image_id(image: str) -> str:
    repo = normalize_image(image).split("@", 1)[0].rsplit(":", 1)[0]
    return f"{repo}@sha256:{hashlib.sha256(repo.encode()).hexdigest()}"


def parse_rfc3339(text: str) -> float:
    """`2026-01-02T03:04:05Z` (or with fractional seconds) -> seconds since the epoch."""
    return datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp()


@dataclass(frozen=True, slots=True)
class ContainerView:
    """One container of the pod, as the pod worker sees it."""

    spec: Obj
    current: ContainerStatus | None = None
    """The newest instance in the runtime."""
    previous: ContainerStatus | None = None
    """The instance before it (lastState)."""
    waiting: tuple[str, str] | None = None
    """(reason, message) when the kubelet holds the container back (CrashLoopBackOff...)."""
    ready: bool = False
    started: bool = False

    @property
    def name(self) -> str:
        return str(self.spec["name"])

    @property
    def succeeded(self) -> bool:
        c = self.current
        return c is not None and c.state is ContainerState.EXITED and c.exit_code == 0

    @property
    def failed(self) -> bool:
        c = self.current
        return c is not None and c.state is ContainerState.EXITED and c.exit_code != 0


def _terminated(c: ContainerStatus, runtime: str) -> Obj:
    out: Obj = {"exitCode": c.exit_code if c.exit_code is not None else 0, "reason": c.reason or
                ("Completed" if c.exit_code == 0 else "Error"),
                "startedAt": rfc3339(c.started_at) if c.started_at else None,
                "finishedAt": rfc3339(c.finished_at) if c.finished_at else None,
                "containerID": f"{runtime}://{c.id}"}
    if c.message:
        out["message"] = c.message
    return out


def _state(view: ContainerView, runtime: str, default_waiting: str) -> Obj:
    c = view.current
    if view.waiting is not None:
        reason, message = view.waiting
        return {"waiting": {"reason": reason, **({"message": message} if message else {})}}
    if c is None or c.state is ContainerState.CREATED:
        return {"waiting": {"reason": default_waiting}}
    if c.state is ContainerState.RUNNING:
        return {"running": {"startedAt": rfc3339(c.started_at or 0.0)}}
    return {"terminated": _terminated(c, runtime)}


def container_status(view: ContainerView, *, runtime: str, default_waiting: str = "ContainerCreating") -> Obj:
    c = view.current
    image = view.spec.get("image", "")
    last: Obj = {}
    if view.previous is not None and view.previous.state is ContainerState.EXITED:
        last = {"terminated": _terminated(view.previous, runtime)}
    elif view.waiting is not None and c is not None and c.state is ContainerState.EXITED:
        last = {"terminated": _terminated(c, runtime)}
    out: Obj = {"name": view.name, "state": _state(view, runtime, default_waiting), "lastState": last,
                "ready": view.ready, "restartCount": c.attempt if c else 0,
                "image": normalize_image(image), "imageID": image_id(image) if c else "",
                "started": view.started}
    if c is not None:
        out["containerID"] = f"{runtime}://{c.id}"
    return out


def _stopped(view: ContainerView, restart_policy: str) -> bool:
    return view.current is not None and view.current.state is ContainerState.EXITED


def pod_phase(*, init: Sequence[ContainerView], containers: Sequence[ContainerView], restart_policy: str) -> str:
    for view in init:
        if view.failed and restart_policy == "Never":
            return FAILED
        if not view.succeeded:
            return PENDING
    running = waiting = stopped = succeeded = 0
    for view in containers:
        c = view.current
        if c is not None and c.state is ContainerState.RUNNING and view.waiting is None:
            running += 1
        elif c is not None and c.state is ContainerState.EXITED:
            stopped += 1
            succeeded += c.exit_code == 0
        else:
            waiting += 1
    if waiting:
        return PENDING
    if running:
        return RUNNING
    if stopped:
        if restart_policy == "Always":
            return RUNNING
        if stopped == succeeded:
            return SUCCEEDED
        if restart_policy == "Never":
            return FAILED
        return RUNNING
    return PENDING


def _condition(kind: str, ok: bool, reason: str = "", message: str = "") -> Obj:
    cond: Obj = {"type": kind, "status": "True" if ok else "False", "lastProbeTime": None}
    if reason:
        cond["reason"] = reason
    if message:
        cond["message"] = message
    return cond


def conditions(pod: Obj, *, init: Sequence[ContainerView], containers: Sequence[ContainerView],
               sandbox_ready: bool, phase: str) -> list[Obj]:
    terminal = phase in (SUCCEEDED, FAILED)
    not_init = [v.name for v in init if not v.succeeded]
    if terminal and phase == SUCCEEDED:
        initialized = _condition("Initialized", True, "PodCompleted")
    elif not_init:
        initialized = _condition("Initialized", False, "ContainersNotInitialized",
                                 f"containers with incomplete status: [{' '.join(not_init)}]")
    else:
        initialized = _condition("Initialized", True)
    unready = [v.name for v in containers if not v.ready]
    if terminal:  # a failed pod's containers may still be stopping: not ready, whatever they report
        ready = _condition("ContainersReady", False, "PodFailed" if phase == FAILED else "PodCompleted")
    elif unready:
        ready = _condition("ContainersReady", False, "ContainersNotReady",
                           f"containers with unready status: [{' '.join(unready)}]")
    else:
        ready = _condition("ContainersReady", True)
    pod_ready = {**ready, "type": "Ready"}
    if ready["status"] == "True":
        pod_ready = _readiness_gates(pod) or pod_ready
    return [_condition("PodReadyToStartContainers", sandbox_ready and not terminal), initialized, pod_ready, ready,
            _condition("PodScheduled", True)]


def _readiness_gates(pod: Obj) -> Obj | None:
    present = {c.get("type"): c.get("status") for c in (pod.get("status") or {}).get("conditions") or []}
    for gate in (pod.get("spec") or {}).get("readinessGates") or []:
        kind = gate.get("conditionType", "")
        if kind not in present:
            return _condition("Ready", False, "ReadinessGatesNotReady",
                              f'corresponding condition of pod readiness gate "{kind}" does not exist.')
        if present[kind] != "True":
            return _condition("Ready", False, "ReadinessGatesNotReady",
                              f'the status of pod readiness gate "{kind}" is not "True", but {present[kind]}')
    return None


def carry_transition_times(old: Sequence[Obj], new: list[Obj], now: str) -> list[Obj]:
    """Keep lastTransitionTime for conditions whose status did not change; keep conditions
    the kubelet does not own (readiness gates' and others') as they were."""
    before = {c.get("type"): c for c in old}
    owned = {c["type"] for c in new}
    for cond in new:
        prev = before.get(cond["type"])
        same = prev is not None and prev.get("status") == cond["status"]
        cond["lastTransitionTime"] = prev.get("lastTransitionTime", now) if same and prev else now
    return new + [c for c in old if c.get("type") not in owned]


def _init_ready(view: ContainerView) -> ContainerView:
    """An init container is ready once it exited 0 (also in a terminal pod), as the kubelet's prober
    manager marks it; a sidecar (restartPolicy Always) keeps the readiness of its probes."""
    if view.spec.get("restartPolicy") == "Always":
        return view
    return replace(view, ready=view.succeeded)


def pod_status(pod: Obj, *, init: Sequence[ContainerView], containers: Sequence[ContainerView],
               sandbox_ready: bool, pod_ip: str, host_ip: str, start_time: str, now: str, runtime: str,
               phase: str | None = None, reason: str = "", message: str = "") -> Obj:
    """The whole status the kubelet writes for `pod` (`reason`/`message`: why the kubelet ended
    it, e.g. DeadlineExceeded)."""
    spec = pod.get("spec") or {}
    old = pod.get("status") or {}
    phase = phase or pod_phase(init=init, containers=containers, restart_policy=spec.get("restartPolicy", "Always"))
    conds = conditions(pod, init=init, containers=containers, sandbox_ready=sandbox_ready, phase=phase)
    status: Obj = {"phase": phase, "conditions": carry_transition_times(old.get("conditions") or [], conds, now),
                   "hostIP": host_ip, "hostIPs": [{"ip": host_ip}], "startTime": start_time,
                   "qosClass": old.get("qosClass", "BestEffort")}
    if reason:
        status["reason"] = reason
    if message:
        status["message"] = message
    if pod_ip:
        status["podIP"] = pod_ip
        status["podIPs"] = [{"ip": pod_ip}]
    initializing = any(not v.succeeded for v in init)
    if init:
        status["initContainerStatuses"] = [container_status(_init_ready(v), runtime=runtime,
                                                            default_waiting="PodInitializing") for v in init]
    status["containerStatuses"] = [
        container_status(v, runtime=runtime, default_waiting="PodInitializing" if initializing else "ContainerCreating")
        for v in containers]
    return status
