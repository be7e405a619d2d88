"""Kind validation: the messages kube-apiserver 1.33 gives for the mistakes people make.

Each case is a defaulted manifest and the exact `field: message` lines kubectl would print
after `The <Kind> "<name>" is invalid: `.
"""

from __future__ import annotations

import copy
from typing import Any

import pytest

from pykube_server.registry.defaults import default_object
from pykube_server.registry.kind_validation import validate_object, validate_object_update
from pykube_server.registry.kind_validation.pods import POD_UPDATE_ERR

LABEL_ERR = ("a lowercase RFC 1123 label must consist of lower case alphanumeric characters or '-', and must start and "
             "end with an alphanumeric character (e.g. 'my-name',  or '123-abc', regex used for validation is "
             "'[a-z0-9]([-a-z0-9]*[a-z0-9])?')")
KEY_ERR = ("a valid config key must consist of alphanumeric characters, '-', '_' or '.' (e.g. 'key.name',  or "
           "'KEY_NAME',  or 'key-name', regex used for validation is '[-._a-zA-Z0-9]+')")
MISMATCH = "`selector` does not match template `labels`"


def messages(group: str, kind: str, obj: dict[str, Any], old: dict[str, Any] | None = None) -> list[str]:
    obj = copy.deepcopy(obj)
    default_object(group, "v1", kind, obj)
    if old is None:
        return [str(e) for e in validate_object(group, "v1", kind, obj)]
    old = copy.deepcopy(old)
    default_object(group, "v1", kind, old)
    return [str(e) for e in validate_object_update(group, "v1", kind, obj, old)]


def pod(*containers: dict[str, Any], **spec: Any) -> dict[str, Any]:
    return {"metadata": {"name": "p"}, "spec": {"containers": list(containers), **spec}}


def c(name: str = "c", **fields: Any) -> dict[str, Any]:
    return {"name": name, "image": "nginx:1.25", **fields}


def deployment(selector: Any, labels: dict[str, str], **spec: Any) -> dict[str, Any]:
    body: dict[str, Any] = {"template": {"metadata": {"labels": labels}, "spec": {"containers": [c()]}}, **spec}
    if selector is not None:
        body["selector"] = selector
    return {"metadata": {"name": "d"}, "spec": body}


@pytest.mark.parametrize(("obj", "expected"), [
    (pod(c("web")), []),
    (pod(), ["spec.containers: Required value"]),
    (pod(c("a"), c("a")), ['spec.containers[1].name: Duplicate value: "a"']),
    (pod(c("My_C")), [f'spec.containers[0].name: Invalid value: "My_C": {LABEL_ERR}']),
    (pod({"name": "c"}), ["spec.containers[0].image: Required value"]),
    (pod(c(ports=[{"containerPort": 70000}])),
     ["spec.containers[0].ports[0].containerPort: Invalid value: 70000: must be between 1 and 65535, inclusive"]),
    (pod(c(ports=[{"containerPort": 80, "protocol": "HTTP"}])),
     ['spec.containers[0].ports[0].protocol: Unsupported value: "HTTP": supported values: "SCTP", "TCP", "UDP"']),
    (pod(c(ports=[{"containerPort": 80, "name": "http"}, {"containerPort": 81, "name": "http"}])),
     ['spec.containers[0].ports[1].name: Duplicate value: "http"']),
    (pod(c(ports=[{"containerPort": 80, "name": "HTTP"}])),
     ['spec.containers[0].ports[0].name: Invalid value: "HTTP": must contain only alpha-numeric characters (a-z, 0-9), and hyphens (-)',
      'spec.containers[0].ports[0].name: Invalid value: "HTTP": must contain at least one letter (a-z)']),
    (pod(c(), restartPolicy="Sometimes"),
     ['spec.restartPolicy: Unsupported value: "Sometimes": supported values: "Always", "OnFailure", "Never"']),
    (pod(c(), volumes=[{"name": "v"}, {"name": "v"}]), ['spec.volumes[1].name: Duplicate value: "v"']),
    (pod(c(volumeMounts=[{"name": "data", "mountPath": "/d"}])), ['spec.containers[0].volumeMounts[0].name: Not found: "data"']),
    (pod(c(resources={"requests": {"cpu": "2"}, "limits": {"cpu": "1"}})),
     ['spec.containers[0].resources.requests: Invalid value: "2": must be less than or equal to cpu limit of 1']),
    (pod(c(resources={"requests": {"memory": "2Gi"}, "limits": {"memory": "1024Mi"}})),
     ['spec.containers[0].resources.requests: Invalid value: "2Gi": must be less than or equal to memory limit of 1Gi']),
    (pod(c(resources={"requests": {"cpu": "-1"}})),
     ['spec.containers[0].resources.requests[cpu]: Invalid value: "-1": must be greater than or equal to 0']),
    (pod(c(resources={"limits": {"cpus": "1"}})),
     ['spec.containers[0].resources.limits[cpus]: Invalid value: "cpus": must be a standard resource type or fully qualified',
      'spec.containers[0].resources.limits[cpus]: Invalid value: "cpus": must be a standard resource for containers',
      'spec.containers[0].resources.requests[cpus]: Invalid value: "cpus": must be a standard resource type or fully qualified',
      'spec.containers[0].resources.requests[cpus]: Invalid value: "cpus": must be a standard resource for containers']),
])
def test_pod(obj: dict[str, Any], expected: list[str]) -> None:
    assert messages("", "Pod", obj) == expected


