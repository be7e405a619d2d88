"""managedFields and server-side apply, unit level (no server).

Facts checked against kube-apiserver 1.33 / structured-merge-diff v4 behaviour: FieldsV1 puts
`.` first where a node is itself owned; a created map or list item is owned as a whole while a
Go value struct (`spec`, `template`) is not; list items are keyed by `x-kubernetes-list-map-keys`
(with `protocol` defaulted to TCP) or by value for sets; conflicts only arise where the applied
value differs; the default manager is the User-Agent's first path segment.
"""

from __future__ import annotations

import copy

import pytest

from pykube_server.api import errors
from pykube_server.registry.managedfields import Kind, apply, decode, manager_from_user_agent, update_managed_fields
from pykube_server.registry.managedfields import fieldpath as fp
from pykube_server.registry.managedfields import typed

DEPLOY = Kind("apps/v1", "Deployment", "io.k8s.api.apps.v1.Deployment", has_status=True)
CM = Kind("v1", "ConfigMap", "io.k8s.api.core.v1.ConfigMap")
POD = Kind("v1", "Pod", "io.k8s.api.core.v1.Pod", has_status=True)


def deployment(replicas: int = 1, image: str = "nginx") -> dict:
    return {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "web", "labels": {"app": "web"}},
            "spec": {"replicas": replicas, "selector": {"matchLabels": {"app": "web"}},
                     "template": {"metadata": {"labels": {"app": "web"}},
                                  "spec": {"containers": [{"name": "web", "image": image, "args": ["a", "b"],
                                                           "ports": [{"containerPort": 80}]}]}}}}


def cm(data: dict, **meta: object) -> dict:
    return {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "c", **meta}, "data": data}


def fields_of(obj: dict, manager: str, operation: str | None = None) -> dict:
    found = [e for e in obj["metadata"]["managedFields"] if e["manager"] == manager
             and (operation is None or e["operation"] == operation)]
    assert len(found) == 1, obj["metadata"].get("managedFields")
    return found[0]["fieldsV1"]


def created(kind: Kind, obj: dict, manager: str) -> dict:
    return update_managed_fields(None, copy.deepcopy(obj), manager, time="2025-01-01T00:00:00Z", kind=kind)


# -- user agent ----------------------------------------------------------------------------------
@pytest.mark.parametrize(("agent", "manager"), [
    ("kubectl/v1.33.1 (linux/amd64) kubernetes/8adc0f0", "kubectl"),
    ("OpenAPI-Generator/33.1.0/python", "OpenAPI-Generator"),
    ("Go-http-client/2.0", "Go-http-client"),
    ("kube-controller-manager/v1.33.1 (linux/amd64) kubernetes/8adc0f0/system:serviceaccount:x", "kube-controller-manager"),
    ("a\tb\x00c/1", "abc"),
    ("", ""),
])
def test_manager_from_user_agent(agent: str, manager: str) -> None:
    assert manager_from_user_agent(agent) == manager


def test_manager_from_user_agent_is_cut_to_128_bytes() -> None:
    assert manager_from_user_agent("x" * 300) == "x" * 128
    assert manager_from_user_agent("é" * 100) == "é" * 64


# -- FieldsV1 ------------------------------------------------------------------------------------
def test_fields_v1_round_trip_and_order() -> None:
    paths = {(fp.field("data"),), (fp.field("data"), fp.field("b")), (fp.field("data"), fp.field("a")),
             (fp.field("spec"), fp.field("ports"), fp.key({"port": 80, "protocol": "TCP"})),
             (fp.field("spec"), fp.field("finalizers"), fp.value("x"))}
    wire = fp.to_fields_v1(paths)
    assert list(wire["f:data"]) == [".", "f:a", "f:b"]
    assert wire["f:spec"]["f:ports"] == {'k:{"port":80,"protocol":"TCP"}': {}}
    assert wire["f:spec"]["f:finalizers"] == {'v:"x"': {}}
    assert fp.from_fields_v1(wire) == paths


def test_path_strings_as_kube_prints_them() -> None:
    path = (fp.field("spec"), fp.field("containers"), fp.key({"name": "web"}), fp.field("image"))
    assert fp.path_string(path) == '.spec.containers[name="web"].image'
    assert fp.path_string((fp.field("f"), fp.value("x"))) == '.f[="x"]'
    assert fp.path_string((fp.field("l"), fp.index(0))) == ".l[0]"


# -- field sets ----------------------------------------------------------------------------------
def test_field_set_keys_list_maps_and_keeps_atomic_selector_whole() -> None:
    paths = typed.field_set(deployment(), DEPLOY.schema)
    container = (fp.field("spec"), fp.field("template"), fp.field("spec"), fp.field("containers"), fp.key({"name": "web"}))
    assert container in paths
    assert container + (fp.field("args"),) in paths  # atomic list: one leaf
    assert container + (fp.field("args"), fp.index(0)) not in paths
    assert container + (fp.field("ports"), fp.key({"containerPort": 80, "protocol": "TCP"})) in paths
    assert (fp.field("spec"), fp.field("selector")) in paths
    assert not any(p[:2] == (fp.field("spec"), fp.field("selector")) and len(p) > 2 for p in paths)


