"""ValidatingAdmissionPolicy in the audit log, as kube-apiserver 1.33 records it: a binding with
the `Audit` action adds the `validation.policy.admission.k8s.io/validation_failure` annotation
(a JSON list of {message, policy, binding, expressionIndex, validationActions}) to the request's
audit event, and a policy's `auditAnnotations` become `<policy name>/<key>` annotations, whatever
the validations decide; at audit level Metadata and above, on admitted and denied requests."""

from __future__ import annotations

from collections.abc import Iterator
import orjson
import pytest
import yaml

from tests.conftest import ServerProcess, requires_kubectl, start_server

pytestmark = requires_kubectl

GROUP = "admissionregistration.k8s.io"
AUDIT_POLICY = {"apiVersion": "audit.k8s.io/v1", "kind": "Policy", "omitStages": ["RequestReceived"],
                "rules": [{"level": "Metadata", "resources": [{"group": "", "resources": ["configmaps"]}]}]}
FAILURE = "validation.policy.admission.k8s.io/validation_failure"


@pytest.fixture(scope="module")
def audited(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    tmp = tmp_path_factory.mktemp("policy-audit")
    (tmp / "policy.yaml").write_text(yaml.safe_dump(AUDIT_POLICY))
    server = start_server(tmp, "--components=", "--disable-admission-plugins=ServiceAccount",
                          f"--audit-policy-file={tmp / 'policy.yaml'}", f"--audit-log-path={tmp / 'audit.log'}")
    yield server
    server.stop()


def last_create(server: ServerProcess) -> dict:
    """The ResponseComplete event of the latest configmap create (pykube, like kube at this
    level, logs no request body, so requests are told apart by their order)."""
    text = (server.data_dir.parent / "audit.log").read_text()
    found = [orjson.loads(line) for line in text.splitlines() if line]
    return [e for e in found if e.get("verb") == "create" and e.get("stage") == "ResponseComplete"
            and e.get("objectRef", {}).get("resource") == "configmaps"][-1]


def policy(name: str, namespace: str) -> dict:
    return {"apiVersion": f"{GROUP}/v1", "kind": "ValidatingAdmissionPolicy", "metadata": {"name": name},
            "spec": {"matchConstraints": {
                "namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": namespace}},
                "resourceRules": [{"apiGroups": [""], "apiVersions": ["v1"], "operations": ["CREATE"],
                                   "resources": ["configmaps"]}]},
                "validations": [{"expression": "object.metadata.name.startsWith('ok')"},
                                {"expression": "size(object.data) <= 1", "message": "too many keys"}],
                "auditAnnotations": [{"key": "keys", "valueExpression": "string(size(object.data))"},
                                     {"key": "never", "valueExpression": "null"}]}}


def binding(name: str, policy_name: str, actions: list[str]) -> dict:
    return {"apiVersion": f"{GROUP}/v1", "kind": "ValidatingAdmissionPolicyBinding", "metadata": {"name": name},
            "spec": {"policyName": policy_name, "validationActions": actions}}


def test_audit_action_and_audit_annotations(audited: ServerProcess) -> None:
    ns = "audited-policy"
    audited.kubectl("create", "namespace", ns)
    for obj in (policy("cm-policy.example.com", ns), binding("cm-audit.example.com", "cm-policy.example.com",
                                                              ["Warn", "Audit"])):
        audited.kubectl("apply", "-f", "-", input=orjson.dumps(obj).decode())
    audited.kubectl("get", "validatingadmissionpolicybindings")

    created = audited.kubectl("create", "configmap", "okay", "-n", ns, "--from-literal=a=1", "--from-literal=b=2")
    assert "Warning: Validation failed for ValidatingAdmissionPolicy 'cm-policy.example.com' with binding " \
           "'cm-audit.example.com': too many keys" in created.stderr
    event = last_create(audited)
    assert event["responseStatus"]["code"] == 201
    assert event["level"] == "Metadata"
    annotations = event["annotations"]
    assert annotations["cm-policy.example.com/keys"] == "2"
    assert "cm-policy.example.com/never" not in annotations  # a null value is no annotation
    assert orjson.loads(annotations[FAILURE]) == [
        {"message": "too many keys", "policy": "cm-policy.example.com", "binding": "cm-audit.example.com",
         "expressionIndex": 1, "validationActions": ["Warn", "Audit"]}]

    audited.kubectl("create", "configmap", "ok-small", "-n", ns, "--from-literal=a=1")
    event = last_create(audited)
    assert event["annotations"] == {"cm-policy.example.com/keys": "1"}  # no failure, the auditAnnotation still

    # Deny and Audit: the request fails, and its event still carries the annotations
    audited.kubectl("apply", "-f", "-", input=orjson.dumps(
        binding("cm-deny.example.com", "cm-policy.example.com", ["Deny", "Audit"])).decode())
    audited.kubectl("get", "validatingadmissionpolicybindings")
    refused = audited.kubectl("create", "configmap", "bad", "-n", ns, "--from-literal=a=1", check=False)
    assert refused.returncode == 1
    assert "denied request: failed expression: object.metadata.name.startsWith('ok')" in refused.stderr
    event = last_create(audited)
    assert event["responseStatus"]["code"] == 422
    failures = orjson.loads(event["annotations"][FAILURE])
    assert {(f["binding"], f["expressionIndex"], tuple(f["validationActions"])) for f in failures} == {
        ("cm-audit.example.com", 0, ("Warn", "Audit")), ("cm-deny.example.com", 0, ("Deny", "Audit"))}
    assert event["annotations"]["cm-policy.example.com/keys"] == "1"  # same value from both bindings: once

