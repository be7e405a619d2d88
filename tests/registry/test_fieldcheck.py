"""The unknown-field/type walk's fast pre-pass must agree with the full walk on every body:
a body it calls clean must have no unknown field and no type error, and every body with one
must fall through to the walk that names it."""

from __future__ import annotations

import copy
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pykube_server.registry import fieldcheck
from pykube_server.registry.fieldcheck import TypeMismatch, unknown_fields

POD = "io.k8s.api.core.v1.Pod"
DEPLOYMENT = "io.k8s.api.apps.v1.Deployment"


def pod() -> dict[str, Any]:
    return {"apiVersion": "v1", "kind": "Pod",
            "metadata": {"name": "p", "labels": {"a": "b"}, "annotations": {"x": "y"}},
            "spec": {"containers": [{"name": "c", "image": "i", "ports": [{"containerPort": 80}],
                                     "resources": {"requests": {"cpu": "10m", "memory": 1}},
                                     "livenessProbe": {"httpGet": {"port": "http", "path": "/"}}}],
                     "nodeSelector": {"k": "v"}, "terminationGracePeriodSeconds": 3}}


def full_walk(obj: Any, definition: str) -> list[str]:
    out: list[str] = []
    root = fieldcheck._resolve({"$ref": fieldcheck._REF + definition})
    fieldcheck._walk(obj, root, "", out, definition.rsplit(".", 1)[-1], "")
    return out


def outcome(fn: Any, *args: Any) -> Any:
    try:
        return fn(*args)
    except TypeMismatch as exc:
        return ("TypeMismatch", str(exc))


def test_clean_body_has_nothing_to_report() -> None:
    assert unknown_fields(pod(), POD) == []
    root = fieldcheck._resolve({"$ref": fieldcheck._REF + POD})
    assert fieldcheck._clean(pod(), root, True)


@pytest.mark.parametrize("path,value", [
    (("spec", "bogus"), 1),  # unknown field
    (("spec", "containers", 0, "bogus"), "x"),  # unknown field in a list item
    (("metadata", "name"), 5),  # number where a string belongs
    (("spec", "terminationGracePeriodSeconds"), True),  # bool is not an integer
    (("spec", "terminationGracePeriodSeconds"), 1.5),  # a fraction is not an integer
    (("spec", "containers", 0, "ports", 0, "containerPort"), "80"),
    (("spec", "nodeSelector", "k"), 1),  # map values typed by additionalProperties
    (("spec", "containers"), {"name": "c"}),  # object where a list belongs
])
def test_every_problem_reaches_the_full_walk(path: tuple[Any, ...], value: Any) -> None:
    body = pod()
    target: Any = body
    for part in path[:-1]:
        target = target[part]
    target[path[-1]] = value
    root = fieldcheck._resolve({"$ref": fieldcheck._REF + POD})
    assert not fieldcheck._clean(body, root, True)
    assert outcome(unknown_fields, body, POD) == outcome(full_walk, body, POD)
    assert outcome(full_walk, body, POD) != []


def test_int_or_string_accepts_both() -> None:
    body = pod()
    body["spec"]["containers"][0]["livenessProbe"]["httpGet"]["port"] = 8080
    assert unknown_fields(body, POD) == []


json_values = st.recursive(st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=3),
                           lambda inner: st.lists(inner, max_size=2) | st.dictionaries(st.text(max_size=4), inner, max_size=2),
                           max_leaves=6)


@settings(max_examples=200, deadline=None)
@given(where=st.sampled_from([("spec",), ("spec", "containers", 0), ("metadata",), ("spec", "template", "spec"),
                              ("spec", "containers", 0, "resources")]),
       key=st.sampled_from(["name", "image", "replicas", "labels", "containers", "bogus", "limits", "selector"]),
       value=json_values)
def test_fast_pass_agrees_with_the_full_walk(where: tuple[Any, ...], key: str, value: Any) -> None:
    for definition, base in ((POD, pod()), (DEPLOYMENT, {"apiVersion": "apps/v1", "kind": "Deployment",
                                                         "spec": {"template": {"spec": copy.deepcopy(pod()["spec"])}}})):
        target: Any = base
        try:
            for part in where:
                target = target[part]
        except (KeyError, IndexError, TypeError):
            continue
        target[key] = value
        assert outcome(unknown_fields, base, definition) == outcome(full_walk, base, definition)
