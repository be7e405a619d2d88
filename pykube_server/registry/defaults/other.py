"""Scheme defaults of the non-core groups that are not workloads: networking, discovery, RBAC,
scheduling, storage, autoscaling, admission registration and apiextensions.

Each function is one upstream `SetDefaults_<Kind>` (pkg/apis/<group>/<version>/defaults.go),
with the nested types' defaults it triggers in `zz_generated.defaults.go`.
"""

from __future__ import annotations

from typing import Any

Obj = dict[str, Any]
RBAC_GROUP = "rbac.authorization.k8s.io"
DEFAULT_CPU_UTILIZATION = 80


def _spec(obj: Obj) -> Obj:
    spec = obj.setdefault("spec", {})
    return spec if isinstance(spec, dict) else {}


def _dicts(value: Any) -> list[Obj]:
    return [v for v in value if isinstance(v, dict)] if isinstance(value, list) else []


# -- networking.k8s.io, discovery.k8s.io ---------------------------------------------------
def default_network_policy(obj: Obj) -> None:
    spec = _spec(obj)
    for rule in _dicts(spec.get("ingress")) + _dicts(spec.get("egress")):
        for port in _dicts(rule.get("ports")):
            port.setdefault("protocol", "TCP")
    if not spec.get("policyTypes"):
        spec["policyTypes"] = ["Ingress"] + (["Egress"] if spec.get("egress") else [])


def default_endpoint_slice(obj: Obj) -> None:
    for port in _dicts(obj.get("ports")):
        port.setdefault("name", "")
        port.setdefault("protocol", "TCP")


# -- rbac.authorization.k8s.io ------------------------------------------------------------
def _default_subjects(obj: Obj) -> None:
    for subject in _dicts(obj.get("subjects")):
        if not subject.get("apiGroup") and subject.get("kind") in ("User", "Group"):
            subject["apiGroup"] = RBAC_GROUP


def default_role_binding(obj: Obj) -> None:
    role_ref = obj.get("roleRef")
    if isinstance(role_ref, dict) and not role_ref.get("apiGroup"):
        role_ref["apiGroup"] = RBAC_GROUP
    _default_subjects(obj)


# -- scheduling.k8s.io, storage.k8s.io -----------------------------------------------------
def default_priority_class(obj: Obj) -> None:
    obj.setdefault("preemptionPolicy", "PreemptLowerPriority")


def default_storage_class(obj: Obj) -> None:
    obj.setdefault("reclaimPolicy", "Delete")
    obj.setdefault("volumeBindingMode", "Immediate")


def default_csi_driver(obj: Obj) -> None:
    spec = _spec(obj)
    spec.setdefault("attachRequired", True)
    spec.setdefault("podInfoOnMount", False)
    spec.setdefault("storageCapacity", False)
    spec.setdefault("fsGroupPolicy", "ReadWriteOnceWithFSType")
    if not spec.get("volumeLifecycleModes"):
        spec["volumeLifecycleModes"] = ["Persistent"]
    spec.setdefault("requiresRepublish", False)
    spec.setdefault("seLinuxMount", False)


# -- autoscaling -----------------------------------------------------------------------------
_SCALE_UP = {"stabilizationWindowSeconds": 0, "selectPolicy": "Max",
             "policies": [{"type": "Pods", "value": 4, "periodSeconds": 15},
                          {"type": "Percent", "value": 100, "periodSeconds": 15}]}
_SCALE_DOWN = {"stabilizationWindowSeconds": 300, "selectPolicy": "Max",
               "policies": [{"type": "Percent", "value": 100, "periodSeconds": 15}]}


def _scaling_rules(rules: Any, defaults: Obj) -> Obj:
    out = dict(rules) if isinstance(rules, dict) else {}
    for key, value in defaults.items():
        if out.get(key) is None:
            out[key] = [dict(p) for p in value] if key == "policies" else value
    return out


def default_hpa_v2(obj: Obj) -> None:
    spec = _spec(obj)
    spec.setdefault("minReplicas", 1)
    if not spec.get("metrics"):
        spec["metrics"] = [{"type": "Resource", "resource": {"name": "cpu", "target": {
            "type": "Utilization", "averageUtilization": DEFAULT_CPU_UTILIZATION}}}]
    behavior = spec.get("behavior")
    if isinstance(behavior, dict):
        behavior["scaleUp"] = _scaling_rules(behavior.get("scaleUp"), _SCALE_UP)
        behavior["scaleDown"] = _scaling_rules(behavior.get("scaleDown"), _SCALE_DOWN)


def default_hpa_v1(obj: Obj) -> None:
    spec = _spec(obj)
    spec.setdefault("minReplicas", 1)
    spec.setdefault("targetCPUUtilizationPercentage", DEFAULT_CPU_UTILIZATION)


# -- admissionregistration.k8s.io, apiextensions.k8s.io -------------------------------------
def _default_service_reference(client_config: Any) -> None:
    service = client_config.get("service") if isinstance(client_config, dict) else None
    if isinstance(service, dict):
        service.setdefault("port", 443)


def _default_webhook(hook: Obj, mutating: bool) -> None:
    hook.setdefault("failurePolicy", "Fail")
    hook.setdefault("matchPolicy", "Equivalent")
    hook.setdefault("namespaceSelector", {})
    hook.setdefault("objectSelector", {})
    hook.setdefault("timeoutSeconds", 10)
    if mutating:
        hook.setdefault("reinvocationPolicy", "Never")
    for rule in _dicts(hook.get("rules")):
        rule.setdefault("scope", "*")
    _default_service_reference(hook.get("clientConfig"))


def default_validating_webhooks(obj: Obj) -> None:
    for hook in _dicts(obj.get("webhooks")):
        _default_webhook(hook, mutating=False)


def default_mutating_webhooks(obj: Obj) -> None:
    for hook in _dicts(obj.get("webhooks")):
        _default_webhook(hook, mutating=True)


def default_crd(obj: Obj) -> None:
    spec = _spec(obj)
    names = spec.get("names")
    if isinstance(names, dict) and names.get("kind"):
        names.setdefault("singular", str(names["kind"]).lower())
        names.setdefault("listKind", f"{names['kind']}List")
    conversion = spec.setdefault("conversion", {"strategy": "None"})
    if isinstance(conversion, dict):
        webhook = conversion.get("webhook")
        if isinstance(webhook, dict):
            _default_service_reference(webhook.get("clientConfig"))
