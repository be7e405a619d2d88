"""Scheme defaults: a manifest in, the object a real 1.33 cluster returns out (spec parts).

Expected values are what `kubectl get -o yaml` shows on a real cluster for the same manifest
(pkg/apis/*/v1/defaults.go and zz_generated.defaults.go): a Pod gets enableServiceLinks and
requests copied from limits, a template does not; a Job gets its controller-uid selector.
"""

from __future__ import annotations

import copy
from typing import Any

import pytest

from pykube_server.api import errors
from pykube_server.registry.defaults import default_object

CONTAINER_DEFAULTS = {"imagePullPolicy": "IfNotPresent", "resources": {}, "terminationMessagePath": "/dev/termination-log",
                      "terminationMessagePolicy": "File"}
TEMPLATE_SPEC_DEFAULTS = {"dnsPolicy": "ClusterFirst", "restartPolicy": "Always", "schedulerName": "default-scheduler",
                          "securityContext": {}, "terminationGracePeriodSeconds": 30}


def defaulted(group: str, version: str, kind: str, obj: dict[str, Any]) -> dict[str, Any]:
    out = copy.deepcopy(obj)
    default_object(group, version, kind, out)
    again = copy.deepcopy(out)
    default_object(group, version, kind, again)
    assert again == out, "defaulting must be idempotent"
    return out


def template(labels: dict[str, str] | None = None, **spec: Any) -> dict[str, Any]:
    return {"metadata": {"labels": labels or {"app": "web"}},
            "spec": {"containers": [{"name": "web", "image": "nginx:1.25"}], **spec}}


def defaulted_template(labels: dict[str, str] | None = None, **spec: Any) -> dict[str, Any]:
    return {"metadata": {"labels": labels or {"app": "web"}},
            "spec": {"containers": [{"name": "web", "image": "nginx:1.25", **CONTAINER_DEFAULTS}],
                     **TEMPLATE_SPEC_DEFAULTS, **spec}}


def test_pod() -> None:
    pod = {"metadata": {"name": "p"}, "spec": {"containers": [
        {"name": "c", "image": "nginx", "ports": [{"containerPort": 80}],
         "resources": {"limits": {"cpu": "1", "memory": "1024Mi"}},
         "livenessProbe": {"httpGet": {"port": 80}},
         "env": [{"name": "N", "valueFrom": {"fieldRef": {"fieldPath": "metadata.name"}}}]}]}}
    assert defaulted("", "v1", "Pod", pod)["spec"] == {
        "containers": [{
            "name": "c", "image": "nginx", "imagePullPolicy": "Always", "ports": [{"containerPort": 80, "protocol": "TCP"}],
            "resources": {"limits": {"cpu": "1", "memory": "1Gi"}, "requests": {"cpu": "1", "memory": "1Gi"}},
            "livenessProbe": {"httpGet": {"port": 80, "path": "/", "scheme": "HTTP"}, "timeoutSeconds": 1,
                              "periodSeconds": 10, "successThreshold": 1, "failureThreshold": 3},
            "env": [{"name": "N", "valueFrom": {"fieldRef": {"apiVersion": "v1", "fieldPath": "metadata.name"}}}],
            "terminationMessagePath": "/dev/termination-log", "terminationMessagePolicy": "File"}],
        "enableServiceLinks": True, **TEMPLATE_SPEC_DEFAULTS}


@pytest.mark.parametrize(("image", "policy"), [
    ("nginx", "Always"), ("nginx:latest", "Always"), ("nginx:1.25", "IfNotPresent"),
    ("registry:5000/nginx", "Always"), ("registry:5000/nginx:1", "IfNotPresent"),
    ("nginx@sha256:" + "a" * 64, "IfNotPresent"),
])
def test_image_pull_policy(image: str, policy: str) -> None:
    pod = defaulted("", "v1", "Pod", {"spec": {"containers": [{"name": "c", "image": image}]}})
    assert pod["spec"]["containers"][0]["imagePullPolicy"] == policy


def test_pod_volumes_and_host_network() -> None:
    pod = defaulted("", "v1", "Pod", {"spec": {"hostNetwork": True, "serviceAccountName": "builder", "volumes": [
        {"name": "a"}, {"name": "b", "configMap": {"name": "cm"}}, {"name": "c", "secret": {"secretName": "s"}},
        {"name": "d", "hostPath": {"path": "/x"}}, {"name": "e", "emptyDir": {"sizeLimit": "0.5Gi"}},
        {"name": "f", "projected": {"sources": [{"serviceAccountToken": {"path": "t"}}]}},
    ], "containers": [{"name": "c", "image": "i:1", "ports": [{"containerPort": 8080}]}]}})
    spec = pod["spec"]
    assert spec["volumes"] == [
        {"name": "a", "emptyDir": {}}, {"name": "b", "configMap": {"name": "cm", "defaultMode": 420}},
        {"name": "c", "secret": {"secretName": "s", "defaultMode": 420}}, {"name": "d", "hostPath": {"path": "/x", "type": ""}},
        {"name": "e", "emptyDir": {"sizeLimit": "512Mi"}},
        {"name": "f", "projected": {"defaultMode": 420, "sources": [{"serviceAccountToken": {"path": "t", "expirationSeconds": 3600}}]}},
    ]
    assert spec["containers"][0]["ports"] == [{"containerPort": 8080, "hostPort": 8080, "protocol": "TCP"}]
    assert spec["serviceAccount"] == "builder"


