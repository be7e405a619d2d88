"""Validation of the controllers that carry a pod template: apps/v1, batch/v1, RCs, PodTemplates.

Selector rules (required, non-empty, must match the template's labels), replicas and other
counts non-negative, the restart policies each controller allows, and what an update may not
change (apps/v1 selectors, most of a StatefulSet's spec, a Job's selector and template).
"""

from __future__ import annotations

from typing import Any

from pykube_server.api.fields import FieldError, Path, forbidden, invalid, not_supported, required
from pykube_server.registry.kind_validation.common import (
    IMMUTABLE_ERR, go_label_selector, go_string_map, immutable, invalid_go, nonnegative, selector_matches,
)
from pykube_server.registry.kind_validation.pods import validate_pod_spec
from pykube_server.registry.validation import validate_labels

Obj = dict[str, Any]
SELECTOR_MISMATCH = "`selector` does not match template `labels`"
STATEFULSET_UPDATE_ERR = ("updates to statefulset spec for fields other than 'replicas', 'ordinals', 'template', "
                          "'updateStrategy', 'persistentVolumeClaimRetentionPolicy' and 'minReadySeconds' are forbidden")
STATEFULSET_MUTABLE = {"replicas", "ordinals", "template", "updateStrategy", "persistentVolumeClaimRetentionPolicy",
                       "minReadySeconds"}


def _spec(obj: Obj) -> Obj:
    spec = obj.get("spec")
    return spec if isinstance(spec, dict) else {}


def _template_labels(spec: Obj) -> Any:
    return ((spec.get("template") or {}).get("metadata") or {}).get("labels")


def _selector_errors(spec: Obj, path: Path, noun: str, *, required_selector: bool = True) -> list[FieldError]:
    selector = spec.get("selector")
    if selector is None:
        return [required(path.child("selector"))] if required_selector else []
    if isinstance(selector, dict) and not selector.get("matchLabels") and not selector.get("matchExpressions"):
        return [invalid_go(path.child("selector"), go_label_selector(selector), f"empty selector is invalid for {noun}")]
    return validate_labels((selector or {}).get("matchLabels") or {}, path.child("selector", "matchLabels"))


def _template_errors(spec: Obj, path: Path, restart: list[str]) -> list[FieldError]:
    template = spec.get("template")
    tpath = path.child("template")
    if not isinstance(template, dict):
        return [required(tpath)]
    errs: list[FieldError] = []
    labels = _template_labels(spec)
    selector = spec.get("selector")
    if selector is not None and (selector.get("matchLabels") or selector.get("matchExpressions")) \
            and not selector_matches(selector, labels):
        errs.append(invalid_go(tpath.child("metadata", "labels"), go_string_map(labels), SELECTOR_MISMATCH))
    errs += validate_labels(labels or {}, tpath.child("metadata", "labels"))
    pod_spec = template.get("spec")
    errs += validate_pod_spec(pod_spec, tpath.child("spec"))
    policy = (pod_spec or {}).get("restartPolicy") if isinstance(pod_spec, dict) else None
    if policy and policy not in restart:
        errs.append(not_supported(tpath.child("spec", "restartPolicy"), policy, restart))
    return errs


def validate_replicated(obj: Obj, noun: str) -> list[FieldError]:
    """Deployments and ReplicaSets (whose message says "deployment" too, as upstream's does)."""
    spec, path = _spec(obj), Path("spec")
    errs = nonnegative(spec, "replicas", path) + nonnegative(spec, "minReadySeconds", path)
    errs += nonnegative(spec, "revisionHistoryLimit", path)
    errs += _selector_errors(spec, path, noun)
    return errs + _template_errors(spec, path, ["Always"])


def validate_deployment(obj: Obj) -> list[FieldError]:
    return validate_replicated(obj, "deployment")


def _with_claim_volumes(spec: Obj) -> Obj:
    """The spec as its pods will be: each volumeClaimTemplate is a volume the containers may mount."""
    template = spec.get("template")
    claims = [c for c in spec.get("volumeClaimTemplates") or [] if isinstance(c, dict)]
    if not claims or not isinstance(template, dict) or not isinstance(template.get("spec"), dict):
        return spec
    names = [str((c.get("metadata") or {}).get("name") or "") for c in claims]
    have = {v.get("name") for v in template["spec"].get("volumes") or [] if isinstance(v, dict)}
    extra = [{"name": n, "persistentVolumeClaim": {"claimName": n}} for n in names if n and n not in have]
    pod_spec = {**template["spec"], "volumes": [*(template["spec"].get("volumes") or []), *extra]}
    return {**spec, "template": {**template, "spec": pod_spec}}


