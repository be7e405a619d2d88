"""The HorizontalPodAutoscaler's arithmetic, pure: kube's replica calculator and its normalisation.

Separate from the reconciler (`podautoscaler.py`) so the numbers can be tested without a
cluster. Everything follows `pkg/controller/podautoscaler` of Kubernetes 1.33:

* `resource_replicas` / `plain_replicas`: the usage ratio over ready pods, a 0.1 tolerance
  band in which nothing changes, and the conservative treatment of pods without metrics
  (assumed at the target, or at 100 % of request, when scaling down; at zero when scaling up)
  and of unready pods (assumed at zero, only when scaling up); a recalculated ratio that
  flips direction or falls into the band keeps the current count.
* `group_pods`: which pods count (deleted and failed ones are ignored, pending ones unready;
  for CPU a pod is also unready while its metric was taken less than one window after it
  became ready, during the first 5 minutes).
* `Recommendations` and `stabilize*`: the downscale stabilisation window (5 minutes by
  default) and, with `spec.behavior`, both windows and the scaling policies' rate limits.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from pykube_server.api.quantity import parse_quantity

Obj = dict[str, Any]

TOLERANCE = 0.1
CPU_INITIALIZATION_PERIOD = timedelta(minutes=5)
INITIAL_READINESS_DELAY = timedelta(seconds=30)
DOWNSCALE_STABILIZATION_SECONDS = 300.0
INT32_MAX, INT32_MIN = 2**31 - 1, -(2**31)


class MetricsError(Exception):
    """No replica count can be computed from the metrics (message as kube words it)."""


@dataclass(frozen=True, slots=True)
class PodMetric:
    value: int
    """milli-units (millicores, or milli-bytes for memory, as the resource metrics client counts)."""
    timestamp: datetime
    window: timedelta


def _parse_time(text: str | None) -> datetime | None:
    return datetime.fromisoformat(text.replace("Z", "+00:00")) if text else None


def _ready_condition(pod: Obj) -> Obj | None:
    for cond in (pod.get("status") or {}).get("conditions") or []:
        if cond.get("type") == "Ready":
            return dict(cond)
    return None


@dataclass
class PodGroups:
    ready_count: int = 0
    unready: set[str] = field(default_factory=set)
    missing: set[str] = field(default_factory=set)
    ignored: set[str] = field(default_factory=set)


def group_pods(pods: Iterable[Obj], metrics: Mapping[str, PodMetric], resource: str, now: datetime) -> PodGroups:
    out = PodGroups()
    for pod in pods:
        name = pod["metadata"]["name"]
        phase = (pod.get("status") or {}).get("phase")
        if pod["metadata"].get("deletionTimestamp") or phase == "Failed":
            out.ignored.add(name)
            continue
        if phase == "Pending":
            out.unready.add(name)
            continue
        metric = metrics.get(name)
        if metric is None:
            out.missing.add(name)
            continue
        if resource == "cpu":
            condition = _ready_condition(pod)
            start = _parse_time((pod.get("status") or {}).get("startTime"))
            if condition is None or start is None:
                unready = True
            else:
                changed = _parse_time(condition.get("lastTransitionTime")) or start
                if start + CPU_INITIALIZATION_PERIOD > now:
                    unready = condition.get("status") == "False" or metric.timestamp < changed + metric.window
                else:
                    unready = condition.get("status") == "False" and start + INITIAL_READINESS_DELAY > changed
            if unready:
                out.unready.add(name)
                continue
        out.ready_count += 1
    return out


def pod_requests(pods: Iterable[Obj], resource: str, container: str = "") -> dict[str, int]:
    """Milli-requests per pod; every (selected) container must request the resource."""
    out = {}
    for pod in pods:
        total = 0
        for c in (pod.get("spec") or {}).get("containers") or []:
            if container and c["name"] != container:
                continue
            request = ((c.get("resources") or {}).get("requests") or {}).get(resource)
            if request is None:
                raise MetricsError(f"missing request for {resource} in container {c['name']} of Pod "
                                   f"{pod['metadata']['name']}")
            total += parse_quantity(request).milli_value()
        out[pod["metadata"]["name"]] = total
    return out


def utilization_ratio(metrics: Mapping[str, PodMetric], requests: Mapping[str, int],
                      target: int) -> tuple[float, int, int]:
    """(usage ratio, utilization %, raw average milli-usage) over pods that have a request."""
    used = requested = entries = 0
    for name, metric in metrics.items():
        if name not in requests:
            continue
        used += metric.value
        requested += requests[name]
        entries += 1
    if requested == 0:
        raise MetricsError("no metrics returned matched known pods")
    utilization = used * 100 // requested
    return utilization / target, utilization, used // entries


@dataclass(frozen=True, slots=True)
class Proposal:
    replicas: int
    utilization: int | None
    """averageUtilization (percent of request), for Utilization targets."""
    raw: int
    """Average usage in milli-units."""
    timestamp: datetime | None


def _prepare(pods: list[Obj], metrics: dict[str, PodMetric], resource: str, now: datetime) -> PodGroups:
    if not pods:
        raise MetricsError("no pods returned by selector while calculating replica count")
    groups = group_pods(pods, metrics, resource, now)
    for name in groups.ignored | groups.unready:
        metrics.pop(name, None)
    if not metrics:
        raise MetricsError("did not receive metrics for targeted pods (pods might be unready)")
    return groups


def _settle(current: int, ratio: float, new_ratio: float, count: int, tolerance: float) -> int:
    if abs(1.0 - new_ratio) <= tolerance or (ratio < 1.0 < new_ratio) or (ratio > 1.0 > new_ratio):
        return current
    replicas = math.ceil(new_ratio * count)
    if (new_ratio < 1.0 and replicas > current) or (new_ratio > 1.0 and replicas < current):
        return current
    return replicas


def resource_replicas(current: int, target_utilization: int, resource: str, pods: list[Obj],
                      metrics: Mapping[str, PodMetric], now: datetime, *, container: str = "",
                      tolerance: float = TOLERANCE) -> Proposal:
    """Replicas for a Utilization target (`GetResourceReplicas`)."""
    metrics = dict(metrics)
    stamp = next(iter(metrics.values())).timestamp if metrics else None
    groups = _prepare(pods, metrics, resource, now)
    requests = pod_requests(pods, resource, container)
    ratio, utilization, raw = utilization_ratio(metrics, requests, target_utilization)
    scale_up_with_unready = bool(groups.unready) and ratio > 1.0
    if not scale_up_with_unready and not groups.missing:
        if abs(1.0 - ratio) <= tolerance:
            return Proposal(current, utilization, raw, stamp)
        return Proposal(math.ceil(ratio * groups.ready_count), utilization, raw, stamp)
    if groups.missing:
        fallback = max(100, target_utilization)
        for name in groups.missing:
            value = requests.get(name, 0) * fallback // 100 if ratio < 1.0 else 0
            if ratio != 1.0:
                metrics[name] = PodMetric(value, now, timedelta())
    if scale_up_with_unready:
        for name in groups.unready:
            metrics[name] = PodMetric(0, now, timedelta())
    new_ratio, _, _ = utilization_ratio(metrics, requests, target_utilization)
    return Proposal(_settle(current, ratio, new_ratio, len(metrics), tolerance), utilization, raw, stamp)


def plain_replicas(current: int, target_milli: int, resource: str, pods: list[Obj],
                   metrics: Mapping[str, PodMetric], now: datetime, *, tolerance: float = TOLERANCE) -> Proposal:
    """Replicas for an AverageValue target (`GetRawResourceReplicas` / `calcPlainMetricReplicas`)."""
    metrics = dict(metrics)
    stamp = next(iter(metrics.values())).timestamp if metrics else None
    groups = _prepare(pods, metrics, resource, now)
    usage = sum(m.value for m in metrics.values()) // len(metrics)
    ratio = usage / target_milli
    scale_up_with_unready = bool(groups.unready) and ratio > 1.0
    if not scale_up_with_unready and not groups.missing:
        if abs(1.0 - ratio) <= tolerance:
            return Proposal(current, None, usage, stamp)
        return Proposal(math.ceil(ratio * groups.ready_count), None, usage, stamp)
    if groups.missing:
        for name in groups.missing:
            if ratio != 1.0:
                metrics[name] = PodMetric(target_milli if ratio < 1.0 else 0, now, timedelta())
    if scale_up_with_unready:
        for name in groups.unready:
            metrics[name] = PodMetric(0, now, timedelta())
    new_ratio = (sum(m.value for m in metrics.values()) // len(metrics)) / target_milli
    return Proposal(_settle(current, ratio, new_ratio, len(metrics), tolerance), None, usage, stamp)


# -- normalisation --------------------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class Limited:
    replicas: int
    reason: str
    message: str


WITHIN_RANGE = ("DesiredWithinRange", "the desired count is within the acceptable range")
TOO_FEW = ("TooFewReplicas", "the desired replica count is less than the minimum replica count")
TOO_MANY = ("TooManyReplicas", "the desired replica count is more than the maximum replica count")
SCALE_UP_LIMIT = ("ScaleUpLimit", "the desired replica count is increasing faster than the maximum scale rate")
SCALE_DOWN_LIMIT = ("ScaleDownLimit", "the desired replica count is decreasing faster than the maximum scale rate")
STABILIZED = ("ScaleDownStabilized",
              "recent recommendations were higher than current one, applying the highest recent recommendation")


def limit_without_behavior(current: int, desired: int, minimum: int, maximum: int) -> Limited:
    """`convertDesiredReplicasWithRules`: at most max(2x, 4) up per step, within min/max."""
    scale_up_limit = max(2 * current, 4)
    if maximum > scale_up_limit:
        allowed_max, limiting = scale_up_limit, SCALE_UP_LIMIT
    else:
        allowed_max, limiting = maximum, TOO_MANY
    if desired < minimum:
        return Limited(minimum, *TOO_FEW)
    if desired > allowed_max:
        return Limited(allowed_max, *limiting)
    return Limited(desired, *WITHIN_RANGE)


@dataclass(frozen=True, slots=True)
class ScaleEvent:
    at: float
    change: int


def change_in_period(events: Iterable[ScaleEvent], period: float, now: float) -> int:
    return sum(e.change for e in events if e.at > now - period)


def scale_up_limit(current: int, ups: list[ScaleEvent], downs: list[ScaleEvent], rules: Obj, now: float) -> int:
    select = rules.get("selectPolicy") or "Max"
    if select == "Disabled":
        return current
    result = INT32_MAX if select == "Min" else INT32_MIN
    pick = min if select == "Min" else max
    for policy in rules.get("policies") or []:
        period = float(policy.get("periodSeconds") or 0)
        start = current - change_in_period(ups, period, now) + change_in_period(downs, period, now)
        if policy.get("type") == "Pods":
            proposed = start + int(policy["value"])
        else:
            proposed = math.ceil(start * (1 + int(policy["value"]) / 100))
        result = pick(result, proposed)
    return result


def scale_down_limit(current: int, ups: list[ScaleEvent], downs: list[ScaleEvent], rules: Obj, now: float) -> int:
    select = rules.get("selectPolicy") or "Max"
    if select == "Disabled":
        return current
    result = INT32_MIN if select == "Min" else INT32_MAX
    pick = max if select == "Min" else min
    for policy in rules.get("policies") or []:
        period = float(policy.get("periodSeconds") or 0)
        start = current - change_in_period(ups, period, now) + change_in_period(downs, period, now)
        if policy.get("type") == "Pods":
            proposed = start - int(policy["value"])
        else:
            proposed = int(start * (1 - int(policy["value"]) / 100))
        result = pick(result, proposed)
    return result


def limit_with_behavior(current: int, desired: int, minimum: int, maximum: int, behavior: Obj,
                        ups: list[ScaleEvent], downs: list[ScaleEvent], now: float) -> Limited:
    """`convertDesiredReplicasWithBehaviorRate`: the policies' rate limits, within min/max."""
    if desired > current:
        limit = max(scale_up_limit(current, ups, downs, behavior.get("scaleUp") or {}, now), current)
        if maximum > limit:
            allowed, limiting = limit, SCALE_UP_LIMIT
        else:
            allowed, limiting = maximum, TOO_MANY
        if desired > allowed:
            return Limited(allowed, *limiting)
    elif desired < current:
        limit = min(scale_down_limit(current, ups, downs, behavior.get("scaleDown") or {}, now), current)
        if minimum < limit:
            allowed, limiting = limit, SCALE_DOWN_LIMIT
        else:
            allowed, limiting = minimum, TOO_FEW
        if desired < allowed:
            return Limited(allowed, *limiting)
    return Limited(desired, *WITHIN_RANGE)


