"""namespace-controller: empties a namespace that is being deleted, then releases it.

Deleting a namespace only marks it `Terminating` (the API server keeps it while `spec.finalizers`
holds `kubernetes`). This controller is kube-controller-manager's namespace deleter: it finds
every namespaced resource through discovery, deletes each kind's objects in the namespace
(`deletecollection` where offered, else list and delete one by one, always with Background
propagation), Pods first, and re-lists to see what is left. What is left, and why, goes into the
five `NamespaceDeletion*`/`Namespace*Remaining` status conditions with kube's reasons and
messages. Once nothing is left it removes `kubernetes` through `PUT namespaces/<n>/finalize`,
and the API server deletes the namespace.

Why this shape: it is level-triggered like the real controller. Every pass re-discovers and
re-lists, so content created during termination or a failed delete is simply found next time;
content that must wait (pods in their grace period, objects with finalizers) is answered with a
re-check after about half the estimated wait, as the real controller's `ResourcesRemainingError`
does. Events for a namespace are handled after `DELETION_GRACE_SECONDS` (5 s in kube), so that
a last-moment create in the namespace is seen by the deleter.

`server_preferred_resources()` (client-go's `ServerPreferredResources`) lives here because the
deleter is discovery's first user; the garbage collector uses it too.
"""

from __future__ import annotations

import asyncio
import logging
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any

from pykube_server.api import errors
from pykube_server.api.types import Obj
from pykube_server.client.informer import FuncHandler
from pykube_server.client.rest import NAMESPACES, PODS, Client, Resource
from pykube_server.controllers.framework import Context, Controller, Request, Result

log = logging.getLogger(__name__)

FINALIZER_TOKEN = "kubernetes"
DELETION_GRACE_SECONDS = 5.0
"""kube's namespaceDeletionGracePeriod: a namespace event is handled this much later."""
FINALIZER_ESTIMATE_SECONDS = 15
"""The wait assumed for objects that are held by finalizers (kube's finalizerEstimateSeconds)."""
WORKERS = 10
"""kube-controller-manager's --concurrent-namespace-syncs default."""

CONDITION_TYPES = (
    "NamespaceDeletionDiscoveryFailure",
    "NamespaceDeletionGroupVersionParsingFailure",
    "NamespaceDeletionContentFailure",
    "NamespaceContentRemaining",
    "NamespaceFinalizersRemaining",
)
OK_REASONS = dict(zip(CONDITION_TYPES, (
    "ResourcesDiscovered", "ParsedGroupVersions", "ContentDeleted", "ContentRemoved", "ContentHasNoFinalizers")))
OK_MESSAGES = dict(zip(CONDITION_TYPES, (
    "All resources successfully discovered",
    "All legacy kube types successfully parsed",
    "All content successfully deleted, may be waiting on finalization",
    "All content successfully removed",
    "All content-preserving finalizers finished",
)))


# -- discovery ---------------------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class APIResource:
    """One top-level resource from discovery, in its group's preferred version."""

    resource: Resource
    kind: str
    verbs: frozenset[str]

    @property
    def group_resource(self) -> str:
        return f"{self.resource.plural}.{self.resource.group}"


@dataclass
class Discovered:
    resources: list[APIResource] = field(default_factory=list)
    failed: dict[str, str] = field(default_factory=dict)
    """group/version -> error, for the groups whose resource list could not be read."""

    def error_text(self) -> str:
        """client-go's ErrGroupDiscoveryFailed text."""
        parts = ", ".join(f"{gv}: {err}" for gv, err in sorted(self.failed.items()))
        return f"unable to retrieve the complete list of server APIs: {parts}"


async def server_preferred_resources(client: Client) -> Discovered:
    """Every resource of every group in the group's preferred version (subresources left out).

    A group whose list cannot be read is reported in `failed` and the rest still returned, as
    client-go does. Raises only if the group lists themselves cannot be read.
    """
    core = await client.request("GET", "/api")
    groups = await client.request("GET", "/apis")
    versions = [("", v) for v in (core.get("versions") or [])[:1]]
    for group in groups.get("groups") or []:
        preferred = (group.get("preferredVersion") or {}).get("version") or group["versions"][0]["version"]
        versions.append((group["name"], preferred))
    found = Discovered()
    lists = await asyncio.gather(*(_resource_list(client, g, v) for g, v in versions), return_exceptions=True)
    for (group, version), result in zip(versions, lists):
        if isinstance(result, BaseException):
            found.failed[f"{group}/{version}" if group else version] = str(result)
            continue
        found.resources.extend(_api_resources(group, version, result))
    return found


