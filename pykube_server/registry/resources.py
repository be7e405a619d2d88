"""The resource table: every group/version/resource a default Kubernetes 1.33 kube-apiserver serves.

One explicit, ordered literal (`RESOURCES`) rather than registration by import side effect, so the
whole API surface can be read in one place and checked for duplicates once at import
(`check_table()`). Discovery, routing, RBAC defaults and `kubectl api-resources` all derive from it.

Facts and their sources (recorded in tests/registry/test_resources.py too):
- Only GA group versions plus autoscaling/v1 are on by default in 1.33. Beta APIs are off by
  default since 1.24 (KEP-3136); kube-apiserver's `betaAPIGroupVersionsDisabledByDefault` lists
  admissionregistration/v1beta1, authentication/v1beta1, storage/v1beta1 and flowcontrol betas.
  So resource.k8s.io (v1beta1/v1beta2 in 1.33), storage.k8s.io VolumeAttributesClass (v1beta1),
  certificates ClusterTrustBundle (v1beta1), coordination LeaseCandidate (v1beta1) and every alpha
  are absent. networking.k8s.io/v1 IPAddress and ServiceCIDR went GA in 1.33 (KEP-1880).
- Groups are listed in kube-apiserver's discovery priority order (the order `/apis` shows);
  within a group version, resources are alphabetical, as real discovery sorts them.
- Verbs, short names, categories and subresources follow upstream `api/discovery/*.json`.
- events.k8s.io/v1 events share core events' storage, and autoscaling/v1 HPAs share
  autoscaling/v2's, as kube-apiserver stores one object behind both versions.
"""

from __future__ import annotations

from collections.abc import Iterator

from pykube_server.registry.spec import ResourceSpec, SubresourceSpec

# Verb sets exactly as discovery lists them (sorted).
ALL_VERBS = ("create", "delete", "deletecollection", "get", "list", "patch", "update", "watch")
NAMESPACE_VERBS = ("create", "delete", "get", "list", "patch", "update", "watch")
READ_VERBS = ("get", "list")
CREATE_ONLY = ("create",)
SUB_RW = ("get", "patch", "update")
PROXY_VERBS = ("create", "delete", "get", "patch", "update")
STREAM_VERBS = ("create", "get")

ALL = ("all",)
API_EXTENSIONS = ("api-extensions",)


def _status(kind: str) -> SubresourceSpec:
    return SubresourceSpec("status", kind, SUB_RW)


def _scale() -> SubresourceSpec:
    return SubresourceSpec("scale", "Scale", SUB_RW, group="autoscaling", version="v1")


def _core(kind: str, plural: str, singular: str, namespaced: bool, verbs: tuple[str, ...] = ALL_VERBS,
          **kw: object) -> ResourceSpec:
    return ResourceSpec("", "v1", kind, plural, singular, namespaced, verbs,
                        definition=f"io.k8s.api.core.v1.{kind}", **kw)  # type: ignore[arg-type]


def _api(group: str, version: str, kind: str, plural: str, namespaced: bool,
         verbs: tuple[str, ...] = ALL_VERBS, **kw: object) -> ResourceSpec:
    """A resource whose OpenAPI name is `io.k8s.api.<first label of group>.<version>.<Kind>`."""
    package = group.split(".")[0]
    return ResourceSpec(group, version, kind, plural, kind.lower(), namespaced, verbs,
                        definition=f"io.k8s.api.{package}.{version}.{kind}", **kw)  # type: ignore[arg-type]


_POD_SUBRESOURCES = (
    SubresourceSpec("attach", "PodAttachOptions", STREAM_VERBS),
    SubresourceSpec("binding", "Binding", CREATE_ONLY),
    SubresourceSpec("ephemeralcontainers", "Pod", SUB_RW),
    SubresourceSpec("eviction", "Eviction", CREATE_ONLY, group="policy", version="v1"),
    SubresourceSpec("exec", "PodExecOptions", STREAM_VERBS),
    SubresourceSpec("log", "Pod", ("get",)),
    SubresourceSpec("portforward", "PodPortForwardOptions", STREAM_VERBS),
    SubresourceSpec("proxy", "PodProxyOptions", PROXY_VERBS),
    SubresourceSpec("resize", "Pod", SUB_RW),
    _status("Pod"),
)

