"""Repeated keys and undeclared fields, answered as kube-apiserver 1.33 answers them.

Facts (kube's test/integration/apiserver/field_validation_test.go):
- JSON create/update: `strict decoding error: duplicate field "metadata.name", unknown field
  "metadata.unknownMeta", ..., duplicate field "spec.paused", ...` -- unknown and repeated fields
  interleaved in document order, full paths; a field both unknown and repeated is named once, as
  unknown. Warn: one `Warning` per entry, same order. Ignore: the last value wins, silently.
- YAML create: `strict decoding error: yaml: unmarshal errors:\\n  line 5: key "name" already set
  in map\\n  line 12: ...`, then the unknown fields in key order; Warn: one warning per line.
- merge and strategic merge patch: the patch's repeats first, then the patched object's unknown
  fields in key order. JSON patch: `json patch unknown field "[0].foo"`, `json patch duplicate
  field "[1].path"`.
- server-side apply: repeated keys -> 400 `error strict decoding YAML: error converting YAML to
  JSON: yaml: unmarshal errors:...` (Strict) or warnings (Warn); an undeclared field -> 500
  without reason, `failed to create typed patch object (ns/name; apps/v1, Kind=Deployment):
  .spec.bogus: field not declared in schema`, whatever fieldValidation says.
"""

from __future__ import annotations

import orjson
import pytest

from pykube_server.apiserver.duplicates import find_json, load_yaml
from tests.apiserver.test_rest_support import Raw
from tests.conftest import ServerProcess

DEPLOYMENT_JSON = """{
  "apiVersion": "apps/v1",
  "kind": "Deployment",
  "metadata": {
    "name": "dupename",
    "name": "%s",
    "labels": {"app": "nginx"},
    "unknownMeta": "metaVal"
  },
  "spec": {
    "unknown1": "val1",
    "unknownDupe": "valDupe",
    "unknownDupe": "valDupe2",
    "paused": true,
    "paused": false,
    "selector": {"matchLabels": {"app": "nginx"}},
    "template": {
      "metadata": {"labels": {"app": "nginx"}},
      "spec": {
        "containers": [{
          "name": "nginx",
          "image": "nginx:latest",
          "unknownNested": "val1",
          "imagePullPolicy": "Always",
          "imagePullPolicy": "Never"
        }]
      }
    }
  }
}"""

JSON_TEXTS = [
    'duplicate field "metadata.name"',
    'unknown field "metadata.unknownMeta"',
    'unknown field "spec.unknown1"',
    'unknown field "spec.unknownDupe"',
    'duplicate field "spec.paused"',
    'unknown field "spec.template.spec.containers[0].unknownNested"',
    'duplicate field "spec.template.spec.containers[0].imagePullPolicy"',
]

DEPLOYMENT_YAML = """apiVersion: apps/v1
kind: Deployment
metadata:
  name: dupename
  name: %s
  unknownMeta: metaVal
  labels:
    app: nginx
spec:
  unknown1: val1
  unknownDupe: valDupe
  unknownDupe: valDupe2
  paused: true
  paused: false
  selector:
    matchLabels:
      app: nginx
  template:
    metadata:
      labels:
        app: nginx
    spec:
      containers:
      - name: nginx
        image: nginx:latest
        unknownNested: val1
        imagePullPolicy: Always
        imagePullPolicy: Never"""

YAML_LINES = [
    'line 5: key "name" already set in map',
    'line 12: key "unknownDupe" already set in map',
    'line 14: key "paused" already set in map',
    'line 28: key "imagePullPolicy" already set in map',
]
YAML_UNKNOWN = [
    'unknown field "metadata.unknownMeta"',
    'unknown field "spec.template.spec.containers[0].unknownNested"',
    'unknown field "spec.unknown1"',
    'unknown field "spec.unknownDupe"',
]

APPLY_JSON = """{
    "apiVersion": "apps/v1",
    "kind": "Deployment",
    "metadata": {
        "name": "%s",
        "labels": {"app": "nginx"}
    },
    "spec": {
        "paused": false,
        "paused": true,
        "selector": {"matchLabels": {"app": "nginx"}},
        "template": {
            "metadata": {"labels": {"app": "nginx"}},
            "spec": {
                "containers": [{
                    "name": "nginx",
                    "image": "nginx:latest",
                    "imagePullPolicy": "Never",
                    "imagePullPolicy": "Always"
                }]
            }
        }
    }
}"""
APPLY_LINES = ['line 10: key "paused" already set in map', 'line 19: key "imagePullPolicy" already set in map']

VALID = {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "", "labels": {"app": "nginx"}},
         "spec": {"selector": {"matchLabels": {"app": "nginx"}},
                  "template": {"metadata": {"labels": {"app": "nginx"}},
                               "spec": {"containers": [{"name": "nginx", "image": "nginx:latest"}]}}}}


@pytest.fixture(scope="module")
def raw(api_cluster: ServerProcess) -> Raw:
    return Raw(api_cluster.kubeconfig)


def deployments(ns: str) -> str:
    return f"/apis/apps/v1/namespaces/{ns}/deployments"


