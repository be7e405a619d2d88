"""Admission webhooks over the real wire, judged by what kube-apiserver 1.33 does.

Texts come from k8s.io/apiserver's webhook plugins: a denial is `admission webhook "<name>"
denied the request: <message>` with the webhook's code (default 400, no reason, so kubectl
prints `Error from server: error when creating "STDIN": ...`); a failed call is a 500
`Internal error occurred: failed calling webhook "<name>": failed to call webhook: Post
"<url>?timeout=<n>s": <Go error>` under failurePolicy Fail and nothing under Ignore; warnings
come back as `Warning:` lines on kubectl's stderr. Webhooks are aiohttp servers in this process
(tests/apiserver/webhook_support.py), registered by `url` with a caBundle from a throwaway CA.
Each configuration selects only its test's namespace, so tests do not see each other's hooks.
"""

from __future__ import annotations

import json
import socket
import uuid
from collections.abc import Iterator
from typing import Any

import pytest

from tests.apiserver.test_rest_support import Raw
from tests.apiserver.webhook_support import WebhookCA, WebhookServer
from tests.conftest import ServerProcess, start_server

ADMREG = "/apis/admissionregistration.k8s.io/v1"
VALIDATING = f"{ADMREG}/validatingwebhookconfigurations"
MUTATING = f"{ADMREG}/mutatingwebhookconfigurations"


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    """An API server of this module's own: webhooks here see every write, none leak elsewhere."""
    proc = start_server(tmp_path_factory.mktemp("webhooks"), "--components=",
                        "--disable-admission-plugins=ServiceAccount")
    yield proc
    proc.stop()


@pytest.fixture(scope="module")
def ca() -> WebhookCA:
    return WebhookCA()


@pytest.fixture(scope="module")
def hooks(ca: WebhookCA) -> Iterator[WebhookServer]:
    srv = WebhookServer(ca).start()
    yield srv
    srv.stop()


@pytest.fixture
def raw(server: ServerProcess) -> Raw:
    return Raw(server.kubeconfig)


@pytest.fixture
def ns(raw: Raw) -> Iterator[str]:
    name = f"wh-{uuid.uuid4().hex[:8]}"
    assert raw.post("/api/v1/namespaces", {"metadata": {"name": name, "labels": {"team": "a"}}}).status == 201
    yield name


@pytest.fixture
def register(raw: Raw) -> Iterator[Any]:
    """Creates webhook configurations and removes them after the test."""
    made: list[str] = []

    def make(collection: str, webhooks: list[dict[str, Any]], **meta: Any) -> dict[str, Any]:
        kind = "ValidatingWebhookConfiguration" if collection == VALIDATING else "MutatingWebhookConfiguration"
        name = f"cfg-{uuid.uuid4().hex[:8]}"
        resp = raw.post(collection, {"apiVersion": "admissionregistration.k8s.io/v1", "kind": kind,
                                     "metadata": {"name": name, **meta}, "webhooks": webhooks})
        assert resp.status == 201, resp
        made.append(f"{collection}/{name}")
        assert raw.get(collection).status == 200  # a consistent read: the watch cache has it now
        return resp.json()

    yield make
    for path in made:
        raw.delete(path)


def hook(name: str, url: str, ca: WebhookCA, ns: str, **extra: Any) -> dict[str, Any]:
    """A webhook for ConfigMaps in namespace `ns`."""
    out: dict[str, Any] = {
        "name": name,
        "clientConfig": {"url": url, "caBundle": ca.bundle},
        "rules": [{"operations": ["CREATE", "UPDATE"], "apiGroups": [""], "apiVersions": ["v1"],
                   "resources": ["configmaps"]}],
        "sideEffects": "None",
        "admissionReviewVersions": ["v1"],
        "namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": ns}},
    }
    out.update(extra)
    return out


