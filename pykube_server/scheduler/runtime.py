"""Framework: runs one profile's plugins over a pod and the nodes (kube's frameworkImpl plus
the parts of schedule_one.go that pick a host).

* Filters run in profile order and stop at the first rejection per node, so a node is counted
  once, under the first plugin that refused it (as kube reports it).
* Only as many feasible nodes are looked for as `percentageOfNodesToScore` allows (kube's
  adaptive 50% - nodes/125, at least 5%, at least 100 nodes), starting where the previous
  cycle stopped, so load spreads over all nodes in large clusters.
* Scores are normalised per plugin (when it normalises), multiplied by the plugin's weight and
  summed; ties are broken at random, as `selectHost` does.
"""

from __future__ import annotations

import random
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from pykube_server.scheduler.framework import (
    Code,
    CycleState,
    Diagnosis,
    FilterPlugin,
    Handle,
    NodeInfo,
    PluginFactory,
    PodInfo,
    PreBindPlugin,
    PreFilterPlugin,
    PreScorePlugin,
    ReservePlugin,
    ScoreNormalizer,
    ScorePlugin,
    Status,
)
from pykube_server.scheduler.profile import Profile
from pykube_server.scheduler.queue import priority_of

MIN_FEASIBLE_NODES_TO_FIND = 100
MIN_FEASIBLE_NODES_PERCENTAGE_TO_FIND = 5


