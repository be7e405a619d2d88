"""PLUGINS: plugin name -> factory(args, handle). The one registry, checked at start-up."""

from __future__ import annotations

from pykube_server.scheduler.framework import PluginFactory
from pykube_server.scheduler.plugins import (
    balanced_allocation,
    inter_pod_affinity,
    node_affinity,
    node_name,
    node_ports,
    node_resources_fit,
    node_unschedulable,
    pod_topology_spread,
    taint_toleration,
    volume_binding,
)

PLUGINS: dict[str, PluginFactory] = {
    "NodeUnschedulable": node_unschedulable.new,
    "NodeName": node_name.new,
    "TaintToleration": taint_toleration.new,
    "NodeAffinity": node_affinity.new,
    "NodePorts": node_ports.new,
    "NodeResourcesFit": node_resources_fit.new,
    "NodeResourcesBalancedAllocation": balanced_allocation.new,
    "PodTopologySpread": pod_topology_spread.new,
    "InterPodAffinity": inter_pod_affinity.new,
    "VolumeBinding": volume_binding.new,
}
