"""The default RBAC policy kube-apiserver 1.33 creates, and its reconciliation on start.

The data is kube's bootstrap policy (`plugin/pkg/auth/authorizer/rbac/bootstrappolicy`):
the user-facing roles (cluster-admin, admin, edit, view and the aggregate-to-* pieces), the
system roles of the components, the per-controller `system:controller:*` roles, and the
bindings kube makes. Written compactly: `_r(verbs, groups, resources)` is one PolicyRule.

One deliberate difference: kube-controller-manager runs every controller as
`system:kube-controller-manager` here (kube's `--use-service-account-credentials=false`), so
each `system:controller:*` ClusterRoleBinding names that user besides the controller's
ServiceAccount, as kube's documentation asks of clusters run that way.

Reconciliation (`reconcile`) is kube's `auto-reconcile` post-start hook: a missing object is
created; an existing one annotated `rbac.authorization.kubernetes.io/autoupdate: "true"` (or
not annotated) gets missing rules, subjects, labels and annotations added, never removed; one
annotated `"false"` is left alone.
"""

from __future__ import annotations

import copy
import logging
from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

from pykube_server.api import errors

if TYPE_CHECKING:
    from pykube_server.apiserver.app import APIServer

log = logging.getLogger(__name__)

Obj = dict[str, Any]
GROUP = "rbac.authorization.k8s.io"
API_VERSION = f"{GROUP}/v1"
AUTOUPDATE = "rbac.authorization.kubernetes.io/autoupdate"
BOOTSTRAP_LABELS = {"kubernetes.io/bootstrapping": "rbac-defaults"}
AGGREGATE_TO = "rbac.authorization.k8s.io/aggregate-to-"
CONTROLLER_MANAGER_USER = "system:kube-controller-manager"

READ = ("get", "list", "watch")
READ_WRITE = ("create", "delete", "deletecollection", "get", "list", "patch", "update", "watch")
WRITE = ("create", "delete", "deletecollection", "patch", "update")
EVENT_VERBS = ("create", "patch", "update")


def _r(verbs: Iterable[str], groups: Iterable[str], resources: Iterable[str], names: Iterable[str] = ()) -> Obj:
    rule: Obj = {"verbs": list(verbs), "apiGroups": list(groups), "resources": list(resources)}
    if names:
        rule["resourceNames"] = list(names)
    return rule


def _urls(verbs: Iterable[str], urls: Iterable[str]) -> Obj:
    return {"verbs": list(verbs), "nonResourceURLs": list(urls)}


EVENTS = _r(EVENT_VERBS, ("", "events.k8s.io"), ("events",))
"""kube's eventsRule: every component may record events."""

# --- user-facing roles --------------------------------------------------------------------------

AGGREGATE_TO_VIEW = [
    _r(READ, ("",), ("configmaps", "endpoints", "persistentvolumeclaims", "persistentvolumeclaims/status", "pods",
                     "replicationcontrollers", "replicationcontrollers/scale", "serviceaccounts", "services",
                     "services/status")),
    _r(READ, ("",), ("bindings", "events", "limitranges", "namespaces/status", "pods/log", "pods/status",
                     "replicationcontrollers/status", "resourcequotas", "resourcequotas/status")),
    _r(READ, ("",), ("namespaces",)),
    _r(READ, ("discovery.k8s.io",), ("endpointslices",)),
    _r(READ, ("apps",), ("controllerrevisions", "daemonsets", "daemonsets/status", "deployments", "deployments/scale",
                         "deployments/status", "replicasets", "replicasets/scale", "replicasets/status", "statefulsets",
                         "statefulsets/scale", "statefulsets/status")),
    _r(READ, ("autoscaling",), ("horizontalpodautoscalers", "horizontalpodautoscalers/status")),
    _r(READ, ("batch",), ("cronjobs", "cronjobs/status", "jobs", "jobs/status")),
    _r(READ, ("extensions",), ("daemonsets", "daemonsets/status", "deployments", "deployments/scale",
                               "deployments/status", "ingresses", "ingresses/status", "networkpolicies", "replicasets",
                               "replicasets/scale", "replicasets/status", "replicationcontrollers/scale")),
    _r(READ, ("policy",), ("poddisruptionbudgets", "poddisruptionbudgets/status")),
    _r(READ, ("networking.k8s.io",), ("ingresses", "ingresses/status", "networkpolicies")),
]

