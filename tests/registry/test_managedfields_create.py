"""The create shortcut for managedFields (`manager._record_create`) must write exactly what the
general path (compare with the zero object as path sets, strip, drop reset fields, encode)
writes: same members, same `.` markers, same FieldsV1 key order. Checked over objects that
exercise every schema shape: structs, maps, associative lists with defaulted keys, sets of
numbers and strings, atomic lists and maps, untyped custom resources, values equal to zero."""

from __future__ import annotations

import copy
from typing import Any

import orjson
import pytest

from pykube_server.registry.managedfields import Kind
from pykube_server.registry.managedfields import manager as m
from pykube_server.registry.managedfields import typed
from pykube_server.registry.resources import RESOURCES


def kind_of(group: str, plural: str) -> Kind:
    spec = next(s for s in RESOURCES if s.group == group and s.plural == plural)
    return Kind(spec.api_version, spec.kind, spec.definition, spec.has_status)


def general(obj: dict[str, Any], kind: Kind, subresource: str = "") -> list[dict[str, Any]]:
    diff = typed.compare(kind.zero(), obj, kind.schema)
    changed = diff.changed - m.STRIPPED
    changed -= kind.ignored(changed, subresource)
    entry = m.Entry("mgr", "Update", kind.api_version, subresource, "T", changed)
    return m.encode([entry])


def shortcut(obj: dict[str, Any], kind: Kind, subresource: str = "") -> list[dict[str, Any]]:
    out = m.update_managed_fields(None, copy.deepcopy(obj), "mgr", "Update", subresource, "T", kind=kind)
    return out["metadata"].get("managedFields", [])


POD = {"apiVersion": "v1", "kind": "Pod",
       "metadata": {"name": "p", "namespace": "ns", "uid": "u", "creationTimestamp": "2026-01-01T00:00:00Z",
                    "labels": {"b": "2", "a": "1"}, "annotations": {}, "finalizers": ["x/y", "a/b"],
                    "ownerReferences": [{"apiVersion": "v1", "kind": "RC", "name": "o", "uid": "1"}]},
       "spec": {"containers": [{"name": "z", "image": "i", "ports": [{"containerPort": 80}, {"containerPort": 53, "protocol": "UDP"}],
                                "env": [{"name": "B", "value": "1"}, {"name": "A", "value": ""}], "args": ["x", "y"],
                                "resources": {}},
                               {"name": "a", "image": "j", "securityContext": {"runAsUser": 0}}],
                "nodeSelector": {"k": "v"}, "tolerations": [{"operator": "Exists"}], "priority": 0,
                "enableServiceLinks": False, "securityContext": {}, "volumes": None},
       "status": {"phase": "Pending"}}
DEPLOYMENT = {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "d", "labels": {"app": "d"}},
              "spec": {"replicas": 3, "selector": {"matchLabels": {"app": "d"}},
                       "strategy": {"type": "RollingUpdate", "rollingUpdate": {"maxSurge": "25%", "maxUnavailable": 1}},
                       "template": {"metadata": {"labels": {"app": "d"}, "creationTimestamp": None},
                                    "spec": {"containers": [{"name": "c", "image": "nginx"}]}}}}
SERVICE = {"apiVersion": "v1", "kind": "Service", "metadata": {"name": "s"},
           "spec": {"ports": [{"port": 80, "targetPort": 8080}, {"port": 53, "protocol": "UDP", "name": "dns"}],
                    "selector": {"a": "b"}, "clusterIPs": ["127.96.0.9"], "ipFamilies": ["IPv4"], "type": "ClusterIP"},
           "status": {"loadBalancer": {}}}
CONFIGMAP = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "c", "generateName": "c-"},
             "data": {"k": "v", "empty": ""}, "binaryData": {}, "immutable": False}
NODE = {"apiVersion": "v1", "kind": "Node", "metadata": {"name": "n"},
        "spec": {"taints": [{"key": "k", "effect": "NoSchedule"}], "podCIDRs": ["10.0.0.0/24"]},
        "status": {"capacity": {"cpu": "2"}, "conditions": [{"type": "Ready", "status": "True"}]}}


@pytest.mark.parametrize(("group", "plural", "obj"), [
    ("", "pods", POD), ("apps", "deployments", DEPLOYMENT), ("", "services", SERVICE),
    ("", "configmaps", CONFIGMAP), ("", "nodes", NODE),
])
@pytest.mark.parametrize("subresource", ["", "status"])
def test_shortcut_equals_general_path(group: str, plural: str, obj: dict[str, Any], subresource: str) -> None:
    kind = kind_of(group, plural)
    expected = general(obj, kind, subresource)
    got = shortcut(obj, kind, subresource)
    assert orjson.dumps(got) == orjson.dumps(expected)  # byte-equal: key order matters on the wire


def test_untyped_custom_resource() -> None:
    kind = Kind("example.com/v1", "Thing", "", False)
    obj = {"apiVersion": "example.com/v1", "kind": "Thing", "metadata": {"name": "t", "labels": {"x": "y"}},
           "spec": {"list": [1, 2], "nested": {"a": {"b": None}, "c": []}, "n": 0}, "status": {"s": 1}}
    assert orjson.dumps(shortcut(obj, kind)) == orjson.dumps(general(obj, kind))


def test_nothing_to_own_writes_no_entry() -> None:
    kind = kind_of("", "configmaps")
    obj = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "c", "namespace": "n"}}
    assert shortcut(obj, kind) == [] == general(obj, kind)


def test_memo_by_shape_gives_each_create_its_own_correct_tree() -> None:
    """Creates that differ only in name-like metadata share one remembered tree; anything that
    shapes FieldsV1 (a label key, an owner's uid, an empty name vs none) gets its own."""
    kind = kind_of("", "pods")
    m._create_memo.clear()
    renamed = copy.deepcopy(POD)
    renamed["metadata"].update(name="other", namespace="ns2", uid="u2", creationTimestamp="2026-02-02T00:00:00Z")
    variants = [POD, renamed]
    labelled = copy.deepcopy(POD)
    labelled["metadata"]["labels"]["new"] = "3"
    owned = copy.deepcopy(POD)
    owned["metadata"]["ownerReferences"][0]["uid"] = "2"
    nameless = copy.deepcopy(POD)
    del nameless["metadata"]["name"]
    variants += [labelled, owned, nameless]
    for obj in variants + variants:  # the second round is served from the memo
        assert orjson.dumps(shortcut(obj, kind)) == orjson.dumps(general(obj, kind))
    assert len(m._create_memo) == 4  # POD and `renamed` share one entry

