"""Reading the objects the workload controllers share: ownership, pod readiness and
availability, timestamps and conditions.

Claiming (upstream's ControllerRefManager) lives in controllers/controllerref.py, shared with the
Job controller; its names are re-exported here for the ReplicaSet and Deployment controllers.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from pykube_server.api.types import Obj
from pykube_server.client.clock import Clock
from pykube_server.client.events import format_time
from pykube_server.controllers.controllerref import RefManager as RefManager
from pykube_server.controllers.controllerref import controller_ref as controller_ref
from pykube_server.controllers.controllerref import meta as meta
from pykube_server.controllers.controllerref import new_controller_ref as new_controller_ref


def key_of(obj: Obj) -> str:
    return f"{meta(obj).get('namespace', '')}/{meta(obj).get('name', '')}"


def now_time(clock: Clock) -> str:
    return format_time(clock.wall())


def parse_time(value: str | None) -> datetime | None:
    try:
        return datetime.fromisoformat(value) if value else None
    except ValueError:
        return None


def is_pod_active(pod: Obj) -> bool:
    phase = (pod.get("status") or {}).get("phase")
    return phase not in ("Succeeded", "Failed") and not meta(pod).get("deletionTimestamp")


def ready_condition(pod: Obj) -> Obj | None:
    return next((c for c in (pod.get("status") or {}).get("conditions") or () if c.get("type") == "Ready"), None)


def is_pod_ready(pod: Obj) -> bool:
    cond = ready_condition(pod)
    return cond is not None and cond.get("status") == "True"


def is_pod_available(pod: Obj, min_ready_seconds: int, now: datetime) -> bool:
    """Ready, and Ready for longer than minReadySeconds (upstream's IsPodAvailable)."""
    if not is_pod_ready(pod):
        return False
    if not min_ready_seconds:
        return True
    since = parse_time((ready_condition(pod) or {}).get("lastTransitionTime"))
    return since is not None and since + timedelta(seconds=min_ready_seconds) < now


def set_condition(status: Obj, cond: Obj) -> None:
    """Upstream's SetCondition: same status and reason keeps the old one; the new one goes last."""
    conds = status.get("conditions") or []
    current = next((c for c in conds if c.get("type") == cond["type"]), None)
    if current and current.get("status") == cond["status"] and current.get("reason") == cond.get("reason"):
        return
    if current and current.get("status") == cond["status"]:
        cond = {**cond, "lastTransitionTime": current.get("lastTransitionTime")}
    status["conditions"] = [c for c in conds if c.get("type") != cond["type"]] + [cond]


def remove_condition(status: Obj, kind: str) -> None:
    conds = [c for c in status.get("conditions") or [] if c.get("type") != kind]
    if conds:
        status["conditions"] = conds
    else:
        status.pop("conditions", None)