def configmap(name: str, ns: str, labels: dict[str, str] | None = None) -> dict[str, Any]:
    meta: dict[str, Any] = {"name": name, "namespace": ns}
    if labels:
        meta["labels"] = labels
    return {"apiVersion": "v1", "kind": "ConfigMap", "metadata": meta, "data": {"k": "v"}}


def kubectl_create(server: ServerProcess, obj: dict[str, Any]) -> Any:
    return server.kubectl("create", "-f", "-", input=json.dumps(obj), check=False)


def closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def cms(ns: str) -> str:
    return f"/api/v1/namespaces/{ns}/configmaps"


# -- validating -------------------------------------------------------------------------------
def test_denial_reads_like_kube_in_kubectl_and_on_the_wire(server: ServerProcess, raw: Raw, register: Any,
                                                            hooks: WebhookServer, ca: WebhookCA, ns: str) -> None:
    register(VALIDATING, [hook("deny.example.com", hooks.url("/deny"), ca, ns)])
    result = kubectl_create(server, configmap("bad", ns, {"deny": "true"}))
    assert result.returncode == 1
    assert result.stderr == ('Error from server: error when creating "STDIN": admission webhook "deny.example.com" '
                             'denied the request: objects labelled deny=true are not welcome\n')
    resp = raw.post(cms(ns), configmap("bad", ns, {"deny": "true"}))
    assert resp.status == 400
    assert resp.json() == {"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure", "code": 400,
                           "message": 'admission webhook "deny.example.com" denied the request: '
                                      'objects labelled deny=true are not welcome'}
    assert raw.get(f"{cms(ns)}/bad").status == 404


def test_allowed_write_carries_the_webhooks_warning_to_kubectl(server: ServerProcess, register: Any,
                                                               hooks: WebhookServer, ca: WebhookCA, ns: str) -> None:
    register(VALIDATING, [hook("deny.example.com", hooks.url("/deny"), ca, ns)])
    result = kubectl_create(server, configmap("good", ns))
    assert result.returncode == 0, result.stderr
    assert result.stdout == "configmap/good created\n"
    assert result.stderr == "Warning: deny.example.com looked at this object\n"


def test_code_and_reason_come_from_the_webhooks_status(server: ServerProcess, raw: Raw, register: Any,
                                                       hooks: WebhookServer, ca: WebhookCA, ns: str) -> None:
    register(VALIDATING, [hook("forbid.example.com", hooks.url("/forbidden"), ca, ns)])
    result = kubectl_create(server, configmap("c", ns))
    assert result.stderr == ('Error from server (Forbidden): error when creating "STDIN": admission webhook '
                             '"forbid.example.com" denied the request: no, by policy\n')
    body = raw.post(cms(ns), configmap("c", ns)).json()
    assert (body["code"], body["reason"]) == (403, "Forbidden")


def test_denial_without_message(raw: Raw, register: Any, hooks: WebhookServer, ca: WebhookCA, ns: str) -> None:
    register(VALIDATING, [hook("bare.example.com", hooks.url("/bare-deny"), ca, ns)])
    resp = raw.post(cms(ns), configmap("c", ns))
    assert resp.status == 400
    assert resp.json()["message"] == 'admission webhook "bare.example.com" denied the request without explanation'


def test_delete_is_sent_with_old_object_and_options(server: ServerProcess, raw: Raw, register: Any,
                                                    hooks: WebhookServer, ca: WebhookCA, ns: str) -> None:
    assert raw.post(cms(ns), configmap("keep", ns, {"deny": "true"})).status == 201
    register(VALIDATING, [hook("deny.example.com", hooks.url("/deny"), ca, ns, rules=[
        {"operations": ["DELETE"], "apiGroups": [""], "apiVersions": ["v1"], "resources": ["configmaps"]}])])
    result = server.kubectl("delete", "configmap", "keep", "-n", ns, check=False)
    assert result.stderr == ('Error from server: admission webhook "deny.example.com" denied the request: '
                             'objects labelled deny=true are not welcome\n')
    request = hooks.reviews["/deny"][-1]["request"]
    assert request["operation"] == "DELETE"
    assert request["object"] is None
    assert request["oldObject"]["metadata"]["name"] == "keep"
    assert request["options"]["kind"] == "DeleteOptions"
    assert raw.get(f"{cms(ns)}/keep").status == 200