AGGREGATE_TO_EDIT = [
    _r(READ, ("",), ("pods/attach", "pods/exec", "pods/portforward", "pods/proxy", "secrets", "services/proxy")),
    _r(("impersonate",), ("",), ("serviceaccounts",)),
    _r(WRITE, ("",), ("pods", "pods/attach", "pods/exec", "pods/portforward", "pods/proxy")),
    _r(("create",), ("",), ("pods/eviction",)),
    _r(WRITE, ("",), ("configmaps", "events", "persistentvolumeclaims", "replicationcontrollers",
                      "replicationcontrollers/scale", "secrets", "serviceaccounts", "services", "services/proxy")),
    _r(("create",), ("",), ("serviceaccounts/token",)),
    _r(WRITE, ("apps",), ("daemonsets", "deployments", "deployments/rollback", "deployments/scale", "replicasets",
                          "replicasets/scale", "statefulsets", "statefulsets/scale")),
    _r(WRITE, ("autoscaling",), ("horizontalpodautoscalers",)),
    _r(WRITE, ("batch",), ("cronjobs", "jobs")),
    _r(WRITE, ("extensions",), ("daemonsets", "deployments", "deployments/rollback", "deployments/scale", "ingresses",
                                "networkpolicies", "replicasets", "replicasets/scale", "replicationcontrollers/scale")),
    _r(WRITE, ("policy",), ("poddisruptionbudgets",)),
    _r(WRITE, ("networking.k8s.io",), ("ingresses", "networkpolicies")),
    _r(READ_WRITE, ("coordination.k8s.io",), ("leases",)),
]

AGGREGATE_TO_ADMIN = [
    _r(("create",), ("authorization.k8s.io",), ("localsubjectaccessreviews",)),
    _r(READ_WRITE, (GROUP,), ("rolebindings", "roles")),
]

# --- component and system roles -----------------------------------------------------------------

KUBE_CONTROLLER_MANAGER = [
    EVENTS,
    _r(("create",), ("coordination.k8s.io",), ("leases",)),
    _r(("get", "update"), ("coordination.k8s.io",), ("leases",), ("kube-controller-manager",)),
    _r(("create",), ("",), ("secrets", "serviceaccounts")),
    _r(("delete",), ("",), ("secrets",)),
    _r(("get",), ("",), ("configmaps", "namespaces", "secrets", "serviceaccounts")),
    _r(("update",), ("",), ("secrets", "serviceaccounts")),
    _r(("create",), ("authentication.k8s.io",), ("tokenreviews",)),
    _r(("create",), ("authorization.k8s.io",), ("subjectaccessreviews",)),
    _r(("list", "watch"), ("*",), ("*",)),
    _r(("create",), ("",), ("serviceaccounts/token",)),
]

KUBE_SCHEDULER = [
    EVENTS,
    _r(("create",), ("coordination.k8s.io",), ("leases",)),
    _r(("get", "update"), ("coordination.k8s.io",), ("leases",), ("kube-scheduler",)),
    _r(READ, ("",), ("nodes",)),
    _r(("delete", "get", "list", "watch"), ("",), ("pods",)),
    _r(("create",), ("",), ("bindings", "pods/binding")),
    _r(("patch", "update"), ("",), ("pods/status",)),
    _r(READ, ("",), ("replicationcontrollers", "services")),
    _r(READ, ("apps", "extensions"), ("replicasets",)),
    _r(READ, ("apps",), ("statefulsets",)),
    _r(READ, ("policy",), ("poddisruptionbudgets",)),
    _r(READ, ("",), ("persistentvolumeclaims", "persistentvolumes")),
    _r(("create",), ("authentication.k8s.io",), ("tokenreviews",)),
    _r(("create",), ("authorization.k8s.io",), ("subjectaccessreviews",)),
    _r(READ, ("storage.k8s.io",), ("csinodes",)),
    _r(READ, ("",), ("namespaces",)),
    _r(READ, ("storage.k8s.io",), ("csidrivers",)),
    _r(READ, ("storage.k8s.io",), ("csistoragecapacities",)),
]

