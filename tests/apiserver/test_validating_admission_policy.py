"""ValidatingAdmissionPolicy end to end: kubectl applies a policy and a binding, and the API
server refuses, warns or admits as kube-apiserver 1.33 does (texts, status codes, exit codes).

Every policy here selects only its test's namespace (namespaceSelector on
`kubernetes.io/metadata.name`), so tests sharing the session's API server never see each other's
policies; that is also the namespaceSelector test.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable, Iterator
from typing import Any

import orjson
import pytest
from kubernetes import client
from kubernetes.client.exceptions import ApiException

from tests.conftest import ServerProcess

GROUP = "admissionregistration.k8s.io"


def _policy(name: str, namespace: str, validations: list[dict], **spec: Any) -> dict:
    return {"apiVersion": f"{GROUP}/v1", "kind": "ValidatingAdmissionPolicy", "metadata": {"name": name},
            "spec": {"matchConstraints": {
                "namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": namespace}},
                "resourceRules": [{"apiGroups": ["apps"], "apiVersions": ["v1"], "operations": ["CREATE", "UPDATE"],
                                   "resources": ["deployments"]}]},
                "validations": validations, **spec}}


def _binding(name: str, policy: str, actions: list[str], **spec: Any) -> dict:
    return {"apiVersion": f"{GROUP}/v1", "kind": "ValidatingAdmissionPolicyBinding", "metadata": {"name": name},
            "spec": {"policyName": policy, "validationActions": actions, **spec}}


@pytest.fixture
def apply(api_cluster: ServerProcess) -> Iterator[Callable[..., None]]:
    """kubectl apply objects; deleted again after the test. Waits until the server acts on them
    (a consistent GET of the bindings means the watch cache, which admission reads, has them)."""
    made: list[tuple[str, str]] = []

    def run(*objects: dict) -> None:
        for obj in objects:
            api_cluster.kubectl("apply", "-f", "-", input=orjson.dumps(obj).decode())
            made.append((obj["kind"].lower(), obj["metadata"]["name"]))
        api_cluster.kubectl("get", "validatingadmissionpolicybindings")

    yield run
    for kind, name in reversed(made):
        api_cluster.kubectl("delete", kind, name, "--ignore-not-found", check=False)


def _names(prefix: str) -> tuple[str, str]:
    suffix = uuid.uuid4().hex[:6]
    return f"{prefix}-{suffix}.example.com", f"{prefix}-binding-{suffix}.example.com"


def test_deny_replicas_with_kubectl(api_cluster: ServerProcess, api_namespace: str, apply: Any) -> None:
    policy, binding = _names("demo-policy")
    apply(_policy(policy, api_namespace, [{"expression": "object.spec.replicas <= 5"}]),
          _binding(binding, policy, ["Deny"]))
    result = api_cluster.kubectl("create", "deployment", "x", "--image=nginx", "--replicas=7", "-n", api_namespace,
                                 check=False)
    assert result.returncode == 1
    assert result.stderr.strip() == (
        f'error: failed to create deployment: deployments.apps "x" is forbidden: ValidatingAdmissionPolicy '
        f"'{policy}' with binding '{binding}' denied request: failed expression: object.spec.replicas <= 5")
    api_cluster.kubectl("create", "deployment", "y", "--image=nginx", "--replicas=3", "-n", api_namespace)


def test_deny_status_body(api_cluster: ServerProcess, api_namespace: str, apply: Any) -> None:
    """422 Invalid by default, the message as the one cause; a validation's reason and message."""
    policy, binding = _names("status-policy")
    apply(_policy(policy, api_namespace, [
        {"expression": "object.spec.replicas <= 5"},
        {"expression": "object.metadata.name != 'secret'", "reason": "Forbidden", "message": "name is taken  "}]),
        _binding(binding, policy, ["Deny"]))
    apps = client.AppsV1Api(api_cluster.api_client())

    def deployment(name: str, replicas: int) -> dict:
        labels = {"app": name}
        return {"metadata": {"name": name}, "spec": {"replicas": replicas, "selector": {"matchLabels": labels},
                "template": {"metadata": {"labels": labels}, "spec": {"containers": [{"name": "c", "image": "i"}]}}}}

    with pytest.raises(ApiException) as caught:
        apps.create_namespaced_deployment(api_namespace, deployment("big", 9))
    body = orjson.loads(caught.value.body)
    message = (f"ValidatingAdmissionPolicy '{policy}' with binding '{binding}' denied request: "
               "failed expression: object.spec.replicas <= 5")
    assert caught.value.status == 422
    assert body["reason"] == "Invalid"
    assert body["message"] == f'deployments.apps "big" is forbidden: {message}'
    assert body["details"] == {"name": "big", "group": "apps", "kind": "deployments", "causes": [{"message": message}]}
    with pytest.raises(ApiException) as caught:
        apps.create_namespaced_deployment(api_namespace, deployment("secret", 1))
    body = orjson.loads(caught.value.body)
    assert (caught.value.status, body["reason"]) == (403, "Forbidden")
    assert body["message"].endswith("denied request: name is taken")


