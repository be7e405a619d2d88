"""horizontal-pod-autoscaler-controller: autoscaling/v2 HorizontalPodAutoscalers on resource metrics.

Every `sync_period` (kube's `--horizontal-pod-autoscaler-sync-period`, 15 s) each HPA is
reconciled as kube's `reconcileAutoscaler` does: read the target's `/scale` (Deployment,
ReplicaSet, StatefulSet, ReplicationController, or any custom resource with a scale
subresource, found through discovery), list the PodMetrics of the scale's selector from
`metrics.k8s.io` and the pods, compute a proposal per metric (`replicacalc.py`), take the
largest, stabilise and rate-limit it, write the new size through `/scale`, and record status
(currentReplicas, desiredReplicas, currentMetrics, lastScaleTime, the AbleToScale /
ScalingActive / ScalingLimited conditions) and events (SuccessfulRescale, FailedGetScale,
FailedGetResourceMetric, FailedComputeMetricsReplicas, ...), worded as kube words them.

Only `Resource` metrics (cpu, memory; Utilization and AverageValue) and `ContainerResource`
are computed; Pods, Object and External metrics need a custom metrics API, and such a metric
is reported invalid as kube reports a metric it cannot fetch.

Status changes do not trigger a reconcile, and a failed reconcile is retried only at the next
period (kube's HPA queue limits every key to one sync per period): only a new HPA, a spec
change and the period do.
"""

from __future__ import annotations

import copy
import logging
import time
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from fractions import Fraction

from pykube_server.api.duration import parse_go_duration
from pykube_server.api import errors
from pykube_server.api.quantity import Quantity, format_quantity, parse_quantity
from pykube_server.api.types import Obj
from pykube_server.client.informer import FuncHandler
from pykube_server.client.rest import PODS, Resource
from pykube_server.controllers import replicacalc as calc
from pykube_server.controllers.framework import Context, Controller, Request, Result

log = logging.getLogger(__name__)

HPAS = Resource("autoscaling", "v2", "horizontalpodautoscalers")
POD_METRICS = Resource("metrics.k8s.io", "v1beta1", "pods")
SYNC_PERIOD_SECONDS = 15.0
NORMAL, WARNING = "Normal", "Warning"


def _now() -> datetime:
    return datetime.now(timezone.utc)


def _rfc3339(moment: datetime) -> str:
    return moment.astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def _parse_duration(text: str) -> timedelta:
    """metav1.Duration text such as `15s`, `1m0s`, `10.5s`."""
    return timedelta(seconds=parse_go_duration(text or "0") or 0.0)


def milli_quantity(milli: int) -> str:
    """`resource.NewMilliQuantity(milli, DecimalSI).String()`."""
    return format_quantity(Quantity(Fraction(milli, 1000), "DecimalSI"))


def set_condition(status: Obj, kind: str, value: str, reason: str, message: str, now: datetime) -> None:
    """Keep lastTransitionTime unless the status flips (kube's `setConditionInList`)."""
    conditions = status.setdefault("conditions", [])
    for cond in conditions:
        if cond["type"] == kind:
            if cond.get("status") != value:
                cond["lastTransitionTime"] = _rfc3339(now)
            cond.update(status=value, reason=reason, message=message)
            return
    conditions.append({"type": kind, "status": value, "lastTransitionTime": _rfc3339(now),
                       "reason": reason, "message": message})


@dataclass
class HPAState:
    """What the controller remembers of one HPA between syncs (kube keeps it in memory too)."""

    recommendations: calc.Recommendations = field(default_factory=calc.Recommendations)
    ups: list[calc.ScaleEvent] = field(default_factory=list)
    downs: list[calc.ScaleEvent] = field(default_factory=list)


class MetricFailure(Exception):
    def __init__(self, reason: str, message: str) -> None:
        super().__init__(message)
        self.reason = reason


