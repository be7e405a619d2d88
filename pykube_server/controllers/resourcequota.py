"""The resource quota controller: keeps each ResourceQuota's status.hard and status.used true.

kube's `resourcequota-controller`: status.hard mirrors spec.hard, and status.used holds, for
every resource in hard, what the namespace's objects in the quota's scopes use now (a `0` for
what nothing uses), counted exactly as the ResourceQuota admission plugin charges
(`api.quota`). Admission charges new objects at once; this controller gives back what goes away
(a pod that finishes or is deleted, a Service or claim that is deleted) and corrects anything
admission charged for a write that then failed. Pods, Services, claims, ConfigMaps, Secrets,
ReplicationControllers and ResourceQuotas are followed by informers from the start; any other
kind a quota names as `count/<resource>.<group>` (count/replicasets.apps, count/deployments.apps)
gets an informer the first time a quota names it and the API server serves it (kube's quota
monitor watches every quotable resource), so deleting such an object gives its usage back at
once. Every quota is also recomputed every `resource_quota_sync_period_seconds` (kube's
--resource-quota-sync-period, 5 minutes).
"""

from __future__ import annotations

import logging

from pykube_server.api import errors
from pykube_server.api.quantity import Quantity
from pykube_server.api.quota import (
    ZERO, ResourceList, add, count_name, mask, matching_resources, parse_count_name, parse_list, quota_matches,
    to_wire, usage_of,
)
from pykube_server.api.types import Obj
from pykube_server.client.informer import FuncHandler, Informer
from pykube_server.client.rest import (
    CONFIGMAPS, PERSISTENTVOLUMECLAIMS, PODS, SECRETS, SERVICES, Resource,
)
from pykube_server.controllers.framework import Context, Controller, Request, Result

log = logging.getLogger(__name__)

RESOURCEQUOTAS = Resource("", "v1", "resourcequotas")
REPLICATIONCONTROLLERS = Resource("", "v1", "replicationcontrollers")
FOLLOWED = (PODS, SERVICES, PERSISTENTVOLUMECLAIMS, CONFIGMAPS, SECRETS, REPLICATIONCONTROLLERS, RESOURCEQUOTAS)
SYNC_PERIOD_SECONDS = 300.0


