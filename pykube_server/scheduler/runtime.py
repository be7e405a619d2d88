"""Framework: runs one profile's plugins over a pod and the nodes (kube's frameworkImpl plus
the parts of schedule_one.go that pick a host).

* Filters run in profile order and stop at the first rejection per node, so a node is counted
  once, under the first plugin that refused it (as kube reports it).
* A PreFilter answering Skip takes its plugin's Filter out of the cycle, and a PreScore
  answering Skip its Score, as in kube: a pod without node affinity, host ports, spread
  constraints or pod affinity (and no placed pod with required anti-affinity) pays only for
  the filters that concern it, on every node.
* Only as many feasible nodes are looked for as `percentageOfNodesToScore` allows (kube's
  adaptive 50% - nodes/125, at least 5%, at least 100 nodes: `num_feasible_nodes_to_find`),
  starting where the previous cycle stopped (`next_start_node_index`), so load spreads over all
  nodes in large clusters.
* Scores are normalised per plugin (when it normalises), multiplied by the plugin's weight and
  summed; ties are broken at random, as `selectHost` does.
"""

from __future__ import annotations

import random
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from pykube_server.scheduler.framework import (
    BatchScorePlugin,
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


FILTERS_KEY = "__filters__"
"""CycleState key: the filter plugins this cycle runs (those whose PreFilter did not Skip)."""


def num_feasible_nodes_to_find(percentage: int, num_all: int) -> int:
    """kube's numFeasibleNodesToFind: every node below 100 nodes; else `percentage` of them
    (0: the adaptive 50 - nodes/125, at least 5), never fewer than 100 (100 nodes: 100,
    1,000: 420, 5,000: 500)."""
    if num_all < MIN_FEASIBLE_NODES_TO_FIND or percentage >= 100:
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
        self.next_start_node_index = 0
        instances: dict[str, Any] = {}
        for name in {*profile.filters, *(n for n, _ in profile.scores)}:
            if name not in registry:
                raise ValueError(f"plugin {name!r} is not registered")
            instances[name] = registry[name](profile.plugin_args.get(name, {}), handle)
        self.plugins = instances
        self.filters = [instances[n] for n in profile.filters if isinstance(instances[n], FilterPlugin)]
        self.pre_filters = [instances[n] for n in profile.filters if isinstance(instances[n], PreFilterPlugin)]
        self.scores = [(instances[n], w) for n, w in profile.scores if isinstance(instances[n], ScorePlugin)]
        self._score_steps = [(p, w, isinstance(p, PreScorePlugin), isinstance(p, ScoreNormalizer),
                              isinstance(p, BatchScorePlugin)) for p, w in self.scores]
        """(plugin, weight, has PreScore, normalises, scores in batches): protocol checks are
        slow, so they are made once."""
        self.reserves = [instances[n] for n in profile.filters if isinstance(instances[n], ReservePlugin)]
        self.pre_binds = [instances[n] for n in profile.filters if isinstance(instances[n], PreBindPlugin)]

    # -- filtering ------------------------------------------------------------------------
    def run_pre_filters(self, state: CycleState, pod: PodInfo, nodes: list[NodeInfo]) -> Status | None:
        """PreFilters in order; records in `state` which Filters the cycle runs."""
        skipped = set()
        for plugin in self.pre_filters:
            status = plugin.pre_filter(state, pod, nodes)
            if status is None:
                continue
            if status.code is Code.SKIP:
                skipped.add(plugin.name)
                continue
            return Status(status.code, status.reasons, plugin.name)
        state[FILTERS_KEY] = [p for p in self.filters if p.name not in skipped] if skipped else self.filters
        return None

    def run_filters(self, state: CycleState, pod: PodInfo, node: NodeInfo) -> Status | None:
        for plugin in state.get(FILTERS_KEY, self.filters):
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
        start = self.next_start_node_index % len(nodes) if nodes else 0
        filters = state.get(FILTERS_KEY, self.filters)
        statuses = diagnosis.node_statuses
        for node in (nodes[start:] + nodes[:start] if start else nodes):
            processed += 1
            others = nominated.get(node.name) if nominated else None
            if others:
                status = self.run_filters_with_nominated(state, pod, node, others)
            else:
                status = None
                for plugin in filters:
                    status = plugin.filter(state, pod, node)
                    if status is not None:
                        if status.code is Code.SKIP:
                            status = None
                            continue
                        if status.plugin != plugin.name:  # constant statuses come tagged already
                            status = Status(status.code, status.reasons, plugin.name)
                        break
            if status is None:
                feasible.append(node)
                if len(feasible) >= want:
                    break
            else:
                statuses[node.name] = status
                diagnosis.rejecting_plugins.add(status.plugin)
        if nodes:
            self.next_start_node_index = (start + processed) % len(nodes)
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
        names = [n.name for n in nodes]
        totals = [0] * len(nodes)
        for plugin, weight, pre_scores, normalizes, batch in self._score_steps:
            if pre_scores:
                status = plugin.pre_score(state, pod, nodes)
                if status is not None and status.code is Code.SKIP:
                    continue
            if batch:
                raw = plugin.score_all(state, pod, nodes)
            else:
                score = plugin.score
                raw = [score(state, pod, n) for n in nodes]
            if normalizes:
                scores = dict(zip(names, raw))
                plugin.normalize(state, pod, scores)
                raw = list(scores.values())
            totals = [t + v * weight for t, v in zip(totals, raw)]
        return dict(zip(names, totals))

    def select_host(self, scores: dict[str, int]) -> str:
        """The best-scoring node; ties broken uniformly at random (kube's selectHost samples
        the ties one by one to the same effect)."""
        best = max(scores.values())
        ties = [name for name, value in scores.items() if value == best]
        return ties[self._rand.randrange(len(ties))] if len(ties) > 1 else ties[0]

    def schedule(self, state: CycleState, pod: PodInfo, nodes: list[NodeInfo],
                 nominated: Mapping[str, Sequence[PodInfo]] | None = None) -> tuple[str, FilterResult]:
        """The chosen node's name ("" when none fits) and what filtering found."""
        result = self.find_nodes_that_fit(state, pod, nodes, nominated)
        if not result.feasible:
            return "", result
        if len(result.feasible) == 1:
            return result.feasible[0].name, result
        return self.select_host(self.score_nodes(state, pod, result.feasible)), result
