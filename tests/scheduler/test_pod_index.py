"""The cache's PodIndex and the InterPodAffinity counts read from it.

InterPodAffinity's PreFilter computes, per (topologyKey, value), the pods matching the incoming
pod's required (anti-)affinity terms and the placed pods whose required anti-affinity matches
the incoming pod (kube's affinityCounts, antiAffinityCounts, existingAntiAffinityCounts). Read
from the index they must be exactly what a scan of every pod on every node gives, and stay so
as pods are assumed, confirmed, forgotten and deleted.
"""

from __future__ import annotations

import random

from pykube_server.api.types import Obj
from pykube_server.scheduler.cache import Cache
from pykube_server.scheduler.framework import CycleState, Handle, PodInfo
from pykube_server.scheduler.plugins.inter_pod_affinity import (
    ANTI_AFFINITY_REASON,
    EXISTING_ANTI_AFFINITY_REASON,
    InterPodAffinity,
)
from pykube_server.scheduler.plugins.resource_allocation import (
    LEAST_ALLOCATED,
    MOST_ALLOCATED,
    ResourceAllocationScorer,
    balanced,
)
from pykube_server.scheduler.podindex import PodIndex
from tests.scheduler.builders import node, pod

HOST, ZONE = "kubernetes.io/hostname", "topology.kubernetes.io/zone"


def anti(key: str, value: str, topology: str = HOST) -> Obj:
    return {"podAntiAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": [
        {"labelSelector": {"matchLabels": {key: value}}, "topologyKey": topology}]}}


def grouped(name: str, group: str, topology: str = HOST) -> Obj:
    return pod(name, labels={"group": group, "app": "bench"}, affinity=anti("group", group, topology))


def new_cache(nodes: int = 6) -> Cache:
    cache = Cache()
    for i in range(nodes):
        cache.add_node(node(f"n{i}", labels={ZONE: f"z{i % 3}"}))
    return cache


def counts(plugin: InterPodAffinity, incoming: Obj, nodes: list) -> tuple[dict, dict, dict] | None:
    state = CycleState()
    plugin.pre_filter(state, PodInfo.of(incoming), nodes)
    s = state.get(plugin.name)
    return None if s is None else (s.affinity_counts, s.anti_counts, s.existing_anti_counts)


def test_index_counts_equal_a_full_scan_through_pod_churn() -> None:
    rand = random.Random(5)
    cache = new_cache()
    plugin = InterPodAffinity(Handle(all_nodes=cache.node_list, pod_index=cache.pod_index))
    placed: list[str] = []
    for step in range(120):
        name = f"p{step}"
        group = f"g{rand.randrange(4)}"
        topology = rand.choice((HOST, ZONE))
        incoming = grouped(name, group, topology) if rand.random() < 0.7 else pod(name, labels={"group": group})
        nodes = cache.node_list()
        from_index = counts(plugin, incoming, nodes)
        from_scan = counts(plugin, incoming, list(nodes))     # another list: the plugin scans
        assert from_index == from_scan
        action = rand.random()
        if action < 0.6:
            cache.assume(PodInfo.of(incoming), f"n{rand.randrange(6)}")
            placed.append(name)
        elif action < 0.8 and placed:
            key = f"default/{placed.pop(rand.randrange(len(placed)))}"
            cache.forget(key)
            cache.remove_pod({"metadata": {"namespace": "default", "name": key.split("/")[1]}})
    assert len(cache.pod_index) == len(placed)


def test_existing_anti_affinity_is_found_through_the_anchor_label() -> None:
    cache = new_cache(3)
    handle = Handle(all_nodes=cache.node_list, pod_index=cache.pod_index)
    plugin = InterPodAffinity(handle)
    cache.assume(PodInfo.of(grouped("a", "g1")), "n0")
    cache.assume(PodInfo.of(grouped("b", "g2", ZONE)), "n1")            # zone z1
    index: PodIndex = cache.pod_index
    member = PodInfo.of(pod("c", labels={"group": "g1"}))
    assert [t.topology_key for t, _ in index.anti_affinity_terms_for(member)] == [HOST]
    stranger = PodInfo.of(pod("d", labels={"group": "g9"}))
    assert list(index.anti_affinity_terms_for(stranger)) == []

    state = CycleState()
    plugin.pre_filter(state, member, cache.node_list())
    verdicts = {n.name: plugin.filter(state, member, n) for n in cache.node_list()}
    assert verdicts["n0"].reasons == (EXISTING_ANTI_AFFINITY_REASON,)
    assert verdicts["n1"] is None and verdicts["n2"] is None

    second = PodInfo.of(grouped("e", "g2", ZONE))    # both its own term and b's refuse zone z1;
    state = CycleState()                              # kube checks the incoming pod's terms first
    plugin.pre_filter(state, second, cache.node_list())
    assert plugin.filter(state, second, cache.node("n1")).reasons == (ANTI_AFFINITY_REASON,)
    assert plugin.filter(state, second, cache.node("n0")) is None

    cache.forget("default/a")
    state = CycleState()
    plugin.pre_filter(state, member, cache.node_list())
    assert plugin.filter(state, member, cache.node("n0")) is None


