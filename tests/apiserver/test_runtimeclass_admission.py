"""The RuntimeClass admission plugin over the real wire, and its toleration merge.

Facts of kube-apiserver 1.33 (plugin/pkg/admission/runtimeclass) recorded here: the plugin is on
by default and sits after StorageObjectInUseProtection, before the admission webhooks; a pod
naming a missing class is a 403 `pods "p" is forbidden: pod rejected: RuntimeClass "x" not
found`; the class's overhead.podFixed becomes spec.overhead, and a pod stating another
overhead (or any overhead when the class has none) is refused; scheduling.nodeSelector is merged
into spec.nodeSelector (a different value for the same key is a `conflict: ...` 403) and
scheduling.tolerations are merged into spec.tolerations without duplicates.
"""

from __future__ import annotations

import pytest

from pykube_server.apiserver.admission.plugins import DEFAULT_ON, ORDERED
from pykube_server.apiserver.admission.runtimeclass import merge_tolerations, toleration_covers
from tests.apiserver.test_rest_support import Raw, unique
from tests.conftest import ServerProcess

RCS = "/apis/node.k8s.io/v1/runtimeclasses"


@pytest.fixture
def raw(api_cluster: ServerProcess) -> Raw:
    return Raw(api_cluster.kubeconfig)


def pod(name: str, **spec: object) -> dict:
    return {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": name},
            "spec": {"automountServiceAccountToken": False, "containers": [{"name": "c", "image": "busybox"}], **spec}}


def pods(ns: str) -> str:
    return f"/api/v1/namespaces/{ns}/pods"


def runtime_class(raw: Raw, **extra: object) -> str:
    name = unique("rc")
    resp = raw.post(RCS, {"apiVersion": "node.k8s.io/v1", "kind": "RuntimeClass", "metadata": {"name": name},
                          "handler": "runc", **extra})
    assert resp.status == 201, resp
    return name


def test_plugin_order_and_default() -> None:
    names = list(ORDERED)
    assert names.index("StorageObjectInUseProtection") < names.index("RuntimeClass") < names.index("MutatingAdmissionWebhook")
    assert "RuntimeClass" in DEFAULT_ON


def test_missing_class_is_forbidden(raw: Raw, api_namespace: str) -> None:
    resp = raw.post(pods(api_namespace), pod("p", runtimeClassName="no-such-class"))
    assert resp.status == 403, resp
    assert resp.json()["reason"] == "Forbidden"
    assert resp.json()["message"] == 'pods "p" is forbidden: pod rejected: RuntimeClass "no-such-class" not found'


def test_overhead_is_copied_and_a_different_one_refused(raw: Raw, api_namespace: str) -> None:
    name = runtime_class(raw, overhead={"podFixed": {"cpu": "10m", "memory": "1Mi"}})
    try:
        resp = raw.post(pods(api_namespace), pod("p", runtimeClassName=name))
        assert resp.status == 201, resp
        assert resp.json()["spec"]["overhead"] == {"cpu": "10m", "memory": "1Mi"}
        # the same overhead stated another way is accepted
        resp = raw.post(pods(api_namespace), pod("q", runtimeClassName=name, overhead={"cpu": "0.01", "memory": "1Mi"}))
        assert resp.status == 201, resp
        resp = raw.post(pods(api_namespace), pod("r", runtimeClassName=name, overhead={"cpu": "1"}))
        assert resp.status == 403, resp
        assert resp.json()["message"] == ('pods "r" is forbidden: pod rejected: '
                                          "Pod's Overhead doesn't match RuntimeClass's defined Overhead")
    finally:
        raw.delete(f"{RCS}/{name}")


def test_overhead_without_class_overhead_is_refused(raw: Raw, api_namespace: str) -> None:
    name = runtime_class(raw)
    try:
        resp = raw.post(pods(api_namespace), pod("plain", runtimeClassName=name))
        assert resp.status == 201, resp
        assert "overhead" not in resp.json()["spec"]
        resp = raw.post(pods(api_namespace), pod("p", runtimeClassName=name, overhead={"cpu": "1"}))
        assert resp.status == 403, resp
        assert resp.json()["message"] == ('pods "p" is forbidden: pod rejected: '
                                          "Pod Overhead set without corresponding RuntimeClass defined Overhead")
    finally:
        raw.delete(f"{RCS}/{name}")


def test_scheduling_is_merged_and_conflicts_refused(raw: Raw, api_namespace: str) -> None:
    toleration = {"key": "sandbox", "operator": "Exists", "effect": "NoSchedule"}
    name = runtime_class(raw, scheduling={"nodeSelector": {"sandbox": "gvisor"}, "tolerations": [toleration]})
    try:
        resp = raw.post(pods(api_namespace), pod("p", runtimeClassName=name, nodeSelector={"zone": "a"},
                                                 tolerations=[dict(toleration)]))
        assert resp.status == 201, resp
        spec = resp.json()["spec"]
        assert spec["nodeSelector"] == {"zone": "a", "sandbox": "gvisor"}
        assert [t for t in spec["tolerations"] if t.get("key") == "sandbox"] == [toleration]
        resp = raw.post(pods(api_namespace), pod("q", runtimeClassName=name, nodeSelector={"sandbox": "kata"}))
        assert resp.status == 403, resp
        assert resp.json()["message"] == ('pods "q" is forbidden: conflict: runtimeClass.scheduling.nodeSelector[sandbox] '
                                          "= gvisor; pod.spec.nodeSelector[sandbox] = kata")
    finally:
        raw.delete(f"{RCS}/{name}")


def test_toleration_merge_drops_covered_ones() -> None:
    exists_any = {"operator": "Exists"}
    key_equal = {"key": "k", "operator": "Equal", "value": "v", "effect": "NoSchedule"}
    key_exists = {"key": "k", "operator": "Exists", "effect": "NoSchedule"}
    assert toleration_covers(key_exists, key_equal) and not toleration_covers(key_equal, key_exists)
    assert toleration_covers(exists_any, key_equal)
    assert merge_tolerations([key_equal], [key_exists]) == [key_exists]
    assert merge_tolerations([key_equal], [dict(key_equal)]) == [key_equal]
    short = {"key": "n", "operator": "Exists", "effect": "NoExecute", "tolerationSeconds": 5}
    long = {"key": "n", "operator": "Exists", "effect": "NoExecute", "tolerationSeconds": 300}
    assert merge_tolerations([short], [long]) == [long]
    other = {"key": "x", "operator": "Equal", "value": "1"}
    assert merge_tolerations([key_equal], [other]) == [key_equal, other]
