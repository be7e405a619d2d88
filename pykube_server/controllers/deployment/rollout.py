"""The deployment controller's arithmetic, pure: upstream's `deployment/util` over plain dicts.

Everything here reads objects and returns numbers, lists or new status dicts, so the rollout
rules (fenceposts, surge, proportional scaling, revision bookkeeping, completeness, progress
and timeouts) are table-tested without a server. Rounding follows upstream exactly: maxSurge
percentages round up, maxUnavailable percentages round down, and when both resolve to zero
maxUnavailable becomes 1; proportional shares round half away from zero.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Iterable, Sequence
from datetime import datetime, timedelta
from typing import Any

from pykube_server.api.types import Obj
from pykube_server.client.events import format_time
from pykube_server.controllers.deployment.hashing import equal_ignore_hash
from pykube_server.controllers.replicaset.objects import meta, parse_time, set_condition

REVISION = "deployment.kubernetes.io/revision"
REVISION_HISTORY = "deployment.kubernetes.io/revision-history"
DESIRED_REPLICAS = "deployment.kubernetes.io/desired-replicas"
MAX_REPLICAS = "deployment.kubernetes.io/max-replicas"
LAST_APPLIED = "kubectl.kubernetes.io/last-applied-configuration"
ROLLBACK_TO = "deprecated.deployment.rollback.to"
ANNOTATIONS_NOT_COPIED = frozenset({LAST_APPLIED, REVISION, REVISION_HISTORY, DESIRED_REPLICAS, MAX_REPLICAS, ROLLBACK_TO})
MAX_REVISION_HISTORY_CHARS = 2000
MAX_INT32 = 2**31 - 1

# Progressing / Available condition reasons
NEW_RS_CREATED = "NewReplicaSetCreated"
FOUND_NEW_RS = "FoundNewReplicaSet"
RS_UPDATED = "ReplicaSetUpdated"
NEW_RS_AVAILABLE = "NewReplicaSetAvailable"
TIMED_OUT = "ProgressDeadlineExceeded"
FAILED_RS_CREATE = "ReplicaSetCreateError"
PAUSED = "DeploymentPaused"
RESUMED = "DeploymentResumed"
MIN_AVAILABLE = "MinimumReplicasAvailable"
MIN_UNAVAILABLE = "MinimumReplicasUnavailable"


def spec(obj: Obj) -> Obj:
    return obj.get("spec") or {}


def replicas(obj: Obj) -> int:
    return int(spec(obj).get("replicas", 1))


def status_count(obj: Obj, name: str) -> int:
    return int((obj.get("status") or {}).get(name, 0))


# --- fenceposts ---------------------------------------------------------------------------------

def scaled_value(value: int | str | None, total: int, *, round_up: bool) -> int:
    """intstr.GetScaledValueFromIntOrPercent: an int as is, `N%` of `total` rounded as asked."""
    if value is None:
        return 0
    if isinstance(value, int):
        return value
    if not value.endswith("%"):
        raise ValueError("invalid value for IntOrString: invalid type: string is not a percentage")
    percent = int(value[:-1])
    exact = total * percent / 100
    return math.ceil(exact) if round_up else math.floor(exact)


def is_rolling(d: Obj) -> bool:
    return (spec(d).get("strategy") or {}).get("type", "RollingUpdate") == "RollingUpdate"


def resolve_fenceposts(d: Obj) -> tuple[int, int]:
    """(maxSurge, maxUnavailable) as numbers for the deployment's replica count."""
    rolling = (spec(d).get("strategy") or {}).get("rollingUpdate") or {}
    surge = scaled_value(rolling.get("maxSurge"), replicas(d), round_up=True)
    unavailable = scaled_value(rolling.get("maxUnavailable"), replicas(d), round_up=False)
    if surge == 0 and unavailable == 0:
        unavailable = 1  # both rounded to zero: allow one, since surging may be blocked by quota
    return surge, unavailable


def max_surge(d: Obj) -> int:
    return resolve_fenceposts(d)[0] if is_rolling(d) else 0


def max_unavailable(d: Obj) -> int:
    if not is_rolling(d) or replicas(d) == 0:
        return 0
    return min(resolve_fenceposts(d)[1], replicas(d))


# --- replica set collections -------------------------------------------------------------------

def by_creation(rss: Iterable[Obj], *, newest_first: bool = False) -> list[Obj]:
    """ReplicaSetsByCreationTimestamp: older first, ties by name (RFC 3339 UTC sorts as text)."""
    ordered = sorted(rss, key=lambda rs: (meta(rs).get("creationTimestamp") or "", meta(rs).get("name", "")))
    return ordered[::-1] if newest_first else ordered