async def _resource_list(client: Client, group: str, version: str) -> Obj:
    path = f"/apis/{group}/{version}" if group else f"/api/{version}"
    result: Obj = await client.request("GET", path)
    return result


def _api_resources(group: str, version: str, body: Obj) -> Iterable[APIResource]:
    for item in body.get("resources") or []:
        if "/" in item.get("name", ""):
            continue
        resource = Resource(group, version, item["name"], bool(item.get("namespaced")))
        yield APIResource(resource, item.get("kind", ""), frozenset(item.get("verbs") or ()))


# -- conditions --------------------------------------------------------------------------------
def now_rfc3339() -> str:
    return datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def _condition(kind: str, status: str, reason: str, message: str) -> Obj:
    return {"type": kind, "status": status, "lastTransitionTime": now_rfc3339(), "reason": reason, "message": message}


@dataclass
class ConditionUpdater:
    """Collects what went wrong in one pass and folds it into the namespace's conditions."""

    failures: dict[str, Obj] = field(default_factory=dict)
    content_errors: list[str] = field(default_factory=list)

    def discovery_failed(self, found: Discovered) -> None:
        message = f"Discovery failed for some groups, {len(found.failed)} failing: {found.error_text()}"
        self.failures["NamespaceDeletionDiscoveryFailure"] = _condition(
            "NamespaceDeletionDiscoveryFailure", "True", "DiscoveryFailed", message)

    def content_totals(self, remaining: dict[Resource, int], finalizers: Counter[str]) -> None:
        if remaining:
            parts = sorted(f"{r.plural}.{r.group} has {n} resource instances" for r, n in remaining.items() if n)
            self.failures["NamespaceContentRemaining"] = _condition(
                "NamespaceContentRemaining", "True", "SomeResourcesRemain",
                f"Some resources are remaining: {', '.join(parts)}")
        if finalizers:
            parts = sorted(f"{f} in {n} resource instances" for f, n in finalizers.items() if n)
            self.failures["NamespaceFinalizersRemaining"] = _condition(
                "NamespaceFinalizersRemaining", "True", "SomeFinalizersRemain",
                f"Some content in the namespace has finalizers remaining: {', '.join(parts)}")

    def apply(self, namespace: Obj) -> bool:
        """Write the five conditions into `namespace` (a copy); True if anything changed."""
        if self.content_errors and "NamespaceDeletionContentFailure" not in self.failures:
            messages = sorted(self.content_errors)
            self.failures["NamespaceDeletionContentFailure"] = _condition(
                "NamespaceDeletionContentFailure", "True", "ContentDeletionFailed",
                f"Failed to delete all resource types, {len(messages)} remaining: {', '.join(messages)}")
        conditions = namespace.setdefault("status", {}).setdefault("conditions", [])
        changed = False
        for kind in CONDITION_TYPES:
            new = self.failures.get(kind) or _condition(kind, "False", OK_REASONS[kind], OK_MESSAGES[kind])
            old = next((c for c in conditions if c.get("type") == kind), None)
            if old is None:
                conditions.append(new)
                changed = True
            elif any(old.get(k) != new[k] for k in ("status", "reason", "message")):
                if old.get("status") != new["status"]:
                    old["lastTransitionTime"] = new["lastTransitionTime"]
                old.update(status=new["status"], reason=new["reason"], message=new["message"])
                changed = True
        return changed


# -- the deleter -------------------------------------------------------------------------------
@dataclass
class Remaining:
    """What one resource kind left behind in the namespace."""

    estimate: int = 0
    count: int = 0
    finalizers: Counter[str] = field(default_factory=Counter)


class ContentError(Exception):
    """Some content could not be deleted; the pass is retried with back-off."""


def _gvr_text(resource: Resource) -> str:
    """How kube prints a GroupVersionResource in its errors."""
    return f"{resource.group}/{resource.version}, Resource={resource.plural}"