def test_deployment() -> None:
    obj = defaulted("apps", "v1", "Deployment", {"spec": {"selector": {"matchLabels": {"app": "web"}}, "template": template()}})
    assert obj["spec"] == {
        "replicas": 1, "selector": {"matchLabels": {"app": "web"}}, "progressDeadlineSeconds": 600,
        "revisionHistoryLimit": 10, "strategy": {"type": "RollingUpdate", "rollingUpdate": {"maxSurge": "25%", "maxUnavailable": "25%"}},
        "template": defaulted_template()}


def test_deployment_template_gets_no_pod_only_defaults() -> None:
    tpl = template()
    tpl["spec"]["containers"][0]["resources"] = {"limits": {"cpu": "500m"}}
    obj = defaulted("apps", "v1", "Deployment", {"spec": {"template": tpl, "strategy": {"type": "Recreate"}}})
    spec = obj["spec"]["template"]["spec"]
    assert "enableServiceLinks" not in spec and "requests" not in spec["containers"][0]["resources"]
    assert obj["spec"]["strategy"] == {"type": "Recreate"}


def test_replica_set_and_daemon_set() -> None:
    rs = defaulted("apps", "v1", "ReplicaSet", {"spec": {"template": template()}})
    assert rs["spec"] == {"replicas": 1, "template": defaulted_template()}
    ds = defaulted("apps", "v1", "DaemonSet", {"spec": {"template": template()}})
    assert ds["spec"] == {"revisionHistoryLimit": 10, "template": defaulted_template(),
                          "updateStrategy": {"type": "RollingUpdate", "rollingUpdate": {"maxSurge": 0, "maxUnavailable": 1}}}


def test_stateful_set() -> None:
    obj = defaulted("apps", "v1", "StatefulSet", {"spec": {"serviceName": "web", "template": template(), "volumeClaimTemplates": [
        {"metadata": {"name": "www"}, "spec": {"accessModes": ["ReadWriteOnce"], "resources": {"requests": {"storage": "1024Mi"}}}}]}})
    assert obj["spec"] == {
        "serviceName": "web", "replicas": 1, "podManagementPolicy": "OrderedReady", "revisionHistoryLimit": 10,
        "persistentVolumeClaimRetentionPolicy": {"whenDeleted": "Retain", "whenScaled": "Retain"},
        "updateStrategy": {"type": "RollingUpdate", "rollingUpdate": {"partition": 0}}, "template": defaulted_template(),
        "volumeClaimTemplates": [{"metadata": {"name": "www"}, "spec": {
            "accessModes": ["ReadWriteOnce"], "resources": {"requests": {"storage": "1Gi"}}, "volumeMode": "Filesystem"},
            "status": {"phase": "Pending"}}]}


def test_job_gets_generated_selector_and_labels() -> None:
    uid = "0d3f1a5e-0000-4000-8000-000000000001"
    obj = defaulted("batch", "v1", "Job", {"metadata": {"name": "pi", "uid": uid},
                                         "spec": {"template": {"spec": {"restartPolicy": "Never",
                                                                        "containers": [{"name": "pi", "image": "perl:5.34"}]}}}})
    labels = {"batch.kubernetes.io/controller-uid": uid, "batch.kubernetes.io/job-name": "pi", "controller-uid": uid, "job-name": "pi"}
    assert obj["metadata"]["labels"] == labels
    spec = obj["spec"]
    assert spec["selector"] == {"matchLabels": {"batch.kubernetes.io/controller-uid": uid}}
    assert spec["template"]["metadata"]["labels"] == labels
    assert {k: v for k, v in spec.items() if k not in ("selector", "template")} == {
        "backoffLimit": 6, "completionMode": "NonIndexed", "completions": 1, "parallelism": 1,
        "podReplacementPolicy": "TerminatingOrFailed", "suspend": False}
    assert "manualSelector" not in spec