def num_feasible_nodes_to_find(percentage: int, num_all: int) -> int:
    if num_all < MIN_FEASIBLE_NODES_TO_FIND:
        return num_all
    if percentage <= 0:
        percentage = max(50 - num_all // 125, MIN_FEASIBLE_NODES_PERCENTAGE_TO_FIND)
    return max(num_all * percentage // 100, MIN_FEASIBLE_NODES_TO_FIND)


@dataclass
class FilterResult:
    feasible: list[NodeInfo]
    diagnosis: Diagnosis


class Framework:
    def __init__(self, profile: Profile, registry: Mapping[str, PluginFactory], handle: Handle, *,
                 percentage_of_nodes_to_score: int = 0, rand: random.Random | None = None) -> None:
        self.profile = profile
        self.percentage = (profile.percentage_of_nodes_to_score
                           if profile.percentage_of_nodes_to_score is not None else percentage_of_nodes_to_score)
        self._rand = rand or random.Random()
        self._next_start = 0
        instances: dict[str, Any] = {}
        for name in {*profile.filters, *(n for n, _ in profile.scores)}:
            if name not in registry:
                raise ValueError(f"plugin {name!r} is not registered")
            instances[name] = registry[name](profile.plugin_args.get(name, {}), handle)
        self.plugins = instances
        self.filters = [instances[n] for n in profile.filters if isinstance(instances[n], FilterPlugin)]
        self.pre_filters = [instances[n] for n in profile.filters if isinstance(instances[n], PreFilterPlugin)]
        self.scores = [(instances[n], w) for n, w in profile.scores if isinstance(instances[n], ScorePlugin)]
        self.reserves = [instances[n] for n in profile.filters if isinstance(instances[n], ReservePlugin)]
        self.pre_binds = [instances[n] for n in profile.filters if isinstance(instances[n], PreBindPlugin)]

    # -- filtering ------------------------------------------------------------------------
    def run_pre_filters(self, state: CycleState, pod: PodInfo, nodes: list[NodeInfo]) -> Status | None:
        for plugin in self.pre_filters:
            status = plugin.pre_filter(state, pod, nodes)
            if status is not None and status.code is not Code.SKIP:
                return Status(status.code, status.reasons, plugin.name)
        return None

    def run_filters(self, state: CycleState, pod: PodInfo, node: NodeInfo) -> Status | None:
        for plugin in self.filters:
            status = plugin.filter(state, pod, node)
            if status is not None and status.code is not Code.SKIP:
                return Status(status.code, status.reasons, plugin.name)
        return None

    def run_filters_with_nominated(self, state: CycleState, pod: PodInfo, node: NodeInfo,
                                   nominated: Sequence[PodInfo]) -> Status | None:
        """Filters as if the pods nominated to `node` with at least `pod`'s priority were already
        there, so preemptors keep the room their victims leave (RunFilterPluginsWithNominatedPods)."""
        priority = priority_of(pod.pod)
        others = [p for p in nominated if p.key != pod.key and priority_of(p.pod) >= priority]
        if not others:
            return self.run_filters(state, pod, node)
        trial = NodeInfo.of(node.node)
        for info in [*node.pods.values(), *others]:
            trial.add_pod(info)
        return self.run_filters(state, pod, trial)

    def find_nodes_that_fit(self, state: CycleState, pod: PodInfo, nodes: list[NodeInfo],
                            nominated: Mapping[str, Sequence[PodInfo]] | None = None) -> FilterResult:
        diagnosis = Diagnosis()
        status = self.run_pre_filters(state, pod, nodes)
        if status is not None:
            diagnosis.pre_filter_msg = status.message
            diagnosis.rejecting_plugins.add(status.plugin)
            diagnosis.node_statuses = {n.name: status for n in nodes}
            return FilterResult([], diagnosis)
        want = num_feasible_nodes_to_find(self.percentage, len(nodes))
        feasible: list[NodeInfo] = []
        processed = 0
        for i in range(len(nodes)):
            node = nodes[(self._next_start + i) % len(nodes)]
            processed += 1
            status = self.run_filters_with_nominated(state, pod, node, (nominated or {}).get(node.name, ()))
            if status is None:
                feasible.append(node)
                if len(feasible) >= want:
                    break
            else:
                diagnosis.node_statuses[node.name] = status
                diagnosis.rejecting_plugins.add(status.plugin)
        if nodes:
            self._next_start = (self._next_start + processed) % len(nodes)
        return FilterResult(feasible, diagnosis)

    # -- reserve and pre-bind -------------------------------------------------------------
    def run_reserve(self, state: CycleState, pod: PodInfo, node_name: str) -> Status | None:
        """Reserve in order; on a failure, the plugins already reserved are unreserved."""
        for i, plugin in enumerate(self.reserves):
            status = plugin.reserve(state, pod, node_name)
            if status is not None and status.code is not Code.SKIP:
                for done in reversed(self.reserves[:i + 1]):
                    done.unreserve(state, pod, node_name)
                return Status(status.code, status.reasons, plugin.name)
        return None

    def run_unreserve(self, state: CycleState, pod: PodInfo, node_name: str) -> None:
        for plugin in reversed(self.reserves):
            plugin.unreserve(state, pod, node_name)

    async def run_pre_bind(self, state: CycleState, pod: PodInfo, node_name: str) -> Status | None:
        for plugin in self.pre_binds:
            status = await plugin.pre_bind(state, pod, node_name)
            if status is not None and status.code is not Code.SKIP:
                return Status(status.code, status.reasons, plugin.name)
        return None

    # -- scoring --------------------------------------------------------------------------
    def score_nodes(self, state: CycleState, pod: PodInfo, nodes: list[NodeInfo]) -> dict[str, int]:
        totals = {n.name: 0 for n in nodes}
        for plugin, weight in self.scores:
            if isinstance(plugin, PreScorePlugin):
                status = plugin.pre_score(state, pod, nodes)
                if status is not None and status.code is Code.SKIP:
                    continue
            scores = {n.name: plugin.score(state, pod, n) for n in nodes}
            if isinstance(plugin, ScoreNormalizer):
                plugin.normalize(state, pod, scores)
            for name, value in scores.items():
                totals[name] += value * weight
        return totals

    def select_host(self, scores: dict[str, int]) -> str:
        best, count, chosen = -1, 0, ""
        for name, value in scores.items():
            if value > best:
                best, count, chosen = value, 1, name
            elif value == best:
                count += 1
                if self._rand.randrange(count) == 0:
                    chosen = name
        return chosen

    def schedule(self, state: CycleState, pod: PodInfo, nodes: list[NodeInfo],
                 nominated: Mapping[str, Sequence[PodInfo]] | None = None) -> tuple[str, FilterResult]:
        """The chosen node's name ("" when none fits) and what filtering found."""
        result = self.find_nodes_that_fit(state, pod, nodes, nominated)
        if not result.feasible:
            return "", result
        if len(result.feasible) == 1:
            return result.feasible[0].name, result
        return self.select_host(self.score_nodes(state, pod, result.feasible)), result