def test_finalizers_are_a_set_and_owner_references_keyed_by_uid() -> None:
    obj = cm({}, finalizers=["a/b"], ownerReferences=[{"uid": "u1", "name": "o", "kind": "K", "apiVersion": "v1"}])
    wire = fp.to_fields_v1(typed.field_set(obj, CM.schema))
    assert wire["f:metadata"]["f:finalizers"] == {'v:"a/b"': {}}
    assert 'k:{"uid":"u1"}' in wire["f:metadata"]["f:ownerReferences"]


# -- Update --------------------------------------------------------------------------------------
def test_create_entry_owns_new_maps_but_not_value_structs() -> None:
    obj = created(DEPLOY, deployment(), "kubectl-create")
    [entry] = obj["metadata"]["managedFields"]
    assert (entry["manager"], entry["operation"], entry["apiVersion"], entry["time"]) == (
        "kubectl-create", "Update", "apps/v1", "2025-01-01T00:00:00Z")
    wire = entry["fieldsV1"]
    assert wire["f:metadata"] == {"f:labels": {".": {}, "f:app": {}}}
    assert "." not in wire["f:spec"] and "." not in wire["f:spec"]["f:template"]
    assert "." not in wire["f:spec"]["f:template"]["f:spec"]["f:containers"]
    web = wire["f:spec"]["f:template"]["f:spec"]["f:containers"]['k:{"name":"web"}']
    assert web["f:ports"]["."] == {} and web["f:args"] == {}
    assert list(entry) == ["manager", "operation", "apiVersion", "time", "fieldsType", "fieldsV1"]


def test_update_takes_changed_fields_from_other_managers() -> None:
    old = created(CM, cm({"a": "1", "b": "2"}), "creator")
    new = copy.deepcopy(old)
    new["data"] = {"a": "9", "b": "2", "c": "3"}
    update_managed_fields(old, new, "editor", time="T2", kind=CM)
    assert fields_of(new, "creator") == {"f:data": {".": {}, "f:b": {}}}
    assert fields_of(new, "editor") == {"f:data": {"f:a": {}, "f:c": {}}}
    again = copy.deepcopy(new)
    del again["data"]["b"]
    update_managed_fields(new, again, "third", time="T3", kind=CM)
    assert fields_of(again, "creator") == {"f:data": {}}
    assert all(e["manager"] != "third" for e in again["metadata"]["managedFields"])  # removing owns nothing


def test_a_write_that_changes_nothing_keeps_entries_and_times() -> None:
    old = created(CM, cm({"a": "1"}), "creator")
    new = copy.deepcopy(old)
    update_managed_fields(old, new, "someone-else", time="LATER", kind=CM)
    assert new["metadata"]["managedFields"] == old["metadata"]["managedFields"]


def test_status_and_scale_writes_are_marked_and_status_is_not_owned_on_the_main_resource() -> None:
    old = created(DEPLOY, deployment(), "kubectl-create")
    new = copy.deepcopy(old)
    new["status"] = {"replicas": 1}
    update_managed_fields(old, new, "kube-controller-manager", subresource="status", time="T", kind=DEPLOY)
    entry = [e for e in new["metadata"]["managedFields"] if e["manager"] == "kube-controller-manager"][0]
    assert entry["subresource"] == "status" and entry["fieldsV1"] == {"f:status": {".": {}, "f:replicas": {}}}
    main = copy.deepcopy(new)
    main["status"] = {"replicas": 5}
    update_managed_fields(new, main, "x", time="T", kind=DEPLOY)
    assert all(e["manager"] != "x" for e in main["metadata"]["managedFields"])


def test_untracked_objects_stay_untracked_and_empty_entry_resets() -> None:
    old = cm({"a": "1"})
    new = cm({"a": "2"})
    assert "managedFields" not in update_managed_fields(old, new, "m", time="T", kind=CM)["metadata"]
    tracked = created(CM, cm({"a": "1"}), "creator")
    reset = copy.deepcopy(tracked)
    reset["metadata"]["managedFields"] = [{}]
    reset["data"]["a"] = "2"
    update_managed_fields(tracked, reset, "m", time="T", kind=CM)
    assert "managedFields" not in reset["metadata"]  # `[{}]` clears them, and then nothing is tracked


