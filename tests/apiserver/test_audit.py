"""Audit logging: the real audit.k8s.io/v1 Policy and Event formats, stages, levels, and
rotation; end to end against `up` with kubectl, the log records who did what."""

from __future__ import annotations

import time

from pathlib import Path

import orjson
import pytest
import yaml

from pykube_server.apiserver.audit import LogBackend, PolicyError, load_policy
from pykube_server.apiserver.authn import UserInfo
from pykube_server.apiserver.requestinfo import parse_request_info
from tests.conftest import ServerProcess, start_server

POLICY = {
    "apiVersion": "audit.k8s.io/v1", "kind": "Policy", "omitStages": ["RequestReceived"],
    "rules": [
        {"level": "None", "users": ["system:kube-proxy"]},
        {"level": "None", "nonResourceURLs": ["/healthz*", "/version", "/openapi*", "/api", "/apis", "/api/*", "/apis/*"]},
        {"level": "Metadata", "resources": [{"group": "", "resources": ["secrets"]}]},
        {"level": "RequestResponse", "resources": [{"group": "", "resources": ["configmaps"]}]},
        {"level": "Request", "verbs": ["create", "update", "patch", "delete"]},
        {"level": "Metadata", "resources": [{"group": "", "resources": ["pods/log", "*/status"]}]},
    ],
}
ALICE = UserInfo("alice", groups=("system:authenticated",))


def write_policy(path: Path, doc: dict) -> Path:
    path.write_text(yaml.safe_dump(doc))
    return path


def decide(policy, method: str, path: str, user: UserInfo = ALICE) -> str:  # type: ignore[no-untyped-def]
    return policy.decide(user, parse_request_info(method, path, {}))[0]


def test_first_matching_rule_decides(tmp_path: Path) -> None:
    policy = load_policy(write_policy(tmp_path / "p.yaml", POLICY))
    assert decide(policy, "GET", "/api/v1/namespaces/ns/secrets/s") == "Metadata"
    assert decide(policy, "POST", "/api/v1/namespaces/ns/configmaps") == "RequestResponse"
    assert decide(policy, "DELETE", "/apis/apps/v1/namespaces/ns/deployments/d") == "Request"
    assert decide(policy, "GET", "/api/v1/namespaces/ns/pods/p/log") == "Metadata"
    assert decide(policy, "GET", "/api/v1/namespaces/ns/pods/p/status") == "Metadata"
    assert decide(policy, "GET", "/apis/apps/v1/namespaces/ns/deployments/d/status") == "None"  # group "" is core only
    assert decide(policy, "GET", "/api/v1/namespaces/ns/pods/p") == "None"  # no rule: not audited
    assert decide(policy, "GET", "/healthz/ready") == "None"
    assert decide(policy, "POST", "/api/v1/namespaces/ns/pods", UserInfo("system:kube-proxy")) == "None"
    assert policy.decide(ALICE, parse_request_info("GET", "/api/v1/secrets", {}))[1] == frozenset({"RequestReceived"})


def test_invalid_policies_are_refused(tmp_path: Path) -> None:
    with pytest.raises(PolicyError, match='rules\\[0\\].level: Unsupported value: "Loud"'):
        load_policy(write_policy(tmp_path / "a.yaml", {**POLICY, "rules": [{"level": "Loud"}]}))
    with pytest.raises(PolicyError, match="omitStages"):
        load_policy(write_policy(tmp_path / "b.yaml", {**POLICY, "omitStages": ["Later"]}))
    with pytest.raises(PolicyError, match="not an audit.k8s.io/v1 Policy"):
        load_policy(write_policy(tmp_path / "c.yaml", {"kind": "Nope"}))


def test_log_rotates_by_size_and_keeps_backups(tmp_path: Path) -> None:
    log = LogBackend(str(tmp_path / "audit.log"), max_size_mb=1, max_backups=2)
    event = {"kind": "Event", "pad": "x" * 100_000}
    for _ in range(40):  # ~4 MB: three rotations
        log.write(event)
    log.close()
    backups = sorted(tmp_path.glob("audit-*.log"))
    assert len(backups) == 2
    assert all(p.stat().st_size <= 1024 * 1024 for p in [tmp_path / "audit.log", *backups])