class PodAutoscaler:
    def __init__(self, ctx: Context) -> None:
        self.client = ctx.client
        self.recorder = ctx.recorder
        self.hpas = ctx.informer(HPAS)
        opts = ctx.options
        self.sync_period = float(opts.get("horizontal_pod_autoscaler_sync_period_seconds") or SYNC_PERIOD_SECONDS)
        self.tolerance = float(opts.get("horizontal_pod_autoscaler_tolerance", calc.TOLERANCE))
        self.downscale_window = float(opts.get("horizontal_pod_autoscaler_downscale_stabilization_seconds",
                                               calc.DOWNSCALE_STABILIZATION_SECONDS))
        self.states: dict[Request, HPAState] = {}
        self._kinds: dict[tuple[str, str], Resource] = {}

    @classmethod
    def create(cls, ctx: Context) -> Controller:
        reconciler = cls(ctx)
        controller = Controller("horizontal-pod-autoscaler-controller", reconciler, workers=5, clock=ctx.clock)
        queue = controller.queue

        def changed(old: Obj, new: Obj) -> None:
            if (old.get("metadata") or {}).get("generation") != (new.get("metadata") or {}).get("generation"):
                queue.add(Request.of(new))

        reconciler.hpas.add_handler(FuncHandler(add=lambda o: queue.add(Request.of(o)), update=changed,
                                                delete=lambda o: queue.add(Request.of(o))))
        controller._informers.append(reconciler.hpas)  # waited for before the workers start, as watches() does
        return controller

    # -- reconcile -------------------------------------------------------------------------------
    async def reconcile(self, request: Request) -> Result:
        hpa = self.hpas.lister.get(request.name, namespace=request.namespace)
        if hpa is None:
            self.states.pop(request, None)
            return Result()
        state = self.states.setdefault(request, HPAState())
        try:
            await self._reconcile(hpa, state)
        except Exception as exc:  # kube retries a failed HPA only at the next period, never faster
            log.info("horizontal-pod-autoscaler: %s: %s", request, exc)
        return Result(requeue_after=self.sync_period)

    async def _reconcile(self, hpa: Obj, state: HPAState) -> None:
        original = hpa
        hpa = copy.deepcopy(hpa)
        spec, status = hpa.get("spec") or {}, hpa.setdefault("status", {})
        now = _now()
        ref = spec.get("scaleTargetRef") or {}
        reference = f"{ref.get('kind')}/{ref.get('name')}"
        namespace = hpa["metadata"]["namespace"]
        try:
            resource = await self._scale_resource(ref)
            scale = await self.client.get(resource, ref["name"], namespace=namespace, subresource="scale")
        except (errors.StatusError, LookupError) as exc:
            message = f"the HPA controller was unable to get the target's current scale: {_text(exc)}"
            set_condition(status, "AbleToScale", "False", "FailedGetScale", message, now)
            status.setdefault("desiredReplicas", 0)
            self.recorder.event(original, WARNING, "FailedGetScale", _text(exc))
            await self._write_status(original, hpa)
            raise RuntimeError(f"failed to query scale subresource for {reference}: {_text(exc)}") from exc
        set_condition(status, "AbleToScale", "True", "SucceededGetScale",
                      "the HPA controller was able to get the target's current scale", now)
        current = int((scale.get("spec") or {}).get("replicas") or 0)
        minimum = int(spec["minReplicas"]) if spec.get("minReplicas") is not None else 1
        maximum = int(spec.get("maxReplicas") or 0)
        metric_statuses: list[Obj] = []
        rescale_reason = ""
        if current == 0 and minimum != 0:
            desired = 0
            set_condition(status, "ScalingActive", "False", "ScalingDisabled",
                          "scaling is disabled since the replica count of the target is zero", now)
        elif current > maximum:
            desired, rescale_reason = maximum, "Current number of replicas above Spec.MaxReplicas"
        elif current < minimum:
            desired, rescale_reason = minimum, "Current number of replicas below Spec.MinReplicas"
        else:
            try:
                proposal, metric_name, metric_statuses = await self._metrics_replicas(hpa, scale, current, now)
            except MetricFailure as exc:
                status["currentReplicas"] = current
                status.setdefault("desiredReplicas", 0)  # required in the v2 status, kept from the last sync
                self.recorder.event(original, WARNING, "FailedComputeMetricsReplicas", str(exc))
                await self._write_status(original, hpa)
                raise RuntimeError(f"failed to compute desired number of replicas based on listed metrics for "
                                   f"{reference}: {exc}") from exc
            set_condition(status, "ScalingActive", "True", "ValidMetricFound",
                          f"the HPA was able to successfully calculate a replica count from {metric_name}", now)
            desired = self._normalize(hpa, state, current, proposal, minimum, maximum, now)
            if desired > current:
                rescale_reason = f"{metric_name} above target"
            elif desired < current:
                rescale_reason = "All metrics below target"
        rescale = desired != current
        if rescale:
            scale["spec"]["replicas"] = desired
            try:
                await self.client.update(resource, scale, subresource="scale")
            except errors.StatusError as exc:
                self.recorder.event(original, WARNING, "FailedRescale",
                                    f"New size: {desired}; reason: {rescale_reason}; error: {exc.message}")
                set_condition(status, "AbleToScale", "False", "FailedUpdateScale",
                              f"the HPA controller was unable to update the target scale: {exc.message}", now)
                status["currentReplicas"] = current
                status.setdefault("desiredReplicas", 0)
                await self._write_status(original, hpa)
                raise
            set_condition(status, "AbleToScale", "True", "SucceededRescale",
                          f"the HPA controller was able to update the target scale to {desired}", now)
            self.recorder.event(original, NORMAL, "SuccessfulRescale", f"New size: {desired}; reason: {rescale_reason}")
            if spec.get("behavior") is not None:
                events = state.ups if desired > current else state.downs
                events.append(calc.ScaleEvent(time.time(), abs(desired - current)))
            log.info("successful rescale of %s/%s, old size: %d, new size: %d, reason: %s",
                     namespace, hpa["metadata"]["name"], current, desired, rescale_reason)
        status["currentReplicas"] = current
        status["desiredReplicas"] = desired
        if metric_statuses:
            status["currentMetrics"] = metric_statuses
        else:
            status.pop("currentMetrics", None)
        if rescale:
            status["lastScaleTime"] = _rfc3339(now)
        await self._write_status(original, hpa)

    def _normalize(self, hpa: Obj, state: HPAState, current: int, proposal: int, minimum: int, maximum: int,
                   now: datetime) -> int:
        status, behavior = hpa["status"], (hpa.get("spec") or {}).get("behavior")
        at = time.time()
        if behavior is None:
            stabilized = state.recommendations.stabilize(proposal, at, self.downscale_window)
            limited = calc.limit_without_behavior(current, stabilized, minimum, maximum)
        else:
            up_window, down_window = calc.behavior_windows(behavior, self.downscale_window)
            stabilized = state.recommendations.stabilize_with_behavior(current, proposal, up_window, down_window, at)
            for events in (state.ups, state.downs):
                longest = max([float(p.get("periodSeconds") or 0) for side in ("scaleUp", "scaleDown")
                               for p in (behavior.get(side) or {}).get("policies") or []] or [0.0])
                events[:] = [e for e in events if e.at > at - longest]
            limited = calc.limit_with_behavior(current, stabilized, minimum, maximum, behavior,
                                               state.ups, state.downs, at)
        if stabilized != proposal:
            set_condition(status, "AbleToScale", "True", *calc.STABILIZED, now)
        else:
            set_condition(status, "AbleToScale", "True", "ReadyForNewScale", "recommended size matches current size",
                          now)
        set_condition(status, "ScalingLimited", "False" if limited.replicas == stabilized else "True",
                      limited.reason, limited.message, now)
        return limited.replicas

    # -- metrics ---------------------------------------------------------------------------------
    async def _metrics_replicas(self, hpa: Obj, scale: Obj, current: int, now: datetime) -> tuple[int, str, list[Obj]]:
        """The largest proposal over the metrics, its metric's name, and the metric statuses."""
        status = hpa["status"]
        selector = (scale.get("status") or {}).get("selector") or ""
        if not selector:
            self.recorder.event(hpa, WARNING, "SelectorRequired", "selector is required")
            set_condition(status, "ScalingActive", "False", "InvalidSelector",
                          "the HPA target's scale is missing a selector", now)
            raise MetricFailure("InvalidSelector", "selector is required")
        specs = (hpa.get("spec") or {}).get("metrics") or []
        namespace = hpa["metadata"]["namespace"]
        pods = (await self.client.list(PODS, namespace=namespace, label_selector=selector)).get("items") or []
        best, best_name, statuses = -1, "", []
        invalid, first_error, first_condition = 0, "", ("", "")
        for metric in specs:
            try:
                replicas, name, metric_status = await self._one_metric(metric, namespace, selector, pods, current, now)
            except MetricFailure as exc:
                self.recorder.event(hpa, WARNING, exc.reason, str(exc))
                if not invalid:
                    first_error, first_condition = str(exc), (exc.reason, f"the HPA was unable to compute the replica "
                                                                          f"count: {exc}")
                invalid += 1
                statuses.append({"type": ""})
                continue
            statuses.append(metric_status)
            if replicas > best:
                best, best_name = replicas, name
        statuses = [s for s in statuses if s.get("type")]
        if invalid >= len(specs) or (invalid and best < current):
            set_condition(status, "ScalingActive", "False", first_condition[0], first_condition[1], now)
            raise MetricFailure("FailedComputeMetricsReplicas",
                                f"invalid metrics ({invalid} invalid out of {len(specs)}), first error is: {first_error}")
        return best, best_name, statuses

    async def _one_metric(self, metric: Obj, namespace: str, selector: str, pods: list[Obj], current: int,
                          now: datetime) -> tuple[int, str, Obj]:
        kind = metric.get("type")
        if kind not in ("Resource", "ContainerResource"):
            reason = {"Pods": "FailedGetPodsMetric", "Object": "FailedGetObjectMetric",
                      "External": "FailedGetExternalMetric"}.get(kind or "", "InvalidMetricSourceType")
            raise MetricFailure(reason, f"unable to get metric {kind}: the server could not find the requested resource")
        source = metric.get("resource" if kind == "Resource" else "containerResource") or {}
        resource, target = source.get("name", ""), source.get("target") or {}
        container = source.get("container", "") if kind == "ContainerResource" else ""
        reason = "FailedGetResourceMetric" if kind == "Resource" else "FailedGetContainerResourceMetric"
        try:
            metrics = await self._pod_metrics(namespace, selector, resource, container)
        except (MetricFailure, errors.StatusError) as exc:
            what = "utilization" if target.get("averageUtilization") is not None else "usage"
            raise MetricFailure(reason, f"failed to get {resource} {what}: unable to get metrics for resource "
                                        f"{resource}: {_text(exc)}") from exc
        try:
            if target.get("averageValue") is not None:
                proposal = calc.plain_replicas(current, parse_quantity(target["averageValue"]).milli_value(), resource, pods,
                                               metrics, now, tolerance=self.tolerance)
                name = f"{resource} resource"
                current_value: Obj = {"averageValue": milli_quantity(proposal.raw)}
            elif target.get("averageUtilization") is not None:
                proposal = calc.resource_replicas(current, int(target["averageUtilization"]), resource, pods, metrics,
                                                  now, container=container, tolerance=self.tolerance)
                name = f"{resource} resource utilization (percentage of request)"
                current_value = {"averageValue": milli_quantity(proposal.raw),
                                 "averageUtilization": proposal.utilization}
            else:
                raise MetricFailure(reason, "invalid resource metric source: neither a utilization target nor a "
                                            "value target was set")
        except calc.MetricsError as exc:
            what = "utilization" if target.get("averageUtilization") is not None else "usage"
            raise MetricFailure(reason, f"failed to get {resource} {what}: {exc}") from exc
        if kind == "ContainerResource":
            name = f"{resource} container resource" + (" utilization (percentage of request)"
                                                       if "averageUtilization" in current_value else "")
            body = {"type": kind, "containerResource": {"name": resource, "container": container,
                                                        "current": current_value}}
        else:
            body = {"type": kind, "resource": {"name": resource, "current": current_value}}
        return proposal.replicas, name, body

    async def _pod_metrics(self, namespace: str, selector: str, resource: str,
                           container: str) -> dict[str, calc.PodMetric]:
        """`GetResourceMetric`: milli-usage per pod from metrics.k8s.io."""
        listed = await self.client.list(POD_METRICS, namespace=namespace, label_selector=selector)
        items = listed.get("items") or []
        if not items:
            raise MetricFailure("", "no metrics returned from resource metrics API")
        out = {}
        for item in items:
            total, found = 0, False
            for c in item.get("containers") or []:
                if container and c.get("name") != container:
                    continue
                value = (c.get("usage") or {}).get(resource)
                if value is None:
                    found = False
                    break
                total += parse_quantity(value).milli_value()
                found = True
            if found:
                stamp = datetime.fromisoformat(str(item.get("timestamp", "")).replace("Z", "+00:00"))
                out[item["metadata"]["name"]] = calc.PodMetric(total, stamp, _parse_duration(item.get("window", "")))
        if container and not out:
            raise MetricFailure("", f"failed to get container metrics: container {container} not present in metrics")
        return out

    # -- scale targets ---------------------------------------------------------------------------
    async def _scale_resource(self, ref: Obj) -> Resource:
        """The resource serving `kind` in `apiVersion`, with a scale subresource (discovery, remembered)."""
        api_version, kind = ref.get("apiVersion", ""), ref.get("kind", "")
        key = (api_version, kind)
        if key not in self._kinds:
            group, _, version = api_version.rpartition("/")
            path = f"/apis/{group}/{version}" if group else f"/api/{version}"
            try:
                listing = await self.client.request("GET", path)
            except errors.NotFound:
                listing = {}
            names = {r.get("name", "") for r in listing.get("resources") or []}
            for r in listing.get("resources") or []:
                if r.get("kind") == kind and "/" not in r.get("name", "") and f"{r['name']}/scale" in names:
                    self._kinds[key] = Resource(group, version, r["name"], bool(r.get("namespaced")))
                    break
            else:
                raise LookupError(f'no matches for kind "{kind}" in group "{group}"')
        return self._kinds[key]

    async def _write_status(self, original: Obj, hpa: Obj) -> None:
        if (original.get("status") or {}) == hpa.get("status"):
            return
        try:
            await self.client.update(HPAS, hpa, subresource="status")
        except errors.NotFound:
            return


def _text(exc: BaseException) -> str:
    return exc.message if isinstance(exc, errors.StatusError) else str(exc)


def create(ctx: Context) -> Controller:
    return PodAutoscaler.create(ctx)

