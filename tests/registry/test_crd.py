"""CRDs without HTTP clients of their own: the CRD's validation messages, custom objects'
schema validation, pruning and defaulting, printer-column JSONPath, and serving inside an
in-process API server (discovery, conditions, the cache root, restart, deletion)."""

from __future__ import annotations

import asyncio
import copy
from typing import Any

import pytest
from aiohttp.test_utils import TestClient, TestServer

from pykube_server.apiserver.app import SERVER, Settings, make_app
from pykube_server.registry.crd import jsonpath, schema
from pykube_server.registry.crd.resource import CustomResourceStrategy, version_priority
from pykube_server.registry.crd.validation import validate_crd
from pykube_server.storage.memory import MemoryBackend

Obj = dict[str, Any]

SCHEMA: Obj = {
    "type": "object",
    "properties": {
        "spec": {"type": "object", "required": ["image"], "properties": {
            "image": {"type": "string", "minLength": 2, "maxLength": 5},
            "replicas": {"type": "integer", "minimum": 1, "exclusiveMaximum": True, "maximum": 10, "default": 1},
            "port": {"x-kubernetes-int-or-string": True},
            "when": {"type": "string", "format": "date-time"},
            "tags": {"type": "array", "maxItems": 2, "items": {"type": "string"}},
            "labels": {"type": "object", "additionalProperties": {"type": "string"}},
            "note": {"type": "string", "nullable": True},
            "level": {"type": "string", "default": "low"},
            "free": {"type": "object", "x-kubernetes-preserve-unknown-fields": True},
            "template": {"type": "object", "x-kubernetes-embedded-resource": True,
                         "x-kubernetes-preserve-unknown-fields": True},
            "nested": {"type": "object", "default": {}, "properties": {"depth": {"type": "integer", "default": 3}}},
        }},
    },
}


def messages(obj: Obj) -> list[str]:
    return [str(e) for e in schema.validate(obj, SCHEMA)]


def test_schema_messages_are_kube_openapis() -> None:
    obj = {"spec": {"image": "x", "replicas": 10, "port": True, "when": "yesterday", "tags": ["a", "b", "c"],
                    "labels": {"a": 1}, "template": {"kind": "Pod"}}}
    assert messages(obj) == [
        "spec.image: Invalid value: \"x\": spec.image in body should be at least 2 chars long",
        'spec.labels.a: Invalid value: "integer": spec.labels.a in body must be of type string: "integer"',
        'spec.port: Invalid value: "boolean": spec.port in body must be of type integer,string: "boolean"',
        "spec.replicas: Invalid value: 10: spec.replicas in body should be less than 10",
        "spec.tags: Too many: 3: must have at most 2 items",
        "spec.template.apiVersion: Required value: must not be empty",
        'spec.when: Invalid value: "yesterday": spec.when in body must be of type date-time: "yesterday"',
    ]
    assert messages({"spec": {"image": "toolong", "port": "http", "note": None}}) == [
        "spec.image: Too long: may not be longer than 5"]
    assert messages({"spec": {}}) == ["spec.image: Required value"]