CORE_V1: tuple[ResourceSpec, ...] = (
    _core("Binding", "bindings", "binding", True, CREATE_ONLY),
    _core("ComponentStatus", "componentstatuses", "componentstatus", False, READ_VERBS,
          short_names=("cs",)),
    _core("ConfigMap", "configmaps", "configmap", True, short_names=("cm",)),
    _core("Endpoints", "endpoints", "endpoints", True, short_names=("ep",)),
    _core("Event", "events", "event", True, short_names=("ev",)),
    _core("LimitRange", "limitranges", "limitrange", True, short_names=("limits",)),
    _core("Namespace", "namespaces", "namespace", False, NAMESPACE_VERBS, short_names=("ns",),
          subresources=(SubresourceSpec("finalize", "Namespace", ("update",)), _status("Namespace"))),
    _core("Node", "nodes", "node", False, short_names=("no",),
          subresources=(SubresourceSpec("proxy", "NodeProxyOptions", PROXY_VERBS), _status("Node"))),
    _core("PersistentVolumeClaim", "persistentvolumeclaims", "persistentvolumeclaim", True,
          short_names=("pvc",), subresources=(_status("PersistentVolumeClaim"),)),
    _core("PersistentVolume", "persistentvolumes", "persistentvolume", False,
          short_names=("pv",), subresources=(_status("PersistentVolume"),)),
    _core("Pod", "pods", "pod", True, short_names=("po",), categories=ALL,
          subresources=_POD_SUBRESOURCES),
    _core("PodTemplate", "podtemplates", "podtemplate", True),
    _core("ReplicationController", "replicationcontrollers", "replicationcontroller", True,
          short_names=("rc",), categories=ALL,
          subresources=(_scale(), _status("ReplicationController"))),
    _core("ResourceQuota", "resourcequotas", "resourcequota", True, short_names=("quota",),
          subresources=(_status("ResourceQuota"),)),
    _core("Secret", "secrets", "secret", True),
    _core("ServiceAccount", "serviceaccounts", "serviceaccount", True, short_names=("sa",),
          subresources=(SubresourceSpec("token", "TokenRequest", CREATE_ONLY,
                                        group="authentication.k8s.io", version="v1"),)),
    _core("Service", "services", "service", True, short_names=("svc",), categories=ALL,
          subresources=(SubresourceSpec("proxy", "ServiceProxyOptions", PROXY_VERBS),
                        _status("Service"))),
)

APIREGISTRATION_V1: tuple[ResourceSpec, ...] = (
    ResourceSpec("apiregistration.k8s.io", "v1", "APIService", "apiservices", "apiservice", False,
                 ALL_VERBS, categories=API_EXTENSIONS, subresources=(_status("APIService"),),
                 definition="io.k8s.kube-aggregator.pkg.apis.apiregistration.v1.APIService"),
)

APPS_V1: tuple[ResourceSpec, ...] = (
    _api("apps", "v1", "ControllerRevision", "controllerrevisions", True),
    _api("apps", "v1", "DaemonSet", "daemonsets", True, short_names=("ds",), categories=ALL,
         subresources=(_status("DaemonSet"),)),
    _api("apps", "v1", "Deployment", "deployments", True, short_names=("deploy",), categories=ALL,
         subresources=(_scale(), _status("Deployment"))),
    _api("apps", "v1", "ReplicaSet", "replicasets", True, short_names=("rs",), categories=ALL,
         subresources=(_scale(), _status("ReplicaSet"))),
    _api("apps", "v1", "StatefulSet", "statefulsets", True, short_names=("sts",), categories=ALL,
         subresources=(_scale(), _status("StatefulSet"))),
)

EVENTS_V1: tuple[ResourceSpec, ...] = (
    _api("events.k8s.io", "v1", "Event", "events", True, short_names=("ev",),
         storage_resource="events", storage_group=""),
)

AUTHENTICATION_V1: tuple[ResourceSpec, ...] = (
    _api("authentication.k8s.io", "v1", "SelfSubjectReview", "selfsubjectreviews", False, CREATE_ONLY),
    _api("authentication.k8s.io", "v1", "TokenReview", "tokenreviews", False, CREATE_ONLY),
)

AUTHORIZATION_V1: tuple[ResourceSpec, ...] = (
    _api("authorization.k8s.io", "v1", "LocalSubjectAccessReview", "localsubjectaccessreviews", True,
         CREATE_ONLY),
    _api("authorization.k8s.io", "v1", "SelfSubjectAccessReview", "selfsubjectaccessreviews", False,
         CREATE_ONLY),
    _api("authorization.k8s.io", "v1", "SelfSubjectRulesReview", "selfsubjectrulesreviews", False,
         CREATE_ONLY),
    _api("authorization.k8s.io", "v1", "SubjectAccessReview", "subjectaccessreviews", False,
         CREATE_ONLY),
)