NODE = [
    _r(("create",), ("authentication.k8s.io",), ("tokenreviews",)),
    _r(("create",), ("authorization.k8s.io",), ("localsubjectaccessreviews", "subjectaccessreviews")),
    _r(READ, ("",), ("services",)),
    _r(("create", "get", "list", "watch"), ("",), ("nodes",)),
    _r(("patch", "update"), ("",), ("nodes/status",)),
    _r(("patch", "update"), ("",), ("nodes",)),
    _r(EVENT_VERBS, ("",), ("events",)),
    _r(READ, ("",), ("pods",)),
    _r(("create", "delete"), ("",), ("pods",)),
    _r(("patch", "update"), ("",), ("pods/status",)),
    _r(("create",), ("",), ("pods/eviction",)),
    _r(READ, ("",), ("configmaps", "secrets")),
    _r(("get",), ("",), ("persistentvolumeclaims", "persistentvolumes")),
    _r(("get",), ("",), ("endpoints",)),
    _r(("create", "get", "list", "watch"), ("certificates.k8s.io",), ("certificatesigningrequests",)),
    _r(("create", "delete", "get", "patch", "update"), ("coordination.k8s.io",), ("leases",)),
    _r(("get",), ("storage.k8s.io",), ("volumeattachments",)),
    _r(("create",), ("",), ("serviceaccounts/token",)),
    _r(("get", "patch", "update"), ("",), ("persistentvolumeclaims/status",)),
    _r(READ, ("storage.k8s.io",), ("csidrivers",)),
    _r(("create", "delete", "get", "patch", "update"), ("storage.k8s.io",), ("csinodes",)),
    _r(READ, ("node.k8s.io",), ("runtimeclasses",)),
]
"""kube's NodeRules: what the Node authorizer grants a kubelet outside its graph checks (the
`system:node` ClusterRole has the same rules and, since 1.8, no subjects)."""

NODE_PROXIER = [
    _r(("list", "watch"), ("",), ("endpoints", "services")),
    _r(READ, ("",), ("nodes",)),
    EVENTS,
    _r(("list", "watch"), ("discovery.k8s.io",), ("endpointslices",)),
]

