"""Filter plugins against known cases (table-driven): verdicts and kube's reasons."""

from __future__ import annotations

import pytest

from pykube_server.api.types import Obj
from pykube_server.scheduler.framework import Code, CycleState, PodInfo, Status
from pykube_server.scheduler.plugins import PLUGINS
from pykube_server.scheduler.framework import Handle
from tests.scheduler.builders import node, node_info, pod

UNRESOLVABLE, UNSCHEDULABLE = Code.UNSCHEDULABLE_AND_UNRESOLVABLE, Code.UNSCHEDULABLE


def run(plugin: str, p: Obj, n: Obj, *existing: Obj, args: dict | None = None) -> Status | None:
    instance = PLUGINS[plugin](args or {}, Handle())
    info = node_info(n, *existing)
    state = CycleState()
    if hasattr(instance, "pre_filter"):
        instance.pre_filter(state, PodInfo.of(p), [info])
    return instance.filter(state, PodInfo.of(p), info)


def expr(key: str, op: str, *values: str) -> Obj:
    return {"key": key, "operator": op, **({"values": list(values)} if values else {})}


def required(*terms: list[Obj]) -> Obj:
    return {"nodeAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": {
        "nodeSelectorTerms": [{"matchExpressions": t} for t in terms]}}}


TAINT = {"key": "dedicated", "value": "gpu", "effect": "NoSchedule"}
CASES = [
    ("unschedulable node", "NodeUnschedulable", pod(), node("n", unschedulable=True), (UNRESOLVABLE, "node(s) were unschedulable")),
    ("unschedulable tolerated", "NodeUnschedulable",
     pod(tolerations=[{"key": "node.kubernetes.io/unschedulable", "operator": "Exists", "effect": "NoSchedule"}]),
     node("n", unschedulable=True), None),
    ("node name matches", "NodeName", pod(nodeName="n"), node("n"), None),
    ("node name differs", "NodeName", pod(nodeName="m"), node("n"), (UNRESOLVABLE, "node(s) didn't match the requested node name")),
    ("untolerated taint", "TaintToleration", pod(), node("n", taints=[TAINT]),
     (UNRESOLVABLE, "node(s) had untolerated taint {dedicated: gpu}")),
    ("taint tolerated by Equal", "TaintToleration",
     pod(tolerations=[{"key": "dedicated", "operator": "Equal", "value": "gpu", "effect": "NoSchedule"}]), node("n", taints=[TAINT]), None),
    ("taint tolerated by Exists without key", "TaintToleration", pod(tolerations=[{"operator": "Exists"}]), node("n", taints=[TAINT]), None),
    ("wrong value not tolerated", "TaintToleration",
     pod(tolerations=[{"key": "dedicated", "value": "cpu"}]), node("n", taints=[TAINT]), (UNRESOLVABLE, "node(s) had untolerated taint {dedicated: gpu}")),
    ("PreferNoSchedule never filters", "TaintToleration", pod(),
     node("n", taints=[{"key": "k", "effect": "PreferNoSchedule"}]), None),
    ("nodeSelector matches", "NodeAffinity", pod(nodeSelector={"disk": "ssd"}), node("n", labels={"disk": "ssd"}), None),
    ("nodeSelector misses", "NodeAffinity", pod(nodeSelector={"disk": "ssd"}), node("n"),
     (UNRESOLVABLE, "node(s) didn't match Pod's node affinity/selector")),
    ("In", "NodeAffinity", pod(affinity=required([expr("zone", "In", "a", "b")])), node("n", labels={"zone": "b"}), None),
    ("NotIn on missing label", "NodeAffinity", pod(affinity=required([expr("zone", "NotIn", "a")])), node("n"), None),
    ("NotIn excluded", "NodeAffinity", pod(affinity=required([expr("zone", "NotIn", "a")])), node("n", labels={"zone": "a"}),
     (UNRESOLVABLE, "node(s) didn't match Pod's node affinity/selector")),
    ("Exists", "NodeAffinity", pod(affinity=required([expr("gpu", "Exists")])), node("n", labels={"gpu": ""}), None),
    ("DoesNotExist", "NodeAffinity", pod(affinity=required([expr("gpu", "DoesNotExist")])), node("n", labels={"gpu": ""}),
     (UNRESOLVABLE, "node(s) didn't match Pod's node affinity/selector")),
    ("Gt", "NodeAffinity", pod(affinity=required([expr("cores", "Gt", "4")])), node("n", labels={"cores": "8"}), None),
    ("Lt fails", "NodeAffinity", pod(affinity=required([expr("cores", "Lt", "4")])), node("n", labels={"cores": "8"}),
     (UNRESOLVABLE, "node(s) didn't match Pod's node affinity/selector")),
    ("terms are ORed", "NodeAffinity", pod(affinity=required([expr("a", "Exists")], [expr("b", "Exists")])),
     node("n", labels={"b": "1"}), None),
    ("matchFields metadata.name", "NodeAffinity", pod(affinity={"nodeAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": {
        "nodeSelectorTerms": [{"matchFields": [expr("metadata.name", "In", "n")]}]}}}), node("n"), None),
    ("empty term matches nothing", "NodeAffinity", pod(affinity={"nodeAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": {
        "nodeSelectorTerms": [{}]}}}), node("n"), (UNRESOLVABLE, "node(s) didn't match Pod's node affinity/selector")),
    ("fits", "NodeResourcesFit", pod(cpu="1", memory="1Gi"), node("n", cpu="2", memory="2Gi"), None),
    ("insufficient cpu and memory", "NodeResourcesFit", pod(cpu="1", memory="1Gi"),
     node("n", cpu="2", memory="2Gi"), (UNSCHEDULABLE, "Insufficient cpu, Insufficient memory"),
     pod("old", cpu="1500m", memory="1500Mi")),
    ("more than allocatable is unresolvable", "NodeResourcesFit", pod(cpu="3"), node("n", cpu="2"), (UNRESOLVABLE, "Insufficient cpu")),
    ("too many pods", "NodeResourcesFit", pod(), node("n", pods="1"), (UNSCHEDULABLE, "Too many pods"), pod("old")),
    ("extended resource missing", "NodeResourcesFit",
     pod(containers=[{"name": "c", "resources": {"requests": {"example.com/gpu": "1"}}}]), node("n"),
     (UNRESOLVABLE, "Insufficient example.com/gpu")),
    ("extended resource present", "NodeResourcesFit",
     pod(containers=[{"name": "c", "resources": {"requests": {"example.com/gpu": "1"}}}]), node("n", extra={"example.com/gpu": "2"}), None),
    ("ignored extended resource", "NodeResourcesFit",
     pod(containers=[{"name": "c", "resources": {"requests": {"example.com/gpu": "1"}}}]), node("n"), None, "ignore"),
    ("host port conflict", "NodePorts", pod(containers=[{"name": "c", "ports": [{"containerPort": 80, "hostPort": 8080}]}]),
     node("n"), (UNSCHEDULABLE, "node(s) didn't have free ports for the requested pod ports"),
     pod("old", containers=[{"name": "c", "ports": [{"containerPort": 80, "hostPort": 8080, "protocol": "TCP"}]}])),
    ("same port other protocol", "NodePorts",
     pod(containers=[{"name": "c", "ports": [{"containerPort": 80, "hostPort": 8080, "protocol": "UDP"}]}]), node("n"), None,
     pod("old", containers=[{"name": "c", "ports": [{"containerPort": 80, "hostPort": 8080}]}])),
    ("different host IPs", "NodePorts",
     pod(containers=[{"name": "c", "ports": [{"containerPort": 80, "hostPort": 8080, "hostIP": "127.0.0.2"}]}]), node("n"), None,
     pod("old", containers=[{"name": "c", "ports": [{"containerPort": 80, "hostPort": 8080, "hostIP": "127.0.0.1"}]}])),
]


