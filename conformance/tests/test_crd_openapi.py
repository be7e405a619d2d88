"""test/e2e/apimachinery/crd_publish_openapi.go: custom resources' schemas published in /openapi/v2
(JSON, what the e2e test downloads without an Accept header) and explained by kubectl.

The upstream test compares each published definition, less the `metadata`, `apiVersion` and `kind`
properties and the `x-kubernetes-group-version-kind` extension it adds, with the CRD's schema; a CRD
whose root preserves unknown fields (or has no schema) is published as a bare `type: object`.
"""

from __future__ import annotations

import copy
import json
import re
import time
import uuid

import pytest
import yaml
from kubernetes import client

from conformance.harness import conformance, raw, wait_for

SCHEMA_FOO = yaml.safe_load("""
description: Foo CRD for Testing
type: object
properties:
  spec:
    type: object
    description: Specification of Foo
    properties:
      bars:
        description: List of Bars and their specs.
        type: array
        items:
          type: object
          required: [name]
          properties:
            name: {description: Name of Bar., type: string}
            age: {description: Age of Bar., type: string}
            feeling: {description: Whether Bar is feeling great., type: string, enum: [Great, Down]}
            bazs: {description: List of Bazs., items: {type: string}, type: array}
  status:
    description: Status of Foo
    type: object
    properties:
      bars:
        description: List of Bars and their statuses.
        type: array
        items:
          type: object
          properties:
            name: {description: Name of Bar., type: string}
            available: {description: Whether the Bar is installed., type: boolean}
            quxType: {description: Indicates to external qux type., pattern: in-tree|out-of-tree, type: string}
""")

_WALDO_BODY = """
type: object
properties:
  spec:
    description: Specification of Waldo
    type: object
    {nested}
    properties:
      dummy: {description: Dummy property., type: object}
  status:
    description: Status of Waldo
    type: object
    properties:
      bars:
        description: List of Bars and their statuses.
        type: array
        items: {type: object}
"""
SCHEMA_WALDO = yaml.safe_load("description: Waldo CRD for Testing" + _WALDO_BODY.replace("{nested}", ""))
SCHEMA_PRESERVE_ROOT = yaml.safe_load("description: preserve-unknown-properties at root for Testing\n"
                                      "x-kubernetes-preserve-unknown-fields: true" + _WALDO_BODY.replace("{nested}", ""))
SCHEMA_PRESERVE_NESTED = yaml.safe_load("description: preserve-unknown-properties in nested field for Testing" +
                                        _WALDO_BODY.replace("{nested}", "x-kubernetes-preserve-unknown-fields: true"))
BARE = {"type": "object"}


class CRDUnderTest:
    """test/utils/crd's CreateMultiVersionTestCRD: a namespaced kind named after the framework."""

    def __init__(self, api, group_suffix: str, schema: dict | None, versions: tuple[str, ...]) -> None:  # type: ignore[no-untyped-def]
        self.api = api
        suffix = uuid.uuid4().hex[:4]
        self.group = f"crd-publish-openapi-test-{group_suffix}.example.com"
        self.name = f"e2e-test-crd-publish-openapi-{suffix}-crd"
        self.kind = self.name
        self.plural = self.name + "s"
        root = schema if schema is not None else {"type": "object", "x-kubernetes-preserve-unknown-fields": True}
        self.body = {
            "apiVersion": "apiextensions.k8s.io/v1", "kind": "CustomResourceDefinition",
            "metadata": {"name": f"{self.plural}.{self.group}"},
            "spec": {"group": self.group, "scope": "Namespaced",
                     "names": {"plural": self.plural, "singular": self.name, "kind": self.kind,
                               "listKind": self.kind + "List"},
                     "versions": [{"name": v, "served": True, "storage": i == 0,
                                   "schema": {"openAPIV3Schema": copy.deepcopy(root)}}
                                  for i, v in enumerate(versions)]}}

    @property
    def crd_name(self) -> str:
        return self.body["metadata"]["name"]

    def create(self) -> CRDUnderTest:
        ext = client.ApiextensionsV1Api(self.api)
        ext.create_custom_resource_definition(self.body)
        wait_for(lambda: any(c.type == "Established" and c.status == "True"
                             for c in (ext.read_custom_resource_definition(self.crd_name).status.conditions or [])),
                 timeout=30, what=f"CRD {self.crd_name} Established")
        return self

    def versions(self) -> list[str]:
        crd = client.ApiextensionsV1Api(self.api).read_custom_resource_definition(self.crd_name)
        return [v.name for v in crd.spec.versions]

    def delete(self) -> None:
        raw(self.api, "DELETE", f"/apis/apiextensions.k8s.io/v1/customresourcedefinitions/{self.crd_name}")

    def definition_name(self, version: str) -> str:
        """openapiutil.ToRESTFriendlyName("<group>/<version>/<kind>"): the group's labels reversed."""
        return ".".join([*reversed(self.group.split(".")), version, self.kind])

    def meta(self, name: str) -> str:
        version = self.body["spec"]["versions"][0]["name"]
        return f'"kind":"{self.kind}","apiVersion":"{self.group}/{version}","metadata":{{"name":"{name}"}}'


