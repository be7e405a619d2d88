"""CRD validation rules (`x-kubernetes-validations`): evaluation at every schema level, transition
rules, ratcheting, messages and reasons as kube-apiserver reports them, and the CRD-time checks."""

from __future__ import annotations

import copy
from typing import Any

from pykube_server.api.fields import aggregate_message
from pykube_server.registry.crd import celrules
from pykube_server.registry.crd.resource import CustomResourceStrategy, CustomStatusStrategy
from pykube_server.registry.crd.validation import validate_crd

Obj = dict[str, Any]

SCHEMA: Obj = {
    "type": "object",
    "x-kubernetes-validations": [{"rule": "self.metadata.name.startsWith('w')", "message": "name must start with w"}],
    "properties": {
        "spec": {
            "type": "object",
            "x-kubernetes-validations": [
                {"rule": "self.replicas <= self.maxReplicas", "message": "replicas must be <= maxReplicas"},
                {"rule": "!has(self.mode) || self.mode != 'Off' || self.replicas == 0",
                 "messageExpression": "'replicas must be 0 when off, not ' + string(self.replicas)",
                 "fieldPath": ".replicas", "reason": "FieldValueForbidden"},
            ],
            "properties": {
                "replicas": {"type": "integer"},
                "maxReplicas": {"type": "integer"},
                "mode": {"type": "string"},
                "owner": {"type": "string", "x-kubernetes-validations": [
                    {"rule": "self == oldSelf", "message": "owner is immutable"}]},
                "tags": {"type": "array", "items": {"type": "string", "x-kubernetes-validations": [
                    {"rule": "self.size() <= 3"}]}},
                "ports": {"type": "array", "x-kubernetes-list-type": "map", "x-kubernetes-list-map-keys": ["name"],
                          "items": {"type": "object", "properties": {
                              "name": {"type": "string"},
                              "port": {"type": "integer", "x-kubernetes-validations": [
                                  {"rule": "self >= oldSelf", "message": "ports may only grow"}]}}}},
                "limits": {"type": "object", "additionalProperties": {"type": "integer", "x-kubernetes-validations": [
                    {"rule": "self > 0", "reason": "FieldValueRequired", "message": "must be positive"}]}},
                "lookup": {"type": "object", "x-kubernetes-validations": [{"rule": "self.optional == 'x'"}],
                           "properties": {"present": {"type": "string"}, "optional": {"type": "string"}}},
            },
        },
        "status": {"type": "object", "properties": {"phase": {"type": "string", "x-kubernetes-validations": [
            {"rule": "self == oldSelf || oldSelf != 'Done'", "message": "a Done widget stays Done"}]}}},
    },
}
CRD: Obj = {"spec": {"group": "example.com", "scope": "Namespaced", "names": {"kind": "Widget", "plural": "widgets"}}}


def strategy(schema: Obj = SCHEMA) -> CustomResourceStrategy:
    version = {"name": "v1", "served": True, "storage": True, "subresources": {"status": {}},
               "schema": {"openAPIV3Schema": schema}}
    return CustomResourceStrategy(CRD, version)


def widget(**spec: Any) -> Obj:
    return {"apiVersion": "example.com/v1", "kind": "Widget", "metadata": {"name": "w", "namespace": "default"},
            "spec": {"replicas": 1, "maxReplicas": 3, **spec}}


def texts(errs: list[Any]) -> list[str]:
    return [str(e) for e in errs]


def test_object_rule_message_is_kubes() -> None:
    errs = strategy().validate(widget(replicas=5))
    assert texts(errs) == ['spec: Invalid value: "object": replicas must be <= maxReplicas']
    assert errs[0].cause() == {"reason": "FieldValueInvalid", "field": "spec",
                               "message": 'Invalid value: "object": replicas must be <= maxReplicas'}


def test_root_rule_sees_metadata_name() -> None:
    obj = widget()
    obj["metadata"]["name"] = "x"
    assert texts(strategy().validate(obj)) == ['<nil>: Invalid value: "object": name must start with w']


def test_message_expression_field_path_and_reason() -> None:
    errs = strategy().validate(widget(mode="Off", replicas=2))
    assert texts(errs) == ["spec.replicas: Forbidden: replicas must be 0 when off, not 2"]
    assert errs[0].reason == "FieldValueForbidden"


def test_rules_on_scalars_in_arrays_and_maps() -> None:
    errs = strategy().validate(widget(tags=["ok", "toolong"], limits={"cpu": 0, "mem": 2}))
    assert texts(errs) == [
        'spec.tags[1]: Invalid value: "string": failed rule: self.size() <= 3',
        "spec.limits[cpu]: Required value: must be positive",
    ]


def test_evaluation_error_names_the_rule() -> None:
    assert texts(strategy().validate(widget(lookup={"present": "x"}))) == [
        "spec.lookup: Invalid value: \"object\": no such key: optional evaluating rule: self.optional == 'x'"]