def test_warn_prints_warning(api_cluster: ServerProcess, api_namespace: str, apply: Any) -> None:
    policy, binding = _names("warn-policy")
    apply(_policy(policy, api_namespace, [{"expression": "object.spec.replicas <= 5",
                                           "messageExpression": "'replicas ' + string(object.spec.replicas) + ' > 5'"}]),
          _binding(binding, policy, ["Warn"]))
    result = api_cluster.kubectl("create", "deployment", "w", "--image=nginx", "--replicas=7", "-n", api_namespace)
    assert (f"Warning: Validation failed for ValidatingAdmissionPolicy '{policy}' with binding '{binding}': "
            "replicas 7 > 5") in result.stderr
    assert "deployment.apps/w created" in result.stdout


def test_param_from_configmap(api_cluster: ServerProcess, api_namespace: str, apply: Any) -> None:
    policy, binding = _names("param-policy")
    apply(_policy(policy, api_namespace, [{"expression": "object.spec.replicas <= int(params.data.maxReplicas)",
                                           "messageExpression": "'at most ' + params.data.maxReplicas + ' replicas'"}],
                  paramKind={"apiVersion": "v1", "kind": "ConfigMap"}),
          _binding(binding, policy, ["Deny"], paramRef={"name": "limits", "parameterNotFoundAction": "Deny"}))
    # no param yet: the binding is a configuration error, and failurePolicy Fail refuses
    result = api_cluster.kubectl("create", "deployment", "p", "--image=nginx", "--replicas=1", "-n", api_namespace,
                                 check=False)
    assert result.returncode == 1
    assert (f"ValidatingAdmissionPolicy '{policy}' with binding '{binding}' denied request: failed to configure "
            "binding: no params found for policy binding with `Deny` parameterNotFoundAction") in result.stderr
    api_cluster.kubectl("create", "configmap", "limits", "--from-literal=maxReplicas=3", "-n", api_namespace)
    result = api_cluster.kubectl("create", "deployment", "p", "--image=nginx", "--replicas=4", "-n", api_namespace,
                                 check=False)
    assert result.returncode == 1
    assert "denied request: at most 3 replicas" in result.stderr
    api_cluster.kubectl("create", "deployment", "p", "--image=nginx", "--replicas=3", "-n", api_namespace)


def test_params_by_selector(api_cluster: ServerProcess, api_namespace: str, apply: Any) -> None:
    """A selector binds every matching param: the policy runs once per param, any may deny."""
    policy, binding = _names("selector-policy")
    apply(_policy(policy, api_namespace, [{"expression": "object.spec.replicas <= int(params.data.max)",
                                           "messageExpression": "params.metadata.name + ' allows ' + params.data.max"}],
                  paramKind={"apiVersion": "v1", "kind": "ConfigMap"}),
          _binding(binding, policy, ["Deny"], paramRef={"selector": {"matchLabels": {"limit": "replicas"}},
                                                         "parameterNotFoundAction": "Allow"}))
    api_cluster.kubectl("create", "deployment", "free", "--image=nginx", "--replicas=9", "-n", api_namespace)
    for name, value in (("loose", "8"), ("strict", "2")):
        api_cluster.kubectl("create", "configmap", name, f"--from-literal=max={value}", "-n", api_namespace)
        api_cluster.kubectl("label", "configmap", name, "limit=replicas", "-n", api_namespace)
    result = api_cluster.kubectl("create", "deployment", "d", "--image=nginx", "--replicas=5", "-n", api_namespace,
                                 check=False)
    assert result.returncode == 1 and "denied request: strict allows 2" in result.stderr
    api_cluster.kubectl("create", "deployment", "d", "--image=nginx", "--replicas=2", "-n", api_namespace)


