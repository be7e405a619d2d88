"""Patch schemas from the 1.33 OpenAPI definitions, and kubectl's real patch bodies on them.

The bodies are the ones captured from kubectl 1.32 in the wire contract (§5.6): client-side
apply, `set image`, `rollout restart`, `cordon`/`uncordon`, `edit`, Python's dict patches.
"""

from __future__ import annotations

import copy
import json
from typing import Any

import pytest

from pykube_server.api.patch import apply_merge_patch, apply_strategic_merge_patch
from pykube_server.registry.patch_schema import schema_for_definition, schema_for_kind

LOOKUPS = [
    (("", "v1", "Pod"), ["spec", "containers"], "merge", "name"),
    (("", "v1", "Pod"), ["spec", "containers", "[]", "ports"], "merge", "containerPort"),
    (("", "v1", "Pod"), ["spec", "containers", "[]", "env"], "merge", "name"),
    (("", "v1", "Pod"), ["spec", "containers", "[]", "volumeMounts"], "merge", "mountPath"),
    (("", "v1", "Pod"), ["spec", "volumes"], "merge,retainKeys", "name"),
    (("", "v1", "Pod"), ["metadata", "finalizers"], "merge", ""),
    (("", "v1", "Pod"), ["metadata", "ownerReferences"], "merge", "uid"),
    (("", "v1", "Pod"), ["spec", "containers", "[]", "args"], "", ""),
    (("", "v1", "Pod"), ["metadata", "labels", "anything"], "", ""),
    (("apps", "v1", "Deployment"), ["spec", "strategy"], "retainKeys", ""),
    (("apps", "v1", "Deployment"), ["spec", "template", "spec", "containers"], "merge", "name"),
    (("", "v1", "Service"), ["spec", "ports"], "merge", "port"),
]


def _walk(schema: Any, path: list[str]) -> Any:
    for step in path:
        schema = schema.items() if step == "[]" else schema.field(step)
        assert schema is not None, step
    return schema


@pytest.mark.parametrize(
    ("gvk", "path", "strategy", "merge_key"), LOOKUPS, ids=[f"{c[0][2]}.{'.'.join(c[1])}" for c in LOOKUPS]
)
def test_lookup(gvk: tuple[str, str, str], path: list[str], strategy: str, merge_key: str) -> None:
    node = _walk(schema_for_kind(*gvk), path)
    assert (node.strategy, node.merge_key) == (strategy, merge_key)


def test_unknown_things_have_no_schema() -> None:
    assert schema_for_kind("example.com", "v1", "Widget") is None
    assert schema_for_kind("apps", "v1", "Deployment").field("nosuchfield") is None  # type: ignore[union-attr]
    assert schema_for_definition("io.k8s.api.core.v1.Pod").field("spec") is not None
    with pytest.raises(KeyError):
        schema_for_definition("io.k8s.api.core.v1.NoSuchThing")


def _deployment() -> dict[str, Any]:
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": "d", "namespace": "default", "labels": {"app": "d"}, "finalizers": ["a/x"],
                     "annotations": {"deployment.kubernetes.io/revision": "1"}, "resourceVersion": "1017"},
        "spec": {
            "replicas": 1,
            "selector": {"matchLabels": {"app": "d"}},
            "strategy": {"type": "RollingUpdate", "rollingUpdate": {"maxSurge": "25%", "maxUnavailable": "25%"}},
            "template": {
                "metadata": {"labels": {"app": "d"}},
                "spec": {
                    "containers": [
                        {"name": "web", "image": "nginx:1.25", "imagePullPolicy": "IfNotPresent",
                         "ports": [{"containerPort": 80, "protocol": "TCP"}],
                         "env": [{"name": "A", "value": "1"}, {"name": "B", "value": "2"}]},
                        {"name": "side", "image": "busybox", "args": ["sleep", "1d"]},
                    ],
                    "restartPolicy": "Always",
                },
            },
        },
        "status": {"replicas": 1},
    }


def _with(obj: dict[str, Any], path: str, value: Any) -> dict[str, Any]:
    out = copy.deepcopy(obj)
    *parents, last = path.split(".")
    node = out
    for p in parents:
        node = node[int(p)] if isinstance(node, list) else node[p]
    node[int(last) if isinstance(node, list) else last] = value
    return out


LAST_APPLIED = json.dumps({"apiVersion": "apps/v1", "kind": "Deployment", "spec": {"replicas": 2}}) + "\n"
D = _deployment()
C = "spec.template.spec.containers"

