"""The empty object of a kind, as kube-apiserver's field manager sees it before a create.

kube compares a created object with `New()` of its Go type, serialized: struct fields that are
values rather than pointers are always there (`spec: {}`, `template: {metadata: {}, spec: {}}`)
and fields without `omitempty` are there as null or zero. The difference decides which nodes a
creating manager owns as a whole (`.` in FieldsV1): `f:data` gets `.`, `f:spec` does not, `f:ports`
does, `f:containers` does not. The OpenAPI definitions do not say which fields are values, so
the facts are written down here, per definition: a nested definition name means "a value struct
of that type", anything else is the literal zero.
"""

from __future__ import annotations

import copy
import functools
from typing import Any

_CORE = "io.k8s.api.core.v1."
_APPS = "io.k8s.api.apps.v1."
_META = "io.k8s.apimachinery.pkg.apis.meta.v1."
_STRUCT = object()

# definition -> {property: nested definition (a value struct) or a literal zero}
VALUE_FIELDS: dict[str, dict[str, Any]] = {
    _META + "ObjectMeta": {"creationTimestamp": None},
    _CORE + "PodTemplateSpec": {"metadata": _META + "ObjectMeta", "spec": _CORE + "PodSpec"},
    _CORE + "PodSpec": {"containers": None},
    _CORE + "Pod": {"spec": _CORE + "PodSpec", "status": _STRUCT},
    _CORE + "Service": {"spec": _STRUCT, "status": _CORE + "ServiceStatus"},
    _CORE + "ServiceStatus": {"loadBalancer": _STRUCT},
    _CORE + "Namespace": {"spec": _STRUCT, "status": _STRUCT},
    _CORE + "Node": {"spec": _STRUCT, "status": _STRUCT},
    _CORE + "PersistentVolume": {"spec": _STRUCT, "status": _STRUCT},
    _CORE + "PersistentVolumeClaim": {"spec": _CORE + "PersistentVolumeClaimSpec", "status": _STRUCT},
    _CORE + "PersistentVolumeClaimSpec": {"resources": _STRUCT},
    _CORE + "ReplicationController": {"spec": _STRUCT, "status": _STRUCT},
    _CORE + "ResourceQuota": {"spec": _STRUCT, "status": _STRUCT},
    _CORE + "LimitRange": {"spec": _CORE + "LimitRangeSpec"},
    _CORE + "LimitRangeSpec": {"limits": None},
    _CORE + "PodTemplate": {"template": _CORE + "PodTemplateSpec"},
    _CORE + "Event": {"involvedObject": _STRUCT, "source": _STRUCT, "firstTimestamp": None,
                      "lastTimestamp": None, "eventTime": None},
    _APPS + "Deployment": {"spec": _APPS + "DeploymentSpec", "status": _STRUCT},
    _APPS + "DeploymentSpec": {"selector": None, "template": _CORE + "PodTemplateSpec", "strategy": _STRUCT},
    _APPS + "ReplicaSet": {"spec": _APPS + "ReplicaSetSpec", "status": _STRUCT},
    _APPS + "ReplicaSetSpec": {"selector": None, "template": _CORE + "PodTemplateSpec"},
    _APPS + "StatefulSet": {"spec": _APPS + "StatefulSetSpec", "status": _STRUCT},
    _APPS + "StatefulSetSpec": {"selector": None, "template": _CORE + "PodTemplateSpec", "updateStrategy": _STRUCT},
    _APPS + "DaemonSet": {"spec": _APPS + "DaemonSetSpec", "status": _STRUCT},
    _APPS + "DaemonSetSpec": {"selector": None, "template": _CORE + "PodTemplateSpec", "updateStrategy": _STRUCT},
    "io.k8s.api.batch.v1.Job": {"spec": "io.k8s.api.batch.v1.JobSpec", "status": _STRUCT},
    "io.k8s.api.batch.v1.JobSpec": {"template": _CORE + "PodTemplateSpec"},
    "io.k8s.api.batch.v1.CronJob": {"spec": "io.k8s.api.batch.v1.CronJobSpec", "status": _STRUCT},
    "io.k8s.api.batch.v1.CronJobSpec": {"schedule": "", "jobTemplate": "io.k8s.api.batch.v1.JobTemplateSpec"},
    "io.k8s.api.batch.v1.JobTemplateSpec": {"metadata": _META + "ObjectMeta", "spec": "io.k8s.api.batch.v1.JobSpec"},
    "io.k8s.api.networking.v1.Ingress": {"spec": _STRUCT, "status": "io.k8s.api.networking.v1.IngressStatus"},
    "io.k8s.api.networking.v1.IngressStatus": {"loadBalancer": _STRUCT},
    "io.k8s.api.networking.v1.IngressClass": {"spec": _STRUCT},
    "io.k8s.api.networking.v1.NetworkPolicy": {"spec": "io.k8s.api.networking.v1.NetworkPolicySpec"},
    "io.k8s.api.networking.v1.NetworkPolicySpec": {"podSelector": _STRUCT},
    "io.k8s.api.policy.v1.PodDisruptionBudget": {"spec": _STRUCT, "status": _STRUCT},
    "io.k8s.api.coordination.v1.Lease": {"spec": _STRUCT},
    "io.k8s.api.autoscaling.v1.HorizontalPodAutoscaler": {"spec": "io.k8s.api.autoscaling.v1.HorizontalPodAutoscalerSpec", "status": _STRUCT},
    "io.k8s.api.autoscaling.v1.HorizontalPodAutoscalerSpec": {"scaleTargetRef": "io.k8s.api.autoscaling.v1.CrossVersionObjectReference", "maxReplicas": 0},
    "io.k8s.api.autoscaling.v1.CrossVersionObjectReference": {"kind": "", "name": ""},
    "io.k8s.api.autoscaling.v2.HorizontalPodAutoscaler": {"spec": "io.k8s.api.autoscaling.v2.HorizontalPodAutoscalerSpec", "status": _STRUCT},
    "io.k8s.api.autoscaling.v2.HorizontalPodAutoscalerSpec": {"scaleTargetRef": "io.k8s.api.autoscaling.v2.CrossVersionObjectReference", "maxReplicas": 0},
    "io.k8s.api.autoscaling.v2.CrossVersionObjectReference": {"kind": "", "name": ""},
    "io.k8s.api.rbac.v1.Role": {"rules": None},
    "io.k8s.api.rbac.v1.ClusterRole": {"rules": None},
    "io.k8s.api.rbac.v1.RoleBinding": {"roleRef": "io.k8s.api.rbac.v1.RoleRef"},
    "io.k8s.api.rbac.v1.ClusterRoleBinding": {"roleRef": "io.k8s.api.rbac.v1.RoleRef"},
    "io.k8s.api.rbac.v1.RoleRef": {"apiGroup": "", "kind": "", "name": ""},
    "io.k8s.api.discovery.v1.EndpointSlice": {"addressType": "", "endpoints": None},
    "io.k8s.api.certificates.v1.CertificateSigningRequest": {"spec": "io.k8s.api.certificates.v1.CertificateSigningRequestSpec", "status": _STRUCT},
    "io.k8s.api.certificates.v1.CertificateSigningRequestSpec": {"request": None, "signerName": ""},
}


@functools.cache
def _zero(definition: str) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for name, zero in VALUE_FIELDS.get(definition, {}).items():
        if zero is _STRUCT:
            out[name] = {}
        elif isinstance(zero, str) and zero.startswith("io.k8s."):
            out[name] = _zero(zero)
        else:
            out[name] = zero
    return out


def zero_object(definition: str, api_version: str, kind: str) -> dict[str, Any]:
    """A fresh empty object of the kind (callers may mutate it)."""
    body = copy.deepcopy(_zero(definition)) if definition else {}
    body.setdefault("metadata", {"creationTimestamp": None})
    return {"apiVersion": api_version, "kind": kind, **body}


@functools.lru_cache(maxsize=None)
def _shared(definition: str, api_version: str, kind: str) -> dict[str, Any]:
    return zero_object(definition, api_version, kind)


def shared_zero_object(definition: str, api_version: str, kind: str) -> dict[str, Any]:
    """The empty object of the kind, shared: callers must not mutate it."""
    return _shared(definition, api_version, kind)