def test_transition_rules_run_only_on_update_with_an_old_value() -> None:
    s = strategy()
    assert s.validate(widget(owner="a")) == []  # create: oldSelf does not exist
    assert s.validate_update(widget(owner="a"), widget()) == []  # no old value to compare
    assert texts(s.validate_update(widget(owner="b"), widget(owner="a"))) == [
        'spec.owner: Invalid value: "string": owner is immutable']


def test_map_lists_correlate_items_by_key() -> None:
    s = strategy()
    old = widget(ports=[{"name": "http", "port": 80}, {"name": "dns", "port": 53}])
    new = widget(ports=[{"name": "dns", "port": 54}, {"name": "http", "port": 79}, {"name": "new", "port": 1}])
    assert texts(s.validate_update(new, old)) == ['spec.ports[1].port: Invalid value: "integer": ports may only grow']


def test_unchanged_values_ratchet() -> None:
    s = strategy()
    bad = widget(replicas=5)  # stored before the rule existed
    assert s.validate_update(copy.deepcopy(bad), bad) == []
    worse = widget(replicas=6)
    assert texts(s.validate_update(worse, bad)) == ['spec: Invalid value: "object": replicas must be <= maxReplicas']


def test_status_updates_see_the_old_object() -> None:
    s = strategy()
    status = CustomStatusStrategy(s)
    old = {**widget(), "status": {"phase": "Done"}}
    new = {**widget(), "status": {"phase": "Running"}}
    assert texts(status.validate_update(new, old)) == ['status.phase: Invalid value: "string": a Done widget stays Done']
    assert status.validate_update({**widget(), "status": {"phase": "Done"}}, {**widget(), "status": {"phase": "New"}}) == []


def test_schema_errors_block_the_rules() -> None:
    errs = strategy().validate(widget(replicas="many"))
    assert aggregate_message(errs) == (
        '[spec.replicas: Invalid value: "string": spec.replicas in body must be of type integer: "string", '
        "<nil>: Invalid value: null: some validation rules were not checked because the object was invalid; "
        "correct the existing errors to complete validation]")


def crd_with(rules: list[Obj]) -> Obj:
    schema = {"type": "object", "properties": {"spec": {"type": "object", "x-kubernetes-validations": rules,
                                                          "properties": {"replicas": {"type": "integer"}}}}}
    return {"apiVersion": "apiextensions.k8s.io/v1", "kind": "CustomResourceDefinition",
            "metadata": {"name": "widgets.example.com"},
            "spec": {"group": "example.com", "scope": "Namespaced",
                     "names": {"plural": "widgets", "singular": "widget", "kind": "Widget", "listKind": "WidgetList"},
                     "versions": [{"name": "v1", "served": True, "storage": True,
                                   "schema": {"openAPIV3Schema": schema}}]},
            "status": {"storedVersions": ["v1"]}}


def test_crd_refuses_rules_that_do_not_compile() -> None:
    errs = validate_crd(crd_with([{"rule": "self.replicas > foo"}]))
    assert texts(errs) == [
        "spec.validation.openAPIV3Schema.properties[spec].x-kubernetes-validations[0].rule: Invalid value: "
        "\"self.replicas > foo\": compilation failed: ERROR: <input>:1:17: undeclared reference to 'foo' "
        "(in container '')\n | self.replicas > foo\n | ................^"]


def test_crd_checks_reason_field_path_and_messages() -> None:
    base = "spec.validation.openAPIV3Schema.properties[spec].x-kubernetes-validations"
    errs = validate_crd(crd_with([
        {"rule": "true", "reason": "Bogus"},
        {"rule": "true", "fieldPath": ".nope"},
        {"rule": "self.replicas\n > 0"},
        {"rule": "true", "message": "two\nlines"},
        {"rule": "true", "optionalOldSelf": True},
    ]))
    assert texts(errs) == [
        f'{base}[0].reason: Unsupported value: "Bogus": supported values: "FieldValueDuplicate", '
        '"FieldValueForbidden", "FieldValueInvalid", "FieldValueRequired"',
        f'{base}[1].fieldPath: Invalid value: ".nope": fieldPath must be a valid path: does not refer to a valid field',
        f"{base}[2].message: Required value: message must be specified if rule contains line breaks",
        f'{base}[3].message: Invalid value: "two\\nlines": message must not contain line breaks',
        f"{base}[4].optionalOldSelf: Invalid value: true: may not be set if oldSelf is not used in rule",
    ]
    assert validate_crd(crd_with([{"rule": "self.replicas >= 0", "fieldPath": ".replicas"}])) == []


def test_has_rules_finds_nested_rules() -> None:
    assert celrules.has_rules(SCHEMA)
    assert not celrules.has_rules({"type": "object", "properties": {"a": {"type": "string"}}})