def _cmp_size(a: Obj, b: Obj, *, newer_first: bool) -> int:
    if replicas(a) != replicas(b):
        return -1 if replicas(a) > replicas(b) else 1
    older = by_creation([a, b])
    first = older[-1] if newer_first else older[0]
    return 0 if a is b else (-1 if first is a else 1)


def by_size(rss: Iterable[Obj], *, newer_first: bool) -> list[Obj]:
    """ReplicaSetsBySizeNewer / ReplicaSetsBySizeOlder: larger first, then by age."""
    return sorted(rss, key=functools.cmp_to_key(lambda a, b: _cmp_size(a, b, newer_first=newer_first)))


def revision_of(rs: Obj) -> int:
    try:
        return int((meta(rs).get("annotations") or {}).get(REVISION, "0"))
    except ValueError:
        return 0


def by_revision(rss: Iterable[Obj]) -> list[Obj]:
    return sorted(by_creation(rss), key=revision_of)


def active(rss: Iterable[Obj | None]) -> list[Obj]:
    return [rs for rs in rss if rs is not None and replicas(rs) > 0]


def total_replicas(rss: Iterable[Obj | None]) -> int:
    return sum(replicas(rs) for rs in rss if rs is not None)


def total_status(rss: Iterable[Obj | None], name: str) -> int:
    return sum(status_count(rs, name) for rs in rss if rs is not None)


def find_new(d: Obj, rss: Sequence[Obj]) -> Obj | None:
    """The oldest ReplicaSet whose template equals the deployment's, ignoring the hash label."""
    template = spec(d).get("template") or {}
    return next((rs for rs in by_creation(rss) if equal_ignore_hash(spec(rs).get("template") or {}, template)), None)


def find_active_or_latest(new: Obj | None, olds: Sequence[Obj]) -> Obj | None:
    if new is None and not olds:
        return None
    newest_olds = by_creation(olds, newest_first=True)
    live = active([*newest_olds, new])
    if not live:
        return new if new is not None else newest_olds[0]
    return live[0] if len(live) == 1 else None


def annotation_int(rs: Obj, name: str) -> int | None:
    try:
        return int((meta(rs).get("annotations") or {})[name])
    except (KeyError, ValueError):
        return None


def is_saturated(d: Obj, rs: Obj | None) -> bool:
    if rs is None:
        return False
    desired = annotation_int(rs, DESIRED_REPLICAS)
    return (desired is not None and replicas(rs) == replicas(d) and desired == replicas(d)
            and status_count(rs, "availableReplicas") == replicas(d))


def new_rs_new_replicas(d: Obj, all_rss: Sequence[Obj | None], new: Obj) -> int:
    """How big the new ReplicaSet may be now."""
    if not is_rolling(d):
        return replicas(d)
    max_total = replicas(d) + max_surge(d)
    current = total_replicas(all_rss)
    if current >= max_total:
        return replicas(new)
    return replicas(new) + min(max_total - current, replicas(d) - replicas(new))


def _round_half_away(value: float) -> int:
    return int(math.copysign(math.floor(abs(value) + 0.5), value))


def proportion(rs: Obj, d: Obj, to_add: int, added: int) -> int:
    """GetReplicaSetProportion: this ReplicaSet's share of `to_add`, within what is left."""
    if replicas(rs) == 0 or to_add == 0 or to_add == added:
        return 0
    allowed = to_add - added
    fraction = _fraction(rs, d)
    return min(fraction, allowed) if to_add > 0 else max(fraction, allowed)


def _fraction(rs: Obj, d: Obj) -> int:
    if replicas(d) == 0:
        return -replicas(rs)
    max_now = replicas(d) + max_surge(d)
    before = annotation_int(rs, MAX_REPLICAS)
    if not before:
        before = status_count(d, "replicas")
        if not before:
            return 0
    return _round_half_away(replicas(rs) * max_now / before) - replicas(rs)


# --- annotations ------------------------------------------------------------------------------

def set_replicas_annotations(rs: Obj, desired: int, maximum: int) -> bool:
    annotations = meta(rs).setdefault("annotations", {})
    changed = False
    for name, value in ((DESIRED_REPLICAS, str(desired)), (MAX_REPLICAS, str(maximum))):
        if annotations.get(name) != value:
            annotations[name] = value
            changed = True
    return changed


def replicas_annotations_need_update(rs: Obj, desired: int, maximum: int) -> bool:
    annotations = meta(rs).get("annotations") or {}
    return annotations.get(DESIRED_REPLICAS) != str(desired) or annotations.get(MAX_REPLICAS) != str(maximum)