# -- the AdmissionReview ------------------------------------------------------------------------
def test_review_request_fields(raw: Raw, register: Any, hooks: WebhookServer, ca: WebhookCA, ns: str) -> None:
    register(VALIDATING, [hook("allow.example.com", hooks.url("/allow"), ca, ns)])
    before = len(hooks.reviews["/allow"])
    assert raw.post(cms(ns), configmap("r", ns)).status == 201
    review = hooks.reviews["/allow"][before]
    assert (review["apiVersion"], review["kind"]) == ("admission.k8s.io/v1", "AdmissionReview")
    req = review["request"]
    uuid.UUID(req["uid"])
    assert req["kind"] == req["requestKind"] == {"group": "", "version": "v1", "kind": "ConfigMap"}
    assert req["resource"] == req["requestResource"] == {"group": "", "version": "v1", "resource": "configmaps"}
    assert "subResource" not in req
    assert (req["name"], req["namespace"], req["operation"]) == ("r", ns, "CREATE")
    assert req["userInfo"]["username"] == "kubernetes-admin"  # the admin kubeconfig's certificate, as kubeadm's
    assert "system:masters" in req["userInfo"]["groups"]
    assert req["object"]["data"] == {"k": "v"}
    assert req["object"]["metadata"]["uid"] and req["object"]["metadata"]["creationTimestamp"]  # validating: stamped
    assert req["oldObject"] is None
    assert req["dryRun"] is False
    assert req["options"] == {"kind": "CreateOptions", "apiVersion": "meta.k8s.io/v1"}

    updated = raw.get(f"{cms(ns)}/r").json()
    updated["data"] = {"k": "w"}
    assert raw.put(f"{cms(ns)}/r", updated).status == 200
    req = hooks.reviews["/allow"][-1]["request"]
    assert req["operation"] == "UPDATE"
    assert (req["oldObject"]["data"], req["object"]["data"]) == ({"k": "v"}, {"k": "w"})
    assert req["options"]["kind"] == "UpdateOptions"


def test_dry_run_is_sent_to_webhooks_without_side_effects(raw: Raw, register: Any, hooks: WebhookServer,
                                                          ca: WebhookCA, ns: str) -> None:
    register(VALIDATING, [hook("allow.example.com", hooks.url("/allow"), ca, ns, sideEffects="NoneOnDryRun")])
    assert raw.post(cms(ns), configmap("dry", ns), query={"dryRun": "All"}).status == 201
    assert hooks.reviews["/allow"][-1]["request"]["dryRun"] is True
    assert raw.get(f"{cms(ns)}/dry").status == 404


# -- mutating --------------------------------------------------------------------------------
def test_json_patch_is_stored(server: ServerProcess, raw: Raw, register: Any, hooks: WebhookServer,
                              ca: WebhookCA, ns: str) -> None:
    register(MUTATING, [hook("label.example.com", hooks.url("/mutate"), ca, ns)])
    result = kubectl_create(server, configmap("m", ns))
    assert result.returncode == 0, result.stderr
    sent = hooks.reviews["/mutate"][-1]["request"]["object"]["metadata"]
    assert "uid" not in sent and sent["creationTimestamp"] is None  # kube's create handler has not stamped it yet
    labels = json.loads(server.kubectl("get", "configmap", "m", "-n", ns, "-o", "json").stdout)["metadata"]["labels"]
    assert labels == {"mutated": "by-webhook"}