def openapi_v2(api) -> dict:  # type: ignore[no-untyped-def]
    """GET /openapi/v2 the way the e2e test does: no Accept header, a JSON body expected."""
    resp = raw(api, "GET", "/openapi/v2", headers={"Accept": ""})
    assert resp.status == 200, resp.text[:200]
    return resp.json()


def _without_added(definition: dict) -> dict:
    """dropDefaults: what the server adds to every published CRD definition."""
    out = copy.deepcopy(definition)
    for prop in ("metadata", "apiVersion", "kind"):
        out.get("properties", {}).pop(prop, None)
    if "properties" in out and not out["properties"]:
        del out["properties"]
    out.pop("x-kubernetes-group-version-kind", None)
    return out


def wait_for_definition(api, name: str, expect: dict | None) -> None:  # type: ignore[no-untyped-def]
    """waitForDefinition: the definition is published and (when `expect` is given) equals it."""
    last: list[str] = [""]

    def published() -> bool:
        defs = openapi_v2(api)["definitions"]
        if name not in defs:
            last[0] = f"definition {name} not found"
            return False
        if expect is not None and _without_added(defs[name]) != expect:
            last[0] = f"definition {name}: {json.dumps(_without_added(defs[name]))} != {json.dumps(expect)}"
            return False
        return True
    try:
        wait_for(published, timeout=60, interval=0.5, what=f"definition {name} published")
    except AssertionError as exc:
        raise AssertionError(f"{exc}; last: {last[0]}") from None


def wait_for_definition_cleanup(api, name: str) -> None:  # type: ignore[no-untyped-def]
    wait_for(lambda: name not in openapi_v2(api)["definitions"], timeout=60, interval=0.5,
             what=f"definition {name} removed")


def setup_crd(api, made: list, group_suffix: str, schema: dict | None, *versions: str,  # type: ignore[no-untyped-def]
              expect: dict | None | str = "schema") -> CRDUnderTest:
    """setupCRD / setupCRDAndVerifySchema: create (recorded in `made` for cleanup), then wait
    until every version is published."""
    crd = CRDUnderTest(api, group_suffix, schema, versions)
    made.append(crd)
    crd.create()
    wanted = (schema if schema is not None else BARE) if expect == "schema" else expect
    for version in versions:
        wait_for_definition(api, crd.definition_name(version), wanted)  # type: ignore[arg-type]
    return crd


def cleanup_crd(api, crd: CRDUnderTest) -> None:  # type: ignore[no-untyped-def]
    versions = crd.versions()
    crd.delete()
    for version in versions:
        wait_for_definition_cleanup(api, crd.definition_name(version))


@pytest.fixture
def crds(api):  # type: ignore[no-untyped-def]
    """CRDs made by a test, deleted even when it fails."""
    made: list[CRDUnderTest] = []
    yield made
    for crd in made:
        crd.delete()


def explain(cluster, ns: str, what: str, pattern: str) -> None:  # type: ignore[no-untyped-def]
    """verifyKubectlExplain: `kubectl explain` succeeds, retried briefly while kubectl's cached
    discovery catches up with a kind just made."""
    deadline = time.monotonic() + 30
    while True:
        result = cluster.kubectl("explain", what, "--namespace", ns, check=False)
        if result.returncode == 0 and re.search(pattern, result.stdout, re.S):
            return
        if time.monotonic() > deadline:
            raise AssertionError(f"kubectl explain {what}: {result.stdout}{result.stderr} !~ {pattern}")
        time.sleep(0.5)


def create_and_apply(cluster, ns: str, crd: CRDUnderTest, cr: str, name: str) -> None:  # type: ignore[no-untyped-def]
    """kubectl create -f - and kubectl apply -f -, each followed by a delete, must all succeed."""
    for verb in ("create", "apply"):
        cluster.kubectl(f"--namespace={ns}", verb, "-f", "-", input=cr)
        cluster.kubectl(f"--namespace={ns}", "delete", crd.plural, name)


