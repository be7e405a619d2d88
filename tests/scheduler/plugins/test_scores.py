"""Score plugins and the framework's weighting, against hand-computed kube results."""

from __future__ import annotations

import random

import pytest

from pykube_server.scheduler.framework import CycleState, Handle, PodInfo
from pykube_server.scheduler.plugins import PLUGINS
from pykube_server.scheduler.profile import DEFAULT_PROFILE
from pykube_server.scheduler.runtime import Framework, num_feasible_nodes_to_find
from tests.scheduler.builders import node, node_info, pod


def score(plugin: str, p: dict, *nodes: dict, args: dict | None = None) -> dict[str, int]:
    instance = PLUGINS[plugin](args or {}, Handle())
    infos = [node_info(n) for n in nodes]
    state, info = CycleState(), PodInfo.of(p)
    if hasattr(instance, "pre_score"):
        instance.pre_score(state, info, infos)
    scores = {n.name: instance.score(state, info, n) for n in infos}
    if hasattr(instance, "normalize"):
        instance.normalize(state, info, scores)
    return scores


CASES = [
    ("least allocated", "NodeResourcesFit", pod(cpu="1", memory="2Gi"), None, 75),
    ("least allocated, best effort counts 100m/200Mi", "NodeResourcesFit", pod(), None, 97),
    ("most allocated", "NodeResourcesFit", pod(cpu="1", memory="4Gi"), {"scoringStrategy": {"type": "MostAllocated"}}, 37),
    ("requested to capacity ratio", "NodeResourcesFit", pod(cpu="2", memory="4Gi"),
     {"scoringStrategy": {"type": "RequestedToCapacityRatio", "resources": [{"name": "cpu", "weight": 1}],
                          "requestedToCapacityRatio": {"shape": [{"utilization": 0, "score": 0},
                                                                 {"utilization": 100, "score": 10}]}}}, 50),
    ("balanced allocation", "NodeResourcesBalancedAllocation", pod(cpu="1", memory="4Gi"), None, 87),
]


@pytest.mark.parametrize("name,plugin,p,args,want", CASES, ids=[c[0] for c in CASES])
def test_single_node_scores(name: str, plugin: str, p: dict, args: dict | None, want: int) -> None:
    assert score(plugin, p, node("n", cpu="4", memory="8Gi"), args=args) == {"n": want}


def test_taint_toleration_prefers_fewer_prefer_no_schedule_taints() -> None:
    soft = [{"key": "a", "effect": "PreferNoSchedule"}, {"key": "b", "effect": "PreferNoSchedule"}]
    scores = score("TaintToleration", pod(), node("tainted", taints=soft), node("one", taints=soft[:1]), node("clean"))
    assert scores == {"tainted": 0, "one": 50, "clean": 100}
    tolerating = pod(tolerations=[{"key": "a", "operator": "Exists", "effect": "PreferNoSchedule"}])
    assert score("TaintToleration", tolerating, node("one", taints=soft[:1]), node("clean")) == {"one": 100, "clean": 100}


def test_node_affinity_preferred_terms_sum_weights_then_normalise() -> None:
    prefs = [{"weight": 10, "preference": {"matchExpressions": [{"key": "zone", "operator": "In", "values": ["a"]}]}},
             {"weight": 30, "preference": {"matchExpressions": [{"key": "disk", "operator": "Exists"}]}}]
    p = pod(affinity={"nodeAffinity": {"preferredDuringSchedulingIgnoredDuringExecution": prefs}})
    scores = score("NodeAffinity", p, node("both", labels={"zone": "a", "disk": "1"}), node("zone", labels={"zone": "a"}),
                   node("none"))
    assert scores == {"both": 100, "zone": 25, "none": 0}


def test_framework_weights_and_picks_the_emptier_node() -> None:
    fwk = Framework(DEFAULT_PROFILE, PLUGINS, Handle(), rand=random.Random(1))
    busy = node_info(node("busy"), pod("x", cpu="3", memory="6Gi"))
    idle = node_info(node("idle"))
    host, result = fwk.schedule(CycleState(), PodInfo.of(pod(cpu="500m", memory="1Gi")), [busy, idle])
    assert host == "idle" and len(result.feasible) == 2


@pytest.mark.parametrize("nodes,want", [(50, 50), (100, 100), (1000, 420), (5000, 500), (6000, 300)])
def test_percentage_of_nodes_to_score(nodes: int, want: int) -> None:
    assert num_feasible_nodes_to_find(0, nodes) == want