# -- Apply ---------------------------------------------------------------------------------------
def test_apply_creates_owning_exactly_the_manifest() -> None:
    obj = apply(None, cm({"a": "1"}), "m", False, kind=CM, time="T")
    assert obj["data"] == {"a": "1"}
    assert obj["metadata"]["managedFields"] == [{"manager": "m", "operation": "Apply", "apiVersion": "v1", "time": "T",
                                                 "fieldsType": "FieldsV1", "fieldsV1": {"f:data": {"f:a": {}}}}]


def test_apply_merges_keyed_lists_and_replaces_atomic_ones() -> None:
    live = created(DEPLOY, deployment(), "creator")
    live["spec"]["template"]["spec"]["containers"].append({"name": "side", "image": "busybox"})
    manifest = deployment(image="nginx:2")
    manifest["spec"]["template"]["spec"]["containers"][0]["args"] = ["c"]
    out = apply(live, manifest, "applier", True, kind=DEPLOY, time="T")
    containers = out["spec"]["template"]["spec"]["containers"]
    assert [c["name"] for c in containers] == ["web", "side"]
    assert containers[0]["image"] == "nginx:2" and containers[0]["args"] == ["c"]


def test_apply_removes_what_it_stopped_applying_unless_someone_else_owns_it() -> None:
    first = apply(None, cm({"a": "1", "b": "2", "c": "3"}, labels={"x": "1"}), "m", False, kind=CM, time="T")
    other = copy.deepcopy(first)
    other["data"]["c"] = "3"  # same value: no change, no ownership
    other["metadata"]["labels"]["y"] = "2"
    update_managed_fields(first, other, "labeler", time="T", kind=CM)
    out = apply(other, cm({"a": "1"}), "m", False, kind=CM, time="T2")
    assert out["data"] == {"a": "1"}
    assert out["metadata"]["labels"] == {"y": "2"}
    assert fields_of(out, "m") == {"f:data": {"f:a": {}}}


def test_apply_conflicts_only_on_changed_values_and_force_takes_ownership() -> None:
    live = created(DEPLOY, deployment(replicas=2), "kubectl-client-side-apply")
    same = apply(live, deployment(replicas=2), "kubectl", False, kind=DEPLOY, time="T")  # co-owned
    assert (fp.field("spec"), fp.field("replicas")) in decode(same["metadata"]["managedFields"])[0].fields
    with pytest.raises(errors.StatusError) as caught:
        apply(same, deployment(replicas=3, image="other"), "kubectl", False, kind=DEPLOY, time="T")
    status = caught.value.status()
    assert status["code"] == 409 and status["reason"] == "Conflict"
    assert status["message"] == (
        'Apply failed with 2 conflicts: conflicts with "kubectl-client-side-apply" using apps/v1:\n'
        "- .spec.replicas\n"
        '- .spec.template.spec.containers[name="web"].image')
    assert status["details"]["causes"][0] == {"reason": "FieldManagerConflict", "field": ".spec.replicas",
                                              "message": 'conflict with "kubectl-client-side-apply" using apps/v1'}
    forced = apply(same, deployment(replicas=3, image="other"), "kubectl", True, kind=DEPLOY, time="T")
    assert forced["spec"]["replicas"] == 3
    loser = decode([e for e in forced["metadata"]["managedFields"] if e["operation"] == "Update"])[0].fields
    assert (fp.field("spec"), fp.field("replicas")) not in loser


def test_single_conflict_message() -> None:
    live = created(CM, cm({"a": "1"}), "kubectl-create")
    with pytest.raises(errors.StatusError) as caught:
        apply(live, cm({"a": "2"}), "m", False, kind=CM, time="T")
    assert caught.value.message == 'Apply failed with 1 conflict: conflict with "kubectl-create" using v1: .data.a'


def test_first_apply_to_untracked_object_hands_fields_to_before_first_apply() -> None:
    live = {**cm({"a": "1"}), "metadata": {"name": "c", "resourceVersion": "5", "uid": "u"}}
    with pytest.raises(errors.StatusError) as caught:
        apply(live, cm({"a": "2"}), "m", False, kind=CM, time="T")
    assert '"before-first-apply" using v1' in caught.value.message


def test_apply_does_not_own_status_on_the_main_resource_and_rejects_managed_fields() -> None:
    obj = apply(None, {**cm({"a": "1"}), "kind": "Pod", "apiVersion": "v1", "status": {"phase": "x"}}, "m", False,
                kind=POD, time="T")
    assert "f:status" not in fields_of(obj, "m")
    with pytest.raises(errors.BadRequest, match="metadata.managedFields must be nil"):
        apply(None, cm({}, managedFields=[]), "m", False, kind=CM, time="T")


def test_apply_entries_sort_before_update_entries() -> None:
    live = created(CM, cm({"a": "1"}), "zzz")
    out = apply(live, cm({"b": "1"}), "aaa", False, kind=CM, time="T")
    assert [e["operation"] for e in out["metadata"]["managedFields"]] == ["Apply", "Update"]
