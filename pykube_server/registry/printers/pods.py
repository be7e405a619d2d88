"""The pod printer: READY, STATUS and RESTARTS exactly as kube-apiserver's `printPod` computes them.

STATUS is the part users read most, so it follows upstream step by step: start from the phase
(or `status.reason`, e.g. Evicted), override with SchedulingGated, then walk init containers
(`Init:N/M`, `Init:<reason>`, `Init:ExitCode:N`; restartable sidecars count as containers), then
the containers from last to first (waiting/terminated reasons, `ExitCode:N`), turn a `Completed`
pod with a still running container back into Running/NotReady, and finally report deletion as
Terminating (or Unknown for pods on an unreachable node).
"""

from __future__ import annotations

from pykube_server.registry.printers.common import (
    AGE, NAME, NONE, Cell, Column, Obj, col, doc, get, human_duration, timestamp, wide,
)

NODE_UNREACHABLE_REASON = "NodeLost"
SCHEDULING_GATED = "SchedulingGated"


def _restartable(container: Obj | None) -> bool:
    return bool(container) and container.get("restartPolicy") == "Always"  # type: ignore[union-attr]


def _condition_true(pod: Obj, kind: str) -> bool:
    return any(c.get("type") == kind and c.get("status") == "True"
               for c in get(pod, "status", "conditions", default=[]))


class _Tally:
    """Restart counts and the latest restart time, in the two sets upstream keeps apart."""

    def __init__(self) -> None:
        self.restarts = 0
        self.last: float | None = None

    def add(self, status: Obj) -> None:
        self.restarts += int(status.get("restartCount") or 0)
        finished = timestamp(get(status, "lastState", "terminated", "finishedAt"))
        if finished is not None and (self.last is None or finished > self.last):
            self.last = finished


def _init_reason(status: Obj, index: int, total: int, spec_container: Obj | None) -> str | None:
    """The reason an init container gives the pod, or None when it lets the walk continue."""
    state = status.get("state") or {}
    terminated, waiting = state.get("terminated"), state.get("waiting")
    if terminated is not None and int(terminated.get("exitCode") or 0) == 0:
        return None
    if _restartable(spec_container) and status.get("started"):
        return None
    if terminated is not None:
        if terminated.get("reason"):
            return "Init:" + terminated["reason"]
        if terminated.get("signal"):
            return f"Init:Signal:{terminated['signal']}"
        return f"Init:ExitCode:{int(terminated.get('exitCode') or 0)}"
    if waiting is not None and waiting.get("reason") and waiting["reason"] != "PodInitializing":
        return "Init:" + waiting["reason"]
    return f"Init:{index}/{total}"


def _sidecar_ready(status: Obj, spec_container: Obj | None) -> int:
    """1 for a started, ready restartable init container that has not exited successfully."""
    terminated = (status.get("state") or {}).get("terminated")
    if terminated is not None and int(terminated.get("exitCode") or 0) == 0:
        return 0
    return int(_restartable(spec_container) and bool(status.get("started")) and bool(status.get("ready")))


def _container_reason(status: Obj) -> str | None:
    state = status.get("state") or {}
    waiting, terminated = state.get("waiting"), state.get("terminated")
    if waiting is not None and waiting.get("reason"):
        return str(waiting["reason"])
    if terminated is not None:
        if terminated.get("reason"):
            return str(terminated["reason"])
        if terminated.get("signal"):
            return f"Signal:{terminated['signal']}"
        return f"ExitCode:{int(terminated.get('exitCode') or 0)}"
    return None


def pod_summary(pod: Obj) -> tuple[int, int, str, int, float | None]:
    """(ready, total, status, restarts, last restart time) as `printPod` computes them."""
    spec, status = pod.get("spec") or {}, pod.get("status") or {}
    phase = status.get("phase", "")
    reason = status.get("reason") or phase
    if any(c.get("type") == "PodScheduled" and c.get("reason") == SCHEDULING_GATED
           for c in status.get("conditions") or []):
        reason = SCHEDULING_GATED

    init_specs = {c.get("name"): c for c in spec.get("initContainers") or []}
    total = len(spec.get("containers") or []) + sum(_restartable(c) for c in init_specs.values())
    ready = 0
    everything, sidecars = _Tally(), _Tally()
    initializing = False
    init_statuses = status.get("initContainerStatuses") or []
    for i, container in enumerate(init_statuses):
        everything.add(container)
        spec_container = init_specs.get(container.get("name"))
        if _restartable(spec_container):
            sidecars.add(container)
        init_reason = _init_reason(container, i, len(init_specs), spec_container)
        if init_reason is None:
            ready += _sidecar_ready(container, spec_container)
            continue
        reason, initializing = init_reason, True
        break

    tally = everything
    if not initializing or _condition_true(pod, "Initialized"):
        tally = sidecars
        has_running = False
        for container in reversed(status.get("containerStatuses") or []):
            tally.add(container)
            container_reason = _container_reason(container)
            if container_reason is not None:
                reason = container_reason
            elif container.get("ready") and (container.get("state") or {}).get("running") is not None:
                has_running = True
                ready += 1
        if reason == "Completed" and has_running:
            reason = "Running" if _condition_true(pod, "Ready") else "NotReady"

    deleting = (pod.get("metadata") or {}).get("deletionTimestamp")
    if deleting and status.get("reason") == NODE_UNREACHABLE_REASON:
        reason = "Unknown"
    elif deleting and phase not in ("Failed", "Succeeded"):
        reason = "Terminating"
    return ready, total, reason, tally.restarts, tally.last


def _ready(pod: Obj, now: float) -> str:
    ready, total, *_ = pod_summary(pod)
    return f"{ready}/{total}"


def _status(pod: Obj, now: float) -> str:
    return pod_summary(pod)[2]


def _restarts(pod: Obj, now: float) -> str:
    *_, restarts, last = pod_summary(pod)
    if restarts and last is not None:
        return f"{restarts} ({human_duration(now - last)} ago)"
    return str(restarts)


def _ip(pod: Obj, now: float) -> str:
    return get(pod, "status", "podIPs", 0, "ip", default="") or NONE


def _readiness_gates(pod: Obj, now: float) -> str:
    gates = get(pod, "spec", "readinessGates", default=[])
    if not gates:
        return NONE
    conditions = get(pod, "status", "conditions", default=[])
    passed = 0
    for gate in gates:
        match = next((c for c in conditions if c.get("type") == gate.get("conditionType")), None)
        passed += bool(match and match.get("status") == "True")
    return f"{passed}/{len(gates)}"


def _or_none(*path: str) -> Cell:
    return lambda o, now: get(o, *path, default="") or NONE


POD_COLUMNS: tuple[Column, ...] = (
    NAME,
    col("Ready", _ready, "The aggregate readiness state of this pod for accepting traffic."),
    col("Status", _status, "The aggregate status of the containers in this pod."),
    col("Restarts", _restarts, "The number of times the containers in this pod have been restarted and when the last container in this pod has restarted."),
    AGE,
    wide("IP", _ip, doc("api.core.v1.PodStatus", "podIP")),
    wide("Node", _or_none("spec", "nodeName"), doc("api.core.v1.PodSpec", "nodeName")),
    wide("Nominated Node", _or_none("status", "nominatedNodeName"), doc("api.core.v1.PodStatus", "nominatedNodeName")),
    wide("Readiness Gates", _readiness_gates, doc("api.core.v1.PodSpec", "readinessGates")),
)

__all__ = ["POD_COLUMNS", "pod_summary"]
