"""Scheme defaulting of the built-in kinds: `default_object(group, version, kind, obj)`.

kube-apiserver defaults an object while decoding it (`SetObjectDefaults_<Kind>` from each
group's `zz_generated.defaults.go`, which calls the hand-written `SetDefaults_*` of
`pkg/apis/<group>/<version>/defaults.go`), and again when it reads it back from etcd. pykube
has no decoder of its own, so the strategies call this on every create and update, after
`prepare_for_create`/`prepare_for_update`. Defaulting is idempotent: running it twice, or on
an already stored object, changes nothing.

The table maps (group, kind) to one function per kind; the functions live by group in
`pods`, `workloads`, `core` and `other`. Quantities are checked and canonicalised first, as
the decoder does (`quantities`).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import orjson

from pykube_server.api.memo import BoundedMemo
from pykube_server.registry.defaults import admissionpolicy, core, other, pods, workloads
from pykube_server.registry.defaults.quantities import canonicalize_quantities, pod_spec_of

Obj = dict[str, Any]
Defaulter = Callable[[Obj], None]

DEFAULTERS: dict[tuple[str, str], Defaulter] = {
    ("", "Pod"): pods.default_pod,
    ("", "PodTemplate"): workloads.default_pod_template,
    ("", "ReplicationController"): workloads.default_replication_controller,
    ("", "Service"): core.default_service,
    ("", "Secret"): core.default_secret,
    ("", "Namespace"): core.default_namespace,
    ("", "PersistentVolume"): core.default_persistent_volume,
    ("", "PersistentVolumeClaim"): core.default_pvc,
    ("", "LimitRange"): core.default_limit_range,
    ("", "Endpoints"): core.default_endpoints,
    ("", "Node"): core.default_node,
    ("apps", "Deployment"): workloads.default_deployment,
    ("apps", "ReplicaSet"): workloads.default_replica_set,
    ("apps", "StatefulSet"): workloads.default_stateful_set,
    ("apps", "DaemonSet"): workloads.default_daemon_set,
    ("batch", "Job"): workloads.default_job,
    ("batch", "CronJob"): workloads.default_cron_job,
    ("networking.k8s.io", "NetworkPolicy"): other.default_network_policy,
    ("discovery.k8s.io", "EndpointSlice"): other.default_endpoint_slice,
    ("rbac.authorization.k8s.io", "RoleBinding"): other.default_role_binding,
    ("rbac.authorization.k8s.io", "ClusterRoleBinding"): other.default_role_binding,
    ("scheduling.k8s.io", "PriorityClass"): other.default_priority_class,
    ("storage.k8s.io", "StorageClass"): other.default_storage_class,
    ("storage.k8s.io", "CSIDriver"): other.default_csi_driver,
    ("admissionregistration.k8s.io", "ValidatingWebhookConfiguration"): other.default_validating_webhooks,
    ("admissionregistration.k8s.io", "MutatingWebhookConfiguration"): other.default_mutating_webhooks,
    ("admissionregistration.k8s.io", "ValidatingAdmissionPolicy"): admissionpolicy.default_validating_admission_policy,
    ("admissionregistration.k8s.io", "ValidatingAdmissionPolicyBinding"):
        admissionpolicy.default_validating_admission_policy_binding,
    ("apiextensions.k8s.io", "CustomResourceDefinition"): other.default_crd,
}
"""(group, kind) -> its defaulter. Kinds not listed (ConfigMap, ServiceAccount, Lease, Event,
RuntimeClass, ResourceQuota, PodDisruptionBudget, Ingress, Roles...) have no scheme defaults."""

VERSIONED: dict[tuple[str, str, str], Defaulter] = {
    ("autoscaling", "v2", "HorizontalPodAutoscaler"): other.default_hpa_v2,
    ("autoscaling", "v1", "HorizontalPodAutoscaler"): other.default_hpa_v1,
}
"""Kinds whose defaults differ between the versions served."""


STATUS_DEFAULTERS: dict[tuple[str, str], Defaulter] = {
    ("", "Service"): core.default_service_status,
}
"""The defaults that touch status, for `/status` writes (which skip the rest: a namespace's
spec default would put back the `kubernetes` finalizer its finalize removed)."""


def default_status(group: str, kind: str, obj: Obj) -> None:
    """The status defaults of a `/status` write (kube decodes, so defaults, that body too)."""
    defaulter = STATUS_DEFAULTERS.get((group, kind))
    if defaulter is not None:
        defaulter(obj)


POD_SPECS_REMEMBERED = 512
_defaulted_pod_specs: BoundedMemo[bytes, bytes] = BoundedMemo(POD_SPECS_REMEMBERED)
"""A pod's spec as sent -> as defaulted (JSON): a controller creates its pods from one
template, so all but the first skip the defaulting walk."""


def default_object(group: str, version: str, kind: str, obj: Obj) -> None:
    """Apply kube-apiserver's scheme defaults to `obj` in place.

    Raises `errors.BadRequest` for an unparsable quantity (a decoding error upstream)."""
    if group == "" and version == "v1" and kind == "Pod" and isinstance(obj.get("spec"), dict):
        _default_pod(obj)
        return
    _default(group, version, kind, obj)


def _default_pod(obj: Obj) -> None:
    """Only a pod's spec takes defaults (and canonical quantities), and they depend on nothing
    else, so the defaulted spec is remembered by the spec as sent."""
    try:
        sent = orjson.dumps(obj["spec"])
    except TypeError:  # not JSON-shaped: default without remembering
        _default("", "v1", "Pod", obj)
        return
    known = _defaulted_pod_specs.get(sent)
    if known is not None:
        obj["spec"] = orjson.loads(known)
        return
    _default("", "v1", "Pod", obj)
    _defaulted_pod_specs.put(sent, orjson.dumps(obj["spec"]))


def _default(group: str, version: str, kind: str, obj: Obj) -> None:
    canonicalize_quantities(group, version, kind, obj)
    defaulter = VERSIONED.get((group, version, kind)) or DEFAULTERS.get((group, kind))
    if defaulter is not None:
        defaulter(obj)


__all__ = ["DEFAULTERS", "default_object", "default_status", "pod_spec_of", "pods"]