def test_crd_conversion_settings_are_checked() -> None:
    def errors_of(conversion: Obj) -> list[str]:
        crd = crd_with([{"rule": "true"}])
        crd["spec"]["conversion"] = conversion
        return texts(validate_crd(crd))

    assert errors_of({"strategy": "Webhook"}) == [
        "spec.conversion.webhookClientConfig: Required value: required when strategy is set to Webhook",
        "spec.conversion.conversionReviewVersions: Required value"]
    assert errors_of({"strategy": "Webhook", "webhook": {"clientConfig": {}, "conversionReviewVersions": ["v2"]}}) == [
        "spec.conversion.webhookClientConfig: Required value: exactly one of url or service is required",
        'spec.conversion.conversionReviewVersions: Invalid value: []string{"v2"}: must include at least one of v1, v1beta1']
    assert errors_of({"strategy": "None", "webhook": {"clientConfig": {"url": "https://x"}}}) == [
        "spec.conversion.webhookClientConfig: Forbidden: should not be set when strategy is not set to Webhook"]
    assert errors_of({"strategy": "Webhook", "webhook": {"clientConfig": {"url": "https://127.0.0.1:9443/convert"},
                                                         "conversionReviewVersions": ["v1"]}}) == []


def test_formatted_strings_are_timestamps_durations_and_numbers_doubles() -> None:
    schema = {"type": "object", "properties": {"spec": {"type": "object", "x-kubernetes-validations": [
        {"rule": "self.until > timestamp('2020-01-01T00:00:00Z')", "message": "until is too early"},
        {"rule": "self.every <= duration('1h')", "message": "every is too long"},
        {"rule": "self.ratio > 0.5", "message": "ratio too small"}],
        "properties": {"until": {"type": "string", "format": "date-time"},
                       "every": {"type": "string", "format": "duration"},
                       "ratio": {"type": "number"}}}}}
    s = strategy(schema)
    good = {**widget(), "spec": {"until": "2024-05-01T10:00:00Z", "every": "30m", "ratio": 1}}
    assert s.validate(good) == []
    bad = {**widget(), "spec": {"until": "2019-05-01T10:00:00Z", "every": "2h", "ratio": 0}}
    assert texts(s.validate(bad)) == ['spec: Invalid value: "object": until is too early',
                                      'spec: Invalid value: "object": every is too long',
                                      'spec: Invalid value: "object": ratio too small']


async def test_status_writes_run_the_status_rules_against_the_stored_object() -> None:
    import asyncio

    from aiohttp.test_utils import TestClient, TestServer

    from pykube_server.apiserver.app import Settings, make_app
    from pykube_server.storage.memory import MemoryBackend

    body = crd_with([])
    version = body["spec"]["versions"][0]
    version["subresources"] = {"status": {}}
    version["schema"]["openAPIV3Schema"]["properties"]["status"] = SCHEMA["properties"]["status"]
    del body["status"]
    path = "/apis/example.com/v1/namespaces/default/widgets"
    settings = Settings(storage_url="memory://", authenticate=False)
    async with TestClient(TestServer(await make_app(settings, backend=MemoryBackend()))) as c:
        assert (await c.post("/apis/apiextensions.k8s.io/v1/customresourcedefinitions", json=body)).status == 201
        for _ in range(200):
            if (await c.get(path)).status == 200:
                break
            await asyncio.sleep(0.02)
        created = await c.post(path, json={"apiVersion": "example.com/v1", "kind": "Widget", "metadata": {"name": "w"}})
        assert created.status == 201, await created.text()
        obj = await created.json()
        obj["status"] = {"phase": "Done"}
        done = await c.put(f"{path}/w/status", json=obj)
        assert done.status == 200, await done.text()
        again = await done.json()
        again["status"] = {"phase": "Running"}
        refused = await c.put(f"{path}/w/status", json=again)
        assert refused.status == 422
        assert (await refused.json())["message"] == (
            'Widget.example.com "w" is invalid: status.phase: Invalid value: "string": a Done widget stays Done')


def test_crd_rules_are_type_checked_against_the_schema() -> None:
    base = "spec.validation.openAPIV3Schema.properties[spec].x-kubernetes-validations"
    assert texts(validate_crd(crd_with([{"rule": "self.replicas > 'a'"}]))) == [
        f"{base}[0].rule: Invalid value: \"self.replicas > 'a'\": compilation failed: ERROR: <input>:1:15: "
        "found no matching overload for '_>_' applied to '(int, string)'\n | self.replicas > 'a'\n | ..............^"]
    assert texts(validate_crd(crd_with([{"rule": "self.replicas + 1"}]))) == [
        f'{base}[0].rule: Invalid value: "self.replicas + 1": cel expression must evaluate to a bool']
    assert validate_crd(crd_with([{"rule": "self.replicas >= 0 && has(self.replicas)"}])) == []


def test_a_crd_with_every_kind_of_rule_is_accepted_and_unknown_fields_are_not() -> None:
    crd = crd_with([])
    crd["spec"]["versions"][0]["schema"]["openAPIV3Schema"] = copy.deepcopy(SCHEMA)
    assert texts(validate_crd(crd)) == []
    assert texts(validate_crd(crd_with([{"rule": "self.replicaz > 0"}]))) == [
        "spec.validation.openAPIV3Schema.properties[spec].x-kubernetes-validations[0].rule: Invalid value: "
        "\"self.replicaz > 0\": compilation failed: ERROR: <input>:1:5: undefined field 'replicaz'\n"
        " | self.replicaz > 0\n | ....^"]