def test_other_namespaces_are_not_selected(api_cluster: ServerProcess, api_namespace: str, apply: Any) -> None:
    policy, binding = _names("ns-policy")
    apply(_policy(policy, api_namespace, [{"expression": "false", "message": "no deployments here"}]),
          _binding(binding, policy, ["Deny"]))
    other = f"t-{uuid.uuid4().hex[:8]}"
    api_cluster.kubectl("create", "namespace", other)
    api_cluster.kubectl("create", "deployment", "free", "--image=nginx", "-n", other)
    result = api_cluster.kubectl("create", "deployment", "blocked", "--image=nginx", "-n", api_namespace, check=False)
    assert "denied request: no deployments here" in result.stderr
    api_cluster.kubectl("delete", "namespace", other, "--wait=false")


def test_binding_match_resources_and_exclusions(api_cluster: ServerProcess, api_namespace: str, apply: Any) -> None:
    """A binding narrows the policy with its own matchResources; excludeResourceRules win."""
    policy, binding = _names("narrow-policy")
    spec = _policy(policy, api_namespace, [{"expression": "false", "message": "refused"}])
    spec["spec"]["matchConstraints"]["excludeResourceRules"] = [
        {"apiGroups": ["apps"], "apiVersions": ["v1"], "operations": ["CREATE"], "resources": ["deployments"],
         "resourceNames": ["excluded"]}]
    apply(spec, _binding(binding, policy, ["Deny"], matchResources={"objectSelector": {"matchLabels": {"app": "x"}}}))
    api_cluster.kubectl("create", "deployment", "unlabelled", "--image=nginx", "-n", api_namespace)
    api_cluster.kubectl("create", "deployment", "excluded", "--image=nginx", "-n", api_namespace)  # app=excluded
    result = api_cluster.kubectl("create", "deployment", "x", "--image=nginx", "-n", api_namespace, check=False)
    assert result.returncode == 1 and "denied request: refused" in result.stderr


def test_failure_policy_on_errors(api_cluster: ServerProcess, api_namespace: str, apply: Any) -> None:
    policy, binding = _names("error-policy")
    apply(_policy(policy, api_namespace, [{"expression": "object.spec.missing == 1"}]),
          _binding(binding, policy, ["Deny"]))
    result = api_cluster.kubectl("create", "deployment", "e", "--image=nginx", "-n", api_namespace, check=False)
    assert ("denied request: expression 'object.spec.missing == 1' resulted in error: no such key: missing"
            in result.stderr)
    apply(_policy(policy, api_namespace, [{"expression": "object.spec.missing == 1"}], failurePolicy="Ignore"))
    deadline = time.monotonic() + 10
    while api_cluster.kubectl("create", "deployment", "e", "--image=nginx", "-n", api_namespace,
                              check=False).returncode != 0:
        assert time.monotonic() < deadline, "failurePolicy Ignore did not take effect"
        time.sleep(0.1)


def test_policy_objects_are_validated(api_cluster: ServerProcess) -> None:
    result = api_cluster.kubectl("apply", "-f", "-", check=False, input=orjson.dumps(
        {"apiVersion": f"{GROUP}/v1", "kind": "ValidatingAdmissionPolicyBinding", "metadata": {"name": "nameless"},
         "spec": {"validationActions": ["Deny", "Warn"]}}).decode())
    assert result.returncode == 1
    assert ('The ValidatingAdmissionPolicyBinding "nameless" is invalid: \n'
            "* spec.policyName: Required value\n"
            '* spec.validationActions: Invalid value: []admissionregistration.ValidationAction{"Deny", "Warn"}: '
            "must not contain both Deny and Warn (repeating the same validation failure information in the API "
            "response and headers serves no purpose)") in result.stderr
    bad = _policy("bad-cel.example.com", "nowhere", [{"expression": "object.spec.replicas <= undefined"}])
    result = api_cluster.kubectl("apply", "-f", "-", check=False, input=orjson.dumps(bad).decode())
    assert result.returncode == 1
    assert ('The ValidatingAdmissionPolicy "bad-cel.example.com" is invalid: spec.validations[0].expression: '
            'Invalid value: "object.spec.replicas <= undefined": compilation failed: ERROR: <input>:1:25: '
            "undeclared reference to 'undefined' (in container '')\n"
            " | object.spec.replicas <= undefined\n"
            " | ........................^") in result.stderr


