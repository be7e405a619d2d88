"""How many nodes a cycle filters and where it starts: kube's numFeasibleNodesToFind and
nextStartNodeIndex, and the PreFilter/PreScore Skip that takes a plugin out of a cycle.

Facts (kube-scheduler, schedule_one.go; the "Scheduler Performance Tuning" page): below 100
nodes every node is searched; otherwise `percentageOfNodesToScore` of them (0 means adaptive:
50 - nodes/125 percent, at least 5 %), never fewer than 100; a value of 100 or more means every
node. The next cycle starts after the last node the previous one processed, wrapping around.
"""

from __future__ import annotations

import random

import pytest

from pykube_server.scheduler.cache import Cache
from pykube_server.scheduler.framework import CycleState, Handle, PodInfo
from pykube_server.scheduler.plugins import PLUGINS
from pykube_server.scheduler.profile import DEFAULT_PROFILE
from pykube_server.scheduler.runtime import FILTERS_KEY, Framework, num_feasible_nodes_to_find
from tests.scheduler.builders import node, pod


@pytest.mark.parametrize(("percentage", "nodes", "expected"), [
    (0, 50, 50),          # below 100 nodes: all of them
    (0, 99, 99),
    (0, 100, 100),        # 50 % of 100 is 50, raised to the minimum of 100
    (0, 250, 120),        # 50 - 2 = 48 %
    (0, 1000, 420),       # 50 - 8 = 42 %
    (0, 5000, 500),       # 50 - 40 = 10 %
    (0, 6000, 300),       # 50 - 48 = 2 %, raised to 5 %
    (30, 500, 150),       # the documentation's example
    (1, 1000, 100),       # never fewer than 100
    (100, 5000, 5000),
    (150, 5000, 5000),    # above 100 acts as 100
])
def test_num_feasible_nodes_to_find(percentage: int, nodes: int, expected: int) -> None:
    assert num_feasible_nodes_to_find(percentage, nodes) == expected


def cluster(count: int, *, full: set[int] = frozenset()) -> tuple[Cache, Framework]:
    """`count` nodes in a cache; the nodes in `full` have no room for a pod (pods: 0)."""
    cache = Cache()
    for i in range(count):
        cache.add_node(node(f"n{i:03}", pods="0" if i in full else "110"))
    handle = Handle(all_nodes=cache.node_list, pod_index=cache.pod_index)
    return cache, Framework(DEFAULT_PROFILE, PLUGINS, handle, rand=random.Random(7))


def feasible_names(fwk: Framework, cache: Cache, name: str) -> list[str]:
    result = fwk.find_nodes_that_fit(CycleState(), PodInfo.of(pod(name)), cache.node_list())
    return [n.name for n in result.feasible]


def test_rotating_start_index_spreads_the_search_over_all_nodes() -> None:
    cache, fwk = cluster(250)                       # 120 nodes searched per cycle
    first = feasible_names(fwk, cache, "a")
    assert first == [f"n{i:03}" for i in range(120)]
    assert fwk.next_start_node_index == 120
    second = feasible_names(fwk, cache, "b")
    assert second == [f"n{i:03}" for i in range(120, 240)]
    third = feasible_names(fwk, cache, "c")         # wraps around
    assert third == [f"n{i:03}" for i in [*range(240, 250), *range(110)]]
    assert fwk.next_start_node_index == 110


def test_rejected_nodes_count_as_processed() -> None:
    cache, fwk = cluster(250, full={0, 1, 2, 3, 4})
    found = feasible_names(fwk, cache, "a")
    assert len(found) == 120 and found[0] == "n005"
    assert fwk.next_start_node_index == 125         # 5 rejected + 120 feasible


def test_pre_filter_skip_takes_filters_out_of_the_cycle() -> None:
    cache, fwk = cluster(3)
    state = CycleState()
    assert fwk.run_pre_filters(state, PodInfo.of(pod("plain")), cache.node_list()) is None
    running = {p.name for p in state[FILTERS_KEY]}
    # nothing to check: no node name, selector, host port, volume, spread constraint, pod affinity
    assert not running & {"NodeName", "NodeAffinity", "NodePorts", "VolumeBinding", "PodTopologySpread",
                          "InterPodAffinity"}
    assert {"NodeUnschedulable", "TaintToleration", "NodeResourcesFit"} <= running
    state = CycleState()
    picky = pod("picky", nodeSelector={"disk": "ssd"},
                containers=[{"name": "c", "image": "x", "ports": [{"containerPort": 80, "hostPort": 8080}]}])
    fwk.run_pre_filters(state, PodInfo.of(picky), cache.node_list())
    assert {"NodeAffinity", "NodePorts"} <= {p.name for p in state[FILTERS_KEY]}
    result = fwk.find_nodes_that_fit(CycleState(), PodInfo.of(picky), cache.node_list())
    assert not result.feasible
    assert {s.plugin for s in result.diagnosis.node_statuses.values()} == {"NodeAffinity"}


def test_configured_percentage_reaches_the_search() -> None:
    from pykube_server.scheduler.profile import profiles_from_config
    [profile] = profiles_from_config({"apiVersion": "kubescheduler.config.k8s.io/v1",
                                      "kind": "KubeSchedulerConfiguration", "percentageOfNodesToScore": 100})
    cache, _ = cluster(250)
    fwk = Framework(profile, PLUGINS, Handle(all_nodes=cache.node_list, pod_index=cache.pod_index))
    assert len(feasible_names(fwk, cache, "a")) == 250
    [profile] = profiles_from_config({"kind": "KubeSchedulerConfiguration",
                                      "profiles": [{"schedulerName": "s", "percentageOfNodesToScore": 60}]})
    fwk = Framework(profile, PLUGINS, Handle(all_nodes=cache.node_list, pod_index=cache.pod_index))
    assert len(feasible_names(fwk, cache, "a")) == 150
