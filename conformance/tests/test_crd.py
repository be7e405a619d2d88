"""test/e2e/apimachinery/{custom_resource_definition,crd_watch,field_validation,aggregated_discovery}.go:
the CRD parts that need no webhook."""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import pytest
from kubernetes import client, watch

from conformance.harness import conformance, expect_status, raw, wait_for

GROUP = "mygroup.example.com"

PORTS_SCHEMA = {"type": "array", "x-kubernetes-list-map-keys": ["containerPort", "protocol"],
                "x-kubernetes-list-type": "map",
                "items": {"type": "object", "required": ["containerPort", "protocol"],
                          "properties": {"containerPort": {"type": "integer", "format": "int32"},
                                         "hostIP": {"type": "string"},
                                         "hostPort": {"type": "integer", "format": "int32"},
                                         "name": {"type": "string"}, "protocol": {"type": "string"}}}}
CRON = {"type": "string", "pattern": r"^(\d+|\*)(/\d+)?(\s+(\d+|\*)(/\d+)?){4}$"}


def crd_body(schema: dict | None = None, scope: str = "Cluster", versions: tuple[str, ...] = ("v1beta1", "v1"),
             subresources: dict | None = None, group: str = GROUP) -> dict:
    suffix = uuid.uuid4().hex[:6]
    plural = f"noxus{suffix}"
    schema = schema or {"type": "object", "x-kubernetes-preserve-unknown-fields": True}
    return {"apiVersion": "apiextensions.k8s.io/v1", "kind": "CustomResourceDefinition",
            "metadata": {"name": f"{plural}.{group}"},
            "spec": {"group": group, "scope": scope,
                     "names": {"plural": plural, "singular": f"noxu{suffix}", "kind": f"WishIHadChosenNoxu{suffix}",
                               "listKind": f"WishIHadChosenNoxu{suffix}List"},
                     "versions": [{"name": v, "served": True, "storage": i == 0,
                                   "schema": {"openAPIV3Schema": schema},
                                   **({"subresources": subresources} if subresources else {})}
                                  for i, v in enumerate(versions)]}}


def create_crd(api, body: dict) -> dict:  # type: ignore[no-untyped-def]
    ext = client.ApiextensionsV1Api(api)
    ext.create_custom_resource_definition(body)
    name = body["metadata"]["name"]

    def established() -> bool:
        crd = ext.read_custom_resource_definition(name)
        return any(c.type == "Established" and c.status == "True" for c in (crd.status.conditions or []))

    wait_for(established, timeout=30, what=f"CRD {name} Established")
    version = body["spec"]["versions"][0]["name"]
    wait_for(lambda: raw(api, "GET", f"/apis/{body['spec']['group']}/{version}").status == 200, timeout=30,
             what="CRD group version served")
    return body


def delete_crd(api, body: dict) -> None:  # type: ignore[no-untyped-def]
    raw(api, "DELETE", f"/apis/apiextensions.k8s.io/v1/customresourcedefinitions/{body['metadata']['name']}")


@pytest.fixture
def crd_cleanup(api) -> Iterator[list[dict]]:  # type: ignore[no-untyped-def]
    made: list[dict] = []
    yield made
    for body in made:
        delete_crd(api, body)


def apply_cr(api, crd: dict, yaml_body: str, name: str = "mytest"):  # type: ignore[no-untyped-def]
    spec = crd["spec"]
    return raw(api, "PATCH", f"/apis/{spec['group']}/{spec['versions'][0]['name']}/{spec['names']['plural']}/{name}",
               body=yaml_body, headers={"Content-Type": "application/apply-patch+yaml"},
               query={"fieldManager": "field_validation_mgr", "fieldValidation": "Strict"})


# --- CustomResourceDefinition resources ---------------------------------------------------------

@conformance("[sig-api-machinery] CustomResourceDefinition resources [Privileged:ClusterAdmin] Simple CustomResourceDefinition creating/deleting custom resource definition objects works [Conformance]")
def test_crd_create_delete(api) -> None:  # type: ignore[no-untyped-def]
    body = create_crd(api, crd_body())
    r = raw(api, "DELETE", f"/apis/apiextensions.k8s.io/v1/customresourcedefinitions/{body['metadata']['name']}")
    assert r.status in (200, 202), r.text
    ext = client.ApiextensionsV1Api(api)
    wait_for(lambda: expect_status(404, ext.read_custom_resource_definition, body["metadata"]["name"]), timeout=30,
             what="CRD gone")