def test_defaults_and_printer_columns(api_cluster: ServerProcess, apply: Any) -> None:
    policy, binding = _names("printed")
    apply(_policy(policy, "nowhere", [{"expression": "true"}, {"expression": "true"}],
                  paramKind={"apiVersion": "v1", "kind": "ConfigMap"}),
          _binding(binding, policy, ["Audit"], paramRef={"name": "p", "namespace": "ns",
                                                         "parameterNotFoundAction": "Allow"}))
    stored = orjson.loads(api_cluster.kubectl("get", "validatingadmissionpolicy", policy, "-o", "json").stdout)
    assert stored["spec"]["failurePolicy"] == "Fail"
    assert stored["spec"]["matchConstraints"]["matchPolicy"] == "Equivalent"
    assert stored["spec"]["matchConstraints"]["objectSelector"] == {}
    assert stored["spec"]["matchConstraints"]["resourceRules"][0]["scope"] == "*"
    assert stored["metadata"]["generation"] == 1 and stored["status"] == {}
    out = api_cluster.kubectl("get", "validatingadmissionpolicies", policy).stdout.splitlines()
    assert out[0].split() == ["NAME", "VALIDATIONS", "PARAMKIND", "AGE"]
    assert out[1].split()[:3] == [policy, "2", "v1/ConfigMap"]
    out = api_cluster.kubectl("get", "validatingadmissionpolicybindings", binding).stdout.splitlines()
    assert out[0].split() == ["NAME", "POLICYNAME", "PARAMREF", "AGE"]
    assert out[1].split()[:3] == [binding, policy, "ns/p"]
    # a spec change bumps metadata.generation (kube's strategy), a label does not
    api_cluster.kubectl("label", "validatingadmissionpolicy", policy, "touched=yes")
    apply(_policy(policy, "nowhere", [{"expression": "true"}], paramKind={"apiVersion": "v1", "kind": "ConfigMap"}))
    stored = orjson.loads(api_cluster.kubectl("get", "validatingadmissionpolicy", policy, "-o", "json").stdout)
    assert stored["metadata"]["generation"] == 2


def test_deny_on_apply_and_delete(api_cluster: ServerProcess, api_namespace: str, apply: Any) -> None:
    """kubectl apply prints a 422 as `The <resource> "<name>" is invalid: : <cause>`; DELETE is
    judged on oldObject (object is null)."""
    policy, binding = _names("apply-policy")
    spec = _policy(policy, api_namespace, [
        {"expression": "object == null || object.spec.replicas <= 5"},
        {"expression": "request.operation != 'DELETE' || oldObject.metadata.name != 'keep'", "message": "keep me"}])
    spec["spec"]["matchConstraints"]["resourceRules"][0]["operations"] = ["*"]
    apply(spec, _binding(binding, policy, ["Deny"]))
    deployment = {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "keep", "namespace": api_namespace},
                  "spec": {"replicas": 6, "selector": {"matchLabels": {"app": "keep"}},
                           "template": {"metadata": {"labels": {"app": "keep"}},
                                        "spec": {"containers": [{"name": "c", "image": "nginx"}]}}}}
    result = api_cluster.kubectl("apply", "-f", "-", input=orjson.dumps(deployment).decode(), check=False)
    assert result.returncode == 1
    assert (f'The deployments "keep" is invalid: : ValidatingAdmissionPolicy \'{policy}\' with binding '
            f"'{binding}' denied request: failed expression: object == null || object.spec.replicas <= 5"
            in result.stderr)
    deployment["spec"]["replicas"] = 1
    api_cluster.kubectl("apply", "-f", "-", input=orjson.dumps(deployment).decode())
    result = api_cluster.kubectl("delete", "deployment", "keep", "-n", api_namespace, check=False)
    assert result.returncode == 1 and "denied request: keep me" in result.stderr


def test_unknown_param_kind_is_the_policy_s_error(api_cluster: ServerProcess, api_namespace: str, apply: Any) -> None:
    policy, binding = _names("nokind-policy")
    apply(_policy(policy, api_namespace, [{"expression": "true"}],
                  paramKind={"apiVersion": "example.com/v1", "kind": "Nothing"}),
          _binding(binding, policy, ["Deny"], paramRef={"name": "x", "parameterNotFoundAction": "Allow"}))
    result = api_cluster.kubectl("create", "deployment", "n", "--image=nginx", "-n", api_namespace, check=False)
    assert result.returncode == 1
    assert (f"ValidatingAdmissionPolicy '{policy}' denied request: failed to configure policy: failed to find "
            "resource referenced by paramKind: 'example.com/v1, Kind=Nothing'") in result.stderr
