"""The admission chain over the real wire: the Priority and DefaultTolerationSeconds plugins.

The texts are kube-apiserver 1.33's (plugin/pkg/admission/priority): a pod cannot state its own
priority, a missing class is a 403, only one PriorityClass may be the global default, and every
new pod tolerates the not-ready/unreachable taints for 300 s unless it already does.
"""

from __future__ import annotations

import pytest

from pykube_server.apiserver.admission import Attributes, Chain, build_chain
from pykube_server.apiserver.admission.tolerations import tolerates
from pykube_server.apiserver.authn import ANONYMOUS
from tests.apiserver.test_rest_support import Raw, unique
from tests.conftest import ServerProcess


@pytest.fixture
def raw(cluster: ServerProcess) -> Raw:
    return Raw(cluster.kubeconfig)


def pod(name: str, **spec: object) -> dict:
    return {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": name},
            "spec": {"containers": [{"name": "c", "image": "busybox"}], **spec}}


def pods(ns: str) -> str:
    return f"/api/v1/namespaces/{ns}/pods"


def priority_class(name: str, value: int, **extra: object) -> dict:
    return {"apiVersion": "scheduling.k8s.io/v1", "kind": "PriorityClass", "metadata": {"name": name},
            "value": value, **extra}


PCS = "/apis/scheduling.k8s.io/v1/priorityclasses"


def test_pod_without_class_gets_priority_zero_and_default_tolerations(raw: Raw, namespace: str) -> None:
    resp = raw.post(pods(namespace), pod("p"))
    assert resp.status == 201, resp
    spec = resp.json()["spec"]
    assert spec["priority"] == 0
    assert spec["preemptionPolicy"] == "PreemptLowerPriority"
    assert "priorityClassName" not in spec
    assert {"key": "node.kubernetes.io/not-ready", "operator": "Exists", "effect": "NoExecute",
            "tolerationSeconds": 300} in spec["tolerations"]
    assert {"key": "node.kubernetes.io/unreachable", "operator": "Exists", "effect": "NoExecute",
            "tolerationSeconds": 300} in spec["tolerations"]


def test_own_toleration_is_kept_and_not_duplicated(raw: Raw, namespace: str) -> None:
    mine = {"key": "node.kubernetes.io/unreachable", "operator": "Exists", "effect": "NoExecute", "tolerationSeconds": 5}
    resp = raw.post(pods(namespace), pod("p", tolerations=[mine]))
    assert resp.status == 201, resp
    keys = [t["key"] for t in resp.json()["spec"]["tolerations"]]
    assert sorted(keys) == ["node.kubernetes.io/not-ready", "node.kubernetes.io/unreachable"]
    assert mine in resp.json()["spec"]["tolerations"]


def test_priority_comes_from_the_class(raw: Raw, namespace: str) -> None:
    name = unique("high")
    assert raw.post(PCS, priority_class(name, 1000, preemptionPolicy="Never")).status == 201
    try:
        resp = raw.post(pods(namespace), pod("p", priorityClassName=name))
        assert resp.status == 201, resp
        assert resp.json()["spec"]["priority"] == 1000
        assert resp.json()["spec"]["preemptionPolicy"] == "Never"
        # an update that leaves priority out keeps it (the plugin restores it)
        body = resp.json()
        body["spec"].pop("priority")
        body["metadata"]["labels"] = {"x": "y"}
        updated = raw.put(f"{pods(namespace)}/p", body)
        assert updated.status == 200, updated
        assert updated.json()["spec"]["priority"] == 1000
    finally:
        raw.delete(f"{PCS}/{name}")


def test_missing_class_and_stated_priority_are_forbidden(raw: Raw, namespace: str) -> None:
    resp = raw.post(pods(namespace), pod("p", priorityClassName="nope"))
    assert resp.status == 403
    assert resp.json()["message"] == 'pods "p" is forbidden: no PriorityClass with name nope was found'
    assert resp.json()["reason"] == "Forbidden"
    resp = raw.post(pods(namespace), pod("q", priority=7))
    assert resp.status == 403
    assert resp.json()["message"] == ('pods "q" is forbidden: the integer value of priority (7) must not be provided in pod '
                                      'spec; priority admission controller computed 0 from the given PriorityClass name')
    resp = raw.post(pods(namespace), pod("r", preemptionPolicy="Never"))
    assert resp.status == 403
    assert "the string value of PreemptionPolicy (Never) must not be provided in pod spec" in resp.json()["message"]
    assert raw.get(f"{pods(namespace)}/p").status == 404


def test_only_one_global_default(raw: Raw, namespace: str) -> None:
    first, second = unique("dflt"), unique("other")
    assert raw.post(PCS, priority_class(first, 42, globalDefault=True)).status == 201
    try:
        resp = raw.post(PCS, priority_class(second, 43, globalDefault=True))
        assert resp.status == 403
        assert resp.json()["message"] == (f'priorityclasses.scheduling.k8s.io "{second}" is forbidden: PriorityClass '
                                          f'{first} is already marked as default. Only one default can exist')
        created = raw.post(pods(namespace), pod("p"))
        assert created.status == 201
        assert created.json()["spec"]["priorityClassName"] == first
        assert created.json()["spec"]["priority"] == 42
    finally:
        raw.delete(f"{PCS}/{first}")


def test_tolerates() -> None:
    assert tolerates({"operator": "Exists"}, "node.kubernetes.io/unreachable")
    assert tolerates({"key": "node.kubernetes.io/unreachable", "operator": "Exists"}, "node.kubernetes.io/unreachable")
    assert not tolerates({"key": "other", "operator": "Exists"}, "node.kubernetes.io/unreachable")
    assert not tolerates({"operator": "Exists", "effect": "NoSchedule"}, "node.kubernetes.io/unreachable")


class Recorder:
    def __init__(self, name: str, log: list[str]) -> None:
        self.name, self.log = name, log

    async def admit(self, attributes: Attributes) -> None:
        self.log.append(f"admit:{self.name}:{attributes.operation}")

    async def validate(self, attributes: Attributes) -> None:
        self.log.append(f"validate:{self.name}")


async def test_chain_runs_every_mutating_plugin_before_any_validating_one() -> None:
    log: list[str] = []
    chain = Chain([Recorder("a", log), Recorder("b", log)])
    attrs = Attributes(operation="CREATE", group="", version="v1", resource="pods", subresource="", kind="Pod",
                       namespace="ns", name="p", user=ANONYMOUS, obj={})
    await chain.admit(attrs)
    await chain.validate(attrs)
    assert log == ["admit:a:CREATE", "admit:b:CREATE", "validate:a", "validate:b"]


def test_unknown_plugin_names_are_refused() -> None:
    with pytest.raises(ValueError, match="unknown admission plugins: Bogus"):
        build_chain(None, enabled=["Bogus"])  # type: ignore[arg-type]