@conformance("[sig-api-machinery] CustomResourceDefinition resources [Privileged:ClusterAdmin] Simple CustomResourceDefinition listing custom resource definition objects works [Conformance]")
def test_crd_list_and_delete_collection(api, crd_cleanup) -> None:  # type: ignore[no-untyped-def]
    ext = client.ApiextensionsV1Api(api)
    label = f"e2e-list-test-{uuid.uuid4().hex[:6]}"
    bodies = []
    for _ in range(3):
        body = crd_body()
        body["metadata"]["labels"] = {label: "true"}
        crd_cleanup.append(create_crd(api, body))
        bodies.append(body)
    listed = ext.list_custom_resource_definition(label_selector=f"{label}=true")
    assert sorted(c.metadata.name for c in listed.items) == sorted(b["metadata"]["name"] for b in bodies)
    r = raw(api, "DELETE", "/apis/apiextensions.k8s.io/v1/customresourcedefinitions", query={"labelSelector": f"{label}=true"})
    assert r.status == 200, r.text
    wait_for(lambda: ext.list_custom_resource_definition(label_selector=f"{label}=true").items == [], timeout=30,
             what="CRDs deleted")


@conformance("[sig-api-machinery] CustomResourceDefinition resources [Privileged:ClusterAdmin] Simple CustomResourceDefinition getting/updating/patching custom resource definition status sub-resource works [Conformance]")
def test_crd_status_subresource(api, crd_cleanup) -> None:  # type: ignore[no-untyped-def]
    ext = client.ApiextensionsV1Api(api)
    body = create_crd(api, crd_body())
    crd_cleanup.append(body)
    name = body["metadata"]["name"]
    status = ext.read_custom_resource_definition_status(name)
    assert status.status.accepted_names.plural == body["spec"]["names"]["plural"]
    status.status.conditions = (status.status.conditions or []) + [
        client.V1CustomResourceDefinitionCondition(type="StatusUpdate", status="True", reason="E2E",
                                                   message="Set from e2e test")]
    updated = ext.replace_custom_resource_definition_status(name, status)
    assert any(c.type == "StatusUpdate" and c.message == "Set from e2e test" for c in updated.status.conditions)
    patched = ext.patch_custom_resource_definition_status(
        name, [{"op": "add", "path": "/status/conditions/-",
                "value": {"type": "StatusPatched", "status": "True", "reason": "E2E", "message": "Set from e2e test"}}],
        _content_type="application/json-patch+json")
    assert any(c.type == "StatusPatched" for c in patched.status.conditions)


@conformance("[sig-api-machinery] CustomResourceDefinition resources [Privileged:ClusterAdmin] should include custom resource definition resources in discovery documents [Conformance]")
def test_crd_in_discovery(api) -> None:  # type: ignore[no-untyped-def]
    groups = raw(api, "GET", "/apis").json()["groups"]
    ext = [g for g in groups if g["name"] == "apiextensions.k8s.io"]
    assert ext and ext[0]["preferredVersion"]["version"] == "v1"
    assert "apiextensions.k8s.io/v1" in [v["groupVersion"] for v in ext[0]["versions"]]
    group_doc = raw(api, "GET", "/apis/apiextensions.k8s.io").json()
    assert group_doc["preferredVersion"]["version"] == "v1"
    resources = raw(api, "GET", "/apis/apiextensions.k8s.io/v1").json()["resources"]
    assert "customresourcedefinitions" in [r["name"] for r in resources]


@conformance("[sig-api-machinery] CustomResourceDefinition resources [Privileged:ClusterAdmin] custom resource defaulting for requests and from storage works [Conformance]")
def test_crd_defaulting(api, crd_cleanup) -> None:  # type: ignore[no-untyped-def]
    schema = {"type": "object", "properties": {"a": {"type": "string", "default": "A"}}}
    body = crd_body(schema=schema, versions=("v1",))
    crd_cleanup.append(create_crd(api, body))
    spec = body["spec"]
    co = client.CustomObjectsApi(api)
    created = co.create_cluster_custom_object(GROUP, "v1", spec["names"]["plural"],
                                              {"apiVersion": f"{GROUP}/v1", "kind": spec["names"]["kind"],
                                               "metadata": {"name": "foo"}})
    assert created.get("a") == "A"  # defaulted on the request
    # a new default appears on objects already in storage when they are read
    ext = client.ApiextensionsV1Api(api)
    ext.patch_custom_resource_definition(body["metadata"]["name"], [
        {"op": "add", "path": "/spec/versions/0/schema/openAPIV3Schema/properties/b",
         "value": {"type": "string", "default": "B"}}], _content_type="application/json-patch+json")
    wait_for(lambda: co.get_cluster_custom_object(GROUP, "v1", spec["names"]["plural"], "foo").get("b") == "B",
             timeout=30, what="default b applied when reading from storage")
    listed = co.list_cluster_custom_object(GROUP, "v1", spec["names"]["plural"])
    assert all(item.get("b") == "B" for item in listed["items"])


