"""kubectl against bad manifests: the exact `The <Kind> "<name>" is invalid: ...` text a real
1.33 cluster prints, exit code 1, and the defaults a real cluster fills in on create."""

from __future__ import annotations

import json

from tests.conftest import ServerProcess, requires_kubectl

pytestmark = requires_kubectl

MISMATCHED_DEPLOYMENT = """
apiVersion: apps/v1
kind: Deployment
metadata: {name: d}
spec:
  selector: {matchLabels: {app: api}}
  template:
    metadata: {labels: {app: web}}
    spec:
      containers: [{name: web, image: "nginx:1.25"}]
"""

BAD_POD = """
apiVersion: v1
kind: Pod
metadata: {name: p}
spec:
  containers:
  - {name: c, image: "nginx:1.25", ports: [{containerPort: 70000}], resources: {requests: {cpu: "2"}, limits: {cpu: "1"}}}
"""

BAD_QUANTITY_POD = """
apiVersion: v1
kind: Pod
metadata: {name: q}
spec:
  containers:
  - {name: c, image: "nginx:1.25", resources: {requests: {memory: "1 GB"}}}
"""


def test_selector_mismatch(cluster: ServerProcess, namespace: str) -> None:
    result = cluster.kubectl("create", "-n", namespace, "-f", "-", input=MISMATCHED_DEPLOYMENT, check=False)
    assert result.returncode == 1
    assert result.stderr.strip() == (
        'The Deployment "d" is invalid: spec.template.metadata.labels: Invalid value: '
        'map[string]string{"app":"web"}: `selector` does not match template `labels`')


def test_several_pod_errors(cluster: ServerProcess, namespace: str) -> None:
    result = cluster.kubectl("create", "-n", namespace, "-f", "-", input=BAD_POD, check=False)
    assert result.returncode == 1
    assert result.stderr.strip() == (
        'The Pod "p" is invalid: \n'
        "* spec.containers[0].ports[0].containerPort: Invalid value: 70000: must be between 1 and 65535, inclusive\n"
        '* spec.containers[0].resources.requests: Invalid value: "2": must be less than or equal to cpu limit of 1')


def test_bad_quantity_is_a_bad_request(cluster: ServerProcess, namespace: str) -> None:
    result = cluster.kubectl("create", "-n", namespace, "-f", "-", input=BAD_QUANTITY_POD, check=False)
    assert result.returncode == 1
    assert ('Pod in version "v1" cannot be handled as a Pod: quantities must match the regular expression '
            "'^([+-]?[0-9.]+)([eEinumkKMGTP]*[-+]?[0-9]*)$'") in result.stderr


def test_created_objects_carry_the_defaults(cluster: ServerProcess, namespace: str) -> None:
    cluster.kubectl("create", "-n", namespace, "deployment", "web", "--image=nginx:1.25")
    deploy = json.loads(cluster.kubectl("get", "-n", namespace, "deployment", "web", "-o", "json").stdout)
    assert deploy["spec"]["strategy"] == {"type": "RollingUpdate", "rollingUpdate": {"maxSurge": "25%", "maxUnavailable": "25%"}}
    assert (deploy["spec"]["revisionHistoryLimit"], deploy["spec"]["progressDeadlineSeconds"]) == (10, 600)
    cluster.kubectl("create", "-n", namespace, "job", "pi", "--image=perl:5.34")
    job = json.loads(cluster.kubectl("get", "-n", namespace, "job", "pi", "-o", "json").stdout)
    uid = job["metadata"]["uid"]
    assert job["spec"]["selector"] == {"matchLabels": {"batch.kubernetes.io/controller-uid": uid}}
    assert job["metadata"]["labels"]["controller-uid"] == uid and job["spec"]["backoffLimit"] == 6


def test_selector_is_immutable(cluster: ServerProcess, namespace: str) -> None:
    cluster.kubectl("create", "-n", namespace, "deployment", "imm", "--image=nginx:1.25")
    patch = '{"spec":{"selector":{"matchLabels":{"app":"other"}},"template":{"metadata":{"labels":{"app":"other"}}}}}'
    result = cluster.kubectl("patch", "-n", namespace, "deployment", "imm", "-p", patch, check=False)
    assert result.returncode == 1
    assert ('The Deployment "imm" is invalid: spec.selector: Invalid value: v1.LabelSelector{MatchLabels:'
            'map[string]string{"app":"other"}, MatchExpressions:[]v1.LabelSelectorRequirement(nil)}: field is immutable'
            ) in result.stderr