def test_pruning_keeps_preserved_and_embedded_fields() -> None:
    obj = {"apiVersion": "x/v1", "kind": "K", "metadata": {"name": "n", "bogus": 1},
           "spec": {"image": "ab", "extra": 1, "free": {"any": {"thing": 1}},
                    "template": {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p", "what": 2}, "spec": {}},
                    "tags": ["a"], "labels": {"k": "v"}},
           "status": {"x": 1}}
    assert schema.unknown_fields(obj, SCHEMA) == ["metadata.bogus", "spec.extra", "spec.template.metadata.what", "status"]
    schema.prune(obj, SCHEMA)
    assert obj["spec"] == {"image": "ab", "free": {"any": {"thing": 1}},
                           "template": {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p"}, "spec": {}},
                           "tags": ["a"], "labels": {"k": "v"}}
    assert "status" not in obj and obj["metadata"] == {"name": "n"}


def test_defaulting_fills_nested_defaults_and_drops_non_nullable_nulls() -> None:
    obj: Obj = {"spec": {"image": "ab", "level": None, "note": None, "tags": None}}
    schema.apply_defaults(obj, SCHEMA)
    assert obj["spec"] == {"image": "ab", "level": "low", "note": None, "replicas": 1, "nested": {"depth": 3}}


def test_jsonpath_subset() -> None:
    obj = {"status": {"conditions": [{"type": "A", "status": "False"}, {"type": "Ready", "status": "True"}]},
           "metadata": {"labels": {"app.kubernetes.io/name": "x"}}, "spec": {"items": [{"n": 1}, {"n": 2}]}}
    assert jsonpath.first(obj, '.status.conditions[?(@.type=="Ready")].status') == (True, "True")
    assert jsonpath.first(obj, ".metadata.labels['app.kubernetes.io/name']") == (True, "x")
    assert jsonpath.find(obj, jsonpath.parse(".spec.items[*].n")) == [1, 2]
    assert jsonpath.first(obj, ".spec.items[1].n") == (True, 2)
    assert jsonpath.first(obj, ".spec.missing") == (False, None)
    with pytest.raises(jsonpath.JSONPathError):
        jsonpath.parse("spec..x(")


def crd(group: str = "stable.example.com", plural: str = "crontabs", kind: str = "CronTab", **extra: Any) -> Obj:
    version = {"name": "v1", "served": True, "storage": True,
               "subresources": {"status": {}, "scale": {"specReplicasPath": ".spec.replicas",
                                                          "statusReplicasPath": ".status.replicas",
                                                          "labelSelectorPath": ".status.selector"}},
               "additionalPrinterColumns": [{"name": "Image", "type": "string", "jsonPath": ".spec.image"}],
               "selectableFields": [{"jsonPath": ".spec.image"}],
               "schema": {"openAPIV3Schema": copy.deepcopy(SCHEMA)}}
    version.update(extra)
    return {"apiVersion": "apiextensions.k8s.io/v1", "kind": "CustomResourceDefinition",
            "metadata": {"name": f"{plural}.{group}"},
            "spec": {"group": group, "scope": "Namespaced", "conversion": {"strategy": "None"},
                     "names": {"plural": plural, "singular": kind.lower(), "kind": kind, "listKind": kind + "List",
                               "shortNames": ["ct"]},
                     "versions": [version]},
            "status": {"storedVersions": ["v1"]}}


def test_crd_validation_messages() -> None:
    assert validate_crd(crd()) == []
    bad = crd(group="nodot", plural="CronTabs")
    bad["spec"]["versions"][0]["schema"]["openAPIV3Schema"]["properties"]["spec"].pop("type")
    bad["spec"]["versions"][0]["storage"] = False
    bad["spec"]["versions"][0]["additionalPrinterColumns"] = [{"name": "X", "type": "text", "jsonPath": ".spec.x"}]
    bad["spec"]["scope"] = "Global"
    texts = [str(e) for e in validate_crd(bad)]
    assert texts[0].startswith('metadata.name: Invalid value: "CronTabs.nodot": a lowercase RFC 1123 subdomain')
    assert 'spec.group: Invalid value: "nodot": should be a domain with at least one dot' in texts
    assert 'spec.scope: Unsupported value: "Global": supported values: "Cluster", "Namespaced"' in texts
    assert any(t.startswith("spec.versions: Invalid value: ") and t.endswith(
        "must have exactly one version marked as storage version") for t in texts)
    assert 'spec.names.plural: Invalid value: "CronTabs": a DNS-1035 label must consist of lower case alphanumeric ' \
           "characters or '-', start with an alphabetic character, and end with an alphanumeric character " \
           "(e.g. 'my-name',  or 'abc-123', regex used for validation is '[a-z]([-a-z0-9]*[a-z0-9])?')" in texts
    assert "spec.validation.openAPIV3Schema.properties[spec].type: Required value: must not be empty for specified " \
           "object fields" in texts
    assert 'spec.additionalPrinterColumns[0].type: Invalid value: "text": must be one of ' \
           "boolean,date,integer,number,string" in texts


def test_crd_validation_of_defaults_and_structure() -> None:
    bad = crd()
    props = bad["spec"]["versions"][0]["schema"]["openAPIV3Schema"]["properties"]
    props["spec"]["properties"]["replicas"]["default"] = "one"
    props["spec"]["properties"]["image"]["anyOf"] = [{"type": "string"}]
    assert [str(e) for e in validate_crd(bad)] == [
        "spec.validation.openAPIV3Schema.properties[spec].properties[image].anyOf[0].type: Forbidden: must be empty "
        "to be structural"]
    props["spec"]["properties"]["image"].pop("anyOf")
    assert [str(e) for e in validate_crd(bad)] == [
        'spec.validation.openAPIV3Schema.properties[spec].properties[replicas].default: Invalid value: "string": '
        ' in body must be of type integer: "string"']  # kube's double space: the value has no name


def test_custom_strategy_table_scale_and_selectable_fields() -> None:
    strategy = CustomResourceStrategy(crd(), crd()["spec"]["versions"][0])
    obj = {"apiVersion": "stable.example.com/v1", "kind": "CronTab",
           "metadata": {"name": "a", "namespace": "n", "creationTimestamp": "2024-01-01T00:00:00Z"},
           "spec": {"image": "ab", "replicas": 2}, "status": {"replicas": 1, "selector": "app=a"}}
    assert [c.name for c in strategy.columns] == ["Name", "Image"]
    assert strategy.columns[1].value(obj, 0.0) == "ab"
    assert strategy.selectable_fields(obj) == {"spec.image": "ab"}
    scale = strategy.scale_of(obj)
    assert scale["spec"] == {"replicas": 2} and scale["status"] == {"replicas": 1, "selector": "app=a"}
    strategy.set_replicas(obj, 5)
    assert obj["spec"]["replicas"] == 5
    assert sorted(["v1beta1", "v2", "v1", "v1alpha1", "foo"], key=version_priority) == \
        ["v2", "v1", "v1beta1", "v1alpha1", "foo"]


async def wait_for(check: Any, timeout: float = 10.0) -> Any:
    deadline = asyncio.get_running_loop().time() + timeout
    while True:
        result = await check()
        if result:
            return result
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError("timed out")
        await asyncio.sleep(0.05)


async def test_serving_lifecycle_and_restart() -> None:
    backend = MemoryBackend()
    settings = Settings(storage_url="memory://", authenticate=False)
    crds = "/apis/apiextensions.k8s.io/v1/customresourcedefinitions"
    body = crd()
    body.pop("status")
    async with TestClient(TestServer(await make_app(settings, backend=backend))) as c:
        assert (await c.post(crds, json=body)).status == 201

        async def established() -> bool:
            got = await (await c.get(f"{crds}/crontabs.stable.example.com")).json()
            return any(x["type"] == "Established" and x["status"] == "True" for x in got["status"].get("conditions", []))

        await wait_for(established)
        path = "/apis/stable.example.com/v1/namespaces/default/crontabs"
        created = await c.post(path, json={"apiVersion": "stable.example.com/v1", "kind": "CronTab",
                                           "metadata": {"name": "a"}, "spec": {"image": "ab"}})
        assert created.status == 201, await created.text()
        listed = await (await c.get(path + "?fieldSelector=spec.image%3Dab")).json()
        assert [i["metadata"]["name"] for i in listed["items"]] == ["a"]
        strategic = await c.patch(path + "/a", data=b"{}", headers={"Content-Type": "application/strategic-merge-patch+json"})
        assert strategic.status == 415
        assert (await strategic.json())["message"] == (
            "the body of the request was in an unknown format - accepted media types include: "
            "application/json-patch+json, application/merge-patch+json, application/apply-patch+yaml")
        groups = await (await c.get("/apis", headers={"Accept": "application/json;g=apidiscovery.k8s.io;v=v2;as=APIGroupDiscoveryList"})).json()
        # CRD groups (group priority 1000) come after the built-in ones, before metrics-server's (100)
        assert [i["metadata"]["name"] for i in groups["items"]][-2:] == ["stable.example.com", "metrics.k8s.io"]
        # a second CRD claiming the same short name is not established
        other = crd(plural="crontabz", kind="CronTaz")
        other.pop("status")
        assert (await c.post(crds, json=other)).status == 201

        async def refused() -> Obj | None:
            got = await (await c.get(f"{crds}/crontabz.stable.example.com")).json()
            conds = {x["type"]: x for x in got["status"].get("conditions", [])}
            return conds if "Established" in conds else None

        conds = await wait_for(refused)
        assert conds["NamesAccepted"]["status"] == "False" and conds["NamesAccepted"]["reason"] == "ShortNamesConflict"
        assert conds["NamesAccepted"]["message"] == '"ct" is already in use'
        assert conds["Established"]["reason"] == "NotAccepted"

    # a restarted server serves the stored CRD and its objects before it is ready
    async with TestClient(TestServer(await make_app(settings, backend=backend))) as c:
        got = await c.get("/apis/stable.example.com/v1/namespaces/default/crontabs/a")
        assert got.status == 200 and (await got.json())["spec"]["replicas"] == 1
        deleted = await c.delete(f"{crds}/crontabs.stable.example.com")
        marked = await deleted.json()
        assert deleted.status == 200 and marked["metadata"]["finalizers"] == ["customresourcecleanup.apiextensions.k8s.io"]

        async def gone() -> bool:
            return (await c.get(f"{crds}/crontabs.stable.example.com")).status == 404

        await wait_for(gone)
        assert (await c.get("/apis/stable.example.com/v1/namespaces/default/crontabs")).status == 404
        server = c.server.app[SERVER]
        assert "/registry/stable.example.com/crontabs" not in server.cacher.resources
        assert [kv.key async for kv in _keys(backend, "/registry/stable.example.com/")] == []


async def _keys(backend: MemoryBackend, prefix: str) -> Any:
    page = await backend.scan(prefix)
    for kv in page.items:
        yield kv