def test_patched_object_is_defaulted_again(raw: Raw, register: Any, hooks: WebhookServer, ca: WebhookCA,
                                          ns: str) -> None:
    register(MUTATING, [hook("sidecar.example.com", hooks.url("/sidecar"), ca, ns, rules=[
        {"operations": ["CREATE"], "apiGroups": [""], "apiVersions": ["v1"], "resources": ["pods"]}])])
    pod = {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p"},
           "spec": {"containers": [{"name": "app", "image": "busybox:1.36"}]}}
    resp = raw.post(f"/api/v1/namespaces/{ns}/pods", pod)
    assert resp.status == 201, resp
    sidecar = resp.json()["spec"]["containers"][1]
    assert sidecar["name"] == "sidecar"
    assert (sidecar["imagePullPolicy"], sidecar["terminationMessagePath"]) == ("IfNotPresent", "/dev/termination-log")


def test_validating_webhooks_see_the_mutated_object(raw: Raw, register: Any, hooks: WebhookServer,
                                                    ca: WebhookCA, ns: str) -> None:
    register(MUTATING, [hook("label.example.com", hooks.url("/mutate"), ca, ns)])
    register(VALIDATING, [hook("allow.example.com", hooks.url("/allow"), ca, ns)])
    assert raw.post(cms(ns), configmap("seen", ns, {"own": "x"})).status == 201
    assert hooks.reviews["/allow"][-1]["request"]["object"]["metadata"]["labels"] == {"own": "x", "mutated": "by-webhook"}


@pytest.mark.parametrize(("policy", "calls"), [("IfNeeded", "xx"), ("Never", "x")])
def test_reinvocation_when_a_later_webhook_changed_the_object(raw: Raw, register: Any, hooks: WebhookServer,
                                                              ca: WebhookCA, ns: str, policy: str, calls: str) -> None:
    register(MUTATING, [hook("count.example.com", hooks.url("/count"), ca, ns, reinvocationPolicy=policy),
                        hook("label.example.com", hooks.url("/mutate"), ca, ns)])
    obj = raw.post(cms(ns), configmap("again", ns)).json()
    assert obj["metadata"]["annotations"] == {"calls": calls}
    assert obj["metadata"]["labels"] == {"mutated": "by-webhook"}


def test_validating_webhook_may_not_patch(raw: Raw, register: Any, hooks: WebhookServer, ca: WebhookCA, ns: str) -> None:
    register(VALIDATING, [hook("patcher.example.com", hooks.url("/mutate"), ca, ns)])
    resp = raw.post(cms(ns), configmap("p", ns))
    assert resp.status == 500
    assert resp.json()["message"] == ('Internal error occurred: failed calling webhook "patcher.example.com": '
                                      'received invalid webhook response: validating webhooks may not return patches')


# -- failures ---------------------------------------------------------------------------------
def test_unreachable_webhook_fails_closed_or_open(server: ServerProcess, raw: Raw, register: Any,
                                                  ca: WebhookCA, ns: str) -> None:
    port = closed_port()
    url = f"https://127.0.0.1:{port}/allow"
    register(VALIDATING, [hook("down.example.com", url, ca, ns, objectSelector={"matchLabels": {"policy": "fail"}})])
    register(VALIDATING, [hook("down-ignored.example.com", url, ca, ns, failurePolicy="Ignore")])
    text = (f'failed calling webhook "down.example.com": failed to call webhook: Post '
            f'"https://127.0.0.1:{port}/allow?timeout=10s": dial tcp 127.0.0.1:{port}: connect: connection refused')
    result = kubectl_create(server, configmap("f", ns, {"policy": "fail"}))
    assert result.stderr == f'Error from server (InternalError): error when creating "STDIN": Internal error occurred: {text}\n'
    body = raw.post(cms(ns), configmap("f", ns, {"policy": "fail"})).json()
    assert body["code"] == 500 and body["reason"] == "InternalError"
    assert body["details"] == {"causes": [{"message": text}]}
    assert raw.post(cms(ns), configmap("ignored", ns)).status == 201


