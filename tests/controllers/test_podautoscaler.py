"""The HPA's arithmetic (kube's replica calculator, stabilisation, behaviour policies) and conditions."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest

from pykube_server.api import errors
from pykube_server.controllers import replicacalc as calc
from pykube_server.controllers.framework import Context, Request
from pykube_server.controllers.podautoscaler import PodAutoscaler, milli_quantity, set_condition

NOW = datetime(2026, 1, 1, 12, 0, 0, tzinfo=timezone.utc)
LONG_AGO = NOW - timedelta(hours=1)


def _stamp(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")


def pod(name: str, cpu: str = "100m", *, phase: str = "Running", ready: str = "True",
        started: datetime = LONG_AGO, ready_since: datetime = LONG_AGO, deleting: bool = False) -> dict:
    meta: dict = {"name": name, "namespace": "ns"}
    if deleting:
        meta["deletionTimestamp"] = _stamp(NOW)
    return {"metadata": meta,
            "spec": {"containers": [{"name": "app", "resources": {"requests": {"cpu": cpu}}}]},
            "status": {"phase": phase, "startTime": _stamp(started),
                       "conditions": [{"type": "Ready", "status": ready, "lastTransitionTime": _stamp(ready_since)}]}}


def metric(milli: int, at: datetime = NOW) -> calc.PodMetric:
    return calc.PodMetric(milli, at, timedelta(seconds=10))


def test_scale_up_is_the_ceiling_of_ratio_times_ready_pods() -> None:
    pods = [pod("a"), pod("b")]
    got = calc.resource_replicas(2, 50, "cpu", pods, {"a": metric(200), "b": metric(100)}, NOW)
    # 300m used of 200m requested = 150 %, target 50 %: ratio 3
    assert (got.replicas, got.utilization, got.raw) == (6, 150, 150)


def test_within_tolerance_nothing_changes() -> None:
    pods = [pod("a"), pod("b")]
    got = calc.resource_replicas(2, 50, "cpu", pods, {"a": metric(54), "b": metric(54)}, NOW)
    assert (got.replicas, got.utilization) == (2, 54)  # ratio 1.08: inside 0.1
    got = calc.resource_replicas(2, 50, "cpu", pods, {"a": metric(56), "b": metric(56)}, NOW)
    assert got.replicas == 3  # ratio 1.12: ceil(1.12 * 2)
    assert calc.resource_replicas(2, 50, "cpu", pods, {"a": metric(56), "b": metric(56)}, NOW,
                                  tolerance=0.2).replicas == 2


def test_scale_down() -> None:
    pods = [pod(n) for n in "abcd"]
    got = calc.resource_replicas(4, 50, "cpu", pods, {n: metric(10) for n in "abcd"}, NOW)
    assert got.replicas == 1  # 10 % of a 50 % target over 4 pods: ceil(0.8)


def test_missing_pods_count_at_full_request_when_scaling_down() -> None:
    pods = [pod("a"), pod("b"), pod("c")]
    # a and b at 20 %: ratio 0.4; c has no metrics and is assumed at max(100, 50) % = 100m
    got = calc.resource_replicas(3, 50, "cpu", pods, {"a": metric(20), "b": metric(20)}, NOW)
    # (20 + 20 + 100) / 300 = 46 % -> ratio 0.92: inside the tolerance, so 3 stays
    assert got.replicas == 3
    assert got.utilization == 20  # what is reported is the measured utilization


def test_missing_pods_count_at_zero_when_scaling_up() -> None:
    pods = [pod("a"), pod("b")]
    got = calc.resource_replicas(2, 50, "cpu", pods, {"a": metric(200)}, NOW)
    # a at 200 %: ratio 4; b missing counts 0: 200m of 200m requested = 100 %, ratio 2 -> ceil(2 * 2)
    assert got.replicas == 4


def test_unready_pods_count_at_zero_only_when_scaling_up() -> None:
    pods = [pod("a"), pod("b", phase="Pending")]
    got = calc.resource_replicas(2, 50, "cpu", pods, {"a": metric(100)}, NOW)
    # a alone: ratio 2; with b at 0: 100 of 200 = 50 %: ratio 1.0 -> no change
    assert got.replicas == 2
    got = calc.resource_replicas(2, 50, "cpu", [pod("a"), pod("b", phase="Pending")], {"a": metric(10)}, NOW)
    assert got.replicas == 1  # scaling down ignores the unready pod: ceil(0.2 * 1)


def test_cpu_readiness_within_the_initialization_period() -> None:
    fresh = NOW - timedelta(minutes=1)
    pods = [pod("old"), pod("new", started=fresh, ready_since=NOW - timedelta(seconds=5))]
    groups = calc.group_pods(pods, {"old": metric(1), "new": metric(1)}, "cpu", NOW)
    # the metric of "new" was taken less than one window after it became ready
    assert (groups.ready_count, groups.unready) == (1, {"new"})
    groups = calc.group_pods(pods, {"old": metric(1), "new": metric(1)}, "memory", NOW)
    assert groups.ready_count == 2  # only CPU looks at readiness
    groups = calc.group_pods([pod("gone", deleting=True), pod("failed", phase="Failed")], {}, "cpu", NOW)
    assert groups.ignored == {"gone", "failed"}


def test_errors_are_worded_as_kube_words_them() -> None:
    with pytest.raises(calc.MetricsError, match="^no pods returned by selector while calculating replica count$"):
        calc.resource_replicas(1, 50, "cpu", [], {}, NOW)
    with pytest.raises(calc.MetricsError, match=r"^did not receive metrics for targeted pods \(pods might be unready\)$"):
        calc.resource_replicas(1, 50, "cpu", [pod("a", phase="Pending")], {"a": metric(1)}, NOW)
    bare = pod("a")
    del bare["spec"]["containers"][0]["resources"]
    with pytest.raises(calc.MetricsError, match="^missing request for cpu in container app of Pod a$"):
        calc.resource_replicas(1, 50, "cpu", [bare], {"a": metric(1)}, NOW)


def test_average_value_targets() -> None:
    pods = [pod("a"), pod("b")]
    got = calc.plain_replicas(2, 100, "cpu", pods, {"a": metric(300), "b": metric(100)}, NOW)
    assert (got.replicas, got.raw, got.utilization) == (4, 200, None)
    assert calc.plain_replicas(2, 100, "cpu", pods, {"a": metric(105), "b": metric(100)}, NOW).replicas == 2


def test_limits_without_behavior() -> None:
    assert calc.limit_without_behavior(1, 10, 1, 10) == calc.Limited(4, *calc.SCALE_UP_LIMIT)
    assert calc.limit_without_behavior(3, 10, 1, 10) == calc.Limited(6, *calc.SCALE_UP_LIMIT)
    assert calc.limit_without_behavior(3, 10, 1, 5) == calc.Limited(5, *calc.TOO_MANY)
    assert calc.limit_without_behavior(3, 0, 2, 5) == calc.Limited(2, *calc.TOO_FEW)
    assert calc.limit_without_behavior(3, 4, 1, 5) == calc.Limited(4, *calc.WITHIN_RANGE)


def test_downscale_stabilization_keeps_the_highest_recent_recommendation() -> None:
    recs = calc.Recommendations()
    assert recs.stabilize(5, now=0.0) == 5
    assert recs.stabilize(2, now=60.0) == 5  # within 5 minutes of the 5
    assert recs.stabilize(2, now=299.0) == 5
    assert recs.stabilize(2, now=301.0) == 2  # the 5 has aged out
    assert recs.stabilize(8, now=302.0) == 8  # scaling up is never held back


def test_behavior_stabilization_windows() -> None:
    recs = calc.Recommendations()
    # scale-up window of 60 s: the lowest recommendation of the last minute wins
    assert recs.stabilize_with_behavior(2, 2, 60, 300, now=0.0) == 2
    assert recs.stabilize_with_behavior(2, 6, 60, 300, now=10.0) == 2
    assert recs.stabilize_with_behavior(2, 6, 60, 300, now=61.0) == 6
    # going down, the highest of the down window holds
    assert recs.stabilize_with_behavior(6, 1, 60, 300, now=70.0) == 6
    up, down = calc.behavior_windows({"scaleUp": {"stabilizationWindowSeconds": 0}, "scaleDown": {}})
    assert (up, down) == (0.0, 300.0)


DEFAULT_BEHAVIOR = {
    "scaleUp": {"stabilizationWindowSeconds": 0, "selectPolicy": "Max",
                "policies": [{"type": "Pods", "value": 4, "periodSeconds": 15},
                             {"type": "Percent", "value": 100, "periodSeconds": 15}]},
    "scaleDown": {"selectPolicy": "Max", "policies": [{"type": "Percent", "value": 100, "periodSeconds": 15}]},
}


def test_behavior_policies_limit_the_rate() -> None:
    # from 1: max(1 + 4, 1 * 2) = 5
    assert calc.limit_with_behavior(1, 20, 1, 20, DEFAULT_BEHAVIOR, [], [], now=100.0) == calc.Limited(5, *calc.SCALE_UP_LIMIT)
    # 4 were added 5 s ago: the period started at 1 replica, so 5 is still the limit
    ups = [calc.ScaleEvent(95.0, 4)]
    assert calc.limit_with_behavior(5, 20, 1, 20, DEFAULT_BEHAVIOR, ups, [], now=100.0).replicas == 5
    # ... and after the 15 s period, from 5: max(9, 10)
    assert calc.limit_with_behavior(5, 20, 1, 20, DEFAULT_BEHAVIOR, ups, [], now=111.0).replicas == 10
    slow_down = {"scaleDown": {"policies": [{"type": "Pods", "value": 1, "periodSeconds": 60}]}}
    assert calc.limit_with_behavior(5, 1, 1, 20, slow_down, [], [], now=0.0) == calc.Limited(4, *calc.SCALE_DOWN_LIMIT)
    disabled = {"scaleDown": {"selectPolicy": "Disabled"}}
    assert calc.limit_with_behavior(5, 1, 1, 20, disabled, [], [], now=0.0).replicas == 5
    assert calc.limit_with_behavior(5, 30, 1, 8, DEFAULT_BEHAVIOR, [], [], now=0.0) == calc.Limited(8, *calc.TOO_MANY)


def test_conditions_keep_their_transition_time_until_they_flip() -> None:
    status: dict = {}
    set_condition(status, "AbleToScale", "True", "SucceededGetScale", "m1", NOW)
    set_condition(status, "AbleToScale", "True", "ReadyForNewScale", "m2", NOW + timedelta(minutes=1))
    [cond] = status["conditions"]
    assert (cond["reason"], cond["lastTransitionTime"]) == ("ReadyForNewScale", "2026-01-01T12:00:00Z")
    set_condition(status, "AbleToScale", "False", "FailedGetScale", "m3", NOW + timedelta(minutes=2))
    assert status["conditions"][0]["lastTransitionTime"] == "2026-01-01T12:02:00Z"


def test_current_metric_quantities() -> None:
    assert milli_quantity(150) == "150m"
    assert milli_quantity(2000) == "2"
    assert milli_quantity(0) == "0"


# -- the reconciler against a fake API -----------------------------------------------------------


class FakeLister:
    def __init__(self) -> None:
        self.objects: dict[tuple[str, str], dict] = {}

    def get(self, name: str, namespace: str = "") -> dict | None:
        return self.objects.get((namespace, name))


class FakeInformer:
    def __init__(self) -> None:
        self.lister = FakeLister()

    def add_handler(self, handler: object) -> None:
        pass

    async def wait_synced(self) -> None:
        pass


class FakeInformers:
    def __init__(self) -> None:
        self.hpas = FakeInformer()

    def informer(self, resource: object, **kwargs: object) -> FakeInformer:
        return self.hpas


class FakeRecorder:
    def __init__(self) -> None:
        self.events: list[tuple[str, str, str]] = []

    def event(self, obj: dict, type: str, reason: str, message: str, *, field_path: str = "") -> None:
        self.events.append((type, reason, message))


class FakeAPI:
    """Just what the HPA controller asks of the API: discovery, /scale, pods, PodMetrics, status."""

    def __init__(self) -> None:
        self.replicas = 2
        self.selector = "app=web"
        self.pods: list[dict] = []
        self.usage: dict[str, str] = {}
        self.scale_writes: list[int] = []
        self.statuses: list[dict] = []

    async def request(self, method: str, path: str, **kwargs: object) -> dict:
        if path == "/apis/apps/v1":
            return {"resources": [{"name": "deployments", "namespaced": True, "kind": "Deployment"},
                                  {"name": "deployments/scale", "namespaced": True, "kind": "Scale"}]}
        raise errors.NotFound("the server could not find the requested resource")

    async def get(self, resource, name: str, *, namespace: str = "", subresource: str = "") -> dict:  # type: ignore[no-untyped-def]
        assert (resource.plural, subresource) == ("deployments", "scale")
        return {"kind": "Scale", "apiVersion": "autoscaling/v1", "metadata": {"name": name, "namespace": namespace},
                "spec": {"replicas": self.replicas}, "status": {"replicas": self.replicas, "selector": self.selector}}

    async def list(self, resource, *, namespace: str = "", label_selector: str = "") -> dict:  # type: ignore[no-untyped-def]
        if resource.group == "metrics.k8s.io":
            items = [{"metadata": {"name": n, "namespace": namespace}, "timestamp": _stamp(NOW), "window": "10s",
                      "containers": [{"name": "app", "usage": {"cpu": cpu, "memory": "1Mi"}}]}
                     for n, cpu in self.usage.items()]
            return {"items": items}
        return {"items": self.pods}

    async def update(self, resource, obj: dict, *, subresource: str = "") -> dict:  # type: ignore[no-untyped-def]
        if subresource == "scale":
            self.replicas = obj["spec"]["replicas"]
            self.scale_writes.append(self.replicas)
        else:
            self.statuses.append(obj["status"])
        return obj


def _hpa(target: str = "Deployment") -> dict:
    return {"apiVersion": "autoscaling/v2", "kind": "HorizontalPodAutoscaler",
            "metadata": {"name": "web", "namespace": "ns", "generation": 1},
            "spec": {"scaleTargetRef": {"apiVersion": "apps/v1", "kind": target, "name": "web"},
                     "minReplicas": 1, "maxReplicas": 10,
                     "metrics": [{"type": "Resource", "resource": {
                         "name": "cpu", "target": {"type": "Utilization", "averageUtilization": 50}}}]}}


def _controller(api: FakeAPI, hpa: dict) -> tuple[PodAutoscaler, FakeRecorder]:
    informers, recorder = FakeInformers(), FakeRecorder()
    informers.hpas.lister.objects[("ns", "web")] = hpa
    ctx = Context(api, informers, recorder)  # type: ignore[arg-type]
    return PodAutoscaler(ctx), recorder


def _conditions(status: dict) -> dict[str, tuple[str, str]]:
    return {c["type"]: (c["status"], c["reason"]) for c in status["conditions"]}


async def test_reconcile_scales_up_then_holds_the_scale_down() -> None:
    api = FakeAPI()
    api.pods = [pod("a"), pod("b")]
    api.usage = {"a": "100m", "b": "100m"}  # 100 % of request against a 50 % target
    controller, recorder = _controller(api, _hpa())
    result = await controller.reconcile(Request("ns", "web"))
    assert result.requeue_after == 15.0
    assert api.scale_writes == [4]
    assert recorder.events == [("Normal", "SuccessfulRescale",
                                "New size: 4; reason: cpu resource utilization (percentage of request) above target")]
    status = api.statuses[-1]
    assert (status["currentReplicas"], status["desiredReplicas"]) == (2, 4)
    assert status["currentMetrics"] == [{"type": "Resource", "resource": {
        "name": "cpu", "current": {"averageValue": "100m", "averageUtilization": 100}}}]
    assert "lastScaleTime" in status
    assert _conditions(status) == {"AbleToScale": ("True", "SucceededRescale"),
                                   "ScalingActive": ("True", "ValidMetricFound"),
                                   "ScalingLimited": ("False", "DesiredWithinRange")}
    # usage falls: the recommendation of 1 is held at 4 by the 5-minute downscale window
    controller.hpas.lister.objects[("ns", "web")] = {**_hpa(), "status": status}
    api.pods = [pod(n) for n in "abcd"]
    api.usage = {n: "5m" for n in "abcd"}
    await controller.reconcile(Request("ns", "web"))
    assert api.scale_writes == [4]
    status = api.statuses[-1]
    assert status["desiredReplicas"] == 4
    assert _conditions(status)["AbleToScale"] == ("True", "ScaleDownStabilized")


async def test_reconcile_reports_missing_selectors_and_scale_targets() -> None:
    api = FakeAPI()
    api.selector = ""
    controller, recorder = _controller(api, _hpa())
    await controller.reconcile(Request("ns", "web"))
    assert ("Warning", "SelectorRequired", "selector is required") in recorder.events
    assert _conditions(api.statuses[-1])["ScalingActive"] == ("False", "InvalidSelector")
    api = FakeAPI()
    controller, recorder = _controller(api, _hpa(target="Gadget"))
    await controller.reconcile(Request("ns", "web"))
    assert recorder.events == [("Warning", "FailedGetScale", 'no matches for kind "Gadget" in group "apps"')]
    [cond] = api.statuses[-1]["conditions"]
    assert (cond["type"], cond["status"], cond["reason"]) == ("AbleToScale", "False", "FailedGetScale")
    assert cond["message"] == ("the HPA controller was unable to get the target's current scale: "
                               'no matches for kind "Gadget" in group "apps"')