def test_job_manual_selector_and_parallelism() -> None:
    obj = defaulted("batch", "v1", "Job", {"metadata": {"name": "j", "uid": "u"}, "spec": {
        "manualSelector": True, "parallelism": 3, "selector": {"matchLabels": {"a": "b"}}, "template": template({"a": "b"})}})
    assert obj["spec"]["selector"] == {"matchLabels": {"a": "b"}}
    assert "completions" not in obj["spec"] and obj["spec"]["parallelism"] == 3
    assert obj["metadata"]["labels"] == {"a": "b"}


def test_cron_job() -> None:
    obj = defaulted("batch", "v1", "CronJob", {"spec": {"schedule": "* * * * *", "jobTemplate": {"spec": {"template": {
        "spec": {"restartPolicy": "OnFailure", "containers": [{"name": "c", "image": "busybox:1.36"}]}}}}}})
    spec = obj["spec"]
    assert (spec["concurrencyPolicy"], spec["suspend"], spec["successfulJobsHistoryLimit"], spec["failedJobsHistoryLimit"]) == \
        ("Allow", False, 3, 1)
    job_spec = spec["jobTemplate"]["spec"]
    assert "backoffLimit" not in job_spec  # SetDefaults_Job does not run on a CronJob's jobTemplate
    assert job_spec["template"]["spec"]["schedulerName"] == "default-scheduler"


def test_replication_controller_and_pod_template() -> None:
    rc = defaulted("", "v1", "ReplicationController", {"metadata": {}, "spec": {"template": template()}})
    assert rc["spec"]["selector"] == {"app": "web"} and rc["metadata"]["labels"] == {"app": "web"} and rc["spec"]["replicas"] == 1
    pt = defaulted("", "v1", "PodTemplate", {"template": template()})
    assert pt["template"] == defaulted_template()


@pytest.mark.parametrize(("spec", "expected"), [
    ({"selector": {"app": "w"}, "ports": [{"port": 80}]},
     {"selector": {"app": "w"}, "ports": [{"port": 80, "protocol": "TCP", "targetPort": 80}], "type": "ClusterIP",
      "sessionAffinity": "None", "internalTrafficPolicy": "Cluster", "ipFamilyPolicy": "SingleStack", "ipFamilies": ["IPv4"]}),
    ({"type": "NodePort", "ports": [{"port": 80, "targetPort": "http"}]},
     {"type": "NodePort", "ports": [{"port": 80, "protocol": "TCP", "targetPort": "http"}], "sessionAffinity": "None",
      "externalTrafficPolicy": "Cluster", "internalTrafficPolicy": "Cluster", "ipFamilyPolicy": "SingleStack", "ipFamilies": ["IPv4"]}),
    ({"type": "LoadBalancer", "ports": [{"port": 443, "protocol": "UDP"}], "sessionAffinity": "ClientIP"},
     {"type": "LoadBalancer", "ports": [{"port": 443, "protocol": "UDP", "targetPort": 443}], "sessionAffinity": "ClientIP",
      "sessionAffinityConfig": {"clientIP": {"timeoutSeconds": 10800}}, "allocateLoadBalancerNodePorts": True,
      "externalTrafficPolicy": "Cluster", "internalTrafficPolicy": "Cluster", "ipFamilyPolicy": "SingleStack", "ipFamilies": ["IPv4"]}),
    ({"type": "ExternalName", "externalName": "example.com"},
     {"type": "ExternalName", "externalName": "example.com", "sessionAffinity": "None"}),
])
def test_service(spec: dict[str, Any], expected: dict[str, Any]) -> None:
    assert defaulted("", "v1", "Service", {"spec": spec})["spec"] == expected