@conformance("[sig-api-machinery] CustomResourcePublishOpenAPI [Privileged:ClusterAdmin] works for CRD with validation schema [Conformance]")
def test_crd_openapi_with_validation_schema(api, cluster, ns, crds) -> None:  # type: ignore[no-untyped-def]
    crd = setup_crd(api, crds, "foo", SCHEMA_FOO, "v1")
    valid = "{%s,\"spec\":{\"bars\":[{\"name\":\"test-bar\"}]}}" % crd.meta("test-foo")
    create_and_apply(cluster, ns, crd, valid, "test-foo")
    explain(cluster, ns, crd.plural, r"DESCRIPTION:.*Foo CRD for Testing.*FIELDS:.*apiVersion.*<string>.*"
                                     r"APIVersion defines.*spec.*<Object>.*Specification of Foo")
    explain(cluster, ns, crd.plural + ".metadata", r"DESCRIPTION:.*Standard object's metadata.*FIELDS:.*"
                                                   r"creationTimestamp.*<string>.*CreationTimestamp is a timestamp")
    explain(cluster, ns, crd.plural + ".spec", r"DESCRIPTION:.*Specification of Foo.*FIELDS:.*bars.*<\[\]Object>.*"
                                               r"List of Bars and their specs")
    explain(cluster, ns, crd.plural + ".spec.bars", r"(RESOURCE|FIELD):.*bars.*<\[\]Object>.*DESCRIPTION:.*"
                                                    r"List of Bars and their specs.*FIELDS:.*bazs.*<\[\]string>.*"
                                                    r"List of Bazs.*name.*<string>.*Name of Bar")
    result = cluster.kubectl("explain", crd.plural + ".spec.bars2", check=False)
    assert result.returncode != 0 and 'field "bars2" does not exist' in result.stderr, result.stderr
    cleanup_crd(api, crd)


@conformance("[sig-api-machinery] CustomResourcePublishOpenAPI [Privileged:ClusterAdmin] works for CRD without validation schema [Conformance]")
def test_crd_openapi_without_validation_schema(api, cluster, ns, crds) -> None:  # type: ignore[no-untyped-def]
    crd = setup_crd(api, crds, "empty", None, "v1")
    any_cr = "{%s,\"a\":{\"b\":[{\"c\":\"d\"}]}}" % crd.meta("test-cr")
    create_and_apply(cluster, ns, crd, any_cr, "test-cr")
    explain(cluster, ns, crd.plural, r"DESCRIPTION:.*<empty>")
    cleanup_crd(api, crd)


@conformance("[sig-api-machinery] CustomResourcePublishOpenAPI [Privileged:ClusterAdmin] works for CRD preserving unknown fields at the schema root [Conformance]")
def test_crd_openapi_preserve_unknown_root(api, cluster, ns, crds) -> None:  # type: ignore[no-untyped-def]
    crd = setup_crd(api, crds, "unknown-at-root", SCHEMA_PRESERVE_ROOT, "v1", expect=None)
    # a root that keeps unknown fields is published in v2 as a bare object (kubectl would otherwise
    # reject the fields it cannot see)
    assert _without_added(openapi_v2(api)["definitions"][crd.definition_name("v1")]) == BARE
    any_cr = "{%s,\"a\":{\"b\":[{\"c\":\"d\"}]}}" % crd.meta("test-cr")
    create_and_apply(cluster, ns, crd, any_cr, "test-cr")
    explain(cluster, ns, crd.plural, rf"KIND:.*{crd.kind}")
    cleanup_crd(api, crd)


@conformance("[sig-api-machinery] CustomResourcePublishOpenAPI [Privileged:ClusterAdmin] works for CRD preserving unknown fields in an embedded object [Conformance]")
def test_crd_openapi_preserve_unknown_nested(api, cluster, ns, crds) -> None:  # type: ignore[no-untyped-def]
    crd = setup_crd(api, crds, "unknown-in-nested", SCHEMA_PRESERVE_NESTED, "v1", expect=None)
    # in v2 an object that keeps unknown fields loses its type and properties (ToStructuralOpenAPIV2)
    spec = openapi_v2(api)["definitions"][crd.definition_name("v1")]["properties"]["spec"]
    assert "properties" not in spec and "type" not in spec and spec["x-kubernetes-preserve-unknown-fields"] is True
    any_cr = "{%s,\"spec\":{\"a\":null,\"b\":[{\"c\":\"d\"}]}}" % crd.meta("test-cr")
    create_and_apply(cluster, ns, crd, any_cr, "test-cr")
    explain(cluster, ns, crd.plural, r"DESCRIPTION:.*preserve-unknown-properties in nested field for Testing")
    cleanup_crd(api, crd)


