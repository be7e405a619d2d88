"""Printers of the workload groups: apps, batch, autoscaling and policy.

Cells follow kube-apiserver 1.33's printers. Fields that API defaulting always fills on a real
cluster (replicas 1, a CronJob's `suspend: false`, an HPA's `minReplicas: 1` and its default
80% CPU target) print their defaulted values when a stored object lacks them.
"""

from __future__ import annotations

from pykube_server.api.selectors import SelectorError, selector_from_object
from pykube_server.registry.printers.common import (
    AGE, NONE, NAME, UNKNOWN, Cell, Column, Obj, bool_word, col, condition, doc, field,
    format_labels, get, human_duration, int_field, int_or_string, label_selector, since,
    template_columns, timestamp, wide,
)

_APPS = "api.apps.v1."


def _replicas(o: Obj) -> int:
    return int(get(o, "spec", "replicas", default=1))


def _ready_of_desired(o: Obj, now: float) -> str:
    return f"{int(get(o, 'status', 'readyReplicas', default=0))}/{_replicas(o)}"


def _selector_string(o: Obj, now: float) -> str:
    """`LabelSelectorAsSelector(...).String()`: "" for none, `<invalid>` on error."""
    try:
        return selector_from_object(get(o, "spec", "selector")).to_string()
    except SelectorError:
        return "<invalid>"


DEPLOYMENT_COLUMNS = (
    NAME,
    col("Ready", _ready_of_desired, "Number of the pod with ready state"),
    col("Up-to-date", int_field("status", "updatedReplicas"), doc(_APPS + "DeploymentStatus", "updatedReplicas")),
    col("Available", int_field("status", "availableReplicas"), doc(_APPS + "DeploymentStatus", "availableReplicas")),
    AGE,
    *template_columns("spec", "template"),
    wide("Selector", _selector_string, doc(_APPS + "DeploymentSpec", "selector")),
)

REPLICA_SET_COLUMNS = (
    NAME,
    col("Desired", lambda o, now: _replicas(o), doc(_APPS + "ReplicaSetSpec", "replicas"), type="integer"),
    col("Current", int_field("status", "replicas"), doc(_APPS + "ReplicaSetStatus", "replicas"), type="integer"),
    col("Ready", int_field("status", "readyReplicas"), doc(_APPS + "ReplicaSetStatus", "readyReplicas"), type="integer"),
    AGE,
    *template_columns("spec", "template"),
    wide("Selector", label_selector("spec", "selector"), doc(_APPS + "ReplicaSetSpec", "selector")),
)

STATEFUL_SET_COLUMNS = (
    NAME,
    col("Ready", _ready_of_desired, "Number of the pod with ready state"),
    AGE,
    *template_columns("spec", "template"),
)


def _ds_int(name: str) -> Cell:
    return int_field("status", name)


DAEMON_SET_COLUMNS = (
    NAME,
    col("Desired", _ds_int("desiredNumberScheduled"), doc(_APPS + "DaemonSetStatus", "desiredNumberScheduled"), type="integer"),
    col("Current", _ds_int("currentNumberScheduled"), doc(_APPS + "DaemonSetStatus", "currentNumberScheduled"), type="integer"),
    col("Ready", _ds_int("numberReady"), doc(_APPS + "DaemonSetStatus", "numberReady"), type="integer"),
    col("Up-to-date", _ds_int("updatedNumberScheduled"), doc(_APPS + "DaemonSetStatus", "updatedNumberScheduled"), type="integer"),
    col("Available", _ds_int("numberAvailable"), doc(_APPS + "DaemonSetStatus", "numberAvailable"), type="integer"),
    col("Node Selector", lambda o, now: format_labels(get(o, "spec", "template", "spec", "nodeSelector")),
        doc("api.core.v1.PodSpec", "nodeSelector")),
    AGE,
    *template_columns("spec", "template"),
    wide("Selector", label_selector("spec", "selector"), doc(_APPS + "DaemonSetSpec", "selector")),
)


def controller_of(o: Obj, now: float) -> str:
    """The controlling owner as `kind.group/name` (`formatResourceName`), or `<none>`."""
    for ref in get(o, "metadata", "ownerReferences", default=[]):
        if ref.get("controller"):
            api_version = str(ref.get("apiVersion", ""))
            group = api_version.split("/", 1)[0] if "/" in api_version else ""
            kind = str(ref.get("kind", ""))
            if not kind and not group:
                return str(ref.get("name", ""))
            return f"{(kind + '.' + group) if group else kind}".lower() + "/" + str(ref.get("name", ""))
    return NONE