def test_timeout_is_a_deadline(raw: Raw, register: Any, hooks: WebhookServer, ca: WebhookCA, ns: str) -> None:
    register(VALIDATING, [hook("slow.example.com", hooks.url("/slow"), ca, ns, timeoutSeconds=1)])
    resp = raw.post(cms(ns), configmap("s", ns))
    assert resp.status == 500
    assert resp.json()["message"] == ('Internal error occurred: failed calling webhook "slow.example.com": failed to '
                                      f'call webhook: Post "{hooks.url("/slow")}?timeout=1s": context deadline exceeded')


def test_certificate_from_another_ca_is_refused(raw: Raw, register: Any, hooks: WebhookServer, ns: str) -> None:
    register(VALIDATING, [hook("tls.example.com", hooks.url("/allow"), WebhookCA(), ns)])
    resp = raw.post(cms(ns), configmap("t", ns))
    assert resp.status == 500
    assert resp.json()["message"].endswith(
        f'Post "{hooks.url("/allow")}?timeout=10s": tls: failed to verify certificate: '
        'x509: certificate signed by unknown authority')


def test_wrong_uid_is_an_invalid_response(raw: Raw, register: Any, hooks: WebhookServer, ca: WebhookCA, ns: str) -> None:
    register(VALIDATING, [hook("uid.example.com", hooks.url("/wrong-uid"), ca, ns)])
    resp = raw.post(cms(ns), configmap("u", ns))
    uid = hooks.reviews["/wrong-uid"][-1]["request"]["uid"]
    assert resp.json()["message"] == ('Internal error occurred: failed calling webhook "uid.example.com": received '
                                      f'invalid webhook response: expected response.uid="{uid}", got "not-the-uid"')


# -- matching ---------------------------------------------------------------------------------
def test_object_and_namespace_selectors(raw: Raw, register: Any, hooks: WebhookServer, ca: WebhookCA, ns: str) -> None:
    register(VALIDATING, [hook("forbid.example.com", hooks.url("/forbidden"), ca, ns,
                               namespaceSelector={"matchLabels": {"team": "a", "kubernetes.io/metadata.name": ns}},
                               objectSelector={"matchExpressions": [{"key": "guarded", "operator": "Exists"}]})])
    assert raw.post(cms(ns), configmap("free", ns)).status == 201
    assert raw.post(cms(ns), configmap("guarded", ns, {"guarded": "yes"})).status == 403
    other = f"wh-{uuid.uuid4().hex[:8]}"
    assert raw.post("/api/v1/namespaces", {"metadata": {"name": other, "labels": {"team": "b"}}}).status == 201
    register(VALIDATING, [hook("forbid.example.com", hooks.url("/forbidden"), ca, other,
                               namespaceSelector={"matchLabels": {"team": "a"}})])
    assert raw.post(cms(other), configmap("elsewhere", other)).status == 201


def test_old_object_labels_match_the_object_selector(raw: Raw, register: Any, hooks: WebhookServer,
                                                     ca: WebhookCA, ns: str) -> None:
    assert raw.post(cms(ns), configmap("was", ns, {"guarded": "yes"})).status == 201
    register(VALIDATING, [hook("forbid.example.com", hooks.url("/forbidden"), ca, ns,
                               objectSelector={"matchLabels": {"guarded": "yes"}})])
    cm = raw.get(f"{cms(ns)}/was").json()
    cm["metadata"]["labels"] = {}
    assert raw.put(f"{cms(ns)}/was", cm).status == 403