CLUSTER_ROLES: list[tuple[str, list[Obj], dict[str, str], str]] = [
    # (name, rules, extra labels, aggregated from: the aggregate-to-<x> label value or "")
    ("cluster-admin", [_r(("*",), ("*",), ("*",)), _urls(("*",), ("*",))], {}, ""),
    ("admin", [], {}, "admin"),
    ("edit", [], {AGGREGATE_TO + "admin": "true"}, "edit"),
    ("view", [], {AGGREGATE_TO + "edit": "true"}, "view"),
    ("system:aggregate-to-admin", AGGREGATE_TO_ADMIN, {AGGREGATE_TO + "admin": "true"}, ""),
    ("system:aggregate-to-edit", AGGREGATE_TO_EDIT, {AGGREGATE_TO + "edit": "true"}, ""),
    ("system:aggregate-to-view", AGGREGATE_TO_VIEW, {AGGREGATE_TO + "view": "true"}, ""),
    ("system:auth-delegator", [_r(("create",), ("authentication.k8s.io",), ("tokenreviews",)),
                               _r(("create",), ("authorization.k8s.io",), ("subjectaccessreviews",))], {}, ""),
    ("system:basic-user", [_r(("create",), ("authorization.k8s.io",), ("selfsubjectaccessreviews", "selfsubjectrulesreviews")),
                           _r(("create",), ("authentication.k8s.io",), ("selfsubjectreviews",))], {}, ""),
    ("system:certificates.k8s.io:certificatesigningrequests:nodeclient",
     [_r(("create",), ("certificates.k8s.io",), ("certificatesigningrequests/nodeclient",))], {}, ""),
    ("system:certificates.k8s.io:certificatesigningrequests:selfnodeclient",
     [_r(("create",), ("certificates.k8s.io",), ("certificatesigningrequests/selfnodeclient",))], {}, ""),
    ("system:certificates.k8s.io:kube-apiserver-client-approver",
     [_r(("approve",), ("certificates.k8s.io",), ("signers",), ("kubernetes.io/kube-apiserver-client",))], {}, ""),
    ("system:certificates.k8s.io:kube-apiserver-client-kubelet-approver",
     [_r(("approve",), ("certificates.k8s.io",), ("signers",), ("kubernetes.io/kube-apiserver-client-kubelet",))], {}, ""),
    ("system:certificates.k8s.io:kubelet-serving-approver",
     [_r(("approve",), ("certificates.k8s.io",), ("signers",), ("kubernetes.io/kubelet-serving",))], {}, ""),
    ("system:certificates.k8s.io:legacy-unknown-approver",
     [_r(("approve",), ("certificates.k8s.io",), ("signers",), ("kubernetes.io/legacy-unknown",))], {}, ""),
    ("system:discovery", [_urls(("get",), ("/api", "/api/*", "/apis", "/apis/*", "/healthz", "/livez", "/openapi",
                                           "/openapi/*", "/readyz", "/version", "/version/"))], {}, ""),
    ("system:heapster", [_r(READ, ("",), ("events", "namespaces", "nodes", "pods")),
                         _r(READ, ("extensions",), ("deployments",))], {}, ""),
    ("system:kube-aggregator", [_r(READ, ("",), ("endpoints", "services"))], {}, ""),
    ("system:kube-controller-manager", KUBE_CONTROLLER_MANAGER, {}, ""),
    ("system:kube-dns", [_r(("list", "watch"), ("",), ("endpoints", "services"))], {}, ""),
    ("system:kube-scheduler", KUBE_SCHEDULER, {}, ""),
    ("system:kubelet-api-admin", [_r(READ, ("",), ("nodes",)), _r(("proxy",), ("",), ("nodes",)),
                                  _r(("*",), ("",), ("nodes/log", "nodes/metrics", "nodes/proxy", "nodes/stats"))], {}, ""),
    ("system:monitoring", [_urls(("get",), ("/healthz", "/healthz/*", "/livez", "/livez/*", "/metrics", "/metrics/slis",
                                            "/readyz", "/readyz/*"))], {}, ""),
    ("system:node", NODE, {}, ""),
    ("system:node-bootstrapper", [_r(("create", "get", "list", "watch"), ("certificates.k8s.io",),
                                     ("certificatesigningrequests",))], {}, ""),
    ("system:node-problem-detector", [_r(("get",), ("",), ("nodes",)), _r(("patch",), ("",), ("nodes/status",)), EVENTS], {}, ""),
    ("system:node-proxier", NODE_PROXIER, {}, ""),
    ("system:persistent-volume-provisioner", [
        _r(("create", "delete", "get", "list", "watch"), ("",), ("persistentvolumes",)),
        _r(("get", "list", "update", "watch"), ("",), ("persistentvolumeclaims",)),
        _r(READ, ("storage.k8s.io",), ("storageclasses",)),
        _r(("watch",), ("",), ("events",)),
        EVENTS], {}, ""),
    ("system:public-info-viewer", [_urls(("get",), ("/healthz", "/livez", "/readyz", "/version", "/version/"))], {}, ""),
    ("system:service-account-issuer-discovery", [_urls(("get",), ("/.well-known/openid-configuration",
                                                                 "/openid/v1/jwks"))], {}, ""),
    ("system:volume-scheduler", [_r(("get", "list", "patch", "update", "watch"), ("",), ("persistentvolumes",)),
                                 _r(READ, ("storage.k8s.io",), ("storageclasses",)),
                                 _r(("get", "list", "patch", "update", "watch"), ("",), ("persistentvolumeclaims",))], {}, ""),
]

# --- per-controller roles (kube's controller_policy.go, for the controllers we run) --------------