def _aggregate(messages: list[str]) -> str:
    return messages[0] if len(messages) == 1 else "[" + ", ".join(messages) + "]"


def _parse_time(value: str) -> float:
    return datetime.strptime(value, "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=timezone.utc).timestamp()


class NamespaceDeleter:
    """kube's namespacedResourcesDeleter over our client."""

    def __init__(self, client: Client, *, now: Any = None) -> None:
        self.client = client
        self._now = now or (lambda: datetime.now(timezone.utc).timestamp())

    async def delete_all_content(self, namespace: Obj) -> int:
        """Delete everything in `namespace`; returns the seconds to wait before looking again
        (0 = all gone). Updates the status conditions. Raises ContentError on failures."""
        name = namespace["metadata"]["name"]
        deleted_at = _parse_time(namespace["metadata"]["deletionTimestamp"])
        updater = ConditionUpdater()
        found = await server_preferred_resources(self.client)
        failures = [found.error_text()] if found.failed else []
        if found.failed:
            updater.discovery_failed(found)
        deletable = [r for r in found.resources if r.resource.namespaced and "delete" in r.verbs]
        pods = [r for r in deletable if r.resource == PODS]
        rest = [r for r in deletable if r.resource != PODS]
        remaining: dict[Resource, int] = {}
        finalizers: Counter[str] = Counter()
        estimate = 0
        # OrderedNamespaceDeletion (on by default in 1.33): pods go first, the rest waits for them
        for batch in (pods, rest):
            for api_resource in batch:
                left = await self._delete_kind(api_resource, name, deleted_at, updater, failures)
                estimate = max(estimate, left.estimate)
                if left.count:
                    remaining[api_resource.resource] = left.count
                    finalizers.update(left.finalizers)
            if batch is pods and remaining.get(PODS):
                break
        updater.content_totals(remaining, finalizers)
        await self._update_conditions(namespace, updater)
        if failures:
            raise ContentError(_aggregate(failures))
        return estimate

    async def _delete_kind(self, api_resource: APIResource, namespace: str, deleted_at: float,
                           updater: ConditionUpdater, failures: list[str]) -> Remaining:
        try:
            return await self._delete_all_of(api_resource, namespace, deleted_at)
        except (errors.StatusError, ContentError) as exc:
            text = exc.message if isinstance(exc, errors.StatusError) else str(exc)
            updater.content_errors.append(text)
            failures.append(text)
            return Remaining()

    async def _delete_all_of(self, api_resource: APIResource, namespace: str, deleted_at: float) -> Remaining:
        resource = api_resource.resource
        estimate = await self._estimate(resource, namespace, deleted_at)
        if not await self._delete_collection(api_resource, namespace):
            await self._delete_each(api_resource, namespace)
        items = await self._list(api_resource, namespace)
        if not items:
            return Remaining(estimate if items is None else 0)
        held = Counter(f for item in items for f in (item.get("metadata") or {}).get("finalizers") or ())
        if estimate:
            return Remaining(estimate, len(items), held)
        if held:
            return Remaining(FINALIZER_ESTIMATE_SECONDS, len(items), held)
        raise ContentError(f"unexpected items still remain in namespace: {namespace} for gvr: {_gvr_text(resource)}")

    async def _delete_collection(self, api_resource: APIResource, namespace: str) -> bool:
        """True if deletecollection is supported (and done)."""
        if "deletecollection" not in api_resource.verbs:
            return False
        path = api_resource.resource.path(namespace=namespace)
        try:
            await self.client.request("DELETE", path, body=_background())
        except (errors.MethodNotAllowed, errors.NotFound):
            return False
        return True

    async def _list(self, api_resource: APIResource, namespace: str) -> list[Obj] | None:
        """The objects left, or None when the kind cannot be listed."""
        if "list" not in api_resource.verbs:
            return None
        try:
            page = await self.client.list(api_resource.resource, namespace=namespace)
        except (errors.MethodNotAllowed, errors.NotFound):
            return None
        items: list[Obj] = page.get("items") or []
        return items

    async def _delete_each(self, api_resource: APIResource, namespace: str) -> None:
        for item in await self._list(api_resource, namespace) or []:
            path = api_resource.resource.path(namespace=namespace, name=item["metadata"]["name"])
            try:
                await self.client.request("DELETE", path, body=_background())
            except (errors.NotFound, errors.MethodNotAllowed):
                pass

    async def _estimate(self, resource: Resource, namespace: str, deleted_at: float) -> int:
        """Pods may take their grace period to go; nothing else is waited for."""
        if resource != PODS:
            return 0
        estimate = 0
        for pod in (await self.client.list(PODS, namespace=namespace)).get("items") or []:
            if (pod.get("status") or {}).get("phase") in ("Succeeded", "Failed"):
                continue
            grace = (pod.get("spec") or {}).get("terminationGracePeriodSeconds")
            if grace is not None:
                estimate = max(estimate, int(grace))
        return 0 if self._now() - deleted_at >= estimate else estimate

    async def _update_conditions(self, namespace: Obj, updater: ConditionUpdater) -> None:
        if not updater.apply(namespace):
            return
        try:
            namespace.update(await self.client.update(NAMESPACES, namespace, subresource="status"))
        except errors.StatusError as exc:
            log.warning("couldn't update status condition for namespace %s: %s", namespace["metadata"]["name"], exc.message)


def _background() -> Obj:
    return {"kind": "DeleteOptions", "apiVersion": "v1", "propagationPolicy": "Background"}


# -- the reconciler ----------------------------------------------------------------------------
class NamespaceReconciler:
    """Drives one terminating namespace to the point where the API server deletes it."""

    def __init__(self, client: Client) -> None:
        self.client = client
        self.deleter = NamespaceDeleter(client)

    async def reconcile(self, request: Request) -> Result:
        namespace = await self._get(request.name)
        if namespace is None or not namespace["metadata"].get("deletionTimestamp"):
            return Result()
        namespace = await self._ensure_terminating(namespace)
        if namespace is None:
            return Result()
        estimate = await self.deleter.delete_all_content(namespace)
        if estimate > 0:
            log.info("content remaining in namespace %s; looking again in %ss", request.name, estimate // 2 + 1)
            return Result(requeue_after=float(estimate // 2 + 1))
        await self._finalize(namespace)
        return Result()

    async def _get(self, name: str) -> Obj | None:
        try:
            return await self.client.get(NAMESPACES, name)
        except errors.NotFound:
            return None

    async def _ensure_terminating(self, namespace: Obj) -> Obj | None:
        if (namespace.get("status") or {}).get("phase") == "Terminating":
            return namespace
        namespace["status"] = {**(namespace.get("status") or {}), "phase": "Terminating"}
        try:
            return await self.client.update(NAMESPACES, namespace, subresource="status")
        except errors.NotFound:
            return None

    async def _finalize(self, namespace: Obj) -> None:
        """Remove our token from spec.finalizers, re-reading on conflicts (same uid only)."""
        uid = namespace["metadata"].get("uid")
        while True:
            body = dict(namespace)
            finalizers = sorted({f for f in (namespace.get("spec") or {}).get("finalizers") or () if f != FINALIZER_TOKEN})
            body["spec"] = {**(namespace.get("spec") or {}), "finalizers": finalizers}
            try:
                await self.client.update(NAMESPACES, body, subresource="finalize")
                return
            except errors.NotFound:
                return
            except errors.Conflict:
                latest = await self._get(namespace["metadata"]["name"])
                if latest is None:
                    return
                if latest["metadata"].get("uid") != uid:
                    raise ContentError("namespace uid has changed across retries") from None
                namespace = latest


def create(ctx: Context) -> Controller:
    """The `namespace-controller` factory."""
    grace = float(ctx.options.get("namespace_deletion_grace_seconds", DELETION_GRACE_SECONDS))
    controller = Controller("namespace-controller", NamespaceReconciler(ctx.client), workers=WORKERS, clock=ctx.clock)
    informer = ctx.informer(NAMESPACES)

    def enqueue(obj: Obj) -> None:
        meta = obj.get("metadata") or {}
        if meta.get("deletionTimestamp"):  # only namespaces being deleted concern us
            controller.queue.add_after(Request("", meta.get("name", "")), grace)

    controller.watches(informer, lambda obj: ())
    informer.add_handler(FuncHandler(add=enqueue, update=lambda old, new: enqueue(new)))
    return controller