class ResourceQuotaReconciler:
    def __init__(self, ctx: Context) -> None:
        self.ctx = ctx
        self.controller: Controller | None = None
        self.client = ctx.client
        self.clock = ctx.clock
        self.sync_period = float(ctx.options.get("resource_quota_sync_period_seconds", SYNC_PERIOD_SECONDS))
        self.informers: dict[tuple[str, str], Informer] = {(r.group, r.plural): ctx.informer(r) for r in FOLLOWED}
        self.quotas = self.informers[("", "resourcequotas")].lister
        self._discovered: dict[tuple[str, str], Resource | None] = {}

    @classmethod
    def create(cls, ctx: Context) -> Controller:
        reconciler = cls(ctx)
        controller = Controller("resourcequota-controller", reconciler, workers=2, clock=ctx.clock)
        reconciler.controller = controller
        reconciler.informers[("", "resourcequotas")].add_handler(reconciler._quota_handler(controller))
        for (group, plural), informer in reconciler.informers.items():
            if plural != "resourcequotas":
                informer.add_handler(reconciler._replenisher(controller, group, plural))
        return controller

    @staticmethod
    def _quota_handler(controller: Controller) -> FuncHandler:
        """A quota is recomputed when it is new or its spec.hard changed, or its status lacks
        something (kube's addQuota); status writes alone (admission's charges) do not count."""

        def needs_sync(quota: Obj) -> bool:
            hard = (quota.get("spec") or {}).get("hard") or {}
            status = quota.get("status") or {}
            return status.get("hard") != hard or any(name not in (status.get("used") or {}) for name in hard)

        def changed(old: Obj, new: Obj) -> None:
            if (old.get("spec") or {}).get("hard") != (new.get("spec") or {}).get("hard") or needs_sync(new):
                controller.queue.add(Request.of(new))

        return FuncHandler(add=lambda quota: controller.queue.add(Request.of(quota)), update=changed,
                           delete=lambda quota: None)

    def _replenisher(self, controller: Controller, group: str, plural: str) -> FuncHandler:
        """Give usage back when an object goes away or starts costing less (a pod that finished):
        admission already charged every create, so adds need no recount."""

        def enqueue(obj: Obj) -> None:
            namespace = (obj.get("metadata") or {}).get("namespace", "")
            for quota in self.quotas.list(namespace=namespace):
                controller.queue.add(Request.of(quota))

        def changed(old: Obj, new: Obj) -> None:
            now = self.clock.wall()
            before, after = usage_of(group, plural, old, now), usage_of(group, plural, new, now)
            if any(name not in after or after[name].value < q.value for name, q in before.items()):
                enqueue(new)

        return FuncHandler(add=lambda obj: None, update=changed, delete=enqueue)

    async def _follow(self, hard: ResourceList) -> None:
        """Start an informer (with the replenishing handler) for every served kind that `hard`
        names as `count/<resource>.<group>` and nothing follows yet."""
        for name in hard:
            parsed = parse_count_name(name)
            if parsed is None or parsed in self.informers:
                continue
            resource = await self._resource(*parsed)
            if resource is None or not resource.namespaced or parsed in self.informers:
                continue
            informer = self.ctx.informer(resource)
            self.informers[parsed] = informer
            if self.controller is not None:
                informer.add_handler(self._replenisher(self.controller, *parsed))
            log.info("resourcequota: following %s for quota usage", name)

    async def reconcile(self, request: Request) -> Result:
        quota = self.quotas.get(request.name, namespace=request.namespace)
        if quota is not None:
            await self._follow(parse_list((quota.get("spec") or {}).get("hard")))
        for informer in list(self.informers.values()):  # never count from a half-filled cache
            await informer.wait_synced()
        quota = self.quotas.get(request.name, namespace=request.namespace)
        if quota is None or (quota.get("metadata") or {}).get("deletionTimestamp"):
            return Result()
        hard_wire = dict((quota.get("spec") or {}).get("hard") or {})
        hard = parse_list(hard_wire)
        used = await self.usage(request.namespace, quota, hard)
        status = {"hard": hard_wire, "used": to_wire(used)}
        current = quota.get("status") or {}
        if (current.get("hard") or {}) != status["hard"] or (current.get("used") or {}) != status["used"]:
            try:
                await self.client.update(RESOURCEQUOTAS, {**quota, "status": status}, subresource="status")
            except errors.NotFound:
                return Result()
        return Result(requeue_after=self.sync_period)

    async def usage(self, namespace: str, quota: Obj, hard: ResourceList) -> ResourceList:
        """Every hard resource's use by the namespace's objects in the quota's scopes."""
        used: ResourceList = {name: ZERO for name in hard}
        now = self.clock.wall()
        for (group, plural), informer in list(self.informers.items()):
            tracked = matching_resources(group, plural, hard)
            if not tracked:
                continue
            total: ResourceList = {}
            for obj in informer.lister.list(namespace=namespace):
                if quota_matches(quota, hard, group, plural, obj):
                    total = add(total, usage_of(group, plural, obj, now))
            used.update({name: _keep_format(used[name], q) for name, q in mask(total, tracked).items()})
        return used

    async def _resource(self, group: str, plural: str) -> Resource | None:
        """The served version of group/plural, from discovery (remembered once found)."""
        key = (group, plural)
        if key in self._discovered:
            return self._discovered[key]
        found: Resource | None = None
        try:
            if group:
                doc = await self.client.request("GET", f"/apis/{group}")
                version = ((doc or {}).get("preferredVersion") or {}).get("version", "")
                path = f"/apis/{group}/{version}"
            else:
                version, path = "v1", "/api/v1"
            listing = await self.client.request("GET", path) if version else None
            for entry in (listing or {}).get("resources") or []:
                if entry.get("name") == plural:
                    found = Resource(group, version, plural, bool(entry.get("namespaced")))
        except errors.NotFound:
            found = None
        if found is not None:  # an unserved kind is asked about again (its CRD may come later)
            self._discovered[key] = found
        else:
            log.info("resourcequota: %s is not served; cannot count it", count_name(group, plural))
        return found


def _keep_format(zero: Quantity, value: Quantity) -> Quantity:
    return value if value.value else zero


def create(ctx: Context) -> Controller:
    return ResourceQuotaReconciler.create(ctx)