AUTOSCALING: tuple[ResourceSpec, ...] = (
    _api("autoscaling", "v2", "HorizontalPodAutoscaler", "horizontalpodautoscalers", True,
         short_names=("hpa",), categories=ALL, subresources=(_status("HorizontalPodAutoscaler"),)),
    _api("autoscaling", "v1", "HorizontalPodAutoscaler", "horizontalpodautoscalers", True,
         short_names=("hpa",), categories=ALL, subresources=(_status("HorizontalPodAutoscaler"),),
         storage_resource="horizontalpodautoscalers", storage_group="autoscaling"),
)

BATCH_V1: tuple[ResourceSpec, ...] = (
    _api("batch", "v1", "CronJob", "cronjobs", True, short_names=("cj",), categories=ALL,
         subresources=(_status("CronJob"),)),
    _api("batch", "v1", "Job", "jobs", True, categories=ALL, subresources=(_status("Job"),)),
)

CERTIFICATES_V1: tuple[ResourceSpec, ...] = (
    _api("certificates.k8s.io", "v1", "CertificateSigningRequest", "certificatesigningrequests", False,
         short_names=("csr",),
         subresources=(SubresourceSpec("approval", "CertificateSigningRequest", SUB_RW),
                       _status("CertificateSigningRequest"))),
)

NETWORKING_V1: tuple[ResourceSpec, ...] = (
    _api("networking.k8s.io", "v1", "IngressClass", "ingressclasses", False),
    _api("networking.k8s.io", "v1", "Ingress", "ingresses", True, short_names=("ing",),
         subresources=(_status("Ingress"),)),
    _api("networking.k8s.io", "v1", "IPAddress", "ipaddresses", False, short_names=("ip",)),
    _api("networking.k8s.io", "v1", "NetworkPolicy", "networkpolicies", True, short_names=("netpol",)),
    _api("networking.k8s.io", "v1", "ServiceCIDR", "servicecidrs", False,
         subresources=(_status("ServiceCIDR"),)),
)

POLICY_V1: tuple[ResourceSpec, ...] = (
    _api("policy", "v1", "PodDisruptionBudget", "poddisruptionbudgets", True, short_names=("pdb",),
         subresources=(_status("PodDisruptionBudget"),)),
)

RBAC_V1: tuple[ResourceSpec, ...] = (
    _api("rbac.authorization.k8s.io", "v1", "ClusterRoleBinding", "clusterrolebindings", False),
    _api("rbac.authorization.k8s.io", "v1", "ClusterRole", "clusterroles", False),
    _api("rbac.authorization.k8s.io", "v1", "RoleBinding", "rolebindings", True),
    _api("rbac.authorization.k8s.io", "v1", "Role", "roles", True),
)

STORAGE_V1: tuple[ResourceSpec, ...] = (
    _api("storage.k8s.io", "v1", "CSIDriver", "csidrivers", False),
    _api("storage.k8s.io", "v1", "CSINode", "csinodes", False),
    _api("storage.k8s.io", "v1", "CSIStorageCapacity", "csistoragecapacities", True),
    _api("storage.k8s.io", "v1", "StorageClass", "storageclasses", False, short_names=("sc",)),
    _api("storage.k8s.io", "v1", "VolumeAttachment", "volumeattachments", False,
         subresources=(_status("VolumeAttachment"),)),
)

ADMISSIONREGISTRATION_V1: tuple[ResourceSpec, ...] = (
    _api("admissionregistration.k8s.io", "v1", "MutatingWebhookConfiguration",
         "mutatingwebhookconfigurations", False, categories=API_EXTENSIONS),
    _api("admissionregistration.k8s.io", "v1", "ValidatingAdmissionPolicy",
         "validatingadmissionpolicies", False, categories=API_EXTENSIONS,
         subresources=(_status("ValidatingAdmissionPolicy"),)),
    _api("admissionregistration.k8s.io", "v1", "ValidatingAdmissionPolicyBinding",
         "validatingadmissionpolicybindings", False, categories=API_EXTENSIONS),
    _api("admissionregistration.k8s.io", "v1", "ValidatingWebhookConfiguration",
         "validatingwebhookconfigurations", False, categories=API_EXTENSIONS),
)

APIEXTENSIONS_V1: tuple[ResourceSpec, ...] = (
    ResourceSpec("apiextensions.k8s.io", "v1", "CustomResourceDefinition", "customresourcedefinitions",
                 "customresourcedefinition", False, ALL_VERBS, short_names=("crd", "crds"),
                 categories=API_EXTENSIONS, subresources=(_status("CustomResourceDefinition"),),
                 definition="io.k8s.apiextensions-apiserver.pkg.apis.apiextensions.v1."
                            "CustomResourceDefinition"),
)