@dataclass(frozen=True, slots=True)
class Recommendation:
    at: float
    replicas: int


class Recommendations:
    """One HPA's recent recommendations, for the stabilisation windows."""

    def __init__(self) -> None:
        self.items: list[Recommendation] = []

    def stabilize(self, desired: int, now: float, window: float = DOWNSCALE_STABILIZATION_SECONDS) -> int:
        """Without behavior: the highest recommendation of the downscale window (`stabilizeRecommendation`)."""
        best = desired
        for rec in self.items:
            if rec.at > now - window:
                best = max(best, rec.replicas)
        self._record(desired, now, window)
        return best

    def stabilize_with_behavior(self, current: int, desired: int, up_window: float, down_window: float,
                                now: float) -> int:
        """Scale up to at most the lowest recommendation of the up window, down to at least the
        highest of the down window (`stabilizeRecommendationWithBehaviors`)."""
        up = down = desired
        for rec in self.items:
            if rec.at > now - up_window:
                up = min(up, rec.replicas)
            if rec.at > now - down_window:
                down = max(down, rec.replicas)
        self._record(desired, now, max(up_window, down_window))
        return min(max(current, up), down)

    def _record(self, desired: int, now: float, keep: float) -> None:
        self.items = [r for r in self.items if r.at > now - keep]
        self.items.append(Recommendation(now, desired))


def behavior_windows(behavior: Obj, default_down: float = DOWNSCALE_STABILIZATION_SECONDS) -> tuple[float, float]:
    up = (behavior.get("scaleUp") or {}).get("stabilizationWindowSeconds")
    down = (behavior.get("scaleDown") or {}).get("stabilizationWindowSeconds")
    return float(up or 0), float(default_down if down is None else down)
