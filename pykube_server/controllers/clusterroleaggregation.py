"""clusterrole-aggregation-controller: fills aggregated ClusterRoles from the roles they select.

A ClusterRole with `aggregationRule.clusterRoleSelectors` (admin, edit, view, and any a user
makes) owns no rules of its own: its `rules` are the union of the rules of every other
ClusterRole matching one of its selectors, taken in selector order and, within a selector, in
name order, each distinct rule once (kube's ClusterRoleAggregationController). Any ClusterRole
change may change any aggregate, so every change enqueues every aggregated role. The write is
an update of `rules` only; the controller's identity holds `escalate` on clusterroles, which
is what lets it grant rules it does not hold.
"""

from __future__ import annotations

import copy
from typing import Any

from pykube_server.api import errors
from pykube_server.api.selectors import SelectorError, selector_from_object
from pykube_server.api.types import Obj
from pykube_server.client.cache import Lister
from pykube_server.client.rest import Client, Resource
from pykube_server.controllers.framework import Context, Controller, Request, Result

CLUSTERROLES = Resource("rbac.authorization.k8s.io", "v1", "clusterroles", namespaced=False)
WORKERS = 5
"""kube-controller-manager's --concurrent-clusterrole-aggregation-syncs default."""


def aggregated_rules(role: Obj, roles: list[Obj]) -> list[Any]:
    """The rules `role` should have, from the other `roles` its selectors match."""
    name = role["metadata"]["name"]
    rules: list[Any] = []
    for selector_obj in (role.get("aggregationRule") or {}).get("clusterRoleSelectors") or []:
        try:
            selector = selector_from_object(selector_obj)
        except SelectorError:
            continue
        matched = sorted((r for r in roles if selector.matches((r.get("metadata") or {}).get("labels"))),
                         key=lambda r: r["metadata"]["name"])
        for other in matched:
            if other["metadata"]["name"] == name:
                continue
            for rule in other.get("rules") or []:
                if rule not in rules:
                    rules.append(rule)
    return rules


class AggregationReconciler:
    def __init__(self, client: Client, roles: Lister) -> None:
        self.client = client
        self.roles = roles

    async def reconcile(self, request: Request) -> Result:
        role = self.roles.get(request.name)
        if role is None or not role.get("aggregationRule"):
            return Result()
        rules = aggregated_rules(role, self.roles.list())
        if rules == (role.get("rules") or []):
            return Result()
        updated = copy.deepcopy(role)
        updated["rules"] = rules
        try:
            await self.client.update(CLUSTERROLES, updated, field_manager="clusterrole-aggregation-controller")
        except errors.NotFound:
            pass  # deleted meanwhile
        return Result()


def create(ctx: Context) -> Controller:
    informer = ctx.informer(CLUSTERROLES)
    reconciler = AggregationReconciler(ctx.client, informer.lister)
    controller = Controller("clusterrole-aggregation-controller", reconciler, workers=WORKERS, clock=ctx.clock)

    def every_aggregate(_: Obj) -> list[Request]:
        return [Request("", r["metadata"]["name"]) for r in informer.lister.list() if r.get("aggregationRule")]

    controller.watches(informer, every_aggregate)
    return controller