def test_rules_pick_operations_resources_and_subresources(raw: Raw, register: Any, hooks: WebhookServer,
                                                          ca: WebhookCA, ns: str) -> None:
    register(VALIDATING, [hook("forbid.example.com", hooks.url("/forbidden"), ca, ns, rules=[
        {"operations": ["UPDATE"], "apiGroups": ["*"], "apiVersions": ["*"], "resources": ["configmaps"]},
        {"operations": ["*"], "apiGroups": [""], "apiVersions": ["v1"], "resources": ["secrets/*"]},
        {"operations": ["CREATE"], "apiGroups": [""], "apiVersions": ["v1"], "resources": ["services"],
         "scope": "Cluster"}])])
    assert raw.post(cms(ns), configmap("created", ns)).status == 201  # CREATE is not in the rule
    secret = {"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "s"}, "stringData": {"a": "b"}}
    assert raw.post(f"/api/v1/namespaces/{ns}/secrets", secret).status == 201  # secrets/* is subresources only
    service = {"apiVersion": "v1", "kind": "Service", "metadata": {"name": "svc"},
               "spec": {"ports": [{"port": 80}]}}
    assert raw.post(f"/api/v1/namespaces/{ns}/services", service).status == 201  # namespaced, not Cluster
    cm = raw.get(f"{cms(ns)}/created").json()
    cm["data"] = {"k": "changed"}
    assert raw.put(f"{cms(ns)}/created", cm).status == 403


def test_match_conditions(raw: Raw, register: Any, hooks: WebhookServer, ca: WebhookCA, ns: str) -> None:
    register(VALIDATING, [hook("cel.example.com", hooks.url("/forbidden"), ca, ns, matchConditions=[
        {"name": "checked-only", "expression": "object.metadata.name.startsWith('checked-')"},
        {"name": "not-admins", "expression": "request.userInfo.username != 'nobody'"}])])
    assert raw.post(cms(ns), configmap("plain", ns)).status == 201
    assert raw.post(cms(ns), configmap("checked-one", ns)).status == 403


def test_match_conditions_may_ask_the_authorizer(raw: Raw, register: Any, hooks: WebhookServer, ca: WebhookCA,
                                                 ns: str) -> None:
    """kube's break-glass pattern: skip the webhook for users allowed a special verb. The admin
    (system:masters) may do anything, so the first webhook is skipped; the second asks whether
    the user may delete the very object (`authorizer.requestResource`), which is allowed too,
    so that webhook is called and refuses."""
    register(VALIDATING, [hook("breakglass.example.com", hooks.url("/forbidden"), ca, ns, matchConditions=[
        {"name": "breakglass", "expression":
         "!authorizer.group('admissionregistration.k8s.io').resource('validatingwebhookconfigurations')"
         ".name('breakglass.example.com').check('breakglass').allowed()"}])])
    assert raw.post(cms(ns), configmap("admin", ns)).status == 201
    register(VALIDATING, [hook("own.example.com", hooks.url("/forbidden"), ca, ns, matchConditions=[
        {"name": "may-delete", "expression": "authorizer.requestResource.check('delete').allowed()"}])])
    assert raw.post(cms(ns), configmap("checked", ns)).status == 403


def test_match_condition_error_follows_failure_policy(raw: Raw, register: Any, hooks: WebhookServer,
                                                      ca: WebhookCA, ns: str) -> None:
    register(VALIDATING, [hook("broken-cel.example.com", hooks.url("/allow"), ca, ns, failurePolicy="Ignore",
                               matchConditions=[{"name": "spec", "expression": "object.spec.x == 1"}])])
    assert raw.post(cms(ns), configmap("ok", ns)).status == 201
    register(VALIDATING, [hook("broken-cel.example.com", hooks.url("/allow"), ca, ns,
                               matchConditions=[{"name": "spec", "expression": "object.spec.x == 1"}])])
    resp = raw.post(cms(ns), configmap("refused", ns))
    assert resp.status == 403
    assert resp.json()["message"] == ('configmaps "refused" is forbidden: '
                                      "expression 'object.spec.x == 1' resulted in error: no such key: spec")


def test_webhook_configurations_are_never_sent_to_webhooks(raw: Raw, register: Any, hooks: WebhookServer,
                                                           ca: WebhookCA) -> None:
    marker = uuid.uuid4().hex[:8]
    everything = {"name": "all.example.com", "clientConfig": {"url": hooks.url("/forbidden"), "caBundle": ca.bundle},
                  "rules": [{"operations": ["*"], "apiGroups": ["*"], "apiVersions": ["*"], "resources": ["*/*"]}],
                  "sideEffects": "None", "admissionReviewVersions": ["v1"],
                  "objectSelector": {"matchLabels": {"marker": marker}}}
    register(VALIDATING, [everything])
    register(MUTATING, [everything], labels={"marker": marker})  # exempt, so not refused
    ns = {"metadata": {"name": f"wh-{marker}", "labels": {"marker": marker}}}
    assert raw.post("/api/v1/namespaces", ns).status == 403  # everything else is


# -- the configurations themselves ------------------------------------------------------------
def test_configuration_validation_texts(server: ServerProcess, hooks: WebhookServer, ca: WebhookCA) -> None:
    bad = {"apiVersion": "admissionregistration.k8s.io/v1", "kind": "ValidatingWebhookConfiguration",
           "metadata": {"name": "bad-config"},
           "webhooks": [{"name": "short", "clientConfig": {"url": "http://127.0.0.1/x"}, "admissionReviewVersions": ["v2"],
                         "sideEffects": "Some", "timeoutSeconds": 31,
                         "rules": [{"operations": ["CREATE"], "apiGroups": [""], "apiVersions": ["v1"],
                                    "resources": ["pods"]}]},
                        {"name": "no.side.effects", "clientConfig": {"url": hooks.url("/allow"),
                                                                     "service": {"namespace": "a", "name": "b"}},
                         "admissionReviewVersions": ["v1"]}]}
    result = kubectl_create(server, bad)
    assert result.returncode == 1
    assert result.stderr == (
        'The ValidatingWebhookConfiguration "bad-config" is invalid: \n'
        '* webhooks[0].name: Invalid value: "short": should be a domain with at least three segments separated by dots\n'
        '* webhooks[0].admissionReviewVersions: Invalid value: []string{"v2"}: must include at least one of v1, v1beta1\n'
        '* webhooks[0].sideEffects: Unsupported value: "Some": supported values: "None", "NoneOnDryRun"\n'
        '* webhooks[0].timeoutSeconds: Invalid value: 31: the timeout value must be between 1 and 30 seconds\n'
        '* webhooks[0].clientConfig.url: Invalid value: "http": \'https\' is the only allowed URL scheme; '
        'desired format: https://host[/path]\n'
        '* webhooks[1].sideEffects: Required value: must specify one of None, NoneOnDryRun\n'
        '* webhooks[1].clientConfig: Required value: exactly one of url or service is required\n')


async def test_dry_run_refused_for_a_webhook_with_side_effects() -> None:
    """Only a configuration stored before v1's rules can still say `Unknown`/`Some`: kube then
    refuses a dry run before calling, whatever the failurePolicy."""
    from pykube_server.api import errors
    from pykube_server.apiserver.admission import Attributes
    from pykube_server.apiserver.admission.webhook.configs import Hook
    from pykube_server.apiserver.admission.webhook.dispatch import ValidatingAdmissionWebhook
    from pykube_server.apiserver.authn import ANONYMOUS

    class Stores:
        specs: dict[Any, Any] = {}

        def store_for(self, *_: str) -> Any:
            return None

    plugin = ValidatingAdmissionWebhook(Stores())  # type: ignore[arg-type]
    hook = Hook("legacy", 0, {"name": "legacy.example.com", "sideEffects": "Unknown", "failurePolicy": "Ignore",
                              "clientConfig": {"url": "https://127.0.0.1:1/"}})
    attrs = Attributes("CREATE", "", "v1", "configmaps", "", "ConfigMap", "ns", "c", ANONYMOUS,
                       obj={"metadata": {"name": "c"}}, dry_run=True)
    with pytest.raises(errors.BadRequest) as refused:
        await plugin.call(hook, attrs, "v1")
    assert refused.value.message == 'admission webhook "legacy.example.com" does not support dry run'


def test_mutating_webhooks_may_refuse_a_delete(raw: Raw, register: Any, hooks: WebhookServer, ca: WebhookCA,
                                               ns: str) -> None:
    assert raw.post(cms(ns), configmap("stay", ns)).status == 201
    register(MUTATING, [hook("forbid.example.com", hooks.url("/forbidden"), ca, ns, rules=[
        {"operations": ["DELETE"], "apiGroups": [""], "apiVersions": ["v1"], "resources": ["configmaps"]}])])
    resp = raw.delete(f"{cms(ns)}/stay")
    assert resp.status == 403
    assert resp.json()["message"] == 'admission webhook "forbid.example.com" denied the request: no, by policy'


def test_namespaces_are_selected_by_their_own_labels_and_are_cluster_scoped(raw: Raw, register: Any,
                                                                           hooks: WebhookServer, ca: WebhookCA) -> None:
    marker = uuid.uuid4().hex[:8]
    register(VALIDATING, [{"name": "ns.example.com", "clientConfig": {"url": hooks.url("/forbidden"), "caBundle": ca.bundle},
                           "rules": [{"operations": ["CREATE"], "apiGroups": [""], "apiVersions": ["v1"],
                                      "resources": ["namespaces"], "scope": "Cluster"}],
                           "namespaceSelector": {"matchLabels": {"guard": marker}},
                           "sideEffects": "None", "admissionReviewVersions": ["v1"]}])
    free = {"metadata": {"name": f"wh-free-{marker}"}}
    guarded = {"metadata": {"name": f"wh-guarded-{marker}", "labels": {"guard": marker}}}
    assert raw.post("/api/v1/namespaces", free).status == 201
    resp = raw.post("/api/v1/namespaces", guarded)
    assert resp.status == 403
    assert resp.json()["message"] == 'admission webhook "ns.example.com" denied the request: no, by policy'
    assert "details" not in resp.json()  # the webhook gave none, and kube adds none


def test_custom_resources_go_to_webhooks(raw: Raw, register: Any, hooks: WebhookServer, ca: WebhookCA, ns: str) -> None:
    """Operators' webhooks guard their own kinds: a CRD's objects are admitted like built-ins."""
    import time

    group = f"g{uuid.uuid4().hex[:6]}.example.com"
    crd = {"apiVersion": "apiextensions.k8s.io/v1", "kind": "CustomResourceDefinition",
           "metadata": {"name": f"widgets.{group}"},
           "spec": {"group": group, "scope": "Namespaced",
                    "names": {"plural": "widgets", "singular": "widget", "kind": "Widget"},
                    "versions": [{"name": "v1", "served": True, "storage": True, "schema": {"openAPIV3Schema": {
                        "type": "object", "x-kubernetes-preserve-unknown-fields": True}}}]}}
    assert raw.post("/apis/apiextensions.k8s.io/v1/customresourcedefinitions", crd).status == 201
    register(MUTATING, [hook("label.example.com", hooks.url("/mutate"), ca, ns, rules=[
        {"operations": ["CREATE"], "apiGroups": [group], "apiVersions": ["v1"], "resources": ["widgets"]}])])
    register(VALIDATING, [hook("deny.example.com", hooks.url("/deny"), ca, ns, rules=[
        {"operations": ["CREATE"], "apiGroups": [group], "apiVersions": ["*"], "resources": ["*"]}])])
    path = f"/apis/{group}/v1/namespaces/{ns}/widgets"
    deadline = time.monotonic() + 10
    while raw.get(path).status != 200 and time.monotonic() < deadline:
        time.sleep(0.1)
    widget = {"apiVersion": f"{group}/v1", "kind": "Widget", "metadata": {"name": "w"}, "spec": {"size": 1}}
    resp = raw.post(path, widget)
    assert resp.status == 201, resp
    assert resp.json()["metadata"]["labels"] == {"mutated": "by-webhook"}
    assert resp.warnings == ['299 - "deny.example.com looked at this object"']
    request = hooks.reviews["/deny"][-1]["request"]
    assert request["kind"] == {"group": group, "version": "v1", "kind": "Widget"}
    denied = raw.post(path, {**widget, "metadata": {"name": "d", "labels": {"deny": "true"}}})
    assert denied.status == 400