DEPLOYMENT_CASES = [
    (
        "kubectl-set-image",
        {"spec": {"template": {"spec": {"$setElementOrder/containers": [{"name": "web"}, {"name": "side"}],
                                        "containers": [{"image": "nginx:2", "name": "web"}]}}}},
        _with(D, f"{C}.0.image", "nginx:2"),
    ),
    (
        "kubectl-apply-second-run",
        {"metadata": {"annotations": {"kubectl.kubernetes.io/last-applied-configuration": LAST_APPLIED}},
         "spec": {"replicas": 2, "template": {"spec": {"$setElementOrder/containers": [{"name": "web"}, {"name": "side"}],
                                                        "containers": [{"image": "nginx:1.26", "name": "web"}]}}}},
        _with(_with(_with(D, "metadata.annotations", {"deployment.kubernetes.io/revision": "1",
                                                       "kubectl.kubernetes.io/last-applied-configuration": LAST_APPLIED}),
                    "spec.replicas", 2), f"{C}.0.image", "nginx:1.26"),
    ),
    (
        "kubectl-rollout-restart",
        {"spec": {"template": {"metadata": {"annotations": {"kubectl.kubernetes.io/restartedAt": "2026-11-27T03:03:16Z"}}}}},
        _with(D, "spec.template.metadata.annotations", {"kubectl.kubernetes.io/restartedAt": "2026-11-27T03:03:16Z"}),
    ),
    (
        "kubectl-diff-with-resource-version",
        {"metadata": {"resourceVersion": "1017"}, "spec": {"replicas": 3}},
        _with(D, "spec.replicas", 3),
    ),
    (
        "python-dict-patch-scale",
        {"spec": {"replicas": 1}},
        D,
    ),
    (
        "apply-drops-container-and-env",
        {"spec": {"template": {"spec": {
            "$setElementOrder/containers": [{"name": "web"}],
            "containers": [{"name": "side", "$patch": "delete"},
                           {"name": "web", "$setElementOrder/env": [{"name": "B"}], "env": [{"name": "A", "$patch": "delete"}]}]}}}},
        _with(_with(D, C, [D["spec"]["template"]["spec"]["containers"][0]]), f"{C}.0.env", [{"name": "B", "value": "2"}]),
    ),
    (
        "add-container-port-and-env",
        {"spec": {"template": {"spec": {"containers": [
            {"name": "web", "ports": [{"containerPort": 443}], "env": [{"name": "C", "value": "3"}]}]}}}},
        _with(_with(D, f"{C}.0.ports", [{"containerPort": 443}, {"containerPort": 80, "protocol": "TCP"}]),
              f"{C}.0.env", [{"name": "C", "value": "3"}, {"name": "A", "value": "1"}, {"name": "B", "value": "2"}]),
    ),
    (
        "args-list-is-replaced",
        {"spec": {"template": {"spec": {"containers": [{"name": "side", "args": ["sleep", "2d"]}]}}}},
        _with(D, f"{C}.1.args", ["sleep", "2d"]),
    ),
    (
        "finalizers-are-a-set",
        {"metadata": {"finalizers": ["b/y", "a/x"]}},
        _with(D, "metadata.finalizers", ["b/y", "a/x"]),
    ),
    (
        "strategy-retain-keys-switch-to-recreate",
        {"spec": {"strategy": {"$retainKeys": ["type"], "type": "Recreate"}}},
        _with(D, "spec.strategy", {"type": "Recreate"}),
    ),
    (
        "remove-label-with-null",
        {"metadata": {"labels": {"app": None, "new": "x"}}},
        _with(D, "metadata.labels", {"new": "x"}),
    ),
]


@pytest.mark.parametrize(("patch", "expected"), [c[1:] for c in DEPLOYMENT_CASES], ids=[c[0] for c in DEPLOYMENT_CASES])
def test_kubectl_patches_on_a_deployment(patch: dict[str, Any], expected: dict[str, Any]) -> None:
    schema = schema_for_kind("apps", "v1", "Deployment")
    before = copy.deepcopy(D)
    assert apply_strategic_merge_patch(D, patch, schema) == expected
    assert D == before


def test_kubectl_cordon_and_uncordon_a_node() -> None:
    schema = schema_for_kind("", "v1", "Node")
    node = {"apiVersion": "v1", "kind": "Node", "metadata": {"name": "n"}, "spec": {"podCIDR": "127.244.0.0/24"}}
    cordoned = apply_strategic_merge_patch(node, {"spec": {"unschedulable": True}}, schema)
    assert cordoned["spec"] == {"podCIDR": "127.244.0.0/24", "unschedulable": True}
    assert apply_strategic_merge_patch(cordoned, {"spec": {"unschedulable": None}}, schema) == node


def test_kubectl_edit_and_label_on_a_pod() -> None:
    schema = schema_for_kind("", "v1", "Pod")
    pod = {"metadata": {"name": "p", "labels": {"run": "p"}}, "spec": {"containers": [{"name": "p", "image": "busybox"}]}}
    edited = apply_strategic_merge_patch(pod, {"metadata": {"labels": {"edited": "yes"}}}, schema)
    assert edited["metadata"]["labels"] == {"run": "p", "edited": "yes"}
    labelled = apply_merge_patch(edited, {"metadata": {"labels": {"tier": "web"}}})
    assert apply_merge_patch(labelled, {"metadata": {"labels": {"tier": None}}}) == edited


def test_pod_volumes_merge_with_retain_keys() -> None:
    schema = schema_for_kind("", "v1", "Pod")
    pod = {"spec": {"volumes": [{"name": "a", "emptyDir": {}}, {"name": "b", "configMap": {"name": "cm"}}]}}
    patch = {"spec": {"volumes": [{"name": "b", "$retainKeys": ["name", "secret"], "secret": {"secretName": "s"}}]}}
    assert apply_strategic_merge_patch(pod, patch, schema) == {
        "spec": {"volumes": [{"name": "a", "emptyDir": {}}, {"name": "b", "secret": {"secretName": "s"}}]}
    }
