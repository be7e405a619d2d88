"""The mandatory API Priority and Fairness objects kube-apiserver keeps in every cluster.

kube-apiserver's APF configuration producer makes the `exempt` and `catch-all` PriorityLevelConfigurations
and FlowSchemas at start and puts them back when deleted: `exempt` (precedence 1) lets `system:masters`
bypass queueing, `catch-all` (precedence 10000) classifies whatever no other schema matched. Clients
(`kubectl get flowschemas`, conformance tests, dashboards) expect them; they carry the autoupdate
annotation that tells admins the server owns their spec.
"""

from __future__ import annotations

import copy
from typing import TYPE_CHECKING, Any

from pykube_server.api import errors

if TYPE_CHECKING:
    from pykube_server.apiserver.app import APIServer

GROUP_VERSION = "flowcontrol.apiserver.k8s.io/v1"
AUTOUPDATE = {"apf.kubernetes.io/autoupdate-spec": "true"}

_EVERYTHING = {
    "resourceRules": [{"verbs": ["*"], "apiGroups": ["*"], "resources": ["*"], "clusterScope": True,
                       "namespaces": ["*"]}],
    "nonResourceRules": [{"verbs": ["*"], "nonResourceURLs": ["*"]}],
}


def _meta(name: str) -> dict[str, Any]:
    return {"name": name, "annotations": dict(AUTOUPDATE)}


PRIORITY_LEVELS: tuple[dict[str, Any], ...] = (
    {"apiVersion": GROUP_VERSION, "kind": "PriorityLevelConfiguration", "metadata": _meta("exempt"),
     "spec": {"type": "Exempt", "exempt": {"nominalConcurrencyShares": 0, "lendablePercent": 0}}},
    {"apiVersion": GROUP_VERSION, "kind": "PriorityLevelConfiguration", "metadata": _meta("catch-all"),
     "spec": {"type": "Limited", "limited": {"nominalConcurrencyShares": 5, "lendablePercent": 0,
                                             "limitResponse": {"type": "Reject"}}}},
)

FLOW_SCHEMAS: tuple[dict[str, Any], ...] = (
    {"apiVersion": GROUP_VERSION, "kind": "FlowSchema", "metadata": _meta("exempt"),
     "spec": {"matchingPrecedence": 1, "priorityLevelConfiguration": {"name": "exempt"},
              "rules": [{"subjects": [{"kind": "Group", "group": {"name": "system:masters"}}], **_EVERYTHING}]}},
    {"apiVersion": GROUP_VERSION, "kind": "FlowSchema", "metadata": _meta("catch-all"),
     "spec": {"matchingPrecedence": 10000, "priorityLevelConfiguration": {"name": "catch-all"},
              "distinguisherMethod": {"type": "ByUser"},
              "rules": [{"subjects": [{"kind": "Group", "group": {"name": "system:unauthenticated"}},
                                      {"kind": "Group", "group": {"name": "system:authenticated"}}],
                         **_EVERYTHING}]}},
)


async def bootstrap_flowcontrol(server: APIServer) -> None:
    """Create the mandatory objects that are missing (on every start, as kube does)."""
    for resource, objs in (("prioritylevelconfigurations", PRIORITY_LEVELS), ("flowschemas", FLOW_SCHEMAS)):
        store = server.store_for("flowcontrol.apiserver.k8s.io", "v1", resource)
        for obj in objs:
            try:
                await store.create("", copy.deepcopy(obj))
            except errors.AlreadyExists:
                pass
