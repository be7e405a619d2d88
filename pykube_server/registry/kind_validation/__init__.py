"""Kind validation of the built-in kinds, beyond object metadata.

`validate_object(group, version, kind, obj)` is upstream's `Validate<Kind>` minus the metadata
part (`registry/validation.py` owns that); `validate_object_update(group, version, kind, obj,
old)` is `Validate<Kind>Update`: the create rules on the new object plus what may not change
(`validate_changes`, the part the strategies add to their own `validate`).
Both are pure, never mutate, and return every error at once with kube's texts, because
kubectl prints them verbatim (`The Deployment "d" is invalid: spec.template.metadata.labels:
Invalid value: map[string]string{...}: ...`). Kinds absent from the tables get no checks.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from pykube_server.api.fields import FieldError
from pykube_server.registry.kind_validation import admissionpolicy, admissionregistration, core, events, pods, workloads

Obj = dict[str, Any]
Validator = Callable[[Obj], list[FieldError]]
UpdateValidator = Callable[[Obj, Obj], list[FieldError]]

VALIDATORS: dict[tuple[str, str], Validator] = {
    ("", "Pod"): pods.validate_pod,
    ("", "PodTemplate"): workloads.validate_pod_template,
    ("", "ReplicationController"): workloads.validate_replication_controller,
    ("", "Service"): core.validate_service,
    ("", "ConfigMap"): core.validate_config_map,
    ("", "Secret"): core.validate_secret,
    ("", "Event"): events.validate_core_event,
    ("events.k8s.io", "Event"): events.validate_events_v1_event,
    ("apps", "Deployment"): workloads.validate_deployment,
    ("apps", "ReplicaSet"): workloads.validate_deployment,
    ("apps", "StatefulSet"): workloads.validate_stateful_set,
    ("apps", "DaemonSet"): workloads.validate_daemon_set,
    ("batch", "Job"): workloads.validate_job,
    ("batch", "CronJob"): workloads.validate_cron_job,
    ("admissionregistration.k8s.io", "ValidatingWebhookConfiguration"):
        admissionregistration.validate_validating_webhook_configuration,
    ("admissionregistration.k8s.io", "MutatingWebhookConfiguration"):
        admissionregistration.validate_mutating_webhook_configuration,
    ("admissionregistration.k8s.io", "ValidatingAdmissionPolicy"): admissionpolicy.validate_validating_admission_policy,
    ("admissionregistration.k8s.io", "ValidatingAdmissionPolicyBinding"):
        admissionpolicy.validate_validating_admission_policy_binding,
}

UPDATE_VALIDATORS: dict[tuple[str, str], UpdateValidator] = {
    ("", "Pod"): pods.validate_pod_update,
    ("", "Service"): core.validate_service_update,
    ("", "ConfigMap"): core.validate_config_map_update,
    ("", "Secret"): core.validate_secret_update,
    ("apps", "Deployment"): workloads.validate_selector_update,
    ("apps", "ReplicaSet"): workloads.validate_selector_update,
    ("apps", "DaemonSet"): workloads.validate_selector_update,
    ("apps", "StatefulSet"): workloads.validate_stateful_set_update,
    ("batch", "Job"): workloads.validate_job_update,
    ("scheduling.k8s.io", "PriorityClass"): core.validate_priority_class_update,
}


def validate_object(group: str, version: str, kind: str, obj: Obj) -> list[FieldError]:
    validator = VALIDATORS.get((group, kind))
    return validator(obj) if validator else []


def validate_changes(group: str, version: str, kind: str, obj: Obj, old: Obj) -> list[FieldError]:
    """Only what an update may not change (the strategies add it to their create checks)."""
    updater = UPDATE_VALIDATORS.get((group, kind))
    return updater(obj, old) if updater else []


def validate_object_update(group: str, version: str, kind: str, obj: Obj, old: Obj) -> list[FieldError]:
    """The create checks on the new object, then what may not change (upstream's order)."""
    return validate_object(group, version, kind, obj) + validate_changes(group, version, kind, obj, old)