def test_incoming_anti_affinity_counts_pods_matching_its_term() -> None:
    cache = new_cache(3)
    plugin = InterPodAffinity(Handle(all_nodes=cache.node_list, pod_index=cache.pod_index))
    cache.assume(PodInfo.of(pod("web", labels={"app": "web"})), "n2")
    incoming = PodInfo.of(pod("x", affinity=anti("app", "web")))
    state = CycleState()
    plugin.pre_filter(state, incoming, cache.node_list())
    assert plugin.filter(state, incoming, cache.node("n2")).reasons == (ANTI_AFFINITY_REASON,)
    assert plugin.filter(state, incoming, cache.node("n0")) is None


def test_pod_without_terms_skips_while_no_pod_has_anti_affinity() -> None:
    cache = new_cache(2)
    plugin = InterPodAffinity(Handle(all_nodes=cache.node_list, pod_index=cache.pod_index))
    plain = PodInfo.of(pod("plain", labels={"group": "g1"}))
    assert plugin.pre_filter(CycleState(), plain, cache.node_list()).code.value == "Skip"
    cache.assume(PodInfo.of(grouped("a", "g1")), "n0")
    assert plugin.pre_filter(CycleState(), plain, cache.node_list()) is None


def test_batch_scores_equal_per_node_scores() -> None:
    nodes = [node("a", cpu="4", memory="8Gi"), node("b", cpu="2", memory="1Gi"), node("c", cpu="0", memory="8Gi"),
             node("d", cpu="1", memory="1Mi")]
    cache = Cache()
    for n in nodes:
        cache.add_node(n)
    cache.assume(PodInfo.of(pod("big", cpu="3", memory="512Mi")), "a")
    cache.assume(PodInfo.of(pod("none")), "b")
    infos = cache.node_list()
    for incoming in (pod("x", cpu="500m", memory="1Gi"), pod("y"), pod("z", cpu="5")):
        info = PodInfo.of(incoming)
        for scorer in (ResourceAllocationScorer(LEAST_ALLOCATED), ResourceAllocationScorer(MOST_ALLOCATED),
                       ResourceAllocationScorer(balanced, use_requested=True)):
            assert scorer.score_all(info, infos) == [scorer.score(info, n) for n in infos]


def test_existing_required_affinity_scores_with_hard_pod_affinity_weight() -> None:
    """kube's InterPodAffinity score: a placed pod's *required* affinity term matching the
    incoming pod adds `hardPodAffinityWeight` (default 1) to its node's topology value."""
    cache = new_cache(3)
    plugin = InterPodAffinity(Handle(all_nodes=cache.node_list, pod_index=cache.pod_index))
    wants_web = {"podAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": [
        {"labelSelector": {"matchLabels": {"app": "web"}}, "topologyKey": HOST}]}}
    cache.assume(PodInfo.of(pod("sidecar", affinity=wants_web)), "n1")
    incoming = PodInfo.of(pod("web", labels={"app": "web"}))
    state = CycleState()
    assert plugin.pre_score(state, incoming, cache.node_list()) is None
    scores = {n.name: plugin.score(state, incoming, n) for n in cache.node_list()}
    assert scores == {"n0": 0, "n1": 1, "n2": 0}
    plugin.normalize(state, incoming, scores)
    assert scores == {"n0": 0, "n1": 100, "n2": 0}
    off = InterPodAffinity(Handle(all_nodes=cache.node_list, pod_index=cache.pod_index), hard_weight=0)
    assert off.pre_score(CycleState(), incoming, cache.node_list()).code.value == "Skip"
