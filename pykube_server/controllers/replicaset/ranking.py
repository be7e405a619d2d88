"""Which pods to delete first, and slow-start batches for creating them.

The deletion order is upstream's `ActivePodsWithRanks.Less`, step by step: unscheduled before
scheduled; Pending before Unknown before Running; not ready before ready; lower
`controller.kubernetes.io/pod-deletion-cost` first; pods doubled up on a node with more of
their siblings first; then, with the LogarithmicScaleDown behaviour, more recently ready first
and newer first, where times in the same power-of-two age bucket compare by uid (so that
near-simultaneous pods are picked at random), with more container restarts first in between.
It is a comparator rather than a sort key because that uid tie-break ends the comparison.
"""

from __future__ import annotations

import asyncio
import functools
import math
from collections.abc import Awaitable, Callable
from datetime import datetime

from pykube_server.api.types import Obj
from pykube_server.controllers.replicaset.objects import (
    ready_condition, is_pod_active, is_pod_ready, meta, parse_time)

POD_DELETION_COST = "controller.kubernetes.io/pod-deletion-cost"
_PHASE_ORDINAL = {"Pending": 0, "Unknown": 1, "Running": 2}


def _deletion_cost(pod: Obj) -> int:
    try:
        return int((meta(pod).get("annotations") or {}).get(POD_DELETION_COST, "0"))
    except ValueError:
        return 0


def _log_rank(moment: datetime, now: datetime) -> int:
    """Base-2 log of the age in nanoseconds, truncated (-1 for the future): upstream's buckets."""
    age = (now - moment).total_seconds() * 1e9
    return int(math.log2(age)) if age > 0 else -1


def _max_restarts(pod: Obj) -> int:
    return max((c.get("restartCount", 0) for c in (pod.get("status") or {}).get("containerStatuses") or ()), default=0)


def _ready_since(pod: Obj) -> datetime | None:
    return parse_time((ready_condition(pod) or {}).get("lastTransitionTime")) if is_pod_ready(pod) else None


def _compare_times(a: tuple[datetime | None, str], b: tuple[datetime | None, str], now: datetime) -> int | None:
    """Newer (or empty) first, bucketed logarithmically; same bucket falls to the uid. None = equal."""
    (ta, uid_a), (tb, uid_b) = a, b
    if ta == tb:
        return None
    if ta is None or tb is None:
        return -1 if ta is None else 1
    diff = _log_rank(ta, now) - _log_rank(tb, now)
    if diff == 0:
        return -1 if uid_a < uid_b else 1
    return -1 if diff < 0 else 1


def compare_for_deletion(a: tuple[Obj, int], b: tuple[Obj, int], now: datetime) -> int:
    """Upstream's ActivePodsWithRanks.Less as a comparator: negative = delete `a` first."""
    (pa, rank_a), (pb, rank_b) = a, b
    node_a, node_b = (pa.get("spec") or {}).get("nodeName", ""), (pb.get("spec") or {}).get("nodeName", "")
    if node_a != node_b and not (node_a and node_b):
        return -1 if not node_a else 1
    phase_a = _PHASE_ORDINAL.get((pa.get("status") or {}).get("phase", ""), 0)
    phase_b = _PHASE_ORDINAL.get((pb.get("status") or {}).get("phase", ""), 0)
    if phase_a != phase_b:
        return phase_a - phase_b
    if is_pod_ready(pa) != is_pod_ready(pb):
        return -1 if not is_pod_ready(pa) else 1
    if _deletion_cost(pa) != _deletion_cost(pb):
        return -1 if _deletion_cost(pa) < _deletion_cost(pb) else 1
    if rank_a != rank_b:
        return -1 if rank_a > rank_b else 1
    uid_a, uid_b = str(meta(pa).get("uid", "")), str(meta(pb).get("uid", ""))
    if is_pod_ready(pa) and is_pod_ready(pb):
        by_ready = _compare_times((_ready_since(pa), uid_a), (_ready_since(pb), uid_b), now)
        if by_ready is not None:
            return by_ready
    if _max_restarts(pa) != _max_restarts(pb):
        return -1 if _max_restarts(pa) > _max_restarts(pb) else 1
    created = _compare_times((parse_time(meta(pa).get("creationTimestamp")), uid_a),
                             (parse_time(meta(pb).get("creationTimestamp")), uid_b), now)
    return created or 0


def pods_to_delete(pods: list[Obj], related: list[Obj], diff: int, now: datetime) -> list[Obj]:
    if diff >= len(pods):
        return pods[:diff]
    on_node: dict[str, int] = {}
    for pod in related:
        if is_pod_active(pod):
            node = (pod.get("spec") or {}).get("nodeName", "")
            on_node[node] = on_node.get(node, 0) + 1
    ranked = [(pod, on_node.get((pod.get("spec") or {}).get("nodeName", ""), 0)) for pod in pods]
    ranked.sort(key=functools.cmp_to_key(lambda a, b: compare_for_deletion(a, b, now)))
    return [pod for pod, _ in ranked[:diff]]


async def slow_start_batch(count: int, initial: int, fn: Callable[[], Awaitable[None]]) -> tuple[int, BaseException | None]:
    """Call `fn` `count` times in batches of 1, 2, 4, ...; stop after the first failing batch."""
    remaining, successes, batch = count, 0, min(count, initial)
    while batch > 0:
        results = await asyncio.gather(*(fn() for _ in range(batch)), return_exceptions=True)
        failures = [r for r in results if isinstance(r, BaseException)]
        successes += batch - len(failures)
        if failures:
            return successes, failures[0]
        remaining -= batch
        batch = min(2 * batch, remaining)
    return successes, None