@pytest.mark.parametrize("case", CASES, ids=[c[0] for c in CASES])
def test_filter(case: tuple) -> None:
    _, plugin, p, n, want, *existing = case
    args = None
    if existing and existing[0] == "ignore":
        existing, args = [], {"ignoredResources": ["example.com/gpu"]}
    status = run(plugin, p, n, *existing, args=args)
    if want is None:
        assert status is None
    else:
        assert status is not None and (status.code, status.message) == want


ANTI = {"podAntiAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": [
    {"labelSelector": {"matchLabels": {"app": "web"}}, "topologyKey": "kubernetes.io/hostname"}]}}
AFFINITY = {"podAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": [
    {"labelSelector": {"matchLabels": {"app": "db"}}, "topologyKey": "zone"}]}}


def test_inter_pod_anti_affinity_by_hostname() -> None:
    web = pod("w2", labels={"app": "web"}, affinity=ANTI)
    assert run("InterPodAffinity", web, node("n"), pod("w1", labels={"app": "web"})).message == \
        "node(s) didn't match pod anti-affinity rules"
    assert run("InterPodAffinity", web, node("n"), pod("x", labels={"app": "other"})) is None


def test_existing_pods_anti_affinity_is_respected() -> None:
    status = run("InterPodAffinity", pod("w", labels={"app": "web"}), node("n"), pod("w1", labels={"app": "web"}, affinity=ANTI))
    assert status is not None and status.message == "node(s) didn't satisfy existing pods anti-affinity rules"


def test_inter_pod_affinity_needs_a_matching_pod_in_the_zone() -> None:
    p = pod("app", affinity=AFFINITY)
    assert run("InterPodAffinity", p, node("n", labels={"zone": "a"}), pod("db", labels={"app": "db"})) is None
    status = run("InterPodAffinity", p, node("n", labels={"zone": "a"}), pod("x"))
    assert status is not None and (status.code, status.message) == (UNRESOLVABLE, "node(s) didn't match pod affinity rules")


def test_first_pod_of_a_self_affine_group_may_go_anywhere() -> None:
    p = pod("db", labels={"app": "db"}, affinity=AFFINITY)
    assert run("InterPodAffinity", p, node("n", labels={"zone": "a"})) is None


def test_topology_spread_do_not_schedule() -> None:
    from pykube_server.scheduler.plugins.pod_topology_spread import PodTopologySpread

    spread = [{"maxSkew": 1, "topologyKey": "zone", "whenUnsatisfiable": "DoNotSchedule",
               "labelSelector": {"matchLabels": {"app": "web"}}}]
    a = node_info(node("a", labels={"zone": "a"}), pod("w1", labels={"app": "web"}))
    b = node_info(node("b", labels={"zone": "b"}))
    c = node_info(node("c"))
    plugin, state = PodTopologySpread(), CycleState()
    incoming = PodInfo.of(pod("w2", labels={"app": "web"}, topologySpreadConstraints=spread))
    plugin.pre_filter(state, incoming, [a, b, c])
    assert plugin.filter(state, incoming, a).message == "node(s) didn't match pod topology spread constraints"
    assert plugin.filter(state, incoming, b) is None
    missing = plugin.filter(state, incoming, c)
    assert missing.code is UNRESOLVABLE
    assert missing.message == "node(s) didn't match pod topology spread constraints (missing required label)"