CONTROLLER_REVISION_COLUMNS = (
    NAME,
    col("Controller", controller_of, "Controller of the object"),
    col("Revision", int_field("revision"), doc(_APPS + "ControllerRevision", "revision")),
    AGE,
)

# -- batch -----------------------------------------------------------------------------------


def _job_condition(o: Obj, kind: str) -> bool:
    c = condition(get(o, "status", "conditions"), kind)
    return c is not None and c.get("status") == "True"


def job_status(o: Obj, now: float) -> str:
    if _job_condition(o, "Complete"):
        return "Complete"
    if _job_condition(o, "Failed"):
        return "Failed"
    if get(o, "metadata", "deletionTimestamp"):
        return "Terminating"
    if _job_condition(o, "Suspended"):
        return "Suspended"
    if _job_condition(o, "FailureTarget"):
        return "FailureTarget"
    return "Running"


def job_completions(o: Obj, now: float) -> str:
    succeeded = int(get(o, "status", "succeeded", default=0))
    completions = get(o, "spec", "completions")
    if completions is not None:
        return f"{succeeded}/{int(completions)}"
    parallelism = int(get(o, "spec", "parallelism", default=0))
    return f"{succeeded}/1 of {parallelism}" if parallelism > 1 else f"{succeeded}/1"


def job_duration(o: Obj, now: float) -> str:
    start = timestamp(get(o, "status", "startTime"))
    if start is None:
        return ""
    end = timestamp(get(o, "status", "completionTime"))
    return human_duration((now if end is None else end) - start)


JOB_COLUMNS = (
    NAME,
    col("Status", job_status, "Status of the job."),
    col("Completions", job_completions, doc("api.batch.v1.JobStatus", "succeeded")),
    col("Duration", job_duration, "Time required to complete the job."),
    AGE,
    *template_columns("spec", "template"),
    wide("Selector", label_selector("spec", "selector"), doc("api.batch.v1.JobSpec", "selector")),
)


def _last_schedule(o: Obj, now: float) -> str:
    when = get(o, "status", "lastScheduleTime")
    return since(when, now) if when else NONE


CRON_JOB_COLUMNS = (
    NAME,
    col("Schedule", field("spec", "schedule"), doc("api.batch.v1.CronJobSpec", "schedule")),
    col("Timezone", field("spec", "timeZone", default=NONE), doc("api.batch.v1.CronJobSpec", "timeZone")),
    col("Suspend", lambda o, now: bool_word(get(o, "spec", "suspend", default=False)),
        doc("api.batch.v1.CronJobSpec", "suspend"), type="boolean"),
    col("Active", lambda o, now: len(get(o, "status", "active", default=[])),
        doc("api.batch.v1.CronJobStatus", "active"), type="integer"),
    col("Last Schedule", _last_schedule, doc("api.batch.v1.CronJobStatus", "lastScheduleTime")),
    AGE,
    *template_columns("spec", "jobTemplate", "spec", "template"),
    wide("Selector", label_selector("spec", "jobTemplate", "spec", "selector"), doc("api.batch.v1.JobSpec", "selector")),
)

# -- autoscaling -----------------------------------------------------------------------------

_DEFAULT_CPU = {"type": "Resource", "resource": {"name": "cpu", "target": {"type": "Utilization", "averageUtilization": 80}}}


def hpa_metrics(o: Obj) -> tuple[list[Obj], list[Obj]]:
    """(spec metrics, current metrics) in autoscaling/v2 form, also for v1 objects."""
    spec, status = o.get("spec") or {}, o.get("status") or {}
    if "targetCPUUtilizationPercentage" in spec or str(o.get("apiVersion", "")) == "autoscaling/v1":
        target = spec.get("targetCPUUtilizationPercentage")
        metrics = [] if target is None else [
            {"type": "Resource", "resource": {"name": "cpu", "target": {"type": "Utilization", "averageUtilization": target}}}]
        current = status.get("currentCPUUtilizationPercentage")
        statuses = [] if current is None else [
            {"type": "Resource", "resource": {"name": "cpu", "current": {"averageUtilization": current}}}]
        return metrics, statuses
    return list(spec.get("metrics") or [_DEFAULT_CPU]), list(status.get("currentMetrics") or [])