@pytest.mark.parametrize(("kind", "obj", "expected"), [
    ("Deployment", deployment({"matchLabels": {"app": "web"}}, {"app": "web"}), []),
    ("Deployment", deployment({"matchLabels": {"app": "api"}}, {"app": "web", "tier": "fe"}),
     ['spec.template.metadata.labels: Invalid value: map[string]string{"app":"web", "tier":"fe"}: ' + MISMATCH]),
    ("Deployment", deployment(None, {"app": "web"}), ["spec.selector: Required value"]),
    ("Deployment", deployment({}, {"app": "web"}),
     ["spec.selector: Invalid value: v1.LabelSelector{MatchLabels:map[string]string(nil), "
      "MatchExpressions:[]v1.LabelSelectorRequirement(nil)}: empty selector is invalid for deployment"]),
    ("Deployment", deployment({"matchLabels": {"app": "web"}}, {"app": "web"}, replicas=-1),
     ["spec.replicas: Invalid value: -1: must be greater than or equal to 0"]),
    ("Deployment", deployment({"matchExpressions": [{"key": "app", "operator": "In", "values": ["web"]}]}, {"app": "web"}), []),
    ("ReplicaSet", deployment({"matchLabels": {"app": "x"}}, {"app": "web"}),
     ['spec.template.metadata.labels: Invalid value: map[string]string{"app":"web"}: ' + MISMATCH]),
    ("StatefulSet", deployment({"matchLabels": {"app": "x"}}, {"app": "web"}),
     ['spec.template.metadata.labels: Invalid value: map[string]string{"app":"web"}: ' + MISMATCH]),
    ("DaemonSet", deployment({"matchLabels": {"app": "x"}}, {"app": "web"}),
     ['spec.template.metadata.labels: Invalid value: map[string]string{"app":"web"}: ' + MISMATCH]),
])
def test_apps(kind: str, obj: dict[str, Any], expected: list[str]) -> None:
    assert messages("apps", kind, obj) == expected


def test_deployment_template_restart_policy() -> None:
    obj = deployment({"matchLabels": {"app": "web"}}, {"app": "web"})
    obj["spec"]["template"]["spec"]["restartPolicy"] = "Never"
    assert messages("apps", "Deployment", obj) == [
        'spec.template.spec.restartPolicy: Unsupported value: "Never": supported values: "Always"']


def test_job_restart_policy_always_is_rejected_and_manual_selector_needs_one() -> None:
    job = {"metadata": {"name": "j", "uid": "u1"}, "spec": {"template": {"spec": {"containers": [c()]}}}}
    assert messages("batch", "Job", job) == [
        'spec.template.spec.restartPolicy: Unsupported value: "Always": supported values: "OnFailure", "Never"']
    job["spec"]["manualSelector"] = True
    job["spec"]["template"]["spec"]["restartPolicy"] = "Never"
    assert messages("batch", "Job", job) == ["spec.selector: Required value"]


def test_pod_update_forbids_changes_outside_the_mutable_fields() -> None:
    old = pod(c(image="nginx:1.25"))
    assert messages("", "Pod", pod(c(image="nginx:1.26")), old) == []
    changed = pod(c(ports=[{"containerPort": 80}]))
    (message,) = messages("", "Pod", changed, old)
    assert message.startswith("spec: Forbidden: " + POD_UPDATE_ERR + "\n  core.PodSpec{")
    assert POD_UPDATE_ERR == (
        "pod updates may not change fields other than `spec.containers[*].image`,`spec.initContainers[*].image`,"
        "`spec.activeDeadlineSeconds`,`spec.tolerations` (only additions to existing tolerations),"
        "`spec.terminationGracePeriodSeconds` (allow it to be set to 1 if it was previously negative)")
    added = pod(c(), tolerations=[{"key": "k", "operator": "Exists"}])
    assert messages("", "Pod", added, pod(c())) == []