CONTROLLER_ROLES: list[tuple[str, list[Obj]]] = [
    ("clusterrole-aggregation-controller", [_r(("escalate", "get", "list", "patch", "update", "watch"), (GROUP,),
                                               ("clusterroles",))]),
    ("cronjob-controller", [
        _r(("get", "list", "update", "watch"), ("batch",), ("cronjobs",)),
        _r(("create", "delete", "get", "list", "patch", "update", "watch"), ("batch",), ("jobs",)),
        _r(("update",), ("batch",), ("cronjobs/status",)),
        _r(("update",), ("batch",), ("cronjobs/finalizers",)),
        _r(("delete", "list"), ("",), ("pods",)), EVENTS]),
    ("daemon-set-controller", [
        _r(READ, ("apps", "extensions"), ("daemonsets",)),
        _r(("update",), ("apps", "extensions"), ("daemonsets/status",)),
        _r(("update",), ("apps", "extensions"), ("daemonsets/finalizers",)),
        _r(("list", "watch"), ("",), ("nodes",)),
        _r(("create", "delete", "list", "patch", "watch"), ("",), ("pods",)),
        _r(("create",), ("",), ("pods/binding",)),
        _r(("create", "delete", "get", "list", "patch", "update", "watch"), ("apps",), ("controllerrevisions",)),
        EVENTS]),
    ("deployment-controller", [
        _r(("get", "list", "update", "watch"), ("apps", "extensions"), ("deployments",)),
        _r(("update",), ("apps", "extensions"), ("deployments/status",)),
        _r(("update",), ("apps", "extensions"), ("deployments/finalizers",)),
        _r(("create", "delete", "get", "list", "patch", "update", "watch"), ("apps", "extensions"), ("replicasets",)),
        _r(("get", "list", "update", "watch"), ("",), ("pods",)),
        EVENTS]),
    ("endpoint-controller", [
        _r(READ, ("",), ("pods", "services")),
        _r(("create", "delete", "get", "list", "update"), ("",), ("endpoints",)),
        _r(("create",), ("",), ("endpoints/restricted",)),
        EVENTS]),
    ("endpointslice-controller", [
        _r(READ, ("",), ("nodes", "pods", "services")),
        _r(("update",), ("",), ("services/finalizers",)),
        _r(("create", "delete", "get", "list", "update"), ("discovery.k8s.io",), ("endpointslices",)),
        EVENTS]),
    ("endpointslicemirroring-controller", [
        _r(READ, ("",), ("endpoints", "services")),
        _r(("update",), ("",), ("services/finalizers",)),
        _r(("update",), ("",), ("endpoints/finalizers",)),
        _r(("create", "delete", "get", "list", "update"), ("discovery.k8s.io",), ("endpointslices",)),
        EVENTS]),
    ("horizontal-pod-autoscaler", [
        _r(READ, ("autoscaling",), ("horizontalpodautoscalers",)),
        _r(("update",), ("autoscaling",), ("horizontalpodautoscalers/status",)),
        _r(("get", "update"), ("*",), ("*/scale",)),
        _r(("list",), ("",), ("pods",)),
        _r(("get",), ("",), ("services/proxy",), ("https:heapster:", "http:heapster:")),
        _r(("list",), ("metrics.k8s.io",), ("pods",)),
        _r(("get", "list"), ("custom.metrics.k8s.io",), ("*",)),
        _r(("get", "list"), ("external.metrics.k8s.io",), ("*",)),
        EVENTS]),
    ("generic-garbage-collector", [_r(("delete", "get", "list", "patch", "update", "watch"), ("*",), ("*",)), EVENTS]),
    ("job-controller", [
        _r(("get", "list", "patch", "update", "watch"), ("batch",), ("jobs",)),
        _r(("update",), ("batch",), ("jobs/status",)),
        _r(("update",), ("batch",), ("jobs/finalizers",)),
        _r(("create", "delete", "list", "patch", "watch"), ("",), ("pods",)),
        EVENTS]),
    ("namespace-controller", [
        _r(("delete", "get", "list", "watch"), ("",), ("namespaces",)),
        _r(("update",), ("",), ("namespaces/finalize", "namespaces/status")),
        _r(("delete", "deletecollection", "get", "list"), ("*",), ("*",))]),
    ("replicaset-controller", [
        _r(("get", "list", "update", "watch"), ("apps", "extensions"), ("replicasets",)),
        _r(("update",), ("apps", "extensions"), ("replicasets/status",)),
        _r(("update",), ("apps", "extensions"), ("replicasets/finalizers",)),
        _r(("create", "delete", "list", "patch", "watch"), ("",), ("pods",)),
        EVENTS]),
    ("replication-controller", [
        _r(("get", "list", "update", "watch"), ("",), ("replicationcontrollers",)),
        _r(("update",), ("",), ("replicationcontrollers/status",)),
        _r(("update",), ("",), ("replicationcontrollers/finalizers",)),
        _r(("create", "delete", "list", "patch", "watch"), ("",), ("pods",)),
        EVENTS]),
    ("root-ca-cert-publisher", [_r(("create", "update"), ("",), ("configmaps",)), EVENTS]),
    ("service-account-controller", [_r(("create",), ("",), ("serviceaccounts",)), EVENTS]),
    ("service-controller", [
        _r(READ, ("",), ("services",)),
        _r(("patch", "update"), ("",), ("services/status",)),
        _r(("list", "watch"), ("",), ("nodes",)),
        EVENTS]),
    ("statefulset-controller", [
        _r(("list", "watch"), ("",), ("pods",)),
        _r(READ, ("apps",), ("statefulsets",)),
        _r(("update",), ("apps",), ("statefulsets/status",)),
        _r(("update",), ("apps",), ("statefulsets/finalizers",)),
        _r(("create", "delete", "get", "patch", "update"), ("",), ("pods",)),
        _r(("create", "delete", "get", "list", "patch", "update", "watch"), ("apps",), ("controllerrevisions",)),
        _r(("create", "get"), ("",), ("persistentvolumeclaims",)),
        _r(("update", "delete"), ("",), ("persistentvolumeclaims",)),
        EVENTS]),
    ("ttl-after-finished-controller", [_r(("delete", "get", "list", "watch"), ("batch",), ("jobs",)), EVENTS]),
    ("validatingadmissionpolicy-status-controller", [
        _r(("get", "list", "watch"), ("admissionregistration.k8s.io",), ("validatingadmissionpolicies",)),
        _r(("get", "patch", "update"), ("admissionregistration.k8s.io",), ("validatingadmissionpolicies/status",)),
        EVENTS]),
    ("resourcequota-controller", [
        _r(("list", "watch"), ("*",), ("*",)),
        _r(("update",), ("",), ("resourcequotas/status",)),
        EVENTS]),
    ("disruption-controller", [
        _r(READ, ("apps", "extensions"), ("deployments",)),
        _r(READ, ("apps", "extensions"), ("replicasets",)),
        _r(READ, ("",), ("replicationcontrollers",)),
        _r(READ, ("policy",), ("poddisruptionbudgets",)),
        _r(READ, ("apps",), ("statefulsets",)),
        _r(("update",), ("policy",), ("poddisruptionbudgets/status",)),
        _r(("get",), ("*",), ("*/scale",)),
        _r(("patch", "update"), ("",), ("pods/status",)),
        EVENTS]),
    ("pod-garbage-collector", [
        _r(("delete", "list", "watch"), ("",), ("pods",)),
        _r(("get", "list", "watch"), ("",), ("nodes",)),
        _r(("patch",), ("",), ("pods/status",))]),
    ("node-controller", [
        _r(("delete", "get", "list", "patch", "update"), ("",), ("nodes",)),
        _r(("patch", "update"), ("",), ("nodes/status",)),
        _r(("patch", "update"), ("",), ("pods/status",)),
        _r(("delete", "list"), ("",), ("pods",)),
        EVENTS]),
    ("persistent-volume-binder", [
        _r(("create", "delete", "get", "list", "update", "watch"), ("",), ("persistentvolumes",)),
        _r(("update",), ("",), ("persistentvolumes/status",)),
        _r(("get", "list", "update", "watch"), ("",), ("persistentvolumeclaims",)),
        _r(("update",), ("",), ("persistentvolumeclaims/status",)),
        _r(READ, ("",), ("pods",)),
        _r(READ, ("storage.k8s.io",), ("storageclasses",)),
        _r(("create", "delete", "get"), ("",), ("endpoints", "services")),
        _r(("get",), ("",), ("secrets",)),
        _r(("get", "list"), ("",), ("nodes",)),
        _r(("watch",), ("",), ("events",)),
        EVENTS]),
    ("pvc-protection-controller", [
        _r(("get", "list", "update", "watch"), ("",), ("persistentvolumeclaims",)),
        _r(("get", "list", "watch"), ("",), ("pods",)),
        EVENTS]),
    ("pv-protection-controller", [
        _r(("get", "list", "update", "watch"), ("",), ("persistentvolumes",)),
        EVENTS]),
    ("ephemeral-volume-controller", [
        _r(READ, ("",), ("pods",)),
        _r(("update",), ("",), ("pods/finalizers",)),
        _r(("create", "get", "list", "watch"), ("",), ("persistentvolumeclaims",)),
        EVENTS]),
]