def warnings_of(resp) -> list[str]:  # type: ignore[no-untyped-def]
    return [orjson.loads(h.split(" - ", 1)[1]) for h in resp.headers.get_all("Warning") or []]


# -- the detectors alone ------------------------------------------------------------------------
def test_clean_json_has_no_repeats_and_repeats_are_found_in_order() -> None:
    clean = orjson.dumps(VALID)
    assert find_json(clean, orjson.loads(clean)) is None
    spaced = b'{"a" : "x:y", "b": {"c": 1}}'  # colons inside strings and odd spacing are no repeats
    assert find_json(spaced, orjson.loads(spaced)) is None
    data = (DEPLOYMENT_JSON % "x").encode()
    found = find_json(data, orjson.loads(data))
    assert found is not None
    assert [p for _, p in found.repeats] == ["metadata.name", "spec.unknownDupe", "spec.paused",
                                             "spec.template.spec.containers[0].imagePullPolicy"]


def test_yaml_repeats_carry_the_line_of_the_second_key() -> None:
    value, lines = load_yaml((DEPLOYMENT_YAML % "x").encode())
    assert sorted(lines, key=lambda t: int(t.split(":")[0][5:])) == YAML_LINES
    assert value["metadata"]["name"] == "x" and value["spec"]["paused"] is False


# -- create -------------------------------------------------------------------------------------
def test_json_create_strict_names_repeats_and_unknown_fields_in_document_order(raw: Raw, api_namespace: str) -> None:
    resp = raw.post(deployments(api_namespace), DEPLOYMENT_JSON % "strict", query={"fieldValidation": "Strict"})
    assert resp.status == 400, resp
    body = resp.json()
    assert body["reason"] == "BadRequest"
    assert body["message"] == ('Deployment in version "v1" cannot be handled as a Deployment: strict decoding error: '
                               + ", ".join(JSON_TEXTS))
    assert raw.get(deployments(api_namespace) + "/strict").status == 404


def test_json_create_warn_and_ignore(raw: Raw, api_namespace: str) -> None:
    resp = raw.post(deployments(api_namespace), DEPLOYMENT_JSON % "warned", query={"fieldValidation": "Warn"})
    assert resp.status == 201, resp
    assert warnings_of(resp) == JSON_TEXTS
    assert resp.json()["spec"]["paused"] is False  # the last one wins
    assert resp.json()["spec"]["template"]["spec"]["containers"][0]["imagePullPolicy"] == "Never"
    resp = raw.post(deployments(api_namespace), DEPLOYMENT_JSON % "ignored", query={"fieldValidation": "Ignore"})
    assert resp.status == 201, resp
    assert warnings_of(resp) == []
    assert resp.json()["metadata"]["name"] == "ignored"


def test_yaml_create_strict_and_warn(raw: Raw, api_namespace: str) -> None:
    resp = raw.post(deployments(api_namespace), DEPLOYMENT_YAML % "ystrict", content_type="application/yaml",
                    query={"fieldValidation": "Strict"})
    assert resp.status == 400, resp
    assert resp.json()["message"].endswith(
        "strict decoding error: yaml: unmarshal errors:\n  " + "\n  ".join(YAML_LINES) + ", " + ", ".join(YAML_UNKNOWN))
    resp = raw.post(deployments(api_namespace), DEPLOYMENT_YAML % "ywarn", content_type="application/yaml")
    assert resp.status == 201, resp
    assert warnings_of(resp) == YAML_LINES + YAML_UNKNOWN


def test_clean_body_under_strict_is_created_without_warnings(raw: Raw, api_namespace: str) -> None:
    body = {**VALID, "metadata": {**VALID["metadata"], "name": "clean"}}
    resp = raw.post(deployments(api_namespace), body, query={"fieldValidation": "Strict"})
    assert resp.status == 201 and warnings_of(resp) == [], resp


# -- patch --------------------------------------------------------------------------------------
MERGE_PATCH = """{"spec": {"unknown1": "val1", "unknownDupe": "valDupe", "unknownDupe": "valDupe2",
  "paused": true, "paused": false,
  "template": {"spec": {"containers": [{"name": "nginx", "image": "nginx:latest", "unknownNested": "val1",
    "imagePullPolicy": "Always", "imagePullPolicy": "Never"}]}}}}"""
MERGE_TEXTS = [
    'duplicate field "spec.unknownDupe"',
    'duplicate field "spec.paused"',
    'duplicate field "spec.template.spec.containers[0].imagePullPolicy"',
    'unknown field "spec.template.spec.containers[0].unknownNested"',
    'unknown field "spec.unknown1"',
    'unknown field "spec.unknownDupe"',
]
JSON_PATCH = """[
  {"op": "add", "path": "/spec/unknown1", "value": "val1", "foo": "bar"},
  {"op": "add", "path": "/spec/unknown2", "path": "/spec/unknown3", "value": "val1"},
  {"op": "add", "path": "/spec/paused", "value": true},
  {"op": "add", "path": "/spec/template/metadata/labels", "value": {"app": "web", "app": "nginx"}}
]"""