def test_immutable_fields_on_update() -> None:
    old = deployment({"matchLabels": {"app": "web"}}, {"app": "web"})
    new = deployment({"matchLabels": {"app": "api"}}, {"app": "api"})
    assert messages("apps", "Deployment", new, old) == [
        'spec.selector: Invalid value: v1.LabelSelector{MatchLabels:map[string]string{"app":"api"}, '
        "MatchExpressions:[]v1.LabelSelectorRequirement(nil)}: field is immutable"]
    svc_old = {"spec": {"clusterIP": "10.96.0.10", "ports": [{"port": 80}]}}
    svc_new = {"spec": {"clusterIP": "10.96.0.11", "ports": [{"port": 80}]}}
    assert messages("", "Service", svc_new, svc_old) == [
        'spec.clusterIPs[0]: Invalid value: []string{"10.96.0.11"}: may not change once set']
    sts_old = deployment({"matchLabels": {"app": "web"}}, {"app": "web"}, serviceName="a")
    sts_new = deployment({"matchLabels": {"app": "web"}}, {"app": "web"}, serviceName="b")
    assert messages("apps", "StatefulSet", sts_new, sts_old) == [
        "spec: Forbidden: updates to statefulset spec for fields other than 'replicas', 'ordinals', 'template', "
        "'updateStrategy', 'persistentVolumeClaimRetentionPolicy' and 'minReadySeconds' are forbidden"]


def test_job_template_is_immutable() -> None:
    old = {"metadata": {"name": "j", "uid": "u"}, "spec": {"template": {"spec": {"restartPolicy": "Never", "containers": [c()]}}}}
    new = copy.deepcopy(old)
    new["spec"]["template"]["spec"]["containers"][0]["image"] = "nginx:2"
    (message,) = messages("batch", "Job", new, old)
    assert message.startswith("spec.template: Invalid value: ") and message.endswith(": field is immutable")


@pytest.mark.parametrize(("kind", "obj", "old", "expected"), [
    ("ConfigMap", {"data": {"a": "1"}, "immutable": True}, {"data": {"a": "0"}, "immutable": True},
     ["data: Forbidden: field is immutable when `immutable` is set"]),
    ("ConfigMap", {"data": {"a": "0"}}, {"data": {"a": "0"}, "immutable": True},
     ["immutable: Forbidden: field is immutable when `immutable` is set"]),
    ("Secret", {"data": {"a": "MQ=="}, "immutable": True}, {"data": {"a": "MA=="}, "immutable": True},
     ["data: Forbidden: field is immutable when `immutable` is set"]),
    ("Secret", {"type": "Other"}, {"type": "Opaque"}, ['type: Invalid value: "Other": field is immutable']),
])
def test_config_data_updates(kind: str, obj: dict[str, Any], old: dict[str, Any], expected: list[str]) -> None:
    assert messages("", kind, obj, old) == expected


@pytest.mark.parametrize(("kind", "obj", "expected"), [
    ("ConfigMap", {"data": {"bad key": "x", "ok.key_1-A": "y"}}, [f'data[bad key]: Invalid value: "bad key": {KEY_ERR}']),
    ("ConfigMap", {"data": {"..": "x"}}, ["data[..]: Invalid value: \"..\": must not be '..'"]),
    ("ConfigMap", {"data": {"a": "x" * (1024 * 1024 + 1)}}, ["[]: Too long: may not be more than 1048576 bytes"]),
    ("Secret", {"data": {"a/b": "eA=="}}, [f'data[a/b]: Invalid value: "a/b": {KEY_ERR}']),
    ("Secret", {"stringData": {}, "data": {"big": "A" * (1398104)}}, ["data: Too long: may not be more than 1048576 bytes"]),
    ("Secret", {"type": "kubernetes.io/tls", "data": {"tls.crt": "eA=="}}, ["data[tls.key]: Required value"]),
])
def test_config_data(kind: str, obj: dict[str, Any], expected: list[str]) -> None:
    assert messages("", kind, obj) == expected