@conformance("[sig-api-machinery] CustomResourceDefinition Watch [Privileged:ClusterAdmin] CustomResourceDefinition Watch watch on custom resource definition objects [Conformance]")
def test_crd_watch(api, crd_cleanup) -> None:  # type: ignore[no-untyped-def]
    body = crd_body(versions=("v1beta1",))
    crd_cleanup.append(create_crd(api, body))
    spec = body["spec"]
    co = client.CustomObjectsApi(api)
    plural, kind = spec["names"]["plural"], spec["names"]["kind"]
    start = co.list_cluster_custom_object(GROUP, "v1beta1", plural)["metadata"]["resourceVersion"]
    for name in ("name1", "name2"):
        co.create_cluster_custom_object(GROUP, "v1beta1", plural, {"apiVersion": f"{GROUP}/v1beta1", "kind": kind,
                                                                   "metadata": {"name": name}, "content": {"key": "value"}})
    co.patch_cluster_custom_object(GROUP, "v1beta1", plural, "name1", {"dummy": "test"})
    co.patch_cluster_custom_object(GROUP, "v1beta1", plural, "name2", {"dummy": "test"})
    raw(api, "DELETE", f"/apis/{GROUP}/v1beta1/{plural}/name1")
    raw(api, "DELETE", f"/apis/{GROUP}/v1beta1/{plural}/name2")
    w = watch.Watch()
    events = []
    for event in w.stream(co.list_cluster_custom_object, GROUP, "v1beta1", plural, resource_version=start,
                          timeout_seconds=10):
        obj = event["object"] if isinstance(event["object"], dict) else event["raw_object"]
        events.append((event["type"], obj["metadata"]["name"]))
        if len(events) == 6:
            w.stop()
            break
    assert events == [("ADDED", "name1"), ("ADDED", "name2"), ("MODIFIED", "name1"), ("MODIFIED", "name2"),
                      ("DELETED", "name1"), ("DELETED", "name2")]


# --- field validation for custom resources ------------------------------------------------------

def _validated_crd(preserve: bool = False, embedded: bool = False) -> dict:
    spec_schema: dict = {"type": "object", "properties": {"foo": {"type": "string"}, "cronSpec": CRON, "ports": PORTS_SCHEMA}}
    if preserve:
        spec_schema["x-kubernetes-preserve-unknown-fields"] = True
    if embedded:
        spec_schema["properties"]["template"] = {
            "type": "object", "x-kubernetes-embedded-resource": True,
            "properties": {"metadata": {"type": "object", "properties": {"name": {"type": "string"}}},
                           "spec": {"type": "object"}}}
    return crd_body(schema={"type": "object", "properties": {"spec": spec_schema}})


def _cr_yaml(crd: dict, spec: str, meta_extra: str = "", top_extra: str = "") -> str:
    s = crd["spec"]
    return (f"apiVersion: {s['group']}/{s['versions'][0]['name']}\nkind: {s['names']['kind']}\n"
            f"metadata:\n  name: mytest\n{meta_extra}{top_extra}spec:\n{spec}")


PORTS_YAML = '  cronSpec: "* * * * */5"\n  ports:\n  - name: x\n    containerPort: 80\n    protocol: TCP\n'


@conformance("[sig-api-machinery] FieldValidation should create/apply a valid CR for CRD with validation schema [Conformance]")
def test_field_validation_valid_cr(api, crd_cleanup) -> None:  # type: ignore[no-untyped-def]
    crd = create_crd(api, _validated_crd())
    crd_cleanup.append(crd)
    r = apply_cr(api, crd, _cr_yaml(crd, "  foo: foo1\n" + PORTS_YAML))
    assert r.status in (200, 201), r.text


@conformance("[sig-api-machinery] FieldValidation should create/apply a CR with unknown fields for CRD with no validation schema [Conformance]")
def test_field_validation_no_schema(api, crd_cleanup) -> None:  # type: ignore[no-untyped-def]
    crd = create_crd(api, crd_body())
    crd_cleanup.append(crd)
    r = apply_cr(api, crd, _cr_yaml(crd, "  unknown: uk1\n" + PORTS_YAML))
    assert r.status in (200, 201), r.text


