"""KubeSchedulerConfiguration profiles: enable/disable, weights, args, percentage."""

from __future__ import annotations

import pytest

from pykube_server.scheduler.plugins import PLUGINS
from pykube_server.scheduler.profile import DEFAULT_PROFILE, profiles_from_config


def test_default_profile_has_kube_weights_and_registered_plugins() -> None:
    assert dict(DEFAULT_PROFILE.scores) == {"TaintToleration": 3, "NodeAffinity": 2, "NodeResourcesFit": 1,
                                            "PodTopologySpread": 2, "InterPodAffinity": 2,
                                            "NodeResourcesBalancedAllocation": 1}
    assert set(DEFAULT_PROFILE.filters) | set(dict(DEFAULT_PROFILE.scores)) <= set(PLUGINS)


def test_config_changes_weights_disables_and_sets_args() -> None:
    doc = {
        "apiVersion": "kubescheduler.config.k8s.io/v1", "kind": "KubeSchedulerConfiguration",
        "percentageOfNodesToScore": 50,
        "profiles": [
            {"schedulerName": "default-scheduler",
             "plugins": {"score": {"disabled": [{"name": "NodeResourcesBalancedAllocation"}],
                                   "enabled": [{"name": "NodeResourcesFit", "weight": 5}]},
                         "filter": {"disabled": [{"name": "NodePorts"}]}},
             "pluginConfig": [{"name": "NodeResourcesFit", "args": {"scoringStrategy": {"type": "MostAllocated"}}}]},
            {"schedulerName": "no-scoring", "plugins": {"multiPoint": {"disabled": [{"name": "*"}]}}},
        ]}
    first, second = profiles_from_config(doc)
    assert dict(first.scores)["NodeResourcesFit"] == 5 and "NodeResourcesBalancedAllocation" not in dict(first.scores)
    assert "NodePorts" not in first.filters
    assert first.plugin_args["NodeResourcesFit"]["scoringStrategy"]["type"] == "MostAllocated"
    assert first.percentage_of_nodes_to_score == 50
    assert second.scheduler_name == "no-scoring" and second.filters == () and second.scores == ()
    assert not second.post_filter


def test_duplicate_scheduler_names_are_refused() -> None:
    with pytest.raises(ValueError):
        profiles_from_config({"profiles": [{"schedulerName": "a"}, {"schedulerName": "a"}]})