@pytest.fixture(scope="module")
def audited(tmp_path_factory: pytest.TempPathFactory) -> ServerProcess:
    tmp = tmp_path_factory.mktemp("audit")
    policy = write_policy(tmp / "policy.yaml", POLICY)
    server = start_server(tmp, "--components=", "--disable-admission-plugins=ServiceAccount",
                          f"--audit-policy-file={policy}", f"--audit-log-path={tmp / 'audit.log'}")
    yield server
    server.stop()


def events(server: ServerProcess) -> list[dict]:
    text = (server.data_dir.parent / "audit.log").read_text()
    return [orjson.loads(line) for line in text.splitlines() if line]


def test_kubectl_actions_are_recorded(audited: ServerProcess) -> None:
    audited.kubectl("create", "namespace", "audited")
    audited.kubectl("create", "configmap", "cm", "-n", "audited", "--from-literal=k=v")
    audited.kubectl("create", "secret", "generic", "s", "-n", "audited", "--from-literal=pw=hidden")
    assert audited.kubectl("get", "secret", "nope", "-n", "audited", check=False).returncode == 1
    log = events(audited)
    assert all(e["kind"] == "Event" and e["apiVersion"] == "audit.k8s.io/v1" for e in log)
    assert all(e["stage"] != "RequestReceived" for e in log)  # omitted by the policy
    cm = next(e for e in log if e.get("objectRef", {}).get("resource") == "configmaps" and e["verb"] == "create")
    assert cm["level"] == "RequestResponse" and cm["stage"] == "ResponseComplete"
    assert cm["user"]["username"] == "kubernetes-admin" and "system:masters" in cm["user"]["groups"]
    # the name comes from the created object, as kube's LogRequestObject fills it in
    assert cm["objectRef"] == {"resource": "configmaps", "namespace": "audited", "name": "cm", "apiVersion": "v1"}
    assert cm["requestObject"]["data"] == {"k": "v"}
    assert cm["responseObject"]["metadata"]["name"] == "cm"
    assert cm["responseStatus"]["code"] == 201
    assert cm["userAgent"].startswith("kubectl")
    assert cm["sourceIPs"] == ["127.0.0.1"]
    secret = next(e for e in log if e.get("objectRef", {}).get("resource") == "secrets" and e["verb"] == "create")
    assert secret["level"] == "Metadata" and "requestObject" not in secret and "responseObject" not in secret
    assert secret["objectRef"]["name"] == "s"
    current = orjson.loads(audited.kubectl("get", "cm", "cm", "-n", "audited", "-o", "json").stdout)
    current["data"] = {"k": "v2"}
    audited.kubectl("replace", "-f", "-", input=orjson.dumps(current).decode())
    update = next(e for e in events(audited) if e["verb"] == "update" and e["objectRef"].get("resource") == "configmaps")
    assert list(update["objectRef"].items()) == [  # an update's uid and resourceVersion are the body's, in kube's order
        ("resource", "configmaps"), ("namespace", "audited"), ("name", "cm"), ("uid", current["metadata"]["uid"]),
        ("apiVersion", "v1"), ("resourceVersion", current["metadata"]["resourceVersion"])]
    missing = next(e for e in log if e.get("objectRef", {}).get("name") == "nope")
    assert missing["responseStatus"]["code"] == 404 and missing["responseStatus"]["reason"] == "NotFound"
    assert not any(e["requestURI"].startswith("/api?") or e["requestURI"] in ("/api", "/apis") for e in log)


def test_watch_gets_response_started(audited: ServerProcess) -> None:
    audited.kubectl("get", "--raw", "/api/v1/namespaces/default/configmaps?watch=true&timeoutSeconds=1", timeout=30)
    deadline = time.monotonic() + 10  # the server writes ResponseComplete after the client saw the stream end
    while True:
        watch = [e for e in events(audited)
                 if e["verb"] == "watch" and e.get("objectRef", {}).get("resource") == "configmaps"]
        if len(watch) >= 2 or time.monotonic() > deadline:
            break
        time.sleep(0.1)
    assert [e["stage"] for e in watch][:2] == ["ResponseStarted", "ResponseComplete"]
