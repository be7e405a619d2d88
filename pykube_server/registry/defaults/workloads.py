"""Scheme defaults of the workload kinds: apps/v1, batch/v1, ReplicationController, PodTemplate.

Each kind's `SetDefaults_<Kind>` followed by the template defaults `zz_generated.defaults.go`
applies to its embedded PodTemplateSpec. The Job's generated selector and labels (the Job
strategy's `generateSelector`, then label defaulting as the storage codec re-applies it on
read-back) live here too, because in pykube defaulting runs after `prepare_for_create`.
"""

from __future__ import annotations

from typing import Any

from pykube_server.registry.defaults.core import default_pvc
from pykube_server.registry.defaults.pods import default_template

Obj = dict[str, Any]

JOB_NAME_LABELS = ("job-name", "batch.kubernetes.io/job-name")
CONTROLLER_UID_LABELS = ("controller-uid", "batch.kubernetes.io/controller-uid")
CONTROLLER_UID_LABEL = "batch.kubernetes.io/controller-uid"


def _spec(obj: Obj) -> Obj:
    spec = obj.setdefault("spec", {})
    return spec if isinstance(spec, dict) else {}


def _template_labels(spec: Obj) -> Obj | None:
    template = spec.get("template")
    meta = template.get("metadata") if isinstance(template, dict) else None
    labels = meta.get("labels") if isinstance(meta, dict) else None
    return labels if isinstance(labels, dict) else None


def default_deployment(obj: Obj) -> None:
    spec = _spec(obj)
    spec.setdefault("replicas", 1)
    strategy = spec.setdefault("strategy", {})
    if isinstance(strategy, dict):
        strategy.setdefault("type", "RollingUpdate")
        if strategy["type"] == "RollingUpdate":
            rolling = strategy.setdefault("rollingUpdate", {})
            if isinstance(rolling, dict):
                rolling.setdefault("maxUnavailable", "25%")
                rolling.setdefault("maxSurge", "25%")
    spec.setdefault("revisionHistoryLimit", 10)
    spec.setdefault("progressDeadlineSeconds", 600)
    default_template(spec.get("template"))


def default_replica_set(obj: Obj) -> None:
    spec = _spec(obj)
    spec.setdefault("replicas", 1)
    default_template(spec.get("template"))


def default_stateful_set(obj: Obj) -> None:
    spec = _spec(obj)
    spec.setdefault("podManagementPolicy", "OrderedReady")
    strategy = spec.setdefault("updateStrategy", {})
    if isinstance(strategy, dict):
        strategy.setdefault("type", "RollingUpdate")
        if strategy["type"] == "RollingUpdate":
            rolling = strategy.setdefault("rollingUpdate", {})
            if isinstance(rolling, dict):
                rolling.setdefault("partition", 0)
    spec.setdefault("replicas", 1)
    spec.setdefault("revisionHistoryLimit", 10)
    policy = spec.setdefault("persistentVolumeClaimRetentionPolicy", {})
    if isinstance(policy, dict):
        policy.setdefault("whenDeleted", "Retain")
        policy.setdefault("whenScaled", "Retain")
    for claim in spec.get("volumeClaimTemplates") or []:
        if isinstance(claim, dict):
            default_pvc(claim)
    default_template(spec.get("template"))


def default_daemon_set(obj: Obj) -> None:
    spec = _spec(obj)
    strategy = spec.setdefault("updateStrategy", {})
    if isinstance(strategy, dict):
        strategy.setdefault("type", "RollingUpdate")
        if strategy["type"] == "RollingUpdate":
            rolling = strategy.setdefault("rollingUpdate", {})
            if isinstance(rolling, dict):
                rolling.setdefault("maxUnavailable", 1)
                rolling.setdefault("maxSurge", 0)
    spec.setdefault("revisionHistoryLimit", 10)
    default_template(spec.get("template"))


def default_replication_controller(obj: Obj) -> None:
    """Selector and labels default to the template's labels; replicas to 1."""
    spec = _spec(obj)
    labels = _template_labels(spec)
    if labels:
        if not spec.get("selector"):
            spec["selector"] = dict(labels)
        meta = obj.setdefault("metadata", {})
        if not meta.get("labels"):
            meta["labels"] = dict(labels)
    spec.setdefault("replicas", 1)
    default_template(spec.get("template"))


def default_pod_template(obj: Obj) -> None:
    default_template(obj.get("template"))


def generate_job_selector(obj: Obj) -> None:
    """The Job strategy's generateSelector: name and uid labels on the template, a selector
    on the uid. Skipped with `manualSelector: true` or before the object has a uid."""
    spec = _spec(obj)
    meta = obj.get("metadata") or {}
    uid, name = meta.get("uid"), meta.get("name", "")
    if spec.get("manualSelector") is True or not uid:
        return
    template = spec.setdefault("template", {})
    if not isinstance(template, dict):
        return
    labels = template.setdefault("metadata", {}).setdefault("labels", {})
    for key in JOB_NAME_LABELS:
        labels.setdefault(key, name)
    for key in CONTROLLER_UID_LABELS:
        labels.setdefault(key, uid)
    selector = spec.get("selector")
    if not isinstance(selector, dict):
        selector = spec["selector"] = {}
    match = selector.get("matchLabels")
    if not isinstance(match, dict):
        match = selector["matchLabels"] = {}
    match.setdefault(CONTROLLER_UID_LABEL, uid)


def default_job_spec(spec: Obj) -> None:
    if "completions" not in spec and "parallelism" not in spec:
        spec["completions"] = 1
    spec.setdefault("parallelism", 1)
    if "backoffLimit" not in spec:
        spec["backoffLimit"] = 2147483647 if spec.get("backoffLimitPerIndex") is not None else 6
    spec.setdefault("completionMode", "NonIndexed")
    spec.setdefault("suspend", False)
    failure_policy = spec.get("podFailurePolicy")
    rules = failure_policy.get("rules") if isinstance(failure_policy, dict) else None
    for rule in rules or []:
        for pattern in rule.get("onPodConditions") or []:
            pattern.setdefault("status", "True")
    spec.setdefault("podReplacementPolicy", "Failed" if failure_policy else "TerminatingOrFailed")


def default_job(obj: Obj) -> None:
    generate_job_selector(obj)
    spec = _spec(obj)
    default_job_spec(spec)
    labels = _template_labels(spec)
    meta = obj.setdefault("metadata", {})
    if labels is not None and not meta.get("labels"):
        meta["labels"] = dict(labels)
    default_template(spec.get("template"))


def default_cron_job(obj: Obj) -> None:
    spec = _spec(obj)
    spec.setdefault("concurrencyPolicy", "Allow")
    spec.setdefault("suspend", False)
    spec.setdefault("successfulJobsHistoryLimit", 3)
    spec.setdefault("failedJobsHistoryLimit", 1)
    job_template = spec.get("jobTemplate")
    job_spec = job_template.get("spec") if isinstance(job_template, dict) else None
    if isinstance(job_spec, dict):
        default_template(job_spec.get("template"))