@conformance("[sig-api-machinery] FieldValidation should create/apply an invalid CR with extra properties for CRD with validation schema [Conformance]")
def test_field_validation_extra_properties(api, crd_cleanup) -> None:  # type: ignore[no-untyped-def]
    crd = create_crd(api, _validated_crd())
    crd_cleanup.append(crd)
    r = apply_cr(api, crd, _cr_yaml(crd, "  foo: foo1\n" + PORTS_YAML, top_extra="unknownField: unknown\n"))
    assert r.status >= 400 and ".unknownField: field not declared in schema" in r.text, r.text


@conformance("[sig-api-machinery] FieldValidation should detect unknown metadata fields in both the root and embedded object of a CR [Conformance]")
def test_field_validation_cr_metadata(api, ns, crd_cleanup) -> None:  # type: ignore[no-untyped-def]
    crd = create_crd(api, _validated_crd(preserve=True, embedded=True))
    crd_cleanup.append(crd)
    spec = ("  template:\n    apiversion: foo/v1\n    kind: Sub\n    metadata:\n        unknownSubMeta: unknown\n"
            f"        name: subobject\n        namespace: {ns}\n  foo: foo1\n" + PORTS_YAML)
    r = apply_cr(api, crd, _cr_yaml(crd, spec, meta_extra="  unknownMeta: unknown\n"))
    assert r.status >= 400, r.text
    assert (".spec.template.metadata.unknownSubMeta: field not declared in schema" in r.text
            or ".metadata.unknownMeta: field not declared in schema" in r.text), r.text


@conformance("[sig-api-machinery] FieldValidation should detect duplicates in a CR when preserving unknown fields [Conformance]")
def test_field_validation_cr_duplicates(api, crd_cleanup) -> None:  # type: ignore[no-untyped-def]
    crd = create_crd(api, _validated_crd(preserve=True))
    crd_cleanup.append(crd)
    # upstream's YAML starts with an empty line, so the repeated `foo` is on line 9
    r = apply_cr(api, crd, "\n" + _cr_yaml(crd, "  unknown: uk1\n  foo: foo1\n  foo: foo2\n" + PORTS_YAML))
    assert r.status >= 400 and 'line 9: key \\"foo\\" already set in map' in r.text, r.text


# --- aggregated discovery with CRDs -------------------------------------------------------------

AGG_V2 = "application/json;g=apidiscovery.k8s.io;v=v2;as=APIGroupDiscoveryList"


def _agg_has(api, group: str, version: str, plural: str) -> bool:  # type: ignore[no-untyped-def]
    doc = raw(api, "GET", "/apis", headers={"Accept": AGG_V2}).json()
    return any(g["metadata"]["name"] == group and v["version"] == version and r["resource"] == plural
               for g in doc["items"] for v in g["versions"] for r in v["resources"])


@conformance("[sig-api-machinery] AggregatedDiscovery should support raw aggregated discovery request for CRDs [Conformance]")
def test_aggregated_discovery_raw_crd(api, crd_cleanup) -> None:  # type: ignore[no-untyped-def]
    body = crd_body(scope="Namespaced", versions=("v1",), group=f"e2e-{uuid.uuid4().hex[:5]}.example.com")
    crd_cleanup.append(create_crd(api, body))
    spec = body["spec"]
    wait_for(lambda: _agg_has(api, spec["group"], "v1", spec["names"]["plural"]), timeout=30,
             what="CRD in aggregated discovery")
    doc = raw(api, "GET", "/apis", headers={"Accept": AGG_V2})
    assert "v=v2" in doc.headers["Content-Type"]


@conformance("[sig-api-machinery] AggregatedDiscovery should support aggregated discovery interface for CRDs [Conformance]")
def test_aggregated_discovery_interface_crd(api, crd_cleanup) -> None:  # type: ignore[no-untyped-def]
    body = crd_body(scope="Namespaced", versions=("v1",), group=f"e2e-{uuid.uuid4().hex[:5]}.example.com")
    crd_cleanup.append(create_crd(api, body))
    spec = body["spec"]
    wait_for(lambda: _agg_has(api, spec["group"], "v1", spec["names"]["plural"]), timeout=30,
             what="CRD in aggregated discovery")
    doc = raw(api, "GET", "/apis", headers={"Accept": AGG_V2}).json()
    entry = [r for g in doc["items"] if g["metadata"]["name"] == spec["group"] for v in g["versions"]
             for r in v["resources"] if r["resource"] == spec["names"]["plural"]][0]
    assert entry["scope"] == "Namespaced" and entry["responseKind"]["kind"] == spec["names"]["kind"]
    delete_crd(api, body)
    crd_cleanup.clear()
    wait_for(lambda: not _agg_has(api, spec["group"], "v1", spec["names"]["plural"]), timeout=30,
             what="CRD removed from aggregated discovery")