def validate_stateful_set(obj: Obj) -> list[FieldError]:
    spec, path = _spec(obj), Path("spec")
    errs = nonnegative(spec, "replicas", path) + nonnegative(spec, "minReadySeconds", path)
    errs += _selector_errors(spec, path, "statefulset")
    return errs + _template_errors(_with_claim_volumes(spec), path, ["Always"])


def validate_daemon_set(obj: Obj) -> list[FieldError]:
    spec, path = _spec(obj), Path("spec")
    errs = _selector_errors(spec, path, "daemonset", required_selector=False)
    errs += nonnegative(spec, "minReadySeconds", path)
    if spec.get("selector") is None and isinstance(spec.get("template"), dict):
        errs.append(invalid_go(path.child("template", "metadata", "labels"), go_string_map(_template_labels(spec)),
                               SELECTOR_MISMATCH))
    return errs + _template_errors(spec, path, ["Always"])


def validate_job(obj: Obj) -> list[FieldError]:
    spec, path = _spec(obj), Path("spec")
    errs: list[FieldError] = []
    for key in ("parallelism", "completions", "backoffLimit", "activeDeadlineSeconds"):
        errs += nonnegative(spec, key, path)
    if spec.get("selector") is None:
        errs.append(required(path.child("selector")))
    return errs + _template_errors(spec, path, ["OnFailure", "Never"])


def validate_cron_job(obj: Obj) -> list[FieldError]:
    spec, path = _spec(obj), Path("spec")
    errs: list[FieldError] = []
    if not spec.get("schedule"):
        errs.append(required(path.child("schedule")))
    policy = spec.get("concurrencyPolicy")
    if policy not in ("Allow", "Forbid", "Replace"):
        errs.append(not_supported(path.child("concurrencyPolicy"), policy, ["Allow", "Forbid", "Replace"]))
    for key in ("successfulJobsHistoryLimit", "failedJobsHistoryLimit", "startingDeadlineSeconds"):
        errs += nonnegative(spec, key, path)
    job_spec = (spec.get("jobTemplate") or {}).get("spec") or {}
    jpath = path.child("jobTemplate", "spec")
    template = job_spec.get("template")
    if not isinstance(template, dict):
        return errs + [required(jpath.child("template"))]
    pod_spec = template.get("spec")
    errs += validate_pod_spec(pod_spec, jpath.child("template", "spec"))
    policy = pod_spec.get("restartPolicy") if isinstance(pod_spec, dict) else None
    if policy and policy not in ("OnFailure", "Never"):
        errs.append(not_supported(jpath.child("template", "spec", "restartPolicy"), policy, ["OnFailure", "Never"]))
    return errs


def validate_replication_controller(obj: Obj) -> list[FieldError]:
    spec, path = _spec(obj), Path("spec")
    errs = nonnegative(spec, "replicas", path)
    selector = spec.get("selector") or {}
    if not selector:
        errs.append(required(path.child("selector")))
    template = spec.get("template")
    if not isinstance(template, dict):
        return errs + [required(path.child("template"))]
    labels = _template_labels(spec) or {}
    if selector and any(labels.get(k) != v for k, v in selector.items()):
        errs.append(invalid_go(path.child("template", "metadata", "labels"), go_string_map(labels),
                               "`selector` does not match template `labels`"))
    errs += validate_pod_spec(template.get("spec"), path.child("template", "spec"))
    return errs


def validate_pod_template(obj: Obj) -> list[FieldError]:
    template = obj.get("template")
    if not isinstance(template, dict):
        return [required("template.spec.containers")]
    return validate_pod_spec(template.get("spec"), Path("template").child("spec"))


# -- updates ---------------------------------------------------------------------------------
def validate_selector_update(obj: Obj, old: Obj) -> list[FieldError]:
    new_sel, old_sel = _spec(obj).get("selector"), _spec(old).get("selector")
    if new_sel == old_sel:
        return []
    return [invalid_go("spec.selector", go_label_selector(new_sel), IMMUTABLE_ERR)]


def validate_stateful_set_update(obj: Obj, old: Obj) -> list[FieldError]:
    new, prev = _spec(obj), _spec(old)
    keys = (set(new) | set(prev)) - STATEFULSET_MUTABLE
    if any(new.get(k) != prev.get(k) for k in keys):
        return [forbidden("spec", STATEFULSET_UPDATE_ERR)]
    return []


def validate_job_update(obj: Obj, old: Obj) -> list[FieldError]:
    new, prev = _spec(obj), _spec(old)
    errs = validate_selector_update(obj, old)
    for key in ("completions", "completionMode", "podFailurePolicy", "backoffLimitPerIndex"):
        errs += immutable(new.get(key), prev.get(key), Path("spec").child(key))
    if new.get("template") != prev.get("template"):
        errs.append(invalid("spec.template", new.get("template"), IMMUTABLE_ERR))
    return errs