@pytest.mark.parametrize(("spec", "expected"), [
    ({"selector": {"app": "w"}, "ports": [{"port": 80}]}, []),
    ({"selector": {"app": "w"}}, ["spec.ports: Required value"]),
    ({"ports": [{"targetPort": 80}]}, ["spec.ports[0].port: Invalid value: 0: must be between 1 and 65535, inclusive"]),
    ({"ports": [{"port": 80, "protocol": "HTTP"}]},
     ['spec.ports[0].protocol: Unsupported value: "HTTP": supported values: "SCTP", "TCP", "UDP"']),
    ({"ports": [{"port": 80, "name": "a"}, {"port": 81, "name": "a"}]}, ['spec.ports[1].name: Duplicate value: "a"']),
    ({"ports": [{"port": 80, "name": "a"}, {"port": 81}]}, ["spec.ports[1].name: Required value"]),
    ({"type": "Magic", "ports": [{"port": 80}]},
     ['spec.type: Unsupported value: "Magic": supported values: "ClusterIP", "ExternalName", "LoadBalancer", "NodePort"']),
    ({"type": "ExternalName"}, ["spec.externalName: Required value"]),
    ({"ports": [{"port": 80, "name": "a"}, {"port": 80, "name": "b"}]},
     ['spec.ports[1]: Duplicate value: core.ServicePort{Name:"", Protocol:"TCP", AppProtocol:(*string)(nil), Port:80, '
      'TargetPort:intstr.IntOrString{Type:0, IntVal:0, StrVal:""}, NodePort:0}']),
])
def test_service(spec: dict[str, Any], expected: list[str]) -> None:
    assert messages("", "Service", {"metadata": {"name": "s"}, "spec": spec}) == expected


def test_validation_never_mutates() -> None:
    obj = deployment({"matchLabels": {"app": "api"}}, {"app": "web"})
    default_object("apps", "v1", "Deployment", obj)
    before = copy.deepcopy(obj)
    validate_object("apps", "v1", "Deployment", obj)
    validate_object_update("apps", "v1", "Deployment", obj, before)
    assert obj == before


def test_priority_class_value_and_policy_are_immutable() -> None:
    # kube's ValidatePriorityClassUpdate: value "may not be changed in an update." (Forbidden),
    # preemptionPolicy through ValidateImmutableField
    from pykube_server.registry.kind_validation import validate_changes

    old = {"metadata": {"name": "p"}, "value": 10, "preemptionPolicy": "PreemptLowerPriority"}
    assert validate_changes("scheduling.k8s.io", "v1", "PriorityClass", dict(old, description="x"), old) == []
    errs = validate_changes("scheduling.k8s.io", "v1", "PriorityClass", dict(old, value=11, preemptionPolicy="Never"), old)
    assert [(e.reason, e.field) for e in errs] == [("FieldValueForbidden", "value"), ("FieldValueInvalid", "preemptionPolicy")]
    assert errs[0].detail == "may not be changed in an update."


def test_pod_spec_validation_remembers_valid_specs_only() -> None:
    from pykube_server.registry.kind_validation import pods

    good = {"spec": {"containers": [{"name": "c", "image": "i"}]}}
    bad = {"spec": {"containers": [{"name": "c", "image": "i"}, {"name": "c", "image": "j"}]}}
    default_object("", "v1", "Pod", good)
    default_object("", "v1", "Pod", bad)
    pods._valid_specs.clear()
    for _ in range(2):  # the second round of the good spec is remembered, the bad one is not
        assert pods.validate_pod(good) == []
        assert [e.field for e in pods.validate_pod(bad)] == ["spec.containers[1].name"]
    assert len(pods._valid_specs) == 1


def test_pod_defaults_remembered_by_spec_equal_a_fresh_walk() -> None:
    from pykube_server.registry import defaults

    sent = {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p"},
            "spec": {"containers": [{"name": "c", "image": "busybox", "resources": {"limits": {"cpu": "0.5", "memory": "1Gi"}}}]}}
    defaults._defaulted_pod_specs.clear()
    first = copy.deepcopy(sent)
    default_object("", "v1", "Pod", first)
    second = copy.deepcopy(sent)
    second["metadata"]["name"] = "q"
    default_object("", "v1", "Pod", second)  # from the remembered spec
    assert len(defaults._defaulted_pod_specs) == 1
    assert second["spec"] == first["spec"] and second["spec"] is not first["spec"]
    assert second["spec"]["containers"][0]["resources"]["requests"] == {"cpu": "500m", "memory": "1Gi"}
    second["spec"]["containers"][0]["image"] = "changed"  # callers own what they got
    third = copy.deepcopy(sent)
    default_object("", "v1", "Pod", third)
    assert third["spec"]["containers"][0]["image"] == "busybox"
