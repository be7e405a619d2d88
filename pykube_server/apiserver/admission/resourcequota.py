"""The `ResourceQuota` admission plugin: refuse what would exceed a quota, charge what fits.

For every ResourceQuota in the object's namespace that matches it (it tracks something the kind
costs, and the object is in the quota's scopes), kube's quota admission: refuses a pod whose
containers leave out a compute resource the quota tracks (`failed quota: q: must specify
limits.cpu for: c`), refuses while the quota controller has not yet computed usage (`status
unknown for quota: q, resources: pods`), and refuses a write whose cost would push status.used
above status.hard (`exceeded quota: q, requested: pods=1, used: pods=2, limited: pods=2`). What
fits is charged into the quota's status.used right away, through a compare-and-swap on the
quota, so two concurrent creates cannot both take the last slot; the `resourcequota` controller
later recomputes usage from the objects themselves (and gives back what a failed write took).
Pods are charged on create; Services and claims also on update, by the difference; dry runs are
checked but not charged.
"""

from __future__ import annotations

import asyncio
import weakref
from typing import TYPE_CHECKING, Any

from pykube_server.api import errors
from pykube_server.api.quota import (
    ResourceList, add, exceeded, is_zero, mask, matching_resources, parse_list, pod_constraints, pretty,
    quota_matches, subtract, to_wire, usage_of,
)
from pykube_server.apiserver.admission import CREATE, UPDATE, Attributes
from pykube_server.apiserver.admission.priority import forbidden

if TYPE_CHECKING:
    from pykube_server.apiserver.app import APIServer

Obj = dict[str, Any]
CHARGED_ON_UPDATE = {("", "services"), ("", "persistentvolumeclaims")}
IGNORED = {("", "events"), ("events.k8s.io", "events")}


class _QuotaGone(Exception):
    """The quota was deleted between reading and charging it: nothing to charge."""


class ResourceQuota:
    name = "ResourceQuota"

    def __init__(self, server: APIServer) -> None:
        self.quotas = server.store_for("", "v1", "resourcequotas")
        self._locks: weakref.WeakValueDictionary[tuple[str, str], asyncio.Lock] = weakref.WeakValueDictionary()
        """One lock per quota: charges queue up in this process (as kube's per-namespace quota
        work queue makes them) instead of fighting over the compare-and-swap."""

    async def _namespace_quotas(self, namespace: str) -> list[Obj]:
        await self.quotas.cacher.wait_written(self.quotas.root)  # kube reads an informer here
        cache = self.quotas.cacher.resource(self.quotas.root)
        return [cached.decode() for cached in cache.under(f"{self.quotas.root}/{namespace}/")]

    def _handles(self, attributes: Attributes) -> bool:
        if attributes.subresource or attributes.obj is None or not attributes.namespace:
            return False
        kind = (attributes.group, attributes.resource)
        if kind in IGNORED:
            return False
        return attributes.operation == CREATE or (attributes.operation == UPDATE and kind in CHARGED_ON_UPDATE)

    async def validate(self, attributes: Attributes) -> None:
        if not self._handles(attributes):
            return
        quotas = await self._namespace_quotas(attributes.namespace)
        if not quotas:
            return
        group, plural, obj = attributes.group, attributes.resource, attributes.obj or {}
        interesting = []
        for quota in quotas:
            status = quota.get("status") or {}
            hard = parse_list(status.get("hard"))
            if not quota_matches(quota, hard, group, plural, obj):
                continue
            restricted = matching_resources(group, plural, hard)
            name = quota["metadata"]["name"]
            if (group, plural) == ("", "pods"):
                problem = pod_constraints(obj, restricted)
                if problem:
                    raise forbidden(attributes, f"failed quota: {name}: {problem}")
            used = status.get("used") or {}
            if any(resource not in used for resource in restricted):
                raise forbidden(attributes, f"status unknown for quota: {name}, resources: {','.join(restricted)}")
            interesting.append(name)
        if not interesting:
            return
        delta = usage_of(group, plural, obj)
        if attributes.operation == UPDATE and attributes.old is not None:
            previous = usage_of(group, plural, attributes.old)
            delta = {k: v for k, v in subtract(delta, previous).items() if v.value > 0}
        if is_zero(delta):
            return
        for name in interesting:
            try:
                await self._charge(attributes, name, delta)
            except _QuotaGone:
                continue

    async def _charge(self, attributes: Attributes, name: str, delta: ResourceList) -> None:
        """Check `delta` against the quota as stored now and add it to status.used, in one
        compare-and-swap (retried by the store when another write got there first)."""

        async def transform(current: Obj | None) -> Obj:
            if current is None:
                raise _QuotaGone()
            status = current.setdefault("status", {})
            hard = parse_list(status.get("hard"))
            used = parse_list(status.get("used"))
            requested = mask(delta, hard)
            new_used = add(used, requested)
            over = exceeded(mask(new_used, requested), hard)
            if over:
                raise forbidden(attributes, f"exceeded quota: {name}, requested: {pretty(mask(requested, over))}, "
                                            f"used: {pretty(mask(used, over))}, limited: {pretty(mask(hard, over))}")
            status["used"] = to_wire(new_used)
            current["metadata"].pop("resourceVersion", None)
            return current

        key = (attributes.namespace, name)
        lock = self._locks.get(key)
        if lock is None:
            lock = self._locks[key] = asyncio.Lock()
        async with lock:
            try:
                await self.quotas.update(attributes.namespace, name, transform, subresource="status",
                                         dry_run=attributes.dry_run)
            except errors.NotFound:
                raise _QuotaGone() from None