def _created(raw: Raw, ns: str, name: str) -> str:
    body = {**VALID, "metadata": {**VALID["metadata"], "name": name}}
    assert raw.post(deployments(ns), body).status == 201
    return f"{deployments(ns)}/{name}"


@pytest.mark.parametrize("media", ["application/merge-patch+json", "application/strategic-merge-patch+json"])
def test_merge_patches_name_the_patch_repeats_then_the_unknown_fields(raw: Raw, api_namespace: str, media: str) -> None:
    path = _created(raw, api_namespace, "mp-" + media.split("/")[1].split("-")[0])
    resp = raw.patch(path, MERGE_PATCH, content_type=media, query={"fieldValidation": "Strict"})
    assert resp.status == 400, resp
    assert resp.json()["message"].endswith("strict decoding error: " + ", ".join(MERGE_TEXTS))
    resp = raw.patch(path, MERGE_PATCH, content_type=media, query={"fieldValidation": "Warn"})
    assert resp.status == 200, resp
    assert warnings_of(resp) == MERGE_TEXTS
    assert resp.json()["spec"]["paused"] is False


def test_json_patch_names_unknown_and_repeated_operation_members(raw: Raw, api_namespace: str) -> None:
    path = _created(raw, api_namespace, "jp")
    resp = raw.patch(path, JSON_PATCH, content_type="application/json-patch+json", query={"fieldValidation": "Strict"})
    assert resp.status == 400, resp
    assert resp.json()["message"].endswith(
        'strict decoding error: json patch unknown field "[0].foo", json patch duplicate field "[1].path", '
        'unknown field "spec.unknown1", unknown field "spec.unknown3"')
    # a repeat inside an operation's value is not an operation's member: not reported
    resp = raw.patch(path, JSON_PATCH, content_type="application/json-patch+json", query={"fieldValidation": "Warn"})
    assert resp.status == 200, resp
    assert warnings_of(resp) == ['json patch unknown field "[0].foo"', 'json patch duplicate field "[1].path"',
                                 'unknown field "spec.unknown1"', 'unknown field "spec.unknown3"']
    assert resp.json()["spec"]["template"]["metadata"]["labels"] == {"app": "nginx"}


# -- server-side apply --------------------------------------------------------------------------
def _apply(raw: Raw, ns: str, name: str, body: str, mode: str | None):  # type: ignore[no-untyped-def]
    query = {"fieldManager": "mgr", **({"fieldValidation": mode} if mode else {})}
    return raw.patch(f"{deployments(ns)}/{name}", body, content_type="application/apply-patch+yaml", query=query)


def test_apply_with_repeated_keys(raw: Raw, api_namespace: str) -> None:
    resp = _apply(raw, api_namespace, "ap-strict", APPLY_JSON % "ap-strict", "Strict")
    assert resp.status == 400, resp
    assert resp.json()["reason"] == "BadRequest"
    assert resp.json()["message"] == ("error strict decoding YAML: error converting YAML to JSON: yaml: unmarshal errors:\n  "
                                      + "\n  ".join(APPLY_LINES))
    resp = _apply(raw, api_namespace, "ap-warn", APPLY_JSON % "ap-warn", None)
    assert resp.status == 201, resp
    assert warnings_of(resp) == APPLY_LINES
    assert resp.json()["spec"]["paused"] is True
    resp = _apply(raw, api_namespace, "ap-ignore", APPLY_JSON % "ap-ignore", "Ignore")
    assert resp.status == 201 and warnings_of(resp) == [], resp


@pytest.mark.parametrize("mode", ["Strict", "Ignore"])
def test_apply_with_an_undeclared_field_fails_the_typed_conversion(raw: Raw, api_namespace: str, mode: str) -> None:
    manifest = orjson.loads(orjson.dumps(VALID))
    manifest["metadata"].update(name="undeclared", namespace=api_namespace, bogus="x")
    manifest["spec"]["template"]["spec"]["containers"][0]["foo"] = 1
    resp = _apply(raw, api_namespace, "undeclared", orjson.dumps(manifest).decode(), mode)
    assert resp.status == 500, resp
    body = resp.json()
    assert "reason" not in body and body["code"] == 500
    assert body["message"] == (
        f"failed to create typed patch object ({api_namespace}/undeclared; apps/v1, Kind=Deployment): errors:\n"
        '  .metadata.bogus: field not declared in schema\n'
        '  .spec.template.spec.containers[name="nginx"].foo: field not declared in schema')
    assert raw.get(f"{deployments(api_namespace)}/undeclared").status == 404


def test_create_with_unknown_metadata_field_under_strict(raw: Raw, api_namespace: str) -> None:
    body = {**VALID, "metadata": {**VALID["metadata"], "name": "meta", "bogus": "x"}}
    resp = raw.post(deployments(api_namespace), body, query={"fieldValidation": "Strict"})
    assert resp.status == 400, resp
    assert resp.json()["message"] == ('Deployment in version "v1" cannot be handled as a Deployment: '
                                      'strict decoding error: unknown field "metadata.bogus"')