def _subject(kind: str, name: str, namespace: str = "") -> Obj:
    if kind == "ServiceAccount":
        return {"kind": kind, "name": name, "namespace": namespace}
    return {"apiGroup": GROUP, "kind": kind, "name": name}


CLUSTER_ROLE_BINDINGS: list[tuple[str, str, list[Obj]]] = [
    ("cluster-admin", "cluster-admin", [_subject("Group", "system:masters")]),
    ("system:basic-user", "system:basic-user", [_subject("Group", "system:authenticated")]),
    ("system:discovery", "system:discovery", [_subject("Group", "system:authenticated")]),
    ("system:kube-controller-manager", "system:kube-controller-manager", [_subject("User", CONTROLLER_MANAGER_USER)]),
    ("system:kube-dns", "system:kube-dns", [_subject("ServiceAccount", "kube-dns", "kube-system")]),
    ("system:kube-scheduler", "system:kube-scheduler", [_subject("User", "system:kube-scheduler")]),
    ("system:monitoring", "system:monitoring", [_subject("Group", "system:monitoring")]),
    ("system:node", "system:node", []),
    ("system:node-proxier", "system:node-proxier", [_subject("User", "system:kube-proxy")]),
    ("system:public-info-viewer", "system:public-info-viewer",
     [_subject("Group", "system:authenticated"), _subject("Group", "system:unauthenticated")]),
    ("system:service-account-issuer-discovery", "system:service-account-issuer-discovery",
     [_subject("Group", "system:serviceaccounts")]),
    ("system:volume-scheduler", "system:volume-scheduler", [_subject("User", "system:kube-scheduler")]),
]