@pytest.mark.parametrize(("group", "version", "kind", "obj", "expected"), [
    ("", "v1", "Secret", {"data": {}}, {"data": {}, "type": "Opaque"}),
    ("", "v1", "ConfigMap", {"data": {"a": "b"}}, {"data": {"a": "b"}}),
    ("", "v1", "ServiceAccount", {}, {}),
    ("", "v1", "PersistentVolumeClaim", {"spec": {"resources": {"requests": {"storage": "1Gi"}}}},
     {"spec": {"resources": {"requests": {"storage": "1Gi"}}, "volumeMode": "Filesystem"}, "status": {"phase": "Pending"}}),
    ("", "v1", "PersistentVolume", {"spec": {"capacity": {"storage": "2048Mi"}, "hostPath": {"path": "/d"}}},
     {"spec": {"capacity": {"storage": "2Gi"}, "hostPath": {"path": "/d", "type": ""}, "persistentVolumeReclaimPolicy": "Retain",
               "volumeMode": "Filesystem"}, "status": {"phase": "Pending"}}),
    ("", "v1", "Namespace", {"metadata": {"name": "ns"}},
     {"metadata": {"name": "ns", "labels": {"kubernetes.io/metadata.name": "ns"}}, "status": {"phase": "Active"}}),
    ("", "v1", "ResourceQuota", {"spec": {"hard": {"cpu": "1000m", "pods": 10}}}, {"spec": {"hard": {"cpu": "1", "pods": "10"}}}),
    ("", "v1", "LimitRange", {"spec": {"limits": [{"type": "Container", "max": {"cpu": "2"}, "min": {"memory": "64Mi"}}]}},
     {"spec": {"limits": [{"type": "Container", "max": {"cpu": "2"}, "min": {"memory": "64Mi"}, "default": {"cpu": "2"},
                           "defaultRequest": {"cpu": "2", "memory": "64Mi"}}]}}),
    ("", "v1", "Endpoints", {"subsets": [{"ports": [{"port": 80}]}]}, {"subsets": [{"ports": [{"port": 80, "protocol": "TCP"}]}]}),
    ("discovery.k8s.io", "v1", "EndpointSlice", {"ports": [{"port": 80}]}, {"ports": [{"port": 80, "name": "", "protocol": "TCP"}]}),
    ("networking.k8s.io", "v1", "NetworkPolicy", {"spec": {"podSelector": {}}}, {"spec": {"podSelector": {}, "policyTypes": ["Ingress"]}}),
    ("networking.k8s.io", "v1", "NetworkPolicy", {"spec": {"podSelector": {}, "egress": [{"ports": [{"port": 53}]}]}},
     {"spec": {"podSelector": {}, "egress": [{"ports": [{"port": 53, "protocol": "TCP"}]}], "policyTypes": ["Ingress", "Egress"]}}),
    ("rbac.authorization.k8s.io", "v1", "RoleBinding",
     {"roleRef": {"kind": "Role", "name": "r"}, "subjects": [{"kind": "User", "name": "u"}, {"kind": "ServiceAccount", "name": "s"}]},
     {"roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": "r"},
      "subjects": [{"apiGroup": "rbac.authorization.k8s.io", "kind": "User", "name": "u"}, {"kind": "ServiceAccount", "name": "s"}]}),
    ("scheduling.k8s.io", "v1", "PriorityClass", {"value": 10}, {"value": 10, "preemptionPolicy": "PreemptLowerPriority"}),
    ("storage.k8s.io", "v1", "StorageClass", {"provisioner": "p"},
     {"provisioner": "p", "reclaimPolicy": "Delete", "volumeBindingMode": "Immediate"}),
    ("storage.k8s.io", "v1", "CSIDriver", {"spec": {}},
     {"spec": {"attachRequired": True, "podInfoOnMount": False, "storageCapacity": False, "fsGroupPolicy": "ReadWriteOnceWithFSType",
               "volumeLifecycleModes": ["Persistent"], "requiresRepublish": False, "seLinuxMount": False}}),
    ("autoscaling", "v2", "HorizontalPodAutoscaler", {"spec": {"maxReplicas": 5}},
     {"spec": {"maxReplicas": 5, "minReplicas": 1, "metrics": [{"type": "Resource", "resource": {
         "name": "cpu", "target": {"type": "Utilization", "averageUtilization": 80}}}]}}),
    ("autoscaling", "v1", "HorizontalPodAutoscaler", {"spec": {"maxReplicas": 5}},
     {"spec": {"maxReplicas": 5, "minReplicas": 1, "targetCPUUtilizationPercentage": 80}}),
    ("coordination.k8s.io", "v1", "Lease", {"spec": {}}, {"spec": {}}),
])
def test_other_kinds(group: str, version: str, kind: str, obj: dict[str, Any], expected: dict[str, Any]) -> None:
    assert defaulted(group, version, kind, obj) == expected


def test_hpa_behavior_fills_missing_rules() -> None:
    obj = defaulted("autoscaling", "v2", "HorizontalPodAutoscaler",
                    {"spec": {"behavior": {"scaleDown": {"stabilizationWindowSeconds": 60}}}})
    behavior = obj["spec"]["behavior"]
    assert behavior["scaleDown"] == {"stabilizationWindowSeconds": 60, "selectPolicy": "Max",
                                     "policies": [{"type": "Percent", "value": 100, "periodSeconds": 15}]}
    assert behavior["scaleUp"]["policies"] == [{"type": "Pods", "value": 4, "periodSeconds": 15},
                                               {"type": "Percent", "value": 100, "periodSeconds": 15}]


def test_bad_quantity_is_a_decoding_error() -> None:
    pod = {"spec": {"containers": [{"name": "c", "image": "i", "resources": {"requests": {"cpu": "one"}}}]}}
    with pytest.raises(errors.BadRequest) as err:
        default_object("", "v1", "Pod", pod)
    assert err.value.message == ('Pod in version "v1" cannot be handled as a Pod: quantities must match the regular '
                                 "expression '^([+-]?[0-9.]+)([eEinumkKMGTP]*[-+]?[0-9]*)$'")