SCHEDULING_V1: tuple[ResourceSpec, ...] = (
    _api("scheduling.k8s.io", "v1", "PriorityClass", "priorityclasses", False, short_names=("pc",)),
)

COORDINATION_V1: tuple[ResourceSpec, ...] = (
    _api("coordination.k8s.io", "v1", "Lease", "leases", True),
)

NODE_V1: tuple[ResourceSpec, ...] = (
    _api("node.k8s.io", "v1", "RuntimeClass", "runtimeclasses", False),
)

DISCOVERY_V1: tuple[ResourceSpec, ...] = (
    _api("discovery.k8s.io", "v1", "EndpointSlice", "endpointslices", True),
)

FLOWCONTROL_V1: tuple[ResourceSpec, ...] = (
    _api("flowcontrol.apiserver.k8s.io", "v1", "FlowSchema", "flowschemas", False,
         subresources=(_status("FlowSchema"),)),
    _api("flowcontrol.apiserver.k8s.io", "v1", "PriorityLevelConfiguration",
         "prioritylevelconfigurations", False, subresources=(_status("PriorityLevelConfiguration"),)),
)

RESOURCES: tuple[ResourceSpec, ...] = (
    *CORE_V1,
    # Named groups in kube-apiserver's discovery priority order.
    *APIREGISTRATION_V1,
    *APPS_V1,
    *EVENTS_V1,
    *AUTHENTICATION_V1,
    *AUTHORIZATION_V1,
    *AUTOSCALING,
    *BATCH_V1,
    *CERTIFICATES_V1,
    *NETWORKING_V1,
    *POLICY_V1,
    *RBAC_V1,
    *STORAGE_V1,
    *ADMISSIONREGISTRATION_V1,
    *APIEXTENSIONS_V1,
    *SCHEDULING_V1,
    *COORDINATION_V1,
    *NODE_V1,
    *DISCOVERY_V1,
    *FLOWCONTROL_V1,
)
"""Every served group/version/resource, core first, then groups by discovery priority; a group's
versions in preference order (autoscaling v2 before v1); resources alphabetical within one."""


_BY_PLURAL: dict[tuple[str, str, str], ResourceSpec] = {(r.group, r.version, r.plural): r for r in RESOURCES}
_BY_KIND: dict[tuple[str, str, str], ResourceSpec] = {(r.group, r.version, r.kind): r for r in RESOURCES}


def by_plural(group: str, version: str, plural: str) -> ResourceSpec | None:
    """The spec served at `/apis/<group>/<version>/<plural>` (core: group ""), or None."""
    return _BY_PLURAL.get((group, version, plural))


def by_kind(group: str, version: str, kind: str) -> ResourceSpec | None:
    """The spec whose objects are `<group>/<version>, Kind=<kind>`, or None."""
    return _BY_KIND.get((group, version, kind))


def preferred_versions() -> dict[str, tuple[str, ...]]:
    """group -> its served versions, preferred first (the table's order; "" is core)."""
    versions: dict[str, list[str]] = {}
    for r in RESOURCES:
        seen = versions.setdefault(r.group, [])
        if r.version not in seen:
            seen.append(r.version)
    return {group: tuple(vs) for group, vs in versions.items()}


def _group_version_names(specs: tuple[ResourceSpec, ...]) -> Iterator[tuple[str, str, str]]:
    """(group/version, what, name) for every name a client may type within one group version."""
    for r in specs:
        yield r.group_version, "resource", r.plural
        yield r.group_version, "kind", r.kind
        for short in r.short_names:
            yield r.group_version, "short name", short


def check_table(specs: tuple[ResourceSpec, ...] = RESOURCES) -> None:
    """Raise ValueError on a duplicate plural, kind or short name within one group version, or on a
    duplicate subresource, so a bad edit to the table fails at import rather than at request time."""
    seen: set[tuple[str, str, str]] = set()
    for gv, what, name in _group_version_names(specs):
        # Plurals and short names share one namespace: both are what `kubectl get X` resolves.
        key = (gv, "kind" if what == "kind" else "name", name)
        if key in seen:
            raise ValueError(f"duplicate {what} {name!r} in {gv}")
        seen.add(key)
    for r in specs:
        subs = [s.name for s in r.subresources]
        if len(subs) != len(set(subs)):
            raise ValueError(f"duplicate subresource in {r.plural} ({r.group_version})")


check_table()