# Namespaced Roles and RoleBindings kube creates in kube-system.
ROLES: list[tuple[str, str, list[Obj]]] = [
    ("kube-system", "extension-apiserver-authentication-reader",
     [_r(READ, ("",), ("configmaps",), ("extension-apiserver-authentication",))]),
    ("kube-system", "system::leader-locking-kube-controller-manager",
     [_r(("watch",), ("",), ("configmaps",)),
      _r(("get", "update"), ("",), ("configmaps",), ("kube-controller-manager",))]),
    ("kube-system", "system::leader-locking-kube-scheduler",
     [_r(("watch",), ("",), ("configmaps",)),
      _r(("get", "update"), ("",), ("configmaps",), ("kube-scheduler",))]),
]

ROLE_BINDINGS: list[tuple[str, str, str, list[Obj]]] = [
    ("kube-system", "system::extension-apiserver-authentication-reader", "extension-apiserver-authentication-reader",
     [_subject("User", "system:kube-controller-manager"), _subject("User", "system:kube-scheduler")]),
    ("kube-system", "system::leader-locking-kube-controller-manager", "system::leader-locking-kube-controller-manager",
     [_subject("User", "system:kube-controller-manager"),
      _subject("ServiceAccount", "kube-controller-manager", "kube-system")]),
    ("kube-system", "system::leader-locking-kube-scheduler", "system::leader-locking-kube-scheduler",
     [_subject("User", "system:kube-scheduler"), _subject("ServiceAccount", "kube-scheduler", "kube-system")]),
]


def _meta(name: str, labels: dict[str, str] | None = None, namespace: str = "", annotate: bool = True) -> Obj:
    meta: Obj = {"name": name, "labels": {**BOOTSTRAP_LABELS, **(labels or {})}}
    if annotate:
        meta["annotations"] = {AUTOUPDATE: "true"}
    if namespace:
        meta["namespace"] = namespace
    return meta


def cluster_roles() -> list[Obj]:
    out = []
    for name, rules, labels, aggregate_from in CLUSTER_ROLES:
        role: Obj = {"apiVersion": API_VERSION, "kind": "ClusterRole", "metadata": _meta(name, labels)}
        if rules:
            role["rules"] = copy.deepcopy(rules)
        if aggregate_from:
            role["aggregationRule"] = {"clusterRoleSelectors": [{"matchLabels": {AGGREGATE_TO + aggregate_from: "true"}}]}
        out.append(role)
    for controller, rules in CONTROLLER_ROLES:
        out.append({"apiVersion": API_VERSION, "kind": "ClusterRole", "metadata": _meta(f"system:controller:{controller}"),
                    "rules": copy.deepcopy(rules)})
    return out


def cluster_role_bindings() -> list[Obj]:
    out = []
    for name, role, subjects in CLUSTER_ROLE_BINDINGS:
        binding: Obj = {"apiVersion": API_VERSION, "kind": "ClusterRoleBinding", "metadata": _meta(name),
                        "roleRef": {"apiGroup": GROUP, "kind": "ClusterRole", "name": role}}
        if subjects:
            binding["subjects"] = copy.deepcopy(subjects)
        out.append(binding)
    for controller, _ in CONTROLLER_ROLES:
        name = f"system:controller:{controller}"
        out.append({"apiVersion": API_VERSION, "kind": "ClusterRoleBinding", "metadata": _meta(name),
                    "roleRef": {"apiGroup": GROUP, "kind": "ClusterRole", "name": name},
                    "subjects": [_subject("ServiceAccount", controller, "kube-system"),
                                 _subject("User", CONTROLLER_MANAGER_USER)]})
    return out


