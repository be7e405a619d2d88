"""Profiles as data: which plugins run at each extension point, with which weights and args.

`DEFAULT_PROFILE` is kube-scheduler 1.33's default plugin set in its order, minus the plugins
pykube lacks (VolumeRestrictions, NodeVolumeLimits, VolumeZone, ImageLocality, DynamicResources);
VolumeBinding filters (its capacity score is alpha in 1.33, so it has no score weight). `profiles_from_config()` reads
the real `KubeSchedulerConfiguration` (kubescheduler.config.k8s.io/v1) subset: profiles with
`schedulerName`, `plugins.{multiPoint,filter,score}.{enabled,disabled}` (weights included,
`*` to disable all), `pluginConfig` args and `percentageOfNodesToScore`.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

DEFAULT_SCHEDULER_NAME = "default-scheduler"
CONFIG_API_VERSION = "kubescheduler.config.k8s.io/v1"

DEFAULT_FILTERS = ("NodeUnschedulable", "NodeName", "TaintToleration", "NodeAffinity", "NodePorts",
                   "NodeResourcesFit", "VolumeBinding", "PodTopologySpread", "InterPodAffinity")
DEFAULT_SCORES = (("TaintToleration", 3), ("NodeAffinity", 2), ("NodeResourcesFit", 1),
                  ("PodTopologySpread", 2), ("InterPodAffinity", 2), ("NodeResourcesBalancedAllocation", 1))
FILTER_CAPABLE = frozenset(DEFAULT_FILTERS)
SCORE_CAPABLE = frozenset(name for name, _ in DEFAULT_SCORES)


@dataclass(frozen=True)
class Profile:
    scheduler_name: str = DEFAULT_SCHEDULER_NAME
    filters: tuple[str, ...] = DEFAULT_FILTERS
    scores: tuple[tuple[str, int], ...] = DEFAULT_SCORES
    plugin_args: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)
    percentage_of_nodes_to_score: int | None = None
    """None: the scheduler-wide setting (0 = kube's adaptive percentage)."""
    post_filter: bool = True
    """DefaultPreemption enabled."""


DEFAULT_PROFILE = Profile()


def _names(entries: Sequence[Mapping[str, Any]] | None) -> list[str]:
    return [str(e.get("name", "")) for e in entries or ()]


def _merge_filters(current: tuple[str, ...], point: Mapping[str, Any]) -> tuple[str, ...]:
    disabled = _names(point.get("disabled"))
    kept = [] if "*" in disabled else [n for n in current if n not in disabled]
    for name in _names(point.get("enabled")):
        if name not in kept:
            kept.append(name)
    return tuple(kept)


def _merge_scores(current: tuple[tuple[str, int], ...], point: Mapping[str, Any],
                  capable: frozenset[str] | None = None) -> tuple[tuple[str, int], ...]:
    disabled = _names(point.get("disabled"))
    kept = {} if "*" in disabled else {n: w for n, w in current if n not in disabled}
    for entry in point.get("enabled") or ():
        name = str(entry.get("name", ""))
        if capable is None or name in capable:
            kept[name] = int(entry.get("weight") or kept.get(name) or 1)
    return tuple(kept.items())


def _profile(doc: Mapping[str, Any], default_percentage: int | None) -> Profile:
    plugins = doc.get("plugins") or {}
    profile = DEFAULT_PROFILE
    multi = plugins.get("multiPoint") or {}
    filters = _merge_filters(profile.filters, {"disabled": multi.get("disabled"),
                                               "enabled": [e for e in multi.get("enabled") or ()
                                                           if e.get("name") in FILTER_CAPABLE]})
    scores = _merge_scores(profile.scores, multi, SCORE_CAPABLE)
    filters = _merge_filters(filters, plugins.get("filter") or {})
    scores = _merge_scores(scores, plugins.get("score") or {})
    post = plugins.get("postFilter") or {}
    post_disabled = set(_names(post.get("disabled")) + _names(multi.get("disabled")))
    args = {str(c.get("name")): dict(c.get("args") or {}) for c in doc.get("pluginConfig") or ()}
    percentage = doc.get("percentageOfNodesToScore")
    return replace(profile, scheduler_name=str(doc.get("schedulerName") or DEFAULT_SCHEDULER_NAME),
                   filters=filters, scores=scores, plugin_args=args,
                   percentage_of_nodes_to_score=default_percentage if percentage is None else int(percentage),
                   post_filter=not post_disabled & {"*", "DefaultPreemption"})


def profiles_from_config(doc: Mapping[str, Any]) -> list[Profile]:
    """The profiles of a KubeSchedulerConfiguration document (one default profile if none)."""
    if doc.get("apiVersion") not in (None, CONFIG_API_VERSION) or doc.get("kind", "KubeSchedulerConfiguration") != "KubeSchedulerConfiguration":
        raise ValueError(f"no kind \"{doc.get('kind')}\" is registered for version \"{doc.get('apiVersion')}\"")
    default_percentage = doc.get("percentageOfNodesToScore")
    docs = doc.get("profiles") or [{}]
    profiles = [_profile(p, None if default_percentage is None else int(default_percentage)) for p in docs]
    names = [p.scheduler_name for p in profiles]
    if len(set(names)) != len(names):
        raise ValueError("profiles: Duplicate value: schedulerName must be unique")
    return profiles