def set_new_rs_annotations(d: Obj, rs: Obj, new_revision: int, *, exists: bool) -> bool:
    """Copy the deployment's annotations, raise the revision (keeping the old ones in
    revision-history when a ReplicaSet is reused by a rollback), and for a new ReplicaSet
    stamp desired/max replicas. Returns whether anything changed."""
    annotations = meta(rs).setdefault("annotations", {})
    changed = False
    for name, value in (meta(d).get("annotations") or {}).items():
        if name not in ANNOTATIONS_NOT_COPIED and annotations.get(name) != value:
            annotations[name] = value
            changed = True
    old_text = annotations.get(REVISION)
    try:
        old = int(old_text) if old_text else 0
    except ValueError:
        return changed
    if old < new_revision:
        annotations[REVISION] = str(new_revision)
        changed = True
        if old_text:
            _append_history(annotations, old_text)
    if not exists and set_replicas_annotations(rs, replicas(d), replicas(d) + max_surge(d)):
        changed = True
    return changed


def _append_history(annotations: dict[str, str], old: str) -> None:
    history = annotations.get(REVISION_HISTORY, "")
    if not history:
        annotations[REVISION_HISTORY] = old
        return
    revisions = history.split(",")
    length, start = len(history) + len(old) + 1, 0
    while length > MAX_REVISION_HISTORY_CHARS and start < len(revisions):
        length -= len(revisions[start]) + 1
        start += 1
    if length <= MAX_REVISION_HISTORY_CHARS:
        annotations[REVISION_HISTORY] = ",".join([*revisions[start:], old])


# --- status and conditions --------------------------------------------------------------------

def has_progress_deadline(d: Obj) -> bool:
    deadline = spec(d).get("progressDeadlineSeconds")
    return deadline is not None and deadline != MAX_INT32


def condition(status: Obj, kind: str) -> Obj | None:
    return next((c for c in status.get("conditions") or () if c.get("type") == kind), None)


def new_condition(kind: str, state: str, reason: str, message: str, now: datetime) -> Obj:
    stamp = format_time(now)
    return {"type": kind, "status": state, "lastUpdateTime": stamp, "lastTransitionTime": stamp,
            "reason": reason, "message": message}


def _put(status: Obj, name: str, value: int) -> None:
    if value:
        status[name] = value


def calculate_status(all_rss: Sequence[Obj | None], new: Obj | None, d: Obj, now: datetime) -> Obj:
    available = total_status(all_rss, "availableReplicas")
    total = total_replicas(all_rss)
    status: Obj = {"observedGeneration": meta(d).get("generation", 0)}
    _put(status, "replicas", total_status(all_rss, "replicas"))
    _put(status, "updatedReplicas", total_status([new], "replicas"))
    _put(status, "readyReplicas", total_status(all_rss, "readyReplicas"))
    _put(status, "availableReplicas", available)
    _put(status, "unavailableReplicas", max(total - available, 0))
    old_status = d.get("status") or {}
    if old_status.get("conditions"):
        status["conditions"] = [dict(c) for c in old_status["conditions"]]
    if "collisionCount" in old_status:
        status["collisionCount"] = old_status["collisionCount"]
    if available >= replicas(d) - max_unavailable(d):
        cond = new_condition("Available", "True", MIN_AVAILABLE, "Deployment has minimum availability.", now)
    else:
        cond = new_condition("Available", "False", MIN_UNAVAILABLE, "Deployment does not have minimum availability.", now)
    set_condition(status, cond)
    return status


def complete(d: Obj, status: Obj) -> bool:
    want = replicas(d)
    return (status.get("updatedReplicas", 0) == want and status.get("replicas", 0) == want
            and status.get("availableReplicas", 0) == want
            and status.get("observedGeneration", 0) >= meta(d).get("generation", 0))


def progressing(d: Obj, new_status: Obj) -> bool:
    old: dict[str, Any] = d.get("status") or {}
    old_olds = old.get("replicas", 0) - old.get("updatedReplicas", 0)
    new_olds = new_status.get("replicas", 0) - new_status.get("updatedReplicas", 0)
    return (new_status.get("updatedReplicas", 0) > old.get("updatedReplicas", 0) or new_olds < old_olds
            or new_status.get("readyReplicas", 0) > old.get("readyReplicas", 0)
            or new_status.get("availableReplicas", 0) > old.get("availableReplicas", 0))


def timed_out(d: Obj, new_status: Obj, now: datetime) -> bool:
    if not has_progress_deadline(d):
        return False
    cond = condition(new_status, "Progressing")
    if cond is None or cond.get("reason") == NEW_RS_AVAILABLE:
        return False
    if cond.get("reason") == TIMED_OUT:
        return True
    since = parse_time(cond.get("lastUpdateTime"))
    return since is not None and since + timedelta(seconds=spec(d)["progressDeadlineSeconds"]) < now