def roles() -> list[Obj]:
    return [{"apiVersion": API_VERSION, "kind": "Role", "metadata": _meta(name, namespace=ns),
             "rules": copy.deepcopy(rules)} for ns, name, rules in ROLES]


def role_bindings() -> list[Obj]:
    return [{"apiVersion": API_VERSION, "kind": "RoleBinding", "metadata": _meta(name, namespace=ns),
             "roleRef": {"apiGroup": GROUP, "kind": "Role", "name": role}, "subjects": copy.deepcopy(subjects)}
            for ns, name, role, subjects in ROLE_BINDINGS]


# --- reconciliation -----------------------------------------------------------------------------


def _merge_meta(current: Obj, expected: Obj) -> bool:
    """Add expected labels and annotations the current object lacks; True if anything changed."""
    changed = False
    meta, want = current.setdefault("metadata", {}), expected["metadata"]
    for field in ("labels", "annotations"):
        for key, value in (want.get(field) or {}).items():
            have = meta.setdefault(field, {}) if meta.get(field) is None else meta[field]
            if key not in have:
                have[key] = value
                changed = True
    return changed


def reconcile_role(current: Obj, expected: Obj) -> Obj | None:
    """The updated role, or None when nothing is missing (kube's computeReconciledRole with
    removeExtraPermissions=false)."""
    from pykube_server.apiserver.rbac.escalation import covers

    updated = copy.deepcopy(current)
    changed = _merge_meta(updated, expected)
    _, missing = covers(updated.get("rules") or [], expected.get("rules") or [])
    if missing:
        updated["rules"] = [*(updated.get("rules") or []), *missing]
        changed = True
    want_agg = (expected.get("aggregationRule") or {}).get("clusterRoleSelectors") or []
    if want_agg:
        have_agg = updated.setdefault("aggregationRule", {}).setdefault("clusterRoleSelectors", [])
        for selector in want_agg:
            if selector not in have_agg:
                have_agg.append(selector)
                changed = True
    return updated if changed else None


def reconcile_binding(current: Obj, expected: Obj) -> Obj | None:
    updated = copy.deepcopy(current)
    changed = _merge_meta(updated, expected)
    have = updated.get("subjects") or []
    for subject in expected.get("subjects") or []:
        if not any(_same_subject(subject, s) for s in have):
            have.append(subject)
            changed = True
    if have:
        updated["subjects"] = have
    return updated if changed else None


def _same_subject(a: Obj, b: Obj) -> bool:
    return all(a.get(k, "") == b.get(k, "") for k in ("kind", "name", "namespace"))


async def reconcile(server: APIServer) -> None:
    """Create or top up every bootstrap object (kube's rbac/bootstrap-roles post-start hook)."""
    plan = [("clusterroles", cluster_roles(), reconcile_role), ("clusterrolebindings", cluster_role_bindings(), reconcile_binding),
            ("roles", roles(), reconcile_role), ("rolebindings", role_bindings(), reconcile_binding)]
    for plural, objects, merge in plan:
        store = server.store_for(GROUP, "v1", plural)
        for expected in objects:
            await _reconcile_one(store, expected, merge)


async def _reconcile_one(store: Any, expected: Obj, merge: Any) -> None:
    namespace = expected["metadata"].get("namespace", "")
    name = expected["metadata"]["name"]
    try:
        await store.create(namespace, copy.deepcopy(expected))
        return
    except errors.AlreadyExists:
        pass
    current = (await store.get(namespace, name)).decode()
    if ((current.get("metadata") or {}).get("annotations") or {}).get(AUTOUPDATE) == "false":
        return
    if "roleRef" in expected and current.get("roleRef") != expected["roleRef"]:
        # roleRef is immutable: kube deletes and recreates the binding.
        await store.delete(namespace, name, {})
        await store.create(namespace, copy.deepcopy(expected))
        return
    updated = merge(current, expected)
    if updated is None:
        return

    async def replace(_: Obj | None) -> Obj:
        return updated

    try:
        await store.update(namespace, name, replace)
    except errors.Conflict:
        log.info("bootstrap %s %s changed meanwhile; next start reconciles it", store.spec.plural, name)