@conformance("[sig-api-machinery] CustomResourcePublishOpenAPI [Privileged:ClusterAdmin] works for multiple CRDs of different groups [Conformance]")
def test_crd_openapi_different_groups(api, crds) -> None:  # type: ignore[no-untyped-def]
    foo = setup_crd(api, crds, "foo", SCHEMA_FOO, "v1")
    waldo = setup_crd(api, crds, "waldo", SCHEMA_WALDO, "v1beta1")
    assert foo.group != waldo.group
    wait_for_definition(api, waldo.definition_name("v1beta1"), SCHEMA_WALDO)
    wait_for_definition(api, foo.definition_name("v1"), SCHEMA_FOO)
    cleanup_crd(api, foo)
    cleanup_crd(api, waldo)


@conformance("[sig-api-machinery] CustomResourcePublishOpenAPI [Privileged:ClusterAdmin] works for multiple CRDs of same group but different versions [Conformance]")
def test_crd_openapi_same_group_different_versions(api, crds) -> None:  # type: ignore[no-untyped-def]
    multi = setup_crd(api, crds, "multi-ver", SCHEMA_FOO, "v2", "v3")
    wait_for_definition(api, multi.definition_name("v3"), SCHEMA_FOO)
    wait_for_definition(api, multi.definition_name("v2"), SCHEMA_FOO)
    cleanup_crd(api, multi)

    foo = setup_crd(api, crds, "common-group", SCHEMA_FOO, "v4")
    waldo = setup_crd(api, crds, "common-group", SCHEMA_WALDO, "v5")
    assert foo.group == waldo.group
    wait_for_definition(api, waldo.definition_name("v5"), SCHEMA_WALDO)
    wait_for_definition(api, foo.definition_name("v4"), SCHEMA_FOO)
    cleanup_crd(api, foo)
    cleanup_crd(api, waldo)


@conformance("[sig-api-machinery] CustomResourcePublishOpenAPI [Privileged:ClusterAdmin] works for multiple CRDs of same group and version but different kinds [Conformance]")
def test_crd_openapi_same_group_version_different_kinds(api, crds) -> None:  # type: ignore[no-untyped-def]
    foo = setup_crd(api, crds, "common-group", SCHEMA_FOO, "v6")
    waldo = setup_crd(api, crds, "common-group", SCHEMA_WALDO, "v6")
    assert foo.group == waldo.group and foo.kind != waldo.kind
    wait_for_definition(api, waldo.definition_name("v6"), SCHEMA_WALDO)
    wait_for_definition(api, foo.definition_name("v6"), SCHEMA_FOO)
    cleanup_crd(api, foo)
    cleanup_crd(api, waldo)


@conformance("[sig-api-machinery] CustomResourcePublishOpenAPI [Privileged:ClusterAdmin] updates the published spec when one version gets renamed [Conformance]")
def test_crd_openapi_version_renamed(api, crds) -> None:  # type: ignore[no-untyped-def]
    multi = setup_crd(api, crds, "multi-ver", SCHEMA_FOO, "v2", "v3")
    patch = [{"op": "test", "path": "/spec/versions/1/name", "value": "v3"},
             {"op": "replace", "path": "/spec/versions/1/name", "value": "v4"}]
    resp = raw(api, "PATCH", f"/apis/apiextensions.k8s.io/v1/customresourcedefinitions/{multi.crd_name}",
               body=patch, headers={"Content-Type": "application/json-patch+json"})
    assert resp.status == 200, resp.text
    assert [v["name"] for v in resp.json()["spec"]["versions"]] == ["v2", "v4"]
    wait_for_definition(api, multi.definition_name("v4"), SCHEMA_FOO)
    wait_for_definition_cleanup(api, multi.definition_name("v3"))
    wait_for_definition(api, multi.definition_name("v2"), SCHEMA_FOO)
    cleanup_crd(api, multi)


@conformance("[sig-api-machinery] CustomResourcePublishOpenAPI [Privileged:ClusterAdmin] removes definition from spec when one version gets changed to not be served [Conformance]")
def test_crd_openapi_version_not_served(api, crds) -> None:  # type: ignore[no-untyped-def]
    crd = setup_crd(api, crds, "multi-to-single-ver", SCHEMA_FOO, "v5", "v6alpha1")
    wait_for_definition(api, crd.definition_name("v6alpha1"), SCHEMA_FOO)
    wait_for_definition(api, crd.definition_name("v5"), SCHEMA_FOO)
    ext = client.ApiextensionsV1Api(api)
    current = ext.read_custom_resource_definition(crd.crd_name)
    current.spec.versions[1].served = False
    ext.replace_custom_resource_definition(crd.crd_name, current)
    wait_for_definition_cleanup(api, crd.definition_name("v6alpha1"))
    wait_for_definition(api, crd.definition_name("v5"), SCHEMA_FOO)
    cleanup_crd(api, crd)
