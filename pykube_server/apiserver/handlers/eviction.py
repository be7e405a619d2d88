"""`POST pods/<name>/eviction`: delete a pod unless that would break its PodDisruptionBudget.

kube's EvictionREST (what `kubectl drain` uses): a pod that is Pending, Succeeded, Failed or
already terminating is deleted without looking at budgets; so is a pod no budget selects. A pod
that exactly one budget selects is deleted only if the budget's status (kept by the disruption
controller) allows a disruption: then disruptionsAllowed is decremented and the pod recorded in
status.disruptedPods in one compare-and-swap on the budget, so concurrent evictions cannot
overdraw it. Otherwise the answer is 429 TooManyRequests with a DisruptionBudget cause, which
drain retries. An unready pod may go while the budget is healthy (unhealthyPodEvictionPolicy).
Before deleting, the pod gets the DisruptionTarget condition (EvictionByEvictionAPI). Success
is 201 with a Success Status.
"""

from __future__ import annotations

import asyncio
import copy
import weakref
from datetime import datetime, timezone
from typing import TYPE_CHECKING, Any

import orjson
from aiohttp import web

from pykube_server.api import errors
from pykube_server.api.selectors import SelectorError, selector_from_object
from pykube_server.apiserver.handlers.common import raw_response
from pykube_server.apiserver.negotiation import content_type_of, decode_body
from pykube_server.apiserver.requestinfo import RequestInfo

if TYPE_CHECKING:
    from pykube_server.apiserver.app import APIServer
    from pykube_server.registry.store import ResourceStore

Obj = dict[str, Any]

VIOLATION = "Cannot evict pod as it would violate the pod's disruption budget."
MAX_DISRUPTED_PODS = 2000
ATTEMPTS = 5
_BUDGET_LOCKS: weakref.WeakValueDictionary[tuple[str, str], asyncio.Lock] = weakref.WeakValueDictionary()
"""One lock per budget: concurrent evictions (drain sends them in parallel) queue up instead of
exhausting the compare-and-swap's retries."""


def _now() -> str:
    return datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def too_many_requests(cause: str) -> errors.TooManyRequests:
    return errors.TooManyRequests(VIOLATION, details={"causes": [{"reason": "DisruptionBudget", "message": cause}]})


def can_ignore_budget(pod: Obj) -> bool:
    """Pods that are not running, or already going, never count against a budget."""
    phase = (pod.get("status") or {}).get("phase")
    return phase in ("Succeeded", "Failed", "Pending") or bool(pod["metadata"].get("deletionTimestamp"))


def is_ready(pod: Obj) -> bool:
    return any(c.get("type") == "Ready" and c.get("status") == "True"
               for c in (pod.get("status") or {}).get("conditions") or [])


def budgets_for(store: ResourceStore, pod: Obj) -> list[Obj]:
    """The namespace's budgets whose selector matches the pod; an empty selector matches none."""
    namespace = pod["metadata"].get("namespace", "")
    labels = pod["metadata"].get("labels") or {}
    prefix = f"{store.root}/{namespace}/"
    found = []
    for key, cached in sorted(store.cacher.resource(store.root).objects.items()):
        if not key.startswith(prefix):
            continue
        pdb = cached.decode()
        try:
            selector = selector_from_object((pdb.get("spec") or {}).get("selector"))
        except SelectorError:
            continue
        if selector.empty or not selector.matches(labels):
            continue
        found.append(pdb)
    return found


def set_disruption_condition(status: Obj) -> None:
    conditions = status.setdefault("conditions", [])
    old = next((c for c in conditions if c.get("type") == "DisruptionTarget"), None)
    new = {"type": "DisruptionTarget", "status": "True", "lastProbeTime": None,
           "lastTransitionTime": old["lastTransitionTime"] if old and old.get("status") == "True" else _now(),
           "reason": "EvictionByEvictionAPI", "message": "Eviction API: evicting"}
    if old is None:
        conditions.append(new)
    else:
        conditions[conditions.index(old)] = new