def _metric_text(spec: Obj, status: Obj | None) -> str:
    kind = spec.get("type")
    source_key = {"External": "external", "Pods": "pods", "Object": "object",
                  "Resource": "resource", "ContainerResource": "containerResource"}.get(str(kind))
    if source_key is None:
        return "<unknown type>"
    source = spec.get(source_key) or {}
    target = source.get("target") or {}
    current = (status or {}).get(source_key) if status else None
    current_values = (current or {}).get("current") or {}
    if kind == "Pods":
        return f"{current_values.get('averageValue', UNKNOWN) if current else UNKNOWN}/{target.get('averageValue', '')}"
    if kind in ("External", "Object"):
        if target.get("averageValue") is not None:
            now_value = current_values.get("averageValue") if current else None
            return f"{now_value if now_value is not None else UNKNOWN}/{target['averageValue']} (avg)"
        return f"{current_values.get('value', UNKNOWN) if current else UNKNOWN}/{target.get('value', '')}"
    name = source.get("name", "")
    if target.get("averageValue") is not None:
        return f"{name}: {current_values.get('averageValue', UNKNOWN) if current else UNKNOWN}/{target['averageValue']}"
    utilization = current_values.get("averageUtilization") if current else None
    now_text = UNKNOWN if utilization is None else f"{utilization}%"
    goal = target.get("averageUtilization")
    return f"{name}: {now_text}/{'<auto>' if goal is None else f'{goal}%'}"


def hpa_targets(o: Obj, now: float) -> str:
    """`formatHPAMetrics`: at most two metrics, then `+ N more...`."""
    specs, statuses = hpa_metrics(o)
    if not specs:
        return NONE
    texts = [_metric_text(s, statuses[i] if i < len(statuses) else None) for i, s in enumerate(specs)]
    shown = ", ".join(texts[:2])
    return f"{shown} + {len(texts) - 2} more..." if len(texts) > 2 else shown


def _hpa_reference(o: Obj, now: float) -> str:
    ref = get(o, "spec", "scaleTargetRef", default={})
    return f"{ref.get('kind', '')}/{ref.get('name', '')}"


_HPA = "api.autoscaling.v2."
HORIZONTAL_POD_AUTOSCALER_COLUMNS = (
    NAME,
    col("Reference", _hpa_reference, doc(_HPA + "HorizontalPodAutoscalerSpec", "scaleTargetRef")),
    col("Targets", hpa_targets, doc(_HPA + "HorizontalPodAutoscalerSpec", "metrics")),
    col("MinPods", lambda o, now: str(get(o, "spec", "minReplicas", default=1)),
        doc(_HPA + "HorizontalPodAutoscalerSpec", "minReplicas")),
    col("MaxPods", int_field("spec", "maxReplicas"), doc(_HPA + "HorizontalPodAutoscalerSpec", "maxReplicas")),
    col("Replicas", int_field("status", "currentReplicas"), doc(_HPA + "HorizontalPodAutoscalerStatus", "currentReplicas")),
    AGE,
)

# -- policy ----------------------------------------------------------------------------------


def _budget(name: str) -> Cell:
    def cell(o: Obj, now: float) -> str:
        value = get(o, "spec", name)
        return "N/A" if value is None else int_or_string(value)

    return cell


POD_DISRUPTION_BUDGET_COLUMNS = (
    NAME,
    col("Min Available", _budget("minAvailable"), "The minimum number of pods that must be available."),
    col("Max Unavailable", _budget("maxUnavailable"), "The maximum number of pods that may be unavailable."),
    col("Allowed Disruptions", int_field("status", "disruptionsAllowed"),
        "Calculated number of pods that may be disrupted at this time.", type="integer"),
    AGE,
)

COLUMNS: dict[tuple[str, str], tuple[Column, ...]] = {
    ("apps", "controllerrevisions"): CONTROLLER_REVISION_COLUMNS,
    ("apps", "daemonsets"): DAEMON_SET_COLUMNS,
    ("apps", "deployments"): DEPLOYMENT_COLUMNS,
    ("apps", "replicasets"): REPLICA_SET_COLUMNS,
    ("apps", "statefulsets"): STATEFUL_SET_COLUMNS,
    ("batch", "cronjobs"): CRON_JOB_COLUMNS,
    ("batch", "jobs"): JOB_COLUMNS,
    ("autoscaling", "horizontalpodautoscalers"): HORIZONTAL_POD_AUTOSCALER_COLUMNS,
    ("policy", "poddisruptionbudgets"): POD_DISRUPTION_BUDGET_COLUMNS,
}

__all__ = ["COLUMNS"]