class Eviction:
    def __init__(self, server: APIServer, namespace: str, name: str, options: Obj, dry_run: bool) -> None:
        self.pods = server.store_for("", "v1", "pods")
        self.budgets = server.store_for("policy", "v1", "poddisruptionbudgets")
        self.namespace, self.name = namespace, name
        self.options, self.dry_run = options, dry_run

    async def run(self) -> None:
        for attempt in range(ATTEMPTS):
            pod = (await self.pods.get(self.namespace, self.name)).decode()
            try:
                await self._once(pod)
                return
            except errors.Conflict:
                if attempt == ATTEMPTS - 1:
                    raise

    async def _once(self, pod: Obj) -> None:
        if can_ignore_budget(pod):
            await self._delete(pod, pin=False)
            return
        await self.budgets.cacher.wait_fresh()
        budgets = budgets_for(self.budgets, pod)
        if len(budgets) > 1:
            message = "This pod has more than one PodDisruptionBudget, which the eviction subresource does not support."
            raise errors.InternalError(f"Internal error occurred: {message}", details={"causes": [{"message": message}]})
        if not budgets:
            await self._delete(pod, pin=False)
            return
        pdb = budgets[0]
        status = pdb.get("status") or {}
        if not is_ready(pod):
            policy = (pdb.get("spec") or {}).get("unhealthyPodEvictionPolicy") or "IfHealthyBudget"
            desired = int(status.get("desiredHealthy") or 0)
            if policy == "AlwaysAllow" or (int(status.get("currentHealthy") or 0) >= desired and desired > 0):
                await self._delete(pod, pin=True)
                return
        await self._take_disruption(pdb["metadata"]["name"])
        await self._delete(pod, pin=True)

    async def _take_disruption(self, pdb_name: str) -> None:
        """checkAndDecrement, as one compare-and-swap on the budget's status."""

        async def transform(current: Obj | None) -> Obj:
            if current is None:
                raise errors.NotFound.resource("poddisruptionbudgets", "policy", pdb_name)
            status = current.setdefault("status", {})
            if int(status.get("observedGeneration") or 0) < int(current["metadata"].get("generation") or 0):
                raise too_many_requests(f"The disruption budget {pdb_name} is still being processed by the server.")
            allowed = int(status.get("disruptionsAllowed") or 0)
            if allowed < 0:
                raise errors.Forbidden(f'poddisruptionbudget.policy "{pdb_name}" is forbidden: pdb disruptions allowed is negative',
                                       details={"name": pdb_name, "group": "policy", "kind": "poddisruptionbudget"})
            if len(status.get("disruptedPods") or {}) > MAX_DISRUPTED_PODS:
                raise errors.Forbidden(f'poddisruptionbudget.policy "{pdb_name}" is forbidden: DisruptedPods map too big - '
                                       "too many evictions not confirmed by PDB controller",
                                       details={"name": pdb_name, "group": "policy", "kind": "poddisruptionbudget"})
            if allowed == 0:
                raise too_many_requests(f"The disruption budget {pdb_name} needs {int(status.get('desiredHealthy') or 0)} "
                                        f"healthy pods and has {int(status.get('currentHealthy') or 0)} currently")
            status["disruptionsAllowed"] = allowed - 1
            if allowed - 1 == 0:
                _set_insufficient(status)
            status.setdefault("disruptedPods", {})[self.name] = _now()
            current["metadata"].pop("resourceVersion", None)
            return current

        lock = _BUDGET_LOCKS.get((self.namespace, pdb_name))
        if lock is None:
            lock = _BUDGET_LOCKS[(self.namespace, pdb_name)] = asyncio.Lock()
        async with lock:
            await self.budgets.update(self.namespace, pdb_name, transform, subresource="status", dry_run=self.dry_run)

    async def _delete(self, pod: Obj, *, pin: bool) -> None:
        """Mark the pod DisruptionTarget, then delete it; `pin` makes both conditional on the
        pod being the version the budget was checked against."""
        options = copy.deepcopy(self.options)
        preconditions = options.setdefault("preconditions", {}) if pin else (options.get("preconditions") or {})
        if pin:
            preconditions["resourceVersion"] = pod["metadata"].get("resourceVersion", "")
        if not self.dry_run:
            expected_rv, expected_uid = preconditions.get("resourceVersion"), preconditions.get("uid")

            async def mark(current: Obj | None) -> Obj:
                if current is None:
                    raise self.pods.not_found(self.name)
                meta = current["metadata"]
                if expected_uid and expected_uid != meta.get("uid"):
                    raise self.pods.conflict(self.name, f"Precondition failed: UID in precondition: {expected_uid}, "
                                                        f"UID in object meta: {meta.get('uid')}")
                if expected_rv and expected_rv != meta.get("resourceVersion"):
                    raise errors.Conflict.resource("Pod", "", self.name,
                                                   f"the ResourceVersion in the precondition ({expected_rv}) does not match "
                                                   f"the ResourceVersion in record ({meta.get('resourceVersion')}). "
                                                   "The object might have been modified")
                set_disruption_condition(current.setdefault("status", {}))
                meta.pop("resourceVersion", None)
                return current

            updated, _ = await self.pods.update(self.namespace, self.name, mark, subresource="status")
            if expected_rv:
                preconditions["resourceVersion"] = updated["metadata"].get("resourceVersion", "")
        await self.pods.delete(self.namespace, self.name, options, dry_run=self.dry_run)


def _set_insufficient(status: Obj) -> None:
    """The DisruptionAllowed condition once no disruption is left (UpdateDisruptionAllowedCondition)."""
    conditions = status.setdefault("conditions", [])
    old = next((c for c in conditions if c.get("type") == "DisruptionAllowed"), None)
    new = {"type": "DisruptionAllowed", "status": "False", "reason": "InsufficientPods", "message": "",
           "observedGeneration": status.get("observedGeneration", 0),
           "lastTransitionTime": old["lastTransitionTime"] if old and old.get("status") == "False" else _now()}
    if old is None:
        conditions.append(new)
    else:
        conditions[conditions.index(old)] = new


async def evict(server: APIServer, request: web.Request, info: RequestInfo) -> web.StreamResponse:
    if info.verb != "create":
        raise errors.MethodNotAllowed("the server does not allow this method on the requested resource",
                                      details={"kind": "pods"})
    body = decode_body(await request.read(), content_type_of(request.headers.get("Content-Type")))
    if not isinstance(body, dict) or body.get("kind", "Eviction") not in ("Eviction", ""):
        raise errors.BadRequest("the object provided is unrecognized (must be of type Eviction)")
    if (body.get("metadata") or {}).get("name") != info.name:
        raise errors.BadRequest("name in URL does not match name in Eviction object")
    options = body.get("deleteOptions") or {}
    if not isinstance(options, dict):
        raise errors.BadRequest("deleteOptions must be an object")
    dry_run = "dryRun" in request.query or "All" in (options.get("dryRun") or [])
    await Eviction(server, info.namespace, info.name, options, dry_run).run()
    return raw_response(orjson.dumps({"kind": "Status", "apiVersion": "v1", "metadata": {},
                                      "status": "Success", "code": 201}), status=201)
